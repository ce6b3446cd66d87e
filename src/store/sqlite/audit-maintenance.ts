/**
 * The gateway's side of the audit trail that is not the writer's: signed checkpoints
 * (periodically, and at shutdown once the store has been flushed) and the retention purge.
 * Both run on their own connection to the recording database, on the main thread, in short
 * `BEGIN IMMEDIATE` transactions that never wait for a lock on the event loop (busy timeout 0,
 * retried on a timer), like the pseudonym store.
 *
 * Purge: deletes the oldest calls (with their stream events), access_log rows, and sessions left
 * without calls, together with exactly the prefix of the audit chain that covers them, and
 * writes an `anchor` checkpoint (seq and hash of the last entry removed, signed when there is a
 * key) so the first remaining entry still chains to something `aigov audit verify` can check.
 * The prefix stops at the first entry whose rows are not older than the cut. Calls are usually
 * in flight at any point of the chain, so a cut crosses some: such a call keeps its row and
 * the event rows of its remaining batches (verify accepts a call row without its request entry
 * when the chain was cut before it and a remaining entry names it); its request columns are no
 * longer covered, until the next purge removes it whole. A raw copy goes with its call (ON DELETE
 * CASCADE); a cut-through call keeps its copy, accepted by verify like its row. Request chunks
 * (migration 9) go once no remaining call of their session names them (request-chunk-gc.ts).
 *
 * Approvals are purged like calls: an approval's time is when it can no longer change (its
 * expiry, or the end of its reuse window once decided — {@link APPROVAL_DONE_AT}); its row goes
 * when that is older than the cut and its latest entry is in the prefix. An approval whose
 * latest entry stays keeps its row (that entry covers it). A chunk is at most `chunkEntries`
 * entries (~10 ms of lock and event loop at 500 here), so the writer never waits long.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { CheckpointKind } from '../../core/audit/chain.ts';
import { addPurgeChunk, NOTHING_PURGED, type AuditMaintainer, type CheckpointRecord, type PurgeResult } from '../audit-maintainer.ts';
import { planPurgeChunk } from '../audit-purge-plan.ts';
import { readChainHead } from './audit-chain-writer.ts';
import { signCheckpoint, type SigningKey } from '../audit-keys.ts';
import { readLegacy } from './audit-verify.ts';
import { migrateDatabase } from './migrations.ts';
import { collectRequestChunks } from './request-chunk-gc.ts';

export type { CheckpointRecord, PurgeResult } from '../audit-maintainer.ts';

export interface AuditMaintenanceOptions {
  /** Signs checkpoints; without it only (unsigned) purge anchors are written. */
  readonly key: SigningKey | null;
  readonly now?: () => number;
  /** Entries per purge transaction. Default 500. */
  readonly chunkEntries?: number;
  /** How long to keep retrying when the database is locked by another connection. Default 5000 ms. */
  readonly lockWaitMs?: number;
}

/**
 * When an approval can no longer change: a pending one expires at expires_at (the gateway then
 * records the expiry, or finds the row gone and does nothing); a decided one may still be used
 * (reuse) until decidedAt + retryWindowMs.
 */
const APPROVAL_DONE_AT = "max(p.expires_at, ifnull(json_extract(p.record, '$.decidedAt'), 0) + ifnull(json_extract(p.record, '$.retryWindowMs'), 0))";

const LOCKED = 5; // SQLITE_BUSY
const LOCKED_SHARED = 6; // SQLITE_LOCKED

