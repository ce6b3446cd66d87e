/**
 * THE LAW of the stream masker, property-tested: for any text and any chunking,
 * concat(push(chunk)) + end() === maskText(text, detect(text)) — with toy detectors (and a
 * detect that mirrors detectEntities' contract) and with the real built-in detectors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { BUILTIN_DETECTORS, detectEntities } from '../src/core/detection/index.ts';
import { PII_DETECTORS } from '../src/core/detection/pii.ts';
import type { Detection, Detector } from '../src/core/detection/types.ts';
import type { MaskOperator } from '../src/core/masking/operators.ts';
import { maskText } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import type { StreamingDetector } from '../src/core/masking/stream-masker.ts';
import { FORCED_REDACTION, StreamMasker, weightCut } from '../src/core/masking/stream-masker.ts';
import { StreamRestorer } from '../src/core/masking/stream-restorer.ts';

// ------------------------------------------------------------------ toy detectors

function regexDetector(id: string, type: string, re: RegExp, maxLength: number, extra: Partial<Detector> & { score?: (text: string, start: number) => number } = {}): Detector {
  return {
    id,
    type,
    maxLength,
    lookbehind: extra.lookbehind ?? 1,
    lookahead: extra.lookahead ?? 2,
    detect(text: string): Detection[] {
      const out: Detection[] = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) { re.lastIndex++; continue; }
        if (m[0].length > maxLength) continue;
        out.push({ type, start: m.index, end: m.index + m[0].length, confidence: extra.score?.(text, m.index) ?? 0.8, detector: id });
      }
      return out;
    },
  };
}

const luhn = (digits: string): boolean => {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let v = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) { v *= 2; if (v > 9) v -= 9; }
    sum += v;
  }
  return sum % 10 === 0;
};

const toyEmail = regexDetector('toy.email', 'EMAIL_ADDRESS', /(?<![A-Za-z0-9._+-])[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,20}@[a-z0-9-]{1,20}(?:\.[a-z]{2,6}){1,2}(?![A-Za-z0-9-]|\.[a-z])/g, 70);
const toyCard: Detector = {
  ...regexDetector('toy.card', 'CREDIT_CARD', /(?<!\d)\d{13,16}(?!\d)/g, 16),
  detect(text) {
    return regexDetector('toy.card', 'CREDIT_CARD', /(?<!\d)\d{13,16}(?!\d)/g, 16).detect(text).filter((d) => luhn(text.slice(d.start, d.end)));
  },
};
// Context words before the match raise the confidence (lookbehind 20).
const toySsn = regexDetector('toy.ssn', 'US_SSN', /(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])/g, 11, {
  lookbehind: 20,
  score: (text, start) => (text.slice(Math.max(0, start - 20), start).toLowerCase().includes('ssn') ? 0.95 : 0.5),
});
const TOYS = [toyEmail, toyCard, toySsn];

/** Mirrors detectEntities' contract (normalize → detect → map back → longer wins) with the real normalizer. */
function toyDetect(text: string, detectors: readonly Detector[]): Detection[] {
  return detectEntities(text, detectors);
}

const operatorFor = (d: Detection): MaskOperator =>
  d.type === 'EMAIL_ADDRESS' ? { kind: 'pseudonymize' } : d.confidence >= 0.9 ? { kind: 'redact' } : { kind: 'mask', keepLast: 2 };

// ------------------------------------------------------------------ generators

