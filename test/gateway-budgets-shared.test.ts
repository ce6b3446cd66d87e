/**
 * Budgets across replicas, with their real parts: three gateways recording in one PostgreSQL
 * database and counting in one Redis (127.0.0.1:6379, keys under a prefix of their own), a
 * scripted upstream that reports usage, and gateway processes killed with SIGKILL.
 *
 * - 300 concurrent requests spread over the three against a $1 budget: what is recorded stays
 *   within the budget plus one reservation, and the counter equals the record;
 * - Redis loses its data: the counters are seeded again from the record, not from zero;
 * - a gateway killed while its calls hold reservations: the budget is whole again within the TTL;
 * - 10,000 requests with client aborts, upstream errors and broken streams: every counter equals
 *   the sum of the recorded charges, exactly, and nothing stays reserved;
 * - Redis unreachable: budgeted requests are refused (503), fail closed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { recordedCharge } from '../src/core/budgets/charges.ts';
import type { ProviderKind, Usage } from '../src/core/events.ts';
import { RedisBudgetLedger } from '../src/store/redis/redis-budget-ledger.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { pgQuery, usePgDatabases } from './support/pg-databases.ts';
import type { Transcript } from './support/replay-upstream.ts';
import { seededRandom } from './support/seeded-random.ts';

const REDIS_URL = process.env['AIGOV_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const CHILD = path.resolve('test/support/gateway-child.ts');
const USD = 1e9;
const CALL_COST = 50 * 2500 + 800 * 10_000; // gpt-4o, 50 in + 800 out
const freshPg = usePgDatabases();
const prefixes: string[] = [];
const children = new Set<ChildProcess>();
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

function newPrefix(): string {
  const prefix = `aigov-test-${randomBytes(5).toString('hex')}:`;
  prefixes.push(prefix);
  return prefix;
}

const POLICY = `version: 1
budgets:
  - id: team-daily
    who: '*'
    models: [gpt-4o]
    window: 1d
    limit: { usd: 1 }
  - id: flood-usd
    who: '*'
    models: [gpt-4o-mini, 'claude-*']
    window: 1d
    limit: { usd: 10000 }
  - id: flood-tokens
    who: { users: '*' }
    models: [gpt-4o-mini, 'claude-*']
    window: 24h
    limit: { tokens: 1000000000 }
`;

const json = (status: number, body: unknown): Transcript => ({ description: 'scripted', request: { method: 'POST', path: '/' }, status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const sse = (events: string[]): Transcript => ({ description: 'scripted stream', request: { method: 'POST', path: '/' }, status: 200, headers: { 'content-type': 'text/event-stream' }, body: events.join('') });

function chatAnswer(model: string, usage: { prompt_tokens: number; completion_tokens: number }): Transcript {
  return json(200, { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } });
}

function chatStream(words: number, ending: 'usage' | 'broken'): Transcript {
  const chunk = (delta: object, finish: string | null): string => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini-2024-07-18', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const body = [chunk({ role: 'assistant', content: '' }, null), ...Array.from({ length: words }, (_, i) => chunk({ content: `w${i} ` }, null))];
  if (ending === 'broken') return sse(body);
  const usage = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini-2024-07-18', choices: [], usage: { prompt_tokens: 30, completion_tokens: words, total_tokens: 30 + words } })}\n\n`;
  return sse([...body, chunk({}, 'stop'), usage, 'data: [DONE]\n\n']);
}

function anthropicStream(words: number, ending: 'complete' | 'broken'): Transcript {
  const ev = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const body = [
    ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-haiku-4-5-20251001', content: [], stop_reason: null, usage: { input_tokens: 40, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...Array.from({ length: words }, (_, i) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `w${i} ` } })),
  ];
  if (ending === 'broken') return sse(body);
  return sse([...body, ev('content_block_stop', { index: 0 }), ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: words + 2 } }), ev('message_stop', {})]);
}

/** The answer a request asks for by its first message (`s:<scenario>`), so one route serves every scenario. */
function scripted(body: string): Transcript {
  const request = JSON.parse(body) as { model: string; stream?: boolean; messages: { content: string }[] };
  const scenario = /s:(\w+)/.exec(request.messages.at(-1)?.content ?? '')?.[1] ?? 'ok';
  if (scenario === 'error') return json(500, { error: { message: 'upstream failed', type: 'server_error', param: null, code: null } });
  if (scenario === 'limited') return json(429, { error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } });
  if (request.model.startsWith('claude')) return anthropicStream(12, scenario === 'broken' ? 'broken' : 'complete');
  if (request.stream) return chatStream(12, scenario === 'broken' ? 'broken' : 'usage');
  return chatAnswer(request.model === 'gpt-4o' ? 'gpt-4o-2024-08-06' : 'gpt-4o-mini-2024-07-18', request.model === 'gpt-4o' ? { prompt_tokens: 50, completion_tokens: 800 } : { prompt_tokens: 20, completion_tokens: 9 });
}

