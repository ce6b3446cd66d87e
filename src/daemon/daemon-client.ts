/**
 * The CLI side of the daemon: find the daemon of this configuration (config dir and profile)
 * through its control socket, check that it serves the profile's current login, start it on
 * demand (detached, logging beside its socket), and talk to it.
 *
 * A daemon of another configuration is never used and never stopped; this configuration's own
 * daemon serving an earlier login (a login or logout that could not stop it) is restarted by
 * commands that start the daemon, and reported by those that only look.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, fstatSync } from 'node:fs';
import { ensurePrivateFile } from '../config/private-files.ts';
import { fileURLToPath } from 'node:url';
import { normalizeGatewayUrl } from '../auth/gateway-url.ts';
import { AigovError, ERRORS, type ErrorCode } from '../core/errors.ts';
import { canonicalDir, defaultConfigDir, defaultRuntimeDir } from '../config/paths.ts';
import { readProfileLogin, type ProfileLogin } from '../config/profile-login.ts';
import { daemonFiles, type AccessTokenResponse, type DaemonFiles, type MintRunResponse, type StatusResponse } from './control-protocol.ts';
import { ControlTransportError, sendControlRequest } from './control-transport.ts';
import { daemonFit, daemonLogin, describeDaemon, describeExpected, describeLogin, type DaemonFit, type ExpectedDaemon } from './daemon-identity.ts';
import { checkSocketPath, cleanStaleFiles, ensureRuntimeDir, inspectDaemonFiles, isProcessAlive, readPidFile, type DaemonState } from './runtime-files.ts';

export interface DaemonClient {
  readonly profile: string;
  readonly files: DaemonFiles;
  /** True when this call started the daemon. */
  readonly started: boolean;
  status(): Promise<StatusResponse>;
  mintRun(label: string): Promise<MintRunResponse>;
  /** False when the key was not live. */
  revokeRun(runKey: string): Promise<boolean>;
  /**
   * The user's access token for a call to the gateway made by the CLI itself; the daemon stays
   * the only one refreshing (refresh tokens rotate). `renew` after the gateway said it expired.
   * Keep it in memory; never print it.
   */
  accessToken(options?: { renew?: boolean }): Promise<AccessTokenResponse>;
  /** Asks the daemon to exit and waits (bounded) until it has. */
  stop(): Promise<void>;
}

