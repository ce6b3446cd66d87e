/** Anthropic wire protocol: Messages (JSON and SSE), token counting, Models. */
import { AigovError } from '../core/errors.ts';
import type { ContentPart, EndpointId, NormalizedMessage, NormalizedRequest, ResponseEvent, Role } from '../core/events.ts';
import { fixedRoute, modelRoute, pickForwardedHeaders, type ProviderCodec, type ProviderError, type RouteResult } from './codec.ts';
import { arr, isObject, parseJson, positiveInt, str, type JsonObject } from '../core/json.ts';
import { at, SlotSink, type ReadRequest } from './request-slots.ts';
import { base64Text } from './attached-text.ts';
import { createStreamReader } from './channels.ts';
import { anthropicStreamEvents, anthropicStreamRewriter, classifyAnthropicEvent, pushAnthropicUsage, rewriteAnthropicAnswer, sealChangedThinking, unknownAnthropicParts, unsealThinking } from './anthropic-text.ts';

const DEFAULT_VERSION = '2023-06-01';

/**
 * The role a message is governed under. The body goes upstream as the client sent it, so a role
 * the provider may accept (Claude Code sends `system` turns mid-conversation) is never refused
 * here: `system` is governed as system text, any other role as user text (the model reads it, so
 * every rule that scans user text sees it). Only a missing or non-string role is refused.
 */
function governedRole(role: unknown): 'user' | 'assistant' | 'system' | null {
  if (typeof role !== 'string') return null;
  return role === 'assistant' || role === 'system' ? role : 'user';
}

export const anthropicCodec: ProviderCodec = {
  kind: 'anthropic',

  clientBasePath: (mount) => `/${mount}`,

  route(method, rawSubpath): RouteResult {
    // Clients that take a base URL without /v1 (@ai-sdk/anthropic appends `/messages`) reach the
    // same endpoints: `/anthropic/messages` is `/anthropic/v1/messages`.
    const subpath = rawSubpath.startsWith('/v1/') ? rawSubpath : `/v1${rawSubpath}`;
    // Each upstream path is one of these constants, or a model id checked and re-encoded.
    const post = (endpoint: EndpointId, upstreamPath: string): RouteResult => fixedRoute(method, 'POST', endpoint, upstreamPath);
    const get = (endpoint: EndpointId, upstreamPath: string): RouteResult => fixedRoute(method, 'GET', endpoint, upstreamPath);
    if (subpath === '/v1/messages') return post('anthropic.messages', '/v1/messages');
    if (subpath === '/v1/messages/count_tokens') return post('anthropic.messages.count_tokens', '/v1/messages/count_tokens');
    if (subpath === '/v1/models') return get('anthropic.models.list', '/v1/models');
    const id = /^\/v1\/models\/([^/]+)$/.exec(subpath)?.[1];
    if (id !== undefined) return modelRoute(method, 'anthropic.models.retrieve', '/v1/models', id);
    return { ok: false, reason: 'not_found' };
  },

  parseRequest(endpoint, body): NormalizedRequest {
    return readAnthropicRequest(endpoint, body, '').request;
  },

  readRequest: readAnthropicRequest,

  readMessage(endpoint, element): NormalizedMessage | null {
    if (endpoint !== 'anthropic.messages' && endpoint !== 'anthropic.messages.count_tokens') return null;
    try {
      return parseMessage(element, 0, 0, new SlotSink());
    } catch (error) {
      if (!(error instanceof AigovError)) throw error;
      return null;
    }
  },

  upstreamHeaders(client, apiKey, extra) {
    const headers = pickForwardedHeaders(client);
    headers['anthropic-version'] ??= DEFAULT_VERSION;
    Object.assign(headers, extra);
    if (apiKey !== null) headers['x-api-key'] = apiKey;
    return headers;
  },

  parseResponseBody(endpoint, body): ResponseEvent[] {
    if (!isObject(body) || endpoint !== 'anthropic.messages') return [];
    const events: ResponseEvent[] = [];
    if (typeof body.model === 'string') events.push({ type: 'model', model: body.model });
    arr(body.content).forEach((block, i) => {
      if (!isObject(block)) return;
      if (block.type === 'text') events.push({ type: 'text', choice: 0, text: str(block.text) ?? '', block: i });
      else if (block.type === 'tool_use') {
        events.push({ type: 'tool_call', choice: 0, index: i, id: str(block.id), name: str(block.name), argumentsDelta: JSON.stringify(block.input ?? {}) });
      }
    });
    const reason = str(body.stop_reason);
    if (reason) events.push({ type: 'finish', choice: 0, reason });
    pushAnthropicUsage(events, body.usage);
    return events;
  },

  streamReader(endpoint, rewriter, unknown = 'mask') {
    return createStreamReader((item) => anthropicStreamEvents(endpoint, item), rewriter ? anthropicStreamRewriter(endpoint, rewriter) : null, (item) => classifyAnthropicEvent(endpoint, item), unknown);
  },

  rewriteAnswer: rewriteAnthropicAnswer,
  unknownParts: unknownAnthropicParts,
  sealChangedThinking,
  unsealThinking: (endpoint, body, sealed, open) => (endpoint === 'anthropic.messages' || endpoint === 'anthropic.messages.count_tokens' ? unsealThinking(body, sealed, open) : { changed: false, unopened: 0 }),

  isStreamTerminal(_endpoint, event) {
    return event.event === 'message_stop' || event.event === 'error';
  },

  renderError(error: ProviderError): string {
    return JSON.stringify({ type: 'error', error: { type: error.type, message: error.message, ...(error.code ? { code: error.code } : {}) } });
  },

  renderStreamError(_endpoint, error): string {
    return `event: error\ndata: ${anthropicCodec.renderError(error)}\n\n`;
  },

  parseErrorBody(status, body): ProviderError | null {
    const data = parseJson(body);
    if (!isObject(data) || !isObject(data.error)) return null;
    return { status, type: str(data.error.type) ?? 'api_error', message: str(data.error.message) ?? '', code: str(data.error.code) ?? null };
  },
};

