/**
 * The approver's side end to end, as processes: the dev gateway (embedded IdP, SQLite, dev
 * model) runs here with a policy whose `require_approval` rules hold prompts; alice's request
 * is held at the gateway while the BUILT CLI — logged in as bob, dave, carol and alice in their
 * own profiles, each with its own daemon handing out access tokens — lists, shows, approves and
 * denies it. The held request's own answer proves what the decision did. One smoke test drives
 * the Ink inbox in a real terminal (tmux).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { ApprovalListSchema, ApprovalViewSchema, type ApprovalView } from '../src/protocol/approvals.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, parseJsonOutput, runCli, type CliResult } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { aigovPaneCommand, HAS_TMUX, killSession, sendKeys, startSession, typeText, waitForScreen } from './support/tmux.ts';

const BUILT = isBuilt('commands/approvals/list.js');

const POLICY = `
version: 1
rules:
  - id: customer-data
    reason: customer data needs a second look
    match: { keywords: ['customer list'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 2m }
  - id: wire-transfer
    reason: money moves need two approvers
    match: { keywords: ['wire transfer'] }
    action: require_approval
    approval: { approvers: [approvers], required: 2, timeout: 2m }
`;

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;
let aliceToken: string;
const PROFILES = ['alice', 'bob', 'carol', 'dave'] as const;

function aigov(args: string[]): Promise<CliResult> {
  return runCli(args, { env, forbidTokens: true });
}

/** `aigov login --profile USER` as USER, approving the device code shown on stderr. */
async function login(user: string): Promise<void> {
  const result = await loginWithDeviceCode(gateway, user, { env, forbidTokens: true, extraArgs: ['--profile', user] });
  assert.equal(result.code, 0, result.stderr);
}

interface HeldAnswer {
  status: number;
  body: { choices?: { message: { content: string } }[]; error?: { message: string; code?: string } };
}

/** alice sends a chat request the policy holds; resolves with the gateway's eventual answer. */
function heldRequest(content: string): Promise<HeldAnswer> {
  return fetchAsUser(gateway.url, aliceToken, '/openai/v1/chat/completions', {
    method: 'POST',
    body: { model: 'aigov-dev', messages: [{ role: 'user', content }] },
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as HeldAnswer['body'] }));
}

/** Waits until `profile` lists a pending approval of `ruleId` whose preview contains `marker`. */
async function pendingApproval(profile: string, ruleId: string, marker: string, extra: string[] = []): Promise<ApprovalView> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { approvals } = parseJsonOutput(await aigov(['approvals', 'list', '--json', '--profile', profile, ...extra]), ApprovalListSchema);
    const found = approvals.find((a) => a.rule.id === ruleId && a.preview.includes(marker));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${profile} never saw a pending ${ruleId} approval with ${marker}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The approval as the gateway's API says (bob's view). */
async function apiApproval(id: string): Promise<ApprovalView> {
  const bob = await deviceLogin(gateway.idp, 'aigov-cli', 'bob', { resource: gateway.url });
  const res = await fetchAsUser(gateway.url, bob.accessToken, `/aigov/v1/approvals/${id}`);
  return ApprovalViewSchema.parse(await res.json());
}

