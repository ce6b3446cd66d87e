/**
 * Approvals in the recording store's SQLite file, on a connection of their own on the main
 * thread (WAL lets it sit beside the writer thread; a busy timeout covers the writer's commits).
 * The record is kept whole as JSON, with the columns queries need beside it. Synchronous inside
 * (node:sqlite), behind the store's promise-returning interface: a mutation runs whole in one
 * `BEGIN IMMEDIATE` transaction, so it cannot interleave with another — in this process or in
 * another one on the same file.
 *
 * Audit chain: each insert and each update appends an `approval` entry over the row as written,
 * in the same transaction. The chain head is read inside that transaction (under SQLite's write
 * lock), so this connection and the writer thread extend one chain. The change feed is read from
 * those entries: an approval's latest `approval` entry after a position is its latest change.
 *
 * The webhook outbox (sqlite-webhook-outbox.ts) shares this connection: a mutation's notices are
 * inserted in its transaction, so a decision never commits without them (nor they without it).
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ensurePrivateDatabase, type PrivatePathOptions } from '../../config/private-files.ts';
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import type { ApprovalChangeRow, ApprovalKey, ApprovalMutated, ApprovalMutation, ApprovalQuery, ApprovalStore } from '../approval-store.ts';
import { ChainWriter } from './audit-chain-writer.ts';
import { migrateDatabase } from './migrations.ts';
import { SqliteWebhookOutbox } from './sqlite-webhook-outbox.ts';

export function openSqliteApprovalStore(location: string, options: { busyTimeoutMs?: number } & PrivatePathOptions = {}): ApprovalStore {
  ensurePrivateDatabase(location, options); // normally done by the recording store already: a no-op
  const db = new DatabaseSync(location, { timeout: options.busyTimeoutMs ?? 5000 });
  try {
    db.exec('PRAGMA journal_mode = WAL');
    // As the recording store: a commit survives a crash of the process, not an OS crash or power
    // loss. FULL cost an fsync per hold and per vote on the event loop (0.5 ms, 200 ms on a busy disk).
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA wal_autocheckpoint = 0'); // the recording store's checkpointer does it
    // The schema (the approvals table and its indexes) lives in the migrations; normally the
    // recording store has applied them already and this is a cheap no-op.
    migrateDatabase(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return new SqliteApprovalStore(db);
}

/** Audit entries behind the head past which the change feed reads by the approvals' index. */
const FAR_BEHIND = 20_000;

