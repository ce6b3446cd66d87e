/**
 * Approvals as data: who may decide a held request, how votes add up (N of M, one denial is
 * final), when it expires, and when a retry may reuse it. Pure: the clock comes in as `now`.
 */

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired';

export interface ApprovalPerson {
  readonly sub: string;
  readonly email: string | null;
  readonly name: string | null;
}

export interface ApprovalVoteRecord {
  readonly by: ApprovalPerson;
  readonly decision: 'approve' | 'deny';
  readonly reason: string | null;
  /** Epoch milliseconds. */
  readonly at: number;
}

export interface ApprovalRecord {
  readonly id: string;
  readonly state: ApprovalState;
  readonly requester: ApprovalPerson & { readonly groups: readonly string[] };
  readonly ruleId: string;
  readonly ruleReason: string;
  readonly approvers: readonly string[];
  readonly required: number;
  readonly provider: string;
  readonly model: string | null;
  readonly endpoint: string;
  readonly stream: boolean;
  /** The prompt with secrets and personal data redacted, cut short. */
  readonly preview: string;
  readonly sessionId: string;
  readonly callId: string;
  /** Identifies "the same request" for a retry: a hash of provider, endpoint and body. */
  readonly contentHash: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly decidedAt: number | null;
  readonly votes: readonly ApprovalVoteRecord[];
  readonly reuse: 'once' | 'window';
  readonly retryWindowMs: number;
  /** Requests let through by this approval so far. */
  readonly uses: number;
  /**
   * Sessions whose identical requests joined it while pending (a retry after Ctrl-C is a new
   * `aigov run`), newest last: their runs follow it as their own. Absent in older records.
   */
  readonly joinedSessions?: readonly string[];
}

export interface Actor {
  readonly subject: string;
  readonly email: string | null;
  readonly groups: readonly string[];
}

export type VoteRefusal =
  | { readonly code: 'AIGOV_E_APPROVAL_SELF' }
  | { readonly code: 'AIGOV_E_APPROVAL_FORBIDDEN' }
  | { readonly code: 'AIGOV_E_APPROVAL_CLOSED'; readonly state: ApprovalState }
  | { readonly code: 'AIGOV_E_APPROVAL_VOTED'; readonly remaining: number };

export function isRequester(approval: ApprovalRecord, actor: Actor): boolean {
  if (approval.requester.sub === actor.subject) return true;
  // The same person under another subject (e.g. a second IdP client) still may not approve themselves.
  return approval.requester.email !== null && actor.email !== null && approval.requester.email.toLowerCase() === actor.email.toLowerCase();
}

export function isApprover(approval: ApprovalRecord, actor: Actor): boolean {
  return actor.groups.some((g) => approval.approvers.includes(g));
}

/** Who may see an approval: its requester and those who may decide it. */
export function canSee(approval: ApprovalRecord, actor: Actor): boolean {
  return isRequester(approval, actor) || isApprover(approval, actor);
}

/** Why `actor` may not vote on `approval` now, or null when they may. */
export function voteRefusal(approval: ApprovalRecord, actor: Actor, now: number): VoteRefusal | null {
  if (isRequester(approval, actor)) return { code: 'AIGOV_E_APPROVAL_SELF' };
  if (!isApprover(approval, actor)) return { code: 'AIGOV_E_APPROVAL_FORBIDDEN' };
  const state = effectiveState(approval, now);
  if (state !== 'pending') return { code: 'AIGOV_E_APPROVAL_CLOSED', state };
  if (approval.votes.some((v) => v.by.sub === actor.subject && v.decision === 'approve')) {
    return { code: 'AIGOV_E_APPROVAL_VOTED', remaining: approval.required - approvalsCount(approval) };
  }
  return null;
}

export type VoteResult = { readonly ok: true; readonly approval: ApprovalRecord } | { readonly ok: false; readonly refusal: VoteRefusal };

/** Adds a vote: one denial denies; `required` distinct approvals approve. */
export function castVote(approval: ApprovalRecord, actor: Actor, decision: 'approve' | 'deny', reason: string | null, now: number): VoteResult {
  const refusal = voteRefusal(approval, actor, now);
  if (refusal) return { ok: false, refusal };
  const vote: ApprovalVoteRecord = { by: { sub: actor.subject, email: actor.email, name: null }, decision, reason, at: now };
  const votes = [...approval.votes, vote];
  const next = { ...approval, votes };
  if (decision === 'deny') return { ok: true, approval: { ...next, state: 'denied', decidedAt: now } };
  if (approvalsCount(next) >= approval.required) return { ok: true, approval: { ...next, state: 'approved', decidedAt: now } };
  return { ok: true, approval: next };
}

export function approvalsCount(approval: ApprovalRecord): number {
  return new Set(approval.votes.filter((v) => v.decision === 'approve').map((v) => v.by.sub)).size;
}

/** The state as of `now`: a pending approval past its expiry is expired. */
export function effectiveState(approval: ApprovalRecord, now: number): ApprovalState {
  return approval.state === 'pending' && now >= approval.expiresAt ? 'expired' : approval.state;
}

export function expire(approval: ApprovalRecord): ApprovalRecord {
  return approval.state === 'pending' ? { ...approval, state: 'expired', decidedAt: approval.expiresAt } : approval;
}

/** Whether a retry of the same request by its requester may go through on this approval. */
export function isReusable(approval: ApprovalRecord, now: number): boolean {
  if (approval.state !== 'approved' || approval.decidedAt === null) return false;
  if (now > approval.decidedAt + approval.retryWindowMs) return false;
  return approval.reuse === 'window' || approval.uses === 0;
}

/** The last vote that decided it (the denial, or the approval that completed the count). */
export function decidingVote(approval: ApprovalRecord): ApprovalVoteRecord | null {
  if (approval.state === 'denied') return approval.votes.findLast((v) => v.decision === 'deny') ?? null;
  if (approval.state === 'approved') return approval.votes.findLast((v) => v.decision === 'approve') ?? null;
  return null;
}

export function describePerson(person: ApprovalPerson): string {
  return person.email ?? person.name ?? person.sub;
}

/** Who approved it, for the record: the distinct approvers, or "an approver". */
export function approverNames(approval: ApprovalRecord): string {
  const names = [...new Set(approval.votes.filter((v) => v.decision === 'approve').map((v) => describePerson(v.by)))];
  return names.length > 0 ? names.join(', ') : 'an approver';
}
