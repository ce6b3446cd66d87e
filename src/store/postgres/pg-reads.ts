/**
 * The read queries of the PostgreSQL recording store (the sessions API, replay, tests), on the
 * pool. A read made of several statements (a session's detail: the session, its calls, their
 * events, their chunks) runs in one REPEATABLE READ READ ONLY transaction: one snapshot while
 * writers commit in between. Approvals are read from the approvals table the approval store
 * writes (pg-approval-store.ts). The same rows and the same order as the SQLite
 * store's reads (sqlite/store-reads.ts): the shared contract tests hold both to it.
 */
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import { LEAF, NODE, type StoredChunk } from '../../core/recording/request-chunks.ts';
import {
  approvalIdsInDecisions,
  type CallRecord,
  type ChargeRow,
  type SealedRawCopy,
  type SessionCursor,
  type SessionDetailRecord,
  type SessionFilter,
  type SessionPage,
  type SessionRecord,
  type SessionSummary,
  type StreamEventRecord,
  type UsageQuery,
  type UsageReport,
} from '../recording-store.ts';
import { sortApprovals } from '../session-approvals.ts';
import { chargeColumns, num, str, toCallRecord, toChargeRow, toSessionRecord, toSessionSummary, toStreamEvent, type RecordRow } from '../record-rows.ts';
import type { PgPool } from './pg-connection.ts';
import { pgUsageReport } from './pg-usage-reads.ts';

/** Calls as read: a call whose body is stored as chunks has `requestRef`; `chunks` holds its session's chunks. */
export interface PgCallsRead {
  readonly calls: CallRecord[];
  readonly chunks: Map<number, StoredChunk> | null;
}


interface Queryable {
  query(text: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]): Promise<{ rows: RecordRow[] }>;
}

const SESSION_COLUMNS = 's.id, s.subject, s.issuer, s.email, s.started_at, s.last_call_at, s.call_count';
const FOLD_ASCII = (sql: string): string => `translate(${sql}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`;
/** An approval's session (indexed: approvals_by_session). */
const APPROVAL_SESSION = (alias: string): string => `((${alias}record::jsonb) ->> 'sessionId')`;

export class PgReads {
  readonly #pool: PgPool;

  constructor(pool: PgPool) {
    this.#pool = pool;
  }

