/**
 * Block rules hold against request-side tricks (issue 12, item 1): a secret, card or keyword
 * split across parts or messages, hidden under JSON escapes, base64, hex or percent-encoding, or
 * spaced out / broken over lines — as prompt text and as tool-call arguments. And they do not
 * fire on ordinary text that merely looks encoded (images, hashes, prose, code).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import type { ContentPart, NormalizedMessage, Principal } from '../src/core/events.ts';
import { evaluatePolicy, type PolicyInput } from '../src/core/policy/index.ts';

/** Built at run time: no literal secret in the repository. */
const GITHUB = ((seed: string) => ['gh', 'p_'].join('') + seed + base62Encode(crc32(seed), 6))('aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1');
const AWS = ['AK', 'IAZ7Q3XK2MPLQW4NV5'].join('');
const CARD = '4111 1111 1111 1111';
const KEYWORD = 'PROJECT-NIGHTJAR';

const policy = parsePolicyText(
  `
version: 1
rules:
  - { id: no-secrets, match: { detectors: [AWS_ACCESS_KEY, GITHUB_TOKEN] }, action: block }
  - { id: no-cards, match: { detectors: [CREDIT_CARD] }, action: block }
  - { id: codename, match: { keywords: [${KEYWORD}] }, action: require_approval }
`,
  'inline-policy.yaml',
).compiled;

const ALICE: Principal = { subject: 'alice', email: 'alice@example.com', groups: ['eng'], issuer: 'https://idp.test', clientId: null };

function request(messages: NormalizedMessage[]): PolicyInput {
  return {
    principal: ALICE,
    provider: 'anthropic',
    model: 'claude',
    endpoint: 'anthropic.messages',
    request: { endpoint: 'anthropic.messages', model: 'claude', stream: false, messages, tools: [], inputs: [], texts: [] },
  };
}

