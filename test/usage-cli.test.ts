/**
 * `aigov usage` end to end, as processes: the dev gateway (embedded IdP, SQLite, the dev model at
 * its made-up price) runs here; alice and bob make calls; the BUILT CLI — logged in as alice, bob
 * and carol (an auditor) in their own profiles, each with its own daemon lending access tokens —
 * reports them: the table with bars, --json, the auditor's view and its access-log rows, another
 * user's usage refused, days in the zone asked for (or TZ), bad flags as usage errors naming what
 * they take, an empty range, and the chart in a real terminal (tmux) with and without colour.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { UsageReportSchema } from '../src/protocol/usage.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, parseJsonOutput, runCli, type CliResult } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { callRequest, callResult, principal } from './support/store-fixtures.ts';
import { aigovPaneCommand, HAS_TMUX, killSession, screen, startSession, waitForScreen } from './support/tmux.ts';

const BUILT = isBuilt('commands/usage.js', 'cli/fast-usage.js');
const PROFILES = ['alice', 'bob', 'carol'] as const;

let gateway: RunningDevGateway;
let home: string;
let env: NodeJS.ProcessEnv;

function aigov(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env: { ...env, ...extraEnv }, forbidTokens: true });
}

async function chat(user: string, session: string, content: string): Promise<void> {
  const { accessToken } = await deviceLogin(gateway.idp, 'aigov-cli', user, { resource: gateway.url });
  const res = await fetchAsUser(gateway.url, accessToken, '/openai/v1/chat/completions', { method: 'POST', headers: { 'x-aigov-session': session }, body: { model: 'aigov-dev', messages: [{ role: 'user', content }] } });
  await res.text();
  assert.equal(res.status, 200);
}

/** The exact cost of the calls of these sessions, from the gateway's store. */
async function recordedNanoUsd(...sessionIds: string[]): Promise<bigint> {
  let sum = 0n;
  for (const id of sessionIds) for (const call of await gateway.store.listCalls(id)) sum += BigInt(call.usage?.costNanoUsd ?? 0);
  return sum;
}

function usageReads(): number {
  const db = new DatabaseSync(join(gateway.stateDir, 'aigov.db'), { readOnly: true });
  try {
    return Number(db.prepare("SELECT count(*) AS n FROM access_log WHERE action = 'usage'").get()?.['n']);
  } finally {
    db.close();
  }
}

