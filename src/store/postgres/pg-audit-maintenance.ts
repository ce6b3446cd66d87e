/**
 * The audit trail's maintenance on PostgreSQL — signed checkpoints and the retention purge —
 * with the SQLite store's semantics (sqlite/audit-maintenance.ts), done by ONE replica at a time:
 *
 * - Every checkpoint and every purge chunk runs in a transaction that first takes the
 *   transaction advisory lock {@link MAINTENANCE_LOCK}, so two replicas' checkpoints never
 *   interleave: each reads the chain's head and the newest checkpoint after the previous one
 *   committed, so checkpoints go in seq order and none is written twice for the same head.
 *   A periodic checkpoint does not wait for the lock (another replica is taking one: skipped),
 *   and is skipped too when the newest checkpoint signed with this key is younger than
 *   `periodicSpacingMs` — with N replicas the chain is signed about once per interval, not N
 *   times. The shutdown checkpoint waits for the lock (bounded by the statement timeout).
 * - A purge runs while its replica holds the session advisory lock {@link PURGE_LOCK} (another
 *   replica purging meanwhile: skipped). Each chunk also locks chain_head (FOR UPDATE), which
 *   every replica's write transaction takes first: no call gets an event or a result while the
 *   chunk decides whether it goes, exactly as SQLite's BEGIN IMMEDIATE. Chunks are 500 entries,
 *   so the writers of every replica wait a few milliseconds at most.
 *
 * What a purge removes (audit-purge-plan.ts): the oldest calls, their stream events and raw
 * copies, access rows, approvals that can no longer change, sessions left without calls and the
 * request chunks no remaining call names — with exactly the prefix of the chain that covers them
 * — and writes an `anchor` checkpoint (signed when there is a key) at the last entry removed.
 * chain_head is not touched: the next entry still chains to the last one ever written.
 * Chunks deleted move chain_head.chunks_generation, so every replica's writer forgets the chunk
 * ids it remembers (request-chunk-writer.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CheckpointKind } from '../../core/audit/chain.ts';
import { signCheckpoint, type SigningKey } from '../audit-keys.ts';
import { planPurgeChunk, type PurgeEntry } from '../audit-purge-plan.ts';
import { reachableChunks } from '../request-chunk-reach.ts';
import type { AuditMaintainer, CheckpointRecord, PurgeResult } from '../audit-maintainer.ts';
import { connectClient, describePgError, isConnectionError, type PgClient, type PgSettings } from './pg-connection.ts';

/** Advisory locks in the two-integer key space ('AGOV', n): never an owner lock's nor the migrations' (single bigint keys). */
const LOCK_CLASS = 0x41474f56;
export const MAINTENANCE_LOCK = [LOCK_CLASS, 1] as const;
export const PURGE_LOCK = [LOCK_CLASS, 2] as const;

/** When an approval can no longer change (as sqlite/audit-maintenance.ts's APPROVAL_DONE_AT). */
const APPROVAL_DONE_AT =
  "greatest(p.expires_at, coalesce((p.record::jsonb ->> 'decidedAt')::numeric, 0) + coalesce((p.record::jsonb ->> 'retryWindowMs')::numeric, 0))";

export interface PgAuditMaintenanceOptions {
  readonly settings: PgSettings;
  /** Signs checkpoints; without it only (unsigned) purge anchors are written. */
  readonly key: SigningKey | null;
  readonly now?: () => number;
  /** Entries per purge transaction. Default 500. */
  readonly chunkEntries?: number;
  /** A periodic checkpoint is skipped while the newest one signed with this key is younger. Default 0. */
  readonly periodicSpacingMs?: number;
}

