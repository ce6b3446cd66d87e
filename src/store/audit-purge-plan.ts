/**
 * What one chunk of a retention purge removes, from the oldest audit entries and the time of the
 * rows each covers — the same for both drivers (sqlite/audit-maintenance.ts,
 * postgres/pg-audit-maintenance.ts; their file comments give the semantics).
 *
 * The prefix stops at the first entry whose rows are not older than the cut, or are missing
 * (evidence is never purged). A call whose last entry is in the prefix (its result; for a call
 * still 'pending', its last event batch once every event row is covered — the driver counts
 * them) goes entirely. A call that goes on after the prefix (it straddles the cut) keeps its
 * row; only the event rows of its purged batches go with those entries, so every remaining row
 * stays covered by a remaining entry.
 */
import { parseSpan } from '../core/audit/chain.ts';

export interface PurgeEntry {
  readonly seq: number;
  readonly kind: string;
  readonly ref: string;
  readonly span: string | null;
  readonly hash: string;
  /** When the rows it covers were made (a call's start, an access row's time, when an approval can no longer change); null: they are gone. */
  readonly t: number | null;
  /** The call's status (request, result, events and raw entries). */
  readonly status: string | null;
}

export interface PurgeCall {
  /** Its result entry is in the prefix. */
  result: boolean;
  /** Event rows the prefix's batches cover. */
  events: number;
  readonly status: string;
  readonly spans: { first: number; last: number }[];
}

export interface PurgePlan {
  /** The last entry removed (the anchor), or undefined when nothing is old enough. */
  readonly last: PurgeEntry | undefined;
  /** No chunk after this one can remove more. */
  readonly done: boolean;
  readonly calls: ReadonlyMap<string, PurgeCall>;
  readonly accessIds: readonly number[];
  readonly approvalIds: ReadonlySet<string>;
}

/** `entries`: the oldest `limit + 1` entries (one more tells whether the log goes on). */
export function planPurgeChunk(entries: readonly PurgeEntry[], limit: number, cut: number): PurgePlan {
  let prefix = entries.slice(0, limit);
  const stop = prefix.findIndex((e) => e.t === null || e.t >= cut);
  const done = stop !== -1 || entries.length <= limit;
  if (stop !== -1) prefix = prefix.slice(0, stop);
  const calls = new Map<string, PurgeCall>();
  const accessIds: number[] = [];
  const approvalIds = new Set<string>();
  for (const e of prefix) {
    if (e.kind === 'access') {
      accessIds.push(Number(e.ref));
      continue;
    }
    if (e.kind === 'approval') {
      approvalIds.add(e.ref);
      continue;
    }
    let c = calls.get(e.ref);
    if (c === undefined) {
      c = { result: false, events: 0, status: String(e.status), spans: [] };
      calls.set(e.ref, c);
    }
    if (e.kind === 'result') c.result = true;
    if (e.kind === 'events') {
      const span = parseSpan(e.span);
      if (span !== null) {
        c.events += span.last - span.first + 1;
        c.spans.push(span);
      }
    }
  }
  return { last: prefix.at(-1), done: prefix.length === 0 ? true : done, calls, accessIds, approvalIds };
}
