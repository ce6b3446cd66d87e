/**
 * The gateway's pseudonym vaults, one per session: «EMAIL_1» goes upstream in place of a value,
 * and the value is put back into the answer.
 *
 * Durable (a PseudonymStore, i.e. `pseudonyms.key` is set): placeholders are issued in memory
 * while the request's text is rewritten (`issue`, synchronous), then the request waits for
 * `commit`, which resolves once every placeholder its session has issued so far is stored —
 * the pipeline records and sends the request only after that. So a placeholder that went
 * upstream can be restored after a restart, and the same value keeps its placeholder. If storing
 * fails, every placeholder not yet stored is taken back and every request waiting for one is
 * refused (AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE): fail closed, none of them was sent.
 *
 * The event loop never waits for SQLite's lock: the store throws SQLITE_BUSY at once and the
 * write is retried on a timer (for up to `busyRetryMs`). Writes are group-committed: all that
 * was issued across sessions since the last write goes in one transaction, at most one write at
 * a time. After a write that met the lock busy or took more than FLUSH_GAP_MS, the next waits
 * max(FLUSH_GAP_MS, its duration), so the recording store's writer thread (same file) gets the
 * lock between them; a quick uncontended write lets the next go at once (no added latency). Memory holds the most recently used sessions' vaults up to
 * `maxEntries` entries (a vault with unstored entries is never evicted; the rest reload from the
 * store on use); vaults unused for the TTL are purged from the store.
 *
 * In memory only (no store): the same without storing — evicted or restarted vaults are lost.
 *
 * Concurrency. Within one process a session has one vault object (loads are single-flight) and
 * issuing is synchronous, so two requests of one session can never give one number to two
 * values or two numbers to one value. Across processes sharing the database file, the store's
 * unique indexes refuse the second writer: its requests are refused (a retry then succeeds) and
 * its vault reloads. What a process does not see: a vault it holds while another process adds to
 * it is not reloaded until evicted, so a replica restores only placeholders it has seen — every
 * placeholder of a request it sent, but not one issued by another replica and repeated by the
 * model from server-side state (e.g. Responses `previous_response_id`).
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { PseudonymVault } from '../core/masking/pseudonym-vault.ts';
import { isStoreBusy, type AppendOutcome, type PseudonymStore, type VaultAppend } from '../store/pseudonym-store.ts';
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
  /** How long a store operation is retried while another connection holds the database. Default 2000 ms. */
  readonly busyRetryMs?: number;
  readonly now?: () => number;
  /** Store failures, with what was being done (messages carry no values): log them. */
  readonly onError?: (error: unknown, operation: Operation) => void;
}

type Operation = 'load' | 'store' | 'purge';

/** What a request gets: its session's vault, the way to issue placeholders, and to wait until they are stored. */
export interface VaultLease {
  readonly vault: PseudonymVault;
  /** Runs `rewrite` (which may issue placeholders from `vault`); a throw takes back what it issued. */
  issue<T>(rewrite: () => T): T;
  /** Resolves once every placeholder this session has issued so far is stored (at once in memory mode); rejects with AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE. */
  commit(): Promise<void>;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // waiters handle it; nobody waiting is not an unhandled rejection
  return { promise, resolve, reject };
}

interface Slot {
  readonly sessionId: string;
  readonly vault: PseudonymVault;
  /** The first `stored` entries of the vault are in the store. */
  stored: number;
  /** Entries [stored, to) being written now. */
  flight: { readonly to: number; readonly done: Deferred } | null;
  /** Waiters for entries issued after the flight (or after `stored`): the next write. */
  next: Deferred | null;
  /** The weight counted for this slot in the LRU total. */
  weight: number;
  touchedAt: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const DEFAULT_PURGE_INTERVAL_MS = 60 * 60 * 1000;
const DEFAULT_BUSY_RETRY_MS = 2000;
/** A vault in use is marked used in the store at most this often (it expires TTL after). */
const TOUCH_INTERVAL_MS = 60 * 60 * 1000;
/** Pause after a contended or long write before the next one (the recording writer's turn). */
const FLUSH_GAP_MS = 2;
/** Entries per write (each costs ~35 µs of event loop: seal, MAC, insert); more wait for the next write. */
const MAX_WRITE_ENTRIES = 256;
const PURGE_BATCH = 500;
const RESOLVED = Promise.resolve();

export class SessionVaults {
  readonly #store: PseudonymStore | null;
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #busyRetryMs: number;
  readonly #now: () => number;
  readonly #onError: NonNullable<SessionVaultsOptions['onError']>;
  /** Map order is recency: first = least recently used. */
  readonly #slots = new Map<string, Slot>();
  readonly #loading = new Map<string, Promise<Slot>>();
  #weight = 0;
  /** Slots with entries waiting for the next write, and sessions to mark used with it. */
  readonly #queue = new Set<Slot>();
  readonly #touches = new Set<string>();
  #flushScheduled = false;
  #flushing: Promise<void> | null = null;
  #lastFlushEnd = 0;
  #lastFlushMs = 0;
  #lastFlushContended = false;
  #purgeTimer: NodeJS.Timeout | null = null;
  #purging: Promise<number> | null = null;
  #closed = false;

