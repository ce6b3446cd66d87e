/**
 * examples/policy.yaml loads, and every one of its rules fires on a sample written for it.
 * Secrets in samples are assembled at run time (no literal credential in the repository).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPolicy } from '../src/config/load-policy.ts';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { detectEntities } from '../src/core/detection/index.ts';
import type { NormalizedMessage, Principal, ToolDefinition } from '../src/core/events.ts';
import { maskText } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { applyPlannedSpans, evaluatePolicy, type PolicyEvaluation, type PolicyInput } from '../src/core/policy/index.ts';

const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'policy.yaml');
const policy = loadPolicy(EXAMPLE, { env: {} });

const join_ = (...parts: string[]): string => parts.join('');
const seed = 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1';
const GITHUB = join_('gh', 'p_', seed, base62Encode(crc32(seed), 6));
const GITLAB = join_('gl', 'pat-', 'xK9mN2pQ4rS6tU8vW0yZ');
const SLACK = join_('xo', 'xb-', '123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx');
const PEM = join_('-----BEGIN ', 'RSA PRIVATE KEY-----\n', 'MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3kzGzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij\n', '-----END RSA PRIVATE KEY-----');

const ALICE: Principal = { subject: 'alice', email: 'alice@example.com', groups: ['eng'], issuer: 'https://idp.test', clientId: null };

interface Sample {
  readonly messages?: NormalizedMessage[];
  readonly text?: string;
  readonly tools?: ToolDefinition[];
  readonly principal?: Principal;
  readonly model?: string;
}

function run(sample: Sample): PolicyEvaluation {
  const messages = sample.messages ?? [{ role: 'user', parts: [{ type: 'text', text: sample.text ?? 'hello' }] }];
  const input: PolicyInput = {
    principal: sample.principal ?? ALICE,
    provider: 'openai',
    model: sample.model ?? 'gpt-4o',
    endpoint: 'openai.chat.completions',
    request: { endpoint: 'openai.chat.completions', model: sample.model ?? 'gpt-4o', stream: false, messages, tools: sample.tools ?? [], inputs: [], texts: [] },
  };
  return evaluatePolicy(policy.compiled, input);
}

const call = (name: string, args: unknown): NormalizedMessage => ({ role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name, arguments: JSON.stringify(args) }] });

/** For each rule: a sample and what it must lead to. */
const SAMPLES: Record<string, { sample: Sample; action: string; effect?: string; check?: (e: PolicyEvaluation, sample: Sample) => void }> = {
  'block-private-keys': { sample: { text: `deploy with this key:\n${PEM}` }, action: 'block' },
  'block-credential-dumps': { sample: { text: `GITHUB=${GITHUB}\nGITLAB=${GITLAB}\nSLACK=${SLACK}\n` }, action: 'block' },
  'mask-single-secrets': {
    sample: { text: `why does ${GITHUB} fail?` },
    action: 'allow',
    check: (e) => {
      const spans = e.requestMasking?.targets[0]?.spans ?? [];
      assert.equal(applyPlannedSpans(`why does ${GITHUB} fail?`, spans), 'why does [GITHUB_TOKEN] fail?');
    },
  },
  'block-forbidden-tools': { sample: { text: 'list files', tools: [{ name: 'Bash', description: 'runs a command' }] }, action: 'block' },
  'block-destructive-tool-arguments': { sample: { messages: [call('run_command', { cmd: 'rm -rf ~/projects' })] }, action: 'block' },
  'approve-production-credentials': { sample: { text: 'Where is PROD_DB_PASSWORD stored?' }, action: 'require_approval' },
  'approve-proprietary-code': { sample: { text: '// ACME CONFIDENTIAL\nexport function price() {}' }, action: 'require_approval' },
  'pseudonymize-customer-contacts': {
    sample: { text: 'Customer jane.doe@example.com asks for a refund' },
    action: 'allow',
    check: (e) => {
      const spans = e.requestMasking?.targets[0]?.spans ?? [];
      assert.equal(applyPlannedSpans('Customer jane.doe@example.com asks for a refund', spans, new PseudonymVault()), 'Customer «EMAIL_1» asks for a refund');
      assert.equal(e.requestMasking?.pseudonymize, true);
    },
  },
  'mask-customer-payment-data': {
    sample: { text: 'charge card 4111 1111 1111 1111 again' },
    action: 'allow',
    check: (e) => {
      const spans = e.requestMasking?.targets[0]?.spans ?? [];
      assert.equal(applyPlannedSpans('charge card 4111 1111 1111 1111 again', spans), 'charge card ***************1111 again');
    },
  },
  'mask-pii-in-answers': {
    sample: { text: 'who is our contact?' },
    action: 'allow',
    check: (e) => {
      const plan = e.responseMasking;
      assert.ok(plan);
      const answer = 'Write to jane.doe@example.com or use token ' + GITHUB;
      assert.equal(maskText(answer, detectEntities(answer, plan.detectors), plan.operatorFor), 'Write to [EMAIL] or use token [GITHUB_TOKEN]');
    },
  },
  'log-contractor-traffic': { sample: { principal: { ...ALICE, groups: ['contractors'] } }, action: 'allow' },
  'trial-block-preview-models': { sample: { model: 'gpt-5-preview-2026' }, action: 'allow', effect: 'shadow' },
};

describe('examples/policy.yaml', () => {
  it('has a sample for every rule', () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), policy.document.rules.map((r) => r.id).sort());
  });

  for (const [ruleId, { sample, action, effect = 'enforced', check }] of Object.entries(SAMPLES)) {
    it(`${ruleId} fires on its sample`, () => {
      const e = run(sample);
      const decision = e.decisions.find((d) => d.ruleId === ruleId);
      assert.ok(decision, `${ruleId} did not match; decisions: ${e.decisions.map((d) => d.ruleId).join(', ')}`);
      assert.equal(decision.effect, effect);
      assert.equal(e.action, action);
      if (action !== 'allow') assert.equal(e.ruleId, ruleId);
      check?.(e, sample);
    });
  }

  it('a plain prompt is allowed by the default', () => {
    const e = run({ text: 'Summarise the meeting notes.' });
    assert.equal(e.action, 'allow');
    assert.equal(e.ruleId, 'default');
    assert.equal(e.requestMasking, null);
  });
});