class SqliteApprovalStore implements ApprovalStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #update: StatementSync;
  readonly #get: StatementSync;
  readonly #row: StatementSync;
  readonly #latest: StatementSync;
  readonly #changesNear: StatementSync;
  readonly #changesFar: StatementSync;
  readonly #lastSeq: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  readonly #chain: ChainWriter;
  #closed = false;
  /** One process on one file: a poll finds other processes' changes. */
  readonly watchChanges = null;
  readonly outbox: SqliteWebhookOutbox;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare('INSERT INTO approvals (id, state, requester_sub, content_hash, created_at, expires_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#update = db.prepare('UPDATE approvals SET state = ?, expires_at = ?, record = ? WHERE id = ?');
    this.#get = db.prepare('SELECT record FROM approvals WHERE id = ?');
    this.#row = db.prepare('SELECT requester_sub, content_hash, created_at FROM approvals WHERE id = ?');
    this.#latest = db.prepare('SELECT record FROM approvals WHERE requester_sub = ? AND content_hash = ? ORDER BY created_at DESC LIMIT 1');
    // Two plans for one query. A follower close behind the head (every poll) scans the entries
    // after its position by audit_log's key; one far behind (a reconnect with an old
    // Last-Event-ID) walks the approvals' own index instead of every call entry since then. Left
    // to itself SQLite walks the index every time: 10 ms a poll with 100,000 approvals, against
    // 0.04 ms by the key.
    const changes = (from: string): StatementSync =>
      db.prepare(`
      SELECT l.seq AS seq, a.record AS record
      FROM (SELECT ref, max(seq) AS seq FROM ${from} WHERE seq > ? AND kind = 'approval' GROUP BY ref) l
      JOIN approvals a ON a.id = l.ref
      ORDER BY l.seq LIMIT ?`);
    this.#changesNear = changes('audit_log NOT INDEXED');
    this.#changesFar = changes('audit_log INDEXED BY audit_log_approvals');
    this.#lastSeq = db.prepare('SELECT coalesce(max(seq), 0) AS seq FROM audit_log');
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#chain = new ChainWriter(db);
    this.outbox = new SqliteWebhookOutbox(db, () => this.#open());
  }

  async mutate<T>(key: ApprovalKey, change: (current: ApprovalRecord | null) => ApprovalMutation<T>): Promise<ApprovalMutated<T>> {
    this.#open();
    this.#begin.run();
    try {
      this.#chain.mark(); // the chain head, read under the write lock
      const current = 'id' in key ? parse(this.#get.get(key.id)) : parse(this.#latest.get(key.requesterSub, key.contentHash));
      const { result, write, outbox } = change(current);
      let seq: number | null = null;
      let outboxKept = 0;
      if (write !== undefined) {
        this.#chain.approval(write.id === current?.id ? this.#updateRow(write) : this.#insertRow(write));
        seq = this.#chain.mark().seq;
        if (outbox !== undefined) outboxKept = this.outbox.insert(outbox);
      }
      this.#commit.run();
      this.#chain.committed();
      return { result, seq, outboxKept };
    } catch (error) {
      try {
        if (this.#db.isTransaction) this.#rollback.run();
      } catch {
        // the original error is the one that matters
      }
      this.#chain.rolledBack();
      throw error;
    }
  }

  #insertRow(a: ApprovalRecord): Parameters<ChainWriter['approval']>[0] {
    const record = JSON.stringify(a);
    this.#insert.run(a.id, a.state, a.requester.sub, a.contentHash, a.createdAt, a.expiresAt, record);
    return { id: a.id, state: a.state, requester_sub: a.requester.sub, content_hash: a.contentHash, created_at: a.createdAt, expires_at: a.expiresAt, record };
  }

  #updateRow(a: ApprovalRecord): Parameters<ChainWriter['approval']>[0] {
    const record = JSON.stringify(a);
    const { changes } = this.#update.run(a.state, a.expiresAt, record, a.id);
    if (changes !== 1) throw new Error(`approval update matched ${changes} rows`);
    // The row as it now is: requester_sub, content_hash and created_at are those of the insert.
    const row = this.#row.get(a.id);
    if (row === undefined) throw new Error('approval row vanished inside its transaction');
    return { id: a.id, state: a.state, requester_sub: String(row['requester_sub']), content_hash: String(row['content_hash']), created_at: Number(row['created_at']), expires_at: a.expiresAt, record };
  }

  async get(id: string): Promise<ApprovalRecord | null> {
    this.#open();
    return parse(this.#get.get(id));
  }

  async list(query: ApprovalQuery): Promise<ApprovalRecord[]> {
    this.#open();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.states && query.states.length > 0) {
      where.push(`state IN (${query.states.map(() => '?').join(', ')})`);
      params.push(...query.states);
    }
    if (query.since !== undefined) {
      where.push('created_at >= ?');
      params.push(query.since);
    }
    const sql = `SELECT record FROM approvals ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT ?`;
    return this.#db
      .prepare(sql)
      .all(...params, query.limit)
      .map((row) => parse(row))
      .filter((a): a is ApprovalRecord => a !== null);
  }

  async changesAfter(seq: number, limit: number): Promise<ApprovalChangeRow[]> {
    this.#open();
    const out: ApprovalChangeRow[] = [];
    const behind = Number(this.#lastSeq.get()?.['seq'] ?? 0) - seq;
    const changes = behind <= FAR_BEHIND ? this.#changesNear : this.#changesFar;
    for (const row of changes.all(seq, limit)) {
      const approval = parse(row);
      if (approval !== null) out.push({ seq: Number(row['seq']), approval });
    }
    return out;
  }

  async lastChangeSeq(): Promise<number> {
    this.#open();
    return Number(this.#lastSeq.get()?.['seq'] ?? 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #open(): void {
    if (this.#closed) throw new Error('the approval store is closed');
  }
}

function parse(row: Record<string, unknown> | undefined): ApprovalRecord | null {
  if (!row || typeof row['record'] !== 'string') return null;
  return JSON.parse(row['record']) as ApprovalRecord;
}
