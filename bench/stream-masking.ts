/**
 * What the gateway spends on a streamed answer while answer masking is in force: a policy with a
 * mask_response rule (PII) and a mask_request rule (secrets), a 2 KB prompt, the fake upstream's
 * 44-event chat stream. Measures the gateway process's CPU per streamed call (Linux /proc, user +
 * system) and the whole-stream latency p50, at concurrency 1.
 *
 *   node bench/stream-masking.ts                    (this checkout only)
 *   node bench/stream-masking.ts --before DIR       (side by side with another checkout of the
 *                                                    repository, e.g. `git archive main | tar -x -C DIR`
 *                                                    with node_modules linked: its src/ runs under this
 *                                                    bench's gateway-process.ts and fake upstream)
 *
 * Sides alternate within each of ROUNDS rounds so machine noise hits both alike; the table gives
 * medians of the per-round figures. Every loop is bounded by a count and a time cap. Prints a
 * table; docs/benchmarks.md ("Streamed answers under masking") quotes it by hand, next to
 * bench/stream-relay.ts — which resolves the per-event difference this end-to-end figure cannot.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const ROUNDS = 7;
const CALLS = 200; // per side per round
const CAP_MS = 6000;
const WARMUP = 150;
const ROOT = path.resolve(import.meta.dirname, '..');

const args = process.argv.slice(2);
const beforeAt = args.indexOf('--before');
const beforeDir = beforeAt === -1 ? null : path.resolve(args[beforeAt + 1] ?? '');

const POLICY = `version: 1
default_action: allow
rules:
  - id: mask-answer-pii
    match:
      detectors: [EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE]
    action: mask_response
  - id: mask-request-secrets
    match:
      detectors: [SECRETS]
    action: mask_request
`;

const PROMPT = 'Summarize the governance pipeline in plain words. '.repeat(40).slice(0, 2048);
const BODY = JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: PROMPT }] });

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}

const children: ChildProcess[] = [];
async function spawnChild(script: string, scriptArgs: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [script, ...scriptArgs], { stdio: ['pipe', 'pipe', 'inherit'], cwd: path.dirname(path.dirname(script)) });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 30 s`)), 30_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited early (code ${code})`)));
  });
  lines.close();
  child.stdout.resume();
  return JSON.parse(line) as Record<string, unknown>;
}

interface Side {
  readonly name: string;
  readonly pid: number;
  readonly pool: Pool;
  readonly headers: Record<string, string>;
}

async function streamOnce(side: Side): Promise<number> {
  const t0 = performance.now();
  const res = await side.pool.request({ path: '/openai/v1/chat/completions', method: 'POST', headers: side.headers, body: BODY });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('data: [DONE]')) throw new Error(`${side.name}: HTTP ${res.statusCode} or a stream without [DONE]`);
  return performance.now() - t0;
}

async function run(side: Side, n: number): Promise<{ cpuPerCall: number; p50: number }> {
  const cpu0 = cpuMs(side.pid);
  const times: number[] = [];
  const deadline = performance.now() + CAP_MS;
  while (times.length < n && performance.now() < deadline) times.push(await streamOnce(side));
  const cpu = cpuMs(side.pid) - cpu0;
  times.sort((a, b) => a - b);
  return { cpuPerCall: cpu / times.length, p50: times[Math.floor(times.length / 2)]! };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-sm-'));
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const load0 = os.loadavg()[0]!;
  const upstream = (await spawnChild(path.join(ROOT, 'bench', 'upstream-fake.ts'), [])) as { url: string };
  const sides: Side[] = [];
  try {
    const trees = [...(beforeDir ? [{ name: 'before', root: beforeDir }] : []), { name: beforeDir ? 'after' : 'this checkout', root: ROOT }];
    for (const tree of trees) {
      // The other checkout runs this bench's gateway process (same harness, its own src/).
      if (tree.root !== ROOT) copyFileSync(path.join(ROOT, 'bench', 'gateway-process.ts'), path.join(tree.root, 'bench', 'gateway-process.ts'));
      const gw = (await spawnChild(path.join(tree.root, 'bench', 'gateway-process.ts'), [upstream.url, '--policy', policyFile])) as { url: string; token: string; pid: number };
      const pool = new Pool(gw.url, { connections: 1, pipelining: 1 });
      sides.push({ name: tree.name, pid: gw.pid, pool, headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', accept: 'text/event-stream' } });
    }
    for (const side of sides) for (let i = 0; i < WARMUP; i++) await streamOnce(side);
    const results = new Map<string, { cpu: number[]; p50: number[] }>(sides.map((s) => [s.name, { cpu: [], p50: [] }]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const r = await run(side, CALLS);
        results.get(side.name)!.cpu.push(r.cpuPerCall);
        results.get(side.name)!.p50.push(r.p50);
      }
    }
    const rows = sides.map((s) => {
      const r = results.get(s.name)!;
      return `| ${s.name} | ${median(r.cpu).toFixed(3)} ms | ${median(r.p50).toFixed(3)} ms |`;
    });
    const date = new Date().toISOString().slice(0, 10);
    const table = [
      '| gateway | CPU per streamed call (median of rounds) | whole stream p50 (median of rounds) |',
      '|---|---|---|',
      ...rows,
    ].join('\n');
    const conditions = `${ROUNDS} rounds × ${CALLS} streamed calls per side at concurrency 1, sides alternating; mask_response (PII) and mask_request (secrets) in force; 2 KB prompt, 44-event chat stream from bench/upstream-fake.ts; recording ON. ${date}, Node ${process.version}, nproc ${os.cpus().length}, 1-min load ${load0.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end.`;
    process.stdout.write(`${table}\n\n${conditions}\n`);
  } finally {
    for (const s of sides) await s.pool.close();
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
