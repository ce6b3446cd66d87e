/**
 * Where a recorded call's time goes in the PostgreSQL store (issue 14): the store alone, no
 * gateway, as the gateway uses it — `await recordRequest` (the durable write before forwarding),
 * then `await finishCall` (the result, committed before the answer's last byte is sent).
 *
 *   node bench/pg-write-path.ts [--compare DIR] [--runs R] [--calls N] [--seconds S] [--replicas-only | --no-replicas]
 *
 * Per store (this tree's, and with `--compare DIR` another `src` tree, e.g.
 * `git archive <rev> src | tar -x -C /tmp/before`, runs alternating) and per synchronous_commit:
 * - one call at a time (N calls, default 400): record and finish latency p50 / p99, and per call
 *   what the write connection did: statements sent (each ends with its own Sync, so each is a
 *   server round of work and an answer), round trips (statements sent together in one event-loop
 *   turn, pipelined, count once: the client waits once for them), transactions committed;
 * - 32 calls in flight for S seconds (default 3): calls/s, record and finish p50 / p99, commits per
 *   call, and CPU per call of the database's server processes (/proc) and of this process;
 * - the floor: a one-row INSERT committed alone, synchronous_commit on and off (what one durable
 *   commit costs on this machine at that moment; a governed call needs two).
 * Then the chain's lock under contention (this tree only, synchronous_commit on): 1, 2 and 4
 * stores on one database (as replicas, 32 calls in flight in all), the functions as written
 * (chain_head row lock, FOR UPDATE) and a variant that takes a transaction-level advisory lock
 * before it (so waiters queue on the advisory lock, not on the row): calls/s, record p50 / p99.
 *
 * Counting: `pg.Client.prototype.query` is wrapped in this process; only the writer's connection
 * (the one pipelined client) is counted. A database of its own per run on
 * AIGOV_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), dropped after.
 * Medians of R runs (default 3). Bounded; prints markdown tables.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { CallRequestRecord, CallResultRecord } from '../src/store/recording-store.ts';
import { callRequest, callResult } from '../test/support/store-fixtures.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg('--runs', 3);
const CALLS = arg('--calls', 400);
const SECONDS = arg('--seconds', 3);
const IN_FLIGHT = 32;
const compareIndex = process.argv.indexOf('--compare');
const COMPARE = compareIndex > 0 ? process.argv[compareIndex + 1] : undefined;
const REPLICAS_ONLY = process.argv.includes('--replicas-only');
const NO_REPLICAS = process.argv.includes('--no-replicas');
const ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROOT = path.resolve(import.meta.dirname, '..');

interface Store {
  recordRequest(r: CallRequestRecord): Promise<void>;
  finishCall(r: CallResultRecord): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
type Open = (options: { url: string; poolSize: number; synchronousCommit: 'on' | 'off' }) => Promise<Store>;

async function opener(srcDir: string): Promise<Open> {
  const mod = (await import(pathToFileURL(path.join(srcDir, 'store/postgres/postgres-store.ts')).href)) as { openPostgresStore: Open };
  return mod.openPostgresStore;
}

// ── counting the writer connection's statements, round trips and commits ──────────────────────

const counts = { statements: 0, roundTrips: 0, commits: 0 };
const inTurn = new WeakSet<object>();
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with its client as `this` below
const originalQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client & { pipeline?: boolean }, ...args: unknown[]): unknown {
  if (this.pipeline === true) {
    counts.statements++;
    if (!inTurn.has(this)) {
      inTurn.add(this);
      counts.roundTrips++;
      setImmediate(() => inTurn.delete(this));
    }
    const q = args[0] as { text?: string; name?: string } | string;
    const text = typeof q === 'string' ? q : (q.text ?? '');
    // A commit: COMMIT after BEGIN, or one of migration 6's functions (its own transaction).
    if (/^COMMIT$|aigov_record_calls|aigov_write_behind/.test(text)) counts.commits++; // (one commit for both functions in one statement)
  }
  return originalQuery.apply(this, args);
};

// ── runs ──────────────────────────────────────────────────────────────────────────────────────

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let dbCounter = 0;
async function withDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const name = `aigov_bench_wp_${process.pid}_${dbCounter++}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    return await run(url.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarize the design notes and list the open risks. '.repeat(40) }] });
const ANSWER = JSON.stringify({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'the risks are listed below. '.repeat(12) } }] });

function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}
const median = (values: readonly number[]): number => pct(values, 50);

/** One governed call's store work: the record (awaited), then the result (awaited). Returns both waits, ms. */
async function oneCall(store: Store, id: string, session: string): Promise<[number, number]> {
  const t0 = performance.now();
  await store.recordRequest(callRequest(id, { sessionId: session, stream: false, requestBody: BODY, startedAt: Date.now() }));
  const t1 = performance.now();
  await store.finishCall(callResult(id, { responseBody: ANSWER, endedAt: Date.now() }));
  return [t1 - t0, performance.now() - t1];
}

