/**
 * The webhook outbox for real: SQLite files in temp dirs, a PostgreSQL database per case, real
 * HTTP receivers on 127.0.0.1, a child process killed with SIGKILL.
 *
 * - The store (both drivers): the pending cap, claims (due rows of known receivers only, once per
 *   lease, a lapsed lease taken over), settles that need the claim token, the sweep (receivers
 *   gone, stranded rows, retention), and a mutation's notices committing with it or not at all.
 * - Two replicas on one PostgreSQL database, each with its approval service and notifier: every
 *   notice delivered exactly once; a receiver that fails then recovers gets each delivery once,
 *   with backoff, never two attempts of one delivery at a time.
 * - Restarts (both drivers): a delivery waiting for its retry, and one cut at shutdown, are posted
 *   after the store is reopened, with the same id.
 * - Two gateways on one PostgreSQL database, a rule with its own receiver: a request held on A
 *   and approved through B gives the receiver one signed `created` and one `decided`; /metrics.
 * - A replica killed (kill -9) mid-delivery: the other posts it after the lease, not before.
 * - Failures: PostgreSQL gone (notify() neither throws nor waits; failures counted, logged once,
 *   never with the password; stored notices delivered once it is back); a receiver removed from
 *   the configuration (dropped after the grace, logged by host); notices that cannot be built
 *   (the approval goes ahead); the pending cap on the approval path; no secret or URL path in the
 *   database or the logs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { pino, type Logger } from 'pino';
import { ApprovalService, type HoldRequest } from '../src/gateway/approvals/approval-service.ts';
import { createWebhookNotifier, verifyWebhookSignature, type WebhookNotifier, type WebhookNotifierOptions } from '../src/gateway/approvals/webhook-notifier.ts';
import type { Webhook } from '../src/config/webhook-schema.ts';
import type { ApprovalRecord } from '../src/core/approvals/approval.ts';
import type { ApprovalStore } from '../src/store/approval-store.ts';
import { openPostgresApprovalStore } from '../src/store/postgres/pg-approval-store.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';
import { receiverKey, type OutboxRow } from '../src/store/webhook-outbox.ts';
import { insertApproval } from './support/approval-writes.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness } from './support/gateway-harness.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { adminQuery, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { useTempDirs } from './support/store-fixtures.ts';
import { answer, RECEIVER_SECRET, receiverHook, SECRET_PATH, sampleNotice, startReceiver } from './support/webhook-receivers.ts';

const freshPg = usePgDatabases();
const dirs = useTempDirs('aigov-outbox-');
const CHILD = new URL('./support/webhook-outbox-child.ts', import.meta.url).pathname;

type Driver = 'sqlite' | 'postgres';
const DRIVERS: readonly Driver[] = ['sqlite', 'postgres'];
type Row = Record<string, unknown>;

/** A database of the driver's kind, opened as the gateway opens it; `reopen` after a close is a restart. */
interface Database {
  /** PostgreSQL: the database's URL. */
  readonly url?: string;
  open(): Promise<ApprovalStore>;
  peek(sql: string, values?: unknown[]): Promise<Row[]>;
}

async function database(driver: Driver): Promise<Database> {
  if (driver === 'sqlite') {
    const file = dirs.freshFile();
    return {
      open: async () => openSqliteApprovalStore(file),
      peek: async (sql, values = []) => {
        const db = new DatabaseSync(file, { readOnly: true });
        try {
          return db.prepare(sql.replace(/\$\d+/g, '?')).all(...(values as (string | number)[]));
        } finally {
          db.close();
        }
      },
    };
  }
  const { url } = await freshPg();
  return { url, open: () => openPostgresApprovalStore({ url, poolSize: 2, onError: () => {} }), peek: (sql, values = []) => pgQuery(url, sql, values) };
}

function captureLogger(): { logger: Logger; text: () => string; lines: () => { level: number; msg: string }[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return {
    logger: pino({ level: 'debug' }, sink),
    text: () => lines.join(''),
    lines: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rows(prefix: string, n: number, receiver: string, host = 'h.example:443'): OutboxRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `whd_${prefix}${i}`,
    approvalId: `apr_${prefix}${i}`,
    ruleId: 'r',
    type: 'approval.created',
    receiver,
    host,
    body: JSON.stringify({ id: `whd_${prefix}${i}` }),
    createdAt: Date.now(),
  }));
}

const alice = { subject: 'alice', email: 'alice@example.com', groups: ['developers'] };
const bob = { subject: 'bob', email: 'bob@example.com', groups: ['approvers'] };
const spec = { approvers: ['approvers'], required: 1, timeout: 60_000, retry_window: 60_000, reuse: 'once' as const };
function holdRequest(body: string): HoldRequest {
  return { requester: alice, ruleId: 'r', ruleReason: 'because', spec, provider: 'openai', model: 'm', endpoint: 'openai.chat.completions', stream: false, preview: 'user: hi', sessionId: 's', callId: `c-${body}`, body };
}