const FRAGMENTS = [
  'ann.lee@example.com', 'bo@x.io', 'x_y+z@sub.mail.org', 'a@b', '@', '.', '..', 'foo@bar.c', 'mail@',
  '4111111111111111', '4111111111111112', '5500005555555559', '4111 1111 1111 1111', '1234567890123',
  '123-45-6789', 'ssn ', 'SSN: ', '078-05-1120', '-', '+1 415 555 0100', '(415) 555-0100', '+44 20 7946 0958', '555',
  ' ', ' ', '\n', ', ', 'the ', 'answer ', 'call ', 'phone: ', 'write to ', 'and ', 'x', 'Z9', '7', '42', '0',
  'é', 'e\u0301', '日本語', '😀', 'ﬁ', 'Ａ１', '\u00A0', 'ß',
  '\u200B', '\u200D', '\uFEFF', '\u00AD', '\u2066', '\u0301', '«EMAIL_1»', '«',
  // Unicode tricks normalization folds: look-alikes, marks on every character, non-ASCII digits,
  // tag characters and variation selectors (matching drops them).
  '\u0430nn.l\u0435\u0435@\u0435x\u0430mpl\u0435.\u0441om', 'a\u0301n\u0301n\u0301@x\u0336.io', '٤١١١ ١١١١ ١١١١ ١١١١', '4\u03361\u03361\u03361\u0336',
  '١٢٣-٤٥-٦٧٨٩', '\u0336', '\u0410', '\u0441', '٣', '\u{E0041}', '\uFE01\uFE02', 'ж\u0301', '\u2010',
];
// Fragments joined by separators: glued chains of entities without any separator ("a@b.coma@b.com")
// break detector locality (a regex's scan phase then depends on the start of the chain) and are
// the documented exception to the law.
const SEPARATORS = [' ', '\n', ', ', ' \u200B', '\t', '; '];
const fragmentText = fc
  .array(fc.tuple(fc.constantFrom(...FRAGMENTS), fc.constantFrom(...SEPARATORS)), { maxLength: 40 })
  .map((a) => a.map(([f, sep]) => f + sep).join(''));
const anyText = fc.oneof(fragmentText, fragmentText, fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 30 }));
const wordsOf = (frags: readonly string[], max = 40, min = 0): fc.Arbitrary<string> =>
  fc.array(fc.tuple(fc.constantFrom(...frags), fc.constantFrom(...SEPARATORS)), { minLength: min, maxLength: max }).map((a) => a.map(([f, sep]) => f + sep).join(''));

/** Splits `text` at sorted random cut points (duplicates give empty chunks). */
function chunk(text: string, cuts: number[]): string[] {
  const points = cuts.map((c) => Math.floor(c * (text.length + 1))).sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(text.slice(prev, p));
    prev = p;
  }
  out.push(text.slice(prev));
  return out;
}
const cutsArb = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 30 });

function streamed(text: string, cuts: number[], detectors: readonly Detector[], detect?: typeof toyDetect, maxHoldback?: number): { out: string; vault: PseudonymVault; pieces: string[]; masker: StreamMasker } {
  const vault = new PseudonymVault();
  const masker = new StreamMasker({ detectors, operatorFor, vault, ...(detect ? { detect } : {}), ...(maxHoldback ? { maxHoldback } : {}) });
  const pieces = chunk(text, cuts).map((c) => masker.push(c));
  pieces.push(masker.end());
  return { out: pieces.join(''), vault, pieces, masker };
}

function whole(text: string, detectors: readonly Detector[], detect = toyDetect): { out: string; vault: PseudonymVault } {
  const vault = new PseudonymVault();
  return { out: maskText(text, detect(text, detectors), operatorFor, vault), vault };
}

// ------------------------------------------------------------------ the law

test('law (toy detectors): any chunking of any text masks exactly like the whole text', () => {
  fc.assert(
    fc.property(anyText, cutsArb, (text, cuts) => {
      const w = whole(text, TOYS);
      const s = streamed(text, cuts, TOYS, toyDetect);
      assert.equal(s.out, w.out);
      assert.deepEqual(s.vault.toJSON(), w.vault.toJSON());
    }),
    { numRuns: 4000 },
  );
});

test('law (toy detectors): one character per chunk, texts longer than the holdback', () => {
  // Fragments separated by a space or a newline. (Glued chains such as "a@b.coma@b.com" are the
  // known exception to locality — see the weak spots in the masking report.)
  const sep = fc.constantFrom(' ', '\n', ' \u200B');
  const words = fc.array(fc.tuple(fc.constantFrom(...FRAGMENTS), sep), { minLength: 40, maxLength: 120 }).map((a) => a.map(([f, s]) => f + s).join(''));
  fc.assert(
    fc.property(words, (text) => {
      const vault = new PseudonymVault();
      const masker = new StreamMasker({ detectors: TOYS, operatorFor, vault, detect: toyDetect });
      let out = '';
      for (const ch of text) out += masker.push(ch);
      out += masker.end();
      assert.equal(out, whole(text, TOYS).out);
    }),
    { numRuns: 300 },
  );
});

