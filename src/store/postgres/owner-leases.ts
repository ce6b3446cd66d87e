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
 * A lease's silence is evidence only while this replica could see the database: after its own
 * renewals failed (the database restarting cuts every replica off at once, and the others renew
 * again a moment after this one), it judges nobody by lease until it has renewed without a break
 * for `quietMs` (`leaseMs` before it evicts). An owner without a lease (it closed with calls
 * still pending, or a row from before leases) is judged by its lock alone.
 *
 * At open ({@link settleAtOpen}) the owners whose lock is free are settled at once — what a crash
 * left — except those whose lease was renewed lately: a replica killed a moment ago, or a live one
 * whose lock connection is reconnecting (its pool still renews its lease). Those are watched for
 * `quietMs` (the open waits that long, only when there are such): one that renews is alive and
 * left alone; one that does not, and whose lock is still free, is settled.
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
  /** It has a lease (renewed at least once; not ended by a clean close). */
  readonly leased: boolean;
  /** Its lease not renewed for quietMs (or none). */
  readonly quiet: boolean;
  /** Its lease not renewed for leaseMs. */
  readonly expired: boolean;
  /** When its lease was last renewed (database clock, epoch ms as text), or null. */
  readonly renewed: string | null;
}

export class OwnerLeases {
  readonly #o: OwnerLeasesOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #failing = false;
  #settled = 0;
  #evicted = 0;
  /**
   * Since when (performance.now()) this replica's renewals have succeeded without a break; null
   * after one failed. Taking the owner lock renewed the lease: the store opens with it set.
   */
  #renewingSince: number | null = performance.now();

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
      await this.#renew();
      const settled = await this.sweep();
      this.#failing = false;
      if (settled > 0) this.#o.onSettled(settled);
    } catch (err) {
      this.#renewingSince = null;
      if (!this.#failing) this.#o.report(`renewing this replica's lease or settling stopped replicas' calls failed (retried every ${this.#o.timings.intervalMs} ms): ${this.#o.describe(err)}`);
      this.#failing = true;
    }
  }

  async #renew(): Promise<void> {
    try {
      await this.#o.owner.heartbeat(this.#o.pool);
    } catch (err) {
      this.#renewingSince = null;
      throw err;
    }
    this.#renewingSince ??= performance.now();
  }

  /** How long this replica has seen the database without a break (its own renewals succeeding), ms. */
  #watchedMs(): number {
    return this.#renewingSince === null ? 0 : performance.now() - this.#renewingSince;
  }

  async #candidates(): Promise<Candidate[]> {
    const { pool, owner: me, timings } = this.#o;
    const res = await pool.query<Candidate>({
      name: 'aigov_lease_candidates',
      text: `WITH now AS (SELECT ${DB_NOW_MS} AS ms)
             SELECT o.id AS owner,
                    (o.heartbeat_at IS NOT NULL) AS leased,
                    (o.heartbeat_at IS NULL OR o.heartbeat_at < now.ms - $2) AS quiet,
                    (o.heartbeat_at IS NOT NULL AND o.heartbeat_at < now.ms - $3) AS expired,
                    o.heartbeat_at::text AS renewed
             FROM owners o, now WHERE o.id <> $1
             UNION
             SELECT DISTINCT c.owner, false, true, false, NULL::text FROM calls c
             WHERE c.status = 'pending' AND c.owner IS NOT NULL AND c.owner <> $1 AND NOT EXISTS (SELECT 1 FROM owners o WHERE o.id = c.owner)`,
      values: [me.id, timings.quietMs, timings.leaseMs],
    });
    return res.rows;
  }

  /**
   * One sweep while the store runs; returns how many calls it settled. An owner whose lease is
   * quiet is probed (and settled if its lock is free) only once this replica has watched the
   * database for quietMs itself; an expired one is evicted only after leaseMs of that.
   */
  async sweep(): Promise<number> {
    const { owner: me, timings } = this.#o;
    const rows = await this.#candidates();
    const watched = this.#watchedMs();
    let settled = 0;
    for (const { owner, leased, quiet, expired } of rows) {
      if (this.#stopped) break;
      if (!quiet) continue; // alive: never probed
      if (leased && watched < timings.quietMs) continue; // silent maybe only because nobody could renew: judged later
      if (!(await me.probe(owner))) {
        if (expired && watched >= timings.leaseMs && (await me.evict(owner))) {
          this.#evicted++;
          this.#o.report(`a replica's lease expired while it held its lock (frozen or cut off): its lock connection was ended; its calls are settled at the next sweep`);
        }
        continue;
      }
      settled += await this.#settleProbed(owner);
    }
    this.#settled += settled;
    return settled;
  }

  /**
   * At open: settles every owner whose lock is free (what a crash left), whatever its lease says
   * — except owners whose lease was renewed within leaseMs: those are watched until this replica
   * has seen them silent for quietMs (the open waits that long), then settled if their lock is
   * still free. One that renews meanwhile is alive (its lock connection is reconnecting). Returns
   * how many calls it settled; no eviction here.
   */
  async settleAtOpen(): Promise<number> {
    const { pool, owner: me, timings } = this.#o;
    const since = performance.now();
    let settled = 0;
    /** Owners whose lock is free and whose lease was renewed lately, with that renewal. */
    const watched = new Map<string, string | null>();
    for (const { owner, leased, expired, renewed } of await this.#candidates()) {
      if (!(await me.probe(owner))) continue; // its lock is held: alive (or frozen: the sweeps evict it)
      if (leased && !expired) {
        await me.releaseProbe(owner);
        watched.set(owner, renewed);
        continue;
      }
      settled += await this.#settleProbed(owner);
    }
    while (watched.size > 0) {
      const left = timings.quietMs - (performance.now() - since);
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, Math.max(10, timings.intervalMs / 4))));
      await this.#renew(); // ours stays fresh while we wait
      const now = await pool.query<{ id: string; renewed: string | null }>({
        name: 'aigov_lease_renewals',
        text: 'SELECT id, heartbeat_at::text AS renewed FROM owners WHERE id = ANY($1::text[])',
        values: [[...watched.keys()]],
      });
      const renewals = new Map(now.rows.map((r) => [r.id, r.renewed]));
      // Renewed since: alive. Row gone: another replica settled it, or it closed cleanly.
      for (const [owner, renewed] of watched) if (!renewals.has(owner) || renewals.get(owner) !== renewed) watched.delete(owner);
    }
    for (const owner of watched.keys()) {
      if (await me.probe(owner)) settled += await this.#settleProbed(owner);
    }
    return settled;
  }

  /** Settles an owner whose key we hold (me.probe succeeded), then lets the key go. */
  async #settleProbed(owner: string): Promise<number> {
    try {
      return await this.#o.settle(owner);
    } catch (err) {
      this.#o.report(`settling calls left pending by a stopped gateway failed; they stay pending until a later sweep: ${this.#o.describe(err)}`);
      return 0;
    } finally {
      await this.#o.owner.releaseProbe(owner);
    }
  }
}
