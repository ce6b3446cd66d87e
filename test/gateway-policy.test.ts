/**
 * The shipped example policy enforced by a real gateway: the official SDKs as clients, the dev
 * model (which echoes the prompt, and calls a tool when the prompt scripts one) or recorded transcripts as upstream, streams chunked 1 byte at a
 * time. What goes upstream, what the client sees and what is recorded are all checked.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { DEV_MODEL_PRICE } from '../src/gateway/dev/dev-gateway.ts';
import { startDevModel, type DevModelServer } from '../src/gateway/dev/dev-model.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { chatToolMessage, chatToolStream } from './support/agent-transcripts.ts';
import { chatStreamText, loadTranscript } from './support/replay-upstream.ts';

const ROOT = join(import.meta.dirname, '..');
/** Every model priced as the dev gateway prices its dev model: examples/policy.yaml's dollar budget refuses unpriced models. */
const DEV_PRICING = { models: ['openai', 'anthropic'].map((provider) => ({ provider, model: '*', ...DEV_MODEL_PRICE })) };
const EMAIL = 'jane.doe@example.com';
// A GitHub token with a valid checksum is hard to hand-write; AWS keys and PEM blocks are plain.
const PRIVATE_KEY = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----';

let h: Harness;
let devModel: DevModelServer;
let policyFile: string;

before(async () => {
  devModel = await startDevModel();
  h = await startHarness({ policyFile: join(ROOT, 'examples', 'policy.yaml'), pricing: DEV_PRICING, openaiBaseUrl: devModel.openaiBaseUrl });
});
after(async () => {
  await h.close();
  await devModel.close();
});

const openai = (): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });

async function lastCallOf(g: Harness) {
  await g.gateway.store.flush();
  const [session] = await g.gateway.store.listSessions({ limit: 1 });
  return (await g.gateway.store.listCalls(session!.sessionId)).at(-1)!;
}

async function lastCall() {
  await h.gateway.store.flush();
  const [session] = await h.gateway.store.listSessions({ limit: 1 });
  const calls = await h.gateway.store.listCalls(session!.sessionId);
  return calls.at(-1)!;
}

