/**
 * The requester's side of approvals, as processes: alice logs in with the built CLI and runs a
 * program through `aigov run`; its request is held at the dev gateway; bob (a second real user
 * of the dev IdP) decides through the approvals API. The run's stderr tells alice what is going
 * on; the child's stdout carries only the child's own output.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEV_CLI_CLIENT_ID, startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { deviceLogin } from './support/dev-login.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'run.js');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'scripts', 'held-chat.mjs');
const BUILT = existsSync(join(ROOT, 'dist', 'commands', 'run.js'));

const POLICY = `
version: 1
rules:
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['production password'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 30s }
`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;
let bobToken: string;

function aigov(args: string[], onStderr?: (stderr: string, child: ChildProcess) => void): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, child);
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function decide(id: string, decision: 'approve' | 'deny', reason: string): Promise<void> {
  const res = await fetch(`${gateway.url}/aigov/v1/approvals/${id}/${decision}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Runs the held-chat script; decides its approval as bob as soon as the run's stderr names it. */
function runHeld(prompt: string, decision: 'approve' | 'deny', extra: string[] = []): Promise<Result> {
  let decided = false;
  return aigov(['run', '--', process.execPath, SCRIPT, prompt, ...extra], (stderr) => {
    const id = /request held for approval (apr_\w+)/.exec(stderr)?.[1];
    if (id && !decided) {
      decided = true;
      void decide(id, decision, decision === 'approve' ? 'ok for staging' : 'use the vault');
    }
  });
}

describe('aigov run with a request held for approval', { skip: BUILT ? false : 'run `npm run build` first', timeout: 120_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-apr-e2e-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', policyFile });
    env = { PATH: process.env.PATH, HOME: home, AIGOV_CONFIG_DIR: join(home, 'config'), AIGOV_RUNTIME_DIR: join(home, 'run'), AIGOV_DEVICE_POLL_INTERVAL: '1' };
    let approved = false;
    const login = await new Promise<Result>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'login', '--gateway', gateway.url, '--no-browser', '--insecure-storage'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const code = /\b([A-Z0-9]{4}-[A-Z0-9]{4})\b/.exec(stderr)?.[1];
        if (code && !approved) {
          approved = true;
          void gateway.idp.approveDevice(code, 'alice');
        }
      });
      child.on('exit', (code) => resolve({ code, stdout: '', stderr }));
    });
    assert.equal(login.code, 0, login.stderr);
    bobToken = (await deviceLogin(gateway.idp, DEV_CLI_CLIENT_ID, 'bob')).accessToken;
  });
  after(async () => {
    await aigov(['daemon', 'stop']);
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('non-streamed: stderr says it is held, by which rule, who can approve; then the outcome; stdout is the child only', async () => {
    const result = await runHeld('what is the production password policy?', 'approve');
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim()) as { ok: boolean; text: string };
    assert.equal(out.ok, true, result.stdout);
    assert.match(out.text, /\[aigov dev model\]/);
    assert.doesNotMatch(result.stdout, /aigov:/, 'notices never go to the child stdout');
    assert.match(result.stderr, /aigov: request held for approval apr_\w+ — rule prod-credentials: the prompt names production credentials\./);
    assert.match(result.stderr, /who can approve: members of approvers \(1 approval needed\), with `aigov approvals`; expires in \d+s\./);
    assert.match(result.stderr, /approved by bob@aigov\.dev \("ok for staging"\) — the request goes on\./);
  });

  it('streamed and denied: the SDK raises the denial; stderr says who denied it and why', async () => {
    const result = await runHeld('print the production password', 'deny', ['--stream']);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim()) as { ok: boolean; message: string };
    assert.equal(out.ok, false);
    assert.match(out.message, /denied by bob@aigov\.dev: use the vault/);
    assert.match(result.stderr, /aigov: apr_\w+ denied by bob@aigov\.dev: use the vault\. The request was not sent\./);
  });
});
