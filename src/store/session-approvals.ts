/**
 * Where a recording store finds the approvals of a session, when they are not in its own
 * database: with the PostgreSQL driver, approvals still live in the replica's SQLite file
 * (storage.path) until they move to PostgreSQL, and the session queries (sessions list --approval,
 * sessions show) read them through this. The SQLite store joins its own table instead.
 */
import type { ApprovalRecord } from '../core/approvals/approval.ts';

export type ApprovalStateFilter = 'pending' | 'approved' | 'denied' | 'expired';

export interface SessionApprovals {
  /** Approvals of the session plus those with these ids; each once, oldest first. Throws when it cannot read. */
  ofSession(sessionId: string, ids: readonly string[]): ApprovalRecord[];
  /** Sessions having an approval in this state at `now` (a pending one past its expiry is expired). */
  sessionsWith(state: ApprovalStateFilter, now: number): string[];
  /** Releases what it holds; the store given it calls this when it closes. */
  close?(): void;
}

/** Oldest first, each id once (the last record read of an id wins). */
export function sortApprovals(records: Iterable<ApprovalRecord>): ApprovalRecord[] {
  const byId = new Map<string, ApprovalRecord>();
  for (const approval of records) byId.set(approval.id, approval);
  return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
}
