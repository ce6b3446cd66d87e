/**
 * The login screen in a real terminal: `aigov login` runs inside tmux (a real pty), we read the
 * screen with capture-pane, approve the code it shows, and read the outcome.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startDevGateway } from '../src/gateway/dev/dev-gateway.ts';

const ROOT = join(import.meta.dirname, '..');
const BUILT = existsSync(join(ROOT, 'dist', 'commands', 'login.js'));
const TMUX = spawnSync('tmux', ['-V']).status === 0;

function screen(session: string): string {
  return execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
}

async function waitForScreen(session: string, test: (text: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = screen(session);
    if (test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('aigov login in a real terminal', { skip: !BUILT ? 'run `npm run build` first' : !TMUX ? 'tmux is not installed' : false }, () => {
  it('shows the code in a box with a countdown, then the signed-in user', async () => {
    const home = await mkdtemp(join(tmpdir(), 'aigov-tui-'));
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gw'), logLevel: 'silent' });
    const session = `aigov-tui-${process.pid}`;
    try {
      const env = `HOME=${home} AIGOV_CONFIG_DIR=${join(home, 'config')} AIGOV_RUNTIME_DIR=${join(home, 'run')} AIGOV_DEVICE_POLL_INTERVAL=1 PATH=${process.env.PATH ?? ''}`;
      // CI=… would make Ink hold its frames (and aigov then prints plain lines): test the Ink view.
      const command = `env -u CI -u CONTINUOUS_INTEGRATION ${env} ${process.execPath} ${join(ROOT, 'bin', 'run.js')} login --gateway ${gateway.url} --no-browser --insecure-storage; echo "exit=$?"; sleep 30`;
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '40', command]);
      const shown = await waitForScreen(session, (t) => /[A-Z0-9]{4}-[A-Z0-9]{4}/.test(t) && /expires in/.test(t), 'the code');
      const code = /│\s+([A-Z0-9]{4}-[A-Z0-9]{4})\s+│/.exec(shown)?.[1];
      assert.ok(code, `the code is shown in a box:\n${shown}`);
      assert.match(shown, /Check that your browser shows exactly this code/);
      assert.match(shown, new RegExp(`${gateway.url}/oidc/device\\?user_code=${code}`));
      await gateway.idp.approveDevice(code, 'bob');
      const done = await waitForScreen(session, (t) => /exit=\d+/.test(t), 'the login to finish');
      assert.match(done, /Approved/);
      assert.match(done, /Logged in to .* as bob@aigov\.dev \(groups approvers\)/);
      assert.match(done, /exit=0/);
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      await gateway.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('with CI set, a terminal still shows the code (plain lines: Ink would hold its frames)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'aigov-tui-ci-'));
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gw'), logLevel: 'silent' });
    const session = `aigov-tui-ci-${process.pid}`;
    try {
      const env = `CI=true HOME=${home} AIGOV_CONFIG_DIR=${join(home, 'config')} AIGOV_RUNTIME_DIR=${join(home, 'run')} AIGOV_DEVICE_POLL_INTERVAL=1 PATH=${process.env.PATH ?? ''}`;
      const command = `env ${env} ${process.execPath} ${join(ROOT, 'bin', 'run.js')} login --gateway ${gateway.url} --no-browser --insecure-storage; echo "exit=$?"; sleep 30`;
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '40', command]);
      const shown = await waitForScreen(session, (t) => /\b[A-Z0-9]{4}-[A-Z0-9]{4}\b/.test(t), 'the code');
      const code = /\b([A-Z0-9]{4}-[A-Z0-9]{4})\b/.exec(shown)![1]!;
      await gateway.idp.approveDevice(code, 'carol');
      const done = await waitForScreen(session, (t) => /exit=\d+/.test(t), 'the login to finish');
      assert.match(done, /as carol@aigov\.dev/);
      assert.match(done, /exit=0/);
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      await gateway.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});
