/**
 * Where the text lives in OpenAI's wire format, streamed and not: Chat Completions and Responses
 * answers (normalized events, rewriting their texts). One JSON.parse per event (./channels.ts).
 */
import { definedOnly, type EndpointId, type ResponseEvent } from '../core/events.ts';
import { arr, isObject, num, str, type Json, type JsonObject } from '../core/json.ts';
import { Channels, replaceField, rewriteOtherFields, rewriteStrings, StreamItem, unknownShape, type BodyPart, type ItemRewriter, type TextKind, type TextRewriter, type UnknownShape } from './channels.ts';

// ---------------------------------------------------------------------------------------------
// Normalized events

/** A Responses call item's arguments (function_call) or input (custom_tool_call). */
export function callInput(item: JsonObject): string | undefined {
  return item.type === 'custom_tool_call' ? str(item.input) : str(item.arguments);
}

export function pushChatUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  events.push({
    type: 'usage',
    usage: definedOnly({
      inputTokens: num(usage.prompt_tokens),
      outputTokens: num(usage.completion_tokens),
      totalTokens: num(usage.total_tokens),
      cacheReadTokens: isObject(usage.prompt_tokens_details) ? num(usage.prompt_tokens_details.cached_tokens) : undefined,
      reasoningTokens: isObject(usage.completion_tokens_details) ? num(usage.completion_tokens_details.reasoning_tokens) : undefined,
    }),
  });
}

