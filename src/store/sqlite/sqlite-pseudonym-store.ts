/**
 * Pseudonym vaults in the recording store's SQLite file, on a connection of their own on the main
 * thread (WAL lets it sit beside the writer thread; the busy timeout covers the writer's commits).
 *
 * One row per issued placeholder: the value sealed with AES-256-GCM (pseudonym-sealer.ts), an
 * HMAC of it for the "one placeholder per value" unique index, and the session, label and number
 * in clear (none of them is personal data). Two processes on the same file cannot give one
 * number to two values, or two numbers to one value: the second insert fails on a unique index
 * (outcome 'conflict') and its caller reloads. An entry already stored exactly so (the same value
 * under the same number) is no conflict: it is skipped.
 *
 * `pseudonym_keys` remembers which key sealed the vault; opening with another key fails with
 * AIGOV_E_PSEUDONYM_KEY_MISMATCH and changes nothing.
 *
 * Never blocks the event loop on a lock: the busy timeout is 0, so a statement that meets the
 * writer thread's lock fails with SQLITE_BUSY at once and session-vaults.ts retries on a timer.
 * The methods return promises (the PseudonymStore interface is PostgreSQL's too) but do their
 * work synchronously, before they return.
 * What it does cost the loop: a load is one indexed SELECT plus one AES-GCM open per entry; a
 * write is one small transaction (WAL, synchronous=NORMAL: no fsync per commit).
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ensurePrivateDatabase, type PrivatePathOptions } from '../../config/private-files.ts';
import { AigovError } from '../../core/errors.ts';
import type { VaultEntry } from '../../core/masking/pseudonym-vault.ts';
import { PseudonymSealer } from '../pseudonym-sealer.ts';
import type { AppendOutcome, PseudonymStore, VaultAppend, VaultLoad } from '../pseudonym-store.ts';
import { migrateDatabase } from './migrations.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pseudonym_keys (
  key_id      TEXT PRIMARY KEY,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS pseudonym_sessions (
  session_id    TEXT PRIMARY KEY,
  last_used_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS pseudonym_sessions_by_last_use ON pseudonym_sessions (last_used_at);
CREATE TABLE IF NOT EXISTS pseudonym_entries (
  session_id  TEXT NOT NULL,
  label       TEXT NOT NULL,
  n           INTEGER NOT NULL,
  value_mac   BLOB NOT NULL,
  sealed      BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (session_id, label, n),
  UNIQUE (session_id, label, value_mac)
) STRICT, WITHOUT ROWID;
`;

const OPEN_BUSY_TIMEOUT_MS = 5000;

export interface SqlitePseudonymStoreOptions extends PrivatePathOptions {
  /** The database file (the recording store's). */
  readonly location: string;
  /** The vault key: 32 bytes. */
  readonly key: Uint8Array;
  /** How long a statement waits for another connection's lock, blocking its thread. Default 0: throw SQLITE_BUSY at once. */
  readonly busyTimeoutMs?: number;
  /** Clock for the key row; default Date.now. */
  readonly now?: () => number;
}

export function openSqlitePseudonymStore(options: SqlitePseudonymStoreOptions): SqlitePseudonymStore {
  const sealer = new PseudonymSealer(options.key);
  // Opening may wait for the writer thread (once, at startup); afterwards nothing waits.
  ensurePrivateDatabase(options.location, options); // normally done by the recording store already: a no-op
  const db = new DatabaseSync(options.location, { timeout: OPEN_BUSY_TIMEOUT_MS });
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA wal_autocheckpoint = 0'); // the recording store's checkpointer thread does it
    migrateDatabase(db); // an aigov database, whichever store opens the file first
    db.exec(SCHEMA);
    checkKey(db, sealer.keyId, options.location, (options.now ?? Date.now)());
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 0))}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return new SqlitePseudonymStore(db, sealer);
}

/** The vault remembers the first key that wrote to it; any other key is refused before anything is read or written. */
function checkKey(db: DatabaseSync, keyId: string, location: string, now: number): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const stored = db.prepare('SELECT key_id FROM pseudonym_keys ORDER BY created_at').all().map((r) => String(r['key_id']));
    if (stored.length === 0) {
      const orphans = db.prepare('SELECT 1 FROM pseudonym_entries LIMIT 1').get() !== undefined;
      if (orphans) throw new AigovError('AIGOV_E_PSEUDONYM_KEY_MISMATCH', { location, stored: 'unknown (the key record is missing)', configured: keyId });
      db.prepare('INSERT INTO pseudonym_keys (key_id, created_at) VALUES (?, ?)').run(keyId, now);
    } else if (!stored.includes(keyId)) {
      throw new AigovError('AIGOV_E_PSEUDONYM_KEY_MISMATCH', { location, stored: stored.join(', '), configured: keyId });
    }
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

