/**
 * Operating the gateway on PostgreSQL: what /metrics and /readyz tell an operator (real server,
 * a database per case).
 * - Pool wait: a pooled connection held while another caller queues shows as a waiting client at
 *   scrape time and, once the caller gets it, as a wait as long as it was held; every checkout is
 *   timed (pool.query and pool.connect alike).
 * - NOTIFY lag: a change written through one approval store reaches the other store's listener
 *   stamped with its sending time; the lag is observed on both (each replica hears its own
 *   changes too); a notification without a stamp still wakes the listener and is not measured.
 * - Through a gateway: the recordings', approvals' and vaults' pools are on /metrics; /readyz is
 *   200 while the database answers, 503 naming the database as the reason (never the URL's
 *   password) while it refuses connections, and 200 again once it is back, with no restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { GatewayMetrics } from '../src/gateway/metrics.ts';
import { openPostgresApprovalStore, APPROVALS_CHANNEL, type PgApprovalStore } from '../src/store/postgres/pg-approval-store.ts';
import { createPool, type PgObserver } from '../src/store/postgres/pg-connection.ts';
import { migratePostgresAt } from '../src/store/postgres/migrations.ts';
import type { ApprovalRecord } from '../src/core/approvals/approval.ts';
import { insertApproval } from './support/approval-writes.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { adminQuery, connect, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const freshPg = usePgDatabases();

/** One sample of a metric from the Prometheus text (`name{labels} value`), or null. */
function sample(text: string, name: string, labels: string): number | null {
  const escaped = `${name}{${labels}}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

function settingsFor(url: string): { url: string; statementTimeoutMs: number; connectTimeoutMs: number; lockTimeoutMs: number } {
  return { url, statementTimeoutMs: 5000, connectTimeoutMs: 5000, lockTimeoutMs: 0 };
}

function pendingApproval(id: string, now: number): ApprovalRecord {
  return {
    id,
    state: 'pending',
    requester: { sub: 'alice', email: 'alice@example.com', name: null, groups: ['developers'] },
    ruleId: 'r',
    ruleReason: 'because',
    approvers: ['approvers'],
    required: 1,
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpoint: 'openai.chat.completions',
    stream: false,
    preview: 'user: hi',
    sessionId: 's',
    callId: 'c1',
    contentHash: 'h'.repeat(64),
    createdAt: now,
    expiresAt: now + 60_000,
    decidedAt: null,
    votes: [],
    reuse: 'once',
    retryWindowMs: 60_000,
    uses: 0,
  };
}

describe('PostgreSQL pool wait', { timeout: 60_000 }, () => {
  it('a caller queued behind a held connection is a waiting client at scrape time, then a wait as long as the hold', async () => {
    const { url } = await freshPg();
    const metrics = new GatewayMetrics();
    const pool = createPool(settingsFor(url), 1, () => {}, { observer: metrics.pgObserver(), name: 'recordings' });
    try {
      const held = await pool.connect();
      const heldAt = performance.now();
      const queued = pool.query('SELECT 1 AS one');
      let text = await metrics.registry.metrics();
      assert.equal(sample(text, 'aigov_pg_pool_waiting_clients', 'pool="recordings"'), 1);
      assert.equal(sample(text, 'aigov_pg_pool_connections', 'pool="recordings",state="open"'), 1);
      assert.equal(sample(text, 'aigov_pg_pool_connections', 'pool="recordings",state="idle"'), 0);
      assert.equal(sample(text, 'aigov_pg_pool_wait_seconds_count', 'pool="recordings"'), 1, 'the first checkout (connecting) was timed');
      // Hold it for 60 ms: the queued caller's wait must show at least that.
      await new Promise((resolve) => setTimeout(resolve, 60));
      held.release();
      const heldMs = performance.now() - heldAt;
      assert.deepEqual((await queued).rows, [{ one: 1 }]);
      text = await metrics.registry.metrics();
      assert.equal(sample(text, 'aigov_pg_pool_waiting_clients', 'pool="recordings"'), 0);
      assert.equal(sample(text, 'aigov_pg_pool_connections', 'pool="recordings",state="idle"'), 1);
      assert.equal(sample(text, 'aigov_pg_pool_wait_seconds_count', 'pool="recordings"'), 2);
      const sum = sample(text, 'aigov_pg_pool_wait_seconds_sum', 'pool="recordings"')!;
      assert.ok(sum >= 0.06 && sum <= heldMs / 1000 + 1, `waits sum to ${sum} s for a ${heldMs.toFixed(0)} ms hold`);
      assert.ok(sample(text, 'aigov_pg_pool_wait_seconds_bucket', 'le="0.05",pool="recordings"')! <= 1, 'the queued wait is in a bucket above 50 ms');
    } finally {
      await pool.end();
    }
  });

  it('a checkout that fails (the database refuses) is timed too', async () => {
    const { name, url } = await freshPg();
    const waits: number[] = [];
    const observer: PgObserver = { poolOpened: () => {}, poolWaited: (_name, seconds) => waits.push(seconds), notifyLag: () => {} };
    const pool = createPool(settingsFor(url), 2, () => {}, { observer, name: 'recordings' });
    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    try {
      await assert.rejects(pool.query('SELECT 1'), /not currently accepting connections/);
      await assert.rejects(pool.connect(), /not currently accepting connections/);
      assert.equal(waits.length, 2);
    } finally {
      await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await pool.end();
    }
  });
});

describe('NOTIFY lag', { timeout: 60_000 }, () => {
  const stores: PgApprovalStore[] = [];
  after(async () => {
    for (const store of stores) await store.close();
  });

  it('a change written on one store reaches the other stamped; both observe its lag; an unstamped one only wakes', async () => {
    const { url } = await freshPg();
    await migratePostgresAt(settingsFor(url));
    const metricsA = new GatewayMetrics();
    const metricsB = new GatewayMetrics();
    const a = await openPostgresApprovalStore({ url, poolSize: 2, onError: () => {}, observer: metricsA.pgObserver() });
    const b = await openPostgresApprovalStore({ url, poolSize: 2, onError: () => {}, observer: metricsB.pgObserver() });
    stores.push(a, b);
    const lagCount = async (m: GatewayMetrics): Promise<number> => sample(await m.registry.metrics(), 'aigov_pg_notify_lag_seconds_count', `channel="${APPROVALS_CHANNEL}"`) ?? 0;

    // What goes over the wire: the change number, then the sending time.
    const spy = await connect(url);
    const payloads: string[] = [];
    const spied = new Promise<void>((resolve) => spy.on('notification', (m) => { payloads.push(m.payload ?? ''); resolve(); }));
    await spy.query(`LISTEN ${APPROVALS_CHANNEL}`);
    try {
      const woken = { a: new Promise<void>((resolve) => a.watchChanges(resolve)), b: new Promise<void>((resolve) => b.watchChanges(resolve)) };
      const before = Date.now();
      const seq = await insertApproval(a, pendingApproval('apr_lag', Date.now()));
      await Promise.all([woken.a, woken.b, spied]);
      const after = Date.now();
      assert.equal(payloads.length, 1);
      const [changeSeq, sentAt] = payloads[0]!.split('@');
      assert.equal(Number(changeSeq), seq);
      assert.ok(Number(sentAt) >= before && Number(sentAt) <= after, 'stamped with the time it was sent');
      assert.equal(await lagCount(metricsA), 1, 'the writer hears its own change');
      assert.equal(await lagCount(metricsB), 1, 'the other replica hears it');
      const lag = sample(await metricsB.registry.metrics(), 'aigov_pg_notify_lag_seconds_sum', `channel="${APPROVALS_CHANNEL}"`)!;
      assert.ok(lag >= 0 && lag <= (after - before) / 1000 + 0.001, `lag ${lag} s within the round trip`);

      // A notification without a stamp (an older replica, or someone by hand) wakes, is not measured.
      const wokenAgain = new Promise<void>((resolve) => b.watchChanges(resolve));
      await spy.query(`SELECT pg_notify('${APPROVALS_CHANNEL}', '12')`);
      await wokenAgain;
      assert.equal(await lagCount(metricsB), 1);
    } finally {
      await spy.end();
    }
  });
});

describe('/metrics and /readyz of a gateway on PostgreSQL', { timeout: 120_000 }, () => {
  let h: Harness;
  let dbName = '';
  let dir = '';
  let password = '';

  before(async () => {
    const db = await freshPg();
    dbName = db.name;
    password = ['pg', randomBytes(8).toString('hex'), 'pw'].join('-'); // trust auth ignores it; nothing may show it
    const url = new URL(db.url);
    url.password = password;
    dir = await mkdtemp(join(tmpdir(), 'aigov-pg-ops-'));
    const policyFile = join(dir, 'policy.yaml');
    await writeFile(policyFile, 'version: 1\nrules:\n  - id: contacts\n    match: { detectors: [EMAIL_ADDRESS] }\n    action: pseudonymize\n');
    h = await startHarness({ databaseUrl: url.toString(), policyFile, pseudonymKey: randomBytes(32).toString('base64') });
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
  });
  after(async () => {
    await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => {});
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const readyz = async (): Promise<{ status: number; body: { status: string; store?: string }; text: string }> => {
    const res = await fetch(`${h.url}/readyz`);
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as { status: string; store?: string }, text };
  };

  it('shows the recordings\', approvals\' and vaults\' pools and their waits', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses-ops' } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
    const sessions = await fetch(`${h.url}/aigov/v1/sessions/ses-ops`, { headers: { authorization: `Bearer ${h.token}` } });
    assert.equal(sessions.status, 200);
    const text = await (await fetch(`${h.url}/metrics`)).text();
    for (const pool of ['recordings', 'approvals', 'vaults']) {
      assert.ok((sample(text, 'aigov_pg_pool_connections', `pool="${pool}",state="open"`) ?? -1) >= 1, `pool ${pool} has a connection open`);
      assert.equal(sample(text, 'aigov_pg_pool_waiting_clients', `pool="${pool}"`), 0);
    }
    assert.ok((sample(text, 'aigov_pg_pool_wait_seconds_count', 'pool="recordings"') ?? 0) >= 2, 'the sessions read and the lease renewals checked out connections');
    assert.ok((sample(text, 'aigov_pg_pool_wait_seconds_count', 'pool="vaults"') ?? 0) >= 1, 'the request\'s vault lookup checked one out');
    assert.match(text, /^# TYPE aigov_pg_notify_lag_seconds histogram$/m);
  });

  it('/readyz: 200 while the database answers, 503 naming it while it refuses connections, 200 again when it is back', async () => {
    const ready = await readyz();
    assert.equal(ready.status, 200);
    assert.deepEqual([ready.body.status, ready.body.store], ['ready', 'ok']);

    await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    try {
      const down = await readyz();
      assert.equal(down.status, 503);
      assert.equal(down.body.status, 'not ready');
      assert.match(down.body.store ?? '', /^the database does not answer: database "aigov_test_[0-9a-f]+" is not currently accepting connections \(PostgreSQL error 55000\)$/);
      assert.ok(!down.text.includes(password), 'the password is in /readyz');
    } finally {
      await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    }
    // Back by itself: the pool and the owner lock reconnect (the lock within its backoff).
    const deadline = Date.now() + 15_000;
    let again = await readyz();
    while (again.status !== 200) {
      assert.ok(Date.now() < deadline, `not ready 15 s after the database came back: ${again.text}`);
      assert.match(again.body.store ?? '', /database does not answer|owner lock on PostgreSQL is not held/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await readyz();
    }
    assert.deepEqual([again.body.status, again.body.store], ['ready', 'ok']);
  });
});
