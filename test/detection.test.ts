import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BUILTIN_DETECTORS,
  builtinDetector,
  detectEntities,
  maxEntityLength,
  normalizeForMatching,
} from '../src/core/detection/index.ts';
import type { Detector } from '../src/core/detection/index.ts';
import { base62Encode, crc32, ibanMod97Valid, luhnValid } from '../src/core/detection/checksums.ts';

/** A GitHub/npm-format token with a valid CRC-32 checksum (synthetic). */
function checksummed(prefix: string, random: string): string {
  assert.equal(random.length, 30);
  return `${prefix}_${random}${base62Encode(crc32(random), 6)}`;
}
const R30 = 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0';
const GH = checksummed('ghp', R30);
const NPM = checksummed('npm', R30);
const PYPI = ['py', 'pi-AgEIcHlwaS5vcmc', R30.repeat(3)].join('');
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","iat":1516239022}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEA7Vq3xkZ9b2Lr0pQmT8sYw1Nf4Hc6Jd5Ke2Gh7Uv9Xy0Az3Bq\n'.repeat(4)}-----END RSA PRIVATE KEY-----`;

/** [text, expected type, expected matched substring] — true cases. */
const POSITIVES: [string, string, string][] = [
  ['write to jane.doe@example.com today', 'EMAIL_ADDRESS', 'jane.doe@example.com'],
  ['ops+alerts@corp.example.co.uk', 'EMAIL_ADDRESS', 'ops+alerts@corp.example.co.uk'],
  ['Call me at (212) 555-0188 tomorrow', 'PHONE_NUMBER', '(212) 555-0188'],
  ['office +44 20 7946 0958', 'PHONE_NUMBER', '+44 20 7946 0958'],
  ['phone: 030 901820', 'PHONE_NUMBER', '030 901820'],
  ['my card 4111 1111 1111 1111 exp 12/29', 'CREDIT_CARD', '4111 1111 1111 1111'],
  ['amex 378282246310005', 'CREDIT_CARD', '378282246310005'],
  ['mc 5555-5555-5555-4444', 'CREDIT_CARD', '5555-5555-5555-4444'],
  ['IBAN GB82 WEST 1234 5698 7654 32.', 'IBAN_CODE', 'GB82 WEST 1234 5698 7654 32'],
  ['pay DE89370400440532013000 now', 'IBAN_CODE', 'DE89370400440532013000'],
  ['lower gb82west12345698765432 ok', 'IBAN_CODE', 'gb82west12345698765432'],
  ['SSN 460-89-9847', 'US_SSN', '460-89-9847'],
  ['social security number 460 89 9847', 'US_SSN', '460 89 9847'],
  ['ssn: 460899847', 'US_SSN', '460899847'],
  ['server ip 192.168.1.10 is down', 'IP_ADDRESS', '192.168.1.10'],
  ['host 2001:db8:85a3::8a2e:370:7334 up', 'IP_ADDRESS', '2001:db8:85a3::8a2e:370:7334'],
  ['full 2001:0db8:0000:0000:0000:ff00:0042:8329', 'IP_ADDRESS', '2001:0db8:0000:0000:0000:ff00:0042:8329'],
  [`key:\n${PEM}\nbye`, 'PRIVATE_KEY', PEM],
  ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', 'PRIVATE_KEY', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW'],
  ['aws AKIAZ7Q3XK2MPLQW4NV5 here', 'AWS_ACCESS_KEY', 'AKIAZ7Q3XK2MPLQW4NV5'],
  ['aws_secret_access_key = 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', 'AWS_SECRET_KEY', 'Zk3pQ9vL2mN8xR4tY7wB1cD5fG6hJ0kA/s+T9uV2'],
  [`token ${GH} leaked`, 'GITHUB_TOKEN', GH],
  [`token ${checksummed('ghs', R30)}`, 'GITHUB_TOKEN', checksummed('ghs', R30)],
  ['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', 'GITHUB_TOKEN', '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'],
  ['glpat-Zq8Xk2Lm9Pw4Rt7Yv1Bn', 'GITLAB_TOKEN', 'glpat-Zq8Xk2Lm9Pw4Rt7Yv1Bn'],
  ['xoxb-123456789012-1234567890123-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', 'SLACK_TOKEN', 'xoxb-123456789012-1234567890123-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3'],
  ['sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg', 'STRIPE_KEY', 'sk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg'],
  ['rk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg', 'STRIPE_KEY', 'rk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg'],
  ['OPENAI_API_KEY=sk-proj-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4Rt7Yv1T3BlbkFJZq8Xk2Lm9Pw4Rt7Yv1Bn5', 'OPENAI_KEY', 'sk-proj-Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4Rt7Yv1T3BlbkFJZq8Xk2Lm9Pw4Rt7Yv1Bn5'],
  ['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', 'OPENAI_KEY', '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'],
  [`sk-ant-api03-${'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0'.repeat(3)}AbcAA`, 'ANTHROPIC_KEY', `sk-ant-api03-${'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0'.repeat(3)}AbcAA`],
  ['key=AIzaSyZq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8', 'GOOGLE_API_KEY', 'AIzaSyZq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8'],
  [`jwt ${JWT} end`, 'JWT', JWT],
  [`//registry.npmjs.org/:_authToken=${NPM}`, 'NPM_TOKEN', NPM],
  ['HF_TOKEN=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', 'HUGGINGFACE_TOKEN', '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'],
  [`password = ${PYPI}`, 'PYPI_TOKEN', PYPI],
  [`token ${GH.slice(0, -1)}${GH.endsWith('A') ? 'B' : 'A'} (checksum wrong)`, 'GITHUB_TOKEN', `${GH.slice(0, -1)}${GH.endsWith('A') ? 'B' : 'A'}`],
  ['call +1 555 010 9999 (unassigned area code)', 'PHONE_NUMBER', '+1 555 010 9999'],
  ['SG.Zq8Xk2Lm9Pw4Rt7Yv1Bn5C.Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4R', 'SENDGRID_KEY', 'SG.Zq8Xk2Lm9Pw4Rt7Yv1Bn5C.Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0Zq8Xk2Lm9Pw4R'],
  ['DATABASE_URL=postgres://admin:s3cr3tP4ss@db.prod:5432/app', 'DATABASE_URL_CREDENTIALS', 'postgres://admin:s3cr3tP4ss'],
  ['mongodb+srv://svc:Zq8Xk2Lm@cluster0.example.net/db', 'DATABASE_URL_CREDENTIALS', 'mongodb+srv://svc:Zq8Xk2Lm'],
  ['fetch https://bob:hunter22@example.com/x', 'URL_CREDENTIALS', 'https://bob:hunter22'],
  ['Authorization: Basic ZGVwbG95OlpxOFhrMkxtOVB3NA==', 'BASIC_AUTH_CREDENTIALS', 'ZGVwbG95OlpxOFhrMkxtOVB3NA=='],
  ['Authorization: Bearer Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3', 'BEARER_TOKEN', 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3'],
];

