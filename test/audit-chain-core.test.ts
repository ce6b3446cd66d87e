/**
 * The audit chain's canonical forms (src/core/audit/chain.ts): the value encoding is injective
 * (a decoder recovers every value list, so two different rows never serialize alike), kinds are
 * separated, and the link/checkpoint inputs name every field. Table tests and fast-check.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ACCESS_COLUMNS,
  AUDIT_FORMAT,
  chainInput,
  checkpointPayload,
  encodeColumnValues,
  encodeValue,
  feedRequestContent,
  feedResultContent,
  formatSpan,
  parseSpan,
  REQUEST_COLUMNS,
  RESULT_COLUMNS,
  startEventsContent,
  type ColumnValue,
} from '../src/core/audit/chain.ts';

/** Inverse of a concatenation of encodeValue(); throws on anything that is not one. */
function decodeValues(text: string): ColumnValue[] {
  const out: ColumnValue[] = [];
  let i = 0;
  while (i < text.length) {
    const tag = text[i];
    if (tag === 'z') {
      assert.equal(text[i + 1], ';');
      out.push(null);
      i += 2;
    } else if (tag === 'n') {
      const end = text.indexOf(';', i);
      out.push(Number(text.slice(i + 1, end)));
      i = end + 1;
    } else if (tag === 's') {
      const colon = text.indexOf(':', i);
      const length = Number(text.slice(i + 1, colon));
      out.push(text.slice(colon + 1, colon + 1 + length));
      i = colon + 1 + length;
    } else {
      throw new Error(`not an encoding at ${i}`);
    }
  }
  return out;
}

const value = fc.oneof(fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(), fc.string({ unit: 'binary' }));

class Collect {
  text = '';
  update(t: string): void {
    this.text += t;
  }
}

describe('audit chain canonical forms', () => {
  test('encodeValue: table', () => {
    assert.equal(encodeValue(null), 'z;');
    assert.equal(encodeValue(undefined), 'z;');
    assert.equal(encodeValue(''), 's0:');
    assert.equal(encodeValue('a;b'), 's3:a;b');
    assert.equal(encodeValue(42), 'n42;');
    assert.equal(encodeValue(1.5), 'n1.5;');
    assert.notEqual(encodeValue('42'), encodeValue(42));
    assert.notEqual(encodeValue('null'), encodeValue(null));
  });

  test('a list of values is recovered from its encoding (injective, so no two rows collide)', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 12 }), (values) => {
        const encoded = values.map(encodeValue).join('');
        assert.deepEqual(decodeValues(encoded), values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v)));
      }),
      { numRuns: 500 },
    );
  });

  test('moving text between two columns changes the content (length prefixes, not separators)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (a, b, c) => {
        fc.pre(a.length > 0);
        const left = encodeColumnValues('access', [a + b, c]);
        const right = encodeColumnValues('access', [b, a + c]);
        assert.notEqual(left, right);
      }),
    );
  });

  test('named rows and positional values give the same content; kinds are separated', () => {
    const request = Object.fromEntries(REQUEST_COLUMNS.map((c, i) => [c, i % 3 === 0 ? null : i % 3 === 1 ? i : `v${i}`]));
    const a = new Collect();
    feedRequestContent(a, request as never);
    assert.equal(a.text, encodeColumnValues('request', REQUEST_COLUMNS.map((c) => request[c] as ColumnValue)));
    assert.ok(a.text.startsWith(`${AUDIT_FORMAT}/request\n`));

    const result = Object.fromEntries(RESULT_COLUMNS.map((c) => [c, 'x']));
    const b = new Collect();
    feedResultContent(b, result as never);
    assert.ok(b.text.startsWith(`${AUDIT_FORMAT}/result\n`));
    assert.notEqual(encodeColumnValues('result', ['x']), encodeColumnValues('access', ['x']));
    assert.equal(ACCESS_COLUMNS[0], 'id');
  });

  test('events content: each event delimited by its seq, offset and length', () => {
    const a = new Collect();
    const ea = startEventsContent(a, 'call-1');
    ea.add(0, 5, 'data: ab\n\n');
    ea.add(1, 9, 'data: c\n\n');
    const b = new Collect();
    const eb = startEventsContent(b, 'call-1');
    eb.add(0, 5, 'data: a');
    eb.add(1, 9, 'b\n\ndata: c\n\n');
    assert.notEqual(a.text, b.text);
    assert.ok(a.text.includes('s10:data: ab\n\n'));
  });

  test('spans round-trip; malformed ones are refused', () => {
    assert.deepEqual(parseSpan(formatSpan(3, 17)), { first: 3, last: 17 });
    for (const bad of [null, '', '3', '3..', '5..3', '-1..2', '1..2x']) assert.equal(parseSpan(bad), null, String(bad));
  });

  test('the link input and the checkpoint payload name every field', () => {
    const link = { seq: 7, kind: 'events', ref: 'call-1', span: '0..4', at: 1_700_000_000_000, contentHash: 'c'.repeat(64), prevHash: 'p'.repeat(64) };
    const base = chainInput(link);
    for (const change of [{ seq: 8 }, { kind: 'result' }, { ref: 'call-2' }, { span: '0..5' }, { span: null }, { at: 1 }, { contentHash: 'd'.repeat(64) }, { prevHash: 'q'.repeat(64) }]) {
      assert.notEqual(chainInput({ ...link, ...change }), base, JSON.stringify(change));
    }
    const cp = { seq: 7, hash: 'h'.repeat(64), at: 5, kind: 'periodic' as const, keyId: 'ed25519:0011223344556677' };
    const payload = checkpointPayload(cp);
    for (const change of [{ seq: 6 }, { hash: 'i'.repeat(64) }, { at: 6 }, { kind: 'anchor' as const }, { keyId: null }]) {
      assert.notEqual(checkpointPayload({ ...cp, ...change }), payload, JSON.stringify(change));
    }
  });
});
