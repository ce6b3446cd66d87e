/**
 * Recording store write costs, on a real file in a temp dir.
 *
 *   node bench/store-writes.ts
 *
 * 1. recordRequest latency (a 2 KB request body), back to back, p50 / p99 / p99.9 / max in µs,
 *    for synchronous=NORMAL (the default) and FULL (fsync per commit). The tail is SQLite's WAL
 *    auto-checkpoint (every ~1000 pages ≈ 120 requests), which runs inside the crossing commit.
 * 2. Stream events + finishes: the store's write-behind (one transaction per batch) against a
 *    naive synchronous INSERT per event (one autocommit transaction each), same schema and pragmas.
 *
 * Bounded loops; prints a markdown table and exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { CallRequestRecord, CallResultRecord, StreamEventRecord } from '../src/store/recording-store.ts';
import { migrateDatabase } from '../src/store/sqlite/migrations.ts';
import { openSqliteStore, type SqliteSynchronous } from '../src/store/sqlite/sqlite-store.ts';

const RECORDS = 5000;
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
  return {
    callId: `${prefix}-${i}`,
    sessionId: `${prefix}-s${i % 50}`,
    principal: { subject: `user-${i % 50}`, email: `user${i % 50}@example.test`, groups: ['eng'], issuer: 'https://idp.example.test', clientId: 'aigov-cli' },
    client: { userAgent: 'OpenAI/JS 5.1.0', remoteAddress: '127.0.0.1', sdk: 'openai-node 5.1.0' },
    provider: 'openai',
    providerKind: 'openai',
    endpoint: 'openai.chat.completions',
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    stream: true,
    requestBody: requestBody(i),
    decisions: [{ stage: 'request', action: 'allow', ruleId: null, reason: 'no rule matched', mode: 'enforce' }],
    startedAt: Date.now(),
  };
}

function event(callIndex: number, n: number): StreamEventRecord {
  return {
    offsetMs: n * 12,
    raw: `data: {"id":"chatcmpl-${callIndex}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token ${n} "}}]}\n\n`,
  };
}

function result(callId: string): CallResultRecord {
  return {
    callId, status: 'completed', httpStatus: 200, responseBody: null,
    usage: { inputTokens: 500, outputTokens: EVENTS_PER_CALL, totalTokens: 500 + EVENTS_PER_CALL },
    firstByteMs: 150, latencyMs: 900, errorCode: null, errorMessage: null, decisions: [], endedAt: Date.now(),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function recordLatency(synchronous: SqliteSynchronous): Promise<{ p50: number; p99: number; p999: number; max: number }> {
  const store = await openSqliteStore({ path: path.join(dir, `record-${synchronous}.db`), synchronous });
  const samples: number[] = [];
  for (let i = 0; i < RECORDS + WARMUP; i++) {
    const record = request(i, 'rec');
    const t0 = process.hrtime.bigint();
    await store.recordRequest(record);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (i >= WARMUP) samples.push(us);
  }
  await store.close();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), p999: percentile(samples, 99.9), max: samples.at(-1)! };
}

/** Interleaves the calls the way concurrent streams arrive: one event of each call in turn. */
async function writeBehindThroughput(): Promise<{ rowsPerSec: number; ms: number }> {
  const store = await openSqliteStore({ path: path.join(dir, 'behind.db') });
  for (let c = 0; c < CALLS; c++) await store.recordRequest(request(c, 'wb'));
  const t0 = performance.now();
  for (let n = 0; n < EVENTS_PER_CALL; n++) {
    for (let c = 0; c < CALLS; c++) store.appendStreamEvents(`wb-${c}`, [event(c, n)]);
  }
  for (let c = 0; c < CALLS; c++) store.finishCall(result(`wb-${c}`));
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

/** How long one full write-behind batch holds the event loop. */
async function batchBlockTime(): Promise<number> {
  const store = await openSqliteStore({ path: path.join(dir, 'batch.db'), batchIntervalMs: 60_000, maxBatch: 100_000 });
  await store.recordRequest(request(0, 'bt'));
  const times: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let n = 0; n < 512; n++) store.appendStreamEvents('bt-0', [event(0, round * 512 + n)]);
    const t0 = performance.now();
    await store.flush();
    times.push(performance.now() - t0);
  }
  await store.close();
  times.sort((a, b) => a - b);
  return percentile(times, 50);
}

try {
  const normal = await recordLatency('NORMAL');
  const full = await recordLatency('FULL');
  const behind = await writeBehindThroughput();
  const naive = naiveThroughput();
  const batchMs = await batchBlockTime();
  const f = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const rows = CALLS * (EVENTS_PER_CALL + 1);
  console.log(`node ${process.version}, SQLite ${process.versions.sqlite}, ${os.cpus().length} CPUs, ${os.platform()}\n`);
  console.log('| measurement | result |');
  console.log('|---|---|');
  console.log(`| recordRequest, 2 KB body, synchronous=NORMAL (${RECORDS} calls) | p50 ${f(normal.p50)} µs · p99 ${f(normal.p99)} µs · p99.9 ${f(normal.p999)} µs · max ${f(normal.max)} µs |`);
  console.log(`| recordRequest, 2 KB body, synchronous=FULL (${RECORDS} calls) | p50 ${f(full.p50)} µs · p99 ${f(full.p99)} µs · p99.9 ${f(full.p999)} µs · max ${f(full.max)} µs |`);
  console.log(`| events + finishes, write-behind batches (${CALLS} calls × ${EVENTS_PER_CALL} events, interleaved) | ${f(behind.rowsPerSec)} rows/s (${rows} rows in ${f(behind.ms, 1)} ms) |`);
  console.log(`| events + finishes, naive autocommit INSERT per event | ${f(naive.rowsPerSec)} rows/s (${rows} rows in ${f(naive.ms, 1)} ms) |`);
  console.log(`| write-behind speed-up | ${f(behind.rowsPerSec / naive.rowsPerSec, 1)}× |`);
  console.log(`| event-loop time of one 512-row batch (p50 of 20) | ${f(batchMs, 2)} ms |`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
