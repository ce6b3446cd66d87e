/**
 * What durable pseudonym vaults cost the gateway's event loop (they run on it: node:sqlite is
 * synchronous), on a real file in a temp dir, against the in-memory vaults.
 *
 *   node bench/pseudonym-vault.ts
 *
 * 1. Issuing placeholders as a request does (forRequest, issue, commit): one new value, ten new
 *    values in one text, and values already issued (no write) — in memory and durable. Two
 *    figures: event-loop time of the synchronous parts (issue + the write when it runs) and the
 *    wall time until commit() resolves (what the request waits). One request at a time.
 * 2. A session not in memory: load and open a 50-entry vault (event-loop time).
 * 3. The store's write alone (what a flush costs the loop) for 1 and 10 new values.
 * 4. The recording store at 32 requests in flight (its writer thread, same file) alone and beside
 *    durable appends at several rates: what each costs the other (the two connections take
 *    turns on SQLite's write lock).
 *
 * Bounded loops; prints a markdown table and exits.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionVaults } from '../src/gateway/session-vaults.ts';
import type { CallRequestRecord } from '../src/store/recording-store.ts';
import { openSqlitePseudonymStore } from '../src/store/sqlite/sqlite-pseudonym-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';

const ROUNDS = 3000;
const WARMUP = 200;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-vault-'));
const file = path.join(dir, 'aigov.db');
const key = randomBytes(32);

interface Stats {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function stats(samples: number[]): Stats {
  samples.sort((a, b) => a - b);
  const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!;
  return { p50: at(50), p99: at(99), max: samples.at(-1)! };
}

function timeUs(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1000;
}

/** timeUs for a store call, which returns a promise since the stores became async. */
async function timeAsyncUs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1000;
}

/** Per round a fresh session (so every value is new), issuing `values` values in one text; sync time and time to commit. */
async function issueRounds(vaults: SessionVaults, prefix: string, values: number, repeat: boolean): Promise<[Stats, Stats]> {
  const sync: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const session = `${prefix}-${repeat ? 0 : i}`;
    const t0 = process.hrtime.bigint();
    const lease = await vaults.forRequest(session);
    const issueUs = timeUs(() =>
      lease.issue(() => {
        for (let v = 0; v < values; v++) lease.vault.placeholderFor('EMAIL_ADDRESS', `user${repeat ? v : i * values + v}@example.com`);
      }),
    );
    await lease.commit();
    if (i >= WARMUP) {
      sync.push(issueUs);
      wall.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  }
  return [stats(sync), stats(wall)];
}

/** Event-loop time of one durable write of `values` new values (the store's write, as a flush runs it). */
async function writeRounds(values: number): Promise<Stats> {
  const store = openSqlitePseudonymStore({ location: file, key });
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const entries = Array.from({ length: values }, (_, v) => ['EMAIL', v + 1, `w${i}.${v}@example.com`] as const);
    const us = await timeAsyncUs(() => store.write([{ sessionId: `write-${values}-${i}`, entries }], [], Date.now()));
    if (i >= WARMUP) samples.push(us);
  }
  await store.close();
  return stats(samples);
}

async function loadRounds(): Promise<Stats> {
  const seed = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
  for (let s = 0; s < 100; s++) {
    const lease = await seed.forRequest(`load-${s}`);
    lease.issue(() => {
      for (let v = 0; v < 50; v++) lease.vault.placeholderFor('EMAIL_ADDRESS', `p${v}.s${s}@example.com`);
    });
    await lease.commit();
  }
  await seed.close();
  const store = openSqlitePseudonymStore({ location: file, key });
  const samples: number[] = [];
  for (let r = 0; r < 20; r++) for (let s = 0; s < 100; s++) samples.push(await timeAsyncUs(() => store.load(`load-${s}`)));
  await store.close();
  return stats(samples);
}

function request(i: number): CallRequestRecord {
  return {
    callId: `bench-${i}`,
    sessionId: `bench-s${i % 50}`,
    principal: { subject: `user-${i % 50}`, email: null, groups: [], issuer: 'https://idp.example.test', clientId: 'aigov-cli' },
    client: { userAgent: null, remoteAddress: null, sdk: null },
    provider: 'openai',
    providerKind: 'openai',
    endpoint: 'openai.chat.completions',
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    stream: false,
    requestBody: 'x'.repeat(2048),
    decisions: [],
    startedAt: Date.now(),
  };
}

let next = 0; // call ids stay unique across runs on the same file

interface LoadResult {
  readonly label: string;
  readonly recordsPerSec: number;
  readonly recordP99Ms: number;
  readonly appends: Stats | null;
  readonly failed: string;
  readonly stallP99Ms: number;
  readonly stallMaxMs: number;
}