/** Where a configuration's daemon lives; every option defaults from the environment. */
export interface DaemonLocation {
  readonly runtimeDir?: string;
  /** The configuration's config dir; default $AIGOV_CONFIG_DIR, $XDG_CONFIG_HOME/aigov or ~/.config/aigov. */
  readonly configDir?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface ConnectDaemonOptions extends DaemonLocation {
  /** Start the daemon when none answers, and restart this configuration's daemon when it serves an earlier login. */
  readonly start: boolean;
  /** How long to wait for a started daemon to answer; default 8000 ms. */
  readonly startTimeoutMs?: number;
  /** Told, in one line, when a stale daemon is restarted; default: written to stderr. */
  readonly onNotice?: (line: string) => void;
}

interface Located {
  readonly runtimeDir: string;
  readonly files: DaemonFiles;
  readonly expected: ExpectedDaemon;
  readonly env: NodeJS.ProcessEnv;
}

function locate(profile: string, opts: DaemonLocation): Located {
  const env = opts.env ?? process.env;
  const runtimeDir = opts.runtimeDir ?? defaultRuntimeDir(env);
  const configDir = canonicalDir(opts.configDir ?? defaultConfigDir(env));
  const files = daemonFiles(runtimeDir, configDir, profile);
  checkSocketPath(files);
  return { runtimeDir, files, expected: expectedDaemon(configDir, profile, env), env };
}

/**
 * What a daemon of this configuration must serve: the profile's login as saved by `aigov login`,
 * else — as the daemon does — a CI login from AIGOV_GATEWAY and AIGOV_REFRESH_TOKEN.
 */
export function expectedDaemon(configDir: string, profile: string, env: NodeJS.ProcessEnv): ExpectedDaemon {
  return { configDir, profile, login: readProfileLogin(configDir, profile) ?? loginFromEnvironment(env) };
}

function loginFromEnvironment(env: NodeJS.ProcessEnv): ProfileLogin | null {
  const gateway = env.AIGOV_GATEWAY?.trim();
  if (!gateway || !env.AIGOV_REFRESH_TOKEN?.trim()) return null;
  try {
    return { gateway: normalizeGatewayUrl(gateway, 'AIGOV_GATEWAY'), subject: null, loggedInAt: null };
  } catch {
    return null; // a daemon started with it fails with the URL's own error
  }
}

/** A daemon's state, and when it runs, whether it is this configuration's with its current login. */
export type InspectedDaemon = DaemonState & { readonly fit: DaemonFit | null; readonly expected: ExpectedDaemon; readonly files: DaemonFiles };

/** The state of a configuration's daemon without starting anything (for `aigov daemon status`, `aigov status`). */
export async function inspectDaemon(profile: string, opts: DaemonLocation = {}): Promise<InspectedDaemon> {
  const { runtimeDir, files, expected } = locate(profile, opts);
  if (!existsSync(runtimeDir)) return { state: 'absent', fit: null, expected, files };
  const state = await inspectDaemonFiles(files);
  return { ...state, fit: state.state === 'running' ? daemonFit(state.status, expected) : null, expected, files };
}

/**
 * Stops this configuration's daemon if one runs, whatever login it serves; cleans up after a
 * stale one. Idempotent. A daemon on this configuration's socket that answers for another
 * configuration is left running: AIGOV_E_DAEMON_OTHER_CONFIG.
 */
export async function stopDaemon(profile: string, opts: DaemonLocation = {}): Promise<'stopped' | 'stale' | 'absent'> {
  const { runtimeDir, files, expected } = locate(profile, opts);
  if (!existsSync(runtimeDir)) return 'absent';
  const state = await inspectDaemonFiles(files);
  if (state.state === 'absent') return 'absent';
  if (state.state === 'stale') {
    // A live process that stopped answering is left alone (it may not even be ours any more).
    if (state.pidFile === null || !isProcessAlive(state.pidFile.pid)) cleanStaleFiles(files);
    return 'stale';
  }
  if (daemonFit(state.status, expected) === 'other-configuration') throw otherConfigurationError(files, state.status, expected);
  await makeClient(profile, files, false).stop();
  return 'stopped';
}

export async function connectDaemon(profile: string, options: ConnectDaemonOptions): Promise<DaemonClient> {
  const { runtimeDir, files, expected, env } = locate(profile, options);
  ensureRuntimeDir(runtimeDir);
  const state = await inspectDaemonFiles(files);
  if (state.state === 'running') {
    const fit = daemonFit(state.status, expected);
    if (fit === 'same') return makeClient(profile, files, false);
    if (fit === 'other-configuration') throw otherConfigurationError(files, state.status, expected);
    if (!options.start) throw staleLoginError(state.status, expected);
    const notice = options.onNotice ?? ((line: string) => process.stderr.write(`aigov: ${line}\n`));
    notice(`restarting the daemon of profile ${profile} (pid ${state.status.pid}): it served ${describeLogin(daemonLogin(state.status))}, the profile now has ${describeLogin(expected.login)}`);
    // Another CLI may be restarting it at the same moment: whoever's stop lands, a start follows.
    await makeClient(profile, files, false).stop().catch(() => undefined);
  } else if (!options.start) {
    throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: state.state === 'stale' ? `the daemon of profile ${profile} is not answering (${state.reason})` : `no daemon runs for profile ${profile}` });
  }
  const status = await startDaemonProcess(profile, files, { ...env, AIGOV_RUNTIME_DIR: runtimeDir, AIGOV_CONFIG_DIR: expected.configDir }, options.startTimeoutMs ?? 8000);
  // The daemon that answers now (ours, or one a concurrent CLI started) must fit too; a login
  // that landed meanwhile is read again before calling it stale.
  let fit = daemonFit(status, expected);
  if (fit === 'stale-login') fit = daemonFit(status, expectedDaemon(expected.configDir, profile, env));
  if (fit === 'other-configuration') throw otherConfigurationError(files, status, expected);
  if (fit === 'stale-login') throw staleLoginError(status, expected);
  return makeClient(profile, files, true);
}

function otherConfigurationError(files: DaemonFiles, status: StatusResponse, expected: ExpectedDaemon): AigovError {
  return new AigovError('AIGOV_E_DAEMON_OTHER_CONFIG', { socket: files.socket, pid: Number(status.pid), found: describeDaemon(status), expected: describeExpected(expected) });
}

function staleLoginError(status: StatusResponse, expected: ExpectedDaemon): AigovError {
  return new AigovError('AIGOV_E_DAEMON_STALE', { profile: expected.profile, pid: Number(status.pid), found: describeLogin(daemonLogin(status)), expected: describeLogin(expected.login) });
}

