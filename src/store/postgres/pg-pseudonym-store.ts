/**
 * Pseudonym vaults on PostgreSQL, shared by every replica: a placeholder one replica hands out
 * is restored by any other.
 *
 * Rows as in the SQLite store (sqlite/sqlite-pseudonym-store.ts): per issued placeholder the
 * value sealed with AES-256-GCM (pseudonym-sealer.ts), an HMAC of it for "one placeholder per
 * value", the session, label and number in clear; `pseudonym_keys` remembers which key sealed the
 * vaults (another key is refused with AIGOV_E_PSEUDONYM_KEY_MISMATCH, nothing read or written).
 *
 * One rule makes it work across replicas: whoever adds entries to a session's vault first locks
 * that session's `pseudonym_sessions` row, and holds it until COMMIT. So, per session,
 * - the check "none of these placeholders or values is taken" runs after every earlier writer
 *   committed (a statement of its own, so its snapshot comes after the lock): a conflicting append
 *   is refused as a whole ('conflict') and its replica catches up and issues again — never two
 *   values for one placeholder, never two placeholders for one value. An entry already stored as
 *   is (the same value under the same placeholder: two replicas gave a session's first value its
 *   first number at the same moment) is no conflict: it is left as stored, the rest appended;
 * - `seq` (a global identity) grows in commit order: a replica that has seen everything up to
 *   seq s asks only for `seq > s` and misses nothing. That is how a vault held in memory is
 *   brought up to date on each use (SessionVaults, `shared`) with one indexed query that returns
 *   nothing when nothing changed. Catch-ups group like commits do: while `maxLoads` queries are
 *   out, the next ones wait and then go together, one query for all their sessions.
 * Sessions are locked in one statement, in session-id order, so two replicas writing overlapping
 * sessions cannot deadlock; the TTL purge skips rows a writer holds.
 *
 * Errors name no value: a driver error becomes its SQLSTATE and message (describePgError), never
 * the server's detail nor the URL's password.
 */
import { AigovError } from '../../core/errors.ts';
import type { VaultEntry } from '../../core/masking/pseudonym-vault.ts';
import { redactDatabaseUrl } from '../../config/database-url.ts';
import { PseudonymSealer } from '../pseudonym-sealer.ts';
import type { AppendOutcome, PseudonymStore, VaultAppend, VaultLoad } from '../pseudonym-store.ts';
import { migratePostgresAt } from './migrations.ts';
import { createPool, describePgError, type PgObserver, type PgPool, type PgSettings } from './pg-connection.ts';

export interface PgPseudonymStoreOptions {
  /** postgres://… (may hold the password: never logged nor put in an error). */
  readonly url: string;
  /** The vault key: 32 bytes. */
  readonly key: Uint8Array;
  /** Connections of the vaults' own pool. Default 4. */
  readonly poolSize?: number;
  /** statement_timeout, ms. Default 5000. */
  readonly statementTimeoutMs?: number;
  /** synchronous_commit of the writes (storage.synchronous_commit: 'off' acknowledges before the WAL is on disk). Default 'on'. */
  readonly synchronousCommit?: 'on' | 'off';
  /** Opening a connection, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** An idle pooled connection failed (no values in the message). Default: process warning. */
  readonly onError?: (message: string) => void;
  /** The gateway's metrics: pool counts and waits (pool `vaults`). */
  readonly observer?: PgObserver;
}

export async function openPostgresPseudonymStore(options: PgPseudonymStoreOptions): Promise<PgPseudonymStore> {
  const sealer = new PseudonymSealer(options.key);
  const location = redactDatabaseUrl(options.url);
  const settings: PgSettings = {
    url: options.url,
    statementTimeoutMs: Math.max(1, Math.floor(options.statementTimeoutMs ?? 5000)),
    connectTimeoutMs: Math.max(1, Math.floor(options.connectTimeoutMs ?? 5000)),
    lockTimeoutMs: 0,
  };
  const failed = (what: string, err: unknown): AigovError =>
    new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `pseudonym vault: ${what}: ${describePgError(err, options.url)}` });
  // Normally the recording store has migrated already; a gateway given another store has not.
  try {
    await migratePostgresAt(settings);
  } catch (err) {
    throw failed('cannot connect to or migrate the database', err);
  }
  const onError = options.onError ?? ((message: string) => process.emitWarning(message, { code: 'AIGOV_PSEUDONYM_STORE' }));
  const watch = options.observer === undefined ? undefined : { observer: options.observer, name: 'vaults' };
  const pool = createPool(settings, Math.max(1, Math.floor(options.poolSize ?? 4)), (message) => onError(`pseudonym vault: ${message}`), watch);
  try {
    await checkKey(pool, sealer.keyId, location);
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof AigovError) throw err;
    throw failed('cannot check the vault key', err);
  }
  const poolSize = Math.max(1, Math.floor(options.poolSize ?? 4));
  return new PgPseudonymStore(pool, sealer, options.url, { maxLoads: Math.max(1, poolSize - 1), synchronousCommit: options.synchronousCommit ?? 'on' });
}

