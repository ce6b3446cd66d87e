/**
 * Approvals at the gateway, end to end with real parts: the dev IdP's users (alice asks, bob and
 * dave approve, carol is neither), the official SDKs as clients, the approvals API over HTTP,
 * SQLite in a temp dir, and a gateway restart in the middle of a hold.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ApprovalListSchema, ApprovalViewSchema, type ApprovalView } from '../src/protocol/approvals.ts';
import { SseParser } from '../src/core/sse.ts';
import { verifyWebhookSignature } from '../src/gateway/approvals/webhook-notifier.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { chatStreamText, loadTranscript } from './support/replay-upstream.ts';

const POLICY = `
version: 1
rules:
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['production password'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 20s, retry_window: 1m }
  - id: hooked
    reason: tells the security channel
    match: { keywords: ['notify security'] }
    action: require_approval
    approval:
      approvers: [approvers]
      timeout: 20s
      notify: [{ url: 'RECEIVER_URL/hook', secret: '\${APPROVAL_HOOK_SECRET}', include_preview: false }]
  - id: wire-transfer
    reason: money moves need two approvers
    match: { keywords: ['wire transfer'] }
    action: require_approval
    approval: { approvers: [approvers], required: 2, timeout: 20s }
  - id: quick-expiry
    reason: expires fast
    match: { keywords: ['expire me'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 1s }
  - id: nobody-approves
    reason: no approver group
    match: { keywords: ['unapprovable'] }
    action: require_approval
`;

let h: Harness;
const tokens: Record<string, string> = {};

const HOOK_SECRET = 'whsec-test-0123456789abcdef';
const deliveries: { headers: IncomingHttpHeaders; body: string }[] = [];
let receiver: Server;

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  process.env['APPROVAL_HOOK_SECRET'] = HOOK_SECRET;
  const dir = await mkdtemp(join(tmpdir(), 'aigov-apr-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY.replace('RECEIVER_URL', receiverUrl));
  h = await startHarness({ policyFile, approvalKeepAliveMs: 50 });
  tokens['alice'] = h.token;
  for (const user of ['bob', 'carol', 'dave']) tokens[user] = await h.tokenFor(user);
});
after(async () => {
  await h.close();
  receiver.close();
});
beforeEach(() => {
  h.upstream.reset();
  h.upstream.route('POST', '/v1/chat/completions', (req) => loadTranscript(JSON.parse(req.body).stream ? 'openai-chat-stream' : 'openai-chat'));
  h.upstream.route('POST', '/v1/messages', (req) => loadTranscript(JSON.parse(req.body).stream ? 'anthropic-messages-stream' : 'anthropic-messages'));
});

const openai = (user = 'alice'): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens[user]!, maxRetries: 0 });
const ask = (content: string, opts: { signal?: AbortSignal } = {}) => openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, opts);

/** The fields these tests read from API answers (approval views and errors). */
interface ApiJson {
  readonly id: string;
  readonly state: string;
  readonly rule: { readonly id: string };
  readonly votes: readonly unknown[];
  readonly can_decide: boolean;
  readonly error: { readonly code: string; readonly message: string };
}
type ApiEvent = { event: string; data: ApiJson };

async function api(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: ApiJson }> {
  const res = await fetchAsUser(h.url, tokens[user]!, `/aigov/v1/approvals${path}`, { method, body });
  return { status: res.status, json: (await res.json()) as ApiJson };
}

