/**
 * Incremental Server-Sent Events parsing and byte-faithful re-serialization.
 *
 * `SseParser.push(chunk)` takes text chunked anywhere (1 byte at a time included) and returns
 * the events completed so far; it never re-scans what it already consumed. Each event keeps its
 * raw text, so an event that no transform touched is written back byte for byte, comments and
 * CRLF line endings included.
 */

export interface SseEvent {
  /** The `event:` field, or null when absent (the default "message" event). */
  readonly event: string | null;
  /** The `data:` lines joined with "\n", or null when the block has no data line (e.g. a comment). */
  readonly data: string | null;
  readonly id: string | null;
  /** True for a block of comment lines only (`: keep-alive`). */
  readonly comment: boolean;
  /** The exact text of the block including its terminating blank line. */
  readonly raw: string;
}

export class SseParser {
  /** Text of the block still being received, in pieces (joined once, when the block completes). */
  #parts: string[] = [];
  /** The last ≤3 characters of that text: a block end may begin in them ("\r\n\r" + "\n"). */
  #tail = '';
  /** Length of that text (UTF-16 units), so a caller can bound an event that never ends. */
  #pendingLength = 0;

  /** Feeds text; returns the events whose terminating blank line has arrived. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    // Scan only the new text plus the short tail, so a long pending event costs O(chunk) per push.
    const hay = this.#tail + text;
    const offset = this.#tail.length;
    let from = 0;
    let used = 0; // how much of `text` went into emitted events
    let emitted = false;
    for (;;) {
      const end = findBlockEnd(hay, from);
      if (end === -1) break;
      const upTo = end - offset;
      this.#parts.push(text.slice(used, upTo));
      events.push(parseBlock(this.#parts.join('')));
      this.#parts = [];
      used = upTo;
      from = end;
      emitted = true;
    }
    const rest = text.slice(used);
    if (emitted) this.#pendingLength = 0;
    if (rest !== '') {
      this.#parts.push(rest);
      this.#pendingLength += rest.length;
    }
    this.#tail = emitted ? rest.slice(-3) : (this.#tail + rest).slice(-3);
    return events;
  }

  /** Length (UTF-16 units) of the incomplete block received so far. */
  get pendingLength(): number {
    return this.#pendingLength;
  }

  /** Text received after the last complete event (an incomplete block). */
  get pending(): string {
    return this.#parts.join('');
  }

  /** Ends the stream; a final block without its blank line is returned as an event when it has fields. */
  end(): SseEvent[] {
    const rest = this.pending;
    this.#parts = [];
    this.#tail = '';
    this.#pendingLength = 0;
    if (rest.trim() === '') return [];
    return [parseBlock(rest)];
  }
}

/** Index just past the blank line that ends the block beginning at or before `from`, or -1. */
function findBlockEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    // i is a line terminator; the line after it must be empty.
    let next = i + 1;
    if (c === 13) {
      if (next >= text.length) return -1; // might be \r\n: wait
      if (text.charCodeAt(next) === 10) next++;
    }
    if (next >= text.length) return -1;
    const d = text.charCodeAt(next);
    if (d === 10) return next + 1;
    if (d === 13) {
      if (next + 1 >= text.length) return -1;
      return text.charCodeAt(next + 1) === 10 ? next + 2 : next + 1;
    }
  }
  return -1;
}

function parseBlock(raw: string): SseEvent {
  let event: string | null = null;
  let id: string | null = null;
  const data: string[] = [];
  let fields = 0;
  for (const line of raw.split(/\r\n|\r|\n/)) {
    if (line === '') continue;
    if (line.startsWith(':')) continue;
    fields++;
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') data.push(value);
    else if (name === 'event') event = value;
    else if (name === 'id') id = value;
  }
  return { event, data: data.length > 0 ? data.join('\n') : null, id, comment: fields === 0, raw };
}

/** Serializes a new event in the canonical form (`event: x\ndata: y\n\n`). */
export function serializeSseEvent(fields: { event?: string | null; data: string; id?: string | null }): string {
  let out = '';
  if (fields.event != null) out += `event: ${fields.event}\n`;
  if (fields.id != null) out += `id: ${fields.id}\n`;
  for (const line of fields.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** An event with new data, keeping the original's name and id; raw text re-made canonically. */
export function withData(original: SseEvent, data: string): SseEvent {
  const raw = serializeSseEvent({ event: original.event, id: original.id, data });
  return { event: original.event, id: original.id, data, comment: false, raw };
}
