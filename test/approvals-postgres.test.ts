/**
 * Approvals shared by replicas on one PostgreSQL database (real server, a database per test):
 * - two approval services (each with its own store: pool and LISTEN connection, as two gateway
 *   processes have) — a request held on A and decided through B is released on A by NOTIFY, with
 *   no poll; votes, holds, uses and expiries taken on both at once never overwrite one another;
 *   a dropped notification connection reconnects and misses nothing; the change feed resumes
 *   from an event id;
 * - two gateways over HTTP — a request held on A is approved through B and completes on A; B's
 *   inbox shows it; an event stream cut from B and resumed on A with Last-Event-ID gets exactly
 *   the events it missed.
 * Every case ends with the audit chain checked independently (approval entries included).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { pino } from 'pino';
import { SseParser } from '../src/core/sse.ts';
import { ApprovalService, MAX_REPLAY, type ApprovalFeedEntry, type HoldRequest } from '../src/gateway/approvals/approval-service.ts';
import type { ApprovalStore } from '../src/store/approval-store.ts';
import { openPostgresApprovalStore, type PgApprovalStore } from '../src/store/postgres/pg-approval-store.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { adminQuery, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const freshPg = usePgDatabases();
const logger = pino({ level: 'silent' });
const alice = { subject: 'alice', email: 'alice@example.com', groups: ['developers'] };
const bob = { subject: 'bob', email: 'bob@example.com', groups: ['approvers'] };
const carol = { subject: 'carol', email: 'carol@example.com', groups: ['approvers'] };
const spec = { approvers: ['approvers'], required: 1, timeout: 60_000, retry_window: 60_000, reuse: 'once' as const };

function request(body: string, overrides: Partial<HoldRequest> = {}): HoldRequest {
  return { requester: alice, ruleId: 'r', ruleReason: 'because', spec, provider: 'openai', model: 'm', endpoint: 'openai.chat.completions', stream: false, preview: 'user: hi', sessionId: 's', callId: `c-${body}`, body, ...overrides };
}

interface Replica {
  readonly store: PgApprovalStore;
  readonly service: ApprovalService;
}

/** Two replicas' approval parts on one fresh database; `pollMs` long: only NOTIFY carries decisions across. */
async function twoReplicas(t: TestContext, pollMs = 60_000): Promise<{ url: string; a: Replica; b: Replica }> {
  const { url } = await freshPg();
  const open = async (): Promise<Replica> => {
    const store = await openPostgresApprovalStore({ url, poolSize: 3, onError: () => {} });
    return { store, service: await ApprovalService.open({ store, logger, pollMs }) };
  };
  const a = await open();
  const b = await open();
  t.after(async () => {
    for (const r of [a, b]) {
      r.service.close();
      await r.store.close();
    }
  });
  return { url, a, b };
}