/**
 * The recording store at 32 requests in flight for `ms`, alone or beside durable appends (one new
 * value per text) issued back to back (`gapMs` 0, yielding between) or every `gapMs` ms.
 */
async function underLoad(label: string, ms: number, gapMs: number | null): Promise<LoadResult> {
  const store = await openSqliteStore({ path: file });
  const vaults = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
  const until = Date.now() + ms;
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  monitor.enable();
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const writer = async (): Promise<void> => {
    while (Date.now() < until) {
      const t = process.hrtime.bigint();
      try {
        await store.recordRequest(request(next++));
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch (error) {
        failures.set(String((error as Error).message), (failures.get(String((error as Error).message)) ?? 0) + 1);
      }
    }
  };
  const writers = Array.from({ length: 32 }, writer);
  const samples: number[] = [];
  const waits: Promise<void>[] = [];
  if (gapMs !== null) {
    for (let i = 0; Date.now() < until; i++) {
      const t = process.hrtime.bigint();
      waits.push(
        vaults.forRequest(`${label}-${i}`).then(async (lease) => {
          lease.issue(() => lease.vault.placeholderFor('EMAIL_ADDRESS', `user${i}@example.com`));
          await lease.commit();
          samples.push(Number(process.hrtime.bigint() - t) / 1000);
        }),
      );
      await new Promise<void>((resolve) => (gapMs === 0 ? setImmediate(resolve) : setTimeout(resolve, gapMs)));
    }
  }
  const stalls = monitor;
  await Promise.allSettled(waits);
  await Promise.all(writers);
  stalls.disable();
  await vaults.close();
  await store.close();
  return { label, recordsPerSec: (latencies.length * 1000) / ms, recordP99Ms: stats(latencies).p99, appends: samples.length > 0 ? stats(samples) : null, failed: [...failures].map(([m, n]) => `${n}× ${m}`).join('; ') || 'none', stallP99Ms: stalls.percentile(99) / 1e6, stallMaxMs: stalls.max / 1e6 };
}

const recording = await openSqliteStore({ path: file }); // creates and migrates the file, as the gateway does
await recording.close();

const memory = new SessionVaults({ purgeIntervalMs: 0, maxEntries: 1_000_000 });
const durable = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0, maxEntries: 1_000_000 });
const rows: [string, Stats, Stats | null][] = [];
for (const [name, vaults, prefix, values, repeat] of [
  ['1 new value, in memory', memory, 'm1', 1, false],
  ['1 new value, durable', durable, 'd1', 1, false],
  ['10 new values in one text, in memory', memory, 'm10', 10, false],
  ['10 new values in one text, durable', durable, 'd10', 10, false],
  ['10 values already issued (no write), durable', durable, 'dr', 10, true],
] as const) {
  const [sync, wall] = await issueRounds(vaults, prefix, values, repeat);
  rows.push([`${name}: issue`, sync, wall]);
}
await durable.close();
rows.push(['the write of 1 new value (one transaction)', await writeRounds(1), null]);
rows.push(['the write of 10 new values (one transaction)', await writeRounds(10), null]);
rows.push(['cold load of a 50-entry vault (session not in memory)', await loadRounds(), null]);
const loads = [
  await underLoad('recording alone', 2000, null),
  await underLoad('+ a new value every 5 ms', 2000, 5),
  await underLoad('+ a new value every 1 ms', 2000, 1),
  await underLoad('+ new values back to back', 2000, 0),
];

const f = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const st = (s: Stats): string => `${f(s.p50)} / ${f(s.p99)} / ${f(s.max)} µs`;
console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${os.platform()}, load average ${os.loadavg()[0]!.toFixed(2)}; ${ROUNDS} rounds each\n`);
console.log('| operation | event-loop time median / p99 / max | until commit() resolves, median / p99 / max |\n|---|---|---|');
for (const [name, sync, wall] of rows) console.log(`| ${name} | ${st(sync)} | ${wall ? st(wall) : '—'} |`);
console.log('\n| recording store, 32 requests in flight, 2 s (same file) | records/s | recordRequest p99 | failed records | event-loop delay p99 / max | vault commit median / p99 / max |\n|---|---|---|---|---|---|');
for (const l of loads) {
  console.log(`| ${l.label} | ${f(l.recordsPerSec)} | ${f(l.recordP99Ms)} ms | ${l.failed} | ${f(l.stallP99Ms)} / ${f(l.stallMaxMs)} ms | ${l.appends ? st(l.appends) : '—'} |`);
}
fs.rmSync(dir, { recursive: true, force: true });
