/**
 * Budgets through a real gateway on one node (SQLite, counters in the gateway's memory), the
 * official SDKs and raw sockets as clients, a scripted upstream that reports usage:
 *
 * - a burst of 300 concurrent requests against a $1 budget: what is recorded stays within the
 *   budget plus one reservation, refusals are 429s in each provider's shape with retry-after at
 *   the window's reset, and the counter equals the sum of the recorded charges;
 * - a restart keeps the budget (the counters are rebuilt from the record);
 * - require_approval: an approver lets one over-budget request through, counted;
 * - a calendar window rolls over at a time zone's midnight, and a DST day is 23 hours long;
 * - warnings reach the webhooks once; unpriced models are refused; metrics.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { recordedCharge } from '../src/core/budgets/charges.ts';
import type { CallRecord } from '../src/store/recording-store.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import type { Transcript } from './support/replay-upstream.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { ApprovalListSchema } from '../src/protocol/approvals.ts';
import type { BudgetWebhookPayload } from '../src/gateway/approvals/webhook-notifier.ts';

const HOOK_SECRET = 'budget-hook-secret-0123456789';
const USD = 1e9;
/** gpt-4o: $2.50 in, $10 out per million tokens: 50 in + 800 out = $0.008125. */
const CALL_COST = 50 * 2500 + 800 * 10_000;

const POLICY = `version: 1
approval:
  approvers: [approvers]
  timeout: 20s
  notify:
    - url: RECEIVER_URL
      secret: \${BUDGET_HOOK_SECRET}
      events: [budget_warning]
budgets:
  - id: per-user-daily
    who: { users: ['alice@aigov.dev'] }
    models: ['*']
    window: 1d
    limit: { usd: 1 }
    action: block
  - id: carol-approval
    who: { users: ['carol@*'] }
    window: 1d
    limit: { usd: 0.005 }
    action: require_approval
  - id: dave-new-york
    who: { groups: [legal], per: user }
    window: 1d
    timezone: America/New_York
    limit: { requests: 2 }
    warn_at: [0.5]
`;

/** A chat completion with usage, as OpenAI answers it. */
function chatAnswer(usage = { prompt_tokens: 50, completion_tokens: 800 }, model = 'gpt-4o-2024-08-06'): Transcript {
  return {
    description: 'scripted chat completion',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }),
  };
}

function anthropicAnswer(): Transcript {
  return {
    description: 'scripted message',
    request: { method: 'POST', path: '/v1/messages' },
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage: { input_tokens: 40, output_tokens: 60 } }),
  };
}

let h: Harness;
let dir: string;
let receiver: Server;
const deliveries: { body: string }[] = [];
const tokens: Record<string, string> = {};
/** Added to the real clock for calls (the time zone test moves it). */
let offset = 0;

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      deliveries.push({ body });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  process.env['BUDGET_HOOK_SECRET'] = HOOK_SECRET;
  dir = await mkdtemp(join(tmpdir(), 'aigov-budgets-'));
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY.replace('RECEIVER_URL', `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`));
  h = await startHarness({ policyFile, approvalKeepAliveMs: 50, now: () => Date.now() + offset, limits: { upstream_max_connections: 4096 } });
  tokens['alice'] = h.token;
  for (const user of ['bob', 'carol', 'dave']) tokens[user] = await h.tokenFor(user);
  h.upstream.route('POST', '/v1/chat/completions', () => chatAnswer(), { headersDelayMs: 20 });
  h.upstream.route('POST', '/v1/messages', () => anthropicAnswer());
});
after(async () => {
  await h.close();
  receiver.close();
  await rm(dir, { recursive: true, force: true });
});

const chatBody = (content = 'hello', max = 1000) => ({ model: 'gpt-4o', max_tokens: max, messages: [{ role: 'user' as const, content }] });

async function allCalls(): Promise<CallRecord[]> {
  await h.gateway.store.flush();
  const sessions = await h.gateway.store.listSessions({ limit: 10_000 });
  return (await Promise.all(sessions.map((s) => h.gateway.store.listCalls(s.sessionId)))).flat();
}

/** The sum of the recorded charges of `user`'s calls, in nano-dollars. */
async function recordedNanoUsd(subject: string): Promise<number> {
  return (await allCalls()).filter((c) => c.principal.subject === subject).reduce((sum, c) => sum + recordedCharge(c.providerKind, c.usage).nanoUsd, 0);
}

