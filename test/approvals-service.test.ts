/**
 * The approvals client (src/cli/approvals-service.ts) against a real gateway (test harness: dev
 * IdP users, SQLite, replayed upstream) with a policy that holds prompts: answers validated,
 * the gateway's coded errors kept with their message and hint, the token renewed once on a 401,
 * and the live watch — snapshot, events as they happen, reconnect on demand, backoff when the
 * gateway is gone.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createApprovalsClient, GatewayReportedError, type ApprovalsClient, type WatchStatus } from '../src/cli/approvals-service.ts';
import { AigovError } from '../src/core/errors.ts';
import type { ApprovalView } from '../src/protocol/approvals.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { rejection } from './support/aigov-assert.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';

const POLICY = `
version: 1
rules:
  - id: customer-data
    reason: customer data needs a second look
    match: { keywords: ['customer list'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 1m }
`;

let h: Harness;
const tokens: Record<string, string> = {};

async function startPolicyHarness(): Promise<Harness> {
  const policyFile = join(await mkdtemp(join(tmpdir(), 'aigov-apr-svc-')), 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const harness = await startHarness({ policyFile, approvalKeepAliveMs: 100 });
  harness.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
  return harness;
}

function clientFor(user: string, opts: { harness?: Harness; firstToken?: string; onToken?: (renew: boolean) => void; idleTimeoutMs?: number } = {}): ApprovalsClient {
  let first = opts.firstToken;
  return createApprovalsClient({
    gatewayUrl: (opts.harness ?? h).url,
    getToken: async ({ renew }) => {
      opts.onToken?.(renew);
      const token = first ?? tokens[user]!;
      first = undefined;
      return { token, expiresAt: Date.now() + 600_000 };
    },
    reconnectDelayMs: () => 50,
    ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
  });
}

function hold(content: string, harness: Harness = h): Promise<number> {
  return fetchAsUser(harness.url, harness.token, '/openai/v1/chat/completions', {
    method: 'POST',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
  }).then(async (res) => {
    await res.arrayBuffer();
    return res.status;
  });
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A watch that records what it was told. */
function record(client: ApprovalsClient, controller: AbortController) {
  const seen = { snapshots: [] as ApprovalView[][], events: [] as ApprovalView[], statuses: [] as WatchStatus[] };
  const watch = client.watch(
    'decide',
    { onSnapshot: (a) => seen.snapshots.push([...a]), onApproval: (a) => seen.events.push(a), onStatus: (s) => seen.statuses.push(s) },
    controller.signal,
  );
  return { seen, watch };
}

