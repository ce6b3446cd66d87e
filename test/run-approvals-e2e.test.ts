/**
 * The requester's side of approvals, as processes: alice logs in with the built CLI and runs a
 * program through `aigov run`; its request is held at the dev gateway; bob (a second real user
 * of the dev IdP) decides through the approvals API. The run's stderr tells alice what is going
 * on; the child's stdout carries only the child's own output.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEV_CLI_CLIENT_ID, startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, runCli, type CliResult } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';

const SCRIPT = join(import.meta.dirname, 'fixtures', 'scripts', 'held-chat.mjs');
const BUILT = isBuilt('commands/run.js');

const POLICY = `
version: 1
rules:
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['production password'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 30s }
`;

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;
let bobToken: string;

async function decide(id: string, decision: 'approve' | 'deny', reason: string): Promise<void> {
  const res = await fetchAsUser(gateway.url, bobToken, `/aigov/v1/approvals/${id}/${decision}`, { method: 'POST', body: { reason } });
  assert.equal(res.status, 200, await res.text());
}

/** Runs the held-chat script; decides its approval as bob as soon as the run's stderr names it. */
function runHeld(prompt: string, decision: 'approve' | 'deny', extra: string[] = []): Promise<CliResult> {
  let decided = false;
  return runCli(['run', '--', process.execPath, SCRIPT, prompt, ...extra], {
    env,
    onStderr: (stderr) => {
      const id = /request held for approval (apr_\w+)/.exec(stderr)?.[1];
      if (id && !decided) {
        decided = true;
        void decide(id, decision, decision === 'approve' ? 'ok for staging' : 'use the vault');
      }
    },
  });
}

describe('aigov run with a request held for approval', { skip: BUILT ? false : 'run `npm run build` first', timeout: 120_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-apr-e2e-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', policyFile });
    env = cliEnv(home);
    const login = await loginWithDeviceCode(gateway, 'alice', { env });
    assert.equal(login.code, 0, login.stderr);
    bobToken = (await deviceLogin(gateway.idp, DEV_CLI_CLIENT_ID, 'bob')).accessToken;
  });
  after(async () => {
    await runCli(['daemon', 'stop'], { env });
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

  it('a retry after Ctrl-C joins the pending approval: the new run says so, then the outcome', async () => {
    const prompt = 'rotate the production password tonight?';
    let firstId: string | undefined;
    const first = await runCli(['run', '--', process.execPath, SCRIPT, prompt], {
      env,
      onStderr: (stderr, child) => {
        const id = /request held for approval (apr_\w+)/.exec(stderr)?.[1];
        if (id && firstId === undefined) {
          firstId = id;
          // Ctrl-C in a terminal reaches the whole process group; here the run is stopped with
          // SIGTERM, which aigov run forwards to its child.
          child.kill('SIGTERM');
        }
      },
    });
    assert.ok(firstId !== undefined, first.stderr);
    assert.notEqual(first.code, 0, 'interrupted');
    const retry = await runHeld(prompt, 'approve');
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal((JSON.parse(retry.stdout.trim()) as { ok: boolean }).ok, true, retry.stdout);
    assert.match(retry.stderr, new RegExp(`aigov: request held for approval ${firstId} \\(opened \\d+s ago by the same request, sent earlier\\) — rule prod-credentials`));
    assert.match(retry.stderr, /who can approve: members of approvers/);
    assert.match(retry.stderr, new RegExp(`aigov: ${firstId} approved by bob@aigov\\.dev`));
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
