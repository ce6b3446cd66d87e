import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { hmacSha256, sha256, toHex } from '../src/core/masking/sha256.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

test('SHA-256 known digests (FIPS 180-4 examples)', () => {
  assert.equal(toHex(sha256('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(toHex(sha256('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(toHex(sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.equal(toHex(sha256('a'.repeat(1_000_000))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

// RFC 4231 test cases 1-4, 6, 7 (case 5 is a truncated output).
const RFC4231: Array<{ key: Uint8Array; data: Uint8Array; mac: string }> = [
  { key: hex('0b'.repeat(20)), data: Buffer.from('Hi There'), mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
  { key: Buffer.from('Jefe'), data: Buffer.from('what do ya want for nothing?'), mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
  { key: hex('aa'.repeat(20)), data: hex('dd'.repeat(50)), mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
  { key: hex('0102030405060708090a0b0c0d0e0f10111213141516171819'), data: hex('cd'.repeat(50)), mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b' },
  {
    key: hex('aa'.repeat(131)),
    data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
  {
    key: hex('aa'.repeat(131)),
    data: Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    mac: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  },
];

test('HMAC-SHA-256 matches the RFC 4231 vectors', () => {
  for (const [i, v] of RFC4231.entries()) assert.equal(toHex(hmacSha256(v.key, v.data)), v.mac, `case ${i + 1}`);
});

test('SHA-256 and HMAC agree with node:crypto on random inputs (every length across block boundaries)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 150 }), (data, key) => {
      assert.equal(toHex(sha256(data)), createHash('sha256').update(data).digest('hex'));
      assert.equal(toHex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 40 }), (data, key) => {
      assert.equal(toHex(hmacSha256(key, data)), createHmac('sha256', key).update(data, 'utf8').digest('hex'));
    }),
    { numRuns: 1000 },
  );
});