interface Replica {
  readonly store: ApprovalStore;
  readonly notifier: WebhookNotifier;
  readonly service: ApprovalService;
  readonly log: ReturnType<typeof captureLogger>;
}

/** A gateway's approval side: store, notifier on its outbox, service announcing through it. Closed after the test, notifier first. */
async function replica(t: TestContext, db: Database, webhooks: readonly Webhook[], over: Partial<WebhookNotifierOptions> = {}): Promise<Replica> {
  const store = await db.open();
  const log = captureLogger();
  const notifier = createWebhookNotifier({ webhooks, logger: log.logger, outbox: store.outbox, ...over });
  const service = await ApprovalService.open({ store, logger: log.logger, announcer: notifier.announcer('https://gw.aigov.dev'), pollMs: 60_000 });
  t.after(async () => {
    await notifier.close();
    service.close();
    await store.close();
  });
  return { store, notifier, service, log };
}

function assertNoSecrets(text: string, where: string): void {
  assert.ok(!text.includes(RECEIVER_SECRET), `no webhook secret in ${where}`);
  assert.ok(!text.includes(SECRET_PATH) && !text.includes('tok=q'), `no receiver URL path or query in ${where}`);
}

for (const driver of DRIVERS) {
  describe(`the outbox store (${driver})`, { timeout: 60_000 }, () => {
    it('keeps the first rows up to the cap; claims due rows of known receivers once per lease; settles need the claim token', async () => {
      const db = await database(driver);
      const store = await db.open();
      try {
        const outbox = store.outbox;
        const k1 = receiverKey('https://one.example/hook');
        const k2 = receiverKey('https://two.example/hook');
        assert.equal(await outbox.enqueue({ rows: rows('a', 4, k1), maxPending: 3 }), 3, 'three of four kept under a cap of three');
        const first = await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [k1], maxAttempts: 5 });
        assert.deepEqual(first.map((d) => d.id).sort(), ['whd_a0', 'whd_a1', 'whd_a2']);
        assert.ok(first.every((d) => d.attempt === 1 && d.claim.length > 0));
        assert.deepEqual(await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [k1], maxAttempts: 5 }), [], 'claimed rows are not claimed again within the lease');
        const status = await outbox.status([k1], 5);
        assert.equal(status.pending, 3);
        assert.ok(status.nextDueInMs !== null && status.nextDueInMs > 50_000, `the next due time is the lease's end (${status.nextDueInMs})`);

        const [d0, d1, d2] = [...first].sort((a, b) => a.id.localeCompare(b.id)) as [(typeof first)[0], (typeof first)[0], (typeof first)[0]];
        assert.equal(await outbox.settle(d0, { kind: 'delivered', status: 204 }), true);
        assert.equal(await outbox.settle(d0, { kind: 'delivered', status: 204 }), false, 'settled once');
        assert.equal(await outbox.settle({ ...d1, claim: 'not-the-claim' }, { kind: 'failed', status: 400, error: 'x' }), false, 'another claim token changes nothing');
        assert.equal(await outbox.settle(d1, { kind: 'retry', delayMs: 0, status: 503, error: 'HTTP 503' }), true);
        const again = await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [k1], maxAttempts: 5 });
        assert.deepEqual(again.map((d) => [d.id, d.attempt]), [['whd_a1', 2]], 'a retry counts its attempt');
        assert.equal(await outbox.settle(again[0]!, { kind: 'release' }), true);
        const released = await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [k1], maxAttempts: 5 });
        assert.deepEqual(released.map((d) => [d.id, d.attempt]), [['whd_a1', 2]], 'a release does not count one');
        assert.equal(await outbox.settle(d2, { kind: 'failed', status: 400, error: 'HTTP 400' }), true);

        // One row pending (a1, claimed): room for two more under the cap of three.
        assert.equal(await outbox.enqueue({ rows: [...rows('b', 1, k2), ...rows('c', 3, k1)], maxPending: 3 }), 2);
        assert.deepEqual(await outbox.claim({ limit: 10, leaseMs: 150, receivers: [k2], maxAttempts: 5 }).then((c) => c.map((d) => d.id)), ['whd_b0'], 'only rows of the receivers asked for');
        const stale = await outbox.claim({ limit: 10, leaseMs: 150, receivers: [k1], maxAttempts: 5 });
        assert.deepEqual(stale.map((d) => d.id), ['whd_c0']);
        assert.deepEqual(await outbox.claim({ limit: 10, leaseMs: 150, receivers: [k1], maxAttempts: 5 }), []);
        await sleep(250);
        const takenOver = await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [k1], maxAttempts: 5 });
        assert.deepEqual(takenOver.map((d) => [d.id, d.attempt]), [['whd_c0', 2]], 'a lapsed lease is taken over, the lost attempt counted');
        assert.equal(await outbox.settle(stale[0]!, { kind: 'delivered', status: 200 }), false, 'the first claimer, back late, changes nothing');
        const state = await db.peek("SELECT id, state, attempts, last_status, last_error FROM webhook_outbox WHERE id IN ('whd_a0', 'whd_a2', 'whd_c0') ORDER BY id");
        assert.deepEqual(
          state.map((r) => [r['id'], r['state'], Number(r['attempts']), r['last_status'] === null ? null : Number(r['last_status']), r['last_error']]),
          [
            ['whd_a0', 'delivered', 1, 204, null],
            ['whd_a2', 'failed', 1, 400, 'HTTP 400'],
            ['whd_c0', 'pending', 2, null, null],
          ],
        );
      } finally {
        await store.close();
      }
    });

    it('sweeps: rows of receivers gone (after the grace), rows stranded past their last attempt, settled rows past the retention', async () => {
      const db = await database(driver);
      const store = await db.open();
      try {
        const outbox = store.outbox;
        const known = receiverKey('https://known.example/hook');
        const gone = receiverKey('https://gone.example/hook');
        await outbox.enqueue({ rows: [...rows('k', 2, known), ...rows('g', 2, gone, 'gone.example:443')], maxPending: 100 });
        const young = await outbox.sweep({ receivers: [known], unknownGraceMs: 60_000, maxAttempts: 1, retentionMs: 60_000 });
        assert.deepEqual([...young.unknown], [], 'within the grace, another replica may know the receiver');
        // A replica that still knows the receiver is posting g0 right now: its row is left alone.
        assert.deepEqual((await outbox.claim({ limit: 1, leaseMs: 60_000, receivers: [gone], maxAttempts: 1 })).map((d) => d.id), ['whd_g0']);
        const swept = await outbox.sweep({ receivers: [known], unknownGraceMs: 0, maxAttempts: 1, retentionMs: 60_000 });
        assert.deepEqual([...swept.unknown], [['gone.example:443', 1]], 'the rows not in flight are dropped');

        // k0 delivered; k1 crashed twice (claimed, never settled, lease lapsed) with maxAttempts 1.
        const [k0, k1] = (await outbox.claim({ limit: 10, leaseMs: 60_000, receivers: [known], maxAttempts: 1 })).sort((a, b) => a.id.localeCompare(b.id));
        await outbox.settle(k0!, { kind: 'delivered', status: 200 });
        await outbox.settle(k1!, { kind: 'retry', delayMs: 0, status: null, error: 'cut' });
        const last = await outbox.claim({ limit: 10, leaseMs: 50, receivers: [known], maxAttempts: 1 });
        assert.deepEqual(last.map((d) => [d.id, d.attempt]), [['whd_k1', 2]], 'one attempt past the last, after a crash during it');
        await sleep(120);
        assert.deepEqual(await outbox.claim({ limit: 10, leaseMs: 50, receivers: [known], maxAttempts: 1 }), [], 'never a third');
        const stranded = await outbox.sweep({ receivers: [known], unknownGraceMs: 0, maxAttempts: 1, retentionMs: 60_000 });
        assert.equal(stranded.stranded, 1);
        assert.equal(stranded.purged, 0, 'settled rows are kept for the retention');
        assert.deepEqual((await outbox.status([known], 1)).pending, 1, 'g0, in flight');
        await sleep(5);
        const purged = await outbox.sweep({ receivers: [known], unknownGraceMs: 0, maxAttempts: 1, retentionMs: 0 });
        assert.equal(purged.purged, 3);
        assert.deepEqual((await db.peek('SELECT id FROM webhook_outbox')).map((r) => r['id']), ['whd_g0'], 'pending rows are never purged');
      } finally {
        await store.close();
      }
    });

    it("a mutation's notices commit with its write, or neither does", async () => {
      const db = await database(driver);
      const store = await db.open();
      try {
        const key = receiverKey('https://one.example/hook');
        const approval = (id: string): ApprovalRecord => ({
          id, state: 'pending', requester: { sub: 'alice', email: null, name: null, groups: [] }, ruleId: 'r', ruleReason: 'x', approvers: ['a'], required: 1,
          provider: 'openai', model: null, endpoint: 'openai.chat.completions', stream: false, preview: '', sessionId: 's', callId: `c-${id}`, contentHash: `h-${id}`,
          createdAt: Date.now(), expiresAt: Date.now() + 60_000, decidedAt: null, votes: [], reuse: 'once', retryWindowMs: 60_000, uses: 0,
        });
        const ok = await store.mutate({ id: 'apr_ok' }, () => ({ result: null, write: approval('apr_ok'), outbox: { rows: rows('ok', 2, key), maxPending: 10 } }));
        assert.equal(ok.outboxKept, 2);
        // The second mutation's approval row is fine, but one of its notices reuses a delivery id:
        // the notice insert fails, and the approval write must go with it.
        const clash = store.mutate({ id: 'apr_clash' }, () => ({ result: null, write: approval('apr_clash'), outbox: { rows: [...rows('new', 1, key), ...rows('ok', 1, key)], maxPending: 10 } }));
        await assert.rejects(clash);
        assert.equal(await store.get('apr_clash'), null, 'no approval without its notices');
        assert.deepEqual((await db.peek('SELECT id FROM webhook_outbox ORDER BY id')).map((r) => r['id']), ['whd_ok0', 'whd_ok1']);
        const none = await store.mutate({ id: 'apr_ok' }, (current) => ({ result: current?.id, outbox: { rows: rows('nowrite', 1, key), maxPending: 10 } }));
        assert.equal(none.outboxKept, 0, 'no write, no notices');
        assert.equal(await insertApproval(store, approval('apr_after')).then((seq) => seq > 0), true, 'the store still writes');
      } finally {
        await store.close();
      }
    });
  });
}

