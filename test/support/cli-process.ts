/**
 * The BUILT CLI as a process, the way end-to-end tests drive it: a private HOME, config and
 * runtime directory per test file, `aigov login` through the real device flow (the code the CLI
 * prints on stderr approved at the dev IdP as a given user), and every run's exit code and output.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** bin/run.js: what `aigov` runs. */
export const BIN = join(ROOT, 'bin', 'run.js');

/** Whether `npm run build` has produced each of these files (paths inside dist/). */
export function isBuilt(...distFiles: string[]): boolean {
  return distFiles.every((file) => existsSync(join(ROOT, 'dist', file)));
}

/** The environment of a CLI with its own HOME: config and runtime dirs inside it, device polling every second. */
export function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AIGOV_CONFIG_DIR: join(home, 'config'),
    AIGOV_RUNTIME_DIR: join(home, 'run'),
    AIGOV_DEVICE_POLL_INTERVAL: '1',
    ...extra,
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  /** Called with all of stdout so far, each time more arrives. */
  onStdout?: (stdout: string, child: ChildProcess) => void;
  /** Called with all of stderr so far, each time more arrives. */
  onStderr?: (stderr: string, child: ChildProcess) => void;
  /** Fail unless the output is free of anything that looks like a JWT. */
  forbidTokens?: boolean;
  /** The working directory (default: this process's). */
  cwd?: string;
}

/** Runs `aigov ARGS` (stdin closed) and resolves when it exits. */
export async function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  const result = await new Promise<CliResult>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr, child);
    });
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  // Nothing a command prints may carry a token (JWTs start with eyJ).
  if (options.forbidTokens) assert.equal(/eyJ[\w-]{10,}/.test(result.stdout + result.stderr), false, `a token was printed by aigov ${args.join(' ')}`);
  return result;
}

/** Asserts the command exited 0 and parses its stdout as JSON with `schema`. */
export function parseJsonOutput<T>(result: CliResult, schema: { parse(value: unknown): T }): T {
  assert.equal(result.code, 0, result.stderr);
  return schema.parse(JSON.parse(result.stdout));
}

/** The first device user code (XXXX-XXXX) in `text`. */
export function deviceCodeIn(text: string): string | undefined {
  return /\b([A-Z0-9]{4}-[A-Z0-9]{4})\b/.exec(text)?.[1];
}

/** The part of the dev IdP (or the test harness's IdP) that plays the user approving a device code. */
export interface DeviceApprover {
  approveDevice(userCode: string, user: string): Promise<unknown>;
}

/**
 * `aigov login --gateway URL --no-browser --insecure-storage [...extraArgs]`, approving the device
 * code it prints on stderr as `user` (once).
 */
export function loginWithDeviceCode(
  gateway: { readonly url: string; readonly idp: DeviceApprover },
  user: string,
  options: Omit<CliOptions, 'onStdout' | 'onStderr'> & { extraArgs?: string[] },
): Promise<CliResult> {
  const { extraArgs = [], ...cliOptions } = options;
  let approved = false;
  return runCli(['login', '--gateway', gateway.url, '--no-browser', '--insecure-storage', ...extraArgs], {
    ...cliOptions,
    onStderr: (stderr) => {
      const code = deviceCodeIn(stderr);
      if (code && !approved) {
        approved = true;
        void gateway.idp.approveDevice(code, user);
      }
    },
  });
}
