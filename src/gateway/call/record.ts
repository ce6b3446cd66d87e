/**
 * Stage 4: record the request as it will be sent — durably, before anything is sent anywhere
 * (fail closed). A refused request is recorded too (./read-request.ts), without its body.
 */
import type { IncomingMessage } from 'node:http';
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import { SessionOwnerConflictError, type ClientInfo, type SealedRawCopy } from '../../store/recording-store.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';

/** `clientBody`: the body as the client sent it; kept only sealed, and only with `audit.raw_copy`. */
export async function recordRequest(call: CallState, principal: Principal, bodyText: string, clientBody: string): Promise<boolean> {
  const { provider, route } = call.target;
  let rawCopy: SealedRawCopy | null = null;
  if (call.deps.rawCopy) {
    try {
      rawCopy = call.deps.rawCopy.seal(call.callId, clientBody);
    } catch (error) {
      // Fail closed: a request whose raw copy cannot be kept is not sent.
      call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'sealing the raw request copy failed; not forwarding');
      call.sendError(new AigovError('AIGOV_E_RAW_COPY_SEAL_FAILED'), null);
      return false;
    }
  }
  try {
    await call.deps.store.recordRequest({
      callId: call.callId,
      sessionId: call.sessionId,
      principal,
      client: clientInfo(call.req),
      provider: provider.name,
      providerKind: provider.kind,
      endpoint: route.endpoint,
      method: call.req.method ?? 'GET',
      path: route.upstreamPath,
      model: call.model,
      stream: call.stream,
      requestBody: bodyText,
      rawCopy,
      decisions: call.decisions,
      startedAt: call.startedAt,
    });
    call.recorded = true;
    return true;
  } catch (error) {
    if (error instanceof SessionOwnerConflictError) {
      call.sendError(new AigovError('AIGOV_E_SESSION_CONFLICT'), null, { 'x-should-retry': 'false' }); // the SDKs retry a 409 otherwise
      return false;
    }
    call.deps.metrics.storeErrors.inc({ operation: 'record_request' });
    call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'recording store refused the request record; not forwarding');
    call.sendError(new AigovError('AIGOV_E_STORE_UNAVAILABLE'), null);
    return false;
  }
}

export function clientInfo(req: IncomingMessage): ClientInfo {
  const lang = req.headers['x-stainless-lang'];
  const version = req.headers['x-stainless-package-version'];
  return {
    userAgent: req.headers['user-agent']?.slice(0, 256) ?? null,
    remoteAddress: req.socket.remoteAddress ?? null,
    sdk: typeof lang === 'string' ? `${lang}${typeof version === 'string' ? ` ${version}` : ''}`.slice(0, 64) : null,
  };
}
