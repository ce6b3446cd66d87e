/**
 * The approvals hold: a request whose policy decision is `require_approval` opens an approval
 * (or joins the one already open for the same request from the same user) and waits for the
 * decision; approvers vote through the API; expiry denies. The store is the source of truth
 * (an approval survives a restart and still counts for the retry); this class adds the waiters,
 * the expiry timers and the change feed for the API's event stream.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  canSee,
  castVote,
  effectiveState,
  expire,
  isApprover,
  isReusable,
  voteRefusal,
  type Actor,
  type ApprovalRecord,
  type ApprovalState,
  type VoteRefusal,
} from '../../core/approvals/approval.ts';
import type { ApprovalSpec } from '../../core/policy/types.ts';
import type { ApprovalScope, ApprovalView } from '../../protocol/approvals.ts';
import type { ApprovalStore } from '../../store/approval-store.ts';

export interface HoldRequest {
  readonly requester: Actor;
  readonly ruleId: string;
  readonly ruleReason: string;
  readonly spec: ApprovalSpec;
  readonly provider: string;
  readonly model: string | null;
  readonly endpoint: string;
  readonly stream: boolean;
  readonly preview: string;
  readonly sessionId: string;
  readonly callId: string;
  /** The request body as the client sent it (hashed, never stored). */
  readonly body: string;
}

export type HoldResult =
  /** An earlier approval of this very request lets it through now (the retry after a disconnect). */
  | { readonly kind: 'proceed'; readonly approval: ApprovalRecord }
  | { readonly kind: 'wait'; readonly approval: ApprovalRecord; readonly created: boolean };

export type WaitOutcome =
  | { readonly kind: 'approved'; readonly approval: ApprovalRecord }
  | { readonly kind: 'denied' | 'expired'; readonly approval: ApprovalRecord }
  /** The gateway is shutting down; the approval stays open for the retry. */
  | { readonly kind: 'interrupted'; readonly approval: ApprovalRecord };

/** `joined`: an identical request from another session (or under a changed policy) waits on it too. */
export type ApprovalChange = { readonly type: 'created' | 'joined' | 'voted' | 'decided' | 'expired'; readonly approval: ApprovalRecord };

/** Sessions remembered per approval: retries of one request are few; a flood of them keeps the newest. */
const MAX_JOINED_SESSIONS = 16;

export type DecideResult = { readonly ok: true; readonly approval: ApprovalRecord } | { readonly ok: false; readonly refusal: VoteRefusal | { readonly code: 'AIGOV_E_APPROVAL_NOT_FOUND' } };

export interface ApprovalServiceOptions {
  readonly store: ApprovalStore;
  readonly logger: Logger;
  readonly now?: () => number;
  /**
   * How often held requests re-read their approval from the store (default 2 s), so a decision
   * taken by another gateway process on the same database still reaches them.
   */
  readonly pollMs?: number;
}

interface Waiter {
  /** The approval as the held request last saw it. */
  readonly approval: ApprovalRecord;
  resolve(outcome: WaitOutcome): void;
}

export class ApprovalService {
  readonly #store: ApprovalStore;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Expiry timers of open approvals, with the record they were set for. */
  readonly #timers = new Map<string, { readonly timer: NodeJS.Timeout; readonly approval: ApprovalRecord }>();
  readonly #listeners = new Set<(change: ApprovalChange) => void>();
  readonly #pollMs: number;
  #poll: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: ApprovalServiceOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#pollMs = options.pollMs ?? 2000;
    // Approvals left open by an earlier run keep counting down (and expire if already due).
    for (const approval of this.#store.list({ states: ['pending'], limit: 100_000 })) this.#schedule(approval);
  }

  /** Opens (or joins, or reuses) the approval for a request. Throws when the store fails: refuse then. */
  hold(request: HoldRequest): HoldResult {
    const now = this.#now();
    const contentHash = hashRequest(request);
    const latest = this.#store.findLatest(request.requester.subject, contentHash);
    if (latest) {
      if (isReusable(latest, now)) {
        const used = { ...latest, uses: latest.uses + 1 };
        this.#store.update(used);
        return { kind: 'proceed', approval: used };
      }
      if (effectiveState(latest, now) === 'pending') return { kind: 'wait', approval: this.#join(latest, request), created: false };
    }
    const approval: ApprovalRecord = {
      id: newApprovalId(),
      state: 'pending',
      requester: { sub: request.requester.subject, email: request.requester.email, name: null, groups: [...request.requester.groups] },
      ruleId: request.ruleId,
      ruleReason: request.ruleReason,
      approvers: [...request.spec.approvers],
      required: request.spec.required,
      provider: request.provider,
      model: request.model,
      endpoint: request.endpoint,
      stream: request.stream,
      preview: request.preview,
      sessionId: request.sessionId,
      callId: request.callId,
      contentHash,
      createdAt: now,
      expiresAt: now + request.spec.timeout,
      decidedAt: null,
      votes: [],
      reuse: request.spec.reuse,
      retryWindowMs: request.spec.retry_window,
      uses: 0,
    };
    this.#store.insert(approval);
    this.#schedule(approval);
    this.#emit({ type: 'created', approval });
    return { kind: 'wait', approval, created: true };
  }

  /**
   * A request joining a pending approval: its session follows the approval too, and the rule's
   * approvers are those of the policy in force now (a policy change reaches a pending approval
   * when its request comes again). Votes already cast stay.
   */
  #join(pending: ApprovalRecord, request: HoldRequest): ApprovalRecord {
    const sessions = pending.joinedSessions ?? [];
    const newSession = request.sessionId !== pending.sessionId && !sessions.includes(request.sessionId);
    const sameApprovers = pending.required === request.spec.required && pending.approvers.join('\n') === request.spec.approvers.join('\n');
    if (!newSession && sameApprovers) return pending;
    const joined: ApprovalRecord = {
      ...pending,
      approvers: [...request.spec.approvers],
      required: request.spec.required,
      joinedSessions: newSession ? [...sessions, request.sessionId].slice(-MAX_JOINED_SESSIONS) : sessions,
    };
    this.#store.update(joined);
    this.#emit({ type: 'joined', approval: joined });
    return joined;
  }

