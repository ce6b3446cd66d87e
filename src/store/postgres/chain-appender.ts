/**
 * The audit chain on PostgreSQL: the entries one write transaction appends. Every replica's write
 * transactions lock the one chain_head row first (FOR UPDATE), so their appends are serialized
 * and form ONE chain, whatever the number of replicas; a transaction that rolls back takes its
 * entries with it and the head row is unchanged. Two ways to link them:
 * - {@link ChainAppender}: built in memory from the head the transaction locked and read (the
 *   locked path: a round trip to read the head before the write);
 * - {@link UnlinkedEntries}: kind, ref, span, time and content hash only; the database function
 *   that writes them (migration 6, aigov_append_entries) locks the head and computes seq,
 *   prev_hash and hash itself (the one-round-trip path), with the same canonical text.
 *
 * Content hashes are the SQLite store's (src/store/audit-hash.ts over src/core/audit/chain.ts),
 * computed from the values as written, so both drivers' chains mean the same thing.
 */
import { formatSpan, type AuditKind } from '../../core/audit/chain.ts';
import { linkHash } from '../audit-hash.ts';

export interface ChainHeadRow {
  readonly seq: number;
  readonly hash: string;
}

/** audit_log columns as parallel arrays, for one `INSERT … SELECT FROM unnest(…)`. */
export interface EntryColumns {
  readonly seq: number[];
  readonly kind: string[];
  readonly ref: string[];
  readonly span: (string | null)[];
  readonly at: number[];
  readonly contentHash: string[];
  readonly prevHash: string[];
  readonly hash: string[];
}

/** Where a write's entries go: linked here ({@link ChainAppender}) or by the database ({@link UnlinkedEntries}). */
export interface EntrySink {
  append(kind: AuditKind, ref: string, span: string | null, contentHash: string): void;
  events(callId: string, first: number, last: number, contentHash: string): void;
  readonly size: number;
}

export class ChainAppender implements EntrySink {
  #head: ChainHeadRow;
  readonly columns: EntryColumns = { seq: [], kind: [], ref: [], span: [], at: [], contentHash: [], prevHash: [], hash: [] };
  readonly #now: () => number;

  constructor(head: ChainHeadRow, now: () => number = Date.now) {
    this.#head = head;
    this.#now = now;
  }

  /** The head after the entries appended so far (what chain_head must say once they commit). */
  get head(): ChainHeadRow {
    return this.#head;
  }

  get size(): number {
    return this.columns.seq.length;
  }

  append(kind: AuditKind, ref: string, span: string | null, contentHash: string): void {
    const seq = this.#head.seq + 1;
    const at = this.#now();
    const prevHash = this.#head.hash;
    const hash = linkHash({ seq, kind, ref, span, at, contentHash, prevHash });
    const c = this.columns;
    c.seq.push(seq);
    c.kind.push(kind);
    c.ref.push(ref);
    c.span.push(span);
    c.at.push(at);
    c.contentHash.push(contentHash);
    c.prevHash.push(prevHash);
    c.hash.push(hash);
    this.#head = { seq, hash };
  }

  events(callId: string, first: number, last: number, contentHash: string): void {
    this.append('events', callId, formatSpan(first, last), contentHash);
  }
}

/** The INSERT part of a statement that appends the entries ($first … $first+7) and moves the head ($first+8, $first+9). */
export function entriesSql(first: number): { readonly cte: string; readonly head: string } {
  const p = (i: number): string => `$${first + i}`;
  return {
    cte: `entries AS (
      INSERT INTO audit_log (seq, kind, ref, span, at, content_hash, prev_hash, hash)
      SELECT * FROM unnest(${p(0)}::bigint[], ${p(1)}::text[], ${p(2)}::text[], ${p(3)}::text[], ${p(4)}::bigint[], ${p(5)}::text[], ${p(6)}::text[], ${p(7)}::text[])
    )`,
    head: `UPDATE chain_head SET seq = ${p(8)}, hash = ${p(9)}`,
  };
}

/** The parameters {@link entriesSql} expects. */
export function entriesParams(chain: ChainAppender): unknown[] {
  const c = chain.columns;
  return [c.seq, c.kind, c.ref, c.span, c.at, c.contentHash, c.prevHash, c.hash, chain.head.seq, chain.head.hash];
}

/** Entries whose seq, prev_hash and hash the database computes under its head lock (aigov_append_entries). */
export class UnlinkedEntries implements EntrySink {
  readonly kind: string[] = [];
  readonly ref: string[] = [];
  readonly span: (string | null)[] = [];
  readonly at: number[] = [];
  readonly contentHash: string[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get size(): number {
    return this.kind.length;
  }

  append(kind: AuditKind, ref: string, span: string | null, contentHash: string): void {
    this.kind.push(kind);
    this.ref.push(ref);
    this.span.push(span);
    this.at.push(this.#now());
    this.contentHash.push(contentHash);
  }

  events(callId: string, first: number, last: number, contentHash: string): void {
    this.append('events', callId, formatSpan(first, last), contentHash);
  }
}