test('law (real built-in PII detectors and detectEntities): random texts × random chunkings', () => {
  fc.assert(
    fc.property(anyText, cutsArb, (text, cuts) => {
      assert.equal(streamed(text, cuts, PII_DETECTORS).out, whole(text, PII_DETECTORS, (t, d) => detectEntities(t, d)).out);
    }),
    { numRuns: 1500 },
  );
});

test('law (real PII detectors): long texts (beyond the 256-character holdback), random and one-character chunks', () => {
  const realDetect = (t: string, d: readonly Detector[]): Detection[] => detectEntities(t, d);
  fc.assert(
    fc.property(wordsOf(FRAGMENTS, 150, 80), cutsArb, fc.boolean(), (text, cuts, perChar) => {
      let out: string;
      if (perChar) {
        const m = new StreamMasker({ detectors: PII_DETECTORS, operatorFor, vault: new PseudonymVault() });
        out = '';
        for (const ch of text) out += m.push(ch);
        out += m.end();
      } else {
        out = streamed(text, cuts, PII_DETECTORS).out;
      }
      assert.equal(out, whole(text, PII_DETECTORS, realDetect).out);
    }),
    { numRuns: 150 },
  );
});

test('law (all built-in detectors incl. secrets)', () => {
  const secrets = ['AKIAIOSFODNN7EXAMPLE', 'ghp_', 'sk-', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc', 'postgres://u:p@db:5432/x', 'Bearer ', 'xoxb-', '-----BEGIN PRIVATE KEY-----', '-----END PRIVATE KEY-----', 'MIIB'];
  const text = wordsOf([...FRAGMENTS, ...secrets]);
  fc.assert(
    fc.property(text, cutsArb, (t, cuts) => {
      assert.equal(streamed(t, cuts, BUILTIN_DETECTORS).out, whole(t, BUILTIN_DETECTORS, (x, d) => detectEntities(x, d)).out);
    }),
    { numRuns: 500 },
  );
});

test('no character of a detected entity is ever emitted: every emitted piece is a prefix of the whole result', () => {
  // The redacted whole result contains no entity character; the pieces concatenate to it, so
  // each piece, when emitted, was already masked.
  const redact = (): MaskOperator => ({ kind: 'redact' });
  fc.assert(
    fc.property(fragmentText, cutsArb, (text, cuts) => {
      const masker = new StreamMasker({ detectors: TOYS, operatorFor: redact, detect: toyDetect });
      let sent = '';
      const expected = maskText(text, toyDetect(text, TOYS), redact);
      for (const c of chunk(text, cuts)) {
        sent += masker.push(c);
        assert.ok(expected.startsWith(sent));
      }
      sent += masker.end();
      assert.equal(sent, expected);
    }),
    { numRuns: 1000 },
  );
});

// ------------------------------------------------------------------ holdback and the cap

test('holdback is bounded by maxLength + lookahead (in visible characters) and releases plain text at once', () => {
  const masker = new StreamMasker({ detectors: TOYS, operatorFor, vault: new PseudonymVault(), detect: toyDetect });
  const words = 'lorem ipsum dolor sit amet '.repeat(40);
  let out = '';
  for (const w of words.split(/(?<= )/)) {
    out += masker.push(w);
    assert.ok(masker.heldBack <= Math.ceil(1.25 * (70 + 2)) + 6, `held ${masker.heldBack}`);
  }
  assert.ok(out.length >= words.length - 100);
  assert.equal(out + masker.end(), words);
  // a zero-width-stuffed email is still held whole and masked
  const stuffed = 'write to ' + 'ann.lee@example.com'.split('').join('\u200B') + ' now';
  const s = streamed(stuffed, [0.3, 0.5, 0.52, 0.9], TOYS, toyDetect);
  assert.equal(s.out, 'write to «EMAIL_1» now');
  assert.equal(s.vault.restore(s.out), stuffed);
});

test('weightCut counts invisible characters and combining marks as nothing, never splits surrogates', () => {
  assert.equal(weightCut('abcdef', 2), 4);
  assert.equal(weightCut('ab\u200Bc\u200Bd', 2), 3);
  assert.equal(weightCut('ae\u0301\u0301', 1), 1);
  assert.equal(weightCut('a😀b', 2), 1);
  assert.equal(weightCut('ab', 5), 0);
});

test('cap: a pending candidate longer than the cap is redacted (fail closed), no "@" of an email escapes', () => {
  // 5000 zero-width characters inside an email: the candidate outgrows a 256-unit cap.
  const padded = 'see ' + 'ann'.split('').join('\u200B'.repeat(2000)) + '@example.com' + ' done';
  const s = streamed(padded, [0.1, 0.2, 0.4, 0.6, 0.8, 0.99], TOYS, toyDetect, 256);
  assert.ok(s.masker.forcedRedactions > 0);
  assert.ok(s.out.includes(FORCED_REDACTION));
  assert.ok(!s.out.includes('@') && !s.out.includes('example'), 'no part of the email escapes');
  // Property: with a small cap, no email character ever escapes (emails are shorter than cap/2).
  const noAt = [...FRAGMENTS.filter((f) => !f.includes('@')), 'ann.lee@example.com', 'bo@x.io', 'x_y+z@sub.mail.org', '\u200B'.repeat(50)];
  const text = wordsOf(noAt, 60);
  fc.assert(
    fc.property(text, cutsArb, (t, cuts) => {
      const r = streamed(t, cuts, [toyEmail], toyDetect, 160);
      assert.ok(!r.out.includes('@'), 'an email character escaped');
    }),
    { numRuns: 1000 },
  );
});

test('a detector with a settledBefore hint holds back only the pending candidate', () => {
  // Email hint: settled up to the start of the last run of email characters (plus 2 lookahead, plus a lookbehind char).
  const hinted: StreamingDetector = {
    ...toyEmail,
    settledBefore(text: string): number {
      const m = /[A-Za-z0-9._+@-]*[^A-Za-z0-9._+@-]{0,2}$/.exec(text);
      return Math.max(0, (m?.index ?? 0) - 1);
    },
  };
  fc.assert(
    fc.property(fragmentText, cutsArb, (text, cuts) => {
      assert.equal(streamed(text, cuts, [hinted], toyDetect).out, whole(text, [hinted]).out);
    }),
    { numRuns: 1500 },
  );
  const masker = new StreamMasker({ detectors: [hinted], operatorFor, vault: new PseudonymVault(), detect: toyDetect });
  let out = '';
  for (const w of 'please write to ann.lee@example.com and then to the team today'.split(/(?<= )/)) out += masker.push(w);
  assert.ok(masker.heldBack <= 8, `held ${masker.heldBack}`);
  assert.equal(out + masker.end(), 'please write to «EMAIL_1» and then to the team today');
});

test('push after end throws; end twice returns nothing', () => {
  const m = new StreamMasker({ detectors: TOYS, operatorFor, vault: new PseudonymVault(), detect: toyDetect });
  assert.equal(m.push('a') + m.end(), 'a');
  assert.equal(m.end(), '');
  assert.throws(() => m.push('b'), /after end/);
});

// ------------------------------------------------------------------ restore law

test('restore law: placeholders split anywhere restore exactly like the whole text (plain and JSON)', () => {
  const vault = new PseudonymVault();
  vault.placeholderFor('EMAIL_ADDRESS', 'a"b\\@c.io');
  vault.placeholderFor('EMAIL_ADDRESS', 'z@y.io');
  vault.placeholderFor('PHONE_NUMBER', '+1 555 0100');
  const parts = ['«EMAIL_1»', '«email_2»', '«Phone_1»', '« EMAIL_1 »', '«EMAIL_3»', '«', '»', '\\u00abEMAIL_1\\u00bb', '\\u00ABphone_1\\u00BB', '\\', '\\u00', 'EMAIL_1', ' ', 'text ', '"', '\\"', '😀', '_1'];
  const text = fc.array(fc.constantFrom(...parts), { maxLength: 30 }).map((a) => a.join(''));
  fc.assert(
    fc.property(text, cutsArb, fc.boolean(), (t, cuts, json) => {
      const r = new StreamRestorer(vault, { json });
      const out = chunk(t, cuts).map((c) => r.push(c)).join('') + r.end();
      assert.equal(out, vault.restore(t, { json }));
    }),
    { numRuns: 4000 },
  );
});

test('pseudonymize → model answer → restore round trip through both stream transforms', () => {
  const noGuillemets = fc.array(fc.constantFrom(...FRAGMENTS.filter((f) => !f.includes('«'))), { maxLength: 40 }).map((a) => a.join(''));
  fc.assert(
    fc.property(noGuillemets, cutsArb, cutsArb, (text, cuts1, cuts2) => {
      const s = streamed(text, cuts1, TOYS, toyDetect);
      const r = new StreamRestorer(s.vault);
      const restored = chunk(s.out, cuts2).map((c) => r.push(c)).join('') + r.end();
      // Everything pseudonymized (the emails) comes back; the other operators stay masked.
      const emailsKept = maskText(text, toyDetect(text, TOYS).filter((d) => d.type !== 'EMAIL_ADDRESS'), operatorFor);
      assert.equal(restored, emailsKept);
    }),
    { numRuns: 500 },
  );
});

// ------------------------------------------------------------------ all built-in detectors, with their streaming hints

const R30 = 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0';
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","iat":1516239022}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEA7Vq3xkZ9b2Lr0pQmT8sYw1Nf4Hc6Jd5Ke2Gh7Uv9Xy0Az3Bq\n'.repeat(3)}-----END RSA PRIVATE KEY-----`;
const GH = `ghp_${R30}${base62Encode(crc32(R30), 6)}`;
const NPM = `npm_${R30}${base62Encode(crc32(R30), 6)}`;
const SECRETS = [
  GH, NPM, JWT, PEM, 'AKIAZ7Q3XK2MPLQW4NV5', 'glpat-Zq8Xk2Lm9Pw4Rt7Yv1Bn', 'xoxb-123456789012-1234567890123-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3',
  'sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg', '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', `sk-ant-api03-${R30.repeat(2)}AbcAA`,
  'AIzaSyZq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8', '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', 'SG.Zq8Xk2Lm9Pw4Rt7Yv1Bn5C.Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4R',
  'postgres://admin:s3cr3tP4ss@db.prod:5432/app', 'https://bob:hunter22@example.com/x', 'Authorization: Basic ZGVwbG95OlpxOFhrMkxtOVB3NA==',
  'Authorization: Bearer Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', `Bearer ${JWT}`, 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Xk2Lm9P',
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA', '-----END PRIVATE KEY-----', '-----BEGIN ', 'eyJhbGciOiJIUzI1NiJ9',
  'ghp_', 'sk-', 'xox', 'AKIA', 'SG.', 'Bearer ', 'postgres://', 'u:p@', 'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432',
  '192.168.10.42', '2001:db8::8a2e:370:7334', 'fe80::1', '460-89-9847', ' ext. 12', '4111 1111 1111 1111',
  // Issue 12: a token whose checksum fails (found on shape), a PyPI token, phone numbers the
  // number plan does not know (found as written: `+`, groups, a label).
  `ghp_${R30}${base62Encode((crc32(R30) ^ 1) >>> 0, 6)}`, `pypi-AgEIcHlwaS5vcmc${R30}${R30}`, 'pypi-', '+1 555 010 9999', '(555) 010-9999', 'tel. ', '0301234567', 'Mobile no.: ',
];
const ALL_FRAGMENTS = [...FRAGMENTS, ...SECRETS];
// Fragments glued without separators too (the hints must cope with any neighbours).
const gluedOrNot = fc
  .array(fc.tuple(fc.constantFrom(...ALL_FRAGMENTS), fc.constantFrom('', ...SEPARATORS)), { maxLength: 30 })
  .map((a) => a.map(([f, sep]) => f + sep).join(''));
const realDetect = (t: string, d: readonly Detector[]): Detection[] => detectEntities(t, d);

test('law (all built-in detectors with their hints): secrets, PEM blocks, JWTs, emails, phones — split anywhere', () => {
  fc.assert(
    fc.property(fc.oneof(wordsOf(ALL_FRAGMENTS, 30), gluedOrNot), cutsArb, (t, cuts) => {
      const s = streamed(t, cuts, BUILTIN_DETECTORS);
      assert.equal(s.out, whole(t, BUILTIN_DETECTORS, realDetect).out);
      assert.equal(s.masker.forcedRedactions, 0);
    }),
    { numRuns: 1500 },
  );
});

test('law (all built-in detectors): one character per chunk', () => {
  fc.assert(
    fc.property(fc.oneof(wordsOf(ALL_FRAGMENTS, 25), gluedOrNot), (t) => {
      const m = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor, vault: new PseudonymVault() });
      let out = '';
      for (const ch of t) out += m.push(ch);
      assert.equal(out + m.end(), whole(t, BUILTIN_DETECTORS, realDetect).out);
    }),
    { numRuns: 200 },
  );
});

