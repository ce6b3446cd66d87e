/**
 * How a usage report reads on a terminal, for `aigov usage`: a title saying whose usage over which
 * range, one row per user, group, model or day with a horizontal bar (Unicode eighth blocks, as
 * wide as the terminal leaves), a total, and what the dollar figures leave out. Pure: the width,
 * colour, zone and clock are arguments. Names come from other people (emails, group and model
 * names a client chose), so they go through terminalSafe.
 */
import { offsetAt, type TimeZone } from '../core/usage/calendar-days.ts';
import type { UsageReportView, UsageRowView, UsageTotalsView } from '../protocol/usage.ts';
import { terminalSafe } from './approvals-format.ts';
import { formatUsd } from './sessions-format.ts';
import { plural, wrapText } from './terminal-text.ts';

export interface UsageRenderOptions {
  /** Columns of the terminal (or the width to assume when not writing to one). */
  readonly width: number;
  /** ANSI colour and bold (a TTY without NO_COLOR). */
  readonly color: boolean;
  /** The zone the report's times are shown in (the one its days are in). */
  readonly zone: TimeZone;
  readonly now: number;
}

const LABEL_HEADERS = { user: 'USER', group: 'GROUP', model: 'MODEL', day: 'DAY' } as const;
const MAX_LABEL = 40;
const MIN_LABEL = 12;
const MIN_BAR = 6;
const MAX_BAR = 48;
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** `2026-11-25 14:03` in `zone`. */
export function formatInstant(ms: number, zone: TimeZone): string {
  const local = new Date(ms + offsetAt(zone, ms));
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())} ${p(local.getUTCHours())}:${p(local.getUTCMinutes())}`;
}

/** Token counts as people read them: 950, 12.3k, 456k, 7.8M, 1.2B. */
export function formatTokens(n: number): string {
  if (n < 1000) return String(n);
  const [value, unit] = n < 1e6 ? [n / 1e3, 'k'] : n < 1e9 ? [n / 1e6, 'M'] : [n / 1e9, 'B'];
  const text = value < 100 ? value.toFixed(1).replace(/\.0$/, '') : String(Math.round(value));
  // 999.96k rounds up to 1000k: say 1M instead.
  if (text === '1000' && unit !== 'B') return `1${unit === 'k' ? 'M' : 'B'}`;
  return `${text}${unit}`;
}

/** `12,345`. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A bar of `fraction` (0…1) of `width` cells, in eighths; anything above zero shows at least ▏. */
export function bar(fraction: number, width: number): string {
  if (!(fraction > 0)) return '';
  const eighths = Math.max(1, Math.round(Math.min(1, fraction) * width * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

function rowLabel(report: UsageReportView, row: UsageRowView): string {
  switch (report.by) {
    case 'user':
      return row.user ? row.user.email ?? row.user.sub : '?';
    case 'group':
      return row.group ?? '(no group)';
    case 'model':
      return `${row.provider ?? '?'}/${row.model ?? '(no model)'}`;
    case 'day': {
      const day = row.day ?? '';
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
      return m === null ? day : `${day} ${WEEKDAYS[new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).getUTCDay()]}`;
    }
  }
}

function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(1, width - 1)).join('')}…`;
}

/** Calls of the row (or total) whose cost the dollar figure leaves out. */
function uncounted(t: UsageTotalsView): number {
  return t.unpriced_calls + t.before_pricing_calls + t.no_usage_calls;
}

/** The dollars, `*` when some calls' cost is not known; `unpriced*` / `no usage*` when none is. */
function costCell(t: UsageTotalsView): string {
  if (t.calls === 0) return ' ';
  const mark = uncounted(t) > 0 ? '*' : ' ';
  if (BigInt(t.cost_nano_usd) > 0n || uncounted(t) === 0) return `${formatUsd(t.cost_usd)}${mark}`;
  return t.unpriced_calls + t.before_pricing_calls > 0 ? 'unpriced*' : 'no usage*';
}

type Metric = 'cost' | 'tokens' | 'calls';

function metricOf(t: UsageTotalsView, metric: Metric): number {
  if (metric === 'cost') return Number(t.cost_nano_usd);
  if (metric === 'tokens') return t.input_tokens + t.cache_read_tokens + t.cache_write_tokens + t.output_tokens;
  return t.calls;
}

/** Whose usage, over which range, grouped how. */
function title(report: UsageReportView, opts: UsageRenderOptions): string {
  const who = !report.viewer.auditor ? 'Your usage' : report.user !== null ? `Usage of ${terminalSafe(report.user)}` : "Everyone's usage";
  const since = Date.parse(report.since);
  const until = Date.parse(report.until);
  const end = Math.abs(until - opts.now) < 60_000 ? 'now' : formatInstant(until, opts.zone);
  return `${who} · ${formatInstant(since, opts.zone)} → ${end} (${terminalSafe(report.time_zone)}) · by ${report.by}`;
}

