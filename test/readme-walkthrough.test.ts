/**
 * README.md, followed step by step as a newcomer does with an empty HOME: the dev gateway in its
 * own terminal (tmux), then "Try it", "Policy", "Approvals" (alice's request held, bob approving
 * in the inbox TUI), "Sessions" (with "See what was spent") and "Audit trail", in that order. The
 * commands are read from the README's code blocks and text, and each step's output is checked
 * against what the README says it does: a README edit that breaks a command, or a program that
 * stops doing what the README promises, fails here. The BUILT CLI runs as processes (`npm run build` first).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ExportLineSchema, type ExportLine } from '../src/protocol/sessions.ts';
import { UsageReportSchema } from '../src/protocol/usage.ts';
import { BIN, deviceCodeIn, isBuilt, runCli, type CliResult } from './support/cli-process.ts';
import { aigovCommand, inlineAigov, readmeOpening, readmeSection, shellWords } from './support/readme.ts';
import { HAS_TMUX, killSession, screen, sendKeys, startSession, typeText, waitForScreen } from './support/tmux.ts';

const ROOT = join(import.meta.dirname, '..');
const BUILT = isBuilt('commands/server.js', 'commands/login.js', 'commands/run.js', 'commands/policy/test.js', 'commands/approvals/index.js', 'commands/sessions/replay.js', 'commands/audit/verify.js');
const HAS_PYTHON = spawnSync('python3', ['--version']).status === 0;
const README_URL = 'http://127.0.0.1:8787';

const SKIP = !BUILT ? 'run `npm run build` first' : !HAS_TMUX ? 'tmux is not installed' : !HAS_PYTHON ? 'python3 is not installed (README runs examples/hello.py)' : false;

let home = '';
let env: NodeJS.ProcessEnv;
let url: string;
let port: number;
const panes: string[] = [];
let gatewayPane = '';
/** Set when a step fails: the later steps build on it, so they are skipped rather than failing for the same reason. */
let failedStep: string | null = null;
// What the steps learn for the next ones.
let tryItSession = '';
let maskedSession = '';
let blockedSession = '';
let heldSession = '';
let approvalId = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: free } = server.address() as { port: number };
      server.close(() => resolve(free));
    });
  });
}

const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/** A terminal (tmux) running `aigov ARGS` in the checkout with exactly `env`, then printing exit=CODE. */
function openTerminal(name: string, args: readonly string[], size: { width: number; height: number }): string {
  const session = `aigov-walk-${name}-${process.pid}`;
  const vars = Object.entries({ ...env, TERM: 'screen-256color' }).map(([k, v]) => `${k}=${quote(v ?? '')}`);
  startSession(session, `cd ${quote(ROOT)} && env -i ${vars.join(' ')} ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}; echo "exit=$?"; sleep 120`, size);
  panes.push(session);
  return session;
}

/** `aigov ARGS` from the checkout, as README's commands are run; no output may carry a token. */
function aigov(args: readonly string[], onStderr?: (stderr: string) => void): Promise<CliResult> {
  return runCli([...args], { env, cwd: ROOT, forbidTokens: true, ...(onStderr ? { onStderr } : {}) });
}

/** README's URL and `~` replaced by this run's gateway and HOME; placeholders (`ID`) by their values. */
function concrete(args: readonly string[], values: Record<string, string> = {}): string[] {
  return args.map((word) => values[word] ?? word.replace(README_URL, url).replace(/^~(?=\/)/, home));
}

