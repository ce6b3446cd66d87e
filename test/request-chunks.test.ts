/**
 * Request bodies as chunks, the pure part (src/core/recording/request-chunks.ts): whatever the
 * text, joining the parts gives it back byte for byte; the node format round-trips and refuses
 * what the writer never produces (cycles, names out of place, lengths past the end).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ChunkFormatError,
  ChunkGraph,
  CHUNK_MIN_BODY,
  decodeNode,
  encodeNode,
  LEAF,
  NODE,
  parseRequestParts,
  formatRequestParts,
  splitBody,
  type BodyPart,
  type StoredChunk,
} from '../src/core/recording/request-chunks.ts';
import { agentSessionBodies } from './support/agent-session.ts';

/** Stores a split body as the writer would (children first, ids in order) and rebuilds it. */
function roundTrip(text: string): { text: string; chunks: number } | null {
  const tree = splitBody(text);
  if (tree === null) return null;
  const chunks = new Map<number, StoredChunk>();
  let next = 1;
  const place = (part: BodyPart): number => {
    if (part.kind === LEAF) {
      chunks.set(next, { kind: LEAF, text: part.text });
      return next++;
    }
    const pieces = part.pieces.map((p) => (typeof p === 'string' ? p : place(p)));
    chunks.set(next, { kind: NODE, text: encodeNode(part.array, 0, 0, pieces, part.names) });
    return next++;
  };
  const root = place(tree);
  return { text: new ChunkGraph((id) => chunks.get(id)).text(root), chunks: chunks.size };
}

const pad = (body: string): string => (body.length >= CHUNK_MIN_BODY ? body : body.replace(/\}\s*$/, `,"pad":"${'p'.repeat(CHUNK_MIN_BODY)}"}`));

