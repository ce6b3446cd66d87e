/**
 * Which login a profile holds — its gateway, user (subject) and login time — read straight from
 * `<configDir>/settings.json` without `conf` or zod: `aigov run` checks on every start that the
 * running daemon serves this login, and loading zod costs ~70-110 ms of start-up (see
 * docs/benchmarks.md). The full, validated read is cli-settings.ts; this one only looks at the
 * fields it returns, and treats a profile whose fields do not have their types as absent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `<configDir>/settings.json` (the name `conf` gives `configName: 'settings'`). */
export const SETTINGS_FILE_NAME = 'settings';

/** The login a daemon of the profile must serve. */
export interface ProfileLogin {
  /** The gateway's normalised base URL. */
  readonly gateway: string;
  /** Who logged in; null when not known (a CI login from the environment, or after logout). */
  readonly subject: string | null;
  /** Epoch ms of the login; null when not known. */
  readonly loggedInAt: number | null;
}

/** The profile's login, or null when the file, the profile or its gateway is missing or malformed. */
export function readProfileLogin(configDir: string, profile: string): ProfileLogin | null {
  let stored: unknown;
  try {
    stored = JSON.parse(readFileSync(join(configDir, `${SETTINGS_FILE_NAME}.json`), 'utf8'));
  } catch {
    return null;
  }
  const entry = field(field(stored, 'profiles'), profile);
  const gateway = field(entry, 'gatewayUrl');
  if (typeof gateway !== 'string' || gateway === '') return null;
  const user = field(entry, 'user');
  const subject = field(user, 'subject');
  const loggedInAt = field(entry, 'loggedInAt');
  if (user !== null && typeof subject !== 'string') return null;
  if (loggedInAt !== null && typeof loggedInAt !== 'number') return null;
  return { gateway, subject: typeof subject === 'string' ? subject : null, loggedInAt };
}

/** An own property of a plain object, or null. */
function field(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return null;
  return (value as Record<string, unknown>)[key] ?? null;
}