function makeClient(profile: string, files: DaemonFiles, started: boolean): DaemonClient {
  const call = async (request: object): Promise<Record<string, unknown>> => {
    let answer: unknown;
    try {
      answer = await sendControlRequest(files.socket, request);
    } catch (error) {
      const reason = error instanceof ControlTransportError && error.reason === 'absent' ? 'it is not running' : 'its control socket does not answer';
      throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason }, { cause: error });
    }
    const reply = answer as Record<string, unknown> | null;
    if (reply && reply.ok === true) return reply;
    throw errorFromReply(reply);
  };
  return {
    profile,
    files,
    started,
    status: async () => (await call({ op: 'status' })) as unknown as StatusResponse,
    mintRun: async (label) => (await call({ op: 'mint-run', label })) as unknown as MintRunResponse,
    revokeRun: async (runKey) => (await call({ op: 'revoke-run', runKey })).revoked === true,
    async accessToken(options = {}) {
      const reply = await call({ op: 'access-token', ...(options.renew ? { renew: true } : {}) }).catch((error: unknown) => {
        // A daemon started by an older aigov does not know this request.
        if (error instanceof AigovError && error.code === 'AIGOV_E_BAD_REQUEST') {
          throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `the running daemon of profile ${profile} is older than this CLI; restart it with \`aigov daemon stop\`` });
        }
        throw error;
      });
      if (typeof reply.token !== 'string' || typeof reply.expiresAt !== 'number' || typeof reply.gateway !== 'string') {
        throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it gave an answer this CLI does not understand' });
      }
      return reply as unknown as AccessTokenResponse;
    },
    async stop() {
      const pid = readPidFile(files.pidFile)?.pid ?? null;
      await call({ op: 'stop' });
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        // Gone means the process exited; a daemon inside this very process (tests) is gone once its pid file is.
        const gone = pid === null ? !existsSync(files.socket) : pid === process.pid ? !existsSync(files.pidFile) : !isProcessAlive(pid);
        if (gone) return;
        await sleep(25);
      }
      throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `the daemon of profile ${profile} did not exit within 10 s` });
    },
  };
}

function errorFromReply(reply: Record<string, unknown> | null): AigovError {
  const error = reply?.error as { code?: unknown; params?: unknown } | undefined;
  const code = typeof error?.code === 'string' ? error.code : null;
  if (code !== null && code in ERRORS) {
    const params = typeof error?.params === 'object' && error.params !== null ? (error.params as Record<string, string | number>) : {};
    return new (AigovError as new (code: ErrorCode, params: Record<string, string | number>) => AigovError)(code as ErrorCode, params);
  }
  return new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it gave an answer this CLI does not understand' });
}

/**
 * How to start the daemon: `node bin/run.js daemon run --profile P` from the built CLI. When this
 * module runs from the TypeScript sources (tests, development), bin/run.js would load whatever
 * is in dist/, so the source entry point is started instead.
 */
export function daemonCommand(profile: string): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    return { command: process.execPath, args: [fileURLToPath(new URL('./daemon-entry.ts', import.meta.url)), '--profile', profile] };
  }
  return { command: process.execPath, args: [fileURLToPath(new URL('../../bin/run.js', import.meta.url)), 'daemon', 'run', '--profile', profile] };
}

/** Starts the daemon process and resolves with the status of the daemon that answers on the socket. */
async function startDaemonProcess(profile: string, files: DaemonFiles, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<StatusResponse> {
  const state = await inspectDaemonFiles(files);
  if (state.state === 'running') return state.status;
  if (state.state === 'stale' && (state.pidFile === null || !isProcessAlive(state.pidFile.pid))) cleanStaleFiles(files);
  ensurePrivateFile(files.logFile); // a log left 0644 by an older aigov: the daemon's messages are the user's business
  const logFd = openSync(files.logFile, 'a', 0o600);
  const logOffset = fstatSync(logFd).size;
  const { command, args } = daemonCommand(profile);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', logFd, logFd], env });
    child.once('error', (error) => (spawnError = error));
    child.once('exit', (code, signal) => (exited = { code, signal }));
    child.unref();
  } finally {
    closeSync(logFd);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await inspectDaemonFiles(files, { timeoutMs: 1000 });
    if (now.state === 'running') return now.status;
    if (spawnError !== null) throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `it could not be started: ${(spawnError as Error).message}` });
    if (exited !== null) {
      // Lost a race with another starter? Then that daemon answers now.
      const again = await inspectDaemonFiles(files, { timeoutMs: 1000 });
      if (again.state === 'running') return again.status;
      throw daemonStartFailure(files.logFile, logOffset, exited);
    }
    if (Date.now() > deadline) throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `it did not answer within ${timeoutMs} ms; see ${files.logFile}` });
    await sleep(30);
  }
}

/** What the daemon wrote before it died: its coded error when it logged one, else its last lines. */
function daemonStartFailure(logFile: string, offset: number, exited: { code: number | null; signal: NodeJS.Signals | null }): AigovError {
  const text = readFrom(logFile, offset);
  const fatal = /fatal code=(AIGOV_E_[A-Z_]+) params=(\{.*\})/.exec(text);
  if (fatal?.[1] && fatal[1] in ERRORS) {
    let params: Record<string, string | number> = {};
    try {
      params = JSON.parse(fatal[2] ?? '{}') as Record<string, string | number>;
    } catch {
      // keep the template's placeholders
    }
    return new (AigovError as new (code: ErrorCode, params: Record<string, string | number>) => AigovError)(fatal[1] as ErrorCode, params);
  }
  const last = text.trim().split('\n').slice(-5).join(' | ');
  const how = exited.signal ? `signal ${exited.signal}` : `code ${exited.code ?? '?'}`;
  return new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `it exited (${how})${last ? `: ${last}` : ''}; see ${logFile}` });
}

function readFrom(path: string, offset: number): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(offset, size - 16 * 1024);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      readSync(fd, buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
