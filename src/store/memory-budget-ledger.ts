/**
 * The single-node ledger: counters in this process's memory, exact (one event loop: a reserve
 * is checked and applied in one synchronous step), seeded from the record when the gateway
 * starts (and when a budget is added) so a restart does not reset a budget. Reservations need no
 * TTL: they die with the process, whose calls the record then holds without a charge.
 */
import { refuses, type BudgetLedger, type CounterState, type LedgerCharge, type ReserveResult, type SeedEntry } from './budget-ledger.ts';

interface Counter {
  /** Spent per step (a calendar window's counter has only step 0). */
  readonly steps: Map<number, number>;
  reserved: number;
  expiresAt: number;
}

interface Hold {
  readonly key: string;
  readonly amount: number;
  readonly step: number;
}

/** Expired counters are swept at most this often. */
const SWEEP_MS = 60_000;

export class MemoryLedger implements BudgetLedger {
  readonly kind = 'memory';
  readonly #counters = new Map<string, Counter>();
  readonly #holds = new Map<string, Hold[]>();
  readonly #seeded = new Set<string>();
  readonly #marks = new Map<string, number>();
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  #counter(key: string, expiresAt: number): Counter {
    let counter = this.#counters.get(key);
    if (counter === undefined) {
      counter = { steps: new Map(), reserved: 0, expiresAt };
      this.#counters.set(key, counter);
    } else if (expiresAt > counter.expiresAt) {
      counter.expiresAt = expiresAt;
    }
    return counter;
  }

  async reserve(id: string, charges: readonly LedgerCharge[]): Promise<ReserveResult> {
    this.#sweep();
    if (charges.some((c) => !this.#seeded.has(c.fingerprint))) return { ok: false, unseeded: true };
    const counters = charges.map((c) => this.#counter(c.key, c.expiresAt));
    const used: number[] = [];
    for (let i = 0; i < charges.length; i++) {
      const charge = charges[i]!;
      const counter = counters[i]!;
      const spent = spentFrom(counter, charge.oldestStep);
      if (refuses(charge.limit, spent, counter.reserved, charge.amount)) {
        return { ok: false, refused: { index: i, key: charge.key, spent, reserved: counter.reserved, limit: charge.limit ?? 0, amount: charge.amount } };
      }
      used.push(spent + counter.reserved);
    }
    const holds = this.#holds.get(id) ?? [];
    charges.forEach((charge, i) => {
      counters[i]!.reserved += charge.amount;
      holds.push({ key: charge.key, amount: charge.amount, step: charge.step });
    });
    this.#holds.set(id, holds);
    return { ok: true, used };
  }

  async settle(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void> {
    const holds = this.#holds.get(id);
    if (holds === undefined) return;
    this.#holds.delete(id);
    for (const hold of holds) {
      const counter = this.#counters.get(hold.key);
      if (counter === undefined) continue;
      counter.reserved -= hold.amount;
      const actual = actuals.find((a) => a.key === hold.key)?.amount ?? 0;
      if (actual !== 0) counter.steps.set(hold.step, (counter.steps.get(hold.step) ?? 0) + actual);
    }
  }

  async isSeeded(fingerprint: string): Promise<boolean> {
    return this.#seeded.has(fingerprint);
  }

  async seed(fingerprint: string, entries: readonly SeedEntry[]): Promise<boolean> {
    if (this.#seeded.has(fingerprint)) return false;
    this.#seeded.add(fingerprint);
    for (const entry of entries) {
      const counter = this.#counter(entry.key, entry.expiresAt);
      counter.steps.set(entry.step, (counter.steps.get(entry.step) ?? 0) + entry.amount);
    }
    return true;
  }

  async once(key: string, mark: string, expiresAt: number): Promise<boolean> {
    const id = `${key}\u0000${mark}`;
    if (this.#marks.has(id)) return false;
    this.#marks.set(id, expiresAt);
    return true;
  }

  async read(counters: readonly { readonly key: string; readonly oldestStep: number }[]): Promise<CounterState[]> {
    return counters.map(({ key, oldestStep }) => {
      const counter = this.#counters.get(key);
      return counter === undefined ? { spent: 0, reserved: 0 } : { spent: spentFrom(counter, oldestStep), reserved: counter.reserved };
    });
  }

  async close(): Promise<void> {}

  /** Forgets counters past their window (none holds a reservation), and steps a rolling window has left behind. */
  #sweep(): void {
    const now = this.#now();
    if (now - this.#lastSweep < SWEEP_MS) return;
    this.#lastSweep = now;
    for (const [key, counter] of this.#counters) {
      if (counter.expiresAt < now && counter.reserved === 0) this.#counters.delete(key);
    }
    for (const [id, expiresAt] of this.#marks) if (expiresAt < now) this.#marks.delete(id);
  }
}

function spentFrom(counter: Counter, oldestStep: number): number {
  let spent = 0;
  for (const [step, amount] of counter.steps) {
    if (step >= oldestStep) spent += amount;
    else if (counter.steps.size > 1) counter.steps.delete(step); // a rolling window moved past it
  }
  return spent;
}