describe('budgets across three replicas (PostgreSQL record, Redis counters)', { timeout: 600_000 }, () => {
  let dbUrl = '';
  let prefix = '';
  let dir = '';
  let policyFile = '';
  let a: Harness;
  let b: Harness;
  let c: Harness;
  let bobToken = '';

  before(async () => {
    dbUrl = (await freshPg()).url;
    prefix = newPrefix();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-budgets-shared-'));
    policyFile = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policyFile, POLICY);
    const options = { databaseUrl: dbUrl, policyFile, redisUrl: REDIS_URL, budgets: { redis_prefix: prefix }, limits: { upstream_max_connections: 4096 } };
    a = await startHarness(options);
    b = await startHarness({ ...options, replicaOf: a });
    c = await startHarness({ ...options, replicaOf: a });
    bobToken = await a.tokenFor('bob');
    a.upstream.route('POST', '/v1/chat/completions', (req) => scripted(req.body), { chunking: { size: 200 }, chunkDelayMs: 1, headersDelayMs: 5 });
    a.upstream.route('POST', '/v1/messages', (req) => scripted(req.body), { chunking: { size: 200 }, chunkDelayMs: 1 });
  });
  after(async () => {
    await c?.close();
    await b?.close();
    await a?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const replicas = (): Harness[] => [a, b, c];

  async function teamCounter(): Promise<{ spent: number; reserved: number }> {
    const service = a.gateway.budgets!;
    const [state] = await service.read(service.budgets().filter((x) => x.id === 'team-daily'), { principal: { subject: 'alice', email: 'alice@aigov.dev', groups: [] }, provider: 'openai', model: 'gpt-4o' });
    return { spent: state!.spent, reserved: state!.reserved };
  }

  async function recordedTeamSpend(): Promise<number> {
    for (const h of replicas()) await h.gateway.store.flush();
    const rows = await pgQuery<{ provider_kind: ProviderKind; usage: string | null }>(dbUrl, "SELECT provider_kind, usage FROM calls WHERE model = 'gpt-4o'");
    return rows.reduce((sum, r) => sum + recordedCharge(r.provider_kind, r.usage === null ? null : (JSON.parse(r.usage) as Usage)).nanoUsd, 0);
  }

  it('300 concurrent requests over three replicas never get past a $1 budget by more than one reservation', async () => {
    const body = (i: number) => ({ model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: `question ${i}` }] });
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const h = replicas()[i % 3]!;
        const res = await fetchAsUser(h.url, i % 2 === 0 ? a.token : bobToken, '/openai/v1/chat/completions', { method: 'POST', body: body(i) });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    const ok = results.filter((s) => s === 200).length;
    assert.equal(ok + results.filter((s) => s === 429).length, 300, `only 200s and 429s: ${results.filter((s) => s !== 200 && s !== 429).join(', ')}`);
    const spent = await recordedTeamSpend();
    const reservation = Buffer.byteLength(JSON.stringify(body(299))) * 2500 + 1000 * 10_000 + 1;
    assert.equal(spent, ok * CALL_COST);
    assert.ok(spent <= USD + reservation, `recorded $${spent / USD} ≤ $1 + one reservation`);
    assert.ok(ok >= Math.floor(USD / reservation), `at least as many calls as reservations fit in $1: ${ok}`);
    assert.deepEqual(await waitForSettled(teamCounter), { spent, reserved: 0 }, 'the shared counter equals the record');
  });

  it('when Redis loses its data the counters are seeded again from the record, not from zero', async () => {
    const before = await recordedTeamSpend();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    assert.ok(keys.length > 0);
    await redis.del(...keys);
    redis.disconnect();
    const res = await fetchAsUser(b.url, a.token, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o', max_tokens: 20_000, messages: [{ role: 'user', content: 'after the flush' }] } });
    assert.equal(res.status, 429, 'still over budget after the flush');
    assert.deepEqual(await teamCounter(), { spent: before, reserved: 0 });
  });

  it('10,000 requests with client aborts, upstream errors and broken streams: every counter equals the sum of the recorded charges', async () => {
    const random = seededRandom(15);
    const users = [a.token, bobToken];
    const scenarios = ['ok', 'ok', 'ok', 'stream', 'stream', 'broken', 'error', 'limited', 'abort', 'abort-early'] as const;
    let next = 0;
    const total = Number(process.env['AIGOV_BUDGET_FLOOD'] ?? 10_000);
    const counts: Record<string, number> = {};
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        const h = replicas()[i % 3]!;
        const scenario = scenarios[Math.floor(random() * scenarios.length)]!;
        const anthropic = random() < 0.3;
        const stream = scenario !== 'ok' || anthropic;
        const content = `request ${i} s:${scenario}`;
        const controller = new AbortController();
        const token = users[i % 2]!;
        const request = anthropic
          ? fetch(`${h.url}/anthropic/v1/messages`, { method: 'POST', signal: controller.signal, headers: { 'x-api-key': token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 200, stream, messages: [{ role: 'user', content }] }) })
          : fetch(`${h.url}/openai/v1/chat/completions`, { method: 'POST', signal: controller.signal, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 200, stream, ...(stream ? { stream_options: { include_usage: true } } : {}), messages: [{ role: 'user', content }] }) });
        if (scenario === 'abort-early') setTimeout(() => controller.abort(), Math.floor(random() * 8));
        try {
          const res = await request;
          counts[`${scenario} ${res.status}`] = (counts[`${scenario} ${res.status}`] ?? 0) + 1;
          if (scenario === 'abort') {
            const reader = (res.body as ReadableStream<Uint8Array>).getReader();
            await reader.read();
            controller.abort();
            await reader.read().catch(() => undefined);
          } else {
            await res.arrayBuffer();
          }
        } catch {
          counts[`${scenario} aborted`] = (counts[`${scenario} aborted`] ?? 0) + 1;
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 48 }, worker));
    process.stdout.write(`# 10,000 requests in ${Date.now() - started} ms: ${JSON.stringify(counts)}\n`);

    // Every call has ended (an aborted one too), and every settle has reached Redis.
    const rows = await waitForRecord(dbUrl, replicas());
    const service = a.gateway.budgets!;
    const flood = service.budgets().filter((x) => x.id !== 'team-daily');
    const expected = { usd: 0, tokens: new Map<string, number>() };
    let reservationCharged = 0;
    for (const row of rows) {
      const usage = row.usage === null ? null : (JSON.parse(row.usage) as Usage);
      assert.ok(usage?.charged !== undefined || row.status === 'blocked', `call ${row.id} (${row.status}) was recorded with its charge`);
      const charge = recordedCharge(row.provider_kind, usage);
      if (charge.basis === 'reservation') reservationCharged++;
      expected.usd += charge.nanoUsd;
      expected.tokens.set(row.subject, (expected.tokens.get(row.subject) ?? 0) + charge.tokens);
    }
    assert.ok(reservationCharged > 100, `aborts and broken streams were charged their reservation (${reservationCharged})`);
    const read = async (subject: string) => service.read(flood, { principal: { subject, email: `${subject}@aigov.dev`, groups: [] }, provider: 'openai', model: 'gpt-4o-mini' });
    const settled = await waitForSettled(async () => {
      const [alice, bob] = [await read('alice'), await read('bob')];
      return { aliceReserved: alice.reduce((s, x) => s + x.reserved, 0) + bob.reduce((s, x) => s + x.reserved, 0), alice, bob };
    }, (x) => x.aliceReserved === 0);
    const usd = settled.alice.find((x) => x.budget.id === 'flood-usd')!;
    assert.equal(usd.spent, expected.usd, 'the shared dollar counter equals the sum of the recorded charges');
    assert.equal(settled.alice.find((x) => x.budget.id === 'flood-tokens')!.spent, expected.tokens.get('alice'));
    assert.equal(settled.bob.find((x) => x.budget.id === 'flood-tokens')!.spent, expected.tokens.get('bob'));
  });
});

