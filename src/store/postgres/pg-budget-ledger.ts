/**
 * The shared budget ledger in PostgreSQL (the tables and functions of pg-budget-sql.ts): every
 * replica of a gateway reserves against the same counters, each reserve and each settle one
 * round trip on a pool of its own whose sessions commit with `synchronous_commit = off` (the
 * counters are rebuilt from the record, not the other way round: a database crash that loses
 * the last few hundred milliseconds of them loses what the record still has).
 *
 * - Reservations live for `ttlMs` on the database's clock; this process renews its own every
 *   third of that while their calls run, so only a dead process's lapse.
 * - A settle that fails (the database is unreachable) is retried until it succeeds or the ledger
 *   closes; its reservations are renewed meanwhile, so the budget never forgets them silently.
 * - Counters past their window, and reservations that lapsed long ago, are swept now and then.
 */
import { SettleRetries } from '../settle-retries.ts';
import { describePgError, type PgPool, type PgSettings } from './pg-connection.ts';
import pg from 'pg';
import { LedgerUnavailableError, type BudgetLedger, type CounterState, type LedgerCharge, type ReserveResult, type SeedEntry } from '../budget-ledger.ts';
import { migratePostgresAt } from './migrations.ts';

export interface PgLedgerOptions {
  readonly url: string;
  /** How long a reservation outlives its last renewal (a dead process's budget is whole again after it). */
  readonly ttlMs: number;
  /** How often this process renews its running calls' reservations (default a third of the TTL). */
  readonly renewMs?: number;
  /** Connections of the ledger's own pool. */
  readonly poolSize?: number;
  /** statement_timeout of its statements, ms: a reservation that takes longer fails (closed). */
  readonly statementTimeoutMs?: number;
  /** The sessions' synchronous_commit (default off; `on` for comparison in bench/budget-ledger.ts). */
  readonly synchronousCommit?: 'on' | 'off';
  /** Told of failures it recovers from itself (a settle retried, a renewal or a sweep failed). */
  readonly onError?: (message: string) => void;
}

const SWEEP_MS = 10 * 60_000;
/** A lapsed reservation is kept this long for a late settle, then dropped. */
const LAPSED_KEEP_MS = 24 * 3_600_000;

const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format ?? 'text') as unknown)) as typeof pg.types.getTypeParser,
};

