/**
 * The writer's side of chunked request bodies (src/core/recording/request-chunks.ts), for either
 * driver: gives each part of a split body a chunk id in its session — an existing one when the
 * session already stored the same bytes (SHA-256 of kind and text), else a new body_chunks row —
 * and returns what the call row and its audit entry record. The rows themselves go through
 * {@link ChunkRows} (SQLite: statements on the writer thread, sqlite/request-chunk-rows.ts;
 * PostgreSQL: rows collected for the transaction's batched insert, postgres/pg-writer.ts).
 *
 * Per session it keeps in memory the hashes of its chunks (loaded from the database on first
 * use) and, per array path (`messages`, `input`, …), the last array node written with its
 * pieces, so the next one can name it as its base. A retention purge that removes chunks no
 * call needs any more moves a generation number; the next transaction then forgets everything
 * (ids it remembered may be gone). A rolled-back write forgets its session (read again next time).
 * Another process writing the same session (a second replica) only means fewer shared chunks:
 * what is remembered stays true until a purge, and nothing requires a chunk to be stored once.
 */
import { hash } from 'node:crypto';
import {
  encodeNode,
  formatRequestParts,
  LEAF,
  MAX_BASE_DEPTH,
  NODE,
  splitBody,
  type BodyPart,
  type ChunkKind,
  type NodePart,
} from '../core/recording/request-chunks.ts';

/** Where the chunk rows are; every call happens inside the writer's current transaction. */
export interface ChunkRows {
  /** The session's stored chunks: [hex hash, id]. */
  load(sessionId: string): Iterable<readonly [string, number]>;
  /** Stores a new chunk; returns its id. The ids of one call's chunks are consecutive. */
  insert(sessionId: string, hexHash: string, kind: ChunkKind, text: string): number;
  /** Moves when a purge deleted chunks. */
  generation(): number;
}

/** A chunk added by one call's recording (covered by that call's audit entry). */
export interface NewChunk {
  readonly id: number;
  readonly kind: ChunkKind;
  /** Hex SHA-256 of the kind digit followed by the text. */
  readonly hash: string;
}

export interface ChunkedBody {
  /** calls.request_parts. */
  readonly parts: string;
  readonly added: readonly NewChunk[];
  /** Characters of text the new chunks hold (for the WAL size estimate). */
  readonly bytes: number;
}

/** Hex SHA-256 of a chunk as stored: its kind digit, then its text. */
export function chunkHash(kind: ChunkKind, text: string): string {
  return hash('sha256', `${kind}${text}`, 'hex');
}

interface ArrayMemo {
  readonly id: number;
  readonly pieces: readonly (string | number)[];
  readonly depth: number;
}

interface SessionMemo {
  readonly byHash: Map<string, number>;
  readonly arrays: Map<string, ArrayMemo>;
}

/** Sessions remembered at most, and chunk hashes over all of them (~120 bytes each). */
const SESSIONS_REMEMBERED = 256;
const HASHES_REMEMBERED = 200_000;

interface WriteState {
  readonly added: NewChunk[];
  bytes: number;
}

export class RequestChunkWriter {
  readonly #rows: ChunkRows;
  readonly #sessions = new Map<string, SessionMemo>();
  #seenGeneration = -1;

  constructor(rows: ChunkRows) {
    this.#rows = rows;
  }

  /** True when the session's chunk hashes are in memory (else the next write of it loads them). */
  remembers(sessionId: string): boolean {
    return this.#sessions.has(sessionId);
  }

  /**
   * Stores `body` as chunks of `sessionId` (inside the caller's transaction). Null when the body
   * stays whole (short, or not a JSON object/array that splits).
   */
  write(sessionId: string, body: string): ChunkedBody | null {
    const tree = splitBody(body);
    if (tree === null) return null;
    const memo = this.#memo(sessionId);
    const state: WriteState = { added: [], bytes: 0 };
    const root = this.#place(sessionId, memo, tree, state);
    const added = state.added;
    const parts = formatRequestParts({ root, first: added[0]?.id ?? 0, last: added.at(-1)?.id ?? 0 });
    return { parts, added, bytes: state.bytes };
  }

