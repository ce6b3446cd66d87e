/**
 * The streaming hint `settledBefore(text)` of every built-in detector, property-tested against
 * its contract: for any text t and any continuation s, the detections of t + s that start before
 * settledBefore(t) are exactly the detections of t that start before it. Plus `settledPrefix`
 * (all detectors through detectEntities, on normalized text) and table cases showing the hints
 * hold back only the pending candidate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { BUILTIN_DETECTORS, builtinDetector, createRegexDetector, detectEntities, normalizeForMatching, settledPrefix } from '../src/core/detection/index.ts';
import type { Detection, Detector } from '../src/core/detection/types.ts';

const R30 = 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0';
const checksummed = (prefix: string): string => `${prefix}_${R30}${base62Encode(crc32(R30), 6)}`;
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","iat":1516239022}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEA7Vq3xkZ9b2Lr0pQmT8sYw1Nf4Hc6Jd5Ke2Gh7Uv9Xy0Az3Bq\n'.repeat(3)}-----END RSA PRIVATE KEY-----`;

/** Whole entities (true positives of the built-in detectors) and look-alikes. */
const SECRET_FRAGMENTS = [
  checksummed('ghp'), checksummed('npm'), JWT, PEM, 'AKIAZ7Q3XK2MPLQW4NV5', 'glpat-Zq8Xk2Lm9Pw4Rt7Yv1Bn',
  'xoxb-123456789012-1234567890123-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', 'sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg',
  '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', `sk-ant-api03-${R30.repeat(2)}AbcAA`, 'AIzaSyZq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8',
  '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', 'SG.Zq8Xk2Lm9Pw4Rt7Yv1Bn5C.Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4R',
  'postgres://admin:s3cr3tP4ss@db.prod:5432/app', 'https://bob:hunter22@example.com/x', 'jdbc:mysql://u:pw9@h/db',
  'Authorization: Basic ZGVwbG95OlpxOFhrMkxtOVB3NA==', 'Authorization: Bearer Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', `Bearer ${JWT}`,
  'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Xk2Lm9P',
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA', '-----END PRIVATE KEY-----', '-----BEGIN ', '-----',
  'eyJhbGciOiJIUzI1NiJ9', 'ghp_', 'sk-', 'xox', 'AKIA', 'SG.', 'Bearer ', 'Basic ', 'Authorization: ', 'postgres://', '://', 'u:p@',
  `ghp_${R30}${base62Encode((crc32(R30) ^ 1) >>> 0, 6)}`, `pypi-AgEIcHlwaS5vcmc${R30}${R30}`, 'pypi-Ag',
];
const PII_FRAGMENTS = [
  'ann.lee@example.com', 'bo@x.io', 'x_y+z@sub.mail.org', 'a@b', '@', 'mail@', 'foo@bar.c',
  '+1 415 555 0100', '(212) 555-0143', '+44 20 7946 0958', 'phone: ', 'call ', ' ext. 12', 'x', 'ext', '555', '0100',
  '+1 555 010 9999', '(555) 010-9999', 'tel. ', '0301234567', 'Mobile no.: ', '1110000000',
  '4111 1111 1111 1111', '4111111111111111', '5500005555555559', '1234567890123', 'card ',
  'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'GB82', 'DE', 'IBAN ',
  '123-45-6789', '460-89-9847', 'ssn ', '078-05-1120', '192.168.10.42', '10.0.0.7', '2001:db8::8a2e:370:7334', 'fe80::1', '::', 'v1.2.3', 'ip ',
];
const FILLER = [' ', ' ', '\n', ', ', '. ', 'the ', 'and ', 'Q', 'A', 'Z9', '7', '0', '-', '_', '.', ':', '/', '=', '+', '"', 'é', 'e\u0301', '\u0301', '日本', '😀', 'ﬁ', 'Ａ１', '\u00A0', '\u200B', '\u0410', '\u0441', '٣', '\u0336', '\u0338', 'ж', '℃', '\u{E0041}', '\uFE01', '<'];
const ALL = [...SECRET_FRAGMENTS, ...PII_FRAGMENTS, ...FILLER];

