/**
 * The PostgreSQL store's write lane: one connection that runs one transaction at a time, the way
 * the SQLite store's writer thread does.
 *
 * Every transaction first locks chain_head (FOR UPDATE): the audit chain's head, the next body
 * chunk id. All writers of every replica take that row first, so their transactions are
 * serialized at the database — one chain, and checks done under the lock (is this session
 * another principal's? is this call still pending?) stay true until COMMIT.
 *
 * Two ways to write (docs/benchmarks.md, "PostgreSQL write path"):
 * - One round trip (the usual one): ONE statement, its own transaction committed at its Sync,
 *   calling migration 6's functions — aigov_record_calls (a record group) and/or
 *   aigov_write_behind (a write-behind batch). They lock the head, check under the lock what this
 *   writer assumed (no call id taken, no session another principal's, sessions it takes for new
 *   without chunks, remembered chunks not purged; results over calls still pending), write the
 *   rows and link the audit entries in the database (same canonical text and SHA-256 as
 *   src/core/audit/chain.ts), or write nothing and say 'retry'.
 * - Locked, two round trips (pipelined): BEGIN, the head lock and the reads under it; then one
 *   statement with the rows and the entries linked here, and COMMIT. For what the writer cannot
 *   assume (a session whose chunk hashes it must read, a call it does not remember, a refusal to
 *   make record by record) and whenever the database said 'retry'.
 *
 * - Request records: group commit. Every record that arrived while the previous transaction ran
 *   (or in the same event-loop turn) goes into ONE transaction, with the write-behind batch that is
 *   due if there is one (one commit for both; if that transaction fails, the records are tried
 *   again alone, then the batch alone, with the retries of any batch). A record that must be refused — a call id
 *   already recorded, a session of another principal, text PostgreSQL cannot store (NUL) — is
 *   refused alone. Each record's promise settles after its commit (or the failure).
 * - Stream events and finishes: write-behind FIFO, as in the SQLite store (a batch every
 *   `batchIntervalMs`, or at once at `maxBatch` rows or when a finish or a flush waits; retry
 *   once, then item by item; rows of calls never recorded skipped). Results only over calls still
 *   `pending`. A finish's promise settles after the commit holding it and the call's earlier events.
 * - Access-log rows and settling a dead owner's calls are tasks in the same lane (locked path).
 * Records go first, then tasks, then write-behind batches: a record waits for at most the one
 * transaction in flight.
 *
 * A connection error drops the connection; the next transaction opens a new one. Errors carry
 * no record contents (describePgError; the texts here are fixed wording).
 */
import type { AccessLogEntry, CallRequestRecord, CallResultRecord, PolicyDecisionRecord, StreamEventRecord } from '../recording-store.ts';
import { SessionOwnerConflictError, StoreWriteError } from '../recording-store.ts';
import { RequestChunkWriter, type ChunkRows } from '../request-chunk-writer.ts';
import { accessContentHash, eventsContentHasher, rawCopyContentHash, requestContentHash, resultContentHash } from '../audit-hash.ts';
import { CHUNK_MIN_BODY, type ChunkKind } from '../../core/recording/request-chunks.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { ChainAppender, entriesParams, entriesSql, UnlinkedEntries, type ChainHeadRow, type EntrySink } from './chain-appender.ts';
import { connectClient, describePgError, isConnectionError, type PgClient, type PgSettings } from './pg-connection.ts';
import type { OwnerLock } from './owner-lock.ts';

/** The code and words recorded on a call settled because its owner is gone (as the SQLite store's). */
export const STOPPED_CODE: ErrorCode = 'AIGOV_E_GATEWAY_STOPPED';
export const STOPPED_MESSAGE = 'the gateway stopped before the call ended; the answer may have been cut off at the client';

export interface PgWriterOptions {
  readonly settings: PgSettings;
  readonly owner: OwnerLock;
  readonly batchIntervalMs: number;
  readonly maxBatch: number;
  /** synchronous_commit of the write connection (see PostgresStoreOptions). */
  readonly synchronousCommit: 'on' | 'off';
  /** Body chunk ids reserved at a time for the one-round-trip path. */
  readonly chunkBlock: number;
  /** Write-behind failures and other trouble, as fixed wording plus driver error texts. */
  readonly report: (message: string) => void;
}

export interface PgWriterCounters {
  readonly writeErrors: number;
  readonly droppedRows: number;
  readonly orphanRows: number;
  readonly recordFailures: number;
  readonly recordCommits: number;
  readonly queuedRows: number;
  /** Transactions written in one round trip (records or write-behind), those the database sent to the locked path, and the locked path's commits (all kinds). */
  readonly fastCommits: number;
  readonly fastRetries: number;
  readonly lockedCommits: number;
  /** Of the one-round-trip transactions, those that held a record group and a write-behind batch, and those of them that failed. */
  readonly combinedCommits: number;
  readonly combinedFailures: number;
}

/** Calls in flight whose write-behind state the writer keeps (see PgWriter.#inFlight). */
const IN_FLIGHT_REMEMBERED = 100_000;

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface RecordJob extends Waiter {
  readonly record: CallRequestRecord;
}

type QueueItem =
  | { readonly kind: 'events'; readonly callId: string; readonly events: readonly StreamEventRecord[] }
  | { readonly kind: 'finish'; readonly result: CallResultRecord; readonly waiter: Waiter }
  | { readonly kind: 'flush'; readonly waiter: Waiter };

interface Batch {
  readonly items: readonly QueueItem[];
  readonly rows: number;
  attempts: number;
}

/** What a committed batch settles: finishes written, finishes refused (with why). */
interface Outcome {
  readonly ok: Waiter[];
  readonly failed: [Waiter, string][];
}

// Extended protocol for every statement: the connection is pipelined, and simple queries cannot be.
const BEGIN = { name: 'aigov_begin', text: 'BEGIN', queryMode: 'extended' } as const;
const COMMIT = { name: 'aigov_commit', text: 'COMMIT', queryMode: 'extended' } as const;
const ROLLBACK = { name: 'aigov_rollback', text: 'ROLLBACK', queryMode: 'extended' } as const;
const HEAD_SQL = { name: 'aigov_head', text: 'SELECT seq, hash, next_chunk, chunks_generation FROM chain_head WHERE id = 1 FOR UPDATE', queryMode: 'extended' } as const;

interface HeadRow extends ChainHeadRow {
  readonly next_chunk: number;
  readonly chunks_generation: number;
}

