/**
 * Replaces refused tool calls in an answer, streamed or not, by a text the agent reads — in each
 * provider's own wire format, so the answer stays valid and ends normally:
 *
 *  - Anthropic Messages: the `tool_use` block becomes a `text` block at the same index (its
 *    `input_json_delta`s dropped, one `text_delta` with the notice); `stop_reason` `tool_use`
 *    becomes `end_turn` when no call is left.
 *  - OpenAI Chat Completions: the call's `tool_calls` entries are dropped (the calls left are
 *    renumbered from 0), the notice is added to the choice's `content`; `finish_reason`
 *    `tool_calls` becomes `stop` when no call is left.
 *  - OpenAI Responses: the `function_call` / `custom_tool_call` output item becomes an assistant
 *    `message` item at the same output index (added, content part, text delta and done events),
 *    in `response.completed` too; sequence numbers stay consecutive.
 *
 * `notices` maps a call's key (`choice:index`, as the adapters number calls) to its notice.
 * Streamed events come parsed once (./channels.ts StreamItem) and are changed in place; the relay
 * serializes them once on the way out.
 */
import type { EndpointId } from '../core/events.ts';
import { arr, isObject, type Json, type JsonObject } from '../core/json.ts';
import { StreamItem } from './channels.ts';

/** An answer event (parsed once, ../providers/channels.ts) and when it arrived. */
export interface TimedEvent {
  readonly event: StreamItem;
  readonly offsetMs: number;
}

export interface ToolCallReplacer {
  /** One held event in; the events to send instead. */
  event(held: TimedEvent): TimedEvent[];
}

/** `textChoices`: choices that already carried text (the notice then starts a new paragraph). */
export function createToolCallReplacer(endpoint: EndpointId, notices: ReadonlyMap<string, string>, textChoices: ReadonlySet<number> = new Set()): ToolCallReplacer {
  if (notices.size === 0) return { event: (e) => [e] };
  if (endpoint === 'anthropic.messages') return new AnthropicReplacer(notices);
  if (endpoint === 'openai.chat.completions') return new ChatReplacer(notices, textChoices);
  if (endpoint === 'openai.responses') return new ResponsesReplacer(notices);
  return { event: (e) => [e] };
}

function synthetic(type: string | null, data: JsonObject): StreamItem {
  return StreamItem.synthetic(type, data);
}

class AnthropicReplacer implements ToolCallReplacer {
  readonly #notices: ReadonlyMap<string, string>;
  readonly #replacing = new Set<number>();
  #toolUseLeft = 0;

  constructor(notices: ReadonlyMap<string, string>) {
    this.#notices = notices;
  }