export class PgBudgetLedger implements BudgetLedger {
  readonly kind = 'postgres';
  readonly #pool: PgPool;
  readonly #url: string;
  readonly #ttlMs: number;
  readonly #onError: (message: string) => void;
  /** Calls of this process holding reservations: renewed until settled. */
  readonly #live = new Map<string, readonly string[]>();
  /** Settles that failed, retried. */
  readonly #retry = new SettleRetries((id, actuals) => this.#settleNow(id, actuals));
  readonly #renewTimer: NodeJS.Timeout;
  readonly #sweepTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(pool: PgPool, options: PgLedgerOptions) {
    this.#pool = pool;
    this.#url = options.url;
    this.#ttlMs = options.ttlMs;
    this.#onError = options.onError ?? (() => {});
    this.#renewTimer = setInterval(() => void this.#renew(), options.renewMs ?? Math.max(100, Math.floor(options.ttlMs / 3)));
    this.#renewTimer.unref();
    this.#sweepTimer = setInterval(() => void this.sweep(), SWEEP_MS);
    this.#sweepTimer.unref();
  }

  /** Opens the ledger (migrating the database to the budget tables if the recording store has not yet). */
  static async open(options: PgLedgerOptions): Promise<PgBudgetLedger> {
    const statementTimeoutMs = options.statementTimeoutMs ?? 2000;
    const settings: PgSettings = { url: options.url, statementTimeoutMs, connectTimeoutMs: statementTimeoutMs, lockTimeoutMs: 0 };
    await migratePostgresAt(settings);
    const pool = new pg.Pool({
      connectionString: options.url,
      application_name: 'aigov-budgets',
      types,
      max: options.poolSize ?? 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: statementTimeoutMs,
      keepAlive: true,
      statement_timeout: statementTimeoutMs,
      options: `-c synchronous_commit=${options.synchronousCommit ?? 'off'}`,
    });
    pool.on('error', (err) => options.onError?.(`an idle budget ledger connection failed: ${describePgError(err, options.url)}`));
    return new PgBudgetLedger(pool, options);
  }

  async #query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new LedgerUnavailableError('the budget ledger is closed');
    try {
      return await this.#pool.query<R>({ name, text, values });
    } catch (error) {
      throw new LedgerUnavailableError(`the budget ledger (PostgreSQL) failed: ${describePgError(error, this.#url)}`, { cause: error });
    }
  }

  async reserve(id: string, charges: readonly LedgerCharge[]): Promise<ReserveResult> {
    const res = await this.#query<{ refused: number; spent: number; reserved: number; used: (string | number)[] | null }>(
      'aigov_budget_reserve',
      'SELECT refused, spent, reserved, used FROM aigov_budget_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      [id, [...new Set(charges.map((c) => c.fingerprint))], charges.map((c) => c.key), charges.map((c) => c.limit), charges.map((c) => c.amount), charges.map((c) => c.step), charges.map((c) => c.oldestStep), charges.map((c) => c.expiresAt), this.#ttlMs],
    );
    const row = res.rows[0];
    if (row === undefined) throw new LedgerUnavailableError('the budget ledger answered nothing');
    if (row.refused === -1) return { ok: false, unseeded: true };
    if (row.refused === 0) {
      this.#live.set(id, charges.map((c) => c.key));
      return { ok: true, used: (row.used ?? []).map(Number) };
    }
    const charge = charges[row.refused - 1]!;
    return { ok: false, refused: { index: row.refused - 1, key: charge.key, spent: row.spent, reserved: row.reserved, limit: charge.limit ?? 0, amount: charge.amount } };
  }

  async settle(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void> {
    if (!this.#live.has(id) && !this.#retry.has(id)) return;
    try {
      await this.#settleNow(id, actuals);
    } catch (error) {
      this.#onError(`settling a call's budget reservations failed; retrying: ${error instanceof Error ? error.message : String(error)}`);
      this.#retry.owe(id, actuals);
      throw error;
    }
  }

  async #settleNow(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void> {
    const sorted = [...actuals].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    await this.#query('aigov_budget_settle', 'SELECT aigov_budget_settle($1, $2, $3)', [id, sorted.map((a) => a.key), sorted.map((a) => a.amount)]);
    this.#live.delete(id);
    this.#retry.paid(id);
  }

  /** Pushes the deadline of every reservation of this process's running calls (rows being settled or swept are skipped, not waited for). */
  async #renew(): Promise<void> {
    if (this.#live.size === 0 || this.#closed) return;
    try {
      await this.#query(
        'aigov_budget_renew',
        `UPDATE budget_holds h SET deadline = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint + $2
         FROM (SELECT id, key FROM budget_holds WHERE id = ANY ($1) AND NOT expired FOR UPDATE SKIP LOCKED) l
         WHERE h.id = l.id AND h.key = l.key`,
        [[...this.#live.keys()], this.#ttlMs],
      );
    } catch (error) {
      this.#onError(`renewing budget reservations failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async isSeeded(fingerprint: string): Promise<boolean> {
    const res = await this.#query('aigov_budget_is_seeded', 'SELECT 1 FROM budget_seeds WHERE fingerprint = $1', [fingerprint]);
    return res.rows.length > 0;
  }

  async seed(fingerprint: string, entries: readonly SeedEntry[]): Promise<boolean> {
    if (this.#closed) throw new LedgerUnavailableError('the budget ledger is closed');
    const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.step - b.step));
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw new LedgerUnavailableError(`the budget ledger (PostgreSQL) failed: ${describePgError(error, this.#url)}`, { cause: error });
    }
    try {
      await client.query('BEGIN');
      const first = await client.query('INSERT INTO budget_seeds (fingerprint, seeded_at) VALUES ($1, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) ON CONFLICT DO NOTHING RETURNING 1', [fingerprint]);
      if (first.rows.length === 0) {
        await client.query('ROLLBACK');
        return false;
      }
      if (sorted.length > 0) {
        await client.query(
          `INSERT INTO budget_counters AS c (key, reserved, expires_at)
           SELECT key, 0, max(expires_at) FROM unnest($1::text[], $2::bigint[]) AS e(key, expires_at) GROUP BY key ORDER BY key
           ON CONFLICT (key) DO UPDATE SET expires_at = greatest(c.expires_at, excluded.expires_at)`,
          [sorted.map((e) => e.key), sorted.map((e) => e.expiresAt)],
        );
        await client.query(
          `INSERT INTO budget_spent AS s (key, step, amount)
           SELECT key, step, sum(amount) FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS e(key, step, amount) GROUP BY key, step
           ON CONFLICT (key, step) DO UPDATE SET amount = s.amount + excluded.amount`,
          [sorted.map((e) => e.key), sorted.map((e) => e.step), sorted.map((e) => e.amount)],
        );
      }
      await client.query('COMMIT');
      return true;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw new LedgerUnavailableError(`seeding budget counters failed: ${describePgError(error, this.#url)}`, { cause: error });
    } finally {
      client.release();
    }
  }

  async once(key: string, mark: string, expiresAt: number): Promise<boolean> {
    const res = await this.#query('aigov_budget_once', 'INSERT INTO budget_marks (key, mark, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1', [key, mark, expiresAt]);
    return res.rows.length > 0;
  }

  async read(counters: readonly { readonly key: string; readonly oldestStep: number }[]): Promise<CounterState[]> {
    if (counters.length === 0) return [];
    const res = await this.#query<{ key: string; spent: number; reserved: number }>(
      'aigov_budget_read',
      `SELECT q.key, coalesce((SELECT sum(amount) FROM budget_spent s WHERE s.key = q.key AND s.step >= q.oldest), 0)::bigint AS spent,
              coalesce((SELECT c.reserved - coalesce((SELECT sum(h.amount) FROM budget_holds h WHERE h.key = q.key AND NOT h.expired
                          AND h.deadline < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 0)
                        FROM budget_counters c WHERE c.key = q.key), 0)::bigint AS reserved
       FROM unnest($1::text[], $2::bigint[]) AS q(key, oldest)`,
      [counters.map((c) => c.key), counters.map((c) => c.oldestStep)],
    );
    const byKey = new Map(res.rows.map((r) => [r.key, r]));
    return counters.map((c) => ({ spent: byKey.get(c.key)?.spent ?? 0, reserved: byKey.get(c.key)?.reserved ?? 0 }));
  }

  /** Drops counters past their window with nothing reserved, their steps, and reservations that lapsed long ago. */
  async sweep(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#query('aigov_budget_sweep_marks', 'DELETE FROM budget_marks WHERE expires_at < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint', []);
      await this.#query('aigov_budget_sweep_holds', 'DELETE FROM budget_holds WHERE expired AND deadline < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1', [LAPSED_KEEP_MS]);
      await this.#query(
        'aigov_budget_sweep_counters',
        `WITH gone AS (
           DELETE FROM budget_counters c WHERE c.expires_at < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AND c.reserved = 0
             AND NOT EXISTS (SELECT 1 FROM budget_holds h WHERE h.key = c.key)
           RETURNING c.key)
         DELETE FROM budget_spent s USING gone WHERE s.key = gone.key`,
        [],
      );
    } catch (error) {
      this.#onError(`sweeping old budget counters failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#renewTimer);
    clearInterval(this.#sweepTimer);
    await this.#retry.close(); // a last try for settles still owed
    this.#closed = true;
    await this.#pool.end().catch(() => {});
  }
}
