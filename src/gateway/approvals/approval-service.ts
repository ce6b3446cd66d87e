/**
 * The approvals hold: a request whose policy decision is `require_approval` opens an approval
 * (or joins the one already open for the same request from the same user) and waits for the
 * decision; approvers vote through the API; expiry denies. The store is the source of truth
 * (an approval survives a restart and still counts for the retry; with PostgreSQL every replica
 * shares it); this class adds the waiters, the expiry timers and the change feeds.
 *
 * Every write is a read-modify-write the store runs atomically (ApprovalStore.mutate): votes,
 * uses and expiries taken on several processes at once never overwrite one another.
 *
 * Webhook notices are written with the change they announce, in its transaction
 * ({@link ApprovalServiceOptions.announcer}): a change that commits has its notices stored, and
 * only the process that made the change writes them.
 *
 * Two feeds of changes:
 * - {@link subscribe}: the changes THIS process made, with their kind;
 * - {@link watch}: every change from every process, in commit order, numbered (the API's event
 *   stream and its `Last-Event-ID`). The follower reads the store's changes after the last one it
 *   saw whenever the store signals one (PostgreSQL NOTIFY), after each local write, and — the
 *   fallback — every `pollMs` while anything waits or watches. The same reads release the requests
 *   held here when another process decides them.
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
import type { ApprovalChangeRow, ApprovalMutated, ApprovalStore } from '../../store/approval-store.ts';
import type { OutboxBatch } from '../../store/webhook-outbox.ts';

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

/** A change from any process: the approval as of its change number `seq`. */
export type ApprovalFeedEntry = ApprovalChangeRow;

/** A watch of the feed; entries are held back until {@link start} (the caller first sends what it must send before them). */
export interface ApprovalWatch {
  /** The changes after the position asked for (null: none was asked for, or it is too far back — send a snapshot then). */
  readonly replay: readonly ApprovalFeedEntry[] | null;
  /** The feed position the replay (or, without one, a snapshot read from now on) covers. */
  readonly position: number;
  /** Delivers the changes held back since the watch began, then each as it comes. */
  start(): void;
  stop(): void;
}

/** Sessions remembered per approval: retries of one request are few; a flood of them keeps the newest. */
const MAX_JOINED_SESSIONS = 16;
/** Changes read per query by the follower. */
const FEED_PAGE = 500;
/** The most changes a reconnecting watcher is replayed; further back it gets a fresh snapshot. */
export const MAX_REPLAY = 1000;

export type DecideResult = { readonly ok: true; readonly approval: ApprovalRecord } | { readonly ok: false; readonly refusal: VoteRefusal | { readonly code: 'AIGOV_E_APPROVAL_NOT_FOUND' } };

/**
 * Turns a change into the webhook deliveries announcing it (the notifier's announcer): they are
 * stored in the change's own transaction, so a decision never commits without its notices.
 */
export interface ApprovalAnnouncer {
  /** The rows for a change, or null. Synchronous (it runs inside the store's transaction); if it throws, the change goes ahead without notices (logged). */
  rows(change: ApprovalChange): OutboxBatch | null;
  /** After the commit: `kept` of the batch's rows were stored (the others were beyond its cap). */
  written(batch: OutboxBatch, kept: number): void;
}

export interface ApprovalServiceOptions {
  readonly store: ApprovalStore;
  readonly logger: Logger;
  /** Webhook notices, written with each change (default: none). */
  readonly announcer?: ApprovalAnnouncer;
  readonly now?: () => number;
  /**
   * How often the feed is re-read while requests are held or the feed is watched (default 2 s):
   * the way other processes' changes arrive when the store cannot signal them (SQLite), or while
   * its notifications are down (PostgreSQL).
   */
  readonly pollMs?: number;
}

interface Waiter {
  /** The approval as the held request last saw it. */
  readonly approval: ApprovalRecord;
  resolve(outcome: WaitOutcome): void;
}

interface Watcher {
  cursor: number;
  /** Entries held back until the watch starts; null once started. */
  buffer: ApprovalFeedEntry[] | null;
  readonly listener: (entry: ApprovalFeedEntry) => void;
}

