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
 * values or two numbers to one value. Across processes, the store refuses the second writer
 * when its entries contradict what the first stored (the same value under the same number is no
 * contradiction: stored as is); its vault then catches up with the store, and each request that
 * waited on the refused write is rewritten — given the numbers every process now agrees on — and
 * stored again (`commit(rewriteAgain)`), up to MAX_REISSUES times, before it is refused.
 *
 * Shared stores (PostgreSQL: replicas behind a load balancer, one session's requests on any of
 * them): a vault held in memory is brought up to date before each use — one query for what was
 * stored since this process last looked (`load(session, cursor)`), after this process's own
 * unstored entries for the session are written. So a replica restores every placeholder stored
 * before the request reached it, whichever replica issued it (e.g. one the model repeats from
 * server-side state, Responses `previous_response_id`), and issues new numbers after them. If that
 * query fails the request is refused (fail closed), never answered from a stale vault.
 * With SQLite (one process per file) a vault in memory is reloaded only after a conflict.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { PseudonymVault } from '../core/masking/pseudonym-vault.ts';
import { isStoreBusy, type AppendOutcome, type PseudonymStore, type VaultAppend, type VaultLoad } from '../store/pseudonym-store.ts';
import { openSqlitePseudonymStore } from '../store/sqlite/sqlite-pseudonym-store.ts';
import type { PgObserver } from '../store/postgres/pg-connection.ts';
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
  /**
   * Resolves once every placeholder this session has issued so far is stored (at once in memory
   * mode); rejects with AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE. When another process stored
   * contradicting entries first, the vault learns them and `rewriteAgain` (which must issue this
   * request's placeholders again through `issue`) is called before storing again; without it,
   * such a conflict rejects.
   */
  commit(rewriteAgain?: () => void): Promise<void>;
}

/** A write's outcome for those waiting on it: stored, or refused because another process stored contradicting entries first. */
type WriteOutcome = 'stored' | 'conflict';

