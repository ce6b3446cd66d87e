/**
 * Where pseudonym vaults are kept when they must survive a restart. A vault maps «LABEL_n»
 * placeholders to the real values they stand for; an implementation never keeps a value in
 * plaintext (see pseudonym-sealer.ts) and never puts one in an error message.
 *
 * SQLite (sqlite/sqlite-pseudonym-store.ts): the work is done on the main thread without ever
 * waiting for a lock — when another connection holds the database the promise rejects at once
 * (`isStoreBusy`) and the caller retries on a timer (see session-vaults.ts).
 * PostgreSQL (postgres/pg-pseudonym-store.ts): `shared` — several replicas issue placeholders for
 * the same sessions, so a vault held in memory is brought up to date from `load(…, after)` each
 * time it is used.
 */
import type { VaultEntry } from '../core/masking/pseudonym-vault.ts';

export interface VaultAppend {
  readonly sessionId: string;
  readonly entries: readonly VaultEntry[];
}

/**
 * Per append: stored, or refused because the store already gives one of its placeholders another
 * value or one of its values another placeholder (another process issued them first). Entries
 * the store already holds exactly so (same placeholder, same value) are no conflict.
 */
export type AppendOutcome = 'stored' | 'conflict';

/** Entries of one session's vault, values opened, and where a later `load` may continue from. */
export interface VaultLoad {
  readonly entries: VaultEntry[];
  /** Pass as `after` to get only what was stored since (0 when the store cannot tell: it always returns everything). */
  readonly cursor: number;
}

export interface PseudonymStore {
  /**
   * Other processes add to these vaults while this one runs (replicas on one database): a vault
   * held in memory must be brought up to date before each use, and the store needs no pause
   * between writes for a writer on the same file.
   */
  readonly shared: boolean;
  /** The session's entries stored after `after` (a cursor from an earlier load; 0 or omitted: all), oldest first. */
  load(sessionId: string, after?: number): Promise<VaultLoad>;
  /**
   * In one transaction: each append all or none (a conflicting one alone is left out), and each
   * appended or `touched` session marked used at `now` (a vault expires `ttl` after its last use).
   */
  write(appends: readonly VaultAppend[], touched: readonly string[], now: number): Promise<AppendOutcome[]>;
  /** Deletes the vaults of up to `limit` sessions not used since `before`; returns their ids. */
  purge(before: number, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

/** The database was locked by another connection (SQLITE_BUSY / SQLITE_LOCKED): try again later. */
export function isStoreBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === 5 || (code & 0xff) === 6);
}
