/**
 * Every text field of an answer goes through the masker (issue 12, item 2), through a real
 * gateway with a mask_response policy on EMAIL_ADDRESS and PHONE_NUMBER: Anthropic `thinking`
 * blocks and `thinking_delta` events (`redacted_thinking` stays as sent: it is opaque), OpenAI
 * chat `refusal` and `reasoning_content` / `reasoning` (OpenAI-compatible servers), Responses
 * refusal parts and events, reasoning summaries and reasoning text. Upstream answers are replayed
 * in the real wire formats, the PII cut into 1..4-character deltas, the bytes chunked one by one
 * or at random places; each answer is read raw (the PII must not appear anywhere in the bytes)
 * and by the official SDK (which must still parse it, the masked text in place).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { pieces, sse } from './support/agent-transcripts.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import type { ReplayOptions, Transcript } from './support/replay-upstream.ts';

const EMAIL = 'jane.doe@example.com';
const PHONE = '+1 650-253-0000';
const PII_TEXT = `Reach the owner at ${EMAIL} or call ${PHONE} today.`;
const OPAQUE = 'EuYBCkQYAiJAVGhpcyBpcyBhbiBvcGFxdWUgcmVkYWN0ZWQgdGhpbmtpbmcgYmxvYg==';
const SIGNATURE = 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds';
const SEAL_PREFIX = 'aigov-thinking-seal.v1.';

const POLICY = `version: 1
rules:
  - id: mask-pii-in-answers
    match: { detectors: [EMAIL_ADDRESS, PHONE_NUMBER] }
    action: mask_response
`;

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const JSON_HEADERS = { 'content-type': 'application/json' };
const CHUNKINGS: readonly NonNullable<ReplayOptions['chunking']>[] = ['bytes', { random: 5 }];

/** Cuts text into 1..4-character pieces at seeded-random places (mid-address, mid-number). */
const cut = (text: string, seed: number): string[] => pieces(text, seed, 4);

function transcript(path: string, body: string, stream: boolean): Transcript {
  return { description: `answer with PII in every text field (${path})`, request: { method: 'POST', path }, status: 200, headers: stream ? SSE_HEADERS : JSON_HEADERS, body };
}

// --- Anthropic Messages: thinking, redacted_thinking, text -------------------------------------

function anthropicStream(): Transcript {
  let body = sse('message_start', { type: 'message_start', message: { id: 'msg_01Thinking', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, output_tokens: 1 } } });
  body += sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } });
  for (const piece of cut(`Thinking: ${PII_TEXT}`, 1)) body += sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: piece } });
  body += sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: SIGNATURE } });
  body += sse('content_block_stop', { type: 'content_block_stop', index: 0 });
  body += sse('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'redacted_thinking', data: OPAQUE } });
  body += sse('content_block_stop', { type: 'content_block_stop', index: 1 });
  body += sse('content_block_start', { type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } });
  for (const piece of cut(PII_TEXT, 2)) body += sse('content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: piece } });
  body += sse('content_block_stop', { type: 'content_block_stop', index: 2 });
  body += sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 60 } });
  body += sse('message_stop', { type: 'message_stop' });
  return transcript('/v1/messages', body, true);
}

function anthropicMessage(): Transcript {
  const content = [
    { type: 'thinking', thinking: `Thinking: ${PII_TEXT}`, signature: SIGNATURE },
    { type: 'redacted_thinking', data: OPAQUE },
    { type: 'text', text: PII_TEXT },
  ];
  return transcript('/v1/messages', JSON.stringify({ id: 'msg_01Thinking', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content, stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 40, output_tokens: 60 } }), false);
}

// --- OpenAI Chat Completions: reasoning_content, reasoning, refusal, content ------------------

