/**
 * Recording store write costs, on a real file in a temp dir.
 *
 *   node bench/store-writes.ts
 *
 * "on-thread" is the former store's request path, rebuilt here for comparison: one
 * `BEGIN IMMEDIATE … COMMIT` per call on the caller's thread (same SQL, same pragmas, SQLite's
 * WAL auto-checkpoint, which runs inside the commit that crosses ~1000 pages). "store" is
 * src/store/sqlite: writer thread, group commit, checkpoints on a second thread.
 *
 * 1. recordRequest latency (2 KB request body), one at a time: p50 / p99 / p99.9 / max in µs,
 *    and main-thread CPU per call (process.threadCpuUsage), for synchronous=NORMAL and FULL.
 * 2. recordRequest with 32 in flight: records/s, records per commit, and the longest
 *    event-loop stall seen meanwhile (perf_hooks.monitorEventLoopDelay) — what the gateway's
 *    other requests wait for.
 * 3. Stream events + finishes: the store's write-behind (one transaction per batch) against a
 *    naive synchronous INSERT per event (one autocommit transaction each), and the main-thread
 *    CPU it takes to hand 512 rows to the writer.
 *
 * Bounded loops; prints a markdown table and exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { CallRequestRecord, CallResultRecord, StreamEventRecord } from '../src/store/recording-store.ts';
import { migrateDatabase } from '../src/store/sqlite/migrations.ts';
import { openSqliteStore, type SqliteSynchronous } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult, principal } from '../test/support/store-fixtures.ts';

const RECORDS = 5000;
const CONCURRENT_RECORDS = 10_000;
const IN_FLIGHT = 32;
const WARMUP = 200;
const CALLS = 200;
const EVENTS_PER_CALL = 50;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-store-'));

function requestBody(i: number): string {
  const filler = 'x'.repeat(2048);
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `${i} ${filler}` }] });
  return body.slice(0, 2048);
}

function request(i: number, prefix: string): CallRequestRecord {
  return callRequest(`${prefix}-${i}`, {
    sessionId: `${prefix}-s${i % 50}`,
    principal: principal({ subject: `user-${i % 50}`, email: `user${i % 50}@example.test` }),
    requestBody: requestBody(i),
    startedAt: Date.now(),
  });
}

function event(callIndex: number, n: number): StreamEventRecord {
  return {
    offsetMs: n * 12,
    raw: `data: {"id":"chatcmpl-${callIndex}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token ${n} "}}]}\n\n`,
  };
}

function result(callId: string): CallResultRecord {
  return callResult(callId, {
    usage: { inputTokens: 500, outputTokens: EVENTS_PER_CALL, totalTokens: 500 + EVENTS_PER_CALL },
    firstByteMs: 150,
    latencyMs: 900,
    endedAt: Date.now(),
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Recorder {
  recordRequest(record: CallRequestRecord): Promise<void>;
  close(): Promise<void>;
  recordCommits(): number;
}

/** The former store's recordRequest: a transaction per call on this thread, auto-checkpoints. */
function openOnThread(file: string, synchronous: SqliteSynchronous): Recorder {
  const db = new DatabaseSync(file, { enableForeignKeyConstraints: true, timeout: 1000 });
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous}; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864`);
  migrateDatabase(db);
  const stmt = (sql: string): StatementSync => db.prepare(sql);
  const begin = stmt('BEGIN IMMEDIATE');
  const commit = stmt('COMMIT');
  const upsertSession = stmt(`INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count)
    VALUES ($id, $subject, $issuer, $email, $at, $at, 1) ON CONFLICT (id) DO UPDATE SET call_count = call_count + 1,
    last_call_at = max(last_call_at, excluded.last_call_at) WHERE sessions.subject = excluded.subject AND sessions.issuer = excluded.issuer`);
  const insertCall = stmt(`INSERT INTO calls (id, session_id, subject, email, groups, issuer, client_id, user_agent, remote_address, sdk,
    provider, provider_kind, endpoint, method, path, model, stream, request_body, decisions, started_at, status)
    VALUES ($id, $sessionId, $subject, $email, $groups, $issuer, $clientId, $userAgent, $remoteAddress, $sdk,
    $provider, $providerKind, $endpoint, $method, $path, $model, $stream, $requestBody, $decisions, $startedAt, 'pending')`);
  let commits = 0;
  return {
    async recordRequest(r) {
      const p = r.principal;
      begin.run();
      upsertSession.run({ id: r.sessionId, subject: p.subject, issuer: p.issuer, email: p.email, at: r.startedAt });
      insertCall.run({
        id: r.callId, sessionId: r.sessionId, subject: p.subject, email: p.email, groups: JSON.stringify(p.groups), issuer: p.issuer,
        clientId: p.clientId, userAgent: r.client.userAgent, remoteAddress: r.client.remoteAddress, sdk: r.client.sdk, provider: r.provider,
        providerKind: r.providerKind, endpoint: r.endpoint, method: r.method, path: r.path, model: r.model, stream: r.stream ? 1 : 0,
        requestBody: r.requestBody, decisions: JSON.stringify(r.decisions), startedAt: r.startedAt,
      });
      commit.run();
      commits++;
      fs.statSync(file); // the former store's "is it still our file" check after each commit
    },
    async close() {
      db.close();
    },
    recordCommits: () => commits,
  };
}

async function openRecorder(kind: 'on-thread' | 'store', file: string, synchronous: SqliteSynchronous): Promise<Recorder> {
  if (kind === 'on-thread') return openOnThread(file, synchronous);
  const store = await openSqliteStore({ path: file, synchronous });
  return { recordRequest: (r) => store.recordRequest(r), close: () => store.close(), recordCommits: () => store.stats().recordCommits };
}

interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Main-thread CPU per call, µs. */
  readonly cpuUs: number;
}

async function recordLatency(kind: 'on-thread' | 'store', synchronous: SqliteSynchronous): Promise<Latency> {
  const recorder = await openRecorder(kind, path.join(dir, `seq-${kind}-${synchronous}.db`), synchronous);
  const samples: number[] = [];
  let cpu = 0;
  for (let i = 0; i < RECORDS + WARMUP; i++) {
    const record = request(i, 'rec');
    const c0 = process.threadCpuUsage();
    const t0 = process.hrtime.bigint();
    await recorder.recordRequest(record);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    const c = process.threadCpuUsage(c0);
    if (i >= WARMUP) {
      samples.push(us);
      cpu += c.user + c.system;
    }
  }
  await recorder.close();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), p999: percentile(samples, 99.9), max: samples.at(-1)!, cpuUs: cpu / RECORDS };
}

interface Concurrent {
  readonly perSec: number;
  readonly perCommit: number;
  readonly maxStallMs: number;
  readonly p99StallMs: number;
  readonly cpuUs: number;
}

/** IN_FLIGHT loops, each awaiting its recordRequest and issuing the next, like busy gateway connections. */
async function recordConcurrent(kind: 'on-thread' | 'store'): Promise<Concurrent> {
  const recorder = await openRecorder(kind, path.join(dir, `conc-${kind}.db`), 'NORMAL');
  for (let i = 0; i < WARMUP; i++) await recorder.recordRequest(request(i, 'warm'));
  const commits0 = recorder.recordCommits();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < CONCURRENT_RECORDS) {
      await recorder.recordRequest(request(next++, 'conc'));
      // the gateway's next request arrives in a later event-loop turn (an I/O callback)
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  delay.enable();
  const c0 = process.threadCpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  const ms = performance.now() - t0;
  const c = process.threadCpuUsage(c0);
  delay.disable();
  const commits = recorder.recordCommits() - commits0;
  await recorder.close();
  return {
    perSec: CONCURRENT_RECORDS / (ms / 1000),
    perCommit: CONCURRENT_RECORDS / Math.max(1, commits),
    maxStallMs: delay.max / 1e6,
    p99StallMs: delay.percentile(99) / 1e6,
    cpuUs: (c.user + c.system) / CONCURRENT_RECORDS,
  };
}

/** Interleaves the calls the way concurrent streams arrive: one event of each call in turn. */
async function writeBehindThroughput(): Promise<{ rowsPerSec: number; ms: number }> {
  const store = await openSqliteStore({ path: path.join(dir, 'behind.db') });
  for (let c = 0; c < CALLS; c++) await store.recordRequest(request(c, 'wb'));
  const t0 = performance.now();
  for (let n = 0; n < EVENTS_PER_CALL; n++) {
    for (let c = 0; c < CALLS; c++) store.appendStreamEvents(`wb-${c}`, [event(c, n)]);
  }
  for (let c = 0; c < CALLS; c++) void store.finishCall(result(`wb-${c}`));
  await store.flush();
  const ms = performance.now() - t0;
  if (store.stats().writeErrors !== 0) throw new Error('write-behind bench had write errors');
  await store.close();
  return { rowsPerSec: (CALLS * (EVENTS_PER_CALL + 1)) / (ms / 1000), ms };
}

function naiveThroughput(): { rowsPerSec: number; ms: number } {
  const db = new DatabaseSync(path.join(dir, 'naive.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON');
  migrateDatabase(db);
  db.exec("INSERT INTO sessions VALUES ('s', 'u', 'i', NULL, 0, 0, 0)");
  const insertCall = db.prepare(`INSERT INTO calls (id, session_id, subject, groups, issuer, provider, provider_kind, endpoint,
    method, path, stream, request_body, decisions, started_at, status) VALUES (?, 's', 'u', '[]', 'i', 'openai', 'openai',
    'openai.chat.completions', 'POST', '/v1/chat/completions', 1, '{}', '[]', 0, 'pending')`);
  for (let c = 0; c < CALLS; c++) insertCall.run(`nv-${c}`);
  const insertEvent = db.prepare('INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES (?, ?, ?, ?)');
  const finish = db.prepare("UPDATE calls SET status = 'completed', http_status = 200, usage = ?, latency_ms = 900, ended_at = ? WHERE id = ?");
  const t0 = performance.now();
  for (let n = 0; n < EVENTS_PER_CALL; n++) {
    for (let c = 0; c < CALLS; c++) {
      const e = event(c, n);
      insertEvent.run(`nv-${c}`, n, e.offsetMs, e.raw);
    }
  }
  for (let c = 0; c < CALLS; c++) finish.run(JSON.stringify(result('x').usage), Date.now(), `nv-${c}`);
  const ms = performance.now() - t0;
  db.close();
  return { rowsPerSec: (CALLS * (EVENTS_PER_CALL + 1)) / (ms / 1000), ms };
}

/**
 * Main-thread CPU to hand 512 rows to the writer (collect, post), mean of 200 rounds — what the
 * gateway's thread pays. (Thread CPU clocks tick coarsely; only a mean over many rounds means much.)
 */
async function handOverCpu(): Promise<number> {
  const store = await openSqliteStore({ path: path.join(dir, 'batch.db'), batchIntervalMs: 60_000, maxBatch: 100_000 });
  await store.recordRequest(request(0, 'bt'));
  const rounds = 200;
  let total = 0;
  for (let round = 0; round < rounds; round++) {
    const c0 = process.threadCpuUsage();
    for (let n = 0; n < 512; n++) store.appendStreamEvents('bt-0', [event(0, round * 512 + n)]);
    await new Promise((resolve) => setImmediate(resolve)); // the collected rows are posted in the check phase
    const c = process.threadCpuUsage(c0);
    total += (c.user + c.system) / 1000;
    await store.flush();
  }
  await store.close();
  return total / rounds;
}

try {
  const seq = {
    threadNormal: await recordLatency('on-thread', 'NORMAL'),
    storeNormal: await recordLatency('store', 'NORMAL'),
    threadFull: await recordLatency('on-thread', 'FULL'),
    storeFull: await recordLatency('store', 'FULL'),
  };
  const concThread = await recordConcurrent('on-thread');
  const concStore = await recordConcurrent('store');
  const behind = await writeBehindThroughput();
  const naive = naiveThroughput();
  const handOverMs = await handOverCpu();
  const f = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const lat = (l: Latency): string => `p50 ${f(l.p50)} µs · p99 ${f(l.p99)} µs · p99.9 ${f(l.p999)} µs · max ${f(l.max)} µs · main-thread CPU ${f(l.cpuUs)} µs/call`;
  const conc = (c: Concurrent): string =>
    `${f(c.perSec)} records/s · ${f(c.perCommit, 1)} records/commit · event-loop stall p99 ${f(c.p99StallMs, 1)} ms, max ${f(c.maxStallMs, 1)} ms · main-thread CPU ${f(c.cpuUs)} µs/record`;
  const rows = CALLS * (EVENTS_PER_CALL + 1);
  console.log(`node ${process.version}, SQLite ${process.versions.sqlite}, ${os.cpus().length} CPUs, ${os.platform()}, load average ${os.loadavg()[0]!.toFixed(2)}\n`);
  console.log('| measurement | result |');
  console.log('|---|---|');
  console.log(`| recordRequest one at a time, synchronous=NORMAL, on-thread (${RECORDS} calls) | ${lat(seq.threadNormal)} |`);
  console.log(`| recordRequest one at a time, synchronous=NORMAL, store (${RECORDS} calls) | ${lat(seq.storeNormal)} |`);
  console.log(`| recordRequest one at a time, synchronous=FULL, on-thread (${RECORDS} calls) | ${lat(seq.threadFull)} |`);
  console.log(`| recordRequest one at a time, synchronous=FULL, store (${RECORDS} calls) | ${lat(seq.storeFull)} |`);
  console.log(`| recordRequest ${IN_FLIGHT} in flight, NORMAL, on-thread (${CONCURRENT_RECORDS} calls) | ${conc(concThread)} |`);
  console.log(`| recordRequest ${IN_FLIGHT} in flight, NORMAL, store (${CONCURRENT_RECORDS} calls) | ${conc(concStore)} |`);
  console.log(`| events + finishes, write-behind batches (${CALLS} calls × ${EVENTS_PER_CALL} events, interleaved) | ${f(behind.rowsPerSec)} rows/s (${rows} rows in ${f(behind.ms, 1)} ms) |`);
  console.log(`| events + finishes, naive autocommit INSERT per event | ${f(naive.rowsPerSec)} rows/s (${rows} rows in ${f(naive.ms, 1)} ms) |`);
  console.log(`| write-behind speed-up | ${f(behind.rowsPerSec / naive.rowsPerSec, 1)}× |`);
  console.log(`| main-thread CPU to hand 512 event rows to the writer (mean of 200) | ${f(handOverMs, 2)} ms |`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
