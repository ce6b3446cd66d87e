/**
 * The approvals service on real SQLite: two gateway processes sharing one database (two services
 * on two connections here) — a decision taken on one reaches a request held on the other.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { ApprovalService } from '../src/gateway/approvals/approval-service.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-apr-svc-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const logger = pino({ level: 'silent' });
const alice = { subject: 'alice', email: 'alice@example.com', groups: ['developers'] };
const bob = { subject: 'bob', email: 'bob@example.com', groups: ['approvers'] };
const spec = { approvers: ['approvers'], required: 1, timeout: 60_000, retry_window: 60_000, reuse: 'once' as const };

function hold(service: ApprovalService, body: string) {
  return service.hold({ requester: alice, ruleId: 'r', ruleReason: 'because', spec, provider: 'openai', model: 'm', endpoint: 'openai.chat.completions', stream: false, preview: 'user: hi', sessionId: 's', callId: `c-${body}`, body });
}

test('a decision taken by another process on the same database reaches the held request', async () => {
  const file = join(dir, 'shared.db');
  const storeA = openSqliteApprovalStore(file);
  const storeB = openSqliteApprovalStore(file);
  const a = await ApprovalService.open({ store: storeA, logger, pollMs: 25 });
  const b = await ApprovalService.open({ store: storeB, logger, pollMs: 25 });
  try {
    const held = await hold(a, 'one');
    assert.equal(held.kind, 'wait');
    const waiting = a.wait(held.approval, new AbortController().signal);
    const decided = await b.decide(held.approval.id, bob, 'approve', 'ok');
    assert.ok(decided.ok);
    const started = Date.now();
    const outcome = await waiting;
    assert.equal(outcome.kind, 'approved');
    assert.ok(Date.now() - started < 1000, 'seen on the next poll');
    assert.equal((await storeA.get(held.approval.id))?.uses, 1, 'the held request took its one use');
  } finally {
    a.close();
    b.close();
    await storeA.close();
    await storeB.close();
  }
});

test('closing the service answers every held request "interrupted", even with the store gone', async () => {
  const store = openSqliteApprovalStore(join(dir, 'closing.db'));
  const service = await ApprovalService.open({ store, logger });
  const held = await hold(service, 'two');
  const waiting = service.wait(held.approval, new AbortController().signal);
  await store.close();
  service.close();
  const outcome = await waiting;
  assert.equal(outcome.kind, 'interrupted');
  assert.equal(outcome.approval.id, held.approval.id);
});

test('an identical request from another session joins the pending approval: its session follows it, and the approvers are those of the policy now', async () => {
  const store = openSqliteApprovalStore(join(dir, 'joined.db'));
  const service = await ApprovalService.open({ store, logger });
  const changes: string[] = [];
  service.subscribe(({ type, approval }) => changes.push(`${type}:${approval.approvers.join('+')}:${(approval.joinedSessions ?? []).join('+')}`));
  const request = (sessionId: string, approvers: string[], required = 1) =>
    service.hold({ requester: alice, ruleId: 'r', ruleReason: 'because', spec: { ...spec, approvers, required }, provider: 'openai', model: 'm', endpoint: 'openai.chat.completions', stream: false, preview: 'user: hi', sessionId, callId: `c-${sessionId}`, body: 'same body' });
  try {
    const first = await request('run-1', ['approvers']);
    assert.equal(first.kind, 'wait');
    // The retry after Ctrl-C is a new run, and the policy now names security, two of them.
    const retry = await request('run-2', ['security'], 2);
    assert.ok(retry.kind === 'wait' && !retry.created);
    assert.equal(retry.approval.id, first.approval.id);
    assert.deepEqual(retry.approval.joinedSessions, ['run-2']);
    assert.deepEqual([retry.approval.approvers, retry.approval.required], [['security'], 2]);
    assert.deepEqual((await store.get(first.approval.id))?.joinedSessions, ['run-2'], 'kept in the store: a watcher that connects later sees it');
    // The same session again, with nothing changed: nothing to write or announce.
    await request('run-2', ['security'], 2);
    await request('run-1', ['security'], 2);
    assert.deepEqual(changes, ['created:approvers:', 'joined:security:run-2']);
    // bob (approvers only) can no longer decide it; a security member can.
    assert.equal((await service.decide(first.approval.id, bob, 'approve', 'ok')).ok, false);
    assert.equal((await service.decide(first.approval.id, { subject: 'erin', email: null, groups: ['security'] }, 'approve', 'ok')).ok, true);
  } finally {
    service.close();
    await store.close();
  }
});
