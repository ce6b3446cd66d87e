/**
 * The linear-time matcher for custom patterns: same matches as JS RegExp (property test over
 * random patterns and texts), linear work on the inputs that freeze a backtracking engine
 * (counted in thread steps, not timed), and its refusals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LinearRegex, MatchBudgetExceeded, PatternRefusal } from '../src/core/detection/linear-regex.ts';

/** What a global RegExp's exec loop finds, moving one character (code point with u) past an empty match. */
function jsScan(pattern: string, flags: string, text: string): number[] {
  const re = new RegExp(pattern, `${flags}g`);
  const out: number[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push(m.index, m.index + m[0].length);
    if (m[0].length === 0) re.lastIndex = m.index + (flags.includes('u') && (text.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1);
  }
  return out;
}

/**
 * Without empty matches: V8 (unlike the spec's AdvanceStringIndex) also tries positions inside a
 * surrogate pair under `u` after failing at its lead, so `/\B/gu` finds an empty match at 2 in
 * "a\u{1F600}"; detectors never report empty matches.
 */
function nonEmpty(spans: number[]): number[] {
  const out: number[] = [];
  for (let k = 0; k < spans.length; k += 2) if (spans[k + 1]! > spans[k]!) out.push(spans[k]!, spans[k + 1]!);
  return out;
}

describe('LinearRegex: same matches as JS RegExp', () => {
  const table: [string, string, string][] = [
    ['a+b', '', 'xaab ab aaa b'],
    ['\\bTCK-\\d{4,}\\b', 'i', 'see tck-12345 now TCK-1'],
    ['(a|ab)(c|bcd)(d*)', '', 'abcd'],
    ['(?:ab|a)+?c', '', 'ababac'],
    ['a*?', '', 'aaa'],
    ['x*', '', 'axxb'],
    ['^\\w+$', 'm', 'foo\nbar baz\nqux'],
    ['$', '', 'ab'],
    ['\\B', '', 'ab c'],
    ['.', 'u', 'a\u{1F600}b'],
    ['.', '', 'a\u{1F600}b'],
    ['[\u{1F600}-\u{1F602}]+', 'u', 'x\u{1F600}\u{1F601}y'],
    ['\\ud83d\\ude00', 'u', 'x\u{1F600}'],
    ['\\p{L}+', 'u', 'héllo wörld'],
    ['K', 'iu', '\u212a k K'],
    ['\\w+', 'iu', 'ſK\u212a'],
    ['ſ', 'i', 's S ſ'],
    ['(a{1,3}){2}', '', 'aaaaaaa'],
    ['\\cJ', '', 'a\nb'],
    ['\\c1', '', '\\c1'],
    ['[^]', '', 'ab'],
    ['[]', '', 'ab'],
    ['a{,2}', '', 'a{,2}'],
    ['\\x41\\x4', '', 'Ax4'],
    ['(?<word>\\w+)-\\d', '', 'ab-1 c-22'],
    // Empty rounds past the minimum fail in JS, and the round's other choices are tried.
    ['(?:|a)?a*?', '', 'a'],
    ['(?:a?){2,4}b', '', 'aab b aaaaab'],
    ['(a*)*b', '', 'aaab ab b'],
    ['(?:a*?|b)+c', '', 'abbc aac'],
    ['(.{0,3}){0,3}x', '', 'abcdefghijx'],
    ['(\\w{1,4}\\s?){1,3}!', '', 'ab cd efgh! x!'],
  ];
  for (const [pattern, flags, text] of table) {
    it(`/${pattern}/${flags} on ${JSON.stringify(text)}`, () => {
      assert.deepEqual(new LinearRegex(pattern, flags).scan(text), jsScan(pattern, flags, text));
    });
  }

  it('agrees with JS RegExp on random patterns and texts (fast-check)', () => {
    const atom = fc.constantFrom('a', 'b', 'c', 'A', '.', '[ab]', '[^a]', '[a-c]', '\\w', '\\W', '\\d', '\\s', '\\S', '-', '\\n', '\\u{1F600}', '\u00e9');
    const assertion = fc.constantFrom('^', '$', '\\b', '\\B');
    const quant = fc.constantFrom('*', '+', '?', '{2}', '{0,2}', '{1,3}', '{2,}', '*?', '+?', '??', '{1,2}?');
    const tree = fc.letrec<{ re: string }>((tie) => ({
      re: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        atom,
        assertion,
        fc.tuple(tie('re'), tie('re')).map(([x, y]) => x + y),
        fc.tuple(tie('re'), tie('re')).map(([x, y]) => `(?:${x}|${y})`),
        fc.tuple(tie('re'), fc.constantFrom('', '|')).map(([x, bar]) => `(${bar}${x})`),
        fc.tuple(fc.oneof(atom, tie('re').map((x) => `(?:${x})`)), quant).map(([x, q]) => x + q),
      ),
    }));
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'A', ' ', '\n', '-', '1', '\u{1F600}', '\u00e9', '\u00c9'), { maxLength: 14 }).map((xs) => xs.join(''));
    const flags = fc.constantFrom('', 'i', 'm', 's', 'u', 'iu', 'ms', 'imsu');
    let compared = 0;
    fc.assert(
      fc.property(tree.re, flags, fc.array(text, { minLength: 1, maxLength: 4 }), (pattern, f, texts) => {
        try {
          new RegExp(pattern, f);
        } catch {
          return; // not a JS pattern (e.g. a quantified assertion)
        }
        let re: LinearRegex;
        try {
          re = new LinearRegex(pattern, f);
        } catch (error) {
          assert.ok(error instanceof PatternRefusal, String(error));
          return;
        }
        compared++;
        for (const t of texts) assert.deepEqual(nonEmpty(re.scan(t)), nonEmpty(jsScan(pattern, f, t)), `/${pattern}/${f} on ${JSON.stringify(t)}`);
      }),
      { numRuns: 4000 },
    );
    assert.ok(compared > 2000, `only ${compared} patterns compared`);
  });
});

