/**
 * End to end as a user would: the dev gateway (embedded IdP, SQLite, dev model) runs here; the
 * BUILT CLI runs as processes — `aigov login` (device code approved as alice), then `aigov run`
 * with real programs (the official openai SDK, Python's standard library), which start and use
 * the daemon. The recordings prove who called and in which session.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { BIN, cliEnv, isBuilt, loginWithDeviceCode, runCli, type CliResult } from './support/cli-process.ts';

const SCRIPTS = join(import.meta.dirname, 'fixtures', 'scripts');
const BUILT = isBuilt('commands/run.js', 'commands/login.js');

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;

function aigov(args: string[], extraEnv: NodeJS.ProcessEnv = {}, onStdout?: (stdout: string, child: ChildProcess) => void): Promise<CliResult> {
  return runCli(args, { env: { ...env, ...extraEnv }, onStdout });
}

/** `aigov login`, approving the device code shown on stderr as `user`. */
function login(user = 'alice', extra: string[] = []): Promise<CliResult> {
  return loginWithDeviceCode(gateway, user, { env, extraArgs: extra });
}

function lines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('aigov login → aigov run, as processes', { skip: BUILT ? false : 'run `npm run build` first', timeout: 120_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-e2e-'));
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', accessTokenTtlSeconds: 4 });
    env = cliEnv(home, {
      // A real-looking provider key in the parent: the child must not see it.
      OPENAI_API_KEY: 'sk-real-parent-key-0000000000000000',
      ANTHROPIC_API_KEY: 'sk-real-ant-parent-key-000000000000',
    });
  });
  after(async () => {
    await aigov(['daemon', 'stop']);
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('logs in with the device code and reports who is logged in', async () => {
    const result = await login('alice');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /alice@aigov\.dev/);
    const whoami = await aigov(['whoami']);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.match(whoami.stdout, /alice@aigov\.dev/);
    const status = await aigov(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as Record<string, unknown>;
    assert.equal(JSON.stringify(parsed).includes('eyJ'), false, 'status never prints a token');
  });

  it('runs a program using the official openai SDK; calls recorded as alice in the run session', async () => {
    const result = await aigov(['run', '--', process.execPath, join(SCRIPTS, 'openai-chat.mjs')]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const [out] = lines(result.stdout);
    assert.ok(out);
    assert.match(String(out.plain), /\[aigov dev model\]/);
    assert.match(String(out.streamed), /\[aigov dev model\]/);
    assert.equal(out.keyIsRunKey, true);
    assert.equal(out.sameKeyForAnthropic, true);
    assert.deepEqual(out.leaked, [], 'no real key or token in the child environment');
    assert.match(String(out.baseUrl), /^http:\/\/127\.0\.0\.1:\d+\/openai\/v1$/);
    await gateway.store.flush();
    const calls = await gateway.store.listCalls(String(out.session));
    assert.equal(calls.length, 2);
    assert.ok(calls.every((c) => c.principal.subject === 'alice' && c.status === 'completed'));
    assert.deepEqual(calls.map((c) => c.stream), [false, true]);
  });

  it('runs a Python script that uses only the standard library', async () => {
    const result = await aigov(['run', '--', 'python3', join(SCRIPTS, 'stdlib_chat.py')]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const [out] = lines(result.stdout);
    assert.match(String(out?.text), /hello from python/);
    await gateway.store.flush();
    assert.equal((await gateway.store.listCalls(String(out?.session))).length, 1);
  });

  it('refreshes an access token that expires during the run without the child noticing', async () => {
    const flag = join(home, 'go-on');
    const run = aigov(['run', '--', process.execPath, join(SCRIPTS, 'two-calls.mjs'), flag]);
    await new Promise((r) => setTimeout(r, 5500)); // access tokens live 4 s here
    writeFileSync(flag, '');
    const result = await run;
    assert.equal(result.code, 0, result.stderr);
    const calls = lines(result.stdout).filter((l) => 'ok' in l);
    assert.deepEqual(calls.map((c) => c.ok), [true, true], result.stdout);
  });

  it('refuses a request made with a wrong per-run key', async () => {
    const result = await aigov(['run', '--', process.execPath, join(SCRIPTS, 'wrong-key.mjs')]);
    assert.equal(result.code, 0, result.stderr);
    const [out] = lines(result.stdout);
    assert.equal(out?.ok, false);
    assert.equal(out?.status, 401);
    assert.equal(out?.error, 'AuthenticationError');
  });

  it("returns the child's exit code, and 128 + N when a signal kills it", async () => {
    assert.equal((await aigov(['run', '--', 'sh', '-c', 'exit 7'])).code, 7);
    assert.equal((await aigov(['run', '--', 'sh', '-c', 'kill -TERM $$'])).code, 143);
    assert.equal((await aigov(['run', '--', 'sh', '-c', 'kill -KILL $$'])).code, 137);
    const missing = await aigov(['run', '--', 'no-such-command-aigov']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no-such-command-aigov.*command not found/);
  });

  it('forwards SIGTERM to the child and passes arguments after -- untouched', async () => {
    let sent = false;
    // Bounded loop: should the signal go astray, the child still ends and the test fails cleanly.
    const script = 'trap "echo got-term; exit 3" TERM; echo "args:$*"; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done';
    const result = await aigov(['run', '--', 'sh', '-c', script, 'sh', '--profile', '-v', '--', 'x y'], {}, (stdout, child) => {
      if (!sent && stdout.includes('ready')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    assert.match(result.stdout, /^args:--profile -v -- x y$/m);
    assert.match(result.stdout, /got-term/);
    assert.equal(result.code, 3);
  });

  it('a Ctrl-C reaches the child once (the terminal signals the process group; aigov does not forward it again)', async () => {
    const script = 'n=0; trap "n=$((n+1))" INT; echo ready; i=0; while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; echo "ints:$n"';
    const child = spawn(process.execPath, [BIN, 'run', '--', 'sh', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let signalled = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!signalled && stdout.includes('ready')) {
        signalled = true;
        process.kill(-child.pid!, 'SIGINT'); // what a terminal does: the whole foreground group
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.match(stdout, /ints:1$/m, stdout);
    assert.equal(code, 0);
  });

  it('refuses a nested aigov run with a clear message', async () => {
    const result = await aigov(['run', '--', process.execPath, BIN, 'run', '--', 'true']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /nested runs are not supported/);
  });

  it('survives the daemon being killed: the next run starts a fresh one', async () => {
    const status = await aigov(['daemon', 'status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const { pid } = (JSON.parse(status.stdout) as { status: { pid: number } }).status;
    const flag = join(home, 'after-kill');
    const run = aigov(['run', '--', process.execPath, join(SCRIPTS, 'two-calls.mjs'), flag]);
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(pid, 'SIGKILL');
    writeFileSync(flag, '');
    const result = await run;
    assert.equal(result.code, 0, 'aigov run still returns the child exit code');
    const calls = lines(result.stdout).filter((l) => 'ok' in l);
    assert.equal(calls[0]?.ok, true);
    assert.equal(calls[1]?.ok, false, 'the call after the daemon died fails visibly');
    const again = await aigov(['run', '--', process.execPath, join(SCRIPTS, 'openai-chat.mjs')]);
    assert.equal(again.code, 0, again.stderr);
  });

  it('CI: a refresh token in AIGOV_REFRESH_TOKEN and AIGOV_GATEWAY, no login, no profile', async () => {
    const { deviceLogin } = await import('./support/dev-login.ts');
    const { refreshToken } = await deviceLogin(gateway.idp, 'aigov-cli', 'carol');
    const ci = { AIGOV_CONFIG_DIR: join(home, 'ci-config'), AIGOV_RUNTIME_DIR: join(home, 'ci-run'), AIGOV_REFRESH_TOKEN: refreshToken, AIGOV_GATEWAY: gateway.url };
    try {
      const result = await aigov(['run', '--', process.execPath, join(SCRIPTS, 'openai-chat.mjs')], ci);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const [out] = lines(result.stdout);
      assert.deepEqual(out?.leaked, [], 'the refresh token is not in the child environment');
      await gateway.store.flush();
      const calls = await gateway.store.listCalls(String(out?.session));
      assert.ok(calls.length === 2 && calls.every((c) => c.principal.subject === 'carol'));
    } finally {
      await aigov(['daemon', 'stop'], ci);
    }
  });

  it('logout revokes the sign-in; a run then tells the user to log in', async () => {
    const out = await aigov(['logout']);
    assert.equal(out.code, 0, out.stderr);
    await aigov(['daemon', 'stop']);
    const whoami = await aigov(['whoami']);
    assert.equal(whoami.code, 1);
    const run = await aigov(['run', '--', 'true']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /aigov login/);
  });
});
