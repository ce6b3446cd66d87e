/**
 * The SQLite recording store, on Node's built-in `node:sqlite`, with every database access off
 * the gateway's event loop.
 *
 * Threads (this file is the main-thread half; the other three speak worker-protocol.ts):
 * - writer-worker.ts owns the one connection that writes. `recordRequest` posts the
 *   record and resolves on the writer's ack, which comes only after COMMIT (and after checking
 *   that the file at the path is still the one written). Group commit: every request record that
 *   reached the writer since its last commit goes into ONE transaction, each in a SAVEPOINT, so
 *   one refused record (duplicate id, session of another principal) fails alone.
 * - `appendStreamEvents` / `finishCall` are collected here for the rest of the current
 *   event-loop turn and posted in one message; the writer keeps the former write-behind FIFO
 *   (batch per `batchIntervalMs` or at `maxBatch` rows, retry once, then item by item; orphans
 *   skipped). A finish is durable on request: `finishCall` returns a promise that resolves after
 *   the COMMIT holding the result and every event of the call queued before it (FIFO), and
 *   rejects when the result was not written (the call then stays `pending`). A queued finish
 *   makes the writer take its batch at once instead of after `batchIntervalMs`; the batching
 *   stays, so finishes (and events) arriving together share one commit.
 * - Calls cut by a crash: each writer owns the calls it inserts (calls.owner) and holds a lock
 *   file that says it lives (call-owners.ts). On open, the pending calls of owners that are
 *   gone are marked aborted (`onSettled` hears how many); a live process's calls are left alone,
 *   so several processes can share the file as before.
 * - reader-worker.ts answers every read on its own read-only connection (WAL: it reads committed
 *   snapshots while the writer commits), so a costly auditor query never holds up
 *   `recordRequest`. Reads see this process's own writes: before a read, whatever is collected
 *   here is posted, and when anything is in flight on the writer (records not yet acked,
 *   write-behind rows not yet settled, an access-log row) the read first waits for a `flush`
 *   of the writer (commit of all of it). Each read is one read transaction (one snapshot).
 *   `recordAccess` writes, so it goes to the writer.
 * - checkpoint-worker.ts checkpoints the WAL on a second connection (auto-checkpoint is off on
 *   the writer), woken every `checkpointBytes` of commits; it truncates the WAL when writes stop
 *   for `idleCheckpointMs`, and makes the writer catch up when the WAL reaches `walLimitBytes`.
 *
 * Failure: if the writer thread dies (uncaught error, its heap limit in `workerResourceLimits`,
 * anything), every pending and later `recordRequest` rejects, reads reject, and `health()` is not
 * ok — fail closed; nothing restarts it behind the gateway's back. If the reader thread dies,
 * pending and later reads reject (naming the reader thread), `health()` is not ok, and recording
 * goes on. A record that cannot be structured-cloned is refused on its own (its error names only
 * the error class).
 * `stats()` mirrors the writer's counters (updated with each message from it) plus this side's.
 *
 * Costs on this thread: one structured clone of the record as the caller built it (the request
 * body stays a string; the JSON columns are serialized on the writer) and one ack message per
 * group. open() starts the three threads at once (~80 ms from dist, more from src with type
 * stripping). The writer is ref'd only while something waits on it and the checkpointer never
 * is, so an unclosed store lets the process exit once its queued rows are written.
 *
 * Errors never carry record contents: messages are built from SQLite's error text (which names
 * tables, columns and constraints, never bound values), error codes, and fixed wording.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { AigovError, isAigovError } from '../../core/errors.ts';
import { ensurePrivateDatabase, PRIVATE_DIR_MODE, type PrivatePathOptions } from '../../config/private-files.ts';
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import type {
  AccessLogEntry,
  CallRecord,
  CallRequestRecord,
  CallResultRecord,
  RecordingStore,
  SealedRawCopy,
  SessionCursor,
  SessionDetailRecord,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SessionSummary,
  ChargeRow,
  StoreHealth,
  StreamEventRecord,
  UsageQuery,
  UsageReport,
} from '../recording-store.ts';
import { SessionOwnerConflictError, StoreWriteError } from '../recording-store.ts';
import { SchemaTooNewError } from './migrations.ts';
import { withRequestBodies } from '../request-bodies.ts';
import type { CallsRead } from './store-reads.ts';
import {
  ACK_CONFLICT,
  ACK_OK,
  describeError,
  SHARED,
  type CheckpointerData,
  type FromCheckpointer,
  type FromReader,
  type FromWriter,
  type QueueItem,
  type ReadOp,
  type ReaderData,
  type SqliteSynchronous,
  type ToReader,
  type ToWriter,
  type WriterCounters,
  type WriterData,
} from './worker-protocol.ts';

/**
 * `PRAGMA synchronous` in WAL mode:
 * - NORMAL (default): a commit is appended to the WAL with write(2) but not fsync'd; the WAL is
 *   fsync'd at checkpoints. Committed transactions survive a crash or kill of the process (the
 *   data is in the OS page cache and reaches the file), but an OS crash or power loss can roll
 *   back the most recent commits (never corrupting the database). This is the usual choice for
 *   WAL and costs no fsync per request.
 * - FULL: fsync the WAL on every commit; survives power loss too, at the price of one fsync per
 *   commit (with group commit: per group of requests, not per request).
 * - EXTRA / OFF: see https://sqlite.org/pragma.html#pragma_synchronous (OFF is not durable).
 */