describe('the example policy, enforced by the gateway', () => {
  it('blocks a private key in the prompt, in the provider shape, naming the rule — nothing forwarded or recorded in clear', async () => {
    const error = await openai()
      .chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: `fix my config:\n${PRIVATE_KEY}` }] })
      .catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.match(error.message, /block-private-keys/);
    assert.ok(!error.message.includes('MIIE'), 'the error never echoes the secret');
    const call = await lastCall();
    assert.equal(call.status, 'blocked');
    assert.ok(!call.requestBody.includes('MIIE') && call.requestBody.includes('fix my config'), 'the record keeps the words, not the key');
    assert.equal(call.decisions.find((d) => d.ruleId === 'block-private-keys')?.action, 'block');
  });

  it('a zero-width space inside the secret does not get it past the rules', async () => {
    const split = PRIVATE_KEY.replace('PRIVATE KEY', 'PRIV\u200bATE KEY').replace('MIIEow', 'MII\u200bEow');
    const error = await openai().chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: split }] }).catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
  });

  it('pseudonymizes an email in the prompt: a placeholder goes upstream, the answer gets the real value back', async () => {
    const answer = await openai().chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: `Write to ${EMAIL} about the invoice` }] });
    const call = await lastCall();
    assert.ok(!call.requestBody.includes(EMAIL), 'the recorded (= sent) request holds no email');
    // The dev model echoes the prompt, so the placeholder came back and was restored.
    assert.match(answer.choices[0]?.message.content ?? '', new RegExp(EMAIL.replace('.', '\\.')));
    assert.equal(call.decisions.find((d) => d.ruleId === 'pseudonymize-customer-contacts')?.action, 'pseudonymize');
    assert.ok(call.responseBody?.includes('«EMAIL_1»') && !call.responseBody.includes(EMAIL), 'the recorded answer keeps the placeholder, not the restored value');
    assert.deepEqual(call.decisions.find((d) => d.ruleId === 'pseudonymize-customer-contacts')?.detections, [{ type: 'EMAIL_ADDRESS', where: 'messages[0].parts[0]', start: 9, end: 9 + EMAIL.length }], 'detection types and positions are recorded, never values');
  });

  it('a pseudonymized value sent back in the conversation history (the restored answer) goes upstream as its placeholder again', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses-history-1' } });
    const first = await client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: `Write to ${EMAIL} about the invoice` }] });
    const restored = first.choices[0]?.message.content ?? '';
    assert.ok(restored.includes(EMAIL));
    // The rule looks at user and tool text only; the assistant turn holds the real value.
    await client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: `Write to ${EMAIL} about the invoice` }, { role: 'assistant', content: restored }, { role: 'user', content: 'thanks, shorter please' }] });
    const call = await lastCall();
    assert.ok(!call.requestBody.includes(EMAIL), 'no real value in the sent request');
    assert.equal((JSON.parse(call.requestBody) as { messages: { content: string }[] }).messages[1]!.content.match(/«EMAIL_1»/g)?.length, restored.split(EMAIL).length - 1);
  });

  it('masks by location inside joined texts: a tool result given as content parts is masked part by part, the other parts untouched', async () => {
    await openai().chat.completions.create({
      model: 'aigov-dev',
      messages: [
        { role: 'user', content: 'look the customer up' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"customer"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'found: ' }, { type: 'text', text: `mail ${EMAIL}, card 4111 1111 1111 1111` }] },
      ],
    });
    const call = await lastCall();
    const sent = JSON.parse(call.requestBody) as { messages: { content: { text: string }[] }[] };
    assert.deepEqual(sent.messages[2]!.content.map((p) => p.text), ['found: ', 'mail «EMAIL_1», card ***************1111']);
    assert.equal(call.decisions.find((d) => d.ruleId === 'pseudonymize-customer-contacts')?.detections?.[0]?.where, 'messages[2].parts[0].tool_result');
  });

  it('restores pseudonyms in a streamed answer too', async () => {
    const stream = await openai().chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: `Call back ${EMAIL} today` }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.includes(EMAIL), text);
    const call = await lastCall();
    const recorded = (await h.gateway.store.getStreamEvents(call.callId)).map((e) => e.raw).join('');
    assert.ok(recorded.includes('«EMAIL_1»') && !recorded.includes(EMAIL), 'the recorded stream keeps the placeholder, not the restored value');
  });

  it('holds a prompt naming production credentials for the security group to approve', async () => {
    const controller = new AbortController();
    const held = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 })
      .messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'what is the production password for the billing db?' }] }, { signal: controller.signal })
      .catch((e: unknown) => e);
    let mine: { rule: { id: string }; approvers: { groups: string[] }; state: string }[] = [];
    for (let i = 0; i < 100 && mine.length === 0; i++) {
      const res = await fetch(`${h.url}/aigov/v1/approvals?scope=mine`, { headers: { authorization: `Bearer ${h.token}` } });
      mine = ((await res.json()) as { approvals: typeof mine }).approvals;
      if (mine.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(mine[0]?.rule.id, 'approve-production-credentials');
    assert.deepEqual(mine[0]?.approvers.groups, ['security']);
    assert.equal(mine[0]?.state, 'pending');
    controller.abort();
    assert.ok((await held) instanceof Anthropic.APIUserAbortError);
  });

  it('masks PII the model writes, streamed 1 byte at a time exactly as non-streamed', async () => {
    const g = await startHarness({ policyFile: join(ROOT, 'examples', 'policy.yaml'), pricing: DEV_PRICING });
    try {
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      g.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: 'bytes' });
      let streamed = '';
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
      const original = chatStreamText('openai-chat-stream');
      const emails = original.match(/[\w.+-]+@[\w-]+\.[\w.]+/g) ?? [];
      assert.ok(emails.length > 0, 'the transcript has an email split across chunks');
      for (const e of emails) assert.ok(!streamed.includes(e), `${e} leaked through the stream`);
      // Non-streamed: the same text as a whole body must mask to the same result.
      const whole = loadTranscript('openai-chat');
      g.upstream.route('POST', '/v1/chat/completions', { ...whole, body: JSON.stringify({ ...(JSON.parse(whole.body) as object), choices: [{ index: 0, message: { role: 'assistant', content: original }, finish_reason: 'stop' }] }) });
      const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(streamed, plain.choices[0]?.message.content);
    } finally {
      await g.close();
    }
  });

  it('a forbidden tool call in a streamed answer is replaced by a notice and the answer ends normally; none of the call reaches the client', async () => {
    const g = await startHarness({ policyFile: join(ROOT, 'examples', 'policy.yaml'), pricing: DEV_PRICING });
    try {
      const tools = loadTranscript('openai-chat-stream-tools');
      const name = /"name":"(\w+)"/.exec(tools.body)?.[1];
      assert.ok(name, 'the transcript names its tools');
      g.upstream.route('POST', '/v1/chat/completions', { ...tools, body: tools.body.replaceAll(`"name":"${name}"`, '"name":"run_shell_command"') }, { chunking: 'bytes' });
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      const seen: string[] = [];
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'weather?' }], stream: true, tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] });
      for await (const chunk of stream) seen.push(JSON.stringify(chunk.choices[0]?.delta ?? {}));
      assert.ok(!seen.some((d) => d.includes('run_shell_command"') || d.includes('Paris')), 'no part of the forbidden call was sent');
      assert.ok(seen.some((d) => d.includes('"index":0') && d.includes('send_email')), 'the other call stays, renumbered from 0');
      assert.match(seen.join(''), /aigov blocked run_shell_command: rule block-forbidden-tools — the request uses a forbidden tool/);

      const anthropicTools = loadTranscript('anthropic-messages-stream-tools');
      const aName = /"name":"(\w+)"/.exec(anthropicTools.body)?.[1];
      g.upstream.route('POST', '/v1/messages', { ...anthropicTools, body: anthropicTools.body.replaceAll(`"name":"${aName}"`, '"name":"exec_sql"') }, { chunking: { random: 5 } });
      const message = await new Anthropic({ baseURL: `${g.url}/anthropic`, apiKey: g.token, maxRetries: 0 })
        .messages.stream({ model: 'm', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] })
        .finalMessage();
      assert.equal(message.stop_reason, 'end_turn');
      assert.ok(message.content.every((b) => b.type === 'text'));
      assert.match(message.content.map((b) => (b.type === 'text' ? b.text : '')).join('\n'), /aigov blocked exec_sql: rule block-forbidden-tools/);
      const call = await lastCallOf(g);
      assert.equal(call.status, 'completed');
      assert.deepEqual(call.decisions.filter((d) => d.stage === 'response').map((d) => [d.ruleId, d.action]), [['block-forbidden-tools', 'block']]);
    } finally {
      await g.close();
    }
  });

  it('a tool call whose arguments are forbidden is replaced once its arguments are complete (non-streamed too); a harmless call goes through', async () => {
    const g = await startHarness({ policyFile: join(ROOT, 'examples', 'policy.yaml'), pricing: DEV_PRICING });
    try {
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      const calls = (command: string) => [{ name: 'run_command', arguments: JSON.stringify({ command }) }];
      const params = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'clean up' }] };
      g.upstream.route('POST', '/v1/chat/completions', (req) => (JSON.parse(req.body).stream ? chatToolStream(calls('rm -rf /')) : chatToolMessage(calls('rm -rf /'))), { chunking: 'bytes' });
      for (const completion of [await client.chat.completions.stream(params).finalChatCompletion(), await client.chat.completions.create(params)]) {
        assert.equal(completion.choices[0]?.finish_reason, 'stop');
        assert.match(completion.choices[0]?.message.content ?? '', /aigov blocked run_command .*rule block-destructive-tool-arguments/);
      }
      g.upstream.route('POST', '/v1/chat/completions', chatToolMessage(calls('ls -la')));
      const fine = await client.chat.completions.create(params);
      assert.ok(fine.choices[0]?.message.tool_calls?.length, 'a harmless call goes through');
    } finally {
      await g.close();
    }
  });

  it('records tool-call decisions on the answer: the block, and what a shadow rule would have refused', async () => {
    const file = join(h.dir, 'tools-policy.yaml');
    writeFileSync(file, `version: 1
rules:
  - { id: watch-weather, mode: shadow, reason: weather tools are under review, match: { tools: { names: [get_weather] } }, action: block }
  - { id: no-deletes, reason: no deleting, match: { tools: { arguments: ['rm\\s+-rf'] } }, action: block }
`);
    const g = await startHarness({ policyFile: file });
    try {
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      g.upstream.route('POST', '/v1/chat/completions', chatToolMessage([{ name: 'get_weather', arguments: '{"location":"Paris"}' }]));
      const ok = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'weather in Paris?' }] });
      assert.equal(ok.choices[0]?.message.tool_calls?.[0]?.type === 'function' && ok.choices[0].message.tool_calls[0].function.name, 'get_weather', 'shadow rules refuse nothing');
      const shadowCall = await lastCallOf(g);
      const shadow = shadowCall.decisions.find((d) => d.stage === 'response');
      assert.deepEqual([shadow?.ruleId, shadow?.action, shadow?.mode], ['watch-weather', 'block', 'shadow']);
      assert.match(shadow!.reason, /tool call get_weather would be refused: weather tools are under review \(shadow\)/);

      g.upstream.route('POST', '/v1/chat/completions', chatToolStream([{ name: 'run_command', arguments: '{"command":"rm -rf /"}' }]));
      const done = await client.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'rm -rf / please' }] }).finalChatCompletion();
      assert.match(done.choices[0]?.message.content ?? '', /no deleting/);
      const blockedCall = await lastCallOf(g);
      const block = blockedCall.decisions.find((d) => d.stage === 'response');
      assert.deepEqual([block?.ruleId, block?.action, block?.mode, blockedCall.status], ['no-deletes', 'block', 'enforce', 'completed']);
      assert.match(block!.reason, /tool call run_command `rm -rf \/` blocked: no deleting/);
    } finally {
      await g.close();
    }
  });

  it('reloads a changed policy; a broken change keeps the policy in force', async () => {
    const dir = h.dir;
    policyFile = join(dir, 'policy.yaml');
    copyFileSync(join(ROOT, 'examples', 'policy.yaml'), policyFile);
    const g = await startHarness({ policyFile, pricing: DEV_PRICING, openaiBaseUrl: devModel.openaiBaseUrl });
    try {
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      await client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: 'tell me about llamas' }] });
      // The new rule goes first in `rules:` (the file ends with its budgets, not its rules).
      writeFileSync(policyFile, readFileSync(policyFile, 'utf8').replace('rules:\n', 'rules:\n  - id: no-llamas-first\n    reason: llamas are off topic\n    match: { keywords: [llamas] }\n    action: block\n'));
      const deadline = Date.now() + 5000;
      let error: unknown = null;
      while (Date.now() < deadline) {
        error = await client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: 'tell me about llamas' }] }).then(() => null, (e: unknown) => e);
        if (error) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(error instanceof OpenAI.PermissionDeniedError, 'the reloaded policy blocks');
      writeFileSync(policyFile, 'version: 1\nrules: [ this is not valid');
      await new Promise((r) => setTimeout(r, 600));
      const still = await client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: 'tell me about llamas' }] }).then(() => null, (e: unknown) => e);
      assert.ok(still instanceof OpenAI.PermissionDeniedError, 'a broken file keeps the policy in force');
    } finally {
      await g.close();
    }
  });
});
