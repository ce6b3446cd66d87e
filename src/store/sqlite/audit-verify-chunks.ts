/**
 * `aigov audit verify`: the request bodies stored as chunks (migration 9, request-chunk-writer.ts).
 *
 * A call's `request` entry covers its request_parts and the id, kind and SHA-256 of each chunk
 * its recording added (core/audit/chain.ts). At that entry this checks, for each added chunk,
 * that it is still there, in the call's session, and that its text still hashes to its key; then
 * that every chunk the body names (shared ones included) is there. A chunk that changed is
 * named with the calls whose requests it is part of: one edit of a shared chunk alters them all.
 * At the end: chunks no entry covers (inserted behind the gateway), unless a retention purge cut
 * the chain before the calls that added them.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { requestPartsContent, type ChunkDigest } from '../../core/audit/chain.ts';
import { ChunkGraph, decodeNode, LEAF, NODE, nodeRefs, parseRequestParts, type StoredChunk } from '../../core/recording/request-chunks.ts';
import { chunkHash } from '../request-chunk-writer.ts';

export type ChunkFail = (problem: 'content_changed' | 'row_missing' | 'unrecorded_row', seq: number | null, kind: string, ref: string | null, detail: string) => never;

interface ChunkRow {
  readonly id: number;
  readonly session: string;
  readonly kind: number;
  readonly hash: string;
  readonly text: string;
}

export class ChunkVerifier {
  readonly #db: DatabaseSync;
  readonly #present: boolean;
  readonly #range: StatementSync | null;
  readonly #byId: StatementSync | null;
  /** Chunks whose tree was found whole (every chunk under them present, in their session). */
  readonly #whole = new Set<number>();
  /** References of the nodes met, and the session of every chunk met. */
  readonly #refs = new Map<number, readonly number[]>();
  readonly #session = new Map<number, string>();
  /** Ranges of chunk ids covered by request entries. */
  readonly #covered: [number, number][] = [];
  coveredCount = 0;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#present = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'body_chunks'").get() !== undefined;
    this.#range = this.#present ? db.prepare('SELECT id, session_id, kind, lower(hex(hash)) AS hash, text FROM body_chunks WHERE id BETWEEN ? AND ? ORDER BY id') : null;
    this.#byId = this.#present ? db.prepare('SELECT id, session_id, kind, lower(hex(hash)) AS hash, text FROM body_chunks WHERE id = ?') : null;
  }

  /**
   * The content a request entry covers after the call's columns, checking the chunks as it goes
   * (failing through `fail`). `seq`: the entry.
   */
  requestContent(callId: string, sessionId: string, partsText: string, seq: number, fail: ChunkFail): string {
    const parts = parseRequestParts(partsText);
    if (parts === null) fail('content_changed', seq, 'request', callId, `call ${callId}: the recorded request (its chunk list) was changed after it was written (entry ${seq})`);
    if (this.#range === null) fail('row_missing', seq, 'request', callId, `call ${callId}: its request is stored as chunks, but the body_chunks table is gone (entry ${seq})`);
    const added: ChunkDigest[] = [];
    if (parts.first > 0) {
      let expect = parts.first;
      for (const raw of this.#range.iterate(parts.first, parts.last)) {
        const row = toRow(raw);
        if (row.id !== expect) break;
        this.#check(row, callId, sessionId, seq, fail);
        added.push({ id: row.id, kind: row.kind, hash: row.hash });
        expect++;
      }
      if (expect <= parts.last) {
        fail('row_missing', seq, 'request', callId, `call ${callId}: chunk ${expect} of its request was deleted${this.#usedBy(sessionId, expect, callId)} (entry ${seq})`);
      }
      this.#covered.push([parts.first, parts.last]);
      this.coveredCount += parts.last - parts.first + 1;
    }
    this.#walk(parts.root, callId, sessionId, seq, fail);
    return requestPartsContent(partsText, added);
  }

  /** A chunk row: in the call's session, its text still hashing to its key; its references noted. */
  #check(row: ChunkRow, callId: string, sessionId: string, seq: number, fail: ChunkFail): void {
    if (row.session !== sessionId) {
      fail('content_changed', seq, 'request', callId, `call ${callId}: chunk ${row.id} of its request was moved to another session (entry ${seq})`);
    }
    if ((row.kind !== LEAF && row.kind !== NODE) || chunkHash(row.kind, row.text) !== row.hash) {
      fail('content_changed', seq, 'request', callId, `chunk ${row.id} of session ${sessionId} was changed after it was written${this.#usedBy(sessionId, row.id, callId)} (entry ${seq} recorded it with call ${callId})`);
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
  #walk(root: number, callId: string, sessionId: string, seq: number, fail: ChunkFail): void {
    const stack = [root];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (this.#whole.has(id) && this.#session.get(id) === sessionId) continue;
      let refs = this.#refs.get(id);
      if (refs === undefined) {
        // Added by a call whose entry is not in this run (cut by a purge, or before --since).
        const raw = this.#byId!.get(id);
        if (raw === undefined) fail('row_missing', seq, 'request', callId, `call ${callId}: chunk ${id} of its request was deleted${this.#usedBy(sessionId, id, callId)} (entry ${seq})`);
        this.#check(toRow(raw), callId, sessionId, seq, fail);
        refs = this.#refs.get(id) ?? [];
      } else if (this.#session.get(id) !== sessionId) {
        fail('content_changed', seq, 'request', callId, `call ${callId}: its request names chunk ${id} of another session (entry ${seq})`);
      }
      this.#whole.add(id);
      for (const ref of refs) stack.push(ref);
    }
  }

  /** `, part of the requests of N calls (…)` for a problem's detail: whom one shared chunk affects. */
  #usedBy(sessionId: string, chunkId: number, callId: string): string {
    const users = callsUsingChunk(this.#db, sessionId, chunkId);
    if (users.count <= 1) return '';
    const named = users.first.join(', ');
    return `; it is shared: part of the requests of ${users.count} calls (${named}${users.count > users.first.length ? ', …' : ''}), all altered by it — first met at call ${callId}`;
  }

  /**
   * After the pass (only when it started at the chain's start or a purge anchor): chunks no
   * entry covers. `cut`: a purge removed the start of the chain (the chunks of the calls it cut
   * through stay, uncovered, below the first covered one).
   */
  finish(cut: boolean, fail: ChunkFail): { total: number } {
    if (!this.#present) return { total: 0 };
    const db = this.#db;
    const total = Number(db.prepare('SELECT count(*) AS n FROM body_chunks').get()?.['n'] ?? 0);
    if (total === this.coveredCount) return { total };
    const ranges = [...this.#covered].sort((a, b) => a[0] - b[0]);
    const floor = cut ? (ranges[0]?.[0] ?? Number.MAX_SAFE_INTEGER) : 0;
    const above = Number(db.prepare('SELECT count(*) AS n FROM body_chunks WHERE id >= ?').get(floor)?.['n'] ?? 0);
    if (above <= this.coveredCount) return { total };
    let r = 0;
    for (const row of db.prepare('SELECT id, session_id FROM body_chunks WHERE id >= ? ORDER BY id').iterate(floor)) {
      const id = Number(row['id']);
      while (r < ranges.length && ranges[r]![1] < id) r++;
      const range = ranges[r];
      if (range !== undefined && range[0] <= id) continue;
      fail('unrecorded_row', null, 'body_chunks', String(id), `chunk ${id} of session ${String(row['session_id'])} has no audit entry: it was inserted behind the gateway`);
    }
    return { total };
  }
}

function toRow(raw: Record<string, unknown>): ChunkRow {
  return { id: Number(raw['id']), session: String(raw['session_id']), kind: Number(raw['kind']), hash: String(raw['hash']), text: String(raw['text']) };
}

/** The calls of a session whose request body includes chunk `chunkId` (a count, and the first few ids). */
export function callsUsingChunk(db: DatabaseSync, sessionId: string, chunkId: number, named = 3): { count: number; first: string[] } {
  const chunks = new Map<number, StoredChunk>();
  for (const row of db.prepare('SELECT id, kind, text FROM body_chunks WHERE session_id = ?').iterate(sessionId)) {
    chunks.set(Number(row['id']), { kind: Number(row['kind']) === NODE ? NODE : LEAF, text: String(row['text']) });
  }
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
  for (const row of db.prepare('SELECT id, request_parts FROM calls WHERE session_id = ? AND request_parts IS NOT NULL ORDER BY started_at, rowid').iterate(sessionId)) {
    const parts = parseRequestParts(String(row['request_parts']));
    if (parts === null || !reach(parts.root)) continue;
    count++;
    if (first.length < named) first.push(String(row['id']));
  }
  return { count, first };
}
