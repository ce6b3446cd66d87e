/**
 * Budgets in the gateway: admits a request against the budgets of the policy in force (core/budgets
 * says which counters and how much; the ledger reserves, all or none), settles the reservation
 * with the call's charge when it ends, seeds counters from the record, and announces warnings.
 *
 * - Seeding: a budget's counters (named by its fingerprint) are filled from the record — the
 *   recorded charges of the calls in its window — before anything is reserved on them: at start
 *   for the policy's budgets, later for a budget a reload adds or changes, and again whenever the
 *   shared store says it lost them. A seed is applied once across every replica (the ledger).
 * - A call is charged to the counters it reserved on: each counter is the sum of the charges of
 *   the calls admitted on it, the record has each call's charge (`usage.charged`), and so the
 *   counters can always be rebuilt from the record.
 */
import type { Logger } from 'pino';
import { amountIn, BILLED_ENDPOINTS, chargeOf, counterKey, countersFor, outputCapField, refusalReason, reservationOf, type CallOutcome, type CounterCharge, type Reservation } from '../../core/budgets/charges.ts';
import type { BudgetSubject, CompiledBudget } from '../../core/budgets/compile-budgets.ts';
import type { BudgetUnit, CallCharge } from '../../core/budgets/types.ts';
import { windowAt, windowReach } from '../../core/budgets/windows.ts';
import type { NormalizedRequest, Principal, ProviderKind } from '../../core/events.ts';
import type { BudgetLedger, LedgerCharge, SeedEntry } from '../../store/budget-ledger.ts';
import type { RecordingStore } from '../../store/recording-store.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { PolicySource } from '../policy-hooks.ts';
import type { Pricing } from '../pricing.ts';

export interface AdmitInput {
  readonly callId: string;
  readonly principal: Principal;
  readonly provider: { readonly name: string; readonly kind: ProviderKind };
  readonly model: string | null;
  readonly request: NormalizedRequest;
  /** The body as it goes upstream. */
  readonly bodyText: string;
  /** When the call started (its recorded start): which window it counts in. */
  readonly startedAt: number;
}

export type Admission =
  /** No budget in the policy, or an endpoint nobody is billed for. */
  | { readonly kind: 'none' }
  | { readonly kind: 'admitted'; readonly ticket: BudgetTicket }
  /** `used`: spent and reserved on the counter that refused; `amount`: what this request would reserve. */
  | { readonly kind: 'refused'; readonly budget: CompiledBudget; readonly reason: string; readonly resetAt: number }
  /** A dollar budget that refuses models without a price, and a model without one. */
  | { readonly kind: 'unpriced'; readonly budget: CompiledBudget };

/** A budget warning, for the approvals webhooks (`budget.warning`). */
export interface BudgetWarning {
  readonly budget: string;
  readonly unit: BudgetUnit;
  readonly limit: number;
  /** Spent and reserved on the counter once this request is reserved. */
  readonly used: number;
  readonly fraction: number;
  /** Whose counter: `all`, `user <subject>`, `group <name>`. */
  readonly scope: string;
  /** The user whose request crossed the threshold. */
  readonly user: { readonly subject: string; readonly email: string | null };
  readonly resetAt: number;
  readonly callId: string;
}

export interface BudgetServiceOptions {
  readonly ledger: BudgetLedger;
  readonly store: Pick<RecordingStore, 'chargesSince'>;
  readonly pricing: Pricing;
  readonly policy: PolicySource;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** Epoch ms; default Date.now. */
  readonly now?: () => number;
  readonly onWarning?: (warning: BudgetWarning) => void;
}

/** Warnings this process already asked the ledger about, kept until their window is over. */
const MAX_WARNED = 100_000;

export class BudgetService {
  readonly ledger: BudgetLedger;
  /** The prices reservations are made with (the gateway records costs with the same). */
  readonly pricing: Pricing;
  readonly #store: Pick<RecordingStore, 'chargesSince'>;
  readonly #policy: PolicySource;
  readonly #logger: Logger;
  readonly #metrics: GatewayMetrics;
  readonly #now: () => number;
  readonly #onWarning: (warning: BudgetWarning) => void;
  /** Fingerprints known seeded (by any process). */
  readonly #seeded = new Set<string>();
  /** Seeding in flight, by fingerprint. */
  readonly #seeding = new Map<string, Promise<void>>();
  readonly #warned = new Map<string, number>();

