/**
 * Usage report rows (RecordingStore.usageReport) as both drivers read them: the same column
 * names from each one's SQL, one mapping, one order — so SQLite and PostgreSQL cannot drift apart
 * (the order is decided here, not by either database's collation).
 *
 * Columns every aggregate has: calls, input, cache_read, cache_write, output, reasoning (token
 * sums by billed kind, core/usage/token-kinds.ts), cost (the exact nano-dollar sum: bigint from
 * SQLite, numeric text from PostgreSQL, null when nothing was priced), unpriced, before_pricing,
 * no_usage. Key columns: subject, issuer, email (by user) · grp (by group) · provider, model
 * (by model) · day (by day).
 */
import { num, str, strOrNull, type RecordRow } from './record-rows.ts';
import type { UsageGrouping, UsageKey, UsageRow, UsageTotals } from './recording-store.ts';

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
      return { by, day: str(row['day']) };
  }
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

/**
 * Rows in report order: days as given (`days` order); otherwise dearest first, then most calls,
 * then by key.
 */
export function orderUsageRows(by: UsageGrouping, rows: UsageRow[]): UsageRow[] {
  if (by === 'day') return rows;
  return rows.sort((a, b) => (a.costNanoUsd === b.costNanoUsd ? 0 : a.costNanoUsd > b.costNanoUsd ? -1 : 1) || b.calls - a.calls || cmp(keyText(a.key), keyText(b.key)));
}