/** The message for a range without a single call, and what to try. */
function nothingFound(report: UsageReportView, opts: UsageRenderOptions): string {
  const lines = [title(report, opts), ''];
  if (!report.viewer.auditor) {
    lines.push('You made no calls through the gateway in this range.', 'Widen it with --since (e.g. --since 90d). Only members of the auditor groups see other users\' usage.');
  } else if (report.user !== null) {
    lines.push(`No calls of ${terminalSafe(report.user)} in this range.`, 'Check the email or subject (`aigov sessions list --user …` takes the same), or widen the range with --since (e.g. --since 90d).');
  } else {
    lines.push('No calls were recorded in this range.', 'Widen it with --since (e.g. --since 90d).');
  }
  return lines.join('\n');
}

/** The report as the terminal shows it (no trailing newline). */
export function formatUsageReport(report: UsageReportView, opts: UsageRenderOptions): string {
  if (report.total.calls === 0) return nothingFound(report, opts);
  const paint = (code: string, text: string): string => (opts.color && text !== '' ? `\x1b[${code}m${text}\x1b[0m` : text);
  const metric: Metric = BigInt(report.total.cost_nano_usd) > 0n ? 'cost' : metricOf(report.total, 'tokens') > 0 ? 'tokens' : 'calls';
  const max = Math.max(0, ...report.rows.map((r) => metricOf(r, metric)));

  const header = [LABEL_HEADERS[report.by], 'CALLS', 'INPUT', 'CACHED', 'OUTPUT', 'COST '];
  const cells = (label: string, t: UsageTotalsView): string[] => [
    terminalSafe(label),
    formatCount(t.calls),
    formatTokens(t.input_tokens + t.cache_read_tokens + t.cache_write_tokens),
    formatTokens(t.cache_read_tokens),
    formatTokens(t.output_tokens),
    costCell(t),
  ];
  const body = report.rows.map((row) => cells(rowLabel(report, row), row));
  const total = cells('TOTAL', report.total);
  const widths = header.map((h, i) => Math.max([...h].length, [...total[i]!].length, ...body.map((r) => [...r[i]!].length)));
  widths[0] = Math.min(widths[0]!, MAX_LABEL);
  // The bar takes what the table leaves of the terminal; a narrow terminal cuts the names first,
  // then the bars, and leaves them out when fewer than MIN_BAR cells would remain.
  const tableWidth = (): number => widths.reduce((sum, w) => sum + w, 0) + 2 * (widths.length - 1);
  const room = (): number => opts.width - tableWidth() - 2;
  if (room() < MIN_BAR) widths[0] = Math.max(Math.min(MIN_LABEL, widths[0]), widths[0] - (MIN_BAR - room()));
  const barWidth = room() >= MIN_BAR ? Math.min(MAX_BAR, room()) : 0;
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (i === 0 ? cut(cell, widths[0]!).padEnd(widths[0]!) : cell.padStart(widths[i]!))).join('  ');

  const out = [...wrapText(title(report, opts), Math.max(40, opts.width)).map((l) => paint('1', l)), ''];
  out.push(paint('1', line(header).trimEnd()));
  report.rows.forEach((row, i) => {
    const drawn = barWidth === 0 ? '' : bar(max === 0 ? 0 : metricOf(row, metric) / max, barWidth);
    out.push(`${line(body[i]!)}  ${paint('36', drawn)}`.trimEnd());
  });
  out.push('─'.repeat(tableWidth()));
  out.push(paint('1', line(total).trimEnd()));

  const notes: string[] = [];
  const note = (text: string, indent = ''): void => void notes.push(...wrapText(text, Math.max(40, opts.width) - indent.length).map((l) => `${indent}${l}`));
  if (barWidth > 0 && metric !== 'cost' && max > 0) note(`Bars: ${metric === 'tokens' ? 'tokens' : 'calls'} (no call of the range has a known cost).`);
  const t = report.total;
  const be = (n: number): string => (n === 1 ? 'is' : 'are');
  if (uncounted(t) > 0) note('* Not every call has a known cost:');
  if (t.unpriced_calls > 0) note(`${plural(t.unpriced_calls, 'call')} of unpriced models ${be(t.unpriced_calls)} not counted in $: give the models a price in the gateway config (pricing.models).`, '  ');
  if (t.before_pricing_calls > 0) note(`${plural(t.before_pricing_calls, 'call')} recorded before this gateway priced calls ${be(t.before_pricing_calls)} not counted in $.`, '  ');
  if (t.no_usage_calls > 0) note(`${plural(t.no_usage_calls, 'completed call')} reported no token usage and ${be(t.no_usage_calls)} not counted (an OpenAI stream reports it only with stream_options.include_usage).`, '  ');
  if (report.by === 'group' && report.rows.reduce((n, r) => n + r.calls, 0) > t.calls) note("A call counts in each of its caller's groups: the rows add up to more than the total.");
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n');
}
