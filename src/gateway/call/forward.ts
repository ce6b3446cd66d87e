/** Stage 5: forward the request upstream, in one of the provider's slots, and hand the answer to its relay. */
import type { Dispatcher } from 'undici';
import { AigovError } from '../../core/errors.ts';
import { classifyUpstreamError, decodedBody } from '../upstream.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';
import { relayBody } from './relay-body.ts';
import { relayUpstreamError } from './relay-error.ts';
import { relayStream } from './relay-stream.ts';
import type { ResponseTransform } from './response-transform.ts';
import type { UpstreamAnswer } from './upstream-answer.ts';

/** Forwards in one of the provider's upstream slots, or answers 503 at once when none is free. */
export async function forward(call: CallState, bodyText: string, transform: ResponseTransform): Promise<void> {
  const { provider } = call.target;
  if (!call.deps.slots.take(provider.name)) {
    call.deps.metrics.upstreamBusy.inc({ provider: provider.name });
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_BUSY', { provider: provider.name, limit: call.deps.slots.limit }), 'failed', { 'retry-after': '1' });
    return;
  }
  try {
    await forwardInSlot(call, bodyText, transform);
  } finally {
    call.deps.slots.release(provider.name);
  }
}

async function forwardInSlot(call: CallState, bodyText: string, transform: ResponseTransform): Promise<void> {
  const { provider, adapter, route, query } = call.target;
  const abort = new AbortController();
  const unwatch = call.watchClientGone(abort);
  // Joined, never resolved: the adapter built upstreamPath from constants and encoded parameters.
  let upstream: Dispatcher.ResponseData;
  call.forwarded = true;
  try {
    upstream = await call.deps.agent.request({
      origin: provider.upstream.origin,
      path: provider.upstream.basePath + route.upstreamPath + query,
      method: route.hasBody ? 'POST' : 'GET',
      headers: adapter.upstreamHeaders(call.req.headers, provider.apiKey, provider.headers),
      body: route.hasBody ? bodyText : undefined,
      signal: abort.signal,
    });
  } catch (error) {
    const kind = classifyUpstreamError(error);
    // No connection was made: nothing reached the provider, nothing can be billed.
    if (neverConnected(error)) call.forwarded = false;
    if (kind === 'aborted' || call.clientGone) {
      call.finish('aborted', null, { code: 'client_aborted', message: 'the client went away before the upstream answered' });
      return;
    }
    call.deps.logger.warn({ callId: call.callId, provider: provider.name, err: errorSummary(error) }, 'upstream request failed');
    call.sendError(new AigovError(kind === 'timeout' ? 'AIGOV_E_UPSTREAM_TIMEOUT' : 'AIGOV_E_UPSTREAM_UNREACHABLE', { provider: provider.name }), 'failed');
    return;
  }
  call.upstreamStatus = upstream.statusCode;
  try {
    const decoded = decodedBody(upstream);
    if (!decoded.ok) {
      // dump(), not destroy(): undici's destroy() emits an AbortError nobody listens to (a crash).
      void upstream.body.dump().catch(() => undefined);
      call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: `an answer in the content-encoding "${decoded.coding}"` }), 'failed');
      return;
    }
    const answer: UpstreamAnswer = { statusCode: upstream.statusCode, headers: upstream.headers, body: decoded.body };
    const contentType = String(upstream.headers['content-type'] ?? '').toLowerCase();
    if (upstream.statusCode >= 400) await relayUpstreamError(call, answer);
    else if (contentType.startsWith('text/event-stream')) await relayStream(call, answer, transform);
    else await relayBody(call, answer, transform);
  } catch (error) {
    if (call.clientGone || classifyUpstreamError(error) === 'aborted') {
      call.finish('aborted', call.res.headersSent ? call.res.statusCode : null, { code: 'client_aborted', message: 'the client went away before the answer ended' });
    } else {
      throw error;
    }
  } finally {
    unwatch();
  }
}

/** Errors of a connection that was never made (refused, no such host, no route, connect timeout). */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function neverConnected(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NOT_CONNECTED.has(code);
}
