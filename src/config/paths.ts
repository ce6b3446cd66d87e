/** Where aigov keeps state. The only module that reads HOME/XDG variables. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function defaultStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.AIGOV_STATE_DIR) return resolve(env.AIGOV_STATE_DIR);
  const base = env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state');
  return join(base, 'aigov');
}

export function defaultDevStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return join(defaultStateDir(env), 'dev');
}