async function counter(user: string, budgetId: string): Promise<{ spent: number; reserved: number }> {
  const budgets = h.gateway.budgets!;
  const call = (await allCalls()).find((c) => c.principal.subject === user);
  assert.ok(call, `a recorded call of ${user}`);
  const { groups, email } = call.principal;
  const states = await budgets.read(budgets.budgets().filter((b) => b.id === budgetId), { principal: { subject: user, email, groups }, provider: 'openai', model: 'gpt-4o' });
  assert.equal(states.length, 1);
  return { spent: states[0]!.spent, reserved: states[0]!.reserved };
}

describe('budgets on one node', () => {
  it('a burst of 300 concurrent requests never gets past a $1 budget by more than one reservation', async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const res = await fetchAsUser(h.url, tokens['alice']!, '/openai/v1/chat/completions', { method: 'POST', body: chatBody(`question ${i}`) });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), shouldRetry: res.headers.get('x-should-retry'), body: (await res.json()) as { error?: { code: string; message: string; type: string } } };
      }),
    );
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 429);
    assert.equal(ok + refused.length, 300, `only 200s and 429s: ${JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 429))}`);
    const reservation = Buffer.byteLength(JSON.stringify(chatBody('question 299'))) * 2500 + 1000 * 10_000 + 1;
    assert.ok(ok >= Math.floor(USD / reservation) && ok <= Math.floor(USD / CALL_COST), `$1 holds ${Math.floor(USD / CALL_COST)} calls of $0.008125, and at least ${Math.floor(USD / reservation)} reservations of ~$0.0102 (got ${ok})`);
    const spent = await recordedNanoUsd('alice');
    assert.equal(spent, ok * CALL_COST, 'each call is recorded with what it cost');
    assert.ok(spent <= USD + reservation, `recorded $${spent / USD} ≤ $1 + one reservation`);
    const secondsToMidnight = Math.ceil((Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Date.now()) / 1000);
    for (const r of refused) {
      assert.equal(r.body.error?.code, 'AIGOV_E_BUDGET_EXCEEDED');
      assert.equal(r.body.error?.type, 'rate_limit_error');
      assert.match(r.body.error?.message ?? '', /budget per-user-daily exceeded: \$[\d.]+ of \$1 \(/);
      assert.ok(Math.abs(Number(r.retryAfter) - secondsToMidnight) <= 5, `retry-after ${r.retryAfter} ≈ ${secondsToMidnight} s to UTC midnight`);
      if (secondsToMidnight > 60) assert.equal(r.shouldRetry, 'false');
    }
    assert.deepEqual(await counter('alice', 'per-user-daily'), { spent, reserved: 0 }, 'the counter is the sum of the recorded charges');
  });

  it('refusals reach the SDKs as their rate-limit errors; other users are not touched', async () => {
    const openai = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens['alice']!, maxRetries: 0 });
    const error = await openai.chat.completions.create(chatBody()).then(() => null, (e: unknown) => e);
    assert.ok(error instanceof OpenAI.RateLimitError, String(error));
    assert.equal(error.code, 'AIGOV_E_BUDGET_EXCEEDED');
    assert.ok(Number(error.headers?.get('retry-after')) > 0);
    const anthropic = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: tokens['alice']!, maxRetries: 0 });
    // Its worst case ($0.15 for 10,000 output tokens) is more than what the burst left.
    const aerr = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10_000, messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e);
    assert.ok(aerr instanceof Anthropic.RateLimitError, String(aerr));
    assert.match(aerr.message, /per-user-daily/);
    const bob = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens['bob']!, maxRetries: 0 });
    assert.equal((await bob.chat.completions.create(chatBody())).choices[0]?.message.content, 'ok');
    const refusals = (await allCalls()).filter((c) => c.principal.subject === 'alice' && c.status === 'blocked');
    assert.ok(refusals.length > 0 && refusals.every((c) => c.decisions.some((d) => d.ruleId === 'budget:per-user-daily' && d.action === 'block') && recordedCharge(c.providerKind, c.usage).nanoUsd === 0), 'refusals are recorded, charged nothing');
  });

  it('a model without a price is refused by a dollar budget (fail closed)', async () => {
    const res = await fetchAsUser(h.url, tokens['alice']!, '/openai/v1/chat/completions', { method: 'POST', body: { ...chatBody(), model: 'mystery-model' } });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'AIGOV_E_BUDGET_UNPRICED');
    assert.match(body.error.message, /model `mystery-model` of provider `openai` has no price, and budget `per-user-daily` counts US dollars/);
  });

  it('a restart keeps the budget: the counters are rebuilt from the record', async () => {
    const before = await counter('alice', 'per-user-daily');
    await h.restart();
    assert.deepEqual(await counter('alice', 'per-user-daily'), before);
    const res = await fetchAsUser(h.url, tokens['alice']!, '/openai/v1/chat/completions', { method: 'POST', body: chatBody() });
    assert.equal(res.status, 429);
  });

  it('require_approval: an approver lets one over-budget request through, and it is counted', async () => {
    const carol = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens['carol']!, maxRetries: 0 });
    const answer = carol.chat.completions.create(chatBody('over budget'));
    const approval = await pendingApproval('budget:carol-approval');
    assert.match(approval.rule.reason, /^budget carol-approval exceeded: \$0\.01\d* of \$0\.005 \(\$0 spent or reserved, up to \$0\.01\d* for this request\)$/);
    const vote = await fetchAsUser(h.url, tokens['bob']!, `/aigov/v1/approvals/${approval.id}/approve`, { method: 'POST', body: { reason: 'release is today' } });
    assert.equal(vote.status, 200);
    assert.equal((await answer).choices[0]?.message.content, 'ok');
    const call = (await allCalls()).find((c) => c.principal.subject === 'carol')!;
    assert.equal(call.usage?.charged?.nanoUsd, CALL_COST);
    assert.ok(call.decisions.some((d) => d.stage === 'approval' && d.action === 'approved'));
    assert.deepEqual(await counter('carol', 'carol-approval'), { spent: CALL_COST, reserved: 0 }, 'past its limit: the approved request counts');
    // The next one is held again (the budget is still exceeded).
    const next = carol.chat.completions.create(chatBody('again')).then(() => null, (e: unknown) => e);
    const second = await pendingApproval('budget:carol-approval', approval.id);
    await fetchAsUser(h.url, tokens['bob']!, `/aigov/v1/approvals/${second.id}/deny`, { method: 'POST', body: { reason: 'enough today' } });
    const denied = await next;
    assert.ok(denied instanceof OpenAI.PermissionDeniedError, String(denied));
    assert.deepEqual(await counter('carol', 'carol-approval'), { spent: CALL_COST, reserved: 0 }, 'a denied request costs nothing');
  });

  it('a calendar window in a time zone rolls over at its midnight; a DST day is 23 hours; a warning is sent once', async () => {
    const dave = (): Promise<Response> => fetchAsUser(h.url, tokens['dave']!, '/openai/v1/chat/completions', { method: 'POST', body: chatBody() });
    // 23:59:30 in New York (EST) on 2025-03-08: the next day is the one DST shortens to 23 hours.
    offset = Date.parse('2025-03-09T04:59:30Z') - Date.now();
    assert.equal((await dave()).status, 200);
    assert.equal((await dave()).status, 200);
    const refused = await dave();
    assert.equal(refused.status, 429, 'two requests a day');
    assert.ok(Math.abs(Number(refused.headers.get('retry-after')) - 30) <= 3, `resets at New York midnight: ${refused.headers.get('retry-after')}`);
    offset = Date.parse('2025-03-09T05:00:05Z') - Date.now();
    assert.equal((await dave()).status, 200, 'a new day in New York');
    assert.equal((await dave()).status, 200);
    const next = await dave();
    assert.equal(next.status, 429);
    const seconds = Number(next.headers.get('retry-after'));
    assert.ok(Math.abs(seconds - (23 * 3600 - 5)) <= 3, `2025-03-09 is 23 hours long in New York: ${seconds}`);
    offset = 0;
    // warn_at 0.5 of 2 requests: once per day's counter, two days here.
    await waitFor(() => deliveries.filter((d) => JSON.parse(d.body).type === 'budget.warning').length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    const warnings = deliveries.map((d) => JSON.parse(d.body) as BudgetWebhookPayload).filter((d) => d.type === 'budget.warning');
    assert.equal(warnings.length, 2, 'one per window');
    assert.deepEqual({ ...warnings[0]!.budget, call_id: '' }, { id: 'dave-new-york', unit: 'requests', limit: 2, limit_text: '2 requests', used: 1, used_text: '1 request', fraction: 0.5, scope: 'user dave', user: { sub: 'dave', email: 'dave@aigov.dev' }, reset_at: '2025-03-09T05:00:00.000Z', call_id: '' });
    assert.match(warnings[0]!.text, /Budget `dave-new-york` \(user dave\) reached 50%/);
  });

  it('exports spend and refusals as metrics (since the restart)', async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    assert.match(text, /aigov_budget_spend_total\{budget="carol-approval",unit="usd"\} 0\.008125\n/);
    assert.match(text, /aigov_budget_spend_total\{budget="dave-new-york",unit="requests"\} 4\n/);
    assert.match(text, /aigov_budget_refusals_total\{budget="dave-new-york",action="block"\} 2\n/);
    assert.match(text, /aigov_budget_refusals_total\{budget="carol-approval",action="require_approval"\} 2\n/);
    assert.match(text, /aigov_budget_refusals_total\{budget="per-user-daily",action="block"\} 1\n/);
  });
});

