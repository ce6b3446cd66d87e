/**
 * What the gateway needs to know about one provider's wire protocol. Adapters hold no I/O:
 * routing, header rules, parsing into normalized events and rendering errors in the provider's
 * own shape so the official SDKs raise them as ordinary API errors.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { EndpointId, NormalizedRequest, ProviderKind, ResponseEvent } from '../../core/events.ts';
import type { SseEvent } from '../../core/sse.ts';
import type { AigovError } from '../../core/errors.ts';

export interface RouteMatch {
  readonly ok: true;
  readonly endpoint: EndpointId;
  /** Path to append to the provider's upstream base URL. */
  readonly upstreamPath: string;
  readonly hasBody: boolean;
}
export type RouteResult = RouteMatch | { readonly ok: false; readonly reason: 'not_found' | 'method_not_allowed' };

export interface ProviderError {
  readonly status: number;
  /** A ProviderErrorType, or whatever type string the upstream sent. */
  readonly type: string;
  readonly message: string;
  readonly code: string | null;
}

export interface ProviderAdapter {
  readonly kind: ProviderKind;
  /** The path a client appends to the gateway URL, e.g. `/openai/v1` → what becomes OPENAI_BASE_URL. */
  clientBasePath(mount: string): string;
  route(method: string, subpath: string): RouteResult;
  /** Parses a JSON request body. Throws AigovError('AIGOV_E_BAD_REQUEST') when it is not this endpoint's shape. */
  parseRequest(endpoint: EndpointId, body: unknown): NormalizedRequest;
  /** Headers sent upstream: the client's allowed headers, minus credentials, plus the provider key. */
  upstreamHeaders(client: IncomingHttpHeaders, apiKey: string | null, extra: Readonly<Record<string, string>>): Record<string, string>;
  parseResponseBody(endpoint: EndpointId, body: unknown): ResponseEvent[];
  parseStreamEvent(endpoint: EndpointId, event: SseEvent): ResponseEvent[];
  /** True when this event ends the stream normally (OpenAI `[DONE]`, Anthropic `message_stop`, …). */
  isStreamTerminal(endpoint: EndpointId, event: SseEvent): boolean;
  renderError(error: ProviderError): string;
  /** The in-stream error event (an SSE block) the provider's SDK raises. */
  renderStreamError(endpoint: EndpointId, error: ProviderError): string;
  /** Reads an upstream error body into a ProviderError, or null when it is not in this provider's shape. */
  parseErrorBody(status: number, body: string): ProviderError | null;
}

/** An aigov error in the shape adapters render: the message carries the hint, the type and code the registry's. */
export function toProviderError(error: AigovError): ProviderError {
  return { status: error.status, type: error.spec.type, message: `${error.message} ${error.hint}`, code: error.code };
}

/** Client request headers that may go upstream. Everything else (credentials, cookies, hop-by-hop) stays here. */
const FORWARDED_REQUEST_HEADERS = new Set([
  'content-type',
  'accept',
  'user-agent',
  'idempotency-key',
  'openai-beta',
  'anthropic-version',
  'anthropic-beta',
]);

export function pickForwardedHeaders(client: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(client)) {
    if (value === undefined) continue;
    if (FORWARDED_REQUEST_HEADERS.has(name) || name.startsWith('x-stainless-')) {
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  // Streams are parsed and transformed here: ask for them uncompressed.
  out['accept-encoding'] = 'identity';
  return out;
}

/** Upstream response headers that reach the client. */
const FORWARDED_RESPONSE_HEADERS = new Set([
  'content-type',
  'retry-after',
  'x-request-id',
  'request-id',
  'openai-processing-ms',
  'openai-version',
  'openai-model',
  'anthropic-organization-id',
]);

export function pickResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    if (FORWARDED_RESPONSE_HEADERS.has(name) || name.startsWith('x-ratelimit-') || name.startsWith('anthropic-ratelimit-')) {
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return out;
}

// ---- small readers for untrusted JSON ----

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
/** JSON.parse that answers undefined instead of throwing (upstream bodies are untrusted). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
export function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