/** A text from fragments, cut anywhere: [t, continuation]. */
const splitText = fc
  .tuple(fc.array(fc.constantFrom(...ALL), { maxLength: 24 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.array(fc.constantFrom(...ALL), { maxLength: 6 }))
  .map(([parts, at, more]) => {
    const text = parts.join('');
    const cut = Math.floor(at * text.length);
    return [text.slice(0, cut), text.slice(cut) + more.join('')] as const;
  });

const before = (ds: readonly Detection[], i: number): Detection[] => ds.filter((d) => d.start < i);

describe('settledBefore: the contract, for every built-in detector', () => {
  for (const detector of BUILTIN_DETECTORS) {
    it(`${detector.id}: detections of t + s starting before settledBefore(t) are those of t`, () => {
      assert.equal(typeof detector.settledBefore, 'function');
      fc.assert(
        fc.property(splitText, ([t, s]) => {
          const h = detector.settledBefore!(t);
          assert.ok(Number.isInteger(h) && h >= 0 && h <= t.length, `hint ${h} out of range`);
          assert.deepEqual(before(detector.detect(t + s), h), before(detector.detect(t), h));
        }),
        { numRuns: 1500 },
      );
    });
  }
});

describe('settledPrefix: all detectors through detectEntities (normalized text, original positions)', () => {
  it('detections of t + s starting before settledPrefix(t) are those of t', () => {
    fc.assert(
      fc.property(splitText, ([t, s]) => {
        const h = settledPrefix(t, BUILTIN_DETECTORS);
        assert.ok(h >= 0 && h <= t.length);
        assert.deepEqual(before(detectEntities(t + s, BUILTIN_DETECTORS), h), before(detectEntities(t, BUILTIN_DETECTORS), h));
      }),
      { numRuns: 3000 },
    );
  });

  it('a combining mark or invisible characters after the cut cannot change what was settled', () => {
    const ds = BUILTIN_DETECTORS;
    // `…x.com` + U+0301 makes the last letter «ḿ»-like: the email must not have been settled.
    for (const [t, s] of [['mail ann@x.com', '\u0301 now'], ['ip 10.0.0.7', '\u0338'], ['key sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3F', '\u200Bg']] as const) {
      const h = settledPrefix(t, ds);
      assert.deepEqual(before(detectEntities(t + s, ds), h), before(detectEntities(t, ds), h), JSON.stringify(t));
    }
  });

  it('normalization maps a text that needs no change exactly as the general path maps it', () => {
    // The shortcut for text normalization leaves as it is and the segment-by-segment path (forced
    // here by an invisible character at the end) must agree, or a detection's mapped span would
    // depend on other text. (Marks on letters that are not folded stay: 日 + U+0301.)
    const stable = fc.string({ unit: fc.constantFrom('a', 'é', 'e', '\u0301', '\u0338', '😀', '日', ' ', 'q', '\u{1D165}', '=', 'ж', '\u0306') }).filter((x) => normalizeForMatching(x).text === x);
    fc.assert(
      fc.property(stable, (x) => {
        const fast = normalizeForMatching(x);
        const general = normalizeForMatching(x + '\u200B');
        assert.equal(general.text, fast.text);
        for (let i = 0; i < x.length; i++) {
          assert.equal(fast.toOriginal(i), general.toOriginal(i), `start ${i}`);
          assert.equal(fast.toOriginalEnd(i + 1), general.toOriginalEnd(i + 1), `end ${i + 1}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a detector without the hint settles all but its last maxLength + lookahead characters', () => {
    const custom = createRegexDetector({ id: 'ticket', type: 'TICKET', pattern: 'TCK-[0-9]{6}', maxLength: 10 });
    assert.equal(typeof custom.settledBefore, 'undefined');
    assert.equal(settledPrefix('a'.repeat(30) + ' ', [custom]), 21);
    assert.equal(settledPrefix('short', [custom]), 0);
  });
});

describe('settledBefore: holds back only the pending candidate', () => {
  const hint = (type: string, text: string): number => {
    const d: Detector | undefined = builtinDetector(type);
    assert.ok(d !== undefined && typeof d.settledBefore === 'function');
    return d.settledBefore(text);
  };
  const cases: [type: string, text: string, pendingFrom: string | null][] = [
    // [type, text, the suffix held back (null = nothing)]
    ['PRIVATE_KEY', 'see below -----BEGIN RSA PRIVATE KEY-----\nMIIEow', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow'],
    ['PRIVATE_KEY', `${PEM}\nthat was it `, null],
    ['PRIVATE_KEY', 'a key: -----BEG', '-----BEG'],
    ['PRIVATE_KEY', 'a key: -----BEGIN OPENSSH PRIV', '-----BEGIN OPENSSH PRIV'],
    ['PRIVATE_KEY', 'a list - ', null],
    ['JWT', `token ${JWT.slice(0, 60)}`, JWT.slice(0, 60)],
    ['JWT', `token ${JWT} done`, null],
    ['JWT', 'say e', 'e'],
    ['JWT', 'x.eyJhbG', 'eyJhbG'],
    ['GITHUB_TOKEN', 'use gh', 'gh'],
    ['GITHUB_TOKEN', 'use ghost ', null],
    ['GITHUB_TOKEN', 'use ghost', null],
    ['AWS_ACCESS_KEY', 'key AKIAZ7Q3', 'AKIAZ7Q3'],
    ['OPENAI_KEY', 'key s', 's'],
    ['OPENAI_KEY', 'key skip', null],
    ['BEARER_TOKEN', 'Authorization: Bearer Zq8Xk2Lm', 'Zq8Xk2Lm'],
    ['BEARER_TOKEN', 'Authorization: Bear', null],
    ['BEARER_TOKEN', 'Bearer Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3 ok', null],
    ['BASIC_AUTH_CREDENTIALS', 'Authorization: Basic ZGVw', 'ZGVw'],
    ['AWS_SECRET_KEY', 'aws_secret_access_key = wJalrX', 'wJalrX'],
    ['DATABASE_URL_CREDENTIALS', 'url postgres://admin:s3c', 'postgres://admin:s3c'],
    ['DATABASE_URL_CREDENTIALS', 'url postgres://admin:s3cr3t@db done ', null],
    ['EMAIL_ADDRESS', 'write to ann.lee@exa', 'ann.lee@exa'],
    ['EMAIL_ADDRESS', 'write to ann.lee@example.com ', null],
    ['EMAIL_ADDRESS', 'write to ann.lee@example.com.', 'ann.lee@example.com.'],
    ['PHONE_NUMBER', 'call +1 415 555', '+1 415 555'],
    ['PHONE_NUMBER', 'call (212) 555-0143 ext', '(212) 555-0143 ext'],
    ['PHONE_NUMBER', 'call (212) 555-0143, ok', null],
    ['CREDIT_CARD', 'card 4111 1111', '4111 1111'],
    ['IBAN_CODE', 'iban DE89 3704 00', 'DE89 3704 00'],
    ['IBAN_CODE', 'hello world and more', null],
    ['US_SSN', 'ssn 123-45', '123-45'],
    ['IP_ADDRESS', 'ip 10.0.0', '10.0.0'],
    ['IP_ADDRESS', 'ip fe80::', 'fe80::'],
    ['IP_ADDRESS', 'a deadbeef7', null],
  ];
  for (const [type, text, pending] of cases) {
    it(`${type}: ${JSON.stringify(text).slice(0, 50)}`, () => {
      assert.equal(hint(type, text), pending === null ? text.length : text.length - pending.length);
    });
  }

  it('word-by-word prose with all built-in detectors: nothing held after a word and its space', () => {
    const text = 'Sure, here is the summary you asked for: the migration finished and the team can proceed. ';
    for (let i = 0; i < text.length; i++) {
      if (text[i] !== ' ') continue;
      const t = text.slice(0, i + 1);
      assert.equal(settledPrefix(t, BUILTIN_DETECTORS), t.length, JSON.stringify(t));
    }
  });
});