export class AuditMaintenance implements AuditMaintainer {
  readonly #db: DatabaseSync;
  readonly #key: SigningKey | null;
  readonly #now: () => number;
  readonly #chunk: number;
  readonly #lockWaitMs: number;
  readonly #s: Record<'begin' | 'commit' | 'rollback' | 'latestCheckpoint' | 'insertCheckpoint', StatementSync>;
  #closed = false;
  /** Serializes the operations (a purge chunk and a checkpoint never interleave). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(file: string, options: AuditMaintenanceOptions) {
    this.#db = new DatabaseSync(file, { enableForeignKeyConstraints: true, timeout: 0 });
    try {
      this.#db.exec('PRAGMA busy_timeout = 0');
      // As the writer: in WAL mode a commit is not fsync'd (a purge chunk would otherwise block
      // the event loop for an fsync, ~0.1–0.3 s here); it survives a crash of the process.
      this.#db.exec('PRAGMA synchronous = NORMAL');
      migrateDatabase(this.#db); // normally done by the writer already: then a cheap no-op
      this.#s = {
        begin: this.#db.prepare('BEGIN IMMEDIATE'),
        commit: this.#db.prepare('COMMIT'),
        rollback: this.#db.prepare('ROLLBACK'),
        latestCheckpoint: this.#db.prepare('SELECT seq, hash, key_id FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1'),
        insertCheckpoint: this.#db.prepare('INSERT INTO audit_checkpoints (seq, hash, at, kind, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)'),
      };
    } catch (err) {
      this.#db.close();
      throw err;
    }
    this.#key = options.key;
    this.#now = options.now ?? Date.now;
    this.#chunk = Math.max(1, options.chunkEntries ?? 500);
    this.#lockWaitMs = options.lockWaitMs ?? 5000;
  }

  /**
   * Signs the chain's head (a no-op without a key, on an empty chain, or when the newest
   * checkpoint already covers the head). Returns the checkpoint written.
   */
  checkpoint(kind: 'periodic' | 'shutdown'): Promise<CheckpointRecord | null> {
    return this.#serial(() =>
      this.#transaction(() => {
        if (this.#key === null) return null;
        const head = readChainHead(this.#db);
        if (head.seq === 0) return null;
        const latest = this.#s.latestCheckpoint.get();
        if (latest !== undefined && Number(latest['seq']) === head.seq && String(latest['hash']) === head.hash && latest['key_id'] === this.#key.keyId) return null;
        return this.#writeCheckpoint(head.seq, head.hash, kind);
      }),
    );
  }

