/**
 * What `aigov sessions replay` shows, as data: a session's calls on a timeline, each with its
 * prompt as recorded (roles and text, as the provider's codec reads it), and its answer as text
 * deltas with the offsets they were sent at (the codec's normalized events). Pure: no I/O, no
 * clock; the player (replay-player.ts) decides how much of an answer is visible at a given moment.
 *
 * Everything here came from other people (prompts, answers, rule reasons): the views escape it
 * with `terminalSafe` before it reaches a terminal. Masked text (`[EMAIL]`, `[EMAIL:3f9a…]`,
 * `****1111`, `«EMAIL_1»`) is found by `splitMasked` so the views can highlight it.
 */
import type { ContentPart, EndpointId, NormalizedMessage, ResponseEvent, Role } from '../core/events.ts';
import { SseParser } from '../core/sse.ts';
import { codecForEndpoint, readRecordedAnswer, readRecordedRequest } from '../providers/registry.ts';
import type { CallView, SessionDetail } from '../protocol/sessions.ts';

export interface PromptMessage {
  /** `system`, `user`, `assistant`, `tool`, … as the request said; `input` for embeddings, `body` when unparsed. */
  readonly role: string;
  readonly text: string;
}

/** One independent text of an answer: a choice's content, a tool call's arguments, an error. */
export interface AnswerPart {
  readonly key: string;
  readonly kind: 'text' | 'tool' | 'refusal' | 'error';
  /** For tool calls: the function name when the stream said it. */
  readonly label: string | null;
}

export interface AnswerDelta {
  /** Milliseconds since the call started. */
  readonly offsetMs: number;
  /** Index into the answer's parts. */
  readonly part: number;
  readonly text: string;
}

export interface ReplayAnswer {
  readonly streamed: boolean;
  readonly parts: readonly AnswerPart[];
  /** In offset order (the recorded order of the events). */
  readonly deltas: readonly AnswerDelta[];
  /** Stream events recorded (comments and keep-alives included); 0 for a non-streamed answer. */
  readonly eventCount: number;
  /** Milliseconds until the last delta; 0 when there is none. */
  readonly lastDeltaMs: number;
}

export interface ReplayCall {
  readonly call: CallView;
  /** 0-based position in the session. */
  readonly index: number;
  /** Milliseconds from the session's first call to this one's start. */
  readonly startMs: number;
  /** How long the call's replay lasts: its last recorded event or its latency, whichever is later. */
  readonly durationMs: number;
  readonly prompt: readonly PromptMessage[];
  readonly answer: ReplayAnswer;
}

export interface ReplayTimeline {
  readonly detail: SessionDetail;
  readonly calls: readonly ReplayCall[];
  /** From the first call's start to the last call's end, in milliseconds. */
  readonly spanMs: number;
}

// ---------------------------------------------------------------------------------------------
// Prompts

/** One part of a normalized message as a line of the prompt. */
function partText(part: ContentPart, role: Role): string {
  switch (part.type) {
    case 'text':
      return part.text;
    case 'tool_call':
      return `→ tool call ${part.name || '?'}(${part.arguments})`;
    case 'tool_result':
      // A tool turn's result (Chat, Responses) answers the call named; a result block inside a user turn (Anthropic) says so.
      return role === 'tool' ? `← result of ${part.toolCallId || '?'}: ${part.text}` : `← tool result${part.toolCallId ? ` ${part.toolCallId}` : ''}: ${part.text}`;
    case 'image':
      return '[image]';
    case 'audio':
      return '[audio]';
    case 'file': {
      const label = part.name ? `[file ${part.name}]` : '[file]';
      return part.text ? `${label} ${part.text}` : label;
    }
    case 'other':
      return part.text ?? `[${part.kind}]`;
  }
}

function messageOf(message: NormalizedMessage): PromptMessage {
  return { role: message.wire ?? message.role, text: message.parts.map((part) => partText(part, message.role)).filter((t) => t !== '').join('\n') };
}

