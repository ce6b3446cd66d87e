/**
 * `aigov sessions list|show|export` end to end, as processes: the dev gateway (embedded IdP,
 * SQLite, dev model) runs here with a policy that blocks one prompt; alice and bob make calls;
 * the BUILT CLI — logged in as alice, bob and carol (an auditor) in their own profiles, each with
 * its own daemon lending access tokens — lists, shows and exports them. Both the oclif-free fast
 * path of `sessions list` and the oclif one are exercised.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { ExportLineSchema, SessionDetailSchema, SessionListSchema, type CallView, type SessionDetail } from '../src/protocol/sessions.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, parseJsonOutput, runCli, type CliResult } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';

const BUILT = isBuilt('commands/sessions/list.js', 'cli/fast-sessions.js');

const POLICY = `
version: 1
rules:
  - id: no-forbidden
    reason: forbidden words are not sent
    match: { keywords: ['forbidden words'] }
    action: block
`;

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;
const PROFILES = ['alice', 'bob', 'carol'] as const;

function aigov(args: string[]): Promise<CliResult> {
  return runCli(args, { env, forbidTokens: true });
}

async function login(user: string): Promise<void> {
  const result = await loginWithDeviceCode(gateway, user, { env, forbidTokens: true, extraArgs: ['--profile', user] });
  assert.equal(result.code, 0, result.stderr);
}

async function chat(user: string, session: string, content: string, stream = false): Promise<number> {
  const { accessToken } = await deviceLogin(gateway.idp, 'aigov-cli', user, { resource: gateway.url });
  const res = await fetchAsUser(gateway.url, accessToken, '/openai/v1/chat/completions', {
    method: 'POST',
    headers: { 'x-aigov-session': session },
    body: { model: 'aigov-dev', stream, messages: [{ role: 'user', content }] },
  });
  await res.text();
  return res.status;
}

describe('aigov sessions against a real gateway, as processes', { skip: BUILT ? false : 'run `npm run build` first', timeout: 240_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-ses-cli-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', policyFile });
    env = cliEnv(home);
    await Promise.all(PROFILES.map((user) => login(user)));
    assert.equal(await chat('alice', 'ses-cli-a1', 'hello there, how are you?'), 200);
    assert.equal(await chat('alice', 'ses-cli-a1', 'and a streamed one please', true), 200);
    assert.equal(await chat('alice', 'ses-cli-a2', 'these are forbidden words'), 403);
    assert.equal(await chat('bob', 'ses-cli-b1', 'bob asks something'), 200);
    await gateway.store.flush();
  });
  after(async () => {
    await Promise.all(PROFILES.map((profile) => aigov(['daemon', 'stop', '--profile', profile])));
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('list: a user sees their own sessions (table and --json); an auditor sees everyone and filters', async () => {
    const mine = parseJsonOutput(await aigov(['sessions', 'list', '--json', '--profile', 'alice']), SessionListSchema);
    assert.deepEqual(mine.sessions.map((s) => s.id).sort(), ['ses-cli-a1', 'ses-cli-a2']);
    assert.equal(mine.next_cursor, null);

    const table = await aigov(['sessions', 'list', '--profile', 'alice']);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^SESSION +USER +STARTED +LAST CALL +CALLS$/);
    assert.match(rows.find((r) => r.startsWith('ses-cli-a1')) ?? '', /^ses-cli-a1 +alice@aigov\.dev +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +2$/);

    const all = parseJsonOutput(await aigov(['sessions', 'list', '--json', '--profile', 'carol']), SessionListSchema);
    assert.deepEqual(all.sessions.map((s) => s.id).sort(), ['ses-cli-a1', 'ses-cli-a2', 'ses-cli-b1']);
    const filtered = parseJsonOutput(await aigov(['sessions', 'list', '--profile', 'carol', '--user=alice@aigov.dev', '--since', '1h', '--action', 'block', '--json']), SessionListSchema);
    assert.deepEqual(filtered.sessions.map((s) => s.id), ['ses-cli-a2']);
    assert.deepEqual(parseJsonOutput(await aigov(['sessions', 'list', '--profile', 'carol', '--until', '2000-01-01', '--json']), SessionListSchema).sessions, []);

    const limited = await aigov(['sessions', 'list', '--profile', 'carol', '--limit', '1']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(limited.stdout.trimEnd().split('\n').length, 2);
    assert.match(limited.stderr, /more sessions match/);

    // Through oclif (`sessions:list` is not taken by the fast path): the same answers.
    assert.deepEqual(parseJsonOutput(await aigov(['sessions:list', '--json', '--profile', 'alice']), SessionListSchema), mine);
    assert.deepEqual(parseJsonOutput(await aigov(['sessions:list', '--json', '--profile', 'alice', '--approval', 'pending']), SessionListSchema).sessions, []);
  });

  it('list: clear errors for a bad time and for reading another user without being an auditor', async () => {
    const bad = await aigov(['sessions', 'list', '--profile', 'alice', '--since', 'yesterday']);
    assert.equal(bad.code, 64, 'a usage error, not a malformed request');
    assert.match(bad.stderr, /^aigov: --since "yesterday" is not valid: it takes a duration back from now/);
    assert.match(bad.stderr, /code: AIGOV_E_BAD_FLAG/);
    const forbidden = await aigov(['sessions', 'list', '--profile', 'bob', '--user', 'alice']);
    assert.equal(forbidden.code, 77);
    assert.match(forbidden.stderr, /auditor groups \(auditors\)/);
    assert.match(forbidden.stderr, /AIGOV_E_SESSIONS_FORBIDDEN/);
    const help = await aigov(['sessions', 'list', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--since/);
  });

  it('show: readable blocks per call; --json is the SessionDetail; someone else gets "not found"', async () => {
    const shown = await aigov(['sessions', 'show', 'ses-cli-a1', '--profile', 'alice']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^Session ses-cli-a1 · alice@aigov\.dev · 2 calls · /);
    assert.match(shown.stdout, /^\[1\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}openai\/aigov-dev {2}completed 200 · \d+ ms/m);
    assert.match(shown.stdout, /^\[2\] .*completed 200 · streamed · \d+ ms/m);
    assert.match(shown.stdout, /^ {4}user: {3}hello there, how are you\?$/m);
    assert.match(shown.stdout, /^ {4}user: {3}and a streamed one please$/m);
    assert.equal((shown.stdout.match(/^ {4}answer: \S/gm) ?? []).length, 2, shown.stdout);

    const blocked = await aigov(['sessions', 'show', 'ses-cli-a2', '--profile', 'carol']);
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.match(blocked.stdout, /blocked 403/);
    assert.match(blocked.stdout, /^ {4}request block \(no-forbidden\): forbidden words are not sent$/m);

    const detail = parseJsonOutput(await aigov(['sessions', 'show', 'ses-cli-a1', '--json', '--profile', 'alice']), SessionDetailSchema);
    assert.equal(detail.calls.length, 2);
    assert.ok(detail.calls[1]!.events.length > 0);

    const notYours = await aigov(['sessions', 'show', 'ses-cli-a1', '--profile', 'bob']);
    assert.equal(notYours.code, 66);
    assert.match(notYours.stderr, /No session ses-cli-a1 that you may see/);
  });

  it('export: jsonl to a file re-assembles to `show --json`; json to stdout equals it', async () => {
    const out = join(home, 'export.jsonl');
    const done = await aigov(['sessions', 'export', 'ses-cli-a1', '--format', 'jsonl', '--out', out, '--profile', 'carol']);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, '');
    assert.equal(done.stderr, `Exported session ses-cli-a1 as jsonl to ${out} (${statSync(out).size} bytes).\n`, 'says what it wrote, on stderr');
    assert.deepEqual(readdirSync(home).filter((f) => f.includes('.partial-')), [], 'no partial file left');
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => ExportLineSchema.parse(JSON.parse(l)));
    let session: SessionDetail['session'] | null = null;
    const calls: CallView[] = [];
    for (const line of lines) {
      if (line.type === 'session') session = line.session;
      else if (line.type === 'call') calls.push({ ...line.call, events: [] });
      else calls.at(-1)!.events.push({ offset_ms: line.offset_ms, raw: line.raw });
    }
    const detail = parseJsonOutput(await aigov(['sessions', 'show', 'ses-cli-a1', '--json', '--profile', 'carol']), SessionDetailSchema);
    assert.deepEqual({ session, calls }, detail);
    assert.deepEqual(parseJsonOutput(await aigov(['sessions', 'export', 'ses-cli-a1', '--format', 'json', '--profile', 'alice']), SessionDetailSchema), detail);

    const missing = await aigov(['sessions', 'export', 'nope', '--out', join(home, 'nope.jsonl'), '--profile', 'alice']);
    assert.equal(missing.code, 66);
    assert.equal(existsSync(join(home, 'nope.jsonl')), false);
    const nowhere = await aigov(['sessions', 'export', 'ses-cli-a1', '--out', join(home, 'no-such-dir', 'x.jsonl'), '--profile', 'carol']);
    assert.equal(nowhere.code, 64, nowhere.stderr);
    assert.match(nowhere.stderr, /^aigov: --out ".*" is not valid: aigov cannot create a file there \(its directory does not exist\)\.$/m);
  });

  it('a store that cannot answer: a clear one-line error and exit 69', async () => {
    await gateway.store.close();
    const result = await aigov(['sessions', 'list', '--profile', 'alice']);
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, /^aigov: The gateway could not read or log access to the recordings/m);
    assert.match(result.stderr, /code: AIGOV_E_STORE_READ_FAILED/);
  });
});
