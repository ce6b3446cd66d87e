/**
 * Sustained recorded calls per second with three gateway replicas on one PostgreSQL database,
 * against one replica on PostgreSQL and one gateway on SQLite (issue 14, Figures).
 *
 *   node bench/replicas.ts [--docs] [--rounds N] [--seconds S]
 *
 * Processes: bench/upstream-fake.ts (fixed ~2 KB answers, no delays); eight bench/gateway-process.ts
 * gateways (each with its dev IdP and alice's token): one on SQLite, one alone on a PostgreSQL
 * database, three sharing another PostgreSQL database (recording, approvals, audit chain), and —
 * the control — three on a database each (three processes, no shared chain); and this driver.
 * Besides calls/s and latency, each run measures the CPU per call of the gateway processes and of
 * the databases' backends (/proc) and samples how many backends wait for a lock (pg_stat_activity,
 * every 20 ms). Each setup is driven in turn — the order rotating between rounds — by 32 concurrent
 * clients (undici keep-alive pools) sending non-streamed ~2 KB chat completions for `--seconds`
 * (default 4) per round, `--rounds` rounds (default 5); with three replicas the clients are spread
 * round-robin over them, each with that replica's token, as behind a load balancer. Every call
 * must answer 200: the gateway answers only after the request row is committed, so each one
 * counted is a recorded call; at the end the PostgreSQL databases must hold exactly as many
 * completed calls as were counted. The table gives medians over rounds (and the range).
 *
 * The databases are created for the run and dropped after it (AIGOV_BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres). `--docs` rewrites the section between
 * <!-- replicas-throughput:start --> and <!-- replicas-throughput:end --> of docs/benchmarks.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs', 'benchmarks.md');
const MARK_START = '<!-- replicas-throughput:start -->';
const MARK_END = '<!-- replicas-throughput:end -->';
const PG_ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONCURRENCY = 32;
const WARMUP_MS = 1500;
const PATH = '/openai/v1/chat/completions';

/** A 2 KB chat completion request (the prompt), as in bench/gateway-overhead.ts. */
function requestBody(): string {
  const question = 'Summarize the following design notes and list the open risks for the rollout of the new billing service. ';
  const base = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are a careful assistant for an engineering team. Answer concisely.' }, { role: 'user', content: '' }], temperature: 0.2 };
  let content = '';
  const size = (): number => Buffer.byteLength(JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] }));
  while (size() < 2048) content += question;
  content = content.slice(0, content.length - (size() - 2048));
  return JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] });
}
const BODY = requestBody();

// ── processes ────────────────────────────────────────────────────────────────────────────────

const children: ChildProcess[] = [];

async function spawnChild(script: string, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 60 s`)), 60_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited early (code ${code})`));
    });
  });
  lines.close();
  child.stdout.resume();
  return JSON.parse(line) as Record<string, unknown>;
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

