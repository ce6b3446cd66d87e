/**
 * Stage 4c: budgets. Just before a request is forwarded (after it is recorded and any approval
 * of the policy is given), its worst case is reserved on every counter of the budgets that count
 * it — all or none. Past a budget the request is not sent: `block` answers 429 in the provider's
 * shape with `retry-after` at the window's reset; `require_approval` holds it like a policy
 * approval, and an approver's yes lets this one request through (counted, never refused). When
 * the counters cannot be reached the request is refused (fail closed, 503). The reservation is
 * settled with the call's charge when it ends (CallState.finish).
 */
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import type { AdmitInput, Admission } from '../budgets/budget-service.ts';
import { approvalPreview } from '../policy-hooks.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';
import { holdForApproval } from './hold.ts';
import type { ParsedRequest } from './read-request.ts';

/** Above this, SDKs are told not to retry a budget refusal by themselves (x-should-retry: false). */
const SDK_RETRY_MAX_SECONDS = 60;

export async function reserveBudgets(call: CallState, principal: Principal, parsed: ParsedRequest, bodyText: string): Promise<boolean> {
  const budgets = call.deps.budgets;
  if (!budgets) return true;
  const input: AdmitInput = { callId: call.callId, principal, provider: call.target.provider, model: call.model, request: parsed.request, bodyText, startedAt: call.startedAt };
  const admission = await admit(call, input, false);
  if (admission === null) return false;
  switch (admission.kind) {
    case 'none':
      return true;
    case 'admitted':
      call.budget = admission.ticket;
      return true;
    case 'unpriced': {
      const { budget } = admission;
      const reason = `model ${call.model ?? '(none)'} has no price; budget ${budget.id} counts US dollars`;
      call.lateDecisions.push({ stage: 'request', action: 'block', ruleId: `budget:${budget.id}`, reason, mode: 'enforce' });
      call.sendError(new AigovError('AIGOV_E_BUDGET_UNPRICED', { model: call.model ?? '(none)', provider: call.target.provider.name, budget: budget.id }), 'blocked', { 'x-should-retry': 'false' });
      return false;
    }
    case 'refused': {
      const { budget, reason, resetAt } = admission;
      const ruleId = `budget:${budget.id}`;
      if (budget.action === 'require_approval') {
        call.lateDecisions.push({ stage: 'request', action: 'require_approval', ruleId, reason, mode: 'enforce' });
        if (budget.approval === null || !call.deps.approvals) {
          call.sendError(new AigovError('AIGOV_E_APPROVAL_REQUIRED', { rule: ruleId, reason }), 'blocked');
          return false;
        }
        const refusal = { kind: 'require_approval', ruleId, reason, approval: budget.approval, preview: approvalPreview(parsed.request) } as const;
        if (!(await holdForApproval(call, principal, refusal, call.deps.approvals, parsed.bodyText))) return false;
        // Let through by an approver: counted, never refused.
        const forced = await admit(call, input, true);
        if (forced === null) return false;
        if (forced.kind === 'admitted') call.budget = forced.ticket;
        return true;
      }
      call.lateDecisions.push({ stage: 'request', action: 'block', ruleId, reason, mode: 'enforce' });
      const retryAfter = Math.max(1, Math.ceil((resetAt - budgets.now()) / 1000));
      const headers: Record<string, string> = { 'retry-after': String(retryAfter), ...(retryAfter > SDK_RETRY_MAX_SECONDS ? { 'x-should-retry': 'false' } : {}) };
      call.sendError(new AigovError('AIGOV_E_BUDGET_EXCEEDED', { reason, reset: new Date(resetAt).toISOString(), budget: budget.id }), 'blocked', headers);
      return false;
    }
  }
}

/**
 * Stage 3b (before the request is recorded: the record is what is sent): under
 * `budgets_enforce_output_cap`, a budgeted request that states no maximum output gets the cap
 * written into it, so the provider stops where its reservation does. The body is parsed and
 * serialized again only then; otherwise it goes as it is, byte for byte.
 */
export function capOutput(call: CallState, principal: Principal, parsed: ParsedRequest, bodyText: string): string {
  const cap = call.deps.budgets?.outputCap({ principal, provider: call.target.provider, model: call.model, request: parsed.request, startedAt: call.startedAt });
  if (!cap) return bodyText;
  const body = JSON.parse(bodyText) as Record<string, unknown>;
  body[cap.field] = cap.tokens;
  call.decisions.push({ stage: 'request', action: 'cap_output', ruleId: 'budgets', reason: `no maximum output stated: ${cap.field} ${cap.tokens} (budgets_enforce_output_cap)`, mode: 'enforce' });
  return JSON.stringify(body);
}

/** The admission, or null once the call is answered with AIGOV_E_BUDGET_STORE_UNAVAILABLE (the counters could not be reached). */
async function admit(call: CallState, input: AdmitInput, force: boolean): Promise<Admission | null> {
  const budgets = call.deps.budgets!;
  try {
    return await budgets.admit(input, { force });
  } catch (error) {
    call.deps.logger.error({ callId: call.callId, counters: budgets.ledger.kind, err: errorSummary(error) }, 'budget counters unavailable; refusing the request');
    call.sendError(new AigovError('AIGOV_E_BUDGET_STORE_UNAVAILABLE', { store: budgets.ledger.kind }), 'failed', { 'retry-after': '1' });
    return null;
  }
}