function expectExit(result: CliResult, code: number, what: string): void {
  assert.equal(result.code, code, `${what} exited ${result.code} (expected ${code})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

/** A step of the walkthrough: skipped once an earlier one failed. */
function step(name: string, fn: (t: TestContext) => Promise<void>): void {
  it(name, async (t) => {
    if (failedStep !== null) {
      t.skip(`an earlier step failed: ${failedStep}`);
      return;
    }
    try {
      await fn(t);
    } catch (error) {
      failedStep = name;
      throw error;
    }
  });
}

/** The `approve CODE alice` README tells the newcomer to type into the gateway's terminal, for `user`. */
function approveInGatewayTerminal(code: string, user: string): void {
  const template = readmeSection('Try it').inline.find((c) => /^approve CODE \w+$/.test(c));
  assert.ok(template, 'README "Try it" says to type `approve CODE alice` in the gateway terminal');
  typeText(gatewayPane, template.replace('CODE', code).replace(/\w+$/, user));
  sendKeys(gatewayPane, 'Enter');
}

/** `aigov login …` (README's words), approving the code it shows as `user` in the gateway's terminal. */
async function loginAs(args: readonly string[], user: string): Promise<CliResult> {
  let code: string | undefined;
  const result = await aigov(concrete(args), (stderr) => {
    const shown = deviceCodeIn(stderr);
    if (shown !== undefined && code === undefined) {
      code = shown;
      approveInGatewayTerminal(shown, user);
    }
  });
  assert.ok(code, `aigov login shows a device code:\n${result.stderr}`);
  await waitForScreen(gatewayPane, (t) => t.includes(`approved ${code} as ${user}`), `the gateway terminal to approve ${code}`);
  return result;
}

/** Starts the dev gateway in its own terminal with README's arguments (on this run's port) and waits for it. */
async function startGateway(args: readonly string[]): Promise<string> {
  gatewayPane = openTerminal(`gw${panes.length}`, [...args, '--port', String(port)], { width: 200, height: 50 });
  return waitForScreen(gatewayPane, (t) => t.includes('gateway started') || /exit=\d+/.test(t), 'the dev gateway to start');
}

/** Ctrl-C in the gateway's terminal, as a person stops it. */
async function stopGateway(): Promise<void> {
  sendKeys(gatewayPane, 'C-c');
  const stopped = await waitForScreen(gatewayPane, (t) => /exit=\d+/.test(t), 'the dev gateway to stop');
  assert.match(stopped, /exit=0/);
}

/** The session id `examples/hello.py` prints on stderr. */
function sessionOf(result: CliResult): string {
  const id = /\(recorded in aigov session (\S+)\)/.exec(result.stderr)?.[1];
  assert.ok(id, `hello.py names its session:\n${result.stderr}`);
  return id;
}

describe('README walkthrough, as a newcomer with an empty HOME', { skip: SKIP, timeout: 180_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-walk-'));
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // A newcomer's environment: a HOME with nothing in it, no keychain, no XDG or AIGOV_* settings.
    // The runtime dir sits in HOME so nothing is left in /tmp; device polling every second saves time.
    env = { PATH: process.env.PATH, HOME: home, AIGOV_RUNTIME_DIR: join(home, 'run'), AIGOV_DEVICE_POLL_INTERVAL: '1' };
  });
  after(async () => {
    if (home === '') return;
    await Promise.all([aigov(['daemon', 'stop']), aigov(['daemon', 'stop', '--profile', 'bob'])]);
    for (const pane of panes) killSession(pane);
    await rm(home, { recursive: true, force: true });
  });

  step('the first command starts the dev gateway: embedded IdP with the seeded users README lists, SQLite, dev model', async () => {
    const opening = readmeOpening();
    const first = opening.commands[0];
    assert.deepEqual(first?.words, ['bin/dev', 'server', '--dev'], 'README opens with `bin/dev server --dev`');
    assert.match(opening.text, /dev gateway on http:\/\/127\.0\.0\.1:8787/);
    // bin/dev sets the checkout up (done here: the build) and then runs ./bin/run.js with the same arguments.
    const banner = await startGateway(first.words.slice(1));
    assert.match(banner, new RegExp(`gateway +${url}\\n`));
    assert.match(banner, /identity +\S+\/oidc +embedded OIDC provider/);
    assert.match(banner, /model +built-in dev model/);
    assert.ok(banner.includes(`recordings  ${join(home, '.local/state/aigov/dev/aigov.db')}`), banner);
    assert.match(banner, /approve the code it shows by typing here: +approve CODE alice/);
    // README's list of seeded users is the gateway's.
    const listed = /Seeded dev users: (.*)/.exec(readmeSection('Try it').prose)?.[1] ?? '';
    const readmeUsers = [...listed.matchAll(/`(\w+)` \(([^)]*)\)/g)].map(([, user, groups]) => `${user} (${groups!.replace(/`|group /g, '')})`);
    assert.deepEqual(readmeUsers, ['alice (developers)', 'bob (approvers, security)', 'carol (auditors)', 'dave (approvers, legal)']);
    assert.ok(banner.replace(/\n/g, '').includes(`users: ${readmeUsers.join(', ')}`), `the banner lists README's users:\n${banner}`);
  });

  step('Try it: aigov login shows a code, approved in the gateway terminal; aigov run answers through the dev model, recorded as alice', async () => {
    const section = readmeSection('Try it');
    const login = aigovCommand(section, 'login');
    assert.ok(login.args.includes(README_URL), `this test runs README's login against its own port, in place of ${README_URL}: ${login.line}`);
    const signedIn = await loginAs(login.args, 'alice');
    expectExit(signedIn, 0, login.line);
    // No keychain here: README says the refresh token then goes to a 0600 file, with a warning.
    assert.match(signedIn.stderr, /warning: no OS keychain available.*storing the refresh token in \S+ \(0600\)/);
    assert.match(signedIn.stderr, new RegExp(`Logged in to ${url} as alice@aigov\\.dev \\(groups developers\\)`));

    const run = aigovCommand(section, 'run');
    assert.deepEqual(run.args.slice(0, 4), ['run', '--', 'python3', 'examples/hello.py']);
    const answered = await aigov(run.args);
    expectExit(answered, 0, run.line);
    // The dev model answers deterministically and offline, and says so.
    const question = run.args.slice(4).join(' ');
    assert.ok(answered.stdout.startsWith(`[aigov dev model] You said: "${question}". `), answered.stdout);
    assert.match(answered.stdout, /no real LLM was called\.\n$/);
    tryItSession = sessionOf(answered);
    assert.ok(existsSync(join(home, '.local/state/aigov/dev/aigov.db')), 'recorded in ~/.local/state/aigov/dev/aigov.db');

    // The table: whoami names the user; not logged in is exit 1.
    assert.ok(/`aigov whoami` \|[^\n]*\b1 when not logged in/.test(section.prose), 'README: whoami exits 1 when not logged in');
    const whoami = await aigov(['whoami']);
    expectExit(whoami, 0, 'aigov whoami');
    assert.equal(whoami.stdout, `alice@aigov.dev (developers) on ${url}\n`);
    expectExit(await aigov(['whoami', '--profile', 'bob']), 1, 'aigov whoami for a profile not logged in');
  });

  step('Policy: the gateway with examples/policy.yaml; policy test and validate; through the gateway, PII is pseudonymized and restored, a private key blocked', async () => {
    const section = readmeSection('Policy');
    await stopGateway();
    const server = aigovCommand(section, 'server');
    assert.deepEqual(server.args.slice(0, 2), ['server', '--dev']);
    assert.ok(server.args.join(' ').includes('--policy examples/policy.yaml'), server.line);
    const banner = await startGateway(server.args);
    assert.match(banner, /policy +\/\S+\/examples\/policy\.yaml\n/);
    assert.match(banner, /policy loaded .*rules=\d+/);
    // The example's approver groups are the dev users' (else the dev gateway warns).
    assert.doesNotMatch(banner, /WARN/);

    const test = aigovCommand(section, 'policy test');
    const prompt = test.args.at(-1)!;
    assert.equal(prompt, 'mail jane.doe@example.com my card 4111 1111 1111 1111');
    const tested = await aigov(test.args);
    // Exit codes: 0 allow, 3 masked, 4 approval required, 5 blocked.
    expectExit(tested, 3, test.line);
    assert.match(tested.stdout, /pseudonymize-customer-contacts +pseudonymize/);
    assert.match(tested.stdout, /mask-customer-payment-data +mask_request/);
    // The detections: type and position, never the value.
    assert.match(tested.stdout, /EMAIL_ADDRESS +5-25 /);
    assert.match(tested.stdout, /CREDIT_CARD +34-53 /);
    assert.ok(!tested.stdout.includes('jane.doe@example.com') && !tested.stdout.includes('4111 1111 1111 1111'), tested.stdout);
    // Emails go upstream as placeholders («EMAIL_1»); card numbers are masked.
    assert.match(tested.stdout, /masked text\n {2}mail «EMAIL_1» my card \*+1111\n/);

    const validate = aigovCommand(section, 'policy validate');
    const validated = await aigov(validate.args);
    expectExit(validated, 0, validate.line);
    assert.match(validated.stdout, /examples\/policy\.yaml: valid — \d+ rules/);

    // Through the gateway: the email comes back restored in the answer, the card number stays masked.
    const masked = await aigov(['run', '--', 'python3', 'examples/hello.py', prompt]);
    expectExit(masked, 0, 'aigov run with PII');
    assert.match(masked.stdout, /You said: "mail jane\.doe@example\.com my card \*+1111"/);
    maskedSession = sessionOf(masked);
    // A private key is blocked with the provider's own error, naming the rule and never the value.
    const pem = ['-----BEGIN', 'RSA PRIVATE KEY-----'].join(' ');
    const blocked = await aigov(['run', '--', 'python3', 'examples/hello.py', `${pem}\nMIIEowIBAAKCAQEA`]);
    expectExit(blocked, 1, 'aigov run with a private key');
    assert.match(blocked.stderr, /aigov refused the call \(403\): Blocked by aigov policy rule `block-private-keys`: the prompt contains a private key\./);
    assert.ok(!blocked.stderr.includes('PRIVATE KEY-----'), 'the matched value is not echoed');
    blockedSession = sessionOf(blocked);
  });

  step('Approvals: bob signs in in a second profile; alice\'s request is held; bob approves it in the inbox (a real terminal); alice\'s run goes on', async () => {
    const section = readmeSection('Approvals');
    assert.match(section.prose, /sign in as\s+`bob` \(group `security`, the approvers of `examples\/policy\.yaml`\)/);
    const login = inlineAigov(section, 'login --profile bob');
    const signedIn = await loginAs(login, 'bob');
    expectExit(signedIn, 0, `aigov ${login.join(' ')}`);
    assert.match(signedIn.stderr, new RegExp(`Logged in to ${url} as bob@aigov\\.dev \\(groups approvers, security\\)`));

    // alice asks something examples/policy.yaml holds for approval (it names production credentials).
    let onHeld: (id: string) => void = () => undefined;
    const held = new Promise<string>((resolve) => (onHeld = resolve));
    const run = aigov(['run', '--', 'python3', 'examples/hello.py', 'What is the production password?'], (stderr) => {
      const id = /request held for approval (apr_\w+)/.exec(stderr)?.[1];
      if (id) onHeld(id);
    });
    const heldFirst = await Promise.race([held, run.then(() => null)]);
    if (heldFirst === null) assert.fail(`the run ended without being held:\n${(await run).stderr}`);
    approvalId = heldFirst;

    // bob's live inbox, in a terminal.
    const inbox = openTerminal('inbox', inlineAigov(section, 'approvals --profile bob'), { width: 120, height: 40 });
    const pending = await waitForScreen(inbox, (t) => t.includes(approvalId) && t.includes('a approve'), 'the held request in the inbox');
    assert.match(pending, /bob@aigov\.dev · .*1 pending/);
    // Requester, rule, a countdown to expiry and the votes so far (k of N).
    assert.match(pending, new RegExp(`${approvalId} +alice@aigov\\.dev +approve-production-credentials +openai/aigov-dev +[0-4]:[0-5]\\d +0/1`));
    assert.match(pending, /Preview \(redacted\)\n.*user: What is the production password\?/);
    sendKeys(inbox, 'a');
    await waitForScreen(inbox, (t) => t.includes(`Approve ${approvalId} — reason`), 'the reason prompt');
    typeText(inbox, 'ok for staging');
    sendKeys(inbox, 'Enter');
    const approved = await waitForScreen(inbox, (t) => t.includes(`✔ Approved ${approvalId}`), 'the approval');
    assert.match(approved, /✔ approved by bob@aigov\.dev .*“ok for staging”/);
    sendKeys(inbox, 'q');
    assert.match(await waitForScreen(inbox, (t) => /exit=\d+/.test(t), 'the inbox to quit'), /exit=0/);

    // alice's run: its stderr said it was held (id, rule and reason, who can approve, expiry), then the outcome; stdout is the program's alone.
    const result = await run;
    expectExit(result, 0, 'the held aigov run');
    assert.match(result.stdout, /^\[aigov dev model\] You said: "What is the production password\?"/);
    assert.doesNotMatch(result.stdout, /aigov:/);
    assert.match(result.stderr, new RegExp(`aigov: request held for approval ${approvalId} — rule approve-production-credentials: the prompt names production credentials\\.`));
    assert.match(result.stderr, /who can approve: members of security \(1 approval needed\), with `aigov approvals`; expires in 5m 00s\./);
    assert.match(result.stderr, new RegExp(`aigov: ${approvalId} approved by bob@aigov\\.dev \\("ok for staging"\\) — the request goes on\\.`));
    heldSession = sessionOf(result);

    // The non-interactive commands, and their stable refusal codes: 77 your own request, 65 already decided, 66 not found.
    const show = await aigov([...concrete(aigovCommand(section, 'approvals show').args, { ID: approvalId }), '--profile', 'bob']);
    expectExit(show, 0, 'aigov approvals show');
    assert.match(show.stdout, /alice@aigov\.dev/);
    assert.match(show.stdout, /approve-production-credentials/);
    assert.match(show.stdout, /bob@aigov\.dev.*ok for staging/);
    const approve = aigovCommand(section, 'approvals approve').args;
    expectExit(await aigov(concrete(approve, { ID: approvalId })), 77, 'alice approving her own request');
    expectExit(await aigov([...concrete(approve, { ID: approvalId }), '--profile', 'bob']), 65, 'bob approving again');
    expectExit(await aigov([...concrete(approve, { ID: 'apr_doesnotexist00' }), '--profile', 'bob']), 66, 'approving an unknown approval');
  });

  step('Sessions: list (and its filters), show, export, replay (transcript and a real terminal); someone else\'s session is not found', async () => {
    const section = readmeSection('Sessions');
    const list = aigovCommand(section, 'sessions list');
    const listed = await aigov(list.args);
    expectExit(listed, 0, list.line);
    assert.match(listed.stdout, /^SESSION +USER +STARTED +LAST CALL +CALLS\n/);
    for (const id of [tryItSession, maskedSession, blockedSession, heldSession]) assert.match(listed.stdout, new RegExp(`${id} +alice@aigov\\.dev +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +1\\n`));
    const filtered = await aigov([...list.args, ...list.optional('--since'), ...list.optional('--action')]);
    expectExit(filtered, 0, `${list.line} with --since and --action`);
    assert.deepEqual(filtered.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), [blockedSession], 'only the blocked session');

    // show: time, provider/model, status, latency, tokens, decisions with rule ids, the approval and its vote (once), the last user message, the answer cut short.
    const showArgs = aigovCommand(section, 'sessions show').args;
    const shown = await aigov(concrete(showArgs, { ID: heldSession }));
    expectExit(shown, 0, 'aigov sessions show');
    assert.match(shown.stdout, /\n\[1\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}openai\/aigov-dev {2}completed 200 · \d+ ms · tokens \d+ in \/ \d+ out · \$0\.\d+\n/, 'the dev model at its made-up price');
    assert.match(shown.stdout, /request require_approval \(approve-production-credentials\): the prompt names production credentials/);
    assert.deepEqual(
      shown.stdout.split('\n').filter((l) => l.includes(approvalId)),
      [`    approval ${approvalId} approved (rule approve-production-credentials): approved by bob@aigov.dev ("ok for staging")`],
      'the approval once, with its vote',
    );
    assert.match(shown.stdout, /user: {3}What is the production password\?\n/);
    assert.match(shown.stdout, /answer: \[aigov dev model\] You said: .*…\n/);
    // Recorded as it crossed the boundary: the pseudonymized call's prompt holds the placeholder, not the email.
    const pii = await aigov(concrete(showArgs, { ID: maskedSession }));
    expectExit(pii, 0, 'aigov sessions show (the pseudonymized call)');
    assert.match(pii.stdout, /user: {3}mail «EMAIL_1» my card \*+1111\n/);
    assert.match(pii.stdout, /answer: \[aigov dev model\] You said: "mail «EMAIL_1» my card \*+1111"/);
    assert.ok(!pii.stdout.includes('jane.doe@example.com') && !pii.stdout.includes('4111'), 'never the raw values');

    // export: the session, then each call followed by its events, one JSON object per line; --out writes the same.
    const exportCmd = aigovCommand(section, 'sessions export');
    const exported = await aigov([...concrete(exportCmd.args, { ID: heldSession }), '--format', 'jsonl']);
    expectExit(exported, 0, 'aigov sessions export');
    const lines: ExportLine[] = exported.stdout.trim().split('\n').map((l) => ExportLineSchema.parse(JSON.parse(l)));
    assert.deepEqual(lines.map((l) => l.type).slice(0, 2), ['session', 'call']);
    const file = join(home, 'session.jsonl');
    expectExit(await aigov([...concrete(exportCmd.args, { ID: heldSession }), ...exportCmd.optional('--out').map((w) => (w === 'FILE' ? file : w))]), 0, 'aigov sessions export --out');
    assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').map((l) => ExportLineSchema.parse(JSON.parse(l)).type), lines.map((l) => l.type));

    // replay without a terminal: the plain transcript, exit 0.
    const replay = aigovCommand(section, 'sessions replay');
    const transcript = await aigov([...concrete(replay.args, { ID: heldSession }), ...replay.optional('--no-tty')]);
    expectExit(transcript, 0, 'aigov sessions replay --no-tty');
    assert.match(transcript.stdout, new RegExp(`Approval ${approvalId} \\(rule approve-production-credentials\\): approved at .*\\n {4}✔ approved by bob@aigov\\.dev at .*: “ok for staging”`));
    assert.match(transcript.stdout, /\[user\]\n {6}What is the production password\?/);
    assert.match(transcript.stdout, /Answer\n {4}\[aigov dev model\] You said/);

    // replay in a terminal: the decisions, the approval record and the prompt; a non-streamed answer appears at once.
    const player = openTerminal('replay', concrete(replay.args, { ID: heldSession }), { width: 200, height: 50 });
    const played = await waitForScreen(player, (t) => t.includes('Call 1 of 1') && t.includes('You said'), 'the replay');
    assert.match(played, /⚑ require_approval · rule approve-production-credentials · request/);
    assert.match(played, /⚑ mask_response · rule mask-pii-in-answers · request/);
    assert.match(played, new RegExp(`Approval ${approvalId} \\(rule approve-production-credentials\\): approved`));
    assert.match(played, /✔ approved by bob@aigov\.dev at .*“ok for staging”/);
    assert.match(played, /Answer \(not streamed: it came whole after \d/);
    const rows = played.split('\n');
    const timeline = rows.find((l) => l.includes('call 1/1'))!.trimEnd();
    const rule = rows.find((l) => /^─+$/.test(l.trimEnd()))!.trimEnd();
    assert.equal([...timeline].length, [...rule].length, `the timeline is as wide as the rule under it:\n${played}`);
    sendKeys(player, 'q');
    assert.match(await waitForScreen(player, (t) => /exit=\d+/.test(t), 'the replay to quit'), /exit=0/);

    // You see your own sessions: someone else's is "not found".
    const foreign = await aigov([...concrete(showArgs, { ID: heldSession }), '--profile', 'bob']);
    expectExit(foreign, 66, "bob showing alice's session");
    assert.match(foreign.stderr, new RegExp(`No session ${heldSession} that you may see\\.[\\s\\S]*AIGOV_E_SESSION_NOT_FOUND`));
  });

  step('See what was spent: alice\'s calls by model at the dev model\'s price, by day, as JSON; another user\'s usage refused', async () => {
    const usage = aigovCommand(readmeSection('Sessions'), 'usage');
    const table = await aigov(usage.args);
    expectExit(table, 0, usage.line);
    assert.match(table.stdout, /^Your usage · \d{4}-\d\d-\d\d \d\d:\d\d → now \(.+\) · by model\n/);
    assert.match(table.stdout, /\nopenai\/aigov-dev +\d+ +\d+ +0 +\d+ +\$0\.\d+ +█+\n/, 'the dev model, priced, with its bar');
    assert.match(table.stdout, /\nTOTAL +\d+ /);
    const byDay = await aigov([...usage.args, ...usage.optional('--by'), ...usage.optional('--since')]);
    expectExit(byDay, 0, `${usage.line} with --by day --since 30d`);
    assert.match(byDay.stdout, /· by day\n/);
    assert.equal(byDay.stdout.split('\n').filter((l) => /^\d{4}-\d\d-\d\d \w{3} /.test(l)).length, 31, 'thirty days back and today');
    const json = await aigov([...usage.args, ...usage.optional('--json')]);
    expectExit(json, 0, `${usage.line} --json`);
    const report = UsageReportSchema.parse(JSON.parse(json.stdout));
    assert.ok(BigInt(report.total.cost_nano_usd) > 0n && report.viewer.auditor === false);
    const foreign = await aigov([...usage.args, ...usage.optional('--user').map((w) => (w === 'U' ? 'bob@aigov.dev' : w))]);
    expectExit(foreign, 77, 'alice asking for bob\'s usage');
    assert.match(foreign.stderr, /AIGOV_E_USAGE_FORBIDDEN/);
  });

  step('Audit trail: verify the dev gateway\'s trail; unsigned entries until the gateway signs the head at shutdown', async () => {
    const section = readmeSection('Audit trail');
    const devLine = section.commands.find((c) => c.line.includes('~/.local/state/aigov/dev/aigov.db'));
    assert.ok(devLine, 'README shows how to verify the dev gateway\'s trail');
    const verify = concrete(shellWords(devLine.line).slice(1));
    assert.deepEqual(verify.slice(0, 2), ['audit', 'verify']);
    const intact = await aigov(verify);
    expectExit(intact, 0, devLine.line);
    assert.match(intact.stdout, /aigov\.db: audit trail intact — \d+ entries/);
    // `--require-signed` (README's third line): 75 while entries are not yet covered by a signed checkpoint…
    const requireSigned = aigovCommand(section, 'audit verify --config gateway.yaml --since').args.filter((w) => w === '--require-signed');
    assert.deepEqual(requireSigned, ['--require-signed']);
    expectExit(await aigov([...verify, ...requireSigned]), 75, 'audit verify --require-signed with the gateway running');
    // …and 0 once the gateway signed the chain's head at shutdown.
    await stopGateway();
    const signed = await aigov([...verify, ...requireSigned]);
    expectExit(signed, 0, 'audit verify --require-signed after shutdown');
    assert.doesNotMatch(signed.stdout, /not covered by a signed checkpoint/);
    if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(screen(gatewayPane));
  });
});