const CHAT_BASE = { id: 'chatcmpl-Fields', object: 'chat.completion.chunk', created: 1760433170, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_fields' };

/** Choice 0 reasons (`reasoning_content`) then answers; choice 1 reasons (`reasoning`) then refuses. */
function chatStream(): Transcript {
  const chunk = (index: number, delta: unknown, finish: string | null = null): string => sse(null, { ...CHAT_BASE, choices: [{ index, delta, logprobs: null, finish_reason: finish }], usage: null });
  let body = chunk(0, { role: 'assistant', content: '' }) + chunk(1, { role: 'assistant', content: null });
  for (const piece of cut(`Reasoning: ${PII_TEXT}`, 3)) body += chunk(0, { reasoning_content: piece });
  for (const piece of cut(`Reasoning too: ${PII_TEXT}`, 4)) body += chunk(1, { reasoning: piece });
  for (const piece of cut(PII_TEXT, 5)) body += chunk(0, { content: piece });
  for (const piece of cut(`I can't help: ${PII_TEXT}`, 6)) body += chunk(1, { refusal: piece });
  body += chunk(0, {}, 'stop') + chunk(1, {}, 'stop');
  body += sse(null, { ...CHAT_BASE, choices: [], usage: { prompt_tokens: 9, completion_tokens: 60, total_tokens: 69 } });
  body += 'data: [DONE]\n\n';
  return transcript('/v1/chat/completions', body, true);
}

function chatMessage(): Transcript {
  const choices = [
    { index: 0, message: { role: 'assistant', content: PII_TEXT, reasoning_content: `Reasoning: ${PII_TEXT}`, refusal: null }, logprobs: null, finish_reason: 'stop' },
    { index: 1, message: { role: 'assistant', content: null, reasoning: `Reasoning too: ${PII_TEXT}`, refusal: `I can't help: ${PII_TEXT}` }, logprobs: null, finish_reason: 'stop' },
  ];
  return transcript('/v1/chat/completions', JSON.stringify({ id: 'chatcmpl-Fields', object: 'chat.completion', created: 1760433170, model: 'gpt-4o-2024-08-06', choices, usage: { prompt_tokens: 9, completion_tokens: 60, total_tokens: 69 } }), false);
}

// --- OpenAI Responses: reasoning summary and text, a refusal part, output text ----------------

const REASONING_ITEM = { id: 'rs_fields0', type: 'reasoning', summary: [{ type: 'summary_text', text: `Summary: ${PII_TEXT}` }], content: [{ type: 'reasoning_text', text: `Reasoning: ${PII_TEXT}` }], encrypted_content: OPAQUE };
const MESSAGE_ITEM = { id: 'msg_fields1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', annotations: [], logprobs: [], text: PII_TEXT }, { type: 'refusal', refusal: `I can't help: ${PII_TEXT}` }] };

function responseObject(status: string, output: unknown[]): Record<string, unknown> {
  return { id: 'resp_fields0123', object: 'response', created_at: 1796679011, status, model: 'gpt-5', output, parallel_tool_calls: false, tool_choice: 'auto', tools: [], usage: status === 'completed' ? { input_tokens: 20, output_tokens: 90, total_tokens: 110 } : null };
}