  /** Deletes what is older than `cutMs` (epoch ms), chunk by chunk; see the file comment. */
  purge(cutMs: number): Promise<PurgeResult> {
    return this.#serial(async () => {
      let total = NOTHING_PURGED;
      // Rows from before the audit chain (migration 4) are in no entry: they just go.
      for (;;) {
        const chunk = await this.#transaction(() => this.#purgeLegacyChunk(cutMs));
        total = addPurgeChunk(total, chunk);
        if (chunk.done) break;
        await sleep(0);
      }
      for (;;) {
        const chunk = await this.#transaction(() => this.#purgeChunk(cutMs));
        total = addPurgeChunk(total, chunk);
        if (chunk.done) return total;
        await sleep(0); // let the writer and the event loop have their turn between chunks
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    this.#db.close();
  }

  #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the audit maintenance connection is closed'));
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Runs `body` in BEGIN IMMEDIATE … COMMIT, retrying on a timer while another connection holds the lock. */
  async #transaction<T>(body: () => T): Promise<T> {
    const deadline = this.#now() + this.#lockWaitMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        this.#s.begin.run();
      } catch (err) {
        if (isBusy(err) && this.#now() < deadline) {
          await sleep(delay);
          continue;
        }
        throw err;
      }
      try {
        const value = body();
        this.#s.commit.run();
        return value;
      } catch (err) {
        try {
          if (this.#db.isTransaction) this.#s.rollback.run();
        } catch {
          // the original error is the one that matters
        }
        throw err;
      }
    }
  }

  #writeCheckpoint(seq: number, hash: string, kind: CheckpointKind): CheckpointRecord {
    const at = this.#now();
    const keyId = this.#key?.keyId ?? null;
    const signature = this.#key === null ? null : signCheckpoint({ seq, hash, at, kind, keyId }, this.#key.privateKey);
    this.#s.insertCheckpoint.run(seq, hash, at, kind, keyId, signature);
    return { seq, hash, at, kind, keyId };
  }

  #purgeLegacyChunk(cut: number): { calls: number; events: number; accessRows: number; sessions: number; approvals: number; done: boolean } {
    const db = this.#db;
    const legacy = readLegacy(db);
    const limit = this.#chunk;
    const ids = db.prepare('SELECT id, session_id FROM calls WHERE rowid <= ? AND started_at < ? ORDER BY rowid LIMIT ?').all(legacy.callsRowid, cut, limit);
    const callIds = JSON.stringify(ids.map((r) => String(r['id'])));
    const sessionIds = JSON.stringify([...new Set(ids.map((r) => String(r['session_id'])))]);
    const events = Number(db.prepare('DELETE FROM stream_events WHERE call_id IN (SELECT value FROM json_each(?))').run(callIds).changes);
    const calls = Number(db.prepare('DELETE FROM calls WHERE id IN (SELECT value FROM json_each(?))').run(callIds).changes);
    const sessions = Number(
      db
        .prepare('DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.session_id = sessions.id)')
        .run(sessionIds).changes,
    );
    collectRequestChunks(db, JSON.parse(sessionIds) as string[]);
    const access = db.prepare('SELECT id FROM access_log WHERE id <= ? AND at < ? ORDER BY id LIMIT ?').all(legacy.accessId, cut, limit);
    const accessRows = Number(db.prepare('DELETE FROM access_log WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(access.map((r) => Number(r['id'])))).changes);
    // Approvals stored before migration 6 that never changed since (no entry names them).
    const oldApprovals = db
      .prepare(`SELECT p.id FROM approvals p WHERE p.rowid <= ? AND ${APPROVAL_DONE_AT} < ?
        AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.kind = 'approval' AND a.ref = p.id) ORDER BY p.rowid LIMIT ?`)
      .all(legacy.approvalsRowid, cut, limit);
    const approvals = Number(db.prepare('DELETE FROM approvals WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(oldApprovals.map((r) => String(r['id'])))).changes);
    return { calls, events, accessRows, sessions, approvals, done: ids.length < limit && access.length < limit && oldApprovals.length < limit };
  }

  #purgeChunk(cut: number): PurgeResult & { done: boolean } {
    const db = this.#db;
    const limit = this.#chunk;
    const entries = db
      .prepare(`
        SELECT a.seq, a.kind, a.ref, a.span, a.hash,
          CASE a.kind WHEN 'access' THEN (SELECT at FROM access_log WHERE id = CAST(a.ref AS INTEGER))
                      WHEN 'approval' THEN (SELECT ${APPROVAL_DONE_AT} FROM approvals p WHERE p.id = a.ref)
                      ELSE (SELECT started_at FROM calls WHERE id = a.ref) END AS t,
          CASE a.kind WHEN 'access' THEN NULL WHEN 'approval' THEN NULL ELSE (SELECT status FROM calls WHERE id = a.ref) END AS status
        FROM audit_log a ORDER BY a.seq LIMIT ?`)
      .all(limit + 1);
    const plan = planPurgeChunk(
      entries.map((e) => ({
        seq: Number(e['seq']), kind: String(e['kind']), ref: String(e['ref']), span: e['span'] === null ? null : String(e['span']), hash: String(e['hash']),
        t: e['t'] === null ? null : Number(e['t']), status: e['status'] === null ? null : String(e['status']),
      })),
      limit,
      cut,
    );
    const last = plan.last;
    if (last === undefined) return { calls: 0, events: 0, accessRows: 0, sessions: 0, approvals: 0, entries: 0, anchorSeq: null, done: true };
    const { calls, accessIds, approvalIds, done } = plan;
    const eventCount = db.prepare('SELECT count(*) AS n FROM stream_events WHERE call_id = ?');
    const deleteSpan = db.prepare('DELETE FROM stream_events WHERE call_id = ? AND seq BETWEEN ? AND ?');
    const closed: string[] = [];
    let events = 0;
    for (const [id, c] of calls) {
      const ended = c.status === 'pending' ? Number(eventCount.get(id)?.['n'] ?? 0) <= c.events : c.result;
      if (ended) closed.push(id);
      else for (const span of c.spans) events += Number(deleteSpan.run(id, span.first, span.last).changes);
    }
    const ids = JSON.stringify(closed);
    const sessionIds = db.prepare('SELECT DISTINCT session_id FROM calls WHERE id IN (SELECT value FROM json_each(?))').all(ids).map((r) => String(r['session_id']));
    events += Number(db.prepare('DELETE FROM stream_events WHERE call_id IN (SELECT value FROM json_each(?))').run(ids).changes);
    const deletedCalls = Number(db.prepare('DELETE FROM calls WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes);
    const accessRows = Number(db.prepare('DELETE FROM access_log WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(accessIds)).changes);
    const sessions = Number(
      db
        .prepare('DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.session_id = sessions.id)')
        .run(JSON.stringify(sessionIds)).changes,
    );
    // Request chunks no remaining call of those sessions names (all of them for a session gone).
    collectRequestChunks(db, sessionIds);
    const seq = last.seq;
    // An approval goes when its latest entry is in the prefix (audit_log_approvals: no log scan).
    const laterEntry = db.prepare("SELECT 1 FROM audit_log WHERE kind = 'approval' AND ref = ? AND seq > ? LIMIT 1");
    const goneApprovals = [...approvalIds].filter((id) => laterEntry.get(id, seq) === undefined);
    const approvals = Number(db.prepare('DELETE FROM approvals WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(goneApprovals)).changes);
    const removed = Number(db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(seq).changes);
    // Checkpoints of entries that are gone can no longer be checked; the anchor replaces them.
    db.prepare('DELETE FROM audit_checkpoints WHERE seq <= ?').run(seq);
    this.#writeCheckpoint(seq, last.hash, 'anchor');
    return { calls: deletedCalls, events, accessRows, sessions, approvals, entries: removed, anchorSeq: seq, done };
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return code === LOCKED || code === LOCKED_SHARED;
}
