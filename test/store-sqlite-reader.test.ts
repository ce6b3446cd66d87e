/**
 * The SQLite store's reader thread (reader-worker.ts): reads run on their own read-only
 * connection beside the writer, still see this process's own writes, and a dead reader fails
 * reads closed without touching recording. Real files in a temp dir, real threads.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { CallRequestRecord } from '../src/store/recording-store.ts';
import { StoreWriteError } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult as result, chatBody, SECRET_PROMPT as SECRET, useStoreOpener, useTempDirs } from './support/store-fixtures.ts';

const { freshFile } = useTempDirs('aigov-store-reader-');
const open = useStoreOpener();

function request(callId: string, sessionId = 'sess-1', model = 'gpt-4o-mini', startedAt = 1_700_000_000_000): CallRequestRecord {
  return callRequest(callId, { sessionId, model, requestBody: chatBody(SECRET, model), startedAt });
}

describe('sqlite recording store: reader thread', () => {
  test('reads see this process own writes without awaiting them (records, events, finishes)', async () => {
    // A long write-behind interval: nothing reaches the file on its own during the test.
    const store = await open({ path: freshFile(), batchIntervalMs: 60_000 });
    const recorded = store.recordRequest(request('c1')); // not awaited before the reads
    store.appendStreamEvents('c1', [{ offsetMs: 1, raw: 'data: one\n\n' }, { offsetMs: 2, raw: 'data: two\n\n' }]);
    void store.finishCall(result('c1'));
    const [call, events, page, detail] = await Promise.all([
      store.getCall('c1'),
      store.getStreamEvents('c1'),
      store.querySessions({}, { limit: 10, cursor: null }),
      store.getSessionDetail('sess-1'),
    ]);
    await recorded;
    assert.equal(call?.status, 'completed');
    assert.deepEqual(events, [{ offsetMs: 1, raw: 'data: one\n\n' }, { offsetMs: 2, raw: 'data: two\n\n' }]);
    assert.deepEqual(page.sessions.map((s) => s.sessionId), ['sess-1']);
    assert.equal(detail?.calls.length, 1);
    assert.equal(detail?.events['c1']?.length, 2);
    assert.equal(store.stats().queuedRows, 0, 'the read made the writer commit what it held');

    // A later write, still not awaited, is seen by the next read too.
    store.appendStreamEvents('c1', [{ offsetMs: 3, raw: 'data: three\n\n' }]);
    assert.equal((await store.getStreamEvents('c1')).length, 3);
  });

  test('a costly read runs beside recording: a record posted after it commits before it ends', async () => {
    const store = await open({ path: freshFile() });
    // 30k calls in 1,500 sessions: a filter no session matches visits them all (tens of ms).
    const calls = 30_000;
    const sessions = 1_500;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls) {
        const i = next++;
        await store.recordRequest(request(`seed-${i}`, `ses-${i % sessions}`, 'gpt-4o-mini', 1_700_000_000_000 + i));
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    await store.flush();
    await store.querySessions({ model: 'no-such-model' }, { limit: 50, cursor: null }); // statements prepared

    // Ten costly reads queued on the reader thread (one after another there), then a record:
    // the record must not wait behind them. One read alone (~15 ms on a loaded CI machine) is
    // too close to a durable commit to order reliably; ten are not.
    const order: string[] = [];
    const started = performance.now();
    const reads = Array.from({ length: 10 }, () => store.querySessions({ model: 'no-such-model' }, { limit: 50, cursor: null }));
    const read = Promise.all(reads).then((pages) => {
      order.push('read');
      return { pages, ms: performance.now() - started };
    });
    const record = store.recordRequest(request('during', 'sess-during')).then(() => {
      order.push('record');
      return performance.now() - started;
    });
    const [{ pages, ms: readMs }, recordMs] = await Promise.all([read, record]);
    for (const page of pages) assert.deepEqual(page.sessions, []);
    // On the writer thread (before the reader existed) the record waited for the whole read.
    assert.deepEqual(order, ['record', 'read'], `record ${recordMs.toFixed(1)} ms, reads ${readMs.toFixed(1)} ms`);
    assert.equal((await store.getCall('during'))?.callId, 'during');
  });

  test('a reader thread that dies (over its heap limit) fails reads closed; recording goes on', async () => {
    const reports: string[] = [];
    const store = await open({
      path: freshFile(),
      workerResourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 },
      onWriteError: (e) => reports.push(e.message),
    });
    await store.recordRequest(request('big'));
    // 64 MiB of stream events, handed to the writer 1 MiB at a time (the writer keeps up);
    // reading them back at once is more than the reader's heap.
    const big = `data: ${SECRET} ${'x'.repeat(1024 * 1024)}\n\n`;
    for (let n = 0; n < 64; n++) {
      store.appendStreamEvents('big', [{ offsetMs: n, raw: big }]);
      await store.flush();
    }
    assert.equal(store.stats().droppedRows, 0);
    const err = await store.getStreamEvents('big').then(() => null, (e: unknown) => e);
    assert.ok(err instanceof StoreWriteError, String(err));
    assert.match(err.message, /reader thread stopped \(ERR_WORKER_OUT_OF_MEMORY\)/);
    assert.ok(!err.message.includes(SECRET));

    // Later reads reject the same way; health says why; recording is unaffected.
    await assert.rejects(store.getCall('big'), /reader thread stopped \(ERR_WORKER_OUT_OF_MEMORY\)/);
    await assert.rejects(store.querySessions({}, { limit: 10, cursor: null }), /reader thread stopped/);
    const health = await store.health();
    assert.equal(health.ok, false);
    assert.match(String(health.detail), /reader thread stopped \(ERR_WORKER_OUT_OF_MEMORY\)/);
    await store.recordRequest(request('after'));
    void store.finishCall(result('after'));
    await store.flush();
    assert.equal(store.stats().recordFailures, 0);
    assert.equal(store.stats().droppedRows, 0);
    assert.ok(reports.some((m) => /reader thread stopped .*recording goes on/.test(m)), reports.join('\n'));
    assert.ok(reports.every((m) => !m.includes(SECRET)));
    await store.close();

    const reopened = await open({ path: store.location });
    assert.equal((await reopened.getCall('after'))?.status, 'completed', 'what was recorded after the reader died is there');
  });

  test('close(): a read in flight settles; reads after close are refused; the WAL is folded into the file', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    await store.recordRequest(request('c1'));
    const inFlight = store.getSessionDetail('sess-1');
    const closing = store.close();
    const detail = await inFlight.then(
      (d) => (d?.calls.length === 1 ? 'answered' : 'wrong answer'),
      (e: unknown) => (e instanceof StoreWriteError ? 'refused' : String(e)),
    );
    assert.ok(detail === 'answered' || detail === 'refused', detail);
    await closing;
    await assert.rejects(store.getCall('c1'), /the recording store is closed/);
    assert.equal(fs.existsSync(`${file}-wal`), false, 'the writer connection closed last and removed the WAL');
  });
});
