/**
 * Connections to PostgreSQL for the recording store: the settings every connection gets, the
 * type parsers (bigint columns come back as numbers: epoch ms and ids stay far below 2^53),
 * and the one way a driver error becomes text — SQLSTATE and message, never the server's
 * `detail` (it quotes row values), never a data exception's message (some quote the value),
 * and never the URL's password (scrubDatabaseSecrets).
 */
import pg from 'pg';
import { scrubDatabaseSecrets } from '../../config/database-url.ts';

export type PgClient = pg.Client;
export type PgPool = pg.Pool;

export interface PgSettings {
  readonly url: string;
  /** statement_timeout of every connection, ms. */
  readonly statementTimeoutMs: number;
  /** How long opening a connection may take, ms. */
  readonly connectTimeoutMs: number;
  /** lock_timeout, ms (0: none; the statement timeout still bounds a wait). */
  readonly lockTimeoutMs: number;
}

const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : (pg.types.getTypeParser(oid, format ?? 'text') as unknown)) as typeof pg.types.getTypeParser,
};

function clientConfig(settings: PgSettings, statementTimeoutMs: number): pg.ClientConfig {
  return {
    connectionString: settings.url,
    application_name: 'aigov',
    types,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    keepAlive: true,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    ...(settings.lockTimeoutMs > 0 && statementTimeoutMs > 0 ? { lock_timeout: settings.lockTimeoutMs } : {}),
    // A process frozen inside a transaction must not hold the chain's lock (every replica's writes) for long.
    idle_in_transaction_session_timeout: Math.max(10_000, 2 * settings.statementTimeoutMs),
  };
}

/** A pool's connection counts, as pg.Pool keeps them. */
export interface PgPoolCounts {
  readonly totalCount: number;
  readonly idleCount: number;
  /** Callers queued for a connection. */
  readonly waitingCount: number;
}

/**
 * What the PostgreSQL stores tell the gateway's metrics (metrics.ts): their pools, the time each
 * caller waited for a pooled connection, and how late notifications arrive. Optional everywhere:
 * the CLI and tests open stores without one.
 */
export interface PgObserver {
  /** Pool `name` (recordings, approvals, vaults) opened; its counts are read when metrics are scraped. */
  poolOpened(name: string, pool: PgPoolCounts): void;
  /** A caller of pool `name` waited `seconds` for a connection (queued behind others, or connecting), got one or not. */
  poolWaited(name: string, seconds: number): void;
  /** A notification on `channel` arrived `seconds` after its sender stamped it (pg-notify-listener.ts). */
  notifyLag(channel: string, seconds: number): void;
}

/** pg.Pool timing every checkout: `pool.query` checks out through `connect(callback)`, callers through `connect()`. */
class WatchedPool extends pg.Pool {
  readonly #waited: (seconds: number) => void;

  constructor(config: pg.PoolConfig, waited: (seconds: number) => void) {
    super(config);
    this.#waited = waited;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<pg.PoolClient> | void {
    const started = performance.now();
    const waited = (): void => this.#waited((performance.now() - started) / 1000);
    if (callback === undefined) {
      return super.connect().then(
        (client) => {
          waited();
          return client;
        },
        (err: unknown) => {
          waited();
          throw err;
        },
      );
    }
    super.connect((err, client, done) => {
      waited();
      callback(err, client, done);
    });
  }
}

/**
 * A pool for reads and short writes. Its idle connections' errors are reported, never thrown.
 * With `watch`, the pool is shown to the observer under `watch.name` and every checkout is timed.
 */
export function createPool(settings: PgSettings, size: number, onError: (message: string) => void, watch?: { readonly observer: PgObserver; readonly name: string }): PgPool {
  const config: pg.PoolConfig = { ...clientConfig(settings, settings.statementTimeoutMs), max: size, idleTimeoutMillis: 30_000 };
  let pool: PgPool;
  if (watch === undefined) {
    pool = new pg.Pool(config);
  } else {
    const { observer, name } = watch;
    pool = new WatchedPool(config, (seconds) => observer.poolWaited(name, seconds));
    observer.poolOpened(name, pool);
  }
  pool.on('error', (err) => onError(`an idle connection to PostgreSQL failed: ${describePgError(err, settings.url)}`));
  return pool;
}

/**
 * A connection of its own (not pooled): the writer's (pipelined: a transaction's statements go
 * out together), the owner lock's, the migrations'. `statementTimeoutMs` 0: none.
 */
export async function connectClient(settings: PgSettings, options: { pipeline?: boolean; statementTimeoutMs?: number; synchronousCommit?: 'on' | 'off' } = {}): Promise<PgClient> {
  const client = new pg.Client({
    ...clientConfig(settings, options.statementTimeoutMs ?? settings.statementTimeoutMs),
    ...(options.pipeline ? { pipeline: true } : {}),
    ...(options.synchronousCommit === undefined ? {} : { options: `-c synchronous_commit=${options.synchronousCommit}` }),
  });
  // Until the owner sets its own, an error on an idle client must not crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  return client;
}

/** SQLSTATE classes whose messages can quote a value (22 data exception). */
const VALUE_QUOTING_CLASSES = new Set(['22']);

/** A driver or server error as text fit for logs and error messages. */
export function describePgError(err: unknown, url: string): string {
  if (!(err instanceof Error)) return 'unknown error';
  const code = (err as { code?: unknown }).code;
  let text: string;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    text = VALUE_QUOTING_CLASSES.has(code.slice(0, 2)) ? `PostgreSQL error ${code} (a value was refused)` : `${err.message} (PostgreSQL error ${code})`;
  } else if (typeof code === 'string') {
    text = `${err.message} (${code})`;
  } else {
    text = err.message || err.name;
  }
  return scrubDatabaseSecrets(text, url);
}

/** True for errors that say the connection itself is unusable (the next attempt needs a new one). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // connection exception, authentication, no such database, too many connections, database not
    // accepting connections, admin or crash shutdown, cannot connect now
    if (/^(08|28)/.test(code) || ['3D000', '53300', '55000', '57P01', '57P02', '57P03'].includes(code)) return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT …
  }
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|not queryable|connection error|timeout exceeded when trying to connect/i.test(message);
}

/**
 * A client checked out of `pool` for one transaction, with an 'error' listener while it is out:
 * pg emits a connection's failure as an 'error' event on the client besides failing its queries,
 * and a checked-out client has no listener of the pool's (an unheard 'error' would end the
 * process). `release(broken)` hands it back; broken: destroyed, not reused.
 */
export async function checkOut(pool: PgPool): Promise<{ readonly client: pg.PoolClient; readonly release: (broken: boolean) => void }> {
  const client = await pool.connect();
  const heard = (): void => {}; // the failed query reports it to the caller
  client.on('error', heard);
  return {
    client,
    release: (broken) => {
      // A broken client is destroyed and may still report its end: it keeps the listener.
      if (!broken) client.removeListener('error', heard);
      client.release(broken);
    },
  };
}
