/**
 * What `aigov sessions replay` shows, as data: a session's calls on a timeline, each with its
 * prompt as recorded (roles and text, parsed per provider), and its answer as text deltas with
 * the offsets they were sent at. Pure: no I/O, no clock; the player (replay-player.ts) decides
 * how much of an answer is visible at a given moment.
 *
 * Everything here came from other people (prompts, answers, rule reasons): the views escape it
 * with `terminalSafe` before it reaches a terminal. Masked text (`[EMAIL]`, `[EMAIL:3f9a…]`,
 * `****1111`, `«EMAIL_1»`) is found by `splitMasked` so the views can highlight it.
 */
import { SseParser } from '../core/sse.ts';
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

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function parseJson(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arr(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A JSON value as compact text (tool inputs), strings as themselves. */
function compact(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value ?? null);
}

// ---------------------------------------------------------------------------------------------
// Prompts

/** Text of a content field: a string, or parts with text (other parts named in brackets). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  const pieces: string[] = [];
  for (const part of arr(content)) {
    if (typeof part === 'string') pieces.push(part);
    else if (!isObject(part)) continue;
    else if (typeof part.text === 'string') pieces.push(part.text);
    else if (part.type === 'tool_use') pieces.push(`→ tool call ${str(part.name) ?? '?'}(${compact(part.input)})`);
    else if (part.type === 'tool_result') pieces.push(`← tool result${typeof part.tool_use_id === 'string' ? ` ${part.tool_use_id}` : ''}: ${contentText(part.content)}`);
    else if (typeof part.type === 'string') pieces.push(`[${part.type}]`);
  }
  return pieces.join('\n');
}

function chatPrompt(body: JsonObject): PromptMessage[] {
  const out: PromptMessage[] = [];
  for (const message of arr(body.messages)) {
    if (!isObject(message)) continue;
    const role = str(message.role) ?? '?';
    const pieces = [contentText(message.content)].filter((t) => t !== '');
    for (const call of arr(message.tool_calls)) {
      if (isObject(call) && isObject(call.function)) pieces.push(`→ tool call ${str(call.function.name) ?? '?'}(${str(call.function.arguments) ?? ''})`);
    }
    const prefix = role === 'tool' && typeof message.tool_call_id === 'string' ? `← result of ${message.tool_call_id}: ` : '';
    out.push({ role, text: prefix + pieces.join('\n') });
  }
  return out;
}

function responsesPrompt(body: JsonObject): PromptMessage[] {
  const out: PromptMessage[] = [];
  if (typeof body.instructions === 'string' && body.instructions !== '') out.push({ role: 'instructions', text: body.instructions });
  if (typeof body.input === 'string') {
    out.push({ role: 'user', text: body.input });
    return out;
  }
  for (const item of arr(body.input)) {
    if (!isObject(item)) continue;
    if (item.type === 'function_call') out.push({ role: 'assistant', text: `→ tool call ${str(item.name) ?? '?'}(${str(item.arguments) ?? ''})` });
    else if (item.type === 'custom_tool_call') out.push({ role: 'assistant', text: `→ tool call ${str(item.name) ?? '?'}(${str(item.input) ?? ''})` });
    else if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') out.push({ role: 'tool', text: `← result of ${str(item.call_id) ?? '?'}: ${contentText(item.output)}` });
    else out.push({ role: str(item.role) ?? str(item.type) ?? '?', text: contentText(item.content) });
  }
  return out;
}

function anthropicPrompt(body: JsonObject): PromptMessage[] {
  const out: PromptMessage[] = [];
  const system = contentText(body.system);
  if (system !== '') out.push({ role: 'system', text: system });
  for (const message of arr(body.messages)) {
    if (!isObject(message)) continue;
    out.push({ role: str(message.role) ?? '?', text: contentText(message.content) });
  }
  return out;
}

/** The prompt of a recorded request body, message by message; the body itself when it cannot be read. */
export function promptOf(call: Pick<CallView, 'endpoint' | 'request_body'>): PromptMessage[] {
  const body = parseJson(call.request_body);
  if (!isObject(body)) return call.request_body.trim() === '' ? [] : [{ role: 'body', text: call.request_body }];
  switch (call.endpoint) {
    case 'openai.chat.completions':
      return chatPrompt(body);
    case 'openai.responses':
      return responsesPrompt(body);
    case 'anthropic.messages':
    case 'anthropic.messages.count_tokens':
      return anthropicPrompt(body);
    case 'openai.embeddings':
      return (typeof body.input === 'string' ? [body.input] : arr(body.input).map((v) => compact(v))).map((text) => ({ role: 'input', text }));
    default:
      return [{ role: 'body', text: call.request_body }];
  }
}

// ---------------------------------------------------------------------------------------------
// Answers

/** Collects parts and deltas; parts keep the order in which they first had text. */
class AnswerBuilder {
  readonly parts: AnswerPart[] = [];
  readonly deltas: AnswerDelta[] = [];
  readonly #index = new Map<string, number>();
  readonly #labels = new Map<string, string>();

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
}

function errorText(data: JsonObject): string | null {
  // `{"error": {...}}` (OpenAI, aigov), `{"type": "error", "error": {...}}` (Anthropic), `{"type": "error", "code", "message"}` (Responses).
  const error = isObject(data.error) ? data.error : data.type === 'error' ? data : null;
  if (error === null) return null;
  const code = str(error.code) ?? str(error.type);
  const message = str(error.message) ?? '';
  return code ? `${code}: ${message}` : message;
}

/** One SSE event's data: what it adds to the answer. */
function streamEventDeltas(endpoint: string, event: { event: string | null; data: string }, offsetMs: number, out: AnswerBuilder): void {
  const data = parseJson(event.data);
  if (!isObject(data)) return;
  if (event.event === 'error' || data.type === 'error' || (isObject(data.error) && !('choices' in data))) {
    const text = errorText(data);
    if (text !== null) out.add('error', 'error', text, offsetMs);
    return;
  }
  if (endpoint === 'openai.chat.completions' || Array.isArray(data.choices)) {
    for (const choice of arr(data.choices)) {
      if (!isObject(choice) || !isObject(choice.delta)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      const delta = choice.delta;
      if (typeof delta.content === 'string') out.add(`${i}:content`, 'text', delta.content, offsetMs);
      if (typeof delta.refusal === 'string') out.add(`${i}:refusal`, 'refusal', delta.refusal, offsetMs);
      for (const call of arr(delta.tool_calls)) {
        if (!isObject(call) || !isObject(call.function)) continue;
        const key = `${i}:tool:${typeof call.index === 'number' ? call.index : 0}`;
        if (typeof call.function.name === 'string') out.label(key, call.function.name);
        if (typeof call.function.arguments === 'string') out.add(key, 'tool', call.function.arguments, offsetMs);
      }
    }
    return;
  }
  const type = str(data.type) ?? event.event ?? '';
  if (endpoint === 'openai.responses' || type.startsWith('response.')) {
    const output = typeof data.output_index === 'number' ? data.output_index : 0;
    if (type === 'response.output_item.added' && isObject(data.item) && (data.item.type === 'function_call' || data.item.type === 'custom_tool_call') && typeof data.item.name === 'string') {
      out.label(`${output}:args`, data.item.name);
    } else if (type === 'response.custom_tool_call_input.delta' && typeof data.delta === 'string') {
      out.add(`${output}:args`, 'tool', data.delta, offsetMs);
    } else if (type === 'response.output_text.delta' && typeof data.delta === 'string') {
      out.add(`${output}:${typeof data.content_index === 'number' ? data.content_index : 0}`, 'text', data.delta, offsetMs);
    } else if (type === 'response.refusal.delta' && typeof data.delta === 'string') {
      out.add(`${output}:refusal`, 'refusal', data.delta, offsetMs);
    } else if (type === 'response.function_call_arguments.delta' && typeof data.delta === 'string') {
      out.add(`${output}:args`, 'tool', data.delta, offsetMs);
    } else if (type === 'response.failed' && isObject(data.response) && isObject(data.response.error)) {
      out.add('error', 'error', errorText(data.response) ?? 'failed', offsetMs);
    }
    return;
  }
  // Anthropic Messages.
  const index = typeof data.index === 'number' ? data.index : 0;
  if (type === 'content_block_start' && isObject(data.content_block)) {
    const block = data.content_block;
    if (block.type === 'tool_use' && typeof block.name === 'string') out.label(String(index), block.name);
    if (block.type === 'text' && typeof block.text === 'string') out.add(String(index), 'text', block.text, offsetMs);
  } else if (type === 'content_block_delta' && isObject(data.delta)) {
    const delta = data.delta;
    if (delta.type === 'text_delta' && typeof delta.text === 'string') out.add(String(index), 'text', delta.text, offsetMs);
    else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') out.add(String(index), 'tool', delta.partial_json, offsetMs);
  }
}

function streamedAnswer(call: CallView): ReplayAnswer {
  const out = new AnswerBuilder();
  let eventCount = 0;
  for (const recorded of call.events) {
    eventCount++;
    // Each recorded event is one whole SSE block; a parser per block also takes one that lost its blank line.
    const parser = new SseParser();
    for (const event of [...parser.push(recorded.raw), ...parser.end()]) {
      if (event.comment || event.data === null || event.data === '[DONE]') continue;
      streamEventDeltas(call.endpoint, { event: event.event, data: event.data }, recorded.offset_ms, out);
    }
  }
  const lastDeltaMs = out.deltas.reduce((max, d) => Math.max(max, d.offsetMs), 0);
  return { streamed: true, parts: out.parts, deltas: out.deltas, eventCount, lastDeltaMs };
}

/** A non-streamed answer body: all its text at offset 0. */
function bodyAnswer(call: CallView): ReplayAnswer {
  const out = new AnswerBuilder();
  const raw = call.response_body;
  const body = raw === null ? undefined : parseJson(raw);
  if (raw !== null && !isObject(body)) {
    if (raw.trim() !== '') out.add('body', 'text', raw, 0);
  } else if (isObject(body)) {
    const error = errorText(body);
    if (error !== null) out.add('error', 'error', error, 0);
    for (const choice of arr(body.choices)) {
      if (!isObject(choice) || !isObject(choice.message)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      const message = choice.message;
      if (typeof message.content === 'string') out.add(`${i}:content`, 'text', message.content, 0);
      if (typeof message.refusal === 'string') out.add(`${i}:refusal`, 'refusal', message.refusal, 0);
      arr(message.tool_calls).forEach((call, j) => {
        if (!isObject(call) || !isObject(call.function)) return;
        const key = `${i}:tool:${j}`;
        if (typeof call.function.name === 'string') out.label(key, call.function.name);
        out.add(key, 'tool', str(call.function.arguments) ?? '', 0);
      });
    }
    arr(body.output).forEach((item, i) => {
      if (!isObject(item)) return;
      if (item.type === 'message') {
        arr(item.content).forEach((part, j) => {
          if (isObject(part) && part.type === 'output_text' && typeof part.text === 'string') out.add(`${i}:${j}`, 'text', part.text, 0);
          if (isObject(part) && part.type === 'refusal' && typeof part.refusal === 'string') out.add(`${i}:refusal`, 'refusal', part.refusal, 0);
        });
      } else if (item.type === 'function_call' || item.type === 'custom_tool_call') {
        if (typeof item.name === 'string') out.label(`${i}:args`, item.name);
        out.add(`${i}:args`, 'tool', str(item.type === 'function_call' ? item.arguments : item.input) ?? '', 0);
      }
    });
    if (body.type === 'message' || Array.isArray(body.content)) {
      arr(body.content).forEach((block, i) => {
        if (!isObject(block)) return;
        if (block.type === 'text' && typeof block.text === 'string') out.add(String(i), 'text', block.text, 0);
        if (block.type === 'tool_use') {
          if (typeof block.name === 'string') out.label(String(i), block.name);
          out.add(String(i), 'tool', compact(block.input), 0);
        }
      });
    }
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