export class ApprovalService {
  readonly #store: ApprovalStore;
  readonly #logger: Logger;
  readonly #announcer: ApprovalAnnouncer | null;
  readonly #now: () => number;
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Expiry timers of open approvals, with the record they were set for. */
  readonly #timers = new Map<string, { readonly timer: NodeJS.Timeout; readonly approval: ApprovalRecord }>();
  readonly #listeners = new Set<(change: ApprovalChange) => void>();
  readonly #watchers = new Set<Watcher>();
  readonly #pollMs: number;
  #poll: NodeJS.Timeout | null = null;
  #closed = false;
  /** The last change the follower has dispatched. */
  #feedSeq = 0;
  #following: Promise<void> | null = null;
  #followAgain = false;
  #unwatchStore: (() => void) | null = null;

  private constructor(options: ApprovalServiceOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#announcer = options.announcer ?? null;
    this.#now = options.now ?? Date.now;
    this.#pollMs = options.pollMs ?? 2000;
  }

  /** Starts the service on `options.store`: open approvals keep counting down, and the change feed is followed from now. */
  static async open(options: ApprovalServiceOptions): Promise<ApprovalService> {
    const service = new ApprovalService(options);
    service.#feedSeq = await service.#store.lastChangeSeq();
    // Approvals left open by an earlier run keep counting down (and expire if already due).
    for (const approval of await service.#store.list({ states: ['pending'], limit: 100_000 })) service.#schedule(approval);
    service.#unwatchStore = service.#store.watchChanges?.(() => service.#follow()) ?? null;
    return service;
  }

  /** Opens (or joins, or reuses) the approval for a request. Rejects when the store fails: refuse then. */
  async hold(request: HoldRequest): Promise<HoldResult> {
    const now = this.#now();
    const contentHash = hashRequest(request);
    let notices: OutboxBatch | undefined;
    const mutated = await this.#store.mutate<HoldResult>({ requesterSub: request.requester.subject, contentHash }, (latest) => {
      if (latest) {
        if (isReusable(latest, now)) {
          const used = { ...latest, uses: latest.uses + 1 };
          return { result: { kind: 'proceed', approval: used }, write: used };
        }
        if (effectiveState(latest, now) === 'pending') {
          const joined = joinedRecord(latest, request);
          return joined === latest ? { result: { kind: 'wait', approval: latest, created: false } } : { result: { kind: 'wait', approval: joined, created: false }, write: joined };
        }
      }
      const approval = newApproval(request, contentHash, now);
      notices = this.#notices({ type: 'created', approval });
      return { result: { kind: 'wait', approval, created: true }, write: approval, outbox: notices };
    });
    this.#written(notices, mutated);
    const { result, seq } = mutated;
    if (result.kind === 'wait' && result.created) {
      this.#schedule(result.approval);
      this.#emit({ type: 'created', approval: result.approval });
    } else if (result.kind === 'wait' && seq !== null) {
      this.#emit({ type: 'joined', approval: result.approval });
    }
    if (seq !== null) this.#follow();
    return result;
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
      void this.#check(id);
    });
  }

  /** Settles the waiters of `id` if its stored approval is no longer pending. */
  async #check(id: string): Promise<void> {
    let current: ApprovalRecord | null;
    try {
      current = await this.#store.get(id);
    } catch (error) {
      this.#logger.warn({ approvalId: id, err: errorText(error) }, 'could not re-read a held approval; the hold goes on until its expiry');
      return;
    }
    if (!current || effectiveState(current, this.#now()) === 'pending') return;
    if (current.state !== 'pending') this.#clearTimer(id);
    await this.#settleWaiters(current.state === 'pending' ? expire(current) : current);
  }

  /** Polls the feed while requests are held here or the feed is watched (the fallback when no notification comes). */
  #startPolling(): void {
    if (this.#poll !== null || this.#closed) return;
    this.#poll = setInterval(() => {
      if (this.#waiters.size === 0 && this.#watchers.size === 0) {
        if (this.#poll !== null) clearInterval(this.#poll);
        this.#poll = null;
        return;
      }
      this.#follow();
    }, this.#pollMs);
    this.#poll.unref();
  }

  /** Reads the changes after the last one seen (again, if a read is running: a change may have come after its query). */
  #follow(): void {
    this.#followAgain = true;
    if (this.#following !== null || this.#closed) return;
    this.#following = this.#runFollower();
  }

  async #runFollower(): Promise<void> {
    try {
      while (this.#followAgain && !this.#closed) {
        this.#followAgain = false;
        for (;;) {
          const rows = await this.#store.changesAfter(this.#feedSeq, FEED_PAGE);
          for (const row of rows) this.#dispatch(row);
          if (rows.length < FEED_PAGE || this.#closed) break;
        }
      }
    } catch (error) {
      // The next notification or poll tries again from the same position.
      if (!this.#closed) this.#logger.warn({ err: errorText(error) }, 'could not read the approvals change feed; retrying on the next change or poll');
    } finally {
      this.#following = null;
    }
  }

  /** One change from the feed (any process's): timers, held requests, watchers. */
  #dispatch(row: ApprovalFeedEntry): void {
    if (row.seq <= this.#feedSeq) return;
    this.#feedSeq = row.seq;
    const approval = row.approval;
    if (approval.state === 'pending') {
      // Opened by another process: this one expires it too if that one is gone by then.
      if (!this.#timers.has(approval.id)) this.#schedule(approval);
    } else {
      this.#clearTimer(approval.id);
      if (this.#waiters.has(approval.id)) void this.#settleWaiters(approval);
    }
    for (const watcher of this.#watchers) deliver(watcher, row, this.#logger);
  }

  /**
   * Follows the feed: from `after` (a change number the watcher saw, e.g. SSE `Last-Event-ID`)
   * with the missed changes as `replay`, or from now (null) — then the caller sends a snapshot.
   */
  async watch(after: number | null, listener: (entry: ApprovalFeedEntry) => void): Promise<ApprovalWatch> {
    if (this.#closed) throw new Error('the approvals service is closed');
    const watcher: Watcher = { cursor: this.#feedSeq, buffer: [], listener };
    this.#watchers.add(watcher);
    this.#startPolling();
    const stop = (): void => {
      this.#watchers.delete(watcher);
    };
    let replay: ApprovalFeedEntry[] | null = null;
    if (after !== null) {
      try {
        const rows = await this.#store.changesAfter(after, MAX_REPLAY + 1);
        // A position from the future is not one this database gave out (another database, or made up): a snapshot then.
        const known = rows.length > 0 || after <= (await this.#store.lastChangeSeq());
        if (known && rows.length <= MAX_REPLAY) {
          replay = rows;
          // What the replay holds is not delivered again; what came later is.
          watcher.cursor = Math.max(after, rows.at(-1)?.seq ?? after);
        }
      } catch (error) {
        stop();
        throw error;
      }
    }
    return {
      replay,
      position: watcher.cursor,
      start: () => {
        const held = watcher.buffer ?? [];
        watcher.buffer = null;
        for (const entry of held) deliver(watcher, entry, this.#logger);
      },
      stop,
    };
  }

  /**
   * Gives back a use taken by a held request whose client left before any of the answer reached
   * it (it may have been approved a moment before the disconnect was seen): the retry then
   * still goes through. Best effort: a store failure only logs.
   */
  async release(id: string): Promise<void> {
    try {
      const { seq } = await this.#store.mutate({ id }, (approval) => (approval && approval.uses > 0 ? { result: null, write: { ...approval, uses: approval.uses - 1 } } : { result: null }));
      if (seq !== null) this.#follow();
    } catch (error) {
      this.#logger.error({ approvalId: id, err: errorText(error) }, 'could not give back an approval use');
    }
  }

  async decide(id: string, actor: Actor, decision: 'approve' | 'deny', reason: string | null): Promise<DecideResult> {
    const now = this.#now();
    let notices: OutboxBatch | undefined;
    const mutated = await this.#store.mutate<DecideResult>({ id }, (approval) => {
      if (!approval || !canSee(approval, actor)) return { result: { ok: false, refusal: { code: 'AIGOV_E_APPROVAL_NOT_FOUND' } } };
      const vote = castVote(approval, actor, decision, reason, now);
      if (!vote.ok) return { result: vote };
      notices = this.#notices({ type: vote.approval.state === 'pending' ? 'voted' : 'decided', approval: vote.approval });
      return { result: vote, write: vote.approval, outbox: notices };
    });
    this.#written(notices, mutated);
    const { result } = mutated;
    if (!result.ok) return result;
    const next = result.approval;
    const decided = next.state !== 'pending';
    this.#logger.info({ approvalId: id, ruleId: next.ruleId, decision, by: actor.subject, state: next.state }, 'approval vote');
    if (decided) this.#clearTimer(id);
    this.#emit({ type: decided ? 'decided' : 'voted', approval: next });
    if (decided) void this.#settleWaiters(next);
    this.#follow();
    return result;
  }

  async get(id: string, actor: Actor): Promise<ApprovalRecord | null> {
    const approval = await this.#store.get(id);
    return approval && canSee(approval, actor) ? this.#current(approval) : null;
  }

  async list(actor: Actor, options: { scope: ApprovalScope; states: readonly ApprovalState[] | null; limit: number }): Promise<ApprovalRecord[]> {
    // Expired-but-not-yet-marked rows are still 'pending' in the store: ask for them and fix up.
    const states = options.states === null ? undefined : options.states.includes('expired') ? [...options.states, 'pending' as const] : options.states;
    const out: ApprovalRecord[] = [];
    for (const row of await this.#store.list({ states, limit: Math.min(options.limit * 4, 10_000) })) {
      const approval = this.#current(row);
      if (options.states !== null && !options.states.includes(approval.state)) continue;
      if (!inScope(approval, actor, options.scope)) continue;
      out.push(approval);
      if (out.length >= options.limit) break;
    }
    return out;
  }

  /** The changes this process makes (not those of other processes: see {@link watch}). */
  subscribe(listener: (change: ApprovalChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops the timers and the feed; requests still held answer "interrupted" (their approvals stay open). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatchStore?.();
    this.#unwatchStore = null;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#poll = null;
    this.#timers.clear();
    for (const set of this.#waiters.values()) {
      for (const waiter of [...set]) waiter.resolve({ kind: 'interrupted', approval: waiter.approval });
    }
    this.#waiters.clear();
    this.#listeners.clear();
    this.#watchers.clear();
  }

  #current(approval: ApprovalRecord): ApprovalRecord {
    return effectiveState(approval, this.#now()) === 'expired' && approval.state === 'pending' ? expire(approval) : approval;
  }

  #schedule(approval: ApprovalRecord): void {
    if (this.#closed) return;
    const delay = Math.max(0, approval.expiresAt - this.#now());
    // setTimeout's ceiling is ~24.8 days; approvals are capped at 24 h by the schema.
    const timer = setTimeout(() => void this.#expire(approval.id), delay);
    timer.unref();
    this.#timers.set(approval.id, { timer, approval });
  }

  #clearTimer(id: string): void {
    const entry = this.#timers.get(id);
    if (entry) clearTimeout(entry.timer);
    this.#timers.delete(id);
  }

  async #expire(id: string): Promise<void> {
    const scheduled = this.#timers.get(id)?.approval;
    this.#timers.delete(id);
    let approval: ApprovalRecord | null;
    let expired: boolean;
    try {
      // Several processes may time it out together: the first one writes the expiry, the others find it done.
      let notices: OutboxBatch | undefined;
      const mutated = await this.#store.mutate<ApprovalRecord | null>({ id }, (stored) => {
        if (!stored || stored.state !== 'pending') return { result: stored };
        const next = expire(stored);
        notices = this.#notices({ type: 'expired', approval: next });
        return { result: next, write: next, outbox: notices };
      });
      this.#written(notices, mutated);
      approval = mutated.result;
      expired = mutated.seq !== null;
    } catch (error) {
      // The waiters still learn of the expiry: expiry is a denial, it never lets anything through.
      this.#logger.error({ approvalId: id, err: errorText(error) }, 'could not record an approval expiry');
      approval = scheduled ? expire(scheduled) : null;
      expired = approval !== null;
    }
    if (!approval) return;
    if (expired) {
      this.#emit({ type: 'expired', approval });
      this.#follow();
    }
    if (approval.state !== 'pending') await this.#settleWaiters(approval);
  }

  async #settleWaiters(approval: ApprovalRecord): Promise<void> {
    const set = this.#waiters.get(approval.id);
    if (!set || set.size === 0) return;
    this.#waiters.delete(approval.id);
    const state = effectiveState(approval, this.#now());
    let used = false;
    for (const waiter of set) {
      if (state === 'approved') {
        // Each held request consumes one use; with `reuse: once` a second one waiting on the same
        // approval (a retry racing its original, here or on another process) is told it is spent.
        let current = approval;
        try {
          const taken = await this.#store.mutate<{ readonly approval: ApprovalRecord; readonly granted: boolean }>({ id: approval.id }, (stored) => {
            if (stored === null) return { result: { approval, granted: false } };
            if (stored.reuse === 'window' || stored.uses === 0) {
              const next = { ...stored, uses: stored.uses + 1 };
              return { result: { approval: next, granted: true }, write: next };
            }
            return { result: { approval: stored, granted: false } };
          });
          current = taken.result.approval;
          if (taken.result.granted) {
            used = true;
            waiter.resolve({ kind: 'approved', approval: current });
            continue;
          }
        } catch (error) {
          // Fail closed: a use that cannot be recorded is not granted.
          this.#logger.error({ approvalId: approval.id, err: errorText(error) }, 'could not record an approval use');
        }
        waiter.resolve({ kind: 'interrupted', approval: current });
      } else if (state === 'denied' || state === 'expired') {
        waiter.resolve({ kind: state, approval: state === 'expired' ? expire(approval) : approval });
      }
    }
    if (used) this.#follow();
  }

  /** The webhook rows announcing a change (inside the store's transaction): never throws, a failure costs only the notices. */
  #notices(change: ApprovalChange): OutboxBatch | undefined {
    if (this.#announcer === null) return undefined;
    try {
      return this.#announcer.rows(change) ?? undefined;
    } catch (error) {
      this.#logger.warn({ approvalId: change.approval.id, type: change.type, err: errorText(error) }, 'approval webhook notices could not be built; the change goes ahead without them');
      return undefined;
    }
  }

  #written(notices: OutboxBatch | undefined, mutated: ApprovalMutated<unknown>): void {
    if (notices === undefined || mutated.seq === null || this.#announcer === null) return;
    try {
      this.#announcer.written(notices, mutated.outboxKept);
    } catch (error) {
      this.#logger.warn({ err: errorText(error) }, 'approval webhook announcer failed');
    }
  }

  #emit(change: ApprovalChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#logger.warn({ err: errorText(error) }, 'approval listener failed');
      }
    }
  }
}

