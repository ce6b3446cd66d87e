/**
 * `aigov audit verify` over a PostgreSQL recording database: the rows for the checks of
 * audit-verify-core.ts, read in ONE snapshot (REPEATABLE READ, READ ONLY). Every replica's
 * write transaction commits its rows with their entries and takes the chain's head row first,
 * so that snapshot holds a contiguous chain whose every entry has its rows, however many
 * replicas were appending while it was taken.
 *
 * Entries are read in pages (keyset on seq); for each page the rows its entries cover are read
 * ahead, one query per table, so the pass answers almost every read at once; a row not read
 * ahead (a result whose request was in an earlier page, a chunk of an earlier call) is a query.
 * The next page is read while the pass checks the current one (the server works while we hash).
 * Coverage (rows no entry covers) compares counts and, only when they differ, finds the first
 * row without an entry by an anti-join. The SQL text never contains values.
 */
import { ACCESS_COLUMNS, APPROVAL_COLUMNS, parseSpan, REQUEST_COLUMNS, RESULT_COLUMNS } from '../../core/audit/chain.ts';
import { parseRequestParts } from '../../core/recording/request-chunks.ts';
import { callsUsingChunk, firstOutside, settle, storedChunk, type ChunkRow, type ChunkSource, type Maybe } from '../audit-verify-chunks.ts';
import {
  CALL_PARTS,
  ENTRY_SELECT,
  runAsync,
  verifyChain,
  type AuditSource,
  type AuditVerifyOptions,
  type AuditVerifyReport,
  type CheckpointRow,
  type Fail,
  type PassState,
  type Row,
  type Step,
} from '../audit-verify-core.ts';
import { connectClient, type PgClient, type PgSettings } from './pg-connection.ts';

/** Entries per page, and the stream events a page may cover at most (memory stays bounded); tests page smaller. */
export interface PageSize {
  readonly entries: number;
  readonly events: number;
}
const PAGE: PageSize = { entries: 2000, events: 20_000 };

const CALL_SELECT = `${REQUEST_COLUMNS.join(', ')}, ${RESULT_COLUMNS.join(', ')}, rec, request_parts`;
const CHUNK_SELECT = "b.id, b.session_id, b.kind, encode(b.hash, 'hex') AS hash, b.text";

/**
 * Verifies the database at `settings.url` on a connection of its own (no statement timeout: a
 * large chain takes a while). Throws only when it cannot be read at all (the error as the driver
 * gives it: describe it with describePgError).
 */
