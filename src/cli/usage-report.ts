/**
 * `aigov usage`, shared by the oclif command and the oclif-free fast path (bin/run.js →
 * fast-usage.ts), so both behave the same: the flags become a range in the caller's time zone,
 * the gateway sums the calls (src/protocol/usage.ts), and the report is printed as a table with
 * bars (usage-format.ts) or, with --json, as the gateway's UsageReport.
 *
 * Times: `--since` / `--until` take what `sessions list` takes (30m, 2h, 7d, 2w back from now, ISO
 * date-times, epoch ms), except that a bare date is a calendar day in the report's zone:
 * `--since 2026-11-01` from its first instant there, `--until 2026-11-30` to its last (through
 * that day). `--by day` starts at the first instant of the day `--since` falls on (whole days).
 */
import { dayRanges, endOfDate, formatOffset, parseTimeZone, startOfDate, startOfDay, type TimeZone } from '../core/usage/calendar-days.ts';
import { USAGE_GROUPINGS, USAGE_MAX_DAYS, type UsageBy } from '../protocol/usage.ts';
import { badFlag, parseTimeFlag, timeFlagError } from './flag-values.ts';

export interface UsageFlags {
  readonly profile: string;
  readonly by?: string;
  readonly since?: string;
  readonly until?: string;
  readonly user?: string;
  readonly tz?: string;
  readonly json?: boolean;
}

export const DEFAULT_SINCE = '30d';
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** What the flags ask the gateway for; AIGOV_E_BAD_FLAG (exit 64) naming the flag when one is not valid. */
export function usageRequestOf(flags: UsageFlags, now: number, localZone: string): { by?: UsageBy; since: number; until: number; user?: string; zone: TimeZone } {
  const zoneText = flags.tz ?? localZone;
  const zone = parseTimeZone(zoneText);
  if (zone === null) {
    throw badFlag('--tz', zoneText, 'it takes an IANA time zone (Europe/Paris, America/New_York) or a UTC offset (+05:30, -08:00, UTC)', 'aigov usage --by day --tz Europe/Paris');
  }
  let by: UsageBy | undefined;
  if (flags.by !== undefined) {
    if (!(USAGE_GROUPINGS as readonly string[]).includes(flags.by)) throw badFlag('--by', flags.by, `it takes one of ${USAGE_GROUPINGS.join(', ')}`, 'aigov usage --by model');
    by = flags.by as UsageBy;
  }
  const sinceText = flags.since ?? DEFAULT_SINCE;
  let since = instant('--since', sinceText, zone, now, 'start', 'aigov usage --since 7d');
  const until = flags.until === undefined ? now : instant('--until', flags.until, zone, now, 'end', 'aigov usage --since 2026-11-01 --until 2026-11-30');
  if (by === 'day') since = startOfDay(zone, since);
  if (since > until) throw badFlag('--since', sinceText, `it is after --until (${flags.until ?? 'now'}): the range would be empty`, 'aigov usage --since 2026-11-01 --until 2026-11-30');
  if (by === 'day' && dayRanges(zone, since, until, USAGE_MAX_DAYS) === null) {
    throw badFlag('--since', sinceText, `--by day shows at most ${USAGE_MAX_DAYS} days`, 'aigov usage --by day --since 90d');
  }
  const user = flags.user?.trim();
  return { ...(by !== undefined ? { by } : {}), since, until, ...(user ? { user } : {}), zone };
}

/** A time flag; a bare date is where that day starts (`start`) or ends (`end`) in `zone`. */
function instant(flag: string, text: string, zone: TimeZone, now: number, edge: 'start' | 'end', example: string): number {
  const value = text.trim();
  if (DATE.test(value)) {
    const ms = edge === 'start' ? startOfDate(zone, value) : endOfDate(zone, value);
    if (ms === null) throw badFlag(flag, text, 'that day does not exist', example);
    return ms;
  }
  const ms = parseTimeFlag(value, now);
  if (ms === null) throw timeFlagError(flag, text, example);
  return ms;
}

/** This machine's time zone: an IANA name when the runtime knows it (TZ is honoured), else today's offset. */
export function localTimeZone(): string {
  const name = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  return typeof name === 'string' && name !== '' ? name : formatOffset(-new Date().getTimezoneOffset());
}

export async function showUsage(flags: UsageFlags, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const now = Date.now();
  const asked = usageRequestOf(flags, now, localTimeZone());
  const { openUsage } = await import('./usage-service.ts');
  const client = await openUsage({ profile: flags.profile, env });
  const report = await client.report({
    ...(asked.by !== undefined ? { by: asked.by } : {}),
    since: asked.since,
    until: asked.until,
    ...(asked.user !== undefined ? { user: asked.user } : {}),
    timeZone: asked.zone.name,
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const { formatUsageReport } = await import('./usage-format.ts');
  const tty = process.stdout.isTTY === true;
  const width = tty ? process.stdout.columns : Number(env.COLUMNS) > 0 ? Number(env.COLUMNS) : 100;
  const color = tty && !env.NO_COLOR && env.TERM !== 'dumb';
  process.stdout.write(`${formatUsageReport(report, { width, color, zone: asked.zone, now })}\n`);
}
