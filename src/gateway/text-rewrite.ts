/**
 * Rewriting the text inside provider messages, streamed or not, without breaking the wire format.
 *
 * Policy transforms (masking, pseudonym restoring) work on plain text; this module finds the text
 * in each provider's JSON — request bodies, answer bodies, SSE events — and puts the transformed
 * text back. On streams every independent text channel (a choice's content, a tool call's
 * arguments, an Anthropic content block, a Responses output part) gets its own stream transformer;
 * text a transformer still holds back is flushed into a synthetic delta event placed just before
 * the event that closes the channel, so the client's concatenated text equals the transform of
 * the whole text, whatever the chunking.
 */
import type { EndpointId } from '../core/events.ts';
import { withData, type SseEvent } from '../core/sse.ts';
import { arr, isObject, parseJson, type Json, type JsonObject } from '../core/json.ts';

/** A transformer for one stream channel: push deltas, get what may be sent; end flushes. */
export interface ChannelTransformer {
  push(delta: string): string;
  end(): string;
}

export interface TextRewriter {
  /** Transforms a complete text (a non-streamed body's field). */
  whole(text: string, kind: TextKind): string;
  /** A fresh transformer for one streamed channel. */
  channel(kind: TextKind): ChannelTransformer;
  /**
   * What to record of an answer sent to the client (an SSE block or a body, JSON inside): the
   * sent text minus what must not be kept — restored pseudonyms go back to their placeholders.
   */
  forRecord?(sent: string): string;
  /**
   * Rewrites a whole non-streamed body its own way (e.g. off the event loop); null: rewrite it
   * with `whole` field by field (rewriteResponseBody).
   */
  body?(body: string): string | Promise<string> | null;
}

/** Plain text, or the text of JSON (tool-call arguments), where replacements must stay valid JSON string content. */
export type TextKind = 'text' | 'json';

// ---------------------------------------------------------------------------------------------
// Non-streamed bodies

/** Rewrites the answer texts of a non-streamed JSON body; returns the body unchanged when it is not JSON. */
export function rewriteResponseBody(endpoint: EndpointId, body: string, rewriter: TextRewriter): string {
  const json = parseJson(body);
  if (!isObject(json)) return body;
  let changed = false;
  const set = (holder: JsonObject, key: string, kind: TextKind): void => {
    const value = holder[key];
    if (typeof value !== 'string' || value === '') return;
    const next = rewriter.whole(value, kind);
    if (next !== value) {
      holder[key] = next;
      changed = true;
    }
  };
  if (endpoint === 'openai.chat.completions') {
    for (const choice of arr(json.choices)) {
      if (!isObject(choice) || !isObject(choice.message)) continue;
      set(choice.message, 'content', 'text');
      for (const call of arr(choice.message.tool_calls)) if (isObject(call) && isObject(call.function)) set(call.function, 'arguments', 'json');
    }
  } else if (endpoint === 'openai.responses') {
    rewriteResponsesObject(json, set);
  } else if (endpoint === 'anthropic.messages') {
    rewriteAnthropicContent(arr(json.content), set);
  }
  return changed ? JSON.stringify(json) : body;
}

function rewriteResponsesObject(response: JsonObject, set: (holder: JsonObject, key: string, kind: TextKind) => void): void {
  if (typeof response.output_text === 'string') set(response, 'output_text', 'text');
  for (const item of arr(response.output)) {
    if (!isObject(item)) continue;
    if (item.type === 'message') for (const part of arr(item.content)) if (isObject(part) && part.type === 'output_text') set(part, 'text', 'text');
    if (item.type === 'function_call') set(item, 'arguments', 'json');
    if (item.type === 'custom_tool_call') set(item, 'input', 'text');
  }
}

function rewriteAnthropicContent(blocks: unknown[], set: (holder: JsonObject, key: string, kind: TextKind) => void): void {
  for (const block of blocks) {
    if (!isObject(block)) continue;
    if (block.type === 'text') set(block, 'text', 'text');
    // tool_use input is an object: rewrite its JSON text and parse it back.
    if (block.type === 'tool_use' && block.input !== undefined) {
      const holder: JsonObject = { text: JSON.stringify(block.input) };
      set(holder, 'text', 'json');
      const parsed = parseJson(holder.text as string);
      if (parsed !== undefined) block.input = parsed as JsonObject;
    }
  }
}

/**
 * Rewrites every user-controlled text of a request body (messages, system prompts, tool results,
 * tool-call arguments, Responses input, embeddings input) — the same fields the adapters parse
 * into NormalizedRequest. Returns the body unchanged when nothing changed.
 */