/** A query of the pipelined connection, with the parameters bound in order. */
class Statement {
  readonly values: unknown[] = [];
  /** `$n::type` for the next parameter. */
  p(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/**
 * Body chunk rows for one transaction, and the chunk ids this writer may use.
 * - Locked path: ids from chain_head.next_chunk, read under the lock; the hashes of sessions not
 *   remembered were read under it too.
 * - Fast path: ids from the block this writer reserved (chain_head.next_chunk was moved past it
 *   when it was reserved, so no other writer hands them out). Nothing is read: a session whose
 *   hashes are not remembered is taken for one without chunks ({@link fresh}: a new session, as
 *   every call without x-aigov-session is), which the database checks under its lock. A group
 *   needing more ids than the block has left ({@link overflow}) goes to the locked path instead.
 * The ids of one call's chunks are consecutive either way (one block, or one locked transaction),
 * and the writer's ids only grow: a node names only lower ids, so after a locked write that stored
 * or read chunks (ids above the block) the block is replaced by one after them.
 */
class PgChunkRows implements ChunkRows {
  #loaded = new Map<string, [string, number][]>();
  #fast = false;
  #next = 0;
  #limit = Number.POSITIVE_INFINITY;
  #generation = 0;
  /** Ids reserved for the fast path and not used yet: [next, end). */
  #block = { next: 0, end: 0 };
  overflow = false;
  /** Fast path: sessions not in the writer's memory, taken for sessions without chunks (the database checks). */
  fresh = new Set<string>();
  rows = { id: [] as number[], session: [] as string[], hash: [] as string[], kind: [] as number[], text: [] as string[] };

  startLocked(head: HeadRow, loaded: Map<string, [string, number][]>): void {
    this.#start(false, loaded, head.next_chunk, Number.POSITIVE_INFINITY);
    this.#generation = head.chunks_generation;
  }

  startFast(): void {
    this.#start(true, new Map(), this.#block.next, this.#block.end);
  }

  #start(fast: boolean, loaded: Map<string, [string, number][]>, next: number, limit: number): void {
    this.#fast = fast;
    this.#loaded = loaded;
    this.#next = next;
    this.#limit = limit;
    this.overflow = false;
    this.fresh = new Set();
    this.rows = { id: [], session: [], hash: [], kind: [], text: [] };
  }

  get next(): number {
    return this.#next;
  }

  /** Reserved ids left once this transaction's chunks are taken. */
  get spare(): number {
    return this.#block.end - (this.#fast ? this.#next : this.#block.next);
  }

  /** After a commit: the fast path used its ids from the block; `block`, when given, replaces it. */
  committed(block: { readonly first: number; readonly size: number } | null): void {
    if (this.#fast) this.#block.next = this.#next;
    if (block !== null) this.#block = { next: block.first, end: block.first + block.size };
  }

  load(sessionId: string): Iterable<readonly [string, number]> {
    if (this.#fast) {
      this.fresh.add(sessionId);
      return [];
    }
    // A session the writer forgot while a group was under way was not read: it only misses sharing.
    return this.#loaded.get(sessionId) ?? [];
  }

  insert(sessionId: string, hexHash: string, kind: ChunkKind, text: string): number {
    if (this.#next >= this.#limit) this.overflow = true;
    const id = this.#next++;
    this.rows.id.push(id);
    this.rows.session.push(sessionId);
    this.rows.hash.push(hexHash);
    this.rows.kind.push(kind);
    this.rows.text.push(text);
    return id;
  }

  generation(): number {
    return this.#generation;
  }
}

export class PgWriter {
  readonly #o: PgWriterOptions;
  #client: PgClient | null = null;
  #connecting: Promise<PgClient> | null = null;

  #records: RecordJob[] = [];
  #tasks: (() => Promise<void>)[] = [];
  #queue: QueueItem[] = [];
  #queuedRows = 0;
  /** Finishes and flushes in #queue: someone waits for them, so the batch goes at once. */
  #queuedWaiters = 0;
  #retry: Batch | null = null;
  #batchDue = false;
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #running = false;
  #idle: Waiter[] = [];

  /**
   * Calls this writer recorded and has not finished: the next stream-event seq and the decisions
   * recorded (null when learned from the database), so their write-behind needs no read first.
   * Bounded: the oldest are forgotten past {@link IN_FLIGHT_REMEMBERED} (they take the locked path).
   */
  readonly #inFlight = new Map<string, { nextSeq: number; decisions: string | null }>();
  /** Calls some of whose stream events were dropped: their finish is refused (the record would be incomplete). */
  readonly #lostEvents = new Set<string>();
  readonly #chunkRows = new PgChunkRows();
  readonly #chunks = new RequestChunkWriter(this.#chunkRows);

  #writeErrors = 0;
  #droppedRows = 0;
  #orphanRows = 0;
  #recordFailures = 0;
  #recordCommits = 0;
  #fastCommits = 0;
  #fastRetries = 0;
  #lockedCommits = 0;
  #combinedCommits = 0;
  #combinedFailures = 0;
  #lastWriteError: string | null = null;
  #closed = false;

  constructor(options: PgWriterOptions) {
    this.#o = options;
  }

  counters(): PgWriterCounters {
    return {
      writeErrors: this.#writeErrors,
      droppedRows: this.#droppedRows,
      orphanRows: this.#orphanRows,
      recordFailures: this.#recordFailures,
      recordCommits: this.#recordCommits,
      queuedRows: this.#queuedRows + (this.#retry?.rows ?? 0),
      fastCommits: this.#fastCommits,
      fastRetries: this.#fastRetries,
      lockedCommits: this.#lockedCommits,
      combinedCommits: this.#combinedCommits,
      combinedFailures: this.#combinedFailures,
    };
  }

  /** Why the last write failed, while no write has succeeded since; null when fine. */
  get lastWriteError(): string | null {
    return this.#lastWriteError;
  }

  /** True while something is queued or being written (reads then wait for a flush first). */
  get busy(): boolean {
    return this.#running || this.#records.length > 0 || this.#tasks.length > 0 || this.#queue.length > 0 || this.#retry !== null;
  }

  // ── entry points ────────────────────────────────────────────────────────────────────────

  record(record: CallRequestRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreWriteError('recording the request failed: the store is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#records.push({ record, resolve, reject });
      // Everything that arrives in this event-loop turn joins the same transaction.
      this.#immediate ??= setImmediate(() => {
        this.#immediate = null;
        this.#pump();
      });
    });
  }

  events(callId: string, events: readonly StreamEventRecord[]): void {
    this.#enqueue({ kind: 'events', callId, events: events.slice() }, events.length);
  }

