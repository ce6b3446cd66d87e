/**
 * The PostgreSQL recording store: the RecordingStore contract (recording-store.ts) on a database
 * that several gateway replicas share.
 *
 * Parts:
 * - migrations.ts runs once per start, under an advisory lock (replicas starting together wait for
 *   one another); a schema newer than this build refuses the start.
 * - owner-lock.ts: this process's owner id, held as a session advisory lock while it lives; on
 *   open, the pending calls of every owner found gone are marked aborted (AIGOV_E_GATEWAY_STOPPED)
 *   — those of a live replica never. owner-leases.ts: while it runs, the store renews its lease
 *   and settles the calls of replicas that died or froze (every second or so).
 * - pg-writer.ts: the write lane (group commit of request records, write-behind events and
 *   results, access rows), every transaction serialized by the audit chain's head row.
 * - pg-reads.ts: reads on the pool, each multi-statement read one snapshot. Reads see this
 *   process's writes: when anything is queued or being written, a read first waits for a flush.
 *
 * Failure: when PostgreSQL goes away, `recordRequest` rejects (the gateway answers 503 and
 * forwards nothing), reads reject, `health()` is not ok; each later transaction reconnects, so
 * the store recovers by itself when the server is back (write-behind rows that failed twice in
 * between are dropped and counted, and their calls' finishes rejected, as with SQLite).
 * Errors never carry record contents nor the URL's password (pg-connection.ts).
 */
import { AigovError } from '../../core/errors.ts';
import { redactDatabaseUrl } from '../../config/database-url.ts';
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
import { StoreWriteError } from '../recording-store.ts';
import { withRequestBodies } from '../request-bodies.ts';
import { SchemaTooNewError } from '../schema-too-new.ts';
import { migratePostgresAt } from './migrations.ts';
import { OwnerLock } from './owner-lock.ts';
import { DEFAULT_LEASE_TIMINGS, OwnerLeases, type LeaseTimings } from './owner-leases.ts';
import { createPool, describePgError, type PgObserver, type PgPool, type PgSettings } from './pg-connection.ts';
import { PgReads } from './pg-reads.ts';
import { PgWriter } from './pg-writer.ts';

export interface PostgresStoreOptions {
  /** postgres://… (may hold the password: it is never logged nor put in an error). */
  readonly url: string;
  /** Connections in the read pool (the writer and the owner lock have one each besides). Default 10. */
  readonly poolSize?: number;
  /** statement_timeout of every statement that records or reads, ms. Default 5000. */
  readonly statementTimeoutMs?: number;
  /** Opening a connection, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * synchronous_commit of the recording writes. 'on' (default): each commit is flushed to disk
   * before it is acknowledged. 'off': acknowledged once in the server's WAL buffers (flushed within
   * 3 × wal_writer_delay): no gateway crash loses a record, a database server crash may lose the
   * last fraction of a second of them (the SQLite store's NORMAL guarantee), at a fraction of the latency.
   */
  readonly synchronousCommit?: 'on' | 'off';
  /** Longest wait for a lock another connection holds (PostgreSQL's lock_timeout), ms. Default: none (the statement timeout bounds it). */
  readonly lockTimeoutMs?: number;
  /** Write-behind interval for stream events and finishes. Default 5 ms. */
  readonly batchIntervalMs?: number;
  /** Rows (events + finishes) per write-behind transaction; reaching it writes at once. Default 512. */
  readonly maxBatch?: number;
  /** Write-behind failures and connection trouble (no record contents). Default: process warning. */
  readonly onWriteError?: (err: Error) => void;
  /** Told when open(), or a sweep while the store runs, marked calls of stopped processes aborted (with how many). Default: process warning. */
  readonly onSettled?: (count: number) => void;
  /** Body chunk ids the writer reserves at a time for its one-round-trip writes (default 1024; tests make it small). */
  readonly chunkBlock?: number;
  /** Lease renewal and sweep timings (owner-leases.ts); tests shorten them. */
  readonly leases?: Partial<LeaseTimings>;
  /** The gateway's metrics: the read pool's counts and waits (pool `recordings`). */
  readonly observer?: PgObserver;
}

export interface PostgresStoreStats {
  readonly queuedRows: number;
  readonly writeErrors: number;
  readonly droppedRows: number;
  readonly orphanRows: number;
  readonly recordFailures: number;
  readonly recordCommits: number;
  /** Write transactions done in one round trip (migration 6's functions), and those the database sent back to the locked path. */
  readonly fastCommits: number;
  readonly fastRetries: number;
  /** Transactions written the locked way (BEGIN, head lock and reads, then the write and COMMIT). */
  readonly lockedCommits: number;
  /** One-round-trip transactions that held records and a write-behind batch (one commit for both), and those that failed (the records then tried alone). */
  readonly combinedCommits: number;
  readonly combinedFailures: number;
  readonly settledAtOpen: number;
  /** Calls of stopped replicas settled by this store's sweeps while it ran, and replicas evicted (lease expired). */
  readonly settledBySweep: number;
  readonly evicted: number;
}

