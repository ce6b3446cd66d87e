/**
 * What the gateway needs to know about one provider's wire protocol. Adapters hold no I/O:
 * routing, header rules, parsing into normalized events and rendering errors in the provider's
 * own shape so the official SDKs raise them as ordinary API errors.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { EndpointId, NormalizedMessage, NormalizedRequest, ProviderKind, ResponseEvent } from '../core/events.ts';
import type { SseEvent } from '../core/sse.ts';
import type { AigovError } from '../core/errors.ts';
import { isObject, parseJson, type JsonObject } from '../core/json.ts';
import type { BodyPart, StreamReader, TextRewriter, UnknownEvents } from './channels.ts';
import type { ReadRequest } from './request-slots.ts';

export interface RouteMatch {
  readonly ok: true;
  readonly endpoint: EndpointId;
  /**
   * Path to append to the provider's upstream base URL, built by the codec from its own
   * constants and percent-encoded path parameters — never the client's path text.
   */
  readonly upstreamPath: string;
  readonly hasBody: boolean;
  /** The decoded path parameter (a model id) for endpoints that take one. */
  readonly param?: string;
}
export type RouteResult =
  | RouteMatch
  | { readonly ok: false; readonly reason: 'not_found' | 'method_not_allowed' }
  | { readonly ok: false; readonly reason: 'bad_path'; readonly detail: string };

/**
 * Reads one path parameter (a model id) as the client spelled it: percent-decoded once, then
 * refused unless it is a plain identifier. Refused: `/`, `\`, `%` (encoded twice), `?`, `#`,
 * whitespace and control characters, non-ASCII, and the dot segments `.` and `..` — so no
 * spelling (raw, `%2e%2e`, `%5c`, `%252e`, mixed) can name another upstream path. The result is
 * re-encoded when the upstream path is built.
 */
