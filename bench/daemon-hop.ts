/**
 * What the daemon hop adds to a call: client → daemon → gateway vs client → gateway directly,
 * same access token, a small non-streamed chat completion, concurrency 1.
 *
 *   node bench/daemon-hop.ts [--baseline src/daemon/OTHER.ts] [--profile DIR]
 *
 * --baseline runs a second daemon child from another module exporting `startDaemonServer` (e.g.
 * an older daemon-server.ts restored next to the current one with `git show`), measured in the
 * same rounds, so two implementations are compared side by side in one run. --profile writes a
 * V8 CPU profile of each daemon child to DIR (open it in Chrome DevTools or speedscope).
 *
 * Four processes, so nothing measured shares an event loop with the load generator:
 * bench/upstream-fake.ts (fixed answers), bench/gateway-process.ts (dev IdP + gateway, SQLite
 * recording on), the daemon (this file with --daemon-child: the real daemon server, a static
 * token source holding the gateway's token) and this driver (undici Pools, keep-alive).
 * Direct and daemon runs (and the baseline daemon's) alternate within each of ROUNDS rounds; the table gives medians of the
 * per-round percentiles. "daemon CPU per call" is the daemon child's user+system CPU time
 * (/proc/PID/stat, Linux) over the measured calls through it divided by their number: it does
 * not depend on how busy the rest of the machine is, unlike the latencies. Every loop is bounded
 * by a count and a time cap. Prints a markdown table (docs/benchmarks.md is not written).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import type { DaemonServer, DaemonServerOptions } from '../src/daemon/daemon-server.ts';

const ROUNDS = 5;
const REQUESTS = 400; // per target per round
const CAP_MS = 3000; // per target per round
const WARMUP = 300;
const GOAL_ADDED_P50_MS = 0.2;
const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_MODULE = 'src/daemon/daemon-server.ts';
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] });

if (process.argv[2] === '--daemon-child') await daemonChild(process.argv[3] ?? '', process.argv[4] ?? DEFAULT_MODULE);
else await main(parseArgs(process.argv.slice(2)));

interface Options {
  readonly baseline: string | null;
  readonly profileDir: string | null;
}

function parseArgs(args: string[]): Options {
  let baseline: string | null = null;
  let profileDir: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    if ((arg === '--baseline' || arg === '--profile') && value !== undefined) {
      if (arg === '--baseline') baseline = value;
      else profileDir = path.resolve(value);
      i++;
    } else {
      throw new Error(`usage: node bench/daemon-hop.ts [--baseline src/daemon/OTHER.ts] [--profile DIR] (unexpected ${String(arg)})`);
    }
  }
  return { baseline, profileDir };
}

/** The daemon under benchmark: reads the gateway token from stdin, prints `{"url","runKey"}`. */
async function daemonChild(gatewayUrl: string, modulePath: string): Promise<void> {
  const { startDaemonServer } = (await import(pathToFileURL(path.resolve(ROOT, modulePath)).href)) as { startDaemonServer: (options: DaemonServerOptions) => Promise<DaemonServer> };
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
  // process.exit() (not a signal) so that --cpu-prof gets to write its profile.
  const stop = (): void => void server.close({ graceMs: 0 }).then(() => process.exit(0));
  lines.on('close', stop);
  process.on('SIGTERM', stop);
}

interface Target {
  readonly name: string;
  readonly pool: Pool;
  readonly auth: string;
  /** The daemon child serving this target, or null for the direct one. */
  readonly pid: number | null;
  cpuMs: number;
  calls: number;
}

