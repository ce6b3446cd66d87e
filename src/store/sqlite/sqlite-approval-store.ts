/**
 * Approvals in the recording store's SQLite file, on a connection of their own on the main
 * thread (WAL lets it sit beside the writer thread; a busy timeout covers the writer's commits).
 * The record is kept whole as JSON, with the columns queries need beside it.
 *
 * Audit chain: each insert and each update appends an `approval` entry over the row as written,
 * in the same `BEGIN IMMEDIATE` transaction. The chain head is read inside that transaction
 * (under SQLite's write lock), so this connection and the writer thread extend one chain.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ensurePrivateDatabase, type PrivatePathOptions } from '../../config/private-files.ts';
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import type { ApprovalQuery, ApprovalStore } from '../approval-store.ts';
import { ChainWriter } from './audit-chain-writer.ts';
import { migrateDatabase } from './migrations.ts';

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

class SqliteApprovalStore implements ApprovalStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #update: StatementSync;
  readonly #get: StatementSync;
  readonly #row: StatementSync;
  readonly #latest: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  readonly #chain: ChainWriter;
  #closed = false;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare('INSERT INTO approvals (id, state, requester_sub, content_hash, created_at, expires_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#update = db.prepare('UPDATE approvals SET state = ?, expires_at = ?, record = ? WHERE id = ?');
    this.#get = db.prepare('SELECT record FROM approvals WHERE id = ?');
    this.#row = db.prepare('SELECT requester_sub, content_hash, created_at FROM approvals WHERE id = ?');
    this.#latest = db.prepare('SELECT record FROM approvals WHERE requester_sub = ? AND content_hash = ? ORDER BY created_at DESC LIMIT 1');
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#chain = new ChainWriter(db);
  }

  insert(a: ApprovalRecord): void {
    const record = JSON.stringify(a);
    this.#write(() => {
      this.#insert.run(a.id, a.state, a.requester.sub, a.contentHash, a.createdAt, a.expiresAt, record);
      return { id: a.id, state: a.state, requester_sub: a.requester.sub, content_hash: a.contentHash, created_at: a.createdAt, expires_at: a.expiresAt, record };
    });
  }

  update(a: ApprovalRecord): void {
    const record = JSON.stringify(a);
    this.#write(() => {
      const { changes } = this.#update.run(a.state, a.expiresAt, record, a.id);
      if (changes !== 1) throw new Error(`approval update matched ${changes} rows`);
      // The row as it now is: requester_sub, content_hash and created_at are those of the insert.
      const row = this.#row.get(a.id);
      if (row === undefined) throw new Error('approval row vanished inside its transaction');
      return { id: a.id, state: a.state, requester_sub: String(row['requester_sub']), content_hash: String(row['content_hash']), created_at: Number(row['created_at']), expires_at: a.expiresAt, record };
    });
  }

  /** Writes the row and its audit entry in one transaction (the busy timeout waits for the writer thread's commits). */
  #write(body: () => Parameters<ChainWriter['approval']>[0]): void {
    this.#begin.run();
    try {
      this.#chain.mark(); // the chain head, read under the write lock
      this.#chain.approval(body());
      this.#commit.run();
      this.#chain.committed();
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

  get(id: string): ApprovalRecord | null {
    return parse(this.#get.get(id));
  }

  findLatest(requesterSub: string, contentHash: string): ApprovalRecord | null {
    return parse(this.#latest.get(requesterSub, contentHash));
  }

  list(query: ApprovalQuery): ApprovalRecord[] {
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

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function parse(row: Record<string, unknown> | undefined): ApprovalRecord | null {
  if (!row || typeof row['record'] !== 'string') return null;
  return JSON.parse(row['record']) as ApprovalRecord;
}
