/**
 * Retention for request chunks (migration 9): when a purge deletes calls, the chunks of their
 * sessions that no remaining call's body names go too — all of a session's chunks once the
 * session is gone. Runs inside the purge's transaction (audit-maintenance.ts). When it deletes
 * anything it moves body_chunks_gc.generation, so the writer thread forgets the chunk ids it
 * remembers (request-chunk-writer.ts) before naming one that is gone.
 */
import type { DatabaseSync, SQLOutputValue } from 'node:sqlite';
import { reachableChunks } from '../request-chunk-reach.ts';

/** Deletes the chunks of `sessionIds` that no call needs any more; returns how many. */
export function collectRequestChunks(db: DatabaseSync, sessionIds: Iterable<string>): number {
  const sessionExists = db.prepare('SELECT 1 FROM sessions WHERE id = ?');
  const deleteAll = db.prepare('DELETE FROM body_chunks WHERE session_id = ?');
  const roots = db.prepare('SELECT request_parts FROM calls WHERE session_id = ? AND request_parts IS NOT NULL');
  const nodes = db.prepare('SELECT id, text FROM body_chunks WHERE session_id = ? AND kind = 1');
  const deleteUnreached = db.prepare('DELETE FROM body_chunks WHERE session_id = ? AND id NOT IN (SELECT value FROM json_each(?))');
  let deleted = 0;
  for (const sessionId of new Set(sessionIds)) {
    if (sessionExists.get(sessionId) === undefined) {
      deleted += Number(deleteAll.run(sessionId).changes);
      continue;
    }
    const reached = reachableChunks(
      mapRows(nodes.iterate(sessionId), (row) => ({ id: Number(row['id']), text: String(row['text']) })),
      mapRows(roots.iterate(sessionId), (row) => String(row['request_parts'])),
    );
    deleted += Number(deleteUnreached.run(sessionId, JSON.stringify([...reached])).changes);
  }
  if (deleted > 0) db.prepare('UPDATE body_chunks_gc SET generation = generation + 1').run();
  return deleted;
}

function* mapRows<T>(rows: Iterable<Record<string, SQLOutputValue>>, map: (row: Record<string, SQLOutputValue>) => T): Iterable<T> {
  for (const row of rows) yield map(row);
}