  constructor(options: BudgetServiceOptions) {
    this.ledger = options.ledger;
    this.#store = options.store;
    this.pricing = options.pricing;
    this.#policy = options.policy;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    this.#onWarning = options.onWarning ?? (() => {});
  }

  /** The clock windows are read with. */
  now(): number {
    return this.#now();
  }

  /** Seeds the counters of the policy's budgets (at start: a restart does not reset a budget). */
  async start(): Promise<void> {
    const budgets = this.#policy.current().budgets;
    if (budgets.length === 0) return;
    await this.#ensureSeeded(budgets);
    this.#logger.info({ budgets: budgets.length, counters: this.ledger.kind }, 'budgets counted from the record');
  }

  /**
   * Under `budgets_enforce_output_cap`: the cap to write into this request (and the field), when a
   * budget counts it and it states no maximum output; else null (the request goes as it is).
   */
  outputCap(input: Pick<AdmitInput, 'principal' | 'provider' | 'model' | 'request' | 'startedAt'>): { readonly field: string; readonly tokens: number } | null {
    const policy = this.#policy.current();
    const settings = policy.budgetSettings;
    if (!settings.budgets_enforce_output_cap || policy.budgets.length === 0) return null;
    const field = outputCapField(input.request.endpoint);
    if (field === null || input.request.outputLimit?.maxTokens !== null) return null;
    const counted = countersFor(policy.budgets, { principal: input.principal, provider: input.provider.name, model: input.model }, input.startedAt);
    return counted.length === 0 ? null : { field, tokens: settings.budgets_default_output_cap };
  }

  /**
   * Reserves a request's worst case on every counter of the budgets that count it. `force`: an
   * approver let this request through past its budget — counted, never refused.
   * Throws LedgerUnavailableError when the counters cannot be reached (the stage refuses: fail closed).
   */
  async admit(input: AdmitInput, options: { readonly force?: boolean } = {}): Promise<Admission> {
    const policy = this.#policy.current();
    if (policy.budgets.length === 0 || !BILLED_ENDPOINTS.has(input.request.endpoint)) return { kind: 'none' };
    const subject: BudgetSubject = { principal: input.principal, provider: input.provider.name, model: input.model };
    const counters = countersFor(policy.budgets, subject, input.startedAt);
    const price = input.model === null ? null : this.pricing.priceOf(input.provider, input.model);
    const body = { bytes: Buffer.byteLength(input.bodyText), asksForCaching: input.provider.kind === 'anthropic' && input.bodyText.includes('"cache_control"') };
    const reservation = reservationOf(input.request, body, price, policy.budgetSettings.budgets_default_output_cap);
    const ticket = new BudgetTicket(this, input.callId, counters, reservation, input.provider.kind);
    if (counters.length === 0) return { kind: 'admitted', ticket };
    if (reservation.nanoUsd === null && !options.force) {
      const strict = counters.find((c) => c.budget.unit === 'usd' && c.budget.unpriced === 'block');
      if (strict) {
        this.#metrics.budgetRefusals.inc({ budget: strict.budget.id, action: 'unpriced' });
        return { kind: 'unpriced', budget: strict.budget };
      }
    }
    const charges: LedgerCharge[] = counters.map((c) => ({
      key: c.key,
      fingerprint: c.budget.fingerprint,
      limit: options.force ? null : c.budget.limit,
      amount: amountIn(c.budget.unit, reservation),
      step: c.window.step,
      oldestStep: c.window.oldestStep,
      expiresAt: c.window.expiresAt,
    }));
    await this.#ensureSeeded(counters.map((c) => c.budget));
    const timer = this.#metrics.budgetReserve.startTimer();
    let result = await this.#reserve(input.callId, charges);
    if (!result.ok && 'unseeded' in result) {
      // The shared store lost the counters (or a seed raced a flush): seed again, once.
      for (const c of counters) this.#seeded.delete(c.budget.fingerprint);
      await this.#ensureSeeded(counters.map((c) => c.budget));
      result = await this.#reserve(input.callId, charges);
    }
    timer();
    if (result.ok) {
      ticket.reserved = true;
      this.#warn(counters, charges, result.used, input);
      return { kind: 'admitted', ticket };
    }
    if ('unseeded' in result) throw new Error('the budget counters are still not seeded after seeding them');
    const refusing = counters[result.refused.index]!;
    const used = result.refused.spent + result.refused.reserved;
    this.#metrics.budgetRefusals.inc({ budget: refusing.budget.id, action: refusing.budget.action });
    return { kind: 'refused', budget: refusing.budget, reason: refusalReason(refusing.budget, used, result.refused.amount), resetAt: refusing.window.resetAt };
  }

