/**
 * Does a costly auditor read hold up recording? recordRequest latency and throughput while an
 * auditor-style read loops concurrently, on a store of 100k recorded calls.
 *
 *   node bench/store-read-isolation.ts [--calls N] [--seconds S] [--runs R] [--in-flight K] [--compare DIR]
 *
 * The store is seeded once through its own recordRequest / finishCall (64 in flight), as
 * bench/sessions-list.ts does: N calls (default 100,000) in N/20 sessions over 30 days, closed
 * (checkpointed), and copied to a fresh file for every measured run.
 *
 * Each run opens the copy and, for S seconds each (default 4):
 *  - "quiet": K (default 16) recorders in a closed loop, each `await recordRequest` then
 *    `finishCall` (what a governed request does), no reads;
 *  - "auditor": the same recorders while one auditor loops `querySessions` with a filter no
 *    session matches (model = 'no-such-model': visits every session and its calls; ~130 ms).
 * Reported per mode: recordRequest latency p50 / p99 (ms), records/s, and auditor queries done.
 *
 * `--compare DIR` also measures another copy of the store (DIR = a `src` tree, e.g.
 * `git archive <rev> src | tar -x -C /tmp/before`): runs alternate between the two, medians of R
 * runs (default 3) are printed side by side. Bounded; prints a markdown table and exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CallRequestRecord, RecordingStore, SessionPage } from '../src/store/recording-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult, principal } from '../test/support/store-fixtures.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CALLS = arg('--calls', 100_000);
const SECONDS = arg('--seconds', 4);
const RUNS = arg('--runs', 3);
const IN_FLIGHT = arg('--in-flight', 16);
const compareIndex = process.argv.indexOf('--compare');
const COMPARE = compareIndex > 0 ? process.argv[compareIndex + 1] : undefined;
const CALLS_PER_SESSION = 20;
const ISSUER = 'https://idp.bench.test';

type Open = (options: { path: string }) => Promise<RecordingStore & { close(): Promise<void>; flush(): Promise<void> }>;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-read-isolation-'));
const ANSWER = JSON.stringify({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: `answer: ${'dolor sit amet '.repeat(15)}` } }] });

function record(callId: string, sessionId: string, user: string, startedAt: number, model: string): CallRequestRecord {
  return callRequest(callId, {
    sessionId,
    principal: principal({ subject: user, email: `${user}@aigov.dev`, issuer: ISSUER }),
    model,
    stream: false,
    requestBody: JSON.stringify({ model, messages: [{ role: 'user', content: `question ${callId}: ${'lorem ipsum '.repeat(30)}` }] }),
    startedAt,
  });
}

function finish(store: RecordingStore, callId: string, endedAt: number): void {
  void store.finishCall(callResult(callId, { responseBody: ANSWER, usage: { inputTokens: 60, outputTokens: 40, totalTokens: 100 }, latencyMs: 480, endedAt }));
}

async function seed(file: string): Promise<number> {
  const store = await openSqliteStore({ path: file });
  const sessions = Math.ceil(CALLS / CALLS_PER_SESSION);
  const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
  const now = Date.now();
  const span = 30 * 86_400_000;
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CALLS) {
      const i = next++;
      const s = i % sessions;
      const k = Math.floor(i / sessions);
      const startedAt = now - span + Math.floor((s / sessions) * span) + k * 1000;
      await store.recordRequest(record(`call-${i}`, `ses-${s}`, users[s % 50]!, startedAt, i % 3 === 0 ? 'gpt-4o' : 'gpt-4o-mini'));
      finish(store, `call-${i}`, startedAt + 480);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await store.flush();
  await store.close();
  return performance.now() - started;
}

interface Figures {
  readonly p50: number;
  readonly p99: number;
  readonly perSecond: number;
  readonly queries: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let runSerial = 0;

async function measure(store: RecordingStore, auditor: boolean): Promise<Figures> {
  const tag = `r${runSerial++}`;
  const latencies: number[] = [];
  let queries = 0;
  let stop = false;
  const deadline = performance.now() + SECONDS * 1000;
  const recorder = async (w: number): Promise<void> => {
    let n = 0;
    while (performance.now() < deadline) {
      const callId = `${tag}-${w}-${n++}`;
      const at = Date.now();
      const t0 = performance.now();
      await store.recordRequest(record(callId, `${tag}-ses-${w}`, `user-${w % 50}`, at, 'gpt-4o-mini'));
      latencies.push(performance.now() - t0);
      finish(store, callId, at + 1);
    }
  };
  const audit = async (): Promise<void> => {
    while (!stop) {
      const page: SessionPage = await store.querySessions({ model: 'no-such-model' }, { limit: 50, cursor: null });
      if (page.sessions.length !== 0) throw new Error('the auditor filter matched a session');
      queries++;
    }
  };
  const auditing = auditor ? audit() : Promise.resolve();
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => recorder(w)));
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await auditing;
  const sorted = latencies.sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), perSecond: sorted.length / elapsed, queries };
}

async function run(open: Open, seeded: string, n: number): Promise<{ quiet: Figures; auditor: Figures }> {
  const file = path.join(dir, `run-${n}.db`);
  fs.copyFileSync(seeded, file);
  const store = await open({ path: file });
  // one auditor query first: statements prepared, pages cached, for both modes alike
  await store.querySessions({ model: 'no-such-model' }, { limit: 50, cursor: null });
  const quiet = await measure(store, false);
  await store.flush();
  const auditor = await measure(store, true);
  await store.close();
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  return { quiet, auditor };
}

const seeded = path.join(dir, 'seeded.db');
const seedMs = await seed(seeded);
console.log(`seeded ${CALLS} calls in ${Math.ceil(CALLS / CALLS_PER_SESSION)} sessions in ${(seedMs / 1000).toFixed(1)} s`);

const variants: { name: string; open: Open }[] = [{ name: 'this tree', open: openSqliteStore }];
if (COMPARE !== undefined) {
  const url = pathToFileURL(path.resolve(COMPARE, 'store/sqlite/sqlite-store.ts')).href;
  const other = (await import(url)) as { openSqliteStore: Open };
  variants.unshift({ name: COMPARE, open: other.openSqliteStore });
}

const results = new Map<string, { quiet: Figures; auditor: Figures }[]>(variants.map((v) => [v.name, []]));
let n = 0;
for (let r = 0; r < RUNS; r++) {
  for (const v of variants) {
    const figures = await run(v.open, seeded, n++);
    results.get(v.name)!.push(figures);
    const f = (x: Figures): string => `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, ${Math.round(x.perSecond)}/s, ${x.queries} queries`;
    console.log(`run ${r + 1} ${v.name}: quiet ${f(figures.quiet)} | auditor ${f(figures.auditor)}`);
  }
}

console.log(`\n${IN_FLIGHT} recorders in flight, ${SECONDS} s per mode, median of ${RUNS} runs\n`);
console.log('| store | mode | recordRequest p50 | p99 | records/s | auditor queries/s |');
console.log('|---|---|---|---|---|---|');
for (const v of variants) {
  const runs = results.get(v.name)!;
  for (const mode of ['quiet', 'auditor'] as const) {
    const m = (pick: (f: Figures) => number): number => median(runs.map((x) => pick(x[mode])));
    console.log(
      `| ${v.name} | ${mode} | ${m((f) => f.p50).toFixed(2)} ms | ${m((f) => f.p99).toFixed(2)} ms | ${Math.round(m((f) => f.perSecond))} | ${mode === 'quiet' ? '—' : (m((f) => f.queries) / SECONDS).toFixed(1)} |`,
    );
  }
}
fs.rmSync(dir, { recursive: true, force: true });
