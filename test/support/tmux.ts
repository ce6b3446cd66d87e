/**
 * A real terminal for TUI smoke tests: a detached tmux session runs the built CLI in a pty, the
 * test types keys into it (send-keys) and reads the screen (capture-pane).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { BIN } from './cli-process.ts';

/** Whether tmux is installed here. */
export const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;

/**
 * A shell command that runs `aigov ARGS` with `env` (values unquoted), then prints `exit=CODE`
 * and keeps the pane open 30 s for the test to read. Unless `keepCi` is set, CI and
 * CONTINUOUS_INTEGRATION are removed: under CI Ink would hold its frames.
 */
export function aigovPaneCommand(args: string[], env: NodeJS.ProcessEnv, options: { keepCi?: boolean } = {}): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`).join(' ');
  const envCommand = options.keepCi ? 'env' : 'env -u CI -u CONTINUOUS_INTEGRATION';
  return `${envCommand} ${vars} ${process.execPath} ${BIN} ${args.join(' ')}; echo "exit=$?"; sleep 30`;
}

/** Starts `command` in a new detached session `session` of `width` × `height` cells. */
export function startSession(session: string, command: string, size: { width: number; height: number }): void {
  execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', String(size.width), '-y', String(size.height), command]);
}

/** Ends the session (nothing happens when it is gone already). */
export function killSession(session: string): void {
  spawnSync('tmux', ['kill-session', '-t', session]);
}

/** Sends key names (`Enter`, `Space`, `Right`, `q`…) as tmux reads them. */
export function sendKeys(session: string, ...keys: string[]): void {
  execFileSync('tmux', ['send-keys', '-t', session, ...keys]);
}

/** Types `text` literally. */
export function typeText(session: string, text: string): void {
  execFileSync('tmux', ['send-keys', '-t', session, '-l', text]);
}

/** The visible screen as text; with `styles`, including the escape sequences of colours and attributes. */
export function screen(session: string, options: { styles?: boolean } = {}): string {
  return execFileSync('tmux', ['capture-pane', '-p', ...(options.styles ? ['-e'] : []), '-t', session], { encoding: 'utf8' });
}

/** Reads the screen every `pollMs` until `test` accepts it (and returns it), for at most 20 s. */
export async function waitForScreen(session: string, test: (text: string) => boolean, what: string, pollMs = 100): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = screen(session);
    if (test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
