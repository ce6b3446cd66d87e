/**
 * `aigov audit verify`, whatever the store: the checks, over rows an {@link AuditSource} reads
 * (sqlite/audit-verify.ts from a file, postgres/pg-audit-verify.ts from a database).
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
 * Then: checkpoints beyond the last entry (the tail was cut), rows (and request chunks) no entry
 * covers (inserted behind the gateway's back; the source counts them, see
 * {@link AuditSource.coverage}), and sessions whose owner no longer matches their calls'.
 * Verification stops at the FIRST problem and names it.
 *
 * Sync or async: the pass is a generator. A source answers each read at once (SQLite: the
 * verifier stays synchronous, {@link runSync}) or with a promise the driver awaits before the
 * pass goes on ({@link runAsync}; PostgreSQL reads a page of entries and their rows ahead, so
 * most reads are answered at once there too). Problems name seqs, kinds and ids, never record contents.
 */
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import {
  checkpointPayload,
  encodeColumnValues,
  GENESIS_HASH,
  parseSpan,
  REQUEST_COLUMNS,
  RESULT_COLUMNS,
  startEventsContent,
  type CheckpointKind,
  type ColumnValue,
} from '../core/audit/chain.ts';
import { bytesHash, linkHash, textHash, TextSink } from './audit-hash.ts';
import { keyIdOfPublicKey } from './audit-keys.ts';
import { ChunkVerifier, settle, type ChunkSource, type Maybe, type Step } from './audit-verify-chunks.ts';

export type { Maybe, Step } from './audit-verify-chunks.ts';

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

export interface CheckpointRow {
  readonly id: number;
  readonly seq: number;
  readonly hash: string;
  readonly at: number;
  readonly kind: CheckpointKind;
  readonly keyId: string | null;
  readonly signature: string | null;
}

/** A column value as a source returns it (bytea / BLOB as bytes). */
export type Cell = string | number | bigint | boolean | null | Uint8Array;
/** A row as an array of column values. */
export type Row = readonly Cell[];

/**
 * A calls row as sources return it: the request's columns, then the result's (id again), so each
 * is one slice; then the insertion order (SQLite rowid, PostgreSQL rec) and request_parts.
 */
export const CALL_FIELDS: readonly string[] = [...REQUEST_COLUMNS, ...RESULT_COLUMNS, 'rowid', 'request_parts'];
export const REQUEST_END = REQUEST_COLUMNS.length;
export const RESULT_END = REQUEST_END + RESULT_COLUMNS.length;
export const CALL_ORDER = RESULT_END;
export const CALL_PARTS = CALL_ORDER + 1;
const SESSION_ID = REQUEST_COLUMNS.indexOf('session_id');

/** An audit_log row: seq, kind, ref, span, at, content_hash, prev_hash, hash. */
export const ENTRY_SELECT = 'seq, kind, ref, span, at, content_hash, prev_hash, hash';

export type Fail = (problem: AuditProblemKind, seq: number | null, kind: string | null, ref: string | null, detail: string) => never;

/** What the pass learnt, for the source's coverage checks. */
export interface PassState {
  /** The first entry checked; > 1 after a retention purge. */
  readonly firstSeq: number | null;
  readonly coveredCalls: number;
  readonly coveredEvents: number;
  readonly coveredAccess: number;
  /** Calls whose raw copy an entry covered. */
  readonly coveredRaw: ReadonlySet<string>;
  /** Calls named by a result, events or raw entry whose request entry was not met (cut off by a purge). */
  readonly cutCalls: ReadonlySet<string>;
  /** Approvals with an entry. */
  readonly approvals: ReadonlySet<string>;
  readonly chunks: ChunkVerifier;
  readonly warnings: string[];
  /** Counts rows the coverage checks recomputed. */
  addRows(n: number): void;
}

/**
 * The rows of one store. Reads return at once or a promise (see the file comment); each
 * multi-read verification must see one snapshot of the store.
 */
export interface AuditSource {
  /** Every checkpoint, by seq then id. */
  checkpoints(): Maybe<readonly CheckpointRow[]>;
  /** The next entry ({@link ENTRY_SELECT}) in seq order — from the first, or from the first written at or after `since` — or undefined at the end. */
  nextEntry(): Maybe<Row | undefined>;
  /** The call row a request entry covers ({@link CALL_FIELDS}). */
  requestRow(callId: string): Maybe<Row | undefined>;
  /** A call row by id (a result entry whose request entry was not met). */
  callRow(callId: string): Maybe<Row | undefined>;
  /**
   * Feeds the call's events first..last in seq order, stopping at the first one missing;
   * returns the seq after the last one fed.
   */
  events(callId: string, first: number, last: number, feed: (seq: number, offsetMs: number, raw: string) => void): Maybe<number>;
  accessRow(id: number): Maybe<Row | undefined>;
  /** call_id, key_id, sealed (bytes). */
  rawRow(callId: string): Maybe<Row | undefined>;
  /** The current approvals rows of these ids (APPROVAL_COLUMNS), the ones that exist. */
  approvalRows(ids: readonly string[]): Maybe<ReadonlyMap<string, Row>>;
  /** The seq of an entry with this hash, if any (to tell reordering from an edited link). */
  seqOfHash(hash: string): Maybe<number | undefined>;
  readonly chunks: ChunkSource;
  /** Rows no entry covers (only for a pass from the chain's start); fails through `fail`. */
  coverage(state: PassState, fail: Fail): Step<void>;
  /** A session and one of its calls that name different owners, if any. */
  sessionOwnerMismatch(): Maybe<{ readonly sessionId: string; readonly callId: string } | undefined>;
}