export function rewriteRequestBody(endpoint: EndpointId, body: string, rewrite: (text: string, kind: TextKind) => string): string {
  const json = parseJson(body);
  if (!isObject(json)) return body;
  let changed = false;
  const set = (holder: JsonObject | unknown[], key: string | number, kind: TextKind): void => {
    const value = (holder as Record<string | number, unknown>)[key];
    if (typeof value !== 'string' || value === '') return;
    const next = rewrite(value, kind);
    if (next !== value) {
      (holder as Record<string | number, unknown>)[key] = next;
      changed = true;
    }
  };
  const setParts = (holder: JsonObject, key: string): void => {
    if (typeof holder[key] === 'string') return set(holder, key, 'text');
    for (const part of arr(holder[key])) if (isObject(part) && typeof part.text === 'string') set(part, 'text', 'text');
  };
  const setObjectAsJson = (holder: JsonObject, key: string): void => {
    if (holder[key] === undefined) return;
    const box: JsonObject = { v: JSON.stringify(holder[key]) };
    set(box, 'v', 'json');
    const parsed = parseJson(box.v as string);
    if (parsed !== undefined) holder[key] = parsed as JsonObject;
  };
  if (endpoint === 'openai.chat.completions') {
    for (const message of arr(json.messages)) {
      if (!isObject(message)) continue;
      setParts(message, 'content');
      for (const call of arr(message.tool_calls)) if (isObject(call) && isObject(call.function)) set(call.function, 'arguments', 'json');
    }
  } else if (endpoint === 'openai.responses') {
    set(json, 'instructions', 'text');
    if (typeof json.input === 'string') set(json, 'input', 'text');
    for (const item of arr(json.input)) {
      if (!isObject(item)) continue;
      if (item.type === 'function_call') set(item, 'arguments', 'json');
      else if (item.type === 'custom_tool_call') set(item, 'input', 'text');
      // Tool results (Codex's code-mode `exec` answers with custom_tool_call_output): a string or parts.
      else if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') setParts(item, 'output');
      else setParts(item, 'content');
    }
  } else if (endpoint === 'openai.embeddings') {
    if (typeof json.input === 'string') set(json, 'input', 'text');
    else if (Array.isArray(json.input)) json.input.forEach((_, i, list) => set(list, i, 'text'));
  } else if (endpoint === 'anthropic.messages' || endpoint === 'anthropic.messages.count_tokens') {
    setParts(json, 'system');
    for (const message of arr(json.messages)) {
      if (!isObject(message)) continue;
      if (typeof message.content === 'string') {
        set(message, 'content', 'text');
        continue;
      }
      for (const block of arr(message.content)) {
        if (!isObject(block)) continue;
        if (block.type === 'text') set(block, 'text', 'text');
        else if (block.type === 'tool_use') setObjectAsJson(block, 'input');
        else if (block.type === 'tool_result') setParts(block, 'content');
      }
    }
  }
  return changed ? JSON.stringify(json) : body;
}

// ---------------------------------------------------------------------------------------------
// Streams

/** Rewrites a provider SSE stream event by event. Create one per call. */
export interface StreamRewriter {
  /** One whole upstream event in; the events to send now out. */
  event(event: SseEvent): SseEvent[];
  /** The upstream ended: whatever is still held, as events. */
  end(): SseEvent[];
}

export function createStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): StreamRewriter {
  if (endpoint === 'openai.chat.completions') return new OpenAIChatStreamRewriter(rewriter);
  if (endpoint === 'anthropic.messages') return new AnthropicStreamRewriter(rewriter);
  if (endpoint === 'openai.responses') return new ResponsesStreamRewriter(rewriter);
  return { event: (e) => [e], end: () => [] };
}

class Channels {
  readonly #open = new Map<string, ChannelTransformer>();
  readonly #rewriter: TextRewriter;
  constructor(rewriter: TextRewriter) {
    this.#rewriter = rewriter;
  }
  push(key: string, kind: TextKind, delta: string): string {
    let channel = this.#open.get(key);
    if (!channel) {
      channel = this.#rewriter.channel(kind);
      this.#open.set(key, channel);
    }
    return channel.push(delta);
  }
  /** Flushes and forgets one channel; '' when it was never opened. */
  close(key: string): string {
    const channel = this.#open.get(key);
    if (!channel) return '';
    this.#open.delete(key);
    return channel.end();
  }
  keys(prefix = ''): string[] {
    return [...this.#open.keys()].filter((k) => k.startsWith(prefix));
  }
}

/**
 * OpenAI Chat Completions: `choices[i].delta.content` and `choices[i].delta.tool_calls[j].function.arguments`
 * are channels; a chunk with `finish_reason` closes its choice's channels (held text goes into that
 * chunk's delta), and `[DONE]` or the end of the stream closes whatever is left.
 */
class OpenAIChatStreamRewriter implements StreamRewriter {
  readonly #channels: Channels;
  #template: JsonObject | null = null;

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
  }

