/**
 * What the daemon hop adds to a call: client → daemon → gateway vs client → gateway directly,
 * same access token, a small non-streamed chat completion, concurrency 1.
 *
 *   node bench/daemon-hop.ts
 *
 * Four processes, so nothing measured shares an event loop with the load generator:
 * bench/upstream-fake.ts (fixed answers), bench/gateway-process.ts (dev IdP + gateway, SQLite
 * recording on), the daemon (this file with --daemon-child: the real daemon server, a static
 * token source holding the gateway's token) and this driver (undici Pools, keep-alive).
 * Direct and daemon runs alternate within each of ROUNDS rounds; the table gives medians of the
 * per-round percentiles. Every loop is bounded by a count and a time cap. Prints a markdown
 * table (docs/benchmarks.md is not written).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const ROUNDS = 5;
const REQUESTS = 400; // per target per round
const CAP_MS = 3000; // per target per round
const WARMUP = 300;
const GOAL_ADDED_P50_MS = 0.2;
const ROOT = path.resolve(import.meta.dirname, '..');
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] });

if (process.argv[2] === '--daemon-child') await daemonChild(process.argv[3] ?? '');
else await main();

/** The daemon under benchmark: reads the gateway token from stdin, prints `{"url","runKey"}`. */
async function daemonChild(gatewayUrl: string): Promise<void> {
  const { startDaemonServer } = await import('../src/daemon/daemon-server.ts');
  const { DiscoverySchema, DISCOVERY_PATH } = await import('../src/protocol/discovery.ts');
  const lines = createInterface({ input: process.stdin });
  const iterator = lines[Symbol.asyncIterator]();
  const token = ((await iterator.next()).value as string | undefined)?.trim() ?? '';
  const discovery = DiscoverySchema.parse(await (await fetch(`${gatewayUrl}${DISCOVERY_PATH}`)).json());
  const server = await startDaemonServer({
    gatewayUrl,
    discovery,
    tokenSource: { getAccessToken: async () => ({ token, expiresAt: Date.now() + 3_600_000 }), invalidate() {} },
  });
  const { runKey } = server.mintRun('bench');
  process.stdout.write(`${JSON.stringify({ url: server.baseUrl, runKey })}\n`);
  const stop = (): void => void server.close({ graceMs: 0 }).then(() => process.exit(0));
  lines.on('close', stop);
  process.on('SIGTERM', stop);
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  try {
    const upstream = (await spawnChild(children, 'upstream-fake.ts', [])) as { url: string };
    const gw = (await spawnChild(children, 'gateway-process.ts', [upstream.url])) as { url: string; token: string };
    const daemon = (await spawnChild(children, 'daemon-hop.ts', ['--daemon-child', gw.url], `${gw.token}\n`)) as { url: string; runKey: string };

    const direct = { pool: new Pool(gw.url, { connections: 1, pipelining: 1 }), auth: `Bearer ${gw.token}` };
    const viaDaemon = { pool: new Pool(daemon.url, { connections: 1, pipelining: 1 }), auth: `Bearer ${daemon.runKey}` };
    for (const target of [direct, viaDaemon]) {
      const status = await call(target);
      if (status !== 200) throw new Error(`warm-up call answered HTTP ${status}`);
      for (let i = 0; i < WARMUP; i++) await call(target);
    }

    const rows: { direct: number[]; daemon: number[] }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const first = round % 2 === 0 ? direct : viaDaemon;
      const second = first === direct ? viaDaemon : direct;
      const a = await measure(first);
      const b = await measure(second);
      rows.push(first === direct ? { direct: a, daemon: b } : { direct: b, daemon: a });
    }
    const pct = (p: number, pick: (r: { direct: number[]; daemon: number[] }) => number[]): number => median(rows.map((r) => percentile(pick(r), p)));
    const d50 = pct(50, (r) => r.direct);
    const d99 = pct(99, (r) => r.direct);
    const h50 = pct(50, (r) => r.daemon);
    const h99 = pct(99, (r) => r.daemon);
    const added50 = median(rows.map((r) => percentile(r.daemon, 50) - percentile(r.direct, 50)));
    const added99 = median(rows.map((r) => percentile(r.daemon, 99) - percentile(r.direct, 99)));
    const f = (ms: number): string => `${ms.toFixed(3)} ms`;
    const table = [
      `| daemon hop (${ROUNDS} rounds × ≤${REQUESTS} calls, concurrency 1, ${os()} ) | p50 | p99 |`,
      '|---|---|---|',
      `| client → gateway (direct) | ${f(d50)} | ${f(d99)} |`,
      `| client → daemon → gateway | ${f(h50)} | ${f(h99)} |`,
      `| **added by the daemon hop** | **${f(added50)}** (goal ≤ ${GOAL_ADDED_P50_MS} ms: ${added50 <= GOAL_ADDED_P50_MS ? 'met' : 'not met'}) | ${f(added99)} |`,
    ].join('\n');
    console.log(table);
    await direct.pool.close();
    await viaDaemon.pool.close();
  } finally {
    for (const child of children) {
      child.stdin?.end();
      child.kill('SIGTERM');
    }
  }
}

async function call(target: { pool: Pool; auth: string }): Promise<number> {
  const res = await target.pool.request({
    method: 'POST',
    path: '/openai/v1/chat/completions',
    headers: { authorization: target.auth, 'content-type': 'application/json' },
    body: BODY,
  });
  await res.body.text();
  return res.statusCode;
}

/** Latencies (ms) of up to REQUESTS sequential calls, within CAP_MS. */
async function measure(target: { pool: Pool; auth: string }): Promise<number[]> {
  const out: number[] = [];
  const deadline = performance.now() + CAP_MS;
  for (let i = 0; i < REQUESTS && performance.now() < deadline; i++) {
    const start = performance.now();
    const status = await call(target);
    out.push(performance.now() - start);
    if (status !== 200) throw new Error(`call answered HTTP ${status}`);
  }
  return out;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

function os(): string {
  return `node ${process.version}`;
}

async function spawnChild(children: ChildProcess[], script: string, args: string[], stdinText?: string): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT });
  children.push(child);
  if (stdinText) child.stdin.write(stdinText);
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 20 s`)), 20_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with code ${code}`)));
  });
  return JSON.parse(line) as Record<string, unknown>;
}
