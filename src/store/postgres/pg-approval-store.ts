/**
 * Approvals on PostgreSQL, shared by every replica (the ApprovalStore contract, approval-store.ts).
 *
 * A mutation is one transaction on a pooled connection: it locks the audit chain's head row
 * (chain_head, FOR UPDATE) first — as every recording write does — then reads the approval, lets
 * the caller's pure function decide, writes the row and its `approval` audit entry, and sends a
 * NOTIFY on `aigov_approvals`, delivered when (and only if) the transaction commits. The head
 * lock serializes every approval write of every replica, which makes each read-modify-write
 * atomic (two votes through two replicas never overwrite each other; two identical requests held
 * at once on two replicas open one approval) and numbers the changes in commit order:
 * `change_seq` is the entry's seq, so a reader that saw change N has seen every change before N.
 *
 * Each replica listens on its own connection (pg-notify-listener.ts); a notification only says
 * "something changed", the service re-reads the changes after the last it saw.
 *
 * The webhook outbox (pg-webhook-outbox.ts) shares the pool and the listening connection; the
 * notices a mutation carries are inserted by the same statement as its write, so they commit
 * (and wake the replicas' workers) together with it, or not at all.
 * Errors carry neither record contents nor the URL's password (describePgError).
 */
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import { approvalContentHash } from '../audit-hash.ts';
import type { ApprovalChangeRow, ApprovalKey, ApprovalMutated, ApprovalMutation, ApprovalQuery, ApprovalStore } from '../approval-store.ts';
import { ChainAppender, entriesParams, entriesSql } from './chain-appender.ts';
import { migratePostgresAt } from './migrations.ts';
import { checkOut, createPool, describePgError, type PgObserver, type PgPool, type PgSettings } from './pg-connection.ts';
import { PgNotifyListener, stampedPayload } from './pg-notify-listener.ts';
import { outboxInsertSql, PgWebhookOutbox, WEBHOOKS_CHANNEL } from './pg-webhook-outbox.ts';

export const APPROVALS_CHANNEL = 'aigov_approvals';

export interface PgApprovalStoreOptions {
  /** postgres://… (may hold the password: it is never logged nor put in an error). */
  readonly url: string;
  /** Connections for approval reads and writes (besides the listening one). Default 4. */
  readonly poolSize?: number;
  /** statement_timeout, ms. Default 5000. */
  readonly statementTimeoutMs?: number;
  /** Opening a connection, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Connection trouble (no record contents). Default: process warning. */
  readonly onError?: (message: string) => void;
  /** The gateway's metrics: pool counts and waits (pool `approvals`), NOTIFY lag. */
  readonly observer?: PgObserver;
}

type Row = Record<string, unknown>;

export async function openPostgresApprovalStore(options: PgApprovalStoreOptions): Promise<PgApprovalStore> {
  const settings: PgSettings = {
    url: options.url,
    statementTimeoutMs: Math.max(1, Math.floor(options.statementTimeoutMs ?? 5000)),
    connectTimeoutMs: Math.max(1, Math.floor(options.connectTimeoutMs ?? 5000)),
    lockTimeoutMs: 0,
  };
  const report = (message: string): void => {
    try {
      (options.onError ?? ((m: string) => process.emitWarning(m, { code: 'AIGOV_APPROVALS_PG' })))(message);
    } catch {
      // a throwing callback must not break the store
    }
  };
  try {
    // Normally the recording store has migrated already: then this is one cheap query under the lock.
    await migratePostgresAt(settings);
    const listener = await PgNotifyListener.open(settings, [APPROVALS_CHANNEL, WEBHOOKS_CHANNEL], report, options.observer);
    const watch = options.observer === undefined ? undefined : { observer: options.observer, name: 'approvals' };
    return new PgApprovalStore(settings, createPool(settings, Math.max(1, Math.floor(options.poolSize ?? 4)), report, watch), listener);
  } catch (err) {
    throw new Error(describePgError(err, options.url), { cause: err });
  }
}

export class PgApprovalStore implements ApprovalStore {
  readonly #settings: PgSettings;
  readonly #pool: PgPool;
  readonly #listener: PgNotifyListener;
  #closed = false;
  readonly watchChanges: (onChange: () => void) => () => void;
  readonly outbox: PgWebhookOutbox;

  constructor(settings: PgSettings, pool: PgPool, listener: PgNotifyListener) {
    this.#settings = settings;
    this.#pool = pool;
    this.#listener = listener;
    this.watchChanges = (onChange) => this.#listener.subscribe(onChange, APPROVALS_CHANNEL);
    this.outbox = new PgWebhookOutbox(
      pool,
      listener,
      (query) => this.#query(query),
      (err) => {
        this.#open();
        return this.#error(err);
      },
    );
  }

  /** True while notifications arrive (else other replicas' changes come by polling). */
  get listening(): boolean {
    return this.#listener.listening;
  }

