/**
 * Where pseudonym vaults are kept when they must survive a restart. A vault maps «LABEL_n»
 * placeholders to the real values they stand for; an implementation never keeps a value in
 * plaintext (see pseudonym-sealer.ts) and never puts one in an error message.
 *
 * The methods are synchronous: the gateway issues placeholders while it rewrites a request's
 * text, and a placeholder must be stored before that text is handed on (see session-vaults.ts).
 */
import type { VaultEntry } from '../core/masking/pseudonym-vault.ts';

export interface PseudonymStore {
  /** Every entry of the session's vault, values opened. */
  load(sessionId: string): VaultEntry[];
  /**
   * Adds entries to the session's vault, all or none, and marks it used at `now`.
   * Throws PseudonymConflictError when the store already has one of these placeholders with
   * another value, or one of these values under another placeholder (another process issued it).
   */
  append(sessionId: string, entries: readonly VaultEntry[], now: number): void;
  /** Marks the session's vault used at `now` (a vault expires `ttl` after its last use). */
  touch(sessionId: string, now: number): void;
  /** Deletes the vaults of up to `limit` sessions not used since `before`; returns their ids. */
  purge(before: number, limit: number): string[];
  close(): void;
}

/** append() lost a race: the store holds other entries for these numbers or values. */
export class PseudonymConflictError extends Error {
  constructor() {
    super('another writer stored a pseudonym for the same placeholder or value first');
    this.name = 'PseudonymConflictError';
  }
}
