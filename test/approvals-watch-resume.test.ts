/**
 * The approver's live watch (src/cli/approvals-service.ts) when its connection is taken away,
 * against real gateways behind a TCP proxy that plays the load balancer (test/support/tcp-proxy.ts):
 * - two gateways on one PostgreSQL database: the watch is connected to B through the proxy; B
 *   dies (its connections reset, then it is closed) and the proxy sends new connections to A. The
 *   watch reconnects by itself, resumes with `Last-Event-ID` (read off the wire), and gets every
 *   change made while it was away — a decision on a request it had seen, a request held meanwhile,
 *   and one held AND decided meanwhile (which a fresh snapshot would never show) — with no
 *   snapshot, then keeps following live;
 * - one gateway (SQLite) stopped and started again: the same, across the restart;
 * - a reconnection to a gateway that cannot resume from that id (another database): the snapshot
 *   it answers with replaces what the watch knew.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApprovalsClient, type ApprovalsClient, type WatchStatus } from '../src/cli/approvals-service.ts';
import type { ApprovalView } from '../src/protocol/approvals.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';

const freshPg = usePgDatabases();

const POLICY = `
version: 1
rules:
  - id: customer-data
    reason: customer data needs a second look
    match: { keywords: ['customer list'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 2m }
`;

async function policyFile(dir: string): Promise<string> {
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, POLICY);
  return file;
}

/** Sends a request the policy holds; resolves with the status it finally gets. */
function hold(h: Harness, tag: string): Promise<number> {
  return fetchAsUser(h.url, h.token, '/openai/v1/chat/completions', {
    method: 'POST',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `the customer list ${tag}` }] },
  }).then(async (res) => {
    await res.arrayBuffer();
    return res.status;
  });
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The approval of the request tagged `tag`, as the gateway at `url` lists it to bob. */
async function approvalOf(url: string, bobToken: string, tag: string): Promise<string> {
  return until(async () => {
    const res = await fetchAsUser(url, bobToken, '/aigov/v1/approvals?scope=decide&state=all', { method: 'GET' });
    const { approvals } = (await res.json()) as { approvals: ApprovalView[] };
    return approvals.find((a) => a.preview.includes(tag))?.id;
  }, `the approval of ${tag}`);
}

async function decide(url: string, bobToken: string, id: string, decision: 'approve' | 'deny'): Promise<void> {
  const res = await fetchAsUser(url, bobToken, `/aigov/v1/approvals/${id}/${decision}`, { method: 'POST', body: { reason: 'decided while the inbox was away' } });
  assert.equal(res.status, 200, await res.text());
}

/** A watch through `proxy` that records what it is told. */
function watchThrough(proxy: TcpProxy, token: () => string) {
  const client: ApprovalsClient = createApprovalsClient({
    gatewayUrl: `http://127.0.0.1:${proxy.port}`,
    getToken: async () => ({ token: token(), expiresAt: Date.now() + 600_000 }),
    reconnectDelayMs: () => 50,
  });
  const seen = { snapshots: [] as ApprovalView[][], events: [] as ApprovalView[], statuses: [] as WatchStatus[] };
  const controller = new AbortController();
  const watch = client.watch('decide', { onSnapshot: (a) => seen.snapshots.push([...a]), onApproval: (a) => seen.events.push(a), onStatus: (s) => seen.statuses.push(s) }, controller.signal);
  return {
    seen,
    /** The latest state the watch was told of each approval whose preview has `tag`. */
    latest: (tag: string): ApprovalView | undefined => [...seen.snapshots.flat(), ...seen.events].filter((a) => a.preview.includes(tag)).at(-1),
    live: (count: number) => until(() => (seen.statuses.filter((s) => s.state === 'live').length >= count ? true : undefined), `live #${count}`),
    stop: async () => {
      controller.abort();
      await watch.done;
    },
  };
}