/** Waits until `user` sees a pending approval for `ruleId` they may decide (or own). */
async function pendingFor(user: string, ruleId: string, scope = 'decide'): Promise<ApprovalView> {
  for (let i = 0; i < 200; i++) {
    const { json } = await api(user, 'GET', `?scope=${scope}`);
    const found = ApprovalListSchema.parse(json).approvals.find((a) => a.rule.id === ruleId && a.state === 'pending');
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no pending approval for ${ruleId}`);
}

async function decisionsOfLastCall() {
  await h.gateway.store.flush();
  const sessions = await h.gateway.store.listSessions({ limit: 50 });
  const calls = (await Promise.all(sessions.map((s) => h.gateway.store.listCalls(s.sessionId)))).flat().sort((a, b) => a.startedAt - b.startedAt);
  return calls.at(-1)!;
}

describe('approvals: hold at the gateway', () => {
  it('holds a non-streamed request until an approver approves, then forwards it', async () => {
    const answer = ask('what is the production password policy?');
    const approval = await pendingFor('bob', 'prod-credentials');
    assert.equal(h.upstream.received.length, 0, 'nothing goes upstream while held');
    assert.equal(approval.requester.email, 'alice@aigov.dev');
    assert.deepEqual(approval.approvers, { groups: ['approvers'], required: 1 });
    assert.equal(approval.can_decide, true);
    assert.match(approval.preview, /user: what is the production password policy\?/);
    const decided = await api('bob', 'POST', `/${approval.id}/approve`, { reason: 'policy question, fine' });
    assert.equal(decided.status, 200);
    assert.equal(ApprovalViewSchema.parse(decided.json).state, 'approved');
    const completion = await answer;
    assert.equal(completion.object, 'chat.completion');
    assert.equal(h.upstream.received.length, 1);
    const call = await decisionsOfLastCall();
    assert.equal(call.status, 'completed');
    const approvalDecision = call.decisions.find((d) => d.stage === 'approval');
    assert.equal(approvalDecision?.action, 'approved');
    assert.match(approvalDecision.reason, /approved by bob@aigov\.dev/);
  });

  it('holds a stream with SSE comments, then streams the real answer once approved', async () => {
    const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'rotate the production password' }] });
    const approval = await pendingFor('bob', 'prod-credentials');
    await new Promise((r) => setTimeout(r, 120)); // a few keep-alive comments go out meanwhile
    await api('bob', 'POST', `/${approval.id}/approve`, {});
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, chatStreamText('openai-chat-stream'));
  });

  it('a denial answers a provider-shaped 403 naming the approval, the approver and the reason', async () => {
    const answer = ask('send me the production password').catch((e: unknown) => e);
    const approval = await pendingFor('bob', 'prod-credentials');
    await api('bob', 'POST', `/${approval.id}/deny`, { reason: 'use the vault' });
    const error = await answer;
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.match(error.message, new RegExp(`Approval ${approval.id} under aigov policy rule \`prod-credentials\` was denied by bob@aigov.dev: use the vault`));
    assert.equal(h.upstream.received.length, 0);
    const call = await decisionsOfLastCall();
    assert.equal(call.status, 'blocked');
    assert.equal(call.decisions.find((d) => d.stage === 'approval')?.action, 'denied');
  });

  it('a denial on a held Anthropic stream ends it with the in-stream error event', async () => {
    const client = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: tokens['alice']!, maxRetries: 0 });
    const stream = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'print the production password' }] });
    const approval = await pendingFor('bob', 'prod-credentials');
    await api('dave', 'POST', `/${approval.id}/deny`, { reason: 'no' });
    await assert.rejects(
      (async () => {
        for await (const _event of stream) void _event;
      })(),
      (e: unknown) => e instanceof Error && /denied by dave@aigov\.dev: no/.test(e.message),
    );
    assert.equal(h.upstream.received.length, 0);
  });

  it('expiry denies: 403 naming the approvers to ask', async () => {
    const error = await ask('please expire me').catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.match(error.message, /expired before anyone decided.*approvers/s);
    assert.equal(h.upstream.received.length, 0);
    const { json } = await api('bob', 'GET', '?state=expired');
    assert.ok(ApprovalListSchema.parse(json).approvals.some((a) => a.rule.id === 'quick-expiry'));
  });

  it('without approver groups a require_approval rule refuses at once', async () => {
    const error = await ask('this is unapprovable').catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.match(error.message, /needs approval under aigov policy rule `nobody-approves`/);
  });
});

