/**
 * The SQLite store's writer thread: the one connection that writes the recording database, off
 * the gateway's event loop. Started by sqlite-store.ts; speaks worker-protocol.ts. Reads are the
 * reader thread's (reader-worker.ts, its own read-only connection), except that this thread
 * commits the access-log row of an auditor read (`access`) and answers `flush`, which the main
 * thread awaits before a read whenever it has writes in flight (reads see this process's writes).
 *
 * - Request records use group commit: every record that arrived since the last commit is written
 *   in ONE `BEGIN IMMEDIATE … COMMIT` (each inside its own SAVEPOINT, so a duplicate id or a
 *   session owned by someone else fails only that record). All acks of a group go back in one
 *   message, after COMMIT and after checking that the file at the path is still the one written.
 * - Stream events and finishes: the write-behind FIFO of the former on-thread store, unchanged
 *   (batch per `batchIntervalMs` or at `maxBatch` rows, retry once, then one by one, orphans
 *   skipped). Pending request records are committed before each batch, so a batch never makes a
 *   request wait longer than one batch transaction. A finish is awaited by the gateway (the end of
 *   the answer waits for it): a queued finish makes the batch go at once, and after the COMMIT a
 *   `finished` message settles its ticket (or says why it was not written: the call has a result
 *   already, was never recorded, lost events to a dropped batch, or the write failed twice).
 * - Owner: each call row carries this writer's owner id, and an OS lock file says the owner lives
 *   (call-owners.ts). Opening settles the pending calls of owners that are gone, before `ready`.
 * - WAL: auto-checkpoint is off on this connection. Every `checkpointBytes` of committed data it
 *   wakes the checkpointer thread (checkpoint-worker.ts), which checkpoints on its own
 *   connection. Under sustained writes that PASSIVE checkpoint always lags a few frames behind,
 *   and SQLite only restarts the WAL from its start once every frame is backfilled; when the
 *   checkpointer flags that the WAL reached `walLimitBytes` — or this thread's own count of
 *   bytes committed since its last RESTART does, so the bound holds even while the checkpointer
 *   is not scheduled — this thread runs one RESTART checkpoint itself between two transactions
 *   (it only copies the lag) without busy waiting.
 *
 * Error texts leaving this thread never carry record contents (see describeError).
 */
import fs from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import type { AccessLogEntry, CallRequestRecord, PolicyDecisionRecord } from '../recording-store.ts';
import { migrateDatabase, SchemaTooNewError } from './migrations.ts';
import { ChainWriter } from './audit-chain-writer.ts';
import type { RequestChunkWriter } from '../request-chunk-writer.ts';
import { sqliteChunkWriter } from './request-chunk-rows.ts';
import { OwnerLock, settleDeadOwners } from './call-owners.ts';
import {
  ACK_CONFLICT,
  ACK_ERROR,
  ACK_OK,
  describeError,
  SHARED,
  type FromWriter,
  type QueueItem,
  type RecordAck,
  type ToWriter,
  type WriterCounters,
  type WriterData,
} from './worker-protocol.ts';
import { num, str } from './store-reads.ts';

/**
 * What a write adds to the WAL besides its text, for `checkpointBytes` (node:sqlite has no WAL
 * hook to count frames). A request record alone in its transaction writes ~6 pages (calls row
 * and its two indexes, sessions row and its two indexes): ~24 KiB with 4 KiB pages, less when
 * records share a group. Measured with bench/store-writes.ts; an overestimate only checkpoints
 * a little more often.
 */
const RECORD_OVERHEAD_BYTES = 16 * 1024;
const EVENT_OVERHEAD_BYTES = 64;
const FINISH_OVERHEAD_BYTES = 4 * 1024;

interface Batch {
  readonly items: readonly QueueItem[];
  readonly rows: number;
  attempts: number;
}

/** Finish tickets a committed transaction settles (see the `finished` message). */
interface Outcome {
  readonly ok: number[];
  readonly failed: [number, string][];
}

interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

