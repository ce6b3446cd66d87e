/**
 * The SQLite recording store, on Node's built-in `node:sqlite` (`DatabaseSync`).
 *
 * One connection, owned by this process, used synchronously on the event loop. That keeps the
 * write path short: no worker hop, no connection pool, and every transaction is atomic with
 * respect to JavaScript (nothing can interleave inside it).
 *
 * Write paths:
 * - `recordRequest` is one small `BEGIN IMMEDIATE … COMMIT` (session upsert + call insert) that
 *   has committed before the returned promise settles.
 * - `appendStreamEvents` and `finishCall` go into an in-memory FIFO queue that is written in one
 *   transaction per batch: every `batchIntervalMs`, or right away (next macrotask) once
 *   `maxBatch` rows are queued. The FIFO keeps a call's events in order and its finish after
 *   them. `seq` numbers are given at write time, per call, from 0 and without gaps.
 * - A failed batch is counted (`health().writeErrors`), reported to `onWriteError`, kept, and
 *   retried once on the next tick (at once when inside `flush()`/`close()`). If the retry fails
 *   too, its items are written one transaction each, so one bad item cannot sink the others;
 *   items that still fail are dropped and counted (`stats().droppedRows`), and reported.
 *   Queued events or finishes of calls that were never recorded are skipped and counted
 *   (`stats().orphanRows`): the foreign keys would otherwise fail the whole batch.
 *
 * Reads (`listSessions`, `getCall`, …) first write whatever is queued, so this process always
 * reads its own writes.
 *
 * WAL checkpoints are SQLite's automatic ones (every ~1000 WAL pages, ≈120 recorded requests
 * with 2 KB bodies), run by the commit that crosses the threshold, on this thread: a stall of
 * ~10-20 ms on a busy disk (see bench/store-writes.ts). A checkpointer on a worker thread was
 * tried and dropped: under sustained writes a concurrent PASSIVE checkpoint never catches up,
 * the WAL never restarts, and the writer ends up doing larger checkpoints itself.
 *
 * Errors never carry record contents: messages are built from SQLite's error text (which names
 * tables, columns and constraints, never bound values) and fixed wording.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { AigovError } from '../../core/errors.ts';
import type { EndpointId, ProviderKind, Usage } from '../../core/events.ts';
import type {
  CallRecord,
  CallRequestRecord,
  CallResultRecord,
  CallStatus,
  PolicyDecisionRecord,
  RecordingStore,
  SessionSummary,
  StoreHealth,
  StreamEventRecord,
} from '../recording-store.ts';
import { SessionOwnerConflictError } from '../recording-store.ts';
import { migrateDatabase, SchemaTooNewError } from './migrations.ts';

/**
 * `PRAGMA synchronous` in WAL mode:
 * - NORMAL (default): a commit is appended to the WAL with write(2) but not fsync'd; the WAL is
 *   fsync'd at checkpoints. Committed transactions survive a crash or kill of the process (the
 *   data is in the OS page cache and reaches the file), but an OS crash or power loss can roll
 *   back the most recent commits (never corrupting the database). This is the usual choice for
 *   WAL and costs no fsync per request.
 * - FULL: fsync the WAL on every commit; survives power loss too, at the price of one fsync per
 *   recorded request (from ~0.1 ms on NVMe to several ms on network disks).
 * - EXTRA / OFF: see https://sqlite.org/pragma.html#pragma_synchronous (OFF is not durable).
 */
export type SqliteSynchronous = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

export interface SqliteStoreOptions {
  /** Database file. Its parent directory is created when missing. */
  readonly path: string;
  /** Write-behind interval for stream events and finishes. Default 5 ms. */
  readonly batchIntervalMs?: number;
  /** Rows (events + finishes) per write-behind transaction; reaching it flushes at once. Default 512. */
  readonly maxBatch?: number;
  /**
   * How long a write waits for a lock held by another connection. The wait blocks the event
   * loop (node:sqlite is synchronous), so keep it short. Default 1000 ms.
   */
  readonly busyTimeoutMs?: number;
  /** Default 'NORMAL'; see {@link SqliteSynchronous}. */
  readonly synchronous?: SqliteSynchronous;
  /** Called on write-behind failures (message without record contents). Default: process warning. */
  readonly onWriteError?: (err: Error) => void;
}

