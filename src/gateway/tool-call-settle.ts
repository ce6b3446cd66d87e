/**
 * Settles the tool calls of one answer once it is complete: each call is judged; a blocked call
 * gets a notice that replaces it; a call that needs approval is held in the approvals flow (the
 * same one a held request uses: the approver sees the redacted call, a streamed answer gets SSE
 * keep-alive comments meanwhile) and goes out unchanged when approved, replaced when denied or
 * expired. Every decision is recorded with the call; shadow rules are recorded only.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { approverNames, decidingVote, describePerson, type ApprovalRecord } from '../core/approvals/approval.ts';
import type { Principal } from '../core/events.ts';
import type { PolicyDecisionRecord } from '../store/recording-store.ts';
import type { ApprovalService, WaitOutcome } from './approvals/approval-service.ts';
import type { JudgedCall, StreamToolGate, ToolCallAction } from './tool-gate.ts';

/** What settling needs of the call (pipeline.ts CallState). */
export interface ToolCallHost {
  readonly callId: string;
  readonly sessionId: string;
  readonly model: string | null;
  readonly stream: boolean;
  readonly principal: Principal | null;
  readonly provider: string;
  readonly endpoint: string;
  readonly approvals: ApprovalService | null;
  readonly approvalKeepAliveMs: number;
  readonly logger: Logger;
  readonly lateDecisions: PolicyDecisionRecord[];
  readonly res: ServerResponse;
  clientGone: boolean;
  write(data: string): Promise<void>;
}

export interface SettledToolCalls {
  /** Notices replacing refused calls, by call key. */
  readonly notices: Map<string, string>;
  /** The client went away while a call was held: end the call as aborted. */
  readonly clientGone: boolean;
}

const SHADOW_WORDS: Record<ToolCallAction, string> = { block: 'would be refused', require_approval: 'would be held for approval', allow: 'would be allowed' };

/**
 * `complete`: the answer ended normally (a call needing approval in a broken answer is refused
 * without asking). `keepAlive`: write SSE comments while held (streams).
 */
export async function settleToolCalls(host: ToolCallHost, gate: StreamToolGate, options: { readonly complete: boolean; readonly keepAlive: boolean }): Promise<SettledToolCalls> {
  const notices = new Map<string, string>();
  const held: JudgedCall[] = [];
  for (const call of gate.judgeAll()) {
    const { verdict } = call;
    for (const s of verdict.shadow) {
      host.lateDecisions.push({ stage: 'response', action: s.action, ruleId: s.ruleId, reason: `tool call ${verdict.summary} ${SHADOW_WORDS[s.action]}: ${s.reason} (shadow)`, mode: 'shadow' });
    }
    const decision = verdict.decision;
    if (decision === null) continue;
    const record = (action: string, text: string): void => {
      host.lateDecisions.push({ stage: 'response', action, ruleId: decision.ruleId, reason: `tool call ${verdict.summary} ${text}: ${decision.reason}`, mode: 'enforce' });
    };
    if (decision.action === 'allow') record('allow', 'allowed');
    else if (decision.action === 'block') {
      record('block', 'blocked');
      notices.set(call.key, `aigov blocked ${verdict.summary}: rule ${decision.ruleId} — ${decision.reason}. The call was not run.`);
    } else {
      record('require_approval', 'held for approval');
      held.push(call);
    }
  }
  if (held.length === 0) return { notices, clientGone: false };

  const gone = new AbortController();
  const onClose = (): void => {
    if (!host.res.writableFinished) {
      host.clientGone = true;
      gone.abort();
    }
  };
  host.res.on('close', onClose);
  let keepAlive: NodeJS.Timeout | null = null;
  try {
    const waits = held.map((call) => holdOne(host, call, options.complete, gone.signal));
    if (options.keepAlive) keepAlive = setInterval(() => void host.write(': keep-alive\n\n'), host.approvalKeepAliveMs);
    for (const [key, notice] of await Promise.all(waits)) if (notice !== null) notices.set(key, notice);
  } finally {
    if (keepAlive) clearInterval(keepAlive);
    host.res.off('close', onClose);
  }
  return { notices, clientGone: host.clientGone };
}

