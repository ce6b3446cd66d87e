/**
 * The webhook outbox (src/store/webhook-outbox.ts) on PostgreSQL, shared by every replica, on the
 * approval store's pool and listening connection.
 *
 * - Rows are inserted by approval mutations, in their transaction ({@link outboxInsertSql} is a
 *   CTE of the mutation's one statement), with a NOTIFY on `aigov_webhooks` that goes out at commit:
 *   every replica's worker wakes and claims.
 * - A claim is one statement: `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)`. Rows another
 *   replica is claiming at that moment are skipped, not waited for; a claimed row's due time
 *   moves to the end of the lease, so no other replica takes it until then. A settle matches the
 *   claim token: a replica whose lease ran out (frozen, cut off) changes nothing when it wakes.
 * - Times are the database's clock (`clock_timestamp()`), the same for every replica, so a lease
 *   means the same on all of them whatever their clocks say.
 * - The pending cap is counted in the inserting statement; the approval mutations that insert
 *   hold the audit chain's head row, so they are serialized and the cap is exact for them.
 */
import { randomUUID } from 'node:crypto';
import {
  claimedDelivery,
  OUTBOX_PURGE_CHUNK,
  outboxErrorText,
  type ClaimedDelivery,
  type ClaimRequest,
  type OutboxBatch,
  type OutboxSettle,
  type OutboxStatus,
  type SweepRequest,
  type SweepResult,
  type WebhookOutboxStore,
} from '../webhook-outbox.ts';
import { checkOut, type PgPool } from './pg-connection.ts';
import type { PgNotifyListener } from './pg-notify-listener.ts';

export const WEBHOOKS_CHANNEL = 'aigov_webhooks';

/** Epoch milliseconds by the database's clock. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const STRANDED_ERROR = 'the replica posting it stopped during its last attempt';
const UNKNOWN_ERROR = 'its receiver is no longer configured';

type Row = Record<string, unknown>;

/**
 * A CTE `outboxed` inserting the batch's rows (as many as the cap allows, first ones first),
 * parameters from `$first`, and the select-list items that count them and notify the replicas.
 */
export function outboxInsertSql(batch: OutboxBatch, first: number): { readonly cte: string; readonly select: string; readonly values: unknown[] } {
  const p = (i: number): string => `$${first + i}`;
  const rows = batch.rows;
  return {
    cte: `outboxed AS (
      INSERT INTO webhook_outbox (id, approval_id, rule_id, type, receiver, host, body, created_at, next_attempt_at)
      SELECT r.id, r.approval_id, r.rule_id, r.type, r.receiver, r.host, r.body, r.created_at, ${NOW_MS}
      FROM unnest(${p(0)}::text[], ${p(1)}::text[], ${p(2)}::text[], ${p(3)}::text[], ${p(4)}::text[], ${p(5)}::text[], ${p(6)}::text[], ${p(7)}::bigint[])
           WITH ORDINALITY AS r(id, approval_id, rule_id, type, receiver, host, body, created_at, n)
      WHERE r.n <= ${p(8)}::bigint - (SELECT count(*) FROM (SELECT 1 FROM webhook_outbox WHERE state = 'pending' LIMIT ${p(8)}::bigint) p)
      RETURNING 1
    )`,
    // Identical notifications of one transaction are delivered once.
    select: `(SELECT count(*) FROM outboxed) AS outboxed, (SELECT count(*) FROM (SELECT pg_notify('${WEBHOOKS_CHANNEL}', '') FROM outboxed) n) AS notified`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.approvalId),
      rows.map((r) => r.ruleId),
      rows.map((r) => r.type),
      rows.map((r) => r.receiver),
      rows.map((r) => r.host),
      rows.map((r) => r.body),
      rows.map((r) => r.createdAt),
      Math.max(0, Math.floor(batch.maxPending)),
    ],
  };
}

export class PgWebhookOutbox implements WebhookOutboxStore {
  readonly durable = true;
  readonly watch: (onChange: () => void) => () => void;
  readonly #pool: PgPool;
  readonly #query: (query: { name?: string; text: string; values: unknown[] }) => Promise<Row[]>;
  readonly #error: (err: unknown) => Error;

  /** `query` runs one statement on the pool (errors already described); `error` describes one for a caller. */
  constructor(pool: PgPool, listener: PgNotifyListener, query: (query: { name?: string; text: string; values: unknown[] }) => Promise<Row[]>, error: (err: unknown) => Error) {
    this.#pool = pool;
    this.#query = query;
    this.#error = error;
    this.watch = (onChange) => listener.subscribe(onChange, WEBHOOKS_CHANNEL);
  }

