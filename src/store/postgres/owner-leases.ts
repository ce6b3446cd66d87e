/**
 * Leases: while replicas run, each one settles the calls of replicas that died, so a call a
 * killed replica was streaming is marked aborted within seconds, not at the next start.
 *
 * Every `intervalMs` (jittered ±25 %, so replicas do not sweep in step) a replica
 * 1. renews its own lease (owner-lock.ts `heartbeat`, on the pool: the database's clock);
 * 2. looks at the other owners, and at owners of pending calls that have no owners row;
 * 3. settles (pg-writer.ts `settleOwner`: aborted with AIGOV_E_GATEWAY_STOPPED, a `result` chain
 *    entry each, one transaction) every owner that is
 *    - gone: its lease not renewed for `quietMs` AND its lock free (pg_try_advisory_lock succeeds;
 *      the key stays held by the settler meanwhile, so two survivors never settle one owner
 *      twice). kill -9 frees the lock at once; the quiet period keeps a live replica whose lock
 *      connection is reconnecting (lease fresh) from being settled;
 *    - or expired: its lease not renewed for `leaseMs` while its lock is held (the process is
 *      frozen, or cut off without the server noticing yet): its lock connection is ended
 *      (owner-lock.ts `evict`) and it is settled at a later sweep, once the lock is free.
 *      Should it wake up, it refuses new records until it holds its lock again, and its late
 *      finishes are refused (the calls already have their result) — nothing is written twice.
 * A live owner (lease fresh) is never probed, so its calls are never touched.
 *
 * The cost per replica and sweep: one upsert and one indexed select (pending calls by owner).
 */
import type { OwnerLock } from './owner-lock.ts';
import { DB_NOW_MS } from './owner-lock.ts';
import type { PgPool } from './pg-connection.ts';

export interface LeaseTimings {
  /** Renew and sweep this often (±25 %). Default 1000 ms. */
  readonly intervalMs: number;
  /** A lock-free owner is settled once its lease is this old. Default 3000 ms. */
  readonly quietMs: number;
  /** An owner still holding its lock is evicted once its lease is this old. Default 30 000 ms. */
  readonly leaseMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { intervalMs: 1000, quietMs: 3000, leaseMs: 30_000 };

export interface OwnerLeasesOptions {
  readonly pool: PgPool;
  readonly owner: OwnerLock;
  readonly timings: LeaseTimings;
  /** Settles one owner's pending calls (the key is held by us meanwhile); returns how many. */
  readonly settle: (owner: string) => Promise<number>;
  /** Told how many calls a sweep settled (when > 0). */
  readonly onSettled: (count: number) => void;
  /** Trouble, reported once per stretch of failures (fixed wording plus the driver's text). */
  readonly report: (message: string) => void;
  readonly describe: (err: unknown) => string;
}

interface Candidate {
  readonly owner: string;
  readonly quiet: boolean;
  readonly expired: boolean;
}

export class OwnerLeases {
  readonly #o: OwnerLeasesOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #failing = false;
  #settled = 0;
  #evicted = 0;

  constructor(options: OwnerLeasesOptions) {
    this.#o = options;
  }

  /** Calls settled by sweeps so far, and owners evicted. */
  get counts(): { settled: number; evicted: number } {
    return { settled: this.#settled, evicted: this.#evicted };
  }

  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    const delay = this.#o.timings.intervalMs * (0.75 + Math.random() / 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#tick().finally(() => {
        this.#running = null;
        this.start();
      });
    }, delay);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #tick(): Promise<void> {
    try {
      await this.#o.owner.heartbeat(this.#o.pool);
      const settled = await this.sweep(false);
      this.#failing = false;
      if (settled > 0) this.#o.onSettled(settled);
    } catch (err) {
      if (!this.#failing) this.#o.report(`renewing this replica's lease or settling stopped replicas' calls failed (retried every ${this.#o.timings.intervalMs} ms): ${this.#o.describe(err)}`);
      this.#failing = true;
    }
  }

  /**
   * One sweep; returns how many calls it settled. `atOpen`: every owner whose lock is free is
   * settled at once, whatever its lease says (a store opening after a crash settles what the
   * crash left, as before leases existed); no eviction then.
   */
  async sweep(atOpen: boolean): Promise<number> {
    const { pool, owner: me, timings } = this.#o;
    const res = await pool.query<Candidate>({
      name: 'aigov_lease_candidates',
      text: `WITH now AS (SELECT ${DB_NOW_MS} AS ms)
             SELECT o.id AS owner,
                    (o.heartbeat_at IS NULL OR o.heartbeat_at < now.ms - $2) AS quiet,
                    (o.heartbeat_at IS NOT NULL AND o.heartbeat_at < now.ms - $3) AS expired
             FROM owners o, now WHERE o.id <> $1
             UNION
             SELECT DISTINCT c.owner, true, false FROM calls c
             WHERE c.status = 'pending' AND c.owner IS NOT NULL AND c.owner <> $1 AND NOT EXISTS (SELECT 1 FROM owners o WHERE o.id = c.owner)`,
      values: [me.id, timings.quietMs, timings.leaseMs],
    });
    let settled = 0;
    for (const { owner, quiet, expired } of res.rows) {
      if (this.#stopped && !atOpen) break;
      if (!atOpen && !quiet) continue; // alive: never probed
      if (!(await me.probe(owner))) {
        if (!atOpen && expired && (await me.evict(owner))) {
          this.#evicted++;
          this.#o.report(`a replica's lease expired while it held its lock (frozen or cut off): its lock connection was ended; its calls are settled at the next sweep`);
        }
        continue;
      }
      try {
        settled += await this.#o.settle(owner);
      } catch (err) {
        this.#o.report(`settling calls left pending by a stopped gateway failed; they stay pending until a later sweep: ${this.#o.describe(err)}`);
      } finally {
        await me.releaseProbe(owner);
      }
    }
    if (!atOpen) this.#settled += settled;
    return settled;
  }
}
