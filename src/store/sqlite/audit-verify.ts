/**
 * `aigov audit verify` over an SQLite recording database, opened read-only: the rows of the file
 * for the checks of audit-verify-core.ts (synchronous: node:sqlite answers every read at once).
 *
 * Speed: rows are read with three cursors in step (audit_log by seq, calls and stream_events
 * by rowid — the order the writer inserted them in, which is the entries' order), so the common
 * case needs no per-entry index lookup; a row out of step falls back to a lookup by key.
 * The SQL text never contains values.
 */
import { DatabaseSync, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { ACCESS_COLUMNS, APPROVAL_COLUMNS, REQUEST_COLUMNS, RESULT_COLUMNS } from '../../core/audit/chain.ts';
import { callsUsingChunk, firstOutside, storedChunk, type ChunkRow, type ChunkSource } from '../audit-verify-chunks.ts';
import {
  CALL_ORDER,
  ENTRY_SELECT,
  runSync,
  verifyChain,
  type AuditSource,
  type AuditVerifyOptions,
  type AuditVerifyReport,
  type CheckpointRow,
  type Fail,
  type PassState,
  type Step,
} from '../audit-verify-core.ts';

export type { AuditProblem, AuditProblemKind, AuditVerifyOptions, AuditVerifyReport } from '../audit-verify-core.ts';

type SqlRow = readonly SQLOutputValue[];

/** calls columns as fetched (CALL_FIELDS): the request's, the result's, rowid, request_parts. */
const CALL_SELECT = `${REQUEST_COLUMNS.join(', ')}, ${RESULT_COLUMNS.join(', ')}, rowid`;

/** Prepares a statement whose rows come back as arrays (no object per row). */
function prepareArrays(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReturnArrays(true);
  return statement;
}

/** A cursor that can look at its next row without taking it. */
class Peekable {
  readonly #it: Iterator<SqlRow>;
  #next: SqlRow | undefined | null = null; // null: not fetched yet
  constructor(statement: StatementSync, ...params: (number | Record<string, number>)[]) {
    this.#it = (statement.iterate(...(params as number[])) as unknown as Iterable<SqlRow>)[Symbol.iterator]();
  }
  peek(): SqlRow | undefined {
    if (this.#next === null) {
      const r = this.#it.next();
      this.#next = r.done ? undefined : r.value;
    }
    return this.#next;
  }
  take(): void {
    this.#next = null;
  }
}

export interface LegacyRows {
  readonly callsRowid: number;
  readonly callsCount: number;
  readonly eventsRowid: number;
  readonly eventsCount: number;
  readonly accessId: number;
  readonly accessCount: number;
  readonly rawRowid: number;
  readonly rawCount: number;
  readonly approvalsRowid: number;
  readonly approvalsCount: number;
}

/**
 * Where the rows from before the audit chain end (migration 4; raw copies and approvals:
 * migration 6); all 0 on a database created with it.
 */
export function readLegacy(db: DatabaseSync): LegacyRows {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'audit_legacy'").get() !== undefined;
  const row = exists ? db.prepare('SELECT * FROM audit_legacy LIMIT 1').get() : undefined;
  const n = (key: string): number => Math.max(0, Math.floor(Number(row?.[key] ?? 0)));
  return {
    callsRowid: n('calls_rowid'),
    callsCount: n('calls_count'),
    eventsRowid: n('events_rowid'),
    eventsCount: n('events_count'),
    accessId: n('access_id'),
    accessCount: n('access_count'),
    rawRowid: n('raw_rowid'),
    rawCount: n('raw_count'),
    approvalsRowid: n('approvals_rowid'),
    approvalsCount: n('approvals_count'),
  };
}

/** Verifies the database at `file`. Throws only when it cannot be read at all. */
export function verifyAuditDatabase(file: string, options: AuditVerifyOptions = {}): AuditVerifyReport {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return verifyAudit(db, options);
  } finally {
    db.close();
  }
}

/**
 * Verifies over one read transaction: every query sees the same snapshot, so a gateway writing
 * meanwhile (its rows and their entries commit together) never looks like a row without an
 * entry or an entry without its row.
 */
export function verifyAudit(db: DatabaseSync, options: AuditVerifyOptions = {}): AuditVerifyReport {
  if (db.isTransaction) return runSync(verifyChain(new SqliteAuditSource(db, options.since ?? null), options));
  db.exec('BEGIN');
  try {
    return runSync(verifyChain(new SqliteAuditSource(db, options.since ?? null), options));
  } finally {
    if (db.isTransaction) db.exec('ROLLBACK');
  }
}

