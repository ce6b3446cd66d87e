/**
 * The daemon's control protocol over its unix socket (0600, in the user's runtime dir; one socket
 * per configuration, see `daemonFiles`): one
 * newline-terminated JSON request per connection, one newline-terminated JSON response.
 *
 *   {"op":"status"}                 → StatusResponse
 *   {"op":"mint-run","label":"…"}   → MintRunResponse
 *   {"op":"revoke-run","runKey":"…"} → {ok:true, revoked}
 *   {"op":"access-token","renew"?:true} → AccessTokenResponse  (for the CLI's own gateway calls,
 *                                     e.g. `aigov approvals`: the daemon stays the only refresher;
 *                                     `renew` after the gateway said the token expired)
 *   {"op":"stop"}                   → {ok:true}  (then the daemon exits gracefully)
 *
 * Failures: {ok:false, error:{code, message, hint}} with a code from core/errors.ts.
 */
import { join } from 'node:path';
import { configurationKey } from '../config/paths.ts';
import type { ProviderKind } from '../core/events.ts';

export type ControlRequest =
  | { op: 'status' }
  | { op: 'mint-run'; label?: string }
  | { op: 'revoke-run'; runKey: string }
  | { op: 'access-token'; renew?: boolean }
  | { op: 'stop' };

export interface DaemonUser {
  readonly subject: string;
  readonly email: string | null;
  readonly groups: readonly string[];
}

export interface RunSummary {
  readonly sessionId: string;
  readonly label: string;
  readonly startedAt: number;
}

export interface StatusResponse {
  readonly ok: true;
  readonly pid: number;
  readonly port: number;
  /** The configuration it serves: the profile of the (canonical) config dir… */
  readonly profile: string;
  readonly configDir: string;
  /** …and that profile's login when it started: a CLI uses a daemon only when these are its own. */
  readonly gateway: string;
  readonly user: DaemonUser | null;
  /** Epoch ms of the login it serves (from the profile), or null (a CI login from the environment). */
  readonly loggedInAt: number | null;
  /** Live runs (never their keys). */
  readonly runs: readonly RunSummary[];
  readonly startedAt: number;
  readonly version: string;
  /** Expiry (epoch ms) of the access token in memory, or null before the first request. */
  readonly tokenExpiresAt: number | null;
}

export interface DaemonProvider {
  readonly name: string;
  readonly kind: ProviderKind;
  /** Path on the daemon (same as on the gateway), e.g. `/openai/v1`. */
  readonly path: string;
  /** `baseUrl + path`: what the child gets as OPENAI_BASE_URL / ANTHROPIC_BASE_URL. */
  readonly base_url: string;
}

export interface MintRunResponse {
  readonly ok: true;
  readonly runKey: string;
  readonly sessionId: string;
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  readonly providers: readonly DaemonProvider[];
}

/**
 * The user's current access token, for a CLI command that calls the gateway itself. The socket
 * is 0600 in the user's runtime dir (the same trust as the keychain holding the refresh token);
 * callers keep the token in memory and never print it.
 */
export interface AccessTokenResponse {
  readonly ok: true;
  readonly token: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** The gateway base URL the token is for. */
  readonly gateway: string;
}

export interface ControlFailure {
  readonly ok: false;
  readonly error: { readonly code: string; readonly message: string; readonly hint: string };
}

/** The most a control request or response may be; anything longer is refused. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024;

/** What `aigov daemon` keeps in the runtime dir for a configuration. */
export interface DaemonFiles {
  readonly socket: string;
  readonly pidFile: string;
  readonly lockFile: string;
  readonly logFile: string;
}

/**
 * The longest unix socket path this platform takes (sun_path minus its NUL): 107 bytes on Linux,
 * 103 on macOS and the BSDs.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/**
 * One daemon per configuration: the files of the daemon serving `profile` of the config dir
 * `configDir` (canonical: see `canonicalDir`). Two configurations of one OS user (two HOMEs, two
 * AIGOV_CONFIG_DIRs) share the runtime dir but never a socket: the names carry a hash of the
 * config dir and the profile — `daemon-<profile, at most 16 chars>-<12 hex>.sock` — short enough
 * for a socket path under a long temp dir. Profile names end up in file names: they are kept to a
 * safe alphabet.
 */
export function daemonFiles(runtimeDir: string, configDir: string, profile: string): DaemonFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(profile)) throw new Error(`invalid profile name: use letters, digits, ".", "_" or "-" (got ${JSON.stringify(profile.slice(0, 80))})`);
  const key = configurationKey(configDir, profile);
  const base = join(runtimeDir, `daemon-${profile.slice(0, 16)}-${key}`);
  return { socket: `${base}.sock`, pidFile: `${base}.json`, lockFile: `${base}.lock`, logFile: `${base}.log` };
}

/** The pid file: who runs the daemon of a configuration, and where. */
export interface PidFile {
  readonly pid: number;
  readonly port: number;
  readonly socket: string;
  readonly profile: string;
  readonly configDir: string;
  readonly startedAt: number;
  readonly version: string;
}

/**
 * Checks a parsed pid file. Hand-written rather than zod: this runs on every `aigov run`, and
 * loading zod costs ~70-110 ms of start-up (measured; docs/benchmarks.md).
 */
export function isPidFile(value: unknown): value is PidFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    Number.isInteger(v.pid) && (v.pid as number) > 0 &&
    Number.isInteger(v.port) && (v.port as number) >= 0 && (v.port as number) <= 65535 &&
    typeof v.socket === 'string' && typeof v.profile === 'string' && typeof v.configDir === 'string' &&
    typeof v.startedAt === 'number' && typeof v.version === 'string'
  );
}