describe('a budget added by a policy reload', () => {
  it('counts what the record already holds for its window', async () => {
    const policyFile = join(dir, 'policy.yaml');
    const text = POLICY.replace('RECEIVER_URL', 'http://127.0.0.1:9/hook');
    await writeFile(policyFile, `${text}  - id: alice-tokens
    who: { users: ['alice@aigov.dev'] }
    window: 24h
    limit: { tokens: 100000000 }
`);
    const service = h.gateway.budgets!;
    await waitFor(() => service.budgets().some((b) => b.id === 'alice-tokens'));
    // The next request of alice's seeds the new budget's counters from the record, then is refused by her dollar budget.
    const res = await fetchAsUser(h.url, tokens['alice']!, '/openai/v1/chat/completions', { method: 'POST', body: chatBody() });
    assert.equal(res.status, 429);
    const calls = (await allCalls()).filter((c) => c.principal.subject === 'alice');
    const tokensRecorded = calls.reduce((sum, c) => sum + recordedCharge(c.providerKind, c.usage).tokens, 0);
    assert.ok(tokensRecorded > 100 * 850, `the burst's tokens are in the record (${tokensRecorded})`);
    assert.deepEqual(await counter('alice', 'alice-tokens'), { spent: tokensRecorded, reserved: 0 });
  });
});

