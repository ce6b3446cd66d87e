/**
 * What `aigov sessions show` reads from a recorded request: the last message a person typed,
 * and the tool results the request hands back to the model (the trailing tool outputs of its
 * conversation), for Anthropic Messages, OpenAI Chat Completions and Responses (function and
 * custom tool outputs). Pure.
 *
 * A body the gateway sent as chunks (`request_ref`, `?bodies=shared`) is read through a
 * ChunkGraph: only the conversation's elements are parsed, each distinct one once per session,
 * so a 2,000-call agent session is never rebuilt into 2,000 full bodies.
 */
import { ChunkFormatError, type ChunkGraph } from '../core/recording/request-chunks.ts';
import type { CallView } from '../protocol/sessions.ts';

export interface ToolResultView {
  /** The tool call it answers (tool_use_id / tool_call_id / call_id). */
  readonly callId: string | null;
  /** The tool's name, when an earlier element of the conversation names it. */
  readonly name: string | null;
  readonly text: string;
}

export interface RequestView {
  /** The text of the last user message that has text (tool-result-only messages skipped). */
  readonly lastUser: string | null;
  readonly toolResults: readonly ToolResultView[];
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text of a content field: a string, or the text of its parts (tool results' content included). */
export function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  const parts = content.map((p: unknown) => (typeof p === 'string' ? p : isObj(p) && typeof p['text'] === 'string' ? p['text'] : '')).filter((t) => t !== '');
  return parts.length > 0 ? parts.join(' ') : null;
}

/** A conversation: its length and each element, parsed on demand. */
interface Conversation {
  readonly length: number;
  at(index: number): unknown;
}

/** The body's conversation (`messages`, else an `input` array), or a string `input`/`prompt`. */
function conversationOf(call: Pick<CallView, 'request_body' | 'request_ref'>, graph: ChunkGraph | null): { conversation: Conversation | null; text: string | null } {
  if (call.request_ref !== undefined && graph !== null) {
    const root = call.request_ref;
    for (const name of ['messages', 'input']) {
      const member = graph.member(root, name);
      const elements = member === null ? null : graph.elements(member);
      if (elements !== null) return { conversation: { length: elements.length, at: (i) => graph.value(elements[i]!) }, text: null };
    }
    const inline = graph.inlineMembers(root);
    if (inline !== undefined && (Array.isArray(inline['messages']) || Array.isArray(inline['input']) || typeof inline['input'] === 'string' || typeof inline['prompt'] === 'string')) {
      return fromBody(inline);
    }
    // Laid out otherwise (e.g. a conversation short enough to stay in the root's text): the whole body.
    let body: unknown;
    try {
      body = JSON.parse(graph.text(root));
    } catch (err) {
      if (err instanceof ChunkFormatError) throw err;
      return { conversation: null, text: null };
    }
    return fromBody(body);
  }
  let body: unknown;
  try {
    body = JSON.parse(call.request_body);
  } catch {
    return { conversation: null, text: null };
  }
  return fromBody(body);
}

function fromBody(body: unknown): { conversation: Conversation | null; text: string | null } {
  if (!isObj(body)) return { conversation: null, text: null };
  if (typeof body['input'] === 'string') return { conversation: null, text: body['input'] };
  if (typeof body['prompt'] === 'string') return { conversation: null, text: body['prompt'] };
  const list: readonly unknown[] | null = Array.isArray(body['messages']) ? body['messages'] : Array.isArray(body['input']) ? body['input'] : null;
  return { conversation: list === null ? null : { length: list.length, at: (i): unknown => list[i] }, text: null };
}

function isToolOutput(item: unknown): boolean {
  if (!isObj(item)) return false;
  if (item['role'] === 'tool') return true;
  if (item['type'] === 'function_call_output' || item['type'] === 'custom_tool_call_output') return true;
  return item['role'] === 'user' && Array.isArray(item['content']) && item['content'].length > 0 && item['content'].every((b) => isObj(b) && b['type'] === 'tool_result');
}

/** The tool calls an element makes, by call id → name. */
function toolNames(item: unknown, into: Map<string, string>): void {
  if (!isObj(item)) return;
  if ((item['type'] === 'function_call' || item['type'] === 'custom_tool_call') && typeof item['call_id'] === 'string' && typeof item['name'] === 'string') {
    into.set(item['call_id'], item['name']);
  }
  if (Array.isArray(item['tool_calls'])) {
    for (const c of item['tool_calls']) if (isObj(c) && typeof c['id'] === 'string' && isObj(c['function']) && typeof c['function']['name'] === 'string') into.set(c['id'], c['function']['name']);
  }
  if (Array.isArray(item['content'])) {
    for (const b of item['content']) if (isObj(b) && b['type'] === 'tool_use' && typeof b['id'] === 'string' && typeof b['name'] === 'string') into.set(b['id'], b['name']);
  }
}

function resultsOf(item: unknown): { callId: string | null; text: string }[] {
  if (!isObj(item)) return [];
  if (item['role'] === 'tool') return [{ callId: typeof item['tool_call_id'] === 'string' ? item['tool_call_id'] : null, text: contentText(item['content']) ?? '' }];
  if (item['type'] === 'function_call_output' || item['type'] === 'custom_tool_call_output') {
    return [{ callId: typeof item['call_id'] === 'string' ? item['call_id'] : null, text: contentText(item['output']) ?? '' }];
  }
  if (!Array.isArray(item['content'])) return [];
  return item['content'].filter(isObj).filter((b) => b['type'] === 'tool_result').map((b) => ({ callId: typeof b['tool_use_id'] === 'string' ? b['tool_use_id'] : null, text: contentText(b['content']) ?? '' }));
}

/** How far back from the trailing tool outputs to look for the calls that name them. */
const NAME_LOOKBACK = 8;

/** The last user text and the trailing tool results of a recorded request. */
export function requestView(call: Pick<CallView, 'request_body' | 'request_ref'>, graph: ChunkGraph | null): RequestView {
  const { conversation, text } = conversationOf(call, graph);
  if (conversation === null) return { lastUser: text, toolResults: [] };
  // Trailing tool outputs (what this call returns to the model).
  let start = conversation.length;
  while (start > 0 && isToolOutput(conversation.at(start - 1))) start--;
  const names = new Map<string, string>();
  for (let i = Math.max(0, start - NAME_LOOKBACK); i < start; i++) toolNames(conversation.at(i), names);
  const toolResults: ToolResultView[] = [];
  for (let i = start; i < conversation.length; i++) {
    for (const r of resultsOf(conversation.at(i))) toolResults.push({ ...r, name: r.callId === null ? null : (names.get(r.callId) ?? null) });
  }
  let lastUser: string | null = null;
  for (let i = conversation.length - 1; i >= 0 && lastUser === null; i--) {
    const item = conversation.at(i);
    if (!isObj(item) || item['role'] !== 'user' || isToolOutput(item)) continue;
    lastUser = contentText(item['content']);
  }
  return { lastUser, toolResults };
}