  constructor(options: SessionVaultsOptions = {}) {
    this.#store = options.store ?? null;
    this.#maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.#ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.#busyRetryMs = options.busyRetryMs ?? DEFAULT_BUSY_RETRY_MS;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    const interval = options.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS;
    if (this.#store !== null && interval > 0) {
      void this.purgeExpired();
      this.#purgeTimer = setInterval(() => void this.purgeExpired(), interval);
      this.#purgeTimer.unref();
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
  async forRequest(sessionId: string): Promise<VaultLease> {
    const slot = (await this.#slot(sessionId, true))!;
    return { vault: slot.vault, issue: (rewrite) => this.#issue(slot, rewrite), commit: () => this.#commit(slot) };
  }

  /** The session's vault for restoring an answer only, or null when the session has none. */
  async forAnswer(sessionId: string): Promise<PseudonymVault | null> {
    const slot = await this.#slot(sessionId, this.#store !== null);
    return slot !== null && slot.vault.size > 0 ? slot.vault : null;
  }

  /** Deletes from the store the vaults unused for the TTL, in batches; returns how many sessions. */
  purgeExpired(): Promise<number> {
    this.#purging ??= this.#purge().finally(() => {
      this.#purging = null;
    });
    return this.#purging;
  }

  /** Stops the timers, finishes a write or purge in progress, closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#purgeTimer !== null) clearInterval(this.#purgeTimer);
    await this.#purging?.catch(() => 0);
    if (this.#store !== null) await this.#drain(); // what requests still wait for
    this.#slots.clear();
    this.#weight = 0;
    this.#store?.close();
  }

  async #slot(sessionId: string, create: boolean): Promise<Slot | null> {
    if (this.#closed) throw this.#unavailable(new Error('the pseudonym vaults are closed'), 'load');
    const cached = this.#slots.get(sessionId);
    if (cached !== undefined) {
      this.#slots.delete(sessionId);
      this.#slots.set(sessionId, cached);
      const now = this.#now();
      if (this.#store !== null && cached.stored > 0 && now - cached.touchedAt >= TOUCH_INTERVAL_MS) {
        cached.touchedAt = now;
        this.#touches.add(sessionId);
        this.#scheduleFlush();
      }
      return cached;
    }
    if (!create) return null;
    let loading = this.#loading.get(sessionId);
    if (loading === undefined) {
      loading = this.#load(sessionId).finally(() => this.#loading.delete(sessionId));
      this.#loading.set(sessionId, loading);
    }
    return loading;
  }

  async #load(sessionId: string): Promise<Slot> {
    const vault = new PseudonymVault();
    const store = this.#store;
    if (store !== null) {
      try {
        vault.merge(await this.#retry(() => store.load(sessionId)));
      } catch (error) {
        throw this.#unavailable(error, 'load');
      }
    }
    const slot: Slot = { sessionId, vault, stored: vault.size, flight: null, next: null, weight: vault.size + 1, touchedAt: this.#now() };
    this.#slots.set(sessionId, slot);
    this.#weight += slot.weight;
    if (vault.size > 0) {
      this.#touches.add(sessionId);
      this.#scheduleFlush();
    }
    this.#evict(slot);
    return slot;
  }

  #issue<T>(slot: Slot, rewrite: () => T): T {
    const before = slot.vault.size;
    let result: T;
    try {
      result = rewrite();
    } catch (error) {
      slot.vault.truncate(before); // the request is refused: what it issued never left
      throw error;
    }
    if (this.#store === null) slot.stored = slot.vault.size;
    this.#reweigh(slot);
    return result;
  }

  #commit(slot: Slot): Promise<void> {
    if (this.#store === null || slot.stored === slot.vault.size) return RESOLVED;
    const waits: Promise<void>[] = [];
    if (slot.flight !== null) waits.push(slot.flight.done.promise);
    if (slot.vault.size > (slot.flight?.to ?? slot.stored)) {
      if (slot.next === null) {
        slot.next = deferred();
        this.#queue.add(slot);
        this.#scheduleFlush();
      }
      waits.push(slot.next.promise);
    }
    return waits.length === 1 ? waits[0]! : Promise.all(waits).then(() => undefined);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing !== null || this.#store === null) return;
    this.#flushScheduled = true;
    const run = (): void => {
      this.#flushScheduled = false;
      if (this.#flushing === null && !(this.#closed && this.#queue.size === 0)) this.#startFlush();
    };
    const gap = this.#lastFlushContended || this.#lastFlushMs >= FLUSH_GAP_MS ? Math.max(FLUSH_GAP_MS, this.#lastFlushMs) : 0;
    const wait = this.#lastFlushEnd + gap - Date.now();
    if (wait > 0) setTimeout(run, wait);
    else setImmediate(run);
  }

  #startFlush(): void {
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      this.#lastFlushEnd = Date.now();
      if (this.#queue.size > 0 || this.#touches.size > 0) this.#scheduleFlush();
    });
  }

  /** Writes now whatever waits to be written (before a purge, at close). */
  async #drain(): Promise<void> {
    for (;;) {
      if (this.#flushing !== null) await this.#flushing;
      else if (this.#queue.size > 0 || this.#touches.size > 0) this.#startFlush();
      else return;
    }
  }

  /** One write: the queued sessions' unstored entries (up to MAX_WRITE_ENTRIES) and the pending touches, in one transaction. */
  async #flush(): Promise<void> {
    const store = this.#store!;
    const batch: Slot[] = [];
    const appends: VaultAppend[] = [];
    let budget = MAX_WRITE_ENTRIES; // whole sessions only: the first one may exceed it
    for (const slot of this.#queue) {
      if (budget <= 0) break; // the rest stay queued for the next write
      this.#queue.delete(slot);
      const to = slot.vault.size;
      const done = slot.next ?? deferred();
      slot.next = null;
      if (to <= slot.stored) {
        done.resolve(); // nothing left to store (taken back meanwhile)
        continue;
      }
      slot.flight = { to, done };
      appends.push({ sessionId: slot.sessionId, entries: slot.vault.entries(slot.stored).slice(0, to - slot.stored) });
      batch.push(slot);
      budget -= to - slot.stored;
    }
    const touched = [...this.#touches];
    this.#touches.clear();
    let outcomes: AppendOutcome[] = [];
    let failure: unknown = null;
    try {
      let attempts = 0;
      outcomes = await this.#retry(() => {
        this.#lastFlushContended = ++attempts > 1;
        const started = Date.now();
        try {
          return store.write(appends, touched, this.#now());
        } finally {
          this.#lastFlushMs = Date.now() - started; // the write itself, not the waits for the lock
        }
      });
    } catch (error) {
      failure = error;
    }
    const now = this.#now();
    let refusal: AigovError | null = failure === null ? null : this.#unavailable(failure, 'store');
    batch.forEach((slot, i) => {
      const flight = slot.flight!;
      slot.flight = null;
      if (outcomes[i] === 'stored') {
        slot.stored = flight.to;
        slot.touchedAt = now;
        this.#reweigh(slot);
        flight.done.resolve();
        return;
      }
      // Not stored: take back every placeholder the store does not hold (their requests all wait
      // here, none was sent) and refuse those requests.
      const conflict = failure === null;
      refusal ??= this.#unavailable(new Error('another process stored pseudonyms for this session first'), 'store');
      slot.vault.truncate(slot.stored);
      flight.done.reject(refusal);
      slot.next?.reject(refusal);
      slot.next = null;
      this.#queue.delete(slot);
      this.#reweigh(slot);
      if (conflict) this.#reload(slot);
    });
  }

  /** After a conflict: learn what the other process stored, or let the next request load afresh. */
  #reload(slot: Slot): void {
    try {
      slot.vault.merge(this.#store!.load(slot.sessionId));
      slot.stored = slot.vault.size;
      this.#reweigh(slot);
    } catch (error) {
      this.#onError(error, 'load');
      this.#drop(slot.sessionId, slot);
    }
  }

  async #purge(): Promise<number> {
    const store = this.#store;
    if (store === null) return 0;
    await this.#drain(); // a vault just used must not be purged for want of its touch
    const before = this.#now() - this.#ttlMs;
    let total = 0;
    try {
      for (;;) {
        if (this.#closed) break;
        const ids = await this.#retry(() => store.purge(before, PURGE_BATCH));
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

  /** Runs `operation`; while another connection holds the database, tries again on a timer (never blocking). */
  async #retry<T>(operation: () => T): Promise<T> {
    const deadline = Date.now() + this.#busyRetryMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 25)) {
      try {
        return operation();
      } catch (error) {
        if (!isStoreBusy(error) || Date.now() + delay > deadline) throw error;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
    }
  }

  #reweigh(slot: Slot): void {
    const weight = slot.vault.size + 1;
    if (weight === slot.weight) return;
    if (this.#slots.get(slot.sessionId) === slot) this.#weight += weight - slot.weight;
    slot.weight = weight;
    this.#evict(slot);
  }

  /** Least recently used sessions go until the total fits; `keep` (in use now) and vaults with unstored entries stay. */
  #evict(keep: Slot): void {
    for (const [id, slot] of this.#slots) {
      if (this.#weight <= this.#maxEntries) return;
      if (slot === keep || slot.stored < slot.vault.size) continue;
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

  #unavailable(error: unknown, operation: Operation): AigovError {
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