describe('LinearRegex: linear work where backtracking explodes (thread steps, not time)', () => {
  const n = 200_000;
  const adversarial: [string, string][] = [
    ['a+b', 'a'.repeat(n)],
    ['(a+)+$', `${'a'.repeat(n)}!`],
    ['(a|a)*b', 'a'.repeat(n)],
    ['\\w+@corp', 'a'.repeat(n)],
    ['(?:a{2,9}){2,9}$', `${'a'.repeat(n)}!`],
    ['(\\w{1,20}\\s?){1,20}!', `${'ab '.repeat(n / 3)}`],
    ['(.{0,30}){0,30}x', 'a'.repeat(n / 10)],
    ['x.*.*.*y', `x${'a'.repeat(n)}`],
  ];
  for (const [pattern, text] of adversarial) {
    it(`/${pattern}/ on ${text.length} adversarial characters: at most 2 × (program size + 1) steps per character`, () => {
      const re = new LinearRegex(pattern, '');
      assert.deepEqual(re.scan(text, { maxLength: 4096 }), []);
      // Per character: each instruction is visited at most once by the ε-closure and stepped at
      // most once as a live thread.
      assert.ok(re.steps <= 2 * (re.size + 1) * (text.length + 1), `${re.steps} steps for ${text.length} characters, program ${re.size}`);
    });
  }
  it('a+b on 1 MB takes a few steps per character, not one scan per start position', () => {
    const re = new LinearRegex('a+b', '');
    assert.deepEqual(re.scan('a'.repeat(1_000_000)), []);
    assert.ok(re.steps <= 8_000_010, `${re.steps} steps`);
  });
  it('throws MatchBudgetExceeded past its budget, and is usable again after', () => {
    const re = new LinearRegex('(\\w{1,20}\\s?){1,20}!', '');
    assert.throws(() => re.scan('a'.repeat(50_000), { budget: 1_000_000 }), MatchBudgetExceeded);
    assert.deepEqual(re.scan('ab cd!'), [0, 6]);
  });
});

describe('LinearRegex: refusals', () => {
  const refused: [string, string, RegExp][] = [
    ['(x)\\1', '', /backreferences/],
    ['(?<q>a)\\k<q>', '', /backreferences/],
    ['\\k<q>(?<q>a)', 'u', /backreferences/],
    ['a(?=b)', '', /lookarounds/],
    ['a(?!b)', '', /lookarounds/],
    ['(?<=b)a', '', /lookarounds/],
    ['(?<!b)a', '', /lookarounds/],
    ['\\01', '', /octal/],
    ['(a{1,100}){1,100}$', '', /20001 instructions, more than the limit of 10000/],
    ['a{0,4294967295}', '', /more than the limit/],
  ];
  for (const [pattern, flags, reason] of refused) {
    it(`refuses /${pattern}/${flags}`, () => {
      assert.throws(() => new LinearRegex(pattern, flags), (e: unknown) => e instanceof PatternRefusal && reason.test(e.message) && !e.message.includes(pattern));
    });
  }
  it('honours a smaller program limit', () => {
    assert.throws(() => new LinearRegex('a{1,50}', '', { maxProgramSize: 50 }), PatternRefusal);
    assert.equal(new LinearRegex('a{1,50}', '', { maxProgramSize: 200 }).size, 100);
  });
});
