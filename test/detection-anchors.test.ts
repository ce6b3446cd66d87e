/**
 * The scanning helpers the built-in detectors use to run their regexes only near plausible
 * anchors, property-tested against their definitions: digitRuns against /[0-9]+/g, matchesNear
 * against the global scan of the same regex, the context-word tests against lower-casing the
 * window and searching it, and the allocation-free ipv6Valid against splitting.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AFTER, BEFORE1, BEFORE2, BEFORE3, digitRuns, END, matchesNear, NONE, RUN_FIELDS, SPAN, SPAN_MAX, START, withSharedScans } from '../src/core/detection/anchors.ts';
import type { DigitRuns } from '../src/core/detection/anchors.ts';
import { before, contextRegexTest, contextTest } from '../src/core/detection/detector-kit.ts';
import { ipv6Valid } from '../src/core/detection/pii.ts';

const RUNS = 300;

/** Texts over a small alphabet rich in the characters the patterns below care about. */
const textOf = (alphabet: readonly string[], maxLength = 80): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...alphabet), { maxLength }).map((parts) => parts.join(''));

function globalScan(re: RegExp, text: string): [number, string][] {
  const out: [number, string][] = [];
  for (const m of text.matchAll(re)) if (m[0] !== '') out.push([m.index, m[0]]);
  return out;
}

