/**
 * The single place that picks the store drivers (recordings, approvals) from the `storage` config.
 * Drivers are imported lazily, so commands that never open a store do not load them.
 */
import path from 'node:path';
import type { PrivatePathOptions } from '../config/private-files.ts';
import type { StorageConfig } from '../config/schema.ts';
import type { PgObserver } from './postgres/pg-connection.ts';
import type { ApprovalStore } from './approval-store.ts';
import type { BudgetLedger } from './budget-ledger.ts';
import type { RecordingStore } from './recording-store.ts';

export type StorageSettings = StorageConfig;

/**
 * Opens the configured store. A relative `path` is resolved against `baseDir` (the directory
 * of the configuration file), never against the process working directory.
 * `hooks.onWriteError` receives write-behind failures (messages carry no record data); log them.
 * `hooks.onSettled` hears how many calls of a stopped gateway were marked aborted on open; log it.
 * `hooks.onTightened` is told when an existing database file was accessible to other users and
 * has been made private (path and old mode); log it as a warning.
 * `hooks.pgObserver` (PostgreSQL only) gets the read pool's counts and waits (metrics.ts).
 * Throws AigovError('AIGOV_E_STORE_OPEN_FAILED') when the store cannot be opened (a PostgreSQL
 * store is named by its URL without the password).
 */
export async function openRecordingStore(
  storage: StorageSettings,
  baseDir: string,
  hooks: {
    readonly onWriteError?: (err: Error) => void;
    readonly onSettled?: (count: number) => void;
    readonly onTightened?: PrivatePathOptions['onTightened'];
    readonly pgObserver?: PgObserver;
  } = {},
): Promise<RecordingStore> {
  const driver = storage.driver;
  switch (driver) {
    case 'sqlite': {
      const { openSqliteStore } = await import('./sqlite/sqlite-store.ts');
      return openSqliteStore({ path: path.resolve(baseDir, storage.path), onWriteError: hooks.onWriteError, onSettled: hooks.onSettled, onTightened: hooks.onTightened });
    }
    case 'postgres': {
      const { openPostgresStore } = await import('./postgres/postgres-store.ts');
      return openPostgresStore({
        url: storage.url,
        poolSize: storage.poolSize,
        statementTimeoutMs: storage.statementTimeoutMs,
        synchronousCommit: storage.synchronousCommit,
        onWriteError: hooks.onWriteError,
        onSettled: hooks.onSettled,
        observer: hooks.pgObserver,
      });
    }
    default: {
      const unknown: never = driver;
      throw new Error(`unknown storage driver ${String(unknown)}`);
    }
  }
}

/**
 * Opens the configured approval store: the SQLite file at `path` (beside the recordings), or the
 * PostgreSQL database every replica shares. `hooks.onError` hears PostgreSQL connection trouble
 * (no record contents); log it. `hooks.pgObserver` gets its pool's counts and waits and the NOTIFY lag. Throws when it cannot be opened (never with the URL's password).
 */
export async function openApprovalStore(
  storage: StorageSettings,
  baseDir: string,
  hooks: { readonly onTightened?: PrivatePathOptions['onTightened']; readonly onError?: (message: string) => void; readonly pgObserver?: PgObserver } = {},
): Promise<ApprovalStore> {
  const driver = storage.driver;
  switch (driver) {
    case 'sqlite': {
      const { openSqliteApprovalStore } = await import('./sqlite/sqlite-approval-store.ts');
      return openSqliteApprovalStore(path.resolve(baseDir, storage.path), { onTightened: hooks.onTightened });
    }
    case 'postgres': {
      const { openPostgresApprovalStore } = await import('./postgres/pg-approval-store.ts');
      return openPostgresApprovalStore({ url: storage.url, statementTimeoutMs: storage.statementTimeoutMs, onError: hooks.onError, observer: hooks.pgObserver });
    }
    default: {
      const unknown: never = driver;
      throw new Error(`unknown storage driver ${String(unknown)}`);
    }
  }
}

/**
 * Opens where budgets are counted (`budgets.counters`): this process's memory, Redis, or the
 * PostgreSQL storage database. `onError` hears what the shared stores recover from (never a
 * password). A Redis that is down at start does not stop the gateway: budgets refuse requests
 * (fail closed) until it answers.
 */
export async function openBudgetLedger(
  budgets: { readonly counters: 'memory' | 'redis' | 'postgres'; readonly redisUrl: string | null; readonly redisPrefix: string; readonly reservationTtlMs: number },
  storage: StorageSettings,
  hooks: { readonly onError?: (message: string) => void } = {},
): Promise<BudgetLedger> {
  switch (budgets.counters) {
    case 'memory': {
      const { MemoryLedger } = await import('./memory-budget-ledger.ts');
      return new MemoryLedger();
    }
    case 'redis': {
      const { RedisBudgetLedger } = await import('./redis/redis-budget-ledger.ts');
      return RedisBudgetLedger.open({ url: budgets.redisUrl ?? '', prefix: budgets.redisPrefix, ttlMs: budgets.reservationTtlMs, onError: hooks.onError });
    }
    case 'postgres': {
      if (storage.driver !== 'postgres') throw new Error('budgets.counters postgres needs postgres storage');
      const { PgBudgetLedger } = await import('./postgres/pg-budget-ledger.ts');
      return PgBudgetLedger.open({ url: storage.url, ttlMs: budgets.reservationTtlMs, onError: hooks.onError });
    }
  }
}
