/**
 * The SQLite rows behind RequestChunkWriter (src/store/request-chunk-writer.ts), on the writer
 * thread's connection: body_chunks ids come from AUTOINCREMENT (they only grow, so one call's
 * chunks are one range), the purge generation from body_chunks_gc.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ChunkKind } from '../../core/recording/request-chunks.ts';
import { RequestChunkWriter, type ChunkRows } from '../request-chunk-writer.ts';

export { chunkHash } from '../request-chunk-writer.ts';

class SqliteChunkRows implements ChunkRows {
  readonly #insert: StatementSync;
  readonly #load: StatementSync;
  readonly #generation: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO body_chunks (session_id, hash, kind, text) VALUES (?, ?, ?, ?)');
    this.#load = db.prepare('SELECT id, lower(hex(hash)) AS hash FROM body_chunks WHERE session_id = ?');
    this.#generation = db.prepare('SELECT generation FROM body_chunks_gc');
  }

  *load(sessionId: string): Iterable<readonly [string, number]> {
    for (const row of this.#load.iterate(sessionId)) yield [String(row['hash']), Number(row['id'])];
  }

  insert(sessionId: string, hexHash: string, kind: ChunkKind, text: string): number {
    return Number(this.#insert.run(sessionId, Buffer.from(hexHash, 'hex'), kind, text).lastInsertRowid);
  }

  generation(): number {
    return Number(this.#generation.get()?.['generation'] ?? 0);
  }
}

/** The writer thread's chunk writer over its connection. */
export function sqliteChunkWriter(db: DatabaseSync): RequestChunkWriter {
  return new RequestChunkWriter(new SqliteChunkRows(db));
}
