/**
 * Where the text lives in Anthropic's Messages answers, streamed and not: normalized events and
 * rewriting their texts, on events parsed once (./channels.ts).
 */
import type { EndpointId, ResponseEvent } from '../core/events.ts';
import { arr, isObject, num, parseJson, str, type JsonObject } from '../core/json.ts';
import { Channels, replaceField, StreamItem, type ItemRewriter, type TextRewriter } from './channels.ts';

export function pushAnthropicUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  const input = num(usage.input_tokens);
  const output = num(usage.output_tokens);
  events.push({ type: 'usage', usage: { inputTokens: input, outputTokens: output, totalTokens: input !== undefined && output !== undefined ? input + output : undefined } });
}

/** The normalized events of one parsed stream event. */
export function anthropicStreamEvents(endpoint: EndpointId, item: StreamItem): ResponseEvent[] {
  const data = item.data;
  if (data === null || endpoint !== 'anthropic.messages') return [];
  const type = str(data.type) ?? item.source.event;
  const events: ResponseEvent[] = [];
  if (type === 'message_start' && isObject(data.message)) {
    if (typeof data.message.model === 'string') events.push({ type: 'model', model: data.message.model });
    pushAnthropicUsage(events, data.message.usage);
  } else if (type === 'content_block_start' && isObject(data.content_block)) {
    const block = data.content_block;
    if (block.type === 'tool_use') {
      // The start block's input is `{}` before its deltas; one that already holds arguments is
      // what a client uses when no delta follows: judged as a snapshot.
      const input = isObject(block.input) && Object.keys(block.input).length > 0 ? JSON.stringify(block.input) : null;
      events.push({ type: 'tool_call', choice: 0, index: num(data.index) ?? 0, id: str(block.id), name: str(block.name), argumentsDelta: input ?? '', ...(input !== null ? { complete: true } : {}) });
    } else if (block.type === 'text' && str(block.text)) events.push({ type: 'text', choice: 0, text: str(block.text) ?? '', block: num(data.index) ?? 0 });
  } else if (type === 'content_block_delta' && isObject(data.delta)) {
    const delta = data.delta;
    if (delta.type === 'text_delta') events.push({ type: 'text', choice: 0, text: str(delta.text) ?? '', block: num(data.index) ?? 0 });
    else if (delta.type === 'input_json_delta') events.push({ type: 'tool_call', choice: 0, index: num(data.index) ?? 0, argumentsDelta: str(delta.partial_json) ?? '' });
  } else if (type === 'message_delta') {
    const reason = isObject(data.delta) ? str(data.delta.stop_reason) : undefined;
    if (reason) events.push({ type: 'finish', choice: 0, reason });
    pushAnthropicUsage(events, data.usage);
  } else if (type === 'error' && isObject(data.error)) {
    const code = str(data.error.code);
    events.push({ type: 'error', errorType: str(data.error.type) ?? 'api_error', message: str(data.error.message) ?? '', ...(code ? { code } : {}) });
  }
  return events;
}

/** Rewrites the answer texts of a parsed non-streamed Messages body in place; true if one changed. */
export function rewriteAnthropicAnswer(endpoint: EndpointId, json: JsonObject, rewriter: TextRewriter): boolean {
  if (endpoint !== 'anthropic.messages') return false;
  let changed = false;
  for (const block of arr(json.content)) {
    if (!isObject(block)) continue;
    if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') {
      if (replaceField(block, 'text', rewriter.whole(block.text, 'text'))) changed = true;
    }
    // Extended thinking is text the client shows (and records); `redacted_thinking` is opaque.
    if (block.type === 'thinking' && typeof block.thinking === 'string' && block.thinking !== '') {
      if (replaceField(block, 'thinking', rewriter.whole(block.thinking, 'text'))) changed = true;
    }
    // tool_use input is an object: rewrite its JSON text and parse it back.
    if (block.type === 'tool_use' && block.input !== undefined) {
      const text = JSON.stringify(block.input);
      const next = rewriter.whole(text, 'json');
      if (next === text) continue;
      const parsed = parseJson(next);
      if (parsed !== undefined) {
        block.input = parsed as JsonObject;
        changed = true;
      }
    }
  }
  return changed;
}

export function anthropicStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): ItemRewriter | null {
  return endpoint === 'anthropic.messages' ? new MessagesStreamRewriter(rewriter) : null;
}

/** What a content block streams: text, thinking (`thinking_delta`) or tool input JSON. */
type BlockKind = 'text' | 'thinking' | 'json';

const flushed = (index: number, kind: BlockKind, held: string): StreamItem =>
  StreamItem.synthetic('content_block_delta', {
    type: 'content_block_delta',
    index,
    delta: kind === 'json' ? { type: 'input_json_delta', partial_json: held } : kind === 'thinking' ? { type: 'thinking_delta', thinking: held } : { type: 'text_delta', text: held },
  });

/**
 * Messages: each content block is a channel (`text_delta` text, `thinking_delta` thinking,
 * `input_json_delta` partial_json); `content_block_stop` closes it — or, for a thinking block, its
 * `signature_delta` — with a synthetic delta carrying what was held placed just before.
 */
class MessagesStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #kinds = new Map<number, BlockKind>();

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return [item];
    const index = typeof data.index === 'number' ? data.index : 0;
    if (data.type === 'content_block_start' && isObject(data.content_block)) {
      const block = data.content_block;
      const kind: BlockKind = block.type === 'tool_use' ? 'json' : block.type === 'thinking' ? 'thinking' : 'text';
      this.#kinds.set(index, kind);
      const field = kind === 'thinking' ? 'thinking' : 'text';
      if (kind !== 'json' && typeof block[field] === 'string' && block[field] !== '') {
        if (replaceField(block, field, this.#channels.push(String(index), 'text', block[field]))) item.touch();
      }
      return [item];
    }
    if (data.type === 'content_block_delta' && isObject(data.delta)) {
      const delta = data.delta;
      if (delta.type === 'text_delta' && typeof delta.text === 'string') {
        if (replaceField(delta, 'text', this.#channels.push(String(index), 'text', delta.text))) item.touch();
      } else if (delta.type === 'thinking_delta' && typeof delta.thinking === 'string') {
        if (replaceField(delta, 'thinking', this.#channels.push(String(index), 'text', delta.thinking))) item.touch();
      } else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
        if (replaceField(delta, 'partial_json', this.#channels.push(String(index), 'json', delta.partial_json))) item.touch();
      } else if (delta.type === 'signature_delta') {
        // The signature ends a thinking block's text: what the masker held goes out before it.
        const held = this.#channels.close(String(index));
        return held === '' ? [item] : [flushed(index, this.#kinds.get(index) ?? 'thinking', held), item];
      }
      return [item];
    }
    if (data.type === 'content_block_stop') {
      const held = this.#channels.close(String(index));
      return held === '' ? [item] : [flushed(index, this.#kinds.get(index) ?? 'text', held), item];
    }
    return [item];
  }

  end(): StreamItem[] {
    const out: StreamItem[] = [];
    for (const key of this.#channels.keys()) {
      const held = this.#channels.close(key);
      if (held === '') continue;
      const index = Number(key);
      out.push(flushed(index, this.#kinds.get(index) ?? 'text', held));
    }
    return out;
  }
}