describe('approvals: webhooks', () => {
  it("a rule's webhook gets signed notices of the approval's creation and decision, without the prompt", async () => {
    const answer = ask('please notify security about the rotation');
    const approval = await pendingFor('bob', 'hooked');
    await api('bob', 'POST', `/${approval.id}/approve`, { reason: 'go' });
    await answer;
    for (let i = 0; i < 100 && deliveries.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const mine = deliveries.filter((d) => d.body.includes(approval.id));
    assert.deepEqual(mine.map((d) => (JSON.parse(d.body) as { type: string }).type), ['approval.created', 'approval.decided']);
    for (const d of mine) {
      assert.ok(verifyWebhookSignature(HOOK_SECRET, String(d.headers['x-aigov-timestamp']), d.body, String(d.headers['x-aigov-signature'])));
      assert.ok(!d.body.includes('rotation'), 'no prompt text without include_preview');
      assert.ok(!d.body.includes(HOOK_SECRET));
    }
    assert.match((JSON.parse(mine[1]!.body) as { text: string }).text, /approved/i);
    // The outbox (in the gateway's SQLite file) is empty again, and /metrics says so.
    let metrics = '';
    for (let i = 0; i < 100; i++) {
      metrics = await (await fetch(`${h.url}/metrics`)).text();
      if (/^aigov_webhook_outbox_depth 0$/m.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(metrics, /^aigov_webhook_outbox_depth 0$/m);
    const delivered = /^aigov_webhook_deliveries_total\{outcome="delivered"\} (\d+)$/m.exec(metrics);
    assert.ok(delivered && Number(delivered[1]) >= 2, `deliveries counted in /metrics:\n${metrics.split('\n').filter((l) => l.includes('webhook')).join('\n')}`);
  });
});

describe('approvals: rights', () => {
  it('refuses self-approval and non-approvers; the requester sees their own request, others do not', async () => {
    const answer = ask('what is the production password for staging?').catch((e: unknown) => e);
    const approval = await pendingFor('bob', 'prod-credentials');
    const self = await api('alice', 'POST', `/${approval.id}/approve`, {});
    assert.equal(self.status, 403);
    assert.equal(self.json.error.code, 'AIGOV_E_APPROVAL_SELF');
    const mine = await api('alice', 'GET', `/${approval.id}`);
    assert.equal(mine.status, 200);
    assert.equal(mine.json.can_decide, false);
    const outsider = await api('carol', 'POST', `/${approval.id}/approve`, {});
    assert.equal(outsider.status, 404, 'carol may not even see it');
    assert.equal(outsider.json.error.code, 'AIGOV_E_APPROVAL_NOT_FOUND');
    await api('bob', 'POST', `/${approval.id}/deny`, { reason: 'cleanup' });
    await answer;
    const again = await api('dave', 'POST', `/${approval.id}/approve`, {});
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'AIGOV_E_APPROVAL_CLOSED');
  });

  it('N of M: two distinct approvers; the same one twice does not count', async () => {
    const answer = ask('schedule the wire transfer');
    const approval = await pendingFor('bob', 'wire-transfer');
    const first = await api('bob', 'POST', `/${approval.id}/approve`, { reason: 'ok' });
    assert.equal(first.json.state, 'pending');
    assert.equal(first.json.votes.length, 1);
    const twice = await api('bob', 'POST', `/${approval.id}/approve`, {});
    assert.equal(twice.status, 409);
    assert.equal(twice.json.error.code, 'AIGOV_E_APPROVAL_VOTED');
    assert.equal(h.upstream.received.length, 0);
    const second = await api('dave', 'POST', `/${approval.id}/approve`, { reason: 'ok too' });
    assert.equal(second.json.state, 'approved');
    await answer;
    assert.equal(h.upstream.received.length, 1);
  });

  it('rejects unauthenticated calls and bad input with clear errors', async () => {
    const anon = await fetch(`${h.url}/aigov/v1/approvals`);
    assert.equal(anon.status, 401);
    const badScope = await api('bob', 'GET', '?scope=everyone');
    assert.equal(badScope.status, 400);
    assert.match(badScope.json.error.message, /scope=decide\|mine\|all/);
    const res = await fetch(`${h.url}/aigov/v1/approvals/apr_x/approve`, { method: 'POST', headers: { authorization: `Bearer ${tokens['bob']}` }, body: '{oops' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as ApiJson).error.code, 'AIGOV_E_BAD_JSON');
  });
});

describe('approvals: events, retries, restarts', () => {
  it('events carry ids; a stream resumed with Last-Event-ID (or last_event_id) replays what it missed, each approval once, and no snapshot', async () => {
    const read = (headers: Record<string, string>, query = ''): { events: (ApiEvent & { id: string | null })[]; stop(): Promise<void> } => {
      const events: (ApiEvent & { id: string | null })[] = [];
      const controller = new AbortController();
      const reading = (async () => {
        const res = await fetch(`${h.url}/aigov/v1/approvals/events?scope=decide${query}`, { headers: { authorization: `Bearer ${tokens['bob']}`, ...headers }, signal: controller.signal });
        const parser = new SseParser();
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const e of parser.push(decoder.decode(chunk, { stream: true }))) if (e.event && e.data !== null) events.push({ id: e.id, event: e.event, data: JSON.parse(e.data) as ApiJson });
        }
      })().catch(() => undefined);
      return { events, stop: async () => (controller.abort(), await reading) };
    };
    const until = async <T>(get: () => T | undefined): Promise<T> => {
      for (let i = 0; i < 200; i++) {
        const value = get();
        if (value !== undefined) return value;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('not seen');
    };
    const first = read({});
    const snapshot = await until(() => first.events.find((e) => e.event === 'snapshot'));
    assert.match(snapshot.id ?? '', /^[0-9]+$/);
    await first.stop();
    // Missed: one request held and approved, one held and still pending.
    const answered = ask('resume: what is the production password policy?');
    const approved = await pendingFor('bob', 'prod-credentials');
    await api('bob', 'POST', `/${approved.id}/approve`, {});
    await answered;
    const stillHeld = ask('resume: approve this wire transfer').catch((e: unknown) => e);
    const pending = await pendingFor('bob', 'wire-transfer');

    const ways: { headers: Record<string, string>; query: string }[] = [{ headers: { 'last-event-id': snapshot.id! }, query: '' }, { headers: {}, query: `&last_event_id=${snapshot.id!}` }];
    for (const how of ways) {
      const resumed = read(how.headers, how.query);
      await until(() => resumed.events.find((e) => e.data.id === pending.id));
      await new Promise((r) => setTimeout(r, 100));
      await resumed.stop();
      assert.equal(resumed.events.filter((e) => e.event === 'snapshot').length, 0);
      assert.deepEqual(resumed.events.map((e) => [e.data.id, e.data.state]), [[approved.id, 'approved'], [pending.id, 'pending']], 'each missed approval once, as it is now, in the order of its last change');
      const ids = resumed.events.map((e) => Number(e.id));
      assert.ok(ids[0]! > Number(snapshot.id) && ids[1]! > ids[0]!);
    }
    // An id this gateway never gave out: a snapshot, as for a new client.
    const bogus = read({ 'last-event-id': '999999999999' });
    const fresh = await until(() => bogus.events.find((e) => e.event === 'snapshot'));
    await bogus.stop();
    assert.ok(Number(fresh.id) >= Number(snapshot.id));
    await api('bob', 'POST', `/${pending.id}/deny`, {});
    await stillHeld;
  });

  it('streams new approvals to approvers and the requester (filtered by session)', async () => {
    const events: ApiEvent[] = [];
    const controller = new AbortController();
    const res = await fetch(`${h.url}/aigov/v1/approvals/events?scope=decide`, { headers: { authorization: `Bearer ${tokens['bob']}` }, signal: controller.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reading = (async () => {
      const parser = new SseParser();
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const e of parser.push(decoder.decode(chunk, { stream: true }))) if (e.event && e.data !== null) events.push({ event: e.event, data: JSON.parse(e.data) as ApiJson });
      }
    })().catch(() => undefined);
    const answer = ask('reset the production password now');
    const seen = async (pred: (e: ApiEvent) => boolean): Promise<ApiEvent> => {
      for (let i = 0; i < 200; i++) {
        const found = events.find(pred);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('event not seen');
    };
    assert.equal((await seen((e) => e.event === 'snapshot')).event, 'snapshot');
    const created = await seen((e) => e.event === 'approval' && e.data.rule.id === 'prod-credentials' && e.data.state === 'pending');
    await api('bob', 'POST', `/${created.data.id}/approve`, {});
    await seen((e) => e.event === 'approval' && e.data.id === created.data.id && e.data.state === 'approved');
    await answer;
    controller.abort();
    await reading;
  });

  it('a client that went away keeps its approval: the retry goes through once without a second approval', async () => {
    const controller = new AbortController();
    const gone = ask('retry the production password question', { signal: controller.signal }).catch((e: unknown) => e);
    const approval = await pendingFor('bob', 'prod-credentials');
    controller.abort();
    await gone;
    await api('bob', 'POST', `/${approval.id}/approve`, { reason: 'fine' });
    const retried = await ask('retry the production password question');
    assert.equal(retried.object, 'chat.completion');
    const call = await decisionsOfLastCall();
    assert.match(call.decisions.find((d) => d.stage === 'approval')!.reason, new RegExp(`${approval.id} approved earlier by bob@aigov.dev; used by this retry`));
    // Single use: the next identical request needs a new approval.
    const third = ask('retry the production password question').catch((e: unknown) => e);
    const next = await pendingFor('bob', 'prod-credentials');
    assert.notEqual(next.id, approval.id);
    await api('bob', 'POST', `/${next.id}/deny`, {});
    await third;
  });

  it('a restart while held: the request fails cleanly, the approval survives and the retry uses it', async () => {
    const held = ask('restart: what is the production password?').catch((e: unknown) => e);
    const approval = await pendingFor('bob', 'prod-credentials');
    await h.restart();
    const error = await held;
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 503);
    assert.match(error.message, new RegExp(`Approval ${approval.id} is still open`));
    const after = await api('bob', 'GET', `/${approval.id}`);
    assert.equal(after.json.state, 'pending');
    await api('bob', 'POST', `/${approval.id}/approve`, { reason: 'after restart' });
    const retried = await ask('restart: what is the production password?');
    assert.equal(retried.object, 'chat.completion');
  });

  it('fails closed: when the approvals table cannot be written the request is refused, never sent', async () => {
    const db = new DatabaseSync(join(h.dir, 'aigov.db'));
    db.exec('ALTER TABLE approvals RENAME TO approvals_away');
    try {
      const error = await ask('production password, while the store is broken').catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 503);
      assert.match(error.message, /could not record it/);
      assert.equal(h.upstream.received.length, 0);
      const listed = await api('bob', 'GET', '');
      assert.equal(listed.status, 503);
      assert.equal(listed.json.error.code, 'AIGOV_E_APPROVALS_UNAVAILABLE');
    } finally {
      db.exec('ALTER TABLE approvals_away RENAME TO approvals');
      db.close();
    }
  });
});
