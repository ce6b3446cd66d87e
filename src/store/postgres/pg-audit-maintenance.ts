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
 *   chunk decides whether it goes, exactly as SQLite's BEGIN IMMEDIATE. A chunk is 100 entries in
 *   three pipelined round trips, so a write of any replica waits for at most one chunk (figures
 *   in docs/benchmarks.md, bench/audit-postgres.ts).
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
import type pg from 'pg';
import type { CheckpointKind } from '../../core/audit/chain.ts';
import { signCheckpoint, type SigningKey } from '../audit-keys.ts';
import { planPurgeChunk, type PurgeEntry } from '../audit-purge-plan.ts';
import { reachableChunks } from '../request-chunk-reach.ts';
import { addPurgeChunk, NOTHING_PURGED, type AuditMaintainer, type CheckpointRecord, type PurgeResult } from '../audit-maintainer.ts';
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
  /** Entries per purge transaction. Default 100 (every replica's writers wait for each). */
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
    this.#chunk = Math.max(1, Math.floor(options.chunkEntries ?? 100));
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
        // Periodic: skipped while another replica signs. The lock comes first: what follows is read after its commit.
        const [lock, head, latest] = await pipeline(client, [
          [kind === 'periodic' ? 'SELECT pg_try_advisory_xact_lock($1, $2) AS got' : 'SELECT true AS got, pg_advisory_xact_lock($1, $2)', [...MAINTENANCE_LOCK]],
          ['SELECT seq, hash FROM chain_head WHERE id = 1', []],
          ['SELECT seq, hash, key_id, at FROM audit_checkpoints WHERE key_id = $1 ORDER BY seq DESC, id DESC LIMIT 1', [key.keyId]],
        ]);
        if ((lock!.rows[0] as { got: boolean } | undefined)?.got !== true) return null;
        const h = head!.rows[0] as { seq: number; hash: string } | undefined;
        if (h === undefined || h.seq === 0) return null;
        const l = latest!.rows[0] as { seq: number; hash: string; at: number } | undefined;
        if (l !== undefined && l.seq === h.seq && l.hash === h.hash) return null; // nothing new since
        const spacing = this.#o.periodicSpacingMs ?? 0;
        if (kind === 'periodic' && spacing > 0 && l !== undefined && l.at > this.#now() - spacing) return null;
        const [written] = await pipeline(client, [this.#checkpointInsert(h.seq, h.hash, kind)]);
        const r = written!.rows[0] as { seq: number; hash: string; at: number; kind: CheckpointKind; key_id: string | null };
        return { seq: r.seq, hash: r.hash, at: r.at, kind: r.kind, keyId: r.key_id };
      });
    });
  }

  /** Deletes what is older than `cutMs` (epoch ms), chunk by chunk; see the file comment. */
  purge(cutMs: number): Promise<PurgeResult> {
    return this.#serial(async () => {
      let total = NOTHING_PURGED;
      const client = await this.#connection();
      const [got] = await pipeline(client, [["SELECT pg_try_advisory_lock($1, $2) AS got, to_regclass('approvals') IS NOT NULL AS approvals", [...PURGE_LOCK]]]);
      const row = got!.rows[0] as { got: boolean; approvals: boolean };
      if (!row.got) return total; // another replica is purging
      try {
        for (;;) {
          const chunk = await this.#transaction((c) => this.#purgeChunk(c, cutMs, row.approvals));
          total = addPurgeChunk(total, chunk);
          if (chunk.done) return total;
          await sleep(0); // let the writers of every replica have their turn between chunks
        }
      } finally {
        if (this.#client === client) await pipeline(client, [['SELECT pg_advisory_unlock($1, $2)', [...PURGE_LOCK]]]).catch(() => {});
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
    // Pipelined: a purge chunk's statements go out together (the writers wait for the chunk).
    const client = await connectClient(this.#o.settings, { pipeline: true });
    // No JIT: the planner prices a chunk's entry read (a subquery per entry) high enough to compile
    // it, ~250 ms per chunk here — while every replica's writers wait for the chunk.
    await pipeline(client, [['SET jit = off', []]]).catch(async (err: unknown) => {
      await client.end().catch(() => {});
      throw err;
    });
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
    await pipeline(client, [['BEGIN', []]]);
    try {
      const value = await body(client);
      await pipeline(client, [['COMMIT', []]]);
      return value;
    } catch (err) {
      await pipeline(client, [['ROLLBACK', []]]).catch(() => {});
      if (isConnectionError(err) && this.#client === client) {
        this.#client = null;
        await client.end().catch(() => {});
      }
      throw err;
    }
  }

  /** The INSERT of a checkpoint of the head `seq`/`hash`, signed when there is a key. */
  #checkpointInsert(seq: number, hash: string, kind: CheckpointKind): Statement {
    const at = this.#now();
    const key = this.#o.key;
    const keyId = key?.keyId ?? null;
    const signature = key === null ? null : signCheckpoint({ seq, hash, at, kind, keyId }, key.privateKey);
    return ['INSERT INTO audit_checkpoints (seq, hash, at, kind, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq, hash, at, kind, key_id', [seq, hash, at, kind, keyId, signature]];
  }

  /**
   * One chunk in three round trips on the pipelined connection (the writers of every replica wait
   * for it): lock and read the oldest entries with what the plan needs; delete the rows and read
   * what the chunk collection needs; delete the chunks, the entries, write the anchor, commit.
   */
  async #purgeChunk(client: PgClient, cut: number, hasApprovals: boolean): Promise<PurgeResult & { done: boolean }> {
    const nothing = { calls: 0, events: 0, accessRows: 0, sessions: 0, approvals: 0, entries: 0, anchorSeq: null, done: true };
    const limit = this.#chunk;
    const [, , read] = await pipeline(client, [
      ['SELECT pg_advisory_xact_lock($1, $2)', [...MAINTENANCE_LOCK]],
      ['SELECT 1 FROM chain_head WHERE id = 1 FOR UPDATE', []],
      [
        `SELECT a.seq, a.kind, a.ref, a.span, a.hash,
           CASE a.kind WHEN 'access' THEN (SELECT l.at FROM access_log l WHERE l.id = CASE WHEN a.ref ~ '^[0-9]{1,18}$' THEN a.ref::bigint END)
                       WHEN 'approval' THEN ${hasApprovals ? `(SELECT ${APPROVAL_DONE_AT} FROM approvals p WHERE p.id = a.ref)` : 'NULL'}
                       ELSE c.started_at END AS t,
           c.status, c.session_id,
           CASE WHEN c.status = 'pending' THEN (SELECT count(*)::int FROM stream_events e WHERE e.call_id = c.id) END AS events
         FROM audit_log a LEFT JOIN calls c ON c.id = a.ref AND a.kind NOT IN ('access', 'approval')
         ORDER BY a.seq LIMIT $1`,
        [limit + 1],
      ],
    ]);
    type EntryRow = { seq: number; kind: string; ref: string; span: string | null; hash: string; t: string | number | null; status: string | null; session_id: string | null; events: number | null };
    const rows = read!.rows as EntryRow[];
    const entries: PurgeEntry[] = rows.map((e) => ({ seq: Number(e.seq), kind: e.kind, ref: e.ref, span: e.span, hash: e.hash, t: e.t === null ? null : Number(e.t), status: e.status }));
    const plan = planPurgeChunk(entries, limit, cut);
    const last = plan.last;
    if (last === undefined) return nothing;
    const byCall = new Map(rows.filter((e) => e.session_id !== null).map((e) => [e.ref, e]));

    const closed: string[] = [];
    const sessionIds = new Set<string>();
    const spans = { id: [] as string[], first: [] as number[], last: [] as number[] };
    for (const [id, c] of plan.calls) {
      const ended = c.status === 'pending' ? (byCall.get(id)?.events ?? 0) <= c.events : c.result;
      if (ended) {
        closed.push(id);
        const session = byCall.get(id)?.session_id;
        if (session !== null && session !== undefined) sessionIds.add(session);
        continue;
      }
      for (const span of c.spans) {
        spans.id.push(id);
        spans.first.push(span.first);
        spans.last.push(span.last);
      }
    }
    const sessions = [...sessionIds];
    const statements: Statement[] = [
      ['DELETE FROM stream_events e USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(id, f, l) WHERE e.call_id = s.id AND e.seq BETWEEN s.f AND s.l', [spans.id, spans.first, spans.last]],
      ['DELETE FROM stream_events WHERE call_id = ANY($1::text[])', [closed]],
      ['DELETE FROM calls WHERE id = ANY($1::text[])', [closed]], // raw copies: ON DELETE CASCADE
      ['DELETE FROM access_log WHERE id = ANY($1::bigint[])', [plan.accessIds]],
      ['DELETE FROM sessions s WHERE s.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id)', [sessions]],
      // What the chunk collection needs, read after those deletes: the sessions left, their nodes and bodies.
      ['SELECT id FROM sessions WHERE id = ANY($1::text[])', [sessions]],
      ['SELECT session_id, id, text FROM body_chunks WHERE session_id = ANY($1::text[]) AND kind = 1', [sessions]],
      ['SELECT session_id, request_parts FROM calls WHERE session_id = ANY($1::text[]) AND request_parts IS NOT NULL', [sessions]],
    ];
    if (hasApprovals && plan.approvalIds.size > 0) {
      // An approval goes when its latest entry is in the prefix (audit_log_approvals: no log scan).
      statements.push(["DELETE FROM approvals p WHERE p.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.kind = 'approval' AND a.ref = p.id AND a.seq > $2)", [[...plan.approvalIds], last.seq]]);
    }
    const [spanEvents, callEvents, calls, access, gone, left, nodes, bodies, approvals] = await pipeline(client, statements);
    const count = (r: { rowCount: number | null } | undefined): number => r?.rowCount ?? 0;

    // Request chunks no remaining call of those sessions names (all of them for a session gone).
    const keep = { session: [] as string[], id: [] as number[] };
    const nodeRows = nodes!.rows as { session_id: string; id: number; text: string }[];
    const bodyRows = bodies!.rows as { session_id: string; request_parts: string }[];
    for (const { id: session } of left!.rows as { id: string }[]) {
      const reached = reachableChunks(nodeRows.filter((n) => n.session_id === session).map((n) => ({ id: Number(n.id), text: n.text })), bodyRows.filter((b) => b.session_id === session).map((b) => b.request_parts));
      for (const id of reached) {
        keep.session.push(session);
        keep.id.push(id);
      }
    }
    const [, log] = await pipeline(client, [
      [
        `WITH gone AS (
           DELETE FROM body_chunks b WHERE b.session_id = ANY($1::text[])
             AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::bigint[]) AS k(s, i) WHERE k.s = b.session_id AND k.i = b.id)
           RETURNING 1
         ), moved AS (
           UPDATE chain_head SET chunks_generation = chunks_generation + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM gone)
         ) SELECT count(*)::int AS n FROM gone`,
        [sessions, keep.session, keep.id],
      ],
      ['DELETE FROM audit_log WHERE seq <= $1', [last.seq]],
      // Checkpoints of entries that are gone can no longer be checked; the anchor replaces them.
      ['DELETE FROM audit_checkpoints WHERE seq <= $1', [last.seq]],
      this.#checkpointInsert(last.seq, last.hash, 'anchor'),
    ]);
    return { calls: count(calls), events: count(spanEvents) + count(callEvents), accessRows: count(access), sessions: count(gone), approvals: count(approvals), entries: count(log), anchorSeq: last.seq, done: plan.done };
  }
}

type Statement = readonly [text: string, values: readonly unknown[]];

/** Sends the statements together (extended protocol, pipelined) and returns their results; throws the first failure. */
async function pipeline(client: PgClient, statements: readonly Statement[]): Promise<{ rows: unknown[]; rowCount: number | null }[]> {
  const sent = statements.map(([text, values]) => client.query({ text, values: [...values], queryMode: 'extended' } as unknown as pg.QueryConfig));
  const settled = await Promise.allSettled(sent);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value);
}
