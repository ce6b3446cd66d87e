/**
 * Which gateway process owns a `pending` call on PostgreSQL, and how another one learns that it
 * is gone — the PostgreSQL form of the SQLite store's lock files (sqlite/call-owners.ts).
 *
 * Each store takes a random owner id, writes it into every call row it inserts (`calls.owner`),
 * registers it in `owners`, and holds a SESSION advisory lock keyed by it on a connection of its
 * own for as long as it lives. The server drops that lock when the connection ends however the
 * process ends (kill -9 included: the socket closes), so "pg_try_advisory_lock(key) succeeds"
 * means the owner is gone. No PIDs, no clocks. A store that opens probes every other owner and
 * settles the pending calls of those that are gone (postgres-store.ts), holding the dead owner's
 * key while it does, so two replicas starting together never settle the same owner twice.
 *
 * Caveat: a network partition keeps a dead owner's lock until the server notices the broken
 * connection (TCP keepalive): its calls stay pending longer, never settled early. The other way
 * round — our lock connection drops while this process lives — the store refuses new records
 * (isHeld() false) until it has its lock back, so no call is recorded under an owner that
 * others may take for dead.
 *
 * Leases (owner-leases.ts): each process also renews `owners.heartbeat_at` (the database's
 * clock) every second or so over its pool, so survivors tell "gone" (lock free, no heartbeat)
 * from "its lock connection is reconnecting" (lock free, heartbeat fresh), and "frozen or cut
 * off" (lock held, heartbeat expired): such an owner's lock connection — `lock_backend`, the
 * server process that holds the lock — is ended by {@link evict}, its calls then settled.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { connectClient, describePgError, type PgClient, type PgPool, type PgSettings } from './pg-connection.ts';

/** The database's clock in epoch ms (every replica's heartbeats are compared on one clock). */
export const DB_NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/** The advisory lock key of an owner id: its first 64 bits, as PostgreSQL's signed bigint (text). */
export function ownerLockKey(owner: string): string | null {
  if (!/^[0-9a-f]{32}$/.test(owner)) return null; // not one of ours: never probed, never settled
  return BigInt.asIntN(64, BigInt(`0x${owner.slice(0, 16)}`)).toString();
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

export class OwnerLock {
  readonly id: string;
  readonly #key: string;
  readonly #settings: PgSettings;
  readonly #report: (message: string) => void;
  #client: PgClient | null = null;
  #held = false;
  readonly #startedAt = Date.now();
  #closed = false;
  #retryMs = RECONNECT_MIN_MS;
  #timer: NodeJS.Timeout | null = null;

  private constructor(settings: PgSettings, report: (message: string) => void) {
    this.id = randomBytes(16).toString('hex');
    this.#key = ownerLockKey(this.id)!;
    this.#settings = settings;
    this.#report = report;
  }

  /** Connects, takes the lock and registers the owner. Throws when it cannot (the store must not open then). */
  static async acquire(settings: PgSettings, report: (message: string) => void): Promise<OwnerLock> {
    const lock = new OwnerLock(settings, report);
    await lock.#take();
    return lock;
  }

  /** True while this process holds its owner lock (new calls may be recorded under it). */
  isHeld(): boolean {
    return this.#held;
  }

  /** The connection holding the lock: also probes (and holds) other owners' keys while their calls are settled. */
  get client(): PgClient | null {
    return this.#held ? this.#client : null;
  }

  /** Tries to take a dead owner's key on our connection: true when its owner is gone (then release it with {@link releaseProbe}). */
  async probe(owner: string): Promise<boolean> {
    const key = ownerLockKey(owner);
    const client = this.client;
    if (key === null || owner === this.id || client === null) return false;
    const res = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS got', [key]);
    return res.rows[0]?.got === true;
  }

  async releaseProbe(owner: string): Promise<void> {
    const key = ownerLockKey(owner);
    const client = this.client;
    if (key === null || client === null) return;
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => {});
  }

  /**
   * Renews this owner's lease (registering it again if a survivor took it for dead and removed
   * its row), over `pool`: a lease renewed while the lock connection reconnects says "alive".
   */
  async heartbeat(pool: PgPool): Promise<void> {
    if (this.#closed) return;
    await pool.query({
      name: 'aigov_owner_heartbeat',
      text: `INSERT INTO owners (id, lock_key, pid, host, started_at, heartbeat_at) VALUES ($1, $2::bigint, $3, $4, $5, ${DB_NOW_MS})
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      values: [this.id, this.#key, process.pid, os.hostname(), this.#startedAt],
    });
  }

  /**
   * Ends the server process that holds `owner`'s lock — only the one it registered as its lock
   * connection, never a replica probing that key — and waits up to 2 s for it to exit. For an
   * owner whose lease expired while its lock is held (frozen, or cut off without the server
   * noticing): its lock is then free and its calls can be settled. Returns whether it ended one.
   */
  async evict(owner: string): Promise<boolean> {
    const key = ownerLockKey(owner);
    const client = this.client;
    if (key === null || owner === this.id || client === null) return false;
    const k = BigInt.asUintN(64, BigInt(key));
    const res = await client.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(l.pid, 2000) AS ended
       FROM pg_locks l JOIN owners o ON o.id = $3 AND o.lock_backend = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [(k >> 32n).toString(), (k & 0xffffffffn).toString(), owner],
    );
    return res.rows.some((r) => r.ended);
  }

  /** Gives the claim up (clean close): our remaining pending calls (none, normally) may be settled from now on. */
  async release(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const client = this.#client;
    this.#client = null;
    this.#held = false;
    if (client === null) return;
    try {
      // Nothing left pending: nobody needs to probe us any more. Else our lease ends here, so the
      // next replica to look settles those calls at once (by our free lock) instead of watching
      // whether we still renew it.
      await client.query("DELETE FROM owners WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM calls WHERE owner = $1 AND status = 'pending')", [this.id]);
      await client.query('UPDATE owners SET heartbeat_at = NULL WHERE id = $1', [this.id]);
    } catch {
      // the row stays; the next store to open probes it, finds it gone and removes it
    }
    await client.end().catch(() => {});
  }

  async #take(): Promise<void> {
    // No statement timeout on this connection: it runs only short statements, and it must not be
    // cut while idle (it is idle nearly all the time, holding the lock).
    const client = await connectClient(this.#settings, { statementTimeoutMs: 0 });
    try {
      const got = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS got', [this.#key]);
      // Someone probing us right now (we reconnected after a drop): wait for them to let go.
      if (got.rows[0]?.got !== true) throw new Error('the owner lock is held by another connection (a replica is settling this process\'s calls)');
      await client.query(
        `INSERT INTO owners (id, lock_key, pid, host, started_at, heartbeat_at, lock_backend) VALUES ($1, $2::bigint, $3, $4, $5, ${DB_NOW_MS}, pg_backend_pid())
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, lock_backend = excluded.lock_backend`,
        [this.id, this.#key, process.pid, os.hostname(), this.#startedAt],
      );
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    client.on('error', (err) => this.#lost(describePgError(err, this.#settings.url)));
    client.on('end', () => this.#lost('the connection ended'));
    this.#client = client;
    this.#held = true;
    this.#retryMs = RECONNECT_MIN_MS;
  }

  #lost(reason: string): void {
    if (this.#closed || !this.#held) return;
    this.#held = false;
    const client = this.#client;
    this.#client = null;
    void client?.end().catch(() => {});
    this.#report(`the owner lock's connection to PostgreSQL was lost (${reason}); new requests are refused until it is back`);
    this.#scheduleRetake();
  }

  #scheduleRetake(): void {
    if (this.#closed || this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#take().then(
        () => {
          if (this.#closed) void this.release();
          else this.#report('the owner lock is held again; recording resumes');
        },
        () => {
          this.#retryMs = Math.min(RECONNECT_MAX_MS, this.#retryMs * 2);
          this.#scheduleRetake();
        },
      );
    }, this.#retryMs);
    this.#timer.unref();
  }
}
