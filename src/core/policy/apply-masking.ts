/**
 * Applying a request masking plan: the spans policy planned at each location, written into the
 * body's text slots by location (`aigov policy test` shows the same result on one text).
 */
import { maskText } from '../masking/operators.ts';
import type { PseudonymVault } from '../masking/pseudonym-vault.ts';
import type { PlannedSpan, RequestMaskingPlan, RequestMaskTarget, TextLocation, TextSlot } from './types.ts';

/** `text` with every planned span replaced by its rule's operator. Pseudonymizing needs `vault`. */
export function applyPlannedSpans(text: string, spans: readonly PlannedSpan[], vault?: PseudonymVault): string {
  return maskText(text, spans, (d) => (d as PlannedSpan).operator, vault);
}

/** The target for a location, if the plan masks anything there. */
export function targetAt(targets: readonly RequestMaskTarget[], location: TextLocation): RequestMaskTarget | undefined {
  const key = locationKey(location);
  return targets.find((t) => locationKey(t.location) === key);
}

function locationKey(location: TextLocation): string {
  switch (location.kind) {
    case 'message':
      return `m:${location.message}:${location.part}:${location.field}`;
    case 'input':
      return `i:${location.index}`;
    case 'tool_definition':
      return `t:${location.tool}:${location.field}`;
    case 'field':
      return `f:${location.path}`;
  }
}

/**
 * The masked text of one slot: the spans planned at its location, shifted to the slot (a span
 * that runs over the edge of a slot is masked on each side of it). A slot whose location has no
 * planned span keeps its text.
 */
export function createRequestRewriter(plan: RequestMaskingPlan, vault?: PseudonymVault): (slot: Pick<TextSlot, 'location' | 'text' | 'offset'>) => string {
  const byLocation = new Map(plan.targets.map((t) => [locationKey(t.location), t.spans]));
  return (slot) => {
    const spans = byLocation.get(locationKey(slot.location));
    if (!spans || slot.text === '') return slot.text;
    const start = slot.offset;
    const end = start + slot.text.length;
    const local: PlannedSpan[] = [];
    for (const s of spans) {
      if (s.end <= start || s.start >= end) continue;
      local.push(s.start >= start && s.end <= end ? { ...s, start: s.start - start, end: s.end - start } : { ...s, start: Math.max(s.start, start) - start, end: Math.min(s.end, end) - start });
    }
    return local.length === 0 ? slot.text : applyPlannedSpans(slot.text, local, vault);
  };
}
