/**
 * The session queries of the SQLite store, on a real database in a temp dir: keyset pages that
 * neither skip nor repeat sessions sharing a timestamp, every filter against a brute-force
 * answer over random data, the approval-state filter with effective expiry, the detail's
 * approvals (own session and reused by id), and the access log. Plus the CLI's pure helpers
 * (time flags, prompt and answer extraction).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import type { ApprovalRecord } from '../src/core/approvals/approval.ts';
import { answerText } from '../src/cli/sessions-format.ts';
import { requestView } from '../src/cli/request-view.ts';
import { parseTimeFlag } from '../src/cli/flag-values.ts';
import type { CallRequestRecord, PolicyDecisionRecord, SessionCursor, SessionFilter, SessionRecord } from '../src/store/recording-store.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';
import { openSqliteStore, type SqliteRecordingStore } from '../src/store/sqlite/sqlite-store.ts';
import { seededRandom } from './support/seeded-random.ts';
import { call as callView } from './support/session-fixtures.ts';
import { callRequest, principal } from './support/store-fixtures.ts';

const dirs: string[] = [];
const stores: SqliteRecordingStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function fresh(): Promise<{ store: SqliteRecordingStore; file: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-sessions-store-'));
  dirs.push(dir);
  const file = path.join(dir, 'aigov.db');
  const store = await openSqliteStore({ path: file });
  stores.push(store);
  return { store, file };
}

const ISSUER = 'https://idp.example.test';

function call(callId: string, sessionId: string, subject: string, startedAt: number, extra: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return callRequest(callId, {
    sessionId,
    principal: principal({ subject, email: `${subject}@example.test`, issuer: ISSUER }),
    client: { userAgent: null, remoteAddress: null, sdk: null },
    stream: false,
    requestBody: '{}',
    startedAt,
    ...extra,
  });
}

async function allPages(store: SqliteRecordingStore, filter: SessionFilter, limit: number): Promise<SessionRecord[]> {
  const out: SessionRecord[] = [];
  let cursor: SessionCursor | null = null;
  for (let i = 0; i < 1000; i++) {
    const page = await store.querySessions(filter, { limit, cursor });
    assert.ok(page.sessions.length <= limit);
    out.push(...page.sessions);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('pagination did not end');
}

describe('session queries (SQLite)', () => {
  test('keyset pages neither skip nor repeat sessions that share a last-call time', async () => {
    const { store } = await fresh();
    for (let i = 0; i < 23; i++) await store.recordRequest(call(`c${i}`, `s${String(i).padStart(2, '0')}`, 'alice', 1_700_000_000_000 + (i % 3) * 1000));
    const whole = (await store.querySessions({}, { limit: 100, cursor: null })).sessions;
    assert.equal(whole.length, 23);
    for (const limit of [1, 2, 3, 5, 7, 23, 50]) assert.deepEqual(await allPages(store, {}, limit), whole, `limit ${limit}`);
    const order = whole.map((s) => [s.lastCallAt, s.sessionId] as const);
    assert.deepEqual(order, [...order].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : 1)));
  });

  test('every filter (and combinations) equals a brute-force answer over random data', async () => {
    const { store } = await fresh();
    const rand = seededRandom(7);
    const users = ['alice', 'bob', 'carol'];
    const actions = ['allow', 'block', 'mask_request', 'log'];
    const models = ['gpt-4o', 'gpt-4o-mini', null];
    const calls: CallRequestRecord[] = [];
    for (let i = 0; i < 300; i++) {
      const s = Math.floor(rand() * 60);
      const user = users[s % 3]!;
      const decisions: PolicyDecisionRecord[] = [{ stage: 'request', action: actions[Math.floor(rand() * actions.length)]!, ruleId: 'r1', reason: 'reason with "action":"approved" inside', mode: 'enforce' }];
      const c = call(`c${i}`, `s${s}`, user, 1_700_000_000_000 + Math.floor(rand() * 100) * 60_000, {
        provider: rand() < 0.3 ? 'anthropic' : 'openai',
        model: models[Math.floor(rand() * models.length)]!,
        decisions,
      });
      calls.push(c);
      await store.recordRequest(c);
    }
    const sessions = (await store.querySessions({}, { limit: 1000, cursor: null })).sessions;
    const expected = (filter: SessionFilter): string[] =>
      sessions
        .filter((s) => {
          const mine = calls.filter((c) => c.sessionId === s.sessionId);
          return (
            (filter.owner === undefined || s.subject === filter.owner.subject) &&
            (filter.user === undefined || s.subject === filter.user || s.email?.toLowerCase() === filter.user.toLowerCase()) &&
            (filter.since === undefined || s.lastCallAt >= filter.since) &&
            (filter.until === undefined || s.lastCallAt <= filter.until) &&
            (filter.provider === undefined || mine.some((c) => c.provider === filter.provider)) &&
            (filter.model === undefined || mine.some((c) => c.model === filter.model)) &&
            (filter.action === undefined || mine.some((c) => c.decisions.some((d) => d.action === filter.action)))
          );
        })
        .map((s) => s.sessionId);
    const mid = 1_700_000_000_000 + 50 * 60_000;
    const filters: SessionFilter[] = [
      { owner: { subject: 'alice', issuer: ISSUER } },
      { user: 'BOB@example.test' },
      { user: 'carol' },
      { since: mid },
      { until: mid },
      { since: mid, until: mid + 20 * 60_000 },
      { provider: 'anthropic' },
      { model: 'gpt-4o' },
      { action: 'block' },
      { action: 'approved' },
      { owner: { subject: 'bob', issuer: ISSUER }, action: 'mask_request', provider: 'openai' },
      { user: 'alice', since: mid, model: 'gpt-4o-mini' },
      { owner: { subject: 'alice', issuer: 'https://other-idp.example.test' } },
    ];
    for (const filter of filters) {
      const want = expected(filter.owner?.issuer === ISSUER || filter.owner === undefined ? filter : { ...filter, owner: { subject: '\u0000nobody', issuer: '' } });
      assert.deepEqual((await allPages(store, filter, 4)).map((s) => s.sessionId), want, JSON.stringify(filter));
    }
    assert.ok(expected({ action: 'block' }).length > 0 && expected({ action: 'approved' }).length === 0, 'the data exercises both');
  });

  test('approval state (with effective expiry), detail approvals, and the access log', async () => {
    const { store, file } = await fresh();
    const now = Date.now();
    await store.recordRequest(call('held', 'ses-held', 'alice', now - 5000));
    await store.recordRequest(call('late', 'ses-late', 'alice', now - 4000));
    await store.recordRequest(call('reuse', 'ses-reuse', 'alice', now - 3000, {
      decisions: [{ stage: 'approval', action: 'approved', ruleId: 'r1', reason: 'apr_first approved earlier by bob@example.test; used by this retry', mode: 'enforce' }],
    }));
    const approvals = openSqliteApprovalStore(file);
    const approval = (id: string, sessionId: string, callId: string, state: ApprovalRecord['state'], expiresAt: number): ApprovalRecord => ({
      id, state, requester: { sub: 'alice', email: 'alice@example.test', name: null, groups: ['eng'] }, ruleId: 'r1', ruleReason: 'why', approvers: ['approvers'], required: 1,
      provider: 'openai', model: 'gpt-4o-mini', endpoint: 'openai.chat.completions', stream: false, preview: 'user: …', sessionId, callId, contentHash: id,
      createdAt: now - 10_000, expiresAt, decidedAt: null, votes: [], reuse: 'window', retryWindowMs: 60_000, uses: 0,
    });
    try {
      approvals.insert(approval('apr_first', 'ses-held', 'held', 'approved', now + 60_000));
      approvals.insert(approval('apr_pending', 'ses-held', 'held', 'pending', now + 60_000));
      approvals.insert(approval('apr_lapsed', 'ses-late', 'late', 'pending', now - 1000)); // pending on disk, expired in effect
    } finally {
      approvals.close();
    }
    const ids = async (filter: SessionFilter): Promise<string[]> => (await allPages(store, filter, 10)).map((s) => s.sessionId).sort();
    assert.deepEqual(await ids({ approval: 'approved' }), ['ses-held']);
    assert.deepEqual(await ids({ approval: 'pending' }), ['ses-held']);
    assert.deepEqual(await ids({ approval: 'expired' }), ['ses-late']);
    assert.deepEqual(await ids({ approval: 'denied' }), []);

    const reuse = await store.getSessionDetail('ses-reuse');
    assert.deepEqual(reuse?.approvals.map((a) => a.id), ['apr_first'], 'an approval named by a decision comes along');
    const held = await store.getSessionDetail('ses-held');
    assert.deepEqual(held?.approvals.map((a) => a.id).sort(), ['apr_first', 'apr_pending']);
    assert.equal(held?.session.issuer, ISSUER);
    assert.equal(await store.getSessionDetail('nope'), null);

    await store.recordAccess({ at: now, actor: { subject: 'carol', issuer: ISSUER, email: 'carol@example.test' }, action: 'show', sessionId: 'ses-held', filter: null });
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      assert.deepEqual({ ...db.prepare('SELECT at, subject, issuer, email, action, session_id, filter FROM access_log').get() }, {
        at: now, subject: 'carol', issuer: ISSUER, email: 'carol@example.test', action: 'show', session_id: 'ses-held', filter: null,
      });
    } finally {
      db.close();
    }
  });
});

describe('sessions CLI helpers', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  test('time flags: durations back from now, ISO dates and epoch ms; anything else is null', () => {
    const cases: [string, number | null][] = [
      ['2h', now - 7_200_000],
      ['30m', now - 1_800_000],
      ['7d', now - 7 * 86_400_000],
      ['1w', now - 7 * 86_400_000],
      ['90s', now - 90_000],
      ['2026-11-24', Date.parse('2026-11-24')],
      ['2026-11-24T10:00:00Z', Date.parse('2026-11-24T10:00:00Z')],
      ['1764000000000', 1_764_000_000_000],
      ['yesterday', null],
      ['2h ago', null],
      ['-2h', null],
      ['', null],
      ['2026-13-45', null],
    ];
    for (const [text, want] of cases) assert.equal(parseTimeFlag(text, now), want, text);
  });

  test('the last user message and the answer text, per provider shape', () => {
    const lastUser = (endpoint: string, body: unknown): string | null => requestView({ endpoint, request_body: typeof body === 'string' ? body : JSON.stringify(body) }, null).lastUser;
    assert.equal(lastUser('openai.chat.completions', { model: 'm', messages: [{ role: 'user', content: 'first' }, { role: 'assistant', content: 'x' }, { role: 'user', content: 'second' }] }), 'second');
    assert.equal(lastUser('openai.chat.completions', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'https://x' } }, { type: 'text', text: 'b' }] }] }), 'a b');
    assert.equal(lastUser('anthropic.messages', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image', source: { type: 'url' } }, { type: 'text', text: 'b' }] }] }), 'a b');
    assert.equal(lastUser('openai.responses', { model: 'm', input: 'responses input' }), 'responses input');
    assert.equal(lastUser('openai.chat.completions', 'not json'), null);
    const chat = { endpoint: 'openai.chat.completions', stream: false, events: [] };
    const anthropic = { provider_kind: 'anthropic' as const, endpoint: 'anthropic.messages', stream: false, events: [] };
    assert.equal(answerText(callView('c', { ...chat, response_body: JSON.stringify({ choices: [{ message: { content: 'hi there' } }] }) })), 'hi there');
    assert.equal(answerText(callView('c', { ...anthropic, response_body: JSON.stringify({ content: [{ type: 'text', text: 'claude says' }] }) })), 'claude says');
    const sse = (data: unknown): { offset_ms: number; raw: string } => ({ offset_ms: 0, raw: `data: ${JSON.stringify(data)}\n\n` });
    assert.equal(answerText(callView('c', { events: [sse({ choices: [{ delta: { content: 'Hel' } }] }), sse({ choices: [{ delta: { content: 'lo' } }] }), { offset_ms: 1, raw: 'data: [DONE]\n\n' }] })), 'Hello');
    assert.equal(answerText(callView('c', { ...anthropic, stream: true, events: [{ offset_ms: 0, raw: `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi' } })}\n\n` }] })), 'Hi');
    assert.equal(answerText(callView('c', { response_body: null, events: [] })), null);
  });
});
