/**
 * Differential property test: the optimized detection (src/core/detection) must give EXACTLY the
 * results of the frozen pre-optimization copy (test/support/detection-frozen, commit a1e3bc1) —
 * normalization (text and both position maps at every index), every built-in detector's detect()
 * and settledBefore(), detectEntities and detectStreaming — on thousands of random mixed texts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as now from '../src/core/detection/index.ts';
import * as old from './support/detection-frozen/index.ts';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';

const gh = (r: string): string => `ghp_${r}${base62Encode(crc32(r), 6)}`;
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890"}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;

/** Fragments: entities, near-misses, separators, prose, non-ASCII, invisible and fullwidth characters. */
const FRAGMENTS = [
  // emails and look-alikes
  'jane.doe@example.com', 'ops+alerts@corp.example.co.uk', 'icon@2x.png', 'git@github.com:org/repo', 'a@b', '@', 'x@y.z', 'user@host.', '.me@', 'mail ',
  // phones
  '+1 415 555 0100', '(212) 555-0143', '+44 20 7946 0958', '+49 30 901820', '030 901820', '555-0100', '212.555.0143', ' ext. 12', ' x7', 'tel: ', 'phone ', 'order ', '0049 30 901820',
  // cards
  '4111 1111 1111 1111', '5500005555555559', '4012888888881881', '378282246310005', '5555-5555-5555-4444', '4111-1111 1111-1111', '1234567812345678', 'card ',
  // IBANs
  'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'gb82west12345698765432', 'DE89370400440532013001', 'FR14 2004 1010 0505 0001 3M02 606', 'iban ',
  // SSNs
  '460-89-9847', '460 89 9847', '460899847', '078-05-1120', '000-12-3456', 'ssn ',
  // IPs
  '192.168.10.42', '10.0.0.7', '256.1.1.1', '1.2.3.4.5', '2001:db8::8a2e:370:7334', '::1', 'fe80::1%eth0', 'v1.2.3.4', 'version 10.0.19041.1', '12:30:45', 'a::b',
  // secrets
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7Vq3xkZ9b2Lr0pQmT8sYw1Nf4Hc6Jd5Ke2Gh7Uv9Xy0Az3Bq\n-----END RSA PRIVATE KEY-----',
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7', '-----BEGIN ', '-----END PRIVATE KEY-----',
  'AKIAZ7Q3XK2MPLQW4NV5', 'AKIAIOSFODNN7EXAMPLE', 'aws_secret_access_key = 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',
  gh('Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0'), 'ghp_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0aaaaaa', `npm_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0${base62Encode(crc32('Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0'), 6)}`,
  'glpat-Zq8Xk2Lm9Pw4Rt7Yv1Bn', 'xoxb-123456789012-1234567890123-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', 'sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg',
  'sk-proj-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4Rt7Yv1T3BlbkFJZq8Xk2Lm9Pw4Rt7Yv1Bn5', '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',
  `sk-ant-api03-${'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0'.repeat(2)}AbcAA`, 'AIzaSyZq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8', JWT, 'eyJhbGciOi', 'eyJ',
  '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', 'SG.Zq8Xk2Lm9Pw4Rt7Yv1Bn5C.Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3',
  'postgres://admin:S3cr3tPw@db.internal:5432/app', 'https://bob:hunter2x@example.com/x', 'redis://:${REDIS_PASS}@cache', '://', 'http://',
  'Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Authorization: Bearer Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', 'bearer abcdefghijklmnopqrstu', 'Bearer ',
  // prose and separators
  'the', 'of', 'and', 'number', 'call', 'contact', ' ', ' ', ' ', '\n', '.\n', ', ', '-', '.', ':', '/', '(', ')', '+', '_', '=', '"', "'", '0', '7', '12', '2024-01-15', '3.14',
  // non-ASCII, combining marks, surrogates, invisible, fullwidth
  'café', 'naïve', 'Müller', '日本語', 'Привет', '😀', 'e\u0301', '\u0301', '\u0308', 'ﬁle', 'ﬃ', '①', '²', 'Å', 'Ω', '\u1100\u1161', '\u1161', '가',
  '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', '\u00AD', '\u202E', '\uFE0F', '\u034F', '\u{E0041}', '\u{E0100}', '\u3164',
  '\uFF10', '\uFF11\uFF12\uFF13', '\uFF14\uFF11\uFF11\uFF11 \uFF11\uFF11\uFF11\uFF11 \uFF11\uFF11\uFF11\uFF11 \uFF11\uFF11\uFF11\uFF11', '\uFF20', '\u00A0', '\u3000', '\u2024', '\uFE52',
  '\uD800', '\uDC00', // lone surrogates
];

