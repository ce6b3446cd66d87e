/**
 * The webhook outbox (issue 14): what writing the notices in the approval's own transaction costs
 * a decision, and how long a notice takes from the decision to the receiver.
 *
 *   node bench/webhook-outbox.ts [--docs] [--decisions N]
 *
 * For each store (SQLite in a temp dir; PostgreSQL in a database of its own on the local server),
 * two replicas' approval parts — store, notifier posting from the store's outbox, approval
 * service announcing through it — plus, on the same database, a service without webhooks. One
 * receiver on 127.0.0.1 answers 200 at once. Per round, interleaved: a request is held on A and
 * decided through B (1 notice for `approval.decided`, written in the vote's transaction), and
 * another is held and decided on the service without webhooks. Timed:
 * - the vote (`decide()`, its transaction) with and without a notice in it;
 * - from just before the vote to the decided notice's arrival at the receiver (B's worker is
 *   woken by its own commit; A's by NOTIFY: either may post it, once).
 * All in this process (the receiver too): the figures are the store's and the worker's, not a
 * network's. `--docs` rewrites the section between <!-- webhook-outbox:start --> and
 * <!-- webhook-outbox:end --> of docs/benchmarks.md (appending it when missing).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { resolveWebhook, WebhookSchema } from '../src/config/webhook-schema.ts';
import { ApprovalService, type HoldRequest } from '../src/gateway/approvals/approval-service.ts';
import { createWebhookNotifier, type WebhookNotifier } from '../src/gateway/approvals/webhook-notifier.ts';
import type { ApprovalStore } from '../src/store/approval-store.ts';
import { openPostgresApprovalStore } from '../src/store/postgres/pg-approval-store.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs', 'benchmarks.md');
const MARK_START = '<!-- webhook-outbox:start -->';
const MARK_END = '<!-- webhook-outbox:end -->';
const PG_ADMIN_URL = process.env['AIGOV_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_DECISIONS = 200;
const WARMUP = 10;
const SECRET = 'whsec-bench-0123456789abcdef';
const logger = pino({ level: 'silent' });
const alice = { subject: 'alice', email: 'alice@example.com', groups: ['developers'] };
const bob = { subject: 'bob', email: 'bob@example.com', groups: ['approvers'] };
const spec = { approvers: ['approvers'], required: 1, timeout: 600_000, retry_window: 60_000, reuse: 'once' as const };

interface Sample {
  readonly voteWithMs: number;
  readonly voteWithoutMs: number;
  readonly toReceiverMs: number;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;

async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function run(open: () => Promise<ApprovalStore> | ApprovalStore, decisions: number): Promise<Sample[]> {
  const arrivals = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; approval: { id: string } };
      res.writeHead(200).end();
      if (body.type !== 'approval.decided') return;
      arrivals.set(body.approval.id, at);
      waiters.get(body.approval.id)?.();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const parsed = resolveWebhook(WebhookSchema.parse({ url, secret: '${S}', events: ['decided'] }), SECRET);
  if (!('webhook' in parsed)) throw new Error(parsed.problem);
  const hooks = [parsed.webhook];
  const parts: { store: ApprovalStore; notifier: WebhookNotifier | null; service: ApprovalService }[] = [];
  const part = async (withHooks: boolean): Promise<ApprovalService> => {
    const store = await open();
    const notifier = withHooks ? createWebhookNotifier({ webhooks: hooks, logger, outbox: store.outbox }) : null;
    const service = await ApprovalService.open({ store, logger, pollMs: 60_000, ...(notifier ? { announcer: notifier.announcer('https://gw.example') } : {}) });
    parts.push({ store, notifier, service });
    return service;
  };
  const a = await part(true);
  const b = await part(true);
  const plain = await part(false);
  let n = 0;
  const request = (): HoldRequest => {
    n += 1;
    return { requester: alice, ruleId: 'r', ruleReason: 'bench', spec, provider: 'openai', model: 'm', endpoint: 'openai.chat.completions', stream: false, preview: 'user: hi', sessionId: 's', callId: `c${n}`, body: `{"n":${n},"t":${Date.now()}}` };
  };
  const samples: Sample[] = [];
  try {
    for (let i = 0; i < WARMUP + decisions; i++) {
      const held = await a.hold(request());
      const arrived = new Promise<void>((resolve) => waiters.set(held.approval.id, resolve));
      const t0 = performance.now();
      const decided = await b.decide(held.approval.id, bob, 'approve', null);
      const t1 = performance.now();
      if (!decided.ok) throw new Error('the vote was refused');
      await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error('no notice within 10 s')), 10_000))]);
      const other = await plain.hold(request());
      const t2 = performance.now();
      if (!(await plain.decide(other.approval.id, bob, 'approve', null)).ok) throw new Error('the vote was refused');
      const t3 = performance.now();
      if (i >= WARMUP) samples.push({ voteWithMs: t1 - t0, voteWithoutMs: t3 - t2, toReceiverMs: arrivals.get(held.approval.id)! - t0 });
    }
  } finally {
    for (const p of parts) {
      await p.notifier?.close();
      p.service.close();
      await p.store.close();
    }
    server.closeAllConnections();
    server.close();
  }
  return samples;
}

async function main(args: string[]): Promise<void> {
  const docs = args.includes('--docs');
  const flag = args.indexOf('--decisions');
  const decisions = flag === -1 ? DEFAULT_DECISIONS : Number(args[flag + 1]);
  if (!Number.isInteger(decisions) || decisions < 1) throw new Error('usage: node bench/webhook-outbox.ts [--docs] [--decisions N]');
  if (docs && decisions < DEFAULT_DECISIONS) throw new Error('--docs records the full run only');
  const loadAtStart = os.loadavg()[0]!;
  const started = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'aigov-bench-outbox-'));
  const dbName = `aigov_bench_outbox_${process.pid}_${Date.now().toString(36)}`;
  await pgAdmin(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  try {
    const file = path.join(dir, 'aigov.db');
    const results: [string, Sample[]][] = [
      ['SQLite', await run(() => openSqliteApprovalStore(file), decisions)],
      ['PostgreSQL', await run(() => openPostgresApprovalStore({ url: dbUrl.toString(), poolSize: 2 }), decisions)],
    ];
    const seconds = (performance.now() - started) / 1000;
    const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
    const lines = [
      MARK_START,
      '## Webhook outbox: the notice in the vote\'s transaction, and decision → receiver (issue 14)',
      '',
      `Command: \`node bench/webhook-outbox.ts --docs\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs (${cpu}), load ${loadAtStart.toFixed(2)} at start (a shared, noisy machine), ${seconds.toFixed(0)} s. In one process: two replicas' approval parts (store, notifier posting from the store's outbox, service) and a service without webhooks on the same database, one receiver on 127.0.0.1 answering 200. ${decisions} rounds after ${WARMUP} warm-up: a request held on A is approved through B (its \`approval.decided\` notice written in the vote's transaction), then one held and approved on the service without webhooks.`,
      '',
      '| store | vote with a notice p50 / p95 | vote without p50 / p95 | vote → notice at the receiver p50 / p95 / max |',
      '|---|---|---|---|',
      ...results.map(([name, s]) => {
        const w = s.map((x) => x.voteWithMs);
        const wo = s.map((x) => x.voteWithoutMs);
        const rx = s.map((x) => x.toReceiverMs);
        return `| ${name} | ${fmt(percentile(w, 50))} / ${fmt(percentile(w, 95))} | ${fmt(percentile(wo, 50))} / ${fmt(percentile(wo, 95))} | ${fmt(percentile(rx, 50))} / ${fmt(percentile(rx, 95))} / ${fmt(Math.max(...rx))} |`;
      }),
      '',
      'The notice is built (the approval\'s view, the Slack text, the JSON body) and written as one more row of the vote\'s statement (PostgreSQL: a CTE of the same statement, under the chain head\'s lock; SQLite: one INSERT in the same transaction). The "with" figure also holds what the commit sets off on the same event loop before decide() resumes its caller: the local worker\'s wake-up and, on SQLite, its claim (synchronous). Vote → receiver adds the claim (PostgreSQL: one UPDATE … FOR UPDATE SKIP LOCKED), the signed POST and its answer; the post itself is never on the decision\'s path.',
      MARK_END,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (docs) {
      const doc = readFileSync(DOC, 'utf8');
      const from = doc.indexOf(MARK_START);
      const to = doc.indexOf(MARK_END);
      writeFileSync(DOC, from !== -1 && to > from ? `${doc.slice(0, from)}${lines.join('\n')}${doc.slice(to + MARK_END.length)}` : `${doc.trimEnd()}\n\n${lines.join('\n')}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
  }
}

await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