interface Sequential { record50: number; record99: number; finish50: number; finish99: number; statements: number; roundTrips: number; commits: number }
interface Loaded { rate: number; record50: number; record99: number; finish50: number; finish99: number; commitsPerCall: number; dbCpuMs: number; nodeCpuMs: number }

const CLK_TCK = 100; // Linux USER_HZ

/** CPU (user + system) used so far by the server processes connected to `url`'s database, ms (Linux /proc). */
async function databaseCpuMs(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const pids = (await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    let ticks = 0;
    for (const pid of pids) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        // gone meanwhile
      }
    }
    return (ticks / CLK_TCK) * 1000;
  } finally {
    await client.end();
  }
}

async function sequential(open: Open, sync: 'on' | 'off', tag: string): Promise<Sequential> {
  return withDatabase(async (url) => {
    const store = await open({ url, poolSize: 2, synchronousCommit: sync });
    try {
      for (let i = 0; i < 50; i++) await oneCall(store, `${tag}-w${i}`, `${tag}-warm`); // warm-up: statements prepared, plans cached
      const rec: number[] = [];
      const fin: number[] = [];
      const before = { ...counts };
      for (let i = 0; i < CALLS; i++) {
        const [r, f] = await oneCall(store, `${tag}-s${i}`, `${tag}-ses-${i}`);
        rec.push(r);
        fin.push(f);
      }
      const per = (k: keyof typeof counts): number => (counts[k] - before[k]) / CALLS;
      return { record50: pct(rec, 50), record99: pct(rec, 99), finish50: pct(fin, 50), finish99: pct(fin, 99), statements: per('statements'), roundTrips: per('roundTrips'), commits: per('commits') };
    } finally {
      await store.close();
    }
  });
}

/** `stores` stores on one database, IN_FLIGHT calls in flight spread over them, for SECONDS. */
async function loaded(open: Open, sync: 'on' | 'off', tag: string, stores = 1, prepare?: (url: string) => Promise<void>): Promise<Loaded> {
  return withDatabase(async (url) => {
    const opened: Store[] = [];
    for (let s = 0; s < stores; s++) opened.push(await open({ url, poolSize: 2, synchronousCommit: sync }));
    try {
      if (prepare) await prepare(url);
      for (const [s, store] of opened.entries()) for (let i = 0; i < 20; i++) await oneCall(store, `${tag}-w${s}-${i}`, `${tag}-warm`);
      const rec: number[] = [];
      const fin: number[] = [];
      let n = 0;
      const cpu0 = process.cpuUsage();
      const db0 = await databaseCpuMs(url);
      const commits0 = counts.commits;
      const t0 = performance.now();
      const deadline = t0 + SECONDS * 1000;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async (_, w) => {
          const store = opened[w % stores]!;
          while (performance.now() < deadline) {
            const [r, f] = await oneCall(store, `${tag}-c${w}-${n++}`, `${tag}-ses-${w}-${n}`);
            rec.push(r);
            fin.push(f);
          }
        }),
      );
      const rate = (rec.length / (performance.now() - t0)) * 1000;
      const cpu = process.cpuUsage(cpu0);
      const dbCpuMs = (await databaseCpuMs(url)) - db0;
      return {
        rate, record50: pct(rec, 50), record99: pct(rec, 99), finish50: pct(fin, 50), finish99: pct(fin, 99),
        commitsPerCall: (counts.commits - commits0) / rec.length, dbCpuMs: dbCpuMs / rec.length, nodeCpuMs: (cpu.user + cpu.system) / 1000 / rec.length,
      };
    } finally {
      for (const store of opened) await store.close();
    }
  });
}