function responsesStream(): Transcript {
  let seq = 0;
  let body = '';
  const ev = (type: string, data: Record<string, unknown>): void => {
    body += sse(type, { type, sequence_number: seq++, ...data });
  };
  ev('response.created', { response: responseObject('in_progress', []) });
  ev('response.output_item.added', { output_index: 0, item: { id: 'rs_fields0', type: 'reasoning', summary: [], content: [], encrypted_content: OPAQUE } });
  ev('response.reasoning_summary_part.added', { item_id: 'rs_fields0', output_index: 0, summary_index: 0, part: { type: 'summary_text', text: '' } });
  for (const piece of cut(`Summary: ${PII_TEXT}`, 7)) ev('response.reasoning_summary_text.delta', { item_id: 'rs_fields0', output_index: 0, summary_index: 0, delta: piece });
  ev('response.reasoning_summary_text.done', { item_id: 'rs_fields0', output_index: 0, summary_index: 0, text: `Summary: ${PII_TEXT}` });
  ev('response.reasoning_summary_part.done', { item_id: 'rs_fields0', output_index: 0, summary_index: 0, part: { type: 'summary_text', text: `Summary: ${PII_TEXT}` } });
  ev('response.content_part.added', { item_id: 'rs_fields0', output_index: 0, content_index: 0, part: { type: 'reasoning_text', text: '' } });
  for (const piece of cut(`Reasoning: ${PII_TEXT}`, 8)) ev('response.reasoning_text.delta', { item_id: 'rs_fields0', output_index: 0, content_index: 0, delta: piece });
  ev('response.reasoning_text.done', { item_id: 'rs_fields0', output_index: 0, content_index: 0, text: `Reasoning: ${PII_TEXT}` });
  ev('response.content_part.done', { item_id: 'rs_fields0', output_index: 0, content_index: 0, part: REASONING_ITEM.content[0] });
  ev('response.output_item.done', { output_index: 0, item: REASONING_ITEM });
  ev('response.output_item.added', { output_index: 1, item: { id: 'msg_fields1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
  ev('response.content_part.added', { item_id: 'msg_fields1', output_index: 1, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } });
  for (const piece of cut(PII_TEXT, 9)) ev('response.output_text.delta', { item_id: 'msg_fields1', output_index: 1, content_index: 0, delta: piece, logprobs: [] });
  ev('response.output_text.done', { item_id: 'msg_fields1', output_index: 1, content_index: 0, text: PII_TEXT, logprobs: [] });
  ev('response.content_part.done', { item_id: 'msg_fields1', output_index: 1, content_index: 0, part: MESSAGE_ITEM.content[0] });
  ev('response.content_part.added', { item_id: 'msg_fields1', output_index: 1, content_index: 1, part: { type: 'refusal', refusal: '' } });
  for (const piece of cut(`I can't help: ${PII_TEXT}`, 10)) ev('response.refusal.delta', { item_id: 'msg_fields1', output_index: 1, content_index: 1, delta: piece });
  ev('response.refusal.done', { item_id: 'msg_fields1', output_index: 1, content_index: 1, refusal: `I can't help: ${PII_TEXT}` });
  ev('response.content_part.done', { item_id: 'msg_fields1', output_index: 1, content_index: 1, part: MESSAGE_ITEM.content[1] });
  ev('response.output_item.done', { output_index: 1, item: MESSAGE_ITEM });
  ev('response.completed', { response: responseObject('completed', [REASONING_ITEM, MESSAGE_ITEM]) });
  return transcript('/v1/responses', body, true);
}

function responsesMessage(): Transcript {
  return transcript('/v1/responses', JSON.stringify(responseObject('completed', [REASONING_ITEM, MESSAGE_ITEM])), false);
}

// --- the gateway ------------------------------------------------------------------------------

let h: Harness;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigov-answer-fields-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  h = await startHarness({ policyFile });
});
after(async () => {
  await h.close();
});
beforeEach(() => h.upstream.reset());

const anthropic = (): Anthropic => new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 });
const openai = (): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });

/** The raw bytes the client gets (what any client, SDK or not, would read). */
async function raw(path: string, body: unknown): Promise<string> {
  const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text;
}

/** Neither value, in any spelling JSON could give it, reaches the client; the masks do. */
function assertMasked(text: string, where: string): void {
  for (const secret of [EMAIL, PHONE, '650-253-0000', '650253', 'jane.doe', 'example.com']) {
    assert.ok(!text.includes(secret), `${where}: ${JSON.stringify(secret)} reached the client`);
  }
}

/** A field the SDK parsed: the PII gone, the text around it kept, masks in its place. */
function assertMaskedField(text: string | null | undefined, prefix: string, where: string): void {
  assert.equal(typeof text, 'string', `${where}: missing`);
  assertMasked(text!, where);
  assert.ok(text!.startsWith(`${prefix}Reach the owner at `), `${where}: ${JSON.stringify(text)}`);
  assert.ok(text!.endsWith(' today.'), `${where}: ${JSON.stringify(text)}`);
  assert.equal((text!.match(/\[[A-Z_]+\]/g) ?? []).length, 2, `${where}: ${JSON.stringify(text)}`);
}

const label = (chunking: NonNullable<ReplayOptions['chunking']>): string => (typeof chunking === 'string' ? chunking : 'randomly');
const claudeTurn = { model: 'claude-sonnet-4-5', max_tokens: 2048, thinking: { type: 'enabled' as const, budget_tokens: 1024 }, messages: [{ role: 'user' as const, content: 'who owns the repo?' }] };

