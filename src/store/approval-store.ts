/**
 * Where approvals live, so a held request's approval survives a gateway restart (the retry then
 * goes through without a second approval) and every decision stays on record.
 *
 * Synchronous on purpose: approvals are rare, and a read-modify-write done in one event-loop
 * turn cannot interleave with another vote. Every method throws when the store cannot answer;
 * callers fail closed (a request whose approval cannot be recorded is not held, it is refused).
 */
import type { ApprovalRecord, ApprovalState } from '../core/approvals/approval.ts';

export interface ApprovalQuery {
  readonly states?: readonly ApprovalState[];
  /** Only approvals created at or after this (epoch ms). */
  readonly since?: number;
  readonly limit: number;
}

export interface ApprovalStore {
  insert(approval: ApprovalRecord): void;
  /** Replaces the record with the same id. */
  update(approval: ApprovalRecord): void;
  get(id: string): ApprovalRecord | null;
  /** The newest approval of this requester for this request content, whatever its state. */
  findLatest(requesterSub: string, contentHash: string): ApprovalRecord | null;
  /** Newest first. */
  list(query: ApprovalQuery): ApprovalRecord[];
  close(): void;
}
