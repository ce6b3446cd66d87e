/**
 * Budgets as data: what the policy file's `budgets:` list holds once validated
 * (src/config/policy-schema.ts), what a compiled budget decides, and what a call is charged.
 * Pure types. Amounts are integers in a budget's unit: nano-dollars (10⁻⁹ USD), tokens or
 * requests — integers add up exactly, so a counter equals the sum of the charges it was given.
 */
import type { ApprovalSpec } from '../policy/types.ts';

export type BudgetUnit = 'usd' | 'tokens' | 'requests';

/** Who a budget counts, and how many counters that makes. */
export type BudgetWho =
  /** One counter everyone shares. */
  | { readonly kind: 'everyone' }
  /** One counter per user: every user (`users: '*'`) or those listed (subject or email, `*` globs). */
  | { readonly kind: 'users'; readonly users: '*' | readonly string[] }
  /** Members of these groups: one counter per group (`per: group`), or one per member (`per: user`). */
  | { readonly kind: 'groups'; readonly groups: readonly string[]; readonly per: 'group' | 'user' };

export interface BudgetSpec {
  readonly id: string;
  readonly description?: string | undefined;
  readonly who: BudgetWho;
  /** `provider/model` globs (`openai/gpt-4o*`), or model globs for any provider (`claude-*`, `*`). */
  readonly models: readonly string[];
  /** `1d`, `1w`, `1mo` (calendar, in `timezone`) or `<N>h` (rolling). */
  readonly window: string;
  /** IANA zone of a calendar window; default the policy's `budget_timezone`. */
  readonly timezone?: string | undefined;
  /** Exactly one of them. */
  readonly limit: { readonly usd?: number | undefined; readonly tokens?: number | undefined; readonly requests?: number | undefined };
  readonly action: 'block' | 'require_approval';
  /** Fractions of the limit (0 < f < 1) at which the approvals webhooks hear a `budget.warning`. */
  readonly warn_at: readonly number[];
  /** A usd budget and a model without a price: `block` refuses the request (fail closed), `allow` lets it through uncounted. */
  readonly unpriced: 'block' | 'allow';
  /** For require_approval (default: the policy's `approval`). */
  readonly approval?: ApprovalSpec | undefined;
}

/** The policy's budget settings besides the list. */
export interface BudgetSettings {
  /** IANA zone of calendar windows without their own. */
  readonly budget_timezone: string;
  /** The output a request that states no maximum (`max_tokens`, …) is assumed to reach. */
  readonly budgets_default_output_cap: number;
  /** Write that cap into a budgeted request that states no maximum (the provider stops there). */
  readonly budgets_enforce_output_cap: boolean;
}

/**
 * What one call is charged, in every unit (so a budget added later can count it too); recorded
 * with the call (`usage.charged`). `basis`: `usage` — the provider's usage (its cost); `reservation`
 * — the call went upstream and ended without a usable usage (a client gone mid-answer, a broken
 * stream): charged what it reserved, its worst case; `none` — nothing was billed (refused
 * before forwarding, or the provider answered with an error).
 */
export interface CallCharge {
  readonly nanoUsd: number;
  readonly tokens: number;
  readonly requests: number;
  readonly basis: 'usage' | 'reservation' | 'none';
}