  async mutate<T>(key: ApprovalKey, change: (current: ApprovalRecord | null) => ApprovalMutation<T>): Promise<ApprovalMutated<T>> {
    this.#open();
    const { client, release } = await checkOut(this.#pool).catch((err: unknown) => {
      throw this.#error(err);
    });
    let broken = false;
    try {
      await client.query('BEGIN');
      const head = (await client.query<Row>('SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE')).rows[0];
      if (head === undefined) throw new Error('the audit chain head row is missing');
      const read =
        'id' in key
          ? await client.query<Row>({ name: 'aigov_approval_lock_id', text: 'SELECT record, requester_sub, content_hash, created_at FROM approvals WHERE id = $1', values: [key.id] })
          : await client.query<Row>({
              name: 'aigov_approval_lock_latest',
              text: 'SELECT record, requester_sub, content_hash, created_at FROM approvals WHERE requester_sub = $1 AND content_hash = $2 ORDER BY created_at DESC LIMIT 1',
              values: [key.requesterSub, key.contentHash],
            });
      const row = read.rows[0];
      const current = parse(row);
      const { result, write, outbox } = change(current);
      if (write === undefined) {
        await client.query('COMMIT');
        return { result, seq: null, outboxKept: 0 };
      }
      const chain = new ChainAppender({ seq: Number(head['seq']), hash: String(head['hash']) });
      const record = JSON.stringify(write);
      const update = row !== undefined && write.id === current?.id;
      // The row as it will be: an update keeps the requester, content hash and creation time of the insert.
      const columns = {
        id: write.id,
        state: write.state,
        requester_sub: update ? String(row['requester_sub']) : write.requester.sub,
        content_hash: update ? String(row['content_hash']) : write.contentHash,
        created_at: update ? Number(row['created_at']) : write.createdAt,
        expires_at: write.expiresAt,
        record,
      };
      chain.append('approval', write.id, null, approvalContentHash(columns));
      const seq = chain.head.seq;
      const values: unknown[] = update
        ? [write.id, write.state, write.expiresAt, record, seq]
        : [write.id, write.state, columns.requester_sub, columns.content_hash, columns.created_at, write.expiresAt, record, seq];
      const writeSql = update
        ? 'UPDATE approvals SET state = $2, expires_at = $3, record = $4, change_seq = $5 WHERE id = $1 RETURNING 1'
        : 'INSERT INTO approvals (id, state, requester_sub, content_hash, created_at, expires_at, record, change_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING 1';
      const entries = entriesSql(values.length + 1);
      const notify = values.length + 11;
      // The notices announcing the write, in the same statement (only when there are some).
      const notices = outbox !== undefined && outbox.rows.length > 0 ? outboxInsertSql(outbox, notify + 1) : null;
      // One round trip while the head is locked; the notifications go out at commit (the
      // approvals' carries the change number stamped with the time now: listeners measure its lag).
      const done = await client.query<Row>(
        `WITH written AS (${writeSql}), ${entries.cte}, head AS (${entries.head} WHERE id = 1)${notices ? `, ${notices.cte}` : ''}
         SELECT (SELECT count(*) FROM written) AS written, pg_notify('${APPROVALS_CHANNEL}', $${notify}::text)${notices ? `, ${notices.select}` : ''}`,
        [...values, ...entriesParams(chain), stampedPayload(String(seq)), ...(notices?.values ?? [])],
      );
      if (Number(done.rows[0]?.['written']) !== 1) throw new Error('the approval row was not written');
      await client.query('COMMIT');
      return { result, seq, outboxKept: Number(done.rows[0]?.['outboxed'] ?? 0) };
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: do not hand it to the next caller
      }
      throw this.#error(err);
    } finally {
      release(broken);
    }
  }

  async get(id: string): Promise<ApprovalRecord | null> {
    const rows = await this.#query({ name: 'aigov_approval_get', text: 'SELECT record FROM approvals WHERE id = $1', values: [id] });
    return parse(rows[0]);
  }

  async list(query: ApprovalQuery): Promise<ApprovalRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (query.states && query.states.length > 0) {
      values.push([...query.states]);
      where.push(`state = ANY($${values.length}::text[])`);
    }
    if (query.since !== undefined) {
      values.push(query.since);
      where.push(`created_at >= $${values.length}`);
    }
    values.push(query.limit);
    const rows = await this.#query({ text: `SELECT record FROM approvals ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT $${values.length}`, values });
    return rows.map(parse).filter((a): a is ApprovalRecord => a !== null);
  }

  async changesAfter(seq: number, limit: number): Promise<ApprovalChangeRow[]> {
    const rows = await this.#query({ name: 'aigov_approval_changes', text: 'SELECT change_seq, record FROM approvals WHERE change_seq > $1 ORDER BY change_seq LIMIT $2', values: [seq, limit] });
    const out: ApprovalChangeRow[] = [];
    for (const row of rows) {
      const approval = parse(row);
      if (approval !== null) out.push({ seq: Number(row['change_seq']), approval });
    }
    return out;
  }

  async lastChangeSeq(): Promise<number> {
    const rows = await this.#query({ name: 'aigov_approval_last_change', text: 'SELECT coalesce(max(change_seq), 0) AS seq FROM approvals', values: [] });
    return Number(rows[0]?.['seq'] ?? 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener.close();
    await this.#pool.end().catch(() => {});
  }

  async #query(query: { name?: string; text: string; values: unknown[] }): Promise<Row[]> {
    this.#open();
    try {
      return (await this.#pool.query<Row>(query)).rows;
    } catch (err) {
      throw this.#error(err);
    }
  }

  #open(): void {
    if (this.#closed) throw new Error('the approval store is closed');
  }

  #error(err: unknown): Error {
    return new Error(`approvals on PostgreSQL: ${describePgError(err, this.#settings.url)}`);
  }
}

function parse(row: Row | undefined): ApprovalRecord | null {
  if (!row || typeof row['record'] !== 'string') return null;
  return JSON.parse(row['record']) as ApprovalRecord;
}
