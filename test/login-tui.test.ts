/**
 * The login screen in a real terminal: `aigov login` runs inside tmux (a real pty), we read the
 * screen with capture-pane, approve the code it shows, and read the outcome.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { cliEnv, deviceCodeIn, isBuilt } from './support/cli-process.ts';
import { aigovPaneCommand, HAS_TMUX, killSession, startSession, waitForScreen } from './support/tmux.ts';

const BUILT = isBuilt('commands/login.js');

describe('aigov login in a real terminal', { skip: !BUILT ? 'run `npm run build` first' : !HAS_TMUX ? 'tmux is not installed' : false }, () => {
  it('shows the code in a box with a countdown, then the signed-in user', async () => {
    const home = await mkdtemp(join(tmpdir(), 'aigov-tui-'));
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gw'), logLevel: 'silent' });
    const session = `aigov-tui-${process.pid}`;
    try {
      // CI=… would make Ink hold its frames (and aigov then prints plain lines): test the Ink view.
      const command = aigovPaneCommand(['login', '--gateway', gateway.url, '--no-browser', '--insecure-storage'], cliEnv(home));
      startSession(session, command, { width: 120, height: 40 });
      const shown = await waitForScreen(session, (t) => /[A-Z0-9]{4}-[A-Z0-9]{4}/.test(t) && /expires in/.test(t), 'the code');
      const code = /│\s+([A-Z0-9]{4}-[A-Z0-9]{4})\s+│/.exec(shown)?.[1];
      assert.ok(code, `the code is shown in a box:\n${shown}`);
      assert.match(shown, /Check that your browser shows exactly this code/);
      assert.match(shown, new RegExp(`${gateway.url}/oidc/device\\?user_code=${code}`));
      await gateway.idp.approveDevice(code, 'bob');
      const done = await waitForScreen(session, (t) => /exit=\d+/.test(t), 'the login to finish');
      assert.match(done, /Approved/);
      assert.match(done, /Logged in to .* as bob@aigov\.dev \(groups approvers, security\)/);
      assert.match(done, /exit=0/);
    } finally {
      killSession(session);
      await gateway.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('with CI set, a terminal still shows the code (plain lines: Ink would hold its frames)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'aigov-tui-ci-'));
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gw'), logLevel: 'silent' });
    const session = `aigov-tui-ci-${process.pid}`;
    try {
      const command = aigovPaneCommand(['login', '--gateway', gateway.url, '--no-browser', '--insecure-storage'], { CI: 'true', ...cliEnv(home) }, { keepCi: true });
      startSession(session, command, { width: 120, height: 40 });
      const shown = await waitForScreen(session, (t) => /\b[A-Z0-9]{4}-[A-Z0-9]{4}\b/.test(t), 'the code');
      const code = deviceCodeIn(shown)!;
      await gateway.idp.approveDevice(code, 'carol');
      const done = await waitForScreen(session, (t) => /exit=\d+/.test(t), 'the login to finish');
      assert.match(done, /as carol@aigov\.dev/);
      assert.match(done, /exit=0/);
    } finally {
      killSession(session);
      await gateway.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});