async function pgQuery(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

// ── load ─────────────────────────────────────────────────────────────────────────────────────

interface Target {
  readonly pool: Pool;
  readonly headers: Record<string, string>;
}

interface Setup {
  readonly name: string;
  readonly targets: readonly Target[];
  /** The gateway processes serving it. */
  readonly pids: readonly number[];
  /** The PostgreSQL databases it records in (none: SQLite). */
  readonly databaseUrls: readonly string[];
  /** Calls answered 200 across all runs, warm-up included. */
  answered: number;
}

function targetFor(gateway: { url: string; token: string }): Target {
  return {
    pool: new Pool(gateway.url, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 }),
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${gateway.token}` },
  };
}

interface RunFigures {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly n: number;
  /** CPU of the gateway processes per call, ms (all replicas together). */
  readonly gatewayCpuMs: number;
  /** CPU of the PostgreSQL backends connected to its database per call, ms (null: SQLite). */
  readonly pgCpuMs: number | null;
  /** Backends waiting for a lock, mean over samples every 20 ms (summed over its databases; null: SQLite). */
  readonly lockWaiting: number | null;
}

/** CONCURRENCY clients for `ms`, each call to the next target round-robin; every call must answer 200. */
async function run(setup: Setup, ms: number): Promise<RunFigures> {
  const monitors = await Promise.all(setup.databaseUrls.map(watchDatabase));
  const gatewayCpu0 = sumCpuMs(setup.pids);
  const samples: number[] = [];
  let turn = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const target = setup.targets[turn++ % setup.targets.length]!;
      const start = performance.now();
      const res = await target.pool.request({ path: PATH, method: 'POST', headers: target.headers, body: BODY });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${setup.name}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      samples.push(performance.now() - start);
      setup.answered++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  const elapsed = performance.now() - t0;
  const gatewayCpuMs = (sumCpuMs(setup.pids) - gatewayCpu0) / samples.length;
  const databases = await Promise.all(monitors.map((m) => m.stop()));
  const pg = databases.length === 0 ? null : { cpuMs: databases.reduce((n, d) => n + d.cpuMs, 0), lockWaiting: databases.reduce((n, d) => n + d.lockWaiting, 0) };
  return {
    rps: (samples.length / elapsed) * 1000,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    n: samples.length,
    gatewayCpuMs,
    pgCpuMs: pg === null ? null : pg.cpuMs / samples.length,
    lockWaiting: pg?.lockWaiting ?? null,
  };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of these processes so far, ms (Linux /proc; a process gone counts 0). */
function sumCpuMs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * While a run lasts: every 20 ms, how many backends of the database wait for a lock (the chain
 * head's row lock, in practice); at the end, the CPU its backends used (those connected at the start).
 */
async function watchDatabase(url: string): Promise<{ stop(): Promise<{ cpuMs: number; lockWaiting: number }> }> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, application_name: 'aigov-bench-monitor' });
  await client.connect();
  const name = new URL(url).pathname.slice(1);
  const pids = (await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])).rows.map((r) => r.pid);
  const cpu0 = sumCpuMs(pids);
  const waiting: number[] = [];
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const row = (await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [name])).rows[0];
      waiting.push(Number(row?.n ?? 0));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      await client.end();
      return { cpuMs: sumCpuMs(pids) - cpu0, lockWaiting: waiting.reduce((a, b) => a + b, 0) / Math.max(1, waiting.length) };
    },
  };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function flag(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i === -1) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`usage: node bench/replicas.ts [--docs] [--rounds N] [--seconds S] (${name} ${args[i + 1]})`);
  return value;
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

async function main(args: readonly string[]): Promise<void> {
  const docs = args.includes('--docs');
  const rounds = Math.floor(flag(args, '--rounds', 5));
  const seconds = flag(args, '--seconds', 4);
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const stamp = `${process.pid}_${Date.now().toString(36)}`;
  const databases = [`aigov_bench_one_${stamp}`, `aigov_bench_three_${stamp}`, ...[1, 2, 3].map((i) => `aigov_bench_apart${i}_${stamp}`)];
  for (const name of databases) await pgQuery(PG_ADMIN_URL, `CREATE DATABASE ${name}`);
  const [oneUrl, threeUrl, ...apartUrls] = databases.map(databaseUrl) as [string, string, ...string[]];
  const setups: Setup[] = [];
  try {
    const upstream = (await spawnChild('upstream-fake.ts', [])) as { url: string };
    type Gw = { url: string; token: string; pid: number };
    const sqlite = (await spawnChild('gateway-process.ts', [upstream.url])) as Gw;
    const one = (await spawnChild('gateway-process.ts', [upstream.url, '--database-url', oneUrl])) as Gw;
    // The three start together, as a rollout would start them: the migration lock orders them.
    const three = (await Promise.all([0, 1, 2].map(() => spawnChild('gateway-process.ts', [upstream.url, '--database-url', threeUrl])))) as Gw[];
    // The control: three gateways as above, but a database each (no chain shared between them).
    const apart = (await Promise.all(apartUrls.map((url) => spawnChild('gateway-process.ts', [upstream.url, '--database-url', url])))) as Gw[];
    setups.push(
      { name: 'SQLite, one gateway', targets: [targetFor(sqlite)], pids: [sqlite.pid], databaseUrls: [], answered: 0 },
      { name: 'PostgreSQL, one replica', targets: [targetFor(one)], pids: [one.pid], databaseUrls: [oneUrl], answered: 0 },
      { name: 'PostgreSQL, three replicas', targets: three.map(targetFor), pids: three.map((g) => g.pid), databaseUrls: [threeUrl], answered: 0 },
      { name: 'control: three gateways, a PostgreSQL database each', targets: apart.map(targetFor), pids: apart.map((g) => g.pid), databaseUrls: apartUrls, answered: 0 },
    );
    process.stderr.write('warming up…\n');
    for (const setup of setups) await run(setup, WARMUP_MS);

    const results = new Map<Setup, RunFigures[]>(setups.map((s) => [s, []]));
    for (let round = 0; round < rounds; round++) {
      const order = setups.map((_, i) => setups[(i + round) % setups.length]!);
      for (const setup of order) results.get(setup)!.push(await run(setup, seconds * 1000));
      process.stderr.write(`round ${round + 1}/${rounds}: ${setups.map((s) => `${s.name} ${results.get(s)![round]!.rps.toFixed(0)}/s`).join('; ')}\n`);
    }

    // Every call answered 200 is a recorded call: the databases hold exactly that many.
    for (const setup of setups) {
      if (setup.databaseUrls.length === 0) continue;
      let completed = 0;
      let all = 0;
      for (const url of setup.databaseUrls) {
        const [row] = await pgQuery(url, "SELECT count(*) FILTER (WHERE status = 'completed') AS completed, count(*) AS n FROM calls");
        completed += Number(row!['completed']);
        all += Number(row!['n']);
      }
      if (completed !== setup.answered || all !== setup.answered) throw new Error(`${setup.name}: ${setup.answered} calls answered, the databases hold ${all} (${completed} completed)`);
    }

    const median = (values: number[]): number => percentile(values, 50);
    // Against one replica on PostgreSQL in the same round (the machine's load drifts between rounds).
    const reference = results.get(setups[1]!)!.map((r) => r.rps);
    const rows = setups.map((setup) => {
      const r = results.get(setup)!;
      const rps = r.map((x) => x.rps);
      const ratio = median(rps.map((x, i) => x / reference[i]!));
      const pgCpu = setup.databaseUrls.length === 0 ? '—' : `${median(r.map((x) => x.pgCpuMs ?? 0)).toFixed(2)} ms`;
      const waiting = setup.databaseUrls.length === 0 ? '—' : median(r.map((x) => x.lockWaiting ?? 0)).toFixed(1);
      return `| ${setup.name} | ${median(rps).toFixed(0)} calls/s (${Math.min(...rps).toFixed(0)}–${Math.max(...rps).toFixed(0)}) | ${ratio.toFixed(2)}× | ${median(r.map((x) => x.p50)).toFixed(1)} ms | ${median(r.map((x) => x.p99)).toFixed(1)} ms | ${median(r.map((x) => x.gatewayCpuMs)).toFixed(2)} ms | ${pgCpu} | ${waiting} |`;
    });
    const { default: pg } = await import('pg');
    const pgClient = new pg.Client({ connectionString: oneUrl });
    await pgClient.connect();
    const version = (await pgClient.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    await pgClient.end();
    const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
    const total = setups.reduce((n, s) => n + s.answered, 0);
    const lines = [
      MARK_START,
      '## Sustained recorded calls/s: three replicas on PostgreSQL (issue 14)',
      '',
      `Command: \`${['node bench/replicas.ts', ...args].join(' ')}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, **${os.availableParallelism()} cores** (${cpu}) shared by every process below and by other work on the machine (1-min load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end), ${((performance.now() - started) / 1000).toFixed(0)} s.`,
      '',
      '| setup | recorded calls/s at concurrency 32, median (range) | vs one replica on PostgreSQL (median of per-round ratios) | latency p50 | latency p99 | gateway CPU per call (all replicas) | PostgreSQL CPU per call | backends waiting for a lock (mean) |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `${rounds} rounds of ${seconds} s per setup, the order rotating between rounds; ${CONCURRENCY} concurrent clients sending non-streamed ~2 KB chat completions (~2 KB answers) from one driver process, spread round-robin over the replicas. Every call answered 200, and the PostgreSQL databases held exactly as many completed calls as were answered (${total} calls in all, warm-up included). PostgreSQL ${version} on the same machine over TCP, storage.synchronous_commit on (the default), pool_size 10 per replica; every write transaction of every replica takes the audit chain's head row lock. ` +
        'CPU per call: user + system time (/proc) of the gateway processes, and of the PostgreSQL backends connected to the database at the start of a run, over the calls of the run; backends waiting for a lock: pg_stat_activity sampled every 20 ms during the run. ' +
        `**On ${os.availableParallelism()} cores this measures contention, not scale-out:** the replicas, PostgreSQL's backends, the fake upstream and the driver all share the same cores, so a second and third replica add processes competing for them, not CPU.`,
      MARK_END,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (docs) {
      const doc = readFileSync(DOC, 'utf8');
      const from = doc.indexOf(MARK_START);
      const to = doc.indexOf(MARK_END);
      writeFileSync(DOC, from !== -1 && to > from ? `${doc.slice(0, from)}${lines.join('\n')}${doc.slice(to + MARK_END.length)}` : `${doc.trimEnd()}\n\n${lines.join('\n')}\n`);
    }
  } finally {
    for (const setup of setups) for (const t of setup.targets) await t.pool.close().catch(() => undefined);
    await stopChildren();
    for (const name of databases) await pgQuery(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  }
}

process.on('SIGINT', () => {
  void stopChildren().then(() => process.exit(130));
});

await main(process.argv.slice(2)).catch(async (error: unknown) => {
  process.stderr.write(`replicas bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopChildren();
  process.exit(1);
});
