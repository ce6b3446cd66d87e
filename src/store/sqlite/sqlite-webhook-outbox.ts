/**
 * The webhook outbox (src/store/webhook-outbox.ts) in the SQLite file, on the approval store's
 * connection: its rows are written inside approval mutations ({@link SqliteWebhookOutbox.insert},
 * in their `BEGIN IMMEDIATE` transaction), and the worker's claims and settles are single
 * statements, each atomic under SQLite's write lock — so two processes on one file never claim
 * the same row. Times are this machine's clock (every process on the file shares it).
 */
import { randomUUID } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
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

const RECEIVERS = 'SELECT value FROM json_each(:receivers)';
const STRANDED_ERROR = 'the process posting it stopped during its last attempt';
const UNKNOWN_ERROR = 'its receiver is no longer configured';

export class SqliteWebhookOutbox implements WebhookOutboxStore {
  readonly durable = true;
  /** One process per file in practice; other processes' rows are found by the worker's poll. */
  readonly watch = null;
  readonly #db: DatabaseSync;
  readonly #assertOpen: () => void;
  readonly #now: () => number;
  readonly #pending: StatementSync;
  readonly #insert: StatementSync;
  readonly #claim: StatementSync;
  readonly #settle: Record<OutboxSettle['kind'], StatementSync>;
  readonly #status: StatementSync;
  readonly #sweepNeeded: StatementSync;
  readonly #dropUnknown: StatementSync;
  readonly #failStranded: StatementSync;
  readonly #purge: StatementSync;

