/**
 * What the approvals inbox knows, as plain data and pure updates (the Ink view renders it): the
 * pending approvals from the live watch, the ones decided or expired while it was open, and
 * which one is selected — kept on the same approval when others arrive or leave.
 */
import type { ApprovalView } from '../protocol/approvals.ts';

/** Decided or expired approvals kept on screen, most recent first. */
export const RECENT_LIMIT = 5;

export interface InboxItems {
  /** Pending, most urgent (soonest to expire) first. */
  readonly pending: readonly ApprovalView[];
  /** Decided or expired while the inbox was open, most recent first. */
  readonly recent: readonly ApprovalView[];
  readonly selectedId: string | null;
}

export const EMPTY_INBOX: InboxItems = { pending: [], recent: [], selectedId: null };

export function visibleItems(items: InboxItems): readonly ApprovalView[] {
  return [...items.pending, ...items.recent];
}

export function selectedItem(items: InboxItems): ApprovalView | null {
  return visibleItems(items).find((v) => v.id === items.selectedId) ?? null;
}

function byUrgency(a: ApprovalView, b: ApprovalView): number {
  return Date.parse(a.expires_at) - Date.parse(b.expires_at) || Date.parse(a.created_at) - Date.parse(b.created_at) || a.id.localeCompare(b.id);
}

/** Keeps the selection on the same approval; if it left, on the row that took its place. */
function reselect(before: InboxItems, after: Omit<InboxItems, 'selectedId'>): InboxItems {
  const next = [...after.pending, ...after.recent];
  if (next.length === 0) return { ...after, selectedId: null };
  if (before.selectedId !== null && next.some((v) => v.id === before.selectedId)) return { ...after, selectedId: before.selectedId };
  const oldIndex = Math.max(0, visibleItems(before).findIndex((v) => v.id === before.selectedId));
  return { ...after, selectedId: next[Math.min(oldIndex, next.length - 1)]?.id ?? null };
}

/** A fresh snapshot (on every connection) replaces the pending list; what we saw decided stays. */
export function applySnapshot(items: InboxItems, snapshot: readonly ApprovalView[]): InboxItems {
  const pending = snapshot.filter((v) => v.state === 'pending').sort(byUrgency);
  const ids = new Set(pending.map((v) => v.id));
  return reselect(items, { pending, recent: items.recent.filter((v) => !ids.has(v.id)) });
}

/** One approval changed: a new or updated pending one, or one that left the pending list. */
export function applyApproval(items: InboxItems, view: ApprovalView): InboxItems {
  const pending = items.pending.filter((v) => v.id !== view.id);
  const recent = items.recent.filter((v) => v.id !== view.id);
  if (view.state === 'pending') return reselect(items, { pending: [...pending, view].sort(byUrgency), recent });
  // An event that arrives late must not undo a newer decision we already show.
  const known = items.recent.find((v) => v.id === view.id);
  const latest = known && known.votes.length > view.votes.length ? known : view;
  return reselect(items, { pending, recent: [latest, ...recent].slice(0, RECENT_LIMIT) });
}

/** Moves the selection by `delta` rows, stopping at the ends. */
export function moveSelection(items: InboxItems, delta: number): InboxItems {
  const list = visibleItems(items);
  if (list.length === 0) return items;
  const at = list.findIndex((v) => v.id === items.selectedId);
  const next = Math.max(0, Math.min(list.length - 1, (at < 0 ? 0 : at) + delta));
  return { ...items, selectedId: list[next]?.id ?? null };
}
