/**
 * What shared pseudonym vaults on PostgreSQL cost a request: two SessionVaults ("replicas", each
 * with its own pool) on a fresh database of the server at AIGOV_BENCH_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped at the end.
 *
 *   node bench/pseudonym-vault-postgres.ts
 *
 * 1. The catch-up a governed request pays on a session held in memory (forAnswer: one indexed
 *    query that finds nothing new), one at a time and 32 at once over 32 sessions.
 * 2. The same when the other replica stored one new entry since (the query returns it, opened).
 * 3. Issuing one new value (forRequest, issue, commit: catch-up + one write transaction).
 * Wall time per operation, µs; prints a markdown table and exits.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SessionVaults } from '../src/gateway/session-vaults.ts';
import { openPostgresPseudonymStore } from '../src/store/postgres/pg-pseudonym-store.ts';

const ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROUNDS = 2000;
const WARMUP = 200;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function pct(samples: number[]): string {
  samples.sort((a, b) => a - b);
  const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!;
  return `${Math.round(at(50))} | ${Math.round(at(99))}`;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1000;
}

const name = `aigov_bench_vault_${randomBytes(4).toString('hex')}`;
await admin(`CREATE DATABASE ${name}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const key = randomBytes(32);
const replica = async (): Promise<SessionVaults> => new SessionVaults({ store: await openPostgresPseudonymStore({ url: url.toString(), key, poolSize: 5 }), purgeIntervalMs: 0 });
const [a, b] = [await replica(), await replica()];
try {
  const rows: string[] = [];
  // Sessions of 20 entries, held by both replicas.
  for (let s = 0; s < 32; s++) {
    const lease = await a.forRequest(`ses-${s}`);
    lease.issue(() => Array.from({ length: 20 }, (_, i) => lease.vault.placeholderFor('EMAIL_ADDRESS', `u${i}.s${s}@x.io`)));
    await lease.commit();
    await b.forAnswer(`ses-${s}`);
  }

  const one: number[] = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const us = await timed(() => b.forAnswer('ses-0'));
    if (i >= WARMUP) one.push(us);
  }
  rows.push(`| catch-up, nothing new, one at a time | ${pct(one)} |`);

  const many: number[] = [];
  for (let r = 0; r < (ROUNDS + WARMUP) / 32; r++) {
    const batch = await Promise.all(Array.from({ length: 32 }, (_, s) => timed(() => b.forAnswer(`ses-${s}`))));
    if (r >= WARMUP / 32) many.push(...batch);
  }
  rows.push(`| catch-up, nothing new, 32 at once | ${pct(many)} |`);

  const learned: number[] = [];
  for (let i = 0; i < 500; i++) {
    const lease = await a.forRequest('ses-1');
    lease.issue(() => lease.vault.placeholderFor('EMAIL_ADDRESS', `new${i}@x.io`));
    await lease.commit();
    learned.push(await timed(() => b.forAnswer('ses-1')));
  }
  rows.push(`| catch-up, 1 entry stored by the other replica | ${pct(learned)} |`);

  const issue: number[] = [];
  for (let i = 0; i < 1000; i++) {
    issue.push(await timed(async () => {
      const lease = await b.forRequest('ses-2');
      lease.issue(() => lease.vault.placeholderFor('EMAIL_ADDRESS', `fresh${i}@x.io`));
      await lease.commit();
    }));
  }
  rows.push(`| issue 1 new value (catch-up + write) | ${pct(issue)} |`);

  process.stdout.write(['| operation | p50 µs | p99 µs |', '|---|---|---|', ...rows].join('\n') + '\n');
} finally {
  await a.close();
  await b.close();
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
