/**
 * The values of the flags aigov reads itself, beyond what oclif checks (times, speeds): each
 * becomes what the command needs, or AIGOV_E_BAD_FLAG naming the flag, what was typed, what it
 * takes and an example — a usage error (exit 64), never one that reads like a gateway's answer.
 * Pure; the clock is an argument.
 */
import { AigovError, quotedInput } from '../core/errors.ts';

/** The usage error for a flag value: `problem` says what the flag takes, `example` a whole command line. */
export function badFlag(flag: string, value: string, problem: string, example: string): AigovError<'AIGOV_E_BAD_FLAG'> {
  return new AigovError('AIGOV_E_BAD_FLAG', { flag, value: quotedInput(value), problem, example: `\`${example}\`` });
}

const TIME_UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * A point in time as `--since` / `--until` take it: an ISO 8601 date or date-time, epoch
 * milliseconds, or a duration back from now (`90s`, `30m`, `2h`, `7d`, `2w`). Epoch ms, or null
 * when the text is none of these.
 */
export function parseTimeFlag(text: string, now: number): number | null {
  const value = text.trim();
  const relative = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(value);
  if (relative) return Math.round(now - Number(relative[1]) * TIME_UNITS_MS[relative[2]!.toLowerCase() as keyof typeof TIME_UNITS_MS]);
  if (/^\d{10,15}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** parseTimeFlag for `flag` (e.g. `--since`), or its usage error; undefined when the flag was not given. */
export function timeFlag(flag: string, text: string | undefined, now: number, example: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseTimeFlag(text, now);
  if (ms === null) throw timeFlagError(flag, text, example);
  return ms;
}

/** The usage error for a time flag whose value parseTimeFlag does not take. */
export function timeFlagError(flag: string, text: string, example: string): AigovError<'AIGOV_E_BAD_FLAG'> {
  return badFlag(flag, text, 'it takes a duration back from now (90s, 30m, 2h, 7d, 2w), an ISO date (2026-11-25 or 2026-11-25T14:00:00Z) or epoch milliseconds', example);
}
