import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRegexDetector, detectEntities, PatternBudgetError, RegexDetectorError } from '../src/core/detection/index.ts';

const base = { id: 'acme.ticket', type: 'TICKET_ID', maxLength: 64 };

describe('createRegexDetector: refusals at load time', () => {
  const refused: [string, string, RegExp][] = [
    ['backreference', '(x)\\1', /backreferences/],
    ['named backreference', '(?<q>[\'"]).*?\\k<q>', /backreferences/],
    ['lookahead', 'secret(?=-\\d)', /lookarounds/],
    ['lookbehind', '(?<!x)secret', /lookarounds/],
    ['inline modifier', '(?i:secret)', /inline modifiers/],
    ['oversized program', '(a{1,100}){1,100}$', /20001 instructions, more than the limit/],
  ];
  for (const [name, pattern, reason] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => createRegexDetector({ ...base, pattern }),
        (err: unknown) => err instanceof RegexDetectorError && reason.test(err.message) && err.message.includes('acme.ticket') && !err.message.includes(pattern),
      );
    });
  }
  it('refuses invalid patterns without echoing them', () => {
    assert.throws(
      () => createRegexDetector({ ...base, pattern: 'secret-(abc' }),
      (err: unknown) => err instanceof RegexDetectorError && /invalid regular expression/.test(err.message) && !err.message.includes('secret-'),
    );
  });
  it('requires maxLength and known flags', () => {
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', maxLength: 0 }), /maxLength/);
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', maxLength: Number.NaN }), /maxLength/);
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', maxLength: undefined as unknown as number }), /maxLength/);
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', flags: 'y' }), /flags/);
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', flags: 'v' }), /flags/);
    assert.throws(() => createRegexDetector({ ...base, pattern: 'x', confidence: 2 }), /confidence/);
  });
});

describe('createRegexDetector: accepted patterns', () => {
  it('detects with confidence raised by context words', () => {
    const d = createRegexDetector({ ...base, pattern: '\\bTCK-\\d{4,}\\b', flags: 'i', confidence: 0.6, contextWords: ['ticket'] });
    const plain = d.detect('see tck-12345 now');
    assert.deepEqual(plain.map((x) => [x.start, x.end, x.type, x.detector]), [[4, 13, 'TICKET_ID', 'acme.ticket']]);
    assert.equal(plain[0]!.confidence, 0.6);
    assert.equal(d.detect('our ticket TCK-12345')[0]!.confidence, 0.75);
  });
  it('accepts common safe shapes', () => {
    for (const pattern of ['(?:\\d{1,3}\\.){3}\\d{1,3}', '[A-Z]{2}-\\d+', '\\bproject-(?:falcon|osprey)\\b', '(?:ab|cd)+', 'x[^\\n]*y']) {
      assert.doesNotThrow(() => createRegexDetector({ ...base, pattern }), pattern);
    }
  });
  it('never reports a span longer than maxLength', () => {
    const d = createRegexDetector({ ...base, pattern: 'x[a-z]*', maxLength: 10 });
    for (const x of d.detect(`x${'a'.repeat(100)}`)) assert.ok(x.end - x.start <= 10);
  });
  it('accepts the nested and overlapping repetitions a backtracking engine chokes on, and matches them as JS does', () => {
    const cases: [string, string, [number, number][]][] = [
      ['(a+)+$', 'xx aaa', [[3, 6]]],
      ['(a|a)*b', 'aab', [[0, 3]]],
      ['\\d+\\d+x', 'a 123x', [[2, 6]]],
      ['(a{1,100}){1,10}$', 'b aaaa', [[2, 6]]],
      ['(\\w{1,20}\\s?){1,20}!', 'hi there!', [[0, 9]]],
      ['(?:a{2,9}){2,9}$', 'aaaa', [[0, 4]]],
      ['(.{0,30}){0,30}x', 'abcx', [[0, 4]]],
    ];
    for (const [pattern, text, spans] of cases) {
      const d = createRegexDetector({ ...base, pattern });
      assert.deepEqual(d.detect(text).map((x) => [x.start, x.end]), spans, pattern);
    }
  });
  it('past its step budget a scan throws PatternBudgetError naming the detector, never the text', () => {
    const d = createRegexDetector({ ...base, pattern: '(\\w{1,20}\\s?){1,20}!', budget: { base: 100_000, perChar: 16 } });
    const text = `token-${'a'.repeat(20_000)}`;
    assert.throws(() => d.detect(text), (err: unknown) => err instanceof PatternBudgetError && err.detectorId === 'acme.ticket' && !err.message.includes('token-'));
    // The default budget lets an ordinary pattern scan a long text.
    const plain = createRegexDetector({ ...base, pattern: '\\w+@corp', maxLength: 40 });
    assert.deepEqual(plain.detect('a'.repeat(1_000_000)), []);
  });
  it('runs through detectEntities on the normalized text', () => {
    const d = createRegexDetector({ ...base, pattern: 'TCK-\\d{4}', maxLength: 8 });
    const text = 'TCK-\u200b1234';
    const [x] = detectEntities(text, [d]);
    assert.ok(x);
    assert.deepEqual([x.start, x.end], [0, text.length]);
  });
  it('is total on arbitrary input (fast-check)', () => {
    const d = createRegexDetector({ ...base, pattern: '[\\w.]+@[a-z]+', flags: 'u', maxLength: 64 });
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        for (const x of d.detect(text)) assert.ok(x.start >= 0 && x.end <= text.length && x.end - x.start <= 64);
      }),
      { numRuns: 2000 },
    );
  });
  it('compiling never throws anything but RegexDetectorError (fast-check)', () => {
    const piece = fc.constantFrom('a', 'b', '\\d', '\\w', '.', '(', ')', '(?:', '|', '*', '+', '?', '{2}', '{1,}', '[a-z]', '[^x]', '\\1', '(?<n>', '\\k<n>', '^', '$', '\\b', '(?=', '(?<!', '\\p{L}', '\\u{41}', '{', ']');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }).map((xs) => xs.join('')), fc.constantFrom('', 'u', 'i'), (pattern, flags) => {
        try {
          createRegexDetector({ ...base, pattern, flags });
        } catch (err) {
          assert.ok(err instanceof RegexDetectorError, String(err));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
