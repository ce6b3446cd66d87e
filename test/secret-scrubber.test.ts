/**
 * SecretScrubber (src/core/scrub-secrets.ts): the gateway's keys replaced wherever they stand in
 * an answer. The stream law — any chunking gives what the whole text gives — is checked on texts
 * built from key pieces, overlapping keys and near misses; JSON values are scrubbed string by
 * string; and the seal of a masked thinking block (src/gateway/thinking-seal.ts) opens only for
 * its user and key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SCRUBBED, SecretScrubber } from '../src/core/scrub-secrets.ts';
import { THINKING_SEAL_PREFIX, ThinkingSeal } from '../src/gateway/thinking-seal.ts';

// Built at run time: no secret-looking literal in the repository.
const KEY_A = ['sk', 'proj', 'Ab12Cd34Ef56Gh78'].join('-');
const KEY_B = ['sk', 'proj', 'Ab12'].join('-'); // a prefix of KEY_A, itself a key
const KEY_C = ['Ab12Cd', '34xyzw'].join(''); // starts inside KEY_A
const scrubber = new SecretScrubber([KEY_A, KEY_B, KEY_C, 'short']);

/** The whole text scrubbed the obvious way: at each position the longest key that starts there. */
function reference(text: string, keys: readonly string[]): string {
  const sorted = [...keys].sort((a, b) => b.length - a.length);
  let out = '';
  for (let i = 0; i < text.length; ) {
    const key = sorted.find((k) => text.startsWith(k, i));
    if (key) {
      out += SCRUBBED;
      i += key.length;
    } else out += text[i++];
  }
  return out;
}

const pieceOf = fc.constantFrom(KEY_A, KEY_B, KEY_C, KEY_A.slice(0, 10), KEY_A.slice(5), 'sk-', 's', 'k', '-', 'Ab12', 'x', ' ', 'short', 'shor');
const textOf = fc.array(pieceOf, { maxLength: 30 }).map((p) => p.join(''));

function streamed(text: string, cuts: readonly number[]): string {
  const channel = scrubber.channel();
  let out = '';
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)) {
    out += channel.push(text.slice(at, cut));
    at = cut;
  }
  return out + channel.push(text.slice(at)) + channel.end();
}

describe('SecretScrubber', () => {
  it('a whole text: the leftmost, longest key wins at each position; keys under 8 characters are not scrubbed', () => {
    fc.assert(fc.property(textOf, (text) => assert.equal(scrubber.whole(text), reference(text, [KEY_A, KEY_B, KEY_C]))));
    assert.equal(scrubber.whole('short'), 'short');
  });

  it('THE LAW: any chunking of a text gives what the whole text gives', () => {
    fc.assert(
      fc.property(textOf, fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
        assert.equal(streamed(text, cuts), scrubber.whole(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('one character at a time, and at every split of a key', () => {
    const text = `a ${KEY_A} b ${KEY_C}${KEY_B}`;
    assert.equal(streamed(text, [...text].map((_, i) => i)), `a ${SCRUBBED} b ${SCRUBBED}${SCRUBBED}`);
    for (let i = 0; i <= KEY_A.length; i++) assert.equal(streamed(`>${KEY_A}<`, [1 + i]), `>${SCRUBBED}<`);
  });

  it('holds back only what could still become a key', () => {
    const channel = scrubber.channel();
    assert.equal(channel.push('hello world'), 'hello world');
    assert.equal(channel.push(' then sk-pr'), ' then ');
    assert.equal(channel.push('oxy'), 'sk-proxy');
    assert.equal(channel.end(), '');
  });

  it('JSON values: every string, at any depth; keys of objects are left to holds()', () => {
    const value = { a: [`x ${KEY_A}`, { b: KEY_C, n: 1 }], [KEY_B]: 'ok' };
    assert.equal(scrubber.json(value), true);
    assert.deepEqual(value, { a: [`x ${SCRUBBED}`, { b: SCRUBBED, n: 1 }], [KEY_B]: 'ok' });
    assert.equal(scrubber.holds(JSON.stringify(value)), true);
    assert.equal(scrubber.mayHold(JSON.stringify({ a: 'plain' })), false);
    assert.equal(scrubber.mayHold('{"a":"\\u0073k-proj"}'), true, 'a JSON escape could spell a key');
  });

  it('without secrets it changes nothing', () => {
    const none = new SecretScrubber([]);
    assert.equal(none.empty, true);
    assert.equal(none.whole(KEY_A), KEY_A);
    assert.equal(none.mayHold(KEY_A), false);
  });
});

describe('ThinkingSeal', () => {
  const key = 'ab'.repeat(32);
  it('opens for the same user and key only; a changed byte or prefix is not a seal', () => {
    const seal = new ThinkingSeal(key);
    const sealed = seal.seal('alice', 'I think about jane@example.com', 'EqQBsig');
    assert.ok(sealed.startsWith(THINKING_SEAL_PREFIX));
    assert.ok(!sealed.includes('jane'));
    assert.deepEqual(seal.open('alice', sealed), { text: 'I think about jane@example.com', signature: 'EqQBsig' });
    assert.deepEqual(new ThinkingSeal(key).open('alice', sealed), { text: 'I think about jane@example.com', signature: 'EqQBsig' }, 'same key after a restart');
    assert.equal(seal.open('bob', sealed), null);
    assert.equal(new ThinkingSeal('cd'.repeat(32)).open('alice', sealed), null);
    assert.equal(new ThinkingSeal(null).open('alice', sealed), null);
    const body = sealed.slice(THINKING_SEAL_PREFIX.length);
    for (const i of [0, 5, body.length - 3]) {
      const flipped = body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1);
      assert.equal(seal.open('alice', THINKING_SEAL_PREFIX + flipped), null, `byte ${i}`);
    }
    assert.equal(seal.open('alice', 'EqQBsig'), null);
    assert.equal(seal.open('alice', THINKING_SEAL_PREFIX), null);
  });
});