describe('a gateway killed while its calls hold reservations', { timeout: 120_000 }, () => {
  it('the budget is whole again within the reservation TTL', async () => {
    const dbUrl = (await freshPg()).url;
    const prefix = newPrefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-budget-kill-'));
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policy, `version: 1\nbudgets:\n  - id: shared\n    who: '*'\n    window: 1d\n    limit: { usd: 1 }\n`);
    const upstream = await startHarness({ databaseUrl: dbUrl }); // only for its scripted upstream
    // Each stream reserves 15,000 output tokens of gpt-4o ($0.15) and runs ~10 s.
    upstream.upstream.route('POST', '/v1/chat/completions', () => chatStream(40, 'usage'), { chunking: { size: 120 }, chunkDelayMs: 250 });
    const ttl = 2;
    const start = async (): Promise<{ proc: ChildProcess; url: string; token: string }> => {
      const proc = spawn(process.execPath, [CHILD, upstream.upstream.url, path.join(dir, `child-${randomBytes(3).toString('hex')}.db`), dbUrl], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, AIGOV_CHILD_POLICY: policy, AIGOV_CHILD_REDIS_URL: REDIS_URL, AIGOV_CHILD_REDIS_PREFIX: prefix, AIGOV_CHILD_BUDGET_TTL: String(ttl) },
      });
      children.add(proc);
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const ready = await new Promise<{ url: string; token: string }>((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { url: string; token: string });
        });
        proc.once('exit', () => reject(new Error(`the gateway process ended before it was ready: ${stderr}`)));
      });
      return { proc, ...ready };
    };
    const ask = (g: { url: string; token: string }, maxTokens: number): Promise<Response> =>
      fetch(`${g.url}/openai/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${g.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'talk slowly' }] }) });
    const ledger = await RedisBudgetLedger.open({ url: REDIS_URL, prefix, ttlMs: ttl * 1000 });
    try {
      const doomed = await start();
      const survivor = await start();
      // Five streams on the doomed gateway: $0.75 reserved while they run.
      const streams = await Promise.all(Array.from({ length: 5 }, () => ask(doomed, 15_000)));
      for (const s of streams) assert.equal(s.status, 200);
      await Promise.all(streams.map((s) => (s.body as ReadableStream<Uint8Array>).getReader().read()));
      const big = await ask(survivor, 50_000); // $0.50: does not fit next to $0.75
      assert.equal(big.status, 429);
      await big.arrayBuffer();
      doomed.proc.kill('SIGKILL');
      const killedAt = Date.now();
      let status = 429;
      while (status !== 200) {
        assert.ok(Date.now() - killedAt < ttl * 1000 + 2500, `the dead gateway's reservations still count ${Date.now() - killedAt} ms after the kill (TTL ${ttl} s)`);
        await new Promise((r) => setTimeout(r, 100));
        const res = await ask(survivor, 50_000);
        status = res.status;
        if (status === 200) void (res.body as ReadableStream<Uint8Array>).cancel();
        else await res.arrayBuffer();
      }
      process.stdout.write(`# whole again ${Date.now() - killedAt} ms after the kill (TTL ${ttl} s)\n`);
      survivor.proc.kill('SIGKILL');
    } finally {
      await ledger.close();
      await upstream.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('counters in PostgreSQL (budgets.counters: postgres)', { timeout: 120_000 }, () => {
  it('two replicas share them through the storage database, exactly', async () => {
    const dbUrl = (await freshPg()).url;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-budget-pg-'));
    const policyFile = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policyFile, `version: 1\nbudgets:\n  - id: team\n    who: { groups: [developers, approvers] }\n    models: [gpt-4o]\n    window: 1d\n    limit: { usd: 0.2 }\n`);
    const options = { databaseUrl: dbUrl, policyFile, budgets: { counters: 'postgres' as const } };
    const a = await startHarness(options);
    const b = await startHarness({ ...options, replicaOf: a });
    try {
      a.upstream.route('POST', '/v1/chat/completions', (req) => scripted(req.body), { headersDelayMs: 10 });
      const bob = await a.tokenFor('bob');
      const statuses = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const res = await fetchAsUser((i % 2 ? b : a).url, i % 3 ? a.token : bob, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: `q${i}` }] } });
          await res.arrayBuffer();
          return res.status;
        }),
      );
      const ok = statuses.filter((x) => x === 200).length;
      assert.equal(ok + statuses.filter((x) => x === 429).length, 60);
      for (const h of [a, b]) await h.gateway.store.flush();
      const rows = await pgQuery<{ provider_kind: ProviderKind; usage: string | null; groups: string }>(dbUrl, "SELECT provider_kind, usage, groups FROM calls WHERE model = 'gpt-4o'");
      const spent = (group: string): number => rows.filter((r) => (JSON.parse(r.groups) as string[]).includes(group)).reduce((sum, r) => sum + recordedCharge(r.provider_kind, r.usage === null ? null : (JSON.parse(r.usage) as Usage)).nanoUsd, 0);
      assert.ok(spent('developers') <= 0.2 * USD + 1_000_000_000 / 100, 'within $0.20 and one reservation');
      const service = a.gateway.budgets!;
      const read = async (group: string) => (await service.read(service.budgets(), { principal: { subject: 'x', email: null, groups: [group] }, provider: 'openai', model: 'gpt-4o' }))[0]!;
      const dev = await waitForSettled(() => read('developers'));
      assert.deepEqual({ spent: dev.spent, reserved: dev.reserved }, { spent: spent('developers'), reserved: 0 });
      const approvers = await read('approvers');
      assert.equal(approvers.spent, spent('approvers'));
      assert.equal(ok, rows.filter((r) => r.usage !== null && (JSON.parse(r.usage) as Usage).charged?.basis === 'usage').length);
    } finally {
      await b.close();
      await a.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a Redis of its own, restarted without persistence', { timeout: 120_000 }, () => {
  it('while it is down budgets refuse (503); once it is back they count on from the record, not from zero', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-redis-'));
    const startRedis = async (): Promise<ChildProcess> => {
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
      children.add(proc);
      for (let i = 0; i < 100; i++) {
        const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => {});
        const up = await probe.connect().then(() => probe.ping()).then(() => true, () => false);
        probe.disconnect();
        if (up) return proc;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('redis-server did not start');
    };
    let redis = await startRedis();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-budget-restart-'));
    const policyFile = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policyFile, `version: 1\nbudgets:\n  - id: daily\n    who: '*'\n    models: [gpt-4o]\n    window: 1d\n    limit: { usd: 0.05 }\n`);
    const h = await startHarness({ policyFile, redisUrl: `redis://127.0.0.1:${port}` });
    try {
      h.upstream.route('POST', '/v1/chat/completions', (req) => scripted(req.body));
      const ask = async (): Promise<number> => {
        const res = await fetchAsUser(h.url, h.token, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] } });
        await res.arrayBuffer();
        return res.status;
      };
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await ask());
      // $0.008125 a call, ~$0.0102 reserved: the fifth fits ($0.0325 + $0.0102), the sixth does not ($0.0406 + $0.0102).
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
      redis.kill('SIGKILL');
      await new Promise((resolve) => redis.once('exit', resolve));
      assert.equal(await ask(), 503, 'Redis down: refused, fail closed');
      redis = await startRedis(); // empty: no persistence
      let status = 503;
      for (let i = 0; i < 100 && status === 503; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await ask();
      }
      assert.equal(status, 429, 'back, and still over budget: seeded from the record');
      const service = h.gateway.budgets!;
      const [state] = await service.read(service.budgets(), { principal: { subject: 'alice', email: null, groups: [] }, provider: 'openai', model: 'gpt-4o' });
      assert.deepEqual({ spent: state!.spent, reserved: state!.reserved }, { spent: 5 * CALL_COST, reserved: 0 });
    } finally {
      await h.close();
      redis.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(redisDir, { recursive: true, force: true });
    }
  });
});

