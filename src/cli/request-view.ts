/**
 * What `aigov sessions show` reads from a recorded request: the last message a person typed,
 * and the tool results the request hands back to the model (the trailing tool outputs of its
 * conversation), for Anthropic Messages, OpenAI Chat Completions and Responses (function and
 * custom tool outputs), as the provider's codec reads them. Pure.
 *
 * A body the gateway sent as chunks (`request_ref`, `?bodies=shared`) is read through a
 * ChunkGraph: only the conversation's elements are parsed, each distinct one once per session,
 * so a 2,000-call agent session is never rebuilt into 2,000 full bodies.
 */
import type { EndpointId, NormalizedMessage, NormalizedRequest } from '../core/events.ts';
import { parseJson } from '../core/json.ts';
import type { ChunkGraph } from '../core/recording/request-chunks.ts';
import type { CallView } from '../protocol/sessions.ts';
import { codecForEndpoint, readRecordedBody, readRecordedRequest } from '../providers/registry.ts';

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

/** A conversation: its length and each element, normalized by the codec on demand. */
interface Conversation {
  readonly length: number;
  at(index: number): NormalizedMessage | null;
}

/** Normalized conversation elements per session graph, by endpoint then chunk id: each distinct element read once. */
const READ = new WeakMap<ChunkGraph, Map<string, Map<number, NormalizedMessage | null>>>();

/** A reader of the graph's conversation elements for `endpoint`, memoized. */
function elementReader(graph: ChunkGraph, endpoint: string): (id: number) => NormalizedMessage | null {
  let byEndpoint = READ.get(graph);
  if (byEndpoint === undefined) READ.set(graph, (byEndpoint = new Map<string, Map<number, NormalizedMessage | null>>()));
  let cache = byEndpoint.get(endpoint);
  if (cache === undefined) byEndpoint.set(endpoint, (cache = new Map<number, NormalizedMessage | null>()));
  const read = cache;
  const adapter = codecForEndpoint(endpoint as EndpointId);
  return (id) => {
    const known = read.get(id);
    if (known !== undefined) return known;
    const message = adapter === null ? null : adapter.readMessage(endpoint as EndpointId, graph.value(id));
    read.set(id, message);
    return message;
  };
}

/** The request's conversation (`messages`, or Responses `input` items), or the text of embeddings inputs. */
function conversationOf(call: Pick<CallView, 'endpoint' | 'request_body' | 'request_ref'>, graph: ChunkGraph | null): { conversation: Conversation | null; text: string | null } {
  if (call.request_ref !== undefined && graph !== null) {
    const root = call.request_ref;
    for (const name of ['messages', 'input']) {
      const member = graph.member(root, name);
      const elements = member === null ? null : graph.elements(member);
      if (elements !== null) {
        const read = elementReader(graph, call.endpoint);
        return { conversation: { length: elements.length, at: (i) => read(elements[i]!) }, text: null };
      }
    }
    const inline = graph.inlineMembers(root);
    if (inline !== undefined && (Array.isArray(inline['messages']) || inline['input'] !== undefined)) return fromRequest(readRecordedBody(call.endpoint, inline));
    // Laid out otherwise (e.g. a conversation short enough to stay in the root's text): the whole
    // body. A broken chunk graph (ChunkFormatError from graph.text) is not hidden.
    return fromRequest(readRecordedBody(call.endpoint, parseJson(graph.text(root))));
  }
  return fromRequest(readRecordedRequest(call.endpoint, call.request_body));
}

function fromRequest(request: NormalizedRequest | null): { conversation: Conversation | null; text: string | null } {
  if (request === null) return { conversation: null, text: null };
  if (request.endpoint === 'openai.embeddings') return { conversation: null, text: request.inputs.length > 0 ? request.inputs.join(' ') : null };
  const { messages } = request;
  return { conversation: { length: messages.length, at: (i) => messages[i] ?? null }, text: null };
}

/**
 * A turn that only hands tool results back (a `tool` message, a function/custom call output, an
 * Anthropic user turn of tool_result blocks) — with the images and files a result holds.
 */
function isToolOutput(message: NormalizedMessage | null): boolean {
  return message !== null && message.parts.some((p) => p.type === 'tool_result') && message.parts.every((p) => p.type === 'tool_result' || p.type === 'image' || p.type === 'file' || p.type === 'audio');
}

/** The text of a turn's text parts; null when it has none. */
function textOf(message: NormalizedMessage): string | null {
  const texts: string[] = [];
  for (const part of message.parts) if (part.type === 'text' && part.text !== '') texts.push(part.text);
  return texts.length > 0 ? texts.join(' ') : null;
}

/** How far back from the trailing tool outputs to look for the calls that name them. */
const NAME_LOOKBACK = 8;

/** The last user text and the trailing tool results of a recorded request. */
export function requestView(call: Pick<CallView, 'endpoint' | 'request_body' | 'request_ref'>, graph: ChunkGraph | null): RequestView {
  const { conversation, text } = conversationOf(call, graph);
  if (conversation === null) return { lastUser: text, toolResults: [] };
  // Trailing tool outputs (what this call returns to the model).
  let start = conversation.length;
  while (start > 0 && isToolOutput(conversation.at(start - 1))) start--;
  const names = new Map<string, string>();
  for (let i = Math.max(0, start - NAME_LOOKBACK); i < start; i++) {
    for (const part of conversation.at(i)?.parts ?? []) if (part.type === 'tool_call' && part.id !== '' && part.name !== '') names.set(part.id, part.name);
  }
  const toolResults: ToolResultView[] = [];
  for (let i = start; i < conversation.length; i++) {
    for (const part of conversation.at(i)?.parts ?? []) {
      if (part.type !== 'tool_result') continue;
      const callId = part.toolCallId === '' ? null : part.toolCallId;
      toolResults.push({ callId, name: callId === null ? null : (names.get(callId) ?? null), text: part.text });
    }
  }
  let lastUser: string | null = null;
  for (let i = conversation.length - 1; i >= 0 && lastUser === null; i--) {
    const message = conversation.at(i);
    // A person's turn: governed as user and named so on the wire (not a Responses item of another type).
    if (message === null || message.role !== 'user' || message.wire !== undefined || isToolOutput(message)) continue;
    lastUser = textOf(message);
  }
  return { lastUser, toolResults };
}