/**
 * The variant of migration 6's functions that waits on a transaction-level advisory lock first
 * (then the row lock, uncontended: every other chain writer still takes it, so the chain stays one).
 */
async function advisoryVariant(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const fn of ['aigov_record_calls', 'aigov_write_behind']) {
      const def = (await client.query<{ d: string }>(`SELECT pg_get_functiondef(p.oid) AS d FROM pg_proc p WHERE p.proname = $1`, [fn])).rows[0]!.d;
      const lock = /(\n\s*SELECT seq, hash[^;]*FROM chain_head WHERE id = 1 FOR UPDATE;)/;
      if (!lock.test(def)) throw new Error(`${fn}: the head lock statement was not found (the functions changed; update this bench)`);
      await client.query(def.replace(lock, "\n        PERFORM pg_advisory_xact_lock(7301092513459627652);$1"));
    }
  } finally {
    await client.end();
  }
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

const trees: [string, string][] = [['this tree', path.join(ROOT, 'src')], ...(COMPARE ? [[`${COMPARE}`, path.resolve(COMPARE)] as [string, string]] : [])];
const opens = new Map<string, Open>();
for (const [label, dir] of trees) opens.set(label, await opener(dir));
const load0 = os.loadavg()[0]!;
const started = performance.now();
const ms = (v: number): string => `${v.toFixed(2)} ms`;

/** The floor: one durable commit of a one-row INSERT (one round trip), p50 / p99 over `n`, on a database of its own. */
async function commitFloor(sync: 'on' | 'off', n = 300): Promise<[number, number]> {
  return withDatabase(async (url) => {
    const client = new pg.Client({ connectionString: url, options: `-c synchronous_commit=${sync}` });
    await client.connect();
    try {
      await client.query('CREATE TABLE floor (id bigint, at bigint)');
      const t: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await client.query({ name: 'floor', text: 'INSERT INTO floor VALUES ($1, $2)', values: [i, Date.now()] });
        t.push(performance.now() - t0);
      }
      return [pct(t, 50), pct(t, 99)];
    } finally {
      await client.end();
    }
  });
}