/** Hands an entry to a watcher in order, each change once (held back until the watch starts). */
function deliver(watcher: Watcher, entry: ApprovalFeedEntry, logger: Logger): void {
  if (watcher.buffer !== null) {
    watcher.buffer.push(entry);
    return;
  }
  if (entry.seq <= watcher.cursor) return;
  watcher.cursor = entry.seq;
  try {
    watcher.listener(entry);
  } catch (error) {
    logger.warn({ err: errorText(error) }, 'approval watcher failed');
  }
}

/**
 * A request joining a pending approval: its session follows the approval too, and the rule's
 * approvers are those of the policy in force now (a policy change reaches a pending approval
 * when its request comes again). Votes already cast stay. The same record when nothing changes.
 */
function joinedRecord(pending: ApprovalRecord, request: HoldRequest): ApprovalRecord {
  const sessions = pending.joinedSessions ?? [];
  const newSession = request.sessionId !== pending.sessionId && !sessions.includes(request.sessionId);
  const sameApprovers = pending.required === request.spec.required && pending.approvers.join('\n') === request.spec.approvers.join('\n');
  if (!newSession && sameApprovers) return pending;
  return {
    ...pending,
    approvers: [...request.spec.approvers],
    required: request.spec.required,
    joinedSessions: newSession ? [...sessions, request.sessionId].slice(-MAX_JOINED_SESSIONS) : sessions,
  };
}

function newApproval(request: HoldRequest, contentHash: string, now: number): ApprovalRecord {
  return {
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
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