describe('aigov approvals against a real gateway, as processes', { skip: BUILT ? false : 'run `npm run build` first', timeout: 240_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-apr-cli-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', policyFile });
    env = cliEnv(home);
    await Promise.all(PROFILES.map((user) => login(user)));
    aliceToken = (await deviceLogin(gateway.idp, 'aigov-cli', 'alice', { resource: gateway.url })).accessToken;
  });
  after(async () => {
    await Promise.all(PROFILES.map((profile) => aigov(['daemon', 'stop', '--profile', profile])));
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('bob lists and shows the held request (table, detail block, --json); alice sees it with --mine', async () => {
    const answer = heldRequest('please send me the customer list #show');
    const approval = await pendingApproval('bob', 'customer-data', '#show');
    assert.equal(approval.requester.email, 'alice@aigov.dev');
    assert.deepEqual(approval.approvers, { groups: ['approvers'], required: 1 });
    assert.equal(approval.can_decide, true);

    const table = await aigov(['approvals', 'list', '--profile', 'bob']);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^ID +REQUESTER +RULE +MODEL +AGE +EXPIRES IN +VOTES$/);
    const row = rows.find((r) => r.startsWith(approval.id)) ?? '';
    assert.match(row, new RegExp(`^${approval.id} +alice@aigov\\.dev +customer-data +openai/aigov-dev +\\d+s +[12]:\\d\\d +0/1$`));

    const shown = await aigov(['approvals', 'show', approval.id, '--profile', 'bob']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^Approval ${approval.id}: pending, expires in [12]:\\d\\d$`, 'm'));
    assert.match(shown.stdout, /^ {2}Requester +alice@aigov\.dev \(developers\)$/m);
    assert.match(shown.stdout, /^ {2}Rule +customer-data: customer data needs a second look$/m);
    assert.match(shown.stdout, /^ {2}Approvers +approvers · 0 of 1 approval$/m);
    assert.match(shown.stdout, /^ {2}Preview \(redacted\)\n {4}\S.*#show/m);
    assert.deepEqual(parseJsonOutput(await aigov(['approvals', 'show', approval.id, '--json', '--profile', 'bob']), ApprovalViewSchema), { ...approval, votes: [] });

    const mine = parseJsonOutput(await aigov(['approvals', 'list', '--mine', '--json', '--profile', 'alice']), ApprovalListSchema);
    assert.ok(mine.approvals.some((a) => a.id === approval.id && a.can_decide === false));
    const aliceDecides = parseJsonOutput(await aigov(['approvals', 'list', '--json', '--profile', 'alice']), ApprovalListSchema);
    assert.equal(aliceDecides.approvals.some((a) => a.id === approval.id), false, 'not in what alice may decide');

    const denied = parseJsonOutput(await aigov(['approvals', 'deny', approval.id, '--reason', 'cleanup', '--json', '--profile', 'bob']), ApprovalViewSchema);
    assert.equal(denied.state, 'denied');
    assert.equal((await answer).status, 403);
  });

  it('refusals exit with the code of the gateway answer and print its message and hint', async () => {
    const answer = heldRequest('the customer list again #refusals');
    const approval = await pendingApproval('bob', 'customer-data', '#refusals');

    const self = await aigov(['approvals', 'approve', approval.id, '--profile', 'alice']);
    assert.equal(self.code, 77, self.stderr);
    assert.match(self.stderr, new RegExp(`^aigov: You cannot decide approval ${approval.id}: it is your own request\\.\\n {2}hint: Another approver \\(approvers\\) has to decide it\\.\\n {2}code: AIGOV_E_APPROVAL_SELF$`, 'm'));

    const outsider = await aigov(['approvals', 'approve', approval.id, '--profile', 'carol']);
    assert.equal(outsider.code, 66, outsider.stderr);
    assert.match(outsider.stderr, /code: AIGOV_E_APPROVAL_NOT_FOUND/);
    const missing = await aigov(['approvals', 'show', 'apr_does_not_exist', '--profile', 'bob']);
    assert.equal(missing.code, 66);
    assert.match(missing.stderr, /No approval apr_does_not_exist that you may see/);

    const nobody = await aigov(['approvals', 'list', '--profile', 'nobody']);
    assert.equal(nobody.code, 4, nobody.stderr);
    assert.match(nobody.stderr, /Not logged in to aigov \(profile `nobody`\)[\s\S]*aigov login/);

    const noTty = await aigov(['approvals', '--profile', 'bob']);
    assert.equal(noTty.code, 64);
    assert.match(noTty.stderr, /needs a terminal[\s\S]*aigov approvals list --json/);

    assert.equal((await apiApproval(approval.id)).state, 'pending', 'refusals changed nothing');
    const ok = await aigov(['approvals', 'approve', approval.id, '--profile', 'dave']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `✔ Approved ${approval.id}: the request goes on to openai/aigov-dev.\n`);
    assert.equal((await answer).status, 200);
    const again = await aigov(['approvals', 'deny', approval.id, '--reason', 'too late', '--profile', 'bob']);
    assert.equal(again.code, 65, again.stderr);
    assert.match(again.stderr, new RegExp(`Approval ${approval.id} is already approved[\\s\\S]*code: AIGOV_E_APPROVAL_CLOSED`));
  });

  it('approve --json with a reason lets the held request through; the vote records who and why', async () => {
    const answer = heldRequest('the customer list for the audit #approve');
    const approval = await pendingApproval('bob', 'customer-data', '#approve');
    const approved = parseJsonOutput(await aigov(['approvals', 'approve', approval.id, '--reason', 'audit request, fine', '--json', '--profile', 'bob']), ApprovalViewSchema);
    assert.equal(approved.state, 'approved');
    assert.equal(approved.votes.length, 1);
    assert.equal(approved.votes[0]?.by.email, 'bob@aigov.dev');
    assert.equal(approved.votes[0]?.reason, 'audit request, fine');
    const result = await answer;
    assert.equal(result.status, 200);
    assert.match(result.body.choices?.[0]?.message.content ?? '', /\[aigov dev model\]/);
    const listed = parseJsonOutput(await aigov(['approvals', 'list', '--state', 'approved', '--json', '--profile', 'bob']), ApprovalListSchema);
    assert.ok(listed.approvals.some((a) => a.id === approval.id));
  });

  it('deny with a reason: the held request gets a 403 naming the reason', async () => {
    const answer = heldRequest('export the customer list to my laptop #deny');
    const approval = await pendingApproval('bob', 'customer-data', '#deny');
    const denied = await aigov(['approvals', 'deny', approval.id, '--reason', 'no exports to laptops', '--profile', 'bob']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.equal(denied.stdout, `✘ Denied ${approval.id}: the request will not be sent.\n`);
    const result = await answer;
    assert.equal(result.status, 403);
    assert.match(result.body.error?.message ?? '', /no exports to laptops/);
    assert.match(result.body.error?.message ?? '', new RegExp(approval.id));
  });

  it('two approvers: the first vote is recorded and waits, a second vote by the same person is refused, the second approver completes it', async () => {
    const answer = heldRequest('wire transfer of 10k #two');
    const approval = await pendingApproval('bob', 'wire-transfer', '#two');
    const first = await aigov(['approvals', 'approve', approval.id, '--profile', 'bob']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `✔ Your approval of ${approval.id} is recorded (1/2); it needs 1 more from another approver.\n`);
    const twice = await aigov(['approvals', 'approve', approval.id, '--profile', 'bob']);
    assert.equal(twice.code, 65, twice.stderr);
    assert.match(twice.stderr, /code: AIGOV_E_APPROVAL_VOTED/);
    const second = parseJsonOutput(await aigov(['approvals', 'approve', approval.id, '--json', '--profile', 'dave']), ApprovalViewSchema);
    assert.equal(second.state, 'approved');
    assert.deepEqual(second.votes.map((v) => v.by.email), ['bob@aigov.dev', 'dave@aigov.dev']);
    assert.equal((await answer).status, 200);
  });
});

describe('aigov approvals inbox in a real terminal', { skip: !BUILT ? 'run `npm run build` first' : !HAS_TMUX ? 'tmux is not installed' : false, timeout: 120_000 }, () => {
  it('bob watches the inbox, a held request appears live, a + reason + Enter approves it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-apr-tui-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(dir, 'gateway'), logLevel: 'silent', policyFile });
    env = cliEnv(dir);
    const session = `aigov-apr-${process.pid}`;
    try {
      await login('bob');
      aliceToken = (await deviceLogin(gateway.idp, 'aigov-cli', 'alice', { resource: gateway.url })).accessToken;
      // CI=… would make Ink hold its frames: test the interactive inbox (aigovPaneCommand unsets it).
      startSession(session, aigovPaneCommand(['approvals', '--profile', 'bob'], env), { width: 110, height: 32 });
      await waitForScreen(session, (t) => t.includes('● live') && t.includes('No pending approvals'), 'the empty live inbox');

      const answer = heldRequest('send the customer list to finance #tui');
      const shown = await waitForScreen(session, (t) => t.includes('customer-data') && t.includes('#tui'), 'the held request');
      assert.match(shown, /1 pending/);
      assert.match(shown, /› +apr_\S+ +alice@aigov\.dev +customer-data +openai\/aigov-dev +[12]:\d\d +0\/1/);
      assert.match(shown, /Requester +alice@aigov\.dev \(developers\)/);
      assert.match(shown, /expires in [12]:\d\d/);
      const id = /› +(apr_\S+)/.exec(shown)![1]!;

      sendKeys(session, 'a');
      await waitForScreen(session, (t) => t.includes(`Approve ${id} — reason (optional):`), 'the reason prompt');
      typeText(session, 'finance asked for it');
      await waitForScreen(session, (t) => t.includes('reason (optional): finance asked for it'), 'the typed reason');
      sendKeys(session, 'Enter');
      const done = await waitForScreen(session, (t) => t.includes(`✔ Approved ${id}`), 'the approval');
      assert.match(done, /0 pending/);
      assert.match(done, /✔ approved by bob@aigov\.dev \d+s ago: “finance asked for it”/);

      assert.equal((await answer).status, 200, 'the held request went through');
      const approval = await apiApproval(id);
      assert.equal(approval.state, 'approved');
      assert.equal(approval.votes[0]?.reason, 'finance asked for it');

      // The gateway restarts under the inbox: it shows it is away, keeps what it knew, reconnects
      // by itself and resumes after the last event it saw — a request denied meanwhile shows denied.
      const away = heldRequest('send the customer list to legal #away');
      await waitForScreen(session, (t) => t.includes('1 pending'), 'the second held request');
      const bob = await deviceLogin(gateway.idp, 'aigov-cli', 'bob', { resource: gateway.url });
      const pending = ApprovalListSchema.parse(await (await fetchAsUser(gateway.url, bob.accessToken, '/aigov/v1/approvals?scope=decide')).json()).approvals;
      const awayId = pending.find((a) => a.preview.includes('#away'))!.id;
      const port = Number(new URL(gateway.url).port);
      await gateway.close();
      assert.notEqual((await away).status, 200, 'cut by the stop (its approval stays open)');
      const gone = await waitForScreen(session, (t) => t.includes('○ reconnecting…') && t.includes('Disconnected ('), 'the inbox showing it is away');
      assert.match(gone, new RegExp(`${awayId} +alice@aigov\\.dev`), 'what it knew stays on screen');
      gateway = await startDevGateway({ version: 'test', port, stateDir: join(dir, 'gateway'), logLevel: 'silent', policyFile });
      const bobAgain = await deviceLogin(gateway.idp, 'aigov-cli', 'bob', { resource: gateway.url });
      const denied = await fetchAsUser(gateway.url, bobAgain.accessToken, `/aigov/v1/approvals/${awayId}/deny`, { method: 'POST', body: { reason: 'not while we restart' } });
      assert.equal(denied.status, 200);
      const back = await waitForScreen(session, (t) => t.includes('● live') && new RegExp(`✘ ${awayId}`).test(t), 'the inbox back, with the denial');
      assert.match(back, /0 pending/);

      sendKeys(session, 'q');
      await waitForScreen(session, (t) => /exit=0/.test(t), 'the inbox to quit');
    } finally {
      killSession(session);
      await aigov(['daemon', 'stop', '--profile', 'bob']);
      await gateway.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