const fragment = fc.constantFrom(...FRAGMENTS);
/** Fragments, or one split by a random invisible/format character (the bypass shape). */
const piece = fc.oneof(
  { weight: 8, arbitrary: fragment },
  { weight: 1, arbitrary: fc.tuple(fragment, fc.nat(), fc.constantFrom('\u200B', '\u00AD', '\u0301', '\uFF0E')).map(([f, k, z]) => f.slice(0, k % (f.length + 1)) + z + f.slice(k % (f.length + 1))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);
const mixedText = fc.array(piece, { maxLength: 40 }).map((a) => a.join(''));

function sameNormalization(text: string): void {
  const a = now.normalizeForMatching(text);
  const b = old.normalizeForMatching(text);
  assert.equal(a.text, b.text);
  for (let i = -1; i <= b.text.length + 1; i++) {
    assert.equal(a.toOriginal(i), b.toOriginal(i), `toOriginal(${i})`);
    assert.equal(a.toOriginalEnd(i), b.toOriginalEnd(i), `toOriginalEnd(${i})`);
  }
}

describe('optimized detection = frozen pre-optimization detection', () => {
  it('normalizeForMatching: same text and same position maps at every index', () => {
    fc.assert(fc.property(mixedText, sameNormalization), { numRuns: 4000 });
    for (const t of ['', 'a', '\u200B', 'a\u200B', '\u200Ba', '\u0301a', 'e\u200B\u0301', '\u1100\u1161', 'x\u1100\u1161y', '😀\u0301', '\uD800\u0301', 'ﬁ\u200B'])
      sameNormalization(t);
  });

  it('every built-in detector: same detect() and settledBefore() on raw and normalized texts', () => {
    assert.deepEqual(now.BUILTIN_DETECTORS.map((d) => d.id), old.BUILTIN_DETECTORS.map((d) => d.id));
    fc.assert(
      fc.property(mixedText, (raw) => {
        for (const text of [raw, old.normalizeForMatching(raw).text]) {
          now.BUILTIN_DETECTORS.forEach((d, k) => {
            const o = old.BUILTIN_DETECTORS[k]!;
            assert.deepEqual(d.detect(text), o.detect(text), d.id);
            assert.equal(d.settledBefore?.(text), o.settledBefore?.(text), `${d.id} settledBefore`);
          });
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('detectEntities and detectStreaming: exactly equal results (all built-in, PII only, minConfidence)', () => {
    const pii = now.BUILTIN_DETECTORS.filter((d) => !d.id.includes('key') && !d.id.includes('token') && !d.id.includes('credential') && !d.id.includes('auth') && d.id !== 'builtin.jwt');
    const piiOld = old.BUILTIN_DETECTORS.filter((d) => pii.some((p) => p.id === d.id));
    fc.assert(
      fc.property(mixedText, fc.constantFrom(0, 0.7, 0.9), (text, minConfidence) => {
        assert.deepEqual(now.detectEntities(text, now.BUILTIN_DETECTORS), old.detectEntities(text, old.BUILTIN_DETECTORS));
        assert.deepEqual(now.detectEntities(text, pii, { minConfidence }), old.detectEntities(text, piiOld, { minConfidence }));
        assert.deepEqual(now.detectStreaming(text, now.BUILTIN_DETECTORS), old.detectStreaming(text, old.BUILTIN_DETECTORS));
        // Every prefix a stream masker may ask about.
        for (const cut of [1, 7, text.length >> 1, text.length - 1]) {
          if (cut <= 0 || cut >= text.length) continue;
          const p = text.slice(0, cut);
          assert.deepEqual(now.detectStreaming(p, pii, { minConfidence }), old.detectStreaming(p, piiOld, { minConfidence }));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('long texts (many entities, invisible characters throughout): same detections', () => {
    fc.assert(
      fc.property(fc.array(piece, { minLength: 200, maxLength: 800 }).map((a) => a.join(' ')), (text) => {
        assert.deepEqual(now.detectEntities(text, now.BUILTIN_DETECTORS), old.detectEntities(text, old.BUILTIN_DETECTORS));
        sameNormalization(text);
      }),
      { numRuns: 150 },
    );
  });
});
