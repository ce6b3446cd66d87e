/**
 * Event-loop delay of the gateway while one client sends 1 MB adversarial prompts, per custom
 * pattern, side by side with a baseline without policy — all in one run.
 *
 *   node bench/adversarial-regex.ts [--docs]
 *
 * For each scenario: a gateway (test/support/gateway-harness.ts: dev IdP, SQLite in a temp dir)
 * with a one-rule policy blocking the pattern (regex rule, max_length 4096), a fake upstream
 * answering "ok" at once, and one client sending the scenario's 1 MB prompt again and again
 * (sequentially, RUN_MS or MAX_REQUESTS) with the OpenAI chat shape, while a second client polls
 * /readyz every 20 ms. perf_hooks.monitorEventLoopDelay (10 ms resolution) samples the
 * gateway's event loop over the run. The client shares the gateway's process (sending a
 * prebuilt 1 MB body costs it little) — on a separate process the figures could only be lower.
 *
 * `--docs` rewrites the section between <!-- adversarial-regex:start --> and
 * <!-- adversarial-regex:end --> in docs/benchmarks.md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startHarness } from '../test/support/gateway-harness.ts';

const RUN_MS = 12_000;
const MAX_REQUESTS = 40;
const MB = 1_000_000;
const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs', 'benchmarks.md');
const MARK_START = '<!-- adversarial-regex:start -->';
const MARK_END = '<!-- adversarial-regex:end -->';

interface Scenario {
  readonly name: string;
  readonly pattern: string | null;
  readonly prompt: string;
}

const SCENARIOS: Scenario[] = [
  { name: 'baseline: no policy', pattern: null, prompt: 'a'.repeat(MB) },
  { name: '`a+b`', pattern: 'a+b', prompt: 'a'.repeat(MB) },
  { name: '`(\\w{1,20}\\s?){1,20}!`', pattern: '(\\w{1,20}\\s?){1,20}!', prompt: 'a'.repeat(MB) },
  { name: '`(?:a{2,9}){2,9}$`', pattern: '(?:a{2,9}){2,9}$', prompt: `${'a'.repeat(MB)}!` },
  { name: '`(.{0,30}){0,30}x`', pattern: '(.{0,30}){0,30}x', prompt: 'a'.repeat(MB) },
];

async function startUpstream(): Promise<{ url: string; close: () => void }> {
  const answer = JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, close: () => server.close() };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function run(scenario: Scenario): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'aigov-bench-regex-'));
  const upstream = await startUpstream();
  let policyFile: string | undefined;
  if (scenario.pattern !== null) {
    policyFile = path.join(dir, 'policy.yaml');
    await writeFile(policyFile, `version: 1\nrules:\n  - id: adversarial\n    match: { regex: [{ pattern: '${scenario.pattern}', max_length: 4096 }] }\n    action: block\n`);
  }
  const h = await startHarness({ policyFile, openaiBaseUrl: upstream.url });
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: scenario.prompt }] });
  const headers = { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' };
  try {
    // Warm-up: one request (compiles, starts the workers).
    await (await fetch(`${h.url}/openai/v1/chat/completions`, { method: 'POST', headers, body })).arrayBuffer();
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    const t0 = performance.now();
    let done = false;
    const outcomes = new Map<string, number>();
    const requestMs: number[] = [];
    const client = (async () => {
      for (let i = 0; i < MAX_REQUESTS && performance.now() - t0 < RUN_MS; i++) {
        const r0 = performance.now();
        const res = await fetch(`${h.url}/openai/v1/chat/completions`, { method: 'POST', headers, body, signal: AbortSignal.timeout(60_000) });
        const json = (await res.json()) as { error?: { code?: string } };
        requestMs.push(performance.now() - r0);
        const key = res.status === 200 ? 'answered' : `refused (${res.status} ${json.error?.code ?? ''})`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      done = true;
    })();
    const readyz: number[] = [];
    const poller = (async () => {
      while (!done) {
        const r0 = performance.now();
        await (await fetch(`${h.url}/readyz`)).arrayBuffer();
        readyz.push(performance.now() - r0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all([client, poller]);
    histogram.disable();
    const ms = (ns: number): string => (ns / 1e6).toFixed(1);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const what = [...outcomes].map(([k, v]) => `${v} ${k}`).join(', ');
    return `| ${scenario.name} | ${ms(histogram.percentile(50))} | ${ms(histogram.percentile(99))} | ${ms(histogram.max)} | ${pct(readyz, 50).toFixed(1)} / ${pct(readyz, 99).toFixed(1)} / ${Math.max(...readyz).toFixed(1)} | ${what} in ${seconds} s; per request p50 ${pct(requestMs, 50).toFixed(0)} ms |`;
  } finally {
    await h.close();
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const scenario of SCENARIOS) {
  const row = await run(scenario);
  console.log(row);
  rows.push(row);
}
const section = [
  MARK_START,
  '## Adversarial custom patterns: event-loop delay under 1 MB attack prompts',
  '',
  `Command: \`node bench/adversarial-regex.ts --docs\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, nproc ${os.availableParallelism()}, a shared machine (other engineers' builds and tests ran meanwhile).`,
  '',
  `One client sends the same 1 MB prompt (\`a\` × 10^6, \`!\` appended for the \`$\` pattern) again and again for ${RUN_MS / 1000} s (at most ${MAX_REQUESTS} requests), sequentially, to a gateway whose one-rule policy blocks the pattern (regex rule, max_length 4096); a second client polls /readyz every 20 ms. Event-loop delay: perf_hooks.monitorEventLoopDelay (10 ms resolution, so 10 ms is the floor) over the run, in the gateway's process. Goal: p99 ≤ 50 ms with any policy \`aigov policy validate\` accepts.`,
  '',
  '| scenario | loop delay p50 (ms) | p99 (ms) | max (ms) | /readyz p50 / p99 / max (ms) | the attacker\'s requests |',
  '|---|---|---|---|---|---|',
  ...rows,
  '',
  'Before (main at 80d3daa, V8\'s backtracking engine on the event loop): the issue measured a 250-character prompt freezing the gateway for more than 150 s and `a+b` on 1 MB costing 12 s of event loop; this bench cannot run there (its first request never ends in the run\'s time).',
  '',
  'How: custom patterns run on a linear-time Pike VM (src/core/detection/linear-regex.ts); a request whose text is large for its policy is scanned on a worker thread (src/gateway/policy-offload.ts) with a 5 s deadline, past which it is refused with AIGOV_E_POLICY_BUDGET; the event loop only parses, decides from the worker\'s detections, records and forwards. What remains on the loop per 1 MB request — JSON parsing, normalizing the text to look up the worker\'s answers, the structured clone to the worker, the SQLite record — is what the baseline row shows (the baseline also records and forwards the 1 MB prompt).',
  MARK_END,
].join('\n');
if (process.argv.includes('--docs')) {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(MARK_START);
  const end = doc.indexOf(MARK_END);
  writeFileSync(DOC, start >= 0 && end > start ? doc.slice(0, start) + section + doc.slice(end + MARK_END.length) : `${doc.trimEnd()}\n\n${section}\n`);
}
console.log(section);
