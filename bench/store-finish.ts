/**
 * What waiting for a durable finish costs (issue 10 item 4): the time from `finishCall` to the
 * resolution of its promise — the COMMIT that holds the call's result and its events — which
 * is what the gateway now adds before an answer's terminal event or body reaches the client.
 * Before, that wait was 0 (the result was written behind, up to `batchIntervalMs` = 5 ms later).
 *
 *   node bench/store-finish.ts
 *
 * Real store on a temp file (writer thread, synchronous=NORMAL, defaults otherwise). Per call:
 * recordRequest, 10 stream events appended, then `await finishCall` timed. One call at a time,
 * then 32 calls in flight (each ending as the gateway's would: events, then finish). ROUNDS
 * rounds; the table gives medians of the per-round percentiles. Bounded loops; prints a table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { callRequest, callResult } from '../test/support/store-fixtures.ts';

const ROUNDS = 5;
const SEQUENTIAL = 1000;
const IN_FLIGHT = 32;
const CONCURRENT = 4000;
const EVENTS = 10;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-finish-'));
const event = (n: number): { offsetMs: number; raw: string } => ({ offsetMs: n * 12, raw: `data: {"choices":[{"index":0,"delta":{"content":"token ${n} "}}]}\n\n` });

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function round(r: number): Promise<{ seq: [number, number]; conc: [number, number]; rate: number }> {
  const store = await openSqliteStore({ path: path.join(dir, `round-${r}.db`) });
  const oneCall = async (id: string): Promise<number> => {
    await store.recordRequest(callRequest(id, { startedAt: Date.now() }));
    store.appendStreamEvents(id, Array.from({ length: EVENTS }, (_, n) => event(n)));
    const t0 = performance.now();
    await store.finishCall(callResult(id, { endedAt: Date.now() }));
    return performance.now() - t0;
  };
  for (let i = 0; i < 100; i++) await oneCall(`w${r}-${i}`); // warm-up
  const seq: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) seq.push(await oneCall(`s${r}-${i}`));
  const conc: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < CONCURRENT) conc.push(await oneCall(`c${r}-${next++}`));
  }));
  const rate = CONCURRENT / ((performance.now() - t0) / 1000);
  await store.close();
  seq.sort((a, b) => a - b);
  conc.sort((a, b) => a - b);
  return { seq: [pct(seq, 50), pct(seq, 99)], conc: [pct(conc, 50), pct(conc, 99)], rate };
}

try {
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(r));
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  console.log(`node ${process.version}, SQLite ${process.versions.sqlite}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}; ${ROUNDS} rounds, medians of per-round figures\n`);
  console.log('| await finishCall (result + 10 events committed) | p50 | p99 |');
  console.log('|---|---|---|');
  console.log(`| one call at a time (${SEQUENTIAL} per round) | ${ms(median(rounds.map((x) => x.seq[0])))} | ${ms(median(rounds.map((x) => x.seq[1])))} |`);
  console.log(`| ${IN_FLIGHT} calls in flight (${CONCURRENT} per round; whole calls/s: ${Math.round(median(rounds.map((x) => x.rate)))}) | ${ms(median(rounds.map((x) => x.conc[0])))} | ${ms(median(rounds.map((x) => x.conc[1])))} |`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