test('no character of a detected entity is emitted early (all built-in detectors, hints on)', () => {
  const redact = (): MaskOperator => ({ kind: 'redact' });
  fc.assert(
    fc.property(fc.oneof(wordsOf(ALL_FRAGMENTS, 30), gluedOrNot), cutsArb, (t, cuts) => {
      const masker = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor: redact });
      const expected = maskText(t, detectEntities(t, BUILTIN_DETECTORS), redact);
      let sent = '';
      for (const c of chunk(t, cuts)) {
        sent += masker.push(c);
        assert.ok(expected.startsWith(sent), 'an emitted piece is not a prefix of the masked whole');
      }
      assert.equal(sent + masker.end(), expected);
    }),
    { numRuns: 800 },
  );
});

/** A realistic ~4000-character answer: prose with the odd email, phone, IP, key and code block. */
function realisticAnswer(seed: number): string {
  let x = seed || 1;
  const rnd = (): number => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const words = 'the of and to in is you that it for on are as with they at be this have from or one had by but not what all were we when your can said there use each which do how their if will up other about out many then them these so some would make like into time has look two more write see number no way could people than first been call who its now find long down day did get come made may part deploy service config token request'.split(' ');
  const extras = ['ann.lee@example.com', '+1 415 555 0100', '10.0.0.7', 'AKIAZ7Q3XK2MPLQW4NV5', `Bearer ${JWT}`, 'postgres://admin:s3cr3tP4ss@db.prod:5432/app', '`npm install`', '(see below)', 'v1.2.3', '2024', 'e.g.', 'https://example.com/docs'];
  let out = '';
  while (out.length < 4000) {
    const r = rnd();
    out += (r < 0.03 ? extras[Math.floor(rnd() * extras.length)] : words[Math.floor(rnd() * words.length)]) + (rnd() < 0.08 ? '.\n' : rnd() < 0.1 ? ', ' : ' ');
  }
  return out;
}