  finish(result: CallResultRecord): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#enqueue({ kind: 'finish', result, waiter: { resolve, reject } }, 1));
    done.catch(() => {}); // callers that do not wait must not meet an unhandled rejection
    return done;
  }

  /** Resolves once everything queued before it was written (or given up). */
  flush(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#enqueue({ kind: 'flush', waiter: { resolve, reject } }, 0));
  }

  /** One access-log row and its audit entry, committed before it resolves. */
  access(entry: AccessLogEntry): Promise<void> {
    return this.#task(async () => {
      const client = await this.#connection();
      const row = { at: entry.at, subject: entry.actor.subject, issuer: entry.actor.issuer, email: entry.actor.email, action: entry.action, session_id: entry.sessionId, filter: entry.filter };
      if ([row.subject, row.issuer, row.email, row.session_id, row.filter].some(hasNul)) throw new StoreWriteError('the access-log row holds a NUL character, which PostgreSQL cannot store');
      const [head, inserted] = await this.#begin(client, [
        {
          name: 'aigov_access',
          text: 'INSERT INTO access_log (at, subject, issuer, email, action, session_id, filter) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
          values: [row.at, row.subject, row.issuer, row.email, row.action, row.session_id, row.filter],
        },
      ]);
      const chain = new ChainAppender(head);
      const id = Number((inserted!.rows[0] as { id: number }).id);
      chain.append('access', String(id), null, accessContentHash({ id, ...row }));
      const entries = entriesSql(1);
      await this.#commit(client, { name: 'aigov_access_chain', text: `WITH ${entries.cte} ${entries.head}`, values: entriesParams(chain) });
    });
  }

  /**
   * After a failed write: can the lane write again (a connection, the head lock)? Clears the
   * failure when it can, so a replica that lost its database for a while reports ready again
   * without waiting for traffic a load balancer no longer sends it. Rolls back; writes nothing.
   */
  probe(): Promise<void> {
    return this.#task(async () => {
      const client = await this.#connection();
      // The locks a recording's statement takes, without writing anything.
      await this.#begin(client, [{ name: 'aigov_probe', text: 'LOCK TABLE sessions, calls, stream_events, body_chunks, raw_copies, access_log, audit_log IN ROW EXCLUSIVE MODE', values: [] }]);
      await this.#rollback(client);
      this.#lastWriteError = null;
    });
  }

  /**
   * Marks the pending calls of a dead owner aborted (each with its `result` entry), and removes
   * its owners row, in one transaction. Returns how many calls it settled.
   */
  settleOwner(owner: string): Promise<number> {
    let settled = 0;
    return this.#task(async () => {
      const client = await this.#connection();
      const [head, pending] = await this.#begin(client, [
        {
          name: 'aigov_settle_read',
          text: `SELECT id, started_at, decisions, (SELECT max(offset_ms) FROM stream_events e WHERE e.call_id = c.id) AS last_offset
                 FROM calls c WHERE c.status = 'pending' AND c.owner = $1 ORDER BY c.rec`,
          values: [owner],
        },
      ]);
      const chain = new ChainAppender(head);
      const fin = new FinishColumns();
      for (const row of pending!.rows as { id: string; started_at: number; decisions: string; last_offset: number | null }[]) {
        const latencyMs = row.last_offset === null ? 0 : Math.max(0, row.last_offset);
        const values = {
          id: row.id, status: 'aborted', http_status: null, response_body: null, usage: null, first_byte_ms: null, latency_ms: latencyMs,
          error_code: STOPPED_CODE, error_message: STOPPED_MESSAGE, decisions: row.decisions, ended_at: row.started_at + latencyMs,
        };
        fin.push(values);
        chain.append('result', row.id, null, resultContentHash(values));
      }
      const st = behindStatement(new EventColumns(), fin, chain);
      await this.#commit(client, st, [{ name: 'aigov_owner_gone', text: 'DELETE FROM owners WHERE id = $1', values: [owner] }]);
      settled = pending!.rows.length;
    }).then(() => settled);
  }

  /** Writes everything queued, then closes the connection. Later writes are refused. */
  async close(): Promise<void> {
    if (!this.#closed) {
      await this.flush().catch(() => {});
      this.#closed = true;
      this.#pump(); // anything queued since the flush is written now, without waiting for its interval
    }
    await new Promise<void>((resolve, reject) => {
      if (!this.busy) resolve();
      else this.#idle.push({ resolve, reject });
    });
    this.#cancelTimers();
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  // ── scheduling ──────────────────────────────────────────────────────────────────────────

  #enqueue(item: QueueItem, rows: number): void {
    if (this.#closed) {
      if (item.kind === 'events') {
        this.#orphanRows += rows;
        this.#o.report(`${rows} stream events arrived after the store was closed and were not recorded`);
      } else if (item.kind === 'finish') {
        this.#orphanRows += 1;
        this.#o.report('a call result arrived after the store was closed and was not recorded');
        item.waiter.reject(new StoreWriteError('recording the call result failed: the store is closed'));
      } else {
        item.waiter.resolve();
      }
      return;
    }
    this.#queue.push(item);
    this.#queuedRows += rows;
    if (item.kind !== 'events') this.#queuedWaiters++;
    if (this.#queuedRows >= this.#o.maxBatch || this.#queuedWaiters > 0) {
      this.#batchDue = true;
      this.#immediate ??= setImmediate(() => {
        this.#immediate = null;
        this.#pump();
      });
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = null;
        this.#batchDue = true;
        this.#pump();
      }, this.#o.batchIntervalMs);
    }
  }

  #task(run: () => Promise<void>): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreWriteError('the recording store is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#tasks.push(() => run().then(resolve, (err: unknown) => reject(asWriteError(err, this.#o.settings.url))));
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#running) return;
    let work: (() => Promise<void>) | null = null;
    if (this.#records.length > 0) work = () => this.#commitRecords();
    else if (this.#tasks.length > 0) work = this.#tasks.shift()!;
    else if ((this.#retry !== null || this.#queue.length > 0) && (this.#batchDue || this.#closed)) work = () => this.#writeBatch();
    if (work === null) {
      if (!this.busy) for (const waiter of this.#idle.splice(0)) waiter.resolve();
      return;
    }
    this.#running = true;
    work()
      .catch((err: unknown) => this.#o.report(`the write lane failed: ${describePgError(err, this.#o.settings.url)}`))
      .finally(() => {
        this.#running = false;
        if (this.#queue.length === 0 && this.#retry === null) this.#batchDue = false;
        else if (this.#retry === null && this.#queuedWaiters === 0 && this.#queuedRows < this.#o.maxBatch && this.#timer === null) {
          // Rows that arrived during the transaction wait for their interval like any others.
          this.#batchDue = false;
          this.#timer = setTimeout(() => {
            this.#timer = null;
            this.#batchDue = true;
            this.#pump();
          }, this.#o.batchIntervalMs);
        }
        this.#pump();
      });
  }

  #cancelTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
  }

  // ── the connection and its transactions ──────────────────────────────────────────────────

  async #connection(): Promise<PgClient> {
    if (this.#client !== null) return this.#client;
    this.#connecting ??= connectClient(this.#o.settings, { pipeline: true, synchronousCommit: this.#o.synchronousCommit }).then(
      (client) => {
        this.#connecting = null;
        client.on('error', () => this.#drop(client));
        client.on('end', () => this.#drop(client));
        this.#client = client;
        return client;
      },
      (err: unknown) => {
        this.#connecting = null;
        throw err;
      },
    );
    return this.#connecting;
  }

  #drop(client: PgClient): void {
    if (this.#client !== client) return;
    this.#client = null;
    void client.end().catch(() => {});
  }

  /**
   * BEGIN, lock the head, and run `reads` — sent together. Returns the head and the reads'
   * results; on failure rolls back and throws.
   */
  async #begin(client: PgClient, reads: readonly { name?: string; text: string; values: unknown[] }[]): Promise<[HeadRow, ...(QueryResultLike | undefined)[]]> {
    const sent = [client.query(BEGIN), client.query(HEAD_SQL), ...reads.map((r) => client.query(r))];
    const settled = await Promise.allSettled(sent);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await this.#rollback(client);
      throw (failed).reason;
    }
    const results = settled.map((s) => (s as PromiseFulfilledResult<QueryResultLike>).value);
    const head = results[1]!.rows[0] as HeadRow | undefined;
    if (head === undefined) {
      await this.#rollback(client);
      throw new Error('the chain_head row is missing (the database was changed behind aigov)');
    }
    return [head, ...results.slice(2)];
  }

  /** Runs `write` (and `more`) then COMMIT, sent together; throws (after rolling back) unless all of it committed. */
  async #commit(client: PgClient, write: { name?: string; text: string; values: unknown[] }, more: readonly { name?: string; text: string; values: unknown[] }[] = []): Promise<void> {
    const sent = [client.query(write), ...more.map((m) => client.query(m)), client.query(COMMIT)];
    const settled = await Promise.allSettled(sent);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      // A failed statement turns the COMMIT into a ROLLBACK; after a failed COMMIT nothing is open.
      if (settled.at(-1)!.status === 'rejected') this.#afterFailure(client, (failed).reason);
      throw (failed).reason;
    }
    this.#lockedCommits++;
  }

  async #rollback(client: PgClient): Promise<void> {
    try {
      await client.query(ROLLBACK);
    } catch (err) {
      this.#afterFailure(client, err);
    }
  }

  #afterFailure(client: PgClient, err: unknown): void {
    if (isConnectionError(err)) this.#drop(client);
  }

  // ── request records: group commit ──────────────────────────────────────────────────────────

  async #commitRecords(): Promise<void> {
    const group = this.#records;
    this.#records = [];
    // A write-behind batch that is due goes in the same transaction (one commit for both) when
    // both can take one round trip; else (or when that transaction failed) it is written after
    // the records, as it would have been.
    let batch = this.#behindDue() ? this.#takeBatch() : null;
    const refuse = (job: RecordJob, err: Error): void => {
      this.#recordFailures++;
      job.reject(err);
    };
    try {
      if (!this.#o.owner.isHeld()) {
        const reason = 'the owner lock on PostgreSQL is not held (its connection was lost; reconnecting)';
        this.#lastWriteError = reason;
        for (const job of group) refuse(job, new StoreWriteError(`recording the request failed: ${reason}`));
        return;
      }
      // Refused before any statement: what PostgreSQL text cannot hold, and ids repeated in the group.
      const seen = new Set<string>();
      const jobs: RecordJob[] = [];
      for (const job of group) {
        if (recordHasNul(job.record)) refuse(job, new StoreWriteError('recording the request failed: the request holds a NUL character, which PostgreSQL text cannot store'));
        else if (seen.has(job.record.callId)) refuse(job, new StoreWriteError('recording the request failed: a call with this id is already recorded'));
        else {
          seen.add(job.record.callId);
          jobs.push(job);
        }
      }
      if (jobs.length === 0) return;
      const sessionIds = [...new Set(jobs.map((j) => j.record.sessionId))];
      try {
        const client = await this.#connection();
        let outcome: RecordOutcome | null = null;
        const records = this.#prepareRecordsFast(jobs, sessionIds);
        const behind = records === null || batch === null ? null : this.#prepareBehindFast(batch.items);
        if (records !== null && behind?.statement != null) {
          let row: { outcome: string; chunk_block: number | null; behind_outcome: string } | undefined;
          try {
            row = ((await client.query(combinedStatement(records.statement, behind.statement))) as QueryResultLike).rows[0] as typeof row;
          } catch (err) {
            // Either part may have failed it: the records are tried once more alone, then the batch
            // alone (below, with the retries and the item-by-item fallback of any batch).
            this.#combinedFailures++;
            this.#writeErrors++;
            for (const sessionId of sessionIds) this.#chunks.forget(sessionId);
            if (isConnectionError(err)) throw err;
            const client2 = await this.#connection();
            outcome = (await this.#sendRecordsFast(client2, this.#prepareRecordsFast(jobs, sessionIds))) ?? (await this.#recordLocked(client2, jobs));
          }
          if (row !== undefined) {
            this.#combinedCommits++;
            // Committed: the batch's part first (whatever happens to the records next).
            if (this.#afterBehindFast(behind, row.behind_outcome)) {
              settle(behind.outcome, batch!.items);
              batch = null;
            }
            outcome = this.#afterRecordsFast(records, row) ?? (await this.#recordLocked(client, jobs));
          }
        } else {
          outcome = (await this.#sendRecordsFast(client, records)) ?? (await this.#recordLocked(client, jobs));
        }
        this.#lastWriteError = null;
        for (const [job, err] of outcome!.refused) refuse(job, err);
        for (const job of outcome!.accepted) job.resolve();
      } catch (err) {
        for (const sessionId of sessionIds) this.#chunks.forget(sessionId);
        const reason = describePgError(err, this.#o.settings.url);
        this.#lastWriteError = reason;
        for (const job of jobs) refuse(job, new StoreWriteError(`recording the request failed: ${reason}`));
      }
    } finally {
      if (batch !== null) await this.#writeBatch(batch);
    }
  }

  /** A write-behind batch is due, and none waits to be retried (that one goes alone). */
  #behindDue(): boolean {
    return this.#retry === null && this.#queue.length > 0 && (this.#batchDue || this.#queuedWaiters > 0 || this.#queuedRows >= this.#o.maxBatch || this.#closed);
  }

  /**
   * The one-round-trip write of a group of records, built: one call of aigov_record_calls, which
   * locks the head, checks under the lock that no call id is taken, no session is another
   * principal's, the remembered chunks are still there and the sessions taken for new have none;
   * writes the group and links its entries. Null when the group must take the locked path
   * (nothing sent): a refusal inside the group, or a body needing more chunk ids than this
   * writer has reserved.
   */
  #prepareRecordsFast(jobs: readonly RecordJob[], sessionIds: readonly string[]): PreparedRecords | null {
    this.#chunkRows.startFast();
    this.#chunks.begin();
    const entries = new UnlinkedEntries();
    const built = this.#buildRecords(jobs, new Map(), new Set(), entries);
    const chunked = jobs.some((j) => j.record.requestBody.length >= CHUNK_MIN_BODY);
    if (built.refused.length > 0 || this.#chunkRows.overflow) {
      for (const sessionId of sessionIds) this.#chunks.forget(sessionId); // ids it remembered were never written
      return null;
    }
    const reserve = this.#reserveFor(chunked, false);
    const statement = recordFastStatement(this.#o.owner.id, chunked ? this.#chunkRows.generation() : null, reserve, [...this.#chunkRows.fresh], built, this.#chunkRows.rows, entries);
    return { built, reserve, sessionIds, statement };
  }

  /** Sends a prepared group alone (its own transaction, committed at its Sync); null: the locked path's turn. */
  async #sendRecordsFast(client: PgClient, prepared: PreparedRecords | null): Promise<RecordOutcome | null> {
    if (prepared === null) return null;
    const row = ((await client.query(prepared.statement)) as QueryResultLike).rows[0] as { outcome: string; chunk_block: number | null } | undefined;
    return this.#afterRecordsFast(prepared, row);
  }

  /** After the statement: the group, committed; or null (nothing written) when the database said 'retry'. */
  #afterRecordsFast(prepared: PreparedRecords, row: { outcome: string; chunk_block: number | null } | undefined): RecordOutcome | null {
    if (row?.outcome !== 'ok') {
      this.#fastRetries++;
      for (const sessionId of prepared.sessionIds) this.#chunks.forget(sessionId);
      return null;
    }
    this.#chunkRows.committed(prepared.reserve > 0 && row.chunk_block !== null ? { first: row.chunk_block, size: prepared.reserve } : null);
    this.#recordCommits++;
    this.#fastCommits++;
    this.#remember(prepared.built);
    return prepared.built;
  }

  /**
   * Two round trips: BEGIN, the head lock and the reads under it (sessions and call ids known,
   * chunk hashes of sessions not remembered); then one statement with the rows, the entries
   * linked here, and COMMIT. Refuses records one by one (an id taken, a session of another principal).
   */
  async #recordLocked(client: PgClient, jobs: readonly RecordJob[]): Promise<RecordOutcome> {
    const sessionIds = [...new Set(jobs.map((j) => j.record.sessionId))];
    const chunkSessions = [...new Set(jobs.filter((j) => j.record.requestBody.length >= CHUNK_MIN_BODY && !this.#chunks.remembers(j.record.sessionId)).map((j) => j.record.sessionId))];
    const [head, known, chunkRows] = await this.#begin(client, [
      {
        name: 'aigov_record_read',
        text: `SELECT 0 AS k, id, subject, issuer FROM sessions WHERE id = ANY($1::text[])
               UNION ALL SELECT 1 AS k, id, NULL, NULL FROM calls WHERE id = ANY($2::text[])`,
        values: [sessionIds, jobs.map((j) => j.record.callId)],
      },
      ...(chunkSessions.length === 0
        ? []
        : [{ name: 'aigov_chunks_read', text: "SELECT session_id, encode(hash, 'hex') AS hash, id FROM body_chunks WHERE session_id = ANY($1::text[])", values: [chunkSessions] }]),
    ]);
    const owners = new Map<string, { subject: string; issuer: string }>();
    const recorded = new Set<string>();
    for (const row of known!.rows as { k: number; id: string; subject: string | null; issuer: string | null }[]) {
      if (row.k === 0) owners.set(row.id, { subject: row.subject!, issuer: row.issuer! });
      else recorded.add(row.id);
    }
    const loaded = new Map<string, [string, number][]>();
    for (const row of (chunkRows?.rows ?? []) as { session_id: string; hash: string; id: number }[]) {
      let list = loaded.get(row.session_id);
      if (list === undefined) loaded.set(row.session_id, (list = []));
      list.push([row.hash, row.id]);
    }
    this.#chunkRows.startLocked(head, loaded);
    this.#chunks.begin();
    const chain = new ChainAppender(head);
    const built = this.#buildRecords(jobs, owners, recorded, chain);
    if (built.accepted.length === 0) {
      await this.#rollback(client);
      return built;
    }
    // A node names only chunks of lower ids (request-chunks.ts). This group's chunks, and those it
    // read, may be above the fast path's block: the ids after them become its next block.
    const reserve = this.#reserveFor(jobs.some((j) => j.record.requestBody.length >= CHUNK_MIN_BODY), this.#chunkRows.rows.id.length > 0 || loaded.size > 0);
    const blockFirst = this.#chunkRows.next;
    await this.#commit(client, recordLockedStatement(this.#o.owner.id, built, this.#chunkRows.rows, chain, blockFirst + reserve));
    this.#chunkRows.committed(reserve > 0 ? { first: blockFirst, size: reserve } : null);
    this.#recordCommits++;
    this.#remember(built);
    return built;
  }

  /**
   * The rows of a group of records and their entries. `owners` (sessions' principals) and
   * `recorded` (call ids taken) are what the database holds, as far as the caller knows; records
   * that clash with them or with an earlier record of the group are refused.
   */
  #buildRecords(jobs: readonly RecordJob[], owners: Map<string, { subject: string; issuer: string }>, recorded: ReadonlySet<string>, entries: EntrySink): BuiltRecords {
    const sessions = new SessionColumns();
    const calls = new CallColumns();
    const raws = { callId: [] as string[], keyId: [] as string[], sealed: [] as Buffer[] };
    const accepted: RecordJob[] = [];
    const refused: [RecordJob, Error][] = [];
    for (const job of jobs) {
      const r = job.record;
      const p = r.principal;
      if (recorded.has(r.callId)) {
        refused.push([job, new StoreWriteError('recording the request failed: a call with this id is already recorded')]);
        continue;
      }
      const owner = owners.get(r.sessionId);
      if (owner !== undefined && (owner.subject !== p.subject || owner.issuer !== p.issuer)) {
        refused.push([job, new SessionOwnerConflictError()]);
        continue;
      }
      if (owner === undefined) owners.set(r.sessionId, { subject: p.subject, issuer: p.issuer });
      sessions.add(r);
      const chunked = this.#chunks.write(r.sessionId, r.requestBody);
      const requestBody = chunked === null ? r.requestBody : '';
      const row = {
        id: r.callId, session_id: r.sessionId, subject: p.subject, email: p.email, groups: JSON.stringify(p.groups), issuer: p.issuer,
        client_id: p.clientId, user_agent: r.client.userAgent, remote_address: r.client.remoteAddress, sdk: r.client.sdk, provider: r.provider,
        provider_kind: r.providerKind, endpoint: r.endpoint, method: r.method, path: r.path, model: r.model,
        stream: r.stream ? 1 : 0, request_body: requestBody, started_at: r.startedAt,
      };
      calls.push(row, chunked?.parts ?? null, JSON.stringify(r.decisions));
      entries.append('request', r.callId, null, requestContentHash(row, chunked === null ? null : { text: chunked.parts, added: chunked.added }));
      const raw = r.rawCopy ?? null;
      if (raw !== null) {
        raws.callId.push(r.callId);
        raws.keyId.push(raw.keyId);
        raws.sealed.push(Buffer.from(raw.sealed.buffer, raw.sealed.byteOffset, raw.sealed.byteLength));
        entries.append('raw', r.callId, null, rawCopyContentHash(r.callId, raw.keyId, raw.sealed));
      }
      accepted.push(job);
    }
    return { accepted, refused, sessions, calls, raws };
  }

  /**
   * Chunk ids to reserve with this group's write, when bodies of this group may be stored as
   * chunks (a writer that never stores chunks reserves none) and `now`, or when what is left is
   * under half a block or twice what this group took. A block holds `chunkBlock` ids, or four times
   * what this group took when more (under group commit, a group's needs grow with its size).
   */
  #reserveFor(chunked: boolean, now: boolean): number {
    if (!chunked) return 0;
    const used = this.#chunkRows.rows.id.length;
    return now || this.#chunkRows.spare < Math.max(this.#o.chunkBlock / 2, 2 * used) ? Math.max(this.#o.chunkBlock, 4 * used) : 0;
  }

  /** After a record commit: what the write-behind of these calls can then do without reading them first. */
  #remember(built: BuiltRecords): void {
    const c = built.calls.columns;
    for (let i = 0; i < c.id.length; i++) this.#keepInFlight(c.id[i] as string, { nextSeq: 0, decisions: c.decisions[i] as string });
  }

  #setNextSeq(callId: string, nextSeq: number): void {
    const memo = this.#inFlight.get(callId);
    if (memo === undefined) this.#keepInFlight(callId, { nextSeq, decisions: null });
    else memo.nextSeq = nextSeq;
  }

  #keepInFlight(callId: string, memo: { nextSeq: number; decisions: string | null }): void {
    this.#inFlight.set(callId, memo);
    if (this.#inFlight.size > IN_FLIGHT_REMEMBERED) this.#inFlight.delete(this.#inFlight.keys().next().value!);
  }

  // ── write-behind ───────────────────────────────────────────────────────────────────────────

  #takeBatch(): Batch | null {
    if (this.#queue.length === 0) return null;
    let rows = 0;
    let count = 0;
    let waiters = 0;
    while (count < this.#queue.length && rows < this.#o.maxBatch) {
      const item = this.#queue[count]!;
      rows += rowsOf(item);
      if (item.kind !== 'events') waiters++;
      count++;
    }
    const items = this.#queue.slice(0, count);
    this.#queue = this.#queue.slice(count);
    this.#queuedRows -= rows;
    this.#queuedWaiters -= waiters;
    return { items, rows, attempts: 0 };
  }

  /** `taken`: a batch already taken from the queue (by a record group it could not go with). */
  async #writeBatch(taken: Batch | null = null): Promise<void> {
    const batch = taken ?? this.#retry ?? this.#takeBatch();
    if (taken === null) this.#retry = null;
    if (batch === null) return;
    try {
      const outcome = await this.#writeItems(batch.items);
      this.#lastWriteError = null;
      settle(outcome, batch.items);
      return;
    } catch (err) {
      if (this.#batchFailed(batch, err)) return;
    }
    // Second failure: isolate the items, so a single bad one cannot take the batch down with it.
    // Not when the database cannot be reached at all: trying each item would wait for a connection
    // per item (a shutdown would hang on them); they all share that fate.
    let dropped = 0;
    let lastError: unknown = null;
    let unreachable = false;
    const outcome: Outcome = { ok: [], failed: [] };
    for (const item of batch.items) {
      if (item.kind === 'flush') continue;
      if (unreachable) {
        this.#writeErrors++;
        dropped += rowsOf(item);
        if (item.kind === 'events') this.#lostEvents.add(item.callId);
        else outcome.failed.push([item.waiter, `writing the call result failed: ${describePgError(lastError, this.#o.settings.url)}`]);
        continue;
      }
      try {
        const one = await this.#writeItems([item]);
        outcome.ok.push(...one.ok);
        outcome.failed.push(...one.failed);
      } catch (err) {
        this.#writeErrors++;
        dropped += rowsOf(item);
        lastError = err;
        unreachable = isConnectionError(err);
        if (item.kind === 'events') this.#lostEvents.add(item.callId);
        else outcome.failed.push([item.waiter, `writing the call result failed: ${describePgError(err, this.#o.settings.url)}`]);
      }
    }
    settle(outcome, batch.items);
    if (dropped > 0) {
      this.#droppedRows += dropped;
      this.#lastWriteError = describePgError(lastError, this.#o.settings.url);
      this.#report(`dropped ${dropped} of ${batch.rows} queued rows after a retry: ${this.#lastWriteError}`);
    } else {
      this.#lastWriteError = null;
    }
  }

  /**
   * A batch's attempt failed: the first time it is kept for a retry after an interval (true);
   * the second time (false) the caller writes its items one by one.
   */
  #batchFailed(batch: Batch, err: unknown): boolean {
    this.#writeErrors++;
    const reason = describePgError(err, this.#o.settings.url);
    this.#lastWriteError = reason;
    if (batch.attempts === 0 && !this.#closed) {
      batch.attempts = 1;
      this.#retry = batch;
      this.#report(`writing ${batch.rows} queued rows failed, will retry: ${reason}`);
      // retry after an interval, not at once: a lock or a restarting server needs a moment
      this.#batchDue = false;
      this.#timer ??= setTimeout(() => {
        this.#timer = null;
        this.#batchDue = true;
        this.#pump();
      }, Math.max(this.#o.batchIntervalMs, 1));
      return true;
    }
    this.#report(`writing ${batch.rows} queued rows failed again, writing them one by one: ${reason}`);
    return false;
  }

  /**
   * Writes the items in one transaction; throws (after rolling back) when it cannot. Returns the
   * finishes it settles, valid only because it committed.
   */
  async #writeItems(items: readonly QueueItem[]): Promise<Outcome> {
    const outcome: Outcome = { ok: [], failed: [] };
    // What PostgreSQL text cannot hold is refused here, alone, before any statement.
    const writable: QueueItem[] = [];
    for (const item of items) {
      if (item.kind === 'events' && item.events.some((e) => hasNul(e.raw))) {
        this.#lostEvents.add(item.callId);
        this.#droppedRows += item.events.length;
        this.#report(`dropped ${item.events.length} stream events holding a NUL character, which PostgreSQL text cannot store`);
      } else if (item.kind === 'finish' && resultHasNul(item.result)) {
        outcome.failed.push([item.waiter, 'the result holds a NUL character, which PostgreSQL text cannot store']);
      } else if (item.kind !== 'flush') {
        writable.push(item);
      }
    }
    if (writable.length === 0) return outcome;
    const client = await this.#connection();
    const fast = this.#prepareBehindFast(writable);
    if (fast !== null) {
      const row = fast.statement === null ? undefined : (((await client.query(fast.statement)) as QueryResultLike).rows[0] as { outcome?: string } | undefined);
      if (this.#afterBehindFast(fast, row?.outcome)) {
        outcome.ok.push(...fast.outcome.ok);
        outcome.failed.push(...fast.outcome.failed);
        return outcome;
      }
    }
    return this.#writeBehindLocked(client, writable, outcome);
  }

  /**
   * The one-round-trip write of a write-behind batch, built (aigov_write_behind): when every call
   * of the batch was recorded by this writer and is remembered (the next event seq, the decisions
   * recorded), nothing needs reading first; the function checks under the head lock that each
   * result's call is still pending and each events' call exists. Null (nothing changed here) sends
   * the batch to the locked path: a call not remembered, a second result for one call, text
   * PostgreSQL cannot hold (refused item by item there). Nothing to write: a statement of null.
   */
  #prepareBehindFast(items: readonly QueueItem[]): PreparedBehind | null {
    const entries = new UnlinkedEntries();
    const ev = new EventColumns();
    const fin = new FinishColumns();
    const nextSeq = new Map<string, number>();
    const settled = new Set<string>();
    const outcome: Outcome = { ok: [], failed: [] };
    for (const item of items) {
      if (item.kind === 'events') {
        const memo = this.#inFlight.get(item.callId);
        if (memo === undefined || settled.has(item.callId) || item.events.some((e) => hasNul(e.raw))) return null;
        let seq = nextSeq.get(item.callId) ?? memo.nextSeq;
        const first = seq;
        const content = eventsContentHasher(item.callId);
        for (const event of item.events) {
          const offsetMs = Math.round(event.offsetMs);
          ev.push(item.callId, seq, offsetMs, event.raw);
          content.add(seq, offsetMs, event.raw);
          seq++;
        }
        if (seq > first) entries.events(item.callId, first, seq - 1, content.hash());
        nextSeq.set(item.callId, seq);
      } else if (item.kind === 'finish') {
        const r = item.result;
        const memo = this.#inFlight.get(r.callId);
        if (memo === undefined || memo.decisions === null || settled.has(r.callId) || resultHasNul(r)) return null;
        settled.add(r.callId);
        if (this.#lostEvents.has(r.callId)) {
          outcome.failed.push([item.waiter, 'some of its stream events could not be written']);
          continue;
        }
        const decisions = r.decisions.length === 0 ? memo.decisions : JSON.stringify([...(JSON.parse(memo.decisions) as PolicyDecisionRecord[]), ...r.decisions]);
        const values = resultValues(r, decisions);
        fin.push(values);
        entries.append('result', r.callId, null, resultContentHash(values));
        outcome.ok.push(item.waiter);
      }
    }
    return { statement: entries.size > 0 ? behindFastStatement(ev, fin, entries) : null, nextSeq, settled, outcome };
  }

  /** After the statement (or none): true when the batch is written (its outcome filled in); false (nothing written) when the database said 'retry'. */
  #afterBehindFast(prepared: PreparedBehind, outcome: string | undefined): boolean {
    if (prepared.statement !== null) {
      if (outcome !== 'ok') {
        this.#fastRetries++;
        return false;
      }
      this.#fastCommits++;
    }
    for (const [callId, seq] of prepared.nextSeq) this.#setNextSeq(callId, seq);
    for (const callId of prepared.settled) {
      this.#inFlight.delete(callId);
      this.#lostEvents.delete(callId);
    }
    return true;
  }

  /** Two round trips: BEGIN, the head lock and the calls' state read under it; then the write and COMMIT. */
  async #writeBehindLocked(client: PgClient, writable: readonly QueueItem[], outcome: Outcome): Promise<Outcome> {
    const wanted = new Set<string>();
    for (const item of writable) {
      if (item.kind === 'finish') wanted.add(item.result.callId);
      else if (item.kind === 'events' && !this.#inFlight.has(item.callId)) wanted.add(item.callId);
    }
    const [head, known] = await this.#begin(client, [
      {
        name: 'aigov_behind_read',
        text: 'SELECT c.id, c.status, c.decisions, (SELECT max(seq) FROM stream_events e WHERE e.call_id = c.id) AS max_seq FROM calls c WHERE c.id = ANY($1::text[])',
        values: [[...wanted]],
      },
    ]);
    const calls = new Map<string, { status: string; decisions: string; maxSeq: number | null }>();
    for (const row of known!.rows as { id: string; status: string; decisions: string; max_seq: number | null }[]) {
      calls.set(row.id, { status: row.status, decisions: row.decisions, maxSeq: row.max_seq });
    }
    const chain = new ChainAppender(head);
    const ev = new EventColumns();
    const fin = new FinishColumns();
    const nextSeq = new Map<string, number>(); // applied to #inFlight only once committed
    const finished: string[] = [];
    let orphans = 0;
    for (const item of writable) {
      if (item.kind === 'events') {
        let seq = nextSeq.get(item.callId) ?? this.#inFlight.get(item.callId)?.nextSeq;
        if (seq === undefined) {
          const call = calls.get(item.callId);
          if (call === undefined) {
            orphans += item.events.length;
            continue;
          }
          seq = call.maxSeq === null ? 0 : call.maxSeq + 1;
        }
        const first = seq;
        const content = eventsContentHasher(item.callId);
        for (const event of item.events) {
          const offsetMs = Math.round(event.offsetMs);
          ev.push(item.callId, seq, offsetMs, event.raw);
          content.add(seq, offsetMs, event.raw);
          seq++;
        }
        if (seq > first) chain.events(item.callId, first, seq - 1, content.hash());
        nextSeq.set(item.callId, seq);
      } else if (item.kind === 'finish') {
        const r = item.result;
        const current = calls.get(r.callId);
        if (current === undefined) {
          orphans++;
          outcome.failed.push([item.waiter, 'the call was never recorded']);
          continue;
        }
        if (current.status !== 'pending') {
          outcome.failed.push([item.waiter, 'the call already has a result']);
          continue;
        }
        if (this.#lostEvents.has(r.callId)) {
          outcome.failed.push([item.waiter, 'some of its stream events could not be written']);
          finished.push(r.callId);
          continue;
        }
        const decisions = r.decisions.length === 0
          ? current.decisions
          : JSON.stringify([...(JSON.parse(current.decisions) as PolicyDecisionRecord[]), ...r.decisions]);
        const values = resultValues(r, decisions);
        fin.push(values);
        chain.append('result', r.callId, null, resultContentHash(values));
        calls.set(r.callId, { ...current, status: r.status }); // a second finish in this batch finds it settled
        finished.push(r.callId);
        outcome.ok.push(item.waiter);
      }
    }
    if (chain.size === 0) {
      await this.#rollback(client);
    } else {
      await this.#commit(client, behindStatement(ev, fin, chain));
    }
    for (const [callId, seq] of nextSeq) this.#setNextSeq(callId, seq);
    for (const callId of finished) {
      this.#inFlight.delete(callId);
      this.#lostEvents.delete(callId);
    }
    if (orphans > 0) {
      this.#orphanRows += orphans;
      this.#report(`skipped ${orphans} queued rows of calls that were never recorded`);
    }
    return outcome;
  }

  #report(message: string): void {
    try {
      this.#o.report(message);
    } catch {
      // a throwing callback must not break the write path
    }
  }
}