  event(event: SseEvent): SseEvent[] {
    if (event.data === null) return [event];
    if (event.data === '[DONE]') return [...this.#flushAll(event), event];
    const data = parseJson(event.data);
    if (!isObject(data) || !Array.isArray(data.choices)) return [event];
    this.#template ??= { id: data.id ?? null, object: data.object ?? 'chat.completion.chunk', created: data.created ?? 0, model: data.model ?? '' };
    for (const choice of data.choices) {
      if (!isObject(choice)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      const delta = isObject(choice.delta) ? choice.delta : (choice.delta = {});
      if (typeof delta.content === 'string') delta.content = this.#channels.push(`${i}:content`, 'text', delta.content);
      for (const call of arr(delta.tool_calls)) {
        if (!isObject(call) || !isObject(call.function) || typeof call.function.arguments !== 'string') continue;
        const j = typeof call.index === 'number' ? call.index : 0;
        call.function.arguments = this.#channels.push(`${i}:tool:${j}`, 'json', call.function.arguments);
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const held = this.#channels.close(`${i}:content`);
        if (held !== '') delta.content = (typeof delta.content === 'string' ? delta.content : '') + held;
        const calls = this.#channels.keys(`${i}:tool:`).map((key) => ({ index: Number(key.split(':')[2]), function: { arguments: this.#channels.close(key) } }));
        const flushed = calls.filter((c) => c.function.arguments !== '');
        if (flushed.length > 0) delta.tool_calls = [...(arr(delta.tool_calls) as Json[]), ...flushed];
      }
    }
    return [withData(event, JSON.stringify(data))];
  }

  end(): SseEvent[] {
    return this.#flushAll(null);
  }

  #flushAll(before: SseEvent | null): SseEvent[] {
    const out: SseEvent[] = [];
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
    if (byChoice.size > 0) {
      const chunk = { ...(this.#template ?? { object: 'chat.completion.chunk' }), choices: [...byChoice].map(([index, delta]) => ({ index, delta, finish_reason: null })) };
      out.push(withData(before ?? { event: null, id: null, data: '', comment: false, raw: '' }, JSON.stringify(chunk)));
    }
    return out;
  }
}

/**
 * Anthropic Messages: each content block is a channel (`text_delta` text, `input_json_delta`
 * partial_json); `content_block_stop` closes it, with a synthetic delta carrying what was held.
 */
class AnthropicStreamRewriter implements StreamRewriter {
  readonly #channels: Channels;
  readonly #kinds = new Map<number, TextKind>();

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
  }

  event(event: SseEvent): SseEvent[] {
    if (event.data === null) return [event];
    const data = parseJson(event.data);
    if (!isObject(data)) return [event];
    const index = typeof data.index === 'number' ? data.index : 0;
    if (data.type === 'content_block_start' && isObject(data.content_block)) {
      const block = data.content_block;
      this.#kinds.set(index, block.type === 'tool_use' ? 'json' : 'text');
      if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') {
        block.text = this.#channels.push(String(index), 'text', block.text);
        return [withData(event, JSON.stringify(data))];
      }
      return [event];
    }
    if (data.type === 'content_block_delta' && isObject(data.delta)) {
      const delta = data.delta;
      if (delta.type === 'text_delta' && typeof delta.text === 'string') delta.text = this.#channels.push(String(index), 'text', delta.text);
      else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') delta.partial_json = this.#channels.push(String(index), 'json', delta.partial_json);
      else return [event];
      return [withData(event, JSON.stringify(data))];
    }
    if (data.type === 'content_block_stop') {
      const held = this.#channels.close(String(index));
      if (held === '') return [event];
      const kind = this.#kinds.get(index) ?? 'text';
      const delta = kind === 'json' ? { type: 'input_json_delta', partial_json: held } : { type: 'text_delta', text: held };
      const synthetic = withData({ event: 'content_block_delta', id: null, data: '', comment: false, raw: '' }, JSON.stringify({ type: 'content_block_delta', index, delta }));
      return [synthetic, event];
    }
    return [event];
  }

  end(): SseEvent[] {
    const out: SseEvent[] = [];
    for (const key of this.#channels.keys()) {
      const held = this.#channels.close(key);
      if (held === '') continue;
      const index = Number(key);
      const delta = this.#kinds.get(index) === 'json' ? { type: 'input_json_delta', partial_json: held } : { type: 'text_delta', text: held };
      out.push(withData({ event: 'content_block_delta', id: null, data: '', comment: false, raw: '' }, JSON.stringify({ type: 'content_block_delta', index, delta })));
    }
    return out;
  }
}

/**
 * OpenAI Responses: `response.output_text.delta` and `response.function_call_arguments.delta`
 * are channels keyed by output/content index; the matching `*.done` event closes the channel
 * (held text goes into a synthetic delta first) and carries the whole text, which is rewritten
 * whole — as are the part/item/response snapshots in `content_part.done`, `output_item.done` and
 * `response.completed`.
 */
class ResponsesStreamRewriter implements StreamRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  event(event: SseEvent): SseEvent[] {
    if (event.data === null) return [event];
    const data = parseJson(event.data);
    if (!isObject(data)) return [event];
    const type = typeof data.type === 'string' ? data.type : (event.event ?? '');
    const key = `${typeof data.output_index === 'number' ? data.output_index : 0}:${typeof data.content_index === 'number' ? data.content_index : 'args'}`;
    const set = (holder: JsonObject, field: string, kind: TextKind): void => {
      if (typeof holder[field] === 'string') holder[field] = this.#rewriter.whole(holder[field], kind);
    };
    switch (type) {
      case 'response.output_text.delta':
        if (typeof data.delta === 'string') data.delta = this.#channels.push(key, 'text', data.delta);
        return [withData(event, JSON.stringify(data))];
      case 'response.function_call_arguments.delta':
        if (typeof data.delta === 'string') data.delta = this.#channels.push(key, 'json', data.delta);
        return [withData(event, JSON.stringify(data))];
      case 'response.custom_tool_call_input.delta':
        if (typeof data.delta === 'string') data.delta = this.#channels.push(key, 'text', data.delta);
        return [withData(event, JSON.stringify(data))];
      case 'response.output_text.done':
      case 'response.function_call_arguments.done':
      case 'response.custom_tool_call_input.done': {
        const held = this.#channels.close(key);
        const isText = type === 'response.output_text.done';
        const isCustom = type === 'response.custom_tool_call_input.done';
        set(data, isText ? 'text' : isCustom ? 'input' : 'arguments', isText || isCustom ? 'text' : 'json');
        const out: SseEvent[] = [];
        if (held !== '') {
          const deltaType = isText ? 'response.output_text.delta' : isCustom ? 'response.custom_tool_call_input.delta' : 'response.function_call_arguments.delta';
          const { text: _text, arguments: _arguments, input: _input, ...rest } = data;
          const synthetic = { ...rest, type: deltaType, delta: held };
          out.push(withData({ event: deltaType, id: null, data: '', comment: false, raw: '' }, JSON.stringify(synthetic)));
        }
        out.push(withData(event, JSON.stringify(data)));
        return out;
      }
      case 'response.content_part.done':
        if (isObject(data.part) && data.part.type === 'output_text') set(data.part, 'text', 'text');
        return [withData(event, JSON.stringify(data))];
      case 'response.output_item.done':
        if (isObject(data.item)) rewriteResponsesObject({ output: [data.item] }, set);
        return [withData(event, JSON.stringify(data))];
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (isObject(data.response)) rewriteResponsesObject(data.response, set);
        return [withData(event, JSON.stringify(data))];
      default:
        return [event];
    }
  }

  end(): SseEvent[] {
    // Channels still open when the stream ends had no *.done event: the stream is broken anyway;
    // emit what was held as deltas so nothing half-masked is lost silently.
    return this.#channels.keys().flatMap((key) => {
      const held = this.#channels.close(key);
      if (held === '') return [];
      const [output, content] = key.split(':');
      const isArgs = content === 'args';
      const type = isArgs ? 'response.function_call_arguments.delta' : 'response.output_text.delta';
      const data = { type, output_index: Number(output), ...(isArgs ? {} : { content_index: Number(content) }), delta: held };
      return [withData({ event: type, id: null, data: '', comment: false, raw: '' }, JSON.stringify(data))];
    });
  }
}