test('holdback with all built-in detectors: word-by-word answers are released almost at once', () => {
  const held: number[] = [];
  for (let a = 1; a <= 8; a++) {
    const answer = realisticAnswer(a * 7919);
    const m = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor, vault: new PseudonymVault() });
    let out = '';
    for (const delta of answer.split(/(?<=\s)/)) {
      out += m.push(delta);
      held.push(m.heldBack);
    }
    assert.equal(out + m.end(), whole(answer, BUILTIN_DETECTORS, realDetect).out);
  }
  held.sort((x, y) => x - y);
  const p = (q: number): number => held[Math.min(held.length - 1, Math.floor(q * held.length))]!;
  // Without the hints this is the JWT/PEM bound (thousands of characters).
  assert.ok(p(0.95) < 200, `holdback p95 ${p(0.95)}`);
  assert.ok(p(0.5) < 20, `holdback p50 ${p(0.5)}`);
  // Sub-word deltas (as LLMs stream them): still small.
  const answer = realisticAnswer(4242);
  const m = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor, vault: new PseudonymVault() });
  const sub: number[] = [];
  let out = '';
  for (let i = 0; i < answer.length; i += 3) {
    out += m.push(answer.slice(i, i + 3));
    sub.push(m.heldBack);
  }
  assert.equal(out + m.end(), whole(answer, BUILTIN_DETECTORS, realDetect).out);
  sub.sort((x, y) => x - y);
  assert.ok(sub[Math.floor(0.95 * sub.length)]! < 200, `3-char deltas: holdback p95 ${sub[Math.floor(0.95 * sub.length)]}`);
});

test('an open PEM block is held until its END marker, then released masked', () => {
  const m = new StreamMasker({ detectors: BUILTIN_DETECTORS, operatorFor: () => ({ kind: 'redact' }) });
  let out = m.push('Here is the key:\n');
  assert.equal(out, 'Here is the key:\n');
  for (const line of PEM.split(/(?<=\n)/)) {
    out += m.push(line);
    assert.ok(!out.includes('MIIE'), 'no key material before the block is complete');
  }
  out += m.push(' and that is all. ');
  assert.equal(out + m.end(), 'Here is the key:\n[PRIVATE_KEY] and that is all. ');
});
