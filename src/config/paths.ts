/** Where aigov keeps state. The only module that reads HOME/XDG variables. */
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

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
 * Per-user runtime files (daemon control socket, pid file): $AIGOV_RUNTIME_DIR,
 * $XDG_RUNTIME_DIR/aigov, or a per-uid directory under the temp dir. Callers create it 0700.
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