describe('two replicas on one PostgreSQL database', { timeout: 120_000 }, () => {
  it('every notice of approvals held and decided through both replicas is delivered exactly once', async (t) => {
    const rx = await startReceiver((_r, _n, res) => setTimeout(() => answer(res, 200), Math.floor(Math.random() * 15)));
    t.after(() => rx.close());
    const db = await database('postgres');
    const hooks = [receiverHook(rx.url)];
    const a = await replica(t, db, hooks);
    const b = await replica(t, db, hooks);
    const N = 20;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const [holder, decider] = i % 2 === 0 ? [a, b] : [b, a];
        const held = await holder.service.hold(holdRequest(`req-${i}`));
        assert.ok(held.kind === 'wait' && held.created);
        assert.ok((await decider.service.decide(held.approval.id, bob, i % 3 === 0 ? 'deny' : 'approve', null)).ok);
      }),
    );
    await until(() => new Set(rx.received.map((r) => r.id)).size === 2 * N, `${2 * N} deliveries`);
    await until(async () => Number((await db.peek("SELECT count(*) AS n FROM webhook_outbox WHERE state = 'delivered'"))[0]!['n']) === 2 * N, 'every row settled');
    await sleep(300); // any duplicate would have arrived by now
    assert.equal(rx.received.length, 2 * N, 'no delivery posted twice');
    const stored = await db.peek('SELECT id, approval_id, type, attempts, state, body FROM webhook_outbox');
    assert.deepEqual(new Set(stored.map((r) => r['id'])), new Set(rx.received.map((r) => r.id)));
    assert.ok(stored.every((r) => Number(r['attempts']) === 1 && r['state'] === 'delivered'));
    const byApproval = new Map<string, string[]>();
    for (const r of rx.received) {
      const body = JSON.parse(r.body) as { id: string; type: string; approval: { id: string } };
      assert.equal(body.id, r.id, 'the body carries the delivery id');
      byApproval.set(body.approval.id, [...(byApproval.get(body.approval.id) ?? []), body.type].sort());
    }
    assert.equal(byApproval.size, N);
    for (const types of byApproval.values()) assert.deepEqual(types, ['approval.created', 'approval.decided']);
    const [sa, sb] = [a.notifier.stats(), b.notifier.stats()];
    t.diagnostic(`delivered by A: ${sa.delivered}, by B: ${sb.delivered}`);
    assert.equal(sa.delivered + sb.delivered, 2 * N);
    assertNoSecrets(JSON.stringify(stored), 'the outbox rows');
    assertNoSecrets(a.log.text() + b.log.text(), 'the logs');
    await checkPgAuditChain(db.url!); // the notices in the approval statements leave the audit chain whole
  });

  it('a burst of notices raised on one replica is shared with the other, each delivered once', async (t) => {
    const rx = await startReceiver((_r, _n, res) => setTimeout(() => answer(res, 200), 20));
    t.after(() => rx.close());
    const db = await database('postgres');
    const hooks = [receiverHook(rx.url)];
    const a = await replica(t, db, hooks, { concurrency: 2 });
    const b = await replica(t, db, hooks, { concurrency: 2 });
    const N = 40;
    for (let i = 0; i < N; i++) a.notifier.notify(sampleNotice(`apr_burst_${i}`));
    await until(() => rx.received.length >= N && a.notifier.stats().delivered + b.notifier.stats().delivered === N, `${N} deliveries`);
    await sleep(200);
    assert.equal(rx.received.length, N);
    assert.equal(new Set(rx.received.map((r) => r.id)).size, N);
    t.diagnostic(`delivered by A: ${a.notifier.stats().delivered}, by B: ${b.notifier.stats().delivered}`);
    assert.ok(b.notifier.stats().delivered > 0, 'B, woken by NOTIFY, took part');
  });

  it('a receiver that fails then recovers gets each delivery once, with backoff, never two attempts of one at a time', async (t) => {
    // Each delivery: 500, 500, then 200.
    const rx = await startReceiver((_r, nth, res) => setTimeout(() => answer(res, nth < 2 ? 500 : 200), 5));
    t.after(() => rx.close());
    const db = await database('postgres');
    const hooks = [receiverHook(rx.url)];
    const a = await replica(t, db, hooks, { backoffBaseMs: 60 });
    const b = await replica(t, db, hooks, { backoffBaseMs: 60 });
    const N = 8;
    for (let i = 0; i < N; i++) (i % 2 === 0 ? a : b).notifier.notify(sampleNotice(`apr_flaky_${i}`));
    await until(() => rx.received.filter((r) => r.status === 200).length === N, `${N} successful deliveries`, 20_000);
    await sleep(300);
    const byId = new Map<string, typeof rx.received>();
    for (const r of rx.received) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
    assert.equal(byId.size, N);
    for (const [id, attempts] of byId) {
      assert.deepEqual(attempts.map((r) => r.status), [500, 500, 200], `${id}: two failures, then one success`);
      assert.ok(attempts.every((r) => r.body === attempts[0]!.body), 'the same body on every attempt, whichever replica sent it');
      const gaps = [attempts[1]!.at - attempts[0]!.answeredAt!, attempts[2]!.at - attempts[1]!.answeredAt!];
      assert.ok(gaps[0]! >= 45 && gaps[1]! >= 95, `${id}: backoff grows (${gaps.join(', ')} ms)`);
    }
    assert.equal(rx.maxConcurrentPerId(), 1, 'never two attempts of one delivery in flight');
    await until(async () => (await db.peek("SELECT 1 FROM webhook_outbox WHERE state = 'pending'")).length === 0, 'every outcome recorded');
    const stored = await db.peek('SELECT attempts, state, last_status FROM webhook_outbox');
    assert.ok(stored.every((r) => Number(r['attempts']) === 3 && r['state'] === 'delivered' && Number(r['last_status']) === 200));
    const stats = [a.notifier.stats(), b.notifier.stats()];
    assert.equal(stats[0]!.delivered + stats[1]!.delivered, N);
    assert.equal(stats[0]!.retries + stats[1]!.retries, 2 * N);
  });
});

