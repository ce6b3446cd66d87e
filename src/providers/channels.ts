/**
 * What the codecs share to rewrite text inside provider messages without breaking the wire
 * format: the rewriter policy hands in (plain text in, plain text out), the stream channels it
 * runs on, and the parsed SSE event every stage of a streamed answer works on.
 *
 * Each upstream event is parsed once (StreamItem.of); the codec reads its normalized events from
 * it, the masking rewriter and the tool-call replacer change its data in place, and it is
 * serialized once, only when something changed — an untouched event goes out as its original
 * bytes. On streams every independent text channel (a choice's content, a tool call's arguments,
 * an Anthropic content block, a Responses output part) gets its own stream transformer; text a
 * transformer still holds back is flushed into a synthetic delta event placed just before the
 * event that closes the channel, so the client's concatenated text equals the transform of the
 * whole text, whatever the chunking.
 */
import type { ResponseEvent } from '../core/events.ts';
import { isObject, parseJson, type Json, type JsonObject } from '../core/json.ts';
import { scrubSecrets } from '../core/scrub-secrets.ts';
import { withData, type SseEvent } from '../core/sse.ts';

/** Plain text, or the text of JSON (tool-call arguments), where replacements must stay valid JSON string content. */
export type TextKind = 'text' | 'json';

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
   * with `whole` field by field (the codec's rewriteAnswer).
   */
  body?(body: string): string | Promise<string> | null;
  /**
   * True when it may hide text (masking): copies of an answer's text token by token (logprobs)
   * are then left out, since no per-token rewrite can hide a value split over tokens.
   */
  readonly hidesText?: boolean;
  /**
   * A thinking block whose text this rewriter changed: what to put in its `signature`, which no
   * longer fits the text (the provider would refuse the block when the client sends it back).
   */
  sealThinking?(upstreamText: string, signature: string): string;
}

/**
 * One SSE event, its JSON data parsed once. Stages change `data` in place and call touch();
 * sse() serializes once, and only for a touched or synthetic event.
 */
export class StreamItem {
  readonly #source: SseEvent;
  /** The event's JSON object, or null (no data, `[DONE]`, not an object). */
  readonly data: JsonObject | null;
  #dirty: boolean;
  #sse: SseEvent | null = null;

  private constructor(source: SseEvent, data: JsonObject | null, dirty: boolean) {
    this.#source = source;
    this.data = data;
    this.#dirty = dirty;
  }

  /** Parses an upstream event (the only JSON.parse it gets). */
  static of(event: SseEvent): StreamItem {
    const text = event.data;
    const parsed = text === null || text === '[DONE]' ? undefined : parseJson(text);
    return new StreamItem(event, isObject(parsed) ? parsed : null, false);
  }

  /** A new event the gateway makes (a flushed delta, a replacement), named `type`. */
  static synthetic(type: string | null, data: JsonObject, like?: SseEvent): StreamItem {
    return new StreamItem(like ?? { event: type, id: null, data: '', comment: false, raw: '' }, data, true);
  }

  /** The event as it came (its name, id, raw bytes). */
  get source(): SseEvent {
    return this.#source;
  }

  /** The data changed: serialize it on the way out. */
  touch(): void {
    this.#dirty = true;
    this.#sse = null;
  }

