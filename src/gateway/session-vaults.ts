/**
 * The gateway's pseudonym vaults, one per session: «EMAIL_1» goes upstream in place of a value,
 * and the value is put back into the answer.
 *
 * Durable (a PseudonymStore, i.e. `pseudonyms.key` is set): every placeholder is stored, sealed,
 * before the text that carries it is handed on — `issue()` wraps each request-text rewrite and
 * appends what it issued, so a placeholder that went upstream can be restored after a restart,
 * and the same value keeps its placeholder. If storing fails the new placeholders are taken back
 * and the request is refused (AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE): fail closed, never sent with
 * a placeholder nobody can restore. Memory holds the most recently used sessions' vaults up to
 * `maxEntries` entries (the rest are reloaded from the store on use); vaults unused for the TTL
 * are purged from the store.
 *
 * In memory only (no store): the same, minus the store — evicted or restarted vaults are lost.
 *
 * Concurrency. Within one process nothing interleaves: loading, issuing and storing are
 * synchronous (node:sqlite), so two requests of one session can never give one number to two
 * values or two numbers to one value. Across processes sharing the database file, the store's
 * unique indexes refuse the second writer, which reloads the session and issues again. What a
 * process does not see: a vault it caches as empty (or smaller) while another process adds to it
 * is not reloaded until evicted, so an answer served by one replica restores only placeholders
 * that replica has seen — every placeholder of a request it sent, but not one issued by another
 * replica and repeated by the model from server-side state (e.g. Responses `previous_response_id`).
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { PseudonymVault } from '../core/masking/pseudonym-vault.ts';
import { PseudonymConflictError, type PseudonymStore } from '../store/pseudonym-store.ts';
import { openSqlitePseudonymStore, type SqlitePseudonymStore } from '../store/sqlite/sqlite-pseudonym-store.ts';
import { errorSummary } from './pipeline.ts';

export interface SessionVaultsOptions {
  /** Where vaults are kept across restarts; null/undefined: in memory only. */
  readonly store?: PseudonymStore | null;
  /** Entries held in memory over all sessions (a session counts one more than its entries). Default 100 000. */
  readonly maxEntries?: number;
  /** A vault unused this long is purged from the store. Default 30 days. */
  readonly ttlMs?: number;
  /** Purge expired vaults this often (and once at start); 0 disables the timer. Default 1 h. */
  readonly purgeIntervalMs?: number;
  readonly now?: () => number;
  /** Store failures, with what was being done (messages carry no values): log them. */
  readonly onError?: (error: unknown, operation: 'load' | 'store' | 'touch' | 'purge') => void;
}

/** What a request gets: its session's vault, and the way to issue placeholders from it. */
export interface VaultLease {
  readonly vault: PseudonymVault;
  /**
   * Runs `rewrite` (which may issue placeholders from `vault`) and, when durable, stores what it
   * issued before returning. Throws AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE when it cannot.
   */
  issue<T>(rewrite: () => T): T;
}

interface Slot {
  readonly sessionId: string;
  readonly vault: PseudonymVault;
  /** How many of the vault's entries the store holds (all of them, between two issue() calls). */
  stored: number;
  /** The weight counted for this slot in the LRU total. */
  weight: number;
  touchedAt: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const DEFAULT_PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** A vault in use is marked used in the store at most this often (it expires TTL after). */
const TOUCH_INTERVAL_MS = 60 * 60 * 1000;
/** Times issue() reloads and retries after losing a race to another process. */
const CONFLICT_RETRIES = 3;
const PURGE_BATCH = 500;

export class SessionVaults {
  readonly #store: PseudonymStore | null;
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #onError: NonNullable<SessionVaultsOptions['onError']>;
  /** Map order is recency: first = least recently used. */
  readonly #slots = new Map<string, Slot>();
  #weight = 0;
  #timer: NodeJS.Timeout | null = null;
  #purging: Promise<number> | null = null;
  #closed = false;