interface Deferred {
  readonly promise: Promise<WriteOutcome>;
  readonly resolve: (outcome: WriteOutcome) => void;
  readonly reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: (outcome: WriteOutcome) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<WriteOutcome>((res, rej) => {
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
  /** The store's cursor after the last load (`load(session, cursor)` returns what was stored since). */
  cursor: number;
  /** Another process stored entries this vault lacks (a write conflicted): catch up before the next use. */
  stale: boolean;
  /** A catch-up with the store in progress (single-flight). */
  refreshing: Promise<boolean> | null;
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
/** Rewrites of one request after conflicts with other processes' writes, before it is refused. */
const MAX_REISSUES = 8;
const STORED = Promise.resolve<WriteOutcome>('stored');

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
    return { vault: slot.vault, issue: (rewrite) => this.#issue(slot, rewrite), commit: (rewriteAgain) => this.#commitRequest(slot, rewriteAgain) };
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
    await this.#store?.close();
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
      if (this.#store !== null && (this.#store.shared || cached.stale) && !(await this.#refresh(cached, true))) {
        // The store contradicts this vault (it was purged and started anew elsewhere): load it afresh.
        this.#drop(sessionId, cached);
        return this.#slot(sessionId, create);
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
    let cursor = 0;
    if (store !== null) {
      try {
        const loaded = await this.#retry(() => store.load(sessionId));
        vault.merge(loaded.entries);
        cursor = loaded.cursor;
      } catch (error) {
        throw this.#unavailable(error, 'load');
      }
    }
    const slot: Slot = { sessionId, vault, stored: vault.size, cursor, stale: false, refreshing: null, flight: null, next: null, weight: vault.size + 1, touchedAt: this.#now() };
    this.#slots.set(sessionId, slot);
    this.#weight += slot.weight;
    if (vault.size > 0) {
      this.#touches.add(sessionId);
      this.#scheduleFlush();
    }
    this.#evict(slot);
    return slot;
  }

  /**
   * Brings the vault up to date with the store: learns what other processes stored since its
   * cursor. Entries are learned only while the vault holds none of its own unstored ones (those
   * must stay last, to be written); with `waitForOwn`, this process's pending writes for the
   * session are waited for first (never from inside a write: it would wait for itself).
   * Resolves false when the store contradicts the vault; rejects AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE.
   */
  #refresh(slot: Slot, waitForOwn: boolean): Promise<boolean> {
    slot.refreshing ??= this.#catchUp(slot, waitForOwn).finally(() => {
      slot.refreshing = null;
    });
    return slot.refreshing;
  }

  async #catchUp(slot: Slot, waitForOwn: boolean): Promise<boolean> {
    const store = this.#store!;
    const pending = (): boolean => slot.stored < slot.vault.size || slot.flight !== null;
    if (pending() && waitForOwn) await this.#commit(slot).catch(() => {}); // refused: taken back, nothing pending
    if (pending()) return true; // learned at the next use
    const from = slot.cursor;
    let loaded: VaultLoad;
    try {
      loaded = await this.#retry(() => store.load(slot.sessionId, from));
    } catch (error) {
      throw this.#unavailable(error, 'load');
    }
    if (pending() || slot.cursor !== from) return true; // issued meanwhile: learned at the next use
    try {
      slot.vault.merge(loaded.entries);
    } catch (error) {
      this.#onError(error, 'load');
      return false;
    }
    slot.stored = slot.vault.size;
    slot.cursor = loaded.cursor;
    slot.stale = false;
    this.#reweigh(slot);
    return true;
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

  /**
   * A request's commit: its placeholders stored, or — after another process stored contradicting
   * entries first — learned from the store, issued again by `rewriteAgain` and stored again.
   */
  async #commitRequest(slot: Slot, rewriteAgain: (() => void) | undefined): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if ((await this.#commit(slot)) === 'stored') return;
      if (rewriteAgain === undefined || attempt > MAX_REISSUES) {
        throw this.#unavailable(new Error(`another process stored pseudonyms for this session first${rewriteAgain ? ` (${attempt} times in a row)` : ''}`), 'store');
      }
      // The write that refused it already caught up; if it could not (entries were issued
      // meanwhile), learn what the other processes stored now, after this process's own writes.
      if (slot.stale && !(await this.#refresh(slot, true))) throw this.#unavailable(new Error('the stored vault contradicts the one in memory'), 'load');
      rewriteAgain();
    }
  }

  #commit(slot: Slot): Promise<WriteOutcome> {
    if (this.#store === null || slot.stored === slot.vault.size) return STORED;
    const waits: Promise<WriteOutcome>[] = [];
    if (slot.flight !== null) waits.push(slot.flight.done.promise);
    if (slot.vault.size > (slot.flight?.to ?? slot.stored)) {
      if (slot.next === null) {
        slot.next = deferred();
        this.#queue.add(slot);
        this.#scheduleFlush();
      }
      waits.push(slot.next.promise);
    }
    return waits.length === 1 ? waits[0]! : Promise.all(waits).then((outcomes) => (outcomes.includes('conflict') ? 'conflict' : 'stored'));
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing !== null || this.#store === null) return;
    this.#flushScheduled = true;
    const run = (): void => {
      this.#flushScheduled = false;
      if (this.#flushing === null && !(this.#closed && this.#queue.size === 0)) this.#startFlush();
    };
    // The gap lets the recording writer at a file both share take its turn; a shared store has no such writer.
    const gap = !this.#store.shared && (this.#lastFlushContended || this.#lastFlushMs >= FLUSH_GAP_MS) ? Math.max(FLUSH_GAP_MS, this.#lastFlushMs) : 0;
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
        done.resolve('stored'); // nothing left to store (taken back meanwhile)
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
      outcomes = await this.#retry(async () => {
        this.#lastFlushContended = ++attempts > 1;
        const started = Date.now();
        try {
          return await store.write(appends, touched, this.#now());
        } finally {
          this.#lastFlushMs = Date.now() - started; // the write itself, not the waits for the lock
        }
      });
    } catch (error) {
      failure = error;
    }
    const now = this.#now();
    const refusal: AigovError | null = failure === null ? null : this.#unavailable(failure, 'store');
    const refused: { slot: Slot; waiting: Deferred[] }[] = [];
    batch.forEach((slot, i) => {
      const flight = slot.flight!;
      slot.flight = null;
      if (outcomes[i] === 'stored') {
        slot.stored = flight.to;
        slot.touchedAt = now;
        this.#reweigh(slot);
        flight.done.resolve('stored');
        return;
      }
      // Not stored: take back every placeholder the store does not hold (their requests all wait
      // here, none was sent).
      slot.vault.truncate(slot.stored);
      refused.push({ slot, waiting: slot.next === null ? [flight.done] : [flight.done, slot.next] });
      slot.next = null;
      this.#queue.delete(slot);
      this.#reweigh(slot);
      if (failure === null) slot.stale = true;
    });
    // A failed write refuses its requests. After a conflict, learn what the other process stored
    // before the requests hear of it — they are then rewritten with it (or, asked to be refused
    // on a conflict, their client's retry agrees with it); if that fails, they are refused.
    for (const { slot, waiting } of refused) {
      let outcome: AigovError | 'conflict' = refusal ?? 'conflict';
      if (refusal === null) {
        // Not through #refresh: a catch-up in flight may be waiting for this very write.
        const caughtUp = await this.#catchUp(slot, false).catch((error: unknown) => (isAigovError(error) ? error : this.#unavailable(error, 'load')));
        if (caughtUp === false) outcome = this.#unavailable(new Error('the stored vault contradicts the one in memory'), 'load');
        else if (caughtUp !== true) outcome = caughtUp;
      }
      for (const d of waiting) {
        if (outcome === 'conflict') d.resolve('conflict');
        else d.reject(outcome);
      }
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
  async #retry<T>(operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#busyRetryMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 25)) {
      try {
        return await operation();
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
 * is set — the SQLite file, or PostgreSQL shared by every replica — else in memory (one warning
 * at startup). Throws AIGOV_E_PSEUDONYM_KEY_MISMATCH when the database's vaults were written with
 * another key, AIGOV_E_STORE_OPEN_FAILED when they cannot be opened. `pgObserver` (PostgreSQL)
 * gets the vaults' pool counts and waits.
 */
export async function openSessionVaults(config: Pick<GatewayConfig, 'pseudonyms' | 'storage'>, logger: Logger, pgObserver?: PgObserver): Promise<SessionVaults> {
  const onError = (error: unknown, operation: string): void => logger.error({ operation, err: errorSummary(error) }, 'pseudonym vault store failed');
  if (config.pseudonyms.key === null) {
    logger.warn(
      'pseudonyms.key is not set: pseudonym vaults live in memory only, so after a restart answers no longer get earlier placeholders restored and a value gets a new placeholder' +
        (config.storage.driver === 'postgres' ? ', and a replica does not restore the placeholders another replica issued. ' : '. ') +
        'To keep them (encrypted, in the storage database) set pseudonyms.key to 32 random bytes by reference, e.g. key: ${AIGOV_PSEUDONYM_KEY} with AIGOV_PSEUDONYM_KEY=$(openssl rand -base64 32).',
    );
    return new SessionVaults({ onError });
  }
  const key = Buffer.from(config.pseudonyms.key, 'hex');
  let store: PseudonymStore & { readonly keyId: string };
  if (config.storage.driver === 'postgres') {
    const { openPostgresPseudonymStore } = await import('../store/postgres/pg-pseudonym-store.ts');
    const storage = config.storage;
    // A small pool of its own: one indexed query per governed request, one short write per flush.
    store = await openPostgresPseudonymStore({
      url: storage.url,
      key,
      poolSize: Math.max(2, Math.ceil(storage.poolSize / 2)),
      statementTimeoutMs: storage.statementTimeoutMs,
      synchronousCommit: storage.synchronousCommit,
      onError: (message) => logger.error({ operation: 'pool' }, message),
      observer: pgObserver,
    });
  } else {
    try {
      store = openSqlitePseudonymStore({ location: config.storage.path, key });
    } catch (error) {
      if (isAigovError(error)) throw error;
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location: config.storage.path, reason: `pseudonym vault: ${errorSummary(error)}` }, { cause: error });
    }
  }
  logger.info({ keyId: store.keyId, ttlDays: config.pseudonyms.ttlDays, shared: store.shared }, 'pseudonym vaults are kept sealed in the storage database');
  return new SessionVaults({ store, ttlMs: config.pseudonyms.ttlDays * DAY_MS, onError });
}
