/**
 * The governed call, one stage per file under ./call/, run here in order:
 *
 *   authenticate → read & parse into normalized events → session call limit → policy
 *   → record request → hold for approval → reserve against budgets → forward upstream
 *   → relay the answer (streams event by event, response transform) → record response
 *
 * Each stage either hands a value to the next or ends the call with a provider-shaped error.
 * Nothing reaches the upstream before the request record is durable (fail closed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AigovError } from '../core/errors.ts';
import { authenticate } from './call/authenticate.ts';
import { capOutput, reserveBudgets } from './call/budget.ts';
import { CallState, type GovernedTarget, type PipelineDeps } from './call/call-state.ts';
import { forward } from './call/forward.ts';
import { holdForApproval } from './call/hold.ts';
import { applyPolicy } from './call/policy.ts';
import { readAndParse } from './call/read-request.ts';
import { recordRequest } from './call/record.ts';
import { responseTransform } from './call/response-transform.ts';
import { unsealThinking } from './call/unseal-thinking.ts';

export type { GovernedTarget, PipelineDeps } from './call/call-state.ts';
export { errorSummary } from './call/error-summary.ts';
export { refuseUnrouted } from './call/read-request.ts';

/** Serves one governed call end to end. Never throws: every failure becomes a response. */
export async function handleGovernedCall(req: IncomingMessage, res: ServerResponse, target: GovernedTarget, deps: PipelineDeps): Promise<void> {
  const call = new CallState(req, res, target, deps);
  deps.metrics.inflight.inc();
  try {
    await runStages(call);
  } catch (error) {
    call.failInternal(error);
  } finally {
    deps.metrics.inflight.dec();
  }
}

async function runStages(call: CallState): Promise<void> {
  // Stage 1: authenticate.
  const principal = await authenticate(call);
  if (!principal) return;
  // Stage 2: read and parse into normalized events.
  const parsed = await readAndParse(call);
  if (!parsed) return;
  // A session past its call budget is refused before anything is recorded or sent; SDKs must not retry it.
  const overLimit = call.deps.sessionCalls?.admit(principal, call.req.headers['x-aigov-session'] ? call.sessionId : null);
  if (overLimit) {
    call.sendError(overLimit, null, { 'x-should-retry': 'false' });
    return;
  }
  // Stage 3: policy. A policy failure refuses the request (fail closed).
  const policy = await applyPolicy(call, principal, parsed);
  if (!policy) return;
  const { verdict } = policy;
  // Budgets that must bound the answer write their output cap into a request that states none.
  const bodyText = verdict.refuse ? policy.bodyText : capOutput(call, principal, parsed, policy.bodyText);
  // Stage 4: record the request as it will be sent (durably, before anything is sent anywhere).
  if (!(await recordRequest(call, principal, bodyText, parsed.bodyText))) return;
  const refuse = verdict.refuse;
  if (refuse?.kind === 'require_approval' && refuse.approval !== null && call.deps.approvals) {
    if (!(await holdForApproval(call, principal, { ...refuse, approval: refuse.approval }, call.deps.approvals, parsed.bodyText))) return;
  } else if (refuse) {
    const { kind, ruleId, reason } = refuse;
    call.sendError(kind === 'block' ? new AigovError('AIGOV_E_POLICY_BLOCKED', { rule: ruleId, reason }) : new AigovError('AIGOV_E_APPROVAL_REQUIRED', { rule: ruleId, reason }), 'blocked');
    return;
  }
  // Stage 4c: reserve the request's worst case against its budgets (refused past one; fail closed).
  if (!(await reserveBudgets(call, principal, parsed, bodyText))) return;
  // Thinking blocks the gateway sealed (their text masked) go upstream as the provider wrote them.
  const sent = unsealThinking(call, principal, bodyText);
  if (sent === null) return;
  // Stages 5-7: forward, transform, record the answer.
  const seal = call.deps.thinkingSeal;
  const transform = responseTransform(verdict.rewriteResponse, {
    secrets: call.deps.secrets,
    governed: verdict.rewriteResponse !== null || (verdict.judgeToolCall ?? null) !== null,
    unknownEvents: call.deps.answers.unknown_events,
    sealThinking: (text, signature) => seal.seal(principal.subject, text, signature),
  });
  await forward(call, sent, transform);
}
