import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../src/core/detection/types.ts';
import { applyOperator, maskText } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { StreamRestorer } from '../src/core/masking/stream-restorer.ts';
import { hmacSha256, toHex } from '../src/core/masking/sha256.ts';

const det = (type: string, start: number, end: number, confidence = 0.9): Detection => ({ type, start, end, confidence, detector: 'test' });

test('redact labels, mask keep-last-N, overlapping detections all masked', () => {
  const text = 'mail a@b.io or call +1 415 555 0100 now';
  const d = [det('EMAIL_ADDRESS', 5, 11), det('PHONE_NUMBER', 20, 35)];
  assert.equal(maskText(text, d, () => ({ kind: 'redact' })), 'mail [EMAIL] or call [PHONE] now');
  assert.equal(maskText(text, d, () => ({ kind: 'mask', keepLast: 4 })), 'mail **b.io or call ***********0100 now');
  assert.equal(maskText('x 😀😀😀 y', [det('X', 2, 8)], () => ({ kind: 'mask', keepLast: 1, char: '#' })), 'x ##😀 y');
  assert.equal(maskText('abcdef', [det('AWS_ACCESS_KEY', 0, 4), det('CREDIT_CARD', 2, 6)], () => ({ kind: 'redact' })), '[AWS_ACCESS_KEY][CREDIT_CARD]');
  assert.equal(maskText('abc', [det('my-custom.type', 0, 3)], () => ({ kind: 'redact' })), '[MY_CUSTOM_TYPE]');
  // unsorted input is sorted
  assert.equal(maskText(text, [d[1]!, d[0]!], () => ({ kind: 'redact' })), 'mail [EMAIL] or call [PHONE] now');
});

test('hmac is keyed and stable, and uses the pure HMAC-SHA-256', () => {
  const d = det('EMAIL_ADDRESS', 0, 6);
  const a = applyOperator({ kind: 'hmac', key: 'k1' }, d, 'a@b.io');
  assert.equal(a, applyOperator({ kind: 'hmac', key: new TextEncoder().encode('k1') }, d, 'a@b.io'));
  assert.notEqual(a, applyOperator({ kind: 'hmac', key: 'k2' }, d, 'a@b.io'));
  assert.notEqual(a, applyOperator({ kind: 'hmac', key: 'k1' }, d, 'a@b.iO'));
  assert.equal(a, `[EMAIL:${toHex(hmacSha256('k1', 'EMAIL:a@b.io')).slice(0, 16)}]`);
  assert.match(a, /^\[EMAIL:[0-9a-f]{16}\]$/);
});

test('pseudonymize: same value same placeholder, numbered per type, restored with case variants', () => {
  const vault = new PseudonymVault();
  const text = 'a@b.io wrote to c@d.io and a@b.io; call 555-0100';
  const d = [det('EMAIL_ADDRESS', 0, 6), det('EMAIL_ADDRESS', 16, 22), det('EMAIL_ADDRESS', 27, 33), det('PHONE_NUMBER', 40, 48)];
  const masked = maskText(text, d, () => ({ kind: 'pseudonymize' }), vault);
  assert.equal(masked, '«EMAIL_1» wrote to «EMAIL_2» and «EMAIL_1»; call «PHONE_1»');
  assert.equal(vault.restore(masked), text);
  assert.equal(vault.restore('Write to «email_2», «Email_1», « EMAIL_1 » or «PHONE_1».'), 'Write to c@d.io, a@b.io, a@b.io or 555-0100.');
  // not issued, malformed or ordinary guillemets stay
  assert.equal(vault.restore('«EMAIL_9» «EMAIL» « bonjour » «EMAIL_1'), '«EMAIL_9» «EMAIL» « bonjour » «EMAIL_1');
  assert.equal(vault.valueOf('email_2'), 'c@d.io');
  assert.throws(() => maskText(text, d, () => ({ kind: 'pseudonymize' })), /needs a PseudonymVault/);
});

