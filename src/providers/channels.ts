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
import { isObject, parseJson, type JsonObject } from '../core/json.ts';
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

/** A codec's reader of one streamed answer: one JSON.parse per event. */
export interface StreamReader {
  /**
   * One whole upstream event in: its normalized events (read before any rewriting: what the
   * upstream said) and the events to send now (rewritten where a channel's text changed);
   * `readable` false when the event carries data that is not a JSON object (nor `[DONE]`): text
   * the gateway cannot read, so it must not be relayed unread.
   */
  read(event: SseEvent): { readonly events: ResponseEvent[]; readonly out: StreamItem[]; readonly readable: boolean };
  /** The upstream ended: whatever the rewriter still holds, as events. */
  end(): StreamItem[];
}

/** A codec's rewriting of one streamed answer's texts, on parsed events. */
export interface ItemRewriter {
  item(item: StreamItem): StreamItem[];
  end(): StreamItem[];
}

export function createStreamReader(normalize: (item: StreamItem) => ResponseEvent[], rewrite: ItemRewriter | null): StreamReader {
  return {
    read(event) {
      const item = StreamItem.of(event);
      const readable = item.data !== null || event.data === null || event.data.trim() === '' || event.data === '[DONE]';
      if (!readable) return { events: [], out: [], readable };
      const events = normalize(item);
      return { events, out: rewrite ? rewrite.item(item) : [item], readable };
    },
    end: () => rewrite?.end() ?? [],
  };
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