export class SqlitePseudonymStore implements PseudonymStore {
  /** One process per file in normal use: a vault in memory is not reloaded on each use. */
  readonly shared = false;
  readonly #db: DatabaseSync;
  readonly #sealer: PseudonymSealer;
  readonly #select: StatementSync;
  readonly #insert: StatementSync;
  readonly #storedMac: StatementSync;
  readonly #upsertSession: StatementSync;
  readonly #touch: StatementSync;
  readonly #expired: StatementSync;
  readonly #deleteEntries: StatementSync;
  readonly #deleteSession: StatementSync;
  #closed = false;

  constructor(db: DatabaseSync, sealer: PseudonymSealer) {
    this.#db = db;
    this.#sealer = sealer;
    this.#select = db.prepare('SELECT label, n, sealed FROM pseudonym_entries WHERE session_id = ? ORDER BY label, n');
    this.#insert = db.prepare('INSERT INTO pseudonym_entries (session_id, label, n, value_mac, sealed, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.#storedMac = db.prepare('SELECT value_mac FROM pseudonym_entries WHERE session_id = ? AND label = ? AND n = ?');
    this.#upsertSession = db.prepare(
      'INSERT INTO pseudonym_sessions (session_id, last_used_at) VALUES (?, ?) ON CONFLICT (session_id) DO UPDATE SET last_used_at = max(last_used_at, excluded.last_used_at)',
    );
    this.#touch = db.prepare('UPDATE pseudonym_sessions SET last_used_at = ? WHERE session_id = ? AND last_used_at < ?');
    this.#expired = db.prepare('SELECT session_id FROM pseudonym_sessions WHERE last_used_at < ? ORDER BY last_used_at LIMIT ?');
    this.#deleteEntries = db.prepare('DELETE FROM pseudonym_entries WHERE session_id = ?');
    this.#deleteSession = db.prepare('DELETE FROM pseudonym_sessions WHERE session_id = ?');
  }

  /** Hex fingerprint of the key in use. */
  get keyId(): string {
    return this.#sealer.keyId;
  }

  /** Every entry (`after` is ignored: the rows have no order of storing); cursor 0. */
  async load(sessionId: string): Promise<VaultLoad> {
    this.#assertOpen();
    const entries = this.#select.all(sessionId).map((row): VaultEntry => {
      const label = String(row['label']);
      const n = Number(row['n']);
      return [label, n, this.#sealer.open(sessionId, label, n, row['sealed'] as Uint8Array)];
    });
    return { entries, cursor: 0 };
  }

  async write(appends: readonly VaultAppend[], touched: readonly string[], now: number): Promise<AppendOutcome[]> {
    this.#assertOpen();
    if (appends.length === 0 && touched.length === 0) return [];
    const outcomes: AppendOutcome[] = [];
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      for (const { sessionId, entries } of appends) {
        this.#db.exec('SAVEPOINT vault_append');
        try {
          for (const [label, n, value] of entries) {
            const mac = this.#sealer.mac(sessionId, label, value);
            const stored = this.#storedMac.get(sessionId, label, n)?.['value_mac'];
            if (stored instanceof Uint8Array && Buffer.from(stored).equals(mac)) continue; // stored so already
            this.#insert.run(sessionId, label, n, mac, this.#sealer.seal(sessionId, label, n, value), now);
          }
          this.#upsertSession.run(sessionId, now);
          this.#db.exec('RELEASE vault_append');
          outcomes.push('stored');
        } catch (error) {
          this.#db.exec('ROLLBACK TO vault_append');
          this.#db.exec('RELEASE vault_append');
          if (!isConstraintError(error)) throw error;
          outcomes.push('conflict');
        }
      }
      for (const sessionId of touched) this.#touch.run(now, sessionId, now);
      this.#db.exec('COMMIT');
      return outcomes;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  async purge(before: number, limit: number): Promise<string[]> {
    this.#assertOpen();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const ids = this.#expired.all(before, limit).map((r) => String(r['session_id']));
      for (const id of ids) {
        this.#deleteEntries.run(id);
        this.#deleteSession.run(id);
      }
      this.#db.exec('COMMIT');
      return ids;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the pseudonym store is closed');
  }
}

/** SQLITE_CONSTRAINT and its extended codes (unique, primary key). */
function isConstraintError(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && (code & 0xff) === 19;
}