// ── columns and statements ───────────────────────────────────────────────────────────────────

interface QueryResultLike {
  readonly rows: unknown[];
}

class SessionColumns {
  readonly #byId = new Map<string, { subject: string; issuer: string; email: string | null; startedAt: number; lastCallAt: number; count: number }>();

  /** The first record of a session in the group names its owner and start; the others count. */
  add(r: CallRequestRecord): void {
    const s = this.#byId.get(r.sessionId);
    if (s === undefined) {
      this.#byId.set(r.sessionId, { subject: r.principal.subject, issuer: r.principal.issuer, email: r.principal.email, startedAt: r.startedAt, lastCallAt: r.startedAt, count: 1 });
    } else {
      s.lastCallAt = Math.max(s.lastCallAt, r.startedAt);
      s.count++;
    }
  }

  columns(): { id: string[]; subject: string[]; issuer: string[]; email: (string | null)[]; startedAt: number[]; lastCallAt: number[]; count: number[] } {
    const out = { id: [] as string[], subject: [] as string[], issuer: [] as string[], email: [] as (string | null)[], startedAt: [] as number[], lastCallAt: [] as number[], count: [] as number[] };
    for (const [id, s] of this.#byId) {
      out.id.push(id);
      out.subject.push(s.subject);
      out.issuer.push(s.issuer);
      out.email.push(s.email);
      out.startedAt.push(s.startedAt);
      out.lastCallAt.push(s.lastCallAt);
      out.count.push(s.count);
    }
    return out;
  }
}