/** The `Last-Event-ID` of each event-stream request that went through the proxy (null: none sent). */
function resumedFrom(proxy: TcpProxy): (string | null)[] {
  const out: (string | null)[] = [];
  for (const text of proxy.sent) {
    for (const head of text.split('\r\n\r\n')) {
      if (!/^GET \/aigov\/v1\/approvals\/events\?/.test(head)) continue;
      out.push(/\r\nlast-event-id: *([^\r\n]*)/i.exec(head)?.[1] ?? null);
    }
  }
  return out;
}

describe('the live watch when the replica it is connected to dies (two gateways on one PostgreSQL, a proxy as the load balancer)', { timeout: 120_000 }, () => {
  let a: Harness;
  let bUrl = '';
  let bClose: () => Promise<void>;
  let bobToken = '';
  let dir = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-watch-resume-'));
    a = await startHarness({ databaseUrl: (await freshPg()).url, policyFile: await policyFile(dir), approvalKeepAliveMs: 200 });
    a.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
    const b = await a.startReplica();
    bUrl = b.url;
    bClose = () => b.close();
    bobToken = await a.tokenFor('bob');
  });
  after(async () => {
    await a?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reconnects to the survivor with Last-Event-ID and gets every change made while it was away, with no snapshot', async () => {
    const proxy = await startTcpProxy(Number(new URL(bUrl).port));
    const w = watchThrough(proxy, () => bobToken);
    try {
      await w.live(1);
      assert.equal(w.seen.snapshots.length, 1);
      const seenBefore = hold(a, '#seen-before');
      await until(() => w.latest('#seen-before'), 'the held request, live through B');

      // B dies under the balancer: its connections reset, then it is gone; nothing answers for now.
      proxy.setTarget(null);
      assert.ok(proxy.cut() >= 1, 'the watch had a connection through the proxy');
      await bClose();
      await until(() => (w.seen.statuses.at(-1)?.state === 'retrying' ? true : undefined), 'the watch noticing');

      // Meanwhile, through A: a decision on the request it saw, a new request, and one held and decided.
      await decide(a.url, bobToken, await approvalOf(a.url, bobToken, '#seen-before'), 'approve');
      assert.equal(await seenBefore, 200);
      const heldMeanwhile = hold(a, '#held-meanwhile');
      const decidedMeanwhile = hold(a, '#decided-meanwhile');
      await decide(a.url, bobToken, await approvalOf(a.url, bobToken, '#decided-meanwhile'), 'deny');
      assert.equal(await decidedMeanwhile, 403);
      const heldId = await approvalOf(a.url, bobToken, '#held-meanwhile');
      assert.equal(w.latest('#held-meanwhile'), undefined, 'nothing reached the watch while it was away');

      // The balancer now sends new connections to A.
      proxy.setTarget(Number(new URL(a.url).port));
      await w.live(2);
      await until(() => (w.latest('#decided-meanwhile')?.state === 'denied' && w.latest('#seen-before')?.state === 'approved' && w.latest('#held-meanwhile') ? true : undefined), 'the missed changes');
      assert.equal(w.latest('#seen-before')?.state, 'approved');
      assert.equal(w.latest('#held-meanwhile')?.state, 'pending');
      assert.equal(w.latest('#decided-meanwhile')?.votes[0]?.reason, 'decided while the inbox was away');
      assert.equal(w.seen.snapshots.length, 1, 'resumed: the gateway sent what was missed, not a snapshot');
      const states = w.seen.statuses.map((s) => s.state);
      assert.equal(states[0], 'connecting');
      assert.ok(states.includes('reconnecting'), `a reconnecting state is reported: ${states.join(',')}`);
      assert.equal(states.at(-1), 'live');

      // On the wire: the first request fresh, every later one resuming from a change number.
      const ids = resumedFrom(proxy);
      assert.equal(ids[0], null);
      assert.ok(ids.length >= 2);
      for (const id of ids.slice(1)) assert.match(id ?? '', /^[0-9]+$/);

      // Live again, now through A.
      await decide(a.url, bobToken, heldId, 'approve');
      assert.equal(await heldMeanwhile, 200);
      await until(() => (w.latest('#held-meanwhile')?.state === 'approved' ? true : undefined), 'a change after the reconnection');
    } finally {
      await w.stop();
      await proxy.close();
    }
  });
});

