/**
 * SQLite internals of the recording store: migrations and user_version, open failures, a file
 * deleted under it, the writer, reader and checkpointer threads, the WAL bounds, the dist layout.
 * What every driver must do is in test/support/store-contract.ts (store-contract-sqlite.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { AigovError } from '../src/core/errors.ts';
import { openRecordingStore } from '../src/store/open-store.ts';
import type { CallRequestRecord, CallResultRecord, StreamEventRecord } from '../src/store/recording-store.ts';
import { LATEST_SCHEMA_VERSION, migrateDatabase, type Migration } from '../src/store/sqlite/migrations.ts';
import { openSqliteStore, StoreWriteError } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult, principal, SECRET_PROMPT as SECRET, useStoreOpener, useTempDirs } from './support/store-fixtures.ts';

const { freshDir } = useTempDirs('aigov-store-');
const open = useStoreOpener();

function request(callId: string, overrides: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return callRequest(callId, { principal: principal({ groups: ['eng', 'ml'] }), ...overrides });
}

function result(callId: string, overrides: Partial<CallResultRecord> = {}): CallResultRecord {
  return callResult(callId, {
    decisions: [{ stage: 'response', action: 'mask', ruleId: 'pii-email', reason: 'email in answer', mode: 'enforce' }],
    ...overrides,
  });
}

function events(callId: string, from: number, count: number): StreamEventRecord[] {
  return Array.from({ length: count }, (_, i) => ({ offsetMs: (from + i) * 10, raw: `data: {"call":"${callId}","n":${from + i}}\n\n` }));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function userVersion(file: string): number {
  const db = new DatabaseSync(file);
  try {
    return Number(db.prepare('PRAGMA user_version').get()?.['user_version']);
  } finally {
    db.close();
  }
}

describe('sqlite recording store', () => {
  test('close and reopen: migrations are not re-applied (the rest of the contract: store-contract-sqlite.test.ts)', async () => {
    const file = path.join(freshDir(), 'nested', 'dir', 'aigov.db'); // parent dirs are created
    const first = await openSqliteStore({ path: file, batchIntervalMs: 60_000 });
    await first.recordRequest(request('c1'));
    first.appendStreamEvents('c1', events('c1', 0, 4));
    void first.finishCall(result('c1'));
    await first.close();
    await first.close(); // idempotent
    assert.equal(userVersion(file), LATEST_SCHEMA_VERSION);

    for (let round = 0; round < 2; round++) {
      const again = await open({ path: file });
      assert.equal((await again.getCall('c1'))?.status, 'completed');
      assert.deepEqual(await again.getStreamEvents('c1'), events('c1', 0, 4));
      assert.equal((await again.listSessions())[0]?.callCount, 1);
      await again.close();
      assert.equal(userVersion(file), LATEST_SCHEMA_VERSION);
    }
  });

  test('a killed process keeps every recorded request', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'aigov.db');
    const script = path.join(dir, 'crash.mjs');
    const storeUrl = pathToFileURL(path.resolve('src/store/sqlite/sqlite-store.ts')).href;
    fs.writeFileSync(script, `
      import { openSqliteStore } from ${JSON.stringify(storeUrl)};
      const store = await openSqliteStore({ path: ${JSON.stringify(file)}, batchIntervalMs: 60000 });
      const base = ${JSON.stringify(request('x'))};
      for (let i = 0; i < 20; i++) await store.recordRequest({ ...base, callId: 'crash-' + i });
      store.appendStreamEvents('crash-0', [{ offsetMs: 1, raw: 'data: lost\\n\\n' }]);
      process.kill(process.pid, 'SIGKILL');
    `);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    assert.equal(signal, 'SIGKILL', stderr);
    assert.ok(fs.existsSync(`${file}-wal`), 'the WAL was left behind, as after a crash');

    const store = await open({ path: file, onSettled: () => {} });
    const calls = await store.listCalls('sess-1');
    assert.equal(calls.length, 20);
    // the dead process's calls are settled on open (store-settle.test.ts has the details)
    assert.ok(calls.every((c) => c.status === 'aborted' && c.errorCode === 'AIGOV_E_GATEWAY_STOPPED'));
    assert.equal(store.stats().settledAtOpen, 20);
    // queued (not yet flushed) events die with the process; its calls were never finished either
    assert.deepEqual(await store.getStreamEvents('crash-0'), []);
  });

  describe('migrations', () => {
    test('refuses a database written by a newer aigov', async () => {
      const file = path.join(freshDir(), 'aigov.db');
      await (await openSqliteStore({ path: file })).close();
      const db = new DatabaseSync(file);
      db.exec(`PRAGMA user_version = ${LATEST_SCHEMA_VERSION + 1}`);
      db.close();
      const err = await openSqliteStore({ path: file }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof AigovError);
      assert.equal(err.code, 'AIGOV_E_STORE_OPEN_FAILED');
      assert.match(err.message, new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, written by a newer aigov`));
      assert.equal(userVersion(file), LATEST_SCHEMA_VERSION + 1, 'left untouched');
    });

    test('a failing migration leaves the previous version intact; a later run applies the rest', () => {
      const db = new DatabaseSync(':memory:');
      try {
        const good: Migration[] = [
          { version: 1, name: 'one', sql: 'CREATE TABLE a (x)' },
          { version: 2, name: 'two', sql: 'CREATE TABLE b (x)' },
        ];
        assert.deepEqual(migrateDatabase(db, good.slice(0, 1)), [1]);
        const broken: Migration[] = [...good.slice(0, 1), { version: 2, name: 'two', sql: 'CREATE TABLE b (x); CREATE TABLE a (y)' }];
        assert.throws(() => migrateDatabase(db, broken), /table a already exists/);
        assert.equal(Number(db.prepare('PRAGMA user_version').get()?.['user_version']), 1);
        assert.equal(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'b'").get(), undefined, 'rolled back');
        assert.deepEqual(migrateDatabase(db, good), [2]);
        assert.deepEqual(migrateDatabase(db, good), [], 'idempotent');
        assert.throws(() => migrateDatabase(db, [{ version: 2, name: 'gap', sql: '' }]), /not contiguous/);
      } finally {
        db.close();
      }
    });

    test("refuses another application's SQLite database", async () => {
      const file = path.join(freshDir(), 'theirs.db');
      const db = new DatabaseSync(file);
      db.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY)');
      db.close();
      await assert.rejects(openSqliteStore({ path: file }), (err: unknown) =>
        err instanceof AigovError && err.code === 'AIGOV_E_STORE_OPEN_FAILED' && /another application/.test(err.message));
    });
  });

  describe('open failures', () => {
    test('a path whose parent is a regular file', async () => {
      const dir = freshDir();
      fs.writeFileSync(path.join(dir, 'file'), 'x');
      const location = path.join(dir, 'file', 'sub', 'aigov.db');
      await assert.rejects(openSqliteStore({ path: location }), (err: unknown) => {
        assert.ok(err instanceof AigovError);
        assert.equal(err.code, 'AIGOV_E_STORE_OPEN_FAILED');
        assert.deepEqual(err.params, { location, reason: 'cannot create its directory (ENOTDIR)' });
        return true;
      });
    });

    test('a file that is not a database', async () => {
      const file = path.join(freshDir(), 'aigov.db');
      fs.writeFileSync(file, Buffer.alloc(8192, 0x5a));
      await assert.rejects(openSqliteStore({ path: file }), (err: unknown) =>
        err instanceof AigovError && err.code === 'AIGOV_E_STORE_OPEN_FAILED' && /file is not a database/.test(String(err.params['reason'])));
    });

    test('a directory where the file should be', async () => {
      const dir = freshDir();
      fs.mkdirSync(path.join(dir, 'aigov.db'));
      await assert.rejects(openSqliteStore({ path: path.join(dir, 'aigov.db') }), (err: unknown) =>
        err instanceof AigovError && err.code === 'AIGOV_E_STORE_OPEN_FAILED');
    });
  });

  describe('dead or blocked store', () => {
    test('database directory deleted under the gateway: recordRequest rejects, health is not ok', async () => {
      const dir = freshDir();
      const file = path.join(dir, 'data', 'aigov.db');
      const errors: string[] = [];
      const store = await open({ path: file, batchIntervalMs: 60_000, onWriteError: (e) => errors.push(e.message) });
      await store.recordRequest(request('before'));
      store.appendStreamEvents('before', events('before', 0, 2));
      assert.equal((await store.health()).ok, true);

      fs.rmSync(path.join(dir, 'data'), { recursive: true });

      const err = await store.recordRequest(request('after')).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof StoreWriteError);
      assert.match(err.message, /database file was deleted/);
      assert.ok(!err.message.includes(SECRET));
      const health = await store.health();
      assert.equal(health.ok, false);
      assert.match(String(health.detail), /deleted/);

      await store.flush(); // the queued events cannot be written anywhere that lasts
      assert.equal(store.stats().droppedRows, 2);
      assert.ok(store.stats().writeErrors >= 2);
      assert.ok(errors.some((m) => /will retry/.test(m)) && errors.some((m) => /dropped 2 of 2/.test(m)), errors.join('\n'));
      assert.ok(errors.every((m) => !m.includes(SECRET) && !m.includes('data: {')));
    });

  });

  describe('writer and checkpointer threads', () => {
    test('a record that cannot be passed to the writer thread is refused on its own', async () => {
      const store = await open({ path: path.join(freshDir(), 'aigov.db') });
      const poisoned = { ...request('p'), principal: { ...request('p').principal, groups: [SECRET, (() => SECRET) as unknown as string] } };
      const err = await store.recordRequest(poisoned).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof StoreWriteError);
      assert.match(err.message, /cannot be passed to the writer thread \(DataCloneError\)/);
      assert.ok(!err.message.includes(SECRET));
      await store.recordRequest(request('ok'));
      assert.equal(await store.getCall('p'), null);
      assert.equal((await store.getCall('ok'))?.callId, 'ok');
      assert.deepEqual(await store.health(), { ok: true, writeErrors: 0, detail: null });
      assert.equal(store.stats().recordFailures, 1);
    });

    test('a writer thread that dies (over its heap limit) fails closed: requests rejected, health not ok', async () => {
      const reports: string[] = [];
      // A backlog that outgrows the writer's heap limit: V8 ends the thread (a real failure path).
      const store = await open({
        path: path.join(freshDir(), 'aigov.db'),
        workerResourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 },
        onWriteError: (e) => reports.push(e.message),
      });
      await store.recordRequest(request('before'));
      // 64 MiB of stream events in one hand-over; the record is posted after them, so it is
      // still waiting in the writer's queue when the thread dies.
      const big = `data: ${SECRET} ${'x'.repeat(1024 * 1024)}\n\n`;
      store.appendStreamEvents('before', Array.from({ length: 64 }, (_, n) => ({ offsetMs: n, raw: big })));
      const flushed = store.flush();
      const during = store.recordRequest(request('during'));
      const err = await during.then(() => null, (e: unknown) => e);
      assert.ok(err instanceof StoreWriteError, String(err));
      assert.match(err.message, /writer thread stopped \(ERR_WORKER_OUT_OF_MEMORY\)/);
      await flushed; // settles (what it could not write is counted and reported), never hangs

      const later = await store.recordRequest(request('after')).then(() => null, (e: unknown) => e);
      assert.ok(later instanceof StoreWriteError);
      assert.match(later.message, /writer thread stopped/);
      const health = await store.health();
      assert.equal(health.ok, false);
      assert.match(String(health.detail), /writer thread stopped \(ERR_WORKER_OUT_OF_MEMORY\)/);
      await assert.rejects(store.getCall('before'), /writer thread stopped/);
      assert.ok(store.stats().droppedRows > 0);
      assert.equal(store.stats().queuedRows, 0);
      assert.ok(reports.some((m) => /writer thread stopped .*queued rows were lost/.test(m)), reports.join('\n'));
      assert.ok(reports.every((m) => !m.includes(SECRET)));
      await store.close();

      const reopened = await open({ path: store.location, onSettled: () => {} });
      // what was committed before is there; its writer is gone, so the call is settled
      const before = await reopened.getCall('before');
      assert.equal(before?.status, 'aborted', 'what was committed before is there');
      assert.equal(before?.errorCode, 'AIGOV_E_GATEWAY_STOPPED');
      assert.equal(await reopened.getCall('during'), null);
    });

    test('sustained writes: the checkpointer keeps the WAL bounded, then truncates it when idle', async () => {
      const file = path.join(freshDir(), 'aigov.db');
      const store = await open({ path: file, checkpointBytes: 128 * 1024, walLimitBytes: 1024 * 1024, idleCheckpointMs: 100 });
      const walSize = (): number => fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
      const body = 'y'.repeat(2048);
      let maxWal = 0;
      const total = 3000;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < total) {
          const i = next++;
          await store.recordRequest(request(`w${i}`, { sessionId: `s${i % 16}`, requestBody: body }));
          if (i % 50 === 0) maxWal = Math.max(maxWal, walSize());
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      // The checkpointer runs on its own thread: on a loaded machine it may still be catching up.
      for (let i = 0; i < 100 && fs.statSync(file).size <= total * 2048; i++) await new Promise((r) => setTimeout(r, 50));
      const dbSize = fs.statSync(file).size;
      assert.ok(dbSize > total * 2048, `checkpoints moved the pages into the database file (${dbSize} bytes)`);
      assert.ok(store.stats().checkpoints > 0);
      // ~10 MB went through the WAL; restarts keep it near walLimitBytes (plus what lands while catching up)
      // (With the audit chain each record carries an audit row too; on a loaded 2-core machine the
      // checkpointer thread lags by a few MB. Unbounded, the WAL would hold everything: > dbSize.)
      assert.ok(maxWal < Math.min(8 * 1024 * 1024, dbSize), `WAL grew to ${maxWal} bytes (database ${dbSize} bytes)`);
      // (the file shrinks inside the checkpoint call; the frame count is published right after it)
      await waitFor(() => walSize() === 0 && store.stats().walFrames === 0, 'the idle checkpointer to truncate the WAL');
      const other = new DatabaseSync(file, { readOnly: true });
      try {
        assert.equal(Number(other.prepare('SELECT count(*) AS n FROM calls').get()?.['n']), total);
      } finally {
        other.close();
      }
    });

    test('the writer bounds the WAL by itself: with the checkpointer never woken, restarts keep it near walLimitBytes', async () => {
      // What a starved checkpointer thread looks like on a loaded machine, made certain: it is
      // never kicked (checkpointBytes out of reach) and never idle long enough to run.
      const file = path.join(freshDir(), 'aigov.db');
      const limit = 1024 * 1024;
      const store = await open({ path: file, checkpointBytes: 2 ** 40, walLimitBytes: limit, idleCheckpointMs: 600_000 });
      const walSize = (): number => fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
      const body = 'z'.repeat(2048);
      let maxWal = 0;
      for (let i = 0; i < 2000; i++) {
        await store.recordRequest(request(`x${i}`, { sessionId: `s${i % 16}`, requestBody: body }));
        if (i % 25 === 0) maxWal = Math.max(maxWal, walSize());
      }
      // ~6 MB of pages went through the WAL. The writer's count is of text, the WAL holds whole
      // pages (and each record's audit row): a few times the limit, never everything.
      assert.ok(maxWal < 4 * limit, `WAL grew to ${maxWal} bytes (limit ${limit})`);
      assert.equal(store.stats().checkpoints, 0, 'the checkpointer thread did not run');
      assert.ok(fs.statSync(file).size > 2000 * 2048 - 4 * limit, 'the writer moved the pages into the database file');
    });

    test('built to .js (dist layout), the store finds and starts its worker files', async () => {
      // What `npm run build` emits for these files: tsc's transpilation, with `.ts` import
      // specifiers rewritten to `.js` (URL strings are not rewritten: the store picks the extension).
      const ts = (await import('typescript')).default;
      const out = freshDir();
      for (const rel of ['core/errors.ts', 'config/private-files.ts', 'core/events.ts', 'core/audit/chain.ts', 'core/recording/request-chunks.ts', 'core/usage/calendar-days.ts', ...fs.readdirSync('src/store').map((f) => `store/${f}`), ...fs.readdirSync('src/store/sqlite').map((f) => `store/sqlite/${f}`)]) {
        if (!rel.endsWith('.ts')) continue;
        const { outputText } = ts.transpileModule(fs.readFileSync(path.join('src', rel), 'utf8'), {
          fileName: rel,
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true, rewriteRelativeImportExtensions: true },
        });
        const target = path.join(out, rel.replace(/\.ts$/, '.js'));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, outputText);
      }
      fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');
      const built = (await import(pathToFileURL(path.join(out, 'store/sqlite/sqlite-store.js')).href)) as { openSqliteStore: typeof openSqliteStore };
      const store = await built.openSqliteStore({ path: path.join(out, 'aigov.db') });
      try {
        await store.recordRequest(request('built'));
        assert.equal((await store.getCall('built'))?.callId, 'built');
      } finally {
        await store.close();
      }
    });

    test('an unclosed store does not keep the process alive, and its queued rows are written first', async () => {
      const dir = freshDir();
      const file = path.join(dir, 'aigov.db');
      const script = path.join(dir, 'forget.mjs');
      const storeUrl = pathToFileURL(path.resolve('src/store/sqlite/sqlite-store.ts')).href;
      fs.writeFileSync(script, `
        import { openSqliteStore } from ${JSON.stringify(storeUrl)};
        const store = await openSqliteStore({ path: ${JSON.stringify(file)}, batchIntervalMs: 200 });
        await store.recordRequest(${JSON.stringify(request('kept'))});
        store.appendStreamEvents('kept', [{ offsetMs: 1, raw: 'data: kept\\n\\n' }]);
        store.finishCall(${JSON.stringify(result('kept'))});
      `);
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      clearTimeout(timer);
      assert.equal(code, 0, stderr);
      const store = await open({ path: file });
      assert.equal((await store.getCall('kept'))?.status, 'completed');
      assert.deepEqual(await store.getStreamEvents('kept'), [{ offsetMs: 1, raw: 'data: kept\n\n' }]);
    });
  });

  test('openRecordingStore resolves a relative path against the config directory', async () => {
    const dir = freshDir();
    const errors: Error[] = [];
    const store = await openRecordingStore({ driver: 'sqlite', path: 'state/aigov.db' }, dir, { onWriteError: (e) => errors.push(e) });
    try {
      await store.recordRequest(request('c1'));
      assert.ok(fs.statSync(path.join(dir, 'state', 'aigov.db')).isFile());
      assert.equal((await store.getCall('c1'))?.callId, 'c1');
    } finally {
      await store.close();
    }
    const abs = path.join(freshDir(), 'abs.db');
    const second = await openRecordingStore({ driver: 'sqlite', path: abs }, dir);
    await second.close();
    assert.ok(fs.existsSync(abs));
    assert.deepEqual(errors, []);
  });
});
