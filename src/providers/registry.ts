/** The provider codecs by kind: adding a provider is one module and one line here. */
import { AigovError } from '../core/errors.ts';
import type { EndpointId, NormalizedRequest, ProviderKind, ResponseEvent } from '../core/events.ts';
import { isObject, parseJson } from '../core/json.ts';
import { rewriteAnswerBody, type ProviderCodec } from './codec.ts';
import type { TextRewriter } from './channels.ts';
import { anthropicCodec } from './anthropic.ts';
import { openaiCodec } from './openai.ts';

export const CODECS: Readonly<Record<ProviderKind, ProviderCodec>> = { openai: openaiCodec, anthropic: anthropicCodec };

/** The codec an endpoint belongs to (null: `unrouted`). */
export function codecForEndpoint(endpoint: EndpointId): ProviderCodec | null {
  if (endpoint.startsWith('openai.')) return openaiCodec;
  if (endpoint.startsWith('anthropic.')) return anthropicCodec;
  return null;
}

/** rewriteAnswerBody for an endpoint's codec; the body unchanged for `unrouted`. */
export function rewriteAnswer(endpoint: EndpointId, body: string, rewriter: TextRewriter): string {
  const codec = codecForEndpoint(endpoint);
  return codec ? rewriteAnswerBody(codec, endpoint, body, rewriter) : body;
}

/** The endpoints whose requests carry a conversation (or embeddings inputs) a view can show. */
const CONVERSATION_ENDPOINTS: ReadonlySet<string> = new Set<EndpointId>(['openai.chat.completions', 'openai.responses', 'openai.embeddings', 'anthropic.messages', 'anthropic.messages.count_tokens']);

/**
 * A recorded request body read by its endpoint's codec, for views of a recording: the normalized
 * request, or null when the body is not one the codec reads (not JSON, an endpoint without a
 * conversation, a body the gateway refused as malformed) — the view then shows the bytes.
 */
export function readRecordedRequest(endpoint: string, body: string): NormalizedRequest | null {
  return CONVERSATION_ENDPOINTS.has(endpoint) ? readRecordedBody(endpoint, parseJson(body)) : null;
}

/** readRecordedRequest of a body already parsed. */
export function readRecordedBody(endpoint: string, json: unknown): NormalizedRequest | null {
  if (!CONVERSATION_ENDPOINTS.has(endpoint)) return null;
  const codec = codecForEndpoint(endpoint as EndpointId);
  if (codec === null || !isObject(json)) return null;
  try {
    return codec.parseRequest(endpoint as EndpointId, json);
  } catch (error) {
    if (error instanceof AigovError) return null;
    throw error;
  }
}

/**
 * A recorded non-streamed answer body read by the codec of the provider that answered (`kind`;
 * an `unrouted` call's refusal is in its mount's shape): an error body as one error event, else
 * the answer's events. Null when the body is not a JSON object.
 */
export function readRecordedAnswer(kind: ProviderKind, endpoint: string, status: number | null, body: string): ResponseEvent[] | null {
  const json = parseJson(body);
  if (!isObject(json)) return null;
  if (isObject(json.error)) {
    const error = CODECS[kind].parseErrorBody(status ?? 0, body);
    if (error !== null) return [{ type: 'error', errorType: error.type, message: error.message, ...(error.code ? { code: error.code } : {}) }];
  }
  const codec = codecForEndpoint(endpoint as EndpointId);
  return codec === null ? [] : codec.parseResponseBody(endpoint as EndpointId, json);
}