const CALL_COLUMNS = [
  'id', 'session_id', 'subject', 'email', 'groups', 'issuer', 'client_id', 'user_agent', 'remote_address', 'sdk', 'provider',
  'provider_kind', 'endpoint', 'method', 'path', 'model', 'stream', 'request_body', 'request_parts', 'decisions', 'started_at',
] as const;

class CallColumns {
  readonly columns = Object.fromEntries(CALL_COLUMNS.map((c) => [c, [] as unknown[]])) as Record<(typeof CALL_COLUMNS)[number], unknown[]>;

  push(row: Record<string, string | number | null>, parts: string | null, decisions: string): void {
    for (const column of CALL_COLUMNS) {
      this.columns[column].push(column === 'request_parts' ? parts : column === 'decisions' ? decisions : row[column]);
    }
  }
}

class EventColumns {
  readonly callId: string[] = [];
  readonly seq: number[] = [];
  readonly offsetMs: number[] = [];
  readonly raw: string[] = [];

  push(callId: string, seq: number, offsetMs: number, raw: string): void {
    this.callId.push(callId);
    this.seq.push(seq);
    this.offsetMs.push(offsetMs);
    this.raw.push(raw);
  }
}

const RESULT_COLUMNS = ['id', 'status', 'http_status', 'response_body', 'usage', 'first_byte_ms', 'latency_ms', 'error_code', 'error_message', 'decisions', 'ended_at'] as const;
type ResultRow = { readonly [K in (typeof RESULT_COLUMNS)[number]]: string | number | null };