describe('two gateways on one PostgreSQL database', { timeout: 120_000 }, () => {
  it("a request held on A and approved through B: the rule's receiver gets each notice once, signed; /metrics counts them", async (t) => {
    const rx = await startReceiver((_r, _n, res) => answer(res, 200));
    t.after(() => rx.close());
    const { url } = await freshPg();
    const home = await mkdtemp(join(tmpdir(), 'aigov-outbox-gw-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    process.env['OUTBOX_HOOK_SECRET'] = RECEIVER_SECRET;
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, [
      'version: 1',
      'rules:',
      '  - id: prod-credentials',
      '    reason: the prompt names production credentials',
      "    match: { keywords: ['production password'] }",
      '    action: require_approval',
      '    approval:',
      '      approvers: [approvers]',
      '      timeout: 30s',
      `      notify: [{ url: '${rx.url}', secret: '\${OUTBOX_HOOK_SECRET}' }]`,
    ].join('\n'));
    const h = await startHarness({ databaseUrl: url, policyFile });
    t.after(() => h.close());
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const replicaB = await h.startReplica();
    const bobToken = await h.tokenFor('bob');
    const answered = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'what is the production password?' }] });
    let id = '';
    await until(async () => {
      const list = (await (await fetchAsUser(replicaB.url, bobToken, '/aigov/v1/approvals?scope=decide', { method: 'GET' })).json()) as { approvals: { id: string }[] };
      id = list.approvals[0]?.id ?? '';
      return id !== '';
    }, 'the request held on A, seen through B');
    assert.equal((await fetchAsUser(replicaB.url, bobToken, `/aigov/v1/approvals/${id}/approve`, { method: 'POST', body: { reason: 'fine' } })).status, 200);
    assert.equal((await answered).object, 'chat.completion');
    await until(() => rx.received.length >= 2, 'both notices');
    await sleep(300);
    const types = rx.received.map((r) => (JSON.parse(r.body) as { type: string; approval: { id: string } })).map((b) => `${b.type} ${b.approval.id}`);
    assert.deepEqual(types.sort(), [`approval.created ${id}`, `approval.decided ${id}`], 'each notice once');
    for (const r of rx.received) {
      assert.ok(verifyWebhookSignature(RECEIVER_SECRET, String(r.headers['x-aigov-timestamp']), r.body, String(r.headers['x-aigov-signature'])), 'signed with the rule\'s secret');
      assert.ok(!r.body.includes('production password'), 'no prompt without include_preview');
    }
    const metric = async (base: string): Promise<{ delivered: number; depth: number }> => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return {
        delivered: Number(/^aigov_webhook_deliveries_total\{outcome="delivered"\} (\d+)$/m.exec(text)?.[1] ?? 0),
        depth: Number(/^aigov_webhook_outbox_depth (\d+)$/m.exec(text)?.[1] ?? -1),
      };
    };
    await until(async () => {
      const [a, b] = [await metric(h.url), await metric(replicaB.url)];
      return a.delivered + b.delivered === 2 && a.depth === 0 && b.depth === 0;
    }, 'the deliveries counted by the replicas that made them, the outbox empty on both');
    const stored = await pgQuery(url, 'SELECT state, attempts, receiver, host, body FROM webhook_outbox');
    assert.deepEqual(stored.map((r) => [r['state'], Number(r['attempts'])]), [['delivered', 1], ['delivered', 1]]);
    assert.ok(stored.every((r) => r['receiver'] === receiverKey(rx.url) && r['host'] === rx.host));
    assertNoSecrets(JSON.stringify(stored), 'the outbox rows');
    await checkPgAuditChain(url);
  });
});

