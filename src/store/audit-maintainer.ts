/**
 * What the audit schedule (sqlite/audit-schedule.ts) drives: the driver's checkpoint writer and
 * retention purge (sqlite/audit-maintenance.ts, postgres/pg-audit-maintenance.ts).
 */
import type { CheckpointKind } from '../core/audit/chain.ts';

export interface CheckpointRecord {
  readonly seq: number;
  readonly hash: string;
  readonly at: number;
  readonly kind: CheckpointKind;
  readonly keyId: string | null;
}

export interface PurgeResult {
  readonly calls: number;
  readonly events: number;
  readonly accessRows: number;
  readonly sessions: number;
  readonly approvals: number;
  readonly entries: number;
  /** The anchor written (last entry removed), or null when nothing was old enough. */
  readonly anchorSeq: number | null;
}

/** Nothing purged yet. */
export const NOTHING_PURGED: PurgeResult = { calls: 0, events: 0, accessRows: 0, sessions: 0, approvals: 0, entries: 0, anchorSeq: null };

/** `total` with one chunk's counts added; a chunk that wrote an anchor (the newest) replaces it. A chunk of legacy rows has no entries. */
export function addPurgeChunk(total: PurgeResult, chunk: Omit<PurgeResult, 'entries' | 'anchorSeq'> & Partial<Pick<PurgeResult, 'entries' | 'anchorSeq'>>): PurgeResult {
  return {
    calls: total.calls + chunk.calls,
    events: total.events + chunk.events,
    accessRows: total.accessRows + chunk.accessRows,
    sessions: total.sessions + chunk.sessions,
    approvals: total.approvals + chunk.approvals,
    entries: total.entries + (chunk.entries ?? 0),
    anchorSeq: chunk.anchorSeq ?? total.anchorSeq,
  };
}

export interface AuditMaintainer {
  /** Signs the chain's head; null when there was nothing (new) to sign. */
  checkpoint(kind: 'periodic' | 'shutdown'): Promise<CheckpointRecord | null>;
  /** Deletes what is older than `cutMs` (epoch ms) with the prefix of the chain covering it. */
  purge(cutMs: number): Promise<PurgeResult>;
  close(): Promise<void>;
}
