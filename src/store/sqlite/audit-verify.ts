/**
 * `aigov audit verify` over an SQLite recording database, opened read-only.
 *
 * One pass over audit_log in seq order. For each entry, in this order:
 * 1. its seq follows the previous one (a gap: entries were deleted);
 * 2. its prev_hash is the previous entry's hash (else: if another entry has that hash the
 *    entries were reordered, otherwise the link was edited);
 * 3. its hash is recomputed from its own fields (else the entry itself was edited);
 * 4. its content hash is recomputed from the CURRENT rows it covers (else the rows changed,
 *    or are gone); for a request stored as chunks, from its chunk list and the chunks the call
 *    added, each checked against its SHA-256 key first, and every chunk its body names must be
 *    there (audit-verify-chunks.ts: a changed shared chunk is named with the calls it alters);
 * 5. every checkpoint at its seq names its hash, and a signed one verifies with the public key.
 * Then: checkpoints beyond the last entry (the tail was cut), rows (and request chunks) no entry covers (inserted
 * behind the gateway's back), and sessions whose owner no longer matches their calls'.
 * Verification stops at the FIRST problem and names it.
 *
 * Speed: rows are read with three cursors in step (audit_log by seq, calls and stream_events
 * by rowid — the order the writer inserted them in, which is the entries' order), so the common
 * case needs no per-entry index lookup; a row out of step falls back to a lookup by key.
 * The SQL text never contains values; problems name seqs, kinds and ids, never record contents.
 */
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import { DatabaseSync, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import {
  ACCESS_COLUMNS,
  APPROVAL_COLUMNS,
  checkpointPayload,
  encodeColumnValues,
  GENESIS_HASH,
  parseSpan,
  REQUEST_COLUMNS,
  RESULT_COLUMNS,
  startEventsContent,
  type CheckpointKind,
  type ColumnValue,
} from '../../core/audit/chain.ts';
import { bytesHash, linkHash, textHash, TextSink } from '../audit-hash.ts';
import { keyIdOfPublicKey } from './audit-keys.ts';
import { ChunkVerifier } from './audit-verify-chunks.ts';

export type AuditProblemKind =
  | 'content_changed'
  | 'row_missing'
  | 'entry_missing'
  | 'entry_altered'
  | 'order_broken'
  | 'anchor_missing'
  | 'checkpoint_mismatch'
  | 'signature_invalid'
  | 'unrecorded_row'
  | 'session_owner_changed';

export interface AuditProblem {
  readonly problem: AuditProblemKind;
  /** The audit entry concerned (for checkpoints: the seq they cover), when there is one. */
  readonly seq: number | null;
  /** request | result | events | access | raw | approval | checkpoint | calls | stream_events | raw_copies | approvals | sessions */
  readonly kind: string | null;
  /** The call id (also of a raw copy), access_log id, approval id, session id or checkpoint id concerned. */
  readonly ref: string | null;
  /** One sentence: what is wrong. Never record contents. */
  readonly detail: string;
}

export interface AuditVerifyReport {
  readonly ok: boolean;
  readonly problem: AuditProblem | null;
  readonly entries: number;
  /** Data rows whose content was recomputed: calls (request and result), stream events, access rows, raw copies, approvals (current row), request chunks. */
  readonly rows: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly checkpoints: { readonly total: number; readonly signed: number; readonly verified: number };
  /** The public key's id when signatures were checked, else null. */
  readonly keyId: string | null;
  /** Entries after the newest checkpoint whose signature verified (all of them when nothing was checked). */
  readonly unsignedTail: number;
  /**
   * The chain starts at a purge anchor that is not signed (written while the gateway had no key):
   * the purge it records cannot be told from someone deleting the oldest entries.
   */
  readonly unsignedAnchor: boolean;
  readonly warnings: readonly string[];
  readonly durationMs: number;
}

export interface AuditVerifyOptions {
  /** Checks checkpoint signatures with this Ed25519 public key; without one they are not checked. */
  readonly publicKey?: KeyObject | null;
  /** Only entries written at or after this time (epoch ms); the first one's link is taken as given. */
  readonly since?: number | null;
  /** Clock for durationMs. */
  readonly now?: () => number;
}

interface CheckpointRow {
  readonly id: number;
  readonly seq: number;
  readonly hash: string;
  readonly at: number;
  readonly kind: CheckpointKind;
  readonly keyId: string | null;
  readonly signature: string | null;
}

type Row = readonly SQLOutputValue[];

/** calls columns as fetched: the request's, then the result's (id again), so each is one slice; then rowid, request_parts. */
const CALL_SELECT = `${REQUEST_COLUMNS.join(', ')}, ${RESULT_COLUMNS.join(', ')}, rowid`;
const REQUEST_END = REQUEST_COLUMNS.length;
const RESULT_END = REQUEST_END + RESULT_COLUMNS.length;
const ROWID = RESULT_END;
const PARTS = ROWID + 1;
const SESSION_ID = REQUEST_COLUMNS.indexOf('session_id');

/** Prepares a statement whose rows come back as arrays (no object per row). */
function prepareArrays(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReturnArrays(true);
  return statement;
}

class Stop extends Error {
  readonly problem: AuditProblem;
  constructor(problem: AuditProblem) {
    super(problem.detail);
    this.problem = problem;
  }
}

function fail(problem: AuditProblemKind, seq: number | null, kind: string | null, ref: string | null, detail: string): never {
  throw new Stop({ problem, seq, kind, ref, detail });
}

/** A cursor that can look at its next row without taking it. */
class Peekable {
  readonly #it: Iterator<Row>;
  #next: Row | undefined | null = null; // null: not fetched yet
  constructor(statement: StatementSync, ...params: number[]) {
    this.#it = (statement.iterate(...params) as unknown as Iterable<Row>)[Symbol.iterator]();
  }
  peek(): Row | undefined {
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
  if (db.isTransaction) return verifyInSnapshot(db, options);
  db.exec('BEGIN');
  try {
    return verifyInSnapshot(db, options);
  } finally {
    if (db.isTransaction) db.exec('ROLLBACK');
  }
}

function verifyInSnapshot(db: DatabaseSync, options: AuditVerifyOptions): AuditVerifyReport {
  const now = options.now ?? Date.now;
  const started = now();
  const publicKey = options.publicKey ?? null;
  const keyId = publicKey === null ? null : keyIdOfPublicKey(publicKey);
  const since = options.since ?? null;
  const warnings: string[] = [];
  let entries = 0;
  let rows = 0;
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  let signed = 0;
  let verified = 0;
  let lastVerifiedSeq = -1;
  let unsignedAnchor = false;

  const checkpoints = db
    .prepare('SELECT id, seq, hash, at, kind, key_id, signature FROM audit_checkpoints ORDER BY seq, id')
    .all()
    .map((r): CheckpointRow => ({
      id: Number(r['id']),
      seq: Number(r['seq']),
      hash: String(r['hash']),
      at: Number(r['at']),
      kind: String(r['kind']) as CheckpointKind,
      keyId: r['key_id'] === null ? null : String(r['key_id']),
      signature: r['signature'] === null ? null : String(r['signature']),
    }));
  const bySeq = new Map<number, CheckpointRow[]>();
  for (const c of checkpoints) {
    const list = bySeq.get(c.seq);
    if (list === undefined) bySeq.set(c.seq, [c]);
    else list.push(c);
  }

  /** Checks a checkpoint's signature; returns whether it counts as signed evidence. */
  const checkSignature = (c: CheckpointRow): boolean => {
    if (c.signature === null || c.keyId === null) return false;
    signed++;
    if (publicKey === null) return false;
    if (c.keyId !== keyId) {
      fail('signature_invalid', c.seq, 'checkpoint', String(c.id), `checkpoint ${c.id} (${c.kind}, seq ${c.seq}) is signed by key ${c.keyId}, not by the given key ${keyId}`);
    }
    const payload = checkpointPayload({ seq: c.seq, hash: c.hash, at: c.at, kind: c.kind, keyId: c.keyId });
    let ok: boolean;
    try {
      ok = verifySignature(null, Buffer.from(payload), publicKey, Buffer.from(c.signature, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) fail('signature_invalid', c.seq, 'checkpoint', String(c.id), `checkpoint ${c.id} (${c.kind}, seq ${c.seq}): the signature does not verify`);
    verified++;
    lastVerifiedSeq = Math.max(lastVerifiedSeq, c.seq);
    return true;
  };

  const selectEntries = prepareArrays(
    db,
    since === null
      ? 'SELECT seq, kind, ref, span, at, content_hash, prev_hash, hash FROM audit_log ORDER BY seq'
      : 'SELECT seq, kind, ref, span, at, content_hash, prev_hash, hash FROM audit_log WHERE seq >= (SELECT min(seq) FROM audit_log WHERE at >= $since) ORDER BY seq',
  );
  const legacy = readLegacy(db);
  // Databases from before migration 9 have no request_parts column (every body whole).
  const hasParts = db.prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'request_parts'").get() !== undefined;
  const callSelect = `${CALL_SELECT}, ${hasParts ? 'request_parts' : 'NULL'}`;
  const chunks = new ChunkVerifier(db);
  const callsCursor = new Peekable(prepareArrays(db, `SELECT ${callSelect} FROM calls WHERE rowid > ? ORDER BY rowid`), legacy.callsRowid);
  const eventsCursor = new Peekable(prepareArrays(db, 'SELECT call_id, seq, offset_ms, raw FROM stream_events WHERE rowid > ? ORDER BY rowid'), legacy.eventsRowid);
  const callById = prepareArrays(db, `SELECT ${callSelect} FROM calls WHERE id = ?`);
  const eventsRange = prepareArrays(db, 'SELECT call_id, seq, offset_ms, raw FROM stream_events WHERE call_id = ? AND seq BETWEEN ? AND ? ORDER BY seq');
  const accessById = prepareArrays(db, `SELECT ${ACCESS_COLUMNS.join(', ')} FROM access_log WHERE id = ?`);
  const rawById = prepareArrays(db, 'SELECT call_id, key_id, sealed FROM raw_copies WHERE call_id = ?');
  const approvalById = prepareArrays(db, `SELECT ${APPROVAL_COLUMNS.join(', ')} FROM approvals WHERE id = ?`);
  const getRow = (statement: StatementSync, ...params: (string | number)[]): Row | undefined => statement.get(...params) as unknown as Row | undefined;
  const seqOfHash = db.prepare('SELECT seq FROM audit_log WHERE hash = ? LIMIT 1');

  /** Result content hashes of calls met at their request entry, until their result entry. */
  const pendingResults = new Map<string, { hash: string; status: string }>();
  /** Calls whose request entry found its row by key, out of step (rare): the cursor may meet the row later. */
  const pointMatched = new Set<string>();
  /** Calls named by a result or events entry whose request entry was not met (cut off by a purge). */
  const cutCalls = new Set<string>();
  /** Call rows met out of step before a later call's row: cut by a purge, or inserted behind the gateway. */
  const skippedCalls: string[] = [];
  let callsInStep = true;
  let eventsInStep = true;
  let coveredEvents = 0;
  let coveredCalls = 0;
  let coveredAccess = 0;
  /** Calls whose raw copy an entry covered. */
  const coveredRaw = new Set<string>();
  /** Each approval's latest entry: its current row must match it (the earlier ones are states it went through). */
  const latestApproval = new Map<string, { seq: number; content: string }>();

  const problem = ((): AuditProblem | null => {
    try {
      let prev: { seq: number; hash: string } | null = null;
      for (const r of (since === null ? selectEntries.iterate() : selectEntries.iterate({ since })) as unknown as Iterable<Row>) {
        const seq = Number(r[0]);
        const kind = String(r[1]);
        const ref = String(r[2]);
        const span = r[3] === null ? null : String(r[3]);
        const at = Number(r[4]);
        const content = String(r[5]);
        const prevHash = String(r[6]);
        const hash = String(r[7]);
        const what = kind === 'access' ? `access_log row ${ref}` : kind === 'approval' ? `approval ${ref}` : kind === 'raw' ? `raw copy of call ${ref}` : `call ${ref}`;

        if (prev === null) {
          firstSeq = seq;
          if (since === null) {
            // The start: genesis, or the anchor a retention purge left at the cut.
            if (seq === 1) {
              if (prevHash !== GENESIS_HASH) fail('entry_altered', seq, kind, ref, `entry ${seq} (${kind}, ${what}) is the first entry but does not start from the genesis hash`);
            } else {
              const anchors = (bySeq.get(seq - 1) ?? []).filter((c) => c.kind === 'anchor');
              if (anchors.length === 0) {
                fail('anchor_missing', seq, kind, ref, `entries 1..${seq - 1} are missing and no anchor checkpoint at seq ${seq - 1} records a purge`);
              }
              if (!anchors.some((a) => a.hash === prevHash)) {
                fail('entry_missing', seq, kind, ref, `entry ${seq} (${kind}, ${what}) does not chain to the anchor checkpoint at seq ${seq - 1}`);
              }
              let anchorSigned = false;
              for (const a of anchors) if (checkSignature(a) && a.hash === prevHash) anchorSigned = true;
              if (!anchorSigned) {
                unsignedAnchor = true;
                warnings.push(`the chain starts at entry ${seq} after a purge whose anchor checkpoint is ${publicKey === null ? 'not checked (no public key)' : 'not signed'}: the removal of entries 1..${seq - 1} is not proven`);
              }
            }
          }
        } else {
          if (seq !== prev.seq + 1) {
            fail('entry_missing', prev.seq + 1, null, null, `audit entries ${prev.seq + 1}${seq - 1 > prev.seq + 1 ? `..${seq - 1}` : ''} are missing (deleted): entry ${seq} follows entry ${prev.seq}`);
          }
          if (prevHash !== prev.hash) {
            const other = seqOfHash.get(prevHash);
            if (other !== undefined) {
              fail('order_broken', seq, kind, ref, `entry ${seq} (${kind}, ${what}) chains to entry ${Number(other['seq'])}, not to entry ${prev.seq}: entries were reordered`);
            }
            fail('entry_altered', seq, kind, ref, `entry ${seq} (${kind}, ${what}): its link to entry ${prev.seq} was changed`);
          }
        }
        if (linkHash({ seq, kind, ref, span, at, contentHash: content, prevHash }) !== hash) {
          fail('entry_altered', seq, kind, ref, `entry ${seq} (${kind}, ${what}) was edited: its hash does not match its fields`);
        }

        // The rows it covers, as they are now.
        switch (kind) {
          case 'request': {
            let row = callsCursor.peek();
            if (row !== undefined && row[0] === ref) {
              callsCursor.take();
            } else {
              const own = getRow(callById, ref);
              // Rows inserted before this call's that no request entry took: set aside, judged at the end.
              while (own !== undefined && row !== undefined && row[0] !== ref && Number(row[ROWID]) < Number(own[ROWID])) {
                skippedCalls.push(String(row[0]));
                callsCursor.take();
                row = callsCursor.peek();
              }
              if (row !== undefined && row[0] === ref) {
                callsCursor.take();
              } else {
                if (row !== undefined) callsInStep = false;
                row = own;
                pointMatched.add(ref);
              }
            }
            if (row === undefined) fail('row_missing', seq, kind, ref, `call ${ref} was deleted (entry ${seq} records its request)`);
            // A body stored as chunks: its chunk list and the chunks the call added follow the columns.
            const parts = row[PARTS] === null || row[PARTS] === undefined ? '' : chunks.requestContent(ref, String(row[SESSION_ID]), String(row[PARTS]), seq, fail);
            if (textHash(encodeColumnValues('request', row as ColumnValue[], 0, REQUEST_END) + parts) !== content) {
              fail('content_changed', seq, kind, ref, `call ${ref}: the recorded request was changed after it was written (entry ${seq})`);
            }
            rows++;
            coveredCalls++; // a call has one request entry (calls.id is unique)
            pendingResults.set(ref, { hash: textHash(encodeColumnValues('result', row as ColumnValue[], REQUEST_END, RESULT_END)), status: String(row[REQUEST_END + 1]) });
            break;
          }
          case 'result': {
            let expected = pendingResults.get(ref)?.hash;
            if (expected === undefined) {
              cutCalls.add(ref); // its request entry was not met: cut off by a purge (judged at the end)
              const row = getRow(callById, ref);
              if (row === undefined) fail('row_missing', seq, kind, ref, `call ${ref} was deleted (entry ${seq} records its result)`);
              expected = textHash(encodeColumnValues('result', row as ColumnValue[], REQUEST_END, RESULT_END));
            }
            pendingResults.delete(ref);
            if (expected !== content) fail('content_changed', seq, kind, ref, `call ${ref}: the recorded result (status, answer, decisions or timings) was changed after it was written (entry ${seq})`);
            rows++;
            break;
          }
          case 'events': {
            const range = parseSpan(span);
            if (range === null) fail('entry_altered', seq, kind, ref, `entry ${seq} (events of call ${ref}) has no valid seq span`);
            if (!pendingResults.has(ref)) cutCalls.add(ref);
            const sink = new TextSink();
            const feed = startEventsContent(sink, ref);
            let expectSeq = range.first;
            const first = eventsCursor.peek();
            if (first !== undefined && first[0] === ref && Number(first[1]) === range.first) {
              // In step: take rows while they continue this batch.
              for (;;) {
                const e = eventsCursor.peek();
                if (e === undefined || e[0] !== ref || Number(e[1]) !== expectSeq || expectSeq > range.last) break;
                eventsCursor.take();
                feed.add(expectSeq, Number(e[2]), String(e[3]));
                expectSeq++;
              }
            } else {
              if (first !== undefined) eventsInStep = false;
              for (const e of eventsRange.iterate(ref, range.first, range.last) as unknown as Iterable<Row>) {
                if (Number(e[1]) !== expectSeq) break;
                feed.add(expectSeq, Number(e[2]), String(e[3]));
                expectSeq++;
              }
            }
            if (expectSeq <= range.last) {
              fail('row_missing', seq, kind, ref, `call ${ref}: stream event ${expectSeq} (of ${range.first}..${range.last}, entry ${seq}) was deleted or moved`);
            }
            if (textHash(sink.text) !== content) fail('content_changed', seq, kind, ref, `call ${ref}: stream events ${range.first}..${range.last} were changed after they were written (entry ${seq})`);
            rows += range.last - range.first + 1;
            coveredEvents += range.last - range.first + 1;
            break;
          }
          case 'access': {
            const row = getRow(accessById, Number(ref));
            if (row === undefined) fail('row_missing', seq, kind, ref, `access_log row ${ref} was deleted (entry ${seq})`);
            if (textHash(encodeColumnValues('access', row as ColumnValue[])) !== content) {
              fail('content_changed', seq, kind, ref, `access_log row ${ref} was changed after it was written (entry ${seq})`);
            }
            rows++;
            coveredAccess++;
            break;
          }
          case 'raw': {
            // Written with the call's request entry; the AES-GCM tag alone would not show a deletion.
            const row = getRow(rawById, ref);
            if (row === undefined) fail('row_missing', seq, kind, ref, `the raw copy of call ${ref} was deleted or moved to another call (entry ${seq})`);
            const values: ColumnValue[] = [String(row[0]), String(row[1]), row[2] instanceof Uint8Array ? bytesHash(row[2]) : null];
            if (textHash(encodeColumnValues('raw', values)) !== content) {
              fail('content_changed', seq, kind, ref, `the raw copy of call ${ref} was changed after it was written (sealed bytes or key id, entry ${seq})`);
            }
            if (!pendingResults.has(ref)) cutCalls.add(ref);
            coveredRaw.add(ref);
            rows++;
            break;
          }
          case 'approval':
            latestApproval.set(ref, { seq, content }); // checked against the row after the pass
            break;
          default:
            fail('entry_altered', seq, kind, ref, `entry ${seq} has an unknown kind`);
        }

        for (const c of bySeq.get(seq) ?? []) {
          if (c.hash !== hash) {
            fail('checkpoint_mismatch', seq, kind, ref, `checkpoint ${c.id} (${c.kind}) says entry ${seq} had another hash: the chain was rewritten from there or before`);
          }
          checkSignature(c);
        }
        entries++;
        prev = { seq, hash };
      }
      lastSeq = prev?.seq ?? null;

      // Approvals: each one's current row is what its latest entry recorded.
      for (const [id, latest] of latestApproval) {
        const row = getRow(approvalById, id);
        if (row === undefined) fail('row_missing', latest.seq, 'approval', id, `approval ${id} was deleted (entry ${latest.seq} records its last change)`);
        if (textHash(encodeColumnValues('approval', row as ColumnValue[])) !== latest.content) {
          fail('content_changed', latest.seq, 'approval', id, `approval ${id} was changed after it was written (state, votes or record; entry ${latest.seq} records its last change)`);
        }
        rows++;
      }

      // Checkpoints past the end: the tail of the chain was cut off.
      const endSeq = lastSeq ?? -1;
      for (const c of checkpoints) {
        if (c.seq <= endSeq) continue;
        if (c.kind === 'anchor' && lastSeq === null) {
          // Everything was purged: the chain ends at the newest anchor.
          checkSignature(c);
          continue;
        }
        fail('entry_missing', endSeq + 1, null, null, `checkpoint ${c.id} (${c.kind}) covers entries up to ${c.seq}, but the log ends at ${endSeq}: entries ${endSeq + 1}..${c.seq} were deleted`);
      }

      // Rows no entry covers.
      if (since === null) {
        for (const [callId, pending] of pendingResults) {
          if (pending.status !== 'pending') fail('unrecorded_row', null, 'calls', callId, `call ${callId} has a result (status ${pending.status}) that no audit entry records`);
        }
        // A call row without its request entry is fine only where a purge cut the chain before
        // it and a remaining entry names the call (see audit-maintenance.ts).
        let cutCovered = 0;
        if (callsInStep) {
          // Rows after the last one a request entry took: none, unless cut by a purge or forged.
          for (let row = callsCursor.peek(); row !== undefined; row = callsCursor.peek()) {
            skippedCalls.push(String(row[0]));
            callsCursor.take();
          }
        }
        for (const id of skippedCalls) {
          if (pointMatched.has(id)) continue; // covered: its request entry found it by key
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
        if (callCount > coveredCalls + cutCovered) {
          const extra = db.prepare("SELECT id FROM calls WHERE rowid > ? AND id NOT IN (SELECT ref FROM audit_log WHERE kind NOT IN ('access', 'approval')) ORDER BY rowid LIMIT 1").get(legacy.callsRowid)?.['id'];
          const id = extra === undefined ? '?' : String(extra);
          fail('unrecorded_row', null, 'calls', id, `call ${id} has no audit entry: it was inserted behind the gateway (${callCount - coveredCalls - cutCovered} such calls)`);
        }
        const eventCount = Number(db.prepare('SELECT count(*) AS n FROM stream_events').get()?.['n'] ?? 0) - legacyNow.events;
        if (eventCount > coveredEvents) {
          const extra = eventsInStep ? eventsCursor.peek() : undefined;
          const where = extra === undefined ? '' : ` (first: call ${String(extra[0])}, event ${Number(extra[1])})`;
          fail('unrecorded_row', null, 'stream_events', extra === undefined ? null : String(extra[0]), `${eventCount - coveredEvents} stream events have no audit entry${where}`);
        }
        const accessCount = Number(db.prepare('SELECT count(*) AS n FROM access_log').get()?.['n'] ?? 0) - legacyNow.access;
        if (accessCount > coveredAccess) {
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
          if (!latestApproval.has(id)) fail('unrecorded_row', null, 'approvals', id, `approval ${id} has no audit entry: it was inserted behind the gateway`);
        }
        // Request chunks: each was added by a call whose request entry covers it.
        rows += chunks.coveredCount;
        chunks.finish((firstSeq ?? 1) > 1, fail);
        if (rawLegacyNow + approvalsLegacyNow > 0) {
          warnings.push(`${rawLegacyNow} raw copies and ${approvalsLegacyNow} approvals were stored before the audit chain covered them: they are not covered (an approval is, from its next change)`);
        }
      }
      const owner = db
        .prepare('SELECT s.id AS sid, c.id AS cid FROM sessions s JOIN calls c ON c.session_id = s.id WHERE c.subject <> s.subject OR c.issuer <> s.issuer LIMIT 1')
        .get();
      if (owner !== undefined) {
        fail('session_owner_changed', null, 'sessions', String(owner['sid']), `session ${String(owner['sid'])} names another owner than its call ${String(owner['cid'])} records`);
      }
      return null;
    } catch (err) {
      if (err instanceof Stop) return err.problem;
      throw err;
    }
  })();

  if (publicKey === null && checkpoints.some((c) => c.signature !== null)) warnings.push('checkpoint signatures were not checked: no public key was given (--public-key takes the PEM of audit.signing_key, public or private; `aigov server --dev` keeps it in its state dir as audit-signing.key)');
  if (checkpoints.length > 0 && signed === 0 && checkpoints.every((c) => c.signature === null)) warnings.push('no checkpoint is signed (the gateway has no audit.signing_key): the chain shows edits, not who wrote it');
  const end = lastSeq ?? 0;
  const unsignedTail = publicKey === null ? entries : Math.max(0, end - Math.max(lastVerifiedSeq, (firstSeq ?? 1) - 1));
  return {
    ok: problem === null,
    problem,
    entries,
    rows,
    firstSeq,
    lastSeq,
    checkpoints: { total: checkpoints.length, signed, verified },
    keyId,
    unsignedTail,
    unsignedAnchor,
    warnings,
    durationMs: Math.max(0, now() - started),
  };
}
