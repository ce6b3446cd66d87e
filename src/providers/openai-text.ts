/**
 * Where the text lives in OpenAI's wire format, streamed and not: Chat Completions and Responses
 * answers (normalized events, rewriting their texts). One JSON.parse per event (./channels.ts).
 */
import type { EndpointId, ResponseEvent } from '../core/events.ts';
import { arr, isObject, num, str, type Json, type JsonObject } from '../core/json.ts';
import { Channels, replaceField, StreamItem, type ItemRewriter, type TextKind, type TextRewriter } from './channels.ts';

// ---------------------------------------------------------------------------------------------
// Normalized events

/** A Responses call item's arguments (function_call) or input (custom_tool_call). */
export function callInput(item: JsonObject): string | undefined {
  return item.type === 'custom_tool_call' ? str(item.input) : str(item.arguments);
}

export function pushChatUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  events.push({ type: 'usage', usage: { inputTokens: num(usage.prompt_tokens), outputTokens: num(usage.completion_tokens), totalTokens: num(usage.total_tokens) } });
}

export function pushResponsesUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  events.push({ type: 'usage', usage: { inputTokens: num(usage.input_tokens), outputTokens: num(usage.output_tokens), totalTokens: num(usage.total_tokens) } });
}

/** The normalized events of one parsed stream event. */
export function openaiStreamEvents(endpoint: EndpointId, item: StreamItem): ResponseEvent[] {
  const data = item.data;
  if (data === null) return [];
  if (isObject(data.error)) return [errorEvent(data.error, str(data.error.type) ?? 'api_error')];
  const events: ResponseEvent[] = [];
  if (endpoint === 'openai.chat.completions') {
    for (const choice of arr(data.choices)) {
      if (!isObject(choice)) continue;
      const index = num(choice.index) ?? 0;
      const delta = isObject(choice.delta) ? choice.delta : {};
      const text = str(delta.content);
      if (text) events.push({ type: 'text', choice: index, text });
      const refusal = str(delta.refusal);
      if (refusal) events.push({ type: 'refusal', choice: index, text: refusal });
      for (const call of arr(delta.tool_calls)) {
        if (!isObject(call)) continue;
        const fn = isObject(call.function) ? call.function : {};
        events.push({ type: 'tool_call', choice: index, index: num(call.index) ?? 0, id: str(call.id), name: str(fn.name), argumentsDelta: str(fn.arguments) ?? '' });
      }
      const reason = str(choice.finish_reason);
      if (reason) events.push({ type: 'finish', choice: index, reason });
    }
    pushChatUsage(events, data.usage);
    return events;
  }
  // Responses API: typed events.
  const type = str(data.type) ?? item.source.event ?? '';
  if (type === 'response.output_text.delta') events.push({ type: 'text', choice: 0, text: str(data.delta) ?? '', block: num(data.output_index) ?? 0 });
  else if (type === 'response.refusal.delta') events.push({ type: 'refusal', choice: 0, text: str(data.delta) ?? '' });
  else if ((type === 'response.output_item.added' || type === 'response.output_item.done') && isObject(data.item) && (data.item.type === 'function_call' || data.item.type === 'custom_tool_call')) {
    // The item's arguments as `added` or `done` states them: a snapshot the gate judges too.
    const input = callInput(data.item);
    const snapshot = type === 'response.output_item.done' || (input !== undefined && input !== '');
    events.push({ type: 'tool_call', choice: 0, index: num(data.output_index) ?? 0, id: str(data.item.call_id), name: str(data.item.name), argumentsDelta: snapshot ? (input ?? '') : '', ...(snapshot ? { complete: true } : {}) });
  } else if (type === 'response.function_call_arguments.delta' || type === 'response.custom_tool_call_input.delta') {
    events.push({ type: 'tool_call', choice: 0, index: num(data.output_index) ?? 0, argumentsDelta: str(data.delta) ?? '' });
  } else if (type === 'response.function_call_arguments.done' || type === 'response.custom_tool_call_input.done') {
    const input = str(data.arguments) ?? str(data.input);
    if (input !== undefined) events.push({ type: 'tool_call', choice: 0, index: num(data.output_index) ?? 0, argumentsDelta: input, complete: true });
  } else if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
    const response = isObject(data.response) ? data.response : {};
    if (type === 'response.failed' && isObject(response.error)) events.push(errorEvent(response.error, str(response.error.code) ?? 'api_error'));
    events.push({ type: 'finish', choice: 0, reason: str(response.status) ?? type.slice('response.'.length) });
    pushResponsesUsage(events, response.usage);
  } else if (type === 'error') {
    events.push(errorEvent(data, str(data.code) ?? 'api_error'));
  }
  return events;
}

