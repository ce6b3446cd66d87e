/**
 * What a call reserves and what it is charged, and on which counters — pure functions of the
 * request, the price, the budgets and the time.
 *
 * A request reserves its worst case before it is forwarded:
 * - input: the UTF-8 length of the body as sent (a BPE token is at least one byte of the text
 *   it stands for, and the JSON around the text is longer than the tokens the provider adds per
 *   message), plus {@link REFERENCED_PART_TOKENS} for each image or file the body only names
 *   (a URL, a file id): those tokens are not in the body;
 * - output: the request's own maximum (`max_completion_tokens` / `max_tokens` /
 *   `max_output_tokens`, times `n` choices), else the policy's `budgets_default_output_cap` —
 *   an answer to a request that states no maximum can go past it: that call is charged what it
 *   really cost, and so can overshoot its budget by the difference;
 * - dollars: those tokens at the requested model's prices (input at its dearest rate the request
 *   can be billed: a request that asks for caching may be billed cache writes).
 * The reservation is settled with the call's real charge when it ends ({@link chargeOf}).
 */
import { callCostNanoUsd, type ModelPrice } from '../cost/price-call.ts';
import type { NormalizedRequest, ProviderKind, Usage } from '../events.ts';
import type { BudgetSubject, CompiledBudget } from './compile-budgets.ts';
import type { BudgetUnit, CallCharge } from './types.ts';
import { windowAt, type WindowAt } from './windows.ts';

/** Tokens reserved for each image or file a request names without carrying it. */
export const REFERENCED_PART_TOKENS = 2500;

/** The endpoints a provider bills: the others (model lists, token counting) are never budgeted. */
export const BILLED_ENDPOINTS: ReadonlySet<string> = new Set(['openai.chat.completions', 'openai.responses', 'openai.embeddings', 'anthropic.messages']);

export interface Reservation {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly tokens: number;
  /** null: the model has no price. */
  readonly nanoUsd: number | null;
  readonly requests: number;
}

/** The body as sent: its UTF-8 length, and whether it asks for prompt caching (Anthropic `cache_control`). */
export interface BodyFacts {
  readonly bytes: number;
  readonly asksForCaching: boolean;
}

export function reservationOf(request: NormalizedRequest, body: BodyFacts, price: ModelPrice | null, defaultOutputCap: number): Reservation {
  let referenced = 0;
  for (const message of request.messages) {
    for (const part of message.parts) {
      if ((part.type === 'image' && part.source !== 'base64') || (part.type === 'file' && part.source === 'reference')) referenced++;
    }
  }
  const inputTokens = body.bytes + referenced * REFERENCED_PART_TOKENS;
  const limit = request.outputLimit;
  const outputTokens = limit === undefined ? defaultOutputCap : (limit.maxTokens ?? defaultOutputCap) * limit.choices;
  let nanoUsd: number | null = null;
  if (price !== null) {
    const cacheable = price.kind === 'anthropic' && body.asksForCaching;
    const input = cacheable ? Math.max(price.input, price.cacheWrite ?? 0, price.cacheWrite1h ?? 0) : price.input;
    // Rounded to the nearest nano-dollar like a call's cost; one more so a reservation is never below it.
    nanoUsd = (callCostNanoUsd({ ...price, input }, { inputTokens, outputTokens }) ?? 0) + 1;
  }
  return { inputTokens, outputTokens, tokens: inputTokens + outputTokens, nanoUsd, requests: 1 };
}

/**
 * Where a request states its maximum output, for the endpoints whose requests may leave it out
 * (Anthropic's Messages require `max_tokens`; embeddings write nothing): the field the gateway
 * writes the cap into under `budgets_enforce_output_cap`.
 */
export function outputCapField(endpoint: string): 'max_completion_tokens' | 'max_output_tokens' | null {
  return endpoint === 'openai.chat.completions' ? 'max_completion_tokens' : endpoint === 'openai.responses' ? 'max_output_tokens' : null;
}

/** The tokens a usage counts: input (cache reads and writes included, as providers bill them) and output. */
export function usageTokens(kind: ProviderKind, usage: Usage): number | null {
  if (usage.inputTokens === undefined && usage.outputTokens === undefined) return null;
  const input = usage.inputTokens ?? 0;
  // OpenAI's input count includes cache reads; Anthropic's counts them (and cache writes) apart.
  const cached = kind === 'anthropic' ? (usage.cacheReadTokens ?? 0) + (usage.cacheWriteTokens ?? 0) : 0;
  return input + cached + (usage.outputTokens ?? 0);
}

/** How a forwarded call ended, as its charge needs it. */
export interface CallOutcome {
  /** The request went upstream (or may have: a connection that failed before sending is not). */
  readonly forwarded: boolean;
  /** The upstream's HTTP status, when it answered. */
  readonly upstreamStatus: number | null;
  readonly providerKind: ProviderKind;
  /** The call's usage with its cost (Pricing.withCost), when the answer gave one. */
  readonly usage: Usage | null;
  /**
   * The usage is the answer's last word: a whole body's, or a stream's that ended normally. A
   * stream cut short (the client gone, the upstream broken) may have reported only part of it
   * (Anthropic's first event counts one output token): then it is a floor, not the charge.
   */
  readonly usageFinal: boolean;
}

