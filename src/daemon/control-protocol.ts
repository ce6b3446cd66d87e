/**
 * The daemon's control protocol over its unix socket (0600, in the user's runtime dir): one
 * newline-terminated JSON request per connection, one newline-terminated JSON response.
 *
 *   {"op":"status"}                 → StatusResponse
 *   {"op":"mint-run","label":"…"}   → MintRunResponse
 *   {"op":"revoke-run","runKey":"…"} → {ok:true, revoked}
 *   {"op":"stop"}                   → {ok:true}  (then the daemon exits gracefully)
 *
 * Failures: {ok:false, error:{code, message, hint}} with a code from core/errors.ts.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { ProviderKind } from '../core/events.ts';

export const ControlRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('status') }),
  z.object({ op: z.literal('mint-run'), label: z.string().max(4096).default('') }),
  z.object({ op: z.literal('revoke-run'), runKey: z.string().max(512) }),
  z.object({ op: z.literal('stop') }),
]);
export type ControlRequest = z.input<typeof ControlRequestSchema>;

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
  readonly profile: string;
  readonly gateway: string;
  readonly user: DaemonUser | null;
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

export interface ControlFailure {
  readonly ok: false;
  readonly error: { readonly code: string; readonly message: string; readonly hint: string };
}

/** The most a control request or response may be; anything longer is refused. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024;

/** What `aigov daemon` keeps in the runtime dir for a profile. */
export interface DaemonFiles {
  readonly socket: string;
  readonly pidFile: string;
  readonly lockFile: string;
  readonly logFile: string;
}

/** Profile names end up in file names: keep them to a safe alphabet. */
export function daemonFiles(runtimeDir: string, profile: string): DaemonFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(profile)) throw new Error(`invalid profile name: use letters, digits, ".", "_" or "-" (got ${JSON.stringify(profile.slice(0, 80))})`);
  return {
    socket: join(runtimeDir, `daemon-${profile}.sock`),
    pidFile: join(runtimeDir, `daemon-${profile}.json`),
    lockFile: join(runtimeDir, `daemon-${profile}.lock`),
    logFile: join(runtimeDir, `daemon-${profile}.log`),
  };
}

/** The pid file: who runs the daemon of a profile, and where. */
export const PidFileSchema = z.object({
  pid: z.number().int().positive(),
  port: z.number().int().min(0).max(65535),
  socket: z.string(),
  startedAt: z.number(),
  version: z.string(),
});
export type PidFile = z.infer<typeof PidFileSchema>;
