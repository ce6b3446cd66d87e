/**
 * Where approvals live, so a held request's approval survives a gateway restart (the retry then
 * goes through without a second approval), every decision stays on record, and — with several
 * gateway processes on one database — a decision taken through any of them reaches the one
 * holding the request.
 *
 * Writes are read-modify-write in one transaction ({@link ApprovalStore.mutate}): the store reads
 * the current record under the database's write lock, a pure function decides, the store writes
 * what it returned. Two votes, or a vote and an expiry, taken on two processes at once therefore
 * never overwrite each other. Every method rejects when the store cannot answer; callers fail
 * closed (a request whose approval cannot be recorded is not held, it is refused).
 *
 * The change feed: each write has a sequence number (the seq of its audit-chain entry) that grows
 * in commit order, whatever process commits; {@link ApprovalStore.changesAfter} reads the
 * approvals changed after one, each once at its latest change. The approvals API's event ids are
 * these numbers, so a client that reconnects — to any process — resumes where it left off.
 *
 * The webhook outbox lives beside the approvals ({@link ApprovalStore.outbox}): a mutation may
 * carry the notices announcing its write, stored in the same transaction, so a change that
 * commits has its notices stored, whatever happens to the process right after.
 */
import type { ApprovalRecord, ApprovalState } from '../core/approvals/approval.ts';
import type { OutboxBatch, WebhookOutboxStore } from './webhook-outbox.ts';

export interface ApprovalQuery {
  readonly states?: readonly ApprovalState[];
  /** Only approvals created at or after this (epoch ms). */
  readonly since?: number;
  readonly limit: number;
}

/** The approval a mutation reads: by id, or the newest of this requester for this request content. */
export type ApprovalKey = { readonly id: string } | { readonly requesterSub: string; readonly contentHash: string };

/**
 * What a mutation decided: `write` is stored (an update when it has the id of the record read,
 * else an insert); `result` is handed back to the caller; `outbox`, the webhook deliveries
 * announcing the write, are stored with it (as many as the batch's cap allows; ignored without
 * a write).
 */
export interface ApprovalMutation<T> {
  readonly result: T;
  readonly write?: ApprovalRecord;
  readonly outbox?: OutboxBatch;
}

export interface ApprovalMutated<T> {
  readonly result: T;
  /** The change's sequence number; null when nothing was written. */
  readonly seq: number | null;
  /** How many of `outbox.rows` were stored (the others were beyond the cap); 0 without any. */
  readonly outboxKept: number;
}

/** An approval as of its latest change after the position asked for. */
export interface ApprovalChangeRow {
  readonly seq: number;
  readonly approval: ApprovalRecord;
}

export interface ApprovalStore {
  /**
   * Reads the approval `key` names (null: none), calls `change` with it — synchronously, it must
   * not throw for expected outcomes — and writes what it returns, all in one transaction that no
   * other writer of the database (any process) interleaves with.
   */
  mutate<T>(key: ApprovalKey, change: (current: ApprovalRecord | null) => ApprovalMutation<T>): Promise<ApprovalMutated<T>>;
  get(id: string): Promise<ApprovalRecord | null>;
  /** Newest first. */
  list(query: ApprovalQuery): Promise<ApprovalRecord[]>;
  /** Approvals changed after `seq`, in the order of their latest change, at most `limit`. */
  changesAfter(seq: number, limit: number): Promise<ApprovalChangeRow[]>;
  /** A position at or after the latest change (0: none yet): {@link changesAfter} from it returns only later changes. */
  lastChangeSeq(): Promise<number>;
  /**
   * Calls `onChange` soon after any process commits a change, and after a lost notification
   * channel is back (a change may have been missed); null when the store cannot tell (poll then).
   * Returns the function that stops it.
   */
  readonly watchChanges: ((onChange: () => void) => () => void) | null;
  /** The webhook outbox in the same database (its delivery side: claims, settles, sweeps). */
  readonly outbox: WebhookOutboxStore;
  close(): Promise<void>;
}