describe('approvals client against a real gateway', () => {
  before(async () => {
    h = await startPolicyHarness();
    tokens['alice'] = h.token;
    for (const user of ['bob', 'carol']) tokens[user] = await h.tokenFor(user);
  });
  after(() => h.close());
  beforeEach(() => h.upstream.received.splice(0));

  it('list, get and approve: validated views; the held request goes on', async () => {
    const bob = clientFor('bob');
    const answer = hold('the customer list #list');
    const approval = await until(async () => (await bob.list()).find((a) => a.preview.includes('#list')), 'the approval');
    assert.equal(approval.state, 'pending');
    assert.equal(approval.rule.id, 'customer-data');
    assert.deepEqual(await bob.get(approval.id), approval);
    assert.equal((await clientFor('alice').list({ scope: 'mine' })).some((a) => a.id === approval.id), true);
    const approved = await bob.approve(approval.id, '  fine  ');
    assert.equal(approved.state, 'approved');
    assert.equal(approved.votes[0]?.reason, 'fine', 'the reason is trimmed');
    assert.equal(await answer, 200);
    assert.equal((await bob.list({ state: 'approved' })).some((a) => a.id === approval.id), true);
  });

  it("the gateway's refusals keep their code, message and hint (hint filled in by the gateway)", async () => {
    const answer = hold('the customer list #refuse');
    const bob = clientFor('bob');
    const approval = await until(async () => (await bob.list()).find((a) => a.preview.includes('#refuse')), 'the approval');
    const self = await rejection(clientFor('alice').approve(approval.id));
    assert.ok(self instanceof GatewayReportedError);
    assert.equal(self.code, 'AIGOV_E_APPROVAL_SELF');
    assert.equal(self.exitCode, 77);
    assert.equal(self.httpStatus, 403);
    assert.equal(self.message, `You cannot decide approval ${approval.id}: it is your own request.`);
    assert.equal(self.hint, 'Another approver (approvers) has to decide it.');
    assert.equal((await rejection(clientFor('carol').deny(approval.id, 'no'))).code, 'AIGOV_E_APPROVAL_NOT_FOUND');
    assert.equal((await rejection(bob.get('apr_nope'))).exitCode, 66);
    const tooLong = await rejection(bob.deny(approval.id, 'x'.repeat(2001)));
    assert.equal(tooLong.code, 'AIGOV_E_BAD_FLAG', 'refused before it is sent');
    assert.equal(tooLong.message, '--reason of 2001 characters is not valid: at most 2000 are kept.', 'the reason itself is not repeated');
    await bob.deny(approval.id, 'not today');
    assert.equal(await answer, 403);
    assert.equal((await rejection(bob.approve(approval.id))).code, 'AIGOV_E_APPROVAL_CLOSED');
  });

  it('a token the gateway refuses is renewed at the daemon once, and the call retried', async () => {
    const asked: boolean[] = [];
    const bob = clientFor('bob', { firstToken: 'not-a-valid-token', onToken: (renew) => asked.push(renew) });
    await bob.list();
    assert.deepEqual(asked, [false, true]);
    await bob.list();
    assert.deepEqual(asked, [false, true], 'the renewed token is kept while valid');
    // A token refused again after the renewal: the gateway's error, no loop.
    let calls = 0;
    const alwaysBad = createApprovalsClient({ gatewayUrl: h.url, getToken: async () => (calls++, { token: 'bad', expiresAt: Date.now() + 600_000 }) });
    const error = await rejection(alwaysBad.list());
    assert.equal(error.code, 'AIGOV_E_AUTH_INVALID');
    assert.equal(calls, 2);
  });

  it('something that is not an aigov gateway: GATEWAY_INVALID, not a crash; nobody listening: GATEWAY_UNREACHABLE', async () => {
    const notGateway = createApprovalsClient({ gatewayUrl: `${h.url}/oidc`, getToken: async () => ({ token: tokens['bob']!, expiresAt: Date.now() + 600_000 }) });
    const invalid = await rejection(notGateway.list());
    assert.equal(invalid.code, 'AIGOV_E_GATEWAY_INVALID');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const nobody = createApprovalsClient({ gatewayUrl: `http://127.0.0.1:${port}`, getToken: async () => ({ token: 'x', expiresAt: Date.now() + 600_000 }) });
    const unreachable = await rejection(nobody.list());
    assert.equal(unreachable.code, 'AIGOV_E_GATEWAY_UNREACHABLE');
    assert.match(unreachable.message, /connection refused/);

    // A gateway that takes the request and never answers: the command does not hang.
    const silent = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const hanging = createApprovalsClient({ gatewayUrl: url, requestTimeoutMs: 200, getToken: async () => ({ token: 'x', expiresAt: Date.now() + 600_000 }) });
      const timeout = await rejection(hanging.approve('apr_1'));
      assert.equal(timeout.code, 'AIGOV_E_GATEWAY_UNREACHABLE');
      assert.match(timeout.message, /no answer in time/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('watch: the snapshot, then each change as it happens; reconnect() resumes after the last event (no snapshot, nothing missed); abort ends it', async () => {
    const bob = clientFor('bob');
    const controller = new AbortController();
    const { seen, watch } = record(bob, controller);
    await until(() => (seen.snapshots.length === 1 ? true : undefined), 'the snapshot');
    assert.deepEqual(seen.statuses.map((s) => s.state), ['connecting', 'live']);

    const answer = hold('the customer list #watch');
    const created = await until(() => seen.events.find((a) => a.preview.includes('#watch')), 'the created event');
    assert.equal(created.state, 'pending');
    await bob.approve(created.id, 'ok');
    const decided = await until(() => seen.events.find((a) => a.id === created.id && a.state === 'approved'), 'the decided event');
    assert.equal(decided.votes.length, 1);
    assert.equal(await answer, 200);

    const pendingAgain = hold('the customer list #watch2');
    await until(() => seen.events.find((a) => a.preview.includes('#watch2')), 'the second request');
    watch.reconnect();
    await until(() => (seen.statuses.filter((s) => s.state === 'live').length === 2 ? true : undefined), 'live again');
    assert.deepEqual(seen.statuses.map((s) => s.state), ['connecting', 'live', 'reconnecting', 'live'], 'reconnect() skips the backoff');
    const third = hold('the customer list #watch3');
    await until(() => seen.events.find((a) => a.preview.includes('#watch3')), 'a change after the reconnection');
    assert.equal(seen.snapshots.length, 1, 'resumed after the last event: no second snapshot');
    const id3 = seen.events.find((a) => a.preview.includes('#watch3'))!.id;
    await bob.deny(id3, 'cleanup');
    assert.equal(await third, 403);

    controller.abort();
    await watch.done;
    const id = (await bob.list()).find((a) => a.preview.includes('#watch2'))!.id;
    await bob.deny(id, 'cleanup');
    assert.equal(await pendingAgain, 403);
  });

  it('watch: a silent stream (no keep-alive within the idle timeout) is dropped and resumed', async () => {
    // The gateway sends keep-alives every 100 ms here; 30 ms of silence is "dead".
    const controller = new AbortController();
    const { seen, watch } = record(clientFor('bob', { idleTimeoutMs: 30 }), controller);
    await until(() => (seen.statuses.filter((s) => s.state === 'live').length >= 2 ? true : undefined), 'live again');
    assert.equal(seen.snapshots.length, 1, 'read again from its last event, not from a snapshot');
    const retry = seen.statuses.find((s): s is Extract<WatchStatus, { state: 'retrying' }> => s.state === 'retrying');
    assert.ok(retry);
    assert.match(retry.error.message, /the event stream was silent for 30 ms/);
    controller.abort();
    await watch.done;
  });
});

describe('approvals watch against a server that hangs up', () => {
  it('resumes with the last event id each time; a resumed stream that brings nothing does not reset the backoff', async () => {
    const asked: (string | null)[] = [];
    const server = createHttpServer((req, res) => {
      const last = req.headers['last-event-id'];
      asked.push(typeof last === 'string' ? last : null);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Fresh: a snapshot (id 5), then the stream ends; resumed: it ends at once.
      res.end(last === undefined ? 'id: 5\nevent: snapshot\ndata: {"approvals":[]}\n\n' : undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const delays: number[] = [];
    const client = createApprovalsClient({
      gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      getToken: async () => ({ token: 'x', expiresAt: Date.now() + 600_000 }),
      reconnectDelayMs: (attempt) => (delays.push(attempt), 10),
    });
    const controller = new AbortController();
    const snapshots: number[] = [];
    const watch = client.watch('decide', { onSnapshot: (a) => snapshots.push(a.length), onApproval: () => undefined }, controller.signal);
    try {
      await until(() => (delays.length >= 4 ? true : undefined), 'four reconnections');
      assert.deepEqual(delays.slice(0, 4), [0, 1, 2, 3]);
      assert.deepEqual(asked.slice(0, 4), [null, '5', '5', '5']);
      assert.deepEqual(snapshots, [0]);
    } finally {
      controller.abort();
      await watch.done;
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('approvals watch when the gateway goes away', () => {
  it('reports retrying with the reason and backs off, until aborted', async () => {
    const harness = await startPolicyHarness();
    const bobToken = await harness.tokenFor('bob');
    const delays: number[] = [];
    const client = createApprovalsClient({
      gatewayUrl: harness.url,
      getToken: async () => ({ token: bobToken, expiresAt: Date.now() + 600_000 }),
      reconnectDelayMs: (attempt) => {
        delays.push(attempt);
        return 20;
      },
    });
    const controller = new AbortController();
    const statuses: WatchStatus[] = [];
    const watch = client.watch('decide', { onSnapshot: () => undefined, onApproval: () => undefined, onStatus: (s) => statuses.push(s) }, controller.signal);
    await until(() => (statuses.some((s) => s.state === 'live') ? true : undefined), 'live');
    await harness.close();
    await until(() => (delays.length >= 3 ? true : undefined), 'three attempts');
    assert.deepEqual(delays.slice(0, 3), [0, 1, 2], 'the backoff grows while nothing connects');
    const retrying = statuses.filter((s): s is Extract<WatchStatus, { state: 'retrying' }> => s.state === 'retrying');
    assert.ok(retrying.every((s) => s.error instanceof AigovError));
    assert.ok(retrying.some((s) => /connection refused|closed the event stream/.test(s.error.message)), retrying.map((s) => s.error.message).join('\n'));
    controller.abort();
    await watch.done;
  });
});
