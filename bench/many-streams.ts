/**
 * Many long streams at once (issue 10 item 3): N concurrent streamed chat calls, each answered by
 * the upstream over D seconds (one chunk a second, then [DONE]), sent directly to the upstream and
 * through the gateway (its own process, SQLite recording on) in the same run.
 *
 *   node bench/many-streams.ts [--streams 1000] [--seconds 20]
 *
 * Per run: time to response headers p50/p95/max, time to the whole answer p50/max, the run's
 * wall time, and how many calls got 200 / 503 (refused at once when the upstream pool is full).
 * Runs: direct; aigov with the default upstream_max_connections (2048); aigov with the pool at
 * 256 (the old silent cap) — the calls past it must get 503 at once, never wait for headers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';

const ROOT = path.resolve(import.meta.dirname, '..');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};

if (process.argv.includes('--upstream')) {
  // The slow upstream, in its own process: each stream sends one chunk a second for --seconds.
  const seconds = arg('--seconds', 20);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        if (n++ >= seconds) return void res.end('data: [DONE]\n\n');
        res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `tick ${n} ` }, finish_reason: null }] })}\n\n`);
        setTimeout(tick, 1000);
      };
      tick();
    });
  });
  server.maxConnections = 100_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
} else {
  await main();
}

interface RunResult {
  readonly name: string;
  readonly ok: number;
  readonly busy: number;
  readonly other: number;
  readonly headersMs: number[];
  readonly doneMs: number[];
  readonly wallMs: number;
}

async function main(): Promise<void> {
  const streams = arg('--streams', 1000);
  const seconds = arg('--seconds', 20);
  const children: ChildProcess[] = [];
  const spawnChild = async (script: string, args: string[]): Promise<Record<string, string>> => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT });
    children.push(child);
    const lines = createInterface({ input: child.stdout });
    const line = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`${script} exited early (${code})`)));
    });
    lines.close();
    child.stdout.resume();
    return JSON.parse(line) as Record<string, string>;
  };
  try {
    const upstream = await spawnChild('many-streams.ts', ['--upstream', '--seconds', String(seconds)]);
    const results: RunResult[] = [];
    results.push(await run('direct', `${upstream.url}/v1`, 'sk-direct', streams));
    const gw = await spawnChild('gateway-process.ts', [upstream.url!]);
    results.push(await run('aigov (pool 2048)', `${gw.url}/openai/v1`, gw.token!, streams));
    const small = await spawnChild('gateway-process.ts', [upstream.url!, '--max-connections', '256']);
    results.push(await run('aigov (pool 256)', `${small.url}/openai/v1`, small.token!, streams));
    printTable(results, streams, seconds);
  } finally {
    for (const child of children) child.kill('SIGTERM');
  }
}

async function run(name: string, base: string, key: string, n: number): Promise<RunResult> {
  const agent = new Agent({ connections: null, keepAliveTimeout: 60_000 });
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'count for me' }] });
  const headersMs: number[] = [];
  const doneMs: number[] = [];
  let ok = 0;
  let busy = 0;
  let other = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      const start = performance.now();
      try {
        const res = await request(`${base}/chat/completions`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body, headersTimeout: 600_000, bodyTimeout: 600_000 });
        headersMs.push(performance.now() - start);
        const text = await res.body.text();
        if (res.statusCode === 200 && text.endsWith('data: [DONE]\n\n')) {
          ok++;
          doneMs.push(performance.now() - start);
        } else if (res.statusCode === 503) busy++;
        else other++;
      } catch {
        other++;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  await agent.close();
  process.stderr.write(`${name}: ${ok} ok, ${busy} busy, ${other} other in ${(wallMs / 1000).toFixed(1)} s\n`);
  return { name, ok, busy, other, headersMs, doneMs, wallMs };
}

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function printTable(results: RunResult[], streams: number, seconds: number): void {
  const f = (ms: number): string => (Number.isNaN(ms) ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
  const lines = [
    `${streams} concurrent streams, each ${seconds} s long (node ${process.version})`,
    '',
    '| run | 200 complete | 503 busy | other | headers p50 | headers p95 | headers max | answer p50 | answer max | wall |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.name} | ${r.ok} | ${r.busy} | ${r.other} | ${f(pct(r.headersMs, 50))} | ${f(pct(r.headersMs, 95))} | ${f(pct(r.headersMs, 100))} | ${f(pct(r.doneMs, 50))} | ${f(pct(r.doneMs, 100))} | ${f(r.wallMs)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