  /**
   * Waits for the approval's decision. An approval consumed here is used up (for `reuse: once`);
   * when `signal` aborts first (the client went away) nothing is consumed, so the retry still
   * goes through.
   */
  wait(approval: ApprovalRecord, signal: AbortSignal): Promise<WaitOutcome> {
    const id = approval.id;
    return new Promise((resolve) => {
      const settle = (outcome: WaitOutcome): void => {
        signal.removeEventListener('abort', onAbort);
        set.delete(waiter);
        resolve(outcome);
      };
      const waiter: Waiter = { approval, resolve: settle };
      const set = this.#waiters.get(id) ?? new Set<Waiter>();
      const onAbort = (): void => {
        set.delete(waiter);
        resolve({ kind: 'interrupted', approval });
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(id, set);
      set.add(waiter);
      this.#startPolling();
      // Decided between hold() and now (or by another process): settle at once.
      this.#check(id);
    });
  }

  /** Settles the waiters of `id` if its stored approval is no longer pending. */
  #check(id: string): void {
    let current: ApprovalRecord | null;
    try {
      current = this.#store.get(id);
    } catch (error) {
      this.#logger.warn({ approvalId: id, err: error instanceof Error ? error.message : String(error) }, 'could not re-read a held approval; the hold goes on until its expiry');
      return;
    }
    if (!current || effectiveState(current, this.#now()) === 'pending') return;
    if (current.state !== 'pending') this.#clearTimer(id);
    this.#settleWaiters(current.state === 'pending' ? expire(current) : current);
  }

  #startPolling(): void {
    if (this.#poll !== null || this.#closed) return;
    this.#poll = setInterval(() => {
      for (const id of [...this.#waiters.keys()]) this.#check(id);
      if (this.#waiters.size === 0 && this.#poll !== null) {
        clearInterval(this.#poll);
        this.#poll = null;
      }
    }, this.#pollMs);
    this.#poll.unref();
  }

  /**
   * Gives back a use taken by a held request whose client left before any of the answer reached
   * it (it may have been approved a moment before the disconnect was seen): the retry then
   * still goes through. Best effort: a store failure only logs.
   */
  release(id: string): void {
    try {
      const approval = this.#store.get(id);
      if (approval && approval.uses > 0) this.#store.update({ ...approval, uses: approval.uses - 1 });
    } catch (error) {
      this.#logger.error({ approvalId: id, err: error instanceof Error ? error.message : String(error) }, 'could not give back an approval use');
    }
  }

  decide(id: string, actor: Actor, decision: 'approve' | 'deny', reason: string | null): DecideResult {
    const approval = this.#store.get(id);
    if (!approval || !canSee(approval, actor)) return { ok: false, refusal: { code: 'AIGOV_E_APPROVAL_NOT_FOUND' } };
    const result = castVote(approval, actor, decision, reason, this.#now());
    if (!result.ok) return result;
    const next = result.approval;
    this.#store.update(next);
    const decided = next.state !== 'pending';
    this.#logger.info({ approvalId: id, ruleId: next.ruleId, decision, by: actor.subject, state: next.state }, 'approval vote');
    if (decided) this.#clearTimer(id);
    this.#emit({ type: decided ? 'decided' : 'voted', approval: next });
    if (decided) this.#settleWaiters(next);
    return { ok: true, approval: next };
  }

  get(id: string, actor: Actor): ApprovalRecord | null {
    const approval = this.#store.get(id);
    return approval && canSee(approval, actor) ? this.#current(approval) : null;
  }

  list(actor: Actor, options: { scope: ApprovalScope; states: readonly ApprovalState[] | null; limit: number }): ApprovalRecord[] {
    // Expired-but-not-yet-marked rows are still 'pending' in the store: ask for them and fix up.
    const states = options.states === null ? undefined : options.states.includes('expired') ? [...options.states, 'pending' as const] : options.states;
    const out: ApprovalRecord[] = [];
    for (const row of this.#store.list({ states, limit: Math.min(options.limit * 4, 10_000) })) {
      const approval = this.#current(row);
      if (options.states !== null && !options.states.includes(approval.state)) continue;
      if (!inScope(approval, actor, options.scope)) continue;
      out.push(approval);
      if (out.length >= options.limit) break;
    }
    return out;
  }

  subscribe(listener: (change: ApprovalChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops the timers; requests still held answer "interrupted" (their approvals stay open). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#poll = null;
    this.#timers.clear();
    for (const set of this.#waiters.values()) {
      for (const waiter of [...set]) waiter.resolve({ kind: 'interrupted', approval: waiter.approval });
    }
    this.#waiters.clear();
    this.#listeners.clear();
  }

  #current(approval: ApprovalRecord): ApprovalRecord {
    return effectiveState(approval, this.#now()) === 'expired' && approval.state === 'pending' ? expire(approval) : approval;
  }

  #schedule(approval: ApprovalRecord): void {
    if (this.#closed) return;
    const delay = Math.max(0, approval.expiresAt - this.#now());
    // setTimeout's ceiling is ~24.8 days; approvals are capped at 24 h by the schema.
    const timer = setTimeout(() => this.#expire(approval.id), delay);
    timer.unref();
    this.#timers.set(approval.id, { timer, approval });
  }

  #clearTimer(id: string): void {
    const entry = this.#timers.get(id);
    if (entry) clearTimeout(entry.timer);
    this.#timers.delete(id);
  }

  #expire(id: string): void {
    const scheduled = this.#timers.get(id)?.approval;
    this.#timers.delete(id);
    let approval: ApprovalRecord | null = null;
    try {
      const stored = this.#store.get(id);
      if (!stored || stored.state !== 'pending') return;
      approval = expire(stored);
      this.#store.update(approval);
    } catch (error) {
      // The waiters still learn of the expiry: expiry is a denial, it never lets anything through.
      this.#logger.error({ approvalId: id, err: error instanceof Error ? error.message : String(error) }, 'could not record an approval expiry');
      approval ??= scheduled ? expire(scheduled) : null;
    }
    if (!approval) return;
    this.#emit({ type: 'expired', approval });
    this.#settleWaiters(approval);
  }

  #settleWaiters(approval: ApprovalRecord): void {
    const set = this.#waiters.get(approval.id);
    if (!set || set.size === 0) return;
    this.#waiters.delete(approval.id);
    const state = effectiveState(approval, this.#now());
    for (const waiter of set) {
      if (state === 'approved') {
        // Each held request consumes one use; with `reuse: once` a second one waiting on the same
        // approval (a retry racing its original) is told the approval is spent.
        let current = approval;
        try {
          current = this.#store.get(approval.id) ?? approval;
          if (current.reuse === 'window' || current.uses === 0) {
            const used = { ...current, uses: current.uses + 1 };
            this.#store.update(used);
            waiter.resolve({ kind: 'approved', approval: used });
            continue;
          }
        } catch (error) {
          // Fail closed: a use that cannot be recorded is not granted.
          this.#logger.error({ approvalId: approval.id, err: error instanceof Error ? error.message : String(error) }, 'could not record an approval use');
        }
        waiter.resolve({ kind: 'interrupted', approval: current });
      } else if (state === 'denied' || state === 'expired') {
        waiter.resolve({ kind: state, approval: state === 'expired' ? expire(approval) : approval });
      }
    }
  }

  #emit(change: ApprovalChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'approval listener failed');
      }
    }
  }
}

export function inScope(approval: ApprovalRecord, actor: Actor, scope: ApprovalScope): boolean {
  const mine = approval.requester.sub === actor.subject;
  const decidable = isApprover(approval, actor) && !mine;
  return scope === 'mine' ? mine : scope === 'decide' ? decidable : mine || decidable;
}

export function toApprovalView(approval: ApprovalRecord, viewer: Actor, now: number): ApprovalView {
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    id: approval.id,
    state: effectiveState(approval, now),
    requester: { ...approval.requester, groups: [...approval.requester.groups] },
    rule: { id: approval.ruleId, reason: approval.ruleReason },
    approvers: { groups: [...approval.approvers], required: approval.required },
    provider: approval.provider,
    model: approval.model,
    endpoint: approval.endpoint,
    stream: approval.stream,
    preview: approval.preview,
    session_id: approval.sessionId,
    joined_session_ids: [...(approval.joinedSessions ?? [])],
    call_id: approval.callId,
    created_at: iso(approval.createdAt),
    expires_at: iso(approval.expiresAt),
    decided_at: approval.decidedAt === null ? null : iso(approval.decidedAt),
    votes: approval.votes.map((v) => ({ by: v.by, decision: v.decision, reason: v.reason, at: iso(v.at) })),
    can_decide: voteRefusal(approval, viewer, now) === null,
  };
}

function hashRequest(request: HoldRequest): string {
  return createHash('sha256').update(`${request.provider}\n${request.endpoint}\n`).update(request.body).digest('base64url');
}

function newApprovalId(): string {
  return `apr_${randomBytes(10).toString('base64url').replace(/[-_]/g, 'x')}`;
}