/**
 * The prompt of a recorded request, message by message, as its provider's codec reads it; the
 * body itself when the codec does not read it (not JSON, an endpoint without a conversation, a
 * body the gateway refused as malformed).
 */
export function promptOf(call: Pick<CallView, 'endpoint' | 'request_body'>): PromptMessage[] {
  if (call.request_body.trim() === '') return [];
  const request = readRecordedRequest(call.endpoint, call.request_body);
  if (request === null) return [{ role: 'body', text: call.request_body }];
  if (request.endpoint === 'openai.embeddings') return request.inputs.map((text) => ({ role: 'input', text }));
  return request.messages.map(messageOf);
}

// ---------------------------------------------------------------------------------------------
// Answers

/** Collects parts and deltas; parts keep the order in which they first had text. */
class AnswerBuilder {
  readonly parts: AnswerPart[] = [];
  readonly deltas: AnswerDelta[] = [];
  readonly #index = new Map<string, number>();
  readonly #labels = new Map<string, string>();
  /** Tool calls whose text came from a snapshot (the whole arguments at once). */
  readonly #snapshots = new Set<string>();

  /** Names a tool part before its first delta (the name arrives in an earlier event). */
  label(key: string, label: string): void {
    this.#labels.set(key, label);
  }

  add(key: string, kind: AnswerPart['kind'], text: string, offsetMs: number): void {
    if (text === '') return;
    let part = this.#index.get(key);
    if (part === undefined) {
      part = this.parts.length;
      this.parts.push({ key, kind, label: this.#labels.get(key) ?? null });
      this.#index.set(key, part);
    }
    this.deltas.push({ offsetMs, part, text });
  }

  /** What one normalized event adds to the answer. */
  event(event: ResponseEvent, offsetMs: number): void {
    switch (event.type) {
      case 'text':
        this.add(`${event.choice}:${event.block ?? 'content'}`, 'text', event.text, offsetMs);
        break;
      case 'refusal':
        this.add(`${event.choice}:refusal`, 'refusal', event.text, offsetMs);
        break;
      case 'tool_call': {
        const key = `${event.choice}:tool:${event.index}`;
        if (event.name) this.label(key, event.name);
        // The arguments as deltas, or — when none came — as the snapshot a `*.done` event states.
        if (this.#snapshots.has(key)) break;
        if (event.complete) {
          if (this.#index.has(key) || event.argumentsDelta === '') break;
          this.#snapshots.add(key);
        }
        this.add(key, 'tool', event.argumentsDelta, offsetMs);
        break;
      }
      case 'error':
        this.add('error', 'error', `${event.code ?? event.errorType}: ${event.message}`, offsetMs);
        break;
      default:
        break;
    }
  }
}

function streamedAnswer(call: CallView): ReplayAnswer {
  const out = new AnswerBuilder();
  const reader = codecForEndpoint(call.endpoint as EndpointId)?.streamReader(call.endpoint as EndpointId, null) ?? null;
  let eventCount = 0;
  for (const recorded of call.events) {
    eventCount++;
    if (reader === null) continue;
    // Each recorded event is one whole SSE block; a parser per block also takes one that lost its blank line.
    const parser = new SseParser();
    for (const event of [...parser.push(recorded.raw), ...parser.end()]) {
      if (event.comment || event.data === null) continue;
      for (const e of reader.read(event).events) out.event(e, recorded.offset_ms);
    }
  }
  const lastDeltaMs = out.deltas.reduce((max, d) => Math.max(max, d.offsetMs), 0);
  return { streamed: true, parts: out.parts, deltas: out.deltas, eventCount, lastDeltaMs };
}

/** A non-streamed answer body: all its text at offset 0. */
function bodyAnswer(call: CallView): ReplayAnswer {
  const out = new AnswerBuilder();
  const raw = call.response_body;
  if (raw !== null) {
    const events = readRecordedAnswer(call.provider_kind, call.endpoint, call.http_status, raw);
    if (events === null) out.add('body', 'text', raw.trim() === '' ? '' : raw, 0);
    else for (const event of events) out.event(event, 0);
  }
  return { streamed: false, parts: out.parts, deltas: out.deltas, eventCount: 0, lastDeltaMs: 0 };
}


export function answerOf(call: CallView): ReplayAnswer {
  return call.stream || call.events.length > 0 ? streamedAnswer(call) : bodyAnswer(call);
}

/** The session's calls in the order they started, with their prompts and answers parsed. */
export function buildTimeline(detail: SessionDetail): ReplayTimeline {
  const sorted = detail.calls
    .map((call, i) => ({ call, i, at: Date.parse(call.started_at) }))
    .sort((a, b) => (Number.isNaN(a.at) || Number.isNaN(b.at) ? a.i - b.i : a.at - b.at || a.i - b.i));
  const first = sorted.find((c) => !Number.isNaN(c.at))?.at ?? 0;
  let end = 0;
  const calls = sorted.map(({ call, at }, index): ReplayCall => {
    const answer = answerOf(call);
    const lastEvent = call.events.reduce((max, e) => Math.max(max, e.offset_ms), 0);
    const durationMs = Math.max(0, lastEvent, answer.lastDeltaMs, call.latency_ms ?? 0);
    const startMs = Number.isNaN(at) ? 0 : at - first;
    end = Math.max(end, startMs + durationMs);
    return { call, index, startMs, durationMs, prompt: promptOf(call), answer };
  });
  return { detail, calls, spanMs: end };
}

/** The answer's parts with the text sent up to `elapsedMs` (parts with no text yet are left out). */
export function answerAt(answer: ReplayAnswer, elapsedMs: number): { part: AnswerPart; text: string }[] {
  const texts = answer.parts.map(() => '');
  for (const delta of answer.deltas) {
    if (delta.offsetMs > elapsedMs) continue;
    texts[delta.part] += delta.text;
  }
  return answer.parts.map((part, i) => ({ part, text: texts[i] ?? '' })).filter((p) => p.text !== '');
}

/** How many of the answer's deltas are visible at `elapsedMs`. */
export function deltasShown(answer: ReplayAnswer, elapsedMs: number): number {
  let n = 0;
  for (const delta of answer.deltas) if (delta.offsetMs <= elapsedMs) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Masked spans

/**
 * What masking leaves in text: `[EMAIL]` (redact), `[EMAIL:3f9a0c…]` (hmac), `«EMAIL_1»`
 * (pseudonymize, with the spacing and case variants models produce) and runs of four or more
 * `*` with the kept tail (`****1111`, mask).
 */
const MASKED = /\[[A-Z][A-Z0-9_]{1,39}(?::[0-9a-f]{4,64}…?)?\]|«\s{0,2}[A-Za-z][A-Za-z_]{0,40}_\d{1,6}\s{0,2}»|\*{4,}[\w@.+-]{0,12}/g;

export interface TextSpan {
  readonly text: string;
  readonly masked: boolean;
}

/** `text` cut into plain and masked spans, in order; joining the spans gives `text` back. */
export function splitMasked(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  let cursor = 0;
  for (const match of text.matchAll(MASKED)) {
    const start = match.index;
    if (start > cursor) spans.push({ text: text.slice(cursor, start), masked: false });
    spans.push({ text: match[0], masked: true });
    cursor = start + match[0].length;
  }
  if (cursor < text.length) spans.push({ text: text.slice(cursor), masked: false });
  return spans;
}

/** The distinct masked spans of a call (prompt and answer), in order of appearance, at most `limit`. */
export function maskedSpansOf(call: ReplayCall, limit = 20): string[] {
  const seen = new Set<string>();
  const texts = [...call.prompt.map((m) => m.text), ...answerAt(call.answer, Number.POSITIVE_INFINITY).map((p) => p.text)];
  for (const text of texts) {
    for (const span of splitMasked(text)) {
      if (span.masked) seen.add(span.text);
      if (seen.size >= limit) return [...seen];
    }
  }
  return [...seen];
}
