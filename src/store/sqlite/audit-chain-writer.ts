/**
 * Appends audit_log entries: on the writer thread one per request record (and its sealed raw
 * copy), call result, stream-event batch and access_log row; on the approval store's connection
 * one per approvals insert or update. Always inside the transaction that writes those
 * rows (so an entry exists exactly when its rows do). The chain head lives in memory; it moves
 * only once the transaction commits, and goes back on a rollback (or a rolled-back savepoint).
 *
 * The head is the last entry, or — when a retention purge removed every entry — the newest
 * anchor checkpoint, or the genesis hash on a new database. It is read again at the start of
 * each transaction (one indexed query per group), so a second connection writing the same file —
 * the approval store on the main thread, or the old gateway still draining during a restart —
 * cannot fork the chain: each appends under SQLite's write lock (BEGIN IMMEDIATE).
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import {
  formatSpan,
  GENESIS_HASH,
  type ChunkDigest,
  type ACCESS_COLUMNS,
  type APPROVAL_COLUMNS,
  type AuditKind,
  type ColumnsOf,
  type REQUEST_COLUMNS,
  type RESULT_COLUMNS,
} from '../../core/audit/chain.ts';
import {
  accessContentHash,
  approvalContentHash,
  eventsContentHasher,
  linkHash,
  rawCopyContentHash,
  requestContentHash,
  resultContentHash,
} from '../audit-hash.ts';

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** The chain head as stored: last entry, else newest anchor, else genesis. */
export function readChainHead(db: DatabaseSync): ChainHead {
  return headFrom(db.prepare(LAST_ENTRY), db.prepare(LAST_ANCHOR));
}

const LAST_ENTRY = 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1';
const LAST_ANCHOR = "SELECT seq, hash FROM audit_checkpoints WHERE kind = 'anchor' ORDER BY seq DESC, id DESC LIMIT 1";

function headFrom(lastEntry: StatementSync, lastAnchor: StatementSync): ChainHead {
  const last = lastEntry.get();
  if (last !== undefined) return { seq: Number(last['seq']), hash: String(last['hash']) };
  const anchor = lastAnchor.get();
  if (anchor !== undefined) return { seq: Number(anchor['seq']), hash: String(anchor['hash']) };
  return { seq: 0, hash: GENESIS_HASH };
}

export class ChainWriter {
  readonly #insert: StatementSync;
  readonly #lastEntry: StatementSync;
  readonly #lastAnchor: StatementSync;
  #committed: ChainHead;
  #head: ChainHead;
  /** The head was read inside the current transaction. */
  #synced = false;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare(`
      INSERT INTO audit_log (seq, kind, ref, span, at, content_hash, prev_hash, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#lastEntry = db.prepare(LAST_ENTRY);
    this.#lastAnchor = db.prepare(LAST_ANCHOR);
    this.#committed = headFrom(this.#lastEntry, this.#lastAnchor);
    this.#head = this.#committed;
  }

  /** The current (uncommitted) head, to go back to when a savepoint is rolled back. Call inside the transaction. */
  mark(): ChainHead {
    this.#sync();
    return this.#head;
  }

  reset(mark: ChainHead): void {
    this.#head = mark;
  }

  /** The transaction committed: its entries are the chain now. */
  committed(): void {
    this.#committed = this.#head;
    this.#synced = false;
  }

  /** The transaction rolled back: so did its entries. */
  rolledBack(): void {
    this.#head = this.#committed;
    this.#synced = false;
  }

  #sync(): void {
    if (this.#synced) return;
    this.#head = headFrom(this.#lastEntry, this.#lastAnchor);
    this.#committed = this.#head;
    this.#synced = true;
  }

  /** `parts`: a body stored as chunks — calls.request_parts and the chunks this call added. */
  request(row: ColumnsOf<typeof REQUEST_COLUMNS>, parts: { readonly text: string; readonly added: readonly ChunkDigest[] } | null = null): void {
    this.#append('request', String(row.id), null, requestContentHash(row, parts));
  }

  result(row: ColumnsOf<typeof RESULT_COLUMNS>): void {
    this.#append('result', String(row.id), null, resultContentHash(row));
  }

  access(row: ColumnsOf<typeof ACCESS_COLUMNS>): void {
    this.#append('access', String(row.id), null, accessContentHash(row));
  }

  /** A sealed raw copy: its call id, key id and the SHA-256 of the sealed bytes. */
  rawCopy(callId: string, keyId: string, sealed: Uint8Array): void {
    this.#append('raw', callId, null, rawCopyContentHash(callId, keyId, sealed));
  }

  /** An approvals row as written (insert or update). */
  approval(row: ColumnsOf<typeof APPROVAL_COLUMNS>): void {
    this.#append('approval', String(row.id), null, approvalContentHash(row));
  }

  /** One entry for a batch of one call's events, fed as they are inserted. */
  startEvents(callId: string, firstSeq: number): { add(seq: number, offsetMs: number, raw: string): void; end(): void } {
    const content = eventsContentHasher(callId);
    let last = -1;
    return {
      add(seq, offsetMs, raw) {
        content.add(seq, offsetMs, raw);
        last = seq;
      },
      end: () => {
        if (last < firstSeq) return; // no events
        this.#append('events', callId, formatSpan(firstSeq, last), content.hash());
      },
    };
  }

  #append(kind: AuditKind, ref: string, span: string | null, content: string): void {
    this.#sync();
    const seq = this.#head.seq + 1;
    const at = Date.now();
    const prevHash = this.#head.hash;
    const hash = linkHash({ seq, kind, ref, span, at, contentHash: content, prevHash });
    this.#insert.run(seq, kind, ref, span, at, content, prevHash, hash);
    this.#head = { seq, hash };
  }
}
