/**
 * Leases on PostgreSQL: a replica that dies while the others run has its calls settled by a
 * survivor within seconds, not at the next start.
 * - Through real gateways: replica C (its own process, test/support/gateway-child.ts) is killed
 *   with SIGKILL in the middle of a stream; a survivor marks that call aborted
 *   (AIGOV_E_GATEWAY_STOPPED, at its last recorded event, events kept) within a few seconds,
 *   while a stream on a live replica, pending through many sweeps, is never touched and completes;
 *   the audit chain is whole.
 * - A frozen replica (SIGSTOP: its lock still held, its lease no longer renewed) is evicted once
 *   its lease expires and its call settled; woken up (SIGCONT), its late finish is refused (no
 *   result written twice) and it records again once it holds its lock again.
 * - A replica whose lock connection is reconnecting (cut, and kept from coming back through a TCP
 *   proxy, while its pool still renews its lease): a replica that STARTS meanwhile does not settle
 *   its calls (its lock is free, but its lease says it lives), nor do that replica's sweeps; it
 *   gets its lock back and finishes its call. Cut off entirely, it is settled.
 * - Everyone's connections cut at once (the database restarting): a replica that is back first
 *   does not settle one that is back a moment later, whose lease looks stale only because nobody
 *   could renew a lease meanwhile.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ownerLockKey } from '../src/store/postgres/owner-lock.ts';
import { openPostgresStore, type PostgresRecordingStore } from '../src/store/postgres/postgres-store.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { pgQuery, usePgDatabases } from './support/pg-databases.ts';
import type { Transcript } from './support/replay-upstream.ts';
import { callRequest, callResult } from './support/store-fixtures.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';

const freshPg = usePgDatabases();
const CHILD = path.resolve('test/support/gateway-child.ts');
const STORE_URL = pathToFileURL(path.resolve('src/store/postgres/postgres-store.ts')).href;
const FIXTURES_URL = pathToFileURL(path.resolve('test/support/store-fixtures.ts')).href;
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL'); // a failed test must not leave one running
});

/** A streamed chat answer of `pieces` SSE events. */
function slowStream(pieces: number): Transcript {
  const event = (delta: object, finish: string | null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-lease', object: 'chat.completion.chunk', created: 1760433151, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return {
    description: 'a long stream built by the test',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    body: [event({ role: 'assistant', content: '' }, null), ...Array.from({ length: pieces }, (_, i) => event({ content: `w${i} ` }, null)), event({}, 'stop'), 'data: [DONE]\n\n'].join(''),
  };
}

