/**
 * Which process owns a `pending` call, and settling the calls of owners that are gone.
 *
 * Several processes may write one SQLite file at once (two gateways sharing a database for
 * approvals; the old gateway still draining while the new one starts), so "pending at startup"
 * does not mean "cut by a crash". Each store's writer thread therefore takes an owner id, writes
 * it into every call row it inserts (`calls.owner`), and holds an OS file lock that says the
 * owner is alive: an exclusive SQLite lock (`locking_mode = EXCLUSIVE`) on a small file
 * `<database>-owners/<owner>.lock`. The kernel drops the lock when the process ends however it
 * ends (kill -9 included), and SQLite reports it to other connections of the same process too,
 * so "cannot read that file" means alive, "can read it" or "no such file" means gone. No PID
 * checks (reused PIDs, containers), no heartbeats, no clocks.
 *
 * The lock file is made under a temporary name, locked, then renamed into place: a file at the
 * final name is never unlocked while its owner lives (a prober cannot catch it between creation
 * and lock, and delete it).
 *
 * When a store opens, {@link settleDeadOwners} marks the pending calls of every owner found dead
 * `aborted` (AIGOV_E_GATEWAY_STOPPED, `ended_at` = the time of the call's last recorded stream
 * event, else its start), each with its `result` audit entry in the same transaction, exactly as
 * a finish is written; then it deletes the dead owner's lock file. A live owner's calls are never
 * touched. Rows written before schema version 8 have no owner and are left alone (an older
 * gateway that may still be running could finish them).
 */
import { ensurePrivateDir, ensurePrivateFile } from '../../config/private-files.ts';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ErrorCode } from '../../core/errors.ts';
import type { ChainWriter } from './audit-chain-writer.ts';
import { num, str } from './store-reads.ts';

/** The code and words recorded on a call settled this way (never anything from the call itself). */
export const STOPPED_CODE: ErrorCode = 'AIGOV_E_GATEWAY_STOPPED';
export const STOPPED_MESSAGE = 'the gateway stopped before the call ended; the answer may have been cut off at the client';

const OWNER_ID = /^[0-9a-f]{32}$/;

export function ownersDirectory(location: string): string {
  return `${location}-owners`;
}

/** This process's claim on its calls: alive while the returned handle is open. */
export class OwnerLock {
  readonly id: string;
  readonly #file: string;
  #db: DatabaseSync | null;

  private constructor(id: string, file: string, db: DatabaseSync) {
    this.id = id;
    this.#file = file;
    this.#db = db;
  }