export class PgAuditMaintenance implements AuditMaintainer {
  readonly #o: PgAuditMaintenanceOptions;
  readonly #now: () => number;
  readonly #chunk: number;
  #client: PgClient | null = null;
  #closed = false;
  /** Serializes this replica's operations (its connection runs one transaction at a time). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: PgAuditMaintenanceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#chunk = Math.max(1, Math.floor(options.chunkEntries ?? 500));
  }

  /**
   * Signs the chain's head (a no-op without a key, on an empty chain, when the newest checkpoint
   * already covers the head, or — periodic — when another replica holds the lock or signed lately).
   * Returns the checkpoint written.
   */
  checkpoint(kind: 'periodic' | 'shutdown'): Promise<CheckpointRecord | null> {
    return this.#serial(async () => {
      const key = this.#o.key;
      if (key === null) return null;
      return this.#transaction(async (client) => {
        if (kind === 'periodic') {
          const got = await client.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS got', [...MAINTENANCE_LOCK]);
          if (got.rows[0]?.got !== true) return null;
        } else {
          await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MAINTENANCE_LOCK]);
        }
        const head = (await client.query<{ seq: number; hash: string }>('SELECT seq, hash FROM chain_head WHERE id = 1')).rows[0];
        if (head === undefined || head.seq === 0) return null;
        const latest = (await client.query<{ seq: number; hash: string; key_id: string | null }>('SELECT seq, hash, key_id FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1')).rows[0];
        if (latest !== undefined && latest.seq === head.seq && latest.hash === head.hash && latest.key_id === key.keyId) return null;
        const spacing = this.#o.periodicSpacingMs ?? 0;
        if (kind === 'periodic' && spacing > 0) {
          const recent = await client.query('SELECT 1 FROM audit_checkpoints WHERE key_id = $1 AND at > $2 LIMIT 1', [key.keyId, this.#now() - spacing]);
          if (recent.rows.length > 0) return null;
        }
        return this.#writeCheckpoint(client, head.seq, head.hash, kind);
      });
    });
  }

  /** Deletes what is older than `cutMs` (epoch ms), chunk by chunk; see the file comment. */
  purge(cutMs: number): Promise<PurgeResult> {
    return this.#serial(async () => {
      const total = { calls: 0, events: 0, accessRows: 0, sessions: 0, approvals: 0, entries: 0, anchorSeq: null as number | null };
      const client = await this.#connection();
      const got = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [...PURGE_LOCK]);
      if (got.rows[0]?.got !== true) return total; // another replica is purging
      try {
        for (;;) {
          const chunk = await this.#transaction((c) => this.#purgeChunk(c, cutMs));
          total.calls += chunk.calls;
          total.events += chunk.events;
          total.accessRows += chunk.accessRows;
          total.sessions += chunk.sessions;
          total.approvals += chunk.approvals;
          total.entries += chunk.entries;
          if (chunk.anchorSeq !== null) total.anchorSeq = chunk.anchorSeq;
          if (chunk.done) return total;
          await sleep(0); // let the writers of every replica have their turn between chunks
        }
      } finally {
        if (this.#client === client) await client.query('SELECT pg_advisory_unlock($1, $2)', [...PURGE_LOCK]).catch(() => {});
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the audit maintenance connection is closed'));
    // Errors leave as text fit for a log: SQLSTATE and message, never a value nor the password.
    const run = this.#queue.then(fn, fn).catch((err: unknown) => {
      throw new Error(describePgError(err, this.#o.settings.url), { cause: err });
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #connection(): Promise<PgClient> {
    if (this.#client !== null) return this.#client;
    const client = await connectClient(this.#o.settings);
    const drop = (): void => {
      if (this.#client !== client) return;
      this.#client = null;
      void client.end().catch(() => {});
    };
    client.on('error', drop);
    client.on('end', drop);
    this.#client = client;
    return client;
  }

  async #transaction<T>(body: (client: PgClient) => Promise<T>): Promise<T> {
    const client = await this.#connection();
    await client.query('BEGIN');
    try {
      const value = await body(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if (isConnectionError(err) && this.#client === client) {
        this.#client = null;
        await client.end().catch(() => {});
      }
      throw err;
    }
  }

  async #writeCheckpoint(client: PgClient, seq: number, hash: string, kind: CheckpointKind): Promise<CheckpointRecord> {
    const at = this.#now();
    const key = this.#o.key;
    const keyId = key?.keyId ?? null;
    const signature = key === null ? null : signCheckpoint({ seq, hash, at, kind, keyId }, key.privateKey);
    await client.query('INSERT INTO audit_checkpoints (seq, hash, at, kind, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)', [seq, hash, at, kind, keyId, signature]);
    return { seq, hash, at, kind, keyId };
  }

  async #purgeChunk(client: PgClient, cut: number): Promise<PurgeResult & { done: boolean }> {
    const nothing = { calls: 0, events: 0, accessRows: 0, sessions: 0, approvals: 0, entries: 0, anchorSeq: null, done: true };
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MAINTENANCE_LOCK]);
    await client.query('SELECT 1 FROM chain_head WHERE id = 1 FOR UPDATE');
    const hasApprovals = (await client.query<{ present: boolean }>("SELECT to_regclass('approvals') IS NOT NULL AS present")).rows[0]?.present === true;
    const limit = this.#chunk;
    const rows = await client.query<{ seq: number; kind: string; ref: string; span: string | null; hash: string; t: string | number | null; status: string | null }>(
      `SELECT a.seq, a.kind, a.ref, a.span, a.hash,
         CASE a.kind WHEN 'access' THEN (SELECT l.at FROM access_log l WHERE l.id = CASE WHEN a.ref ~ '^[0-9]{1,18}$' THEN a.ref::bigint END)
                     WHEN 'approval' THEN ${hasApprovals ? `(SELECT ${APPROVAL_DONE_AT} FROM approvals p WHERE p.id = a.ref)` : 'NULL'}
                     ELSE (SELECT c.started_at FROM calls c WHERE c.id = a.ref) END AS t,
         CASE WHEN a.kind IN ('access', 'approval') THEN NULL ELSE (SELECT c.status FROM calls c WHERE c.id = a.ref) END AS status
       FROM audit_log a ORDER BY a.seq LIMIT $1`,
      [limit + 1],
    );
    const entries: PurgeEntry[] = rows.rows.map((e) => ({ seq: Number(e.seq), kind: e.kind, ref: e.ref, span: e.span, hash: e.hash, t: e.t === null ? null : Number(e.t), status: e.status }));
    const plan = planPurgeChunk(entries, limit, cut);
    const last = plan.last;
    if (last === undefined) return nothing;

    const pending = [...plan.calls].filter(([, c]) => c.status === 'pending').map(([id]) => id);
    const eventCounts = new Map<string, number>();
    if (pending.length > 0) {
      const counted = await client.query<{ call_id: string; n: number }>('SELECT call_id, count(*)::int AS n FROM stream_events WHERE call_id = ANY($1::text[]) GROUP BY call_id', [pending]);
      for (const r of counted.rows) eventCounts.set(r.call_id, Number(r.n));
    }
    const closed: string[] = [];
    const spans = { id: [] as string[], first: [] as number[], last: [] as number[] };
    for (const [id, c] of plan.calls) {
      const ended = c.status === 'pending' ? (eventCounts.get(id) ?? 0) <= c.events : c.result;
      if (ended) {
        closed.push(id);
        continue;
      }
      for (const span of c.spans) {
        spans.id.push(id);
        spans.first.push(span.first);
        spans.last.push(span.last);
      }
    }
    let events = 0;
    if (spans.id.length > 0) {
      events += (await client.query('DELETE FROM stream_events e USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(id, f, l) WHERE e.call_id = s.id AND e.seq BETWEEN s.f AND s.l', [spans.id, spans.first, spans.last])).rowCount ?? 0;
    }
    const sessionIds = (await client.query<{ session_id: string }>('SELECT DISTINCT session_id FROM calls WHERE id = ANY($1::text[])', [closed])).rows.map((r) => r.session_id);
    events += (await client.query('DELETE FROM stream_events WHERE call_id = ANY($1::text[])', [closed])).rowCount ?? 0;
    const calls = (await client.query('DELETE FROM calls WHERE id = ANY($1::text[])', [closed])).rowCount ?? 0; // raw copies: ON DELETE CASCADE
    const accessRows = (await client.query('DELETE FROM access_log WHERE id = ANY($1::bigint[])', [plan.accessIds])).rowCount ?? 0;
    const sessions = (await client.query('DELETE FROM sessions s WHERE s.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id)', [sessionIds])).rowCount ?? 0;
    const chunks = await collectChunks(client, sessionIds);
    if (chunks > 0) await client.query('UPDATE chain_head SET chunks_generation = chunks_generation + 1 WHERE id = 1');
    let approvals = 0;
    if (hasApprovals && plan.approvalIds.size > 0) {
      // An approval goes when its latest entry is in the prefix (audit_log_approvals: no log scan).
      const ids = [...plan.approvalIds];
      const later = new Set((await client.query<{ ref: string }>("SELECT DISTINCT ref FROM audit_log WHERE kind = 'approval' AND ref = ANY($1::text[]) AND seq > $2", [ids, last.seq])).rows.map((r) => r.ref));
      approvals = (await client.query('DELETE FROM approvals WHERE id = ANY($1::text[])', [ids.filter((id) => !later.has(id))])).rowCount ?? 0;
    }
    const removed = (await client.query('DELETE FROM audit_log WHERE seq <= $1', [last.seq])).rowCount ?? 0;
    // Checkpoints of entries that are gone can no longer be checked; the anchor replaces them.
    await client.query('DELETE FROM audit_checkpoints WHERE seq <= $1', [last.seq]);
    await this.#writeCheckpoint(client, last.seq, last.hash, 'anchor');
    return { calls, events, accessRows, sessions, approvals, entries: removed, anchorSeq: last.seq, done: plan.done };
  }
}

/** Deletes the chunks of `sessionIds` that no remaining call names (all of a session gone); returns how many. */
async function collectChunks(client: PgClient, sessionIds: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const sessionId of new Set(sessionIds)) {
    const exists = (await client.query('SELECT 1 FROM sessions WHERE id = $1', [sessionId])).rows.length > 0;
    if (!exists) {
      deleted += (await client.query('DELETE FROM body_chunks WHERE session_id = $1', [sessionId])).rowCount ?? 0;
      continue;
    }
    const nodes = await client.query<{ id: number; text: string }>('SELECT id, text FROM body_chunks WHERE session_id = $1 AND kind = 1', [sessionId]);
    const roots = await client.query<{ request_parts: string }>('SELECT request_parts FROM calls WHERE session_id = $1 AND request_parts IS NOT NULL', [sessionId]);
    const reached = reachableChunks(nodes.rows.map((r) => ({ id: Number(r.id), text: r.text })), roots.rows.map((r) => r.request_parts));
    deleted += (await client.query('DELETE FROM body_chunks WHERE session_id = $1 AND NOT (id = ANY($2::bigint[]))', [sessionId, [...reached]])).rowCount ?? 0;
  }
  return deleted;
}
