/**
 * The built-in prices: OpenAI's and Anthropic's list prices in US dollars per million tokens,
 * as their pricing pages gave them on {@link PRICE_TABLE_DATE}. Prices change: a deployment
 * overrides or extends this table in the gateway config (`pricing.models`), and the gateway says
 * at startup how old this table is.
 *
 * `cachedInput` is the price of a prompt-cache read; `cacheWrite` / `cacheWrite1h` of a cache
 * write kept five minutes / one hour (Anthropic). Reasoning tokens are billed as output by both.
 * A model's dated snapshots (`gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`) and `-latest`
 * aliases take the price of the model they are a snapshot of (./price-call.ts).
 */
import type { ModelPrice } from './price-call.ts';

export const PRICE_TABLE_DATE = '2025-11-24';

const openai = (model: string, input: number, cachedInput: number | null, output: number): ModelPrice => ({ kind: 'openai', model, input, output, cachedInput, cacheWrite: null, cacheWrite1h: null });
/** Anthropic's cache prices are multiples of the input price: reads 0.1×, writes 1.25× (five minutes) or 2× (one hour); `cache` where a model's list differs. */
const anthropic = (model: string, input: number, output: number, cache?: { cachedInput: number; cacheWrite: number }): ModelPrice => ({
  kind: 'anthropic',
  model,
  input,
  output,
  cachedInput: cache?.cachedInput ?? Math.round(input * 0.1 * 1e6) / 1e6,
  cacheWrite: cache?.cacheWrite ?? Math.round(input * 1.25 * 1e6) / 1e6,
  cacheWrite1h: input * 2,
});

export const BUILT_IN_PRICES: readonly ModelPrice[] = [
  openai('gpt-5.1', 1.25, 0.125, 10),
  openai('gpt-5', 1.25, 0.125, 10),
  openai('gpt-5-mini', 0.25, 0.025, 2),
  openai('gpt-5-nano', 0.05, 0.005, 0.4),
  openai('gpt-4.1', 2, 0.5, 8),
  openai('gpt-4.1-mini', 0.4, 0.1, 1.6),
  openai('gpt-4.1-nano', 0.1, 0.025, 0.4),
  openai('gpt-4o', 2.5, 1.25, 10),
  openai('gpt-4o-mini', 0.15, 0.075, 0.6),
  openai('o4-mini', 1.1, 0.275, 4.4),
  openai('o3', 2, 0.5, 8),
  openai('o3-pro', 20, null, 80),
  openai('o3-mini', 1.1, 0.55, 4.4),
  openai('o1', 15, 7.5, 60),
  openai('gpt-4-turbo', 10, null, 30),
  openai('gpt-3.5-turbo', 0.5, null, 1.5),
  openai('text-embedding-3-small', 0.02, null, 0),
  openai('text-embedding-3-large', 0.13, null, 0),
  anthropic('claude-opus-4-5', 5, 25),
  anthropic('claude-opus-4-1', 15, 75),
  anthropic('claude-opus-4-0', 15, 75),
  anthropic('claude-opus-4', 15, 75),
  anthropic('claude-sonnet-4-5', 3, 15),
  anthropic('claude-sonnet-4-0', 3, 15),
  anthropic('claude-sonnet-4', 3, 15),
  anthropic('claude-3-7-sonnet', 3, 15),
  anthropic('claude-haiku-4-5', 1, 5),
  anthropic('claude-3-5-haiku', 0.8, 4),
  anthropic('claude-3-haiku', 0.25, 1.25, { cachedInput: 0.03, cacheWrite: 0.3 }),
  anthropic('claude-3-opus', 15, 75),
];
