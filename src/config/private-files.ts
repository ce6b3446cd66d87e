/**
 * aigov's own state on disk is private to the user who runs it: directories 0700; databases
 * (with SQLite's -wal/-shm/-journal companions), keys and secrets 0600.
 *
 * - What aigov creates, it creates with those modes (explicitly, whatever the umask).
 * - What already exists looser is tightened (group and other bits removed), and `onTightened`
 *   is told the path and its old mode — never the contents. Once tightened it is not reported
 *   again, so a path is reported once.
 * - What belongs to another user, is not a directory or regular file where one belongs, or
 *   cannot be tightened is refused with AIGOV_E_PATH_NOT_PRIVATE.
 *
 * SQLite creates a database's -wal and -shm files itself, with the database file's own mode:
 * a database file created here 0600 before SQLite first opens it gets 0600 companions, without
 * touching the process umask (which worker threads cannot set anyway).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, fstatSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { AigovError } from '../core/errors.ts';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** A path that was accessible to other users and has just been made private. */
export interface TightenedPath {
  readonly path: string;
  /** The permission bits it had, in octal (e.g. '0644'). */
  readonly oldMode: string;
  /** The permission bits it has now (e.g. '0600'). */
  readonly mode: string;
}

export interface PrivatePathOptions {
  /** Told when an existing path was looser than private and has been tightened; log it as a warning. */
  readonly onTightened?: ((event: TightenedPath) => void) | undefined;
}

/** The one-line warning for a tightened path (path and modes only). */
export function describeTightened(event: TightenedPath): string {
  return `${event.path} was accessible to other users (mode ${event.oldMode}); it is now ${event.mode}`;
}

/** SQLite's files beside a database: they hold recent writes and must be as private as the database. */
export const SQLITE_COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

const ENFORCED = process.platform !== 'win32';

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

function refuse(path: string, reason: string, cause?: unknown): AigovError {
  return new AigovError('AIGOV_E_PATH_NOT_PRIVATE', { path, reason }, cause === undefined ? undefined : { cause });
}

function checkOwner(path: string, st: Stats): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (uid !== null && st.uid !== uid) {
    throw refuse(path, `it belongs to user id ${st.uid}, not to the user running aigov (user id ${uid})`);
  }
}

/** Removes the group and other bits of an existing path; reports it when there were any. */
function tighten(path: string, st: Stats, options: PrivatePathOptions): void {
  if (!ENFORCED || (st.mode & 0o077) === 0) return;
  const wanted = st.mode & 0o700;
  try {
    chmodSync(path, wanted);
  } catch (error) {
    throw refuse(path, `it is mode ${octal(st.mode)} (accessible to other users) and cannot be changed (${errnoCode(error)})`, error);
  }
  options.onTightened?.({ path, oldMode: octal(st.mode), mode: octal(wanted) });
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw refuse(path, `cannot inspect it (${errnoCode(error)})`, error);
  }
}

/**
 * Creates `dir` (and missing parents) 0700, or makes an existing one private: ours, a directory,
 * no group or other bits. For directories that are aigov's alone (the dev state dir, the config
 * and runtime dirs).
 */
export function ensurePrivateDir(dir: string, options: PrivatePathOptions = {}): void {
  let created: string | undefined;
  try {
    created = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (error) {
    const code = errnoCode(error);
    throw refuse(dir, code === 'EEXIST' || code === 'ENOTDIR' ? 'it (or a parent) is not a directory' : `cannot create it (${code})`, error);
  }
  const st = statOrNull(dir);
  if (st === null) throw refuse(dir, 'it vanished while being created');
  if (!st.isDirectory()) throw refuse(dir, 'it is not a directory');
  checkOwner(dir, st);
  if (created !== undefined) {
    // Created just now: exactly 0700 (a umask can only have cut it further).
    if (ENFORCED && (st.mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
    return;
  }
  tighten(dir, st, options);
}

/**
 * Makes the file private when it exists: ours, a regular file, no group or other bits.
 * With `create`, a missing file is created empty, 0600. Returns whether the file exists now.
 */
export function ensurePrivateFile(file: string, options: PrivatePathOptions & { readonly create?: boolean } = {}): boolean {
  if (options.create === true) {
    let fd: number | undefined;
    try {
      fd = openSync(file, 'wx', PRIVATE_FILE_MODE);
      if (ENFORCED) fchmodSync(fd, PRIVATE_FILE_MODE);
      return true;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw refuse(file, `cannot create it (${errnoCode(error)})`, error);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  const st = statOrNull(file);
  if (st === null) return false;
  if (!st.isFile()) throw refuse(file, 'it is not a regular file');
  checkOwner(file, st);
  tighten(file, st, options);
  return true;
}

/**
 * Writes `content` to a new file, 0600, failing if it exists (`wx`); returns false then, after
 * making the existing file private. For generated keys: a concurrent start keeps the first one.
 */
export function writePrivateFileExclusive(file: string, content: string | Uint8Array, options: PrivatePathOptions = {}): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', PRIVATE_FILE_MODE);
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw refuse(file, `cannot create it (${errnoCode(error)})`, error);
    ensurePrivateFile(file, options);
    return false;
  }
  try {
    if (ENFORCED) fchmodSync(fd, PRIVATE_FILE_MODE);
    writeFileSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Replaces `file` with `content` atomically: written to a new 0600 file beside it, then renamed
 * over it, so no reader ever sees a half-written file or one with a looser mode.
 */
export function writePrivateFileReplacing(file: string, content: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(temp, 'wx', PRIVATE_FILE_MODE);
  } catch (error) {
    throw refuse(file, `cannot write it (${errnoCode(error)})`, error);
  }
  try {
    try {
      if (ENFORCED) fchmodSync(fd, PRIVATE_FILE_MODE);
      writeFileSync(fd, content);
      if (ENFORCED && (fstatSync(fd).mode & 0o077) !== 0) throw new Error('mode did not stick');
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // never created or already renamed
    }
    throw refuse(file, `cannot write it (${errnoCode(error)})`, error);
  }
}

/**
 * Before SQLite opens `file`: its directory is created 0700 when missing (an existing one is
 * left as it is: it may be shared, e.g. the configuration's directory, and the files below are
 * private anyway); the database is created empty 0600 when missing (SQLite then gives its -wal
 * and -shm the same mode), or made private when it exists, and so are any -wal/-shm/-journal
 * files left by an earlier run.
 */
export function ensurePrivateDatabase(file: string, options: PrivatePathOptions = {}): void {
  const dir = dirname(file);
  const st = statOrNull(dir);
  if (st === null) ensurePrivateDir(dir, options);
  else if (!st.isDirectory()) throw refuse(dir, 'it is not a directory');
  ensurePrivateFile(file, { ...options, create: true });
  for (const suffix of SQLITE_COMPANION_SUFFIXES) ensurePrivateFile(`${file}${suffix}`, options);
}
