/**
 * Issue 12: secret detectors decide on SHAPE (prefix, length, alphabet), a checksum only raises
 * the confidence; formatted phone numbers are found even where the number plan does not know
 * them; the spaced-token finder behind the policy's spaced view. Tokens are built at run time: no
 * literal secret in the repository.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base62Crc32Valid, base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { BUILTIN_DETECTORS, builtinDetector, detectEntities, TOKEN_SHAPES } from '../src/core/detection/index.ts';
import { findSpacedCandidates, gapEnd } from '../src/core/detection/spaced-tokens.ts';
import { maskText } from '../src/core/masking/operators.ts';
import { StreamMasker } from '../src/core/masking/stream-masker.ts';
import { seededRandom } from './support/seeded-random.ts';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const R30 = 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0';
const checksummed = (prefix: string, random: string): string => `${prefix}_${random}${base62Encode(crc32(random), 6)}`;
/** The token with the character at `at` (after the prefix's `_`) replaced: the CRC-32 no longer holds. */
function broken(token: string, at: number): string {
  const i = token.indexOf('_') + 1 + at;
  const c = token[i]!;
  const other = ALNUM[(ALNUM.indexOf(c) + 7) % ALNUM.length]!;
  return token.slice(0, i) + other + token.slice(i + 1);
}
const found = (text: string, type: string, min?: number) =>
  detectEntities(text, BUILTIN_DETECTORS, min === undefined ? undefined : { minConfidence: min }).filter((d) => d.type === type);

describe('GitHub classic and npm tokens: the shape decides, the CRC-32 raises the confidence', () => {
  const cases: [string, string][] = [
    ['GITHUB_TOKEN', 'ghp'], ['GITHUB_TOKEN', 'gho'], ['GITHUB_TOKEN', 'ghu'], ['GITHUB_TOKEN', 'ghs'], ['GITHUB_TOKEN', 'ghr'], ['NPM_TOKEN', 'npm'],
  ];
  for (const [type, prefix] of cases) {
    const good = checksummed(prefix, R30);
    it(`${prefix}_: checksummed at 0.99; one character changed (random part or checksum) at 0.75, same span`, () => {
      assert.ok(base62Crc32Valid(good.slice(4)));
      const text = `token ${good} here`;
      const [d] = found(text, type);
      assert.ok(d);
      assert.deepEqual([text.slice(d.start, d.end), d.confidence], [good, 0.99]);
      for (const at of [0, 7, 15, 29, 30, 33, 35]) {
        const bad = broken(good, at);
        assert.ok(!base62Crc32Valid(bad.slice(4)), 'the change breaks the checksum');
        const t = `token ${bad} here`;
        const [b] = found(t, type);
        assert.ok(b, `changed at ${at}: not found`);
        assert.deepEqual([t.slice(b.start, b.end), b.confidence], [bad, 0.75]);
        // min_confidence 0.9 asks for checksummed tokens only.
        assert.equal(found(t, type, 0.9).length, 0);
        assert.equal(found(text, type, 0.9).length, 1);
      }
    });
    it(`${prefix}_: the shape must be exact (length, alphabet, boundaries, prefix)`, () => {
      const bad = broken(good, 3);
      for (const token of [good, bad]) {
        for (const text of [
          `x ${token.slice(0, -1)} y`, // 35 characters
          `x ${token}Q y`, // 37
          `x ${token.slice(0, 10)}-${token.slice(11)} y`, // a character outside base62
          `x a${token} y`, // glued on the left
          `x ${token}_1 y`, // glued on the right
          `x ${token.replace(/^(gh|np)./, '$1x')} y`, // another prefix
        ]) {
          assert.deepEqual(found(text, type), [], text.replace(token.slice(4, 30), '…'));
        }
      }
    });
  }

  it('any generated body of the shape is found (seeded: 500 random bodies, checksum wrong or right)', () => {
    const rnd = seededRandom(1212);
    for (let k = 0; k < 500; k++) {
      let random = '';
      for (let i = 0; i < 30; i++) random += ALNUM[Math.floor(rnd() * ALNUM.length)];
      const good = checksummed(k % 2 ? 'ghp' : 'npm', random);
      const bad = broken(good, Math.floor(rnd() * 36));
      for (const [token, confidence] of [[good, 0.99], [bad, 0.75]] as const) {
        const d = detectEntities(`v=${token};`, BUILTIN_DETECTORS);
        assert.deepEqual(d.map((x) => [x.start, x.end, x.confidence]), [[2, 42, confidence]], token.slice(0, 8));
      }
    }
  });

  it('placeholders of the shape are not secrets', () => {
    for (const body of [
      'x'.repeat(36), 'X'.repeat(36), '0'.repeat(36), '1234567890abcdefghijklmnopqrstuvwxyz', 'abcdefghijklmnopqrstuvwxyz0123456789',
      'YourGitHubTokenHere00000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1', 'EXAMPLEexampleEXAMPLEexampleEXAMPLE1',
    ]) {
      for (const prefix of ['ghp', 'npm']) assert.deepEqual(detectEntities(`token ${prefix}_${body}`, BUILTIN_DETECTORS), [], `${prefix}_${body}`);
    }
  });
});

