/**
 * The read-only queries of the SQLite recording store (the sessions API, replay, tests), run by
 * the reader thread (reader-worker.ts) on its own read-only connection, beside the writer.
 *
 * Each read runs in one read transaction, so a read made of several statements (a session's
 * detail: the session, its calls, their events, its approvals) sees one snapshot even while the
 * writer commits in between. Statements are prepared on first use.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ApprovalRecord } from '../../core/approvals/approval.ts';
import type {
  CallRecord,
  SealedRawCopy,
  SessionCursor,
  SessionDetailRecord,
  SessionFilter,
  SessionPage,
  SessionRecord,
  StreamEventRecord,
} from '../recording-store.ts';
import { approvalIdsInDecisions } from '../recording-store.ts';
import { chargeColumns, num, str, toCallRecord, toChargeRow, toSessionRecord, toSessionSummary, toStreamEvent } from '../record-rows.ts';
import { sortApprovals } from '../session-approvals.ts';
import { UsageReads } from './usage-reads.ts';
import type { ReadOp } from './worker-protocol.ts';
import { LEAF, NODE, type StoredChunk } from '../../core/recording/request-chunks.ts';

type Statements = Record<'listSessions' | 'listSessionsBySubject' | 'getCall' | 'listCalls' | 'getEvents' | 'rawCopies' | 'chunks' | 'charges', StatementSync>;

/**
 * Calls as the reader thread answers them: a call whose body is stored as chunks has
 * `requestBody` '' and `requestRef` (its root chunk); `chunks` holds the chunks of its session
 * (null when no call needs them). The main thread rebuilds the bodies (sqlite-store.ts).
 */
export interface CallsRead {
  readonly calls: CallRecord[];
  readonly chunks: Map<number, StoredChunk> | null;
}