describe('Anthropic: thinking is masked, redacted_thinking passes as sent', () => {
  for (const chunking of CHUNKINGS) {
    it(`stream chunked ${label(chunking)}`, async () => {
      h.upstream.route('POST', '/v1/messages', anthropicStream(), { chunking });
      assertMasked(await raw('/anthropic/v1/messages', { ...claudeTurn, stream: true }), 'raw stream');
      const message = await anthropic().messages.stream(claudeTurn).finalMessage();
      assert.deepEqual(message.content.map((b) => b.type), ['thinking', 'redacted_thinking', 'text']);
      const [thinking, redacted, text] = message.content;
      assertMaskedField(thinking?.type === 'thinking' ? thinking.thinking : null, 'Thinking: ', 'thinking');
      // The masked thinking's signature no longer fits it: the client holds a seal instead.
      const signature = thinking?.type === 'thinking' ? thinking.signature : '';
      assert.ok(signature.startsWith(SEAL_PREFIX), signature);
      assertMasked(Buffer.from(signature.slice(SEAL_PREFIX.length), 'base64url').toString('latin1'), 'seal');
      assert.equal(redacted?.type === 'redacted_thinking' ? redacted.data : null, OPAQUE);
      assertMaskedField(text?.type === 'text' ? text.text : null, '', 'text');
    });
  }
  it('JSON answer', async () => {
    h.upstream.route('POST', '/v1/messages', anthropicMessage());
    assertMasked(await raw('/anthropic/v1/messages', claudeTurn), 'raw body');
    const message = await anthropic().messages.create(claudeTurn);
    const [thinking, redacted, text] = message.content;
    assertMaskedField(thinking?.type === 'thinking' ? thinking.thinking : null, 'Thinking: ', 'thinking');
    assert.ok(thinking?.type === 'thinking' && thinking.signature.startsWith(SEAL_PREFIX));
    assert.equal(redacted?.type === 'redacted_thinking' ? redacted.data : null, OPAQUE);
    assertMaskedField(text?.type === 'text' ? text.text : null, '', 'text');
  });
});

