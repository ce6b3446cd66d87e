/**
 * The gateway with `storage.driver: postgres`, end to end: real calls through the gateway (the
 * official OpenAI SDK, streamed and not) recorded in PostgreSQL, read back through the sessions
 * API as the user and as an auditor (whose read lands in the access log), the audit chain
 * checked; PostgreSQL going away under the running gateway (a new request is refused with 503 and
 * never forwarded, /readyz says so; a stream in flight ends with the in-stream error, not [DONE])
 * and coming back (the gateway recovers by itself); the URL's
 * password never in a log line or an answer. With the CLI built, `aigov sessions list/show` run
 * as processes against it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { pino } from 'pino';
import { SessionDetailSchema, SessionListSchema } from '../src/protocol/sessions.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, parseJsonOutput, runCli } from './support/cli-process.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { verifyPostgresAudit } from '../src/store/postgres/pg-audit-verify.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { adminQuery, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { chatStreamText, loadTranscript } from './support/replay-upstream.ts';

const freshPg = usePgDatabases();
const BUILT = isBuilt('commands/sessions/list.js', 'cli/fast-sessions.js');

describe('the gateway recording in PostgreSQL', { timeout: 240_000 }, () => {
  let h: Harness;
  let dbName = '';
  let plainUrl = '';
  let password = '';
  const logLines: string[] = [];

  const client = (token = h.token): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses-pg-1' } });
  const api = async (token: string, path = ''): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${h.url}/aigov/v1/sessions${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, json: await res.json() };
  };

  before(async () => {
    const db = await freshPg();
    dbName = db.name;
    plainUrl = db.url;
    password = ['pg', randomBytes(8).toString('hex'), 'pw'].join('-'); // trust auth ignores it; nothing may print it
    const url = new URL(plainUrl);
    url.password = password;
    const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _enc, done) => { logLines.push(chunk.toString()); done(); } }));
    h = await startHarness({ databaseUrl: url.toString(), logger });
    h.upstream.route('POST', '/v1/chat/completions', (req) => loadTranscript((JSON.parse(req.body) as { stream?: boolean }).stream ? 'openai-chat-stream' : 'openai-chat'));
  });
  after(async () => {
    await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => {});
    await h?.close();
  });

  it('a streamed and a non-streamed call are recorded in PostgreSQL and read back through the sessions API', async () => {
    const answer = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from postgres' }] });
    assert.ok(answer.choices[0]?.message.content);
    const stream = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream please' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, chatStreamText('openai-chat-stream'));
    assert.equal(h.upstream.received.length, 2);

    // What PostgreSQL holds, as another connection sees it.
    const calls = await pgQuery(plainUrl, "SELECT id, status, stream, http_status, subject FROM calls WHERE session_id = 'ses-pg-1' ORDER BY rec");
    assert.deepEqual(calls.map((c) => [c['status'], c['stream'], c['http_status'], c['subject']]), [['completed', 0, 200, 'alice'], ['completed', 1, 200, 'alice']]);
    const events = await pgQuery(plainUrl, `SELECT count(*) AS n FROM stream_events WHERE call_id = '${String(calls[1]!['id'])}'`);
    assert.ok(Number(events[0]!['n']) > 5);

    const mine = SessionListSchema.parse((await api(h.token)).json);
    assert.deepEqual(mine.sessions.map((s) => [s.id, s.call_count]), [['ses-pg-1', 2]]);
    const detail = SessionDetailSchema.parse((await api(h.token, '/ses-pg-1')).json);
    assert.equal(detail.calls.length, 2);
    assert.match(detail.calls[0]!.request_body, /hello from postgres/);
    assert.ok(detail.calls[1]!.events.length > 5);
    // An auditor's read is logged, in PostgreSQL, with its audit entry.
    const carol = await h.tokenFor('carol');
    assert.equal((await api(carol, '/ses-pg-1')).status, 200);
    assert.deepEqual((await pgQuery(plainUrl, 'SELECT subject, action, session_id FROM access_log')).map((r) => [r['subject'], r['action'], r['session_id']]), [['carol', 'show', 'ses-pg-1']]);
    await checkPgAuditChain(plainUrl);
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
  });

  it('PostgreSQL goes away: the request is refused with 503 and never forwarded; /readyz says so; the gateway recovers when it is back', async () => {
    const forwarded = h.upstream.received.length;
    await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    try {
      const error = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'while the database is away' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, 503);
      assert.match(error.message, /not sent: the gateway could not record it/);
      assert.ok(!JSON.stringify(error.error).includes(password));
      assert.equal(h.upstream.received.length, forwarded, 'nothing was forwarded');
      const ready = await fetch(`${h.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.ok(!(await ready.text()).includes(password));
    } finally {
      await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    }
    const deadline = Date.now() + 15_000;
    while ((await fetch(`${h.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'the gateway did not become ready again');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const answer = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'after the database came back' }] });
    assert.ok(answer.choices[0]?.message.content);
    assert.equal(h.upstream.received.length, forwarded + 1);
    assert.equal(Number((await pgQuery(plainUrl, "SELECT count(*) AS n FROM calls WHERE session_id = 'ses-pg-1'"))[0]!['n']), 3, 'the refused request left no record');
    await checkPgAuditChain(plainUrl);
  });

  it('a stream whose database goes away before it ends: no [DONE], the in-stream error instead; the call is not finished as whole', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: { size: 24 }, chunkDelayMs: 15 });
    const res = await fetch(`${h.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', 'x-aigov-session': 'ses-pg-cut' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] }),
    });
    assert.equal(res.status, 200);
    const callId = res.headers.get('x-aigov-call-id');
    let text = '';
    let cut = false;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        if (!cut && text.includes('data: {')) {
          cut = true;
          await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
          await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
        }
      }
    } finally {
      await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    }
    assert.ok(cut);
    assert.ok(!text.includes('data: [DONE]'), 'the stream did not end as if complete');
    assert.match(text, /"code":"AIGOV_E_STORE_RESULT_FAILED"/);
    assert.ok(!text.includes(password));
    const deadline = Date.now() + 15_000;
    while ((await fetch(`${h.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'the gateway did not become ready again');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const row = await pgQuery(plainUrl, 'SELECT status FROM calls WHERE id = $1', [callId]);
    assert.deepEqual(row, [{ status: 'pending' }], 'recorded, never finished as whole (settled as aborted when its owner is gone)');
    await checkPgAuditChain(plainUrl);
  });

  it('the log names the database without its password, and no line carries it', () => {
    const all = logLines.join('');
    assert.match(all, /recordings, approvals and pseudonym vaults are kept in PostgreSQL/);
    assert.match(all, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\//);
    assert.match(all, /owner lock's connection to PostgreSQL was lost/, 'the outage was logged');
    assert.ok(!all.includes(password), 'the password is in a log line');
  });

  it('aigov sessions list and show, as processes, against the gateway on PostgreSQL', { skip: BUILT ? false : 'run `npm run build` first' }, async () => {
    const home = await mkdtemp(join(tmpdir(), 'aigov-pg-cli-'));
    const env = cliEnv(home);
    try {
      const login = await loginWithDeviceCode(h, 'alice', { env, forbidTokens: true });
      assert.equal(login.code, 0, login.stderr);
      const list = parseJsonOutput(await runCli(['sessions', 'list', '--json'], { env, forbidTokens: true }), SessionListSchema);
      assert.deepEqual(list.sessions.map((s) => [s.id, s.call_count]), [['ses-pg-cut', 1], ['ses-pg-1', 3]]);
      const shown = await runCli(['sessions', 'show', 'ses-pg-1'], { env, forbidTokens: true });
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^Session ses-pg-1 · alice@aigov\.dev · 3 calls · /);
      assert.match(shown.stdout, /^ {4}user: {3}hello from postgres$/m);
      assert.match(shown.stdout, /^\[2\] .*completed 200 · streamed · \d+ ms/m);
    } finally {
      await runCli(['daemon', 'stop'], { env });
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('approvals in PostgreSQL beside the recordings', { timeout: 120_000 }, () => {
  let h: Harness;
  let url = '';
  let home = '';
  before(async () => {
    url = (await freshPg()).url;
    home = await mkdtemp(join(tmpdir(), 'aigov-pg-apr-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, [
      'version: 1',
      'rules:',
      '  - id: prod-credentials',
      '    reason: the prompt names production credentials',
      "    match: { keywords: ['production password'] }",
      '    action: require_approval',
      '    approval: { approvers: [approvers], timeout: 20s }',
    ].join('\n'));
    h = await startHarness({ databaseUrl: url, policyFile });
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
  });
  after(async () => {
    await h?.close();
    await rm(home, { recursive: true, force: true });
  });

  it('a held request is approved, forwarded and recorded; the session shows its approval and the approval filter finds it', async () => {
    const bob = await h.tokenFor('bob');
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses-pg-held' } });
    const answer = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'what is the production password policy?' }] });
    let id: string | null = null;
    for (let i = 0; i < 200 && id === null; i++) {
      const res = await fetchAsUser(h.url, bob, '/aigov/v1/approvals?scope=decide', { method: 'GET' });
      const list = (await res.json()) as { approvals: { id: string; state: string }[] };
      id = list.approvals.find((a) => a.state === 'pending')?.id ?? null;
      if (id === null) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.ok(id !== null, 'the request was held');
    assert.equal(h.upstream.received.length, 0, 'nothing goes upstream while held');
    assert.equal((await fetchAsUser(h.url, bob, `/aigov/v1/approvals/${id}/approve`, { method: 'POST', body: { reason: 'fine' } })).status, 200);
    assert.equal((await answer).object, 'chat.completion');
    assert.equal(h.upstream.received.length, 1);

    const calls = await pgQuery(url, "SELECT status, decisions FROM calls WHERE session_id = 'ses-pg-held'");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!['status'], 'completed');
    assert.match(String(calls[0]!['decisions']), /"stage":"approval","action":"approved"/);
    const stored = await pgQuery(url, 'SELECT id, state FROM approvals');
    assert.deepEqual(stored.map((r) => [r['id'], r['state']]), [[id, 'approved']], 'the approval is kept in PostgreSQL');
    const detail = SessionDetailSchema.parse((await (await fetchAsUser(h.url, h.token, '/aigov/v1/sessions/ses-pg-held', { method: 'GET' })).json()));
    assert.deepEqual(detail.calls[0]!.approvals.map((a) => a.id), [id]);
    const approved = SessionListSchema.parse((await (await fetchAsUser(h.url, h.token, '/aigov/v1/sessions?approval=approved', { method: 'GET' })).json()));
    assert.deepEqual(approved.sessions.map((s) => s.id), ['ses-pg-held']);
    await checkPgAuditChain(url);
    // aigov audit verify's own verifier agrees: the approval's entries and its row check out.
    const report = await verifyPostgresAudit({ url, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000, lockTimeoutMs: 0 });
    assert.equal(report.ok, true, JSON.stringify(report.problem));
    assert.ok(report.rows > 0);
  });
});
