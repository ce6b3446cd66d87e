/** Where aigov keeps state. The only module that reads HOME/XDG variables. */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export function defaultStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.AIGOV_STATE_DIR) return resolve(env.AIGOV_STATE_DIR);
  const base = env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state');
  return join(base, 'aigov');
}

export function defaultDevStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return join(defaultStateDir(env), 'dev');
}

/** Non-secret CLI settings (profiles) live here: $AIGOV_CONFIG_DIR, $XDG_CONFIG_HOME/aigov or ~/.config/aigov. */
export function defaultConfigDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.AIGOV_CONFIG_DIR) return resolve(env.AIGOV_CONFIG_DIR);
  const base = env.XDG_CONFIG_HOME ? resolve(env.XDG_CONFIG_HOME) : join(homedir(), '.config');
  return join(base, 'aigov');
}

/**
 * One spelling per directory: the absolute path with symlinks resolved (of its deepest existing
 * ancestor, when it does not exist yet). A configuration is named by its config dir, so two
 * spellings of one dir (`~/.config/aigov` through a symlinked HOME) must give one daemon.
 */
export function canonicalDir(path: string): string {
  const absolute = resolve(path);
  const rest: string[] = [];
  for (let dir = absolute; ; ) {
    try {
      return join(realpathSync(dir), ...rest.reverse());
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return absolute;
      rest.push(basename(dir));
      dir = parent;
    }
  }
}

/**
 * Per-user runtime files (daemon control sockets, pid files, logs): $AIGOV_RUNTIME_DIR,
 * $XDG_RUNTIME_DIR/aigov, or a per-uid directory under the temp dir. Callers create it 0700.
 * Each configuration (config dir and profile) has its own files in it: see `daemonFiles`.
 */
export function defaultRuntimeDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.AIGOV_RUNTIME_DIR) return resolve(env.AIGOV_RUNTIME_DIR);
  if (env.XDG_RUNTIME_DIR) return join(resolve(env.XDG_RUNTIME_DIR), 'aigov');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return join(tmpdir(), `aigov-${uid}`);
}

/** The profile used when none is given: $AIGOV_PROFILE or "default". */
export function defaultProfile(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.AIGOV_PROFILE && env.AIGOV_PROFILE.trim() !== '' ? env.AIGOV_PROFILE.trim() : 'default';
}

/**
 * The short name of one configuration (config dir, canonical, and profile): 12 hex of their
 * SHA-256. It names the configuration's daemon files and its keychain entry, so two
 * configurations of one OS user share neither.
 */
export function configurationKey(configDir: string, profile: string): string {
  return createHash('sha256').update(`${configDir}\0${profile}`).digest('hex').slice(0, 12);
}
