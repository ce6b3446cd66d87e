/**
 * "An answer is complete at the client only once its record is committed", when the record
 * cannot be committed. The store refuses the call's result (a trigger on the real database makes
 * the UPDATE that writes it fail, every time, as a full disk or a broken file would) while the
 * request record still goes through: the client must not get a complete-looking answer. Streams
 * end with the provider's in-stream error instead of `[DONE]` / `message_stop` /
 * `response.completed`, and the official SDKs raise it; bodies get 503 in the provider's shape.
 * The call stays `pending` and is settled `aborted` by the next gateway start.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { pino } from 'pino';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const PROMPT = 'my-secret-prompt-text-7781';
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    lines.push(chunk.toString('utf8'));
    cb();
  },
});

let h: Harness;
let db: DatabaseSync;
before(async () => {
  h = await startHarness({ logger: pino({ level: 'info' }, sink) });
  db = new DatabaseSync(join(h.dir, 'aigov.db'));
});
after(async () => {
  db.close();
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
  lines.length = 0;
  db.exec('DROP TRIGGER IF EXISTS refuse_results');
});

/** From now on every call result the gateway writes fails inside its transaction. */
function refuseResults(): void {
  db.exec(`CREATE TRIGGER refuse_results BEFORE UPDATE OF status ON calls WHEN NEW.status <> 'pending'
    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; callId: string | null; text: string }> {
  const res = await fetch(h.url + path, { method: 'POST', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, callId: res.headers.get('x-aigov-call-id'), text: await res.text() };
}

async function statusOf(callId: string): Promise<string | undefined> {
  return (await h.gateway.store.getCall(callId))?.status;
}

function logText(): string {
  return lines.join('');
}

describe('the result of a call cannot be committed', () => {
  it('a chat stream ends with the in-stream error instead of [DONE]; the SDK raises it', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: { size: 40 } });
    refuseResults();
    const res = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: PROMPT }] });
    assert.equal(res.status, 200, 'the stream had begun');
    assert.ok(res.text.includes('"content"'), 'the events before the end were delivered');
    assert.ok(!res.text.includes('[DONE]'), 'no terminal event');
    assert.match(res.text, /data: \{"error":\{"message":"The answer was withheld: the gateway could not record its result[^"]*","type":"api_error","param":null,"code":"AIGOV_E_STORE_RESULT_FAILED"\}\}\n\n$/);
    assert.equal(await statusOf(res.callId!), 'pending');

    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: PROMPT }] });
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) void chunk;
      })(),
      /The answer was withheld/,
    );
    const log = logText();
    assert.match(log, /could not record the call result; the call stays pending/);
    assert.ok(!log.includes(PROMPT), 'the prompt never reaches the log');
  });

  it('an Anthropic stream ends with an error event instead of message_stop', async () => {
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream'), { chunking: 'bytes' });
    refuseResults();
    const res = await post('/anthropic/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: PROMPT }] }, { 'anthropic-version': '2023-06-01' });
    assert.ok(res.text.includes('content_block_delta'));
    assert.ok(!res.text.includes('message_stop'));
    assert.match(res.text, /event: error\ndata: .*AIGOV_E_STORE_RESULT_FAILED|event: error\ndata: .*The answer was withheld/);
    assert.equal(await statusOf(res.callId!), 'pending');
    const client = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 });
    await assert.rejects(client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] }).finalMessage(), /withheld/);
  });

  it('a Responses stream does not get response.completed', async () => {
    h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses-stream'), { chunking: { size: 64 } });
    refuseResults();
    const res = await post('/openai/v1/responses', { model: 'gpt-4o-mini', stream: true, input: PROMPT });
    assert.ok(res.text.includes('response.output_text.delta'));
    assert.ok(!res.text.includes('response.completed'));
    assert.match(res.text, /event: error\ndata: \{"type":"error","code":"AIGOV_E_STORE_RESULT_FAILED"/);
  });

  it('a body gets 503 in the provider\'s shape, not the upstream\'s answer', async () => {
    const transcript = loadTranscript('openai-chat');
    h.upstream.route('POST', '/v1/chat/completions', transcript);
    refuseResults();
    const res = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] });
    assert.equal(res.status, 503);
    const body = JSON.parse(res.text) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'AIGOV_E_STORE_RESULT_FAILED');
    assert.equal(body.error.type, 'api_error');
    assert.ok(!res.text.includes('chatcmpl'), 'nothing of the upstream answer');
    assert.equal(await statusOf(res.callId!), 'pending');

    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
    const anthropic = await post('/anthropic/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] }, { 'anthropic-version': '2023-06-01' });
    assert.equal(anthropic.status, 503);
    assert.equal((JSON.parse(anthropic.text) as { type: string; error: { type: string } }).type, 'error');
  });

  it('with the store healthy again, answers are whole; the calls left pending are settled by the next start', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    refuseResults();
    const refused = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(refused.status, 503);
    db.exec('DROP TRIGGER refuse_results');
    const ok = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'y' }] });
    assert.equal(ok.status, 200);
    assert.equal(await statusOf(ok.callId!), 'completed');

    await h.restart();
    const settled = await h.gateway.store.getCall(refused.callId!);
    assert.equal(settled?.status, 'aborted');
    assert.equal(settled?.errorCode, 'AIGOV_E_GATEWAY_STOPPED');
    assert.match(logText(), /calls left pending by a gateway that stopped were marked aborted/);
    assert.equal(await statusOf(ok.callId!), 'completed');
  });
});
