/**
 * `aigov audit verify` throughput, on a real file in a temp dir written by the real store
 * (writer thread, audit chain), then verified read-only by the same code the CLI runs.
 *
 *   node bench/audit-verify.ts [--calls N] [--runs R]
 *
 * Two shapes:
 * - streamed: each call is a request (2 KB body), 6 write-behind batches of 10 SSE events
 *   (~120 B each) and a result: 8 audit entries and 61 rows per call;
 * - plain: each call is a request (2 KB body) and a result (1 KB body): 2 entries, 1 row.
 * "records" = audit entries + recording rows (calls, stream events) checked, per second of
 * verification (median of R runs, after one warm-up run). Also prints entries/s alone.
 * Goal (issue 6): >= 200k records/s.
 *
 * Then the retention purge of the older half of each database (chunks of 500 entries on the
 * main thread): total time, and the longest gap of a 1 ms timer meanwhile (the event-loop stall
 * a running gateway would see); the database must still verify afterwards.
 *
 * Then what the chain costs the writer thread: the same INSERTs the writer runs (group of 32
 * request records per transaction; write-behind batches of 10 events), with and without the
 * audit entry (serialization, two SHA-256, one INSERT into audit_log), alternating A/B rounds on
 * one connection, median µs per record / per event batch. (bench/store-writes.ts measures the
 * whole store; on this noisy 2-core machine its run-to-run spread is larger than this cost.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
import type { CallRequestRecord } from '../src/store/recording-store.ts';
import { ChainWriter } from '../src/store/sqlite/audit-chain-writer.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { migrateDatabase } from '../src/store/sqlite/migrations.ts';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult, principal } from '../test/support/store-fixtures.ts';

const { values } = parseArgs({ options: { calls: { type: 'string' }, runs: { type: 'string' } } });
const CALLS = Number(values.calls ?? 20_000);
const RUNS = Number(values.runs ?? 5);
const IN_FLIGHT = 32;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-audit-'));
const filler = 'x'.repeat(2048);

function request(id: string, stream: boolean): CallRequestRecord {
  return callRequest(id, {
    sessionId: `s-${id.length % 97}`,
    principal: principal({ subject: 'user-1', email: 'user1@example.test' }),
    stream,
    requestBody: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `${id} ${filler}` }] }).slice(0, 2048),
    startedAt: Date.now(),
  });
}

async function build(file: string, stream: boolean): Promise<{ calls: number; events: number }> {
  const store = await openSqliteStore({ path: file });
  let events = 0;
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CALLS) {
        const i = next++;
        const id = `${stream ? 'st' : 'pl'}-${i}`;
        await store.recordRequest(request(id, stream));
        if (stream) {
          for (let b = 0; b < 6; b++) {
            store.appendStreamEvents(
              id,
              Array.from({ length: 10 }, (_, k) => ({ offsetMs: b * 50 + k * 5, raw: `data: {"choices":[{"delta":{"content":"token ${b * 10 + k} of call ${i}"}}]}\n\n` })),
            );
            events += 10;
            await new Promise<void>((resolve) => setImmediate(resolve)); // separate write-behind batches
          }
        }
        void store.finishCall(callResult(id, {
          responseBody: stream ? null : JSON.stringify({ choices: [{ message: { content: filler.slice(0, 1000) } }] }),
          usage: { inputTokens: 500, outputTokens: 60, totalTokens: 560 },
          latencyMs: 900,
          endedAt: Date.now(),
        }));
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await store.flush();
  } finally {
    await store.close();
  }
  return { calls: CALLS, events };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const rows: string[] = [];
const purges: string[] = [];
for (const stream of [true, false]) {
  const file = path.join(dir, `${stream ? 'streamed' : 'plain'}.db`);
  const t0 = performance.now();
  const built = await build(file, stream);
  const buildMs = performance.now() - t0;
  const times: number[] = [];
  let entries = 0;
  for (let r = 0; r <= RUNS; r++) {
    const start = performance.now();
    const report = verifyAuditDatabase(file);
    const ms = performance.now() - start;
    if (!report.ok) throw new Error(`verification failed: ${report.problem?.detail}`);
    entries = report.entries;
    if (r > 0) times.push(ms); // the first run warms the page cache
  }
  const ms = median(times);
  {
    const db = new DatabaseSync(file, { readOnly: true });
    const cut = Number(db.prepare('SELECT started_at FROM calls ORDER BY started_at LIMIT 1 OFFSET ?').get(Math.floor(CALLS / 2))?.['started_at']);
    db.close();
    const maintenance = new AuditMaintenance(file, { key: null });
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    const start = performance.now();
    const purged = await maintenance.purge(cut);
    const purgeMs = performance.now() - start;
    clearInterval(timer);
    await maintenance.close();
    const after = verifyAuditDatabase(file);
    if (!after.ok) throw new Error(`verification after the purge failed: ${after.problem?.detail}`);
    purges.push(
      `| ${stream ? 'streamed' : 'plain'} | ${purged.calls.toLocaleString('en-US')} calls, ${purged.events.toLocaleString('en-US')} events, ${purged.entries.toLocaleString('en-US')} entries | ${purgeMs.toFixed(0)} ms | ${longest.toFixed(1)} ms | verifies (${after.entries.toLocaleString('en-US')} entries from ${after.firstSeq}) |`,
    );
  }
  const records = entries + built.calls + built.events;
  const size = fs.statSync(file).size;
  rows.push(
    `| ${stream ? 'streamed (request, 6×10 events, result)' : 'plain (request, result)'} | ${built.calls.toLocaleString('en-US')} calls, ${built.events.toLocaleString('en-US')} events, ${entries.toLocaleString('en-US')} entries, ${(size / 1048576).toFixed(0)} MiB (built in ${(buildMs / 1000).toFixed(1)} s) | ${ms.toFixed(0)} ms | ${Math.round((records / ms) * 1000).toLocaleString('en-US')} records/s | ${Math.round((entries / ms) * 1000).toLocaleString('en-US')} entries/s |`,
  );
}

console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${process.platform}, load average ${os.loadavg()[0]!.toFixed(2)}; median of ${RUNS} runs after a warm-up\n`);
console.log('| shape | database | verify | records/s (entries + rows) | entries/s |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log('\n| purge (older half) | removed | time | longest event-loop gap | after |');
console.log('|---|---|---|---|---|');
for (const row of purges) console.log(row);

// ── the writer thread's added cost ─────────────────────────────────────────────────────────
{
  const db = new DatabaseSync(path.join(dir, 'writer-cost.db'));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  migrateDatabase(db);
  const chain = new ChainWriter(db);
  db.prepare("INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count) VALUES ('s', 'u', 'i', NULL, 0, 0, 0)").run();
  const insertCall = db.prepare(`
    INSERT INTO calls (id, session_id, subject, email, groups, issuer, client_id, user_agent, remote_address, sdk,
      provider, provider_kind, endpoint, method, path, model, stream, request_body, decisions, started_at, status)
    VALUES ($id, 's', 'u', 'u@example.test', '["eng"]', 'i', 'aigov-cli', 'OpenAI/JS 5.1.0', '127.0.0.1', NULL,
      'openai', 'openai', 'openai.chat.completions', 'POST', '/v1/chat/completions', 'gpt-4o-mini', 1, $body, '[]', $at, 'pending')`);
  const insertEvent = db.prepare('INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES (?, ?, ?, ?)');
  const body = request('x', true).requestBody;
  const GROUPS = 100;
  const PER_GROUP = 32;
  let n = 0;
  const recordRound = (withChain: boolean): number => {
    const start = performance.now();
    for (let g = 0; g < GROUPS; g++) {
      db.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < PER_GROUP; i++) {
        const id = `w-${n++}`;
        const at = Date.now();
        insertCall.run({ id, body, at });
        if (withChain) {
          chain.request({
            id, session_id: 's', subject: 'u', email: 'u@example.test', groups: '["eng"]', issuer: 'i', client_id: 'aigov-cli', user_agent: 'OpenAI/JS 5.1.0',
            remote_address: '127.0.0.1', sdk: null, provider: 'openai', provider_kind: 'openai', endpoint: 'openai.chat.completions', method: 'POST',
            path: '/v1/chat/completions', model: 'gpt-4o-mini', stream: 1, request_body: body, started_at: at,
          });
        }
        // events of this call: one write-behind batch of 10
        const entry = withChain ? chain.startEvents(id, 0) : null;
        for (let k = 0; k < 10; k++) {
          const raw = `data: {"choices":[{"delta":{"content":"token ${k}"}}]}\n\n`;
          insertEvent.run(id, k, k * 5, raw);
          entry?.add(k, k * 5, raw);
        }
        entry?.end();
      }
      db.exec('COMMIT');
      if (withChain) chain.committed();
    }
    return ((performance.now() - start) * 1000) / (GROUPS * PER_GROUP);
  };
  const plain: number[] = [];
  const chained: number[] = [];
  recordRound(false);
  recordRound(true);
  for (let r = 0; r < 7; r++) {
    plain.push(recordRound(false));
    chained.push(recordRound(true));
  }
  db.close();
  const a = median(plain);
  const b = median(chained);
  console.log('\n| writer thread, per call (request record + one batch of 10 events) | without chain | with chain | added |');
  console.log('|---|---|---|---|');
  console.log(`| median of 7 alternating rounds × ${GROUPS * PER_GROUP} calls, groups of ${PER_GROUP} per transaction | ${a.toFixed(1)} µs | ${b.toFixed(1)} µs | +${(b - a).toFixed(1)} µs (${((b / a - 1) * 100).toFixed(0)}%) |`);
}
fs.rmSync(dir, { recursive: true, force: true });