export interface SqliteStoreStats {
  /** Rows waiting in the write-behind queue (including a batch waiting for its retry). */
  readonly queuedRows: number;
  /** Failed write-behind transactions since open. */
  readonly writeErrors: number;
  /** Write-behind rows given up after a retry. */
  readonly droppedRows: number;
  /** Write-behind rows skipped because their call was never recorded, or arrived after close. */
  readonly orphanRows: number;
  /** recordRequest calls that rejected. */
  readonly recordFailures: number;
}

/** recordRequest was refused: the session id belongs to another principal. */
export { SessionOwnerConflictError };

/** A write to the recording store failed; the message has no record contents. */
export class StoreWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreWriteError';
  }
}

type QueueItem =
  | { readonly kind: 'events'; readonly callId: string; readonly events: readonly StreamEventRecord[] }
  | { readonly kind: 'finish'; readonly result: CallResultRecord };

interface Batch {
  readonly items: QueueItem[];
  readonly rows: number;
  attempts: number;
}

const DEFAULTS = { batchIntervalMs: 5, maxBatch: 512, busyTimeoutMs: 1000, synchronous: 'NORMAL' } as const;

export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteRecordingStore> {
  const location = path.resolve(options.path);
  const synchronous = options.synchronous ?? DEFAULTS.synchronous;
  if (!['OFF', 'NORMAL', 'FULL', 'EXTRA'].includes(synchronous)) {
    throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `unknown synchronous mode ${JSON.stringify(synchronous)}` });
  }
  try {
    fs.mkdirSync(path.dirname(location), { recursive: true });
  } catch (err) {
    throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `cannot create its directory (${fsCode(err)})` });
  }

  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(location, {
      enableForeignKeyConstraints: true,
      timeout: options.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs,
    });
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.['journal_mode'];
    if (mode !== 'wal') throw new Error(`cannot use WAL journal mode on this file system (got ${String(mode)})`);
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec('PRAGMA foreign_keys = ON');
    db.exec('PRAGMA journal_size_limit = 67108864'); // truncate the WAL back to ≤ 64 MiB after checkpoints
    migrateDatabase(db);
    const identity = fileIdentity(location);
    if (identity === null) throw new Error('the database file disappeared while opening');
    return new SqliteRecordingStore(db, location, identity, options);
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    const reason = err instanceof SchemaTooNewError ? err.message : describeError(err);
    throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason }, { cause: err instanceof SchemaTooNewError ? err : undefined });
  }
}

export class SqliteRecordingStore implements RecordingStore {
  readonly #db: DatabaseSync;
  readonly #location: string;
  readonly #identity: FileIdentity;
  readonly #batchIntervalMs: number;
  readonly #maxBatch: number;
  readonly #onWriteError: (err: Error) => void;