/** An error event from an OpenAI error object (`{type, code, message}`, any of them missing). */
function errorEvent(error: JsonObject, errorType: string): ResponseEvent {
  const code = str(error.code);
  return { type: 'error', errorType, message: str(error.message) ?? '', ...(code ? { code } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Non-streamed answers

/**
 * The text fields of a Chat Completions message or delta: the answer, a refusal, and the
 * reasoning OpenAI-compatible servers send (`reasoning_content`: DeepSeek, vLLM, llama.cpp…;
 * `reasoning`: vLLM ≥0.10, OpenRouter, Ollama).
 */
const CHAT_TEXT_FIELDS = ['content', 'refusal', 'reasoning_content', 'reasoning'] as const;

type SetText = (holder: JsonObject, key: string, kind: TextKind) => void;

/** Rewrites the answer texts of a parsed non-streamed body in place; true if one changed. */
export function rewriteOpenAIAnswer(endpoint: EndpointId, json: JsonObject, rewriter: TextRewriter): boolean {
  let changed = false;
  const set: SetText = (holder, key, kind) => {
    const value = holder[key];
    if (typeof value !== 'string' || value === '') return;
    if (replaceField(holder, key, rewriter.whole(value, kind))) changed = true;
  };
  if (endpoint === 'openai.chat.completions') {
    for (const choice of arr(json.choices)) {
      if (!isObject(choice) || !isObject(choice.message)) continue;
      for (const field of CHAT_TEXT_FIELDS) set(choice.message, field, 'text');
      for (const call of arr(choice.message.tool_calls)) if (isObject(call) && isObject(call.function)) set(call.function, 'arguments', 'json');
    }
  } else if (endpoint === 'openai.responses') {
    rewriteResponsesObject(json, set);
  }
  return changed;
}

function rewriteResponsesObject(response: JsonObject, set: SetText): void {
  if (typeof response.output_text === 'string') set(response, 'output_text', 'text');
  for (const item of arr(response.output)) if (isObject(item)) rewriteResponsesItem(item, set);
}

/**
 * One output item's texts: a message's output_text and refusal parts, a reasoning item's summary
 * and reasoning text (its `encrypted_content` is opaque and stays), a call's arguments or input.
 */
function rewriteResponsesItem(item: JsonObject, set: SetText): void {
  if (item.type === 'message') for (const part of arr(item.content)) if (isObject(part)) rewriteResponsesPart(part, set);
  if (item.type === 'reasoning') {
    for (const part of arr(item.summary)) if (isObject(part)) rewriteResponsesPart(part, set);
    for (const part of arr(item.content)) if (isObject(part)) rewriteResponsesPart(part, set);
  }
  if (item.type === 'function_call') set(item, 'arguments', 'json');
  if (item.type === 'custom_tool_call') set(item, 'input', 'text');
}

/** A content or summary part: `output_text`, `summary_text` and `reasoning_text` hold `text`, `refusal` holds `refusal`. */
function rewriteResponsesPart(part: JsonObject, set: SetText): void {
  if (part.type === 'output_text' || part.type === 'summary_text' || part.type === 'reasoning_text') set(part, 'text', 'text');
  else if (part.type === 'refusal') set(part, 'refusal', 'text');
}

/**
 * The streamed text fields of a Responses answer: each delta event type, the `*.done` event that
 * closes its channel, the field of that event holding the whole text, its kind, and the index
 * fields that name the channel (besides output_index).
 */
const RESPONSES_CHANNELS: Readonly<Record<string, { readonly done: string; readonly field: string; readonly kind: TextKind; readonly index: string | null }>> = {
  'response.output_text.delta': { done: 'response.output_text.done', field: 'text', kind: 'text', index: 'content_index' },
  'response.refusal.delta': { done: 'response.refusal.done', field: 'refusal', kind: 'text', index: 'content_index' },
  'response.reasoning_summary_text.delta': { done: 'response.reasoning_summary_text.done', field: 'text', kind: 'text', index: 'summary_index' },
  'response.reasoning_text.delta': { done: 'response.reasoning_text.done', field: 'text', kind: 'text', index: 'content_index' },
  'response.function_call_arguments.delta': { done: 'response.function_call_arguments.done', field: 'arguments', kind: 'json', index: null },
  'response.custom_tool_call_input.delta': { done: 'response.custom_tool_call_input.done', field: 'input', kind: 'text', index: null },
};
const RESPONSES_DONE = new Map(Object.entries(RESPONSES_CHANNELS).map(([delta, spec]) => [spec.done, { delta, ...spec }]));

// ---------------------------------------------------------------------------------------------
// Streams

export function openaiStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): ItemRewriter | null {
  if (endpoint === 'openai.chat.completions') return new ChatStreamRewriter(rewriter);
  if (endpoint === 'openai.responses') return new ResponsesStreamRewriter(rewriter);
  return null;
}

/**
 * Chat Completions: `choices[i].delta.content` (and `.refusal`, `.reasoning_content`,
 * `.reasoning`) and `choices[i].delta.tool_calls[j].function.arguments` are channels; a chunk with `finish_reason` closes its choice's channels (held text goes into that
 * chunk's delta), and `[DONE]` or the end of the stream closes whatever is left.
 */
class ChatStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  #template: JsonObject | null = null;

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return item.source.data === '[DONE]' ? [...this.#flushAll(item), item] : [item];
    if (!Array.isArray(data.choices)) return [item];
    this.#template ??= { id: data.id ?? null, object: data.object ?? 'chat.completion.chunk', created: data.created ?? 0, model: data.model ?? '' };
    let changed = false;
    for (const choice of data.choices) {
      if (!isObject(choice)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      let delta = isObject(choice.delta) ? choice.delta : null;
      for (const field of CHAT_TEXT_FIELDS) {
        const value = delta?.[field];
        if (delta !== null && typeof value === 'string' && replaceField(delta, field, this.#channels.push(`${i}:${field}`, 'text', value))) changed = true;
      }
      for (const call of arr(delta?.tool_calls)) {
        if (!isObject(call) || !isObject(call.function) || typeof call.function.arguments !== 'string') continue;
        const j = typeof call.index === 'number' ? call.index : 0;
        if (replaceField(call.function, 'arguments', this.#channels.push(`${i}:tool:${j}`, 'json', call.function.arguments))) changed = true;
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const held = CHAT_TEXT_FIELDS.map((field) => [field, this.#channels.close(`${i}:${field}`)] as const).filter(([, text]) => text !== '');
        const calls = this.#channels.keys(`${i}:tool:`).map((key) => ({ index: Number(key.split(':')[2]), function: { arguments: this.#channels.close(key) } }));
        const flushed = calls.filter((c) => c.function.arguments !== '');
        if (held.length === 0 && flushed.length === 0) continue;
        delta ??= choice.delta = {};
        for (const [field, text] of held) delta[field] = (typeof delta[field] === 'string' ? delta[field] : '') + text;
        if (flushed.length > 0) delta.tool_calls = [...(arr(delta.tool_calls) as Json[]), ...flushed];
        changed = true;
      }
    }
    if (changed) item.touch();
    return [item];
  }

  end(): StreamItem[] {
    return this.#flushAll(null);
  }

  #flushAll(before: StreamItem | null): StreamItem[] {
    const byChoice = new Map<number, JsonObject>();
    for (const key of this.#channels.keys()) {
      const [choiceText, what, j] = key.split(':');
      const i = Number(choiceText);
      const text = this.#channels.close(key);
      if (text === '') continue;
      const delta = byChoice.get(i) ?? {};
      if (what !== 'tool') delta[what ?? 'content'] = text;
      else delta.tool_calls = [...(arr(delta.tool_calls) as Json[]), { index: Number(j), function: { arguments: text } }];
      byChoice.set(i, delta);
    }
    if (byChoice.size === 0) return [];
    const chunk = { ...(this.#template ?? { object: 'chat.completion.chunk' }), choices: [...byChoice].map(([index, delta]) => ({ index, delta, finish_reason: null })) };
    return [StreamItem.synthetic(before?.source.event ?? null, chunk, before ? { ...before.source, raw: '' } : undefined)];
  }
}

/**
 * Responses: each delta event type of RESPONSES_CHANNELS (output text, refusal, reasoning summary
 * and reasoning text, function arguments, custom tool input) is a channel keyed by its type and
 * indexes; the matching `*.done` event closes the channel (held text goes into a synthetic delta
 * first) and carries the whole text, which is rewritten whole — as are the part/item/response
 * snapshots in `content_part.*`, `reasoning_summary_part.*`, `output_item.*` and `response.*`.
 */
class ResponsesStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;
  /** The open channels' delta events, as a flush at the end of the stream must name them. */
  readonly #open = new Map<string, { readonly type: string; readonly fields: JsonObject }>();

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return [item];
    const type = typeof data.type === 'string' ? data.type : (item.source.event ?? '');
    let changed = false;
    const set: SetText = (holder, field, kind) => {
      const value = holder[field];
      if (typeof value === 'string' && replaceField(holder, field, this.#rewriter.whole(value, kind))) changed = true;
    };
    const out: StreamItem[] = [];
    const delta = RESPONSES_CHANNELS[type];
    const done = RESPONSES_DONE.get(type);
    if (delta !== undefined) {
      const { key, fields } = channelOf(type, delta.index, data);
      if (typeof data.delta === 'string') {
        if (!this.#open.has(key)) this.#open.set(key, { type, fields });
        if (replaceField(data, 'delta', this.#channels.push(key, delta.kind, data.delta))) changed = true;
      }
    } else if (done !== undefined) {
      const { key, fields } = channelOf(done.delta, done.index, data);
      this.#open.delete(key);
      const held = this.#channels.close(key);
      if (held !== '') {
        const { text: _text, arguments: _arguments, input: _input, refusal: _refusal, ...rest } = data;
        out.push(StreamItem.synthetic(done.delta, { ...rest, ...fields, type: done.delta, delta: held }));
      }
      set(data, done.field, done.kind);
    } else if (type === 'response.content_part.added' || type === 'response.content_part.done' || type === 'response.reasoning_summary_part.added' || type === 'response.reasoning_summary_part.done') {
      if (isObject(data.part)) rewriteResponsesPart(data.part, set);
    } else if (type === 'response.output_item.added' || type === 'response.output_item.done') {
      if (isObject(data.item)) rewriteResponsesItem(data.item, set);
    } else if (type === 'response.created' || type === 'response.in_progress' || type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      if (isObject(data.response)) rewriteResponsesObject(data.response, set);
    }
    if (changed) item.touch();
    out.push(item);
    return out;
  }

  end(): StreamItem[] {
    // Channels still open when the stream ends had no *.done event: the stream is broken anyway;
    // emit what was held as deltas so nothing half-masked is lost silently.
    return [...this.#open].flatMap(([key, { type, fields }]) => {
      const held = this.#channels.close(key);
      return held === '' ? [] : [StreamItem.synthetic(type, { type, ...fields, delta: held })];
    });
  }
}

/** A Responses delta channel: its key (delta type and indexes) and the index fields a synthetic delta carries. */
function channelOf(deltaType: string, indexField: string | null, data: JsonObject): { key: string; fields: JsonObject } {
  const output = typeof data.output_index === 'number' ? data.output_index : 0;
  const inner = indexField !== null && typeof data[indexField] === 'number' ? data[indexField] : 0;
  const fields: JsonObject = { ...(data.item_id !== undefined ? { item_id: data.item_id } : {}), output_index: output, ...(indexField !== null ? { [indexField]: inner } : {}) };
  return { key: `${deltaType}:${output}:${indexField === null ? '' : inner}`, fields };
}
