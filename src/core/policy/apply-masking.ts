/**
 * Applying a request masking plan to one piece of text (the gateway rewrites each target's
 * string in the provider body; `aigov policy test` shows the result).
 */
import { detectEntities } from '../detection/index.ts';
import { maskText } from '../masking/operators.ts';
import type { PseudonymVault } from '../masking/pseudonym-vault.ts';
import type { PlannedSpan, RequestMaskingPlan, RequestMaskTarget, TextLocation } from './types.ts';

/** `text` with every planned span replaced by its rule's operator. Pseudonymizing needs `vault`. */
export function applyPlannedSpans(text: string, spans: readonly PlannedSpan[], vault?: PseudonymVault): string {
  return maskText(text, spans, (d) => (d as PlannedSpan).operator, vault);
}

/** The target for a location, if the plan masks anything there. */
export function targetAt(targets: readonly RequestMaskTarget[], location: TextLocation): RequestMaskTarget | undefined {
  const key = JSON.stringify(location);
  return targets.find((t) => JSON.stringify(t.location) === key);
}

/**
 * A rewriter for request texts as the gateway meets them in the provider body (it sees strings,
 * not locations). A text found among the plan's targets gets exactly its planned spans; any
 * other text is scanned afresh with the applied rules' detectors — more masking, never less.
 */
export function createRequestRewriter(plan: RequestMaskingPlan, vault?: PseudonymVault): (text: string) => string {
  return (text: string): string => {
    if (text === '') return text;
    const spans = plan.spansFor(text);
    if (spans) return applyPlannedSpans(text, spans, vault);
    const fresh = detectEntities(text, plan.detectors);
    return fresh.length === 0 ? text : maskText(text, fresh, plan.operatorFor, vault);
  };
}