describe('Anthropic: a masked thinking block sent back goes upstream as the provider signed it', () => {
  const followUp = (content: Anthropic.ContentBlockParam[]) => ({ ...claudeTurn, messages: [...claudeTurn.messages, { role: 'assistant' as const, content }, { role: 'user' as const, content: 'go on' }] });
  const sentBack = (blocks: Anthropic.ContentBlock[]): Anthropic.ContentBlockParam[] => blocks.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : b.type === 'thinking' ? { type: 'thinking', thinking: b.thinking, signature: b.signature } : b.type === 'redacted_thinking' ? { type: 'redacted_thinking', data: b.data } : { type: 'text', text: '?' }));
  const upstreamThinking = (): unknown => {
    const body = JSON.parse(h.upstream.received.at(-1)!.body) as { messages: { role: string; content: unknown }[] };
    return (body.messages[1]!.content as { type: string }[]).find((b) => b.type === 'thinking');
  };

  for (const stream of [true, false]) {
    it(`${stream ? 'streamed' : 'JSON'} answer: the seal is opened, the original text and signature go upstream; the record keeps the seal`, async () => {
      h.upstream.route('POST', '/v1/messages', stream ? anthropicStream() : anthropicMessage());
      const message = stream ? await anthropic().messages.stream(claudeTurn).finalMessage() : await anthropic().messages.create(claudeTurn);
      h.upstream.route('POST', '/v1/messages', anthropicMessage());
      const res = await fetch(`${h.url}/anthropic/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' }, body: JSON.stringify(followUp(sentBack(message.content))) });
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(upstreamThinking(), { type: 'thinking', thinking: `Thinking: ${PII_TEXT}`, signature: SIGNATURE });
      await h.gateway.store.flush();
      const record = await h.gateway.store.getCall(res.headers.get('x-aigov-call-id')!);
      assert.ok(record?.requestBody?.includes(SEAL_PREFIX), 'the record keeps the request as the client sent it');
      assertMasked(record?.requestBody ?? '', 'recorded request');
    });
  }

  it('another user cannot open the seal: refused with AIGOV_E_THINKING_UNRESTORABLE, nothing sent upstream', async () => {
    h.upstream.route('POST', '/v1/messages', anthropicMessage());
    const message = await anthropic().messages.create(claudeTurn);
    const received = h.upstream.received.length;
    const bob = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: await h.tokenFor('bob'), maxRetries: 0 });
    await assert.rejects(bob.messages.create(followUp(sentBack(message.content))), (error: unknown) => error instanceof Anthropic.BadRequestError && /AIGOV_E_THINKING_UNRESTORABLE/.test(error.message));
    assert.equal(h.upstream.received.length, received);
  });

  it('a seal changed by one character is refused the same way', async () => {
    h.upstream.route('POST', '/v1/messages', anthropicMessage());
    const message = await anthropic().messages.create(claudeTurn);
    const blocks = sentBack(message.content).map((b) => (b.type === 'thinking' ? { ...b, signature: b.signature.slice(0, -2) + (b.signature.endsWith('A') ? 'B' : 'A') + b.signature.slice(-1) } : b));
    await assert.rejects(anthropic().messages.create(followUp(blocks)), /AIGOV_E_THINKING_UNRESTORABLE/);
  });
});

/** The chat fields OpenAI-compatible servers add to a message or delta (the SDK types leave them out). */
interface ReasoningFields {
  reasoning_content?: string | null;
  reasoning?: string | null;
}

describe('OpenAI chat: refusal, reasoning_content and reasoning are masked', () => {
  const request = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'who owns the repo?' }] };
  for (const chunking of CHUNKINGS) {
    it(`stream chunked ${label(chunking)}`, async () => {
      h.upstream.route('POST', '/v1/chat/completions', chatStream(), { chunking });
      assertMasked(await raw('/openai/v1/chat/completions', { ...request, stream: true }), 'raw stream');
      const fields = new Map<string, string>();
      const add = (key: string, value: unknown): void => {
        if (typeof value === 'string') fields.set(key, (fields.get(key) ?? '') + value);
      };
      for await (const chunk of await openai().chat.completions.create({ ...request, stream: true })) {
        for (const choice of chunk.choices) {
          const delta = choice.delta as typeof choice.delta & ReasoningFields;
          add(`${choice.index}:content`, delta.content);
          add(`${choice.index}:refusal`, delta.refusal);
          add(`${choice.index}:reasoning_content`, delta.reasoning_content);
          add(`${choice.index}:reasoning`, delta.reasoning);
        }
      }
      assertMaskedField(fields.get('0:reasoning_content'), 'Reasoning: ', 'reasoning_content');
      assertMaskedField(fields.get('0:content'), '', 'content');
      assertMaskedField(fields.get('1:reasoning'), 'Reasoning too: ', 'reasoning');
      assertMaskedField(fields.get('1:refusal'), "I can't help: ", 'refusal');
    });
  }
  it('JSON answer', async () => {
    h.upstream.route('POST', '/v1/chat/completions', chatMessage());
    assertMasked(await raw('/openai/v1/chat/completions', request), 'raw body');
    const completion = await openai().chat.completions.create(request);
    const [first, second] = completion.choices.map((c) => c.message as typeof c.message & ReasoningFields);
    assertMaskedField(first?.content, '', 'content');
    assertMaskedField(first?.reasoning_content, 'Reasoning: ', 'reasoning_content');
    assertMaskedField(second?.reasoning, 'Reasoning too: ', 'reasoning');
    assertMaskedField(second?.refusal, "I can't help: ", 'refusal');
  });
});

describe('OpenAI Responses: refusal parts, reasoning summaries and reasoning text are masked', () => {
  const request = { model: 'gpt-5', input: 'who owns the repo?' };
  const check = (response: OpenAI.Responses.Response, where: string): void => {
    const [reasoning, message] = response.output;
    assert.equal(reasoning?.type, 'reasoning', where);
    assert.equal(message?.type, 'message', where);
    if (reasoning?.type !== 'reasoning' || message?.type !== 'message') return;
    assertMaskedField(reasoning.summary[0]?.text, 'Summary: ', `${where} summary`);
    assertMaskedField(reasoning.content?.[0]?.text, 'Reasoning: ', `${where} reasoning text`);
    assert.equal(reasoning.encrypted_content, OPAQUE, `${where} encrypted_content`);
    const [text, refusal] = message.content;
    assertMaskedField(text?.type === 'output_text' ? text.text : null, '', `${where} output_text`);
    assertMaskedField(refusal?.type === 'refusal' ? refusal.refusal : null, "I can't help: ", `${where} refusal`);
  };
  for (const chunking of CHUNKINGS) {
    it(`stream chunked ${label(chunking)}`, async () => {
      h.upstream.route('POST', '/v1/responses', responsesStream(), { chunking });
      assertMasked(await raw('/openai/v1/responses', { ...request, stream: true }), 'raw stream');
      const deltas = new Map<string, string>();
      const stream = openai().responses.stream(request);
      for await (const event of stream) {
        if (event.type === 'response.reasoning_summary_text.delta' || event.type === 'response.reasoning_text.delta' || event.type === 'response.refusal.delta' || event.type === 'response.output_text.delta') {
          deltas.set(event.type, (deltas.get(event.type) ?? '') + event.delta);
        }
      }
      assertMaskedField(deltas.get('response.reasoning_summary_text.delta'), 'Summary: ', 'summary deltas');
      assertMaskedField(deltas.get('response.reasoning_text.delta'), 'Reasoning: ', 'reasoning deltas');
      assertMaskedField(deltas.get('response.output_text.delta'), '', 'output_text deltas');
      assertMaskedField(deltas.get('response.refusal.delta'), "I can't help: ", 'refusal deltas');
      check(await stream.finalResponse(), 'final response');
    });
  }
  it('JSON answer', async () => {
    h.upstream.route('POST', '/v1/responses', responsesMessage());
    assertMasked(await raw('/openai/v1/responses', request), 'raw body');
    check(await openai().responses.create(request), 'response');
  });
});

describe('an upstream stream event the gateway cannot read is not relayed: the stream ends with the provider error', () => {
  const notJson = `data: {"choices":[{"index":0,"delta":{"content":"${EMAIL}"}}]\ndata: ${PHONE} <- not JSON\n\n`;
  for (const chunking of CHUNKINGS) {
    it(`OpenAI chat stream chunked ${label(chunking)}`, async () => {
      const body = chatStream().body.replace('data: [DONE]\n\n', '');
      const cut = body.indexOf('data: ', body.length / 2);
      h.upstream.route('POST', '/v1/chat/completions', transcript('/v1/chat/completions', body.slice(0, cut) + notJson + body.slice(cut) + 'data: [DONE]\n\n', true), { chunking });
      const request = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'hi' }], stream: true as const };
      const text = await raw('/openai/v1/chat/completions', request);
      assertMasked(text, 'raw stream');
      assert.match(text, /AIGOV_E_UPSTREAM_BAD_RESPONSE/);
      assert.doesNotMatch(text, /\[DONE\]/);
      await assert.rejects(async () => {
        for await (const _chunk of await openai().chat.completions.create(request));
      }, /AIGOV_E_UPSTREAM_BAD_RESPONSE|cannot govern/);
    });
    it(`Anthropic stream chunked ${label(chunking)}`, async () => {
      const body = anthropicStream().body;
      const cut = body.indexOf('event: content_block_start\ndata: {"type":"content_block_start","index":2');
      h.upstream.route('POST', '/v1/messages', transcript('/v1/messages', `${body.slice(0, cut)}event: content_block_delta\ndata: <b>${EMAIL}</b>\n\n${body.slice(cut)}`, true), { chunking });
      const text = await raw('/anthropic/v1/messages', { ...claudeTurn, stream: true });
      assertMasked(text, 'raw stream');
      assert.match(text, /event: error\ndata: .*AIGOV_E_UPSTREAM_BAD_RESPONSE/);
      assert.doesNotMatch(text, /message_stop/);
      await assert.rejects(anthropic().messages.stream(claudeTurn).finalMessage(), /AIGOV_E_UPSTREAM_BAD_RESPONSE|cannot govern/);
    });
  }
});
