/**
 * The webhook outbox: approval notices waiting to be posted, one row per receiver, kept where the
 * approvals are (the SQLite file, or the PostgreSQL database every replica shares) so that a
 * notice outlives a restart and, with several replicas, is posted by one of them.
 *
 * - A row is written in the same transaction as the approval change it announces
 *   ({@link ApprovalMutation.outbox}), or on its own ({@link WebhookOutboxStore.enqueue}).
 * - It names its receiver by {@link receiverKey} — the SHA-256 of the URL — and the URL's host
 *   (for log lines), never by the URL or the secret: those stay in the configuration, and the
 *   worker looks the receiver up there when it posts (a Slack URL's path is its credential).
 * - The body is stored as it will be posted, so every attempt sends the same bytes and the same
 *   delivery id (`id`, the row's key); each attempt is signed when it is sent.
 * - A worker *claims* due rows ({@link WebhookOutboxStore.claim}): the claim counts the attempt,
 *   marks the row with a fresh claim token and moves its due time to the end of a lease. The
 *   worker then posts and settles the row with that token (delivered, retry later, failed). A
 *   worker that dies mid-attempt never settles: the row falls due again when its lease ends and
 *   another worker posts it (at least once across crashes; exactly once otherwise, since a row
 *   is claimed by one worker at a time: PostgreSQL `FOR UPDATE SKIP LOCKED`, an atomic UPDATE in
 *   SQLite). A settle whose token no longer matches (the lease ran out and someone else took the
 *   row) changes nothing.
 * - Bounded: a batch is stored only up to `maxPending` pending rows (the rest are dropped and the
 *   caller is told how many were kept); delivered and failed rows are purged after a retention.
 */
import { createHash } from 'node:crypto';

export type OutboxState = 'pending' | 'delivered' | 'failed';

/** One delivery to store. */
export interface OutboxRow {
  /** The delivery id (`whd_…`), the body's `id`: receivers dedupe on it. */
  readonly id: string;
  readonly approvalId: string;
  /** The approval's rule: its own receivers (approval.notify) are looked up under it. */
  readonly ruleId: string;
  /** approval.created | approval.decided | approval.expired */
  readonly type: string;
  /** {@link receiverKey} of the receiver's URL. */
  readonly receiver: string;
  /** The URL's host (host:port), for log lines. */
  readonly host: string;
  /** The JSON posted, byte for byte, on every attempt. */
  readonly body: string;
  /** Epoch ms: when the notice was raised. */
  readonly createdAt: number;
}

/** Rows to store together, up to `maxPending` pending rows in the outbox (the first rows are kept). */
export interface OutboxBatch {
  readonly rows: readonly OutboxRow[];
  readonly maxPending: number;
}

/** A row claimed for one attempt. */
export interface ClaimedDelivery extends OutboxRow {
  /** The token that settles this attempt. */
  readonly claim: string;
  /** This attempt's number, from 1 (attempts cut by a crash count). */
  readonly attempt: number;
}

/** A claimed row as either database returns it (snake_case columns), with the claim that took it. */
export function claimedDelivery(row: Readonly<Record<string, unknown>>, claim: string): ClaimedDelivery {
  return {
    id: String(row['id']),
    approvalId: String(row['approval_id']),
    ruleId: String(row['rule_id']),
    type: String(row['type']),
    receiver: String(row['receiver']),
    host: String(row['host']),
    body: String(row['body']),
    createdAt: Number(row['created_at']),
    claim,
    attempt: Number(row['attempts']),
  };
}

export interface ClaimRequest {
  /** Rows to claim at most. */
  readonly limit: number;
  /** How long the claim holds the row; past it, the row is due again. */
  readonly leaseMs: number;
  /** Only rows for these receivers (the ones this process can post to). */
  readonly receivers: readonly string[];
  /** Rows that already had more attempts than this are not claimed (the sweep fails them). */
  readonly maxAttempts: number;
}

export type OutboxSettle =
  | { readonly kind: 'delivered'; readonly status: number }
  /** Due again in `delayMs`; the attempt counts. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly status: number | null; readonly error: string }
  | { readonly kind: 'failed'; readonly status: number | null; readonly error: string }
  /** Claimed but never posted (shutting down): due again at once, the attempt not counted. */
  | { readonly kind: 'release' };

export interface OutboxStatus {
  /** Pending rows, whatever their receiver (claimed ones included): the outbox depth. */
  readonly pending: number;
  /** Milliseconds until the next row for these receivers is due (≤ 0: now), a lease's end included; null: none. */
  readonly nextDueInMs: number | null;
}

export interface SweepRequest {
  /** The receivers configured now: pending rows of others (not in flight), `unknownGraceMs` old or more, are dropped. */
  readonly receivers: readonly string[];
  readonly unknownGraceMs: number;
  /** Pending rows with more attempts than this whose lease ended are failed (a worker died during the extra attempt). */
  readonly maxAttempts: number;
  /** Delivered and failed rows settled longer ago than this are deleted. */
  readonly retentionMs: number;
}

export interface SweepResult {
  /** Pending rows dropped because no receiver configured now matches them, by host. */
  readonly unknown: ReadonlyMap<string, number>;
  readonly stranded: number;
  readonly purged: number;
}

export interface WebhookOutboxStore {
  /** True when rows outlive the process (a database); false for the in-memory outbox. */
  readonly durable: boolean;
  /** Stores the batch's rows (as many as the cap allows, first ones first); resolves to how many were kept. */
  enqueue(batch: OutboxBatch): Promise<number>;
  claim(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  /** Records an attempt's outcome; false when the claim is no longer this one's (lease lost: nothing changed). */
  settle(delivery: ClaimedDelivery, outcome: OutboxSettle): Promise<boolean>;
  status(receivers: readonly string[], maxAttempts: number): Promise<OutboxStatus>;
  sweep(request: SweepRequest): Promise<SweepResult>;
  /**
   * Calls `onChange` soon after another process stores rows (and after a lost notification
   * channel is back); null when the store cannot tell (the worker polls). Returns the stop function.
   */
  readonly watch: ((onChange: () => void) => () => void) | null;
}

/** A receiver's identity in the outbox: the hex SHA-256 of its URL (the URL itself may hold a credential). */
export function receiverKey(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

/** Purged per statement, so a large purge never holds the database long. */
export const OUTBOX_PURGE_CHUNK = 1000;

/** The error text stored on a row: one line, bounded (reasons are made by the worker, never by the receiver). */
export function outboxErrorText(error: string): string {
  const one = error.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? one.slice(0, 200) : one;
}
