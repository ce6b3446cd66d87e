import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SseParser, serializeSseEvent, withData, type SseEvent } from '../src/core/sse.ts';

const STREAM = [
  ': keep-alive\n\n',
  'data: {"a":1}\n\n',
  'event: content_block_delta\ndata: {"text":"héllo 👋"}\n\n',
  'event: multi\r\ndata: line one\r\ndata: line two\r\nid: 7\r\n\r\n',
  'data:nospace\n\n',
  'data: [DONE]\n\n',
].join('');

function parseAll(chunks: readonly string[]): SseEvent[] {
  const parser = new SseParser();
  const events = chunks.flatMap((c) => parser.push(c));
  return [...events, ...parser.end()];
}

/** Splits text at the given cut points (positions are taken modulo the length). */
function cut(text: string, points: readonly number[]): string[] {
  const positions = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let last = 0;
  for (const p of positions) {
    chunks.push(text.slice(last, p));
    last = p;
  }
  chunks.push(text.slice(last));
  return chunks;
}

describe('SseParser', () => {
  it('parses fields, comments, CRLF and multi-line data', () => {
    const events = parseAll([STREAM]);
    assert.equal(events.length, 6);
    assert.deepEqual(
      events.map((e) => [e.event, e.data, e.id, e.comment]),
      [
        [null, null, null, true],
        [null, '{"a":1}', null, false],
        ['content_block_delta', '{"text":"héllo 👋"}', null, false],
        ['multi', 'line one\nline two', '7', false],
        [null, 'nospace', null, false],
        [null, '[DONE]', null, false],
      ],
    );
  });

  it('keeps every byte: the raw blocks concatenate to the input', () => {
    assert.equal(parseAll([STREAM]).map((e) => e.raw).join(''), STREAM);
  });

  it('gives the same events one character at a time', () => {
    assert.deepEqual(parseAll([...STREAM]), parseAll([STREAM]));
  });

  it('law: any chunking yields the same events and the same bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (points) => {
        const events = parseAll(cut(STREAM, points));
        assert.deepEqual(events, parseAll([STREAM]));
      }),
      { numRuns: 2000 },
    );
  });

  it('law: holds for generated streams with CR, LF and CRLF endings', () => {
    const line = fc.constantFrom('data: x', 'data: {"k":"v"}', 'event: e', ': c', 'id: 1', 'data:', 'retry: 5');
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    const block = fc.tuple(fc.array(fc.tuple(line, eol), { minLength: 1, maxLength: 4 }), eol).map(([lines, end]) => lines.map(([l, e]) => l + e).join('') + end);
    fc.assert(
      fc.property(fc.array(block, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (blocks, points) => {
        const text = blocks.join('');
        const whole = parseAll([text]);
        assert.deepEqual(parseAll(cut(text, points)), whole);
        assert.equal(whole.map((e) => e.raw).join(''), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns an unterminated final block at end()', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push('data: partial'), []);
    assert.equal(parser.pending, 'data: partial');
    const [event] = parser.end();
    assert.equal(event?.data, 'partial');
  });

  it('scans each chunk once (no quadratic rescans of a long pending event)', () => {
    const parser = new SseParser();
    const big = 'x'.repeat(1000);
    const start = performance.now();
    parser.push('data: ');
    for (let i = 0; i < 5000; i++) parser.push(big);
    const [event] = parser.push('\n\n');
    assert.equal(event?.data?.length, 5_000_000);
    // 5 MB in 5000 chunks: linear work finishes far below this bound; a rescan per chunk would not.
    assert.ok(performance.now() - start < 2000);
  });

  it('serializes new events canonically and keeps name and id when data changes', () => {
    assert.equal(serializeSseEvent({ event: 'e', data: 'a\nb' }), 'event: e\ndata: a\ndata: b\n\n');
    const [original] = parseAll(['event: x\r\nid: 3\r\ndata: old\r\n\r\n']);
    const changed = withData(original!, 'new');
    assert.equal(changed.raw, 'event: x\nid: 3\ndata: new\n\n');
    assert.deepEqual(parseAll([changed.raw])[0]?.data, 'new');
  });
});