  async #reserve(id: string, charges: readonly LedgerCharge[]): ReturnType<BudgetLedger['reserve']> {
    try {
      return await this.ledger.reserve(id, charges);
    } catch (error) {
      this.#metrics.budgetStoreErrors.inc({ operation: 'reserve' });
      throw error;
    }
  }

  /** Fills the counters of budgets not yet seeded from the record (one read for all of them). */
  async #ensureSeeded(budgets: readonly CompiledBudget[]): Promise<void> {
    const byFingerprint = new Map<string, CompiledBudget>();
    for (const b of budgets) if (!this.#seeded.has(b.fingerprint)) byFingerprint.set(b.fingerprint, b);
    if (byFingerprint.size === 0) return;
    const waits: Promise<void>[] = [];
    const mine: CompiledBudget[] = [];
    for (const [fingerprint, budget] of byFingerprint) {
      const running = this.#seeding.get(fingerprint);
      if (running) waits.push(running);
      else mine.push(budget);
    }
    if (mine.length > 0) {
      const seeding = this.#seed(mine).finally(() => {
        for (const b of mine) this.#seeding.delete(b.fingerprint);
      });
      for (const b of mine) this.#seeding.set(b.fingerprint, seeding);
      waits.push(seeding);
    }
    await Promise.all(waits);
  }

  async #seed(budgets: readonly CompiledBudget[]): Promise<void> {
    const needed: CompiledBudget[] = [];
    for (const b of budgets) {
      if (await this.ledger.isSeeded(b.fingerprint)) this.#seeded.add(b.fingerprint);
      else needed.push(b);
    }
    if (needed.length === 0) return;
    const now = this.#now();
    const since = now - Math.max(...needed.map((b) => windowReach(b.window)));
    const t0 = performance.now();
    const rows = await this.#store.chargesSince(since);
    for (const budget of needed) {
      const entries = seedEntries(budget, rows, now);
      const applied = await this.ledger.seed(budget.fingerprint, entries);
      this.#seeded.add(budget.fingerprint);
      this.#logger.info({ budget: budget.id, counters: new Set(entries.map((e) => e.key)).size, rows: rows.length, ms: Math.round(performance.now() - t0), applied }, applied ? 'budget counters seeded from the record' : 'budget counters already seeded by another gateway');
    }
  }

  /** Announces each warning threshold a reservation took a counter past, once per counter, window and threshold. */
  #warn(counters: readonly CounterCharge[], charges: readonly LedgerCharge[], used: readonly number[], input: AdmitInput): void {
    counters.forEach((counter, i) => {
      const budget = counter.budget;
      if (budget.warnAt.length === 0) return;
      const after = (used[i] ?? 0) + charges[i]!.amount;
      for (const fraction of budget.warnAt) {
        if (after < fraction * budget.limit) continue;
        const mark = `${counter.key}\u0000${fraction}`;
        if (this.#warned.has(mark)) continue;
        if (this.#warned.size >= MAX_WARNED) this.#pruneWarned();
        this.#warned.set(mark, counter.window.expiresAt);
        this.ledger.once(counter.key, `warn:${fraction}`, counter.window.expiresAt).then(
          (first) => {
            if (!first) return;
            const scope = counter.scope === 'all' ? 'all' : counter.scope.startsWith('u:') ? `user ${counter.scope.slice(2)}` : `group ${counter.scope.slice(2)}`;
            this.#logger.info({ budget: budget.id, fraction, callId: input.callId }, 'budget warning threshold reached');
            this.#onWarning({ budget: budget.id, unit: budget.unit, limit: budget.limit, used: after, fraction, scope, user: { subject: input.principal.subject, email: input.principal.email }, resetAt: counter.window.resetAt, callId: input.callId });
          },
          () => {
            this.#warned.delete(mark); // asked again by the next request
          },
        );
      }
    });
  }

  #pruneWarned(): void {
    const now = this.#now();
    for (const [mark, expiresAt] of this.#warned) if (expiresAt < now) this.#warned.delete(mark);
    if (this.#warned.size >= MAX_WARNED) this.#warned.clear();
  }

  /** Settles a ticket (BudgetTicket.settle): never throws; a failure is logged and retried by the ledger. */
  settle(ticket: BudgetTicket, charge: CallCharge): void {
    const counters = ticket.counters;
    const seen = new Set<string>();
    for (const c of counters) {
      if (seen.has(c.budget.id)) continue;
      seen.add(c.budget.id);
      const amount = amountIn(c.budget.unit, charge);
      if (amount > 0) this.#metrics.budgetSpend.inc({ budget: c.budget.id, unit: c.budget.unit }, c.budget.unit === 'usd' ? amount / 1e9 : amount);
    }
    if (!ticket.reserved) return;
    const actuals = counters.map((c) => ({ key: c.key, amount: amountIn(c.budget.unit, charge) }));
    this.ledger.settle(ticket.id, actuals).catch((error: unknown) => {
      this.#metrics.budgetStoreErrors.inc({ operation: 'settle' });
      this.#logger.warn({ callId: ticket.id, err: error instanceof Error ? error.message : String(error) }, 'settling the budget reservation failed; the ledger retries it');
    });
  }

  /** The budgets of the policy in force. */
  budgets(): readonly CompiledBudget[] {
    return this.#policy.current().budgets;
  }

  /** What each counter of these budgets stands at for a subject now (display, tests). */
  async read(budgets: readonly CompiledBudget[], subject: BudgetSubject): Promise<{ budget: CompiledBudget; key: string; spent: number; reserved: number }[]> {
    const counters = countersFor(budgets, subject, this.#now());
    const states = await this.ledger.read(counters.map((c) => ({ key: c.key, oldestStep: c.window.oldestStep })));
    return counters.map((c, i) => ({ budget: c.budget, key: c.key, spent: states[i]!.spent, reserved: states[i]!.reserved }));
  }

  close(): Promise<void> {
    return this.ledger.close();
  }
}

/** One call's admission: what it reserved, and the settle that replaces it by the call's charge. */
export class BudgetTicket {
  readonly id: string;
  readonly counters: readonly CounterCharge[];
  readonly reservation: Reservation;
  readonly providerKind: ProviderKind;
  /** The ledger holds a reservation for it (false: no budget counts it, only its charge is recorded). */
  reserved = false;
  #settled: CallCharge | null = null;
  readonly #service: BudgetService;

  constructor(service: BudgetService, id: string, counters: readonly CounterCharge[], reservation: Reservation, providerKind: ProviderKind) {
    this.#service = service;
    this.id = id;
    this.counters = counters;
    this.reservation = reservation;
    this.providerKind = providerKind;
  }

  /** Charges the call (chargeOf) and settles its reservation with that; returns the charge to record. Once. */
  settle(outcome: Omit<CallOutcome, 'providerKind'>): CallCharge {
    if (this.#settled !== null) return this.#settled;
    const charge = chargeOf({ ...outcome, providerKind: this.providerKind }, this.reservation);
    this.#settled = charge;
    this.#service.settle(this, charge);
    return charge;
  }
}

/** The counters of `budget` as the record has them now: each recorded charge on its counter and step, within the window. */
export function seedEntries(budget: CompiledBudget, rows: Awaited<ReturnType<RecordingStore['chargesSince']>>, now: number): SeedEntry[] {
  const current = windowAt(budget.window, now);
  const merged = new Map<string, SeedEntry>();
  for (const row of rows) {
    const amount = amountIn(budget.unit, row);
    if (amount === 0) continue;
    const scopes = budget.scopes({ principal: { subject: row.subject, email: row.email, groups: row.groups }, provider: row.provider, model: row.model });
    if (scopes.length === 0) continue;
    const window = windowAt(budget.window, row.minute);
    if (budget.window.kind === 'rolling' ? window.step < current.oldestStep : window.expiresAt <= now) continue;
    for (const scope of scopes) {
      const key = counterKey(budget, scope, window);
      const id = `${key}\u0000${window.step}`;
      const seen = merged.get(id);
      merged.set(id, { key, step: window.step, amount: (seen?.amount ?? 0) + amount, expiresAt: Math.max(seen?.expiresAt ?? 0, window.expiresAt) });
    }
  }
  return [...merged.values()];
}
