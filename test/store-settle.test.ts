/**
 * SQLite's side of settling calls cut by a crash (the owner lock files, the audit chain verified
 * after settlement); the behaviour every driver shares is in test/support/store-contract.ts.
 * Calls cut by a crash are settled when the store next opens — and only those: several processes
 * may share one database (two gateways for approvals, a restart's overlap), so a call is settled
 * only once the process that owns it is gone (call-owners.ts). Real processes, killed with
 * SIGKILL; real SQLite in temp dirs; the audit chain verified after each settlement.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { callRequest, callResult, query, useStoreOpener, useTempDirs } from './support/store-fixtures.ts';

const { freshDir } = useTempDirs('aigov-settle-');
const open = useStoreOpener();
const STORE_URL = pathToFileURL(path.resolve('src/store/sqlite/sqlite-store.ts')).href;
const T0 = 1_700_000_000_000;
/** Where a store keeps its owner lock files (call-owners.ts), spelled out: the layout is part of what is tested. */
const ownersDirectory = (file: string): string => `${file}-owners`;

/**
 * A process that records calls `a` (events at 5 and 40 ms), `b` (no events) and `c` (finished),
 * makes them durable, prints "ready" and waits to be killed.
 */
const recorders = new Set<() => void>();
after(() => {
  for (const kill of recorders) kill(); // a failed test must not leave its recorder running
});

function startRecorder(file: string): { ready: Promise<void>; kill: () => Promise<NodeJS.Signals | null> } {
  const script = path.join(path.dirname(file), `recorder-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(script, `
    import { openSqliteStore } from ${JSON.stringify(STORE_URL)};
    const store = await openSqliteStore({ path: ${JSON.stringify(file)} });
    for (const id of ['a', 'b', 'c']) await store.recordRequest({ ...${JSON.stringify(callRequest('x', { startedAt: T0 }))}, callId: id });
    store.appendStreamEvents('a', [{ offsetMs: 5, raw: 'data: one\\n\\n' }, { offsetMs: 40, raw: 'data: two\\n\\n' }]);
    await store.finishCall(${JSON.stringify(callResult('c'))});
    await store.flush();
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const killNow = (): void => void child.kill('SIGKILL');
  recorders.add(killNow);
  void exited.then(() => recorders.delete(killNow));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(); });
    child.once('exit', () => reject(new Error(`the recorder ended early: ${stderr}`)));
  });
  return {
    ready,
    kill: async () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

describe('settling calls cut by a crash', () => {
  test('a killed process: its pending calls are marked aborted at its last event; a live one is left alone', async () => {
    const file = path.join(freshDir(), 'aigov.db');
    const recorder = startRecorder(file);
    await recorder.ready;

    // While the recorder lives, another process (this one) opening the file settles nothing.
    const settledWhileAlive: number[] = [];
    const beside = await open({ path: file, onSettled: (n) => settledWhileAlive.push(n) });
    assert.equal((await beside.getCall('a'))?.status, 'pending');
    assert.equal((await beside.getCall('b'))?.status, 'pending');
    assert.deepEqual(settledWhileAlive, []);
    await beside.close();

    assert.equal(await recorder.kill(), 'SIGKILL');

    const owners = fs.existsSync(ownersDirectory(file)) ? fs.readdirSync(ownersDirectory(file)).filter((f) => f.endsWith('.lock')) : [];
    const settled: number[] = [];
    const store = await open({ path: file, onSettled: (n) => settled.push(n) });
    const a = await store.getCall('a');
    assert.equal(a?.status, 'aborted');
    assert.equal(a?.errorCode, 'AIGOV_E_GATEWAY_STOPPED');
    assert.equal(a?.endedAt, T0 + 40, 'ended at the time of its last recorded event');
    assert.equal(a?.latencyMs, 40);
    assert.deepEqual((await store.getStreamEvents('a')).map((e) => e.raw), ['data: one\n\n', 'data: two\n\n'], 'its events are kept');
    const b = await store.getCall('b');
    assert.equal(b?.status, 'aborted');
    assert.equal(b?.endedAt, T0, 'no event: ended at its start');
    assert.equal(b?.errorMessage, 'the gateway stopped before the call ended; the answer may have been cut off at the client');
    const c = await store.getCall('c');
    assert.equal(c?.status, 'completed', 'a finished call is untouched');
    assert.equal(c?.endedAt, callResult('c').endedAt);
    assert.deepEqual(settled, [2], 'the count is reported once');
    assert.equal(store.stats().settledAtOpen, 2);
    // The dead process left its lock file (a clean close removes it); settling removed it.
    assert.equal(owners.length, 1);
    assert.deepEqual(fs.readdirSync(ownersDirectory(file)).filter((f) => owners.includes(f)), []);
    await store.close();
    assert.deepEqual(fs.readdirSync(ownersDirectory(file)), [], 'a clean close removes its own lock file');

    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null, JSON.stringify(report.problem));
    // 3 requests, 1 events batch, 1 result (c), 2 settlements
    assert.equal(report.entries, 7);
    assert.deepEqual(query(file, "SELECT ref FROM audit_log WHERE kind = 'result' ORDER BY seq").map((r) => r['ref']), ['c', 'a', 'b']);

    // Settled once: opening again changes nothing.
    const again = await open({ path: file });
    assert.equal(again.stats().settledAtOpen, 0);
    await again.close();
    assert.equal(verifyAuditDatabase(file).entries, 7);
  });

  test('the owner lock cannot be created: the store does not open (fail closed)', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'aigov.db');
    fs.writeFileSync(ownersDirectory(file), 'not a directory');
    await assert.rejects(open({ path: file }), (err: Error) => {
      assert.match(err.message, /Cannot open the recording store .*owner lock/);
      return true;
    });
  });
});