export function readPathParam(raw: string): { ok: true; value: string } | { ok: false; detail: string } {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return { ok: false, detail: 'a malformed percent-encoding' };
  }
  if (value === '' || value.length > 256) return { ok: false, detail: 'an empty or over-long model id' };
  if (value === '.' || value === '..') return { ok: false, detail: 'a dot segment' };
  if (!/^[\x21-\x7e]+$/.test(value)) return { ok: false, detail: 'whitespace, control or non-ASCII characters' };
  if (/[/\\%?#]/.test(value)) return { ok: false, detail: 'a slash, backslash, percent sign, "?" or "#"' };
  return { ok: true, value };
}

/** The route of a fixed endpoint: the upstream path is the codec's constant, never the client's text. */
export function fixedRoute(method: string, expected: 'GET' | 'POST', endpoint: EndpointId, upstreamPath: string): RouteResult {
  return method === expected ? { ok: true, endpoint, upstreamPath, hasBody: expected === 'POST' } : { ok: false, reason: 'method_not_allowed' };
}

/** The route of `GET …/models/{id}`: the id checked by readPathParam, re-encoded under `prefix`. */
export function modelRoute(method: string, endpoint: EndpointId, prefix: string, raw: string): RouteResult {
  if (method !== 'GET') return { ok: false, reason: 'method_not_allowed' };
  const param = readPathParam(raw);
  if (!param.ok) return { ok: false, reason: 'bad_path', detail: param.detail };
  return { ok: true, endpoint, upstreamPath: `${prefix}/${encodePathSegment(param.value)}`, hasBody: false, param: param.value };
}

/** Percent-encodes every character that is not an RFC 3986 `pchar` (so `ft:gpt-4o:org::id` stays as it is). */
function encodePathSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export interface ProviderError {
  readonly status: number;
  /** A ProviderErrorType, or whatever type string the upstream sent. */
  readonly type: string;
  readonly message: string;
  readonly code: string | null;
}

export interface ProviderCodec {
  readonly kind: ProviderKind;
  /** The path a client appends to the gateway URL, e.g. `/openai/v1` → what becomes OPENAI_BASE_URL. */
  clientBasePath(mount: string): string;
  route(method: string, subpath: string): RouteResult;
  /** Parses a JSON request body. Throws AigovError('AIGOV_E_BAD_REQUEST') when it is not this endpoint's shape. */
  parseRequest(endpoint: EndpointId, body: unknown): NormalizedRequest;
  /**
   * Reads a request body the gateway parsed once (`body`; `text` as the client sent it): the
   * normalized request, its text slots by TextLocation, and the body to send — `text` itself
   * unless a slot changed. Throws AigovError('AIGOV_E_BAD_REQUEST') like parseRequest.
   */
  readRequest(endpoint: EndpointId, body: unknown, text: string): ReadRequest;
  /**
   * One element of a request's conversation (`messages[i]`; a Responses `input[i]` item) read as
   * readRequest reads it in a whole body — for views that read a recorded conversation element
   * by element. Null when the endpoint has no conversation or the element is not one it reads.
   */
  readMessage(endpoint: EndpointId, element: unknown): NormalizedMessage | null;
  /** Headers sent upstream: the client's allowed headers, minus credentials, plus the provider key. */
  upstreamHeaders(client: IncomingHttpHeaders, apiKey: string | null, extra: Readonly<Record<string, string>>): Record<string, string>;
  parseResponseBody(endpoint: EndpointId, body: unknown): ResponseEvent[];
  /**
   * A reader of one streamed answer: parses each event once, yields its normalized events and
   * the events to send — with `rewriter`, their texts rewritten channel by channel. `unknown`
   * (default `mask`: read like the rest) says what becomes of an event of a type it does not know.
   */
  streamReader(endpoint: EndpointId, rewriter: TextRewriter | null, unknown?: UnknownEvents): StreamReader;
  /** Parses a non-streamed JSON answer and rewrites its texts in place; true if one changed. */
  rewriteAnswer(endpoint: EndpointId, body: JsonObject, rewriter: TextRewriter): boolean;
  /** The elements of a non-streamed answer of types the codec does not know (content blocks, output items, parts). */
  unknownParts(endpoint: EndpointId, body: JsonObject): BodyPart[];
  /**
   * Providers that sign reasoning (Anthropic thinking): after a body was rewritten its own way
   * (`before` → `after`), a signed block whose text changed gets `seal(upstreamText, signature)` as
   * its signature; `unseal` puts the upstream's text and signature back in a request that
   * carries such blocks (true if one changed; `unopened` counts seals `open` refused).
   */
  sealChangedThinking?(endpoint: EndpointId, before: JsonObject, after: JsonObject, seal: (upstreamText: string, signature: string) => string): void;
  unsealThinking?(endpoint: EndpointId, body: JsonObject, sealed: (signature: string) => boolean, open: (signature: string) => { readonly text: string; readonly signature: string } | null): { changed: boolean; unopened: number };
  /** True when this event ends the stream normally (OpenAI `[DONE]`, Anthropic `message_stop`, …). */
  isStreamTerminal(endpoint: EndpointId, event: SseEvent): boolean;
  renderError(error: ProviderError): string;
  /** The in-stream error event (an SSE block) the provider's SDK raises. */
  renderStreamError(endpoint: EndpointId, error: ProviderError): string;
  /** Reads an upstream error body into a ProviderError, or null when it is not in this provider's shape. */
  parseErrorBody(status: number, body: string): ProviderError | null;
}

/**
 * Rewrites the answer texts of a non-streamed JSON body (one parse, one serialization when a text
 * changed); the body unchanged when it is not a JSON object or nothing changed.
 */
export function rewriteAnswerBody(codec: ProviderCodec, endpoint: EndpointId, body: string, rewriter: TextRewriter): string {
  const json = parseJson(body);
  if (!isObject(json)) return body;
  return codec.rewriteAnswer(endpoint, json, rewriter) ? JSON.stringify(json) : body;
}

/** An aigov error in the shape codecs render: the message carries the hint, the type and code the registry's. */
export function toProviderError(error: AigovError): ProviderError {
  return { status: error.status, type: error.spec.type, message: `${error.message} ${error.hint}`, code: error.code };
}

/**
 * Client request headers that may go upstream: those the providers document and their official
 * clients and agents send (the SDKs' x-stainless-*, Claude Code's x-app and session id, Codex's
 * originator, session and turn headers). Everything else — credentials, cookies, hop-by-hop,
 * organization/project headers tied to a key the gateway holds — stays here.
 */
const FORWARDED_REQUEST_HEADERS = new Set([
  'content-type',
  'accept',
  'user-agent',
  'idempotency-key',
  'openai-beta',
  'anthropic-version',
  'anthropic-beta',
  'anthropic-dangerous-direct-browser-access',
  'x-app',
  'x-claude-code-session-id',
  'originator',
  'version',
  'session-id',
  'session_id',
  'thread-id',
  'x-client-request-id',
]);
const FORWARDED_REQUEST_PREFIXES = ['x-stainless-', 'x-codex-', 'x-openai-internal-codex-'];

export function pickForwardedHeaders(client: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(client)) {
    if (value === undefined) continue;
    if (FORWARDED_REQUEST_HEADERS.has(name) || FORWARDED_REQUEST_PREFIXES.some((prefix) => name.startsWith(prefix))) {
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
