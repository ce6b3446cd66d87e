/**
 * Budget windows as pure functions of a time (epoch milliseconds) — no clock of their own.
 *
 * - Calendar windows (a day, an ISO week from Monday, a month) in an IANA time zone: a window is
 *   named by its local date (`d2025-03-09`, `w2025-03-03`, `m2025-03`), read with Intl, so a
 *   day that DST makes 23 or 25 hours long, or one whose midnight does not exist (zones that
 *   switch at 00:00), is still exactly the instants whose local date is that day. Every zone in
 *   use today is offset from UTC by whole minutes (multiples of 15), so a window boundary always
 *   falls on a whole minute: a minute lies in one window.
 * - Rolling windows (the last N hours) are counted in steps of N·60/96 minutes (at least one): a
 *   charge stays counted from its step until the step is wholly older than N hours — between N
 *   hours and N hours plus one step after the call (never less: the window errs on counting).
 */

export type BudgetWindow =
  | { readonly kind: 'calendar'; readonly unit: 'day' | 'week' | 'month'; readonly timeZone: string }
  | { readonly kind: 'rolling'; readonly hours: number };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Steps a rolling window is counted in. */
const ROLLING_STEPS = 96;

/** Whether `timeZone` is an IANA zone this runtime knows (Intl refuses the others). */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

interface LocalTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  /** 0 = Monday … 6 = Sunday. */
  readonly weekday: number;
  /** Seconds since local midnight. */
  readonly seconds: number;
}

const WEEKDAYS: Readonly<Record<string, number>> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', weekday: 'short', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

function localTime(t: number, timeZone: string): LocalTime {
  let year = 0, month = 0, day = 0, weekday = 0, hour = 0, minute = 0, second = 0;
  for (const part of formatter(timeZone).formatToParts(t)) {
    switch (part.type) {
      case 'year': year = Number(part.value); break;
      case 'month': month = Number(part.value); break;
      case 'day': day = Number(part.value); break;
      case 'weekday': weekday = WEEKDAYS[part.value] ?? 0; break;
      case 'hour': hour = Number(part.value); break;
      case 'minute': minute = Number(part.value); break;
      case 'second': second = Number(part.value); break;
    }
  }
  return { year, month, day, weekday, seconds: hour * 3600 + minute * 60 + second };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
/** A civil date (proleptic Gregorian) as YYYY-MM-DD, from a UTC day number. */
const civil = (dayNumber: number): string => new Date(dayNumber * DAY).toISOString().slice(0, 10);

/** The calendar window containing `t`: its name and the local date arithmetic to reach the next one. */
function calendarLabel(unit: 'day' | 'week' | 'month', local: LocalTime): { label: string; daysToNext: number } {
  const dayNumber = Date.UTC(local.year, local.month - 1, local.day) / DAY;
  if (unit === 'day') return { label: `d${civil(dayNumber)}`, daysToNext: 1 };
  if (unit === 'week') return { label: `w${civil(dayNumber - local.weekday)}`, daysToNext: 7 - local.weekday };
  const next = Date.UTC(local.month === 12 ? local.year + 1 : local.year, local.month === 12 ? 0 : local.month, 1) / DAY;
  return { label: `m${local.year}-${pad(local.month)}`, daysToNext: next - dayNumber };
}

/** One minute's calendar labels, remembered: most calls fall in the minute of the one before. */
const lastLabel = new Map<string, { minute: number; label: string }>();

/** The name of the calendar window containing `t` (`d2025-03-09`, `w2025-03-03`, `m2025-03`). */
export function calendarWindowLabel(unit: 'day' | 'week' | 'month', timeZone: string, t: number): string {
  const minute = Math.floor(t / MINUTE);
  const key = `${unit}\u0000${timeZone}`;
  const cached = lastLabel.get(key);
  if (cached !== undefined && cached.minute === minute) return cached.label;
  const { label } = calendarLabel(unit, localTime(minute * MINUTE, timeZone));
  lastLabel.set(key, { minute, label });
  return label;
}

const ends = new Map<string, number>();

/**
 * When the calendar window containing `t` ends: the first instant whose local date is in the
 * next window (the reset a refusal's `retry-after` names). Found from local date arithmetic,
 * then refined to the minute around it (a DST change moves it by up to a few hours).
 */
export function calendarWindowEnd(unit: 'day' | 'week' | 'month', timeZone: string, t: number): number {
  const known = ends.get(`${unit}\u0000${timeZone}\u0000${calendarWindowLabel(unit, timeZone, t)}`);
  if (known !== undefined) return known;
  const minuteStart = Math.floor(t / MINUTE) * MINUTE;
  const local = localTime(minuteStart, timeZone);
  const { label, daysToNext } = calendarLabel(unit, local);
  const key = `${unit}\u0000${timeZone}\u0000${label}`;
  const labelAt = (u: number): string => calendarLabel(unit, localTime(u, timeZone)).label;
  const estimate = minuteStart + (daysToNext * 86_400 - local.seconds) * 1000;
  // The boundary lies within a few hours of the estimate: search minute by minute (binary).
  let lo = Math.max(minuteStart, estimate - 4 * HOUR);
  let hi = estimate + 4 * HOUR;
  if (labelAt(lo) !== label) lo = minuteStart;
  while (labelAt(hi) === label) hi += 4 * HOUR;
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / MINUTE / 2) * MINUTE;
    if (labelAt(mid) === label) lo = mid;
    else hi = mid;
  }
  if (ends.size > 10_000) ends.clear();
  ends.set(key, hi);
  return hi;
}