  /** Creates and locks `<database>-owners/<id>.lock`. Throws when it cannot (the store must not open then). */
  static acquire(location: string): OwnerLock {
    const dir = ownersDirectory(location);
    ensurePrivateDir(dir);
    const id = randomBytes(16).toString('hex');
    const temp = path.join(dir, `${id}.tmp`);
    const file = path.join(dir, `${id}.lock`);
    ensurePrivateFile(temp, { create: true }); // created 0600 before SQLite opens it (it keeps the mode)
    const db = new DatabaseSync(temp);
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      db.exec('PRAGMA journal_mode = MEMORY');
      // The first write takes the EXCLUSIVE lock; in EXCLUSIVE locking mode it is kept until close.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE owner (pid INTEGER NOT NULL, started_at INTEGER NOT NULL)');
      db.prepare('INSERT INTO owner VALUES (?, ?)').run(process.pid, Date.now());
      db.exec('COMMIT');
      fs.renameSync(temp, file);
    } catch (err) {
      try {
        db.close();
      } catch {
        // the first error is the one to report
      }
      fs.rmSync(temp, { force: true });
      throw err;
    }
    return new OwnerLock(id, file, db);
  }

  /** Gives the claim up (clean close): the owner is gone from now on. Idempotent. */
  release(): void {
    if (this.#db === null) return;
    fs.rmSync(this.#file, { force: true });
    try {
      this.#db.close();
    } catch {
      // closing releases the lock either way
    }
    this.#db = null;
  }
}

/** True when no process holds the owner's lock (its file is gone, or can be read). */
export function ownerIsGone(location: string, owner: string): boolean {
  if (!OWNER_ID.test(owner)) return false; // not one of ours: leave it alone
  const file = path.join(ownersDirectory(location), `${owner}.lock`);
  if (!fs.existsSync(file)) return true;
  let db: DatabaseSync | null = null;
  try {
    db = new DatabaseSync(file, { readOnly: true, timeout: 0 });
    db.prepare('SELECT count(*) AS n FROM sqlite_schema').get();
    return true;
  } catch (err) {
    const code = (err as { errcode?: unknown }).errcode;
    if (typeof code === 'number' && ((code & 0xff) === 5 || (code & 0xff) === 6)) return false; // SQLITE_BUSY / SQLITE_LOCKED: its owner holds it
    // Unreadable for another reason (e.g. a half-written file of a crash inside acquire()):
    // nobody can hold a lock on it through our protocol once it is at the final name. Gone.
    return true;
  } finally {
    try {
      db?.close();
    } catch {
      // nothing to do
    }
  }
}

export interface SettleResult {
  /** Calls marked aborted. */
  readonly settled: number;
  /** Owners found gone (their lock files removed). */
  readonly owners: number;
}

/**
 * Settles the pending calls of owners that are gone. Runs on the writer's connection before it
 * takes any other write; one `BEGIN IMMEDIATE` per dead owner, every result through the chain.
 */
export function settleDeadOwners(db: DatabaseSync, chain: ChainWriter, location: string, self: string): SettleResult {
  const owners = db
    .prepare("SELECT DISTINCT owner FROM calls WHERE status = 'pending' AND owner IS NOT NULL")
    .all()
    .map((row) => str(row['owner']))
    .filter((owner) => owner !== self);
  const dir = ownersDirectory(location);
  // Lock files of owners that left nothing pending: probe them too, so dead ones do not pile up.
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.lock')).map((f) => f.slice(0, -'.lock'.length));
  } catch {
    // no directory yet
  }
  const candidates = [...new Set([...owners, ...files])].filter((owner) => owner !== self);
  const pendingOf = db.prepare(`
    SELECT id, started_at, decisions,
           (SELECT max(offset_ms) FROM stream_events WHERE call_id = calls.id) AS last_offset
    FROM calls WHERE status = 'pending' AND owner = ?`);
  const settle = db.prepare(`
    UPDATE calls SET status = 'aborted', http_status = NULL, response_body = NULL, usage = NULL, first_byte_ms = NULL,
      latency_ms = $latencyMs, error_code = $errorCode, error_message = $errorMessage, ended_at = $endedAt
    WHERE id = $id AND status = 'pending'`);
  let settled = 0;
  let gone = 0;
  for (const owner of candidates) {
    if (!ownerIsGone(location, owner)) continue;
    gone++;
    db.exec('BEGIN IMMEDIATE');
    try {
      for (const row of pendingOf.all(owner)) {
        const id = str(row['id']);
        const startedAt = num(row['started_at']);
        const latencyMs = row['last_offset'] === null ? 0 : Math.max(0, num(row['last_offset']));
        const values = { id, latencyMs, errorCode: STOPPED_CODE, errorMessage: STOPPED_MESSAGE, endedAt: startedAt + latencyMs };
        if (settle.run(values).changes === 0) continue;
        chain.result({
          id, status: 'aborted', http_status: null, response_body: null, usage: null, first_byte_ms: null, latency_ms: latencyMs,
          error_code: STOPPED_CODE, error_message: STOPPED_MESSAGE, decisions: str(row['decisions']), ended_at: values.endedAt,
        });
        settled++;
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      chain.rolledBack();
      throw err;
    }
    chain.committed();
    fs.rmSync(path.join(dir, `${owner}.lock`), { force: true });
  }
  return { settled, owners: gone };
}