describe('the other prefixed tokens: shape only, each at its documented level', () => {
  const R = R30;
  const TOKENS: [string, string, number][] = [
    ['AWS_ACCESS_KEY', ['AK', 'IA', 'Z7Q3XK2MPLQW4NV5'].join(''), 0.95],
    ['GITLAB_TOKEN', ['gl', 'pat-', R.slice(0, 20)].join(''), 0.95],
    ['SLACK_TOKEN', ['xo', 'xb-123456789012-1234567890123-', R.slice(0, 24)].join(''), 0.95],
    ['STRIPE_KEY', ['sk', '_live_', R].join(''), 0.97],
    ['STRIPE_KEY', ['sk', '_test_', R].join(''), 0.8],
    ['ANTHROPIC_KEY', ['sk-', 'ant-api03-', R, R, R, 'AbcAA'].join(''), 0.99],
    ['OPENAI_KEY', ['sk-', 'proj-', R, R].join(''), 0.95],
    ['OPENAI_KEY', ['sk-', R.slice(0, 20), 'T3Blbk', 'FJ', R.slice(0, 20)].join(''), 0.99],
    ['OPENAI_KEY', ['sk-', R, R.slice(0, 18)].join(''), 0.8],
    ['GOOGLE_API_KEY', ['AI', 'za', 'Sy', R, 'abc'].join(''), 0.95],
    ['PYPI_TOKEN', ['py', 'pi-', 'AgEIcHlwaS5vcmc', R, R, R].join(''), 0.97],
    ['PYPI_TOKEN', ['py', 'pi-', 'AgENdGVzdC5weXBpLm9yZw', R, R].join(''), 0.97],
    ['HUGGINGFACE_TOKEN', ['hf', '_', 'ZqXkLmPwRtYvBnCdFgHjZqXkLmPwRtYvBn'].join(''), 0.9],
    ['SENDGRID_KEY', ['SG', '.', R.slice(0, 22), '.', R, R.slice(0, 13)].join(''), 0.97],
  ];
  for (const [type, token, confidence] of TOKENS) {
    it(`${type} ${token.slice(0, 8)}…: found whole at ${confidence}`, () => {
      const text = `key: "${token}",`;
      const d = detectEntities(text, BUILTIN_DETECTORS);
      assert.deepEqual(d.map((x) => [x.type, text.slice(x.start, x.end), x.confidence]), [[type, token, confidence]]);
    });
  }
  it('placeholders and look-alikes are not reported', () => {
    for (const text of [
      ['AK', 'IA', 'X'.repeat(16)].join(''),
      ['AK', 'IA', 'IOSFODNN7EXAMPLE'].join(''),
      ['py', 'pi-', 'AgEIcHlwaS5vcmc', 'short'].join(''), // too short a macaroon
      ['py', 'pi-', 'AgEIcHlwaS5vcmd', R30, R30].join(''), // not the pypi.org location
      ['py', 'pi-', 'AgEIcHlwaS5vcmc', 'EXAMPLE', R30, R30].join(''),
      ['sk-', 'ant-api03-', 'x'.repeat(40)].join(''),
    ]) {
      assert.deepEqual(detectEntities(`key ${text} end`, BUILTIN_DETECTORS), [], text.slice(0, 12));
    }
  });
});

