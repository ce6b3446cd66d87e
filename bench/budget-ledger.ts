/**
 * The budget ledger's cost per call (issue 15): a reserve before forwarding (on the request's
 * path) and a settle when the call ends, on each ledger the gateway can use —
 *
 * - memory (single node, in process);
 * - PostgreSQL (pg-budget-ledger.ts: one function call per reserve and per settle), with
 *   synchronous_commit off (the ledger's setting) and on (for comparison);
 * - Redis 7 (redis-budget-ledger.ts: one Lua script per reserve and per settle, via ioredis) —
 *   to decide which shared store to use.
 *
 *   node bench/budget-ledger.ts
 *
 * One call at a time (SEQUENTIAL reserve+settle pairs on one counter), then three "replicas"
 * (three ledger instances, each its own pool/connection) with IN_FLIGHT calls each on ONE hot
 * counter (everyone's budget): the worst case for row locks. Two counters per call (a per-user
 * and a per-group budget), as a typical policy charges. ROUNDS rounds; medians of per-round
 * percentiles. PostgreSQL at AIGOV_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres;
 * a database of its own is created and dropped), Redis at AIGOV_BENCH_REDIS_URL (default redis://127.0.0.1:6379,
 * keys under a random prefix, deleted after).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import type { BudgetLedger, LedgerCharge } from '../src/store/budget-ledger.ts';
import { MemoryLedger } from '../src/store/memory-budget-ledger.ts';
import { PgBudgetLedger } from '../src/store/postgres/pg-budget-ledger.ts';
import { RedisBudgetLedger } from '../src/store/redis/redis-budget-ledger.ts';

const ROUNDS = 3;
const SEQUENTIAL = 1000;
const REPLICAS = 3;
const IN_FLIGHT = 32;
const CONCURRENT = 1500;
const PG_ADMIN = process.env.AIGOV_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.AIGOV_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

type Ledgerish = BudgetLedger;

const charges = (user: string): LedgerCharge[] => [
  { key: `bench.fp|g:developers|d2025-01-01`, fingerprint: 'fp', limit: Number.MAX_SAFE_INTEGER, amount: 40_000, step: 0, oldestStep: 0, expiresAt: Date.now() + 86_400_000 },
  { key: `bench.fp|u:${user}|d2025-01-01`, fingerprint: 'fp', limit: Number.MAX_SAFE_INTEGER, amount: 40_000, step: 0, oldestStep: 0, expiresAt: Date.now() + 86_400_000 },
];

interface Figures { reserve: [number, number]; settle: [number, number]; concReserve: [number, number]; rate: number }

async function measure(open: () => Promise<Ledgerish[]>, round: number): Promise<Figures> {
  const ledgers = await open();
  const one = ledgers[0]!;
  const reserve: number[] = [];
  const settle: number[] = [];
  const call = async (ledger: Ledgerish, id: string, user: string, into?: number[]): Promise<void> => {
    const list = charges(user);
    const t0 = performance.now();
    const r = await ledger.reserve(id, list);
    const t1 = performance.now();
    if (!r.ok) throw new Error('refused');
    await ledger.settle(id, list.map((c) => ({ key: c.key, amount: 30_000 })));
    const t2 = performance.now();
    into?.push(t1 - t0);
    if (into === undefined) return;
    settle.push(t2 - t1);
  };
  for (let i = 0; i < 200; i++) await call(one, `w${round}-${i}`, `u${i % 50}`); // warm-up
  const seqReserve: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) await call(one, `s${round}-${i}`, `u${i % 50}`, seqReserve);
  reserve.push(...seqReserve);
  const conc: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(ledgers.flatMap((ledger) => Array.from({ length: IN_FLIGHT }, async () => {
    while (next < CONCURRENT) {
      const n = next++;
      const list = charges(`u${n % 50}`);
      const a = performance.now();
      await ledger.reserve(`c${round}-${n}`, list);
      conc.push(performance.now() - a);
      await ledger.settle(`c${round}-${n}`, list.map((c) => ({ key: c.key, amount: 30_000 })));
    }
  })));
  const rate = CONCURRENT / ((performance.now() - t0) / 1000);
  for (const l of ledgers) await l.close();
  reserve.sort((a, b) => a - b);
  settle.sort((a, b) => a - b);
  conc.sort((a, b) => a - b);
  return { reserve: [pct(reserve, 50), pct(reserve, 99)], settle: [pct(settle, 50), pct(settle, 99)], concReserve: [pct(conc, 50), pct(conc, 99)], rate };
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const redisPrefixes: string[] = [];
const dbName = `aigov_bench_${randomBytes(5).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(PG_ADMIN);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
await admin(`CREATE DATABASE ${dbName}`);
try {
  const seeded = async (list: BudgetLedger[]): Promise<BudgetLedger[]> => {
    await list[0]!.seed('fp', []);
    return list;
  };
  const pgOpen = (sync: 'on' | 'off') => async (): Promise<Ledgerish[]> => {
    const list: BudgetLedger[] = [];
    for (let i = 0; i < REPLICAS; i++) list.push(await PgBudgetLedger.open({ url: dbUrl, ttlMs: 60_000, poolSize: 8, synchronousCommit: sync, statementTimeoutMs: 60_000 }));
    return seeded(list);
  };
  const memoryOpen = async (): Promise<Ledgerish[]> => seeded([new MemoryLedger()]);
    const redisOpen = async (): Promise<Ledgerish[]> => {
    const prefix = `aigov-bench:${randomBytes(4).toString('hex')}:`;
    redisPrefixes.push(prefix);
    const list: BudgetLedger[] = [];
    for (let i = 0; i < REPLICAS; i++) list.push(await RedisBudgetLedger.open({ url: REDIS_URL, ttlMs: 60_000, prefix, commandTimeoutMs: 60_000 }));
    return seeded(list);
  };
  const rows: [string, Figures[]][] = [];
  for (const [name, open] of [
    ['memory (single node; one process)', memoryOpen],
    ['PostgreSQL, synchronous_commit off', pgOpen('off')],
    ['PostgreSQL, synchronous_commit on', pgOpen('on')],
    ['Redis 7 (ioredis, Lua scripts)', redisOpen],
  ] as const) {
    const figures: Figures[] = [];
    for (let r = 0; r < ROUNDS; r++) figures.push(await measure(open, r));
    rows.push([name, figures]);
  }
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  const pgVersion = await (async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN });
    await c.connect();
    const v = (await c.query('SHOW server_version')).rows[0].server_version as string;
    await c.end();
    return v;
  })();
  console.log(`node ${process.version}, PostgreSQL ${pgVersion}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}; ${ROUNDS} rounds, medians of per-round figures; two counters per call\n`);
  console.log(`| ledger | reserve p50 / p99 (one at a time) | settle p50 / p99 | reserve p50 / p99 (${REPLICAS} replicas × ${IN_FLIGHT} in flight, one hot counter) | reserve+settle pairs/s under that load |`);
  console.log('|---|---|---|---|---|');
  for (const [name, f] of rows) {
    const m = (pick: (x: Figures) => number): string => ms(median(f.map(pick)));
    console.log(`| ${name} | ${m((x) => x.reserve[0])} / ${m((x) => x.reserve[1])} | ${m((x) => x.settle[0])} / ${m((x) => x.settle[1])} | ${m((x) => x.concReserve[0])} / ${m((x) => x.concReserve[1])} | ${Math.round(median(f.map((x) => x.rate)))} |`);
  }
} finally {
  await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  for (const prefix of redisPrefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
}