describe('budgets_enforce_output_cap', () => {
  let g: Harness;
  let gdir: string;
  before(async () => {
    gdir = await mkdtemp(join(tmpdir(), 'aigov-budgets-cap-'));
    const policyFile = join(gdir, 'policy.yaml');
    await writeFile(policyFile, `version: 1\nbudgets_default_output_cap: 300\nbudgets_enforce_output_cap: true\nbudgets:\n  - id: gpt4o\n    who: { users: '*' }\n    models: [gpt-4o]\n    window: 1d\n    limit: { usd: 10 }\n`);
    g = await startHarness({ policyFile });
    g.upstream.route('POST', '/v1/chat/completions', () => chatAnswer());
    g.upstream.route('POST', '/v1/responses', () => ({ ...chatAnswer(), body: JSON.stringify({ id: 'resp_1', object: 'response', status: 'completed', model: 'gpt-4o-2024-08-06', output: [], usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } }) }));
  });
  after(async () => {
    await g.close();
    await rm(gdir, { recursive: true, force: true });
  });

  it('writes the cap into a budgeted request that states no maximum, and records what was sent', async () => {
    const send = async (path: string, body: object): Promise<Record<string, unknown>> => {
      const res = await fetchAsUser(g.url, g.token, path, { method: 'POST', body });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      return JSON.parse(g.upstream.received.at(-1)!.body) as Record<string, unknown>;
    };
    assert.equal((await send('/openai/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }))['max_completion_tokens'], 300);
    assert.equal((await send('/openai/v1/responses', { model: 'gpt-4o', input: 'hi' }))['max_output_tokens'], 300);
    const own = { model: 'gpt-4o', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };
    await send('/openai/v1/chat/completions', own);
    assert.equal(g.upstream.received.at(-1)!.body, JSON.stringify(own), 'a request that states its maximum goes as it is, byte for byte');
    await send('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((JSON.parse(g.upstream.received.at(-1)!.body) as Record<string, unknown>)['max_completion_tokens'], undefined, 'no budget counts gpt-4o-mini: untouched');
    await g.gateway.store.flush();
    const sessions = await g.gateway.store.listSessions({ limit: 10 });
    const calls = (await Promise.all(sessions.map((x) => g.gateway.store.listCalls(x.sessionId)))).flat();
    const capped = calls.filter((c) => c.decisions.some((d) => d.action === 'cap_output'));
    assert.equal(capped.length, 2);
    for (const c of capped) assert.match(c.requestBody, /"max_(completion|output)_tokens":300/, 'the record holds the body as sent');
  });
});

async function pendingApproval(ruleId: string, not?: string): Promise<{ id: string; rule: { id: string; reason: string } }> {
  for (let i = 0; i < 200; i++) {
    const res = await fetchAsUser(h.url, tokens['bob']!, '/aigov/v1/approvals?scope=decide');
    const found = ApprovalListSchema.parse(await res.json()).approvals.find((a) => a.rule.id === ruleId && a.state === 'pending' && a.id !== not);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no pending approval for ${ruleId}`);
}

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