function readAnthropicRequest(endpoint: EndpointId, body: unknown, text: string): ReadRequest {
  if (!isObject(body)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'the body must be a JSON object' });
  const model = str(body.model) ?? null;
  const sink = new SlotSink();
  if (endpoint !== 'anthropic.messages' && endpoint !== 'anthropic.messages.count_tokens') {
    return sink.read({ endpoint, model, stream: false, messages: [], tools: [], inputs: [] }, body, text);
  }
  if (!model) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: '`model` is required' });
  if (!Array.isArray(body.messages)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: '`messages` must be an array' });
  const messages: NormalizedMessage[] = [];
  if (typeof body.system === 'string') {
    sink.field(at(0, 0, 'system', 'text'), body, 'system');
    messages.push({ role: 'system', parts: [{ type: 'text', text: body.system }] });
  } else if (Array.isArray(body.system)) messages.push({ role: 'system', parts: blocks(body.system, sink, 0, 'system') });
  body.messages.forEach((raw, i) => messages.push(parseMessage(raw, i, messages.length, sink)));
  const tools = arr(body.tools)
    .filter(isObject)
    .map((t, i) => {
      sink.field({ kind: 'tool_definition', tool: i, field: 'description' }, t, 'description');
      if (t.input_schema !== undefined) sink.object({ kind: 'tool_definition', tool: i, field: 'parameters' }, t, 'input_schema', () => JSON.stringify(t.input_schema) ?? '');
      return { name: str(t.name) ?? str(t.type) ?? '', description: str(t.description), parameters: t.input_schema };
    });
  // The schema a structured answer must follow (the model reads it), and what the provider keeps.
  if (isObject(body.output_config) && isObject(body.output_config.format)) sink.requestText('output_config.format.schema', null, body.output_config.format, 'schema');
  if (isObject(body.output_format)) sink.requestText('output_format.schema', null, body.output_format, 'schema');
  if (isObject(body.metadata)) sink.requestText('metadata.user_id', null, body.metadata, 'user_id');
  const outputLimit = endpoint === 'anthropic.messages' ? { maxTokens: positiveInt(body.max_tokens) ?? null, choices: 1 } : undefined;
  return sink.read({ endpoint, model, stream: body.stream === true, messages, tools, inputs: [], ...(outputLimit ? { outputLimit } : {}) }, body, text);
}

/** `messages[i]`, normalized as message `m`. */
function parseMessage(raw: unknown, i: number, m: number, sink: SlotSink): NormalizedMessage {
  if (!isObject(raw)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `messages[${i}] must be an object` });
  const role = governedRole(raw.role);
  // Anthropic's own wording: Claude Code retries without mid-conversation system turns only on it.
  if (role === null) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `messages.${i}.role: Input should be 'user' or 'assistant'` });
  const wire = raw.role === role ? {} : { wire: raw.role as string };
  if (typeof raw.content === 'string') {
    sink.field(at(m, 0, role, 'text'), raw, 'content');
    return { role, parts: [{ type: 'text', text: raw.content }], ...wire };
  }
  return { role, parts: blocks(arr(raw.content), sink, m, role), ...wire };
}

/** The text blocks among `content`, as pieces of one text (a tool result's, a document's). */
function textPieces(content: unknown): { holder: JsonObject; key: string; text: string }[] {
  return arr(content)
    .filter(isObject)
    .filter((b) => b.type === 'text')
    .map((b) => ({ holder: b, key: 'text', text: str(b.text) ?? '' }));
}

