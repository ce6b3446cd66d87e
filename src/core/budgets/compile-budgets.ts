/**
 * Compiles the policy's budgets: who and what each counts (globs), its window, its limit as an
 * integer in its unit, and the fingerprint that names its counters. Pure; problems a schema
 * cannot see (an unknown time zone) are returned with their key path.
 */
import { sha256 } from '../masking/sha256.ts';
import { anyGlob } from '../policy/matchers.ts';
import type { ApprovalSpec } from '../policy/types.ts';
import type { BudgetSettings, BudgetSpec, BudgetUnit } from './types.ts';
import { isTimeZone, type BudgetWindow } from './windows.ts';

/** Who sent a call and where it goes: what decides which budgets count it. */
export interface BudgetSubject {
  readonly principal: { readonly subject: string; readonly email: string | null; readonly groups: readonly string[] };
  readonly provider: string;
  readonly model: string | null;
}

export interface CompiledBudget {
  readonly id: string;
  readonly unit: BudgetUnit;
  /** The limit in the unit's integer amount: nano-dollars, tokens or requests. */
  readonly limit: number;
  readonly window: BudgetWindow;
  readonly action: 'block' | 'require_approval';
  readonly warnAt: readonly number[];
  readonly unpriced: 'block' | 'allow';
  /** For require_approval: the budget's own, else the policy's; null when neither names approvers. */
  readonly approval: ApprovalSpec | null;
  /**
   * Names the budget's counters with its id: changes when what the budget counts changes (who,
   * models, window, time zone, unit) — a new quantity, counted afresh from the record — and not
   * when only its limit, action or warnings do (the same counter goes on).
   */
  readonly fingerprint: string;
  /** The counters of this budget a call charges: empty when the budget does not count it. */
  scopes(subject: BudgetSubject): readonly string[];
}

export interface BudgetIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const NANO_PER_USD = 1_000_000_000;

export function budgetUnit(spec: BudgetSpec): BudgetUnit {
  return spec.limit.usd !== undefined ? 'usd' : spec.limit.tokens !== undefined ? 'tokens' : 'requests';
}

/** `1d` / `1w` / `1mo` (calendar) or `<N>h` (rolling). */
export function parseWindow(text: string, timeZone: string): BudgetWindow | null {
  if (text === '1d') return { kind: 'calendar', unit: 'day', timeZone };
  if (text === '1w') return { kind: 'calendar', unit: 'week', timeZone };
  if (text === '1mo') return { kind: 'calendar', unit: 'month', timeZone };
  const hours = /^([1-9]\d{0,3})h$/.exec(text)?.[1];
  return hours === undefined ? null : { kind: 'rolling', hours: Number(hours) };
}

export function compileBudgets(budgets: readonly BudgetSpec[], settings: BudgetSettings, defaultApproval: ApprovalSpec | undefined, issues: BudgetIssue[]): CompiledBudget[] {
  if (!isTimeZone(settings.budget_timezone)) issues.push({ path: ['budget_timezone'], message: `unknown time zone "${settings.budget_timezone}"; expected an IANA name such as Europe/Paris or UTC` });
  return budgets.flatMap((spec, index) => {
    const timeZone = spec.timezone ?? settings.budget_timezone;
    if (spec.timezone !== undefined && !isTimeZone(spec.timezone)) {
      issues.push({ path: ['budgets', index, 'timezone'], message: `unknown time zone "${spec.timezone}"; expected an IANA name such as Europe/Paris or UTC` });
      return [];
    }
    const window = parseWindow(spec.window, timeZone);
    if (window === null) {
      issues.push({ path: ['budgets', index, 'window'], message: 'expected 1d, 1w or 1mo (calendar) or a number of hours such as 24h (rolling)' });
      return [];
    }
    return [compileBudget(spec, window, defaultApproval)];
  });
}

function compileBudget(spec: BudgetSpec, window: BudgetWindow, defaultApproval: ApprovalSpec | undefined): CompiledBudget {
  const unit = budgetUnit(spec);
  const limit = unit === 'usd' ? Math.round((spec.limit.usd ?? 0) * NANO_PER_USD) : unit === 'tokens' ? (spec.limit.tokens ?? 0) : (spec.limit.requests ?? 0);
  const models = modelMatcher(spec.models);
  const who = spec.who;
  let scopesOf: (principal: BudgetSubject['principal']) => readonly string[];
  if (who.kind === 'everyone') {
    scopesOf = () => ['all'];
  } else if (who.kind === 'users') {
    const listed = who.users === '*' ? null : anyGlob(who.users);
    scopesOf = (p) => (listed === null || listed(p.subject) || (p.email !== null && listed(p.email)) ? [`u:${p.subject}`] : []);
  } else {
    const inGroup = anyGlob(who.groups);
    scopesOf = who.per === 'user' ? (p) => (p.groups.some(inGroup) ? [`u:${p.subject}`] : []) : (p) => [...new Set(p.groups.filter(inGroup))].map((g) => `g:${g}`);
  }
  const definition = JSON.stringify([unit, who, [...spec.models], window]);
  const fingerprint = hex(sha256(definition)).slice(0, 12);
  return Object.freeze({
    id: spec.id,
    unit,
    limit,
    window,
    action: spec.action,
    warnAt: [...spec.warn_at].sort((a, b) => a - b),
    unpriced: spec.unpriced,
    approval: spec.approval ?? defaultApproval ?? null,
    fingerprint,
    scopes: (subject: BudgetSubject) => (models(subject.provider, subject.model) ? scopesOf(subject.principal) : []),
  });
}

/** `provider/model` globs match `<provider>/<model>`; globs without `/` match the model of any provider. */
function modelMatcher(globs: readonly string[]): (provider: string, model: string | null) => boolean {
  const qualified = anyGlob(globs.filter((g) => g.includes('/')));
  const bare = anyGlob(globs.filter((g) => !g.includes('/')));
  return (provider, model) => {
    const name = model ?? '';
    return bare(name) || qualified(`${provider}/${name}`);
  };
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