class FinishColumns {
  readonly columns = Object.fromEntries(RESULT_COLUMNS.map((c) => [c, [] as unknown[]])) as Record<(typeof RESULT_COLUMNS)[number], unknown[]>;

  push(row: ResultRow): void {
    for (const column of RESULT_COLUMNS) this.columns[column].push(row[column]);
  }
}

/**
 * One statement: the events, the results, the entries, the head. Only pending calls get a result:
 * the transaction read their status under the head lock, which every writer of a status holds.
 * (No `status = 'pending'` here: it would lead the planner to the partial index of pending calls,
 * whose entries of finished calls stay until VACUUM — a scan that grows with every call.)
 */
function behindStatement(ev: EventColumns, fin: FinishColumns, chain: ChainAppender): { name: string; text: string; values: unknown[] } {
  const st = new Statement();
  const f = fin.columns;
  const text = `WITH new_events AS (
      INSERT INTO stream_events (call_id, seq, offset_ms, raw)
      SELECT * FROM unnest(${st.p(ev.callId, 'text[]')}, ${st.p(ev.seq, 'integer[]')}, ${st.p(ev.offsetMs, 'bigint[]')}, ${st.p(ev.raw, 'text[]')})
    ), results AS (
      UPDATE calls AS c SET status = f.status, http_status = f.http_status, response_body = f.response_body, usage = f.usage,
        first_byte_ms = f.first_byte_ms, latency_ms = f.latency_ms, error_code = f.error_code, error_message = f.error_message,
        decisions = f.decisions, ended_at = f.ended_at
      FROM unnest(${st.p(f.id, 'text[]')}, ${st.p(f.status, 'text[]')}, ${st.p(f.http_status, 'integer[]')}, ${st.p(f.response_body, 'text[]')},
        ${st.p(f.usage, 'text[]')}, ${st.p(f.first_byte_ms, 'bigint[]')}, ${st.p(f.latency_ms, 'bigint[]')}, ${st.p(f.error_code, 'text[]')},
        ${st.p(f.error_message, 'text[]')}, ${st.p(f.decisions, 'text[]')}, ${st.p(f.ended_at, 'bigint[]')})
        AS f(id, status, http_status, response_body, usage, first_byte_ms, latency_ms, error_code, error_message, decisions, ended_at)
      WHERE c.id = f.id
    ), ${entriesSql(st.values.length + 1).cte}
    ${entriesSql(st.values.length + 1).head}`;
  st.values.push(...entriesParams(chain));
  return { name: 'aigov_behind_write', text, values: st.values };
}

