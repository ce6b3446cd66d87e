/**
 * What a call cost: the price of its model (the gateway config's prices first, then the built-in
 * table) applied to the usage the provider reported. Costs are whole nano-dollars (10⁻⁹ USD):
 * integers add up exactly, so a budget's counter always equals the sum of its calls' costs.
 */
import type { Usage } from '../events.ts';

export type ProviderKind = 'openai' | 'anthropic';

/** US dollars per million tokens; null: the model has no such rate (it is billed at the input price). */
export interface ModelPrice {
  readonly kind: ProviderKind;
  /** A model id (its dated snapshots and `-latest` alias match too) or, in the config, a glob with `*`. */
  readonly model: string;
  /** Only for the provider of this name (config entries); else every provider of `kind`. */
  readonly provider?: string;
  readonly input: number;
  readonly output: number;
  readonly cachedInput: number | null;
  readonly cacheWrite: number | null;
  readonly cacheWrite1h: number | null;
}

export interface PricedProvider {
  readonly name: string;
  readonly kind: ProviderKind;
}

/** A snapshot of a model: `<model>-2024-08-06`, `<model>-20250514` or `<model>-latest`. */
const SNAPSHOT_SUFFIX = /^-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$/;
/** Above this a reported count is not believed (and the call is recorded as unpriced). */
const MAX_TOKENS = 1_000_000_000;

function globMatches(glob: string, model: string): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) return glob === model;
  const [first = '', ...rest] = parts;
  const last = rest.pop() ?? '';
  if (!model.startsWith(first) || model.length < first.length + last.length || !model.endsWith(last)) return false;
  let at = first.length;
  for (const part of rest) {
    const found = model.indexOf(part, at);
    if (found === -1 || found + part.length > model.length - last.length) return false;
    at = found + part.length;
  }
  return true;
}

function priceMatches(price: ModelPrice, model: string): 'exact' | 'snapshot' | null {
  if (price.model.includes('*')) return globMatches(price.model, model) ? 'exact' : null;
  if (price.model === model) return 'exact';
  return model.startsWith(price.model) && SNAPSHOT_SUFFIX.test(model.slice(price.model.length)) ? 'snapshot' : null;
}

/**
 * The price of `model` served by `provider`: the first of `configured` that matches (in the
 * config's order), else the built-in entry of that exact id, else of the model it is a snapshot
 * of; null when none does (the call is recorded as unpriced).
 */
export function findPrice(configured: readonly ModelPrice[], builtIn: readonly ModelPrice[], provider: PricedProvider, model: string): ModelPrice | null {
  const applies = (price: ModelPrice): boolean => price.kind === provider.kind && (price.provider === undefined || price.provider === provider.name);
  for (const price of configured) if (applies(price) && priceMatches(price, model) !== null) return price;
  let snapshot: ModelPrice | null = null;
  for (const price of builtIn) {
    if (!applies(price)) continue;
    const match = priceMatches(price, model);
    if (match === 'exact') return price;
    if (match === 'snapshot') snapshot ??= price;
  }
  return snapshot;
}

/** Micro-dollars per million tokens = pico-dollars per token, exact for prices of up to six decimals. */
const micro = (usdPerMillion: number): number => Math.round(usdPerMillion * 1e6);

/**
 * The cost of a call in nano-dollars, or null when the usage does not say enough (no input and
 * no output count) or is not believable. OpenAI's input count includes cache reads; Anthropic's
 * excludes cache reads and writes, which it counts apart.
 */
export function callCostNanoUsd(price: ModelPrice, usage: Usage): number | null {
  if (usage.inputTokens === undefined && usage.outputTokens === undefined) return null;
  const counts = [usage.inputTokens, usage.outputTokens, usage.cacheReadTokens, usage.cacheWriteTokens, usage.cacheWrite1hTokens];
  if (counts.some((n) => n !== undefined && (!Number.isSafeInteger(n) || n < 0 || n > MAX_TOKENS))) return null;
  const input = usage.inputTokens ?? 0;
  const cacheRead = usage.cacheReadTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const cacheWrite1h = Math.min(usage.cacheWrite1hTokens ?? 0, cacheWrite);
  const uncached = price.kind === 'openai' ? Math.max(0, input - cacheRead) : input;
  const inputRate = micro(price.input);
  const writeRate = price.cacheWrite === null ? inputRate : micro(price.cacheWrite);
  // BigInt: a billion tokens at a thousand dollars per million is past 2^53 pico-dollars.
  const terms: [number, number][] = [
    [uncached, inputRate],
    [usage.outputTokens ?? 0, micro(price.output)],
    [cacheRead, price.cachedInput === null ? inputRate : micro(price.cachedInput)],
    [cacheWrite - cacheWrite1h, writeRate],
    [cacheWrite1h, price.cacheWrite1h === null ? writeRate : micro(price.cacheWrite1h)],
  ];
  const pico = terms.reduce((sum, [tokens, rate]) => sum + BigInt(tokens) * BigInt(rate), 0n);
  return Number((pico + 500n) / 1000n); // to the nearest nano-dollar
}

/** Nano-dollars as US dollars, for display. */
export function nanoUsdToUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}