const text = (t: string): ContentPart => ({ type: 'text', text: t });
const user = (...parts: string[]): NormalizedMessage => ({ role: 'user', parts: parts.map(text) });
const assistant = (...parts: string[]): NormalizedMessage => ({ role: 'assistant', parts: parts.map(text) });
/** A Bash tool call whose raw JSON arguments are `args` (as sent, escapes and all). */
const bashCall = (args: string): NormalizedMessage => ({ role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'Bash', arguments: args }] });

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
/** Every character as a JSON \u escape. */
const uEscape = (s: string) => [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const half = (s: string) => [s.slice(0, Math.floor(s.length / 2)), s.slice(Math.floor(s.length / 2))] as const;

const SECRETS = [
  { name: 'AWS key', value: AWS, rule: 'no-secrets' },
  { name: 'GitHub token', value: GITHUB, rule: 'no-secrets' },
  { name: 'card', value: CARD, rule: 'no-cards' },
  { name: 'keyword', value: KEYWORD, rule: 'codename' },
] as const;

/** Variants of a prompt carrying `v`: each must be refused by the rule. */
function promptVariants(v: string): [string, NormalizedMessage[]][] {
  const [a, b] = half(v);
  const out: [string, NormalizedMessage[]][] = [
    ['plain (control)', [user(`please use ${v} for this`)]],
    ['split over two text parts', [user(`please use ${a}`, `${b} for this`)]],
    ['split over three text parts', [user(`please use ${v.slice(0, 3)}`, v.slice(3, 7), `${v.slice(7)} now`)]],
    ['split over two user messages', [user(`please use ${a}`), user(`${b} for this`)]],
    ['split over user and assistant', [user(`please use ${a}`), assistant(`${b} ok`)]],
    ['base64', [user(`decode this: ${b64(`the value is ${v}`)}`)]],
    ['base64 url-safe', [user(`decode this: ${b64url(`the value is ${v} ??>`)}`)]],
    ['hex', [user(`hex: ${hex(`the value is ${v}`)}`)]],
    ['hex 0x', [user(`hex: 0x${hex(v)}`)]],
    ['percent-encoded', [user(`url: https://example.com/?q=${pct(v)}`)]],
    ['partly percent-encoded', [user(`url: https://example.com/?q=${v.slice(0, 4)}${pct(v.slice(4, 6))}${v.slice(6)}`)]],
    ['JSON \\u escapes in text', [user(`{"value": "${uEscape(v)}"}`)]],
    ['base64 after a long preamble', [user(`${'lorem ipsum dolor sit amet '.repeat(400)} ${b64(v + ' is it')}`)]],
  ];
  return out;
}

/** Variants of tool-call arguments carrying `v`. */
function argumentVariants(v: string): [string, string][] {
  return [
    ['plain (control)', JSON.stringify({ command: `echo ${v}` })],
    ['\\u escapes', `{"command":"echo ${uEscape(v)}"}`],
    ['partly \\u-escaped', `{"command":"echo ${uEscape(v.slice(0, 1))}${v.slice(1)}"}`],
    ['base64 in a command', JSON.stringify({ command: `echo ${b64(v + ' --')} | base64 -d` })],
    ['JSON-escaped base64', `{"command":"echo ${uEscape(b64(`${v} --`))}"}`],
    ['hex in a command', JSON.stringify({ command: `echo ${hex(v)} | xxd -r -p` })],
    ['percent in a URL', JSON.stringify({ url: `https://example.com/?q=${pct(v)}` })],
  ];
}

describe('block rules hold against splits, escapes and light encodings', () => {
  for (const secret of SECRETS) {
    for (const [variant, messages] of promptVariants(secret.value)) {
      it(`${secret.name}: prompt, ${variant}`, () => {
        const e = evaluatePolicy(policy, request(messages));
        assert.equal(e.ruleId, secret.rule, `${variant}: decided by ${e.ruleId}`);
        assert.notEqual(e.action, 'allow');
        assert.ok(!e.reason.includes(secret.value), 'the reason never quotes the value');
      });
    }
    for (const [variant, args] of argumentVariants(secret.value)) {
      it(`${secret.name}: tool-call arguments, ${variant}`, () => {
        const e = evaluatePolicy(policy, request([user('run it'), bashCall(args)]));
        assert.equal(e.ruleId, secret.rule, `${variant}: decided by ${e.ruleId}`);
      });
    }
  }

  it('a finding in a view maps back to the strings it came from; masking plans are untouched', () => {
    const [a, b] = half(GITHUB);
    const e = evaluatePolicy(policy, request([user(`use ${a}`), user(`${b} now`)]));
    assert.equal(e.ruleId, 'no-secrets');
    const found = e.findings.filter((f) => f.ruleId === 'no-secrets');
    assert.deepEqual(
      found.map((f) => [f.location.kind === 'message' ? f.location.message : -1, f.detections[0]!.start, f.detections[0]!.end]),
      [
        [0, 4, 4 + a.length],
        [1, 0, b.length],
      ],
    );
    assert.equal(e.requestMasking, null);
    assert.match(e.reason, /GITHUB_TOKEN\)|GITHUB_TOKEN \(/);
    assert.doesNotMatch(e.reason, /×2/, 'a split secret is one entity');
  });

  it('mask_request and allow rules do not use the views (positions must be exact; allow must not widen)', () => {
    const masking = parsePolicyText(`version: 1\nrules:\n  - { id: m, match: { detectors: [GITHUB_TOKEN] }, action: mask_request }\n`, 'p.yaml').compiled;
    const e = evaluatePolicy(masking, request([user(`x ${b64(GITHUB + ' --')}`)]));
    assert.equal(e.requestMasking, null);
    const allowing = parsePolicyText(`version: 1\ndefault_action: block\nrules:\n  - { id: ok, match: { keywords: [${KEYWORD}] }, action: allow }\n`, 'p.yaml').compiled;
    assert.equal(evaluatePolicy(allowing, request([user(b64(`the value is ${KEYWORD}`))])).action, 'block');
  });

  it('a role filter holds for split views: some part of the entity must be in a filtered role', () => {
    const roles = parsePolicyText(`version: 1\nrules:\n  - { id: sys, match: { roles: [system], keywords: [${KEYWORD}] }, action: block }\n`, 'p.yaml').compiled;
    const [a, b] = half(KEYWORD);
    assert.equal(evaluatePolicy(roles, request([user(`x ${a}`), user(`${b} y`)])).action, 'allow');
    assert.equal(evaluatePolicy(roles, request([{ role: 'system', parts: [text(`x ${a}`)] }, user(`${b} y`)])).ruleId, 'sys');
  });
});

describe('precision: ordinary text that looks encoded does not block', () => {
  // A small PNG (binary) as base64, repeated to image size.
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(3000, 0x7f), Buffer.from([0, 1, 2, 3, 250, 251])]).toString('base64');
  const negatives: [string, NormalizedMessage[]][] = [
    ['a base64 image in text', [user(`![img](data:image/png;base64,${png})`)]],
    ['a sha256 hash', [user('sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08')]],
    ['a git commit id', [user('see commit 3f9a2c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 for details')]],
    ['a UUID and a long identifier', [user('id 123e4567-e89b-12d3-a456-426614174000, getElementsByTagNameNS, src/core/policy/evaluate-policy')]],
    ['normal prose over messages', [user('I have 3 apples and 4 oranges in 12 baskets, 2024 edition'), assistant('That makes 7 fruits in total across 12 baskets.')]],
    ['numbers split over messages that are not a card', [user('order 4111 1111'), user('shipped 2 boxes')]],
    ['code with JSON escapes', [user('const s = "line\\nnext\\t\\"quoted\\" \\u00e9t\\u00e9";')]],
    ['a URL with percent-encoding', [user('https://example.com/search?q=hello%20world%21&lang=en%2DUS')]],
    ['a keyword-like word split with a space', [user('PROJECT'), user('NIGHT JAR is a bird')]],
  ];
  for (const [name, messages] of negatives) {
    it(name, () => {
      const e = evaluatePolicy(policy, request(messages));
      assert.equal(e.action, 'allow', `${name}: ${e.ruleId} ${e.reason}`);
    });
  }

  it('an adversarial amount of encoded text is bounded and fails closed, never open', () => {
    // Nested encodings everywhere: JSON escapes of base64 of text.
    const blob = uEscape(b64('harmless words here ')).repeat(2000);
    const started = performance.now();
    const e = evaluatePolicy(policy, request([user(blob)]));
    const ms = performance.now() - started;
    assert.ok(ms < 3000, `took ${ms} ms`);
    assert.ok(e.action === 'allow' || (e.action === 'block' && /fail closed/.test(e.reason)), e.reason);
  });
});