  async chargesSince(since: number): Promise<ChargeRow[]> {
    const field = (path: string): string => `((usage::jsonb) #>> '{${path.split('.').join(',')}}')::bigint`;
    const res = await this.#pool.query<RecordRow>({
      name: 'aigov_charges_since',
      text: `SELECT subject, email, groups, provider, provider_kind, model, (started_at / 60000) * 60000 AS minute, ${chargeColumns(field)}
             FROM calls WHERE started_at >= $1 AND usage IS NOT NULL
             GROUP BY subject, email, groups, provider, provider_kind, model, minute`,
      values: [since],
    });
    return res.rows.map(toChargeRow);
  }

  async listSessions(limit: number, subject: string | null): Promise<SessionSummary[]> {
    const res = subject === null
      ? await this.#pool.query<RecordRow>({ name: 'aigov_list_sessions', text: 'SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions ORDER BY last_call_at DESC, id LIMIT $1', values: [limit] })
      : await this.#pool.query<RecordRow>({ name: 'aigov_list_sessions_of', text: 'SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions WHERE subject = $1 ORDER BY last_call_at DESC, id LIMIT $2', values: [subject, limit] });
    return res.rows.map(toSessionSummary);
  }

  async getCall(callId: string): Promise<PgCallsRead | null> {
    return this.#snapshot(async (db) => {
      const res = await db.query({ name: 'aigov_get_call', text: 'SELECT * FROM calls WHERE id = $1', values: [callId] });
      const row = res.rows[0];
      if (row === undefined) return null;
      const call = toCallRecord(row);
      return { calls: [call], chunks: await chunksFor(db, call.sessionId, [call]) };
    });
  }

  async listCalls(sessionId: string): Promise<PgCallsRead> {
    return this.#snapshot(async (db) => {
      const calls = await listCalls(db, sessionId);
      return { calls, chunks: await chunksFor(db, sessionId, calls) };
    });
  }

  async getStreamEvents(callId: string): Promise<StreamEventRecord[]> {
    const res = await this.#pool.query<RecordRow>({ name: 'aigov_get_events', text: 'SELECT offset_ms, raw FROM stream_events WHERE call_id = $1 ORDER BY seq', values: [callId] });
    return res.rows.map(toStreamEvent);
  }

  async querySessions(filter: SessionFilter, limit: number, cursor: SessionCursor | null, now: number): Promise<SessionPage> {
    const where: string[] = [];
    const values: unknown[] = [];
    const p = (value: unknown): string => {
      values.push(value);
      return `$${values.length}`;
    };
    if (filter.owner !== undefined) where.push(`s.subject = ${p(filter.owner.subject)} AND s.issuer = ${p(filter.owner.issuer)}`);
    if (filter.user !== undefined) {
      const user = p(filter.user);
      where.push(`(s.subject = ${user} OR ${FOLD_ASCII('s.email')} = ${FOLD_ASCII(user)})`);
    }
    if (filter.since !== undefined) where.push(`s.last_call_at >= ${p(filter.since)}`);
    if (filter.until !== undefined) where.push(`s.last_call_at <= ${p(filter.until)}`);
    if (cursor !== null) {
      const at = p(cursor.lastCallAt);
      where.push(`(s.last_call_at < ${at} OR (s.last_call_at = ${at} AND s.id > ${p(cursor.sessionId)}))`);
    }
    if (filter.provider !== undefined) where.push(`EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND c.provider = ${p(filter.provider)})`);
    if (filter.model !== undefined) where.push(`EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND c.model = ${p(filter.model)})`);
    if (filter.action !== undefined) {
      // decisions is our own JSON.stringify output: `"action":"<a>"` appears exactly when a
      // decision has that action (inside a string value the quotes would be escaped).
      where.push(`EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND strpos(c.decisions, ${p(`"action":${JSON.stringify(filter.action)}`)}) > 0)`);
    }
    if (filter.approval !== undefined) {
      // A pending approval past its expiry is expired (effectiveState), whether or not a gateway
      // has written that down yet.
      const state =
        filter.approval === 'pending'
          ? `a.state = 'pending' AND a.expires_at > ${p(now)}`
          : filter.approval === 'expired'
            ? `(a.state = 'expired' OR (a.state = 'pending' AND a.expires_at <= ${p(now)}))`
            : `a.state = ${p(filter.approval)}`;
      where.push(`EXISTS (SELECT 1 FROM approvals a WHERE ${APPROVAL_SESSION('a.')} = s.id AND ${state})`);
    }
    const sql = `SELECT ${SESSION_COLUMNS} FROM sessions s ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY s.last_call_at DESC, s.id LIMIT ${p(limit + 1)}`;
    const res = await this.#pool.query<RecordRow>(sql, values);
    const rows = res.rows.map(toSessionRecord);
    const more = rows.length > limit;
    const sessions = more ? rows.slice(0, limit) : rows;
    const last = sessions.at(-1);
    return { sessions, next: more && last !== undefined ? { lastCallAt: last.lastCallAt, sessionId: last.sessionId } : null };
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    const res = await this.#pool.query<RecordRow>({ name: 'aigov_get_session', text: `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE s.id = $1`, values: [sessionId] });
    const row = res.rows[0];
    return row === undefined ? null : toSessionRecord(row);
  }

  async getSessionDetail(sessionId: string): Promise<SessionDetailRecord | null> {
    return this.#snapshot(async (db) => {
      const head = await db.query({ name: 'aigov_get_session', text: `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE s.id = $1`, values: [sessionId] });
      if (head.rows[0] === undefined) return null;
      const session = toSessionRecord(head.rows[0]);
      const calls = await listCalls(db, sessionId);
      const events: Record<string, StreamEventRecord[]> = {};
      const res = await db.query({
        name: 'aigov_session_events',
        text: 'SELECT e.call_id, e.offset_ms, e.raw FROM stream_events e JOIN calls c ON c.id = e.call_id WHERE c.session_id = $1 ORDER BY e.call_id, e.seq',
        values: [sessionId],
      });
      for (const row of res.rows) (events[String(row['call_id'])] ??= []).push(toStreamEvent(row));
      const chunks = await chunksFor(db, sessionId, calls);
      const approvals = await sessionApprovals(db, sessionId, calls.flatMap((c) => approvalIdsInDecisions(c.decisions)));
      return { session, calls, events, approvals, ...(chunks === null ? {} : { chunks }) };
    });
  }

  async listSessionApprovals(sessionId: string, approvalIds: readonly string[]): Promise<ApprovalRecord[]> {
    return sessionApprovals(this.#pool, sessionId, approvalIds);
  }

  async getRawCopies(sessionId: string): Promise<Record<string, SealedRawCopy>> {
    const res = await this.#pool.query<RecordRow>({
      name: 'aigov_raw_copies',
      text: 'SELECT r.call_id, r.key_id, r.sealed FROM raw_copies r JOIN calls c ON c.id = r.call_id WHERE c.session_id = $1',
      values: [sessionId],
    });
    const copies: Record<string, SealedRawCopy> = {};
    for (const row of res.rows) {
      const sealed = row['sealed'];
      if (!(sealed instanceof Uint8Array)) throw new Error('recording store: a raw copy is not bytea');
      copies[str(row['call_id'])] = { keyId: str(row['key_id']), sealed: new Uint8Array(sealed) };
    }
    return copies;
  }

  /** The usage report (pg-usage-reads.ts): its rows and total from one snapshot. */
  async usageReport(query: UsageQuery): Promise<UsageReport> {
    return this.#snapshot((db) => pgUsageReport(db, query));
  }

  /** Runs `read` in one read-only snapshot on one connection. */
  async #snapshot<T>(read: (db: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const value = await read(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: do not hand it to the next read
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** Approvals of the session, plus those named by id; oldest first, each once. */
async function sessionApprovals(db: Queryable, sessionId: string, ids: readonly string[]): Promise<ApprovalRecord[]> {
  const res = await db.query({
    name: 'aigov_session_approvals',
    text: `SELECT record FROM approvals WHERE ${APPROVAL_SESSION('')} = $1 OR id = ANY($2::text[])`,
    values: [sessionId, [...ids]],
  });
  return sortApprovals(res.rows.map((row) => JSON.parse(str(row['record'])) as ApprovalRecord));
}

async function listCalls(db: Queryable, sessionId: string): Promise<CallRecord[]> {
  const res = await db.query({ name: 'aigov_list_calls', text: 'SELECT * FROM calls WHERE session_id = $1 ORDER BY started_at, rec', values: [sessionId] });
  return res.rows.map(toCallRecord);
}

/** The chunks of the session, when one of `calls` has its body stored as chunks. */
async function chunksFor(db: Queryable, sessionId: string, calls: readonly CallRecord[]): Promise<Map<number, StoredChunk> | null> {
  if (!calls.some((c) => c.requestRef !== undefined)) return null;
  const res = await db.query({ name: 'aigov_session_chunks', text: 'SELECT id, kind, text FROM body_chunks WHERE session_id = $1', values: [sessionId] });
  const chunks = new Map<number, StoredChunk>();
  for (const row of res.rows) chunks.set(num(row['id']), { kind: num(row['kind']) === NODE ? NODE : LEAF, text: str(row['text']) });
  return chunks;
}
