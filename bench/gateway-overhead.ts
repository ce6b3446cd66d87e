/**
 * What the gateway adds to a call, measured side by side in one run: direct to a fake upstream
 * vs through aigov (token verification, parsing, SQLite recording ON, forwarding).
 *
 *   node bench/gateway-overhead.ts              (npm run bench)
 *   node bench/gateway-overhead.ts --profile    (also writes a .cpuprofile of the gateway to a
 *                                                temp dir; figures are then not written to docs)
 *   node bench/gateway-overhead.ts --store postgres
 *                                               (the recording store compared: one gateway on
 *                                                SQLite, one on PostgreSQL, in the same run)
 *   node bench/gateway-overhead.ts --budgets    (budgets compared in one run: the same policy
 *                                                without budgets, with two budgets counted in the
 *                                                gateway's memory, and counted in Redis)
 *
 * Three processes, so the load generator does not share an event loop with what it measures:
 * bench/upstream-fake.ts (node:http, fixed answers, no delays), bench/gateway-process.ts (dev IdP +
 * gateway, SQLite in a temp dir) and this driver (undici Pools, keep-alive). Direct and gateway
 * runs alternate within each of ROUNDS rounds so machine noise hits both alike; the table gives
 * medians of the per-round figures. Every loop is bounded by a count and a time cap. Prints a
 * markdown table and writes it between the gateway-overhead markers of docs/benchmarks.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const ROUNDS = 5;
const LATENCY_REQUESTS = 400; // per target per round, concurrency 1
const LATENCY_CAP_MS = 3000;
const STREAM_REQUESTS = 150; // per target per round, concurrency 1
const STREAM_CAP_MS = 3000;
const THROUGHPUT_CONCURRENCY = 32;
const THROUGHPUT_MS = 1500; // per target per round
const THROUGHPUT_MAX_REQUESTS = 50_000;
const WARMUP_REQUESTS = 500;
const PATH_DIRECT = '/v1/chat/completions';
const PATH_GATEWAY = '/openai/v1/chat/completions';

const GOALS = { addedP50Ms: 0.3, throughputRatio: 0.5, addedTtftMs: 1 };

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs', 'benchmarks.md');
const MARK_START = '<!-- gateway-overhead:start -->';
const MARK_END = '<!-- gateway-overhead:end -->';
const profile = process.argv.includes('--profile');
/** Diagnostic: the gateway with a store that discards everything, to isolate the recording store's share. Docs are not updated. */
const recordingOff = process.argv.includes('--recording-off');
/** `--store postgres`: two gateways, SQLite and PostgreSQL stores, measured in the same run (storeComparison). */
const storeFlag = process.argv.indexOf('--store');
const storeMode = storeFlag === -1 ? null : process.argv[storeFlag + 1];
/** The PostgreSQL server the comparison makes its database on (trust auth on the CI machine). */
const PG_ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const STORE_MARK_START = '<!-- store-postgres:start -->';
const STORE_MARK_END = '<!-- store-postgres:end -->';
const STORE_GOAL_RATIO = 1.5;

// ---------------------------------------------------------------------------------------------
// Requests: a 2 KB chat completion body (the prompt), streamed and not.

function requestBody(stream: boolean): string {
  const base = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are a careful assistant for an engineering team. Answer concisely.' },
      { role: 'user', content: '' },
    ],
    temperature: 0.2,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
  const question = 'Summarize the following design notes and list the open risks for the rollout of the new billing service. ';
  let content = '';
  const size = (): number => Buffer.byteLength(JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] }));
  while (size() < 2048) content += question;
  content = content.slice(0, content.length - (size() - 2048));
  return JSON.stringify({ ...base, messages: [base.messages[0], { role: 'user', content }] });
}

const BODY = requestBody(false);
const STREAM_BODY = requestBody(true);

type TargetName = 'direct' | 'gateway' | 'sqlite' | 'postgres' | 'postgres-async' | 'budgets-off' | 'budgets-memory' | 'budgets-redis';
type Side = 'direct' | 'gateway';

interface Target<N extends TargetName = TargetName> {
  readonly name: N;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly single: Pool;
  readonly many: Pool;
}

function makeTarget<N extends TargetName>(name: N, origin: string, urlPath: string, token: string | null): Target<N> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  const opts = { pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 };
  return { name, path: urlPath, headers, single: new Pool(origin, { ...opts, connections: 1 }), many: new Pool(origin, { ...opts, connections: THROUGHPUT_CONCURRENCY }) };
}

