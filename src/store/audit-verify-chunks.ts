/**
 * `aigov audit verify`: the request bodies stored as chunks (request-chunk-writer.ts), for either
 * driver (the rows come from a {@link ChunkSource}).
 *
 * A call's `request` entry covers its request_parts and the id, kind and SHA-256 of each chunk
 * its recording added (core/audit/chain.ts). At that entry this checks, for each added chunk,
 * that it is still there, in the call's session, and that its text still hashes to its key; then
 * that every chunk the body names (shared ones included) is there. A chunk that changed is
 * named with the calls whose requests it is part of: one edit of a shared chunk alters them all.
 * At the end: chunks no entry covers (inserted behind the gateway), unless a retention purge cut
 * the chain before the calls that added them.
 *
 * The methods that read are generators (see audit-verify-core.ts): a source answers at once or
 * with a promise, which the verifier's driver awaits.
 */
import { requestPartsContent, type ChunkDigest } from '../core/audit/chain.ts';
import { ChunkGraph, decodeNode, LEAF, NODE, nodeRefs, parseRequestParts, type StoredChunk } from '../core/recording/request-chunks.ts';
import { chunkHash } from './request-chunk-writer.ts';

export type Maybe<T> = T | Promise<T>;
/** What a verification step yields: a promise its driver settles before the step goes on. */
export type Step<T> = Generator<Promise<unknown>, T, unknown>;

/** The value, or (yielding the promise to the driver) what it resolves to. */
export function* settle<T>(value: Maybe<T>): Step<T> {
  return value instanceof Promise ? ((yield value) as T) : value;
}

export type ChunkFail = (problem: 'content_changed' | 'row_missing' | 'unrecorded_row', seq: number | null, kind: string, ref: string | null, detail: string) => never;

export interface ChunkRow {
  readonly id: number;
  readonly session: string;
  readonly kind: number;
  /** Lower-case hex SHA-256 as stored. */
  readonly hash: string;
  readonly text: string;
}

/** The body_chunks rows of one store, as the verifier needs them. */
export interface ChunkSource {
  /** False when the store has no body_chunks table (an SQLite file from before migration 9). */
  readonly present: boolean;
  /** Chunks with ids in first..last, in id order. */
  range(first: number, last: number): Maybe<Iterable<ChunkRow>>;
  byId(id: number): Maybe<ChunkRow | undefined>;
  /** The calls of a session whose request body includes the chunk: a count and the first few ids. */
  callsUsing(sessionId: string, chunkId: number): Maybe<{ count: number; first: string[] }>;
  count(): Maybe<number>;
  countFrom(floor: number): Maybe<number>;
  /** The first chunk at or above `floor` in none of `ranges` (sorted by start), or undefined. */
  firstUncovered(floor: number, ranges: readonly (readonly [number, number])[]): Maybe<{ id: number; session: string } | undefined>;
}

export class ChunkVerifier {
  readonly #source: ChunkSource;
  /** Chunks whose tree was found whole (every chunk under them present, in their session). */
  readonly #whole = new Set<number>();
  /** References of the nodes met, and the session of every chunk met. */
  readonly #refs = new Map<number, readonly number[]>();
  readonly #session = new Map<number, string>();
  /** Ranges of chunk ids covered by request entries. */
  readonly #covered: [number, number][] = [];
  coveredCount = 0;

  constructor(source: ChunkSource) {
    this.#source = source;
  }