class Writer {
  readonly #db: DatabaseSync;
  readonly #data: WriterData;
  /** Our claim on the calls we insert (calls.owner); released on close. */
  readonly #owner: OwnerLock;
  readonly #identity: FileIdentity;
  readonly #shared: Int32Array;
  readonly #send: (message: FromWriter) => void;
  readonly #stmt: Record<
    | 'begin' | 'commit' | 'rollback' | 'savepoint' | 'rollbackTo' | 'release' | 'upsertSession' | 'insertCall' | 'eventHead'
    | 'insertEvent' | 'callDecisions' | 'finishCall' | 'ping' | 'checkpoint' | 'busyTimeoutZero' | 'busyTimeoutRestore'
    | 'insertRawCopy' | 'insertAccess',
    StatementSync
  >;

  /** The audit chain (audit_log): entries written in the same transactions as the rows they cover. */
  readonly #chain: ChainWriter;
  /** Request bodies as chunks shared within a session (src/store/request-chunk-writer.ts). */
  readonly #chunks: RequestChunkWriter;

  #records: { id: number; record: CallRequestRecord }[] = [];
  #recordsImmediate: NodeJS.Immediate | null = null;

  #queue: QueueItem[] = [];
  #queuedRows = 0;
  /** Finishes in #queue: someone waits for each, so they are written at once, not after batchIntervalMs. */
  #queuedFinishes = 0;
  /** Calls some of whose stream events were dropped: their finish is refused (the record would be incomplete). */
  readonly #lostEvents = new Set<string>();
  #retry: Batch | null = null;
  readonly #nextSeq = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #closed = false;

  #writeErrors = 0;
  #droppedRows = 0;
  #orphanRows = 0;
  #settledRows = 0;
  #recordCommits = 0;
  #countersSent = '';
  #lastWriteError: string | null = null;
  #bytesSinceKick = 0;
  /** Committed since this thread last restarted the WAL: the bound does not wait for the checkpointer's thread to be scheduled. */
  #bytesSinceRestart = 0;

