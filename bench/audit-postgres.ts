/**
 * The audit trail on PostgreSQL: `aigov audit verify` throughput, the retention purge, and a
 * signed checkpoint, on a database of its own on the local server (AIGOV_BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres; dropped afterwards).
 *
 *   node bench/audit-postgres.ts [--calls N] [--runs R]
 *
 * The shapes of bench/audit-verify.ts (streamed: request, 6 batches of 10 events, result; plain:
 * request 2 KB, result 1 KB), written by TWO replicas (two PostgreSQL stores) at once, 16 calls in
 * flight each, so the chain interleaves both. "records" = entries + rows checked, per second of
 * verification (median of R runs after a warm-up). Then the purge of the older half (chunks of 500
 * entries; the longest gap of a 1 ms timer meanwhile, and how long a replica recording requests
 * meanwhile waits for each) and a verification after it; then one signed checkpoint of the head.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseSigningKey } from '../src/store/audit-keys.ts';
import { PgAuditMaintenance } from '../src/store/postgres/pg-audit-maintenance.ts';
import { verifyPostgresAudit } from '../src/store/postgres/pg-audit-verify.ts';
import { openPostgresStore } from '../src/store/postgres/postgres-store.ts';
import { callRequest, callResult, principal } from '../test/support/store-fixtures.ts';

const { values } = parseArgs({ options: { calls: { type: 'string' }, runs: { type: 'string' } } });
const CALLS = Number(values.calls ?? 5000);
const RUNS = Number(values.runs ?? 3);
const IN_FLIGHT = 16;
const ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const filler = 'x'.repeat(2048);

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function build(url: string, stream: boolean): Promise<{ events: number }> {
  const replicas = [await openPostgresStore({ url, poolSize: 2 }), await openPostgresStore({ url, poolSize: 2 })];
  let events = 0;
  let next = 0;
  try {
    const worker = async (store: (typeof replicas)[number]): Promise<void> => {
      while (next < CALLS) {
        const i = next++;
        const id = `${stream ? 'st' : 'pl'}-${i}`;
        await store.recordRequest(callRequest(id, {
          sessionId: `s-${i % 97}`,
          principal: principal({ subject: 'user-1', email: 'user1@example.test' }),
          stream,
          requestBody: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `${id} ${filler}` }] }).slice(0, 2047),
          startedAt: Date.now(),
        }));
        if (stream) {
          for (let b = 0; b < 6; b++) {
            store.appendStreamEvents(id, Array.from({ length: 10 }, (_, k) => ({ offsetMs: b * 50 + k * 5, raw: `data: {"choices":[{"delta":{"content":"token ${b * 10 + k} of call ${i}"}}]}\n\n` })));
            events += 10;
            await new Promise<void>((resolve) => setTimeout(resolve, 1)); // separate write-behind batches
          }
        }
        await store.finishCall(callResult(id, {
          responseBody: stream ? null : JSON.stringify({ choices: [{ message: { content: filler.slice(0, 1000) } }] }),
          usage: { inputTokens: 500, outputTokens: 60, totalTokens: 560 },
          latencyMs: 900,
          endedAt: Date.now(),
        }));
      }
    };
    await Promise.all(replicas.flatMap((store) => Array.from({ length: IN_FLIGHT }, () => worker(store))));
  } finally {
    for (const store of replicas) await store.close();
  }
  return { events };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const settings = (url: string): { url: string; statementTimeoutMs: number; connectTimeoutMs: number; lockTimeoutMs: number } => ({ url, statementTimeoutMs: 30_000, connectTimeoutMs: 5000, lockTimeoutMs: 0 });
const key = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
if ('problem' in key) throw new Error(key.problem);

const rows: string[] = [];
const purges: string[] = [];
for (const stream of [true, false]) {
  const name = `aigov_bench_audit_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = databaseUrl(name);
  try {
    const built = await build(url, stream);
    const times: number[] = [];
    let entries = 0;
    for (let r = 0; r <= RUNS; r++) {
      const start = performance.now();
      const report = await verifyPostgresAudit(settings(url));
      const ms = performance.now() - start;
      if (!report.ok) throw new Error(`verification failed: ${report.problem?.detail}`);
      entries = report.entries;
      if (r > 0) times.push(ms);
    }
    const ms = median(times);
    const records = entries + CALLS + built.events;
    rows.push(`| ${stream ? 'streamed' : 'plain'} | ${CALLS.toLocaleString('en-US')} calls, ${built.events.toLocaleString('en-US')} events, ${entries.toLocaleString('en-US')} entries (2 replicas) | ${ms.toFixed(0)} ms | ${Math.round(records / (ms / 1000)).toLocaleString('en-US')} records/s | ${Math.round(entries / (ms / 1000)).toLocaleString('en-US')} entries/s |`);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const cut = Number((await client.query('SELECT started_at FROM calls ORDER BY started_at LIMIT 1 OFFSET $1', [Math.floor(CALLS / 2)])).rows[0].started_at);
    await client.end();
    const maintenance = new PgAuditMaintenance({ settings: settings(url), key });
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    // A replica recording meanwhile: how long its request records wait (each purge chunk holds the chain's head).
    const writer = await openPostgresStore({ url, poolSize: 1 });
    let purging = true;
    const waits: number[] = [];
    const recording = (async () => {
      for (let n = 0; purging; n++) {
        const t = performance.now();
        await writer.recordRequest(callRequest(`during-${n}`, { sessionId: 'during', startedAt: Date.now() }));
        waits.push(performance.now() - t);
      }
    })();
    const start = performance.now();
    const purged = await maintenance.purge(cut);
    const purgeMs = performance.now() - start;
    purging = false;
    await recording;
    await writer.close();
    clearInterval(timer);
    waits.sort((x, y) => x - y);
    const during = `${waits.length} records: p50 ${waits[Math.floor(waits.length / 2)]!.toFixed(1)} ms, max ${waits.at(-1)!.toFixed(1)} ms`;
    const cpStart = performance.now();
    const cp = await maintenance.checkpoint('shutdown');
    const cpMs = performance.now() - cpStart;
    await maintenance.close();
    const after = await verifyPostgresAudit(settings(url), { publicKey: key.publicKey });
    if (!after.ok || cp === null) throw new Error(`verification after the purge failed: ${after.problem?.detail}`);
    purges.push(`| ${stream ? 'streamed' : 'plain'} | ${purged.calls.toLocaleString('en-US')} calls, ${purged.events.toLocaleString('en-US')} events, ${purged.entries.toLocaleString('en-US')} entries | ${purgeMs.toFixed(0)} ms | ${longest.toFixed(1)} ms | ${during} | ${cpMs.toFixed(1)} ms | verifies (${after.entries.toLocaleString('en-US')} entries from ${after.firstSeq}, ${after.checkpoints.verified} signatures) |`);
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

console.log(`Command: \`node bench/audit-postgres.ts --calls ${CALLS} --runs ${RUNS}\` — Node ${process.version}, nproc ${os.availableParallelism()}, load average ${os.loadavg()[0]!.toFixed(1)}.\n`);
console.log('| shape | database | verify | records/s (entries + rows) | entries/s |\n|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log('\n| purge (older half) | removed | time | longest event-loop gap | a replica recording meanwhile | signed checkpoint | after |\n|---|---|---|---|---|---|---|');
for (const row of purges) console.log(row);