  /**
   * The content a request entry covers after the call's columns, checking the chunks as it goes
   * (failing through `fail`). `seq`: the entry.
   */
  *requestContent(callId: string, sessionId: string, partsText: string, seq: number, fail: ChunkFail): Step<string> {
    const parts = parseRequestParts(partsText);
    if (parts === null) fail('content_changed', seq, 'request', callId, `call ${callId}: the recorded request (its chunk list) was changed after it was written (entry ${seq})`);
    if (!this.#source.present) fail('row_missing', seq, 'request', callId, `call ${callId}: its request is stored as chunks, but the body_chunks table is gone (entry ${seq})`);
    const added: ChunkDigest[] = [];
    if (parts.first > 0) {
      let expect = parts.first;
      for (const row of yield* settle(this.#source.range(parts.first, parts.last))) {
        if (row.id !== expect) break;
        yield* this.#check(row, callId, sessionId, seq, fail);
        added.push({ id: row.id, kind: row.kind, hash: row.hash });
        expect++;
      }
      if (expect <= parts.last) {
        fail('row_missing', seq, 'request', callId, `call ${callId}: chunk ${expect} of its request was deleted${yield* this.#usedBy(sessionId, expect, callId)} (entry ${seq})`);
      }
      this.#covered.push([parts.first, parts.last]);
      this.coveredCount += parts.last - parts.first + 1;
    }
    yield* this.#walk(parts.root, callId, sessionId, seq, fail);
    return requestPartsContent(partsText, added);
  }

  /** A chunk row: in the call's session, its text still hashing to its key; its references noted. */
  *#check(row: ChunkRow, callId: string, sessionId: string, seq: number, fail: ChunkFail): Step<void> {
    if (row.session !== sessionId) {
      fail('content_changed', seq, 'request', callId, `call ${callId}: chunk ${row.id} of its request was moved to another session (entry ${seq})`);
    }
    if ((row.kind !== LEAF && row.kind !== NODE) || chunkHash(row.kind, row.text) !== row.hash) {
      fail('content_changed', seq, 'request', callId, `chunk ${row.id} of session ${sessionId} was changed after it was written${yield* this.#usedBy(sessionId, row.id, callId)} (entry ${seq} recorded it with call ${callId})`);
    }
    this.#session.set(row.id, row.session);
    if (row.kind === NODE) {
      try {
        this.#refs.set(row.id, nodeRefs(decodeNode(row.text, row.id)));
      } catch {
        fail('content_changed', seq, 'request', callId, `chunk ${row.id} of session ${sessionId} is malformed (entry ${seq} recorded it with call ${callId})`);
      }
    } else {
      this.#refs.set(row.id, []);
    }
  }

  /** Every chunk under `root` is there and in the session. */
  *#walk(root: number, callId: string, sessionId: string, seq: number, fail: ChunkFail): Step<void> {
    const stack = [root];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (this.#whole.has(id) && this.#session.get(id) === sessionId) continue;
      let refs = this.#refs.get(id);
      if (refs === undefined) {
        // Added by a call whose entry is not in this run (cut by a purge, or before --since).
        const row = yield* settle(this.#source.byId(id));
        if (row === undefined) fail('row_missing', seq, 'request', callId, `call ${callId}: chunk ${id} of its request was deleted${yield* this.#usedBy(sessionId, id, callId)} (entry ${seq})`);
        yield* this.#check(row, callId, sessionId, seq, fail);
        refs = this.#refs.get(id) ?? [];
      } else if (this.#session.get(id) !== sessionId) {
        fail('content_changed', seq, 'request', callId, `call ${callId}: its request names chunk ${id} of another session (entry ${seq})`);
      }
      this.#whole.add(id);
      for (const ref of refs) stack.push(ref);
    }
  }

  /** `, part of the requests of N calls (…)` for a problem's detail: whom one shared chunk affects. */
  *#usedBy(sessionId: string, chunkId: number, callId: string): Step<string> {
    const users = yield* settle(this.#source.callsUsing(sessionId, chunkId));
    if (users.count <= 1) return '';
    const named = users.first.join(', ');
    return `; it is shared: part of the requests of ${users.count} calls (${named}${users.count > users.first.length ? ', …' : ''}), all altered by it — first met at call ${callId}`;
  }

  /**
   * After the pass (only when it started at the chain's start or a purge anchor): chunks no
   * entry covers. `cut`: a purge removed the start of the chain (the chunks of the calls it cut
   * through stay, uncovered, below the first covered one).
   */
  *finish(cut: boolean, fail: ChunkFail): Step<{ total: number }> {
    if (!this.#source.present) return { total: 0 };
    const total = yield* settle(this.#source.count());
    if (total === this.coveredCount) return { total };
    const ranges = [...this.#covered].sort((a, b) => a[0] - b[0]);
    const floor = cut ? (ranges[0]?.[0] ?? Number.MAX_SAFE_INTEGER) : 0;
    const above = yield* settle(this.#source.countFrom(floor));
    if (above <= this.coveredCount) return { total };
    const extra = yield* settle(this.#source.firstUncovered(floor, ranges));
    if (extra !== undefined) fail('unrecorded_row', null, 'body_chunks', String(extra.id), `chunk ${extra.id} of session ${extra.session} has no audit entry: it was inserted behind the gateway`);
    return { total };
  }
}

/** The first of `ids` (ascending) in none of `ranges` (sorted by start). */
export function firstOutside(ids: Iterable<{ id: number; session: string }>, ranges: readonly (readonly [number, number])[]): { id: number; session: string } | undefined {
  let r = 0;
  for (const row of ids) {
    while (r < ranges.length && ranges[r]![1] < row.id) r++;
    const range = ranges[r];
    if (range !== undefined && range[0] <= row.id) continue;
    return row;
  }
  return undefined;
}

/**
 * The calls of a session whose request body includes chunk `chunkId`: a count, and the first
 * `named` ids. `chunks`: the session's chunks; `calls`: its calls with a chunked body, in order.
 */
export function callsUsingChunk(chunks: ReadonlyMap<number, StoredChunk>, calls: Iterable<{ readonly id: string; readonly parts: string }>, chunkId: number, named = 3): { count: number; first: string[] } {
  const graph = new ChunkGraph((id) => chunks.get(id));
  const reaches = new Map<number, boolean>();
  const reach = (id: number): boolean => {
    if (id === chunkId) return true;
    const known = reaches.get(id);
    if (known !== undefined) return known;
    let found = false;
    try {
      const node = graph.node(id);
      if (node !== null) found = nodeRefs(node).some(reach);
    } catch {
      found = false;
    }
    reaches.set(id, found);
    return found;
  };
  let count = 0;
  const first: string[] = [];
  for (const call of calls) {
    const parts = parseRequestParts(call.parts);
    if (parts === null || !reach(parts.root)) continue;
    count++;
    if (first.length < named) first.push(call.id);
  }
  return { count, first };
}

/** A stored chunk kind as the graph reads it. */
export function storedChunk(kind: number, text: string): StoredChunk {
  return { kind: kind === NODE ? NODE : LEAF, text };
}