describe('the live watch across a gateway restart (SQLite)', { timeout: 120_000 }, () => {
  let h: Harness;
  let other: Harness;
  let dir = '';
  const tokens = { bob: '', otherBob: '' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-watch-restart-'));
    const policy = await policyFile(dir);
    h = await startHarness({ policyFile: policy, approvalKeepAliveMs: 200 });
    h.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
    other = await startHarness({ policyFile: policy, approvalKeepAliveMs: 200 });
    other.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
    tokens.bob = await h.tokenFor('bob');
    tokens.otherBob = await other.tokenFor('bob');
  });
  after(async () => {
    await h?.close();
    await other?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a decision taken while the gateway restarted is seen once the watch is back, resumed from its last event', async () => {
    const proxy = await startTcpProxy(Number(new URL(h.url).port));
    const w = watchThrough(proxy, () => tokens.bob);
    try {
      await w.live(1);
      const first = hold(h, '#before-restart');
      await until(() => w.latest('#before-restart'), 'the held request');
      proxy.setTarget(null); // clients cannot reach it while it restarts, nor right after
      const restarted = h.restart();
      assert.equal(await first, 503, 'the held request is cut by the restart (its approval stays open for the retry)');
      await restarted;
      await until(() => (w.seen.statuses.at(-1)?.state === 'retrying' ? true : undefined), 'the watch noticing');
      await decide(h.url, tokens.bob, await approvalOf(h.url, tokens.bob, '#before-restart'), 'deny');

      proxy.setTarget(Number(new URL(h.url).port));
      await w.live(2);
      await until(() => (w.latest('#before-restart')?.state === 'denied' ? true : undefined), 'the decision taken while away');
      assert.equal(w.seen.snapshots.length, 1, 'resumed, not a snapshot');
      assert.match(resumedFrom(proxy).at(-1) ?? '', /^[0-9]+$/);
    } finally {
      await w.stop();
      await proxy.close();
    }
  });

  it('a gateway that cannot resume from that id (another database) answers with a snapshot, which replaces what the watch knew', async () => {
    const proxy = await startTcpProxy(Number(new URL(h.url).port));
    let target: 'h' | 'other' = 'h';
    const w = watchThrough(proxy, () => (target === 'h' ? tokens.bob : tokens.otherBob));
    const cleanup: { id: string; answer: Promise<number> } [] = [];
    try {
      const here = hold(h, '#only-here');
      const hereId = await approvalOf(h.url, tokens.bob, '#only-here');
      cleanup.push({ id: hereId, answer: here });
      await w.live(1);
      await until(() => (w.latest('#only-here') ? true : undefined), 'the first gateway\'s request');
      const there = hold(other, '#only-there');
      const thereId = await approvalOf(other.url, tokens.otherBob, '#only-there');

      target = 'other';
      proxy.setTarget(Number(new URL(other.url).port));
      proxy.cut();
      await until(() => (w.seen.snapshots.length >= 2 ? true : undefined), 'a snapshot from the other gateway');
      assert.deepEqual(w.seen.snapshots.at(-1)!.map((v) => v.id), [thereId]);
      assert.match(resumedFrom(proxy).at(-1) ?? '', /^[0-9]+$/, 'it did ask to resume');
      await w.live(2);
      await decide(other.url, tokens.otherBob, thereId, 'deny');
      assert.equal(await there, 403);
    } finally {
      await w.stop();
      await proxy.close();
      for (const { id, answer } of cleanup) {
        await decide(h.url, tokens.bob, id, 'deny');
        await answer;
      }
    }
  });
});