describe('aigov usage against a real gateway, as processes', { skip: BUILT ? false : 'run `npm run build` first', timeout: 240_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-usage-cli-'));
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent' });
    env = cliEnv(home, { TZ: 'UTC' });
    // One after the other: logins of several profiles at once in one config dir can lose one
    // profile's settings (read-modify-write of the settings file; seen 2 runs in 8 here).
    for (const user of PROFILES) {
      const result = await loginWithDeviceCode(gateway, user, { env, forbidTokens: true, extraArgs: ['--profile', user] });
      assert.equal(result.code, 0, result.stderr);
    }
    for (let i = 0; i < 6; i++) await chat('alice', `usage-a${i % 2}`, `question number ${i}, with some words to count`);
    await chat('bob', 'usage-b', 'a question from bob');
    // zed's two calls an hour apart around midnight in Tokyo (the same UTC day), recorded through the gateway's store.
    const midnightTokyo = Date.parse('2026-01-11T00:00:00+09:00');
    for (const [i, at] of [midnightTokyo - 30 * 60_000, midnightTokyo + 30 * 60_000].entries()) {
      await gateway.store.recordRequest(callRequest(`zed-${i}`, { sessionId: 'usage-zed', principal: principal({ subject: 'zed', email: 'zed@example.test', issuer: gateway.config.identity.issuer }), startedAt: at }));
      await gateway.store.finishCall(callResult(`zed-${i}`, { usage: { inputTokens: 1000, outputTokens: 100, costNanoUsd: 5_000_000 * (i + 1) } }));
    }
    await gateway.store.flush();
  });
  after(async () => {
    await Promise.all(PROFILES.map((profile) => aigov(['daemon', 'stop', '--profile', profile])));
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('a user: their calls by model, a table with a bar and the total; --json is the report, its cost exact', async () => {
    const table = await aigov(['usage', '--profile', 'alice']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^Your usage · \d{4}-\d\d-\d\d \d\d:\d\d → now \(UTC\) · by model$/);
    assert.match(lines[2]!, /^MODEL +CALLS +INPUT +CACHED +OUTPUT +COST$/);
    assert.match(lines[3]!, /^openai\/aigov-dev +6 +\d+ +0 +\d+ +\$0\.\d+ +█+$/);
    assert.match(table.stdout, /^TOTAL +6 /m);
    assert.equal(table.stdout.includes('\x1b'), false, 'no colour into a pipe');

    const report = parseJsonOutput(await aigov(['usage', '--profile', 'alice', '--json']), UsageReportSchema);
    assert.equal(report.viewer.auditor, false);
    assert.equal(report.total.calls, 6);
    assert.equal(report.total.cost_nano_usd, (await recordedNanoUsd('usage-a0', 'usage-a1')).toString());
    assert.ok(BigInt(report.total.cost_nano_usd) > 0n, 'the dev model has a price');
    assert.equal(report.time_zone, 'UTC');
  });

  it('an auditor: everyone by user, one user by day in a zone (bare dates are days there); each read logged', async () => {
    const before = usageReads();
    const table = await aigov(['usage', '--profile', 'carol', '--since', '2026-01-01']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Everyone's usage · 2026-01-01 00:00 → now \(UTC\) · by user$/m);
    assert.match(table.stdout, /^alice@aigov\.dev +6 /m);
    assert.match(table.stdout, /^bob@aigov\.dev +1 /m);
    assert.match(table.stdout, /^zed@example\.test +2 .* \$0\.015 +█+$/m);

    const days = (tz: string, extra: string[] = []) =>
      aigov(['usage', '--profile', 'carol', '--user', 'zed', '--by', 'day', '--since', '2026-01-10', '--until', '2026-01-11', '--json', ...extra], tz === '' ? {} : { AIGOV_USAGE_TZ: tz });
    const tokyo = parseJsonOutput(await days('Asia/Tokyo'), UsageReportSchema);
    assert.deepEqual(tokyo.rows.map((r) => [r.day, r.calls, r.cost_nano_usd]), [['2026-01-10', 1, '5000000'], ['2026-01-11', 1, '10000000']]);
    assert.equal(tokyo.since, '2026-01-09T15:00:00.000Z', '2026-01-10 starts at Tokyo midnight');
    assert.equal(tokyo.until, '2026-01-11T15:00:00.000Z', '--until 2026-01-11 runs through that day');
    const utc = parseJsonOutput(await days('', ['--tz', 'UTC']), UsageReportSchema);
    assert.deepEqual(utc.rows.map((r) => [r.day, r.calls]), [['2026-01-10', 2], ['2026-01-11', 0]]);
    const fromTz = parseJsonOutput(await aigov(['usage', '--profile', 'carol', '--user', 'zed', '--by', 'day', '--since', '2026-01-10', '--until', '2026-01-11', '--json'], { TZ: 'Asia/Tokyo' }), UsageReportSchema);
    assert.equal(fromTz.time_zone, 'Asia/Tokyo', 'the machine\'s zone (TZ) by default');
    assert.deepEqual(fromTz.rows, tokyo.rows);
    assert.equal(usageReads(), before + 4, 'one access-log row per auditor read');
  });

  it('a user asking for someone else: exit 77 naming the auditor groups; an empty range says so and what to try', async () => {
    const forbidden = await aigov(['usage', '--profile', 'bob', '--user', 'alice@aigov.dev']);
    assert.equal(forbidden.code, 77, forbidden.stderr);
    assert.match(forbidden.stderr, /^aigov: Only members of the auditor groups \(auditors\) may see other users' usage\.$/m);
    assert.match(forbidden.stderr, /code: AIGOV_E_USAGE_FORBIDDEN/);
    const empty = await aigov(['usage', '--profile', 'bob', '--since', '2001-01-01', '--until', '2001-01-31']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^Your usage · 2001-01-01 00:00 → 2001-02-01 00:00 \(UTC\) · by model\n\nYou made no calls through the gateway in this range\.\nWiden it with --since \(e\.g\. --since 90d\)\./);
  });

  it('bad flags: exit 64 with what each takes, from the flag or its AIGOV_USAGE_* variable; --help through oclif', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--by', 'week'], {}, /^aigov: --by "week" is not valid: it takes one of user, group, model, day\.$/m],
      [[], { AIGOV_USAGE_BY: 'users' }, /^aigov: --by "users" is not valid: it takes one of user, group, model, day\.$/m],
      [['--since', 'yesterday'], {}, /^aigov: --since "yesterday" is not valid: it takes a duration back from now \(90s, 30m, 2h, 7d, 2w\), an ISO date/m],
      [['--tz', 'Mars/Olympus'], {}, /^aigov: --tz "Mars\/Olympus" is not valid: it takes an IANA time zone \(Europe\/Paris, America\/New_York\) or a UTC offset/m],
      [['--since', '2026-02-30'], {}, /^aigov: --since "2026-02-30" is not valid: that day does not exist\.$/m],
      [['--since', '1d', '--until', '3d'], {}, /^aigov: --since "1d" is not valid: it is after --until \(3d\): the range would be empty\.$/m],
      [['--by', 'day', '--since', '2000-01-01'], {}, /^aigov: --since "2000-01-01" is not valid: --by day shows at most 1000 days\.$/m],
    ];
    for (const [args, extra, message] of cases) {
      const result = await aigov(['usage', '--profile', 'alice', ...args], extra);
      assert.equal(result.code, 64, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    const unknown = await aigov(['usage', '--profile', 'alice', '--frobnicate']);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /Nonexistent flag: --frobnicate/);
    const help = await aigov(['usage', '--help']);
    assert.equal(help.code, 0);
    for (const variable of ['AIGOV_USAGE_BY', 'AIGOV_USAGE_SINCE', 'AIGOV_USAGE_UNTIL', 'AIGOV_USAGE_USER', 'AIGOV_USAGE_TZ', 'AIGOV_PROFILE']) assert.ok(help.stdout.includes(variable), variable);
  });

  it('in a real terminal: bars as wide as the terminal leaves, in colour unless NO_COLOR', { skip: HAS_TMUX ? false : 'tmux is not installed' }, async () => {
    const run = async (session: string, width: number, extra: NodeJS.ProcessEnv): Promise<{ text: string; styled: string }> => {
      startSession(session, aigovPaneCommand(['usage', '--profile', 'carol', '--since', '2026-01-01'], { ...env, ...extra }), { width, height: 30 });
      try {
        const text = await waitForScreen(session, (t) => /exit=\d+/.test(t), 'the report');
        return { text, styled: screen(session, { styles: true }) };
      } finally {
        killSession(session);
      }
    };
    const wide = await run(`aigov-usage-${process.pid}-w`, 120, {});
    const narrow = await run(`aigov-usage-${process.pid}-n`, 72, { NO_COLOR: '1' });
    // zed's row is the dearest: its bar is as wide as the terminal leaves.
    const barOf = (text: string): string => /^zed@example\.test .*?([█▏▎▍▌▋▊▉]+)\s*$/m.exec(text)?.[1] ?? '';
    assert.match(wide.text, /exit=0/);
    assert.ok([...barOf(wide.text)].length > [...barOf(narrow.text)].length && barOf(narrow.text) !== '', `${barOf(wide.text)} vs ${barOf(narrow.text)}`);
    for (const line of narrow.text.split('\n')) assert.ok([...line.trimEnd()].length <= 72, `wraps nothing: ${line}`);
    assert.ok(wide.styled.includes('\x1b[36m█'), 'bars in colour on a terminal');
    assert.ok(!narrow.styled.includes('\x1b[36m'), 'NO_COLOR: none');
  });

  it('a store that cannot answer: a clear one-line error and exit 69', async () => {
    await gateway.store.close();
    const result = await aigov(['usage', '--profile', 'alice']);
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, /code: AIGOV_E_STORE_READ_FAILED/);
  });
});