/** One non-streamed completion, body read to the end. Returns the body text. */
async function complete(target: Target, pool: Pool): Promise<string> {
  const res = await pool.request({ path: target.path, method: 'POST', headers: target.headers, body: BODY });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${target.name}: HTTP ${res.statusCode} for a chat completion`);
  return text;
}

/** One streamed completion: ms until the first SSE event carrying content, and until [DONE]. */
async function streamOnce(target: Target): Promise<{ ttftMs: number; totalMs: number; contentEvents: number }> {
  const t0 = performance.now();
  const res = await target.single.request({ path: target.path, method: 'POST', headers: { ...target.headers, accept: 'text/event-stream' }, body: STREAM_BODY });
  if (res.statusCode !== 200) {
    await res.body.text();
    throw new Error(`${target.name}: HTTP ${res.statusCode} for a streamed completion`);
  }
  let ttftMs = -1;
  let done = false;
  let contentEvents = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ')) continue;
      const data = event.slice(6);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
      if ((parsed.choices?.[0]?.delta?.content ?? '') !== '') {
        contentEvents++;
        if (ttftMs < 0) ttftMs = performance.now() - t0;
      }
    }
  }
  const totalMs = performance.now() - t0;
  if (!done || ttftMs < 0) throw new Error(`${target.name}: stream ended without content or without [DONE]`);
  return { ttftMs, totalMs, contentEvents };
}

// ---------------------------------------------------------------------------------------------
// Measurements (each bounded by a count and a time cap).

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

async function latencyRun(target: Target): Promise<{ p50: number; p99: number; n: number }> {
  const samples: number[] = [];
  const deadline = performance.now() + LATENCY_CAP_MS;
  for (let i = 0; i < LATENCY_REQUESTS && performance.now() < deadline; i++) {
    const t0 = performance.now();
    await complete(target, target.single);
    samples.push(performance.now() - t0);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

async function streamRun(target: Target): Promise<{ ttftP50: number; ttftP99: number; totalP50: number; n: number }> {
  const ttft: number[] = [];
  const total: number[] = [];
  const deadline = performance.now() + STREAM_CAP_MS;
  for (let i = 0; i < STREAM_REQUESTS && performance.now() < deadline; i++) {
    const r = await streamOnce(target);
    ttft.push(r.ttftMs);
    total.push(r.totalMs);
  }
  return { ttftP50: percentile(ttft, 50), ttftP99: percentile(ttft, 99), totalP50: percentile(total, 50), n: ttft.length };
}

async function throughputRun(target: Target, durationMs: number): Promise<{ rps: number; n: number }> {
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && n < THROUGHPUT_MAX_REQUESTS) {
      await complete(target, target.many);
      n++;
    }
  };
  await Promise.all(Array.from({ length: THROUGHPUT_CONCURRENCY }, worker));
  const elapsed = performance.now() - t0;
  return { rps: (n / elapsed) * 1000, n };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process so far, in ms (Linux /proc; null elsewhere). */
function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
  } catch {
    return null;
  }
}

function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes.

const children: ChildProcess[] = [];

async function spawnChild(script: string, args: string[], nodeArgs: string[] = []): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 30 s`)), 30_000);
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
  child.stdout.resume(); // nothing more is expected; never let it fill up
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
          }, 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------