/** The vaults remember the first key that wrote to them; any other key is refused before anything is read or written. */
async function checkKey(pool: PgPool, keyId: string, location: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Replicas starting together with different keys: one records its key, the other is refused.
    await client.query('LOCK TABLE pseudonym_keys IN SHARE ROW EXCLUSIVE MODE');
    const stored = (await client.query<{ key_id: string }>('SELECT key_id FROM pseudonym_keys ORDER BY created_at')).rows.map((r) => r.key_id);
    if (stored.length === 0) {
      const orphans = (await client.query('SELECT 1 FROM pseudonym_entries LIMIT 1')).rows.length > 0;
      if (orphans) throw new AigovError('AIGOV_E_PSEUDONYM_KEY_MISMATCH', { location, stored: 'unknown (the key record is missing)', configured: keyId });
      await client.query('INSERT INTO pseudonym_keys (key_id, created_at) VALUES ($1, $2)', [keyId, Date.now()]);
    } else if (!stored.includes(keyId)) {
      throw new AigovError('AIGOV_E_PSEUDONYM_KEY_MISMATCH', { location, stored: stored.join(', '), configured: keyId });
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const LOCK_SESSIONS = `
  INSERT INTO pseudonym_sessions (session_id, last_used_at)
  SELECT id, $2 FROM unnest($1::text[]) AS u(id) ORDER BY id
  ON CONFLICT (session_id) DO UPDATE SET last_used_at = greatest(pseudonym_sessions.last_used_at, excluded.last_used_at)`;

/**
 * Inserts every append none of whose placeholders is taken by another value nor values by another
 * placeholder (entries stored exactly so already are skipped); returns the sessions refused.
 */
const APPEND = `
  WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[], $5::bytea[]) WITH ORDINALITY AS b(session_id, label, n, value_mac, sealed, ord)
  ), refused AS (
    SELECT DISTINCT b.session_id FROM batch b
    WHERE EXISTS (SELECT 1 FROM pseudonym_entries e WHERE e.session_id = b.session_id AND e.label = b.label AND e.n = b.n AND e.value_mac <> b.value_mac)
       OR EXISTS (SELECT 1 FROM pseudonym_entries e WHERE e.session_id = b.session_id AND e.label = b.label AND e.value_mac = b.value_mac AND e.n <> b.n)
  ), stored AS (
    INSERT INTO pseudonym_entries (session_id, label, n, value_mac, sealed, created_at)
    SELECT session_id, label, n, value_mac, sealed, $6 FROM batch b
    WHERE session_id NOT IN (SELECT session_id FROM refused)
      AND NOT EXISTS (SELECT 1 FROM pseudonym_entries e WHERE e.session_id = b.session_id AND e.label = b.label AND e.n = b.n)
    ORDER BY ord
  )
  SELECT session_id FROM refused`;

/** Entries stored after each (session, cursor) asked for, by the asker's position. */
const LOAD_MANY = `
  SELECT q.i, e.label, e.n, e.seq, e.sealed
  FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS q(session_id, after, i)
  CROSS JOIN LATERAL (
    SELECT label, n, seq, sealed FROM pseudonym_entries WHERE session_id = q.session_id AND seq > q.after
  ) e
  ORDER BY q.i, e.seq`;
const LOAD_ONE = 'SELECT 1::bigint AS i, label, n, seq, sealed FROM pseudonym_entries WHERE session_id = $1 AND seq > $2 ORDER BY seq';

/** Sessions per grouped catch-up query. */
const MAX_LOAD_BATCH = 256;

interface LoadWaiter {
  readonly sessionId: string;
  readonly after: number;
  readonly resolve: (load: VaultLoad) => void;
  readonly reject: (error: Error) => void;
}

const PURGE = `
  WITH gone AS (
    SELECT session_id FROM pseudonym_sessions WHERE last_used_at < $1 ORDER BY last_used_at LIMIT $2 FOR UPDATE SKIP LOCKED
  )
  DELETE FROM pseudonym_sessions s USING gone WHERE s.session_id = gone.session_id RETURNING s.session_id`;

export class PgPseudonymStore implements PseudonymStore {
  readonly shared = true;
  readonly #pool: PgPool;
  readonly #sealer: PseudonymSealer;
  readonly #url: string;
  readonly #maxLoads: number;
  readonly #begin: string;
  readonly #waiting: LoadWaiter[] = [];
  #loading = 0;
  #closed = false;

  constructor(pool: PgPool, sealer: PseudonymSealer, url: string, options: { readonly maxLoads: number; readonly synchronousCommit: 'on' | 'off' }) {
    this.#pool = pool;
    this.#sealer = sealer;
    this.#url = url;
    this.#maxLoads = options.maxLoads;
    this.#begin = options.synchronousCommit === 'off' ? 'BEGIN; SET LOCAL synchronous_commit TO off' : 'BEGIN';
  }

  /** Hex fingerprint of the key in use. */
  get keyId(): string {
    return this.#sealer.keyId;
  }

  load(sessionId: string, after = 0): Promise<VaultLoad> {
    this.#assertOpen();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ sessionId, after, resolve, reject });
      this.#pumpLoads();
    });
  }

  #pumpLoads(): void {
    while (this.#loading < this.#maxLoads && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, MAX_LOAD_BATCH);
      this.#loading++;
      void this.#loadMany(batch).finally(() => {
        this.#loading--;
        this.#pumpLoads();
      });
    }
  }

  /** One query for every waiter of the batch; each gets its entries, or the error. */
  async #loadMany(batch: readonly LoadWaiter[]): Promise<void> {
    let rows: { i: number; label: string; n: number; seq: number; sealed: Buffer }[];
    try {
      rows = (
        await this.#run(() =>
          this.#pool.query<{ i: number; label: string; n: number; seq: number; sealed: Buffer }>(
            batch.length === 1
              ? { name: 'aigov_vault_load', text: LOAD_ONE, values: [batch[0]!.sessionId, batch[0]!.after] }
              : { name: 'aigov_vault_load_many', text: LOAD_MANY, values: [batch.map((w) => w.sessionId), batch.map((w) => w.after)] },
          ),
        )
      ).rows;
    } catch (error) {
      for (const w of batch) w.reject(error as Error);
      return;
    }
    const results = batch.map((w) => ({ entries: [] as VaultEntry[], cursor: w.after, failed: null as Error | null }));
    for (const row of rows) {
      const w = batch[row.i - 1]!;
      const result = results[row.i - 1]!;
      if (result.failed !== null) continue;
      try {
        result.entries.push([row.label, row.n, this.#sealer.open(w.sessionId, row.label, row.n, row.sealed)]);
        result.cursor = Math.max(result.cursor, row.seq);
      } catch (error) {
        result.failed = error as Error; // that session alone: a row that does not open
      }
    }
    batch.forEach((w, k) => {
      const { entries, cursor, failed } = results[k]!;
      if (failed === null) w.resolve({ entries, cursor });
      else w.reject(failed);
    });
  }

  async write(appends: readonly VaultAppend[], touched: readonly string[], now: number): Promise<AppendOutcome[]> {
    this.#assertOpen();
    if (appends.length === 0 && touched.length === 0) return [];
    const sessions = [...new Set([...appends.map((a) => a.sessionId), ...touched])];
    const cols = { session: [] as string[], label: [] as string[], n: [] as number[], mac: [] as Buffer[], sealed: [] as Buffer[] };
    for (const { sessionId, entries } of appends) {
      for (const [label, n, value] of entries) {
        cols.session.push(sessionId);
        cols.label.push(label);
        cols.n.push(n);
        cols.mac.push(this.#sealer.mac(sessionId, label, value));
        cols.sealed.push(this.#sealer.seal(sessionId, label, n, value));
      }
    }
    const refused = await this.#run(async () => {
      const client = await this.#pool.connect();
      let failure: Error | undefined;
      try {
        await client.query(this.#begin);
        await client.query({ name: 'aigov_vault_lock', text: LOCK_SESSIONS, values: [sessions, now] });
        const res = appends.length === 0
          ? { rows: [] }
          : await client.query<{ session_id: string }>({ name: 'aigov_vault_append', text: APPEND, values: [cols.session, cols.label, cols.n, cols.mac, cols.sealed, now] });
        await client.query('COMMIT');
        return new Set(res.rows.map((r) => r.session_id));
      } catch (err) {
        failure = err instanceof Error ? err : new Error('the vault write failed');
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release(failure); // a failed connection is not reused
      }
    });
    return appends.map((a) => (refused.has(a.sessionId) ? 'conflict' : 'stored'));
  }

  async purge(before: number, limit: number): Promise<string[]> {
    this.#assertOpen();
    const res = await this.#run(() => this.#pool.query<{ session_id: string }>({ name: 'aigov_vault_purge', text: PURGE, values: [before, limit] }));
    return res.rows.map((r) => r.session_id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end().catch(() => {});
  }

  /** Runs a database operation; its failure becomes an error that names no value and no password. */
  async #run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      // No cause attached: a driver error's detail can quote row values.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(`pseudonym vault store: ${describePgError(err, this.#url)}`);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the pseudonym store is closed');
  }
}