interface RecordOutcome {
  readonly accepted: RecordJob[];
  readonly refused: [RecordJob, Error][];
}

interface BuiltRecords extends RecordOutcome {
  readonly sessions: SessionColumns;
  readonly calls: CallColumns;
  readonly raws: { readonly callId: string[]; readonly keyId: string[]; readonly sealed: Buffer[] };
}

type ChunkColumns = PgChunkRows['rows'];

type PgStatement = { name: string; text: string; values: unknown[] };

interface PreparedRecords {
  readonly built: BuiltRecords;
  readonly reserve: number;
  readonly sessionIds: readonly string[];
  readonly statement: PgStatement;
}

interface PreparedBehind {
  /** Null: nothing to write (only refusals). */
  readonly statement: PgStatement | null;
  readonly nextSeq: Map<string, number>;
  readonly settled: Set<string>;
  readonly outcome: Outcome;
}

/**
 * A group of records and a write-behind batch in one transaction (one commit): both functions in
 * one statement. Each says 'ok' or 'retry' for its part (a part that says 'retry' wrote nothing).
 */
function combinedStatement(records: PgStatement, behind: PgStatement): PgStatement {
  const shift = records.values.length;
  const call = (text: string): string => text.slice(text.indexOf('FROM ') + 5);
  const behindCall = call(behind.text).replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + shift}`);
  return {
    name: 'aigov_record_behind_fast',
    text: `SELECT r.outcome, r.chunk_block, b.outcome AS behind_outcome FROM ${call(records.text)} AS r, ${behindCall} AS b`,
    values: [...records.values, ...behind.values],
  };
}

/** The locked path's write of a group of records: one statement, the entries linked by `chain`; chain_head.next_chunk moves to `nextChunk`. */
function recordLockedStatement(owner: string, built: BuiltRecords, chunks: ChunkColumns, chain: ChainAppender, nextChunk: number): { name: string; text: string; values: unknown[] } {
  const st = new Statement();
  const c = built.calls.columns;
  const s = built.sessions.columns();
  const raws = built.raws;
  const text = `WITH new_sessions AS (
      INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count)
      SELECT * FROM unnest(${st.p(s.id, 'text[]')}, ${st.p(s.subject, 'text[]')}, ${st.p(s.issuer, 'text[]')}, ${st.p(s.email, 'text[]')},
        ${st.p(s.startedAt, 'bigint[]')}, ${st.p(s.lastCallAt, 'bigint[]')}, ${st.p(s.count, 'integer[]')})
      ON CONFLICT (id) DO UPDATE SET call_count = sessions.call_count + excluded.call_count,
        last_call_at = greatest(sessions.last_call_at, excluded.last_call_at)
    ), new_calls AS (
      INSERT INTO calls (id, session_id, subject, email, groups, issuer, client_id, user_agent, remote_address, sdk, provider,
        provider_kind, endpoint, method, path, model, stream, request_body, request_parts, decisions, started_at, status, owner)
      SELECT u.*, 'pending', ${st.p(owner, 'text')} FROM unnest(${st.p(c.id, 'text[]')}, ${st.p(c.session_id, 'text[]')}, ${st.p(c.subject, 'text[]')},
        ${st.p(c.email, 'text[]')}, ${st.p(c.groups, 'text[]')}, ${st.p(c.issuer, 'text[]')}, ${st.p(c.client_id, 'text[]')}, ${st.p(c.user_agent, 'text[]')},
        ${st.p(c.remote_address, 'text[]')}, ${st.p(c.sdk, 'text[]')}, ${st.p(c.provider, 'text[]')}, ${st.p(c.provider_kind, 'text[]')},
        ${st.p(c.endpoint, 'text[]')}, ${st.p(c.method, 'text[]')}, ${st.p(c.path, 'text[]')}, ${st.p(c.model, 'text[]')}, ${st.p(c.stream, 'smallint[]')},
        ${st.p(c.request_body, 'text[]')}, ${st.p(c.request_parts, 'text[]')}, ${st.p(c.decisions, 'text[]')}, ${st.p(c.started_at, 'bigint[]')}) AS u
    ), new_chunks AS (
      INSERT INTO body_chunks (id, session_id, hash, kind, text)
      SELECT x.i, x.s, decode(x.h, 'hex'), x.k, x.t FROM unnest(${st.p(chunks.id, 'bigint[]')}, ${st.p(chunks.session, 'text[]')}, ${st.p(chunks.hash, 'text[]')},
        ${st.p(chunks.kind, 'smallint[]')}, ${st.p(chunks.text, 'text[]')}) AS x(i, s, h, k, t)
    ), new_raw AS (
      INSERT INTO raw_copies (call_id, key_id, sealed)
      SELECT * FROM unnest(${st.p(raws.callId, 'text[]')}, ${st.p(raws.keyId, 'text[]')}, ${st.p(raws.sealed, 'bytea[]')})
    ), ${entriesSql(st.values.length + 1).cte}
    ${entriesSql(st.values.length + 1).head}, next_chunk = ${'$'}${st.values.length + 11}`;
  st.values.push(...entriesParams(chain), nextChunk);
  return { name: 'aigov_record_write', text, values: st.values };
}

/** The fast path's write of a group of records: one call of aigov_record_calls (migration 6). */
function recordFastStatement(owner: string, generation: number | null, reserve: number, fresh: readonly string[], built: BuiltRecords, chunks: ChunkColumns, entries: UnlinkedEntries): { name: string; text: string; values: unknown[] } {
  const st = new Statement();
  const c = built.calls.columns;
  const s = built.sessions.columns();
  const raws = built.raws;
  const args = [
    st.p(owner, 'text'), st.p(generation, 'bigint'), st.p(reserve, 'bigint'), st.p(fresh, 'text[]'),
    st.p(s.id, 'text[]'), st.p(s.subject, 'text[]'), st.p(s.issuer, 'text[]'), st.p(s.email, 'text[]'), st.p(s.startedAt, 'bigint[]'), st.p(s.lastCallAt, 'bigint[]'), st.p(s.count, 'integer[]'),
    ...CALL_COLUMNS.map((column) => st.p(c[column], column === 'stream' ? 'smallint[]' : column === 'started_at' ? 'bigint[]' : 'text[]')),
    st.p(chunks.id, 'bigint[]'), st.p(chunks.session, 'text[]'), st.p(chunks.hash, 'text[]'), st.p(chunks.kind, 'smallint[]'), st.p(chunks.text, 'text[]'),
    st.p(raws.callId, 'text[]'), st.p(raws.keyId, 'text[]'), st.p(raws.sealed, 'bytea[]'),
    ...unlinkedArgs(st, entries),
  ];
  return { name: 'aigov_record_fast', text: `SELECT outcome, chunk_block FROM aigov_record_calls(${args.join(', ')})`, values: st.values };
}

/** The fast path's write-behind batch: one call of aigov_write_behind (migration 6). */
function behindFastStatement(ev: EventColumns, fin: FinishColumns, entries: UnlinkedEntries): { name: string; text: string; values: unknown[] } {
  const st = new Statement();
  const f = fin.columns;
  const finishType = (column: (typeof RESULT_COLUMNS)[number]): string =>
    column === 'http_status' ? 'integer[]' : ['first_byte_ms', 'latency_ms', 'ended_at'].includes(column) ? 'bigint[]' : 'text[]';
  const args = [
    st.p(ev.callId, 'text[]'), st.p(ev.seq, 'integer[]'), st.p(ev.offsetMs, 'bigint[]'), st.p(ev.raw, 'text[]'),
    ...RESULT_COLUMNS.map((column) => st.p(f[column], finishType(column))),
    ...unlinkedArgs(st, entries),
  ];
  return { name: 'aigov_behind_fast', text: `SELECT outcome FROM aigov_write_behind(${args.join(', ')})`, values: st.values };
}

function unlinkedArgs(st: Statement, entries: UnlinkedEntries): string[] {
  return [st.p(entries.kind, 'text[]'), st.p(entries.ref, 'text[]'), st.p(entries.span, 'text[]'), st.p(entries.at, 'bigint[]'), st.p(entries.contentHash, 'text[]')];
}

/** A result's columns as written (and hashed): `decisions` already merged with the recorded ones. */
function resultValues(r: CallResultRecord, decisions: string): ResultRow {
  return {
    id: r.callId, status: r.status, http_status: r.httpStatus, response_body: r.responseBody, usage: r.usage === null ? null : JSON.stringify(r.usage),
    first_byte_ms: r.firstByteMs === null ? null : Math.round(r.firstByteMs), latency_ms: Math.round(r.latencyMs), error_code: r.errorCode,
    error_message: r.errorMessage, decisions, ended_at: r.endedAt,
  };
}

function settle(outcome: Outcome, items: readonly QueueItem[]): void {
  for (const waiter of outcome.ok) waiter.resolve();
  for (const [waiter, reason] of outcome.failed) waiter.reject(new StoreWriteError(`recording the call result failed: ${reason}`));
  for (const item of items) if (item.kind === 'flush') item.waiter.resolve();
}

function rowsOf(item: QueueItem): number {
  return item.kind === 'events' ? item.events.length : item.kind === 'finish' ? 1 : 0;
}

function hasNul(text: string | null | undefined): boolean {
  return typeof text === 'string' && text.includes('\0');
}

function recordHasNul(r: CallRequestRecord): boolean {
  const p = r.principal;
  return [r.callId, r.sessionId, r.requestBody, r.provider, r.method, r.path, r.model, r.endpoint, p.subject, p.email, p.issuer, p.clientId, r.client.userAgent, r.client.remoteAddress, r.client.sdk, r.rawCopy?.keyId].some(hasNul);
}

function resultHasNul(r: CallResultRecord): boolean {
  return [r.callId, r.responseBody, r.errorCode, r.errorMessage, r.status].some(hasNul);
}

function asWriteError(err: unknown, url: string): Error {
  if (err instanceof StoreWriteError || err instanceof SessionOwnerConflictError) return err;
  return new StoreWriteError(describePgError(err, url));
}
