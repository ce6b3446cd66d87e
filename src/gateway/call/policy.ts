/**
 * Stage 3: policy decides on the request and may rewrite its text slots. A policy failure
 * refuses the request (fail closed).
 */
import type { Principal } from '../../core/events.ts';
import type { CallContext, RequestVerdict } from '../hooks.ts';
import type { CallState } from './call-state.ts';
import type { ParsedRequest } from './read-request.ts';

/** Policy's verdict, and the body to record and send (rewritten when policy changed a text slot). */
export interface PolicyOutcome {
  readonly verdict: RequestVerdict;
  readonly bodyText: string;
}

export async function applyPolicy(call: CallState, principal: Principal, parsed: ParsedRequest): Promise<PolicyOutcome | null> {
  const ctx: CallContext = { callId: call.callId, sessionId: call.sessionId, principal, provider: call.target.provider.name, endpoint: call.target.route.endpoint, request: parsed.request };
  let verdict: RequestVerdict;
  try {
    verdict = await call.deps.hooks.evaluateRequest(ctx);
  } catch (error) {
    call.failPolicy(error, 'policy evaluation failed; refusing the request');
    return null;
  }
  call.decisions = verdict.decisions.map((d) => ({ ...d, stage: 'request' }));
  call.toolJudge = verdict.judgeToolCall ?? null;
  let bodyText = parsed.bodyText;
  // A refused request is rewritten too: then what the hook returns is only what gets recorded.
  // Policy writes into the codec's text slots; the body is serialized once, only if one changed.
  const rewrite = verdict.rewriteRequest;
  const rewriteAll = (): void => {
    if (rewrite === null || parsed.read.slots.length === 0) return;
    for (const slot of parsed.read.slots) slot.set(rewrite(slot));
    bodyText = parsed.read.serialize();
  };
  try {
    rewriteAll();
  } catch (error) {
    call.failPolicy(error, 'request rewriting failed; refusing the request');
    return null;
  }
  if (verdict.commit) {
    try {
      // Called again when another replica numbered the session's pseudonyms first (see RequestVerdict.commit).
      await verdict.commit(rewriteAll);
    } catch (error) {
      call.failPolicy(error, 'storing what the request rewrite produced failed; refusing the request');
      return null;
    }
  }
  return { verdict, bodyText };
}