export async function verifyPostgresAudit(settings: PgSettings, options: AuditVerifyOptions = {}, page: PageSize = PAGE): Promise<AuditVerifyReport> {
  // Pipelined: the next page is read while the pass asks for rows it did not read ahead.
  const client = await connectClient(settings, { statementTimeoutMs: 0, pipeline: true });
  try {
    // No JIT: compiling a page's queries costs more than running them.
    await arrays(client, 'SET jit = off');
    await arrays(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const source = await PgAuditSource.open(client, options.since ?? null, page);
    const report = await runAsync(verifyChain(source, options));
    await arrays(client, 'ROLLBACK');
    return report;
  } finally {
    await client.end().catch(() => {});
  }
}

type Cells = Row;

async function arrays(client: PgClient, text: string, values: unknown[] = []): Promise<Cells[]> {
  // Extended protocol: a pipelined connection cannot send simple queries.
  const query = { text, values, rowMode: 'array' as const, queryMode: 'extended' };
  const result = await client.query<Cells[]>(query);
  return result.rows as unknown as Cells[];
}

async function one(client: PgClient, text: string, values: unknown[] = []): Promise<Cells | undefined> {
  return (await arrays(client, text, values))[0];
}

function toChunkRow(r: Cells): ChunkRow {
  return { id: Number(r[0]), session: String(r[1]), kind: Number(r[2]), hash: String(r[3]), text: String(r[4]) };
}

/** One page of entries and the rows they cover, read ahead. */
interface Page {
  readonly entries: readonly Cells[];
  /** Where the page after it starts; null: it is the last. */
  readonly next: number | null;
  readonly calls: ReadonlyMap<string, Cells>;
  /** The spans of the page's events entries, in order, and their rows: ordinal (1-based), seq, offset_ms, raw, by ordinal and seq. */
  readonly spans: { readonly id: readonly string[]; readonly first: readonly number[]; readonly last: readonly number[] };
  readonly events: readonly Cells[];
  readonly access: ReadonlyMap<number, Cells>;
  readonly raw: ReadonlyMap<string, Cells>;
  readonly chunks: ReadonlyMap<number, ChunkRow>;
  /** The `first..last` ranges `chunks` were read for. */
  readonly chunkRanges: ReadonlySet<string>;
}

const NO_PAGE: Page = { entries: [], next: null, calls: new Map(), spans: { id: [], first: [], last: [] }, events: [], access: new Map(), raw: new Map(), chunks: new Map(), chunkRanges: new Set() };

class PgChunkSource implements ChunkSource {
  readonly present = true;
  readonly #client: PgClient;
  /** The current page (its chunks read ahead). */
  page: Page = NO_PAGE;

  constructor(client: PgClient) {
    this.#client = client;
  }

  range(first: number, last: number): Maybe<ChunkRow[]> {
    if (!this.page.chunkRanges.has(`${first}..${last}`)) {
      return arrays(this.#client, `SELECT ${CHUNK_SELECT} FROM body_chunks b WHERE b.id BETWEEN $1 AND $2 ORDER BY b.id`, [first, last]).then((rows) => rows.map(toChunkRow));
    }
    const out: ChunkRow[] = [];
    for (let id = first; id <= last; id++) {
      const row = this.page.chunks.get(id);
      if (row === undefined) break;
      out.push(row);
    }
    return out;
  }

  byId(id: number): Maybe<ChunkRow | undefined> {
    const known = this.page.chunks.get(id);
    if (known !== undefined) return known;
    return one(this.#client, `SELECT ${CHUNK_SELECT} FROM body_chunks b WHERE b.id = $1`, [id]).then((r) => (r === undefined ? undefined : toChunkRow(r)));
  }

  async callsUsing(sessionId: string, chunkId: number): Promise<{ count: number; first: string[] }> {
    const chunks = new Map((await arrays(this.#client, 'SELECT id, kind, text FROM body_chunks WHERE session_id = $1', [sessionId])).map((r) => [Number(r[0]), storedChunk(Number(r[1]), String(r[2]))] as const));
    const calls = await arrays(this.#client, 'SELECT id, request_parts FROM calls WHERE session_id = $1 AND request_parts IS NOT NULL ORDER BY started_at, rec', [sessionId]);
    return callsUsingChunk(chunks, calls.map((r) => ({ id: String(r[0]), parts: String(r[1]) })), chunkId);
  }

  async count(): Promise<number> {
    return Number((await one(this.#client, 'SELECT count(*) FROM body_chunks'))?.[0] ?? 0);
  }

  async countFrom(floor: number): Promise<number> {
    return Number((await one(this.#client, 'SELECT count(*) FROM body_chunks WHERE id >= $1', [floor]))?.[0] ?? 0);
  }

  async firstUncovered(floor: number, ranges: readonly (readonly [number, number])[]): Promise<{ id: number; session: string } | undefined> {
    for (let from = floor; ;) {
      const page = await arrays(this.#client, 'SELECT id, session_id FROM body_chunks WHERE id >= $1 ORDER BY id LIMIT 10000', [from]);
      const found = firstOutside(page.map((r) => ({ id: Number(r[0]), session: String(r[1]) })), ranges);
      if (found !== undefined || page.length < 10000) return found;
      from = Number(page.at(-1)![0]) + 1;
    }
  }
}

class PgAuditSource implements AuditSource {
  readonly #client: PgClient;
  readonly #hasCheckpoints: boolean;
  readonly #hasApprovals: boolean;
  readonly chunks: PgChunkSource;
  #page: Page = NO_PAGE;
  #at = 0;
  /** The next span of the page the pass will ask for, and the first of its event rows. */
  #span = 0;
  #eventRow = 0;
  /** The page after the current one, being read while the pass checks this one (null: none). */
  #ahead: Promise<Page> | null;

  readonly #size: PageSize;

  private constructor(client: PgClient, from: number | null, hasCheckpoints: boolean, hasApprovals: boolean, size: PageSize) {
    this.#client = client;
    this.#size = size;
    this.#hasCheckpoints = hasCheckpoints;
    this.#hasApprovals = hasApprovals;
    this.chunks = new PgChunkSource(client);
    this.#ahead = from === null ? null : this.#readPage(from);
  }

  static async open(client: PgClient, since: number | null, size: PageSize): Promise<PgAuditSource> {
    const tables = await one(client, "SELECT to_regclass('audit_log') IS NOT NULL, to_regclass('audit_checkpoints') IS NOT NULL, to_regclass('approvals') IS NOT NULL");
    if (tables?.[0] !== true) throw new Error('the database has no audit_log table: it has no audit trail (is it an aigov recording database?)');
    let from: number | null = 0;
    if (since !== null) {
      const start = await one(client, 'SELECT min(seq) FROM audit_log WHERE at >= $1', [since]);
      from = start?.[0] === null || start === undefined ? null : Number(start[0]);
    }
    return new PgAuditSource(client, from, tables[1] === true, tables[2] === true, size);
  }

  async checkpoints(): Promise<CheckpointRow[]> {
    if (!this.#hasCheckpoints) return [];
    const rows = await arrays(this.#client, 'SELECT id, seq, hash, at, kind, key_id, signature FROM audit_checkpoints ORDER BY seq, id');
    return rows.map((r) => ({
      id: Number(r[0]),
      seq: Number(r[1]),
      hash: String(r[2]),
      at: Number(r[3]),
      kind: String(r[4]) as CheckpointRow['kind'],
      keyId: r[5] === null ? null : String(r[5]),
      signature: r[6] === null ? null : String(r[6]),
    }));
  }

  nextEntry(): Maybe<Cells | undefined> {
    if (this.#at < this.#page.entries.length) return this.#page.entries[this.#at++];
    const ahead = this.#ahead;
    if (ahead === null) return undefined;
    return ahead.then((page) => {
      this.#page = page;
      this.chunks.page = page;
      this.#at = 0;
      this.#span = 0;
      this.#eventRow = 0;
      this.#ahead = page.next === null ? null : this.#readPage(page.next);
      this.#ahead?.catch(() => {}); // a failure is met when the pass gets there
      return this.#at < page.entries.length ? page.entries[this.#at++] : undefined;
    });
  }

  /** The page of entries from seq `from`, cut where its events would exceed the page's, and its rows. */
  async #readPage(from: number): Promise<Page> {
    const client = this.#client;
    const fetched = await arrays(client, `SELECT ${ENTRY_SELECT} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`, [from, this.#size.entries]);
    let events = 0;
    let end = 0;
    while (end < fetched.length) {
      const e = fetched[end]!;
      const span = e[1] === 'events' ? parseSpan(e[3] === null ? null : String(e[3])) : null;
      const size = span === null ? 0 : span.last - span.first + 1;
      if (end > 0 && events + size > this.#size.events) break;
      events += size;
      end++;
    }
    const entries = fetched.slice(0, end);
    const next = end < fetched.length || fetched.length === this.#size.entries ? Number(entries.at(-1)![0]) + 1 : null;

    const callIds: string[] = [];
    const spans = { id: [] as string[], first: [] as number[], last: [] as number[] };
    const accessIds: number[] = [];
    const rawIds: string[] = [];
    for (const e of entries) {
      const ref = String(e[2]);
      switch (e[1]) {
        case 'request':
        case 'result':
          callIds.push(ref);
          break;
        case 'events': {
          const span = parseSpan(e[3] === null ? null : String(e[3]));
          if (span !== null) {
            spans.id.push(ref);
            spans.first.push(span.first);
            spans.last.push(span.last);
          }
          break;
        }
        case 'access':
          if (/^\d{1,15}$/.test(ref)) accessIds.push(Number(ref));
          break;
        case 'raw':
          rawIds.push(ref);
          break;
      }
    }
    const [callRows, eventRows, accessRows, rawRows] = await Promise.all([
      callIds.length === 0 ? [] : arrays(client, `SELECT ${CALL_SELECT} FROM calls WHERE id = ANY($1::text[])`, [callIds]),
      spans.id.length === 0
        ? []
        : arrays(
            client,
            `SELECT s.n, e.seq, e.offset_ms, e.raw FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS s(id, f, l, n)
             JOIN stream_events e ON e.call_id = s.id AND e.seq BETWEEN s.f AND s.l ORDER BY s.n, e.seq`,
            [spans.id, spans.first, spans.last],
          ),
      accessIds.length === 0 ? [] : arrays(client, `SELECT ${ACCESS_COLUMNS.join(', ')} FROM access_log WHERE id = ANY($1::bigint[])`, [accessIds]),
      rawIds.length === 0 ? [] : arrays(client, 'SELECT call_id, key_id, sealed FROM raw_copies WHERE call_id = ANY($1::text[])', [rawIds]),
    ]);
    const calls = new Map(callRows.map((r) => [String(r[0]), r]));

    // The chunks the page's requests added (their ranges are in request_parts).
    const chunks = new Map<number, ChunkRow>();
    const chunkRanges = new Set<string>();
    const firsts: number[] = [];
    const lasts: number[] = [];
    for (const e of entries) {
      if (e[1] !== 'request') continue;
      const parts = calls.get(String(e[2]))?.[CALL_PARTS];
      const parsed = typeof parts === 'string' ? parseRequestParts(parts) : null;
      if (parsed === null || parsed.first <= 0) continue;
      firsts.push(parsed.first);
      lasts.push(parsed.last);
      chunkRanges.add(`${parsed.first}..${parsed.last}`);
    }
    if (firsts.length > 0) {
      const rows = await arrays(client, `SELECT ${CHUNK_SELECT} FROM unnest($1::bigint[], $2::bigint[]) AS r(f, l) JOIN body_chunks b ON b.id BETWEEN r.f AND r.l`, [firsts, lasts]);
      for (const r of rows) chunks.set(Number(r[0]), toChunkRow(r));
    }
    return {
      entries,
      next,
      calls,
      spans,
      events: eventRows,
      access: new Map(accessRows.map((r) => [Number(r[0]), r])),
      raw: new Map(rawRows.map((r) => [String(r[0]), r])),
      chunks,
      chunkRanges,
    };
  }

  requestRow(callId: string): Maybe<Cells | undefined> {
    return this.#page.calls.get(callId) ?? this.callRow(callId);
  }

  callRow(callId: string): Maybe<Cells | undefined> {
    return this.#page.calls.get(callId) ?? one(this.#client, `SELECT ${CALL_SELECT} FROM calls WHERE id = $1`, [callId]);
  }

  events(callId: string, first: number, last: number, feed: (seq: number, offsetMs: number, raw: string) => void): Maybe<number> {
    const { spans, events } = this.#page;
    const k = this.#span;
    if (k < spans.id.length && spans.id[k] === callId && spans.first[k] === first && spans.last[k] === last) {
      // The pass asks for the page's spans in order: their rows follow one another.
      this.#span++;
      let seq = first;
      let contiguous = true;
      for (; this.#eventRow < events.length && events[this.#eventRow]![0] === k + 1; this.#eventRow++) {
        const e = events[this.#eventRow]!;
        if (!contiguous || e[1] !== seq) {
          contiguous = false; // a gap: the rest of the span is not fed (the pass names the missing one)
          continue;
        }
        feed(seq, Number(e[2]), String(e[3]));
        seq++;
      }
      return seq;
    }
    return arrays(this.#client, 'SELECT seq, offset_ms, raw FROM stream_events WHERE call_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq', [callId, first, last]).then((rows) => {
      let seq = first;
      for (const e of rows) {
        if (e[0] !== seq) break;
        feed(seq, Number(e[1]), String(e[2]));
        seq++;
      }
      return seq;
    });
  }

  accessRow(id: number): Maybe<Cells | undefined> {
    return this.#page.access.get(id) ?? (Number.isSafeInteger(id) ? one(this.#client, `SELECT ${ACCESS_COLUMNS.join(', ')} FROM access_log WHERE id = $1`, [id]) : undefined);
  }

  rawRow(callId: string): Maybe<Cells | undefined> {
    return this.#page.raw.get(callId) ?? one(this.#client, 'SELECT call_id, key_id, sealed FROM raw_copies WHERE call_id = $1', [callId]);
  }

  async approvalRows(ids: readonly string[]): Promise<ReadonlyMap<string, Cells>> {
    const rows = new Map<string, Cells>();
    if (!this.#hasApprovals) return rows;
    for (let i = 0; i < ids.length; i += 10_000) {
      const page = await arrays(this.#client, `SELECT ${APPROVAL_COLUMNS.join(', ')} FROM approvals WHERE id = ANY($1::text[])`, [ids.slice(i, i + 10_000)]);
      for (const r of page) rows.set(String(r[0]), r);
    }
    return rows;
  }

  async seqOfHash(hash: string): Promise<number | undefined> {
    const row = await one(this.#client, 'SELECT seq FROM audit_log WHERE hash = $1 LIMIT 1', [hash]);
    return row === undefined ? undefined : Number(row[0]);
  }

  async sessionOwnerMismatch(): Promise<{ sessionId: string; callId: string } | undefined> {
    const row = await one(this.#client, 'SELECT s.id, c.id FROM sessions s JOIN calls c ON c.session_id = s.id WHERE c.subject <> s.subject OR c.issuer <> s.issuer LIMIT 1');
    return row === undefined ? undefined : { sessionId: String(row[0]), callId: String(row[1]) };
  }

  *coverage(state: PassState, fail: Fail): Step<void> {
    const client = this.#client;
    const { firstSeq, cutCalls, coveredRaw } = state;
    const cut = (firstSeq ?? 1) > 1;
    const count = (sql: string): Promise<number> => one(client, sql).then((r) => Number(r?.[0] ?? 0));

    // Calls: a row without its request entry is fine only where a purge cut the chain before it
    // and a remaining entry names the call (pg-audit-maintenance.ts).
    const callCount = yield* settle(count('SELECT count(*) FROM calls'));
    if (callCount > state.coveredCalls) {
      const uncovered = yield* settle(arrays(client, "SELECT c.id FROM calls c WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.kind = 'request' AND a.ref = c.id) ORDER BY c.rec LIMIT $1", [cutCalls.size + 1]));
      for (const [id] of uncovered) {
        if (cut && cutCalls.has(String(id))) continue;
        fail('unrecorded_row', null, 'calls', String(id), `call ${String(id)} has no audit entry: it was inserted behind the gateway`);
      }
    }
    const eventCount = yield* settle(count('SELECT count(*) FROM stream_events'));
    if (eventCount > state.coveredEvents) {
      const extra = yield* settle(
        one(
          client,
          `SELECT e.call_id, e.seq FROM stream_events e WHERE NOT EXISTS (
             SELECT 1 FROM audit_log a WHERE a.kind = 'events' AND a.ref = e.call_id
               AND e.seq BETWEEN split_part(a.span, '..', 1)::bigint AND split_part(a.span, '..', 2)::bigint)
           ORDER BY e.call_id, e.seq LIMIT 1`,
        ),
      );
      const where = extra === undefined ? '' : ` (first: call ${String(extra[0])}, event ${Number(extra[1])})`;
      fail('unrecorded_row', null, 'stream_events', extra === undefined ? null : String(extra[0]), `${eventCount - state.coveredEvents} stream events have no audit entry${where}`);
    }
    const accessCount = yield* settle(count('SELECT count(*) FROM access_log'));
    if (accessCount > state.coveredAccess) {
      const extra = yield* settle(one(client, "SELECT l.id FROM access_log l WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.kind = 'access' AND a.ref = l.id::text) ORDER BY l.id LIMIT 1"));
      const id = extra === undefined ? '?' : String(extra[0]);
      fail('unrecorded_row', null, 'access_log', id, `access_log row ${id} has no audit entry`);
    }
    // Raw copies: each has its entry, but a purge may have cut off that of a call it cut through.
    const rawCount = yield* settle(count('SELECT count(*) FROM raw_copies'));
    if (rawCount > coveredRaw.size) {
      const uncovered = yield* settle(arrays(client, "SELECT r.call_id FROM raw_copies r JOIN calls c ON c.id = r.call_id WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.kind = 'raw' AND a.ref = r.call_id) ORDER BY c.rec LIMIT $1", [cutCalls.size + 1]));
      for (const [callId] of uncovered) {
        const id = String(callId);
        if (coveredRaw.has(id) || (cut && cutCalls.has(id))) continue;
        fail('unrecorded_row', null, 'raw_copies', id, `the raw copy of call ${id} has no audit entry: it was inserted or moved there behind the gateway`);
      }
    }
    if (this.#hasApprovals) {
      for (const [approvalId] of yield* settle(arrays(client, 'SELECT id FROM approvals ORDER BY created_at, id'))) {
        const id = String(approvalId);
        if (!state.approvals.has(id)) fail('unrecorded_row', null, 'approvals', id, `approval ${id} has no audit entry: it was inserted behind the gateway`);
      }
    }
    // Request chunks: each was added by a call whose request entry covers it.
    state.addRows(state.chunks.coveredCount);
    yield* state.chunks.finish(cut, fail);
  }
}
