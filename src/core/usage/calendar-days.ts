/**
 * Calendar days in a time zone, for usage reports grouped by day: which day an instant falls on
 * and where each day starts, in an IANA zone (`Europe/Paris`, with its daylight-saving days of 23
 * and 25 hours) or at a fixed UTC offset (`+05:30`). The CLI sends its own zone; the gateway cuts
 * the range into days with {@link dayRanges} and the store sums each day's calls.
 *
 * Pure: only the JavaScript built-in `Intl` (the zone data of the ICU that Node ships).
 */

/** A time zone as the usage API takes it: an IANA name or a fixed offset from UTC. */
export type TimeZone =
  | { readonly kind: 'iana'; readonly name: string }
  | { readonly kind: 'offset'; readonly name: string; readonly offsetMinutes: number };

/** One calendar day of a range: `[start, end)` in epoch ms, cut to the range at both ends. */
export interface DayRange {
  /** `YYYY-MM-DD` in the zone. */
  readonly day: string;
  readonly start: number;
  readonly end: number;
}

const OFFSET = /^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$/i;
const IANA = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+){0,3}$/;
const MAX_OFFSET_MINUTES = 14 * 60;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/**
 * `UTC`, `Z`, an offset (`+05:30`, `-0800`, `+2`, `UTC+01:00`) or an IANA name the built-in
 * zone data knows (`Europe/Paris`; its canonical spelling is kept). Null for anything else.
 */
export function parseTimeZone(text: string): TimeZone | null {
  const value = text.trim();
  if (value === '' || value.length > 64) return null;
  if (/^(?:Z|UTC|GMT|Etc\/UTC)$/i.test(value)) return { kind: 'offset', name: 'UTC', offsetMinutes: 0 };
  const offset = OFFSET.exec(value);
  if (offset !== null) {
    const minutes = Number(offset[2]) * 60 + Number(offset[3] ?? 0);
    if (Number(offset[3] ?? 0) >= 60 || minutes > MAX_OFFSET_MINUTES) return null;
    const signed = offset[1] === '-' ? -minutes : minutes;
    return { kind: 'offset', name: formatOffset(signed), offsetMinutes: signed };
  }
  if (!IANA.test(value)) return null;
  try {
    const name = new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
    return { kind: 'iana', name };
  } catch {
    return null;
  }
}

/** `+05:30`, `-08:00`; `UTC` for zero. */
export function formatOffset(minutes: number): string {
  if (minutes === 0) return 'UTC';
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

interface Civil {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    if (formatters.size < 64) formatters.set(zone, formatter);
  }
  return formatter;
}

/** The zone's offset from UTC at `at`, in ms (wall clock minus UTC), to the second. */
export function offsetAt(zone: TimeZone, at: number): number {
  if (zone.kind === 'offset') return zone.offsetMinutes * MINUTE_MS;
  const parts: Record<string, number> = {};
  for (const part of formatterOf(zone.name).formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  const wall = Date.UTC(parts['year'] ?? 1970, (parts['month'] ?? 1) - 1, parts['day'] ?? 1, parts['hour'] ?? 0, parts['minute'] ?? 0, parts['second'] ?? 0);
  const second = Math.floor(at / 1000) * 1000;
  return wall - second;
}

function civilOf(zone: TimeZone, at: number): Civil {
  const local = new Date(at + offsetAt(zone, at));
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate() };
}

/** Days since 1970-01-01 of a calendar date (comparable, and steps by one across months). */
function ordinal(c: Civil): number {
  return Math.floor(Date.UTC(c.year, c.month - 1, c.day) / 86_400_000);
}

