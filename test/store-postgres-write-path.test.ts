/**
 * The PostgreSQL store's one-round-trip writes (migration 6: aigov_record_calls and
 * aigov_write_behind lock the chain's head, check what the writer assumed, write and link the
 * audit entries in the database) against what could make them wrong, on the real server:
 * - two replicas writing at once, many in flight each, sharing sessions whose bodies are stored
 *   as chunks, with chunk-id blocks so small they run out all the time: one chain that
 *   `aigov audit verify`'s core and the independent check both accept, every body read back byte
 *   for byte, and both paths (one round trip, and the locked one the database sends a write back
 *   to) taken;
 * - a guess the database must refuse: a session another replica stored chunks for (taken for a
 *   new one), chunks a purge removed (still remembered);
 * - the database dying while a group of records waits for the chain's lock: every request of the
 *   group answered 503, none forwarded, none recorded;
 * - the write connection killed while its transaction commits: the request refused and not
 *   forwarded (a record), or the result retried on a new connection before the answer is sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { PgAuditMaintenance } from '../src/store/postgres/pg-audit-maintenance.ts';
import { verifyPostgresAudit } from '../src/store/postgres/pg-audit-verify.ts';
import type { PgSettings } from '../src/store/postgres/pg-connection.ts';
import { openPostgresStore, type PostgresRecordingStore, type PostgresStoreOptions } from '../src/store/postgres/postgres-store.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { adminQuery, connect, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { callRequest, callResult } from './support/store-fixtures.ts';

const DAY = 86_400_000;
const freshPg = usePgDatabases();

const stores: PostgresRecordingStore[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close().catch(() => {});
  for (const s of stores) await s.close().catch(() => {});
});

async function open(options: PostgresStoreOptions): Promise<PostgresRecordingStore> {
  const store = await openPostgresStore({ poolSize: 2, ...options });
  stores.push(store);
  return store;
}

function settings(url: string): PgSettings {
  return { url, statementTimeoutMs: 5000, connectTimeoutMs: 5000, lockTimeoutMs: 0 };
}

const SYSTEM = 'You are the release agent of this team. Follow the runbook; never skip a check. '.repeat(20);

/** An agent's request at `turn`: the same long system prompt, then one message per earlier turn (stored as shared chunks). */
function agentBody(session: string, turn: number): string {
  const messages = [{ role: 'system', content: SYSTEM }];
  for (let t = 0; t <= turn; t++) messages.push({ role: t % 2 === 0 ? 'user' : 'assistant', content: `${session} turn ${t}: ${'step details '.repeat(12)}` });
  return JSON.stringify({ model: 'gpt-4o-mini', messages });
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('PostgreSQL store: one-round-trip writes', () => {
  test('two replicas, 24 in flight each, sharing sessions, chunk-id blocks of 8 (then as a group needs): one chain both verifiers accept, every body read back', async () => {
    const { url } = await freshPg();
    const replicas = [await open({ url, chunkBlock: 8 }), await open({ url, chunkBlock: 8 })];
    const bodies = new Map<string, string>();
    const work = replicas.map(async (store, r) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 24 }, async () => {
          while (next < 96) {
            const n = next++;
            const id = `r${r}-${n}`;
            // Sessions both replicas write (their chunks stored by either; new ones half way), and sessions of one replica.
            const session = n % 3 === 0 ? `own-${r}-${n % 4}` : n < 48 ? `shared-${n % 5}` : `late-${n % 6}`;
            const body = n % 4 === 3 ? `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"short ${id}"}]}` : agentBody(session, n % 7);
            bodies.set(id, body);
            await store.recordRequest(callRequest(id, { sessionId: session, requestBody: body, startedAt: Date.now() }));
            if (n % 2 === 0) {
              store.appendStreamEvents(id, [{ offsetMs: 1, raw: `data: {"id":"${id}","n":1}\n\n` }]);
              store.appendStreamEvents(id, [{ offsetMs: 2, raw: `data: {"id":"${id}","n":2}\n\n` }, { offsetMs: 3, raw: 'data: [DONE]\n\n' }]);
            }
            await store.finishCall(callResult(id, { endedAt: Date.now(), decisions: n % 5 === 0 ? [{ stage: 'response', action: 'allow', ruleId: null, reason: 'no rule matched', mode: 'enforce' }] : [] }));
            if (n % 16 === 0) await store.recordAccess({ at: Date.now(), actor: { subject: 'auditor', issuer: 'https://idp.example.test', email: null }, action: 'list', sessionId: null, filter: null });
          }
        }),
      );
    });
    await Promise.all(work);
    for (const store of replicas) await store.flush();

    const report = await verifyPostgresAudit(settings(url));
    assert.equal(report.problem, null, report.problem?.detail);
    const { entries } = await checkPgAuditChain(url);
    assert.equal(report.entries, entries);
    assert.equal(entries, 2 * (96 * 2 + 48 * 2 + 6), 'request and result of each call, two event batches of half of them, the access rows');
    for (const [id, body] of bodies) {
      const call = await replicas[0]!.getCall(id);
      assert.equal(call?.requestBody, body, `${id} reads back byte for byte`);
      assert.equal(call?.status, 'completed');
    }
    const merged = await pgQuery<{ decisions: string }>(url, "SELECT decisions FROM calls WHERE id = 'r1-5'");
    assert.match(merged[0]!.decisions, /"stage":"response"/, 'a result merges its decisions with the recorded ones');
    const stats = replicas.map((s) => s.stats());
    assert.ok(stats.some((s) => s.combinedCommits > 0), 'records and results went in one transaction');
    for (const s of stats) {
      assert.ok(s.fastCommits > 0 && s.lockedCommits > 0, `both paths were taken (${JSON.stringify(s)})`);
      assert.equal(s.writeErrors + s.recordFailures + s.droppedRows, 0);
    }
    // The chunk ids handed out never clash and each call's are consecutive (checkPgAuditChain reads them as a range).
    const { n: chunks, distinct } = (await pgQuery<{ n: number; distinct: number }>(url, 'SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM body_chunks'))[0]!;
    assert.equal(chunks, distinct);
  });

  test("a session another replica stored chunks for: taken for a new one, refused under the lock, then read and shared", async () => {
    const { url } = await freshPg();
    const a = await open({ url });
    const b = await open({ url });
    // b has stored chunks before (so it has ids reserved for its one-round-trip writes).
    await b.recordRequest(callRequest('b-0', { sessionId: 'ses-other', requestBody: agentBody('ses-other', 2) }));
    const body = agentBody('ses-x', 4);
    await a.recordRequest(callRequest('a-1', { sessionId: 'ses-x', requestBody: body }));
    const { n: stored } = (await pgQuery<{ n: number }>(url, "SELECT count(*)::int AS n FROM body_chunks WHERE session_id = 'ses-x'"))[0]!;
    assert.ok(stored > 3, `the body is stored as chunks (${stored})`);
    const before = b.stats();
    await b.recordRequest(callRequest('b-1', { sessionId: 'ses-x', requestBody: body }));
    assert.equal(b.stats().fastRetries, before.fastRetries + 1, 'the database refused the guess');
    const { n: after } = (await pgQuery<{ n: number }>(url, "SELECT count(*)::int AS n FROM body_chunks WHERE session_id = 'ses-x'"))[0]!;
    assert.equal(after, stored, "replica b shares replica a's chunks instead of storing them again");
    assert.equal((await b.getCall('b-1'))?.requestBody, body);
    // Now b remembers the session: its next call takes one round trip.
    const fast = b.stats().fastCommits;
    await b.recordRequest(callRequest('b-2', { sessionId: 'ses-x', requestBody: agentBody('ses-x', 5) }));
    assert.equal(b.stats().fastCommits, fast + 1);
    await checkPgAuditChain(url);
  });

  test("records and a result batch in one transaction: the batch's failure does not take the records with it", async () => {
    const { url } = await freshPg();
    const store = await open({ url });
    await store.recordRequest(callRequest('combo-a', { sessionId: 'ses-c' }));
    // A result that fails once, inside the transaction it shares with the next record.
    await pgQuery(url, 'CREATE SEQUENCE zz_once_combo');
    await pgQuery(url, `CREATE FUNCTION zz_fail_result() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.id = 'combo-a' AND nextval('zz_once_combo') = 1 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`);
    await pgQuery(url, 'CREATE TRIGGER zz_fail_result BEFORE UPDATE ON calls FOR EACH ROW EXECUTE FUNCTION zz_fail_result()');
    const finished = store.finishCall(callResult('combo-a'));
    const recorded = store.recordRequest(callRequest('combo-b', { sessionId: 'ses-c' }));
    await recorded; // not refused: tried again alone
    await finished; // then tried alone: the failure was once
    const stats = store.stats();
    assert.equal(stats.combinedFailures, 1, 'they went together, and failed together');
    assert.equal(stats.writeErrors, 1);
    assert.equal(stats.recordFailures, 0);
    assert.equal((await store.getCall('combo-a'))?.status, 'completed');
    assert.equal((await store.getCall('combo-b'))?.status, 'pending');
    await store.finishCall(callResult('combo-b'));
    await store.recordRequest(callRequest('combo-c', { sessionId: 'ses-c' }));
    await checkPgAuditChain(url);
  });

  test('chunks a purge removed while the writer still remembers them: the database says retry, the locked path stores them again', async () => {
    const { url } = await freshPg();
    const store = await open({ url });
    const old = Date.now() - 10 * DAY;
    const body = agentBody('ses-p', 3);
    await store.recordRequest(callRequest('old-1', { sessionId: 'ses-p', requestBody: body, startedAt: old }));
    await store.finishCall(callResult('old-1', { endedAt: old + 10 }));
    const maintenance = new PgAuditMaintenance({ settings: settings(url), key: null });
    closers.push(() => maintenance.close());
    const purged = await maintenance.purge(Date.now() - DAY);
    assert.equal(purged.calls, 1);
    assert.equal((await pgQuery<{ n: number }>(url, "SELECT count(*)::int AS n FROM body_chunks WHERE session_id = 'ses-p'"))[0]!.n, 0, 'the purge took the chunks');
    const retries = store.stats().fastRetries;
    await store.recordRequest(callRequest('new-1', { sessionId: 'ses-p', requestBody: body }));
    assert.equal(store.stats().fastRetries, retries + 1);
    assert.equal((await store.getCall('new-1'))?.requestBody, body, 'the body reads back: its chunks were stored again');
    const report = await verifyPostgresAudit(settings(url));
    assert.equal(report.problem, null, report.problem?.detail);
  });
});