async function main(options: Options): Promise<void> {
  const children: ChildProcess[] = [];
  try {
    const upstream = (await spawnChild(children, 'upstream-fake.ts', [])) as { url: string };
    const gw = (await spawnChild(children, 'gateway-process.ts', [upstream.url])) as { url: string; token: string };
    const nodeFlags = (name: string): string[] => (options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=daemon-${name}-\${pid}.cpuprofile`] : []);
    const daemon = (await spawnChild(children, 'daemon-hop.ts', ['--daemon-child', gw.url, DEFAULT_MODULE], `${gw.token}\n`, nodeFlags('current'))) as { url: string; runKey: string };
    const daemonPid = children.at(-1)!.pid ?? null;

    const targets: Target[] = [
      { name: 'client → gateway (direct)', pool: new Pool(gw.url, { connections: 1, pipelining: 1 }), auth: `Bearer ${gw.token}`, pid: null, cpuMs: 0, calls: 0 },
      { name: `client → daemon → gateway (${DEFAULT_MODULE})`, pool: new Pool(daemon.url, { connections: 1, pipelining: 1 }), auth: `Bearer ${daemon.runKey}`, pid: daemonPid, cpuMs: 0, calls: 0 },
    ];
    if (options.baseline) {
      const base = (await spawnChild(children, 'daemon-hop.ts', ['--daemon-child', gw.url, options.baseline], `${gw.token}\n`, nodeFlags('baseline'))) as { url: string; runKey: string };
      targets.push({ name: `client → daemon → gateway (baseline: ${options.baseline})`, pool: new Pool(base.url, { connections: 1, pipelining: 1 }), auth: `Bearer ${base.runKey}`, pid: children.at(-1)!.pid ?? null, cpuMs: 0, calls: 0 });
    }
    for (const target of targets) {
      const status = await call(target);
      if (status !== 200) throw new Error(`warm-up call to ${target.name} answered HTTP ${status}`);
      for (let i = 0; i < WARMUP; i++) await call(target);
    }

    // rows[round][target] = latencies; the order rotates every round.
    const rows: number[][][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const row: number[][] = new Array<number[]>(targets.length);
      for (let k = 0; k < targets.length; k++) {
        const index = (round + k) % targets.length;
        const target = targets[index]!;
        const cpuBefore = processCpuMs(target.pid);
        row[index] = await measure(target);
        target.cpuMs += processCpuMs(target.pid) - cpuBefore;
        target.calls += row[index].length;
      }
      rows.push(row);
    }
    const pct = (t: number, p: number): number => median(rows.map((r) => percentile(r[t]!, p)));
    const added = (t: number, p: number): number => median(rows.map((r) => percentile(r[t]!, p) - percentile(r[0]!, p)));
    const f = (ms: number): string => `${ms.toFixed(3)} ms`;
    const calls = rows.reduce((sum, r) => sum + r.reduce((s, l) => s + l.length, 0), 0);
    const lines = [
      `| daemon hop (${ROUNDS} rounds × ≤${REQUESTS} calls per target, concurrency 1, ${calls} calls measured, node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}) | p50 | p99 | daemon CPU per call |`,
      '|---|---|---|---|',
    ];
    const cpu = (t: Target): string => (t.pid === null ? '—' : Number.isNaN(t.cpuMs) ? 'n/a' : f(t.cpuMs / t.calls));
    for (let t = 0; t < targets.length; t++) lines.push(`| ${targets[t]!.name} | ${f(pct(t, 50))} | ${f(pct(t, 99))} | ${cpu(targets[t]!)} |`);
    for (let t = 1; t < targets.length; t++) {
      const a50 = added(t, 50);
      const label = t === 1 ? `**added by the daemon hop (${DEFAULT_MODULE})**` : `added by the baseline daemon hop`;
      const goal = t === 1 ? ` (goal ≤ ${GOAL_ADDED_P50_MS} ms: ${a50 <= GOAL_ADDED_P50_MS ? 'met' : 'not met'})` : '';
      lines.push(`| ${label} | ${t === 1 ? `**${f(a50)}**` : f(a50)}${goal} | ${f(added(t, 99))} | |`);
    }
    console.log(lines.join('\n'));
    for (const target of targets) await target.pool.close();
  } finally {
    for (const child of children) {
      child.stdin?.end();
      child.kill('SIGTERM');
    }
    if (options.profileDir) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      console.log(`CPU profiles of the daemon children: ${options.profileDir}`);
    }
  }
}

async function call(target: Target): Promise<number> {
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
async function measure(target: Target): Promise<number[]> {
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

/** User + system CPU time (ms) of a process so far; NaN where /proc is missing; 0 for no process. */
function processCpuMs(pid: number | null): number {
  if (pid === null) return 0;
  try {
    // Fields after the ")" that closes the command name: state is [0], utime [11], stime [12], in clock ticks (USER_HZ, 100 on Linux).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

async function spawnChild(children: ChildProcess[], script: string, args: string[], stdinText?: string, nodeFlags: string[] = []): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [...nodeFlags, path.join(ROOT, 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT });
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