  /** The event to write: the original bytes, or the data serialized once. */
  sse(): SseEvent {
    if (!this.#dirty || this.data === null) return this.#source;
    return (this.#sse ??= withData(this.#source, JSON.stringify(this.data)));
  }

  /** About how many characters the event takes on the wire, without serializing an upstream event again. */
  get size(): number {
    return this.#source.raw !== '' ? this.#source.raw.length : this.sse().raw.length;
  }
}

/**
 * What happens to an answer's event (or body element) of a type the codec does not know — whose
 * text fields it cannot name (gateway setting `answers.unknown_events`):
 *  - `fail`: the answer is refused (a stream ends with the provider's in-stream error);
 *  - `drop`: it is left out — when the rest stays well formed without it (a standalone stream
 *    event, a body element); a streamed block or item that later events refer to by index
 *    cannot be left out, so it fails;
 *  - `mask`: it is relayed with every string in it masked as a whole text (no stream law across
 *    events: a value split over two unknown events is not found).
 */
export type UnknownEvents = 'fail' | 'drop' | 'mask';

/** Something of a type the codec does not know, as its classifier reports it. */
export interface UnknownShape {
  /** What it is, for logs and the error (`event type "response.foo"`); the type cut to 60 characters. */
  readonly what: string;
  /** Leaving it out keeps the answer well formed (no later event refers to it). */
  readonly droppable: boolean;
}

/** An element of a non-streamed answer of a type the codec does not know; drop() takes it out of the body. */
export interface BodyPart extends UnknownShape {
  drop(): void;
}

/** `kind "type"`, the type cut to 60 characters and stripped of control characters (it goes into errors and logs). */
export function unknownShape(kind: string, type: unknown, droppable: boolean): UnknownShape {
  // eslint-disable-next-line no-control-regex
  const name = typeof type === 'string' ? JSON.stringify(scrubSecrets(type.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, 60), [])) : 'without a type';
  return { what: `${kind} ${name}`, droppable };
}

/** A codec's reader of one streamed answer: one JSON.parse per event. */
export interface StreamReader {
  /**
   * One whole upstream event in: its normalized events (read before any rewriting: what the
   * upstream said) and the events to send now (rewritten where a channel's text changed);
   * `readable` false when the event carries data that is not a JSON object (nor `[DONE]`): text
   * the gateway cannot read, so it must not be relayed unread. `refused`: the event is of a type
   * the codec does not know and the reader's UnknownEvents refuses it (the stream must end);
   * `dropped`: such an event left out.
   */
  read(event: SseEvent): StreamRead;
  /** The upstream ended: whatever the rewriter still holds, as events. */
  end(): StreamItem[];
}

export interface StreamRead {
  readonly events: ResponseEvent[];
  readonly out: StreamItem[];
  readonly readable: boolean;
  readonly refused: UnknownShape | null;
  readonly dropped: UnknownShape | null;
}

/** A codec's rewriting of one streamed answer's texts, on parsed events. */
export interface ItemRewriter {
  item(item: StreamItem): StreamItem[];
  end(): StreamItem[];
}

/**
 * `classify` names what in an event the codec does not know (null: all known); `unknown` says
 * what to do with it. Under `mask` it is read and rewritten like any event (the rewriters mask
 * the strings of what they do not know).
 */
export function createStreamReader(normalize: (item: StreamItem) => ResponseEvent[], rewrite: ItemRewriter | null, classify: (item: StreamItem) => UnknownShape | null, unknown: UnknownEvents): StreamReader {
  const none = { events: [], out: [] };
  return {
    read(event) {
      const item = StreamItem.of(event);
      const readable = item.data !== null || event.data === null || event.data.trim() === '' || event.data === '[DONE]';
      if (!readable) return { ...none, readable, refused: null, dropped: null };
      if (unknown !== 'mask' && item.data !== null) {
        const shape = classify(item);
        if (shape !== null) {
          if (unknown === 'drop' && shape.droppable) return { ...none, readable, refused: null, dropped: shape };
          return { ...none, readable, refused: shape, dropped: null };
        }
      }
      const events = normalize(item);
      return { events, out: rewrite ? rewrite.item(item) : [item], readable, refused: null, dropped: null };
    },
    end: () => rewrite?.end() ?? [],
  };
}

/**
 * Keys whose strings are identifiers, enums or opaque payloads (signatures, encrypted or base64
 * data), never text a model wrote: not masked when the strings of an element are (a mask would
 * only break them). Keys ending in `_id` too.
 */
const OPAQUE_KEYS = new Set(['type', 'id', 'role', 'status', 'object', 'model', 'signature', 'data', 'encrypted_content', 'encrypted_index', 'obfuscation', 'partial_image_b64', 'result']);

const opaque = (key: string): boolean => OPAQUE_KEYS.has(key) || key.endsWith('_id');

/**
 * Rewrites every string inside `value` (objects and arrays, any depth) as a whole text, except
 * under opaque keys; in place, true if one changed. For elements whose text fields the codec
 * does not name (an unknown event, a citation, a web search result).
 */
export function rewriteStrings(value: Json, rewriter: TextRewriter): boolean {
  let changed = false;
  // An explicit stack: an upstream event may nest deeper than the call stack.
  const stack: Json[] = [value];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (Array.isArray(next)) {
      for (let i = 0; i < next.length; i++) {
        const v = next[i]!;
        if (typeof v === 'string') {
          if (v !== '') {
            const out = rewriter.whole(v, 'text');
            if (out !== v) {
              next[i] = out;
              changed = true;
            }
          }
        } else if (v !== null && typeof v === 'object') stack.push(v);
      }
    } else if (next !== null && typeof next === 'object') {
      for (const key of Object.keys(next)) {
        const v = next[key]!;
        if (typeof v === 'string') {
          if (v !== '' && !opaque(key) && replaceField(next, key, rewriter.whole(v, 'text'))) changed = true;
        } else if (v !== null && typeof v === 'object') stack.push(v);
      }
    }
  }
  return changed;
}

/** rewriteStrings on every field of `holder` not in `known` (fields a provider added to a type the codec knows). */
export function rewriteOtherFields(holder: JsonObject, known: ReadonlySet<string>, rewriter: TextRewriter): boolean {
  let changed = false;
  for (const key in holder) {
    if (known.has(key)) continue;
    const v = holder[key]!;
    if (typeof v === 'string') {
      if (v !== '' && !opaque(key) && replaceField(holder, key, rewriter.whole(v, 'text'))) changed = true;
    } else if (v !== null && typeof v === 'object' && rewriteStrings(v, rewriter)) changed = true;
  }
  return changed;
}

/** The open channels of one streamed answer, by key. */
export class Channels {
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

/** Sets `holder[key]` to `next` when it differs; true if it did. */
export function replaceField(holder: JsonObject, key: string, next: string): boolean {
  if (holder[key] === next) return false;
  holder[key] = next;
  return true;
}
