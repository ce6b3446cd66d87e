/**
 * Usage report rows (RecordingStore.usageReport) as both drivers read them: the same column
 * names from each one's SQL, one mapping, one order — so SQLite and PostgreSQL cannot drift apart
 * (the order is decided here, not by either database's collation).
 *
 * Columns every aggregate has: calls, input, cache_read, cache_write, output, reasoning (token
 * sums by billed kind, core/usage/token-kinds.ts), cost (the exact nano-dollar sum: bigint from
 * SQLite, numeric text from PostgreSQL, null when nothing was priced), unpriced, before_pricing,
 * no_usage. Key columns: subject, issuer, email (by user) · grp (by group) · provider, model
 * (by model) · dayno (by day: the local day number, from {@link dayPlan}'s offsets).
 *
 * Which calls: those of the sessions active since the range began that started in the range,
 * found by indexes the sessions API has anyway — sessions_by_last_call (or sessions_by_subject for
 * one caller), then calls_by_session. It relies on what both writers keep: a session's
 * last_call_at is the latest start of its calls (max / greatest on every insert), and its calls
 * are its owner's. So no index of its own for the writers to maintain nor a migration to number;
 * an index on calls (started_at, subject) made reports no faster at the scale of
 * bench/usage-report.ts (docs/benchmarks.md).
 */
import { DAY_MS, dayLabel, dayRanges, offsetSegments, parseTimeZone, type DayRange, type OffsetSegment } from '../core/usage/calendar-days.ts';
import { num, str, strOrNull, type RecordRow } from './record-rows.ts';
import type { UsageGrouping, UsageKey, UsageQuery, UsageRow, UsageTotals } from './recording-store.ts';

function count(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return num(value);
}

function nanoUsd(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new Error('recording store: a cost sum is not a whole number of nano-dollars');
}

export function toUsageTotals(row: RecordRow): UsageTotals {
  return {
    calls: count(row['calls']),
    inputTokens: count(row['input']),
    cacheReadTokens: count(row['cache_read']),
    cacheWriteTokens: count(row['cache_write']),
    outputTokens: count(row['output']),
    reasoningTokens: count(row['reasoning']),
    costNanoUsd: nanoUsd(row['cost']),
    unpricedCalls: count(row['unpriced']),
    beforePricingCalls: count(row['before_pricing']),
    noUsageCalls: count(row['no_usage']),
  };
}

export function toUsageKey(by: UsageGrouping, row: RecordRow): UsageKey {
  switch (by) {
    case 'user':
      return { by, subject: str(row['subject']), issuer: str(row['issuer']), email: strOrNull(row['email']) };
    case 'group':
      return { by, group: strOrNull(row['grp']) };
    case 'model':
      return { by, provider: str(row['provider']), model: strOrNull(row['model']) };
    case 'day':
      return { by, day: dayLabel(num(row['dayno'])) };
  }
}

/** A report by day: its days (every one a row, empty ones included) and the zone's offsets over the range. */
export interface DayPlan {
  readonly days: readonly DayRange[];
  readonly segments: readonly OffsetSegment[];
}

const UTC = parseTimeZone('UTC');

export function dayPlan(query: UsageQuery): DayPlan {
  const zone = query.zone ?? UTC;
  if (zone === null) throw new Error('recording store: no UTC zone');
  const days = dayRanges(zone, query.since, query.until, Number.POSITIVE_INFINITY) ?? [];
  return { days, segments: offsetSegments(zone, query.since, query.until) };
}

/** The SQL of a call's local day number (`at`: its start column), with the segments' bounds and offsets as parameters named by `param`. */
export function dayNumberSql(at: string, segments: readonly OffsetSegment[], param: (value: number) => string): string {
  const offset =
    segments.length <= 1
      ? param(segments[0]?.offsetMs ?? 0)
      : `CASE ${segments.slice(1).map((s, i) => `WHEN ${at} < ${param(s.from)} THEN ${param(segments[i]!.offsetMs)}`).join(' ')} ELSE ${param(segments.at(-1)!.offsetMs)} END`;
  // Calls start after 1970: the sum is positive, so integer division is the floor.
  return `((${at} + ${offset}) / ${DAY_MS})`;
}

/**
 * The total of rows that split the calls (by user, model or day: each call in exactly one row) —
 * exact, as each sum is. By group a call may be in several rows: its total is queried apart.
 */
export function sumOfRows(rows: readonly UsageTotals[]): UsageTotals {
  let t: UsageTotals = ZERO;
  for (const r of rows) {
    t = {
      calls: t.calls + r.calls,
      inputTokens: t.inputTokens + r.inputTokens,
      cacheReadTokens: t.cacheReadTokens + r.cacheReadTokens,
      cacheWriteTokens: t.cacheWriteTokens + r.cacheWriteTokens,
      outputTokens: t.outputTokens + r.outputTokens,
      reasoningTokens: t.reasoningTokens + r.reasoningTokens,
      costNanoUsd: t.costNanoUsd + r.costNanoUsd,
      unpricedCalls: t.unpricedCalls + r.unpricedCalls,
      beforePricingCalls: t.beforePricingCalls + r.beforePricingCalls,
      noUsageCalls: t.noUsageCalls + r.noUsageCalls,
    };
  }
  return t;
}

const ZERO: UsageTotals = { calls: 0, inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0, costNanoUsd: 0n, unpricedCalls: 0, beforePricingCalls: 0, noUsageCalls: 0 };

/** Every day of the plan in order, its row or zeros. A row on no day of the plan is a bug: refused, not dropped. */
export function everyDay(plan: DayPlan, rows: readonly UsageRow[]): UsageRow[] {
  const byDay = new Map(rows.map((r) => [r.key.by === 'day' ? r.key.day : '', r]));
  const days = new Set(plan.days.map((d) => d.day));
  for (const day of byDay.keys()) if (!days.has(day)) throw new Error('recording store: a call of the usage report fell on no day of its range');
  return plan.days.map((d) => byDay.get(d.day) ?? { key: { by: 'day' as const, day: d.day }, ...ZERO });
}

/** A key's text for ordering ties: code-unit order, the same on every driver. */
function keyText(key: UsageKey): string {
  switch (key.by) {
    case 'user':
      return `${key.email ?? key.subject}\u0000${key.subject}\u0000${key.issuer}`;
    case 'group':
      return key.group === null ? '\uffff' : key.group; // callers in no group last
    case 'model':
      return `${key.provider}\u0000${key.model ?? ''}`;
    case 'day':
      return key.day;
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Rows by user, group or model in report order: dearest first, then most calls, then by key (days: see everyDay). */
export function orderUsageRows(by: UsageGrouping, rows: UsageRow[]): UsageRow[] {
  if (by === 'day') return rows;
  return rows.sort((a, b) => (a.costNanoUsd === b.costNanoUsd ? 0 : a.costNanoUsd > b.costNanoUsd ? -1 : 1) || b.calls - a.calls || cmp(keyText(a.key), keyText(b.key)));
}