export type { SqliteSynchronous };

export interface SqliteStoreOptions {
  /**
   * Database file. Its parent directory is created 0700 when missing; the database and its
   * -wal/-shm files are 0600 (existing looser ones are tightened, see config/private-files.ts).
   */
  readonly path: string;
  /** Told when an existing database file was accessible to other users and has been tightened; log it. */
  readonly onTightened?: PrivatePathOptions['onTightened'];
  /** Write-behind interval for stream events and finishes. Default 5 ms. */
  readonly batchIntervalMs?: number;
  /** Rows (events + finishes) per write-behind transaction; reaching it flushes at once. Default 512. */
  readonly maxBatch?: number;
  /**
   * How long a write waits for a lock held by another connection (on the writer thread; the
   * requests of that group wait with it). Default 1000 ms.
   */
  readonly busyTimeoutMs?: number;
  /** Default 'NORMAL'; see {@link SqliteSynchronous}. */
  readonly synchronous?: SqliteSynchronous;
  /** Called on write-behind failures (message without record contents). Default: process warning. */
  readonly onWriteError?: (err: Error) => void;
  /** Called once when open() marked calls of a stopped process aborted (with how many). Default: process warning. */
  readonly onSettled?: (count: number) => void;
  /** Committed bytes (approximate) between two background checkpoints. Default 4 MiB (≈ SQLite's 1000 pages). */
  readonly checkpointBytes?: number;
  /** WAL size from which the writer restarts the WAL itself (a short stall of its own: copy the lag, two fsyncs). Default 64 MiB. */
  readonly walLimitBytes?: number;
  /** Quiet time after which the checkpointer finishes the WAL and truncates it. Default 1000 ms. */
  readonly idleCheckpointMs?: number;
  /**
   * Limits of the writer thread and of the reader thread, each (e.g. `maxOldGenerationSizeMb`).
   * Exceeding them ends that thread and the store fails closed. Default: Node's defaults.
   */
  readonly workerResourceLimits?: ResourceLimits;
}

export interface SqliteStoreStats {
  /** Rows waiting to be written (collected here, in the writer's queue, or waiting for a retry). */
  readonly queuedRows: number;
  /** Failed write-behind transactions since open. */
  readonly writeErrors: number;
  /** Write-behind rows given up after a retry, or lost with the writer thread. */
  readonly droppedRows: number;
  /** Write-behind rows skipped because their call was never recorded, or arrived after close. */
  readonly orphanRows: number;
  /** recordRequest calls that rejected. */
  readonly recordFailures: number;
  /** Transactions that committed request records (fewer than the records: group commit). */
  readonly recordCommits: number;
  /** Calls of stopped processes that open() marked aborted. */
  readonly settledAtOpen: number;
  /** Checkpoints completed by the checkpointer thread. */
  readonly checkpoints: number;
  /** Frames in the WAL after the last checkpoint. */
  readonly walFrames: number;
}

/** recordRequest was refused: the session id belongs to another principal. */
export { SessionOwnerConflictError };

/** A write to the recording store failed; the message has no record contents. */
export { StoreWriteError };

const DEFAULTS = {
  batchIntervalMs: 5,
  maxBatch: 512,
  busyTimeoutMs: 1000,
  synchronous: 'NORMAL',
  checkpointBytes: 4 * 1024 * 1024,
  walLimitBytes: 64 * 1024 * 1024,
  idleCheckpointMs: 1000,
} as const;

/** How long close() waits for a thread to end on its own before terminating it. */
const THREAD_EXIT_GRACE_MS = 5000;

/**
 * The worker files sit next to this one: `.ts` when running from src (type stripping), `.js`
 * when built to dist (tsc rewrites import specifiers, not URL strings, hence the runtime pick).
 */