/** Hard negatives: must yield no detection at all. */
const NEGATIVES: [string, string][] = [
  ['UUID', 'request 123e4567-e89b-12d3-a456-426614174000 failed'],
  ['git SHA', 'fixed in 3f786850e387550fdab836ed7e6dc881de23001b'],
  ['version 4 parts', 'upgrade to version 1.2.3.4 today'],
  ['v-prefixed version', 'released v10.0.19041.1 yesterday'],
  ['build number', 'build 10.0.19041.1'],
  ['order number', 'Order number 482919930012 shipped'],
  ['invoice number', 'Invoice 123456789 is overdue'],
  ['Luhn failure', 'card 4111 1111 1111 1112 declined'],
  ['Luhn ok, no issuer', 'id 9111 1111 1111 1116'],
  ['mod-97 failure', 'IBAN GB82 WEST 1234 5698 7654 33'],
  ['wrong IBAN length', 'DE8937040044053201300'],
  ['SSN area 000', 'SSN 000-12-3456'],
  ['SSN area 666', 'ssn 666-12-3456'],
  ['SSN area 9xx', 'ssn 912-12-3456'],
  ['SSN group 00', 'ssn 123-00-4567'],
  ['SSN example', 'ssn 078-05-1120'],
  ['bare 9 digits, no context', 'ref 460899847'],
  ['AWS documented example', 'AKIAIOSFODNN7EXAMPLE'],
  ['AWS documented secret', 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
  // A wrong checksum alone no longer rules a token out (test/detection-shapes.test.ts); placeholders do.
  ['GitHub placeholder', `ghp_${'x'.repeat(36)}`],
  ['npm placeholder', 'npm_1234567890abcdefghijklmnopqrstuvwxyz'],
  ['AWS placeholder', `AKIA${'X'.repeat(16)}`],
  ['old 40-hex GitHub token shape (= a SHA)', 'token 3f786850e387550fdab836ed7e6dc881de23001b'],
  ['Stripe documented test key', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'],
  ['Stripe publishable key', 'pk_live_Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg'],
  ['public key PEM', '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----'],
  ['certificate PEM', '-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END CERTIFICATE-----'],
  ['JWT-looking, header not JSON', 'eyJub3Rqc29uLi4uLi4.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc'],
  ['DB URL without credentials', 'postgres://db.prod:5432/app'],
  ['DB URL placeholder password', 'postgres://user:${DB_PASSWORD}@db:5432/app'],
  ['DB URL literal "password"', 'mysql://root:password@localhost/db'],
  ['URL with port', 'https://example.com:8443/path'],
  ['Bearer placeholder', 'Authorization: Bearer <token>'],
  ['Bearer word', 'the bearer instrument is transferable'],
  ['MAC address', 'mac 00:1A:2B:3C:4D:5E'],
  ['time', 'at 12:30:45 UTC'],
  ['C++ scope', 'std::vector<int> and Foo::Bar'],
  ['date', 'on 2024-01-15 and 15/01/2024'],
  ['retina image name', 'icon@2x.png'],
  ['npm scoped package', '@types/node@22.1.0'],
  ['git remote', 'git@github.com:org/repo.git'],
  ['sk- prefix prose', 'use sk-learn or sk-... in docs'],
  ['short numbers', 'room 224 4966 and 17151 2450'],
];

describe('built-in detectors: true cases', () => {
  for (const [text, type, value] of POSITIVES) {
    it(`${type}: ${JSON.stringify(text.slice(0, 48))}`, () => {
      const found = detectEntities(text, BUILTIN_DETECTORS);
      const hit = found.find((d) => d.type === type);
      assert.ok(hit, `expected ${type}, got ${found.map((d) => d.type).join(',') || 'nothing'}`);
      assert.equal(text.slice(hit.start, hit.end), value);
      assert.ok(hit.confidence > 0 && hit.confidence <= 1);
    });
  }
});

describe('built-in detectors: hard negatives', () => {
  for (const [name, text] of NEGATIVES) {
    it(name, () => {
      const found = detectEntities(text, BUILTIN_DETECTORS);
      assert.deepEqual(
        found.map((d) => `${d.type}@${d.start}`),
        [],
      );
    });
  }
});

describe('context words', () => {
  it('raise confidence', () => {
    const without = detectEntities('value 4111 1111 1111 1111', BUILTIN_DETECTORS)[0];
    const withCtx = detectEntities('credit card 4111 1111 1111 1111', BUILTIN_DETECTORS)[0];
    assert.ok(without && withCtx);
    assert.ok(withCtx.confidence > without.confidence);
    const ipPlain = detectEntities('see 10.1.2.3', BUILTIN_DETECTORS)[0];
    const ipCtx = detectEntities('server ip 10.1.2.3', BUILTIN_DETECTORS)[0];
    assert.ok(ipPlain && ipCtx && ipCtx.confidence > ipPlain.confidence);
  });
  it('minConfidence drops weaker detections', () => {
    assert.equal(detectEntities('see 10.1.2.3', BUILTIN_DETECTORS, { minConfidence: 0.8 }).length, 0);
    assert.equal(detectEntities('server ip 10.1.2.3', BUILTIN_DETECTORS, { minConfidence: 0.8 }).length, 1);
  });
});

describe('normalization bypasses', () => {
  it('finds an email split by a zero-width space, positions in the original', () => {
    const text = 'mail jane\u200b.doe@example.com now';
    const [d] = detectEntities(text, BUILTIN_DETECTORS);
    assert.ok(d);
    assert.equal(d.type, 'EMAIL_ADDRESS');
    assert.equal(text.slice(d.start, d.end), 'jane\u200b.doe@example.com');
  });
  it('finds a secret split by zero-width spaces and bidi controls', () => {
    const split = `${GH.slice(0, 10)}\u200b${GH.slice(10, 20)}\u202e${GH.slice(20, 30)}\ufeff${GH.slice(30)}`;
    const text = `here: ${split} ok`;
    const [d] = detectEntities(text, BUILTIN_DETECTORS);
    assert.ok(d);
    assert.equal(d.type, 'GITHUB_TOKEN');
    assert.equal(d.start, 6);
    assert.equal(text.slice(d.start, d.end), split);
  });
  it('finds an AWS key split by a soft hyphen and a word joiner', () => {
    const text = 'AKIAZ7Q3\u00adXK2MPLQW\u20604NV5';
    const [d] = detectEntities(text, BUILTIN_DETECTORS);
    assert.ok(d);
    assert.deepEqual([d.type, d.start, d.end], ['AWS_ACCESS_KEY', 0, text.length]);
  });
  it('folds fullwidth digits (NFKC)', () => {
    const text = 'card ４１１１ １１１１ １１１１ １１１１!';
    const [d] = detectEntities(text, BUILTIN_DETECTORS);
    assert.ok(d);
    assert.equal(d.type, 'CREDIT_CARD');
    assert.equal(text.slice(d.start, d.end), '４１１１ １１１１ １１１１ １１１１');
    const ssn = 'ssn ４６０－８９－９８４７';
    const [s] = detectEntities(ssn, BUILTIN_DETECTORS);
    assert.ok(s);
    assert.equal(s.type, 'US_SSN');
    assert.equal(ssn.slice(s.start, s.end), '４６０－８９－９８４７');
  });
  it('maps positions through expanding compatibility characters', () => {
    const n = normalizeForMatching('a\u200b①ﬁx\u0301');
    assert.equal(n.text, 'a1fix'); // the mark on x is dropped: x is ASCII
    assert.equal(n.toOriginal(0), 0);
    assert.equal(n.toOriginal(1), 2); // '1' from ① (the ZWSP at 1 is gone)
    assert.equal(n.toOriginal(2), 3); // 'f' from ﬁ
    assert.equal(n.toOriginal(3), 3); // 'i' from ﬁ
    assert.equal(n.toOriginalEnd(4), 4); // 'i' ends where ﬁ ends
    assert.equal(n.toOriginal(4), 4); // 'x'
    assert.equal(n.toOriginalEnd(5), 6); // the combining mark stays with its base
    assert.equal(n.toOriginal(n.text.length), 6);
  });
  it('is the identity on plain ASCII', () => {
    const n = normalizeForMatching('plain text');
    assert.equal(n.text, 'plain text');
    assert.equal(n.toOriginal(3), 3);
  });
});

describe('overlaps', () => {
  it('keeps the longer detection and sorts by start', () => {
    const text = `Authorization: Bearer ${JWT} and jane@example.com`;
    const found = detectEntities(text, BUILTIN_DETECTORS);
    assert.deepEqual(found.map((d) => d.type), ['JWT', 'EMAIL_ADDRESS']);
    for (let i = 1; i < found.length; i++) assert.ok(found[i]!.start >= found[i - 1]!.end);
  });
  it('rethrows when a detector throws (fail closed)', () => {
    const broken: Detector = { id: 'broken', type: 'X', maxLength: 1, detect: () => { throw new Error('boom'); } };
    assert.throws(() => detectEntities('text', [broken]), /boom/);
  });
});

describe('registry', () => {
  it('has one built-in detector per listed type with finite maxLength', () => {
    for (const type of ['EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IBAN_CODE', 'US_SSN', 'IP_ADDRESS', 'PRIVATE_KEY', 'AWS_ACCESS_KEY', 'GITHUB_TOKEN', 'GITLAB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'OPENAI_KEY', 'ANTHROPIC_KEY', 'GOOGLE_API_KEY', 'JWT', 'NPM_TOKEN', 'PYPI_TOKEN', 'HUGGINGFACE_TOKEN', 'SENDGRID_KEY', 'DATABASE_URL_CREDENTIALS', 'BASIC_AUTH_CREDENTIALS', 'BEARER_TOKEN']) {
      const d = builtinDetector(type);
      assert.ok(d, type);
      assert.ok(Number.isFinite(d.maxLength) && d.maxLength > 0);
    }
    assert.equal(builtinDetector('PERSON'), undefined);
    assert.equal(maxEntityLength(BUILTIN_DETECTORS), Math.max(...BUILTIN_DETECTORS.map((d) => d.maxLength)));
    assert.equal(maxEntityLength([]), 0);
  });
});

describe('checksums', () => {
  it('Luhn and mod-97', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
    assert.equal(ibanMod97Valid('GB82WEST12345698765432'), true);
    assert.equal(ibanMod97Valid('GB82WEST12345698765433'), false);
  });
  it('CRC-32 matches the IEEE test vector', () => {
    assert.equal(crc32('123456789'), 0xcbf43926);
  });
});

describe('totality (fast-check)', () => {
  const detectorsArb = fc.constantFrom(...BUILTIN_DETECTORS);
  // Arbitrary UTF-16 (lone surrogates included) mixed with fragments that trigger the detectors.
  const fragment = fc.constantFrom('@', '.', '-', ' ', ':', '/', '+', '\u200b', '４', 'ghp_', 'npm_', 'sk-', 'sk-ant-', 'eyJ', 'AKIA', 'AIza', 'xoxb-', 'SG.', '://', 'Bearer ', 'Authorization: Basic ', '-----BEGIN PRIVATE KEY-----', '::', '\ud800', '\udc00', 'GB82', '4111', '(212) ', 'pypi-AgEIcHlwaS5vcmc', 'tel. ', '+1 555 ', '\n', '\\n');
  const textArb = fc.array(fc.oneof(fc.string({ unit: 'binary' }), fragment, fc.stringMatching(/^[0-9A-Za-z]{0,40}$/)), { maxLength: 30 }).map((xs) => xs.join(''));
  it('no detector throws and every span is inside the text and within maxLength', () => {
    fc.assert(
      fc.property(detectorsArb, textArb, (detector, text) => {
        const norm = normalizeForMatching(text).text;
        for (const d of detector.detect(norm)) {
          assert.ok(d.start >= 0 && d.end <= norm.length && d.start < d.end);
          assert.ok(d.end - d.start <= detector.maxLength);
          assert.equal(d.type, detector.type);
        }
      }),
      { numRuns: 3000 },
    );
  });
  it('detectEntities returns sorted, disjoint spans in the original text', () => {
    fc.assert(
      fc.property(textArb, (text) => {
        const found = detectEntities(text, BUILTIN_DETECTORS);
        let last = 0;
        for (const d of found) {
          assert.ok(d.start >= last && d.end <= text.length && d.start < d.end);
          last = d.end;
        }
      }),
      { numRuns: 1500 },
    );
  });
  it('normalization maps every position into the original, monotonically', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const n = normalizeForMatching(text);
        let prev = 0;
        for (let i = 0; i <= n.text.length; i++) {
          const o = n.toOriginal(i);
          assert.ok(o >= prev && o <= text.length);
          prev = o;
          if (i > 0) assert.ok(n.toOriginalEnd(i) > n.toOriginal(i - 1) && n.toOriginalEnd(i) <= text.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