  constructor(options: SessionVaultsOptions = {}) {
    this.#store = options.store ?? null;
    this.#maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.#ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    const interval = options.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS;
    if (this.#store !== null && interval > 0) {
      void this.purgeExpired();
      this.#timer = setInterval(() => void this.purgeExpired(), interval);
      this.#timer.unref();
    }
  }

  /** Whether vaults survive a restart. */
  get durable(): boolean {
    return this.#store !== null;
  }

  /** Sessions and entries held in memory now. */
  get cached(): { sessions: number; entries: number } {
    return { sessions: this.#slots.size, entries: this.#weight - this.#slots.size };
  }

  /** The session's vault for a request that pseudonymizes (loaded from the store on first use). */
  forRequest(sessionId: string): VaultLease {
    const slot = this.#slot(sessionId, true)!;
    return { vault: slot.vault, issue: (rewrite) => this.#issue(slot, rewrite) };
  }

  /** The session's vault for restoring an answer only, or null when the session has none. */
  forAnswer(sessionId: string): PseudonymVault | null {
    const slot = this.#slot(sessionId, this.#store !== null);
    return slot !== null && slot.vault.size > 0 ? slot.vault : null;
  }

  /** Deletes from the store the vaults unused for the TTL, in batches; returns how many sessions. */
  purgeExpired(): Promise<number> {
    this.#purging ??= this.#purge().finally(() => {
      this.#purging = null;
    });
    return this.#purging;
  }

  /** Stops the purge timer, waits for a purge in progress, closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#purging?.catch(() => 0);
    this.#slots.clear();
    this.#weight = 0;
    this.#store?.close();
  }

  async #purge(): Promise<number> {
    const store = this.#store;
    if (store === null) return 0;
    const before = this.#now() - this.#ttlMs;
    let total = 0;
    try {
      for (;;) {
        if (this.#closed) break;
        const ids = store.purge(before, PURGE_BATCH);
        for (const id of ids) this.#drop(id);
        total += ids.length;
        if (ids.length < PURGE_BATCH) break;
        await new Promise<void>((resolve) => setImmediate(resolve)); // let requests through between batches
      }
    } catch (error) {
      this.#onError(error, 'purge');
    }
    return total;
  }

  #slot(sessionId: string, create: boolean): Slot | null {
    if (this.#closed) throw this.#unavailable(new Error('the pseudonym vaults are closed'), 'load');
    const now = this.#now();
    const cached = this.#slots.get(sessionId);
    if (cached !== undefined) {
      this.#slots.delete(sessionId);
      this.#slots.set(sessionId, cached);
      if (this.#store !== null && cached.stored > 0 && now - cached.touchedAt >= TOUCH_INTERVAL_MS) {
        try {
          this.#store.touch(sessionId, now);
        } catch (error) {
          throw this.#unavailable(error, 'touch');
        }
        cached.touchedAt = now;
      }
      return cached;
    }
    if (!create) return null;
    const vault = new PseudonymVault();
    if (this.#store !== null) {
      try {
        const entries = this.#store.load(sessionId);
        vault.merge(entries);
        if (entries.length > 0) this.#store.touch(sessionId, now);
      } catch (error) {
        throw this.#unavailable(error, 'load');
      }
    }
    const slot: Slot = { sessionId, vault, stored: vault.size, weight: vault.size + 1, touchedAt: now };
    this.#slots.set(sessionId, slot);
    this.#weight += slot.weight;
    this.#evict(slot);
    return slot;
  }

  #issue<T>(slot: Slot, rewrite: () => T): T {
    const store = this.#store;
    for (let attempt = 0; ; attempt++) {
      let result: T;
      try {
        result = rewrite();
      } catch (error) {
        slot.vault.truncate(slot.stored); // the request is refused: what it issued never left
        throw error;
      }
      if (store === null || slot.vault.size === slot.stored) {
        if (store === null) slot.stored = slot.vault.size;
        this.#reweigh(slot);
        return result;
      }
      try {
        store.append(slot.sessionId, slot.vault.entries(slot.stored), this.#now());
        slot.stored = slot.vault.size;
        slot.touchedAt = this.#now();
        this.#reweigh(slot);
        return result;
      } catch (error) {
        slot.vault.truncate(slot.stored);
        if (!(error instanceof PseudonymConflictError) || attempt >= CONFLICT_RETRIES) throw this.#unavailable(error, 'store');
      }
      // Another process stored entries for this session first: learn them, then issue again.
      try {
        slot.vault.merge(store.load(slot.sessionId));
        slot.stored = slot.vault.size;
      } catch (error) {
        // The store contradicts what this process holds (e.g. purged and refilled elsewhere):
        // refuse, and let the next request start from the store's state.
        this.#drop(slot.sessionId, slot);
        throw this.#unavailable(error, 'load');
      }
    }
  }

  #reweigh(slot: Slot): void {
    const weight = slot.vault.size + 1;
    if (weight === slot.weight) return;
    if (this.#slots.get(slot.sessionId) === slot) this.#weight += weight - slot.weight;
    slot.weight = weight;
    this.#evict(slot);
  }

  /** Least recently used sessions go until the total fits; `keep` (in use now) stays. */
  #evict(keep: Slot): void {
    for (const [id, slot] of this.#slots) {
      if (this.#weight <= this.#maxEntries) return;
      if (slot === keep) continue;
      this.#slots.delete(id);
      this.#weight -= slot.weight;
    }
  }