for (const driver of DRIVERS) {
  describe(`restarts (${driver})`, { timeout: 60_000 }, () => {
    it('a delivery waiting for its retry is posted after the store is reopened, once, with the same id and body', async () => {
      const rx = await startReceiver((_r, nth, res) => answer(res, nth === 0 ? 503 : 200));
      const db = await database(driver);
      const hooks = [receiverHook(rx.url)];
      const store1 = await db.open();
      const first = createWebhookNotifier({ webhooks: hooks, logger: captureLogger().logger, outbox: store1.outbox, backoffBaseMs: 400 });
      first.notify(sampleNotice('apr_restart'));
      await until(async () => rx.received.length === 1 && (await db.peek('SELECT claim FROM webhook_outbox'))[0]?.['claim'] === null, 'the first attempt, settled as a retry');
      await first.close();
      await store1.close();
      assert.deepEqual({ ...first.stats() }, { delivered: 0, failed: 0, dropped: 0, retries: 0, pending: 1 }, 'not given up at shutdown: it waits in the outbox');

      const store2 = await db.open();
      const second = createWebhookNotifier({ webhooks: hooks, logger: captureLogger().logger, outbox: store2.outbox });
      try {
        await until(() => second.stats().delivered === 1, 'the delivery after the restart');
        await sleep(100);
        assert.equal(rx.received.length, 2);
        assert.equal(rx.received[1]!.id, rx.received[0]!.id);
        assert.equal(rx.received[1]!.body, rx.received[0]!.body);
        assert.ok(rx.received[1]!.at - rx.received[0]!.at >= 300, 'not before its retry time');
        await until(async () => (await db.peek('SELECT state FROM webhook_outbox'))[0]?.['state'] === 'delivered', 'the outcome recorded');
        const [row] = await db.peek('SELECT state, attempts FROM webhook_outbox');
        assert.deepEqual([row!['state'], Number(row!['attempts'])], ['delivered', 2]);
      } finally {
        await second.close();
        await store2.close();
        await rx.close();
      }
    });

    it('a post cut at shutdown is posted again after the restart (at least once: same delivery id)', async () => {
      const rx = await startReceiver((_r, nth, res) => {
        if (nth > 0) answer(res, 200); // the first never answers
      });
      const db = await database(driver);
      const hooks = [receiverHook(rx.url, { timeout: '30s' })];
      const store1 = await db.open();
      const first = createWebhookNotifier({ webhooks: hooks, logger: captureLogger().logger, outbox: store1.outbox, closeTimeoutMs: 100 });
      first.notify(sampleNotice('apr_cut'));
      await until(() => rx.received.length === 1, 'the first post');
      await first.close();
      await store1.close();
      assert.equal(first.stats().failed, 0, 'a durable delivery is not given up when cut');

      const store2 = await db.open();
      const second = createWebhookNotifier({ webhooks: hooks, logger: captureLogger().logger, outbox: store2.outbox });
      try {
        await until(() => second.stats().delivered === 1, 'the delivery after the restart');
        assert.equal(rx.received.length, 2);
        assert.equal(rx.received[1]!.id, rx.received[0]!.id);
      } finally {
        await second.close();
        await store2.close();
        await rx.close();
      }
    });
  });
}

