/**
 * What the SQLite store's main-thread half (sqlite-store.ts) and its three worker threads
 * (writer-worker.ts, reader-worker.ts, checkpoint-worker.ts) say to each other. Plain objects and tuples only, so
 * structured clone stays cheap; record contents travel as they are (strings are copied once).
 */
import type { AccessLogEntry, CallRequestRecord, CallResultRecord, SessionCursor, SessionFilter, StreamEventRecord, UsageQuery } from '../recording-store.ts';

export type SqliteSynchronous = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

/** Slots of the Int32Array over the SharedArrayBuffer that the store's threads share. */
export const SHARED = {
  /** Bumped by the writer each time `checkpointBytes` have been committed; the checkpointer waits on it. */
  kick: 0,
  /** Bumped by the writer on every commit. */
  commits: 1,
  /** Set to 1 by the checkpointer when the WAL stopped restarting; the writer clears it after catching up. */
  restart: 2,
  /** Set to 1 by the main thread to stop the checkpointer (and a reader still waiting for `go`). */
  stop: 3,
  /** Checkpoints completed by the checkpointer (for stats). */
  checkpoints: 4,
  /** Frames in the WAL after the last checkpoint (for stats and tests). */
  walFrames: 5,
  /** Set to 1 by the main thread once the writer has opened (and migrated) the database; the checkpointer and reader wait for it. */
  go: 6,
  length: 7,
} as const;

export interface WriterData {
  readonly location: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: SqliteSynchronous;
  readonly batchIntervalMs: number;
  readonly maxBatch: number;
  readonly checkpointBytes: number;
  /** Committed bytes after which the writer restarts the WAL itself (checkpoint-worker.ts flags it too). */
  readonly walLimitBytes: number;
  readonly shared: SharedArrayBuffer;
}

export interface CheckpointerData {
  readonly location: string;
  readonly idleMs: number;
  /** WAL size (frames × page) from which the writer is asked to catch up so the WAL restarts. */
  readonly walLimitBytes: number;
  readonly shared: SharedArrayBuffer;
}

export type QueueItem =
  | { readonly kind: 'events'; readonly callId: string; readonly events: readonly StreamEventRecord[] }
  /** `ticket`: answered in a `finished` message once the COMMIT holding the result is done (or it cannot be). */
  | { readonly kind: 'finish'; readonly ticket: number; readonly result: CallResultRecord };

export type ReadOp =
  | { readonly op: 'listSessions'; readonly limit: number; readonly subject: string | null }
  | { readonly op: 'getCall'; readonly callId: string }
  | { readonly op: 'listCalls'; readonly sessionId: string }
  | { readonly op: 'getStreamEvents'; readonly callId: string }
  | { readonly op: 'querySessions'; readonly filter: SessionFilter; readonly limit: number; readonly cursor: SessionCursor | null }
  | { readonly op: 'getSession'; readonly sessionId: string }
  | { readonly op: 'getSessionDetail'; readonly sessionId: string }
  | { readonly op: 'listSessionApprovals'; readonly sessionId: string; readonly approvalIds: readonly string[] }
  | { readonly op: 'getRawCopies'; readonly sessionId: string }
  | { readonly op: 'usageReport'; readonly query: UsageQuery }
  | { readonly op: 'chargesSince'; readonly since: number };

export type ToWriter =
  /** `record.rawCopy`, when present, is sealed bytes only (raw-copy-sealer.ts). */
  | { readonly t: 'record'; readonly id: number; readonly record: CallRequestRecord }
  | { readonly t: 'behind'; readonly items: readonly QueueItem[] }
  | { readonly t: 'flush'; readonly id: number }
  | { readonly t: 'health'; readonly id: number }
  /** The access-log row of an auditor read: committed before the reply. */
  | { readonly t: 'access'; readonly id: number; readonly entry: AccessLogEntry }
  | { readonly t: 'autocheckpoint'; readonly id: number }
  | { readonly t: 'close'; readonly id: number };

/** Cumulative counters of the writer; every message from it carries them. */
export interface WriterCounters {
  readonly writeErrors: number;
  readonly droppedRows: number;
  readonly orphanRows: number;
  /** Write-behind rows that reached an end: written, dropped or skipped as orphans. */
  readonly settledRows: number;
  /** Transactions that committed request records (group commit: one per group). */
  readonly recordCommits: number;
}

export const ACK_OK = 0;
export const ACK_CONFLICT = 1;
export const ACK_ERROR = 2;
/** [request id, outcome, reason without record contents (errors only)] */
export type RecordAck = readonly [number, typeof ACK_OK | typeof ACK_CONFLICT] | readonly [number, typeof ACK_ERROR, string];

export type FromWriter =
  /** `settled`: calls of owners that were gone, marked aborted while opening (call-owners.ts). */
  | { readonly t: 'ready'; readonly settled: number }
  | { readonly t: 'open-failed'; readonly reason: string; readonly tooNew: { readonly found: number; readonly supported: number } | null }
  | { readonly t: 'acks'; readonly acks: readonly RecordAck[]; readonly c: WriterCounters }
  | { readonly t: 'reply'; readonly id: number; readonly value: unknown; readonly error: string | null; readonly c: WriterCounters }
  | { readonly t: 'counters'; readonly c: WriterCounters }
  /**
   * Finish tickets settled by the last transaction(s): `ok` after the COMMIT that holds the call's
   * result row and every stream event of the call queued before it; `failed` with a reason
   * without record contents when the result was not written (the call stays `pending`).
   */
  | { readonly t: 'finished'; readonly ok: readonly number[]; readonly failed: readonly (readonly [number, string])[]; readonly c: WriterCounters }
  | { readonly t: 'report'; readonly message: string };

export interface ReaderData {
  readonly location: string;
  readonly busyTimeoutMs: number;
  readonly shared: SharedArrayBuffer;
}

export type ToReader = { readonly t: 'read'; readonly id: number; readonly read: ReadOp } | { readonly t: 'close' };

export type FromReader =
  | { readonly t: 'ready' }
  | { readonly t: 'open-failed'; readonly reason: string }
  | { readonly t: 'reply'; readonly id: number; readonly value: unknown; readonly error: string | null };

export type FromCheckpointer = { readonly t: 'ready' } | { readonly t: 'open-failed'; readonly reason: string };

/** A short reason without record contents: SQLite's message (names tables/columns, never values). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const message = err.message.split('\n', 1)[0] ?? '';
    return message.length > 200 ? `${message.slice(0, 200)}…` : message;
  }
  return 'unknown error';
}