describe('TOKEN_SHAPES describe the detectors (the spaced view relies on them)', () => {
  /** The shortest token of each type the detector reports, and its prefix. */
  const SHORTEST: Record<string, string> = {
    AWS_ACCESS_KEY: ['AK', 'IA', 'Z7Q3XK2MPLQW4NV5'].join(''),
    GITHUB_TOKEN: checksummed('ghp', R30),
    GITLAB_TOKEN: ['gl', 'dt-', R30.slice(0, 20)].join(''),
    SLACK_TOKEN: ['xo', 'xb-', '123456-', 'abcdEFGH'].join(''),
    STRIPE_KEY: ['sk', '_live_', R30.slice(0, 20)].join(''),
    ANTHROPIC_KEY: ['sk-', 'ant-oat01-', R30, R30.slice(0, 2)].join(''),
    OPENAI_KEY: ['sk-', 'proj-', R30, R30.slice(0, 10)].join(''),
    GOOGLE_API_KEY: ['AI', 'za', R30, R30.slice(0, 5)].join(''),
    NPM_TOKEN: checksummed('npm', R30),
    PYPI_TOKEN: ['py', 'pi-', 'AgEIcHlwaS5vcmc', R30, R30.slice(0, 20)].join(''),
    HUGGINGFACE_TOKEN: ['hf', '_', 'ZqXkLmPwRtYvBnCdFgHjZqXkLmPwRtYvBn'].join(''),
    SENDGRID_KEY: ['SG', '.', R30.slice(0, 22), '.', R30, R30.slice(0, 13)].join(''),
  };
  it('one shape per prefixed token type, within its detector, with its shortest token', () => {
    assert.deepEqual(TOKEN_SHAPES.map((s) => s.type).sort(), Object.keys(SHORTEST).sort());
    for (const shape of TOKEN_SHAPES) {
      const detector = builtinDetector(shape.type);
      assert.ok(detector, shape.type);
      assert.ok(shape.minLength <= shape.maxLength && shape.maxLength <= detector.maxLength, shape.type);
      const token = SHORTEST[shape.type]!;
      assert.ok(shape.prefixes.some((p) => token.startsWith(p)), `${shape.type}: prefix`);
      assert.equal(token.length, shape.minLength, `${shape.type}: the shortest token is minLength long`);
      const hit = detector.detect(` ${token} `);
      assert.deepEqual(hit.map((d) => [d.start, d.end]), [[1, 1 + token.length]], `${shape.type}: found`);
      assert.deepEqual(detector.detect(` ${token.slice(0, -1)} `), [], `${shape.type}: one shorter is not`);
    }
  });
});

describe('phone numbers written as phone numbers are found where the number plan does not know them', () => {
  const phones = (text: string) => found(text, 'PHONE_NUMBER').map((d) => [text.slice(d.start, d.end), d.confidence]);
  const POSITIVE: [string, string, number][] = [
    // [text, the number, confidence]
    ['call +1 555 010 9999 now', '+1 555 010 9999', 0.9],
    ['at +1 555 010 9999 now', '+1 555 010 9999', 0.65],
    ['at +1 (555) 010-9999 now', '+1 (555) 010-9999', 0.65],
    ['at +1-984-182-0190 now', '+1-984-182-0190', 0.65],
    ['office +44 20 7946 0000', '+44 20 7946 0000', 0.75],
    ['Desk: +447700 921 916', '+447700 921 916', 0.65],
    ['the value (555) 010-9999 is', '(555) 010-9999', 0.6],
    ['phone: 555-010-9999', '555-010-9999', 0.85],
    ['tel. 0301234567', '0301234567', 0.85],
    ['Mobile no.: 1110000000', '1110000000', 0.75],
    ['fax #: 555 010 9999', '555 010 9999', 0.85],
    ['text me at 1110000000', '1110000000', 0.75],
    ['Mobile no.: 5550109999', '5550109999', 0.85], // valid in one of the regions: the plan's confidence
  ];
  for (const [text, number, confidence] of POSITIVE) {
    it(`${JSON.stringify(text)} → ${number}`, () => assert.deepEqual(phones(text), [[number, confidence]]));
  }
  const NEGATIVE = [
    'ref 5550109999', // a bare digit run keeps today's rule: a valid number only
    '5550109999',
    'ticket 555-010-9999 closed', // a not-a-phone word nearby
    'room 224 4966 and 17151 2450',
    'hotel 1234567 stars', // `tel` inside a word is not a label
    'build 2024-01-15 and 10.1.2.3 and 460-89-9847',
    'x +12345678 y', // no country calling code
    'ref 1110000000', // unassigned, bare, no label
    'phone: 000-000-0000', // one repeated digit: a placeholder
  ];
  for (const text of NEGATIVE) {
    it(`not ${JSON.stringify(text)}`, () => assert.deepEqual(phones(text), []));
  }
  it('are masked in a streamed answer however it is chunked, as in the whole answer', () => {
    const answer = `Sure. Call +1 555 010 9999 or (555) 010-9999; fax: 1110000000. The old token was ${broken(checksummed('ghp', R30), 5)}.`;
    const redact = () => ({ kind: 'redact' as const });
    const whole = maskText(answer, detectEntities(answer, BUILTIN_DETECTORS), redact);
    assert.equal(whole, 'Sure. Call [PHONE] or [PHONE]; fax: [PHONE]. The old token was [GITHUB_TOKEN].');
    for (const size of [1, 2, 3, 5, 7, 16]) {
      const masker = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor: redact });
      let out = '';
      for (let i = 0; i < answer.length; i += size) out += masker.push(answer.slice(i, i + size));
      out += masker.end();
      assert.equal(out, whole, `chunks of ${size}`);
    }
  });

  it('a number the plan knows keeps its higher confidence', () => {
    assert.deepEqual(phones('office +44 20 7946 0958'), [['+44 20 7946 0958', 0.75]]);
    assert.deepEqual(phones('call (212) 555-0188 tomorrow'), [['(212) 555-0188', 0.85]]);
  });
});

