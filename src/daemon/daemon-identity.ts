/**
 * Whether a running daemon is the one a CLI may use: it must serve the CLI's configuration
 * (config dir and profile) and that profile's current login (gateway, user, login time). Pure:
 * the caller reads the daemon's status and the profile, this decides and describes.
 *
 *   same                 → use it
 *   stale-login          → the configuration's own daemon, started before the profile's latest
 *                          login or logout: restart it (`aigov run`), or say so
 *   other-configuration  → another configuration's daemon (another config dir or profile): never
 *                          used, never stopped
 */
import type { ProfileLogin } from '../config/profile-login.ts';
import type { StatusResponse } from './control-protocol.ts';

/** What the CLI expects a daemon of its configuration to serve. */
export interface ExpectedDaemon {
  readonly configDir: string;
  readonly profile: string;
  /** The profile's current login; null when it is not logged in. */
  readonly login: ProfileLogin | null;
}

export type DaemonFit = 'same' | 'stale-login' | 'other-configuration';

/** What a daemon's status answer says it serves; fields a daemon left out count as unknown. */
export type DaemonStatusIdentity = Pick<StatusResponse, 'profile' | 'gateway'> & {
  readonly configDir?: unknown;
  readonly user?: { readonly subject?: unknown } | null;
  readonly loggedInAt?: unknown;
};

export function daemonFit(status: DaemonStatusIdentity, expected: ExpectedDaemon): DaemonFit {
  if (typeof status.configDir !== 'string' || status.configDir !== expected.configDir || status.profile !== expected.profile) return 'other-configuration';
  const want = expected.login;
  if (want === null) return 'stale-login';
  const served = daemonLogin(status);
  return served.gateway === want.gateway && served.subject === want.subject && served.loggedInAt === want.loggedInAt ? 'same' : 'stale-login';
}

/** The login a daemon's status says it serves. */
export function daemonLogin(status: DaemonStatusIdentity): ProfileLogin {
  return {
    gateway: status.gateway,
    subject: typeof status.user?.subject === 'string' ? status.user.subject : null,
    loggedInAt: typeof status.loggedInAt === 'number' ? status.loggedInAt : null,
  };
}

/** One line naming a daemon's configuration and login, for messages (no tokens; the subject, not the email). */
export function describeDaemon(status: DaemonStatusIdentity): string {
  const configDir = typeof status.configDir === 'string' ? status.configDir : '(a config dir it does not name)';
  return `profile ${status.profile} of ${configDir}, ${describeLogin(daemonLogin(status))}`;
}

/** The same line for what the CLI expected. */
export function describeExpected(expected: ExpectedDaemon): string {
  return `profile ${expected.profile} of ${expected.configDir}, ${describeLogin(expected.login)}`;
}

/** `gateway URL as user SUBJECT (logged in ISO-DATE)`, or `not logged in`. */
export function describeLogin(login: ProfileLogin | null): string {
  if (login === null) return 'not logged in';
  const who = login.subject === null ? 'a user it does not name' : `user ${login.subject}`;
  const date = login.loggedInAt === null ? null : new Date(login.loggedInAt);
  const when = date === null ? '' : Number.isNaN(date.getTime()) ? ` (logged in at ${login.loggedInAt})` : ` (logged in ${date.toISOString()})`;
  return `gateway ${login.gateway} as ${who}${when}`;
}
