/**
 * The approvals of a session read from an SQLite file (the approvals table the approval store
 * writes), for a recording store that keeps its recordings elsewhere (the PostgreSQL driver,
 * while approvals stay in each replica's SQLite file). Read-only connection, opened on first use:
 * the approval store creates and migrates the file.
 */
import fs from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import { sortApprovals, type ApprovalStateFilter, type SessionApprovals } from '../session-approvals.ts';

interface Statements {
  readonly ofSession: StatementSync;
  readonly byId: StatementSync;
  readonly sessions: Record<ApprovalStateFilter, StatementSync>;
}

export class SqliteSessionApprovals implements SessionApprovals {
  readonly #file: string;
  #statements: Statements | null = null;
  #db: DatabaseSync | null = null;

  constructor(file: string) {
    this.#file = file;
  }

  ofSession(sessionId: string, ids: readonly string[]): ApprovalRecord[] {
    const s = this.#open();
    if (s === null) return [];
    const rows = s.ofSession.all(sessionId);
    if (ids.length > 0) rows.push(...s.byId.all(JSON.stringify(ids)));
    return sortApprovals(rows.map((row) => JSON.parse(String(row['record'])) as ApprovalRecord));
  }

  sessionsWith(state: ApprovalStateFilter, now: number): string[] {
    const s = this.#open();
    if (s === null) return [];
    const statement = s.sessions[state];
    const rows = state === 'pending' || state === 'expired' ? statement.all(now) : statement.all();
    return rows.map((row) => String(row['session_id']));
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
    this.#statements = null;
  }

  #open(): Statements | null {
    if (this.#statements !== null) return this.#statements;
    if (!fs.existsSync(this.#file)) return null; // no approval was ever made here
    const db = new DatabaseSync(this.#file, { readOnly: true, timeout: 1000 });
    const hasTable = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'approvals'").get() !== undefined;
    if (!hasTable) {
      db.close();
      return null;
    }
    const sessionsIn = (condition: string): StatementSync =>
      db.prepare(`SELECT DISTINCT json_extract(record, '$.sessionId') AS session_id FROM approvals WHERE ${condition} AND json_extract(record, '$.sessionId') IS NOT NULL`);
    this.#db = db;
    this.#statements = {
      ofSession: db.prepare("SELECT record FROM approvals WHERE json_extract(record, '$.sessionId') = ?"),
      byId: db.prepare('SELECT record FROM approvals WHERE id IN (SELECT value FROM json_each(?))'),
      sessions: {
        pending: sessionsIn("state = 'pending' AND expires_at > ?1"),
        expired: sessionsIn("(state = 'expired' OR (state = 'pending' AND expires_at <= ?1))"),
        approved: sessionsIn("state = 'approved'"),
        denied: sessionsIn("state = 'denied'"),
      },
    };
    return this.#statements;
  }
}