  readonly #stmt: {
    readonly begin: StatementSync;
    readonly commit: StatementSync;
    readonly rollback: StatementSync;
    readonly upsertSession: StatementSync;
    readonly insertCall: StatementSync;
    readonly eventHead: StatementSync;
    readonly insertEvent: StatementSync;
    readonly callDecisions: StatementSync;
    readonly finishCall: StatementSync;
    readonly ping: StatementSync;
    readonly listSessions: StatementSync;
    readonly listSessionsBySubject: StatementSync;
    readonly getCall: StatementSync;
    readonly listCalls: StatementSync;
    readonly getEvents: StatementSync;
  };

  #queue: QueueItem[] = [];
  #queuedRows = 0;
  #retry: Batch | null = null;
  /** Next seq per call that has events written and no finish yet. */
  readonly #nextSeq = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;

  #closed = false;
  #closing: Promise<void> | null = null;
  #writeErrors = 0;
  #droppedRows = 0;
  #orphanRows = 0;
  #recordFailures = 0;
  /** Why the most recent write (of either path) failed; cleared by the next successful one. */
  #lastWriteError: string | null = null;

  /** Use {@link openSqliteStore}. */
  constructor(db: DatabaseSync, location: string, identity: FileIdentity, options: SqliteStoreOptions) {
    this.#db = db;
    this.#location = location;
    this.#identity = identity;
    this.#batchIntervalMs = Math.max(0, options.batchIntervalMs ?? DEFAULTS.batchIntervalMs);
    this.#maxBatch = Math.max(1, Math.floor(options.maxBatch ?? DEFAULTS.maxBatch));
    this.#onWriteError = options.onWriteError ?? ((err) => process.emitWarning(err.message, { code: 'AIGOV_STORE_WRITE' }));
    this.#stmt = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      // On an existing id, the WHERE makes the upsert a no-op (0 changes) unless the owner matches.
      upsertSession: db.prepare(`
        INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count)
        VALUES ($id, $subject, $issuer, $email, $at, $at, 1)
        ON CONFLICT (id) DO UPDATE SET
          call_count = call_count + 1,
          last_call_at = max(last_call_at, excluded.last_call_at)
        WHERE sessions.subject = excluded.subject AND sessions.issuer = excluded.issuer`),
      insertCall: db.prepare(`
        INSERT INTO calls (id, session_id, subject, email, groups, issuer, client_id, user_agent, remote_address, sdk,
          provider, provider_kind, endpoint, method, path, model, stream, request_body, decisions, started_at, status)
        VALUES ($id, $sessionId, $subject, $email, $groups, $issuer, $clientId, $userAgent, $remoteAddress, $sdk,
          $provider, $providerKind, $endpoint, $method, $path, $model, $stream, $requestBody, $decisions, $startedAt, 'pending')`),
      eventHead: db.prepare(`
        SELECT EXISTS (SELECT 1 FROM calls WHERE id = ?1) AS present,
               (SELECT max(seq) FROM stream_events WHERE call_id = ?1) AS max_seq`),
      insertEvent: db.prepare('INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES (?, ?, ?, ?)'),
      callDecisions: db.prepare('SELECT decisions FROM calls WHERE id = ?'),
      finishCall: db.prepare(`
        UPDATE calls SET status = $status, http_status = $httpStatus, response_body = $responseBody, usage = $usage,
          first_byte_ms = $firstByteMs, latency_ms = $latencyMs, error_code = $errorCode, error_message = $errorMessage,
          decisions = $decisions, ended_at = $endedAt
        WHERE id = $id`),
      ping: db.prepare('SELECT 1 AS ok'),
      listSessions: db.prepare(`
        SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions
        ORDER BY last_call_at DESC, id LIMIT ?`),
      listSessionsBySubject: db.prepare(`
        SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions
        WHERE subject = ? ORDER BY last_call_at DESC, id LIMIT ?`),
      getCall: db.prepare('SELECT * FROM calls WHERE id = ?'),
      listCalls: db.prepare('SELECT * FROM calls WHERE session_id = ? ORDER BY started_at, rowid'),
      getEvents: db.prepare('SELECT offset_ms, raw FROM stream_events WHERE call_id = ? ORDER BY seq'),
    };
  }

  /** Absolute path of the database file. */
  get location(): string {
    return this.#location;
  }

  async recordRequest(record: CallRequestRecord): Promise<void> {
    if (this.#closed) {
      this.#recordFailures++;
      throw new StoreWriteError('recording the request failed: the store is closed');
    }
    const db = this.#db;
    const s = this.#stmt;
    const p = record.principal;
    const c = record.client;
    try {
      s.begin.run();
      const session = s.upsertSession.run({
        id: record.sessionId, subject: p.subject, issuer: p.issuer, email: p.email, at: record.startedAt,
      });
      if (session.changes === 0) throw new SessionOwnerConflictError();
      s.insertCall.run({
        id: record.callId,
        sessionId: record.sessionId,
        subject: p.subject,
        email: p.email,
        groups: JSON.stringify(p.groups),
        issuer: p.issuer,
        clientId: p.clientId,
        userAgent: c.userAgent,
        remoteAddress: c.remoteAddress,
        sdk: c.sdk,
        provider: record.provider,
        providerKind: record.providerKind,
        endpoint: record.endpoint,
        method: record.method,
        path: record.path,
        model: record.model,
        stream: record.stream ? 1 : 0,
        requestBody: record.requestBody,
        decisions: JSON.stringify(record.decisions),
        startedAt: record.startedAt,
      });
      s.commit.run();
    } catch (err) {
      rollbackQuietly(db, s.rollback);
      this.#recordFailures++;
      if (err instanceof SessionOwnerConflictError) throw err; // the store itself is fine
      this.#lastWriteError = describeError(err);
      throw new StoreWriteError(`recording the request failed: ${describeError(err)}`);
    }
    // Committed, but into the file at our path? A file deleted or replaced under an open
    // connection keeps taking writes that no one will ever read again.
    const moved = this.#fileProblem();
    if (moved !== null) {
      this.#recordFailures++;
      this.#lastWriteError = moved;
      throw new StoreWriteError(`recording the request failed: ${moved}`);
    }
    this.#lastWriteError = null;
  }

  appendStreamEvents(callId: string, events: readonly StreamEventRecord[]): void {
    if (events.length === 0) return;
    if (this.#closed) {
      this.#orphanRows += events.length;
      this.#report(`${events.length} stream events arrived after the store was closed and were not recorded`);
      return;
    }
    this.#queue.push({ kind: 'events', callId, events: events.slice() });
    this.#queuedRows += events.length;
    this.#kick();
  }

  finishCall(result: CallResultRecord): void {
    if (this.#closed) {
      this.#orphanRows += 1;
      this.#report('a call result arrived after the store was closed and was not recorded');
      return;
    }
    this.#queue.push({ kind: 'finish', result });
    this.#queuedRows += 1;
    this.#kick();
  }

  async flush(): Promise<void> {
    this.#drainAll();
  }

  async health(): Promise<StoreHealth> {
    const writeErrors = this.#writeErrors;
    if (this.#closed) return { ok: false, writeErrors, detail: 'the store is closed' };
    try {
      this.#stmt.ping.get();
    } catch (err) {
      return { ok: false, writeErrors, detail: `the database does not answer: ${describeError(err)}` };
    }
    const moved = this.#fileProblem();
    if (moved !== null) return { ok: false, writeErrors, detail: moved };
    if (this.#lastWriteError !== null) return { ok: false, writeErrors, detail: `the last write failed: ${this.#lastWriteError}` };
    return { ok: true, writeErrors, detail: null };
  }

  /** Counters for metrics and tests. */
  stats(): SqliteStoreStats {
    return {
      queuedRows: this.#queuedRows + (this.#retry?.rows ?? 0),
      writeErrors: this.#writeErrors,
      droppedRows: this.#droppedRows,
      orphanRows: this.#orphanRows,
      recordFailures: this.#recordFailures,
    };
  }

  async listSessions(options: { limit?: number; subject?: string } = {}): Promise<SessionSummary[]> {
    this.#assertReadable();
    this.#drainAll();
    const limit = clampLimit(options.limit);
    const rows = options.subject === undefined
      ? this.#stmt.listSessions.all(limit)
      : this.#stmt.listSessionsBySubject.all(options.subject, limit);
    return rows.map(toSessionSummary);
  }

  async getCall(callId: string): Promise<CallRecord | null> {
    this.#assertReadable();
    this.#drainAll();
    const row = this.#stmt.getCall.get(callId);
    return row === undefined ? null : toCallRecord(row);
  }

  async listCalls(sessionId: string): Promise<CallRecord[]> {
    this.#assertReadable();
    this.#drainAll();
    return this.#stmt.listCalls.all(sessionId).map(toCallRecord);
  }

  async getStreamEvents(callId: string): Promise<StreamEventRecord[]> {
    this.#assertReadable();
    this.#drainAll();
    return this.#stmt.getEvents.all(callId).map((row) => ({ offsetMs: num(row['offset_ms']), raw: str(row['raw']) }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#drainAll();
    this.#closed = true;
    this.#cancelTimers();
    try {
      this.#db.exec('PRAGMA optimize');
    } catch {
      // advisory only
    }
    this.#db.close(); // checkpoints the WAL into the database file
  }

  // ── write-behind ────────────────────────────────────────────────────────────────────────

  #kick(): void {
    if (this.#queuedRows >= this.#maxBatch) {
      if (this.#immediate === null) {
        if (this.#timer !== null) {
          clearTimeout(this.#timer);
          this.#timer = null;
        }
        this.#immediate = setImmediate(() => {
          this.#immediate = null;
          this.#tick();
        });
      }
    } else if (this.#timer === null && this.#immediate === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#tick();
      }, this.#batchIntervalMs);
    }
  }

  /** One batch per tick, so a large backlog yields to the event loop between transactions. */
  #tick(): void {
    if (this.#closed) return;
    this.#writeOneBatch();
    if (this.#retry !== null) {
      // retry on the next tick, not at once: a lock or a full disk needs a moment
      if (this.#timer === null) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#tick();
        }, Math.max(this.#batchIntervalMs, 1));
      }
    } else if (this.#queuedRows > 0) {
      this.#kick();
    }
  }

  #drainAll(): void {
    if (this.#closed) return;
    this.#cancelTimers();
    while (this.#retry !== null || this.#queue.length > 0) this.#writeOneBatch();
  }

  #cancelTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
  }

  #takeBatch(): Batch | null {
    if (this.#queue.length === 0) return null;
    let rows = 0;
    let count = 0;
    while (count < this.#queue.length && rows < this.#maxBatch) {
      rows += rowsOf(this.#queue[count]!);
      count++;
    }
    const items = count === this.#queue.length ? this.#queue : this.#queue.slice(0, count);
    this.#queue = count === this.#queue.length ? [] : this.#queue.slice(count);
    this.#queuedRows -= rows;
    return { items, rows, attempts: 0 };
  }

  #writeOneBatch(): void {
    const batch = this.#retry ?? this.#takeBatch();
    this.#retry = null;
    if (batch === null) return;
    try {
      this.#writeItems(batch.items);
      this.#lastWriteError = null;
      return;
    } catch (err) {
      this.#writeErrors++;
      this.#lastWriteError = describeError(err);
      if (batch.attempts === 0) {
        batch.attempts = 1;
        this.#retry = batch;
        this.#report(`writing ${batch.rows} queued rows failed, will retry: ${describeError(err)}`);
        return;
      }
      this.#report(`writing ${batch.rows} queued rows failed again, writing them one by one: ${describeError(err)}`);
    }
    // Second failure: isolate the items, so a single bad one cannot take the batch down with it.
    let dropped = 0;
    let lastError: unknown = null;
    for (const item of batch.items) {
      try {
        this.#writeItems([item]);
      } catch (err) {
        this.#writeErrors++;
        dropped += rowsOf(item);
        lastError = err;
      }
    }
    if (dropped > 0) {
      this.#droppedRows += dropped;
      this.#lastWriteError = describeError(lastError);
      this.#report(`dropped ${dropped} of ${batch.rows} queued rows after a retry: ${describeError(lastError)}`);
    } else {
      this.#lastWriteError = null;
    }
  }

  /** Writes the items in one transaction; throws (after rolling back) when it cannot. */
  #writeItems(items: readonly QueueItem[]): void {
    const moved = this.#fileProblem();
    if (moved !== null) throw new Error(moved);
    const s = this.#stmt;
    const nextSeq = new Map<string, number>(); // applied to #nextSeq only once committed
    const finished: string[] = [];
    let orphans = 0;
    s.begin.run();
    try {
      for (const item of items) {
        if (item.kind === 'events') {
          let seq = nextSeq.get(item.callId) ?? this.#nextSeq.get(item.callId);
          if (seq === undefined) {
            const head = s.eventHead.get(item.callId);
            if (head === undefined || num(head['present']) !== 1) {
              orphans += item.events.length;
              continue;
            }
            seq = head['max_seq'] === null ? 0 : num(head['max_seq']) + 1;
          }
          for (const event of item.events) {
            s.insertEvent.run(item.callId, seq, Math.round(event.offsetMs), event.raw);
            seq++;
          }
          nextSeq.set(item.callId, seq);
        } else {
          const r = item.result;
          const current = s.callDecisions.get(r.callId);
          if (current === undefined) {
            orphans++;
            continue;
          }
          const decisions = r.decisions.length === 0
            ? str(current['decisions'])
            : JSON.stringify([...(JSON.parse(str(current['decisions'])) as PolicyDecisionRecord[]), ...r.decisions]);
          s.finishCall.run({
            id: r.callId,
            status: r.status,
            httpStatus: r.httpStatus,
            responseBody: r.responseBody,
            usage: r.usage === null ? null : JSON.stringify(r.usage),
            firstByteMs: r.firstByteMs === null ? null : Math.round(r.firstByteMs),
            latencyMs: Math.round(r.latencyMs),
            errorCode: r.errorCode,
            errorMessage: r.errorMessage,
            decisions,
            endedAt: r.endedAt,
          });
          finished.push(r.callId);
        }
      }
      s.commit.run();
    } catch (err) {
      rollbackQuietly(this.#db, s.rollback);
      throw err;
    }
    for (const [callId, seq] of nextSeq) this.#nextSeq.set(callId, seq);
    for (const callId of finished) this.#nextSeq.delete(callId);
    if (orphans > 0) {
      this.#orphanRows += orphans;
      this.#report(`skipped ${orphans} queued rows of calls that were never recorded`);
    }
  }

  #report(message: string): void {
    try {
      this.#onWriteError(new StoreWriteError(`recording store: ${message}`));
    } catch {
      // a throwing callback must not break the write path
    }
  }

  // ── checks ──────────────────────────────────────────────────────────────────────────────

  #assertReadable(): void {
    if (this.#closed) throw new StoreWriteError('the recording store is closed');
  }

  /** Non-null when the file at our path is no longer the one this connection writes to. */
  #fileProblem(): string | null {
    const now = fileIdentity(this.#location);
    if (now === null) return 'the database file was deleted';
    if (now.dev !== this.#identity.dev || now.ino !== this.#identity.ino) return 'the database file was replaced';
    return null;
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

function fileIdentity(file: string): FileIdentity | null {
  try {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return st === undefined ? null : { dev: st.dev, ino: st.ino };
  } catch {
    return null; // e.g. ENOTDIR when the directory was replaced by a file
  }
}

function rollbackQuietly(db: DatabaseSync, rollback: StatementSync): void {
  try {
    if (db.isTransaction) rollback.run();
  } catch {
    // the connection is in trouble; the original error is the one that matters
  }
}

function rowsOf(item: QueueItem): number {
  return item.kind === 'events' ? item.events.length : 1;
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 100;
  return Math.min(10_000, Math.max(1, Math.floor(limit)));
}

/** A short reason without record contents: SQLite's message, or an fs error code. */
function describeError(err: unknown): string {
  if (err instanceof Error) {
    const message = err.message.split('\n', 1)[0] ?? '';
    return message.length > 200 ? `${message.slice(0, 200)}…` : message;
  }
  return 'unknown error';
}

function fsCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : describeError(err);
}

type Row = Record<string, SQLOutputValue>;

function str(value: SQLOutputValue | undefined): string {
  if (typeof value === 'string') return value;
  throw new Error('recording store: unexpected non-text column value');
}

function strOrNull(value: SQLOutputValue | undefined): string | null {
  return value === null || value === undefined ? null : str(value);
}

function num(value: SQLOutputValue | undefined): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new Error('recording store: unexpected non-numeric column value');
}