/** The length of one step of a rolling window of `hours`. */
export function rollingStepMs(hours: number): number {
  return Math.max(1, Math.ceil((hours * 60) / ROLLING_STEPS)) * MINUTE;
}

/** Where a rolling window's counter is at `t`: the step a charge at `t` goes to, and the oldest step still counted. */
export function rollingSteps(hours: number, t: number): { readonly step: number; readonly oldest: number; readonly stepMs: number } {
  const stepMs = rollingStepMs(hours);
  const step = Math.floor(t / stepMs);
  // Steps that overlap [t - window, t]: a step is dropped once it lies wholly before the window.
  const oldest = Math.floor((t - hours * HOUR) / stepMs);
  return { step, oldest, stepMs };
}

/** A window as a counter sees it at `t`. */
export interface WindowAt {
  /** Part of the counter's key: the calendar window's name; '' for a rolling window (one counter, in steps). */
  readonly label: string;
  /** The step a charge at `t` goes to (calendar: 0). */
  readonly step: number;
  /** The oldest step counted at `t` (calendar: 0). */
  readonly oldestStep: number;
  /** When what is counted now starts to fall away: the calendar window's end, the rolling window's next step out. */
  readonly resetAt: number;
  /** After this instant nothing counted now counts any more: the counter can be forgotten. */
  readonly expiresAt: number;
}

export function windowAt(window: BudgetWindow, t: number): WindowAt {
  if (window.kind === 'calendar') {
    const end = calendarWindowEnd(window.unit, window.timeZone, t);
    return { label: calendarWindowLabel(window.unit, window.timeZone, t), step: 0, oldestStep: 0, resetAt: end, expiresAt: end + DAY };
  }
  const { step, oldest, stepMs } = rollingSteps(window.hours, t);
  // The oldest counted step leaves the window once it is wholly older than the window.
  return { label: '', step, oldestStep: oldest, resetAt: (oldest + 1) * stepMs + window.hours * HOUR, expiresAt: (step + 1) * stepMs + window.hours * HOUR + DAY };
}

/** The longest a window reaches back from `t` (for reading the record it is rebuilt from). */
export function windowReach(window: BudgetWindow): number {
  if (window.kind === 'rolling') return window.hours * HOUR + rollingStepMs(window.hours);
  // A month is at most 31 days, a day at most 25 hours; a day of margin for zone offsets.
  return (window.unit === 'day' ? 1 : window.unit === 'week' ? 7 : 31) * DAY + DAY;
}

/** Does a charge at `t` count in the window `at` (read at some later time)? */
export function countsIn(window: BudgetWindow, at: WindowAt, t: number): { readonly counts: boolean; readonly step: number } {
  if (window.kind === 'calendar') return { counts: calendarWindowLabel(window.unit, window.timeZone, t) === at.label, step: 0 };
  const step = Math.floor(t / rollingStepMs(window.hours));
  return { counts: step >= at.oldestStep && step <= at.step, step };
}
