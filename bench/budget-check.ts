/**
 * The budget check itself, in process (issue 15's "added latency of the budget check"): the
 * gateway's BudgetService.admit — which budgets count the call, its counters and windows, its
 * worst case priced, the reservation on every counter — i.e. what the budget stage adds before a
 * request is forwarded; then the settle of the call's charge (after the answer, off the request's
 * path). The end-to-end comparison through real gateways is `node bench/gateway-overhead.ts --budgets`;
 * on a shared 2-core machine its differences of tens of microseconds drown in noise, which this
 * measurement does not.
 *
 *   node bench/budget-check.ts
 *
 * Two budgets counting every call (a per-user daily and an everyone monthly dollar budget, with
 * a warning threshold): two counters per call. Memory: the single-node ledger; Redis: the shared
 * ledger at AIGOV_BENCH_REDIS_URL (default redis://127.0.0.1:6379; keys under a random prefix,
 * deleted after). CALLS calls one after the other, ROUNDS rounds, medians of per-round percentiles.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parsePolicyText } from '../src/config/load-policy.ts';
import type { NormalizedRequest } from '../src/core/events.ts';
import { BudgetService } from '../src/gateway/budgets/budget-service.ts';
import { GatewayMetrics } from '../src/gateway/metrics.ts';
import { Pricing } from '../src/gateway/pricing.ts';
import type { BudgetLedger } from '../src/store/budget-ledger.ts';
import { MemoryLedger } from '../src/store/memory-budget-ledger.ts';
import { RedisBudgetLedger } from '../src/store/redis/redis-budget-ledger.ts';

const ROUNDS = 5;
const CALLS = 5000;
const WARMUP = 2000;
const REDIS_URL = process.env['AIGOV_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const policy = parsePolicyText(
  `version: 1
budgets:
  - id: per-user-daily
    who: { users: '*' }
    window: 1d
    limit: { usd: 1000000 }
  - id: everyone-monthly
    who: '*'
    window: 1mo
    limit: { usd: 100000000 }
    warn_at: [0.9]
`,
  'bench-policy.yaml',
);
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarize the design notes. '.repeat(75) }] });
const request: NormalizedRequest = { endpoint: 'openai.chat.completions', model: 'gpt-4o-mini', stream: false, messages: [], tools: [], inputs: [], texts: [], outputLimit: { maxTokens: null, choices: 1 } };
const principal = { subject: 'alice', email: 'alice@example.com', groups: ['developers'], issuer: 'https://idp.example', clientId: null };

const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(ledger: BudgetLedger): Promise<{ admit: [number, number]; settle: [number, number] }> {
  const service = new BudgetService({ ledger, store: { chargesSince: async () => [] }, pricing: new Pricing([]), policy: { current: () => policy.compiled }, logger: pino({ level: 'silent' }), metrics: new GatewayMetrics() });
  await service.start();
  const admit: number[] = [];
  const settle: number[] = [];
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const t0 = performance.now();
    const admission = await service.admit({ callId: `call_${i}`, principal, provider: { name: 'openai', kind: 'openai' }, model: 'gpt-4o-mini', request, bodyText: body, startedAt: Date.now() });
    const t1 = performance.now();
    if (admission.kind !== 'admitted') throw new Error(`not admitted: ${admission.kind}`);
    // The gateway sends the settle behind the call (ticket.settle, not awaited): its round trip, timed alone.
    const t2 = performance.now();
    await ledger.settle(`call_${i}`, admission.ticket.counters.map((c) => ({ key: c.key, amount: 375_000 })));
    const t3 = performance.now();
    if (i >= WARMUP) {
      admit.push(t1 - t0);
      settle.push(t3 - t2);
    }
  }
  await service.close();
  admit.sort((a, b) => a - b);
  settle.sort((a, b) => a - b);
  return { admit: [pct(admit, 50), pct(admit, 99)], settle: [pct(settle, 50), pct(settle, 99)] };
}

const prefix = `aigov-bench-check-${randomBytes(4).toString('hex')}:`;
try {
  const results: Record<string, { admit: [number, number]; settle: [number, number] }[]> = { memory: [], redis: [] };
  for (let round = 0; round < ROUNDS; round++) {
    results['memory']!.push(await measure(new MemoryLedger()));
    results['redis']!.push(await measure(await RedisBudgetLedger.open({ url: REDIS_URL, ttlMs: 60_000, prefix })));
  }
  const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}; ${ROUNDS} rounds of ${CALLS} calls, medians of per-round percentiles; two counters per call\n`);
  console.log('| ledger | budget check before forwarding (admit) p50 / p99 | goal (p50) | settle round trip p50 / p99 (after the answer) |');
  console.log('|---|---|---|---|');
  for (const [name, label, goal] of [['memory', 'memory (single node)', 0.1], ['redis', 'Redis (shared)', 0.5]] as const) {
    const r = results[name]!;
    const a50 = median(r.map((x) => x.admit[0]));
    console.log(`| ${label} | ${us(a50)} / ${us(median(r.map((x) => x.admit[1])))} | ≤ ${goal * 1000} µs: ${a50 <= goal ? 'met' : '**not met**'} | ${us(median(r.map((x) => x.settle[0])))} / ${us(median(r.map((x) => x.settle[1])))} |`);
  }
} finally {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}