export class StoreReads {
  readonly #db: DatabaseSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  #stmt: Statements | null = null;
  #sessions: SessionReads | null = null;
  #usage: UsageReads | null = null;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#begin = db.prepare('BEGIN');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
  }

  /** Answers one read, in one read transaction (one snapshot). */
  read(read: ReadOp): unknown {
    this.#begin.run();
    try {
      const value = this.#answer(read);
      this.#commit.run();
      return value;
    } catch (err) {
      try {
        if (this.#db.isTransaction) this.#rollback.run();
      } catch {
        // the original error is the one to report
      }
      throw err;
    }
  }

  #statements(): Statements {
    const db = this.#db;
    return (this.#stmt ??= {
      listSessions: db.prepare(`
        SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions
        ORDER BY last_call_at DESC, id LIMIT ?`),
      listSessionsBySubject: db.prepare(`
        SELECT id, subject, email, started_at, last_call_at, call_count FROM sessions
        WHERE subject = ? ORDER BY last_call_at DESC, id LIMIT ?`),
      getCall: db.prepare('SELECT * FROM calls WHERE id = ?'),
      listCalls: db.prepare('SELECT * FROM calls WHERE session_id = ? ORDER BY started_at, rowid'),
      getEvents: db.prepare('SELECT offset_ms, raw FROM stream_events WHERE call_id = ? ORDER BY seq'),
      rawCopies: db.prepare('SELECT r.call_id, r.key_id, r.sealed FROM raw_copies r JOIN calls c ON c.id = r.call_id WHERE c.session_id = ?'),
      chunks: db.prepare('SELECT id, kind, text FROM body_chunks WHERE session_id = ?'),
      charges: db.prepare(`
        SELECT subject, email, groups, provider, provider_kind, model, (started_at / 60000) * 60000 AS minute,
          ${chargeColumns((path) => `json_extract(usage, '$.${path}')`)}
        FROM calls WHERE started_at >= ? AND usage IS NOT NULL
        GROUP BY subject, email, groups, provider, provider_kind, model, minute`),
    });
  }

  /** The chunks of the session, when one of `calls` has its body stored as chunks. */
  #chunksFor(sessionId: string, calls: readonly CallRecord[]): Map<number, StoredChunk> | null {
    if (!calls.some((c) => c.requestRef !== undefined)) return null;
    const chunks = new Map<number, StoredChunk>();
    for (const row of this.#statements().chunks.iterate(sessionId)) {
      chunks.set(num(row['id']), { kind: num(row['kind']) === NODE ? NODE : LEAF, text: str(row['text']) });
    }
    return chunks;
  }

  #answer(read: ReadOp): unknown {
    const s = this.#statements();
    const sessions = (this.#sessions ??= new SessionReads(this.#db));
    switch (read.op) {
      case 'listSessions': {
        const rows = read.subject === null ? s.listSessions.all(read.limit) : s.listSessionsBySubject.all(read.subject, read.limit);
        return rows.map(toSessionSummary);
      }
      case 'getCall': {
        const row = s.getCall.get(read.callId);
        if (row === undefined) return null;
        const call = toCallRecord(row);
        return { calls: [call], chunks: this.#chunksFor(call.sessionId, [call]) } satisfies CallsRead;
      }
      case 'listCalls': {
        const calls = s.listCalls.all(read.sessionId).map(toCallRecord);
        return { calls, chunks: this.#chunksFor(read.sessionId, calls) } satisfies CallsRead;
      }
      case 'getStreamEvents':
        return s.getEvents.all(read.callId).map(toStreamEvent);
      case 'querySessions':
        return sessions.query(read.filter, read.limit, read.cursor, Date.now());
      case 'getSession':
        return sessions.session(read.sessionId);
      case 'getSessionDetail': {
        const session = sessions.session(read.sessionId);
        if (session === null) return null;
        const calls = s.listCalls.all(read.sessionId).map(toCallRecord);
        const events: Record<string, StreamEventRecord[]> = {};
        for (const call of calls) {
          const rows = s.getEvents.all(call.callId);
          if (rows.length > 0) events[call.callId] = rows.map(toStreamEvent);
        }
        const approvalIds = calls.flatMap((c) => approvalIdsInDecisions(c.decisions));
        const chunks = this.#chunksFor(read.sessionId, calls);
        return { session, calls, events, approvals: sessions.approvals(read.sessionId, approvalIds), ...(chunks === null ? {} : { chunks }) } satisfies SessionDetailRecord;
      }
      case 'listSessionApprovals':
        return sessions.approvals(read.sessionId, read.approvalIds);
      case 'chargesSince':
        return s.charges.all(read.since).map(toChargeRow);
      case 'getRawCopies': {
        const copies: Record<string, SealedRawCopy> = {};
        for (const row of s.rawCopies.all(read.sessionId)) {
          const sealed = row['sealed'];
          if (!(sealed instanceof Uint8Array)) throw new Error('recording store: a raw copy is not a blob');
          copies[str(row['call_id'])] = { keyId: str(row['key_id']), sealed };
        }
        return copies;
      }
      case 'usageReport':
        return (this.#usage ??= new UsageReads(this.#db)).report(read.query);
    }
  }
}

// ── rows (src/store/record-rows.ts: the same mapping as the PostgreSQL store's) ─────────────

export { num, str };

// ── session queries (reads) ─────────────────────────────────────────────────────────────────

const SESSION_COLUMNS = 's.id, s.subject, s.issuer, s.email, s.started_at, s.last_call_at, s.call_count';

/**
 * The session queries of the sessions API: a filtered, keyset-paginated list (newest activity
 * first, on the sessions_by_last_call / sessions_by_subject indexes; each call-level filter is an
 * EXISTS over calls_by_session, so a page stops scanning once it is full), one session, its
 * approvals. One prepared statement per combination of filters.
 */
class SessionReads {
  readonly #db: DatabaseSync;
  readonly #lists = new Map<string, StatementSync>();
  readonly #session: StatementSync;
  readonly #approvalsOfSession: StatementSync;
  readonly #approvalsById: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#session = db.prepare(`SELECT ${SESSION_COLUMNS} FROM sessions s WHERE s.id = ?`);
    this.#approvalsOfSession = db.prepare("SELECT record FROM approvals WHERE json_extract(record, '$.sessionId') = ?");
    this.#approvalsById = db.prepare('SELECT record FROM approvals WHERE id IN (SELECT value FROM json_each(?))');
  }

  query(filter: SessionFilter, limit: number, cursor: SessionCursor | null, now: number): SessionPage {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: limit + 1 };
    if (filter.owner !== undefined) {
      where.push('s.subject = $ownerSubject AND s.issuer = $ownerIssuer');
      params['ownerSubject'] = filter.owner.subject;
      params['ownerIssuer'] = filter.owner.issuer;
    }
    if (filter.user !== undefined) {
      where.push('(s.subject = $user OR s.email = $user COLLATE NOCASE)');
      params['user'] = filter.user;
    }
    if (filter.since !== undefined) {
      where.push('s.last_call_at >= $since');
      params['since'] = filter.since;
    }
    if (filter.until !== undefined) {
      where.push('s.last_call_at <= $until');
      params['until'] = filter.until;
    }
    if (cursor !== null) {
      where.push('(s.last_call_at < $cursorAt OR (s.last_call_at = $cursorAt AND s.id > $cursorId))');
      params['cursorAt'] = cursor.lastCallAt;
      params['cursorId'] = cursor.sessionId;
    }
    if (filter.provider !== undefined) {
      where.push('EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND c.provider = $provider)');
      params['provider'] = filter.provider;
    }
    if (filter.model !== undefined) {
      where.push('EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND c.model = $model)');
      params['model'] = filter.model;
    }
    if (filter.action !== undefined) {
      // decisions is our own JSON.stringify output: `"action":"<a>"` appears exactly when a
      // decision has that action (inside a string value the quotes would be escaped).
      where.push('EXISTS (SELECT 1 FROM calls c WHERE c.session_id = s.id AND instr(c.decisions, $actionNeedle) > 0)');
      params['actionNeedle'] = `"action":${JSON.stringify(filter.action)}`;
    }
    if (filter.approval !== undefined) {
      // A pending approval past its expiry is expired (effectiveState), whether or not the
      // gateway has written that down yet.
      const state =
        filter.approval === 'pending'
          ? "a.state = 'pending' AND a.expires_at > $now"
          : filter.approval === 'expired'
            ? "(a.state = 'expired' OR (a.state = 'pending' AND a.expires_at <= $now))"
            : 'a.state = $approval';
      where.push(`EXISTS (SELECT 1 FROM approvals a WHERE json_extract(a.record, '$.sessionId') = s.id AND ${state})`);
      if (filter.approval === 'pending' || filter.approval === 'expired') params['now'] = now;
      else params['approval'] = filter.approval;
    }
    const sql = `SELECT ${SESSION_COLUMNS} FROM sessions s ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY s.last_call_at DESC, s.id LIMIT $limit`;
    let statement = this.#lists.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#lists.set(sql, statement);
    }
    const rows = statement.all(params).map(toSessionRecord);
    const more = rows.length > limit;
    const sessions = more ? rows.slice(0, limit) : rows;
    const last = sessions.at(-1);
    return { sessions, next: more && last !== undefined ? { lastCallAt: last.lastCallAt, sessionId: last.sessionId } : null };
  }

  session(sessionId: string): SessionRecord | null {
    const row = this.#session.get(sessionId);
    return row === undefined ? null : toSessionRecord(row);
  }

  /** Approvals of the session, plus those named by id; oldest first, each once. */
  approvals(sessionId: string, ids: readonly string[]): ApprovalRecord[] {
    const rows = this.#approvalsOfSession.all(sessionId);
    if (ids.length > 0) rows.push(...this.#approvalsById.all(JSON.stringify(ids)));
    return sortApprovals(rows.map((row) => JSON.parse(str(row['record'])) as ApprovalRecord));
  }
}
