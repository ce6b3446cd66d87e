/**
 * The policy engine: schema errors (file + key path + expectation), precedence, shadow mode,
 * principal scoping, tool gating, normalization against bypasses, fail closed / fail open, and
 * the masking plans handed to the gateway. Real built-in detectors; policies from YAML text.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPolicy, parsePolicyText, type LoadPolicyOptions } from '../src/config/load-policy.ts';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { detectEntities } from '../src/core/detection/index.ts';
import type { Detector } from '../src/core/detection/types.ts';
import { isAigovError, type AigovError } from '../src/core/errors.ts';
import type { ContentPart, NormalizedMessage, Principal, ToolDefinition } from '../src/core/events.ts';
import { maskText } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { StreamMasker } from '../src/core/masking/stream-masker.ts';
import { applyPlannedSpans, checkToolCall, createRequestRewriter, evaluatePolicy, type PolicyEvaluation, type PolicyInput } from '../src/core/policy/index.ts';

/** A GitHub token with a valid checksum, built at run time (no literal secret in the repo). */
function githubToken(seed = 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1'): string {
  return ['gh', 'p_'].join('') + seed + base62Encode(crc32(seed), 6);
}

function compile(yaml: string, options: LoadPolicyOptions = {}) {
  return parsePolicyText(yaml, 'inline-policy.yaml', options).compiled;
}

const ALICE: Principal = { subject: 'alice', email: 'alice@example.com', groups: ['eng'], issuer: 'https://idp.test', clientId: null };

function input(messages: NormalizedMessage[], extra: Partial<PolicyInput> & { tools?: ToolDefinition[] } = {}): PolicyInput {
  const { tools = [], ...rest } = extra;
  return {
    principal: ALICE,
    provider: 'openai',
    model: 'gpt-4o',
    endpoint: 'openai.chat.completions',
    request: { endpoint: 'openai.chat.completions', model: 'gpt-4o', stream: false, messages, tools, inputs: [], texts: [] },
    ...rest,
  };
}

const user = (...parts: (string | ContentPart)[]): NormalizedMessage => ({ role: 'user', parts: parts.map((p) => (typeof p === 'string' ? { type: 'text', text: p } : p)) });
const prompt = (text: string, extra: Parameters<typeof input>[1] = {}): PolicyInput => input([user(text)], extra);

function ruleIds(evaluation: PolicyEvaluation): string[] {
  return evaluation.decisions.map((d) => `${d.ruleId}:${d.effect}`);
}