  #drop(sessionId: string, only?: Slot): void {
    const slot = this.#slots.get(sessionId);
    if (slot === undefined || (only !== undefined && slot !== only)) return;
    this.#slots.delete(sessionId);
    this.#weight -= slot.weight;
  }

  #unavailable(error: unknown, operation: 'load' | 'store' | 'touch'): AigovError {
    this.#onError(error, operation);
    return new AigovError('AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE', {}, { cause: error });
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The vaults a gateway with a policy uses: sealed in the storage database when `pseudonyms.key`
 * is set, else in memory (one warning at startup). Throws AIGOV_E_PSEUDONYM_KEY_MISMATCH when the
 * database's vault was written with another key, AIGOV_E_STORE_OPEN_FAILED when it cannot be opened.
 */
export function openSessionVaults(config: Pick<GatewayConfig, 'pseudonyms' | 'storage'>, logger: Logger): SessionVaults {
  const onError = (error: unknown, operation: string): void => logger.error({ operation, err: errorSummary(error) }, 'pseudonym vault store failed');
  if (config.pseudonyms.key === null) {
    logger.warn(
      'pseudonyms.key is not set: pseudonym vaults live in memory only, so after a restart answers no longer get earlier placeholders restored and a value gets a new placeholder. ' +
        'To keep them (encrypted, in the storage database) set pseudonyms.key to 32 random bytes by reference, e.g. key: ${AIGOV_PSEUDONYM_KEY} with AIGOV_PSEUDONYM_KEY=$(openssl rand -base64 32).',
    );
    return new SessionVaults({ onError });
  }
  let store: SqlitePseudonymStore;
  try {
    store = openSqlitePseudonymStore({ location: config.storage.path, key: Buffer.from(config.pseudonyms.key, 'hex') });
  } catch (error) {
    if (isAigovError(error)) throw error;
    throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location: config.storage.path, reason: `pseudonym vault: ${errorSummary(error)}` }, { cause: error });
  }
  logger.info({ keyId: store.keyId, ttlDays: config.pseudonyms.ttlDays }, 'pseudonym vaults are kept sealed in the storage database');
  return new SessionVaults({ store, ttlMs: config.pseudonyms.ttlDays * DAY_MS, onError });
}