class SqliteChunkSource implements ChunkSource {
  readonly #db: DatabaseSync;
  readonly present: boolean;
  readonly #range: StatementSync | null;
  readonly #byId: StatementSync | null;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.present = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'body_chunks'").get() !== undefined;
    this.#range = this.present ? db.prepare('SELECT id, session_id, kind, lower(hex(hash)) AS hash, text FROM body_chunks WHERE id BETWEEN ? AND ? ORDER BY id') : null;
    this.#byId = this.present ? db.prepare('SELECT id, session_id, kind, lower(hex(hash)) AS hash, text FROM body_chunks WHERE id = ?') : null;
  }

  *range(first: number, last: number): Iterable<ChunkRow> {
    for (const raw of this.#range!.iterate(first, last)) yield toChunkRow(raw);
  }

  byId(id: number): ChunkRow | undefined {
    const raw = this.#byId!.get(id);
    return raw === undefined ? undefined : toChunkRow(raw);
  }

  callsUsing(sessionId: string, chunkId: number): { count: number; first: string[] } {
    const db = this.#db;
    const chunks = new Map(db.prepare('SELECT id, kind, text FROM body_chunks WHERE session_id = ?').all(sessionId).map((r) => [Number(r['id']), storedChunk(Number(r['kind']), String(r['text']))] as const));
    const calls = db.prepare('SELECT id, request_parts FROM calls WHERE session_id = ? AND request_parts IS NOT NULL ORDER BY started_at, rowid').iterate(sessionId);
    return callsUsingChunk(chunks, mapRows(calls, (r) => ({ id: String(r['id']), parts: String(r['request_parts']) })), chunkId);
  }

  count(): number {
    return Number(this.#db.prepare('SELECT count(*) AS n FROM body_chunks').get()?.['n'] ?? 0);
  }

  countFrom(floor: number): number {
    return Number(this.#db.prepare('SELECT count(*) AS n FROM body_chunks WHERE id >= ?').get(floor)?.['n'] ?? 0);
  }

  firstUncovered(floor: number, ranges: readonly (readonly [number, number])[]): { id: number; session: string } | undefined {
    const rows = this.#db.prepare('SELECT id, session_id FROM body_chunks WHERE id >= ? ORDER BY id').iterate(floor);
    return firstOutside(mapRows(rows, (r) => ({ id: Number(r['id']), session: String(r['session_id']) })), ranges);
  }
}

function* mapRows<T>(rows: Iterable<Record<string, SQLOutputValue>>, map: (row: Record<string, SQLOutputValue>) => T): Iterable<T> {
  for (const row of rows) yield map(row);
}

function toChunkRow(raw: Record<string, SQLOutputValue>): ChunkRow {
  return { id: Number(raw['id']), session: String(raw['session_id']), kind: Number(raw['kind']), hash: String(raw['hash']), text: String(raw['text']) };
}

class SqliteAuditSource implements AuditSource {
  readonly #db: DatabaseSync;
  readonly #legacy: LegacyRows;
  readonly #entries: Iterator<SqlRow>;
  readonly #callsCursor: Peekable;
  readonly #eventsCursor: Peekable;
  readonly #callById: StatementSync;
  readonly #eventsRange: StatementSync;
  readonly #accessById: StatementSync;
  readonly #rawById: StatementSync;
  readonly #approvalById: StatementSync;
  readonly #seqOfHash: StatementSync;
  readonly chunks: SqliteChunkSource;
  /** Calls whose request entry found its row by key, out of step (rare): the cursor may meet the row later. */
  readonly #pointMatched = new Set<string>();
  /** Call rows met out of step before a later call's row: cut by a purge, or inserted behind the gateway. */
  readonly #skippedCalls: string[] = [];
  #callsInStep = true;
  #eventsInStep = true;

  constructor(db: DatabaseSync, since: number | null) {
    this.#db = db;
    const selectEntries = prepareArrays(
      db,
      since === null
        ? `SELECT ${ENTRY_SELECT} FROM audit_log ORDER BY seq`
        : `SELECT ${ENTRY_SELECT} FROM audit_log WHERE seq >= (SELECT min(seq) FROM audit_log WHERE at >= $since) ORDER BY seq`,
    );
    this.#entries = ((since === null ? selectEntries.iterate() : selectEntries.iterate({ since })) as unknown as Iterable<SqlRow>)[Symbol.iterator]();
    const legacy = readLegacy(db);
    this.#legacy = legacy;
    // Databases from before migration 9 have no request_parts column (every body whole).
    const hasParts = db.prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'request_parts'").get() !== undefined;
    const callSelect = `${CALL_SELECT}, ${hasParts ? 'request_parts' : 'NULL'}`;
    this.chunks = new SqliteChunkSource(db);
    this.#callsCursor = new Peekable(prepareArrays(db, `SELECT ${callSelect} FROM calls WHERE rowid > ? ORDER BY rowid`), legacy.callsRowid);
    this.#eventsCursor = new Peekable(prepareArrays(db, 'SELECT call_id, seq, offset_ms, raw FROM stream_events WHERE rowid > ? ORDER BY rowid'), legacy.eventsRowid);
    this.#callById = prepareArrays(db, `SELECT ${callSelect} FROM calls WHERE id = ?`);
    this.#eventsRange = prepareArrays(db, 'SELECT call_id, seq, offset_ms, raw FROM stream_events WHERE call_id = ? AND seq BETWEEN ? AND ? ORDER BY seq');
    this.#accessById = prepareArrays(db, `SELECT ${ACCESS_COLUMNS.join(', ')} FROM access_log WHERE id = ?`);
    this.#rawById = prepareArrays(db, 'SELECT call_id, key_id, sealed FROM raw_copies WHERE call_id = ?');
    this.#approvalById = prepareArrays(db, `SELECT ${APPROVAL_COLUMNS.join(', ')} FROM approvals WHERE id = ?`);
    this.#seqOfHash = db.prepare('SELECT seq FROM audit_log WHERE hash = ? LIMIT 1');
  }

  checkpoints(): CheckpointRow[] {
    return this.#db
      .prepare('SELECT id, seq, hash, at, kind, key_id, signature FROM audit_checkpoints ORDER BY seq, id')
      .all()
      .map((r): CheckpointRow => ({
        id: Number(r['id']),
        seq: Number(r['seq']),
        hash: String(r['hash']),
        at: Number(r['at']),
        kind: String(r['kind']) as CheckpointRow['kind'],
        keyId: r['key_id'] === null ? null : String(r['key_id']),
        signature: r['signature'] === null ? null : String(r['signature']),
      }));
  }

  nextEntry(): SqlRow | undefined {
    const r = this.#entries.next();
    return r.done ? undefined : r.value;
  }

  requestRow(ref: string): SqlRow | undefined {
    const cursor = this.#callsCursor;
    let row = cursor.peek();
    if (row !== undefined && row[0] === ref) {
      cursor.take();
      return row;
    }
    const own = this.#get(this.#callById, ref);
    // Rows inserted before this call's that no request entry took: set aside, judged at the end.
    while (own !== undefined && row !== undefined && row[0] !== ref && Number(row[CALL_ORDER]) < Number(own[CALL_ORDER])) {
      this.#skippedCalls.push(String(row[0]));
      cursor.take();
      row = cursor.peek();
    }
    if (row !== undefined && row[0] === ref) {
      cursor.take();
      return row;
    }
    if (row !== undefined) this.#callsInStep = false;
    this.#pointMatched.add(ref);
    return own;
  }

  callRow(ref: string): SqlRow | undefined {
    return this.#get(this.#callById, ref);
  }

  events(ref: string, first: number, last: number, feed: (seq: number, offsetMs: number, raw: string) => void): number {
    const cursor = this.#eventsCursor;
    let expectSeq = first;
    const head = cursor.peek();
    if (head !== undefined && head[0] === ref && Number(head[1]) === first) {
      // In step: take rows while they continue this batch.
      for (;;) {
        const e = cursor.peek();
        if (e === undefined || e[0] !== ref || Number(e[1]) !== expectSeq || expectSeq > last) break;
        cursor.take();
        feed(expectSeq, Number(e[2]), String(e[3]));
        expectSeq++;
      }
    } else {
      if (head !== undefined) this.#eventsInStep = false;
      for (const e of this.#eventsRange.iterate(ref, first, last) as unknown as Iterable<SqlRow>) {
        if (Number(e[1]) !== expectSeq) break;
        feed(expectSeq, Number(e[2]), String(e[3]));
        expectSeq++;
      }
    }
    return expectSeq;
  }

  accessRow(id: number): SqlRow | undefined {
    return this.#get(this.#accessById, id);
  }

  rawRow(callId: string): SqlRow | undefined {
    return this.#get(this.#rawById, callId);
  }

  approvalRows(ids: readonly string[]): Map<string, SqlRow> {
    const rows = new Map<string, SqlRow>();
    for (const id of ids) {
      const row = this.#get(this.#approvalById, id);
      if (row !== undefined) rows.set(id, row);
    }
    return rows;
  }

  seqOfHash(hash: string): number | undefined {
    const row = this.#seqOfHash.get(hash);
    return row === undefined ? undefined : Number(row['seq']);
  }

  sessionOwnerMismatch(): { sessionId: string; callId: string } | undefined {
    const owner = this.#db
      .prepare('SELECT s.id AS sid, c.id AS cid FROM sessions s JOIN calls c ON c.session_id = s.id WHERE c.subject <> s.subject OR c.issuer <> s.issuer LIMIT 1')
      .get();
    return owner === undefined ? undefined : { sessionId: String(owner['sid']), callId: String(owner['cid']) };
  }

  #get(statement: StatementSync, ...params: (string | number)[]): SqlRow | undefined {
    return statement.get(...params) as unknown as SqlRow | undefined;
  }

  *coverage(state: PassState, fail: Fail): Step<void> {
    const db = this.#db;
    const legacy = this.#legacy;
    const { firstSeq, cutCalls, coveredRaw, chunks, warnings } = state;
    // A call row without its request entry is fine only where a purge cut the chain before
    // it and a remaining entry names the call (see audit-maintenance.ts).
    let cutCovered = 0;
    if (this.#callsInStep) {
      // Rows after the last one a request entry took: none, unless cut by a purge or forged.
      for (let row = this.#callsCursor.peek(); row !== undefined; row = this.#callsCursor.peek()) {
        this.#skippedCalls.push(String(row[0]));
        this.#callsCursor.take();
      }
    }
    for (const id of this.#skippedCalls) {
      if (this.#pointMatched.has(id)) continue; // covered: its request entry found it by key
      if ((firstSeq ?? 1) > 1 && cutCalls.has(id)) {
        cutCovered++;
        continue;
      }
      fail('unrecorded_row', null, 'calls', id, `call ${id} has no audit entry: it was inserted behind the gateway`);
    }
    // Rows from before the database had the audit chain (migration 4 counted them): never
    // covered; only retention may lower their number.
    const legacyNow = {
      calls: Number(db.prepare('SELECT count(*) AS n FROM calls WHERE rowid <= ?').get(legacy.callsRowid)?.['n'] ?? 0),
      events: Number(db.prepare('SELECT count(*) AS n FROM stream_events WHERE rowid <= ?').get(legacy.eventsRowid)?.['n'] ?? 0),
      access: Number(db.prepare('SELECT count(*) AS n FROM access_log WHERE id <= ?').get(legacy.accessId)?.['n'] ?? 0),
    };
    if (legacyNow.calls > legacy.callsCount) {
      // With no old calls at all, the row is the one added; otherwise it hides among them.
      const first = legacy.callsCount === 0 ? db.prepare('SELECT id FROM calls WHERE rowid <= ? ORDER BY rowid LIMIT 1').get(legacy.callsRowid)?.['id'] : undefined;
      if (first !== undefined) fail('unrecorded_row', null, 'calls', String(first), `call ${String(first)} has no audit entry: it was inserted behind the gateway`);
    }
    if (legacyNow.calls > legacy.callsCount || legacyNow.events > legacy.eventsCount || legacyNow.access > legacy.accessCount) {
      fail('unrecorded_row', null, 'calls', null, `rows were added among those recorded before the audit trail existed (calls ${legacyNow.calls}/${legacy.callsCount}, events ${legacyNow.events}/${legacy.eventsCount}, access ${legacyNow.access}/${legacy.accessCount} now/at the upgrade)`);
    }
    if (legacyNow.calls + legacyNow.events + legacyNow.access > 0) {
      warnings.push(`${legacyNow.calls} calls, ${legacyNow.events} stream events and ${legacyNow.access} access rows were recorded before this database had the audit trail: they are not covered`);
    }
    const callCount = Number(db.prepare('SELECT count(*) AS n FROM calls').get()?.['n'] ?? 0) - legacyNow.calls;
    if (callCount > state.coveredCalls + cutCovered) {
      const extra = db.prepare("SELECT id FROM calls WHERE rowid > ? AND id NOT IN (SELECT ref FROM audit_log WHERE kind NOT IN ('access', 'approval')) ORDER BY rowid LIMIT 1").get(legacy.callsRowid)?.['id'];
      const id = extra === undefined ? '?' : String(extra);
      fail('unrecorded_row', null, 'calls', id, `call ${id} has no audit entry: it was inserted behind the gateway (${callCount - state.coveredCalls - cutCovered} such calls)`);
    }
    const eventCount = Number(db.prepare('SELECT count(*) AS n FROM stream_events').get()?.['n'] ?? 0) - legacyNow.events;
    if (eventCount > state.coveredEvents) {
      const extra = this.#eventsInStep ? this.#eventsCursor.peek() : undefined;
      const where = extra === undefined ? '' : ` (first: call ${String(extra[0])}, event ${Number(extra[1])})`;
      fail('unrecorded_row', null, 'stream_events', extra === undefined ? null : String(extra[0]), `${eventCount - state.coveredEvents} stream events have no audit entry${where}`);
    }
    const accessCount = Number(db.prepare('SELECT count(*) AS n FROM access_log').get()?.['n'] ?? 0) - legacyNow.access;
    if (accessCount > state.coveredAccess) {
      const extra = db.prepare("SELECT id FROM access_log WHERE id > ? AND CAST(id AS TEXT) NOT IN (SELECT ref FROM audit_log WHERE kind = 'access') ORDER BY id LIMIT 1").get(legacy.accessId);
      const id = extra === undefined ? '?' : String(extra['id']);
      fail('unrecorded_row', null, 'access_log', id, `access_log row ${id} has no audit entry`);
    }
    // Raw copies: each has its entry, but a purge may have cut off that of a call it cut through.
    const rawLegacyNow = Number(db.prepare('SELECT count(*) AS n FROM raw_copies WHERE rowid <= ?').get(legacy.rawRowid)?.['n'] ?? 0);
    if (rawLegacyNow > legacy.rawCount) {
      fail('unrecorded_row', null, 'raw_copies', null, `raw copies were added among those stored before the audit chain covered them (${rawLegacyNow}/${legacy.rawCount} now/at the upgrade)`);
    }
    const rawCount = Number(db.prepare('SELECT count(*) AS n FROM raw_copies WHERE rowid > ?').get(legacy.rawRowid)?.['n'] ?? 0);
    if (rawCount > coveredRaw.size) {
      for (const r of db.prepare('SELECT call_id FROM raw_copies WHERE rowid > ? ORDER BY rowid').iterate(legacy.rawRowid)) {
        const id = String(r['call_id']);
        if (coveredRaw.has(id) || ((firstSeq ?? 1) > 1 && cutCalls.has(id))) continue;
        fail('unrecorded_row', null, 'raw_copies', id, `the raw copy of call ${id} has no audit entry: it was inserted or moved there behind the gateway`);
      }
    }
    // Approvals: every row from after the upgrade has an entry.
    const approvalsLegacyNow = Number(db.prepare('SELECT count(*) AS n FROM approvals WHERE rowid <= ?').get(legacy.approvalsRowid)?.['n'] ?? 0);
    if (approvalsLegacyNow > legacy.approvalsCount) {
      fail('unrecorded_row', null, 'approvals', null, `approvals were added among those stored before the audit chain covered them (${approvalsLegacyNow}/${legacy.approvalsCount} now/at the upgrade)`);
    }
    for (const r of db.prepare('SELECT id FROM approvals WHERE rowid > ? ORDER BY rowid').iterate(legacy.approvalsRowid)) {
      const id = String(r['id']);
      if (!state.approvals.has(id)) fail('unrecorded_row', null, 'approvals', id, `approval ${id} has no audit entry: it was inserted behind the gateway`);
    }
    // Request chunks: each was added by a call whose request entry covers it.
    state.addRows(chunks.coveredCount);
    yield* chunks.finish((firstSeq ?? 1) > 1, fail);
    if (rawLegacyNow + approvalsLegacyNow > 0) {
      warnings.push(`${rawLegacyNow} raw copies and ${approvalsLegacyNow} approvals were stored before the audit chain covered them: they are not covered (an approval is, from its next change)`);
    }
  }
}