  event(held: TimedEvent): TimedEvent[] {
    const { event, offsetMs } = held;
    const data = event.data;
    if (data === null) return [held];
    const index = typeof data.index === 'number' ? data.index : 0;
    if (data.type === 'content_block_start' && isObject(data.content_block) && data.content_block.type === 'tool_use') {
      const notice = this.#notices.get(`0:${index}`);
      if (notice === undefined) {
        this.#toolUseLeft++;
        return [held];
      }
      this.#replacing.add(index);
      return [
        { event: StreamItem.synthetic('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }, { ...event.source, raw: '' }), offsetMs },
        { event: synthetic('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: notice } }), offsetMs },
      ];
    }
    if (data.type === 'content_block_delta' && this.#replacing.has(index)) return [];
    if (data.type === 'message_delta' && isObject(data.delta) && data.delta.stop_reason === 'tool_use' && this.#toolUseLeft === 0 && this.#replacing.size > 0) {
      data.delta.stop_reason = 'end_turn';
      event.touch();
      return [held];
    }
    return [held];
  }
}

class ChatReplacer implements ToolCallReplacer {
  readonly #notices: ReadonlyMap<string, string>;
  readonly #textChoices: ReadonlySet<number>;
  /** Per choice: original call index → new index (kept calls only). */
  readonly #renumber = new Map<number, Map<number, number>>();
  readonly #noticed = new Set<string>();

  constructor(notices: ReadonlyMap<string, string>, textChoices: ReadonlySet<number>) {
    this.#notices = notices;
    this.#textChoices = textChoices;
  }

  event(held: TimedEvent): TimedEvent[] {
    const data = held.event.data;
    if (data === null || !Array.isArray(data.choices)) return [held];
    let changed = false;
    for (const choice of data.choices) {
      if (!isObject(choice)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      const delta = isObject(choice.delta) ? choice.delta : null;
      if (delta && Array.isArray(delta.tool_calls)) {
        const kept: Json[] = [];
        for (const call of delta.tool_calls) {
          if (!isObject(call)) continue;
          const j = typeof call.index === 'number' ? call.index : 0;
          const key = `${i}:${j}`;
          const notice = this.#notices.get(key);
          if (notice === undefined) {
            const renumbered = this.#newIndex(i, j);
            if (renumbered !== j) {
              call.index = renumbered;
              changed = true;
            }
            kept.push(call);
            continue;
          }
          changed = true;
          if (!this.#noticed.has(key)) {
            this.#noticed.add(key);
            const before = typeof delta.content === 'string' ? delta.content : '';
            const separator = before !== '' || this.#textChoices.has(i) || [...this.#noticed].some((k) => k !== key && k.startsWith(`${i}:`)) ? '\n\n' : '';
            delta.content = `${before}${separator}${notice}`;
          }
        }
        if (kept.length !== delta.tool_calls.length) {
          changed = true;
          if (kept.length > 0) delta.tool_calls = kept;
          else delete delta.tool_calls;
        }
      }
      if (choice.finish_reason === 'tool_calls' && (this.#renumber.get(i)?.size ?? 0) === 0 && [...this.#noticed].some((k) => k.startsWith(`${i}:`))) {
        choice.finish_reason = 'stop';
        changed = true;
      }
    }
    if (!changed) return [held];
    // A chunk that only carried deltas of a removed call says nothing any more: dropped.
    const empty = data.usage == null && data.choices.every((c) => isObject(c) && (c.finish_reason === null || c.finish_reason === undefined) && isObject(c.delta) && Object.keys(c.delta).length === 0);
    if (empty) return [];
    held.event.touch();
    return [held];
  }

  #newIndex(choice: number, index: number): number {
    let map = this.#renumber.get(choice);
    if (!map) this.#renumber.set(choice, (map = new Map<number, number>()));
    let n = map.get(index);
    if (n === undefined) map.set(index, (n = map.size));
    return n;
  }
}

const CALL_ITEMS = new Set(['function_call', 'custom_tool_call']);
const CALL_EVENTS = new Set([
  'response.function_call_arguments.delta',
  'response.function_call_arguments.done',
  'response.custom_tool_call_input.delta',
  'response.custom_tool_call_input.done',
]);

class ResponsesReplacer implements ToolCallReplacer {
  readonly #notices: ReadonlyMap<string, string>;
  readonly #items = new Map<number, string>();
  #sequence: number | null = null;

  constructor(notices: ReadonlyMap<string, string>) {
    this.#notices = notices;
  }

  event(held: TimedEvent): TimedEvent[] {
    const out = this.#replace(held);
    // Sequence numbers stay consecutive from the first held event's.
    for (const e of out) {
      const data = e.event.data;
      if (data === null || typeof data.sequence_number !== 'number') continue;
      this.#sequence ??= data.sequence_number;
      if (data.sequence_number === this.#sequence) {
        this.#sequence++;
        continue;
      }
      data.sequence_number = this.#sequence++;
      e.event.touch();
    }
    return out;
  }

  #message(k: number, id: string, done: boolean): JsonObject {
    const notice = this.#notices.get(`0:${k}`) ?? '';
    return { id, type: 'message', status: done ? 'completed' : 'in_progress', role: 'assistant', content: done ? [{ type: 'output_text', annotations: [], logprobs: [], text: notice }] : [] };
  }

  #replace(held: TimedEvent): TimedEvent[] {
    const { event, offsetMs } = held;
    const data = event.data;
    if (data === null) return [held];
    const type = typeof data.type === 'string' ? data.type : (event.source.event ?? '');
    const k = typeof data.output_index === 'number' ? data.output_index : -1;
    const at = (type: string, body: JsonObject): TimedEvent => ({ event: synthetic(type, { type, ...body }), offsetMs });
    if ((type === 'response.output_item.added' || type === 'response.output_item.done') && isObject(data.item) && typeof data.item.type === 'string' && CALL_ITEMS.has(data.item.type)) {
      const notice = this.#notices.get(`0:${k}`);
      if (notice === undefined) return [held];
      const id = this.#items.get(k) ?? `msg_aigov_${typeof data.item.id === 'string' ? data.item.id.replace(/[^A-Za-z0-9_]/g, '') : k}`;
      this.#items.set(k, id);
      const seq: JsonObject = typeof data.sequence_number === 'number' ? { sequence_number: data.sequence_number } : {};
      const part = { type: 'output_text', annotations: [], logprobs: [], text: '' };
      if (type === 'response.output_item.added') {
        return [
          at('response.output_item.added', { ...seq, output_index: k, item: this.#message(k, id, false) }),
          at('response.content_part.added', { ...seq, item_id: id, output_index: k, content_index: 0, part }),
          at('response.output_text.delta', { ...seq, item_id: id, output_index: k, content_index: 0, delta: notice, logprobs: [] }),
        ];
      }
      return [
        at('response.output_text.done', { ...seq, item_id: id, output_index: k, content_index: 0, text: notice, logprobs: [] }),
        at('response.content_part.done', { ...seq, item_id: id, output_index: k, content_index: 0, part: { ...part, text: notice } }),
        at('response.output_item.done', { ...seq, output_index: k, item: this.#message(k, id, true) }),
      ];
    }
    if (CALL_EVENTS.has(type) && this.#notices.has(`0:${k}`)) return [];
    if ((type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') && isObject(data.response)) {
      if (this.#replaceOutput(data.response)) event.touch();
    }
    return [held];
  }

  /** Replaces refused call items in a response object's `output`; true if any was. */
  #replaceOutput(response: JsonObject): boolean {
    let changed = false;
    arr(response.output).forEach((item, k) => {
      if (!isObject(item) || typeof item.type !== 'string' || !CALL_ITEMS.has(item.type) || !this.#notices.has(`0:${k}`)) return;
      const id = this.#items.get(k) ?? `msg_aigov_${typeof item.id === 'string' ? item.id.replace(/[^A-Za-z0-9_]/g, '') : k}`;
      this.#items.set(k, id);
      (response.output as Json[])[k] = this.#message(k, id, true);
      changed = true;
    });
    return changed;
  }

  replaceBody(response: JsonObject): boolean {
    return this.#replaceOutput(response);
  }
}

/** The same replacement on a parsed non-streamed answer, in place; true if a call was replaced. */
export function replaceToolCallsInAnswer(endpoint: EndpointId, json: JsonObject, notices: ReadonlyMap<string, string>): boolean {
  if (notices.size === 0) return false;
  let changed = false;
  if (endpoint === 'anthropic.messages' && Array.isArray(json.content)) {
    let left = 0;
    json.content = json.content.map((block, i) => {
      if (!isObject(block) || block.type !== 'tool_use') return block;
      const notice = notices.get(`0:${i}`);
      if (notice === undefined) {
        left++;
        return block;
      }
      changed = true;
      return { type: 'text', text: notice };
    });
    if (changed && left === 0 && json.stop_reason === 'tool_use') json.stop_reason = 'end_turn';
  } else if (endpoint === 'openai.chat.completions') {
    for (const choice of arr(json.choices)) {
      if (!isObject(choice) || !isObject(choice.message)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      const message = choice.message;
      const calls = arr(message.tool_calls);
      const texts: string[] = [];
      const kept = calls.filter((_, j) => {
        const notice = notices.get(`${i}:${j}`);
        if (notice !== undefined) texts.push(notice);
        return notice === undefined;
      });
      if (texts.length === 0) continue;
      changed = true;
      const before = typeof message.content === 'string' && message.content !== '' ? `${message.content}\n\n` : '';
      message.content = before + texts.join('\n\n');
      if (kept.length > 0) message.tool_calls = kept as Json[];
      else delete message.tool_calls;
      if (kept.length === 0 && choice.finish_reason === 'tool_calls') choice.finish_reason = 'stop';
    }
  } else if (endpoint === 'openai.responses') {
    changed = new ResponsesReplacer(notices).replaceBody(json);
  }
  return changed;
}
