/** Stage 4b: hold a request that needs approval until it is decided (after it is recorded). */
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import { approverNames, decidingVote, describePerson } from '../../core/approvals/approval.ts';
import type { ApprovalSpec } from '../../core/policy/types.ts';
import type { ApprovalService, HoldResult, WaitOutcome } from '../approvals/approval-service.ts';
import type { Refusal } from '../hooks.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';

export type HeldRefusal = Extract<Refusal, { kind: 'require_approval' }> & { readonly approval: ApprovalSpec };

/**
 * Holds the request until its approval is decided. Streams get their headers at once and SSE
 * comments while they wait (SDKs ignore comments; proxies see a live connection); a plain
 * request waits silently. Returns true when the request may go upstream.
 */
export async function holdForApproval(call: CallState, principal: Principal, refuse: HeldRefusal, approvals: ApprovalService, originalBody: string): Promise<boolean> {
  const { ruleId, reason } = refuse;
  let held: HoldResult;
  try {
    held = await approvals.hold({
      requester: principal,
      ruleId,
      ruleReason: reason,
      spec: refuse.approval,
      provider: call.target.provider.name,
      model: call.model,
      endpoint: call.target.route.endpoint,
      stream: call.stream,
      preview: refuse.preview,
      sessionId: call.sessionId,
      callId: call.callId,
      body: originalBody,
    });
  } catch (error) {
    call.deps.metrics.storeErrors.inc({ operation: 'approval' });
    call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'could not record the approval; refusing the request');
    call.sendError(new AigovError('AIGOV_E_STORE_UNAVAILABLE'), 'failed');
    return false;
  }
  const approval = held.approval;
  if (held.kind === 'proceed') {
    call.approvalId = approval.id;
    call.approvalUsed = true;
    call.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId, reason: `${approval.id} approved earlier by ${approverNames(approval)}; used by this retry`, mode: 'enforce' });
    return true;
  }
  call.approvalId = approval.id;
  call.deps.logger.info({ callId: call.callId, approvalId: approval.id, ruleId, joined: !held.created }, 'request held for approval');
  let keepAlive: NodeJS.Timeout | null = null;
  if (call.stream) {
    call.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    call.res.flushHeaders();
    void call.write(`: aigov: waiting for approval ${approval.id} (rule ${ruleId})\n\n`);
    keepAlive = setInterval(() => void call.write(': keep-alive\n\n'), call.deps.approvalKeepAliveMs);
  }
  const gone = new AbortController();
  const unwatch = call.watchClientGone(gone);
  let outcome: WaitOutcome;
  try {
    outcome = await approvals.wait(approval, gone.signal);
  } finally {
    if (keepAlive) clearInterval(keepAlive);
    unwatch();
  }
  const decided = outcome.approval;
  switch (outcome.kind) {
    case 'approved':
      call.approvalUsed = true;
      call.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId, reason: `${decided.id} approved by ${approverNames(decided)}`, mode: 'enforce' });
      return true;
    case 'denied': {
      const vote = decidingVote(decided);
      call.lateDecisions.push({ stage: 'approval', action: 'denied', ruleId, reason: `${decided.id} denied by ${vote ? describePerson(vote.by) : 'an approver'}`, mode: 'enforce' });
      call.sendError(new AigovError('AIGOV_E_APPROVAL_DENIED', { id: decided.id, rule: ruleId, by: vote ? describePerson(vote.by) : 'an approver', reason: vote?.reason ?? 'no reason given' }), 'blocked');
      return false;
    }
    case 'expired':
      call.lateDecisions.push({ stage: 'approval', action: 'expired', ruleId, reason: `${decided.id} expired undecided`, mode: 'enforce' });
      call.sendError(new AigovError('AIGOV_E_APPROVAL_EXPIRED', { id: decided.id, rule: ruleId, approvers: refuse.approval.approvers.join(', ') }), 'blocked');
      return false;
    case 'interrupted':
      if (call.clientGone) {
        call.finish('aborted', null, { code: 'AIGOV_E_APPROVAL_INTERRUPTED', message: `the client went away while ${decided.id} was pending` });
      } else {
        const why = decided.state === 'approved' ? 'the approval was already used' : 'the gateway is shutting down';
        call.sendError(new AigovError('AIGOV_E_APPROVAL_INTERRUPTED', { id: decided.id, reason: why }), 'failed');
      }
      return false;
  }
}