  /**
   * On its own: a transaction that takes the chain head's row lock first, as the approval
   * mutations do, so the cap holds against theirs too.
   */
  async enqueue(batch: OutboxBatch): Promise<number> {
    if (batch.rows.length === 0) return 0;
    const { client, release } = await checkOut(this.#pool).catch((err: unknown) => {
      throw this.#error(err);
    });
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM chain_head WHERE id = 1 FOR UPDATE');
      const insert = outboxInsertSql(batch, 1);
      const done = await client.query<Row>(`WITH ${insert.cte} SELECT ${insert.select}`, insert.values);
      await client.query('COMMIT');
      return Number(done.rows[0]?.['outboxed'] ?? 0);
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw this.#error(err);
    } finally {
      release(broken);
    }
  }

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    if (request.limit <= 0 || request.receivers.length === 0) return [];
    const claim = randomUUID();
    const rows = await this.#query({
      name: 'aigov_outbox_claim',
      text: `
        UPDATE webhook_outbox o SET attempts = o.attempts + 1, next_attempt_at = ${NOW_MS} + $2, claim = $1
        FROM (
          SELECT id FROM webhook_outbox
          WHERE state = 'pending' AND next_attempt_at <= ${NOW_MS} AND attempts <= $3 AND receiver = ANY($4::text[])
          ORDER BY next_attempt_at LIMIT $5
          FOR UPDATE SKIP LOCKED
        ) due
        WHERE o.id = due.id
        RETURNING o.id, o.approval_id, o.rule_id, o.type, o.receiver, o.host, o.body, o.created_at, o.attempts`,
      values: [claim, Math.max(1, Math.round(request.leaseMs)), request.maxAttempts, [...request.receivers], request.limit],
    });
    return rows.map((r) => claimedDelivery(r, claim));
  }

  async settle(delivery: ClaimedDelivery, outcome: OutboxSettle): Promise<boolean> {
    const mine = "WHERE id = $1 AND claim = $2 AND state = 'pending' RETURNING 1";
    const key = [delivery.id, delivery.claim];
    let rows: Row[];
    switch (outcome.kind) {
      case 'delivered':
        rows = await this.#query({
          name: 'aigov_outbox_delivered',
          text: `UPDATE webhook_outbox SET state = 'delivered', done_at = ${NOW_MS}, claim = NULL, last_status = $3, last_error = NULL ${mine}`,
          values: [...key, outcome.status],
        });
        break;
      case 'retry':
        rows = await this.#query({
          name: 'aigov_outbox_retry',
          text: `UPDATE webhook_outbox SET next_attempt_at = ${NOW_MS} + $3, claim = NULL, last_status = $4, last_error = $5 ${mine}`,
          values: [...key, Math.max(0, Math.round(outcome.delayMs)), outcome.status, outboxErrorText(outcome.error)],
        });
        break;
      case 'failed':
        rows = await this.#query({
          name: 'aigov_outbox_failed',
          text: `UPDATE webhook_outbox SET state = 'failed', done_at = ${NOW_MS}, claim = NULL, last_status = $3, last_error = $4 ${mine}`,
          values: [...key, outcome.status, outboxErrorText(outcome.error)],
        });
        break;
      case 'release':
        rows = await this.#query({
          name: 'aigov_outbox_release',
          text: `UPDATE webhook_outbox SET attempts = greatest(attempts - 1, 0), next_attempt_at = ${NOW_MS}, claim = NULL ${mine}`,
          values: key,
        });
        break;
    }
    return rows.length === 1;
  }

  async status(receivers: readonly string[], maxAttempts: number): Promise<OutboxStatus> {
    const rows = await this.#query({
      name: 'aigov_outbox_status',
      text: `
        SELECT count(*) AS pending,
               min(next_attempt_at) FILTER (WHERE attempts <= $1 AND receiver = ANY($2::text[])) - ${NOW_MS} AS next
        FROM webhook_outbox WHERE state = 'pending'`,
      values: [maxAttempts, [...receivers]],
    });
    const next = rows[0]?.['next'];
    return { pending: Number(rows[0]?.['pending'] ?? 0), nextDueInMs: next === null || next === undefined ? null : Number(next) };
  }

  async sweep(request: SweepRequest): Promise<SweepResult> {
    const unknown = new Map<string, number>();
    const dropped = await this.#query({
      name: 'aigov_outbox_drop_unknown',
      text: `
        UPDATE webhook_outbox SET state = 'failed', done_at = ${NOW_MS}, claim = NULL, last_error = '${UNKNOWN_ERROR}'
        WHERE state = 'pending' AND (claim IS NULL OR next_attempt_at <= ${NOW_MS}) AND created_at <= ${NOW_MS} - $1 AND receiver <> ALL($2::text[])
        RETURNING host`,
      values: [Math.max(0, Math.round(request.unknownGraceMs)), [...request.receivers]],
    });
    for (const row of dropped) {
      const host = String(row['host']);
      unknown.set(host, (unknown.get(host) ?? 0) + 1);
    }
    const stranded = await this.#query({
      name: 'aigov_outbox_fail_stranded',
      text: `
        UPDATE webhook_outbox SET state = 'failed', done_at = ${NOW_MS}, claim = NULL, last_error = '${STRANDED_ERROR}'
        WHERE state = 'pending' AND next_attempt_at <= ${NOW_MS} AND attempts > $1
        RETURNING 1`,
      values: [request.maxAttempts],
    });
    let purged = 0;
    for (;;) {
      const rows = await this.#query({
        name: 'aigov_outbox_purge',
        text: `
          DELETE FROM webhook_outbox WHERE id IN (
            SELECT id FROM webhook_outbox WHERE state <> 'pending' AND done_at < ${NOW_MS} - $1 LIMIT ${OUTBOX_PURGE_CHUNK}
            FOR UPDATE SKIP LOCKED)
          RETURNING 1`,
        values: [Math.max(0, Math.round(request.retentionMs))],
      });
      purged += rows.length;
      if (rows.length < OUTBOX_PURGE_CHUNK) break;
    }
    return { unknown, stranded: stranded.length, purged };
  }
}