describe('PostgreSQL store: the durable write before forwarding, under failure (through the gateway)', { timeout: 120_000 }, () => {
  let h: Harness;
  let dbName = '';
  let url = '';
  const client = (session: string): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
  const ask = (session: string, content: string): Promise<unknown> => client(session).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }).catch((e: unknown) => e);

  before(async () => {
    const db = await freshPg();
    dbName = db.name;
    url = db.url;
    h = await startHarness({ databaseUrl: url, statementTimeoutMs: 20_000 });
    closers.push(async () => {
      await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => {});
      await h.close();
    });
    h.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
    const answer = await ask('ses-warm', 'warm up');
    if (answer instanceof Error) throw answer;
  });

  test('the database dies while a group of records waits for the chain lock: every request of the group gets 503, none is forwarded or recorded', async () => {
    const forwarded = h.upstream.received.length;
    const locker = await connect(url);
    locker.on('error', () => {}); // it is terminated with the others
    await locker.query('BEGIN');
    await locker.query('SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE');
    const answers = Array.from({ length: 8 }, (_, i) => ask(`ses-dead-${i % 3}`, `dead database group ${i}`));
    // The first records wait for the lock inside aigov_record_calls; the others queue behind them.
    await waitUntil(async () => (await pgQuery(url, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%aigov_record_calls%'")).length > 0, 'a record group to wait for the lock');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    await locker.end().catch(() => {});
    try {
      const settled = await Promise.all(answers);
      for (const e of settled) {
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, 503);
        assert.match(e.message, /not sent: the gateway could not record it/);
      }
      assert.equal(h.upstream.received.length, forwarded, 'nothing was forwarded');
    } finally {
      await adminQuery(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    }
    await waitUntil(async () => (await fetch(`${h.url}/readyz`)).status === 200, 'the gateway to be ready again');
    const back = await ask('ses-dead-0', 'after the database came back');
    assert.ok(!(back instanceof Error), String(back));
    assert.equal(h.upstream.received.length, forwarded + 1);
    const { n } = (await pgQuery<{ n: number }>(url, "SELECT count(*)::int AS n FROM calls WHERE request_body LIKE '%dead database group%'"))[0]!;
    assert.equal(n, 0, 'no refused request left a record');
    await checkPgAuditChain(url);
  });

  test('the write connection is killed while a record commits: 503, not forwarded, not recorded; the next request goes through', async () => {
    const forwarded = h.upstream.received.length;
    // A deferred trigger that sleeps at COMMIT, once (a sequence is not rolled back with the kill).
    await pgQuery(url, 'CREATE SEQUENCE zz_once_record');
    await pgQuery(url, `CREATE FUNCTION zz_slow_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.session_id = 'ses-kill-record' AND nextval('zz_once_record') = 1 THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$`);
    await pgQuery(url, 'CREATE CONSTRAINT TRIGGER zz_slow_record AFTER INSERT ON calls DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION zz_slow_record()');
    try {
      const answer = ask('ses-kill-record', 'killed while committing');
      let pid = 0;
      await waitUntil(async () => {
        const rows = await pgQuery<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()");
        pid = rows[0]?.pid ?? 0;
        return pid !== 0;
      }, 'the record to be committing');
      await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
      const e = await answer;
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, 503);
      assert.equal(h.upstream.received.length, forwarded, 'nothing was forwarded');
      const { n } = (await pgQuery<{ n: number }>(url, "SELECT count(*)::int AS n FROM calls WHERE session_id = 'ses-kill-record'"))[0]!;
      assert.equal(n, 0, 'the killed commit left nothing');
      const next = await ask('ses-kill-record', 'the next one');
      assert.ok(!(next instanceof Error), String(next));
      assert.equal(h.upstream.received.length, forwarded + 1);
    } finally {
      await pgQuery(url, 'DROP TRIGGER zz_slow_record ON calls');
    }
    await checkPgAuditChain(url);
  });

  test("the write connection is killed while a call's result commits: retried on a new connection, the answer sent only once it is recorded", async () => {
    await pgQuery(url, 'CREATE SEQUENCE zz_once_result');
    await pgQuery(url, `CREATE FUNCTION zz_slow_result() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.session_id = 'ses-kill-result' AND OLD.status = 'pending' AND nextval('zz_once_result') = 1 THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$`);
    await pgQuery(url, 'CREATE CONSTRAINT TRIGGER zz_slow_result AFTER UPDATE ON calls DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION zz_slow_result()');
    try {
      let done = false;
      const answer = ask('ses-kill-result', 'result killed while committing').finally(() => {
        done = true;
      });
      let pid = 0;
      await waitUntil(async () => {
        const rows = await pgQuery<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()");
        pid = rows[0]?.pid ?? 0;
        return pid !== 0;
      }, 'the result to be committing');
      assert.equal(done, false, 'the answer waits for its result');
      await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
      const result = await answer;
      assert.ok(!(result instanceof Error), String(result));
      const rows = await pgQuery<{ status: string }>(url, "SELECT status FROM calls WHERE session_id = 'ses-kill-result'");
      assert.deepEqual(rows.map((r) => r.status), ['completed']);
    } finally {
      await pgQuery(url, 'DROP TRIGGER zz_slow_result ON calls');
    }
    await checkPgAuditChain(url);
  });
});