describe('policy file errors name the file, the key path and the expectation', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-policy-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function loadError(yaml: string, env: Record<string, string> = {}): Promise<AigovError> {
    const file = join(dir, `p-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, yaml);
    try {
      loadPolicy(file, { env });
    } catch (error) {
      assert.ok(isAigovError(error), `expected an AigovError, got ${String(error)}`);
      assert.ok(error.message.includes(file), 'the message names the file');
      return error;
    }
    assert.fail('the policy loaded');
  }

  it('reports a bad action, an unknown key and a missing version with their paths, a rule by its id first', async () => {
    const error = await loadError('rules:\n  - id: r1\n    action: nope\n    colour: red\n  - action: nope\n  - { id: "\\e[2J", action: nope }\n');
    assert.equal(error.code, 'AIGOV_E_POLICY_INVALID');
    assert.equal(error.exitCode, 78);
    assert.match(error.message, /- version: expected version: 1/);
    assert.match(error.message, /- rule "r1", rules\[0\]\.action: .*"allow"/);
    assert.match(error.message, /- rule "r1", rules\[0\]: unknown key "colour"/);
    assert.match(error.message, /^ {2}- rules\[1\]\.action: /m, 'a rule without an id keeps its index alone');
    assert.match(error.message, /^ {2}- rule "\\u\{1b\}\[2J", rules\[2\]\.action: /m, 'an id is shown escaped, never as a terminal escape');
  });

  it('refuses an unknown entity type, naming the known ones', async () => {
    const error = await loadError('version: 1\nrules:\n  - id: r1\n    match: { detectors: [EMAIL_ADDRESS, NOT_A_TYPE] }\n    action: block\n');
    assert.match(error.message, /rules\[0\]\.match\.detectors\[1\]\.type: unknown entity type "NOT_A_TYPE"; expected a known type \(.*EMAIL_ADDRESS.*\)/);
  });

  it('refuses regexes the linear-time engine cannot run, in rules and custom detectors, naming each key path', async () => {
    const error = await loadError(
      [
        'version: 1',
        'detectors:',
        "  - { id: bad, type: BAD, pattern: '(a{1,100}){1,100}$', max_length: 20 }",
        'rules:',
        '  - id: r1',
        "    match: { regex: ['(x)\\1'] }",
        '    action: block',
        '  - id: r2',
        "    match: { tools: { arguments: ['rm(?= -rf)'] } }",
        '    action: block',
      ].join('\n'),
    );
    assert.match(error.message, /- detectors\[0\]\.pattern: pattern refused: it compiles to 20001 instructions/);
    assert.match(error.message, /- rule "r1", rules\[0\]\.match\.regex\[0\]\.pattern: pattern refused: backreferences/);
    assert.match(error.message, /- rule "r2", rules\[1\]\.match\.tools\.arguments\[0\]: pattern refused: lookarounds/);
  });

  it('refuses duplicate rule ids, masking without a target, misplaced operators and inline hmac keys', async () => {
    const error = await loadError(
      [
        'version: 1',
        'rules:',
        '  - { id: same, action: log }',
        '  - { id: same, action: log }',
        '  - { id: m, action: mask_request }',
        '  - { id: o, action: block, operator: redact }',
        "  - { id: h, action: mask_response, match: { detectors: [EMAIL_ADDRESS] }, operator: { kind: hmac, key: 'inline-secret-value' } }",
      ].join('\n'),
    );
    assert.match(error.message, /rules\[1\]\.id: duplicate rule id "same"/);
    assert.match(error.message, /rules\[2\]\.match: action mask_request needs match\.detectors/);
    assert.match(error.message, /rules\[3\]\.operator: operator applies only to mask_request and mask_response/);
    assert.match(error.message, /rules\[4\]\.operator\.key: .*inline keys are refused/);
    assert.doesNotMatch(error.message, /inline-secret-value/, 'a key value is never echoed');
  });

  it('resolves an hmac key from the environment and names the path when it is missing', async () => {
    const yaml = 'version: 1\nrules:\n  - { id: h, action: mask_response, match: { detectors: [EMAIL_ADDRESS] }, operator: { kind: hmac, key: "${MY_HMAC_KEY}" } }\n';
    const missing = await loadError(yaml);
    assert.match(missing.message, /rules\[0\]\.operator\.key: environment variable MY_HMAC_KEY is not set/);
    const file = join(dir, 'hmac.yaml');
    await writeFile(file, yaml);
    const loaded = loadPolicy(file, { env: { MY_HMAC_KEY: 'k1' } });
    assert.deepEqual(loaded.document.rules[0]?.operator, { kind: 'hmac', key: 'k1' });
  });

  it('reports YAML syntax errors and unreadable files with their own codes', async () => {
    const syntax = await loadError('version: 1\nrules: [\n');
    assert.equal(syntax.code, 'AIGOV_E_POLICY_INVALID');
    assert.match(syntax.message, /expected valid YAML/);
    assert.throws(() => loadPolicy(join(dir, 'absent.yaml')), (e: unknown) => isAigovError(e) && e.code === 'AIGOV_E_POLICY_NOT_FOUND' && e.exitCode === 66);
  });
});

describe('precedence', () => {
  it('the first matching terminal rule decides; later ones are superseded', () => {
    const policy = compile(`
version: 1
rules:
  - { id: allow-eng, match: { groups: [eng] }, action: allow }
  - { id: block-email, match: { detectors: [EMAIL_ADDRESS] }, action: block }
`);
    const e = evaluatePolicy(policy, prompt('write to bob@example.com'));
    assert.equal(e.action, 'allow');
    assert.equal(e.ruleId, 'allow-eng');
    assert.deepEqual(ruleIds(e), ['allow-eng:enforced', 'block-email:superseded']);

    const reversed = compile(`
version: 1
rules:
  - { id: block-email, match: { detectors: [EMAIL_ADDRESS] }, action: block }
  - { id: allow-eng, match: { groups: [eng] }, action: allow }
`);
    const r = evaluatePolicy(reversed, prompt('write to bob@example.com'));
    assert.equal(r.action, 'block');
    assert.equal(r.ruleId, 'block-email');
    assert.deepEqual(ruleIds(r), ['block-email:enforced', 'allow-eng:superseded']);
  });

  it('masking and log rules accumulate wherever they stand; the earlier rule wins on overlaps', () => {
    const policy = compile(`
version: 1
rules:
  - { id: allow-all, action: allow }
  - { id: pseudo, match: { detectors: [EMAIL_ADDRESS] }, action: pseudonymize }
  - { id: redact, match: { detectors: [EMAIL_ADDRESS, CREDIT_CARD] }, action: mask_request }
  - { id: audit, action: log }
`);
    const text = 'mail bob@example.com, card 4111 1111 1111 1111';
    const e = evaluatePolicy(policy, prompt(text));
    assert.equal(e.action, 'allow');
    assert.deepEqual(ruleIds(e), ['allow-all:enforced', 'pseudo:enforced', 'redact:enforced', 'audit:enforced']);
    const target = e.requestMasking?.targets[0];
    assert.ok(target && e.requestMasking?.pseudonymize);
    assert.deepEqual(target.location, { kind: 'message', message: 0, part: 0, role: 'user', field: 'text' });
    assert.deepEqual(target.spans.map((s) => [s.type, s.ruleId, s.operator.kind]), [['EMAIL_ADDRESS', 'pseudo', 'pseudonymize'], ['CREDIT_CARD', 'redact', 'redact']]);
    assert.equal(applyPlannedSpans(text, target.spans, new PseudonymVault()), 'mail «EMAIL_1», card [CREDIT_CARD]');
  });

  it('falls back to the default action and records it', () => {
    const policy = compile('version: 1\ndefault_action: require_approval\nrules:\n  - { id: never, match: { users: [nobody] }, action: allow }\n');
    const e = evaluatePolicy(policy, prompt('hello'));
    assert.equal(e.action, 'require_approval');
    assert.equal(e.ruleId, 'default');
    assert.deepEqual(ruleIds(e), ['default:enforced']);
  });

  it('counts hits for min_matches across the whole request', () => {
    const policy = compile('version: 1\nrules:\n  - { id: dump, match: { detectors: [EMAIL_ADDRESS], min_matches: 3 }, action: block }\n');
    assert.equal(evaluatePolicy(policy, prompt('a@example.com b@example.com')).action, 'allow');
    assert.equal(evaluatePolicy(policy, input([user('a@example.com b@example.com'), user('c@example.com')])).action, 'block');
  });
});

describe('shadow mode', () => {
  it('records a matching shadow rule and enforces nothing', () => {
    const policy = compile(`
version: 1
rules:
  - { id: trial-block, mode: shadow, match: { detectors: [EMAIL_ADDRESS] }, action: block }
  - { id: trial-mask, mode: shadow, match: { detectors: [EMAIL_ADDRESS] }, action: mask_request }
  - { id: trial-answers, mode: shadow, match: { detectors: [EMAIL_ADDRESS] }, action: mask_response }
`);
    const e = evaluatePolicy(policy, prompt('bob@example.com'));
    assert.equal(e.action, 'allow');
    assert.equal(e.ruleId, 'default');
    assert.deepEqual(ruleIds(e), ['trial-block:shadow', 'trial-mask:shadow', 'trial-answers:shadow', 'default:enforced']);
    assert.equal(e.requestMasking, null);
    assert.equal(e.responseMasking, null);
  });
});

describe('principal, provider, model and endpoint scoping', () => {
  const policy = compile(`
version: 1
rules:
  - { id: contractors, match: { groups: [contractors] }, action: block }
  - { id: vendor-users, match: { users: ['*@vendor.example'] }, action: require_approval }
  - { id: preview, match: { models: ['*-preview*'], providers: [openai] }, action: block }
  - { id: embeddings, match: { endpoints: ['openai.embed*'] }, action: log }
`);
  it('matches groups and users (subject or email, with wildcards)', () => {
    assert.equal(evaluatePolicy(policy, prompt('hi')).action, 'allow');
    const contractor = { ...ALICE, groups: ['eng', 'contractors'] };
    assert.equal(evaluatePolicy(policy, prompt('hi', { principal: contractor })).ruleId, 'contractors');
    const vendor = { ...ALICE, subject: 'u-123', email: 'Eve@Vendor.example', groups: [] };
    assert.equal(evaluatePolicy(policy, prompt('hi', { principal: vendor })).ruleId, 'vendor-users');
  });
  it('matches models, providers and endpoints', () => {
    assert.equal(evaluatePolicy(policy, prompt('hi', { model: 'gpt-5-preview-1' })).ruleId, 'preview');
    assert.equal(evaluatePolicy(policy, prompt('hi', { model: 'gpt-5-preview-1', provider: 'azure' })).ruleId, 'default');
    assert.equal(evaluatePolicy(policy, prompt('hi', { model: null })).ruleId, 'default');
    const e = evaluatePolicy(policy, prompt('hi', { endpoint: 'openai.embeddings' }));
    assert.deepEqual(ruleIds(e), ['embeddings:enforced', 'default:enforced']);
  });
});

describe('content walking', () => {
  const policy = compile(`
version: 1
rules:
  - { id: system-only, match: { roles: [system], keywords: [codename] }, action: require_approval }
  - { id: secrets, match: { detectors: [GITHUB_TOKEN] }, action: block }
`);
  it('looks at system prompts, tool results, tool-call arguments, embedding inputs and tool definitions', () => {
    const token = githubToken();
    const system: NormalizedMessage = { role: 'system', parts: [{ type: 'text', text: 'The CODENAME is secret' }] };
    assert.equal(evaluatePolicy(policy, input([system, user('hi')])).ruleId, 'system-only');
    assert.equal(evaluatePolicy(policy, input([user('the codename')])).ruleId, 'default', 'roles narrow the content');

    const toolResult = input([{ role: 'tool', parts: [{ type: 'tool_result', toolCallId: 'c1', text: `env: ${token}` }] }]);
    assert.equal(evaluatePolicy(policy, toolResult).ruleId, 'secrets');
    const toolCall = input([{ role: 'assistant', parts: [{ type: 'tool_call', id: 'c1', name: 'login', arguments: JSON.stringify({ token }) }] }]);
    const e = evaluatePolicy(policy, toolCall);
    assert.equal(e.ruleId, 'secrets');
    assert.deepEqual(e.findings[0]?.location, { kind: 'message', message: 0, part: 0, role: 'assistant', field: 'tool_arguments' });
    const embedding = prompt('x');
    assert.equal(evaluatePolicy(policy, { ...embedding, request: { ...embedding.request, messages: [], inputs: ['ok', token] } }).ruleId, 'secrets');
    assert.equal(evaluatePolicy(policy, prompt('hi', { tools: [{ name: 'gh', description: `uses ${token}` }] })).ruleId, 'secrets');
  });

  it('never puts a matched value in a reason', () => {
    const token = githubToken();
    const e = evaluatePolicy(policy, prompt(`use ${token}`));
    assert.equal(e.action, 'block');
    for (const d of e.decisions) assert.ok(!d.reason.includes(token) && !d.reason.includes(token.slice(4, 20)));
    assert.match(e.reason, /GITHUB_TOKEN/);
  });
});

describe('normalization defeats bypass attempts', () => {
  const policy = compile(`
version: 1
rules:
  - { id: block-secrets, match: { detectors: [GITHUB_TOKEN] }, action: block }
  - { id: prod, match: { keywords: [PROD_DB_PASSWORD] }, action: require_approval }
  - { id: redact-email, match: { detectors: [EMAIL_ADDRESS] }, action: mask_request }
`);
  it('a zero-width space inside a token does not split it past the rule', () => {
    const token = githubToken();
    const split = `${token.slice(0, 10)}\u200B${token.slice(10, 20)}\u2060${token.slice(20)}`;
    assert.notEqual(split, token);
    const e = evaluatePolicy(policy, prompt(`here: ${split}`));
    assert.equal(e.action, 'block');
    assert.equal(e.ruleId, 'block-secrets');
    // The finding covers the original text, invisible characters included.
    const d = e.findings[0]?.detections[0];
    assert.deepEqual([d?.start, d?.end], [6, 6 + split.length]);
  });

  it('fullwidth letters and soft hyphens do not hide a keyword; the mask covers the original span', () => {
    assert.equal(evaluatePolicy(policy, prompt('what is ＰＲＯＤ_DB_PASS\u00ADWORD?')).ruleId, 'prod');
    const text = 'mail bob\u200B@example.com now';
    const e = evaluatePolicy(policy, prompt(text));
    const spans = e.requestMasking?.targets[0]?.spans ?? [];
    assert.equal(applyPlannedSpans(text, spans), 'mail [EMAIL] now');
  });
});

describe('tool definitions and tool calls', () => {
  const policy = compile(`
version: 1
rules:
  - { id: no-shell, match: { tools: { names: [shell, 'exec_*'] } }, action: block }
  - { id: no-rm, match: { tools: { names: [run], arguments: ['rm\\s+-rf\\s+/'] } }, action: block }
  - { id: trial-no-curl, mode: shadow, match: { tools: { arguments: ['curl\\s'] } }, action: block }
`);
  const call = (name: string, args: unknown): NormalizedMessage => ({ role: 'assistant', parts: [{ type: 'tool_call', id: 'c1', name, arguments: JSON.stringify(args) }] });

  it('blocks a request that defines or calls a forbidden tool name (case-insensitive, normalized)', () => {
    assert.equal(evaluatePolicy(policy, prompt('hi', { tools: [{ name: 'read_file' }] })).action, 'allow');
    assert.equal(evaluatePolicy(policy, prompt('hi', { tools: [{ name: 'Exec_Python' }] })).ruleId, 'no-shell');
    assert.equal(evaluatePolicy(policy, input([call('sh\u200Bell', {})])).ruleId, 'no-shell');
  });

  it('matches argument patterns only on calls of the named tools', () => {
    assert.equal(evaluatePolicy(policy, input([call('run', { cmd: 'ls -la /' })])).action, 'allow');
    assert.equal(evaluatePolicy(policy, input([call('run', { cmd: 'rm -rf /' })])).ruleId, 'no-rm');
    assert.equal(evaluatePolicy(policy, input([call('other', { cmd: 'rm -rf /' })])).action, 'allow');
    assert.equal(evaluatePolicy(policy, prompt('hi', { tools: [{ name: 'run' }] })).action, 'allow', 'a definition has no arguments');
    const shadow = evaluatePolicy(policy, input([call('fetch', { cmd: 'curl http://x' })]));
    assert.equal(shadow.action, 'allow');
    assert.deepEqual(ruleIds(shadow), ['trial-no-curl:shadow', 'default:enforced']);
  });

  it('hands the gateway a gate for tool calls in answers', () => {
    const e = evaluatePolicy(policy, prompt('hi'));
    const gate = e.toolGate;
    assert.ok(gate);
    assert.deepEqual(gate.entries.map((g) => [g.ruleId, g.mode]), [['no-shell', 'enforce'], ['no-rm', 'enforce'], ['trial-no-curl', 'shadow']]);
    assert.deepEqual(checkToolCall(gate, { name: 'SHELL', arguments: '{}' }).map((h) => h.ruleId), ['no-shell']);
    assert.deepEqual(checkToolCall(gate, { name: 'run', arguments: '{"cmd":"rm  -rf /tmp"}' }).map((h) => h.ruleId), ['no-rm']);
    assert.deepEqual(checkToolCall(gate, { name: 'run', arguments: '{"cmd":"curl x"}' }).map((h) => h.ruleId), ['trial-no-curl']);
    assert.deepEqual(checkToolCall(gate, { name: 'read_file', arguments: '{"path":"a"}' }), []);
  });
});

describe('analyzer errors', () => {
  const boom: Detector = {
    id: 'boom',
    type: 'BOOM',
    maxLength: 10,
    detect() {
      throw new Error('detector bug');
    },
  };
  const yaml = (extra: string) => `
version: 1
rules:
  - { id: allow-eng, match: { groups: [eng] }, action: allow }
  - { id: fragile, match: { detectors: [BOOM] }, action: mask_request${extra} }
`;

  it('a detector that throws refuses the request (fail closed), even after an allow', () => {
    const e = evaluatePolicy(compile(yaml(''), { detectors: [boom] }), prompt('anything'));
    assert.equal(e.action, 'block');
    assert.equal(e.ruleId, 'fragile');
    assert.match(e.reason, /content analyzer fragile\/boom failed.*fail closed/);
    assert.deepEqual(e.decisions.map((d) => [d.ruleId, d.action, d.effect, d.error]), [
      ['allow-eng', 'allow', 'enforced', undefined],
      ['fragile', 'block', 'enforced', 'fail_closed'],
    ]);
  });

  it('with on_error: fail_open the rule is skipped, the request allowed, and the skip recorded', () => {
    const e = evaluatePolicy(compile(yaml(', on_error: fail_open'), { detectors: [boom] }), prompt('anything'));
    assert.equal(e.action, 'allow');
    assert.equal(e.ruleId, 'allow-eng');
    assert.deepEqual(e.decisions.map((d) => [d.ruleId, d.effect, d.error]), [['allow-eng', 'enforced', undefined], ['fragile', 'skipped', 'fail_open']]);
    assert.match(e.decisions[1]?.reason ?? '', /skipped \(on_error: fail_open\)/);
  });

  it('a shadow rule that throws is recorded and enforces nothing', () => {
    const e = evaluatePolicy(compile(yaml(', mode: shadow'), { detectors: [boom] }), prompt('anything'));
    assert.equal(e.action, 'allow');
    assert.deepEqual(e.decisions.map((d) => [d.ruleId, d.effect, d.error]), [['allow-eng', 'enforced', undefined], ['fragile', 'shadow', 'fail_closed']]);
  });

  it('a terminal rule that throws blocks unless an earlier terminal rule decided', () => {
    const policy = compile('version: 1\nrules:\n  - { id: gate, match: { detectors: [BOOM] }, action: allow }\n  - { id: later, action: allow }\n', { detectors: [boom] });
    const e = evaluatePolicy(policy, prompt('x'));
    assert.equal(e.action, 'block');
    assert.deepEqual(ruleIds(e), ['gate:enforced', 'later:superseded']);
  });
});

describe('request rewriter for the gateway', () => {
  it('applies the planned spans by location: a slot elsewhere keeps its text, a slot that is a piece of a text gets its share', () => {
    const policy = compile(`
version: 1
rules:
  - { id: pseudo, match: { roles: [user], detectors: [EMAIL_ADDRESS] }, action: pseudonymize }
  - { id: cards, match: { detectors: [CREDIT_CARD] }, action: mask_request, operator: { kind: mask, keep_last: 4 } }
  - { id: unmatched, match: { detectors: [IBAN_CODE] }, action: mask_request }
`);
    const text = 'bob@example.com pays with 4111 1111 1111 1111';
    const e = evaluatePolicy(policy, prompt(text));
    assert.ok(e.requestMasking);
    assert.deepEqual(e.requestMasking.ruleIds, ['pseudo', 'cards']);
    const vault = new PseudonymVault();
    const rewrite = createRequestRewriter(e.requestMasking, vault);
    const location = { kind: 'message', message: 0, part: 0, role: 'user', field: 'text' } as const;
    assert.equal(rewrite({ location, text, offset: 0 }), '«EMAIL_1» pays with ***************1111');
    // No second detection pass: a text at a location policy planned nothing for is left as it is.
    assert.equal(rewrite({ location: { ...location, message: 1 }, text: '{"to":"bob@example.com"}', offset: 0 }), '{"to":"bob@example.com"}');
    // The same text in two pieces (content parts joined): each piece masks its part of each span.
    assert.equal(rewrite({ location, text: text.slice(0, 20), offset: 0 }) + rewrite({ location, text: text.slice(20), offset: 20 }), '«EMAIL_1» pays with ***************1111');
    assert.equal(vault.restore('answer for «EMAIL_1»'), 'answer for bob@example.com');
  });
});

describe('response masking plan', () => {
  it('gives the detectors and per-rule operators for answers', () => {
    const policy = compile(`
version: 1
rules:
  - { id: cards, match: { detectors: [CREDIT_CARD] }, action: mask_response, operator: { kind: mask, keep_last: 4 } }
  - { id: emails, match: { detectors: [EMAIL_ADDRESS] }, action: mask_response }
  - { id: eng-only, match: { groups: [finance], detectors: [IBAN_CODE] }, action: mask_response }
`);
    const e = evaluatePolicy(policy, prompt('anything'));
    const plan = e.responseMasking;
    assert.ok(plan);
    assert.deepEqual(plan.ruleIds, ['cards', 'emails']);
    assert.deepEqual(ruleIds(e), ['cards:enforced', 'emails:enforced', 'default:enforced']);
    const answer = 'Card 4111 1111 1111 1111 belongs to bob@example.com.';
    const masked = maskText(answer, detectEntities(answer, plan.detectors), plan.operatorFor);
    assert.equal(masked, 'Card ***************1111 belongs to [EMAIL].');
  });

  it("keeps the detectors' streaming hints: a stream holds back only what could still become an entity", () => {
    const policy = compile(`
version: 1
rules:
  - { id: pii, match: { detectors: [PII] }, action: mask_response }
`);
    const plan = evaluatePolicy(policy, prompt('anything')).responseMasking;
    assert.ok(plan);
    assert.ok(plan.detectors.every((d) => typeof d.settledBefore === 'function'), 'every built-in PII detector passes its hint through the rule wrappers');
    const masker = new StreamMasker({ detectors: plan.detectors, operatorFor: plan.operatorFor });
    const prose = 'The quarterly report is ready and the numbers look fine overall. ';
    const out = masker.push(prose.repeat(4));
    const held = prose.length * 4 - out.length;
    const longest = Math.max(...plan.detectors.map((d) => d.maxLength));
    assert.ok(held < 40, `held back ${held} characters of plain prose (the longest entity is ${longest})`);
    assert.equal(out + masker.end(), prose.repeat(4));
  });
});
