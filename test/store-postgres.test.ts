/**
 * What only the PostgreSQL store has to get right, on the real server (a database of its own per
 * case): migrations under the advisory lock (replicas starting together, a newer schema refused,
 * another application's tables refused), a dead server at start, a statement that runs into the
 * statement timeout, connections killed under it (the owner lock lost and taken back), several
 * replicas appending to one audit chain, text PostgreSQL cannot hold refused alone, and the
 * URL's password in no error, report or health detail. The contract every driver shares is in
 * test/support/store-contract.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { isAigovError } from '../src/core/errors.ts';
import { redactDatabaseUrl, scrubDatabaseSecrets } from '../src/config/database-url.ts';
import { PG_LATEST_SCHEMA_VERSION } from '../src/store/postgres/migrations.ts';
import { openPostgresStore, type PostgresRecordingStore, type PostgresStoreOptions } from '../src/store/postgres/postgres-store.ts';
import { SessionOwnerConflictError, StoreWriteError } from '../src/store/recording-store.ts';
import { SchemaTooNewError } from '../src/store/schema-too-new.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { adminQuery, connect, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { callRequest, callResult, principal, SECRET_PROMPT } from './support/store-fixtures.ts';

const freshPg = usePgDatabases();
const STORE_URL = pathToFileURL(path.resolve('src/store/postgres/postgres-store.ts')).href;

const stores: PostgresRecordingStore[] = [];
after(async () => {
  for (const s of stores) await s.close().catch(() => {});
});
async function open(options: PostgresStoreOptions): Promise<PostgresRecordingStore> {
  const store = await openPostgresStore({ poolSize: 3, ...options });
  stores.push(store);
  return store;
}

/** A password made at run time (trust auth ignores it; nothing may ever print it). */
function secretPassword(): string {
  return ['pw', randomBytes(9).toString('hex'), 'S3cr'].join('-');
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, 'expected a rejection');
  return err;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('PostgreSQL store: opening', () => {
  test('a server that does not answer: a clear open error naming the URL without its password', async () => {
    const password = secretPassword();
    const dead = `postgres://aigov:${password}@127.0.0.1:1/aigov`;
    const started = Date.now();
    const err = await rejection(openPostgresStore({ url: dead, connectTimeoutMs: 2000 }));
    assert.ok(isAigovError(err) && err.code === 'AIGOV_E_STORE_OPEN_FAILED', String(err));
    assert.match(err.message, /Cannot open the recording store at postgres:\/\/aigov:\*\*\*@127\.0\.0\.1:1\/aigov: cannot connect to or migrate the database: .*ECONNREFUSED/);
    assert.ok(!err.message.includes(password) && !JSON.stringify(err.params).includes(password));
    assert.ok(Date.now() - started < 5000, 'it fails at once, not after retries');
  });

  test('a database that does not exist, and a URL whose password is only in its query: never echoed', async () => {
    const password = secretPassword();
    const missing = `postgres://postgres@127.0.0.1:5432/aigov_no_such_db_${randomBytes(4).toString('hex')}?password=${password}`;
    const err = await rejection(openPostgresStore({ url: missing }));
    assert.ok(isAigovError(err) && err.code === 'AIGOV_E_STORE_OPEN_FAILED');
    assert.match(err.message, /does not exist/);
    assert.match(err.message, /\?password=\*\*\*/);
    assert.ok(!err.message.includes(password));
  });

  test('migrations: a fresh database gets the schema once; reopening applies nothing', async () => {
    const { url } = await freshPg();
    await (await open({ url })).close();
    await (await open({ url })).close();
    const rows = await pgQuery(url, 'SELECT version FROM aigov_schema_migrations ORDER BY version');
    assert.deepEqual(rows.map((r) => r['version']), Array.from({ length: PG_LATEST_SCHEMA_VERSION }, (_, i) => i + 1));
    assert.deepEqual(await pgQuery(url, 'SELECT seq, hash, next_chunk FROM chain_head'), [{ seq: 0, hash: '0'.repeat(64), next_chunk: 1 }]);
  });

  test('replicas starting together: four stores in this process and two processes migrate one fresh database once, and all open', async () => {
    const { url } = await freshPg();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-pg-migrate-'));
    try {
      const at = Date.now() + 1500; // every opener starts at the same moment
      const script = path.join(dir, 'open.mjs');
      fs.writeFileSync(script, `
        import { openPostgresStore } from ${JSON.stringify(STORE_URL)};
        await new Promise((r) => setTimeout(r, ${at} - Date.now()));
        const store = await openPostgresStore({ url: ${JSON.stringify(url)}, poolSize: 2 });
        await store.recordRequest({ ...${JSON.stringify(callRequest('x'))}, callId: 'proc-' + process.pid, sessionId: 'proc-' + process.pid });
        await store.close();
        process.stdout.write('opened\\n');
      `);
      const child = (): Promise<{ code: number | null; out: string; err: string }> =>
        new Promise((resolve) => {
          const p = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
          p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
          p.on('exit', (code) => resolve({ code, out, err }));
        });
      const inProcess = async (i: number): Promise<void> => {
        await new Promise((r) => setTimeout(r, at - Date.now()));
        const store = await open({ url, poolSize: 2 });
        await store.recordRequest(callRequest(`here-${i}`, { sessionId: `here-${i}` }));
      };
      const [a, b] = await Promise.all([child(), child(), ...Array.from({ length: 4 }, (_, i) => inProcess(i))]);
      assert.equal(a.code, 0, a.err);
      assert.equal(b.code, 0, b.err);
      assert.match(a.out + b.out, /opened\n.*opened/s);
      assert.deepEqual((await pgQuery(url, 'SELECT version FROM aigov_schema_migrations')).length, PG_LATEST_SCHEMA_VERSION);
      assert.equal(Number((await pgQuery(url, 'SELECT count(*) AS n FROM calls'))[0]?.['n']), 6);
      await checkPgAuditChain(url);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a database migrated by a newer aigov is refused, and left as it was', async () => {
    const { url } = await freshPg();
    await (await open({ url })).close();
    const newer = PG_LATEST_SCHEMA_VERSION + 1;
    await pgQuery(url, `INSERT INTO aigov_schema_migrations (version, name, applied_at) VALUES (${newer}, 'from the future', 0)`);
    const err = await rejection(openPostgresStore({ url }));
    assert.ok(isAigovError(err) && err.code === 'AIGOV_E_STORE_OPEN_FAILED');
    assert.match(err.message, new RegExp(`the database has schema version ${newer}, written by a newer aigov; this aigov supports up to version ${PG_LATEST_SCHEMA_VERSION}`));
    assert.ok(err.cause instanceof SchemaTooNewError);
    assert.equal((await pgQuery(url, 'SELECT count(*) AS n FROM owners'))[0]?.['n'], 0, 'nothing was written');
  });

  test("another application's tables of the same names are refused, not written into", async () => {
    const { url } = await freshPg();
    await pgQuery(url, 'CREATE TABLE calls (id integer PRIMARY KEY, note text)');
    const err = await rejection(openPostgresStore({ url }));
    assert.match(err.message, /already has a table named calls but no aigov schema version: it belongs to another application/);
    assert.deepEqual(await pgQuery(url, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'aigov_schema_migrations'"), [{ n: 0 }]);
  });
});

describe('PostgreSQL store: running', () => {
  test('statement timeout: a recording that waits on a locked table is refused in time, not hung; health says why; then it works', async () => {
    const { url } = await freshPg();
    const store = await open({ url, statementTimeoutMs: 300 });
    await store.recordRequest(callRequest('before'));
    const locker = await connect(url);
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE calls IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const err = await rejection(store.recordRequest(callRequest('blocked')));
      assert.ok(err instanceof StoreWriteError);
      assert.match(err.message, /recording the request failed: canceling statement due to statement timeout/);
      assert.ok(Date.now() - started < 3000, `refused after ${Date.now() - started} ms`);
      assert.ok(!err.message.includes(SECRET_PROMPT));
      const health = await store.health();
      assert.equal(health.ok, false);
      assert.match(String(health.detail), /last write failed: canceling statement due to statement timeout/);
      const read = await rejection(store.getCall('before'));
      assert.match(read.message, /reading the recording store failed: canceling statement due to statement timeout/);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    await store.recordRequest(callRequest('after'));
    assert.deepEqual(await store.health(), { ok: true, writeErrors: 0, detail: null });
    assert.equal(await store.getCall('blocked'), null);
    await checkPgAuditChain(url);
  });

  test('connections killed under the store: requests refused (owner lock lost), then everything works again; the password is never shown', async () => {
    const { name, url: plain } = await freshPg();
    const password = secretPassword();
    const url = withPassword(plain, password);
    const reports: string[] = [];
    const store = await open({ url, onWriteError: (e) => reports.push(e.message) });
    await store.recordRequest(callRequest('c1'));
    store.appendStreamEvents('c1', [{ offsetMs: 1, raw: 'data: one\n\n' }]);
    await store.finishCall(callResult('c1'));

    // The server refuses this database for a while and drops every connection to it.
    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    try {
      await waitUntil(async () => !(await store.health()).ok, 'health to say the database is gone');
      const err = await rejection(store.recordRequest(callRequest('c2')));
      assert.ok(err instanceof StoreWriteError);
      assert.match(err.message, /recording the request failed: /);
      const health = await store.health();
      assert.equal(health.ok, false);
      for (const text of [err.message, String(health.detail)]) assert.ok(!text.includes(password), text);
      // Write-behind rows meanwhile: given up after the retry, at once for all (no wait per row).
      await store.recordRequest(callRequest('during')).catch(() => {}); // refused: never recorded
      const many = Array.from({ length: 40 }, (_, i) => ({ offsetMs: i, raw: `data: ${i}\n\n` }));
      for (let i = 0; i < 20; i++) store.appendStreamEvents('c1', many.slice(i * 2, i * 2 + 2));
      const finish = store.finishCall(callResult('c1', { endedAt: 1_700_000_009_000 }));
      const started = Date.now();
      await store.flush();
      assert.ok(Date.now() - started < 5000, `the queued rows were given up after ${Date.now() - started} ms`);
      await assert.rejects(finish, /recording the call result failed/);
      assert.equal(store.stats().droppedRows, 41);
    } finally {
      await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    }
    await waitUntil(async () => (await store.health()).ok, 'the store to recover');
    await store.recordRequest(callRequest('c3'));
    store.appendStreamEvents('c3', [{ offsetMs: 2, raw: 'data: two\n\n' }]);
    await store.finishCall(callResult('c3'));
    assert.equal((await store.getCall('c3'))?.status, 'completed');
    assert.equal(await store.getCall('c2'), null, 'the refused request was not recorded');
    assert.ok(reports.some((m) => /owner lock's connection to PostgreSQL was lost/.test(m)), reports.join('\n'));
    assert.ok(reports.some((m) => /owner lock is held again/.test(m)), reports.join('\n'));
    for (const m of reports) assert.ok(!m.includes(password) && !m.includes(SECRET_PROMPT), m);
    await checkPgAuditChain(plain);
  });

  test('text PostgreSQL cannot store (NUL) is refused alone: the other records of the group commit', async () => {
    const { url } = await freshPg();
    const reports: string[] = [];
    const store = await open({ url, onWriteError: (e) => reports.push(e.message) });
    const nul = String.fromCharCode(0);
    const outcomes = await Promise.allSettled([
      store.recordRequest(callRequest('ok-1')),
      store.recordRequest(callRequest('bad-body', { requestBody: `{"messages":[{"role":"user","content":"a${nul}b"}]}` })),
      store.recordRequest(callRequest('bad-subject', { sessionId: 'other', principal: principal({ subject: `mal${nul}lory` }) })),
      store.recordRequest(callRequest('ok-2')),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /NUL character/);
    // A stream event with one: dropped (the call cannot be finished as whole); others go on.
    store.appendStreamEvents('ok-1', [{ offsetMs: 1, raw: `data: x${nul}\n\n` }]);
    store.appendStreamEvents('ok-2', [{ offsetMs: 1, raw: 'data: fine\n\n' }]);
    await assert.rejects(store.finishCall(callResult('ok-1')), /some of its stream events could not be written/);
    await store.finishCall(callResult('ok-2'));
    await assert.rejects(store.finishCall(callResult('ok-2', { responseBody: `x${nul}` })), /NUL character|already has a result/);
    assert.equal((await store.getCall('ok-2'))?.status, 'completed');
    assert.equal(store.stats().droppedRows, 1);
    assert.ok(reports.some((m) => /NUL character/.test(m)));
    await checkPgAuditChain(url);
  });

  test('two replicas on one database: one audit chain, and a session id claimed by both goes to one principal only', async () => {
    const { url } = await freshPg();
    const a = await open({ url });
    const b = await open({ url });
    const mallory = principal({ subject: 'mallory', email: 'm@example.test' });
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const store = i % 2 === 0 ? a : b;
      work.push(store.recordRequest(callRequest(`r${i}`, { sessionId: `shared-${i % 6}`, startedAt: 1_700_000_000_000 + i })).then(() => {
        store.appendStreamEvents(`r${i}`, [{ offsetMs: 1, raw: `data: ${i}\n\n` }, { offsetMs: 2, raw: 'data: [DONE]\n\n' }]);
        return store.finishCall(callResult(`r${i}`));
      }));
    }
    // Both replicas race for a new session id with different principals.
    const race = await Promise.allSettled([a.recordRequest(callRequest('claim-a', { sessionId: 'contested' })), b.recordRequest(callRequest('claim-b', { sessionId: 'contested', principal: mallory }))]);
    await Promise.all(work);
    assert.equal(race.filter((o) => o.status === 'fulfilled').length, 1, 'exactly one principal owns the session');
    const lost = race.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof SessionOwnerConflictError);
    await a.flush();
    await b.flush();
    const { entries } = await checkPgAuditChain(url);
    assert.equal(entries, 60 * 3 + 1, 'request, events and result of each call, and the claim');
    const owners = await pgQuery(url, "SELECT DISTINCT owner FROM calls WHERE id LIKE 'r%'");
    assert.equal(owners.length, 2, 'each replica owns the calls it recorded');
  });

  test('the audit check is not vacuous: a row changed behind the gateway is caught', async () => {
    const { url } = await freshPg();
    const store = await open({ url });
    await store.recordRequest(callRequest('t1'));
    await store.finishCall(callResult('t1'));
    await checkPgAuditChain(url);
    await pgQuery(url, "UPDATE calls SET request_body = replace(request_body, 'SECRET', 'secret') WHERE id = 't1'");
    await assert.rejects(checkPgAuditChain(url), /entry 1 \(request t1\): its content hash is recomputed from the rows/);
  });
});

// aigov audit verify on PostgreSQL: test/audit-postgres.test.ts.

describe('database URLs', () => {
  test('redaction hides every spelling of the password, and scrubbing removes it from any text', () => {
    const password = secretPassword();
    const cases: [string, string][] = [
      [`postgres://aigov:${password}@db:5432/aigov`, 'postgres://aigov:***@db:5432/aigov'],
      [`postgresql://aigov:${encodeURIComponent(`${password}/@:%`)}@db/aigov?sslmode=require`, 'postgresql://aigov:***@db/aigov?sslmode=require'],
      [`postgres://aigov@db/aigov?password=${password}&application_name=x`, 'postgres://aigov@db/aigov?password=***&application_name=x'],
      [`postgres://aigov@db/aigov?PassWord=${password}`, 'postgres://aigov@db/aigov?PassWord=***'],
      [`postgres://db/aigov?sslpassword=${password}&sslkey=/k`, 'postgres://db/aigov?sslpassword=***&sslkey=***'],
      ['not a url at all', '(a PostgreSQL URL that cannot be parsed)'],
    ];
    for (const [url, shown] of cases) {
      assert.equal(redactDatabaseUrl(url), shown);
      assert.ok(!redactDatabaseUrl(url).includes(password));
    }
    const url = `postgres://aigov:${encodeURIComponent(`${password}#`)}@db/aigov`;
    const text = `connect failed for ${url} with password ${password}# and ${encodeURIComponent(`${password}#`)}`;
    const scrubbed = scrubDatabaseSecrets(text, url);
    assert.ok(!scrubbed.includes(password), scrubbed);
  });
});
