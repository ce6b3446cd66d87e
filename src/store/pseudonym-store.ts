/**
 * Where pseudonym vaults are kept when they must survive a restart. A vault maps «LABEL_n»
 * placeholders to the real values they stand for; an implementation never keeps a value in
 * plaintext (see pseudonym-sealer.ts) and never puts one in an error message.
 *
 * The methods are synchronous and never wait for a lock: when another connection holds the
 * database they throw at once (`isStoreBusy`), and the caller retries later without blocking
 * its thread (see session-vaults.ts).
 */
import type { VaultEntry } from '../core/masking/pseudonym-vault.ts';

export interface VaultAppend {
  readonly sessionId: string;
  readonly entries: readonly VaultEntry[];
}

/** Per append: stored, or refused because the store already gives one of its placeholders another value or one of its values another placeholder (another process issued them first). */
export type AppendOutcome = 'stored' | 'conflict';

export interface PseudonymStore {
  /** Every entry of the session's vault, values opened. */
  load(sessionId: string): VaultEntry[];
  /**
   * In one transaction: each append all or none (a conflicting one alone is left out), and each
   * appended or `touched` session marked used at `now` (a vault expires `ttl` after its last use).
   */
  write(appends: readonly VaultAppend[], touched: readonly string[], now: number): AppendOutcome[];
  /** Deletes the vaults of up to `limit` sessions not used since `before`; returns their ids. */
  purge(before: number, limit: number): string[];
  close(): void;
}

/** The database was locked by another connection (SQLITE_BUSY / SQLITE_LOCKED): try again later. */
export function isStoreBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === 5 || (code & 0xff) === 6);
}