  /**
   * Call at the start of each write transaction: when a purge removed chunks since (it moves
   * body_chunks_gc.generation in its own transaction), everything remembered is dropped.
   */
  begin(): void {
    const generation = this.#rows.generation();
    if (generation !== this.#seenGeneration) {
      this.#sessions.clear();
      this.#seenGeneration = generation;
    }
  }

  /** Drops what is remembered of a session (after a rollback). */
  forget(sessionId: string): void {
    this.#sessions.delete(sessionId);
  }

  #memo(sessionId: string): SessionMemo {
    let memo = this.#sessions.get(sessionId);
    if (memo !== undefined) {
      this.#sessions.delete(sessionId); // most recently used last
      this.#sessions.set(sessionId, memo);
      return memo;
    }
    memo = { byHash: new Map(), arrays: new Map() };
    for (const [digest, id] of this.#rows.load(sessionId)) memo.byHash.set(digest, id);
    this.#sessions.set(sessionId, memo);
    // Least recently used first: forget sessions while over either bound (never the one in use).
    let hashes = 0;
    for (const m of this.#sessions.values()) hashes += m.byHash.size;
    for (const [id, m] of this.#sessions) {
      if (this.#sessions.size <= SESSIONS_REMEMBERED && hashes <= HASHES_REMEMBERED) break;
      if (id === sessionId) break;
      this.#sessions.delete(id);
      hashes -= m.byHash.size;
    }
    return memo;
  }

  /** The id of a part (children first), stored when new. */
  #place(sessionId: string, memo: SessionMemo, part: BodyPart, state: WriteState): number {
    if (part.kind === LEAF) return this.#store(sessionId, memo, LEAF, part.text, state);
    const pieces = part.pieces.map((p) => (typeof p === 'string' ? p : this.#place(sessionId, memo, p, state)));
    return part.array ? this.#storeArray(sessionId, memo, part, pieces, state) : this.#store(sessionId, memo, NODE, encodeNode(false, 0, 0, pieces, part.names), state);
  }

  /** An array node: on the last array of its path as base when they share a useful prefix. */
  #storeArray(sessionId: string, memo: SessionMemo, part: NodePart, pieces: readonly (string | number)[], state: WriteState): number {
    const last = part.depth <= 2 ? memo.arrays.get(part.path) : undefined;
    let id: number;
    let depth = 0;
    if (last !== undefined && last.depth < MAX_BASE_DEPTH) {
      let common = 0;
      const max = Math.min(last.pieces.length, pieces.length);
      while (common < max && last.pieces[common] === pieces[common]) common++;
      if (common === pieces.length && common === last.pieces.length) {
        return last.id;
      }
      if (common >= 4) {
        id = this.#store(sessionId, memo, NODE, encodeNode(true, last.id, common, pieces.slice(common), null), state);
        depth = last.depth + 1;
      } else {
        id = this.#store(sessionId, memo, NODE, encodeNode(true, 0, 0, pieces, null), state);
      }
    } else {
      id = this.#store(sessionId, memo, NODE, encodeNode(true, 0, 0, pieces, null), state);
    }
    if (part.depth <= 2) memo.arrays.set(part.path, { id, pieces, depth });
    return id;
  }

  #store(sessionId: string, memo: SessionMemo, kind: ChunkKind, text: string, state: WriteState): number {
    const digest = chunkHash(kind, text);
    const known = memo.byHash.get(digest);
    if (known !== undefined) {
      return known;
    }
    const id = this.#rows.insert(sessionId, digest, kind, text);
    memo.byHash.set(digest, id);
    state.added.push({ id, kind, hash: digest });
    state.bytes += text.length;
    return id;
  }
}