  constructor(db: DatabaseSync, data: WriterData, identity: FileIdentity, owner: OwnerLock, send: (message: FromWriter) => void) {
    this.#db = db;
    this.#data = data;
    this.#owner = owner;
    this.#identity = identity;
    this.#shared = new Int32Array(data.shared);
    this.#send = send;
    this.#stmt = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT record'),
      rollbackTo: db.prepare('ROLLBACK TO record'),
      release: db.prepare('RELEASE record'),
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
          provider, provider_kind, endpoint, method, path, model, stream, request_body, request_parts, decisions, started_at, status, owner)
        VALUES ($id, $sessionId, $subject, $email, $groups, $issuer, $clientId, $userAgent, $remoteAddress, $sdk,
          $provider, $providerKind, $endpoint, $method, $path, $model, $stream, $requestBody, $requestParts, $decisions, $startedAt, 'pending', $owner)`),
      insertRawCopy: db.prepare('INSERT INTO raw_copies (call_id, key_id, sealed) VALUES (?, ?, ?)'),
      eventHead: db.prepare(`
        SELECT EXISTS (SELECT 1 FROM calls WHERE id = ?1) AS present,
               (SELECT max(seq) FROM stream_events WHERE call_id = ?1) AS max_seq`),
      insertEvent: db.prepare('INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES (?, ?, ?, ?)'),
      callDecisions: db.prepare('SELECT decisions, status FROM calls WHERE id = ?'),
      // Only a pending call takes a result: one result (and one audit entry) per call, never a
      // second one over a call settled as aborted (call-owners.ts).
      finishCall: db.prepare(`
        UPDATE calls SET status = $status, http_status = $httpStatus, response_body = $responseBody, usage = $usage,
          first_byte_ms = $firstByteMs, latency_ms = $latencyMs, error_code = $errorCode, error_message = $errorMessage,
          decisions = $decisions, ended_at = $endedAt
        WHERE id = $id AND status = 'pending'`),
      ping: db.prepare('SELECT 1 AS ok'),
      insertAccess: db.prepare(`
        INSERT INTO access_log (at, subject, issuer, email, action, session_id, filter)
        VALUES ($at, $subject, $issuer, $email, $action, $sessionId, $filter)`),
      checkpoint: db.prepare('PRAGMA wal_checkpoint(RESTART)'),
      busyTimeoutZero: db.prepare('PRAGMA busy_timeout = 0'),
      busyTimeoutRestore: db.prepare(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(data.busyTimeoutMs))}`),
    };
    this.#chain = new ChainWriter(db);
    this.#chunks = sqliteChunkWriter(db);
  }

  handle(message: ToWriter): void {
    switch (message.t) {
      case 'record':
        this.#records.push({ id: message.id, record: message.record });
        // Everything that arrives before the check phase joins the same transaction.
        this.#recordsImmediate ??= setImmediate(() => this.#commitRecords());
        return;
      case 'behind': {
        if (this.#closed) return;
        for (const item of message.items) {
          this.#queue.push(item);
          this.#queuedRows += rowsOf(item);
          if (item.kind === 'finish') this.#queuedFinishes++;
        }
        this.#kick();
        return;
      }
      case 'flush':
        this.#drainAll();
        this.#reply(message.id, null, null);
        return;
      case 'health':
        this.#reply(message.id, this.#health(), null);
        return;
      case 'access': {
        // Reads are the reader thread's (reader-worker.ts); this is the one write among them.
        this.#drainAll();
        let error: string | null = null;
        try {
          this.#recordAccess(message.entry);
        } catch (err) {
          error = `reading the recording store failed: ${describeError(err)}`;
        }
        this.#reply(message.id, null, error);
        return;
      }
      case 'autocheckpoint':
        // The checkpointer thread is gone: fall back to SQLite's own checkpoints on this thread.
        this.#db.exec('PRAGMA wal_autocheckpoint = 1000');
        this.#reply(message.id, null, null);
        return;
      case 'close': {
        this.#drainAll();
        this.#closed = true;
        this.#cancelTimers();
        try {
          this.#db.exec('PRAGMA optimize');
        } catch {
          // advisory only
        }
        let error: string | null = null;
        try {
          this.#db.close(); // the last connection: checkpoints the WAL into the database file
        } catch (err) {
          error = describeError(err);
        }
        try {
          this.#owner.release(); // every call of ours has ended or never will: a later open may settle them
        } catch {
          // the lock goes with the process anyway
        }
        this.#reply(message.id, null, error);
        parentPort?.close(); // nothing else keeps this thread alive: it ends
        return;
      }
    }
  }

  // ── request records: group commit ──────────────────────────────────────────────────────

  #commitRecords(): void {
    if (this.#recordsImmediate !== null) clearImmediate(this.#recordsImmediate);
    this.#recordsImmediate = null;
    const group = this.#records;
    if (group.length === 0) return;
    this.#records = [];
    if (this.#closed) {
      this.#send({ t: 'acks', acks: group.map(({ id }) => [id, ACK_ERROR, 'the store is closed'] as const), c: this.#counters() });
      return;
    }
    const db = this.#db;
    const s = this.#stmt;
    const outcome: (RecordAck | null)[] = group.map(() => null);
    let groupError: string | null = null;
    let bytes = 0;
    try {
      s.begin.run();
      this.#chunks.begin();
    } catch (err) {
      groupError = describeError(err);
      rollbackQuietly(db, s.rollback);
    }
    if (groupError === null) {
      for (let i = 0; i < group.length; i++) {
        const { id, record } = group[i]!;
        const p = record.principal;
        const c = record.client;
        const chainMark = this.#chain.mark();
        try {
          s.savepoint.run();
          const session = s.upsertSession.run({ id: record.sessionId, subject: p.subject, issuer: p.issuer, email: p.email, at: record.startedAt });
          if (session.changes === 0) {
            s.rollbackTo.run();
            s.release.run();
            outcome[i] = [id, ACK_CONFLICT];
            continue;
          }
          const groups = JSON.stringify(p.groups);
          const stream = record.stream ? 1 : 0;
          // A body that splits is stored as chunks of its session (what earlier calls stored is named, not copied).
          const chunked = this.#chunks.write(record.sessionId, record.requestBody);
          const requestBody = chunked === null ? record.requestBody : '';
          s.insertCall.run({
            id: record.callId,
            sessionId: record.sessionId,
            subject: p.subject,
            email: p.email,
            groups,
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
            stream,
            requestBody,
            requestParts: chunked?.parts ?? null,
            decisions: JSON.stringify(record.decisions),
            startedAt: record.startedAt,
            owner: this.#owner.id,
          });
          // The sealed raw copy (audit.raw_copy), with the call row or not at all.
          const raw = record.rawCopy ?? null;
          if (raw !== null) s.insertRawCopy.run(record.callId, raw.keyId, raw.sealed);
          this.#chain.request({
            id: record.callId, session_id: record.sessionId, subject: p.subject, email: p.email, groups, issuer: p.issuer,
            client_id: p.clientId, user_agent: c.userAgent, remote_address: c.remoteAddress, sdk: c.sdk, provider: record.provider,
            provider_kind: record.providerKind, endpoint: record.endpoint, method: record.method, path: record.path, model: record.model,
            stream, request_body: requestBody, started_at: record.startedAt,
          }, chunked === null ? null : { text: chunked.parts, added: chunked.added });
          if (raw !== null) this.#chain.rawCopy(record.callId, raw.keyId, raw.sealed);
          s.release.run();
          outcome[i] = [id, ACK_OK];
          bytes += (chunked === null ? requestBody.length : chunked.bytes) + (raw?.sealed.length ?? 0) + RECORD_OVERHEAD_BYTES;
        } catch (err) {
          const reason = describeError(err);
          outcome[i] = [id, ACK_ERROR, reason];
          this.#chain.reset(chainMark);
          this.#chunks.forget(record.sessionId);
          try {
            if (!db.isTransaction) throw err; // SQLite rolled the whole transaction back (I/O error, full disk)
            s.rollbackTo.run();
            s.release.run();
          } catch {
            groupError = reason;
            break;
          }
        }
      }
      if (groupError === null) {
        try {
          s.commit.run();
          this.#recordCommits++;
          this.#chain.committed();
        } catch (err) {
          groupError = describeError(err);
        }
      }
      if (groupError !== null) {
        rollbackQuietly(db, s.rollback);
        this.#chain.rolledBack();
        for (const { record } of group) this.#chunks.forget(record.sessionId);
      }
    }
    // Committed, but into the file at our path? A file deleted or replaced under an open
    // connection keeps taking writes that no one will ever read again.
    const problem = groupError ?? this.#fileProblem();
    const acks: RecordAck[] = [];
    for (let i = 0; i < group.length; i++) {
      let ack = outcome[i] ?? null;
      if (problem !== null && (ack === null || ack[1] === ACK_OK)) ack = [group[i]!.id, ACK_ERROR, problem];
      if (ack === null) continue; // unreachable: every record has an outcome or the group failed
      if (ack[1] === ACK_OK) this.#lastWriteError = null;
      else if (ack[1] === ACK_ERROR) this.#lastWriteError = ack[2];
      acks.push(ack);
    }
    this.#send({ t: 'acks', acks, c: this.#counters() });
    if (groupError === null) this.#committed(bytes);
  }

  // ── write-behind (the FIFO of the former on-thread store) ──────────────────────────────

  #kick(): void {
    if (this.#queuedRows >= this.#data.maxBatch || this.#queuedFinishes > 0) {
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
      }, this.#data.batchIntervalMs);
    }
  }

  /** One batch per tick, so request records that arrive meanwhile get their turn in between. */
  #tick(): void {
    if (this.#closed) return;
    if (this.#records.length > 0) this.#commitRecords();
    this.#writeOneBatch();
    this.#sendCounters();
    if (this.#retry !== null) {
      // retry on the next tick, not at once: a lock or a full disk needs a moment
      if (this.#timer === null) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#tick();
        }, Math.max(this.#data.batchIntervalMs, 1));
      }
    } else if (this.#queuedRows > 0) {
      this.#kick();
    }
  }

  #drainAll(): void {
    if (this.#closed) return;
    this.#cancelTimers();
    if (this.#records.length > 0) this.#commitRecords();
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
    let finishes = 0;
    while (count < this.#queue.length && rows < this.#data.maxBatch) {
      const item = this.#queue[count]!;
      rows += rowsOf(item);
      if (item.kind === 'finish') finishes++;
      count++;
    }
    this.#queuedFinishes -= finishes;
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
      const outcome = this.#writeItems(batch.items);
      this.#lastWriteError = null;
      this.#settledRows += batch.rows;
      this.#sendFinished(outcome);
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
    const outcome: Outcome = { ok: [], failed: [] };
    for (const item of batch.items) {
      try {
        const one = this.#writeItems([item]);
        outcome.ok.push(...one.ok);
        outcome.failed.push(...one.failed);
      } catch (err) {
        this.#writeErrors++;
        dropped += rowsOf(item);
        lastError = err;
        // A call missing events must not be finished as if whole; a finish not written leaves it pending.
        if (item.kind === 'events') this.#lostEvents.add(item.callId);
        else outcome.failed.push([item.ticket, `writing the call result failed: ${describeError(err)}`]);
      }
    }
    this.#settledRows += batch.rows;
    this.#sendFinished(outcome);
    if (dropped > 0) {
      this.#droppedRows += dropped;
      this.#lastWriteError = describeError(lastError);
      this.#report(`dropped ${dropped} of ${batch.rows} queued rows after a retry: ${describeError(lastError)}`);
    } else {
      this.#lastWriteError = null;
    }
  }

  /**
   * Writes the items in one transaction; throws (after rolling back) when it cannot. Returns the
   * finish tickets it settles, valid only because it committed.
   */
  #writeItems(items: readonly QueueItem[]): Outcome {
    const moved = this.#fileProblem();
    if (moved !== null) throw new Error(moved);
    const s = this.#stmt;
    const nextSeq = new Map<string, number>(); // applied to #nextSeq only once committed
    const finished: string[] = [];
    const outcome: Outcome = { ok: [], failed: [] };
    let orphans = 0;
    let bytes = 0;
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
          const entry = this.#chain.startEvents(item.callId, seq);
          for (const event of item.events) {
            const offsetMs = Math.round(event.offsetMs);
            s.insertEvent.run(item.callId, seq, offsetMs, event.raw);
            entry.add(seq, offsetMs, event.raw);
            bytes += event.raw.length + EVENT_OVERHEAD_BYTES;
            seq++;
          }
          entry.end();
          nextSeq.set(item.callId, seq);
        } else {
          const r = item.result;
          const current = s.callDecisions.get(r.callId);
          if (current === undefined) {
            orphans++;
            outcome.failed.push([item.ticket, 'the call was never recorded']);
            continue;
          }
          if (str(current['status']) !== 'pending') {
            outcome.failed.push([item.ticket, 'the call already has a result']);
            continue;
          }
          if (this.#lostEvents.has(r.callId)) {
            outcome.failed.push([item.ticket, 'some of its stream events could not be written']);
            finished.push(r.callId);
            continue;
          }
          const decisions = r.decisions.length === 0
            ? str(current['decisions'])
            : JSON.stringify([...(JSON.parse(str(current['decisions'])) as PolicyDecisionRecord[]), ...r.decisions]);
          const finish = {
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
          };
          s.finishCall.run(finish);
          this.#chain.result({
            id: finish.id, status: finish.status, http_status: finish.httpStatus, response_body: finish.responseBody, usage: finish.usage,
            first_byte_ms: finish.firstByteMs, latency_ms: finish.latencyMs, error_code: finish.errorCode, error_message: finish.errorMessage,
            decisions: finish.decisions, ended_at: finish.endedAt,
          });
          bytes += (r.responseBody?.length ?? 0) + FINISH_OVERHEAD_BYTES;
          finished.push(r.callId);
          outcome.ok.push(item.ticket);
        }
      }
      s.commit.run();
    } catch (err) {
      rollbackQuietly(this.#db, s.rollback);
      this.#chain.rolledBack();
      throw err;
    }
    this.#chain.committed();
    for (const [callId, seq] of nextSeq) this.#nextSeq.set(callId, seq);
    for (const callId of finished) {
      this.#nextSeq.delete(callId);
      this.#lostEvents.delete(callId);
    }
    if (orphans > 0) {
      this.#orphanRows += orphans;
      this.#report(`skipped ${orphans} queued rows of calls that were never recorded`);
    }
    this.#committed(bytes);
    return outcome;
  }

  #sendFinished(outcome: Outcome): void {
    if (outcome.ok.length === 0 && outcome.failed.length === 0) return;
    this.#send({ t: 'finished', ok: outcome.ok, failed: outcome.failed, c: this.#counters() });
  }

  // ── calls cut by a crash ───────────────────────────────────────────────────────────────────

  /**
   * Marks the pending calls of owners that are gone aborted (call-owners.ts), through the chain.
   * A failure (e.g. a full disk) is reported and leaves them pending for the next open: the
   * store still opens, and refuses requests by itself if it cannot write.
   */
  settleDeadOwners(): number {
    try {
      const { settled } = settleDeadOwners(this.#db, this.#chain, this.#data.location, this.#owner.id);
      if (settled > 0) this.#committed(settled * FINISH_OVERHEAD_BYTES);
      return settled;
    } catch (err) {
      this.#report(`settling calls left pending by a stopped gateway failed; they stay pending until the next start: ${describeError(err)}`);
      return 0;
    }
  }

  // ── checkpoints ─────────────────────────────────────────────────────────────────────────

  /** After each commit: wake the checkpointer every `checkpointBytes`; catch up when it lags. */
  #committed(bytes: number): void {
    const shared = this.#shared;
    Atomics.add(shared, SHARED.commits, 1);
    this.#bytesSinceKick += bytes;
    if (this.#bytesSinceKick >= this.#data.checkpointBytes) {
      this.#bytesSinceKick = 0;
      Atomics.add(shared, SHARED.kick, 1);
      Atomics.notify(shared, SHARED.kick);
    }
    this.#bytesSinceRestart += bytes;
    // The checkpointer flags a WAL past its limit after a checkpoint; on a loaded machine that
    // thread may not run for a while, so the writer also flags it from its own count.
    if (this.#bytesSinceRestart >= this.#data.walLimitBytes) Atomics.store(shared, SHARED.restart, 1);
    if (Atomics.load(shared, SHARED.restart) === 1) {
      // RESTART copies only what the checkpointer has not backfilled yet (it stands aside while
      // the flag is set) and resets the WAL to its beginning. No busy wait: with a reader still
      // in the WAL (another process) it returns busy at once, and this runs after the next commit.
      try {
        this.#stmt.busyTimeoutZero.run();
        const row = this.#stmt.checkpoint.get();
        if (Number(row?.['busy'] ?? 1) === 0) {
          Atomics.store(shared, SHARED.restart, 0);
          this.#bytesSinceRestart = 0;
        }
      } catch {
        // failing (e.g. the file is gone): writes report that; try after the next commit
      } finally {
        try {
          this.#stmt.busyTimeoutRestore.run();
        } catch {
          // the connection is in trouble; the next write reports it
        }
      }
    }
  }

  // ── access log, health ───────────────────────────────────────────────────────────────────────

  /**
   * One access-log row in its own transaction, committed (into the file at our path) before the
   * reply: an auditor read that cannot be recorded is refused by the caller.
   * Audit chain: this is the only place access_log rows are written.
   */
  #recordAccess(entry: AccessLogEntry): void {
    const moved = this.#fileProblem();
    if (moved !== null) throw new Error(moved);
    this.#stmt.begin.run();
    try {
      const row = {
        at: entry.at,
        subject: entry.actor.subject,
        issuer: entry.actor.issuer,
        email: entry.actor.email,
        action: entry.action,
        sessionId: entry.sessionId,
        filter: entry.filter,
      };
      const { lastInsertRowid } = this.#stmt.insertAccess.run(row);
      this.#chain.access({ id: Number(lastInsertRowid), at: row.at, subject: row.subject, issuer: row.issuer, email: row.email, action: row.action, session_id: row.sessionId, filter: row.filter });
      this.#stmt.commit.run();
    } catch (err) {
      rollbackQuietly(this.#db, this.#stmt.rollback);
      this.#chain.rolledBack();
      throw err;
    }
    this.#chain.committed();
    this.#committed(256);
  }

  #health(): { ok: boolean; detail: string | null } {
    if (this.#closed) return { ok: false, detail: 'the store is closed' };
    try {
      this.#stmt.ping.get();
    } catch (err) {
      return { ok: false, detail: `the database does not answer: ${describeError(err)}` };
    }
    const moved = this.#fileProblem();
    if (moved !== null) return { ok: false, detail: moved };
    if (this.#lastWriteError !== null) return { ok: false, detail: `the last write failed: ${this.#lastWriteError}` };
    return { ok: true, detail: null };
  }

  /** Non-null when the file at our path is no longer the one this connection writes to. */
  #fileProblem(): string | null {
    const now = fileIdentity(this.#data.location);
    if (now === null) return 'the database file was deleted';
    if (now.dev !== this.#identity.dev || now.ino !== this.#identity.ino) return 'the database file was replaced';
    return null;
  }

  // ── messages ────────────────────────────────────────────────────────────────────────────

  #counters(): WriterCounters {
    return {
      writeErrors: this.#writeErrors,
      droppedRows: this.#droppedRows,
      orphanRows: this.#orphanRows,
      settledRows: this.#settledRows,
      recordCommits: this.#recordCommits,
    };
  }

  /** Sends the counters when they changed since the last message that carried them. */
  #sendCounters(): void {
    const c = this.#counters();
    const key = `${c.writeErrors},${c.droppedRows},${c.orphanRows},${c.settledRows}`;
    if (key === this.#countersSent) return;
    this.#countersSent = key;
    this.#send({ t: 'counters', c });
  }

  #reply(id: number, value: unknown, error: string | null): void {
    this.#send({ t: 'reply', id, value, error, c: this.#counters() });
  }

  #report(message: string): void {
    this.#send({ t: 'report', message });
  }
}

