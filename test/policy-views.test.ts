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

/**
 * Ways to space out or break a token over lines (issue 12, item 2), applied to its compact form:
 * [name, as prompt text, as the `command` of a tool call's JSON arguments].
 */
function spacings(v: string): [string, string][] {
  const c = v.replace(/ /g, '');
  const [a, b] = half(c);
  const groups = (n: number): string[] => c.match(new RegExp(`.{1,${n}}`, 'g'))!;
  return [
    ['every character spaced out', [...c].join(' ')],
    ['groups of 4', groups(4).join(' ')],
    ['broken once by a space', `${a} ${b}`],
    ['broken once by a newline', `${a}\n${b}`],
    ['broken by a newline and indentation', `${a}\n      ${b}`],
    ['broken by CRLF', `${a}\r\n${b}`],
    ['wrapped at 12 columns', groups(12).join('\n')],
    ['groups of 4 on lines', groups(4).join('\n')],
    ['spaced characters over two lines', `${[...a].join(' ')}\n${[...b].join(' ')}`],
    ['broken by a tab', `${a}\t${b}`],
    ['spaced with no-break spaces', [...c].join('\u00a0')],
    ['groups of 4 with ideographic spaces', groups(4).join('\u3000')],
    ['broken by a LINE SEPARATOR', `${a}\u2028${b}`],
    ['fullwidth characters spaced out', [...c].map((ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0)).join(' ')],
    ['a zero-width space in the prefix, broken by a newline', `${a.slice(0, 1)}\u200b${a.slice(1)}\n${b}`],
  ];
}

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

  for (const secret of SECRETS.filter((x) => x.name !== 'keyword')) {
    for (const [variant, spaced] of spacings(secret.value)) {
      it(`${secret.name}: prompt, ${variant}`, () => {
        for (const around of [(x: string) => `please use ${x} for this`, (x: string) => x, (x: string) => `key="${x}";`, (x: string) => `first line\n${x}\nlast line`]) {
          const e = evaluatePolicy(policy, request([user(around(spaced))]));
          assert.equal(e.ruleId, secret.rule, `${variant} in ${JSON.stringify(around('…'))}: decided by ${e.ruleId}`);
        }
      });
      it(`${secret.name}: tool-call arguments, ${variant}`, () => {
        // JSON.stringify writes the newlines and tabs as \n, \r and \t escapes, as an agent's model does.
        for (const command of [`export KEY=${spaced} && deploy`, `cat > .env <<EOF\n${spaced}\nEOF`]) {
          const e = evaluatePolicy(policy, request([user('run it'), bashCall(JSON.stringify({ command }))]));
          assert.equal(e.ruleId, secret.rule, `${variant} in ${JSON.stringify(command.slice(0, 12))}…: decided by ${e.ruleId}`);
        }
        const unicode = evaluatePolicy(policy, request([user('run it'), bashCall(`{"command":"echo ${uEscape(spaced)}"}`)]));
        assert.equal(unicode.ruleId, secret.rule, `${variant}, \\u-escaped: decided by ${unicode.ruleId}`);
      });
    }
  }

  it('a spaced-out token is one entity, found where it lies; a plain one is not counted twice', () => {
    const spaced = `key ${half(AWS).join('\n')} end`;
    const e = evaluatePolicy(policy, request([user(spaced)]));
    assert.equal(e.ruleId, 'no-secrets');
    assert.doesNotMatch(e.reason, /×2/);
    const found = e.findings.filter((f) => f.ruleId === 'no-secrets').flatMap((f) => f.detections.map((d) => spaced.slice(d.start, d.end)));
    assert.deepEqual(found, [half(AWS)[0], half(AWS)[1]]);
    // A variable-length token glued to the next word in the spaced view is the plain token again.
    const twice = parsePolicyText(`version: 1\nrules:\n  - { id: two, match: { detectors: [GITLAB_TOKEN], min_matches: 2 }, action: block }\n`, 'p.yaml').compiled;
    const gitlab = ['gl', 'pat-Zq8Xk2Lm9Pw4Rt7Yv1Bn'].join('');
    assert.equal(evaluatePolicy(twice, request([user(`token ${gitlab} is in the vault`)])).action, 'allow');
    assert.equal(evaluatePolicy(twice, request([user(`token ${gitlab} and ${half(gitlab).join('\n')}`)])).ruleId, 'two');
  });

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

