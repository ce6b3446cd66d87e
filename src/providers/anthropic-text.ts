/**
 * Where the text lives in Anthropic's Messages answers, streamed and not: normalized events and
 * rewriting their texts, on events parsed once (./channels.ts).
 */
import { definedOnly, type EndpointId, type ResponseEvent } from '../core/events.ts';
import { arr, isObject, num, parseJson, str, type Json, type JsonObject } from '../core/json.ts';
import { Channels, replaceField, rewriteOtherFields, rewriteStrings, StreamItem, unknownShape, type BodyPart, type ItemRewriter, type TextKind, type TextRewriter, type UnknownShape } from './channels.ts';

export function pushAnthropicUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  const input = num(usage.input_tokens);
  const output = num(usage.output_tokens);
  const cacheWrite1h = isObject(usage.cache_creation) ? num(usage.cache_creation.ephemeral_1h_input_tokens) : undefined;
  events.push({
    type: 'usage',
    usage: definedOnly({
      inputTokens: input,
      outputTokens: output,
      totalTokens: input !== undefined && output !== undefined ? input + output : undefined,
      cacheReadTokens: num(usage.cache_read_input_tokens),
      cacheWriteTokens: num(usage.cache_creation_input_tokens),
      cacheWrite1hTokens: cacheWrite1h,
    }),
  });
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

// ---------------------------------------------------------------------------------------------
// What the codec knows

/** Every stream event type of the Messages API. */
const EVENT_TYPES = new Set(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop', 'ping', 'error']);
/**
 * Content block types: text, thinking and tool input are rewritten field by field; the server
 * tools' results (web search, web fetch, code execution, MCP, …) string by string.
 */
const BLOCK_TYPES = new Set([
  'text',
  'thinking',
  'redacted_thinking',
  'tool_use',
  'server_tool_use',
  'mcp_tool_use',
  'web_search_tool_result',
  'web_fetch_tool_result',
  'advisor_tool_result',
  'code_execution_tool_result',
  'bash_code_execution_tool_result',
  'text_editor_code_execution_tool_result',
  'tool_search_tool_result',
  'mcp_tool_result',
  'mcp_tool_listing',
  'container_upload',
  'compaction',
  'fallback',
]);
/** Blocks whose `input` is the model's JSON (streamed as input_json_delta). */
const INPUT_BLOCKS = new Set(['tool_use', 'server_tool_use', 'mcp_tool_use']);
const DELTA_TYPES = new Set(['text_delta', 'input_json_delta', 'thinking_delta', 'signature_delta', 'citations_delta', 'compaction_delta']);

// The fields of the hot types, beyond which a provider's new field is masked string by string.
const TEXT_BLOCK_FIELDS = new Set(['type', 'text', 'citations']);
const THINKING_BLOCK_FIELDS = new Set(['type', 'thinking', 'signature']);
const INPUT_BLOCK_FIELDS = new Set(['type', 'id', 'name', 'input', 'server_name']);
const DELTA_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  text_delta: new Set(['type', 'text']),
  thinking_delta: new Set(['type', 'thinking']),
  input_json_delta: new Set(['type', 'partial_json']),
  signature_delta: new Set(['type', 'signature']),
};

/** What in one stream event the codec does not know: an event type, a content block type, a delta type. */
export function classifyAnthropicEvent(endpoint: EndpointId, item: StreamItem): UnknownShape | null {
  const data = item.data;
  if (data === null || endpoint !== 'anthropic.messages') return null;
  const type = data.type ?? item.source.event;
  if (typeof type !== 'string' || !EVENT_TYPES.has(type)) return unknownShape('event type', type, true);
  // A block later events refer to by index: leaving it out would break the stream.
  if (type === 'content_block_start' && isObject(data.content_block) && !BLOCK_TYPES.has(str(data.content_block.type) ?? '')) return unknownShape('content block type', data.content_block.type, false);
  if (type === 'content_block_delta' && isObject(data.delta) && !DELTA_TYPES.has(str(data.delta.type) ?? '')) return unknownShape('delta type', data.delta.type, true);
  return null;
}

