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
      set(choice.message, 'content', 'text');
      for (const call of arr(choice.message.tool_calls)) if (isObject(call) && isObject(call.function)) set(call.function, 'arguments', 'json');
    }
  } else if (endpoint === 'openai.responses') {
    rewriteResponsesObject(json, set);
  }
  return changed;
}

function rewriteResponsesObject(response: JsonObject, set: SetText): void {
  if (typeof response.output_text === 'string') set(response, 'output_text', 'text');
  for (const item of arr(response.output)) {
    if (!isObject(item)) continue;
    if (item.type === 'message') for (const part of arr(item.content)) if (isObject(part) && part.type === 'output_text') set(part, 'text', 'text');
    if (item.type === 'function_call') set(item, 'arguments', 'json');
    if (item.type === 'custom_tool_call') set(item, 'input', 'text');
  }
}

// ---------------------------------------------------------------------------------------------
// Streams

export function openaiStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): ItemRewriter | null {
  if (endpoint === 'openai.chat.completions') return new ChatStreamRewriter(rewriter);
  if (endpoint === 'openai.responses') return new ResponsesStreamRewriter(rewriter);
  return null;
}

/**
 * Chat Completions: `choices[i].delta.content` and `choices[i].delta.tool_calls[j].function.arguments`
 * are channels; a chunk with `finish_reason` closes its choice's channels (held text goes into that
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
      if (delta !== null && typeof delta.content === 'string' && replaceField(delta, 'content', this.#channels.push(`${i}:content`, 'text', delta.content))) changed = true;
      for (const call of arr(delta?.tool_calls)) {
        if (!isObject(call) || !isObject(call.function) || typeof call.function.arguments !== 'string') continue;
        const j = typeof call.index === 'number' ? call.index : 0;
        if (replaceField(call.function, 'arguments', this.#channels.push(`${i}:tool:${j}`, 'json', call.function.arguments))) changed = true;
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const held = this.#channels.close(`${i}:content`);
        const calls = this.#channels.keys(`${i}:tool:`).map((key) => ({ index: Number(key.split(':')[2]), function: { arguments: this.#channels.close(key) } }));
        const flushed = calls.filter((c) => c.function.arguments !== '');
        if (held === '' && flushed.length === 0) continue;
        delta ??= choice.delta = {};
        if (held !== '') delta.content = (typeof delta.content === 'string' ? delta.content : '') + held;
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
      if (what === 'content') delta.content = text;
      else delta.tool_calls = [...(arr(delta.tool_calls) as Json[]), { index: Number(j), function: { arguments: text } }];
      byChoice.set(i, delta);
    }
    if (byChoice.size === 0) return [];
    const chunk = { ...(this.#template ?? { object: 'chat.completion.chunk' }), choices: [...byChoice].map(([index, delta]) => ({ index, delta, finish_reason: null })) };
    return [StreamItem.synthetic(before?.source.event ?? null, chunk, before ? { ...before.source, raw: '' } : undefined)];
  }
}

/**
 * Responses: `response.output_text.delta` and `response.function_call_arguments.delta`
 * are channels keyed by output/content index; the matching `*.done` event closes the channel
 * (held text goes into a synthetic delta first) and carries the whole text, which is rewritten
 * whole — as are the part/item/response snapshots in `content_part.done`, `output_item.done` and
 * `response.completed`.
 */
class ResponsesStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return [item];
    const type = typeof data.type === 'string' ? data.type : (item.source.event ?? '');
    const key = `${typeof data.output_index === 'number' ? data.output_index : 0}:${typeof data.content_index === 'number' ? data.content_index : 'args'}`;
    let changed = false;
    const set: SetText = (holder, field, kind) => {
      const value = holder[field];
      if (typeof value === 'string' && replaceField(holder, field, this.#rewriter.whole(value, kind))) changed = true;
    };
    const push = (kind: TextKind): void => {
      if (typeof data.delta === 'string' && replaceField(data, 'delta', this.#channels.push(key, kind, data.delta))) changed = true;
    };
    const out: StreamItem[] = [];
    switch (type) {
      case 'response.output_text.delta':
      case 'response.custom_tool_call_input.delta':
        push('text');
        break;
      case 'response.function_call_arguments.delta':
        push('json');
        break;
      case 'response.output_text.done':
      case 'response.function_call_arguments.done':
      case 'response.custom_tool_call_input.done': {
        const held = this.#channels.close(key);
        const isText = type === 'response.output_text.done';
        const isCustom = type === 'response.custom_tool_call_input.done';
        if (held !== '') {
          const deltaType = isText ? 'response.output_text.delta' : isCustom ? 'response.custom_tool_call_input.delta' : 'response.function_call_arguments.delta';
          const { text: _text, arguments: _arguments, input: _input, ...rest } = data;
          out.push(StreamItem.synthetic(deltaType, { ...rest, type: deltaType, delta: held }));
        }
        set(data, isText ? 'text' : isCustom ? 'input' : 'arguments', isText || isCustom ? 'text' : 'json');
        break;
      }
      case 'response.content_part.done':
        if (isObject(data.part) && data.part.type === 'output_text') set(data.part, 'text', 'text');
        break;
      case 'response.output_item.done':
        if (isObject(data.item)) rewriteResponsesObject({ output: [data.item] }, set);
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isObject(data.response)) rewriteResponsesObject(data.response, set);
        break;
      default:
        break;
    }
    if (changed) item.touch();
    out.push(item);
    return out;
  }

  end(): StreamItem[] {
    // Channels still open when the stream ends had no *.done event: the stream is broken anyway;
    // emit what was held as deltas so nothing half-masked is lost silently.
    return this.#channels.keys().flatMap((key) => {
      const held = this.#channels.close(key);
      if (held === '') return [];
      const [output, content] = key.split(':');
      const isArgs = content === 'args';
      const type = isArgs ? 'response.function_call_arguments.delta' : 'response.output_text.delta';
      return [StreamItem.synthetic(type, { type, output_index: Number(output), ...(isArgs ? {} : { content_index: Number(content) }), delta: held })];
    });
  }
}
