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
 * The prefix stops at the first entry whose rows are not older than the cut, and is shortened
 * so that no call loses some of its entries and keeps others (a call whose result or later
 * events lie after the cut stays, with all its entries). A chunk is at most `chunkEntries`
 * entries, so the writer thread never waits long for the lock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { parseSpan, type CheckpointKind } from '../../core/audit/chain.ts';
import { readChainHead } from './audit-chain-writer.ts';
import { signCheckpoint, type SigningKey } from './audit-keys.ts';
import { migrateDatabase } from './migrations.ts';

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
  readonly entries: number;
  /** The anchor written (last entry removed), or null when nothing was old enough. */
  readonly anchorSeq: number | null;
}

export interface AuditMaintenanceOptions {
  /** Signs checkpoints; without it only (unsigned) purge anchors are written. */
  readonly key: SigningKey | null;
  readonly now?: () => number;
  /** Entries per purge transaction. Default 2000. */
  readonly chunkEntries?: number;
  /** How long to keep retrying when the database is locked by another connection. Default 5000 ms. */
  readonly lockWaitMs?: number;
}

const LOCKED = 5; // SQLITE_BUSY
const LOCKED_SHARED = 6; // SQLITE_LOCKED

export class AuditMaintenance {
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
    this.#chunk = Math.max(1, options.chunkEntries ?? 2000);
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
      const total = { calls: 0, events: 0, accessRows: 0, sessions: 0, entries: 0, anchorSeq: null as number | null };
      let limit = this.#chunk;
      for (;;) {
        const chunk = await this.#transaction(() => this.#purgeChunk(cutMs, limit));
        if (chunk.tooSmall) {
          // Every call in the chunk goes on past its end: look further before cutting.
          limit *= 2;
          continue;
        }
        limit = this.#chunk;
        total.calls += chunk.calls;
        total.events += chunk.events;
        total.accessRows += chunk.accessRows;
        total.sessions += chunk.sessions;
        total.entries += chunk.entries;
        if (chunk.anchorSeq !== null) total.anchorSeq = chunk.anchorSeq;
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

  #purgeChunk(cut: number, limit: number): PurgeResult & { done: boolean; tooSmall: boolean } {
    const db = this.#db;
    const entries = db
      .prepare(`
        SELECT a.seq, a.kind, a.ref, a.span, a.hash,
          CASE a.kind WHEN 'access' THEN (SELECT at FROM access_log WHERE id = CAST(a.ref AS INTEGER))
                      ELSE (SELECT started_at FROM calls WHERE id = a.ref) END AS t,
          CASE a.kind WHEN 'access' THEN NULL ELSE (SELECT status FROM calls WHERE id = a.ref) END AS status
        FROM audit_log a ORDER BY a.seq LIMIT ?`)
      .all(limit + 1);
    let prefix = entries.slice(0, limit);
    let stop = prefix.findIndex((e) => e['t'] === null || Number(e['t']) >= cut);
    /** The prefix ends only because of the chunk size: more may be purgeable after it. */
    const hitLimit = stop === -1 && entries.length > limit;
    if (stop !== -1) prefix = prefix.slice(0, stop);

    // Shorten the prefix until no call in it has entries beyond it.
    const eventCount = db.prepare('SELECT count(*) AS n FROM stream_events WHERE call_id = ?');
    for (;;) {
      const calls = new Map<string, { first: number; result: boolean; events: number; status: string }>();
      prefix.forEach((e, i) => {
        if (e['kind'] === 'access') return;
        const id = String(e['ref']);
        let c = calls.get(id);
        if (c === undefined) {
          c = { first: i, result: false, events: 0, status: String(e['status']) };
          calls.set(id, c);
        }
        if (e['kind'] === 'result') c.result = true;
        if (e['kind'] === 'events') {
          const span = parseSpan(e['span'] === null ? null : String(e['span']));
          if (span !== null) c.events += span.last - span.first + 1;
        }
      });
      stop = -1;
      for (const [id, c] of calls) {
        const open = c.status === 'pending' ? Number(eventCount.get(id)?.['n'] ?? 0) > c.events : !c.result;
        if (open && (stop === -1 || c.first < stop)) stop = c.first;
      }
      if (stop === -1) break;
      prefix = prefix.slice(0, stop);
    }
    const last = prefix.at(-1);
    if (last === undefined) return { calls: 0, events: 0, accessRows: 0, sessions: 0, entries: 0, anchorSeq: null, done: !hitLimit, tooSmall: hitLimit };
    const done = !hitLimit;

    const callIds = [...new Set(prefix.filter((e) => e['kind'] !== 'access').map((e) => String(e['ref'])))];
    const accessIds = prefix.filter((e) => e['kind'] === 'access').map((e) => Number(e['ref']));
    const ids = JSON.stringify(callIds);
    const sessionIds = db.prepare('SELECT DISTINCT session_id FROM calls WHERE id IN (SELECT value FROM json_each(?))').all(ids).map((r) => String(r['session_id']));
    const events = Number(db.prepare('DELETE FROM stream_events WHERE call_id IN (SELECT value FROM json_each(?))').run(ids).changes);
    const calls = Number(db.prepare('DELETE FROM calls WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes);
    const accessRows = Number(db.prepare('DELETE FROM access_log WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(accessIds)).changes);
    const sessions = Number(
      db
        .prepare('DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.session_id = sessions.id)')
        .run(JSON.stringify(sessionIds)).changes,
    );
    const seq = Number(last['seq']);
    const removed = Number(db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(seq).changes);
    // Checkpoints of entries that are gone can no longer be checked; the anchor replaces them.
    db.prepare('DELETE FROM audit_checkpoints WHERE seq <= ?').run(seq);
    this.#writeCheckpoint(seq, String(last['hash']), 'anchor');
    return { calls, events, accessRows, sessions, entries: removed, anchorSeq: seq, done, tooSmall: false };
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return code === LOCKED || code === LOCKED_SHARED;
}