const fmtMs = (ms: number): string => `${ms.toFixed(3)} ms`;
const fmtMb = (mb: number | null): string => (mb === null ? 'n/a' : `${mb.toFixed(1)} MB`);
const yes = (ok: boolean): string => (ok ? 'yes' : '**no**');

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const upstream = (await spawnChild('upstream-fake.ts', [])) as { url: string; pid: number };
  let profileDir: string | null = null;
  const nodeArgs: string[] = [];
  if (profile) {
    profileDir = mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-prof-'));
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const gw = (await spawnChild('gateway-process.ts', recordingOff ? [upstream.url, '--recording-off'] : [upstream.url], nodeArgs)) as { url: string; token: string; pid: number };
  const direct = makeTarget('direct', upstream.url, PATH_DIRECT, null);
  const gateway = makeTarget('gateway', gw.url, PATH_GATEWAY, gw.token);
  const targets = [direct, gateway];

  try {
    // Sanity: the gateway relays the same answer, and the whole stream.
    const a = JSON.parse(await complete(direct, direct.single)) as { choices: { message: { content: string } }[] };
    const b = JSON.parse(await complete(gateway, gateway.single)) as { choices: { message: { content: string } }[] };
    if (a.choices[0]!.message.content !== b.choices[0]!.message.content || a.choices[0]!.message.content.length < 2000) throw new Error('the gateway answer differs from the direct one');
    const sd = await streamOnce(direct);
    const sg = await streamOnce(gateway);
    if (sd.contentEvents !== sg.contentEvents || sd.contentEvents < 40) throw new Error(`stream content events differ: direct ${sd.contentEvents}, gateway ${sg.contentEvents}`);

    // Warm-up (JIT, connection pools, SQLite pages), bounded.
    process.stderr.write('warming up…\n');
    for (const t of targets) {
      const deadline = performance.now() + 5000;
      for (let i = 0; i < WARMUP_REQUESTS && performance.now() < deadline; i++) await complete(t, t.single);
      for (let i = 0; i < 100 && performance.now() < deadline; i++) await streamOnce(t);
      await throughputRun(t, 500);
    }
    const rssWarm = rssMb(gw.pid);

    const lat: Record<Side, { p50: number; p99: number }[]> = { direct: [], gateway: [] };
    const str: Record<Side, { ttftP50: number; ttftP99: number; totalP50: number }[]> = { direct: [], gateway: [] };
    const thr: Record<Side, number[]> = { direct: [], gateway: [] };
    // CPU per call at concurrency 32 of the process that serves the target's socket.
    const cpu: Record<Side, { ms: number; calls: number }> = { direct: { ms: 0, calls: 0 }, gateway: { ms: 0, calls: 0 } };
    const servingPid = { direct: upstream.pid, gateway: gw.pid };
    let requests = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first so drift within a round does not favour one.
      const order = round % 2 === 0 ? [direct, gateway] : [gateway, direct];
      for (const t of order) {
        const r = await latencyRun(t);
        lat[t.name].push(r);
        requests += r.n;
      }
      for (const t of order) {
        const r = await streamRun(t);
        str[t.name].push(r);
        requests += r.n;
      }
      for (const t of order) {
        const c0 = cpuMs(servingPid[t.name]);
        const r = await throughputRun(t, THROUGHPUT_MS);
        const c1 = cpuMs(servingPid[t.name]);
        if (c0 !== null && c1 !== null) {
          cpu[t.name].ms += c1 - c0;
          cpu[t.name].calls += r.n;
        }
        thr[t.name].push(r.rps);
        requests += r.n;
      }
      process.stderr.write(
        `round ${round + 1}/${ROUNDS}: p50 ${lat.direct[round]!.p50.toFixed(3)} / ${lat.gateway[round]!.p50.toFixed(3)} ms, ` +
          `ttft ${str.direct[round]!.ttftP50.toFixed(3)} / ${str.gateway[round]!.ttftP50.toFixed(3)} ms, ` +
          `c${THROUGHPUT_CONCURRENCY} ${thr.direct[round]!.toFixed(0)} / ${thr.gateway[round]!.toFixed(0)} req/s\n`,
      );
    }
    const rssLoad = rssMb(gw.pid);
    const rssUpstream = rssMb(upstream.pid);

    const perRound = <T>(name: Side, src: Record<Side, T[]>, f: (x: T) => number): number[] => src[name].map(f);
    const diff = (d: number[], g: number[]): number[] => g.map((x, i) => x - d[i]!);
    const p50d = perRound('direct', lat, (x) => x.p50);
    const p50g = perRound('gateway', lat, (x) => x.p50);
    const p99d = perRound('direct', lat, (x) => x.p99);
    const p99g = perRound('gateway', lat, (x) => x.p99);
    const ttd = perRound('direct', str, (x) => x.ttftP50);
    const ttg = perRound('gateway', str, (x) => x.ttftP50);
    const tt99d = perRound('direct', str, (x) => x.ttftP99);
    const tt99g = perRound('gateway', str, (x) => x.ttftP99);
    const totd = perRound('direct', str, (x) => x.totalP50);
    const totg = perRound('gateway', str, (x) => x.totalP50);
    const ratios = thr.gateway.map((g, i) => g / thr.direct[i]!);

    const addedP50 = median(diff(p50d, p50g));
    const addedTtft = median(diff(ttd, ttg));
    const ratio = median(ratios);
    const rows = [
      ['figure', 'direct', 'through aigov', 'added / ratio', 'goal', 'met?'],
      ['latency p50, non-streamed, concurrency 1', fmtMs(median(p50d)), fmtMs(median(p50g)), `+${fmtMs(addedP50)}`, `≤ +${GOALS.addedP50Ms} ms`, yes(addedP50 <= GOALS.addedP50Ms)],
      ['latency p99, non-streamed, concurrency 1', fmtMs(median(p99d)), fmtMs(median(p99g)), `+${fmtMs(median(diff(p99d, p99g)))}`, '—', '—'],
      [`throughput, concurrency ${THROUGHPUT_CONCURRENCY}`, `${median(thr.direct).toFixed(0)} req/s`, `${median(thr.gateway).toFixed(0)} req/s`, `${ratio.toFixed(2)}×`, `≥ ${GOALS.throughputRatio}×`, yes(ratio >= GOALS.throughputRatio)],
      [
        `CPU per call at concurrency ${THROUGHPUT_CONCURRENCY} (serving process)`,
        cpu.direct.calls > 0 ? `${fmtMs(cpu.direct.ms / cpu.direct.calls)} (fake upstream)` : 'n/a',
        cpu.gateway.calls > 0 ? `${fmtMs(cpu.gateway.ms / cpu.gateway.calls)} (gateway)` : 'n/a',
        cpu.direct.calls > 0 && cpu.gateway.calls > 0 ? `${(cpu.gateway.ms / cpu.gateway.calls / (cpu.direct.ms / cpu.direct.calls)).toFixed(1)}×` : '—',
        '—',
        '—',
      ],
      ['time to first token p50, streamed', fmtMs(median(ttd)), fmtMs(median(ttg)), `+${fmtMs(addedTtft)}`, `≤ +${GOALS.addedTtftMs} ms`, yes(addedTtft <= GOALS.addedTtftMs)],
      ['time to first token p99, streamed', fmtMs(median(tt99d)), fmtMs(median(tt99g)), `+${fmtMs(median(diff(tt99d, tt99g)))}`, '—', '—'],
      ['whole stream p50 (44 events, [DONE])', fmtMs(median(totd)), fmtMs(median(totg)), `+${fmtMs(median(diff(totd, totg)))}`, '—', '—'],
      ['gateway RSS after warm-up', `(fake upstream: ${fmtMb(rssUpstream)})`, fmtMb(rssWarm), '—', '—', '—'],
      ['gateway RSS after the load', '—', fmtMb(rssLoad), '—', '—', '—'],
    ];
    const table = rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`).join('\n');
    const seconds = (performance.now() - started) / 1000;
    const cpuModel = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
    const setup =
      `${ROUNDS} rounds, direct and gateway alternating within each round; medians of the per-round figures ` +
      `("added" = median of per-round differences). Per round and side: ${LATENCY_REQUESTS} non-streamed calls at concurrency 1, ` +
      `${STREAM_REQUESTS} streamed calls at concurrency 1, ${THROUGHPUT_MS / 1000} s at concurrency ${THROUGHPUT_CONCURRENCY}. ` +
      `2 KB prompt, 2 KB answer (streamed: 40 content events + role, finish, usage and [DONE]); ${recordingOff ? 'recording OFF (diagnostic run: a store that discards everything)' : 'recording ON (SQLite in a temp dir)'}; ` +
      `${requests} measured requests, ${seconds.toFixed(0)} s in all. Upstream fake, gateway and load generator are separate processes on the same machine (1-min load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end: on a 2-core machine the gateway competes for CPU with the load generator and the fake upstream, which depresses the throughput ratio).`;

    process.stdout.write(`\n${table}\n\n${setup}\n`);
    if (profileDir) {
      process.stdout.write(`\n(--profile: the gateway's CPU profile is written to ${profileDir} when it exits; docs not updated)\n`);
      return;
    }
    if (recordingOff) {
      process.stdout.write('\n(--recording-off: diagnostic run, docs not updated)\n');
      return;
    }
    const section = [
      MARK_START,
      '## Gateway overhead',
      '',
      `Command: \`node bench/gateway-overhead.ts\` (\`npm run bench\`) — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, nproc ${os.availableParallelism()} (${cpuModel}), ${os.platform()} ${os.release()}.`,
      '',
      table,
      '',
      setup,
      MARK_END,
    ].join('\n');
    let doc: string;
    try {
      doc = readFileSync(DOC, 'utf8');
    } catch {
      doc = '# Benchmarks\n\nFigures measured on this repository, each with the command that produced it.\n\n';
    }
    const s = doc.indexOf(MARK_START);
    const e = doc.indexOf(MARK_END);
    doc = s !== -1 && e > s ? doc.slice(0, s) + section + doc.slice(e + MARK_END.length) : `${doc.trimEnd()}\n\n${section}\n`;
    writeFileSync(DOC, doc);
    process.stdout.write(`\nwritten to ${path.relative(process.cwd(), DOC) || DOC}\n`);
  } finally {
    for (const t of targets) {
      await t.single.close().catch(() => undefined);
      await t.many.close().catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// --store postgres: the same gateway recording in SQLite and in PostgreSQL, side by side.

/** Concurrency 32 for `durationMs`: throughput, and each call's latency (under that load). */
async function loadedRun(target: Target, durationMs: number): Promise<{ rps: number; p50: number; p99: number; n: number }> {
  const samples: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && samples.length < THROUGHPUT_MAX_REQUESTS) {
      const start = performance.now();
      await complete(target, target.many);
      samples.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: THROUGHPUT_CONCURRENCY }, worker));
  const elapsed = performance.now() - t0;
  return { rps: (samples.length / elapsed) * 1000, p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

async function pgAdmin(sql: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

type StoreSide = 'direct' | 'sqlite' | 'postgres' | 'postgres-async';
type StoreGateway = Exclude<StoreSide, 'direct'>;

async function storeComparison(): Promise<void> {
  if (storeMode !== 'postgres') throw new Error(`--store takes "postgres" (got ${String(storeMode)})`);
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const dbName = `aigov_bench_${process.pid}_${Date.now().toString(36)}`;
  await pgAdmin(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const targets: Target[] = [];
  try {
    const upstream = (await spawnChild('upstream-fake.ts', [])) as { url: string; pid: number };
    const sqliteGw = (await spawnChild('gateway-process.ts', [upstream.url])) as { url: string; token: string; pid: number };
    // Two PostgreSQL gateways on one database would share its chain lock: each gets a database of its own.
    const asyncUrl = new URL(dbUrl.toString());
    asyncUrl.pathname = `/${dbName}_async`;
    await pgAdmin(`CREATE DATABASE ${dbName}_async`);
    const pgGw = (await spawnChild('gateway-process.ts', [upstream.url, '--database-url', dbUrl.toString()])) as { url: string; token: string; pid: number };
    const pgAsyncGw = (await spawnChild('gateway-process.ts', [upstream.url, '--database-url', asyncUrl.toString(), '--synchronous-commit', 'off'])) as { url: string; token: string; pid: number };
    const direct = makeTarget('direct', upstream.url, PATH_DIRECT, null);
    const sqlite = makeTarget('sqlite', sqliteGw.url, PATH_GATEWAY, sqliteGw.token);
    const postgres = makeTarget('postgres', pgGw.url, PATH_GATEWAY, pgGw.token);
    const postgresAsync = makeTarget('postgres-async', pgAsyncGw.url, PATH_GATEWAY, pgAsyncGw.token);
    targets.push(direct, sqlite, postgres, postgresAsync);

    const reference = JSON.parse(await complete(direct, direct.single)) as { choices: { message: { content: string } }[] };
    for (const t of [sqlite, postgres, postgresAsync]) {
      const answer = JSON.parse(await complete(t, t.single)) as { choices: { message: { content: string } }[] };
      if (answer.choices[0]!.message.content !== reference.choices[0]!.message.content) throw new Error(`${t.name}: the gateway answer differs from the direct one`);
    }
    process.stderr.write('warming up…\n');
    for (const t of targets) {
      const deadline = performance.now() + 5000;
      for (let i = 0; i < WARMUP_REQUESTS && performance.now() < deadline; i++) await complete(t, t.single);
      await loadedRun(t, 500);
    }

    type Figures = { p50: number; p99: number; lp50: number; lp99: number; rps: number };
    const rounds: Record<StoreSide, Figures[]> = { direct: [], sqlite: [], postgres: [], 'postgres-async': [] };
    let requests = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate which target goes first, so drift within a round favours none.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      const lat = new Map<Target, { p50: number; p99: number }>();
      for (const t of order) {
        const r = await latencyRun(t);
        lat.set(t, r);
        requests += r.n;
      }
      for (const t of order) {
        const r = await loadedRun(t, THROUGHPUT_MS);
        requests += r.n;
        rounds[t.name as StoreSide].push({ p50: lat.get(t)!.p50, p99: lat.get(t)!.p99, lp50: r.p50, lp99: r.p99, rps: r.rps });
      }
      const f = (n: StoreSide): string => `${rounds[n][round]!.p50.toFixed(3)} ms / c${THROUGHPUT_CONCURRENCY} ${rounds[n][round]!.rps.toFixed(0)} req/s`;
      process.stderr.write(`round ${round + 1}/${ROUNDS}: direct ${f('direct')}; sqlite ${f('sqlite')}; postgres ${f('postgres')}; postgres-async ${f('postgres-async')}\n`);
    }
    const added = (n: StoreGateway, key: keyof Figures): number => median(rounds[n].map((r, i) => r[key] - rounds.direct[i]![key]));
    const med = (n: StoreSide, key: keyof Figures): number => median(rounds[n].map((r) => r[key]));
    const ratio = (n: 'postgres' | 'postgres-async', key: keyof Figures): string => {
      const r = added(n, key) / added('sqlite', key);
      return `${r.toFixed(2)}× ${r <= STORE_GOAL_RATIO ? '(met)' : '(**not met**)'}`;
    };
    const row = (figure: string, key: 'p50' | 'p99' | 'lp50' | 'lp99'): string[] =>
      [figure, fmtMs(med('direct', key)), `+${fmtMs(added('sqlite', key))}`, `+${fmtMs(added('postgres', key))}`, `+${fmtMs(added('postgres-async', key))}`, ratio('postgres', key), ratio('postgres-async', key)];
    const rps = (n: StoreSide): string => `${med(n, 'rps').toFixed(0)} req/s`;
    const rpsRatio = (n: 'postgres' | 'postgres-async'): string => `${(med(n, 'rps') / med('sqlite', 'rps')).toFixed(2)}×`;
    const rows = [
      ['figure', 'direct (no gateway)', 'added: SQLite', 'added: PostgreSQL, synchronous_commit on (default)', 'added: PostgreSQL, synchronous_commit off', `PostgreSQL on / SQLite (goal ≤ ${STORE_GOAL_RATIO}×)`, `PostgreSQL off / SQLite (goal ≤ ${STORE_GOAL_RATIO}×)`],
      row('latency p50, non-streamed, concurrency 1', 'p50'),
      row('latency p99, non-streamed, concurrency 1', 'p99'),
      row(`latency p50 under concurrency ${THROUGHPUT_CONCURRENCY}`, 'lp50'),
      row(`latency p99 under concurrency ${THROUGHPUT_CONCURRENCY}`, 'lp99'),
      [`throughput, concurrency ${THROUGHPUT_CONCURRENCY}`, rps('direct'), rps('sqlite'), rps('postgres'), rps('postgres-async'), rpsRatio('postgres'), rpsRatio('postgres-async')],
    ];
    const table = rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`).join('\n');
    const pgVersion = await (async () => {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: dbUrl.toString() });
      await client.connect();
      try {
        const res = await client.query<{ v: string; sc: string }>("SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc");
        return `PostgreSQL ${res.rows[0]!.v} (server default synchronous_commit ${res.rows[0]!.sc})`;
      } finally {
        await client.end();
      }
    })();
    const seconds = (performance.now() - started) / 1000;
    const setup =
      `${ROUNDS} rounds; in each, the four targets in rotating order: ${LATENCY_REQUESTS} non-streamed calls at concurrency 1, then ${THROUGHPUT_MS / 1000} s at concurrency ${THROUGHPUT_CONCURRENCY} ` +
      `(latency under load = each call's time during that run). "added" = median over rounds of (gateway − direct) in the same round; a ratio divides PostgreSQL's added figure by SQLite's. ` +
      `2 KB prompt, 2 KB answer. Three gateway processes, identical but for storage: SQLite in a temp dir (WAL, synchronous NORMAL, writer thread), and ${pgVersion} on this machine over TCP, a database each, with storage.synchronous_commit on and off (one write connection, pool of 10; a write transaction is one statement calling migration 6's functions, which take the chain_head row lock; a group of records and the results due go in one commit). ` +
      `Upstream fake, gateways, PostgreSQL and the load generator share the machine (1-min load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end); ${requests} measured requests, ${seconds.toFixed(0)} s in all.`;
    process.stdout.write(`\n${table}\n\n${setup}\n`);
    const section = [
      STORE_MARK_START,
      '## Recording store: PostgreSQL vs SQLite through the gateway',
      '',
      `Command: \`node bench/gateway-overhead.ts --store postgres\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, nproc ${os.availableParallelism()} (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${os.platform()} ${os.release()}.`,
      '',
      table,
      '',
      setup,
      STORE_MARK_END,
    ].join('\n');
    let doc = readFileSync(DOC, 'utf8');
    const a = doc.indexOf(STORE_MARK_START);
    const b = doc.indexOf(STORE_MARK_END);
    doc = a !== -1 && b > a ? doc.slice(0, a) + section + doc.slice(b + STORE_MARK_END.length) : `${doc.trimEnd()}\n\n${section}\n`;
    writeFileSync(DOC, doc);
    process.stdout.write(`\nwritten to ${path.relative(process.cwd(), DOC) || DOC}\n`);
  } finally {
    for (const t of targets) {
      await t.single.close().catch(() => undefined);
      await t.many.close().catch(() => undefined);
    }
    await stopChildren();
    await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await pgAdmin(`DROP DATABASE IF EXISTS ${dbName}_async WITH (FORCE)`).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// --budgets: what checking budgets adds, single node (memory) and shared (Redis), in one run.

const budgetsMode = process.argv.includes('--budgets');
const REDIS_URL = process.env['AIGOV_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const BUDGET_MARK_START = '<!-- budgets-overhead:start -->';
const BUDGET_MARK_END = '<!-- budgets-overhead:end -->';
const BUDGET_GOALS = { memory: 0.1, redis: 0.5 };
/** Two budgets every bench call is counted in (two counters, as a per-user plus a team budget make); limits never reached. */
const BUDGET_POLICY = `version: 1
budgets:
  - id: per-user-daily
    who: { users: '*' }
    window: 1d
    limit: { usd: 1000000 }
  - id: everyone-monthly
    who: '*'
    window: 1mo
    limit: { usd: 100000000 }
    warn_at: [0.9]
`;

async function budgetComparison(): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-budgets-'));
  const off = path.join(dir, 'off.yaml');
  const on = path.join(dir, 'budgets.yaml');
  writeFileSync(off, 'version: 1\n');
  writeFileSync(on, BUDGET_POLICY);
  const prefix = `aigov-bench-${process.pid}:`;
  const targets: Target[] = [];
  try {
    const upstream = (await spawnChild('upstream-fake.ts', [])) as { url: string; pid: number };
    const offGw = (await spawnChild('gateway-process.ts', [upstream.url, '--policy', off])) as { url: string; token: string };
    const memoryGw = (await spawnChild('gateway-process.ts', [upstream.url, '--policy', on, '--budget-counters', 'memory'])) as { url: string; token: string };
    const redisGw = (await spawnChild('gateway-process.ts', [upstream.url, '--policy', on, '--budget-counters', 'redis', '--redis-url', REDIS_URL, '--redis-prefix', prefix])) as { url: string; token: string };
    const direct = makeTarget('direct', upstream.url, PATH_DIRECT, null);
    const budgetsOff = makeTarget('budgets-off', offGw.url, PATH_GATEWAY, offGw.token);
    const memory = makeTarget('budgets-memory', memoryGw.url, PATH_GATEWAY, memoryGw.token);
    const redis = makeTarget('budgets-redis', redisGw.url, PATH_GATEWAY, redisGw.token);
    targets.push(direct, budgetsOff, memory, redis);
    for (const t of [budgetsOff, memory, redis]) await complete(t, t.single);
    process.stderr.write('warming up…\n');
    for (const t of targets) {
      const deadline = performance.now() + 5000;
      for (let i = 0; i < WARMUP_REQUESTS && performance.now() < deadline; i++) await complete(t, t.single);
      await loadedRun(t, 500);
    }
    type Figures = { p50: number; p99: number; lp50: number; rps: number };
    const rounds = new Map<Target, Figures[]>(targets.map((t) => [t, []]));
    let requests = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      const lat = new Map<Target, { p50: number; p99: number }>();
      for (const t of order) {
        const r = await latencyRun(t);
        lat.set(t, r);
        requests += r.n;
      }
      for (const t of order) {
        const r = await loadedRun(t, THROUGHPUT_MS);
        requests += r.n;
        rounds.get(t)!.push({ p50: lat.get(t)!.p50, p99: lat.get(t)!.p99, lp50: r.p50, rps: r.rps });
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS}: p50 ${targets.map((t) => `${t.name} ${rounds.get(t)![round]!.p50.toFixed(3)}`).join(', ')} ms\n`);
    }
    const med = (t: Target, key: keyof Figures): number => median(rounds.get(t)!.map((r) => r[key]));
    const added = (t: Target, key: keyof Figures): number => median(rounds.get(t)!.map((r, i) => r[key] - rounds.get(budgetsOff)![i]![key]));
    const goal = (t: Target): string => {
      const limit = t === memory ? BUDGET_GOALS.memory : BUDGET_GOALS.redis;
      const a = added(t, 'p50');
      return `≤ +${limit} ms: ${a <= limit ? 'met' : '**not met**'}`;
    };
    const row = (t: Target, label: string): string[] => [
      label,
      fmtMs(med(t, 'p50')),
      t === budgetsOff ? '—' : `+${fmtMs(added(t, 'p50'))}`,
      fmtMs(med(t, 'p99')),
      t === budgetsOff ? '—' : `+${fmtMs(added(t, 'p99'))}`,
      fmtMs(med(t, 'lp50')),
      `${med(t, 'rps').toFixed(0)} req/s`,
      t === budgetsOff ? '—' : goal(t),
    ];
    const rows = [
      ['gateway', 'latency p50 (c1)', 'added by budgets', 'latency p99 (c1)', 'added by budgets', `latency p50 under c${THROUGHPUT_CONCURRENCY}`, `throughput c${THROUGHPUT_CONCURRENCY}`, 'goal (added p50)'],
      ['direct (no gateway)', fmtMs(med(direct, 'p50')), '—', fmtMs(med(direct, 'p99')), '—', fmtMs(med(direct, 'lp50')), `${med(direct, 'rps').toFixed(0)} req/s`, '—'],
      row(budgetsOff, 'aigov, budgets off (the same policy file without budgets)'),
      row(memory, 'aigov, two budgets counted in memory (single node)'),
      row(redis, 'aigov, two budgets counted in Redis (shared by replicas)'),
    ];
    const table = rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`).join('\n');
    const seconds = (performance.now() - started) / 1000;
    const setup =
      `${ROUNDS} rounds; in each, the four targets in rotating order: ${LATENCY_REQUESTS} non-streamed calls at concurrency 1, then ${THROUGHPUT_MS / 1000} s at concurrency ${THROUGHPUT_CONCURRENCY}. ` +
      `"added by budgets" = median over rounds of (gateway with budgets − gateway without) in the same round. Three gateway processes identical but for budgets (SQLite recording each): ` +
      `the policy without budgets; a per-user daily and an everyone monthly budget in dollars (every call reserves on two counters and settles both) counted in the gateway's memory; the same counted in Redis at ${REDIS_URL.replace(/\/\/[^@]*@/, '//')} (one Lua script per reserve and per settle). ` +
      `2 KB prompt, 2 KB answer. Upstream fake, gateways, Redis and the load generator share the machine (1-min load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end); ${requests} measured requests, ${seconds.toFixed(0)} s in all.`;
    process.stdout.write(`\n${table}\n\n${setup}\n`);
    const section = [
      BUDGET_MARK_START,
      '## Budgets: what the check adds',
      '',
      `Command: \`node bench/gateway-overhead.ts --budgets\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, nproc ${os.availableParallelism()} (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${os.platform()} ${os.release()}.`,
      '',
      table,
      '',
      setup,
      BUDGET_MARK_END,
    ].join('\n');
    let doc = readFileSync(DOC, 'utf8');
    const a = doc.indexOf(BUDGET_MARK_START);
    const b = doc.indexOf(BUDGET_MARK_END);
    doc = a !== -1 && b > a ? doc.slice(0, a) + section + doc.slice(b + BUDGET_MARK_END.length) : `${doc.trimEnd()}\n\n${section}\n`;
    writeFileSync(DOC, doc);
    process.stdout.write(`\nwritten to ${path.relative(process.cwd(), DOC) || DOC}\n`);
  } finally {
    for (const t of targets) {
      await t.single.close().catch(() => undefined);
      await t.many.close().catch(() => undefined);
    }
    await stopChildren();
    const { Redis } = await import('ioredis');
    const client = new Redis(REDIS_URL);
    const keys = await client.keys(`${prefix}*`).catch(() => [] as string[]);
    if (keys.length > 0) await client.del(...keys).catch(() => 0);
    client.disconnect();
  }
}

process.on('SIGINT', () => {
  void stopChildren().then(() => process.exit(130));
});

try {
  await (budgetsMode ? budgetComparison() : storeMode === null ? main() : storeComparison());
} catch (error) {
  process.stderr.write(`gateway-overhead failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await stopChildren();
}