/** Holds one call for approval; resolves to its key and a notice (null: approved, goes out unchanged). */
async function holdOne(host: ToolCallHost, call: JudgedCall, complete: boolean, signal: AbortSignal): Promise<[string, string | null]> {
  const { verdict } = call;
  const decision = verdict.decision!;
  const refuse = (why: string): [string, string] => [call.key, `aigov blocked ${verdict.summary}: ${why}. The call was not run.`];
  if (!complete) return refuse('the answer broke off before the call could be approved');
  if (host.approvals === null || verdict.approval === null || host.principal === null) {
    host.lateDecisions.push({ stage: 'approval', action: 'denied', ruleId: decision.ruleId, reason: `tool call ${verdict.summary}: no approvers are configured, so it is refused`, mode: 'enforce' });
    return refuse(`rule ${decision.ruleId} needs approval, but no approvers are configured — ${decision.reason}`);
  }
  let approval: ApprovalRecord;
  let outcome: WaitOutcome;
  try {
    const result = await host.approvals.hold({
      requester: host.principal,
      ruleId: decision.ruleId,
      ruleReason: decision.reason,
      spec: verdict.approval,
      provider: host.provider,
      model: host.model,
      endpoint: host.endpoint,
      stream: host.stream,
      preview: `the model asks the agent to run: ${verdict.summary}`,
      sessionId: host.sessionId,
      callId: host.callId,
      // The same call (name and arguments) in a later answer joins or reuses this approval.
      body: `tool-call\n${call.name}\n${call.arguments}`,
    });
    approval = result.approval;
    if (result.kind === 'proceed') {
      host.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId: decision.ruleId, reason: `${approval.id} approved earlier by ${approverNames(approval)}; used by tool call ${verdict.summary}`, mode: 'enforce' });
      return [call.key, null];
    }
    host.logger.info({ callId: host.callId, approvalId: approval.id, ruleId: decision.ruleId }, 'tool call held for approval');
    if (host.stream) void host.write(`: aigov: tool call waiting for approval ${approval.id} (rule ${decision.ruleId})\n\n`);
    outcome = await host.approvals.wait(approval, signal);
  } catch (error) {
    host.logger.error({ callId: host.callId, err: error instanceof Error ? error.name : typeof error }, 'could not hold a tool call for approval; refusing it');
    host.lateDecisions.push({ stage: 'approval', action: 'denied', ruleId: decision.ruleId, reason: `tool call ${verdict.summary}: the approval could not be recorded, so it is refused`, mode: 'enforce' });
    return refuse('its approval could not be recorded');
  }
  const decided = outcome.approval;
  switch (outcome.kind) {
    case 'approved':
      host.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId: decision.ruleId, reason: `${decided.id} approved by ${approverNames(decided)} for tool call ${verdict.summary}`, mode: 'enforce' });
      return [call.key, null];
    case 'denied': {
      const vote = decidingVote(decided);
      const by = vote ? describePerson(vote.by) : 'an approver';
      host.lateDecisions.push({ stage: 'approval', action: 'denied', ruleId: decision.ruleId, reason: `${decided.id} denied by ${by} for tool call ${verdict.summary}`, mode: 'enforce' });
      return refuse(`approval ${decided.id} (rule ${decision.ruleId}) was denied by ${by} — ${vote?.reason ?? 'no reason given'}`);
    }
    case 'expired':
      host.lateDecisions.push({ stage: 'approval', action: 'expired', ruleId: decision.ruleId, reason: `${decided.id} expired undecided for tool call ${verdict.summary}`, mode: 'enforce' });
      return refuse(`approval ${decided.id} (rule ${decision.ruleId}) expired without a decision (approvers: ${verdict.approval.approvers.join(', ')})`);
    case 'interrupted':
      host.lateDecisions.push({ stage: 'approval', action: 'expired', ruleId: decision.ruleId, reason: `${decided.id} interrupted for tool call ${verdict.summary}`, mode: 'enforce' });
      return refuse(`approval ${decided.id} (rule ${decision.ruleId}) could not be awaited`);
  }
}
