/**
 * Which request chunks of a session its calls still need (for the retention purge of either
 * driver: sqlite/request-chunk-gc.ts, postgres/pg-audit-maintenance.ts).
 */
import { decodeNode, nodeRefs, parseRequestParts } from '../core/recording/request-chunks.ts';

/** The ids reachable from the calls' request_parts through the session's nodes. */
export function reachableChunks(nodes: Iterable<{ readonly id: number; readonly text: string }>, parts: Iterable<string>): Set<number> {
  const refs = new Map<number, number[]>();
  for (const node of nodes) {
    try {
      refs.set(node.id, nodeRefs(decodeNode(node.text, node.id)));
    } catch {
      refs.set(node.id, []); // malformed (altered): keep nothing it seems to name alive on its account
    }
  }
  const reached = new Set<number>();
  const stack: number[] = [];
  for (const text of parts) {
    const parsed = parseRequestParts(text);
    if (parsed !== null) stack.push(parsed.root);
  }
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    for (const ref of refs.get(id) ?? []) stack.push(ref);
  }
  return reached;
}