// ── start ───────────────────────────────────────────────────────────────────────────────────

function openDatabase(data: WriterData): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(data.location, { enableForeignKeyConstraints: true, timeout: data.busyTimeoutMs });
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.['journal_mode'];
    if (mode !== 'wal') throw new Error(`cannot use WAL journal mode on this file system (got ${String(mode)})`);
    db.exec(`PRAGMA synchronous = ${data.synchronous}`);
    db.exec('PRAGMA foreign_keys = ON');
    db.exec('PRAGMA journal_size_limit = 67108864'); // truncate the WAL back to ≤ 64 MiB after checkpoints
    db.exec('PRAGMA wal_autocheckpoint = 0'); // the checkpointer thread does it (checkpoint-worker.ts)
    migrateDatabase(db);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    throw err;
  }
}

function start(): void {
  const port = parentPort;
  if (port === null) throw new Error('writer-worker.ts runs as a worker thread');
  const data = workerData as WriterData;
  const send = (message: FromWriter): void => port.postMessage(message);
  let writer: Writer;
  let settled: number;
  try {
    const db = openDatabase(data);
    const identity = fileIdentity(data.location);
    if (identity === null) {
      db.close();
      throw new Error('the database file disappeared while opening');
    }
    let owner: OwnerLock;
    try {
      owner = OwnerLock.acquire(data.location);
    } catch (err) {
      db.close();
      // Without it, another process could take our calls for those of a dead one and settle them.
      throw new Error(`cannot create the owner lock next to the database: ${describeError(err)}`, { cause: err });
    }
    writer = new Writer(db, data, identity, owner, send);
    settled = writer.settleDeadOwners();
  } catch (err) {
    const tooNew = err instanceof SchemaTooNewError ? { found: err.found, supported: err.supported } : null;
    send({ t: 'open-failed', reason: err instanceof SchemaTooNewError ? err.message : describeError(err), tooNew });
    port.close();
    return;
  }
  port.on('message', (message: ToWriter) => writer.handle(message));
  send({ t: 'ready', settled });
}

start();

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

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