async function waitFor<T>(read: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`not seen: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('two approval services on one PostgreSQL database', { timeout: 120_000 }, () => {
  it('a request held on A, approved through B, is released on A by NOTIFY (no poll), within a second', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const held = await a.service.hold(request(`one-${i}`));
      assert.ok(held.kind === 'wait' && held.created);
      let releasedAt = 0;
      const waiting = a.service.wait(held.approval, new AbortController().signal).then((outcome) => {
        releasedAt = performance.now();
        return outcome;
      });
      const decidedAt = performance.now();
      const decided = await b.service.decide(held.approval.id, bob, 'approve', 'ok');
      assert.ok(decided.ok);
      const outcome = await waiting;
      assert.equal(outcome.kind, 'approved');
      latencies.push(releasedAt - decidedAt);
      assert.equal((await b.store.get(held.approval.id))?.uses, 1, 'the held request on A took its one use');
    }
    latencies.sort((x, y) => x - y);
    t.diagnostic(`release on A after a decision through B: p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms (20 decisions)`);
    assert.ok(latencies.at(-1)! < 1000, `every release within 1 s (slowest ${latencies.at(-1)!.toFixed(0)} ms)`);
    await checkPgAuditChain(url);
  });

  it('a denial through B reaches A the same way; the request is refused there', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const held = await a.service.hold(request('deny'));
    const waiting = a.service.wait(held.approval, new AbortController().signal);
    assert.ok((await b.service.decide(held.approval.id, bob, 'deny', 'no')).ok);
    const outcome = await waiting;
    assert.equal(outcome.kind, 'denied');
    assert.equal(outcome.approval.votes[0]?.reason, 'no');
    await checkPgAuditChain(url);
  });

  it('two approvers voting at the same moment through A and B: both votes count (no lost update)', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    for (let i = 0; i < 10; i++) {
      const held = await a.service.hold(request(`two-${i}`, { spec: { ...spec, required: 2 } }));
      const [first, second] = await Promise.all([a.service.decide(held.approval.id, bob, 'approve', 'a'), b.service.decide(held.approval.id, carol, 'approve', 'b')]);
      assert.ok(first.ok && second.ok);
      const stored = await a.store.get(held.approval.id);
      assert.deepEqual(stored?.votes.map((v) => v.by.sub).sort(), ['bob', 'carol']);
      assert.equal(stored?.state, 'approved');
    }
    await checkPgAuditChain(url);
  });

  it('the same request held on A and B at once opens one approval; a third vote after the decision is refused', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    for (let i = 0; i < 10; i++) {
      const [onA, onB] = await Promise.all([a.service.hold(request(`same-${i}`)), b.service.hold(request(`same-${i}`))]);
      assert.ok(onA.kind === 'wait' && onB.kind === 'wait');
      assert.equal(onA.approval.id, onB.approval.id);
      assert.equal(Number(onA.created) + Number(onB.created), 1, 'created once');
    }
    const rows = await pgQuery(url, 'SELECT count(*) AS n FROM approvals');
    assert.equal(rows[0]?.['n'], 10);
    const [one] = await a.store.list({ limit: 1 });
    assert.ok((await b.service.decide(one!.id, bob, 'approve', null)).ok);
    const late = await a.service.decide(one!.id, carol, 'approve', null);
    assert.ok(!late.ok && late.refusal.code === 'AIGOV_E_APPROVAL_CLOSED');
    await checkPgAuditChain(url);
  });

  it('reuse once: the request waiting on A and its retry waiting on B — exactly one goes through', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const held = await a.service.hold(request('once'));
    const retry = await b.service.hold(request('once', { sessionId: 's-retry' }));
    assert.equal(retry.approval.id, held.approval.id);
    const outcomes = Promise.all([a.service.wait(held.approval, new AbortController().signal), b.service.wait(retry.approval, new AbortController().signal)]);
    assert.ok((await a.service.decide(held.approval.id, bob, 'approve', null)).ok);
    const kinds = (await outcomes).map((o) => o.kind).sort();
    assert.deepEqual(kinds, ['approved', 'interrupted']);
    assert.equal((await a.store.get(held.approval.id))?.uses, 1);
    await checkPgAuditChain(url);
  });

  it('the notification connections dropped: they reconnect, and a decision taken meanwhile still releases the request', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const held = await a.service.hold(request('dropped'));
    const waiting = a.service.wait(held.approval, new AbortController().signal);
    const name = new URL(url).pathname.slice(1);
    const killed = await pgQuery(url, "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN aigov_approvals'", [name]);
    assert.equal(killed.length, 2, 'both replicas listen');
    const decidedAt = performance.now();
    assert.ok((await b.service.decide(held.approval.id, bob, 'approve', null)).ok);
    assert.equal((await waiting).kind, 'approved');
    const ms = performance.now() - decidedAt;
    t.diagnostic(`released ${ms.toFixed(0)} ms after the decision, across a reconnect`);
    assert.ok(ms < 1000, `released within a second (the poll is a minute): ${ms.toFixed(0)} ms`);
    await waitFor(() => (a.store.listening && b.store.listening ? true : undefined), 'both listening again');
    // And notifications flow again.
    const next = await a.service.hold(request('after'));
    const released = a.service.wait(next.approval, new AbortController().signal);
    assert.ok((await b.service.decide(next.approval.id, bob, 'approve', null)).ok);
    assert.equal((await released).kind, 'approved');
    await checkPgAuditChain(url);
  });

  it('without notifications at all, the poll still releases the request', async (t) => {
    const { url } = await freshPg();
    const a = await openPostgresApprovalStore({ url, poolSize: 2 });
    const b = await openPostgresApprovalStore({ url, poolSize: 2 });
    // A store that cannot signal changes: A learns of B's decision only by polling.
    const silentA: ApprovalStore = {
      mutate: (key, change) => a.mutate(key, change),
      get: (id) => a.get(id),
      list: (query) => a.list(query),
      changesAfter: (seq, limit) => a.changesAfter(seq, limit),
      lastChangeSeq: () => a.lastChangeSeq(),
      watchChanges: null,
      outbox: a.outbox,
      close: () => a.close(),
    };
    const serviceA = await ApprovalService.open({ store: silentA, logger, pollMs: 50 });
    const serviceB = await ApprovalService.open({ store: b, logger, pollMs: 60_000 });
    t.after(async () => {
      serviceA.close();
      serviceB.close();
      await a.close();
      await b.close();
    });
    const held = await serviceA.hold(request('polled'));
    const waiting = serviceA.wait(held.approval, new AbortController().signal);
    assert.ok((await serviceB.decide(held.approval.id, bob, 'approve', null)).ok);
    assert.equal((await waiting).kind, 'approved');
  });

  it('the replica holding a request dies: the approval is still decided through B, and the retry on B goes through on it once', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const held = await a.service.hold(request('died'));
    const cut = a.service.wait(held.approval, new AbortController().signal);
    a.service.close(); // A goes away: its held request is cut, the approval stays open
    assert.equal((await cut).kind, 'interrupted');
    assert.ok((await b.service.decide(held.approval.id, bob, 'approve', 'after A died')).ok);
    const retry = await b.service.hold(request('died', { sessionId: 's-retry' }));
    assert.equal(retry.kind, 'proceed', 'the retry (same request, same user) uses the approval');
    assert.equal(retry.approval.id, held.approval.id);
    const again = await b.service.hold(request('died'));
    assert.ok(again.kind === 'wait' && again.created, 'reuse once: a second retry needs a new approval');
    await checkPgAuditChain(url);
  });

  it('PostgreSQL gone: holds and votes are refused (never with the password), a held request is not released; back: both work again', async (t) => {
    const { name, url: plain } = await freshPg();
    const withPassword = new URL(plain);
    withPassword.username = 'postgres';
    const password = ['pg', randomBytes(8).toString('hex'), 'pw'].join('-'); // trust auth ignores it; nothing may print it
    withPassword.password = password;
    const url = withPassword.toString();
    const reports: string[] = [];
    const open = async (): Promise<Replica> => {
      const store = await openPostgresApprovalStore({ url, poolSize: 2, onError: (m) => reports.push(m) });
      return { store, service: await ApprovalService.open({ store, logger, pollMs: 50 }) };
    };
    const a = await open();
    const b = await open();
    t.after(async () => {
      await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => {});
      for (const r of [a, b]) {
        r.service.close();
        await r.store.close();
      }
    });
    const held = await a.service.hold(request('outage'));
    let outcome: string | null = null;
    void a.service.wait(held.approval, new AbortController().signal).then((o) => (outcome = o.kind));
    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    const refused = await a.service.hold(request('during')).then(() => null, (e: unknown) => e);
    assert.ok(refused instanceof Error, 'a hold that cannot be recorded is refused');
    assert.ok(!refused.message.includes(password));
    const vote = await b.service.decide(held.approval.id, bob, 'approve', null).then(() => null, (e: unknown) => e);
    assert.ok(vote instanceof Error, 'a vote that cannot be recorded is refused');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(outcome, null, 'the held request still waits');
    await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await waitFor(() => (a.store.listening && b.store.listening ? true : undefined), 'listening again', 15_000);
    assert.ok((await b.service.decide(held.approval.id, bob, 'approve', null)).ok);
    await waitFor(() => outcome ?? undefined, 'released');
    assert.equal(outcome, 'approved');
    assert.ok(reports.some((m) => /notification connection to PostgreSQL was lost/.test(m)), reports.join('\n'));
    assert.ok(!reports.join('\n').includes(password));
    await checkPgAuditChain(plain);
  });

  it('expiry: with both replicas up one expiry is written; a replica that died still has its approval expired by the other', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const short = { ...spec, timeout: 300 };
    const both = await a.service.hold(request('expire-both', { spec: short }));
    const waiting = a.service.wait(both.approval, new AbortController().signal);
    assert.equal((await waiting).kind, 'expired');
    await waitFor(async () => ((await b.store.get(both.approval.id))?.state === 'expired' ? true : undefined), 'expired in the store');
    await new Promise((resolve) => setTimeout(resolve, 200)); // B's timer fires too
    const entries = await pgQuery(url, "SELECT count(*) AS n FROM audit_log WHERE kind = 'approval' AND ref = $1", [both.approval.id]);
    assert.equal(entries[0]?.['n'], 2, 'created and expired: one expiry though two replicas timed it out');

    const seen: ApprovalFeedEntry[] = [];
    const watch = await b.service.watch(null, (entry) => seen.push(entry));
    watch.start();
    const orphan = await a.service.hold(request('expire-orphan', { spec: short }));
    await waitFor(() => seen.find((e) => e.approval.id === orphan.approval.id), 'B saw it created');
    a.service.close(); // A dies with the approval open
    const expired = await waitFor(() => seen.find((e) => e.approval.id === orphan.approval.id && e.approval.state === 'expired'), 'B expired it');
    assert.equal(expired.approval.decidedAt, orphan.approval.expiresAt);
    watch.stop();
    await checkPgAuditChain(url);
  });

  it('the feed: B sees what A holds and decides, in order; a watcher resumes from an id with exactly what it missed', async (t) => {
    const { url, a, b } = await twoReplicas(t);
    const live: ApprovalFeedEntry[] = [];
    const watch = await b.service.watch(null, (entry) => live.push(entry));
    assert.equal(watch.replay, null, 'no position given: the caller sends a snapshot');
    watch.start();
    const one = await a.service.hold(request('feed-1'));
    await waitFor(() => live.find((e) => e.approval.id === one.approval.id), 'B saw A hold it');
    const cut = live.at(-1)!.seq;
    watch.stop();
    // Missed while disconnected: a new hold on A, a decision through B, a vote through A.
    const two = await a.service.hold(request('feed-2'));
    assert.ok((await b.service.decide(one.approval.id, bob, 'deny', 'no')).ok);
    const three = await a.service.hold(request('feed-3', { spec: { ...spec, required: 2 } }));
    assert.ok((await a.service.decide(three.approval.id, bob, 'approve', null)).ok);

    const resumed: ApprovalFeedEntry[] = [];
    const again = await a.service.watch(cut, (entry) => resumed.push(entry));
    assert.ok(again.replay !== null);
    const replay = again.replay.map((e) => [e.approval.id, e.approval.state, e.approval.votes.length]);
    assert.deepEqual(replay, [
      [two.approval.id, 'pending', 0],
      [one.approval.id, 'denied', 1],
      [three.approval.id, 'pending', 1],
    ], 'each changed approval once, as it is now, in the order of its last change');
    const seqs = again.replay.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.ok(seqs[0]! > cut);
    again.start();
    assert.ok((await b.service.decide(three.approval.id, carol, 'approve', null)).ok);
    const last = await waitFor(() => resumed.find((e) => e.approval.id === three.approval.id && e.approval.state === 'approved'), 'the live change after the replay');
    assert.ok(last.seq > seqs.at(-1)!);
    assert.equal(resumed.filter((e) => e.seq <= seqs.at(-1)!).length, 0, 'nothing replayed twice');
    again.stop();

    // A position this database never gave out, or too far back: a snapshot instead.
    const future = await a.service.watch(cut + 1_000_000, () => {});
    assert.equal(future.replay, null);
    future.stop();
    for (let i = 0; i < MAX_REPLAY + 1; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, MAX_REPLAY + 1 - i) }, (_, j) => a.service.hold(request(`bulk-${i + j}`))));
    }
    const far = await a.service.watch(cut, () => {});
    assert.equal(far.replay, null, 'more than MAX_REPLAY changes back');
    far.stop();
    await checkPgAuditChain(url);
  });
});

// ── two gateways over HTTP ──────────────────────────────────────────────────────────────────

interface SseEvent {
  readonly id: string | null;
  readonly event: string;
  readonly data: { approvals?: { id: string }[]; id?: string; state?: string };
}

/** Reads an approvals event stream into `events` until aborted. */
function readEvents(url: string, token: string, headers: Record<string, string> = {}): { events: SseEvent[]; status: Promise<number>; stop(): Promise<void> } {
  const events: SseEvent[] = [];
  const controller = new AbortController();
  let resolveStatus: (status: number) => void = () => {};
  const status = new Promise<number>((resolve) => (resolveStatus = resolve));
  const reading = (async () => {
    const res = await fetch(`${url}/aigov/v1/approvals/events?scope=decide`, { headers: { authorization: `Bearer ${token}`, ...headers }, signal: controller.signal });
    resolveStatus(res.status);
    const parser = new SseParser();
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      for (const e of parser.push(decoder.decode(chunk, { stream: true }))) {
        if (e.event && e.data !== null) events.push({ id: e.id, event: e.event, data: JSON.parse(e.data) as SseEvent['data'] });
      }
    }
  })().catch(() => undefined);
  return {
    events,
    status,
    async stop() {
      controller.abort();
      await reading;
    },
  };
}

describe('two gateways on one PostgreSQL database', { timeout: 120_000 }, () => {
  let h: Harness;
  let url = '';
  let home = '';
  let replicaUrl = '';
  let bobToken = '';
  before(async () => {
    url = (await freshPg()).url;
    home = await mkdtemp(join(tmpdir(), 'aigov-pg-replicas-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, [
      'version: 1',
      'rules:',
      '  - id: prod-credentials',
      '    reason: the prompt names production credentials',
      "    match: { keywords: ['production password'] }",
      '    action: require_approval',
      '    approval: { approvers: [approvers], timeout: 30s }',
    ].join('\n'));
    h = await startHarness({ databaseUrl: url, policyFile });
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    replicaUrl = (await h.startReplica()).url;
    bobToken = await h.tokenFor('bob');
  });
  after(async () => {
    await h?.close();
    await rm(home, { recursive: true, force: true });
  });

  const ask = (text: string, session: string): Promise<OpenAI.Chat.Completions.ChatCompletion> =>
    new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });

  it('a request held on A shows in the inbox on B, is approved through B and completes on A', async (t) => {
    const inbox = readEvents(replicaUrl, bobToken);
    assert.equal(await inbox.status, 200);
    await waitFor(() => inbox.events.find((e) => e.event === 'snapshot'), 'the snapshot on B');
    const received = h.upstream.received.length;
    let answeredAt = 0;
    const answer = ask('what is the production password policy?', 'ses-replicas-1').then((a) => {
      answeredAt = performance.now();
      return a;
    });
    const created = await waitFor(() => inbox.events.find((e) => e.event === 'approval' && e.data.state === 'pending'), "A's held request in B's live inbox");
    const id = created.data.id!;
    assert.match(created.id ?? '', /^[0-9]+$/, 'events carry their change number');
    const listed = (await (await fetchAsUser(replicaUrl, bobToken, '/aigov/v1/approvals?scope=decide', { method: 'GET' })).json()) as { approvals: { id: string }[] };
    assert.deepEqual(listed.approvals.map((a) => a.id), [id], "B's list has it too");
    assert.equal(h.upstream.received.length, received, 'nothing goes upstream while held');
    const approvedAt = performance.now();
    assert.equal((await fetchAsUser(replicaUrl, bobToken, `/aigov/v1/approvals/${id}/approve`, { method: 'POST', body: { reason: 'fine' } })).status, 200);
    assert.equal((await answer).object, 'chat.completion');
    const ms = answeredAt - approvedAt;
    t.diagnostic(`the answer on A came ${ms.toFixed(0)} ms after the approval through B returned`);
    assert.ok(ms < 1000, `within a second: ${ms.toFixed(0)} ms`);
    assert.equal(h.upstream.received.length, received + 1);
    await waitFor(() => inbox.events.find((e) => e.event === 'approval' && e.data.id === id && e.data.state === 'approved'), 'the decision in the inbox');
    await inbox.stop();
    const calls = await pgQuery(url, "SELECT status, decisions FROM calls WHERE session_id = 'ses-replicas-1'");
    assert.deepEqual(calls.map((c) => c['status']), ['completed']);
    assert.match(String(calls[0]!['decisions']), /"stage":"approval","action":"approved"/);
    await checkPgAuditChain(url);
  });

  it('an event stream cut on B and resumed on A with Last-Event-ID gets exactly the events it missed', async () => {
    const first = readEvents(replicaUrl, bobToken);
    const snapshot = await waitFor(() => first.events.find((e) => e.event === 'snapshot'), 'the snapshot');
    assert.match(snapshot.id ?? '', /^[0-9]+$/, 'the snapshot has a position');
    await first.stop();
    // Missed: a request held (on A) and approved (through B).
    const answer = ask('rotate the production password today', 'ses-replicas-2');
    const pending = await waitFor(async () => {
      const list = (await (await fetchAsUser(replicaUrl, bobToken, '/aigov/v1/approvals?scope=decide', { method: 'GET' })).json()) as { approvals: { id: string }[] };
      return list.approvals[0]?.id;
    }, 'the held request');
    assert.equal((await fetchAsUser(replicaUrl, bobToken, `/aigov/v1/approvals/${pending}/approve`, { method: 'POST', body: {} })).status, 200);
    await answer;

    const resumed = readEvents(h.url, bobToken, { 'last-event-id': snapshot.id! });
    const decided = await waitFor(() => resumed.events.find((e) => e.data.id === pending && e.data.state === 'approved'), 'the missed decision');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await resumed.stop();
    assert.equal(resumed.events.filter((e) => e.event === 'snapshot').length, 0, 'a resumed stream has no snapshot');
    assert.deepEqual(resumed.events.map((e) => e.data.id), [pending], 'the missed approval, once, as it is now');
    assert.ok(Number(decided.id) > Number(snapshot.id));

    // A made-up id: a snapshot, as for a new client.
    const madeUp = readEvents(h.url, bobToken, { 'last-event-id': 'x1' });
    await waitFor(() => madeUp.events.find((e) => e.event === 'snapshot'), 'a snapshot for a made-up id');
    await madeUp.stop();
  });
});