describe('digitRuns', () => {
  it('is the list of /[0-9]+/ runs with their neighbours, inside and outside a shared scope', () => {
    fc.assert(
      fc.property(textOf(['0', '7', '42', '12345', 'a', ' ', '-', '.', '(', ')', '/', '\\', '\t', '١', '０', 'é', '😀', '\uFFFF'], 200), (text) => {
        const at = (i: number): number => (i >= 0 && i < text.length ? text.charCodeAt(i) : NONE);
        const span = (i: number): number => /^[0-9 \t()./-]*/.exec(text.slice(i, i + SPAN_MAX))![0].length;
        const expected = globalScan(/[0-9]+/g, text).map(([i, s]) => [i, i + s.length, at(i - 1), at(i - 2), at(i - 3), at(i + s.length), span(i)]);
        const columns = (runs: DigitRuns): number[][] =>
          Array.from({ length: runs.count }, (_, r) => [START, END, BEFORE1, BEFORE2, BEFORE3, AFTER, SPAN].map((k) => runs.data[r * RUN_FIELDS + k]!));
        assert.deepEqual(columns(digitRuns(text)), expected);
        withSharedScans(text, () => {
          assert.deepEqual(columns(digitRuns(text)), expected);
          assert.equal(digitRuns(text), digitRuns(text)); // memoized within the scope
        });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('matchesNear equals the global scan when every match holds a trigger near its start', () => {
  const cases: {
    name: string;
    re: RegExp;
    triggers: string[];
    back: number;
    mayStart?: (text: string, q: number) => boolean;
    near?: (text: string, t: number) => boolean;
    alphabet: string[];
  }[] = [
    {
      // The trigger `-` is 2-4 characters in (a prefix of `ab`, `abc` or `abcd`).
      name: 'prefixed token, trigger inside the prefix',
      re: /(?<![a-z0-9-])ab(?:c|cd)?-[a-z0-9-]{2,8}(?![a-z0-9-])/g,
      triggers: ['-'],
      back: 4,
      mayStart: (text, q) => text[q] === 'a',
      alphabet: ['a', 'b', 'c', 'd', 'ab-', 'abc-', 'abcd-', '-', '1', 'x', ' ', '--'],
    },
    {
      // Not left-bounded: the global scan finds the leftmost start; two triggers, either may hold.
      name: 'keyword, separator and value, case-insensitive, two triggers and a near test',
      re: /(?:secret|token)["']?\s{0,3}[:=]\s{0,3}["']?(?<v>[a-z0-9]{4,10})(?![a-z0-9])/gi,
      triggers: [':', '='],
      back: 6 + 1 + 3,
      mayStart: (text, q) => /[stST]/.test(text[q] ?? ''),
      near: (text, t) => /[tTnN]/.test(text.slice(Math.max(0, t - 5), t)),
      alphabet: ['secret', 'SECRET', 'token', 'Token', 'my', '"', "'", ' ', '  ', ':', '=', 'ab12', 'x9', 'z', '\u00A0'],
    },
    {
      name: 'literal trigger of several characters, overlapping occurrences',
      re: /x{1,3}yy[0-9]{1,3}/g,
      triggers: ['yy'],
      back: 3,
      alphabet: ['x', 'y', 'yy', '1', '22', ' '],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const sticky = new RegExp(c.re.source, `${c.re.flags.replace('g', '')}y`);
      fc.assert(
        fc.property(textOf(c.alphabet), (text) => {
          const got = matchesNear(sticky, text, c.triggers, c.back, c.mayStart, c.near).map((m): [number, string] => [m.index, m[0]]);
          assert.deepEqual(got, globalScan(c.re, text));
        }),
        { numRuns: RUNS * 3 },
      );
    });
  }
});

describe('context-word tests equal lower-casing the window and searching it', () => {
  const windowText = textOf(['Card', 'CARD', 'card', 'ca', 'rd', 'ıp', 'İP', '\u0130', '\u212A', 'K', 'k', 'EY', 'ey', 'tel', 'TeL', 'id:', 'ID ', ' ', 'x', 'é', '😀', '\u00A0', 'v', 'Version', '@', '=', ':'], 30);
  it('contextTest(words) is before(text, start).includes(some word)', () => {
    const lists = [['card', 'credit', 'cc'], ['ip', 'key', 'tel'], ['id:', 'id ', 'po '], ['ca', 'card', 'rd', 'arc', 'd'], ['\u0131p', 'straße', 'Card'], ['', 'x']];
    fc.assert(
      fc.property(windowText, fc.nat(), fc.constantFrom(...lists), fc.constantFrom(4, 24, 48), (text, at, words, window) => {
        const start = at % (text.length + 1);
        const expected = words.some((w) => before(text, start, window).includes(w));
        assert.equal(contextTest(words, window)(text, start), expected);
        withSharedScans(text, () => assert.equal(contextTest(words, window)(text, start), expected));
      }),
      { numRuns: RUNS * 3 },
    );
  });
  it('contextRegexTest(re) is re.test(before(text, start))', () => {
    const re = /(?:\bv|\bver\.?|version|@|\bkey)\s*[:=]?\s*$/;
    fc.assert(
      fc.property(windowText, fc.nat(), (text, at) => {
        const start = at % (text.length + 1);
        assert.equal(contextRegexTest(re, 24)(text, start), re.test(before(text, start, 24)));
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('ipv6Valid (allocation-free scan) equals the split-based definition', () => {
  /** The definition: halves around `::`, their `:`-separated groups, 1-4 hex digits each but a dotted-quad last one. */
  const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
  const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
  function reference(s: string): boolean {
    const halves = s.split('::');
    if (halves.length > 2) return false;
    const parse = (part: string): string[] => (part === '' ? [] : part.split(':'));
    const groups = [...parse(halves[0] ?? ''), ...(halves.length === 2 ? parse(halves[1] ?? '') : [])];
    let count = 0;
    let digits = false;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] ?? '';
      if (i === groups.length - 1 && g.includes('.')) {
        if (!IPV4.test(g)) return false;
        count += 2;
        digits = true;
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return false;
      if (/\d/.test(g)) digits = true;
      count++;
    }
    if (halves.length === 2) return count <= 7 && groups.length >= 1 && digits && (groups.length >= 2 || s === '::1');
    return count === 8;
  }
  it('on strings of hex digits, colons and dots (and a few others)', () => {
    const part = fc.constantFrom(':', '::', ':::', '.', '0', '1', '8a2e', 'db8', 'ffff', 'FFFF', '12345', '192.168.1.1', '1.2.3', '256.1.1.1', 'g', ' ', '1');
    fc.assert(
      fc.property(fc.array(part, { maxLength: 14 }), (parts) => {
        const s = parts.join('');
        assert.equal(ipv6Valid(s), reference(s), s);
      }),
      { numRuns: RUNS * 10 },
    );
    for (const s of ['::1', '::', '1::', '::ffff:192.168.1.1', '2001:db8::8a2e:370:7334', '2001:0db8:0000:0000:0000:ff00:0042:8329', 'a::b', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', ':::1', '1:::2']) {
      assert.equal(ipv6Valid(s), reference(s), s);
    }
  });
});
