/**
 * `aigov run -- CMD ARGS…`: runs a program with its SDK traffic going through the aigov daemon.
 *
 * The child gets a loopback base URL and a per-run key — never the user's tokens nor a real
 * provider key — and aigov gets out of the way: stdio inherited, the child's exit code returned
 * (128 + signal number when a signal killed it), SIGTERM/SIGHUP forwarded, SIGINT left to the
 * terminal (which already delivers it to the child's process group: forwarding would double it).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { AigovError } from '../core/errors.ts';

/** Provider credentials a child must not inherit: it talks to the daemon with its run key only. */
const STRIPPED_ENV = [
  'OPENAI_API_KEY',
  'OPENAI_ADMIN_KEY',
  'OPENAI_ORG_ID',
  'OPENAI_ORGANIZATION',
  'OPENAI_PROJECT_ID',
  'OPENAI_BASE_URL',
  'OPENAI_API_BASE',
  'AZURE_OPENAI_API_KEY',
  'AZURE_OPENAI_AD_TOKEN',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'ANTHROPIC_BASE_URL',
  'CLAUDE_API_KEY',
  // aigov's own secrets (CI login): the child must never see the user's tokens.
  'AIGOV_REFRESH_TOKEN',
  'AIGOV_ACCESS_TOKEN',
];

export interface RunGrant {
  readonly runKey: string;
  readonly sessionId: string;
  readonly baseUrl: string;
  readonly providers: readonly { readonly name: string; readonly kind: 'openai' | 'anthropic'; readonly path: string }[];
}

/** The child's environment: the parent's, minus provider credentials, plus the daemon's coordinates. */
export function childEnvironment(parent: NodeJS.ProcessEnv, grant: RunGrant): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...parent };
  for (const name of STRIPPED_ENV) delete env[name];
  const pick = (kind: 'openai' | 'anthropic') => grant.providers.find((p) => p.kind === kind && p.name === kind) ?? grant.providers.find((p) => p.kind === kind);
  const openai = pick('openai');
  const anthropic = pick('anthropic');
  if (openai) {
    env.OPENAI_BASE_URL = grant.baseUrl + openai.path;
    env.OPENAI_API_KEY = grant.runKey;
  }
  if (anthropic) {
    env.ANTHROPIC_BASE_URL = grant.baseUrl + anthropic.path;
    env.ANTHROPIC_API_KEY = grant.runKey;
  }
  env.AIGOV_SESSION_ID = grant.sessionId;
  return env;
}

/** Runs the child to completion; resolves with the exit code aigov should return. */
export function runChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    // Handlers go in before the child starts: with none installed, a SIGTERM arriving while spawn()
    // returns would kill aigov at once and leave the child running on its own. (Handlers run on a
    // later turn of the event loop, when `child` is set.)
    const forward = (signal: NodeJS.Signals) => (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const onTerm = forward('SIGTERM');
    const onHup = forward('SIGHUP');
    const onInt = (): void => {
      // The terminal sent SIGINT to the whole foreground process group: the child has it already.
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    process.on('SIGINT', onInt);
    const cleanup = (): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
      process.off('SIGINT', onInt);
    };
    const child = spawn(command, args, { stdio: 'inherit', env });
    child.once('error', (error: NodeJS.ErrnoException) => {
      cleanup();
      const reason = error.code === 'ENOENT' ? 'command not found' : error.code === 'EACCES' ? 'permission denied' : (error.code ?? 'cannot start it');
      reject(new AigovError('AIGOV_E_COMMAND_NOT_FOUND', { command, reason }));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      if (signal !== null) resolve(128 + (constants.signals[signal] ?? 0));
      else resolve(code ?? 0);
    });
  });
}