describe('spaced out or broken over lines: every prefixed token type, and precision', () => {
  const all = parsePolicyText(
    `version: 1\nrules:\n  - { id: secrets, match: { detectors: [SECRETS] }, action: block }\n  - { id: cards, match: { detectors: [CREDIT_CARD] }, action: block }\n`,
    'all.yaml',
  ).compiled;
  const R = 'Zq8Xk2Lm9Pw4Rt7Yv1Bn5Cd3Fg6Hj0';
  /** Tokens of every prefixed type, assembled at run time (no literal secret in the repository). */
  const TOKENS: [string, string][] = [
    ['ANTHROPIC_KEY', ['sk-', 'ant-api03-', R, R, R, 'AbcAA'].join('')],
    ['OPENAI_KEY', ['sk-', 'proj-', R, R, 'T3Blbk', 'FJ', R].join('')],
    ['SLACK_TOKEN', ['xo', 'xb-123456789012-1234567890123-', R.slice(0, 24)].join('')],
    ['STRIPE_KEY', ['sk', '_live_', R].join('')],
    ['GITLAB_TOKEN', ['gl', 'pat-', R.slice(0, 20)].join('')],
    ['NPM_TOKEN', ['np', 'm_', R, base62Encode(crc32(R), 6)].join('')],
    ['PYPI_TOKEN', ['py', 'pi-', 'AgEIcHlwaS5vcmc', R, R, R].join('')],
    ['GOOGLE_API_KEY', ['AI', 'za', 'Sy', R, 'abc'].join('')],
    ['HUGGINGFACE_TOKEN', ['hf', '_', 'ZqXkLmPwRtYvBnCdFgHjZqXkLmPwRtYvBn'].join('')],
    ['SENDGRID_KEY', ['SG', '.', R.slice(0, 22), '.', R, R.slice(0, 13)].join('')],
    ['GITHUB_TOKEN', ['github', '_pat_', R.slice(0, 22), '_', R, R.slice(0, 29)].join('')],
  ];
  for (const [type, token] of TOKENS) {
    it(`${type}: broken by a newline, spaced in groups, and inside JSON arguments`, () => {
      const [a, b] = half(token);
      assert.equal(evaluatePolicy(all, request([user(`the key is ${token}`)])).ruleId, 'secrets', 'control: the token itself');
      const groups = token.match(/.{1,6}/g)!;
      for (const text of [`the key is ${a}\n${b} ok`, `the key is ${groups.join(' ')} ok`, `key:\n  ${a}\n  ${b}\n`]) {
        const e = evaluatePolicy(all, request([user(text)]));
        assert.equal(e.ruleId, 'secrets', `${JSON.stringify(text.slice(0, 30))}…: ${e.ruleId}`);
        assert.match(e.reason, new RegExp(type));
      }
      const args = evaluatePolicy(all, request([user('go'), bashCall(JSON.stringify({ command: `curl -H "x-key: ${a}\n${b}" https://api.example.com` }))]));
      assert.equal(args.ruleId, 'secrets');
    });
  }

  const hexdump = [
    '00000000: 4865 6c6c 6f20 776f 726c 640a 5468 6973  Hello world.This',
    '00000010: 2069 7320 6120 7465 7374 2066 696c 650a   is a test file.',
    '00000020: 4141 4141 4242 4242 4343 4343 4444 4444  AAAABBBBCCCCDDDD',
  ].join('\n');
  const pemBody = Buffer.alloc(300, 'k').toString('base64').match(/.{1,64}/g)!.join('\n');
  const negatives: [string, string][] = [
    [
      'wrapped prose',
      'The deployment pipeline reads its credentials from the vault at start-up, so nobody\nhas to paste a key into a prompt. Tokens such as ghp_ ones or sk- keys are\nrotated every 90 days by the platform team; ask in #security if in doubt.',
    ],
    ['prose about key prefixes', 'Anthropic keys start with sk-ant-api03- followed by 93 characters and AA; OpenAI ones with sk- or sk-proj- and PyPI tokens with pypi- AgEIcHlwaS5vcmc and a long tail of base64url text that we never paste here.'],
    ['all-caps prose after a prefix', 'NOTE: AKIA KEYS ARE ROTATED EVERY NINETY DAYS BY THE PLATFORM TEAM ON CALL'],
    ['spaced letters in prose', 'Spell it A K I A then the rest, or x o x b for Slack bots; s k dash is OpenAI.'],
    ['placeholders spaced out', 'export GITHUB_TOKEN=ghp_ xxxx xxxx xxxx xxxx xxxx xxxx xxxx xxxx xxxx\nexport KEY=AKIA XXXX XXXX XXXX XXXX'],
    ['code with indentation', 'def handler(event):\n    token = os.environ["GITHUB_TOKEN"]\n    client = Github(token)\n    for repo in client.get_user().get_repos():\n        print(repo.full_name, repo.stargazers_count)\n'],
    ['a hex dump', hexdump],
    ['base64 lines', `-----BEGIN CERTIFICATE-----\n${pemBody}\n-----END CERTIFICATE-----`],
    ['UUIDs one per line', '123e4567-e89b-12d3-a456-426614174000\n9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b\nsk-0f9e8d7c-6b5a-4938-2716-0a1b2c3d4e5f'],
    ['a markdown table', '| name | prefix | length |\n|---|---|---|\n| GitHub | ghp_ | 40 |\n| Slack | xoxb- | 56 |\n| AWS | AKIA | 20 |\n| npm | npm_ | 40 |'],
    ['a column of numbers', '4000\n1500\n2300\n1200\n3300\n4100\n5200\n1800'],
    ['a table of amounts', 'id\tamount\tyear\n4111\t1111\t2024\n5500\t1200\t2023'],
    ['dates and phone numbers over lines', 'Meeting on 2024-01-15\n10:30 with +44 20 7946 0958\nand (212) 555-0143'],
    ['JSON with newline escapes', '{"text":"line one\\nline two\\nsk- is a prefix\\nAKIA too","n":[4111,1111,1111]}'],
  ];
  for (const [name, body] of negatives) {
    it(`does not block ${name}`, () => {
      const e = evaluatePolicy(all, request([user(body)]));
      assert.equal(e.action, 'allow', `${name}: ${e.ruleId} ${e.reason}`);
      const args = evaluatePolicy(all, request([user('go'), bashCall(JSON.stringify({ command: `cat <<EOF\n${body}\nEOF` }))]));
      assert.equal(args.action, 'allow', `${name} in tool arguments: ${args.ruleId} ${args.reason}`);
    });
  }

  it('a flood of spaced prefixes is bounded and fails closed, never open', () => {
    const flood = Array.from({ length: 4000 }, (_, i) => `s k - a n t - a p i 0 3 - ${i % 2 ? 'a b' : 'ab c'}`).join(' ');
    const started = performance.now();
    const e = evaluatePolicy(all, request([user(flood)]));
    const ms = performance.now() - started;
    assert.ok(ms < 3000, `took ${ms} ms`);
    assert.ok(e.action === 'allow' || (e.action === 'block' && /fail closed/.test(e.reason)), e.reason);
  });
});