/** Content blocks, normalized as the parts of message `m`; their texts are slots. */
function blocks(content: unknown[], sink: SlotSink, m: number, role: Role): ContentPart[] {
  const parts: ContentPart[] = [];
  for (const block of content) {
    if (!isObject(block)) continue;
    const type = str(block.type) ?? '';
    const p = parts.length;
    if (type === 'text') {
      sink.field(at(m, p, role, 'text'), block, 'text');
      parts.push({ type: 'text', text: str(block.text) ?? '' });
    } else if (type === 'tool_use') {
      const args = JSON.stringify(block.input ?? {});
      sink.object(at(m, p, role, 'tool_arguments'), block, 'input', args);
      parts.push({ type: 'tool_call', id: str(block.id) ?? '', name: str(block.name) ?? '', arguments: args });
    } else if (type === 'tool_result' || type === 'mcp_tool_result') {
      const location = at(m, p, role, 'tool_result');
      let text: string;
      if (typeof block.content === 'string') {
        sink.field(location, block, 'content');
        text = block.content;
      } else {
        // The result's text: its text blocks joined, each a slot at its offset.
        const pieces = textPieces(block.content);
        sink.joined(location, pieces);
        text = pieces.map((piece) => piece.text).join('');
      }
      parts.push({ type: 'tool_result', toolCallId: str(block.tool_use_id) ?? '', text });
      // Images, documents and search results in the result: parts of their own, after it.
      for (const inner of arr(block.content)) if (isObject(inner) && inner.type !== 'text') pushAttachment(inner, str(inner.type) ?? '', parts, sink, m, role);
    } else if (type === 'web_fetch_tool_result' && isObject(block.content) && isObject(block.content.content)) {
      // A fetched page as the client hands it back: a document the model reads.
      pushAttachment(block.content.content, 'document', parts, sink, m, role);
    } else if (!pushAttachment(block, type, parts, sink, m, role)) {
      parts.push({ type: 'other', kind: type || 'unknown' });
    }
  }
  return parts;
}

/**
 * An image, document, search result or uploaded file appended to the parts of message `m`, its
 * texts slots; false for another block type.
 */
function pushAttachment(block: JsonObject, type: string, parts: ContentPart[], sink: SlotSink, m: number, role: Role): boolean {
  const p = parts.length;
  if (type === 'image') {
    const source = isObject(block.source) ? block.source : {};
    // An "image" that is text (a text media type in base64) is read as what it is.
    const text = source.type === 'base64' ? base64Text(str(source.data) ?? '', str(source.media_type)) : null;
    if (text !== null) {
      sink.decoded(at(m, p, role, 'file_text'), source, 'data', text);
      parts.push({ type: 'file', source: 'inline', text: text.text });
    } else {
      parts.push({ type: 'image', source: source.type === 'url' ? 'url' : source.type === 'file' ? 'file' : 'base64' });
    }
    return true;
  }
  if (type === 'document') {
    pushDocument(block, parts, sink, m, role);
    return true;
  }
  if (type === 'search_result') {
    sink.field(at(m, p, role, 'file_name'), block, 'title');
    sink.field(at(m, p, role, 'file_context'), block, 'source');
    const pieces = textPieces(block.content);
    sink.joined(at(m, p, role, 'file_text'), pieces);
    parts.push({ type: 'file', source: 'inline', ...about(str(block.title), str(block.source)), text: pieces.map((piece) => piece.text).join('') });
    return true;
  }
  if (type === 'container_upload') {
    parts.push({ type: 'file', source: 'reference' });
    return true;
  }
  return false;
}

/**
 * A document block: its title and context, and its text when the gateway reads it — a plain
 * text source, base64 of a text media type, or a content source (its text blocks; its images
 * are parts of their own after it). A PDF, a URL or a file id is not read.
 */
function pushDocument(block: JsonObject, parts: ContentPart[], sink: SlotSink, m: number, role: Role): void {
  const p = parts.length;
  sink.field(at(m, p, role, 'file_name'), block, 'title');
  sink.field(at(m, p, role, 'file_context'), block, 'context');
  const named = about(str(block.title), str(block.context));
  const source = isObject(block.source) ? block.source : {};
  const location = at(m, p, role, 'file_text');
  switch (source.type) {
    case 'text':
      sink.field(location, source, 'data');
      parts.push({ type: 'file', source: 'inline', ...named, text: str(source.data) ?? '' });
      return;
    case 'base64': {
      const text = base64Text(str(source.data) ?? '', str(source.media_type));
      if (text !== null) sink.decoded(location, source, 'data', text);
      parts.push(text === null ? { type: 'file', source: 'inline', ...named } : { type: 'file', source: 'inline', ...named, text: text.text });
      return;
    }
    case 'content': {
      if (typeof source.content === 'string') {
        sink.field(location, source, 'content');
        parts.push({ type: 'file', source: 'inline', ...named, text: source.content });
        return;
      }
      const pieces = textPieces(source.content);
      sink.joined(location, pieces);
      parts.push({ type: 'file', source: 'inline', ...named, text: pieces.map((piece) => piece.text).join('') });
      for (const inner of arr(source.content)) if (isObject(inner) && inner.type !== 'text') pushAttachment(inner, str(inner.type) ?? '', parts, sink, m, role);
      return;
    }
    case 'url':
    case 'file':
      parts.push({ type: 'file', source: 'reference', ...named });
      return;
    default:
      // A source this codec does not know: its bytes cannot be read.
      parts.push({ type: 'file', source: 'inline', ...named });
  }
}

/** A file part's name and context, without keys for absent ones. */
function about(name: string | undefined, context: string | undefined): { name?: string; context?: string } {
  return { ...(name ? { name } : {}), ...(context ? { context } : {}) };
}