const DEFAULTS = { poolSize: 10, statementTimeoutMs: 5000, connectTimeoutMs: 5000, batchIntervalMs: 5, maxBatch: 512, chunkBlock: 1024 } as const;

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresRecordingStore> {
  return PostgresRecordingStore.open(options);
}

export class PostgresRecordingStore implements RecordingStore {
  readonly #location: string;
  readonly #settings: PgSettings;
  readonly #pool: PgPool;
  readonly #owner: OwnerLock;
  readonly #writer: PgWriter;
  readonly #reads: PgReads;
  #leases: OwnerLeases | null = null;
  #settledAtOpen = 0;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(location: string, settings: PgSettings, pool: PgPool, owner: OwnerLock, writer: PgWriter, reads: PgReads) {
    this.#location = location;
    this.#settings = settings;
    this.#pool = pool;
    this.#owner = owner;
    this.#writer = writer;
    this.#reads = reads;
  }

  /** @internal Use {@link openPostgresStore}. */
  static async open(options: PostgresStoreOptions): Promise<PostgresRecordingStore> {
    const location = redactDatabaseUrl(options.url);
    const settings: PgSettings = {
      url: options.url,
      statementTimeoutMs: Math.max(1, Math.floor(options.statementTimeoutMs ?? DEFAULTS.statementTimeoutMs)),
      connectTimeoutMs: Math.max(1, Math.floor(options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs)),
      lockTimeoutMs: Math.max(0, Math.floor(options.lockTimeoutMs ?? 0)),
    };
    const onWriteError = options.onWriteError ?? ((err: Error) => process.emitWarning(err.message, { code: 'AIGOV_STORE_WRITE' }));
    const report = (message: string): void => {
      try {
        onWriteError(new StoreWriteError(`recording store: ${message}`));
      } catch {
        // a throwing callback must not break the write path
      }
    };
    const failed = (reason: string, cause?: unknown): AigovError => new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason }, cause === undefined ? undefined : { cause });

    // Migrations on a connection of their own, without a statement timeout: a replica that starts
    // while another migrates waits for it on the lock.
    try {
      await migratePostgresAt(settings);
    } catch (err) {
      if (err instanceof SchemaTooNewError) throw failed(err.message, err);
      throw failed(`cannot connect to or migrate the database: ${describePgError(err, options.url)}`);
    }

    let owner: OwnerLock;
    try {
      owner = await OwnerLock.acquire(settings, report);
    } catch (err) {
      throw failed(`cannot take this process's owner lock: ${describePgError(err, options.url)}`);
    }
    const watch = options.observer === undefined ? undefined : { observer: options.observer, name: 'recordings' };
    const pool = createPool(settings, Math.max(1, Math.floor(options.poolSize ?? DEFAULTS.poolSize)), report, watch);
    const writer = new PgWriter({
      settings,
      owner,
      batchIntervalMs: Math.max(0, options.batchIntervalMs ?? DEFAULTS.batchIntervalMs),
      maxBatch: Math.max(1, Math.floor(options.maxBatch ?? DEFAULTS.maxBatch)),
      synchronousCommit: options.synchronousCommit ?? 'on',
      chunkBlock: Math.max(1, Math.floor(options.chunkBlock ?? DEFAULTS.chunkBlock)),
      report,
    });
    const store = new PostgresRecordingStore(location, settings, pool, owner, writer, new PgReads(pool));
    const onSettled = options.onSettled ?? ((count: number) => process.emitWarning(`recording store: ${count} calls left pending by a stopped gateway were marked aborted`, { code: 'AIGOV_STORE_SETTLED' }));
    const tellSettled = (count: number): void => {
      try {
        onSettled(count);
      } catch {
        // a throwing callback must not fail the open nor stop the sweeps
      }
    };
    const leases = new OwnerLeases({
      pool,
      owner,
      timings: { ...DEFAULT_LEASE_TIMINGS, ...options.leases },
      settle: (dead) => writer.settleOwner(dead),
      onSettled: tellSettled,
      report,
      describe: (err) => describePgError(err, options.url),
    });
    store.#leases = leases;
    try {
      store.#settledAtOpen = await leases.settleAtOpen();
    } catch (err) {
      await store.close();
      throw failed(`cannot look for calls left by stopped gateways: ${describePgError(err, options.url)}`);
    }
    if (store.#settledAtOpen > 0) tellSettled(store.#settledAtOpen);
    leases.start();
    return store;
  }

  /** The database URL without its password. */
  get location(): string {
    return this.#location;
  }

  /** This process's owner id (calls.owner of the calls it records). */
  get ownerId(): string {
    return this.#owner.id;
  }

  recordRequest(record: CallRequestRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreWriteError('recording the request failed: the store is closed'));
    return this.#writer.record(record);
  }

  appendStreamEvents(callId: string, events: readonly StreamEventRecord[]): void {
    if (events.length === 0) return;
    this.#writer.events(callId, events);
  }

  finishCall(result: CallResultRecord): Promise<void> {
    return this.#writer.finish(result);
  }

  async flush(): Promise<void> {
    if (this.#closed) return;
    await this.#writer.flush();
  }

  /** Cheap liveness probe for /readyz; answers within max(5 s, 2 × statement timeout + 1 s) whatever the database does. */
  async health(): Promise<StoreHealth> {
    let timer: NodeJS.Timeout | null = null;
    const late = new Promise<StoreHealth>((resolve) => {
      const limitMs = Math.max(5000, 2 * this.#settings.statementTimeoutMs + 1000);
      timer = setTimeout(() => resolve({ ok: false, writeErrors: this.#writer.counters().writeErrors, detail: `the database did not answer within ${limitMs} ms` }), limitMs);
    });
    try {
      return await Promise.race([this.#health(), late]);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  async #health(): Promise<StoreHealth> {
    const writeErrors = this.#writer.counters().writeErrors;
    if (this.#closed) return { ok: false, writeErrors, detail: 'the store is closed' };
    // The database first: when it is away, that is the reason to give (the lock's loss follows from it).
    try {
      await this.#pool.query('SELECT 1');
    } catch (err) {
      return { ok: false, writeErrors, detail: `the database does not answer: ${describePgError(err, this.#settings.url)}` };
    }
    if (!this.#owner.isHeld()) return { ok: false, writeErrors, detail: 'the owner lock on PostgreSQL is not held (its connection was lost; reconnecting)' };
    const last = this.#writer.lastWriteError;
    if (last !== null) {
      try {
        await this.#writer.probe();
      } catch {
        return { ok: false, writeErrors, detail: `the last write failed: ${last}` };
      }
    }
    return { ok: true, writeErrors, detail: null };
  }

  /** Counters for metrics and tests. */
  stats(): PostgresStoreStats {
    const c = this.#writer.counters();
    const leases = this.#leases?.counts ?? { settled: 0, evicted: 0 };
    return { ...c, settledAtOpen: this.#settledAtOpen, settledBySweep: leases.settled, evicted: leases.evicted };
  }

  async chargesSince(since: number): Promise<ChargeRow[]> {
    return this.#read(() => this.#reads.chargesSince(since));
  }

  async listSessions(options: { limit?: number; subject?: string } = {}): Promise<SessionSummary[]> {
    return this.#read(() => this.#reads.listSessions(clampLimit(options.limit), options.subject ?? null));
  }

  async getCall(callId: string): Promise<CallRecord | null> {
    const read = await this.#read(() => this.#reads.getCall(callId));
    return read === null ? null : (withRequestBodies(read.calls, read.chunks)[0] ?? null);
  }

  async listCalls(sessionId: string): Promise<CallRecord[]> {
    const read = await this.#read(() => this.#reads.listCalls(sessionId));
    return withRequestBodies(read.calls, read.chunks);
  }

  async getStreamEvents(callId: string): Promise<StreamEventRecord[]> {
    return this.#read(() => this.#reads.getStreamEvents(callId));
  }

  async querySessions(filter: SessionFilter, page: { readonly limit: number; readonly cursor: SessionCursor | null }): Promise<SessionPage> {
    return this.#read(() => this.#reads.querySessions(filter, clampLimit(page.limit), page.cursor, Date.now()));
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    return this.#read(() => this.#reads.getSession(sessionId));
  }

  async getSessionDetail(sessionId: string, options: { readonly sharedBodies?: boolean } = {}): Promise<SessionDetailRecord | null> {
    const detail = await this.#read(() => this.#reads.getSessionDetail(sessionId));
    if (detail === null || options.sharedBodies === true || detail.chunks === undefined) return detail;
    const { chunks, ...rest } = detail;
    return { ...rest, calls: withRequestBodies(detail.calls, chunks) };
  }

  async listSessionApprovals(sessionId: string, approvalIds: readonly string[]): Promise<ApprovalRecord[]> {
    return this.#read(() => this.#reads.listSessionApprovals(sessionId, approvalIds));
  }

  async getRawCopies(sessionId: string): Promise<Readonly<Record<string, SealedRawCopy>>> {
    return this.#read(() => this.#reads.getRawCopies(sessionId));
  }

  async usageReport(query: UsageQuery): Promise<UsageReport> {
    return this.#read(() => this.#reads.usageReport(query));
  }

  async recordAccess(entry: AccessLogEntry): Promise<void> {
    if (this.#closed) throw new StoreWriteError('the recording store is closed');
    await this.#writer.access(entry);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    await this.#leases?.stop();
    await this.#writer.close();
    await this.#owner.release();
    await this.#pool.end().catch(() => {});
  }

  /** Reads see this process's writes: whatever is queued or being written is committed first. */
  async #read<T>(read: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreWriteError('the recording store is closed');
    if (this.#writer.busy) await this.#writer.flush();
    try {
      return await read();
    } catch (err) {
      if (err instanceof StoreWriteError) throw err;
      throw new StoreWriteError(`reading the recording store failed: ${err instanceof Error && /^recording store:/.test(err.message) ? err.message : describePgError(err, this.#settings.url)}`);
    }
  }
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 100;
  return Math.min(10_000, Math.max(1, Math.floor(limit)));
}
