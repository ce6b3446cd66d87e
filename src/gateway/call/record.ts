/**
 * Stage 4: record the request as it will be sent — durably, before anything is sent anywhere
 * (fail closed). A refused request is recorded too (./read-request.ts), without its body.
 */
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import { SessionOwnerConflictError, type SealedRawCopy } from '../../store/recording-store.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';

/** `clientBody`: the body as the client sent it; kept only sealed, and only with `audit.raw_copy`. */
export async function recordRequest(call: CallState, principal: Principal, bodyText: string, clientBody: string): Promise<boolean> {
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
    await call.deps.store.recordRequest(call.requestRecord(principal, bodyText, rawCopy));
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