describe('splitting a body', () => {
  test('the recorded agent requests split and come back exactly', () => {
    for (const kind of ['claude', 'codex'] as const) {
      for (const body of agentSessionBodies(kind, 3)) {
        const back = roundTrip(body);
        assert.ok(back !== null, 'an agent request splits');
        assert.equal(back.text, body);
        assert.ok(back.chunks > 20, `${kind}: split into parts (${back.chunks})`);
      }
    }
  });

  test('odd JSON comes back byte for byte: escapes, whitespace, duplicate keys, huge strings, deep nesting', () => {
    const bodies = [
      // unicode escapes (also of the structural characters), escaped quotes and backslashes in keys and values
      pad(`{"model":"m","messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00 \\" \\\\ \\u007b\\u005b","x":"${'a'.repeat(900)}"},{"r\\u006fle":"assistant","content":"\\\\\\"}]"}]}`),
      // pretty-printed with tabs, CRLF and blank lines; whitespace before and after the root
      pad(`\r\n\t{\r\n  "messages" :\r\n  [\r\n\t{ "role" : "user" ,\n "content" : "${'b'.repeat(1000)}" } ,\n\n {"role":"user","content":"c"}  ] ,\n "tools":[ ]\n}\n\n `),
      // duplicate keys, both kept as sent
      pad(`{"messages":[{"role":"user","content":"first"}],"messages":[{"role":"user","content":"${'d'.repeat(1200)}"}],"stream":true,"stream":false}`),
      // a huge string member and numbers in every form
      `{"instructions":"${'x'.repeat(300_000)}","n":[-0,1e400,1.5E-7,0.000001,-12345678901234567890],"t":true,"f":false,"z":null}`,
      // nested deeper than the split depth
      pad(`{"a":${'['.repeat(40)}"${'e'.repeat(1000)}"${']'.repeat(40)}}`),
      // a root array
      `[${Array.from({ length: 50 }, (_, i) => `{"i":${i},"text":"${'f'.repeat(60)}"}`).join(', ')}]`,
      // non-BMP and combining characters around the cuts, NUL escapes
      pad(`{"messages":[${Array.from({ length: 30 }, () => `{"content":"\u{1F600}e\u0301\\u0000${'g'.repeat(100)}"}`).join(',')}]}`),
    ];
    for (const body of bodies) {
      const back = roundTrip(body);
      assert.ok(back !== null, `splits: ${body.slice(0, 60)}`);
      assert.equal(back.text, body);
    }
  });

  test('what does not split stays whole: short, not JSON, not a container, malformed where it would be cut', () => {
    assert.equal(splitBody('{"messages":[]}'), null, 'short');
    assert.equal(splitBody('x'.repeat(10_000)), null, 'not JSON');
    assert.equal(splitBody(`"${'s'.repeat(10_000)}"`), null, 'a string');
    assert.equal(splitBody(`{"a":"${'s'.repeat(10_000)}"`), null, 'unterminated');
    assert.equal(splitBody(`{"a":"${'s'.repeat(10_000)}"} trailing`), null, 'text after the value');
    assert.equal(splitBody(`{"a" "${'s'.repeat(10_000)}"}`), null, 'no colon');
    assert.equal(splitBody(`{"a":"${'s'.repeat(10_000)}",}`), null, 'trailing comma at the root');
    assert.equal(splitBody(`{a:"${'s'.repeat(10_000)}"}`), null, 'unquoted key');
    assert.equal(splitBody(`{"a":1 "b":"${'s'.repeat(10_000)}"}`), null, 'missing comma');
  });

  test('property: any text comes back exactly, split or not', () => {
    const json = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify({ messages: [v, v], big: 'y'.repeat(CHUNK_MIN_BODY), tools: [v] }, null, Math.random() < 0.5 ? 2 : undefined));
    const noisy = fc.tuple(json, fc.integer({ min: 0, max: 4000 }), fc.string({ maxLength: 3 })).map(([text, at, noise]) => text.slice(0, at % (text.length + 1)) + noise + text.slice(at % (text.length + 1)));
    fc.assert(
      fc.property(fc.oneof(json, noisy, fc.string({ minLength: CHUNK_MIN_BODY, maxLength: CHUNK_MIN_BODY + 200 })), (text) => {
        const back = roundTrip(text);
        if (back !== null) assert.equal(back.text, text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('node text', () => {
  test('round-trips, with a base, names and literals of any content', () => {
    const text = encodeNode(false, 0, 0, ['{"a":', 3, ',"b":', 'x', 5, '}'], ['a', 'b;r9;s1:']);
    const node = decodeNode(text, 10);
    assert.deepEqual(node.pieces, ['{"a":', 3, ',"b":x', 5, '}']);
    assert.deepEqual(node.names, ['a', 'b;r9;s1:']);
    const arr = decodeNode(encodeNode(true, 4, 7, [',', 8, ']'], null), 9);
    assert.deepEqual({ ...arr }, { array: true, base: 4, keep: 7, pieces: [',', 8, ']'], names: null });
  });

  test('refuses cycles, forward references and broken texts', () => {
    const bad = ['o;r5;', 'o;k1:ar12;', 'a12,0;', 'a0,3;', 'o;s99:{', 'o;k1:a', 'a0,0;k1:ar1;', 'x;', 'o;r-1;', 'o;k1:ar0;', 'o;q'];
    for (const text of bad) assert.throws(() => decodeNode(text, 10), ChunkFormatError, text);
    // a node naming itself
    assert.throws(() => decodeNode('o;k1:ar10;', 10), ChunkFormatError);
  });

  test('a missing chunk fails the rebuild, never gives part of a body', () => {
    const graph = new ChunkGraph((id) => (id === 2 ? { kind: NODE, text: 'o;s1:{k1:ar1;s1:}' } : undefined));
    assert.throws(() => graph.text(2), /chunk 1 is missing/);
  });

  test('request_parts', () => {
    assert.deepEqual(parseRequestParts(formatRequestParts({ root: 9, first: 3, last: 9 })), { root: 9, first: 3, last: 9 });
    assert.deepEqual(parseRequestParts('12'), { root: 12, first: 0, last: 0 });
    for (const bad of ['', '0', '1 2', '5 3-2', '9 3-5x', ' 9', '9 10-12 ', '1e3']) assert.equal(parseRequestParts(bad), null, bad);
  });
});