  constructor(db: DatabaseSync, assertOpen: () => void, now: () => number = Date.now) {
    this.#db = db;
    this.#assertOpen = assertOpen;
    this.#now = now;
    this.#pending = db.prepare("SELECT count(*) AS n FROM (SELECT 1 FROM webhook_outbox WHERE state = 'pending' LIMIT ?)");
    this.#insert = db.prepare(
      'INSERT INTO webhook_outbox (id, approval_id, rule_id, type, receiver, host, body, created_at, next_attempt_at) VALUES (:id, :approval_id, :rule_id, :type, :receiver, :host, :body, :created_at, :now)',
    );
    this.#claim = db.prepare(`
      UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = :lease_end, claim = :claim
      WHERE id IN (
        SELECT id FROM webhook_outbox
        WHERE state = 'pending' AND next_attempt_at <= :now AND attempts <= :max AND receiver IN (${RECEIVERS})
        ORDER BY next_attempt_at LIMIT :limit)
      RETURNING id, approval_id, rule_id, type, receiver, host, body, created_at, attempts`);
    const mine = "WHERE id = :id AND claim = :claim AND state = 'pending'";
    this.#settle = {
      delivered: db.prepare(`UPDATE webhook_outbox SET state = 'delivered', done_at = :now, claim = NULL, last_status = :status, last_error = NULL ${mine}`),
      retry: db.prepare(`UPDATE webhook_outbox SET next_attempt_at = :now + :delay, claim = NULL, last_status = :status, last_error = :error ${mine}`),
      failed: db.prepare(`UPDATE webhook_outbox SET state = 'failed', done_at = :now, claim = NULL, last_status = :status, last_error = :error ${mine}`),
      release: db.prepare(`UPDATE webhook_outbox SET attempts = max(attempts - 1, 0), next_attempt_at = :now, claim = NULL ${mine}`),
    };
    this.#status = db.prepare(`
      SELECT count(*) AS pending,
             min(CASE WHEN attempts <= :max AND receiver IN (${RECEIVERS}) THEN next_attempt_at END) AS next
      FROM webhook_outbox WHERE state = 'pending'`);
    // The sweep's writes take the file's write lock: first ask (a read) whether there is anything to do.
    this.#sweepNeeded = db.prepare(`
      SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE state = 'pending'
                       AND (((claim IS NULL OR next_attempt_at <= :now) AND created_at <= :unknown_before AND receiver NOT IN (${RECEIVERS}))
                            OR (next_attempt_at <= :now AND attempts > :max)))
          OR EXISTS (SELECT 1 FROM webhook_outbox WHERE state <> 'pending' AND done_at < :purge_before) AS needed`);
    this.#dropUnknown = db.prepare(`
      UPDATE webhook_outbox SET state = 'failed', done_at = :now, claim = NULL, last_error = '${UNKNOWN_ERROR}'
      WHERE state = 'pending' AND (claim IS NULL OR next_attempt_at <= :now) AND created_at <= :unknown_before AND receiver NOT IN (${RECEIVERS})
      RETURNING host`);
    this.#failStranded = db.prepare(`
      UPDATE webhook_outbox SET state = 'failed', done_at = :now, claim = NULL, last_error = '${STRANDED_ERROR}'
      WHERE state = 'pending' AND next_attempt_at <= :now AND attempts > :max`);
    this.#purge = db.prepare(`DELETE FROM webhook_outbox WHERE rowid IN (SELECT rowid FROM webhook_outbox WHERE state <> 'pending' AND done_at < :before LIMIT ${OUTBOX_PURGE_CHUNK})`);
  }

  /**
   * Inserts the batch's rows inside the caller's transaction, as many as the cap allows; returns
   * how many. The approval store calls it within its mutation.
   */
  insert(batch: OutboxBatch): number {
    if (batch.rows.length === 0) return 0;
    const pending = Number(this.#pending.get(batch.maxPending)?.['n'] ?? 0);
    const kept = batch.rows.slice(0, Math.max(0, batch.maxPending - pending));
    const now = this.#now();
    for (const r of kept) {
      this.#insert.run({ id: r.id, approval_id: r.approvalId, rule_id: r.ruleId, type: r.type, receiver: r.receiver, host: r.host, body: r.body, created_at: r.createdAt, now });
    }
    return kept.length;
  }

  async enqueue(batch: OutboxBatch): Promise<number> {
    this.#assertOpen();
    if (batch.rows.length === 0) return 0;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const kept = this.insert(batch);
      this.#db.exec('COMMIT');
      return kept;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    this.#assertOpen();
    if (request.limit <= 0 || request.receivers.length === 0) return [];
    const now = this.#now();
    const claim = randomUUID();
    const rows = this.#claim.all({ lease_end: now + request.leaseMs, claim, now, max: request.maxAttempts, receivers: JSON.stringify(request.receivers), limit: request.limit });
    return rows.map((r) => claimedDelivery(r, claim));
  }

  async settle(delivery: ClaimedDelivery, outcome: OutboxSettle): Promise<boolean> {
    this.#assertOpen();
    const params: Record<string, string | number | null> = { id: delivery.id, claim: delivery.claim, now: this.#now() };
    if (outcome.kind === 'delivered') params['status'] = outcome.status;
    if (outcome.kind === 'retry' || outcome.kind === 'failed') {
      params['status'] = outcome.status;
      params['error'] = outboxErrorText(outcome.error);
    }
    if (outcome.kind === 'retry') params['delay'] = Math.max(0, Math.round(outcome.delayMs));
    return this.#settle[outcome.kind].run(params).changes === 1;
  }

  async status(receivers: readonly string[], maxAttempts: number): Promise<OutboxStatus> {
    this.#assertOpen();
    const row = this.#status.get({ max: maxAttempts, receivers: JSON.stringify(receivers) });
    const next = row?.['next'];
    return { pending: Number(row?.['pending'] ?? 0), nextDueInMs: next === null || next === undefined ? null : Number(next) - this.#now() };
  }

  async sweep(request: SweepRequest): Promise<SweepResult> {
    this.#assertOpen();
    const now = this.#now();
    const receivers = JSON.stringify(request.receivers);
    const unknownBefore = now - request.unknownGraceMs;
    const purgeBefore = now - request.retentionMs;
    const unknown = new Map<string, number>();
    const needed = this.#sweepNeeded.get({ now, unknown_before: unknownBefore, receivers, max: request.maxAttempts, purge_before: purgeBefore })?.['needed'];
    if (Number(needed ?? 0) === 0) return { unknown, stranded: 0, purged: 0 };
    for (const row of this.#dropUnknown.all({ now, unknown_before: unknownBefore, receivers })) {
      const host = String(row['host']);
      unknown.set(host, (unknown.get(host) ?? 0) + 1);
    }
    const stranded = Number(this.#failStranded.run({ now, max: request.maxAttempts }).changes);
    let purged = 0;
    for (;;) {
      const n = Number(this.#purge.run({ before: purgeBefore }).changes);
      purged += n;
      if (n < OUTBOX_PURGE_CHUNK) break;
    }
    return { unknown, stranded, purged };
  }
}