function numOrNull(value: SQLOutputValue | undefined): number | null {
  return value === null || value === undefined ? null : num(value);
}

function toSessionSummary(row: Row): SessionSummary {
  return {
    sessionId: str(row['id']),
    subject: str(row['subject']),
    email: strOrNull(row['email']),
    startedAt: num(row['started_at']),
    lastCallAt: num(row['last_call_at']),
    callCount: num(row['call_count']),
  };
}

function toCallRecord(row: Row): CallRecord {
  const usage = strOrNull(row['usage']);
  return {
    callId: str(row['id']),
    sessionId: str(row['session_id']),
    principal: {
      subject: str(row['subject']),
      email: strOrNull(row['email']),
      groups: JSON.parse(str(row['groups'])) as string[],
      issuer: str(row['issuer']),
      clientId: strOrNull(row['client_id']),
    },
    client: {
      userAgent: strOrNull(row['user_agent']),
      remoteAddress: strOrNull(row['remote_address']),
      sdk: strOrNull(row['sdk']),
    },
    provider: str(row['provider']),
    providerKind: str(row['provider_kind']) as ProviderKind,
    endpoint: str(row['endpoint']) as EndpointId,
    method: str(row['method']),
    path: str(row['path']),
    model: strOrNull(row['model']),
    stream: num(row['stream']) === 1,
    requestBody: str(row['request_body']),
    decisions: JSON.parse(str(row['decisions'])) as PolicyDecisionRecord[],
    startedAt: num(row['started_at']),
    status: str(row['status']) as CallStatus,
    httpStatus: numOrNull(row['http_status']),
    responseBody: strOrNull(row['response_body']),
    usage: usage === null ? null : (JSON.parse(usage) as Usage),
    firstByteMs: numOrNull(row['first_byte_ms']),
    latencyMs: numOrNull(row['latency_ms']),
    errorCode: strOrNull(row['error_code']),
    errorMessage: strOrNull(row['error_message']),
    endedAt: numOrNull(row['ended_at']),
  };
}
