/**
 * The daemon's files in the user's runtime dir: the dir itself (0700, ours), the pid file, a
 * short-lived start lock, and what a running, stale or absent daemon looks like from outside.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { ensurePrivateDir, type PrivatePathOptions } from '../config/private-files.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { isPidFile, MAX_SOCKET_PATH_BYTES, type DaemonFiles, type PidFile, type StatusResponse } from './control-protocol.ts';
import { ControlTransportError, sendControlRequest } from './control-transport.ts';

/**
 * Creates the runtime dir 0700 if needed and refuses one that another user could get into: it
 * holds the control socket (whoever connects can ask the daemon for the user's access token),
 * the pid file and the daemon's log. A looser one of ours is tightened.
 */
export function ensureRuntimeDir(dir: string, privacy: PrivatePathOptions = {}): void {
  try {
    ensurePrivateDir(dir, privacy);
  } catch (error) {
    if (isAigovError(error) && error.code === 'AIGOV_E_PATH_NOT_PRIVATE') {
      const reason = String(error.params['reason']);
      throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: `the runtime dir ${dir}: ${/belongs to user id/.test(reason) ? `belongs to another user (${reason})` : reason}` }, { cause: error });
    }
    throw error;
  }
}

/** A socket path the OS would refuse (or cut short) is refused here, saying what to do. */
export function checkSocketPath(files: DaemonFiles): void {
  const bytes = Buffer.byteLength(files.socket);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', {
      reason: `its control socket ${files.socket} would be ${bytes} bytes long, more than the ${MAX_SOCKET_PATH_BYTES} a unix socket path may have; set AIGOV_RUNTIME_DIR to a shorter directory`,
    });
  }
}

export function readPidFile(path: string): PidFile | null {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return isPidFile(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** Written to a temp file and renamed, so readers never see half a pid file. */
export function writePidFile(path: string, value: PidFile): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type DaemonState =
  | { readonly state: 'running'; readonly status: StatusResponse }
  | { readonly state: 'stale'; readonly pidFile: PidFile | null; readonly reason: string }
  | { readonly state: 'absent' };

/** Asks the socket; a pid file or socket left behind by a daemon that does not answer is stale. */
export async function inspectDaemonFiles(files: DaemonFiles, opts: { timeoutMs?: number } = {}): Promise<DaemonState> {
  const pidFile = readPidFile(files.pidFile);
  try {
    const answer = (await sendControlRequest(files.socket, { op: 'status' }, { timeoutMs: opts.timeoutMs ?? 2000 })) as { ok?: unknown };
    if (answer.ok === true) return { state: 'running', status: answer as StatusResponse };
    return { state: 'stale', pidFile, reason: 'its control socket gave an unexpected answer' };
  } catch (error) {
    const reason = error instanceof ControlTransportError ? error.reason : 'broken';
    const socketExists = exists(files.socket);
    if (!socketExists && pidFile === null) return { state: 'absent' };
    if (pidFile !== null && !isProcessAlive(pidFile.pid)) return { state: 'stale', pidFile, reason: `process ${pidFile.pid} is gone` };
    return { state: 'stale', pidFile, reason: reason === 'timeout' ? 'its control socket does not answer' : 'nothing listens on its control socket' };
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes what a stale daemon left behind. */
export function cleanStaleFiles(files: DaemonFiles): void {
  removeQuietly(files.socket);
  removeQuietly(files.pidFile);
}

/**
 * A lock held only while a daemon checks for a rival and binds its socket, so two daemons
 * started at once cannot both think the other is stale. A lock whose holder died, or older than
 * `staleMs`, is broken.
 */
export async function acquireStartLock(path: string, opts: { timeoutMs?: number; staleMs?: number } = {}): Promise<() => void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  const staleMs = opts.staleMs ?? 10_000;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => removeQuietly(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (lockIsStale(path, staleMs)) {
      removeQuietly(path);
      continue;
    }
    if (Date.now() > deadline) throw new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'another aigov daemon is starting and did not finish in time' });
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function lockIsStale(path: string, staleMs: number): boolean {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    if (Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid)) return true;
    return Date.now() - statSync(path).mtimeMs > staleMs;
  } catch {
    // Vanished, or being written right now: look again.
    return false;
  }
}