describe('spaced-token candidates', () => {
  const targets = { shapes: TOKEN_SHAPES, cards: true };
  const joined = (text: string): string[] =>
    findSpacedCandidates(text, targets, { chars: 1e6, exhausted: false }).map((pieces) => pieces.map(([a, b]) => text.slice(a, b)).join('|'));
  const AWS = ['AK', 'IA', 'Z7Q3XK2MPLQW4NV5'].join('');

  it('a gap is one space or tab, or one line break with indentation, real or JSON-escaped', () => {
    const cases: [string, number][] = [
      ['a b', 2], ['a\tb', 2], ['a\nb', 2], ['a \n  b', 5], ['a\r\nb', 3], ['a\\nb', 3], ['a\\r\\nb', 5], ['a\\tb', 3],
      ['a\u00a0b', 2], ['a\u3000b', 2], ['a\u2028b', 2], ['a \u2029 b', 4],
      ['a  b', -1], ['a\n\nb', -1], ['a\\n\\nb', -1], ['a ', -1], ['ab', -1], ['a\\\\b', -1], ['a\u2028\nb', -1],
    ];
    for (const [text, end] of cases) assert.equal(gapEnd(text, 1), end, JSON.stringify(text));
  });

  it('cut at the boundaries inside a run, from a prefix, spaced regularly', () => {
    assert.deepEqual(joined(`key ${[...AWS].join(' ')} ok`), [[...AWS].join('|')]);
    assert.deepEqual(joined(`key="${AWS.slice(0, 8)}\n${AWS.slice(8)}";`), [`${AWS.slice(0, 8)}|${AWS.slice(8)}`]);
    assert.deepEqual(joined(`use ${AWS.match(/.{4}/g)!.join(' ')} now`), [AWS.match(/.{4}/g)!.join('|')]);
    // Irregular pieces (glued prose) are not a candidate; nor is a token without a gap.
    assert.deepEqual(joined(`${AWS.slice(0, 4)} KEYS ARE ROTATED EVERY DAY`), []);
    assert.deepEqual(joined(`plain ${AWS} token`), []);
    // A prefix inside a word does not start one.
    assert.deepEqual(joined(`xx${AWS.slice(0, 8)} ${AWS.slice(8)}`), []);
  });

  it('cards: whole runs of digit groups over lines, never a window of a longer list', () => {
    assert.deepEqual(joined('card 4111\n1111\n1111\n1111.'), ['4111|1111|1111|1111']);
    assert.deepEqual(joined('{"n":"4111\\n1111\\n1111\\n1111"}'), ['4111|1111|1111|1111']);
    assert.deepEqual(joined('4111\n1111\n1111\n1111\n1111'), []); // 20 digits: a list
    assert.deepEqual(joined('4111 1111 1111 1111'), []); // one line: the card detector reads it as it is
    assert.deepEqual(joined('41\n1111111\n1\n111111'), []); // irregular groups
  });

  it('charges every candidate to the budget and says when it ran out', () => {
    const text = `k ${[...AWS].join(' ')} ok`;
    const budget = { chars: 10, exhausted: false };
    assert.deepEqual(findSpacedCandidates(text, targets, budget), []);
    assert.equal(budget.exhausted, true);
    const enough = { chars: 100, exhausted: false };
    assert.equal(findSpacedCandidates(text, targets, enough).length, 1);
    assert.deepEqual([enough.chars, enough.exhausted], [80, false]);
  });
});