if (!REPLICAS_ONLY) {
  const floors = new Map<string, [number, number][]>();
  const seq = new Map<string, Sequential[]>();
  const con = new Map<string, Loaded[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const sync of ['on', 'off'] as const) {
      (floors.get(sync) ?? floors.set(sync, []).get(sync)!).push(await commitFloor(sync));
      const order = run % 2 === 0 ? trees : [...trees].reverse();
      for (const [label] of order) {
        const key = `${label}|${sync}`;
        const s = await sequential(opens.get(label)!, sync, `r${run}${sync}`);
        const l = await loaded(opens.get(label)!, sync, `l${run}${sync}`);
        (seq.get(key) ?? seq.set(key, []).get(key)!).push(s);
        (con.get(key) ?? con.set(key, []).get(key)!).push(l);
        process.stderr.write(`run ${run + 1}/${RUNS} ${label} synchronous_commit ${sync}: record p50 ${ms(s.record50)}, finish p50 ${ms(s.finish50)}; ${IN_FLIGHT} in flight ${l.rate.toFixed(0)} calls/s, ${l.commitsPerCall.toFixed(2)} commits/call, CPU/call database ${ms(l.dbCpuMs)} this process ${ms(l.nodeCpuMs)}\n`);
      }
    }
  }
  console.log(`\nnode ${process.version}, ${os.cpus().length} CPUs, load average ${load0.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}; medians of ${RUNS} runs\n`);
  for (const sync of ['on', 'off'] as const) {
    const f = floors.get(sync)!;
    console.log(`One-row INSERT committed alone (one round trip), synchronous_commit ${sync}: p50 ${ms(median(f.map((x) => x[0])))}, p99 ${ms(median(f.map((x) => x[1])))}`);
  }
  console.log('');
  console.log('| store | synchronous_commit | one call at a time: record p50 / p99 | finish p50 / p99 | per call: statements · round trips · commits | 32 in flight: calls/s | record p50 / p99 | finish p50 / p99 | commits per call | CPU per call: database · client |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const [label] of trees) {
    for (const sync of ['on', 'off'] as const) {
      const s = seq.get(`${label}|${sync}`)!;
      const l = con.get(`${label}|${sync}`)!;
      const m = <T,>(xs: T[], f: (x: T) => number): number => median(xs.map(f));
      console.log(
        `| ${label} | ${sync} | ${ms(m(s, (x) => x.record50))} / ${ms(m(s, (x) => x.record99))} | ${ms(m(s, (x) => x.finish50))} / ${ms(m(s, (x) => x.finish99))} | ` +
          `${m(s, (x) => x.statements).toFixed(1)} · ${m(s, (x) => x.roundTrips).toFixed(1)} · ${m(s, (x) => x.commits).toFixed(1)} | ` +
          `${m(l, (x) => x.rate).toFixed(0)} | ${ms(m(l, (x) => x.record50))} / ${ms(m(l, (x) => x.record99))} | ${ms(m(l, (x) => x.finish50))} / ${ms(m(l, (x) => x.finish99))} | ` +
          `${m(l, (x) => x.commitsPerCall).toFixed(3)} | ${ms(m(l, (x) => x.dbCpuMs))} · ${ms(m(l, (x) => x.nodeCpuMs))} |`,
      );
    }
  }
}

if (NO_REPLICAS) process.exit(0);
const open = opens.get('this tree')!;
const rep = new Map<string, Loaded[]>();
for (let run = 0; run < RUNS; run++) {
  for (const stores of [1, 2, 4]) {
    for (const lock of ['row', 'advisory'] as const) {
      const l = await loaded(open, 'on', `x${run}${stores}${lock}`, stores, lock === 'advisory' ? advisoryVariant : undefined);
      const key = `${stores}|${lock}`;
      (rep.get(key) ?? rep.set(key, []).get(key)!).push(l);
      process.stderr.write(`run ${run + 1}/${RUNS} ${stores} stores, ${lock} lock: ${l.rate.toFixed(0)} calls/s, record p50 ${ms(l.record50)}\n`);
    }
  }
}
console.log(`\nThe chain's lock under contention (this tree, synchronous_commit on, ${IN_FLIGHT} calls in flight over the stores, ${SECONDS} s; medians of ${RUNS} runs)\n`);
console.log('| stores on one database | chain lock | calls/s | record p50 / p99 | finish p50 / p99 | commits per call | database CPU per call |');
console.log('|---|---|---|---|---|---|---|');
for (const stores of [1, 2, 4]) {
  for (const lock of ['row', 'advisory'] as const) {
    const l = rep.get(`${stores}|${lock}`)!;
    const m = (f: (x: Loaded) => number): number => median(l.map(f));
    console.log(
      `| ${stores} | ${lock === 'row' ? 'chain_head row (FOR UPDATE), as shipped' : 'advisory xact lock, then the row'} | ${m((x) => x.rate).toFixed(0)} | ${ms(m((x) => x.record50))} / ${ms(m((x) => x.record99))} | ` +
        `${ms(m((x) => x.finish50))} / ${ms(m((x) => x.finish99))} | ${m((x) => x.commitsPerCall).toFixed(3)} | ${ms(m((x) => x.dbCpuMs))} |`,
    );
  }
}
console.log(`\n${((performance.now() - started) / 1000).toFixed(0)} s in all; load average at the end ${os.loadavg()[0]!.toFixed(2)}`);