test('restore into JSON string contexts escapes quotes and backslashes; \\u00ab escapes are recognised', () => {
  const vault = new PseudonymVault();
  const p = vault.placeholderFor('PERSON', 'O"Brien \\ co\n');
  assert.equal(p, '«PERSON_1»');
  const args = `{"to":"${p}","cc":"\\u00abperson_1\\u00BB"}`;
  const restored = vault.restore(args, { json: true });
  assert.deepEqual(JSON.parse(restored), { to: 'O"Brien \\ co\n', cc: 'O"Brien \\ co\n' });
  // plain mode does not touch escapes and does not escape
  assert.equal(vault.restore('x «PERSON_1»'), 'x O"Brien \\ co\n');
  assert.equal(vault.restore('\\u00abPERSON_1\\u00bb'), '\\u00abPERSON_1\\u00bb');
});

test('vault toJSON/fromJSON round trip keeps numbering; malformed input refused', () => {
  const vault = new PseudonymVault();
  vault.placeholderFor('EMAIL_ADDRESS', 'a@b.io');
  vault.placeholderFor('EMAIL_ADDRESS', 'c@d.io');
  vault.placeholderFor('GITHUB_TOKEN', 'ghp_x');
  const copy = PseudonymVault.fromJSON(JSON.parse(JSON.stringify(vault)));
  assert.equal(copy.placeholderFor('EMAIL_ADDRESS', 'c@d.io'), '«EMAIL_2»');
  assert.equal(copy.placeholderFor('EMAIL_ADDRESS', 'e@f.io'), '«EMAIL_3»');
  assert.equal(copy.restore('«github_token_1»'), 'ghp_x');
  assert.throws(() => PseudonymVault.fromJSON({ version: 2, entries: [] }), /version: 1/);
  assert.throws(() => PseudonymVault.fromJSON({ version: 1, entries: [['EMAIL', 0, 'x']] }), /malformed/);
  assert.throws(() => PseudonymVault.fromJSON({ version: 1, entries: [['EMAIL', 1, 'x'], ['EMAIL', 1, 'y']] }), /duplicate/);
});

test('StreamRestorer restores placeholders split anywhere (exhaustive two and three cuts)', () => {
  const vault = new PseudonymVault();
  vault.placeholderFor('EMAIL_ADDRESS', 'a"b@c.io');
  vault.placeholderFor('PHONE_NUMBER', '+1 555');
  for (const json of [false, true]) {
    const text = json
      ? '{"a":"\\u00abEMAIL_1\\u00bb and «phone_1»\\\\ «EMAIL_7» \\u00ab"}'
      : 'Hi «EMAIL_1», «Phone_1»«EMAIL_1»« bonjour » «EMAIL_1';
    const whole = vault.restore(text, { json });
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        const r = new StreamRestorer(vault, { json });
        const out = r.push(text.slice(0, i)) + r.push(text.slice(i, j)) + r.push(text.slice(j)) + r.end();
        assert.equal(out, whole, `json=${json} cuts ${i},${j}`);
        assert.ok(r.heldBack === 0);
      }
    }
  }
});

test('vault conceal is the inverse of restore for records: plain and JSON-escaped, longest value first', () => {
  const vault = new PseudonymVault();
  vault.placeholderFor('EMAIL_ADDRESS', 'jo@x.io');
  vault.placeholderFor('EMAIL_ADDRESS', 'mary.jo@x.io');
  vault.placeholderFor('PERSON', 'O"Brien');
  const answer = 'Mail mary.jo@x.io and jo@x.io; ask O"Brien.';
  assert.equal(vault.conceal(answer), 'Mail «EMAIL_2» and «EMAIL_1»; ask «PERSON_1».');
  assert.equal(vault.restore(vault.conceal(answer)), answer);
  const body = JSON.stringify({ content: answer });
  assert.equal(vault.conceal(body, { json: true }), JSON.stringify({ content: 'Mail «EMAIL_2» and «EMAIL_1»; ask «PERSON_1».' }));
  assert.equal(new PseudonymVault().conceal(answer), answer);
});