/** Starts a streamed call and resolves once its first bytes arrived (it is recorded and streaming). */
async function startStream(url: string, token: string): Promise<{ callId: string; rest: Promise<string> }> {
  const res = await fetch(`${url}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'talk slowly' }] }),
  });
  assert.equal(res.status, 200);
  const callId = res.headers.get('x-aigov-call-id');
  assert.ok(callId);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('w0')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream ended before its first words');
    text += decoder.decode(value, { stream: true });
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { callId, rest };
}

async function callRow(url: string, id: string): Promise<Record<string, unknown>> {
  const rows = await pgQuery(url, 'SELECT status, error_code, started_at, ended_at, latency_ms, http_status FROM calls WHERE id = $1', [id]);
  assert.equal(rows.length, 1);
  return rows[0]!;
}

describe('a replica killed in the middle of a stream', { timeout: 120_000 }, () => {
  let url = '';
  let survivor: Harness;
  let live: Harness;

  before(async () => {
    url = (await freshPg()).url;
    survivor = await startHarness({ databaseUrl: url });
    live = await startHarness({ databaseUrl: url, replicaOf: survivor });
    // ~8 s per stream: far longer than settling a dead replica takes.
    survivor.upstream.route('POST', '/v1/chat/completions', () => slowStream(24), { chunking: { size: 180 }, chunkDelayMs: 300 });
  });
  after(async () => {
    await live?.close();
    await survivor?.close();
  });

  it('a survivor marks its call aborted within seconds; the live replica\'s stream is never touched', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-lease-'));
    const proc = spawn(process.execPath, [CHILD, survivor.upstream.url, path.join(dir, 'aigov.db'), url], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
    try {
      const ready = await new Promise<{ url: string; token: string }>((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { url: string; token: string });
        });
        proc.once('exit', () => reject(new Error(`the gateway process ended before it was ready: ${stderr}`)));
      });

      const doomed = await startStream(ready.url, ready.token);
      const lasting = await startStream(live.url, live.token);
      assert.equal((await callRow(url, doomed.callId))['status'], 'pending');

      const killedAt = Date.now();
      proc.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
      let status = 'pending';
      while (status === 'pending') {
        assert.ok(Date.now() - killedAt < 8000, 'the dead replica\'s call is still pending 8 s after the kill');
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = String((await callRow(url, doomed.callId))['status']);
      }
      const settledAfterMs = Date.now() - killedAt;
      process.stdout.write(`# settled ${settledAfterMs} ms after the kill\n`);

      const dead = await callRow(url, doomed.callId);
      assert.equal(dead['status'], 'aborted');
      assert.equal(dead['error_code'], 'AIGOV_E_GATEWAY_STOPPED');
      const events = await pgQuery(url, 'SELECT max(offset_ms) AS last, count(*) AS n FROM stream_events WHERE call_id = $1', [doomed.callId]);
      assert.ok(Number(events[0]!['n']) >= 1, 'its recorded events are kept');
      assert.equal(Number(dead['ended_at']), Number(dead['started_at']) + Number(events[0]!['last']), 'ended at its last recorded event');

      // The live replica's call: still pending after the settlement and several sweeps, then completed.
      assert.equal((await callRow(url, lasting.callId))['status'], 'pending');
      const text = await lasting.rest;
      assert.match(text, /w23 [\s\S]*data: \[DONE\]/);
      await live.gateway.store.flush();
      const done = await callRow(url, lasting.callId);
      assert.deepEqual([done['status'], done['http_status'], done['error_code']], ['completed', 200, null]);
      assert.ok(Date.now() - killedAt - settledAfterMs > 1000, 'the live call stayed pending through sweeps after the settlement');

      const stats = [survivor, live].map((h) => (h.gateway.store as PostgresRecordingStore).stats());
      assert.equal(stats.reduce((n, s) => n + s.settledBySweep, 0), 1, 'settled once, by one replica');
      await checkPgAuditChain(url);
    } finally {
      proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a frozen replica', { timeout: 60_000 }, () => {
  it('is evicted when its lease expires and its call settled; woken up, its late finish is refused and it records again', async () => {
    const url = (await freshPg()).url;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-frozen-'));
    const script = path.join(dir, 'frozen.mjs');
    // Records call `frozen`, then on SIGUSR2 tries to finish it and to record call `after`.
    fs.writeFileSync(script, `
      import { openPostgresStore } from ${JSON.stringify(STORE_URL)};
      import { callRequest, callResult } from ${JSON.stringify(FIXTURES_URL)};
      const store = await openPostgresStore({ url: ${JSON.stringify(url)}, poolSize: 2, leases: { intervalMs: 200, quietMs: 600, leaseMs: 1500 } });
      await store.recordRequest(callRequest('frozen'));
      store.appendStreamEvents('frozen', [{ offsetMs: 30, raw: 'data: one\\n\\n' }]);
      await store.flush();
      process.on('SIGUSR2', async () => {
        const finish = await store.finishCall(callResult('frozen')).then(() => 'finished', (e) => 'refused: ' + e.message);
        let recorded = 'never';
        for (let i = 0; i < 100 && recorded !== 'recorded'; i++) {
          recorded = await store.recordRequest(callRequest('after')).then(() => 'recorded', (e) => e.message);
          if (recorded !== 'recorded') await new Promise((r) => setTimeout(r, 100));
        }
        process.stdout.write(JSON.stringify({ finish, recorded }) + '\\n');
      });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `);
    const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    let out = '';
    const nextLine = (): Promise<string> => new Promise((resolve, reject) => {
      const check = (): void => {
        const i = out.indexOf('\n');
        if (i < 0) return;
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        proc.stdout.off('data', onData);
        resolve(line);
      };
      const onData = (chunk: Buffer): void => { out += chunk.toString(); check(); };
      proc.stdout.on('data', onData);
      proc.once('exit', () => reject(new Error(`the frozen replica ended: ${stderr}`)));
      check();
    });
    let survivor: PostgresRecordingStore | null = null;
    try {
      assert.equal(await nextLine(), 'ready');
      survivor = await openPostgresStore({ url, poolSize: 2, leases: { intervalMs: 200, quietMs: 600, leaseMs: 1500 }, onWriteError: () => {}, onSettled: () => {} });
      // Alive: several sweeps go by and its call stays pending.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal((await survivor.getCall('frozen'))?.status, 'pending');

      const frozenAt = Date.now();
      proc.kill('SIGSTOP');
      for (;;) {
        assert.ok(Date.now() - frozenAt < 6000, 'the frozen replica\'s call is still pending 6 s after its lease stopped');
        if ((await survivor.getCall('frozen'))?.status === 'aborted') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(Date.now() - frozenAt >= 1500, 'not before its lease expired (its lock was held all along)');
      assert.ok(survivor.stats().evicted >= 1);
      assert.equal((await survivor.getCall('frozen'))?.errorCode, 'AIGOV_E_GATEWAY_STOPPED');

      proc.kill('SIGCONT');
      proc.kill('SIGUSR2');
      const outcome = JSON.parse(await nextLine()) as { finish: string; recorded: string };
      assert.match(outcome.finish, /^refused: .*already has a result/);
      assert.equal(outcome.recorded, 'recorded');
      const frozen = await survivor.getCall('frozen');
      assert.equal(frozen?.status, 'aborted', 'the settlement stands; nothing written twice');
      assert.equal((await survivor.getCall('after'))?.status, 'pending', 'recorded under its owner again, which is alive');
      // Awake and renewing its lease: its new call is not settled.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal((await survivor.getCall('after'))?.status, 'pending');
      await checkPgAuditChain(url);
    } finally {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await survivor?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `url` with its host and port replaced by the proxy's. */
function through(proxy: TcpProxy, url: string): string {
  const u = new URL(url);
  u.host = `127.0.0.1:${proxy.port}`;
  return u.toString();
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const LEASES = { intervalMs: 200, quietMs: 800, leaseMs: 4000 };

describe('a replica whose owner-lock connection is reconnecting', { timeout: 60_000 }, () => {
  it('is not settled by a replica that starts meanwhile, nor by its sweeps; it gets its lock back and finishes its call; cut off entirely, it is settled', async () => {
    const url = (await freshPg()).url;
    const proxy = await startTcpProxy(Number(new URL(url).port || 5432));
    const errors: string[] = [];
    const a = await openPostgresStore({ url: through(proxy, url), poolSize: 2, leases: LEASES, onWriteError: (e) => void errors.push(e.message), onSettled: () => {} });
    let b: PostgresRecordingStore | null = null;
    try {
      await a.recordRequest(callRequest('streaming'));
      a.appendStreamEvents('streaming', [{ offsetMs: 10, raw: 'data: one\n\n' }]);
      await a.flush();

      // A's lock connection is cut and cannot come back for now; its pool keeps its connections.
      proxy.setTarget(null);
      const [row] = await pgQuery(url, 'SELECT lock_backend FROM owners WHERE id = $1', [a.ownerId]);
      assert.deepEqual(await pgQuery(url, 'SELECT pg_terminate_backend($1) AS ended', [row!['lock_backend']]), [{ ended: true }]);
      await waitUntil(async () => (await a.health()).detail?.includes('owner lock') === true, "A noticing it lost its lock");
      const key = BigInt.asUintN(64, BigInt(ownerLockKey(a.ownerId)!));
      const holders = await pgQuery(url, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = $1::bigint::oid AND objid = $2::bigint::oid
                                          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, [(key >> 32n).toString(), (key & 0xffffffffn).toString()]);
      assert.deepEqual(holders, [], "A's lock is free");

      // B starts now: A's lock is free, but A's lease is renewed (over its pool): A lives.
      const settled: number[] = [];
      b = await openPostgresStore({ url, poolSize: 2, leases: LEASES, onWriteError: () => {}, onSettled: (n) => settled.push(n) });
      assert.equal(b.stats().settledAtOpen, 0, 'B settled a live replica\'s call at open');
      assert.equal((await b.getCall('streaming'))?.status, 'pending');
      // Nor do B's sweeps, however long A's lock stays away.
      await new Promise((resolve) => setTimeout(resolve, 3 * LEASES.quietMs));
      assert.equal((await b.getCall('streaming'))?.status, 'pending');
      assert.deepEqual(settled, []);

      // A's connections may come back: it takes its lock again and finishes its call.
      proxy.setTarget(Number(new URL(url).port || 5432));
      await waitUntil(async () => (await a.health()).ok, 'A holding its lock again');
      await a.finishCall(callResult('streaming'));
      assert.equal((await b.getCall('streaming'))?.status, 'completed');

      // Cut off entirely now (lock and lease): B settles its next call within a few sweeps.
      await a.recordRequest(callRequest('cut-off'));
      await a.flush();
      proxy.setTarget(null);
      proxy.cut();
      const cutAt = Date.now();
      await waitUntil(async () => (await b!.getCall('cut-off'))?.status === 'aborted', 'B settling the call of a replica cut off');
      process.stdout.write(`# settled ${Date.now() - cutAt} ms after the replica was cut off\n`);
      assert.deepEqual(settled, [1]);
      await checkPgAuditChain(url);
    } finally {
      proxy.setTarget(null);
      proxy.cut();
      await a.close().catch(() => {});
      await b?.close();
      await proxy.close();
    }
  });
});

describe('every replica cut off at once (the database restarting)', { timeout: 60_000 }, () => {
  it('the replica back first does not settle the calls of one back a moment later: a lease is judged only over time the judge saw the database', async () => {
    const leases = { intervalMs: 200, quietMs: 1200, leaseMs: 6000 };
    const url = (await freshPg()).url;
    const pgPort = Number(new URL(url).port || 5432);
    const [pa, pb] = [await startTcpProxy(pgPort), await startTcpProxy(pgPort)];
    const settled: number[] = [];
    const a = await openPostgresStore({ url: through(pa, url), poolSize: 2, leases, onWriteError: () => {}, onSettled: () => {} });
    const b = await openPostgresStore({ url: through(pb, url), poolSize: 2, leases, onWriteError: () => {}, onSettled: (n) => settled.push(n) });
    try {
      await a.recordRequest(callRequest('through-the-outage'));
      await a.flush();
      // Every connection to the database ends and none can be opened — but B's lock connection,
      // kept so that B can probe the moment it is back (the harshest order for A).
      for (const p of [pa, pb]) p.setTarget(null);
      const [bLock] = await pgQuery(url, 'SELECT lock_backend FROM owners WHERE id = $1', [b.ownerId]);
      await pgQuery(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1', [bLock!['lock_backend']]);
      await new Promise((resolve) => setTimeout(resolve, 2 * leases.quietMs));
      // B is back first; A a moment later (less than the quiet period).
      pb.setTarget(pgPort);
      await new Promise((resolve) => setTimeout(resolve, leases.quietMs / 3));
      pa.setTarget(pgPort);
      await waitUntil(async () => (await a.health()).ok, 'A back');
      await new Promise((resolve) => setTimeout(resolve, 2 * leases.quietMs));
      assert.deepEqual(settled, [], 'B settled a replica that was only cut off as long as itself');
      assert.equal((await b.getCall('through-the-outage'))?.status, 'pending');
      await a.finishCall(callResult('through-the-outage'));
      assert.equal((await b.getCall('through-the-outage'))?.status, 'completed');
      await checkPgAuditChain(url);
    } finally {
      for (const p of [pa, pb]) p.setTarget(pgPort);
      await a.close();
      await b.close();
      await pa.close();
      await pb.close();
    }
  });
});
