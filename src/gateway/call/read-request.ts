/**
 * Stage 2: read the request and parse it into normalized events (session header, body within
 * its limit, JSON, the codec's reading, the model allow-list). A request refused here — or one
 * that matched no endpoint — is answered in the provider's shape and, once its user is known,
 * recorded as a call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResolvedProvider } from '../../config/schema.ts';
import { AigovError, isAigovError } from '../../core/errors.ts';
import type { NormalizedRequest } from '../../core/events.ts';
import { isObject } from '../../core/json.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../core/json-depth.ts';
import { SessionOwnerConflictError } from '../../store/recording-store.ts';
import type { ProviderCodec, RouteMatch } from '../../providers/codec.ts';
import type { ReadRequest } from '../../providers/request-slots.ts';
import { readRequestBody } from '../request-body.ts';
import { authorizationOf } from './authenticate.ts';
import { CallState, type PipelineDeps } from './call-state.ts';
import { errorSummary } from './error-summary.ts';

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export interface ParsedRequest {
  readonly bodyText: string;
  readonly request: NormalizedRequest;
  /** The codec's reading of the body: its text slots, and the body to send once they are written. */
  readonly read: ReadRequest;
}

export async function readAndParse(call: CallState): Promise<ParsedRequest | null> {
  const { route, adapter, provider } = call.target;
  const sessionHeader = call.req.headers['x-aigov-session'];
  if (typeof sessionHeader === 'string' && sessionHeader !== '') {
    if (!SESSION_ID.test(sessionHeader)) {
      await refuse(call, new AigovError('AIGOV_E_BAD_SESSION', { reason: 'unexpected characters or length' }));
      return null;
    }
    call.sessionId = sessionHeader;
  }
  let bodyText = '';
  if (route.hasBody) {
    const limit = call.deps.limits.max_body_bytes;
    const body = await readRequestBody(call.req, limit);
    if (!body.ok) {
      if (body.reason === 'too_large') await refuse(call, new AigovError('AIGOV_E_BODY_TOO_LARGE', { limit }), { connection: 'close' });
      else if (body.reason === 'bad_coding') await refuse(call, new AigovError('AIGOV_E_BAD_CONTENT_ENCODING', { coding: body.coding, reason: body.detail }));
      else call.finish('aborted', null, { code: 'client_aborted', message: 'the client went away while sending the request' });
      return null;
    }
    bodyText = body.text;
    call.deps.metrics.requestBytes.inc({ provider: provider.name }, Buffer.byteLength(bodyText));
  }
  let json: unknown = {};
  if (route.hasBody) {
    if (jsonDepthExceeds(bodyText)) {
      await refuse(call, new AigovError('AIGOV_E_JSON_TOO_DEEP', { limit: MAX_JSON_DEPTH }));
      return null;
    }
    try {
      json = JSON.parse(bodyText);
    } catch (error) {
      await refuse(call, new AigovError('AIGOV_E_BAD_JSON', { reason: describeJsonError(error, bodyText) }));
      return null;
    }
    // Known before the adapter may refuse the body: a refusal is logged and recorded with its model.
    const claimed = isObject(json) ? json.model : undefined;
    if (typeof claimed === 'string') call.model = claimed.slice(0, 200);
  }
  let read: ReadRequest;
  try {
    read = adapter.readRequest(route.endpoint, json, bodyText);
  } catch (error) {
    if (isAigovError(error)) {
      await refuse(call, error);
      return null;
    }
    throw error;
  }
  const request = read.request;
  const model = route.param ?? request.model;
  call.model = model;
  call.stream = request.stream;
  if (model !== null && provider.models.length > 0 && !provider.models.includes(model)) {
    await refuse(call, new AigovError('AIGOV_E_MODEL_NOT_ALLOWED', { model, provider: provider.name }));
    return null;
  }
  return { bodyText, request, read };
}

function describeJsonError(error: unknown, text: string): string {
  if (text.trim() === '') return 'the body is empty';
  const message = error instanceof Error ? error.message : '';
  // V8: "Unexpected token } in JSON at position 12" / "… (line 1 column 13)". Keep the position only,
  // never the surrounding text (it may hold PII).
  const pos = /position (\d+)/.exec(message)?.[1] ?? /column (\d+)/.exec(message)?.[1];
  if (/Unexpected end/.test(message)) return 'it ends too early';
  return pos ? `syntax error at position ${pos}` : 'syntax error';
}

/**
 * Refuses a request that never reached policy (bad body, unknown endpoint, wrong method, …).
 * Once the user is known the refusal is on the record as a call — status, error code, model,
 * no body — besides the log line every call gets.
 */
async function refuse(call: CallState, error: AigovError, headers: Record<string, string> = {}): Promise<void> {
  if (call.principal !== null && !call.recorded) {
    try {
      await call.deps.store.recordRequest(call.requestRecord(call.principal, '', null));
      call.recorded = true;
    } catch (e) {
      // The refusal stands either way; it is still logged.
      if (!(e instanceof SessionOwnerConflictError)) call.deps.metrics.storeErrors.inc({ operation: 'record_request' });
      call.deps.logger.warn({ callId: call.callId, err: errorSummary(e) }, 'could not record a refused request');
    }
  }
  call.sendError(error, error.code === 'AIGOV_E_MODEL_NOT_ALLOWED' ? 'blocked' : 'failed', headers);
}

/**
 * A request under a provider's mount that matched none of its endpoints (unknown path, wrong
 * method, a WebSocket handshake): answered with `error`, logged with its user and, when its
 * token is good, recorded as a call. A bad or missing token changes nothing in the answer.
 */
export async function refuseUnrouted(req: IncomingMessage, res: ServerResponse, target: { provider: ResolvedProvider; adapter: ProviderCodec; path: string }, error: AigovError, deps: PipelineDeps): Promise<void> {
  req.resume();
  const route: RouteMatch = { ok: true, endpoint: 'unrouted', upstreamPath: target.path.slice(0, 200), hasBody: false };
  const call = new CallState(req, res, { provider: target.provider, adapter: target.adapter, route, query: '' }, deps);
  try {
    const result = await deps.verifier.verify(authorizationOf(req, target.adapter));
    if (result.ok) call.principal = result.principal;
    const session = req.headers['x-aigov-session'];
    if (typeof session === 'string' && SESSION_ID.test(session)) call.sessionId = session;
    await refuse(call, error);
  } catch (e) {
    call.failInternal(e);
  }
}