class Stop extends Error {
  readonly problem: AuditProblem;
  constructor(problem: AuditProblem) {
    super(problem.detail);
    this.problem = problem;
  }
}

export const fail: Fail = (problem, seq, kind, ref, detail) => {
  throw new Stop({ problem, seq, kind, ref, detail });
};

/** Runs a pass whose source answers every read at once. */
export function runSync<T>(step: Step<T>): T {
  const r = step.next();
  if (!r.done) throw new Error('a synchronous audit source returned a promise');
  return r.value;
}

/** Runs a pass, awaiting what its source reads asynchronously. */
export async function runAsync<T>(step: Step<T>): Promise<T> {
  let r = step.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = await r.value;
    } catch (err) {
      r = step.throw(err);
      continue;
    }
    r = step.next(value);
  }
  return r.value;
}

/** The checks of the file comment, over `source`. Throws only when the source cannot be read. */
export function* verifyChain(source: AuditSource, options: AuditVerifyOptions = {}): Step<AuditVerifyReport> {
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

  const checkpoints = yield* settle(source.checkpoints());
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

  const chunks = new ChunkVerifier(source.chunks);
  /** Result content hashes of calls met at their request entry, until their result entry. */
  const pendingResults = new Map<string, { hash: string; status: string }>();
  /** Calls named by a result or events entry whose request entry was not met (cut off by a purge). */
  const cutCalls = new Set<string>();
  let coveredEvents = 0;
  let coveredCalls = 0;
  let coveredAccess = 0;
  /** Calls whose raw copy an entry covered. */
  const coveredRaw = new Set<string>();
  /** Each approval's latest entry: its current row must match it (the earlier ones are states it went through). */
  const latestApproval = new Map<string, { seq: number; content: string }>();

  let problem: AuditProblem | null = null;
  try {
    let prev: { seq: number; hash: string } | null = null;
    for (;;) {
      let r = source.nextEntry();
      if (r instanceof Promise) r = (yield r) as Row | undefined;
      if (r === undefined) break;
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
          const other = yield* settle(source.seqOfHash(prevHash));
          if (other !== undefined) {
            fail('order_broken', seq, kind, ref, `entry ${seq} (${kind}, ${what}) chains to entry ${other}, not to entry ${prev.seq}: entries were reordered`);
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
          let row = source.requestRow(ref);
          if (row instanceof Promise) row = (yield row) as Row | undefined;
          if (row === undefined) fail('row_missing', seq, kind, ref, `call ${ref} was deleted (entry ${seq} records its request)`);
          // A body stored as chunks: its chunk list and the chunks the call added follow the columns.
          const parts = row[CALL_PARTS] === null || row[CALL_PARTS] === undefined ? '' : yield* chunks.requestContent(ref, String(row[SESSION_ID]), String(row[CALL_PARTS]), seq, fail);
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
            const row = yield* settle(source.callRow(ref));
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
          let next = source.events(ref, range.first, range.last, (eventSeq, offsetMs, raw) => feed.add(eventSeq, offsetMs, raw));
          if (next instanceof Promise) next = (yield next) as number;
          if (next <= range.last) {
            fail('row_missing', seq, kind, ref, `call ${ref}: stream event ${next} (of ${range.first}..${range.last}, entry ${seq}) was deleted or moved`);
          }
          if (textHash(sink.text) !== content) fail('content_changed', seq, kind, ref, `call ${ref}: stream events ${range.first}..${range.last} were changed after they were written (entry ${seq})`);
          rows += range.last - range.first + 1;
          coveredEvents += range.last - range.first + 1;
          break;
        }
        case 'access': {
          const row = yield* settle(source.accessRow(Number(ref)));
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
          const row = yield* settle(source.rawRow(ref));
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
    if (latestApproval.size > 0) {
      const current = yield* settle(source.approvalRows([...latestApproval.keys()]));
      for (const [id, latest] of latestApproval) {
        const row = current.get(id);
        if (row === undefined) fail('row_missing', latest.seq, 'approval', id, `approval ${id} was deleted (entry ${latest.seq} records its last change)`);
        if (textHash(encodeColumnValues('approval', row as ColumnValue[])) !== latest.content) {
          fail('content_changed', latest.seq, 'approval', id, `approval ${id} was changed after it was written (state, votes or record; entry ${latest.seq} records its last change)`);
        }
        rows++;
      }
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
      const state: PassState = {
        firstSeq,
        coveredCalls,
        coveredEvents,
        coveredAccess,
        coveredRaw,
        cutCalls,
        approvals: new Set(latestApproval.keys()),
        chunks,
        warnings,
        addRows: (n) => {
          rows += n;
        },
      };
      yield* source.coverage(state, fail);
    }
    const owner = yield* settle(source.sessionOwnerMismatch());
    if (owner !== undefined) {
      fail('session_owner_changed', null, 'sessions', owner.sessionId, `session ${owner.sessionId} names another owner than its call ${owner.callId} records`);
    }
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    problem = err.problem;
  }

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
