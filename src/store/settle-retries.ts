/**
 * The settles a shared budget ledger could not make (its counter store did not answer), made
 * again in the background: in the order they failed, 200 ms after the failure and then with the
 * delay doubling up to 5 s while the store stays down. A settle made meanwhile (the call's own
 * retry) takes its entry out. At close, one last try each; what still fails lapses after the
 * reservation TTL (the record keeps the charge).
 */
export type SettleActuals = readonly { readonly key: string; readonly amount: number }[];

const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5000;

export class SettleRetries {
  readonly #owed = new Map<string, SettleActuals>();
  readonly #settle: (id: string, actuals: SettleActuals) => Promise<void>;
  #timer: NodeJS.Timeout | null = null;
  #delayMs = FIRST_DELAY_MS;
  #closed = false;

  /** `settle` writes one settle to the store and rejects when it cannot. */
  constructor(settle: (id: string, actuals: SettleActuals) => Promise<void>) {
    this.#settle = settle;
  }

  has(id: string): boolean {
    return this.#owed.has(id);
  }

  /** Owes the settle of `id` (replacing an earlier one) and schedules a try. */
  owe(id: string, actuals: SettleActuals): void {
    this.#owed.set(id, actuals.map((a) => ({ key: a.key, amount: a.amount })));
    this.#schedule();
  }

  /** The settle of `id` was made. */
  paid(id: string): void {
    this.#owed.delete(id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const [id, actuals] of [...this.#owed]) await this.#settle(id, actuals).catch(() => {});
  }

  #schedule(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#retryAll();
    }, this.#delayMs);
    this.#timer.unref();
  }

  async #retryAll(): Promise<void> {
    for (const [id, actuals] of [...this.#owed]) {
      try {
        await this.#settle(id, actuals);
      } catch {
        break;
      }
    }
    if (this.#owed.size > 0) {
      this.#delayMs = Math.min(this.#delayMs * 2, MAX_DELAY_MS);
      this.#schedule();
    } else {
      this.#delayMs = FIRST_DELAY_MS;
    }
  }
}