function civilFromOrdinal(n: number): Civil {
  const d = new Date(n * 86_400_000);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** `YYYY-MM-DD` of day number `n` (days since 1970-01-01, as a local date). */
export function dayLabel(n: number): string {
  return dayText(civilFromOrdinal(n));
}

function dayText(c: Civil): string {
  const y = c.year < 0 || c.year > 9999 ? String(c.year) : String(c.year).padStart(4, '0');
  return `${y}-${String(c.month).padStart(2, '0')}-${String(c.day).padStart(2, '0')}`;
}

/** `YYYY-MM-DD`: the calendar day `at` falls on in `zone`. */
export function dayOf(zone: TimeZone, at: number): string {
  return dayText(civilOf(zone, at));
}

/**
 * The first instant of calendar day `n` (days since 1970-01-01) in `zone`: its local midnight,
 * or — where a clock change skips midnight — the first instant that is on that day.
 */
function startOfOrdinal(zone: TimeZone, n: number): number {
  const utcMidnight = n * 86_400_000;
  if (zone.kind === 'offset') return utcMidnight - zone.offsetMinutes * MINUTE_MS;
  // Usually two steps find local midnight; check it, and search where the clock jumped.
  let guess = utcMidnight - offsetAt(zone, utcMidnight);
  guess = utcMidnight - offsetAt(zone, guess);
  const onDay = (t: number): boolean => ordinal(civilOf(zone, t)) >= n;
  if (onDay(guess) && !onDay(guess - 1000)) return guess;
  // Binary search, to the second, between instants surely on the day before and on the day.
  let lo = Math.floor((utcMidnight - 26 * HOUR_MS) / 1000);
  let hi = Math.floor((utcMidnight + 26 * HOUR_MS) / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (onDay(mid * 1000)) hi = mid;
    else lo = mid;
  }
  return hi * 1000;
}

/** The first instant of the calendar day `at` falls on, in `zone`. */
export function startOfDay(zone: TimeZone, at: number): number {
  return startOfOrdinal(zone, ordinal(civilOf(zone, at)));
}

/** Days since 1970-01-01 of `YYYY-MM-DD`; null when the text is no (existing) date. */
function ordinalOfDate(date: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (m === null) return null;
  const c = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  const n = ordinal(c);
  const back = civilFromOrdinal(n);
  return back.year === c.year && back.month === c.month && back.day === c.day ? n : null; // not 2026-02-30
}

/** The first instant of the calendar day `YYYY-MM-DD` in `zone`; null when the text is no date. */
export function startOfDate(zone: TimeZone, date: string): number | null {
  const n = ordinalOfDate(date);
  return n === null ? null : startOfOrdinal(zone, n);
}

/** Where the calendar day `YYYY-MM-DD` ends in `zone` (the next day's first instant); null when the text is no date. */
export function endOfDate(zone: TimeZone, date: string): number | null {
  const n = ordinalOfDate(date);
  return n === null ? null : startOfOrdinal(zone, n + 1);
}

/**
 * The calendar days that `[since, until)` touches in `zone`, in order, each cut to the range:
 * the first starts at `since`, the last ends at `until`, and each ends where the next starts.
 * Null when there are more than `maxDays`; empty when the range is.
 */
export function dayRanges(zone: TimeZone, since: number, until: number, maxDays: number): DayRange[] | null {
  const out: DayRange[] = [];
  if (!(since < until)) return out;
  let n = ordinal(civilOf(zone, since));
  let start = since;
  while (start < until) {
    if (out.length >= maxDays) return null;
    const next = startOfOrdinal(zone, n + 1);
    const end = Math.min(next, until);
    // A day a clock change removed entirely (Samoa skipped 2011-12-30) has no instants: skip it.
    if (end > start) out.push({ day: dayText(civilFromOrdinal(n)), start, end });
    start = Math.max(start, end);
    n += 1;
  }
  return out;
}

/** From `from` on (until the next segment), the zone's offset from UTC is `offsetMs`. */
export interface OffsetSegment {
  readonly from: number;
  readonly offsetMs: number;
}

const PROBE_MS = 6 * HOUR_MS;
export const DAY_MS = 86_400_000;

/**
 * The zone's offset over `[since, until)`: the offset at `since`, then each change (a clock change
 * of daylight saving time) at the exact second it happens. With them, the calendar day of an
 * instant `t` in the range is day number floor((t + offset) / DAY_MS) — what a usage report groups
 * by (one pass over the calls, in SQL). Changes less than six hours apart would be missed: no zone
 * has had any.
 */
export function offsetSegments(zone: TimeZone, since: number, until: number): OffsetSegment[] {
  const out: OffsetSegment[] = [{ from: since, offsetMs: offsetAt(zone, since) }];
  if (zone.kind === 'offset') return out;
  let a = since;
  while (a < until - 1) {
    const b = Math.min(a + PROBE_MS, until - 1);
    const before = out.at(-1)?.offsetMs ?? 0;
    if (offsetAt(zone, b) !== before) {
      // The first whole second with the new offset (clocks change on whole seconds).
      let lo = Math.floor(a / 1000);
      let hi = Math.ceil(b / 1000);
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(zone, mid * 1000) === before) lo = mid;
        else hi = mid;
      }
      out.push({ from: hi * 1000, offsetMs: offsetAt(zone, hi * 1000) });
      a = hi * 1000;
      continue;
    }
    a = b;
  }
  return out;
}

/** The day number of `at` given the segments (offsetSegments) of a range holding it. */
export function dayNumberAt(segments: readonly OffsetSegment[], at: number): number {
  let offset = segments[0]?.offsetMs ?? 0;
  for (const s of segments) if (s.from <= at) offset = s.offsetMs;
  return Math.floor((at + offset) / DAY_MS);
}
