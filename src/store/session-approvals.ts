/**
 * The approvals of a session as the session queries return them (both drivers' reads).
 */
import type { ApprovalRecord } from '../core/approvals/approval.ts';

/** Oldest first, each id once (the last record read of an id wins). */
export function sortApprovals(records: Iterable<ApprovalRecord>): ApprovalRecord[] {
  const byId = new Map<string, ApprovalRecord>();
  for (const approval of records) byId.set(approval.id, approval);
  return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
}