export const NO_CHARGE: CallCharge = Object.freeze({ nanoUsd: 0, tokens: 0, requests: 0, basis: 'none' });

/**
 * What a call is charged (recorded with it, and what its counters are settled with):
 * - not forwarded: nothing;
 * - an answer with its final usage: its tokens and cost (a cost the usage cannot give — the
 *   answer named a model without a price — is the reservation's);
 * - an error answer from the upstream without usage: one request, no tokens (providers do not
 *   bill refused requests);
 * - otherwise (the client went away, the stream broke or was cut, a timeout, a stream without a
 *   usage report): the reservation — the call may have been billed up to it — or what a partial
 *   usage already says, when that is more.
 */
export function chargeOf(outcome: CallOutcome, reservation: Reservation): CallCharge {
  if (!outcome.forwarded) return NO_CHARGE;
  const tokens = outcome.usage === null ? null : usageTokens(outcome.providerKind, outcome.usage);
  const cost = outcome.usage?.costNanoUsd ?? null;
  if (tokens !== null && outcome.usageFinal) {
    if (cost !== null || reservation.nanoUsd === null) return { nanoUsd: cost ?? 0, tokens, requests: 1, basis: 'usage' };
    return { nanoUsd: reservation.nanoUsd, tokens, requests: 1, basis: 'reservation' };
  }
  if (tokens === null && outcome.upstreamStatus !== null && outcome.upstreamStatus >= 400) return { nanoUsd: 0, tokens: 0, requests: 1, basis: 'none' };
  return { nanoUsd: Math.max(reservation.nanoUsd ?? 0, cost ?? 0), tokens: Math.max(reservation.tokens, tokens ?? 0), requests: 1, basis: 'reservation' };
}

/**
 * The charge of a recorded call: what the gateway recorded with it (`usage.charged`), else —
 * calls recorded before budgets were configured — what its usage says.
 */
export function recordedCharge(kind: ProviderKind, usage: Usage | null): CallCharge {
  if (usage === null) return NO_CHARGE;
  if (usage.charged !== undefined) return usage.charged;
  const tokens = usageTokens(kind, usage);
  if (tokens === null) return NO_CHARGE;
  return { nanoUsd: usage.costNanoUsd ?? 0, tokens, requests: 1, basis: 'usage' };
}

export function amountIn(unit: BudgetUnit, charge: { readonly nanoUsd: number | null; readonly tokens: number; readonly requests: number }): number {
  return unit === 'usd' ? (charge.nanoUsd ?? 0) : unit === 'tokens' ? charge.tokens : charge.requests;
}

/** One counter a call charges. */
export interface CounterCharge {
  readonly budget: CompiledBudget;
  /** `<id>.<fingerprint>|<scope>|<window>`: the ledger's key. */
  readonly key: string;
  readonly scope: string;
  readonly window: WindowAt;
}

export function counterKey(budget: CompiledBudget, scope: string, window: WindowAt): string {
  return `${budget.id}.${budget.fingerprint}|${scope}|${window.label}`;
}

/** The counters of `budgets` a call by `subject` at `t` charges, in key order (the ledger locks them in this order). */
export function countersFor(budgets: readonly CompiledBudget[], subject: BudgetSubject, t: number): CounterCharge[] {
  const out: CounterCharge[] = [];
  for (const budget of budgets) {
    const scopes = budget.scopes(subject);
    if (scopes.length === 0) continue;
    const window = windowAt(budget.window, t);
    for (const scope of scopes) out.push({ budget, key: counterKey(budget, scope, window), scope, window });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** An amount in a unit as people read it: `$5.02`, `$0.000075`, `12,000 tokens`, `3 requests`. */
export function describeAmount(unit: BudgetUnit, amount: number): string {
  if (unit === 'tokens') return `${amount.toLocaleString('en-US')} tokens`;
  if (unit === 'requests') return `${amount.toLocaleString('en-US')} ${amount === 1 ? 'request' : 'requests'}`;
  const usd = amount / 1e9;
  if (usd === 0) return '$0';
  if (Number.isInteger(usd)) return `$${usd}`;
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  const decimals = Math.min(9, Math.max(2, Math.ceil(-Math.log10(usd)) + 1));
  return `$${usd.toFixed(decimals).replace(/0+$/, '').replace(/\.$/, '')}`;
}

/** Why a budget refuses a request: `budget per-user-daily exceeded: $5.02 of $5 ($4.98 spent or reserved, up to $0.04 for this request)`. */
export function refusalReason(budget: CompiledBudget, used: number, amount: number): string {
  const unit = budget.unit;
  return `budget ${budget.id} exceeded: ${describeAmount(unit, used + amount)} of ${describeAmount(unit, budget.limit)} (${describeAmount(unit, used)} spent or reserved, up to ${describeAmount(unit, amount)} for this request)`;
}
