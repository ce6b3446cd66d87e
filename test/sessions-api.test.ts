/**
 * The sessions API end to end with real parts: the dev IdP's users (alice a developer, bob an
 * approver, carol an auditor), calls made through the gateway with the official SDKs against the
 * replaying upstream, a real policy (block, require_approval), SQLite in a temp dir. Access
 * control, the access log of auditor reads, filters, keyset pagination, export round trips, and a
 * store that cannot answer.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ApprovalListSchema } from '../src/protocol/approvals.ts';
import { ExportLineSchema, SessionDetailSchema, SessionListSchema, type CallView, type SessionDetail, type SessionSummaryView } from '../src/protocol/sessions.ts';
import { graphOfWireChunks } from '../src/core/recording/request-chunks.ts';
import { agentSessionBodies } from './support/agent-session.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const POLICY = `
version: 1
rules:
  - id: no-forbidden
    reason: forbidden words
    match: { keywords: ['forbidden words'] }
    action: block
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['production password'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 20s }
`;

let h: Harness;
const tokens: Record<string, string> = {};

const openai = (user: string, session: string): OpenAI =>
  new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens[user]!, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
const anthropic = (user: string, session: string): Anthropic =>
  new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: tokens[user]!, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });

interface Answer<T = unknown> {
  readonly status: number;
  readonly json: T;
  readonly text: string;
  readonly headers: Headers;
}

async function api<T = unknown>(user: string, path: string): Promise<Answer<T>> {
  const res = await fetch(`${h.url}/aigov/v1/sessions${path}`, { headers: { authorization: `Bearer ${tokens[user]}` } });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // jsonl
  }
  return { status: res.status, json: json as T, text, headers: res.headers };
}

async function listIds(user: string, query = ''): Promise<string[]> {
  const { status, json } = await api(user, query);
  assert.equal(status, 200, JSON.stringify(json));
  return SessionListSchema.parse(json).sessions.map((s) => s.id);
}

function accessLog(): { subject: string; email: string | null; action: string; session_id: string | null; filter: string | null }[] {
  const db = new DatabaseSync(join(h.dir, 'aigov.db'), { readOnly: true });
  try {
    return db.prepare('SELECT subject, email, action, session_id, filter FROM access_log ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aigov-sessions-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  h = await startHarness({ policyFile });
  tokens['alice'] = h.token;
  for (const user of ['bob', 'carol']) tokens[user] = await h.tokenFor(user);
  h.upstream.route('POST', '/v1/chat/completions', (req) => loadTranscript(JSON.parse(req.body).stream ? 'openai-chat-stream' : 'openai-chat'));
  h.upstream.route('POST', '/v1/messages', () => loadTranscript('anthropic-messages'));

  // alice: a plain call and a streamed one in one session, an Anthropic call, a blocked call,
  // and a held call that bob approves; bob: one call.
  await openai('alice', 'ses-alice-1').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
  const stream = await openai('alice', 'ses-alice-1').chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream please' }] });
  for await (const _chunk of stream) {
    // drain
  }
  await anthropic('alice', 'ses-alice-2').messages.create({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi claude' }] });
  await assert.rejects(openai('alice', 'ses-alice-3').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'some forbidden words' }] }));
  const held = openai('alice', 'ses-alice-4').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'what is the production password policy?' }] });
  let approvalId: string | null = null;
  for (let i = 0; i < 200 && approvalId === null; i++) {
    const res = await fetch(`${h.url}/aigov/v1/approvals?scope=decide`, { headers: { authorization: `Bearer ${tokens['bob']}` } });
    approvalId = ApprovalListSchema.parse(await res.json()).approvals.find((a) => a.session_id === 'ses-alice-4')?.id ?? null;
    if (approvalId === null) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(approvalId, 'the held call shows up for bob');
  const vote = await fetch(`${h.url}/aigov/v1/approvals/${approvalId}/approve`, { method: 'POST', headers: { authorization: `Bearer ${tokens['bob']}`, 'content-type': 'application/json' }, body: '{"reason":"fine"}' });
  assert.equal(vote.status, 200);
  await held;
  await openai('bob', 'ses-bob-1').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'bob here' }] });
  await h.gateway.store.flush();
});
after(async () => {
  await h?.close();
});

const ALICE = ['ses-alice-1', 'ses-alice-2', 'ses-alice-3', 'ses-alice-4'];

describe('sessions API: who sees what', () => {
  it('a user lists only their own sessions, newest activity first', async () => {
    const { json } = await api('alice', '');
    const list = SessionListSchema.parse(json);
    assert.deepEqual(list.sessions.map((s) => s.id).sort(), ALICE);
    assert.equal(list.next_cursor, null);
    const times = list.sessions.map((s) => Date.parse(s.last_call_at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
    const one = list.sessions.find((s) => s.id === 'ses-alice-1');
    assert.deepEqual(one?.user, { sub: 'alice', email: 'alice@aigov.dev' });
    assert.equal(one?.call_count, 2);
    assert.deepEqual(await listIds('bob'), ['ses-bob-1']);
  });

  it('a user may name themselves (subject or email) but not someone else', async () => {
    assert.deepEqual((await listIds('alice', '?user=ALICE@aigov.dev')).sort(), ALICE);
    assert.deepEqual((await listIds('alice', '?user=alice')).sort(), ALICE);
    const other = await api<{ error: { code: string; message: string } }>('bob', '?user=alice');
    assert.equal(other.status, 403);
    assert.equal(other.json.error.code, 'AIGOV_E_SESSIONS_FORBIDDEN');
    assert.match(other.json.error.message, /auditors/);
  });

  it("bob, not an auditor, cannot read alice's session: 404 as for an unknown id", async () => {
    const before = accessLog().length;
    for (const path of ['/ses-alice-1', '/ses-alice-1/export?format=jsonl', '/ses-alice-1/export?format=json', '/no-such-session']) {
      const res = await api<{ error: { code: string } }>('bob', path);
      assert.equal(res.status, 404, path);
      assert.equal(res.json.error.code, 'AIGOV_E_SESSION_NOT_FOUND');
    }
    assert.equal(accessLog().length, before, 'non-auditor reads are not access-logged');
  });

  it('carol, an auditor, sees every session and each of her reads lands in access_log', async () => {
    const before = accessLog().length;
    assert.deepEqual((await listIds('carol')).sort(), [...ALICE, 'ses-bob-1']);
    assert.deepEqual((await listIds('carol', '?user=bob')), ['ses-bob-1']);
    const show = await api('carol', '/ses-alice-1');
    assert.equal(show.status, 200);
    const exported = await api('carol', '/ses-alice-2/export?format=jsonl');
    assert.equal(exported.status, 200);
    const rows = accessLog().slice(before);
    assert.deepEqual(
      rows.map((r) => [r.subject, r.email, r.action, r.session_id]),
      [
        ['carol', 'carol@aigov.dev', 'list', null],
        ['carol', 'carol@aigov.dev', 'list', null],
        ['carol', 'carol@aigov.dev', 'show', 'ses-alice-1'],
        ['carol', 'carol@aigov.dev', 'export', 'ses-alice-2'],
      ],
    );
    assert.deepEqual(JSON.parse(rows[1]!.filter!), { user: 'bob', limit: 50 });
  });

  it('rejects requests without a valid token and unknown paths', async () => {
    const res = await fetch(`${h.url}/aigov/v1/sessions`);
    assert.equal(res.status, 401);
    const post = await fetch(`${h.url}/aigov/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${tokens['alice']}` } });
    assert.equal(post.status, 405);
    assert.equal((await api('alice', '/ses-alice-1/events')).status, 404);
    const malformed = await api<{ error: { code: string } }>('alice', '/%E0%A4%A');
    assert.equal(malformed.status, 404);
    assert.equal(malformed.json.error.code, 'AIGOV_E_SESSION_NOT_FOUND');
  });
});

describe('sessions API: filters and pagination', () => {
  it('filters by provider, model, decision action and approval state', async () => {
    assert.deepEqual(await listIds('carol', '?provider=anthropic'), ['ses-alice-2']);
    assert.deepEqual(await listIds('carol', '?model=gpt-4o'), ['ses-alice-4']);
    assert.deepEqual(await listIds('alice', '?action=block'), ['ses-alice-3']);
    assert.deepEqual(await listIds('alice', '?action=require_approval'), ['ses-alice-4']);
    assert.deepEqual(await listIds('alice', '?action=approved'), ['ses-alice-4']);
    assert.deepEqual(await listIds('carol', '?approval=approved'), ['ses-alice-4']);
    assert.deepEqual(await listIds('carol', '?approval=pending'), []);
    assert.deepEqual(await listIds('bob', '?approval=approved'), [], "bob approved it, but it is alice's session");
    assert.deepEqual(await listIds('carol', '?provider=anthropic&action=block'), []);
  });

  it('filters by time of last activity (ISO or epoch ms)', async () => {
    const all = SessionListSchema.parse((await api('carol', '')).json).sessions;
    const newest = all[0]!;
    assert.deepEqual(await listIds('carol', `?since=${encodeURIComponent(newest.last_call_at)}`), all.filter((s) => s.last_call_at >= newest.last_call_at).map((s) => s.id));
    assert.deepEqual(await listIds('carol', `?since=${Date.now() + 60_000}`), []);
    assert.deepEqual(await listIds('carol', '?until=2000-01-01T00:00:00Z'), []);
    const bad = await api<{ error: { code: string } }>('carol', '?since=yesterday');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'AIGOV_E_BAD_REQUEST');
    assert.equal((await api('carol', '?approval=maybe')).status, 400);
    assert.equal((await api('carol', '?limit=0')).status, 400);
  });

  it('pages with a keyset cursor: the pages add up to the whole list', async () => {
    const whole = SessionListSchema.parse((await api('carol', '')).json).sessions.map((s) => s.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { json } = await api(`carol`, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const page = SessionListSchema.parse(json);
      assert.ok(page.sessions.length <= 2);
      seen.push(...page.sessions.map((s) => s.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.deepEqual(seen, whole);
    assert.equal(pages, 3);
    const bad = await api<{ error: { code: string } }>('carol', '?cursor=not-a-cursor');
    assert.equal(bad.status, 400);
  });
});

describe('sessions API: a session and its export', () => {
  it('shows every call with decisions, approvals, bodies and stream events', async () => {
    const one = SessionDetailSchema.parse((await api('alice', '/ses-alice-1')).json);
    assert.equal(one.calls.length, 2);
    const [plain, streamed] = one.calls as [CallView, CallView];
    assert.equal(plain.stream, false);
    assert.match(plain.request_body, /hello there/);
    assert.ok(plain.response_body !== null && plain.response_body.length > 0);
    assert.deepEqual(plain.events, []);
    assert.equal(streamed.stream, true);
    assert.equal(streamed.response_body, null);
    assert.ok(streamed.events.length > 3);
    assert.ok(streamed.events.some((e) => e.raw.includes('[DONE]')));
    const offsets = streamed.events.map((e) => e.offset_ms);
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));

    const blocked = SessionDetailSchema.parse((await api('alice', '/ses-alice-3')).json).calls[0]!;
    assert.equal(blocked.status, 'blocked');
    assert.deepEqual(blocked.decisions.map((d) => [d.stage, d.action, d.rule_id]), [['request', 'block', 'no-forbidden']]);

    const approved = SessionDetailSchema.parse((await api('alice', '/ses-alice-4')).json).calls[0]!;
    assert.equal(approved.status, 'completed');
    assert.equal(approved.approvals.length, 1);
    const approval = approved.approvals[0]!;
    assert.equal(approval.state, 'approved');
    assert.equal(approval.rule_id, 'prod-credentials');
    assert.deepEqual(approval.votes.map((v) => [v.by.sub, v.decision, v.reason]), [['bob', 'approve', 'fine']]);
    assert.ok(approved.decisions.some((d) => d.stage === 'approval' && d.action === 'approved' && d.reason.startsWith(approval.id)));
  });

  it('jsonl export lines parse as ExportLine and re-assemble to the same SessionDetail', async () => {
    for (const id of ALICE) {
      const detail = SessionDetailSchema.parse((await api('alice', `/${id}`)).json);
      const res = await api('alice', `/${id}/export?format=jsonl`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /ndjson/);
      assert.ok(res.text.endsWith('\n'));
      const lines = res.text.trimEnd().split('\n').map((line) => ExportLineSchema.parse(JSON.parse(line)));
      let session: SessionSummaryView | null = null;
      const calls: CallView[] = [];
      for (const line of lines) {
        if (line.type === 'session') session = line.session;
        else if (line.type === 'call') calls.push({ ...line.call, events: [] });
        else {
          const call = calls.at(-1)!;
          assert.equal(line.call_id, call.id, 'events follow their call');
          assert.equal(line.seq, call.events.length);
          call.events.push({ offset_ms: line.offset_ms, raw: line.raw });
        }
      }
      assert.ok(session);
      const assembled: SessionDetail = { session, calls };
      assert.deepEqual(assembled, detail);
      const json = await api('alice', `/${id}/export?format=json`);
      assert.deepEqual(SessionDetailSchema.parse(json.json), detail);
    }
    assert.equal((await api('alice', '/ses-alice-1/export?format=csv')).status, 400);
  });
});

describe('sessions API: shared request bodies (?bodies=shared)', () => {
  it('an agent session comes with its chunks once and each call naming its root; rebuilt, the bodies are the whole ones', async () => {
    const session = 'ses-alice-agent';
    for (const body of agentSessionBodies('claude', 3)) {
      const res = await fetch(`${h.url}/anthropic/v1/messages?beta=true`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens['alice']}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-aigov-session': session },
        body,
      });
      await res.arrayBuffer(); // whatever the replaying upstream answers: the request is recorded
    }
    await h.gateway.store.flush();
    const whole = SessionDetailSchema.parse((await api('alice', `/${session}`)).json);
    const shared = SessionDetailSchema.parse((await api('alice', `/${session}?bodies=shared`)).json);
    assert.equal(whole.body_chunks, undefined);
    assert.equal(whole.calls.length, 3);
    assert.ok(shared.body_chunks !== undefined && Object.keys(shared.body_chunks).length > 20);
    const graph = graphOfWireChunks(shared.body_chunks);
    for (const [i, call] of shared.calls.entries()) {
      assert.ok(call.request_ref !== undefined);
      assert.equal(call.request_body, '');
      assert.equal(graph.text(call.request_ref), whole.calls[i]!.request_body);
      assert.deepEqual({ ...call, request_body: whole.calls[i]!.request_body, request_ref: undefined }, { ...whole.calls[i], request_ref: undefined });
    }
    const bodies = JSON.stringify(shared).length;
    assert.ok(bodies < JSON.stringify(whole).length * 0.6, 'what repeats is sent once');
    assert.equal((await api('alice', `/${session}?bodies=all`)).status, 400);
  });
});

describe('sessions API: a store that cannot answer', () => {
  it('refuses with 503 AIGOV_E_STORE_READ_FAILED, and refuses an auditor read it cannot log', async () => {
    const g = await startHarness({ storeSubdir: 'db' });
    try {
      const carol = await g.tokenFor('carol');
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      g.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      const get = async (token: string, path = ''): Promise<{ status: number; code: string | undefined }> => {
        const res = await fetch(`${g.url}/aigov/v1/sessions${path}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
      };
      assert.equal((await get(carol)).status, 200);
      // The database file disappears: an auditor's read can no longer be logged, so it is refused.
      rmSync(join(g.dir, 'db'), { recursive: true, force: true });
      assert.deepEqual(await get(carol), { status: 503, code: 'AIGOV_E_STORE_READ_FAILED' });
      // The store is gone altogether: every read is refused, the gateway keeps answering.
      await g.gateway.store.close();
      assert.deepEqual(await get(g.token), { status: 503, code: 'AIGOV_E_STORE_READ_FAILED' });
      assert.deepEqual(await get(g.token, '/anything'), { status: 503, code: 'AIGOV_E_STORE_READ_FAILED' });
      assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
    } finally {
      await g.close();
    }
  });
});
