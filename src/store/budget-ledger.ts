/**
 * The budget ledger: counters that calls reserve against before they are forwarded and settle
 * when they end. Keys and amounts come from core/budgets; the ledger only counts, atomically:
 *
 * - `reserve(id, charges)`: for every charge, checks that what the counter has spent (in the
 *   steps still counted) plus what is reserved on it plus this amount stays within its limit —
 *   and reserves on all of them, or on none (the first counter that refuses is returned).
 * - `settle(id, actuals)`: replaces the call's reservations by what it was charged (the amount
 *   goes to the step it reserved in). Idempotent: a second settle of the same id does nothing.
 * - A reservation whose process died is released after the ledger's TTL (shared ledgers; a live
 *   process renews its reservations while its calls run). A settle after that still counts.
 * - `seed(fingerprint, entries)`: the counters of a budget counted for the first time, from the
 *   record — applied once per fingerprint, by whichever caller comes first.
 *
 * Nothing here is specific to money: a rate limit (requests or tokens per minute, calls open at
 * once: a reservation settled with 0) is a counter with a limit and a window like any other.
 */

export interface LedgerCharge {
  readonly key: string;
  /** The fingerprint of the budget the counter belongs to: it must be seeded before anything is counted on it. */
  readonly fingerprint: string;
  /** null: counted, never refused (a request an approver let through past its budget). */
  readonly limit: number | null;
  /** Reserved now: the call's worst case in the counter's unit. */
  readonly amount: number;
  /** The step this call's charge goes to (a calendar window's counter has one step: 0). */
  readonly step: number;
  /** Spending in steps before this one is no longer counted (rolling windows). */
  readonly oldestStep: number;
  /** After this instant (epoch ms) the counter can be forgotten. */
  readonly expiresAt: number;
}

export interface Refused {
  /** Index of the refusing charge in the reserve call's list. */
  readonly index: number;
  readonly key: string;
  readonly spent: number;
  readonly reserved: number;
  readonly limit: number;
  readonly amount: number;
}

export type ReserveResult =
  /** Reserved; `used`: what each counter had spent and reserved before (same order as the charges). */
  | { readonly ok: true; readonly used: readonly number[] }
  | { readonly ok: false; readonly refused: Refused }
  /** Nothing reserved: a budget's counters are not seeded (new, or the shared store lost them): seed, then reserve again. */
  | { readonly ok: false; readonly unseeded: true };

export interface SeedEntry {
  readonly key: string;
  readonly step: number;
  readonly amount: number;
  readonly expiresAt: number;
}

export interface CounterState {
  readonly spent: number;
  readonly reserved: number;
}

export interface BudgetLedger {
  /** `memory` (this process only) or the shared store's name: shown in logs and metrics. */
  readonly kind: string;
  reserve(id: string, charges: readonly LedgerCharge[]): Promise<ReserveResult>;
  settle(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void>;
  /** Whether the counters of this fingerprint have been seeded (by anyone). */
  isSeeded(fingerprint: string): Promise<boolean>;
  /** Adds `entries` to their counters and marks the fingerprint seeded — unless it already was (then does nothing; returns false). */
  seed(fingerprint: string, entries: readonly SeedEntry[]): Promise<boolean>;
  /** True the first time it is asked for this counter and mark (any process): a warning is sent once. Forgotten after `expiresAt`. */
  once(key: string, mark: string, expiresAt: number): Promise<boolean>;
  /** What each counter has spent (from `oldestStep` on) and reserved, for display and tests. */
  read(counters: readonly { readonly key: string; readonly oldestStep: number }[]): Promise<CounterState[]>;
  close(): Promise<void>;
}

/** The ledger could not be reached or failed: budgets fail closed (AIGOV_E_BUDGET_STORE_UNAVAILABLE). */
export class LedgerUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LedgerUnavailableError';
  }
}

/** What a reservation needs to be refused: over the limit, or a budget already used up (a 0 amount on a full counter). */
export function refuses(limit: number | null, spent: number, reserved: number, amount: number): boolean {
  return limit !== null && spent + reserved + Math.max(amount, 1) > limit;
}
