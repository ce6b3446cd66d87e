/**
 * Usage reports (RecordingStore.usageReport, what `aigov usage` and GET /aigov/v1/usage read) over
 * a store of recorded calls, on SQLite and on PostgreSQL: the time of each report as the gateway
 * asks for it (the store's own reader thread / pool), median and p90 of N runs, for an auditor
 * (every user) and for one user, by user, group, model and day, over 30 and 90 days.
 *
 * Data: N calls (default 200,000) spread evenly over the last 90 days, 200 users (alice makes 1%
 * of the calls), 1–2 groups each, 6 models of both providers; 88% priced, 4% unpriced, 4% with no
 * usage, 4% refused. Rows are inserted with SQL straight into a migrated database (seeding through
 * recordRequest would take minutes and is measured by bench/store-writes.ts); the reports then go
 * through the store.
 *
 * The reports find the calls through their sessions, on indexes that exist for the sessions API.
 * For comparison: the same reports with an index of their own on calls (started_at, subject), and
 * what such an index costs the writer — recordRequest (2 KB bodies) with 32 in flight on a fresh
 * SQLite store, with and without it, alternated. With PostgreSQL, the plans of two reports.
 *
 *   node bench/usage-report.ts [--calls N] [--runs N] [--sqlite-only] [--pg-url URL] [--keep (the PostgreSQL database, to EXPLAIN)]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { parseTimeZone, startOfDay } from '../src/core/usage/calendar-days.ts';
import type { RecordingStore, UsageQuery } from '../src/store/recording-store.ts';
import { openPostgresStore } from '../src/store/postgres/postgres-store.ts';
import { pgUsageReport } from '../src/store/postgres/pg-usage-reads.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { adminQuery, databaseUrl } from '../test/support/pg-databases.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { callRequest, chatBody, principal } from '../test/support/store-fixtures.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CALLS = arg('--calls', 200_000);
const RUNS = arg('--runs', 9);
const SQLITE_ONLY = process.argv.includes('--sqlite-only');
const ISSUER = 'https://idp.example.test';
const DAY = 86_400_000;
const NOW = Date.now();

interface Row {
  id: string; session_id: string; subject: string; email: string; groups: string; provider: string; provider_kind: string; model: string;
  started_at: number; status: string; usage: string | null;
}

function* rows(): Generator<Row> {
  const rand = seededRandom(42);
  const models = [['openai', 'openai', 'gpt-4o-mini', 150, 600], ['openai', 'openai', 'gpt-4o', 2500, 10_000], ['openai', 'openai', 'gpt-5', 1250, 10_000], ['anthropic', 'anthropic', 'claude-sonnet-4-5', 3000, 15_000], ['anthropic', 'anthropic', 'claude-haiku-4-5', 1000, 5000], ['openai', 'openai', 'house-model', 0, 0]] as const;
  const groupSets = [['developers'], ['developers', 'ml'], ['finance'], ['security', 'developers'], ['legal']];
  for (let i = 0; i < CALLS; i++) {
    const u = i % 100 === 0 ? 0 : 1 + Math.floor(rand() * 199);
    const subject = u === 0 ? 'alice' : `user-${u}`;
    const [provider, kind, model, inRate, outRate] = models[Math.floor(rand() * models.length)]!;
    const roll = rand();
    const input = Math.floor(rand() * 20_000);
    const output = Math.floor(rand() * 2000);
    const cached = kind === 'openai' ? Math.floor(input * rand() * 0.5) : 0;
    let usage: string | null = null;
    let status = 'completed';
    if (roll < 0.04) status = 'blocked';
    else if (roll < 0.08) usage = null;
    else if (roll < 0.12 || inRate === 0) usage = JSON.stringify({ inputTokens: input, outputTokens: output, totalTokens: input + output, costNanoUsd: null });
    else usage = JSON.stringify({ inputTokens: input, outputTokens: output, totalTokens: input + output, cacheReadTokens: cached, costNanoUsd: (input - cached) * inRate + output * outRate });
    yield {
      id: `call-${i}`, session_id: `ses-${subject}-${Math.floor(i / 5000)}`, subject, email: `${subject}@example.test`, groups: JSON.stringify(groupSets[u % groupSets.length]),
      provider, provider_kind: kind, model, started_at: NOW - 90 * DAY + Math.floor((i / CALLS) * 90 * DAY), status, usage,
    };
  }
}

const COLUMNS = ['id', 'session_id', 'subject', 'email', 'groups', 'issuer', 'provider', 'provider_kind', 'endpoint', 'method', 'path', 'model', 'stream', 'request_body', 'decisions', 'started_at', 'status', 'usage'] as const;
const values = (r: Row): (string | number | null)[] => [r.id, r.session_id, r.subject, r.email, r.groups, ISSUER, r.provider, r.provider_kind, 'openai.chat.completions', 'POST', '/v1/chat/completions', r.model, 0, '{}', '[]', r.started_at, r.status, r.usage];

function seedSqlite(file: string): void {
  const db = new DatabaseSync(file);
  db.exec('BEGIN');
  const session = db.prepare(`INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count) VALUES (?, ?, ?, ?, ?, ?, 1)
    ON CONFLICT (id) DO UPDATE SET call_count = call_count + 1, last_call_at = excluded.last_call_at`);
  const call = db.prepare(`INSERT INTO calls (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
  for (const r of rows()) {
    session.run(r.session_id, r.subject, ISSUER, r.email, r.started_at, r.started_at);
    call.run(...values(r));
  }
  db.exec('COMMIT');
  db.exec('ANALYZE');
  db.close();
}

async function seedPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    let batch: Row[] = [];
    const flush = async (): Promise<void> => {
      const cols = COLUMNS.map((_, i) => batch.map((r) => values(r)[i]));
      // As the store's writer keeps them: last_call_at the latest start of the session's calls.
      await client.query(`INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count)
        SELECT DISTINCT ON (s) s, subj, $3, mail, at, at, 1 FROM unnest($1::text[], $2::text[], $4::text[], $5::bigint[]) AS x(s, subj, mail, at) ORDER BY s, at DESC
        ON CONFLICT (id) DO UPDATE SET call_count = sessions.call_count + 1, last_call_at = greatest(sessions.last_call_at, excluded.last_call_at)`,
        [batch.map((r) => r.session_id), batch.map((r) => r.subject), ISSUER, batch.map((r) => r.email), batch.map((r) => r.started_at)]);
      const types = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'smallint', 'text', 'text', 'bigint', 'text', 'text'];
      await client.query(`INSERT INTO calls (${COLUMNS.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`, cols);
      batch = [];
    };
    for (const r of rows()) {
      batch.push(r);
      if (batch.length === 5000) await flush();
    }
    if (batch.length > 0) await flush();
    await client.query('COMMIT');
    await client.query('ANALYZE');
  } finally {
    await client.end();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;

function queries(): [string, UsageQuery][] {
  const paris = parseTimeZone('Europe/Paris')!;
  const days30 = startOfDay(paris, NOW - 30 * DAY);
  const days90 = startOfDay(paris, NOW - 90 * DAY);
  const last30 = { since: NOW - 30 * DAY, until: NOW };
  const last90 = { since: NOW - 90 * DAY, until: NOW };
  const alice = { owner: { subject: 'alice', issuer: ISSUER } };
  return [
    ['auditor · by user · 30 days', { by: 'user', ...last30 }],
    ['auditor · by group · 30 days', { by: 'group', ...last30 }],
    ['auditor · by model · 30 days', { by: 'model', ...last30 }],
    ['auditor · by day (Europe/Paris) · 30 days', { by: 'day', since: days30, until: NOW, zone: paris }],
    ['auditor · by model · 90 days (every call)', { by: 'model', ...last90 }],
    ['auditor · --user alice@example.test · by model · 30 days', { by: 'model', ...last30, user: 'alice@example.test' }],
    ['user alice · by model · 30 days', { by: 'model', ...last30, ...alice }],
    ['user alice · by day (Europe/Paris) · 90 days', { by: 'day', since: days90, until: NOW, zone: paris, ...alice }],
  ];
}

async function timeReports(store: RecordingStore, only?: readonly string[]): Promise<Map<string, { median: number; p90: number; calls: number }>> {
  const out = new Map<string, { median: number; p90: number; calls: number }>();
  for (const [name, q] of queries()) {
    if (only && !only.includes(name)) continue;
    await store.usageReport(q); // warm: statements prepared, pages cached
    const times: number[] = [];
    let calls = 0;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      calls = (await store.usageReport(q)).total.calls;
      times.push(performance.now() - t0);
    }
    out.set(name, { median: median(times), p90: p90(times), calls });
  }
  return out;
}

const BODY_2KB = chatBody('x'.repeat(2000));
const COMPARED = ['auditor · by model · 30 days', 'auditor · by day (Europe/Paris) · 30 days', 'user alice · by model · 30 days', 'user alice · by day (Europe/Paris) · 90 days'];
const EXTRA_INDEX = 'CREATE INDEX bench_calls_by_start ON calls (started_at, subject)';

async function writeCost(extraIndex: boolean): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-usage-w-'));
  const file = path.join(dir, 'aigov.db');
  try {
    await (await openSqliteStore({ path: file })).close();
    if (extraIndex) {
      const db = new DatabaseSync(file);
      db.exec(EXTRA_INDEX);
      db.close();
    }
    const store = await openSqliteStore({ path: file });
    const total = 20_000;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < total) {
        const i = next++;
        await store.recordRequest(callRequest(`w${i}`, { sessionId: `ws${i % 500}`, principal: principal({ subject: `user-${i % 500}` }), startedAt: NOW + i, requestBody: BODY_2KB }));
      }
    }));
    const perSecond = total / ((performance.now() - t0) / 1000);
    await store.close();
    return perSecond;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

type Timings = Map<string, { median: number; p90: number; calls: number }>;

function table(title: string, results: Timings, withIndex: Timings): string {
  const lines = [`### ${title}`, '', '| report | calls summed | median | p90 | with an index on calls (started_at, subject) (median) |', '|---|---|---|---|---|'];
  for (const [name, r] of results) {
    const w = withIndex.get(name);
    lines.push(`| ${name} | ${r.calls.toLocaleString('en-US')} | ${r.median.toFixed(1)} ms | ${r.p90.toFixed(1)} ms | ${w ? `${w.median.toFixed(1)} ms` : '—'} |`);
  }
  return lines.join('\n');
}

const out: string[] = [`Command: \`node bench/usage-report.ts --calls ${CALLS} --runs ${RUNS}\` — ${new Date(NOW).toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}; ${CALLS.toLocaleString('en-US')} calls over 90 days, 200 users.`, ''];

// SQLite
{
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-usage-'));
  const file = path.join(dir, 'aigov.db');
  try {
    await (await openSqliteStore({ path: file })).close();
    const t0 = performance.now();
    seedSqlite(file);
    console.error(`sqlite: seeded ${CALLS} calls in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const store = await openSqliteStore({ path: file });
    const asShipped = await timeReports(store);
    const db = new DatabaseSync(file);
    db.exec(`${EXTRA_INDEX}; ANALYZE;`);
    db.close();
    const withIndex = await timeReports(store, COMPARED);
    await store.close();
    out.push(table(`SQLite (${(fs.statSync(file).size / 1e6).toFixed(0)} MB file)`, asShipped, withIndex), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Alternated, so that a change of load on a shared machine falls on both.
  const runs: Record<'without' | 'with', number[]> = { without: [], with: [] };
  for (let i = 0; i < 5; i++) {
    runs.without.push(await writeCost(false));
    runs.with.push(await writeCost(true));
  }
  const rate = (xs: number[]): string => `${Math.round(median(xs)).toLocaleString('en-US')} records/s (runs ${xs.map((x) => Math.round(x)).join(', ')})`;
  out.push(
    'SQLite writer, recordRequest with 32 in flight (20,000 calls with 2 KB bodies, fresh file, median of 5, alternated):',
    '',
    `- as shipped (no index for usage reports): ${rate(runs.without)}`,
    `- with an index on calls (started_at, subject): ${rate(runs.with)}`,
    '',
  );
}

// PostgreSQL
if (!SQLITE_ONLY) {
  const name = `aigov_bench_${process.pid}`;
  const base = process.argv.includes('--pg-url') ? process.argv[process.argv.indexOf('--pg-url') + 1] : undefined;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = databaseUrl(name, base);
  try {
    await openPostgresStore({ url, poolSize: 2 }).then((s) => s.close());
    const t0 = performance.now();
    await seedPostgres(url);
    console.error(`postgres: seeded ${CALLS} calls in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const store = await openPostgresStore({ url, poolSize: 2, statementTimeoutMs: 60_000 });
    const asShipped = await timeReports(store);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    // The plans of two reports' statements as the store sends them.
    const plans: string[] = [];
    for (const name of ['user alice · by model · 30 days', 'auditor · by model · 30 days']) {
      const q = queries().find(([n]) => n === name)![1];
      const sent: [string, unknown[]][] = [];
      await pgUsageReport({ query: async (text: string, values?: unknown[]) => (sent.push([text, values ?? []]), { rows: [] }) }, q);
      const [text, values] = sent.at(-1)!;
      await admin.query('SET jit = off');
      plans.push(`-- ${name}`, ...(await admin.query(`EXPLAIN ${text}`, values)).rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']), '');
    }
    await admin.query(`${EXTRA_INDEX}; ANALYZE calls;`);
    await admin.end();
    const withIndex = await timeReports(store, COMPARED);
    await store.close();
    out.push(table('PostgreSQL', asShipped, withIndex), '', 'Plans (EXPLAIN, as shipped):', '', '```', ...plans, '```', '');
  } finally {
    if (process.argv.includes('--keep')) console.error(`kept ${url}`);
    else await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

console.log(out.join('\n'));