describe('a replica killed mid-delivery', { timeout: 60_000 }, () => {
  it('kill -9 while posting: the other replica posts it once the lease ends, not before', async (t) => {
    // The child's attempt is cut at half its lease (1.5 s): everything up to the kill must fit in it
    // (if it did not, the child would post a second time, and the count of posts below says so).
    const LEASE = 3000;
    const rx = await startReceiver((_r, nth, res) => {
      if (nth > 0) answer(res, 200); // the child's post hangs until it dies
    });
    t.after(() => rx.close());
    const { url } = await freshPg();
    const store = await openPostgresApprovalStore({ url, poolSize: 2, onError: () => {} });
    let b: WebhookNotifier | null = null;
    t.after(async () => {
      await b?.close();
      await store.close();
    });
    const child = spawn(process.execPath, [CHILD, url, rx.url, String(LEASE), 'apr_killed'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await until(() => rx.received.length === 1, `the child's post (stderr: ${stderr})`, 20_000);

    // B is up while the child posts; the row is the child's until its lease ends.
    const log = captureLogger();
    const replicaB = createWebhookNotifier({ webhooks: [receiverHook(rx.url)], logger: log.logger, outbox: store.outbox, leaseMs: LEASE, pollMs: 60_000 });
    b = replicaB;
    await sleep(200);
    assert.equal(rx.received.length, 1, 'B leaves a row another process holds alone');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    await until(() => replicaB.stats().delivered === 1, 'B delivering it', 10_000);
    const [first, second] = rx.received;
    assert.equal(rx.received.length, 2, 'one post by the child, one by B');
    assert.equal(second!.id, first!.id, 'the same delivery id: the receiver can dedupe');
    assert.equal(second!.body, first!.body);
    const gap = second!.at - first!.at;
    t.diagnostic(`taken over ${gap} ms after the first post (lease ${LEASE} ms)`);
    assert.ok(gap >= LEASE - 100, `not before the lease ended (${gap} ms)`);
    assert.ok(gap < LEASE + 3000, `soon after it ended, without a poll (${gap} ms)`);
    // Counted when the receiver answered; recorded a moment later.
    await until(async () => (await pgQuery(url, 'SELECT state FROM webhook_outbox'))[0]?.['state'] === 'delivered', 'the outcome recorded');
    const [row] = await pgQuery(url, 'SELECT state, attempts FROM webhook_outbox');
    assert.deepEqual([row!['state'], Number(row!['attempts'])], ['delivered', 2]);
  });
});

describe('failures', { timeout: 60_000 }, () => {
  it('PostgreSQL gone: notify() neither throws nor waits, failures are counted and logged once (never the password); back: stored notices are delivered', async (t) => {
    const rx = await startReceiver((r, nth, res) => answer(res, r.body.includes('apr_before') && nth === 0 ? 503 : 200));
    t.after(() => rx.close());
    const { name, url: plain } = await freshPg();
    const withPassword = new URL(plain);
    withPassword.username = 'postgres';
    const password = ['pg', randomBytes(8).toString('hex'), 'pw'].join('-'); // trust auth ignores it; nothing may print it
    withPassword.password = password;
    const reports: string[] = [];
    const store = await openPostgresApprovalStore({ url: withPassword.toString(), poolSize: 2, onError: (m) => reports.push(m) });
    const log = captureLogger();
    let storeErrors = 0;
    const notifier = createWebhookNotifier({ webhooks: [receiverHook(rx.url)], logger: log.logger, outbox: store.outbox, backoffBaseMs: 1500, pollMs: 100, onStoreError: () => (storeErrors += 1) });
    t.after(async () => {
      await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => {});
      await notifier.close();
      await store.close();
    });
    notifier.notify(sampleNotice('apr_before'));
    await until(() => rx.received.length === 1, 'the first attempt (503: retried in ~1.5 s)');

    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    const started = performance.now();
    assert.doesNotThrow(() => notifier.notify(sampleNotice('apr_during')));
    assert.ok(performance.now() - started < 50, 'notify() returned at once');
    await until(() => notifier.stats().dropped === 1, 'the notice that could not be stored, counted');
    await until(() => storeErrors >= 3, 'the worker failing too, counted');
    const warned = log.lines().filter((l) => l.level === 40 && /could not read the due deliveries/.test(l.msg));
    assert.equal(warned.length, 1, 'logged once at warn, then quietly');
    assert.match(log.text(), /approval webhook notice dropped: the outbox could not store it/);

    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await until(() => rx.received.some((r) => r.body.includes('apr_before') && r.status === 200), 'the notice stored before the outage, delivered', 20_000);
    notifier.notify(sampleNotice('apr_after'));
    await until(() => rx.received.some((r) => r.body.includes('apr_after') && r.status === 200), 'a new notice, delivered');
    assert.match(log.text(), /the store answers again/);
    assert.equal(rx.received.filter((r) => r.body.includes('apr_before') && r.status === 200).length, 1);
    assert.ok(!log.text().includes(password) && !reports.join('\n').includes(password), 'never the password');
    assertNoSecrets(log.text(), 'the logs');
  });

  it('a receiver removed from the configuration: its pending rows wait out the grace unposted, then are dropped with a log line', async () => {
    const gone = await startReceiver((_r, _n, res) => answer(res, 503));
    const kept = await startReceiver((_r, _n, res) => answer(res, 200));
    const db = await database('sqlite');
    const store1 = await db.open();
    const first = createWebhookNotifier({ webhooks: [receiverHook(gone.url), receiverHook(kept.url)], logger: captureLogger().logger, outbox: store1.outbox, backoffBaseMs: 60_000 });
    first.notify(sampleNotice('apr_removed'));
    await until(() => first.stats().delivered === 1 && gone.received.length === 1, 'one delivered, one waiting for its retry');
    await first.close();
    await store1.close();

    const store2 = await db.open();
    try {
      const patient = createWebhookNotifier({ webhooks: [receiverHook(kept.url)], logger: captureLogger().logger, outbox: store2.outbox });
      await sleep(200);
      await patient.close();
      assert.equal(patient.stats().dropped, 0, 'within the grace (another replica may still know it) the row stays');
      assert.equal((await db.peek("SELECT state FROM webhook_outbox WHERE state = 'pending'")).length, 1);

      const log = captureLogger();
      const strict = createWebhookNotifier({ webhooks: [receiverHook(kept.url)], logger: log.logger, outbox: store2.outbox, unknownReceiverGraceMs: 0 });
      await until(() => strict.stats().dropped === 1, 'the row of the removed receiver dropped');
      await strict.close();
      assert.equal(gone.received.length, 1, 'never posted again');
      assert.match(log.text(), new RegExp(`"webhook":"${gone.host.replace('.', '\\.')}".*their receiver is no longer configured`));
      const [row] = await db.peek("SELECT state, last_error FROM webhook_outbox WHERE host = $1", [gone.host]);
      assert.deepEqual([row!['state'], row!['last_error']], ['failed', 'its receiver is no longer configured']);
      assertNoSecrets(log.text(), 'the logs');
    } finally {
      await store2.close();
      await gone.close();
      await kept.close();
    }
  });

  it('notices that cannot be built never stop an approval: the hold and the decision go ahead, logged', async (t) => {
    const db = await database('sqlite');
    const store = await db.open();
    const log = captureLogger();
    const service = await ApprovalService.open({
      store,
      logger: log.logger,
      announcer: {
        rows: () => {
          throw new Error('boom');
        },
        written: () => {},
      },
    });
    t.after(async () => {
      service.close();
      await store.close();
    });
    const held = await service.hold(holdRequest('unannounced'));
    assert.ok(held.kind === 'wait' && held.created);
    assert.ok((await service.decide(held.approval.id, bob, 'approve', null)).ok);
    assert.equal((await store.get(held.approval.id))?.state, 'approved');
    assert.equal(log.lines().filter((l) => /notices could not be built; the change goes ahead/.test(l.msg)).length, 2);
    assert.deepEqual(await db.peek('SELECT count(*) AS n FROM webhook_outbox').then((r) => Number(r[0]!['n'])), 0);
  });

  it('the pending cap holds on the approval path: approvals are all opened, notices beyond the cap dropped and logged', async (t) => {
    const rx = await startReceiver((_r, _n, res) => answer(res, 503));
    t.after(() => rx.close());
    const db = await database('postgres');
    const a = await replica(t, db, [receiverHook(rx.url)], { maxPending: 3, backoffBaseMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      const held = await a.service.hold(holdRequest(`capped-${i}`));
      assert.ok(held.kind === 'wait' && held.created, 'the cap never refuses an approval');
    }
    assert.equal(Number((await db.peek('SELECT count(*) AS n FROM webhook_outbox'))[0]!['n']), 3);
    assert.equal(a.notifier.stats().dropped, 2);
    assert.equal(a.log.lines().filter((l) => /too many deliveries pending/.test(l.msg)).length, 2);
  });
});