const WORKER_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
function workerUrl(name: 'writer-worker' | 'reader-worker' | 'checkpoint-worker'): URL {
  return new URL(`./${name}${WORKER_EXTENSION}`, import.meta.url);
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteRecordingStore> {
  return SqliteRecordingStore.open(options);
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly record: boolean;
}

class OpenFailure extends Error {
  readonly tooNew: SchemaTooNewError | null;
  constructor(reason: string, tooNew: SchemaTooNewError | null = null) {
    super(reason);
    this.tooNew = tooNew;
  }
}

const NO_COUNTERS: WriterCounters = { writeErrors: 0, droppedRows: 0, orphanRows: 0, settledRows: 0, recordCommits: 0 };

export class SqliteRecordingStore implements RecordingStore {
  readonly #location: string;
  readonly #onWriteError: (err: Error) => void;
  readonly #shared: Int32Array;
  readonly #writer: Worker;
  #checkpointer: Worker | null = null;
  #checkpointerExited: Promise<void> = Promise.resolve();
  #checkpointerStopping = false;
  readonly #healthTimeoutMs: number;

  #reader: Worker | null = null;
  #readerExited: Promise<void> = Promise.resolve();
  readonly #readerPending = new Map<number, Pick<Pending, 'resolve' | 'reject'>>();
  #readerRefed = false;
  #readerClosing = false;
  /** Why the reader thread is gone (null while it runs). */
  #readerDead: string | null = null;

  #started = false;
  readonly #ready: Promise<void>;
  #readyResolve: () => void = () => {};
  #readyReject: (err: OpenFailure) => void = () => {};

  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** finishCall promises, by ticket, until the writer says whether their result committed. */
  readonly #finishes = new Map<number, Pick<Pending, 'resolve' | 'reject'>>();
  #refed = true;
  #settledAtOpen = 0;

  /** Write-behind items collected during the current event-loop turn. */
  #behind: QueueItem[] = [];
  #behindRows = 0;
  #behindImmediate: NodeJS.Immediate | null = null;
  /** Write-behind rows handed to the writer; with its settledRows this gives what is in flight. */
  #postedRows = 0;

  #counters: WriterCounters = NO_COUNTERS;
  #orphanRows = 0;
  #droppedRows = 0;
  #recordFailures = 0;

  #closed = false;
  #closing: Promise<void> | null = null;
  #writerExiting = false;
  readonly #writerExited: Promise<void>;
  /** Why the writer thread is gone (null while it runs). */
  #dead: string | null = null;

  /** Use {@link openSqliteStore}. */
  private constructor(location: string, options: SqliteStoreOptions, data: WriterData) {
    this.#location = location;
    this.#shared = new Int32Array(data.shared);
    this.#onWriteError = options.onWriteError ?? ((err) => process.emitWarning(err.message, { code: 'AIGOV_STORE_WRITE' }));
    this.#healthTimeoutMs = Math.max(5000, 2 * data.busyTimeoutMs + 1000);
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.#ready.catch(() => {}); // observed by open()
    this.#writer = new Worker(workerUrl('writer-worker'), {
      workerData: data,
      name: 'aigov-store-writer',
      ...(options.workerResourceLimits === undefined ? {} : { resourceLimits: options.workerResourceLimits }),
    });
    this.#writerExited = new Promise<void>((resolve) => this.#writer.once('exit', () => resolve()));
    this.#writer.on('message', (message: FromWriter) => this.#onMessage(message));
    this.#writer.on('error', (err: Error) => this.#onWriterGone(errorCode(err)));
    this.#writer.on('exit', (code: number) => this.#onWriterGone(`exit code ${code}`));
    this.#writer.on('messageerror', () => {
      // An ack may be in that message: its request would never settle. Fail closed.
      this.#onWriterGone('a message from the writer thread could not be read');
      void this.#writer.terminate();
    });
  }

  /** @internal Use {@link openSqliteStore}. */
  static async open(options: SqliteStoreOptions): Promise<SqliteRecordingStore> {
    const location = path.resolve(options.path);
    const synchronous = options.synchronous ?? DEFAULTS.synchronous;
    if (!['OFF', 'NORMAL', 'FULL', 'EXTRA'].includes(synchronous)) {
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `unknown synchronous mode ${JSON.stringify(synchronous)}` });
    }
    try {
      fs.mkdirSync(path.dirname(location), { recursive: true, mode: PRIVATE_DIR_MODE });
    } catch (err) {
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `cannot create its directory (${fsCode(err)})` });
    }
    try {
      // Before SQLite creates anything: the database 0600, so its -wal and -shm are 0600 too.
      ensurePrivateDatabase(location, { onTightened: options.onTightened });
    } catch (err) {
      const reason = isAigovError(err) ? `${String(err.params['path'])}: ${String(err.params['reason'])}` : describeError(err);
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `cannot make it private (${reason})` }, { cause: err });
    }
    const shared = new SharedArrayBuffer(SHARED.length * Int32Array.BYTES_PER_ELEMENT);
    const data: WriterData = {
      location,
      busyTimeoutMs: Math.max(0, options.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs),
      synchronous,
      batchIntervalMs: Math.max(0, options.batchIntervalMs ?? DEFAULTS.batchIntervalMs),
      maxBatch: Math.max(1, Math.floor(options.maxBatch ?? DEFAULTS.maxBatch)),
      checkpointBytes: Math.max(1, options.checkpointBytes ?? DEFAULTS.checkpointBytes),
      walLimitBytes: Math.max(1, options.walLimitBytes ?? DEFAULTS.walLimitBytes),
      shared,
    };
    let store: SqliteRecordingStore;
    try {
      store = new SqliteRecordingStore(location, options, data);
    } catch (err) {
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `cannot start the writer thread (${describeError(err)})` });
    }
    // Both threads start at once (thread start-up is most of open()'s time); the checkpointer
    // opens its connection only once the writer has created and migrated the database.
    const checkpointer = store.#startCheckpointer({
      location,
      idleMs: Math.max(1, options.idleCheckpointMs ?? DEFAULTS.idleCheckpointMs),
      walLimitBytes: data.walLimitBytes,
      shared,
    });
    checkpointer.catch(() => {}); // awaited below
    const reader = store.#startReader(
      { location, busyTimeoutMs: data.busyTimeoutMs, shared },
      options.workerResourceLimits,
    );
    reader.catch(() => {}); // awaited below
    try {
      await store.#ready;
    } catch (err) {
      store.#checkpointerStopping = true;
      store.#readerClosing = true;
      Atomics.store(store.#shared, SHARED.stop, 1);
      Atomics.notify(store.#shared, SHARED.go);
      await Promise.all([store.#writerExited, checkpointer.catch(() => {}), reader.catch(() => {})]);
      const failure = err instanceof OpenFailure ? err : new OpenFailure(describeError(err));
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: failure.message }, { cause: failure.tooNew ?? undefined });
    }
    Atomics.store(store.#shared, SHARED.go, 1);
    Atomics.notify(store.#shared, SHARED.go);
    try {
      await checkpointer;
    } catch (err) {
      await reader.catch(() => {}); // settled first, so close() ends it too
      await store.close();
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `the checkpointer thread cannot open it: ${describeError(err)}` });
    }
    try {
      await reader;
    } catch (err) {
      await store.close();
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `the reader thread cannot open it: ${describeError(err)}` });
    }
    store.#syncRef();
    if (store.#settledAtOpen > 0) {
      const onSettled = options.onSettled ?? ((count: number) => process.emitWarning(`recording store: ${count} calls left pending by a stopped gateway were marked aborted`, { code: 'AIGOV_STORE_SETTLED' }));
      try {
        onSettled(store.#settledAtOpen);
      } catch {
        // a throwing callback must not fail the open
      }
    }
    return store;
  }

  /** Absolute path of the database file. */
  get location(): string {
    return this.#location;
  }

  recordRequest(record: CallRequestRecord): Promise<void> {
    const refused = this.#closed ? 'the store is closed' : this.#dead;
    if (refused !== null) {
      this.#recordFailures++;
      return Promise.reject(new StoreWriteError(`recording the request failed: ${refused}`));
    }
    const id = this.#nextId++;
    try {
      this.#writer.postMessage({ t: 'record', id, record } satisfies ToWriter);
    } catch (err) {
      // Only the error's class: a DataCloneError's message quotes the offending value.
      this.#recordFailures++;
      return Promise.reject(new StoreWriteError(`recording the request failed: the record cannot be passed to the writer thread (${errorName(err)})`));
    }
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, record: true });
    });
    this.#syncRef();
    return done;
  }

  appendStreamEvents(callId: string, events: readonly StreamEventRecord[]): void {
    if (events.length === 0) return;
    if (this.#closed) {
      this.#orphanRows += events.length;
      this.#report(`${events.length} stream events arrived after the store was closed and were not recorded`);
      return;
    }
    if (this.#dead !== null) {
      this.#droppedRows += events.length; // the writer's death was reported once; not per row
      return;
    }
    this.#behind.push({ kind: 'events', callId, events: events.slice() });
    this.#behindRows += events.length;
    this.#behindImmediate ??= setImmediate(() => this.#postBehind());
  }

  finishCall(result: CallResultRecord): Promise<void> {
    if (this.#closed) {
      this.#orphanRows += 1;
      this.#report('a call result arrived after the store was closed and was not recorded');
      return quietRejection(new StoreWriteError('recording the call result failed: the store is closed'));
    }
    if (this.#dead !== null) {
      this.#droppedRows += 1;
      return quietRejection(new StoreWriteError(`recording the call result failed: ${this.#dead}`));
    }
    const ticket = this.#nextId++;
    const done = new Promise<void>((resolve, reject) => {
      this.#finishes.set(ticket, { resolve: resolve as (value: unknown) => void, reject });
    });
    done.catch(() => {}); // callers that do not wait must not meet an unhandled rejection
    this.#behind.push({ kind: 'finish', ticket, result });
    this.#behindRows += 1;
    this.#behindImmediate ??= setImmediate(() => this.#postBehind());
    return done;
  }

  async flush(): Promise<void> {
    if (this.#closed || this.#dead !== null) return; // nothing can be written any more; counted and in health()
    this.#postBehind();
    try {
      await this.#request((id) => ({ t: 'flush', id }));
    } catch {
      // the writer died meanwhile: what it could not write is counted, reported and in health()
    }
  }

  async health(): Promise<StoreHealth> {
    const writeErrors = this.#counters.writeErrors;
    if (this.#closed) return { ok: false, writeErrors, detail: 'the store is closed' };
    if (this.#dead !== null) return { ok: false, writeErrors, detail: this.#dead };
    if (this.#readerDead !== null) return { ok: false, writeErrors, detail: this.#readerDead };
    try {
      const answer = (await this.#request((id) => ({ t: 'health', id }), this.#healthTimeoutMs)) as { ok: boolean; detail: string | null };
      return { ok: answer.ok, writeErrors: this.#counters.writeErrors, detail: answer.detail };
    } catch (err) {
      return { ok: false, writeErrors: this.#counters.writeErrors, detail: describeError(err) };
    }
  }

  /** Counters for metrics and tests. */
  stats(): SqliteStoreStats {
    const c = this.#counters;
    return {
      queuedRows: this.#behindRows + this.#postedRows - c.settledRows,
      writeErrors: c.writeErrors,
      droppedRows: c.droppedRows + this.#droppedRows,
      orphanRows: c.orphanRows + this.#orphanRows,
      recordFailures: this.#recordFailures,
      recordCommits: c.recordCommits,
      settledAtOpen: this.#settledAtOpen,
      checkpoints: Atomics.load(this.#shared, SHARED.checkpoints),
      walFrames: Atomics.load(this.#shared, SHARED.walFrames),
    };
  }

  async listSessions(options: { limit?: number; subject?: string } = {}): Promise<SessionSummary[]> {
    return (await this.#read({ op: 'listSessions', limit: clampLimit(options.limit), subject: options.subject ?? null })) as SessionSummary[];
  }

  async getCall(callId: string): Promise<CallRecord | null> {
    const read = (await this.#read({ op: 'getCall', callId })) as CallsRead | null;
    return read === null ? null : (withRequestBodies(read.calls, read.chunks)[0] ?? null);
  }

  async listCalls(sessionId: string): Promise<CallRecord[]> {
    const read = (await this.#read({ op: 'listCalls', sessionId })) as CallsRead;
    return withRequestBodies(read.calls, read.chunks);
  }

  async getStreamEvents(callId: string): Promise<StreamEventRecord[]> {
    return (await this.#read({ op: 'getStreamEvents', callId })) as StreamEventRecord[];
  }

  async querySessions(filter: SessionFilter, page: { readonly limit: number; readonly cursor: SessionCursor | null }): Promise<SessionPage> {
    return (await this.#read({ op: 'querySessions', filter, limit: clampLimit(page.limit), cursor: page.cursor })) as SessionPage;
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    return (await this.#read({ op: 'getSession', sessionId })) as SessionRecord | null;
  }

  async getSessionDetail(sessionId: string, options: { readonly sharedBodies?: boolean } = {}): Promise<SessionDetailRecord | null> {
    const detail = (await this.#read({ op: 'getSessionDetail', sessionId })) as SessionDetailRecord | null;
    if (detail === null || options.sharedBodies === true || detail.chunks === undefined) return detail;
    const { chunks, ...rest } = detail;
    return { ...rest, calls: withRequestBodies(detail.calls, chunks) };
  }

  async listSessionApprovals(sessionId: string, approvalIds: readonly string[]): Promise<ApprovalRecord[]> {
    return (await this.#read({ op: 'listSessionApprovals', sessionId, approvalIds })) as ApprovalRecord[];
  }

  async getRawCopies(sessionId: string): Promise<Readonly<Record<string, SealedRawCopy>>> {
    return (await this.#read({ op: 'getRawCopies', sessionId })) as Record<string, SealedRawCopy>;
  }

  async usageReport(query: UsageQuery): Promise<UsageReport> {
    return (await this.#read({ op: 'usageReport', query })) as UsageReport;
  }

  async chargesSince(since: number): Promise<ChargeRow[]> {
    return (await this.#read({ op: 'chargesSince', since })) as ChargeRow[];
  }

  async recordAccess(entry: AccessLogEntry): Promise<void> {
    if (this.#closed) throw new StoreWriteError('the recording store is closed');
    this.#postBehind();
    await this.#request((id) => ({ t: 'access', id, entry }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#postBehind();
    this.#closed = true;
    // The checkpointer goes first, so the writer's connection is the last one: closing it
    // checkpoints the WAL into the database file and removes it.
    await this.#stopCheckpointer();
    await this.#stopReader();
    if (this.#dead === null) {
      this.#writerExiting = true;
      try {
        await this.#request((id) => ({ t: 'close', id }));
      } catch {
        // the writer died meanwhile (reported) or could not close its connection: it ends anyway
      }
    }
    await endThread(this.#writer, this.#writerExited);
  }

  // ── main-thread side of the protocol ──────────────────────────────────────────────────────

  async #read(read: ReadOp): Promise<unknown> {
    if (this.#closed) throw new StoreWriteError('the recording store is closed');
    this.#postBehind();
    if (this.#dead !== null) throw new StoreWriteError(this.#dead);
    // Reads see this process's writes: what the writer still holds is committed first. With
    // nothing in flight (no waiting record or access row, every posted row settled) there is
    // nothing to wait for and the read goes straight to the reader.
    if (this.#pending.size > 0 || this.#postedRows !== this.#counters.settledRows) {
      await this.#request((id) => ({ t: 'flush', id }));
      if (this.#closed) throw new StoreWriteError('the recording store is closed');
    }
    return this.#askReader(read);
  }

  #askReader(read: ReadOp): Promise<unknown> {
    const reader = this.#reader;
    if (this.#readerDead !== null) return Promise.reject(new StoreWriteError(this.#readerDead));
    if (reader === null || this.#readerClosing) return Promise.reject(new StoreWriteError('the recording store is closed'));
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      this.#readerPending.set(id, { resolve, reject });
      try {
        reader.postMessage({ t: 'read', id, read } satisfies ToReader);
      } catch (err) {
        this.#readerPending.delete(id);
        reject(new StoreWriteError(`reading the recording store failed: the query cannot be passed to the reader thread (${errorName(err)})`));
      }
      this.#syncReaderRef();
    });
  }

  #request(build: (id: number) => ToWriter, timeoutMs?: number): Promise<unknown> {
    if (this.#dead !== null) return Promise.reject(new StoreWriteError(this.#dead));
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const settle = <T>(fn: (value: T) => void) => (value: T): void => {
        if (timer !== null) clearTimeout(timer);
        fn(value);
      };
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject), record: false });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#pending.delete(id);
          this.#syncRef();
          reject(new StoreWriteError(`the writer thread did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#writer.postMessage(build(id));
      this.#syncRef();
    });
  }

  #onMessage(message: FromWriter): void {
    switch (message.t) {
      case 'ready':
        this.#started = true;
        this.#settledAtOpen = message.settled;
        this.#readyResolve();
        return;
      case 'open-failed':
        this.#readyReject(new OpenFailure(message.reason, message.tooNew === null ? null : new SchemaTooNewError(message.tooNew.found, message.tooNew.supported)));
        return;
      case 'acks': {
        this.#counters = message.c;
        for (const ack of message.acks) {
          const pending = this.#pending.get(ack[0]);
          if (pending === undefined) continue;
          this.#pending.delete(ack[0]);
          if (ack[1] === ACK_OK) {
            pending.resolve(undefined);
          } else {
            this.#recordFailures++;
            pending.reject(ack[1] === ACK_CONFLICT ? new SessionOwnerConflictError() : new StoreWriteError(`recording the request failed: ${ack[2]}`));
          }
        }
        this.#syncRef();
        return;
      }
      case 'reply': {
        this.#counters = message.c;
        const pending = this.#pending.get(message.id);
        if (pending !== undefined) {
          this.#pending.delete(message.id);
          if (message.error === null) pending.resolve(message.value);
          else pending.reject(new StoreWriteError(message.error));
        }
        this.#syncRef();
        return;
      }
      case 'counters':
        this.#counters = message.c;
        this.#syncRef();
        return;
      case 'finished':
        this.#counters = message.c;
        for (const ticket of message.ok) {
          const waiter = this.#finishes.get(ticket);
          this.#finishes.delete(ticket);
          waiter?.resolve(undefined);
        }
        for (const [ticket, reason] of message.failed) this.#rejectFinish(ticket, reason);
        this.#syncRef();
        return;
      case 'report':
        this.#report(message.message);
        return;
    }
  }

  /** Posts the write-behind items collected during this turn, in one message. */
  #postBehind(): void {
    if (this.#behindImmediate !== null) clearImmediate(this.#behindImmediate);
    this.#behindImmediate = null;
    if (this.#behind.length === 0) return;
    const items = this.#behind;
    const rows = this.#behindRows;
    this.#behind = [];
    this.#behindRows = 0;
    if (this.#dead !== null) {
      this.#droppedRows += rows;
      this.#rejectFinishes(this.#dead);
      return;
    }
    try {
      this.#writer.postMessage({ t: 'behind', items } satisfies ToWriter);
      this.#postedRows += rows;
    } catch {
      // One item cannot be cloned: pass the others one by one, drop (and count) the bad ones.
      let dropped = 0;
      for (const item of items) {
        const itemRows = item.kind === 'events' ? item.events.length : 1;
        try {
          this.#writer.postMessage({ t: 'behind', items: [item] } satisfies ToWriter);
          this.#postedRows += itemRows;
        } catch (err) {
          dropped += itemRows;
          if (item.kind === 'finish') this.#rejectFinish(item.ticket, `the result cannot be passed to the writer thread (${errorName(err)})`);
        }
      }
      this.#droppedRows += dropped;
      this.#report(`dropped ${dropped} queued rows that cannot be passed to the writer thread`);
    }
    this.#syncRef();
  }

  #rejectFinish(ticket: number, reason: string): void {
    const waiter = this.#finishes.get(ticket);
    this.#finishes.delete(ticket);
    waiter?.reject(new StoreWriteError(`recording the call result failed: ${reason}`));
  }

  #rejectFinishes(reason: string): void {
    for (const ticket of [...this.#finishes.keys()]) this.#rejectFinish(ticket, reason);
  }

  /** The writer keeps the process alive only while something waits on it. */
  #syncRef(): void {
    if (this.#dead !== null || !this.#started) return;
    const wanted = this.#pending.size > 0 || this.#finishes.size > 0 || this.#behindRows > 0 || this.#postedRows !== this.#counters.settledRows;
    if (wanted === this.#refed) return;
    this.#refed = wanted;
    if (wanted) this.#writer.ref();
    else this.#writer.unref();
  }

  #onWriterGone(reason: string): void {
    if (!this.#started) {
      this.#readyReject(new OpenFailure(`the writer thread failed to start (${reason})`));
      return;
    }
    if (this.#dead !== null) return;
    if (this.#writerExiting) {
      // close() is ending it; whatever still waits (close's own request) must not hang
      for (const [id, pending] of this.#pending) {
        this.#pending.delete(id);
        pending.reject(new StoreWriteError(`the writer thread ended (${reason})`));
      }
      this.#rejectFinishes(`the writer thread ended (${reason})`);
      return;
    }
    this.#dead = `the recording store's writer thread stopped (${reason})`;
    const lost = this.#behindRows + this.#postedRows - this.#counters.settledRows;
    this.#droppedRows += lost;
    this.#postedRows = this.#counters.settledRows;
    this.#behind = [];
    this.#behindRows = 0;
    this.#rejectFinishes(this.#dead);
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      if (pending.record) {
        this.#recordFailures++;
        pending.reject(new StoreWriteError(`recording the request failed: ${this.#dead}`));
      } else {
        pending.reject(new StoreWriteError(this.#dead));
      }
    }
    this.#report(`${this.#dead}; ${lost} queued rows were lost; requests are refused until the store is reopened`);
    void this.#stopCheckpointer();
  }

  // ── reader thread ─────────────────────────────────────────────────────────────────────

  async #startReader(data: ReaderData, resourceLimits: ResourceLimits | undefined): Promise<void> {
    const worker = new Worker(workerUrl('reader-worker'), {
      workerData: data,
      name: 'aigov-store-reader',
      ...(resourceLimits === undefined ? {} : { resourceLimits }),
    });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.#readerExited = exited;
    const first = await new Promise<FromReader | { t: 'stopped' }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', (err: Error) => reject(new Error(errorCode(err))));
      worker.once('exit', (code: number) => (this.#readerClosing ? resolve({ t: 'stopped' }) : reject(new Error(`exit code ${code}`))));
    });
    if (first.t === 'stopped') return;
    if (first.t !== 'ready') {
      await exited;
      throw new Error(first.t === 'open-failed' ? first.reason : 'unexpected first message');
    }
    this.#reader = worker;
    worker.on('message', (message: FromReader) => {
      if (message.t !== 'reply') return;
      const pending = this.#readerPending.get(message.id);
      if (pending === undefined) return;
      this.#readerPending.delete(message.id);
      if (message.error === null) pending.resolve(message.value);
      else pending.reject(new StoreWriteError(message.error));
      this.#syncReaderRef();
    });
    worker.on('error', (err: Error) => this.#onReaderGone(errorCode(err)));
    worker.on('exit', (code: number) => this.#onReaderGone(`exit code ${code}`));
    worker.on('messageerror', () => {
      // A reply may be in that message: its read would never settle. Fail closed.
      this.#onReaderGone('a message from the reader thread could not be read');
      void worker.terminate();
    });
    worker.unref(); // ref'd only while a read waits on it (after the listeners: adding one refs again)
  }

  #syncReaderRef(): void {
    const worker = this.#reader;
    if (worker === null || this.#readerDead !== null) return;
    const wanted = this.#readerPending.size > 0;
    if (wanted === this.#readerRefed) return;
    this.#readerRefed = wanted;
    if (wanted) worker.ref();
    else worker.unref();
  }

  #onReaderGone(reason: string): void {
    if (this.#readerDead !== null) return;
    const closing = this.#readerClosing;
    this.#readerDead = closing ? 'the recording store is closed' : `the recording store's reader thread stopped (${reason})`;
    for (const [id, pending] of this.#readerPending) {
      this.#readerPending.delete(id);
      pending.reject(new StoreWriteError(this.#readerDead));
    }
    if (!closing) this.#report(`${this.#readerDead}; reads are refused until the store is reopened (recording goes on)`);
  }

  async #stopReader(): Promise<void> {
    const worker = this.#reader;
    if (worker === null || this.#readerClosing) return;
    this.#readerClosing = true;
    if (this.#readerDead === null) worker.postMessage({ t: 'close' } satisfies ToReader);
    await endThread(worker, this.#readerExited);
  }

  // ── checkpointer thread ─────────────────────────────────────────────────────────────────

  async #startCheckpointer(data: CheckpointerData): Promise<void> {
    const worker = new Worker(workerUrl('checkpoint-worker'), { workerData: data, name: 'aigov-store-checkpointer' });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const first = await new Promise<FromCheckpointer | { t: 'stopped' }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', (err: Error) => reject(new Error(errorCode(err))));
      worker.once('exit', (code: number) => (this.#checkpointerStopping ? resolve({ t: 'stopped' }) : reject(new Error(`exit code ${code}`))));
    });
    if (first.t === 'stopped') return;
    if (first.t !== 'ready') {
      await exited;
      throw new Error(first.reason);
    }
    worker.unref(); // it only ever helps; it must not keep the process alive
    this.#checkpointer = worker;
    worker.on('error', () => {}); // the exit handler below reports
    void exited.then(() => {
      if (this.#checkpointerStopping || this.#closed || this.#dead !== null) return;
      // Without it nothing checkpoints and the WAL grows: let the writer checkpoint itself.
      this.#report("the recording store's checkpointer thread stopped; the writer thread checkpoints from now on");
      this.#request((id) => ({ t: 'autocheckpoint', id })).catch(() => {});
    });
    this.#checkpointerExited = exited;
  }

  async #stopCheckpointer(): Promise<void> {
    const worker = this.#checkpointer;
    if (worker === null || this.#checkpointerStopping) return;
    this.#checkpointerStopping = true;
    Atomics.store(this.#shared, SHARED.stop, 1);
    Atomics.notify(this.#shared, SHARED.kick);
    await endThread(worker, this.#checkpointerExited);
  }

  #report(message: string): void {
    try {
      this.#onWriteError(new StoreWriteError(`recording store: ${message}`));
    } catch {
      // a throwing callback must not break the write path
    }
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

/** Waits for a thread to end on its own; terminates it after a grace period. */
async function endThread(worker: Worker, exited: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | null = null;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), THREAD_EXIT_GRACE_MS);
  });
  const outcome = await Promise.race([exited, late]);
  if (timer !== null) clearTimeout(timer);
  if (outcome === 'late') await worker.terminate();
}

/** A rejected promise that is already observed: a caller that ignores it meets no unhandled rejection. */
function quietRejection(err: Error): Promise<void> {
  const p = Promise.reject(err);
  p.catch(() => {});
  return p;
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 100;
  return Math.min(10_000, Math.max(1, Math.floor(limit)));
}

/** A thread's error as its code (e.g. ERR_WORKER_OUT_OF_MEMORY) or class: never its message. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : errorName(err);
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'unknown error';
}

function fsCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : describeError(err);
}
