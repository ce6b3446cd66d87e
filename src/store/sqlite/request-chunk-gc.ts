/**
 * Retention for request chunks (migration 9): when a purge deletes calls, the chunks of their
 * sessions that no remaining call's body names go too — all of a session's chunks once the
 * session is gone. Runs inside the purge's transaction (audit-maintenance.ts). When it deletes
 * anything it moves body_chunks_gc.generation, so the writer thread forgets the chunk ids it
 * remembers (request-chunk-writer.ts) before naming one that is gone.
 */
import type { DatabaseSync } from 'node:sqlite';
import { decodeNode, nodeRefs, parseRequestParts } from '../../core/recording/request-chunks.ts';

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
    const refs = new Map<number, number[]>();
    for (const row of nodes.iterate(sessionId)) {
      const id = Number(row['id']);
      try {
        refs.set(id, nodeRefs(decodeNode(String(row['text']), id)));
      } catch {
        refs.set(id, []); // malformed (altered): keep nothing it seems to name alive on its account
      }
    }
    const reached = new Set<number>();
    const stack: number[] = [];
    for (const row of roots.iterate(sessionId)) {
      const parts = parseRequestParts(String(row['request_parts']));
      if (parts !== null) stack.push(parts.root);
    }
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (reached.has(id)) continue;
      reached.add(id);
      for (const ref of refs.get(id) ?? []) stack.push(ref);
    }
    deleted += Number(deleteUnreached.run(sessionId, JSON.stringify([...reached])).changes);
  }
  if (deleted > 0) db.prepare('UPDATE body_chunks_gc SET generation = generation + 1').run();
  return deleted;
}