/** Content blocks of a non-streamed answer of types the codec does not know. */
export function unknownAnthropicParts(endpoint: EndpointId, json: JsonObject): BodyPart[] {
  if (endpoint !== 'anthropic.messages' || !Array.isArray(json.content)) return [];
  const content = json.content;
  const out: BodyPart[] = [];
  for (const block of content) {
    if (isObject(block) && !BLOCK_TYPES.has(str(block.type) ?? '')) out.push({ ...unknownShape('content block type', block.type, true), drop: () => void content.splice(content.indexOf(block), 1) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Non-streamed answers

/** Rewrites the answer texts of a parsed non-streamed Messages body in place; true if one changed. */
export function rewriteAnthropicAnswer(endpoint: EndpointId, json: JsonObject, rewriter: TextRewriter): boolean {
  if (endpoint !== 'anthropic.messages') return false;
  return rewriteContent(json.content, rewriter);
}

/** A message's content blocks, each rewritten whole (a body; a message_start snapshot). */
function rewriteContent(content: Json | undefined, rewriter: TextRewriter): boolean {
  let changed = false;
  for (const block of arr(content)) if (isObject(block) && rewriteBlock(block, rewriter)) changed = true;
  return changed;
}

function rewriteBlock(block: JsonObject, rewriter: TextRewriter): boolean {
  const type = block.type;
  const whole = (field: string, kind: TextKind): boolean => typeof block[field] === 'string' && block[field] !== '' && replaceField(block, field, rewriter.whole(block[field], kind));
  let changed = false;
  if (type === 'text') {
    changed = whole('text', 'text');
    if (rewriteOtherFields(block, TEXT_BLOCK_FIELDS, rewriter)) changed = true;
    if (Array.isArray(block.citations) && rewriteStrings(block.citations, rewriter)) changed = true;
  } else if (type === 'thinking') {
    // Extended thinking is text the client shows (and records). Changed, its signature no
    // longer fits: it is sealed so the gateway can send the original back (sealThinking).
    const original = block.thinking;
    changed = whole('thinking', 'text');
    if (changed && typeof original === 'string' && typeof block.signature === 'string' && rewriter.sealThinking) block.signature = rewriter.sealThinking(original, block.signature);
    if (rewriteOtherFields(block, THINKING_BLOCK_FIELDS, rewriter)) changed = true;
  } else if (type === 'redacted_thinking') {
    // Opaque and encrypted: nothing to read.
  } else if (typeof type === 'string' && INPUT_BLOCKS.has(type)) {
    if (rewriteInput(block, rewriter)) changed = true;
    if (rewriteOtherFields(block, INPUT_BLOCK_FIELDS, rewriter)) changed = true;
  } else if (rewriteStrings(block, rewriter)) {
    // A server tool's result (search results, fetched pages, command output) or a block of a type
    // the codec does not know: every string in it.
    changed = true;
  }
  return changed;
}

/** A tool's `input` object: its JSON text rewritten and parsed back. */
function rewriteInput(block: JsonObject, rewriter: TextRewriter): boolean {
  if (!isObject(block.input) || Object.keys(block.input).length === 0) return false;
  const text = JSON.stringify(block.input);
  const next = rewriter.whole(text, 'json');
  if (next === text) return false;
  const parsed = parseJson(next);
  if (!isObject(parsed)) return false;
  block.input = parsed;
  return true;
}

/**
 * A large body masked its own way (on a worker, without sealThinking): each thinking block of
 * `after` whose text differs from the same block in `before` gets its signature sealed. In place.
 */
export function sealChangedThinking(endpoint: EndpointId, before: JsonObject, after: JsonObject, seal: (upstreamText: string, signature: string) => string): void {
  if (endpoint !== 'anthropic.messages') return;
  const original = arr(before.content);
  arr(after.content).forEach((block, i) => {
    const was = original[i];
    if (!isObject(block) || !isObject(was) || block.type !== 'thinking' || was.type !== 'thinking') return;
    if (typeof was.thinking === 'string' && typeof was.signature === 'string' && block.thinking !== was.thinking) block.signature = seal(was.thinking, was.signature);
  });
}

/**
 * The thinking blocks of a Messages request whose signature is a seal (`sealed`) get back the
 * upstream's text and signature (`open`), in place. `unopened`: seals that could not be opened.
 */
export function unsealThinking(body: JsonObject, sealed: (signature: string) => boolean, open: (signature: string) => { readonly text: string; readonly signature: string } | null): { changed: boolean; unopened: number } {
  let changed = false;
  let unopened = 0;
  for (const message of arr(body.messages)) {
    if (!isObject(message)) continue;
    for (const block of arr(message.content)) {
      if (!isObject(block) || block.type !== 'thinking' || typeof block.signature !== 'string' || !sealed(block.signature)) continue;
      const original = open(block.signature);
      if (original === null) {
        unopened++;
        continue;
      }
      block.thinking = original.text;
      block.signature = original.signature;
      changed = true;
    }
  }
  return { changed, unopened };
}

// ---------------------------------------------------------------------------------------------
// Streams

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

/** A thinking block's text as the upstream sent it and as the client got it (to tell whether it changed). */
interface ThinkingTexts {
  upstream: string;
  sent: string;
}

/**
 * Messages: each content block is a channel (`text_delta` text, `thinking_delta` thinking,
 * `input_json_delta` partial_json); `content_block_stop` closes it — or, for a thinking block, its
 * `signature_delta` — with a synthetic delta carrying what was held placed just before. Citations,
 * server tool results, compaction deltas, error messages and events of types the codec does not
 * know are rewritten string by string, each event on its own.
 */
class MessagesStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;
  readonly #kinds = new Map<number, BlockKind>();
  /** Thinking blocks' texts, kept only when the rewriter seals changed thinking. */
  readonly #thinking = new Map<number, ThinkingTexts>();

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return [item];
    const index = typeof data.index === 'number' ? data.index : 0;
    const type = data.type ?? item.source.event;
    if (type === 'content_block_start' && isObject(data.content_block)) {
      if (this.#blockStart(index, data.content_block)) item.touch();
      return [item];
    }
    if (type === 'content_block_delta' && isObject(data.delta)) return this.#delta(item, index, data.delta);
    if (type === 'content_block_stop') {
      const held = this.#close(index);
      this.#thinking.delete(index);
      return held === '' ? [item] : [flushed(index, this.#kinds.get(index) ?? 'text', held), item];
    }
    if (type === 'message_start') {
      if (isObject(data.message) && Array.isArray(data.message.content) && data.message.content.length > 0 && rewriteContent(data.message.content, this.#rewriter)) item.touch();
      return [item];
    }
    if (type === 'message_delta' || type === 'message_stop' || type === 'ping') return [item];
    // An error's message, an event of a type the codec does not know: every string in it.
    if (rewriteStrings(data, this.#rewriter)) item.touch();
    return [item];
  }

  /** A block opens: its channel's kind; text it already holds goes into the channel, other strings are rewritten whole. */
  #blockStart(index: number, block: JsonObject): boolean {
    const type = str(block.type) ?? '';
    const kind: BlockKind = INPUT_BLOCKS.has(type) ? 'json' : type === 'thinking' ? 'thinking' : 'text';
    this.#kinds.set(index, kind);
    if (type === 'text' || type === 'thinking') {
      const field = type === 'thinking' ? 'thinking' : 'text';
      const value = block[field];
      let changed = false;
      if (type === 'thinking' && this.#rewriter.sealThinking) this.#thinking.set(index, { upstream: '', sent: '' });
      if (typeof value === 'string' && value !== '') changed = replaceField(block, field, this.#push(index, 'text', value));
      if (rewriteOtherFields(block, type === 'text' ? TEXT_BLOCK_FIELDS : THINKING_BLOCK_FIELDS, this.#rewriter)) changed = true;
      if (Array.isArray(block.citations) && block.citations.length > 0 && rewriteStrings(block.citations, this.#rewriter)) changed = true;
      return changed;
    }
    if (type === 'redacted_thinking') return false;
    if (kind === 'json') {
      // A start that already holds the input (no deltas follow) is rewritten whole.
      const changed = rewriteInput(block, this.#rewriter);
      return rewriteOtherFields(block, INPUT_BLOCK_FIELDS, this.#rewriter) || changed;
    }
    return rewriteStrings(block, this.#rewriter);
  }

  #delta(item: StreamItem, index: number, delta: JsonObject): StreamItem[] {
    const type = delta.type;
    const known = typeof type === 'string' ? DELTA_FIELDS[type] : undefined;
    if (known !== undefined && rewriteOtherFields(delta, known, this.#rewriter)) item.touch();
    if (type === 'text_delta' && typeof delta.text === 'string') {
      if (replaceField(delta, 'text', this.#push(index, 'text', delta.text))) item.touch();
    } else if (type === 'thinking_delta' && typeof delta.thinking === 'string') {
      if (replaceField(delta, 'thinking', this.#push(index, 'text', delta.thinking))) item.touch();
    } else if (type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      if (replaceField(delta, 'partial_json', this.#push(index, 'json', delta.partial_json))) item.touch();
    } else if (type === 'signature_delta') {
      // The signature ends a thinking block's text: what the masker held goes out before it.
      const held = this.#close(index);
      const thinking = this.#thinking.get(index);
      this.#thinking.delete(index);
      if (thinking && thinking.sent !== thinking.upstream && typeof delta.signature === 'string' && this.#rewriter.sealThinking) {
        delta.signature = this.#rewriter.sealThinking(thinking.upstream, delta.signature);
        item.touch();
      }
      return held === '' ? [item] : [flushed(index, this.#kinds.get(index) ?? 'thinking', held), item];
    } else if (known === undefined) {
      // A citation (the cited text, a title, a URL), a compaction summary, a delta of a type the
      // codec does not know: every string in it, this event on its own.
      if (rewriteStrings(delta, this.#rewriter)) item.touch();
    }
    return [item];
  }

  /** Pushes a delta into its block's channel (noting a thinking block's texts). */
  #push(index: number, kind: 'text' | 'json', text: string): string {
    const out = this.#channels.push(String(index), kind, text);
    const thinking = this.#thinking.get(index);
    if (thinking) {
      thinking.upstream += text;
      thinking.sent += out;
    }
    return out;
  }

  #close(index: number): string {
    const held = this.#channels.close(String(index));
    const thinking = this.#thinking.get(index);
    if (thinking) thinking.sent += held;
    return held;
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
