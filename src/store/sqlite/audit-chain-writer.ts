/**
 * The writer thread's half of the audit chain: appends one audit_log entry per request record,
 * call result, stream-event batch and access_log row, inside the transaction that writes those
 * rows (so an entry exists exactly when its rows do). The chain head lives in memory; it moves
 * only once the transaction commits, and goes back on a rollback (or a rolled-back savepoint).
 *
 * On open the head is the last entry, or — when a retention purge removed every entry — the
 * newest anchor checkpoint, or the genesis hash on a new database.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import {
  feedAccessContent,
  feedRequestContent,
  feedResultContent,
  formatSpan,
  GENESIS_HASH,
  startEventsContent,
  type ACCESS_COLUMNS,
  type AuditKind,
  type ColumnsOf,
  type REQUEST_COLUMNS,
  type RESULT_COLUMNS,
} from '../../core/audit/chain.ts';
import { linkHash, textHash, TextSink } from './audit-hash.ts';

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** The chain head as stored: last entry, else newest anchor, else genesis. */
export function readChainHead(db: DatabaseSync): ChainHead {
  const last = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get();
  if (last !== undefined) return { seq: Number(last['seq']), hash: String(last['hash']) };
  const anchor = db.prepare("SELECT seq, hash FROM audit_checkpoints WHERE kind = 'anchor' ORDER BY seq DESC, id DESC LIMIT 1").get();
  if (anchor !== undefined) return { seq: Number(anchor['seq']), hash: String(anchor['hash']) };
  return { seq: 0, hash: GENESIS_HASH };
}

export class ChainWriter {
  readonly #insert: StatementSync;
  #committed: ChainHead;
  #head: ChainHead;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare(`
      INSERT INTO audit_log (seq, kind, ref, span, at, content_hash, prev_hash, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#committed = readChainHead(db);
    this.#head = this.#committed;
  }

  /** The current (uncommitted) head, to go back to when a savepoint is rolled back. */
  mark(): ChainHead {
    return this.#head;
  }

  reset(mark: ChainHead): void {
    this.#head = mark;
  }

  /** The transaction committed: its entries are the chain now. */
  committed(): void {
    this.#committed = this.#head;
  }

  /** The transaction rolled back: so did its entries. */
  rolledBack(): void {
    this.#head = this.#committed;
  }

  request(row: ColumnsOf<typeof REQUEST_COLUMNS>): void {
    const sink = new TextSink();
    feedRequestContent(sink, row);
    this.#append('request', String(row.id), null, textHash(sink.text));
  }

  result(row: ColumnsOf<typeof RESULT_COLUMNS>): void {
    const sink = new TextSink();
    feedResultContent(sink, row);
    this.#append('result', String(row.id), null, textHash(sink.text));
  }

  access(row: ColumnsOf<typeof ACCESS_COLUMNS>): void {
    const sink = new TextSink();
    feedAccessContent(sink, row);
    this.#append('access', String(row.id), null, textHash(sink.text));
  }

  /** One entry for a batch of one call's events, fed as they are inserted. */
  startEvents(callId: string, firstSeq: number): { add(seq: number, offsetMs: number, raw: string): void; end(): void } {
    const sink = new TextSink();
    const content = startEventsContent(sink, callId);
    let last = -1;
    return {
      add(seq, offsetMs, raw) {
        content.add(seq, offsetMs, raw);
        last = seq;
      },
      end: () => {
        if (last < firstSeq) return; // no events
        this.#append('events', callId, formatSpan(firstSeq, last), textHash(sink.text));
      },
    };
  }

  #append(kind: AuditKind, ref: string, span: string | null, content: string): void {
    const seq = this.#head.seq + 1;
    const at = Date.now();
    const prevHash = this.#head.hash;
    const hash = linkHash({ seq, kind, ref, span, at, contentHash: content, prevHash });
    this.#insert.run(seq, kind, ref, span, at, content, prevHash, hash);
    this.#head = { seq, hash };
  }
}