describe('an unreachable counter store', () => {
  it('refuses budgeted requests with 503 (fail closed); requests no budget counts go through', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-budget-down-'));
    const policyFile = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policyFile, `version: 1\nbudgets:\n  - id: gpt4o-only\n    who: '*'\n    models: [gpt-4o]\n    window: 1d\n    limit: { usd: 1 }\n`);
    const h = await startHarness({ policyFile, redisUrl: 'redis://127.0.0.1:1' });
    try {
      h.upstream.route('POST', '/v1/chat/completions', (req) => scripted(req.body));
      const res = await fetchAsUser(h.url, h.token, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] } });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'AIGOV_E_BUDGET_STORE_UNAVAILABLE');
      assert.match(body.error.message, /budget counters \(redis\) cannot be reached/);
      assert.equal(h.upstream.received.length, 0, 'nothing went upstream');
      const free = await fetchAsUser(h.url, h.token, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
      assert.equal(free.status, 200, 'no budget counts gpt-4o-mini');
    } finally {
      await h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface CallRow {
  id: string;
  subject: string;
  status: string;
  provider_kind: ProviderKind;
  usage: string | null;
}

/** The calls once all of them have ended (none pending; a client gone before its request was recorded left none). */
async function waitForRecord(url: string, gateways: Harness[]): Promise<CallRow[]> {
  let rows: CallRow[] = [];
  for (let i = 0; i < 200; i++) {
    for (const h of gateways) await h.gateway.store.flush();
    rows = await pgQuery<CallRow & Record<string, unknown>>(url, "SELECT id, subject, status, provider_kind, usage, error_code, stream, http_status FROM calls WHERE model IN ('gpt-4o-mini', 'claude-haiku-4-5')");
    if (rows.every((r) => r.status !== 'pending')) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`calls stayed pending: ${JSON.stringify(rows.filter((r) => r.status === 'pending').slice(0, 5))}`);
}

/** Polls until nothing is reserved any more (settles travel to Redis after the calls end). */
async function waitForSettled<T>(read: () => Promise<T>, done: (value: T) => boolean = (v) => (v as { reserved: number }).reserved === 0): Promise<T> {
  let value = await read();
  for (let i = 0; i < 100 && !done(value); i++) {
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return value;
}