export function pushResponsesUsage(events: ResponseEvent[], usage: unknown): void {
  if (!isObject(usage)) return;
  events.push({
    type: 'usage',
    usage: definedOnly({
      inputTokens: num(usage.input_tokens),
      outputTokens: num(usage.output_tokens),
      totalTokens: num(usage.total_tokens),
      cacheReadTokens: isObject(usage.input_tokens_details) ? num(usage.input_tokens_details.cached_tokens) : undefined,
      reasoningTokens: isObject(usage.output_tokens_details) ? num(usage.output_tokens_details.reasoning_tokens) : undefined,
    }),
  });
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
// What the codec knows

/**
 * Responses stream event types. Left out on purpose: the events of client-executed tool calls
 * the tool gate cannot judge (`shell_call_command.*`, `shell_call_output_content.*`), and
 * client-side event types.
 */
const RESPONSES_EVENT_TYPES = new Set([
  'response.queued',
  'response.created',
  'response.in_progress',
  'response.completed',
  'response.incomplete',
  'response.failed',
  'response.output_item.added',
  'response.output_item.done',
  'response.content_part.added',
  'response.content_part.done',
  'response.output_text.delta',
  'response.output_text.done',
  'response.output_text.annotation.added',
  'response.refusal.delta',
  'response.refusal.done',
  'response.reasoning_summary_part.added',
  'response.reasoning_summary_part.done',
  'response.reasoning_summary_text.delta',
  'response.reasoning_summary_text.done',
  'response.reasoning_text.delta',
  'response.reasoning_text.done',
  'response.function_call_arguments.delta',
  'response.function_call_arguments.done',
  'response.custom_tool_call_input.delta',
  'response.custom_tool_call_input.done',
  'response.mcp_call_arguments.delta',
  'response.mcp_call_arguments.done',
  'response.code_interpreter_call_code.delta',
  'response.code_interpreter_call_code.done',
  'response.audio.delta',
  'response.audio.done',
  'response.audio.transcript.delta',
  'response.audio.transcript.done',
  'response.web_search_call.in_progress',
  'response.web_search_call.searching',
  'response.web_search_call.completed',
  'response.file_search_call.in_progress',
  'response.file_search_call.searching',
  'response.file_search_call.completed',
  'response.code_interpreter_call.in_progress',
  'response.code_interpreter_call.interpreting',
  'response.code_interpreter_call.completed',
  'response.image_generation_call.in_progress',
  'response.image_generation_call.generating',
  'response.image_generation_call.partial_image',
  'response.image_generation_call.completed',
  'response.mcp_call.in_progress',
  'response.mcp_call.completed',
  'response.mcp_call.failed',
  'response.mcp_list_tools.in_progress',
  'response.mcp_list_tools.completed',
  'response.mcp_list_tools.failed',
  'response.compaction.compacting',
  'error',
]);
/**
 * Output item types. Left out on purpose: client-executed tool calls the tool gate cannot judge
 * (`shell_call`, `local_shell_call`, `apply_patch_call`, `computer_call`) — under a policy they
 * are what `answers.unknown_events` says, never relayed as if judged.
 */
const RESPONSES_ITEM_TYPES = new Set([
  'message',
  'reasoning',
  'function_call',
  'custom_tool_call',
  'web_search_call',
  'file_search_call',
  'code_interpreter_call',
  'image_generation_call',
  'mcp_call',
  'mcp_list_tools',
  'mcp_approval_request',
  'mcp_approval_response',
  'tool_search_call',
  'tool_search_output',
  'additional_tools',
  'compaction',
  'function_call_output',
  'custom_tool_call_output',
  'computer_call_output',
  'local_shell_call_output',
  'shell_call_output',
  'apply_patch_call_output',
  'program',
  'program_output',
]);
const RESPONSES_PART_TYPES = new Set(['output_text', 'refusal', 'reasoning_text', 'summary_text']);
const PART_EVENTS = new Set(['response.content_part.added', 'response.content_part.done', 'response.reasoning_summary_part.added', 'response.reasoning_summary_part.done']);
const ITEM_EVENTS = new Set(['response.output_item.added', 'response.output_item.done']);
const RESPONSE_EVENTS = new Set(['response.queued', 'response.created', 'response.in_progress', 'response.completed', 'response.incomplete', 'response.failed']);

/** What in one stream event the codec does not know: a Responses event type, output item type or part type. */
export function classifyOpenAIEvent(endpoint: EndpointId, item: StreamItem): UnknownShape | null {
  const data = item.data;
  // Chat Completions chunks have one shape: what a server adds to it is masked string by string.
  if (data === null || endpoint !== 'openai.responses') return null;
  const type = data.type ?? item.source.event;
  if (typeof type !== 'string' || !RESPONSES_EVENT_TYPES.has(type)) return unknownShape('event type', type, true);
  // Items and parts later events refer to by index: leaving one out would break the stream.
  if (ITEM_EVENTS.has(type) && isObject(data.item) && !RESPONSES_ITEM_TYPES.has(str(data.item.type) ?? '')) return unknownShape('output item type', data.item.type, false);
  if (PART_EVENTS.has(type) && isObject(data.part) && !RESPONSES_PART_TYPES.has(str(data.part.type) ?? '')) return unknownShape('content part type', data.part.type, false);
  return null;
}

/** Output items and their content parts, in a non-streamed Responses answer, of types the codec does not know. */
export function unknownOpenAIParts(endpoint: EndpointId, json: JsonObject): BodyPart[] {
  if (endpoint !== 'openai.responses' || !Array.isArray(json.output)) return [];
  const out: BodyPart[] = [];
  const from = (list: Json[], element: JsonObject, kind: string): BodyPart => ({ ...unknownShape(kind, element.type, true), drop: () => void list.splice(list.indexOf(element), 1) });
  const output = json.output;
  for (const item of output) {
    if (!isObject(item)) continue;
    if (!RESPONSES_ITEM_TYPES.has(str(item.type) ?? '')) {
      out.push(from(output, item, 'output item type'));
      continue;
    }
    for (const field of ['content', 'summary'] as const) {
      const parts = item[field];
      if (item.type !== 'message' && item.type !== 'reasoning') break;
      if (!Array.isArray(parts)) continue;
      for (const part of parts) if (isObject(part) && !RESPONSES_PART_TYPES.has(str(part.type) ?? '')) out.push(from(parts, part, 'content part type'));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Non-streamed answers

/**
 * The text fields of a Chat Completions message or delta: the answer, a refusal, and the
 * reasoning OpenAI-compatible servers send (`reasoning_content`: DeepSeek, vLLM, llama.cpp…;
 * `reasoning`: vLLM ≥0.10, OpenRouter, Ollama).
 */
const CHAT_TEXT_FIELDS = ['content', 'refusal', 'reasoning_content', 'reasoning'] as const;
/**
 * The fields of a message or delta read field by field; any other (`annotations`, `audio` with
 * its transcript, `function_call`, a server's own) is rewritten string by string.
 */
const CHAT_MESSAGE_FIELDS = new Set(['role', ...CHAT_TEXT_FIELDS, 'tool_calls']);
const CHAT_CALL_FIELDS = new Set(['index', 'id', 'type', 'function']);
const CHAT_FUNCTION_FIELDS = new Set(['name', 'arguments']);

/** Rewrites fields of a non-streamed body as whole texts, noting whether one changed. */
class Texts {
  changed = false;
  readonly rewriter: TextRewriter;
  constructor(rewriter: TextRewriter) {
    this.rewriter = rewriter;
  }
  /** `holder[key]`, a text of `kind`. */
  set(holder: JsonObject, key: string, kind: TextKind): void {
    const value = holder[key];
    if (typeof value === 'string' && value !== '' && replaceField(holder, key, this.rewriter.whole(value, kind))) this.changed = true;
  }
  /** Every string in `value` (an element whose fields the codec does not name). */
  strings(value: Json | undefined): void {
    if (value !== undefined && value !== null && typeof value === 'object' && rewriteStrings(value, this.rewriter)) this.changed = true;
  }
  /** Every string in the fields of `holder` not in `known`. */
  others(holder: JsonObject, known: ReadonlySet<string>): void {
    if (rewriteOtherFields(holder, known, this.rewriter)) this.changed = true;
  }
  /** Token-by-token copies of the text (logprobs) left out when the rewriter may hide text. */
  dropCopies(holder: JsonObject, key: string, empty: Json): void {
    const value = holder[key];
    if (!this.rewriter.hidesText || value === undefined || value === null || (Array.isArray(value) && value.length === 0)) return;
    holder[key] = empty;
    this.changed = true;
  }
}

/** Rewrites the answer texts of a parsed non-streamed body in place; true if one changed. */
export function rewriteOpenAIAnswer(endpoint: EndpointId, json: JsonObject, rewriter: TextRewriter): boolean {
  const texts = new Texts(rewriter);
  if (endpoint === 'openai.chat.completions') {
    for (const choice of arr(json.choices)) {
      if (!isObject(choice)) continue;
      texts.dropCopies(choice, 'logprobs', null);
      if (isObject(choice.message)) rewriteChatMessage(choice.message, texts);
    }
  } else if (endpoint === 'openai.responses') {
    rewriteResponsesObject(json, texts);
  }
  return texts.changed;
}

function rewriteChatMessage(message: JsonObject, texts: Texts): void {
  for (const field of CHAT_TEXT_FIELDS) texts.set(message, field, 'text');
  for (const call of arr(message.tool_calls)) {
    if (!isObject(call)) continue;
    if (isObject(call.function)) {
      texts.set(call.function, 'arguments', 'json');
      texts.others(call.function, CHAT_FUNCTION_FIELDS);
    }
    texts.others(call, CHAT_CALL_FIELDS);
  }
  texts.others(message, CHAT_MESSAGE_FIELDS);
}

/** The fields of a response object that are the request's own settings echoed, or structure. */
const RESPONSE_FIELDS = new Set([
  'id', 'object', 'created_at', 'completed_at', 'status', 'background', 'error', 'incomplete_details', 'instructions', 'max_output_tokens', 'max_tool_calls', 'model', 'output', 'output_text',
  'parallel_tool_calls', 'previous_response_id', 'prompt', 'prompt_cache_key', 'prompt_cache_retention', 'reasoning', 'safety_identifier', 'service_tier', 'store', 'temperature', 'text', 'tool_choice',
  'tools', 'top_logprobs', 'top_p', 'truncation', 'usage', 'user', 'metadata', 'conversation', 'billing', 'frequency_penalty', 'presence_penalty',
]);

function rewriteResponsesObject(response: JsonObject, texts: Texts): void {
  texts.set(response, 'output_text', 'text');
  for (const item of arr(response.output)) if (isObject(item)) rewriteResponsesItem(item, texts);
  // A failure's message (it may quote the answer); what the API adds to the object.
  if (isObject(response.error)) texts.strings(response.error);
  texts.others(response, RESPONSE_FIELDS);
}

const MESSAGE_ITEM_FIELDS = new Set(['id', 'type', 'status', 'role', 'content', 'phase']);
const REASONING_ITEM_FIELDS = new Set(['id', 'type', 'status', 'summary', 'content', 'encrypted_content']);
const CALL_ITEM_FIELDS = new Set(['id', 'type', 'status', 'call_id', 'name', 'namespace', 'arguments', 'input']);

/**
 * One output item's texts: a message's output_text and refusal parts, a reasoning item's summary
 * and reasoning text (its `encrypted_content` is opaque and stays), a call's arguments or input;
 * any other item (a web search with its query and sources, code interpreter code and logs, an
 * MCP call's output, an item of a type the codec does not know) string by string.
 */
function rewriteResponsesItem(item: JsonObject, texts: Texts): void {
  if (item.type === 'message') {
    for (const part of arr(item.content)) if (isObject(part)) rewriteResponsesPart(part, texts);
    texts.others(item, MESSAGE_ITEM_FIELDS);
  } else if (item.type === 'reasoning') {
    for (const part of arr(item.summary)) if (isObject(part)) rewriteResponsesPart(part, texts);
    for (const part of arr(item.content)) if (isObject(part)) rewriteResponsesPart(part, texts);
    texts.others(item, REASONING_ITEM_FIELDS);
  } else if (item.type === 'function_call' || item.type === 'custom_tool_call') {
    texts.set(item, item.type === 'function_call' ? 'arguments' : 'input', item.type === 'function_call' ? 'json' : 'text');
    texts.others(item, CALL_ITEM_FIELDS);
  } else {
    texts.strings(item);
  }
}

const TEXT_PART_FIELDS = new Set(['type', 'text', 'annotations', 'logprobs']);
const REFUSAL_PART_FIELDS = new Set(['type', 'refusal']);

/**
 * A content or summary part: `output_text` (with its annotations: cited titles and URLs),
 * `summary_text` and `reasoning_text` hold `text`, `refusal` holds `refusal`; a part of a type
 * the codec does not know, string by string.
 */
function rewriteResponsesPart(part: JsonObject, texts: Texts): void {
  if (part.type === 'output_text' || part.type === 'summary_text' || part.type === 'reasoning_text') {
    texts.set(part, 'text', 'text');
    if (Array.isArray(part.annotations) && part.annotations.length > 0) texts.strings(part.annotations);
    texts.dropCopies(part, 'logprobs', []);
    texts.others(part, TEXT_PART_FIELDS);
  } else if (part.type === 'refusal') {
    texts.set(part, 'refusal', 'text');
    texts.others(part, REFUSAL_PART_FIELDS);
  } else {
    texts.strings(part);
  }
}

/**
 * The streamed text fields of a Responses answer: each delta event type, the `*.done` event that
 * closes its channel, the field of that event holding the whole text, its kind, and the index
 * fields that name the channel (besides output_index).
 */
const RESPONSES_CHANNELS: Readonly<Record<string, { readonly done: string; readonly field: string; readonly kind: TextKind; readonly index: string | null }>> = {
  'response.output_text.delta': { done: 'response.output_text.done', field: 'text', kind: 'text', index: 'content_index' },
  'response.refusal.delta': { done: 'response.refusal.done', field: 'refusal', kind: 'text', index: 'content_index' },
  'response.reasoning_summary_text.delta': { done: 'response.reasoning_summary_text.done', field: 'text', kind: 'text', index: 'summary_index' },
  'response.reasoning_text.delta': { done: 'response.reasoning_text.done', field: 'text', kind: 'text', index: 'content_index' },
  'response.function_call_arguments.delta': { done: 'response.function_call_arguments.done', field: 'arguments', kind: 'json', index: null },
  'response.custom_tool_call_input.delta': { done: 'response.custom_tool_call_input.done', field: 'input', kind: 'text', index: null },
  'response.mcp_call_arguments.delta': { done: 'response.mcp_call_arguments.done', field: 'arguments', kind: 'json', index: null },
  'response.code_interpreter_call_code.delta': { done: 'response.code_interpreter_call_code.done', field: 'code', kind: 'text', index: null },
  'response.audio.transcript.delta': { done: 'response.audio.transcript.done', field: 'transcript', kind: 'text', index: null },
};
const RESPONSES_DONE = new Map(Object.entries(RESPONSES_CHANNELS).map(([delta, spec]) => [spec.done, { delta, ...spec }]));
/** The fields of a delta or done event beyond its text; a field the API adds is rewritten string by string. */
const CHANNEL_EVENT_FIELDS = new Set(['type', 'sequence_number', 'item_id', 'output_index', 'content_index', 'summary_index', 'delta', 'logprobs', 'obfuscation', 'text', 'refusal', 'arguments', 'input', 'code', 'transcript', 'name']);

// ---------------------------------------------------------------------------------------------
// Streams

export function openaiStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): ItemRewriter | null {
  if (endpoint === 'openai.chat.completions') return new ChatStreamRewriter(rewriter);
  if (endpoint === 'openai.responses') return new ResponsesStreamRewriter(rewriter);
  return null;
}

/**
 * Chat Completions: `choices[i].delta.content` (and `.refusal`, `.reasoning_content`,
 * `.reasoning`) and `choices[i].delta.tool_calls[j].function.arguments` are channels; a chunk with
 * `finish_reason` closes its choice's channels (held text goes into that chunk's delta), and
 * `[DONE]` or the end of the stream closes whatever is left. Any other field of a delta
 * (`annotations`, `audio`, a server's own) is rewritten string by string, each chunk on its own.
 */
class ChatStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;
  #template: JsonObject | null = null;

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return item.source.data === '[DONE]' ? [...this.#flushAll(item), item] : [item];
    if (!Array.isArray(data.choices)) {
      // An error chunk (its message may quote the answer), or a chunk of a shape the codec does not know.
      if (!isObject(data.usage) && rewriteStrings(data, this.#rewriter)) item.touch();
      return [item];
    }
    this.#template ??= { id: data.id ?? null, object: data.object ?? 'chat.completion.chunk', created: data.created ?? 0, model: data.model ?? '' };
    let changed = false;
    for (const choice of data.choices) {
      if (!isObject(choice)) continue;
      const i = typeof choice.index === 'number' ? choice.index : 0;
      if (this.#rewriter.hidesText && choice.logprobs !== undefined && choice.logprobs !== null) {
        choice.logprobs = null;
        changed = true;
      }
      let delta = isObject(choice.delta) ? choice.delta : null;
      if (delta !== null && rewriteOtherFields(delta, CHAT_MESSAGE_FIELDS, this.#rewriter)) changed = true;
      for (const field of CHAT_TEXT_FIELDS) {
        const value = delta?.[field];
        if (delta !== null && typeof value === 'string' && replaceField(delta, field, this.#channels.push(`${i}:${field}`, 'text', value))) changed = true;
      }
      for (const call of arr(delta?.tool_calls)) {
        if (!isObject(call) || !isObject(call.function) || typeof call.function.arguments !== 'string') continue;
        const j = typeof call.index === 'number' ? call.index : 0;
        if (replaceField(call.function, 'arguments', this.#channels.push(`${i}:tool:${j}`, 'json', call.function.arguments))) changed = true;
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const held = CHAT_TEXT_FIELDS.map((field) => [field, this.#channels.close(`${i}:${field}`)] as const).filter(([, text]) => text !== '');
        const calls = this.#channels.keys(`${i}:tool:`).map((key) => ({ index: Number(key.split(':')[2]), function: { arguments: this.#channels.close(key) } }));
        const flushed = calls.filter((c) => c.function.arguments !== '');
        if (held.length === 0 && flushed.length === 0) continue;
        delta ??= choice.delta = {};
        for (const [field, text] of held) delta[field] = (typeof delta[field] === 'string' ? delta[field] : '') + text;
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
      if (what !== 'tool') delta[what ?? 'content'] = text;
      else delta.tool_calls = [...(arr(delta.tool_calls) as Json[]), { index: Number(j), function: { arguments: text } }];
      byChoice.set(i, delta);
    }
    if (byChoice.size === 0) return [];
    const chunk = { ...(this.#template ?? { object: 'chat.completion.chunk' }), choices: [...byChoice].map(([index, delta]) => ({ index, delta, finish_reason: null })) };
    return [StreamItem.synthetic(before?.source.event ?? null, chunk, before ? { ...before.source, raw: '' } : undefined)];
  }
}

/**
 * Responses: each delta event type of RESPONSES_CHANNELS (output text, refusal, reasoning summary
 * and reasoning text, function arguments, custom tool input, MCP arguments, code interpreter
 * code, audio transcript) is a channel keyed by its type and indexes; the matching `*.done` event
 * closes the channel (held text goes into a synthetic delta first) and carries the whole text,
 * which is rewritten whole — as are the part/item/response snapshots in `content_part.*`,
 * `reasoning_summary_part.*`, `output_item.*` and `response.*`. Annotations, errors and events of
 * other types are rewritten string by string, each event on its own (`response.audio.delta` is
 * audio: it stays).
 */
class ResponsesStreamRewriter implements ItemRewriter {
  readonly #channels: Channels;
  readonly #rewriter: TextRewriter;
  /** The open channels' delta events, as a flush at the end of the stream must name them. */
  readonly #open = new Map<string, { readonly type: string; readonly fields: JsonObject }>();

  constructor(rewriter: TextRewriter) {
    this.#channels = new Channels(rewriter);
    this.#rewriter = rewriter;
  }

  item(item: StreamItem): StreamItem[] {
    const data = item.data;
    if (data === null) return [item];
    const type = typeof data.type === 'string' ? data.type : (item.source.event ?? '');
    const texts = new Texts(this.#rewriter);
    const out: StreamItem[] = [];
    const delta = RESPONSES_CHANNELS[type];
    const done = RESPONSES_DONE.get(type);
    if (delta !== undefined) {
      const { key, fields } = channelOf(type, delta.index, data);
      texts.dropCopies(data, 'logprobs', []);
      texts.others(data, CHANNEL_EVENT_FIELDS);
      if (typeof data.delta === 'string') {
        if (!this.#open.has(key)) this.#open.set(key, { type, fields });
        if (replaceField(data, 'delta', this.#channels.push(key, delta.kind, data.delta))) texts.changed = true;
      }
    } else if (done !== undefined) {
      const { key, fields } = channelOf(done.delta, done.index, data);
      this.#open.delete(key);
      const held = this.#channels.close(key);
      if (held !== '') {
        const { text: _text, arguments: _arguments, input: _input, refusal: _refusal, code: _code, logprobs: _logprobs, ...rest } = data;
        // The done event's logprobs are the whole text's: a delta of what was held carries none.
        out.push(StreamItem.synthetic(done.delta, { ...rest, ...(Array.isArray(data.logprobs) ? { logprobs: [] } : {}), ...fields, type: done.delta, delta: held }));
      }
      texts.set(data, done.field, done.kind);
      texts.dropCopies(data, 'logprobs', []);
      texts.others(data, CHANNEL_EVENT_FIELDS);
    } else if (PART_EVENTS.has(type)) {
      if (isObject(data.part)) rewriteResponsesPart(data.part, texts);
    } else if (ITEM_EVENTS.has(type)) {
      if (isObject(data.item)) rewriteResponsesItem(data.item, texts);
    } else if (RESPONSE_EVENTS.has(type)) {
      if (isObject(data.response)) rewriteResponsesObject(data.response, texts);
    } else if (type !== 'response.audio.delta') {
      // An annotation (a cited title or URL), an error's message, an event of a type the codec
      // does not know: every string in it.
      texts.strings(data);
    }
    if (texts.changed) item.touch();
    out.push(item);
    return out;
  }

  end(): StreamItem[] {
    // Channels still open when the stream ends had no *.done event: the stream is broken anyway;
    // emit what was held as deltas so nothing half-masked is lost silently.
    return [...this.#open].flatMap(([key, { type, fields }]) => {
      const held = this.#channels.close(key);
      return held === '' ? [] : [StreamItem.synthetic(type, { type, ...fields, delta: held })];
    });
  }
}

/** A Responses delta channel: its key (delta type and indexes) and the index fields a synthetic delta carries. */
function channelOf(deltaType: string, indexField: string | null, data: JsonObject): { key: string; fields: JsonObject } {
  const output = typeof data.output_index === 'number' ? data.output_index : 0;
  const inner = indexField !== null && typeof data[indexField] === 'number' ? data[indexField] : 0;
  const fields: JsonObject = { ...(data.item_id !== undefined ? { item_id: data.item_id } : {}), output_index: output, ...(indexField !== null ? { [indexField]: inner } : {}) };
  return { key: `${deltaType}:${output}:${indexField === null ? '' : inner}`, fields };
}
