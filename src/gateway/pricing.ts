/**
 * Prices each recorded call: the config's prices, then the built-in table (core/cost). The
 * lookup of a provider's model is remembered (a bounded map: model names come from clients).
 */
import { callCostNanoUsd, findPrice, type ModelPrice, type PricedProvider } from '../core/cost/price-call.ts';
import { BUILT_IN_PRICES } from '../core/cost/price-table.ts';
import type { Usage } from '../core/events.ts';

const MAX_REMEMBERED = 1000;

export class Pricing {
  readonly #configured: readonly ModelPrice[];
  readonly #builtIn: readonly ModelPrice[];
  readonly #remembered = new Map<string, ModelPrice | null>();

  constructor(configured: readonly ModelPrice[], builtIn: readonly ModelPrice[] = BUILT_IN_PRICES) {
    this.#configured = configured;
    this.#builtIn = builtIn;
  }

  priceOf(provider: PricedProvider, model: string): ModelPrice | null {
    const key = `${provider.name}\u0000${model}`;
    const known = this.#remembered.get(key);
    if (known !== undefined) return known;
    const price = findPrice(this.#configured, this.#builtIn, provider, model);
    if (this.#remembered.size < MAX_REMEMBERED) this.#remembered.set(key, price);
    return price;
  }

  /** The usage with its cost: `costNanoUsd` null when the model has no price or the usage says too little. */
  withCost(provider: PricedProvider, model: string | null, usage: Usage): Usage {
    const price = model === null ? null : this.priceOf(provider, model);
    return { ...usage, costNanoUsd: price === null ? null : callCostNanoUsd(price, usage) };
  }
}
