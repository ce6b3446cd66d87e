/**
 * The RecordingStore contract (src/store/recording-store.ts), as tests that every driver must
 * pass: test/store-contract-sqlite.test.ts and test/store-contract-postgres.test.ts call
 * {@link describeStoreContract} with a harness for their database. Only what the gateway relies
 * on is here — durable records before forwarding, write-behind in order, finishes after their
 * events' commit, refusals that fail alone, reads that see one's own writes, session queries, the
 * access log, the audit entries of every write, calls of a killed process settled by the next
 * open and never those of a live one. Driver internals (SQLite's WAL and threads, PostgreSQL's
 * migrations lock) have their own files.
 *
 * The harness reaches the database the way someone holding it would (another connection), to
 * check what is committed, block writes, or install a guard trigger.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ApprovalRecord } from '../../src/core/approvals/approval.ts';
import type {
  CallRequestRecord,
  CallResultRecord,
  PolicyDecisionRecord,
  RecordingStore,
  SessionCursor,
  SessionFilter,
  SessionRecord,
  StreamEventRecord,
} from '../../src/store/recording-store.ts';
import { SessionOwnerConflictError, StoreWriteError } from '../../src/store/recording-store.ts';
import type { UsageGrouping, UsageKey, UsageQuery, UsageReport, UsageTotals } from '../../src/store/recording-store.ts';
import type { Usage } from '../../src/core/events.ts';
import { dayOf, dayRanges, parseTimeZone, type TimeZone } from '../../src/core/usage/calendar-days.ts';
import { tokensByKind } from '../../src/core/usage/token-kinds.ts';
import { seededRandom } from './seeded-random.ts';
import { callRequest, callResult, principal, SECRET_PROMPT as SECRET } from './store-fixtures.ts';

/** The counters every driver keeps (each has more of its own). */
export interface ContractStats {
  readonly queuedRows: number;
  readonly writeErrors: number;
  readonly droppedRows: number;
  readonly orphanRows: number;
  readonly recordFailures: number;
  readonly recordCommits: number;
  readonly settledAtOpen: number;
}

export type ContractStore = RecordingStore & { stats(): ContractStats };

export interface ContractOpenOptions {
  readonly batchIntervalMs?: number;
  readonly maxBatch?: number;
  /** How long a write waits for a lock another connection holds (SQLite busy timeout, PostgreSQL statement timeout). */
  readonly lockWaitMs?: number;
  readonly onWriteError?: (err: Error) => void;
  readonly onSettled?: (count: number) => void;
}

/** One empty database of the driver. */
export interface ContractDatabase {
  /** A new store on this database (several may be open at once, as in one process or several). */
  open(options?: ContractOpenOptions): Promise<ContractStore>;
  /** ESM source that opens a store on this database into `const store` (for a child process to kill). */
  openScript(): string;
  /** Rows of a plain SELECT (no parameters; the same SQL on both drivers), over another connection. */
  peek(sql: string): Promise<Record<string, unknown>[]>;
  /** Inserts approvals where the store reads them from. */
  insertApprovals(approvals: readonly ApprovalRecord[]): Promise<void>;
  /** Makes the database refuse a stream event inserted after its call's result (a trigger). */
  guardEventsAfterFinish(): Promise<void>;
  /** Holds the database's write lock from another connection until the returned function is called. */
  blockWrites(): Promise<() => Promise<void>>;
  /** Checks the audit chain end to end against the rows as they are now (throws on the first problem). */
  checkAuditChain(): Promise<void>;
}

export interface ContractDriver {
  readonly name: string;
  freshDatabase(): Promise<ContractDatabase>;
  /** What a refused duplicate call id says. */
  readonly duplicateMessage: RegExp;
  /** What a write blocked past its lock wait says. */
  readonly blockedMessage: RegExp;
}

function request(callId: string, overrides: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return callRequest(callId, { principal: principal({ groups: ['eng', 'ml'] }), ...overrides });
}

function result(callId: string, overrides: Partial<CallResultRecord> = {}): CallResultRecord {
  return callResult(callId, {
    decisions: [{ stage: 'response', action: 'mask', ruleId: 'pii-email', reason: 'email in answer', mode: 'enforce' }],
    ...overrides,
  });
}

function events(callId: string, from: number, count: number): StreamEventRecord[] {
  return Array.from({ length: count }, (_, i) => ({ offsetMs: (from + i) * 10, raw: `data: {"call":"${callId}","n":${from + i}}\n\n` }));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const ISSUER = 'https://idp.example.test';
const T0 = 1_700_000_000_000;

function sessionCall(callId: string, sessionId: string, subject: string, startedAt: number, extra: Partial<CallRequestRecord> = {}): CallRequestRecord {
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

/**
 * What the audit log covers, per ref: its entries' kinds in seq order, consecutive events
 * entries merged into one span (`request events:0..4 result`).
 */
async function auditCoverage(db: ContractDatabase): Promise<Record<string, string>> {
  const out: Record<string, string[]> = {};
  for (const e of await db.peek('SELECT kind, ref, span FROM audit_log ORDER BY seq')) {
    const list = (out[String(e['ref'])] ??= []);
    const kind = String(e['kind']);
    if (kind !== 'events') {
      list.push(kind);
      continue;
    }
    const [first, last] = String(e['span']).split('..').map(Number) as [number, number];
    const prev = list.at(-1);
    const m = prev === undefined ? null : /^events:(\d+)\.\.(\d+)$/.exec(prev);
    if (m !== null && Number(m[2]) + 1 === first) list[list.length - 1] = `events:${m[1]}..${last}`;
    else list.push(`events:${first}..${last}`);
  }
  return Object.fromEntries(Object.entries(out).map(([ref, kinds]) => [ref, kinds.join(' ')]));
}

async function allPages(store: RecordingStore, filter: SessionFilter, limit: number): Promise<SessionRecord[]> {
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

export function describeStoreContract(driver: ContractDriver): void {
  const stores: ContractStore[] = [];
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
  });
  const fresh = async (options: ContractOpenOptions = {}): Promise<{ db: ContractDatabase; store: ContractStore }> => {
    const db = await driver.freshDatabase();
    const store = await db.open(options);
    stores.push(store);
    return { db, store };
  };
  const reopen = async (db: ContractDatabase, options: ContractOpenOptions = {}): Promise<ContractStore> => {
    const store = await db.open(options);
    stores.push(store);
    return store;
  };

  describe(`recording store contract (${driver.name})`, () => {
    test('round trip: request, stream events, finish, and the query methods', async () => {
      const { db, store } = await fresh();
      await store.recordRequest(request('call-1'));
      store.appendStreamEvents('call-1', events('call-1', 0, 3));
      store.appendStreamEvents('call-1', events('call-1', 3, 2));
      void store.finishCall(result('call-1'));

      await store.recordRequest(request('call-2', { stream: false, startedAt: T0 + 1000, model: null }));
      void store.finishCall(result('call-2', {
        status: 'failed', httpStatus: 502, responseBody: '{"error":{"type":"api_error"}}', usage: null, firstByteMs: null,
        latencyMs: 33.6, errorCode: 'AIGOV_E_UPSTREAM_UNREACHABLE', errorMessage: 'upstream unreachable', decisions: [], endedAt: T0 + 1034,
      }));

      await store.recordRequest(request('call-3', {
        sessionId: 'sess-2', principal: { subject: 'bob', email: null, groups: [], issuer: ISSUER, clientId: null },
        startedAt: T0 + 2000,
      }));

      // reads see queued writes without an explicit flush
      const call1 = await store.getCall('call-1');
      assert.ok(call1);
      assert.equal(call1.sessionId, 'sess-1');
      assert.deepEqual(call1.principal, request('call-1').principal);
      assert.deepEqual(call1.client, request('call-1').client);
      assert.equal(call1.endpoint, 'openai.chat.completions');
      assert.equal(call1.stream, true);
      assert.equal(call1.requestBody, request('call-1').requestBody);
      assert.equal(call1.status, 'completed');
      assert.equal(call1.httpStatus, 200);
      assert.deepEqual(call1.usage, { inputTokens: 12, outputTokens: 7, totalTokens: 19 });
      assert.equal(call1.firstByteMs, 120);
      assert.equal(call1.latencyMs, 850);
      assert.equal(call1.endedAt, T0 + 850);
      assert.deepEqual(call1.decisions.map((d) => `${d.stage}:${d.action}`), ['request:allow', 'response:mask'], 'finish appends decisions');

      const call2 = await store.getCall('call-2');
      assert.ok(call2);
      assert.equal(call2.stream, false);
      assert.equal(call2.model, null);
      assert.equal(call2.status, 'failed');
      assert.equal(call2.responseBody, '{"error":{"type":"api_error"}}');
      assert.equal(call2.usage, null);
      assert.equal(call2.latencyMs, 34);
      assert.equal(call2.errorCode, 'AIGOV_E_UPSTREAM_UNREACHABLE');
      assert.deepEqual(call2.decisions.map((d) => d.stage), ['request']);

      const call3 = await store.getCall('call-3');
      assert.equal(call3?.status, 'pending');
      assert.equal(call3?.endedAt, null);
      assert.equal(call3?.latencyMs, null);
      assert.equal(await store.getCall('nope'), null);

      assert.deepEqual(await store.getStreamEvents('call-1'), events('call-1', 0, 5));
      assert.deepEqual(await store.getStreamEvents('call-2'), []);

      assert.deepEqual((await store.listCalls('sess-1')).map((c) => c.callId), ['call-1', 'call-2']);
      assert.deepEqual(await store.listCalls('no-such-session'), []);

      assert.deepEqual(await store.listSessions(), [
        { sessionId: 'sess-2', subject: 'bob', email: null, startedAt: T0 + 2000, lastCallAt: T0 + 2000, callCount: 1 },
        { sessionId: 'sess-1', subject: 'alice', email: 'alice@example.test', startedAt: T0, lastCallAt: T0 + 1000, callCount: 2 },
      ]);
      assert.deepEqual((await store.listSessions({ subject: 'alice' })).map((s) => s.sessionId), ['sess-1']);
      assert.deepEqual((await store.listSessions({ limit: 1 })).map((s) => s.sessionId), ['sess-2']);
      assert.deepEqual(await store.listSessions({ subject: 'nobody' }), []);
      assert.deepEqual(await store.health(), { ok: true, writeErrors: 0, detail: null });

      // Every write has its audit entry, each call's in the order written (batches may interleave calls).
      assert.deepEqual(await auditCoverage(db), { 'call-1': 'request events:0..4 result', 'call-2': 'request result', 'call-3': 'request' });
      await db.checkAuditChain();
    });

    test('calls that start together are listed in the order they were recorded', async () => {
      const { store } = await fresh();
      const ids = ['zeta', 'alpha', 'Mid', 'beta', '0first'];
      await Promise.all(ids.map((id) => store.recordRequest(request(id, { startedAt: T0 }))));
      assert.deepEqual((await store.listCalls('sess-1')).map((c) => c.callId), ids);
    });

    test('events appended after a finish continue the sequence', async () => {
      const { store } = await fresh();
      await store.recordRequest(request('c'));
      store.appendStreamEvents('c', events('c', 0, 2));
      void store.finishCall(result('c'));
      await store.flush();
      store.appendStreamEvents('c', events('c', 2, 2));
      await store.flush();
      assert.deepEqual(await store.getStreamEvents('c'), events('c', 0, 4));
      assert.equal(store.stats().writeErrors, 0);
    });

    test('close and reopen: everything written is there', async () => {
      const { db, store: first } = await fresh({ batchIntervalMs: 60_000 });
      await first.recordRequest(request('c1'));
      first.appendStreamEvents('c1', events('c1', 0, 4));
      void first.finishCall(result('c1'));
      await first.close();
      await first.close(); // idempotent
      for (let round = 0; round < 2; round++) {
        const again = await reopen(db);
        assert.equal((await again.getCall('c1'))?.status, 'completed');
        assert.deepEqual(await again.getStreamEvents('c1'), events('c1', 0, 4));
        assert.equal((await again.listSessions())[0]?.callCount, 1);
        assert.equal(again.stats().settledAtOpen, 0, 'nothing was left pending');
        await again.close();
      }
    });

    test('recordRequest has committed when it resolves; events are write-behind', async () => {
      const { db, store } = await fresh({ batchIntervalMs: 60_000 });
      await store.recordRequest(request('c1'));
      assert.deepEqual(await db.peek("SELECT id, status, session_id FROM calls WHERE id = 'c1'"), [{ id: 'c1', status: 'pending', session_id: 'sess-1' }]);
      store.appendStreamEvents('c1', events('c1', 0, 3));
      const count = async (): Promise<number> => Number((await db.peek('SELECT count(*) AS n FROM stream_events'))[0]?.['n']);
      assert.equal(await count(), 0, 'queued, not yet written');
      assert.equal(store.stats().queuedRows, 3);
      await store.flush();
      assert.equal(await count(), 3);
      assert.equal(store.stats().queuedRows, 0);
    });

    test('finishCall resolves after the commit holding the result and the call\'s earlier events', async () => {
      const { db, store } = await fresh({ batchIntervalMs: 60_000 });
      await store.recordRequest(request('f'));
      store.appendStreamEvents('f', events('f', 0, 5));
      await store.finishCall(result('f')); // no flush: a waiting finish is written at once
      assert.equal(Number((await db.peek("SELECT count(*) AS n FROM stream_events WHERE call_id = 'f'"))[0]?.['n']), 5);
      assert.equal((await db.peek("SELECT status FROM calls WHERE id = 'f'"))[0]?.['status'], 'completed');
      await assert.rejects(store.finishCall(result('f')), /recording the call result failed: the call already has a result/);
      await assert.rejects(store.finishCall(result('never-recorded')), /recording the call result failed: the call was never recorded/);
    });

    test('many interleaved calls: per-call order, seq without gaps, finish after its events', async () => {
      const errors: string[] = [];
      const { db, store } = await fresh({ batchIntervalMs: 1, maxBatch: 7, onWriteError: (e) => errors.push(e.message) });
      await db.guardEventsAfterFinish(); // an event written after its call's finish would fail its batch
      const random = seededRandom(42);
      const pick = (n: number): number => Math.floor(random() * n);
      const calls = 40;
      const perCall = 30;
      const sent = new Array<number>(calls).fill(0);
      for (let i = 0; i < calls; i++) await store.recordRequest(request(`c${i}`, { sessionId: `s${i % 5}`, startedAt: T0 + i }));
      let open = Array.from({ length: calls }, (_, i) => i);
      while (open.length > 0) {
        const i = open[pick(open.length)]!;
        const n = Math.min(1 + pick(3), perCall - sent[i]!);
        store.appendStreamEvents(`c${i}`, events(`c${i}`, sent[i]!, n));
        sent[i]! += n;
        if (sent[i] === perCall) {
          void store.finishCall(result(`c${i}`));
          open = open.filter((x) => x !== i);
        }
        if (pick(4) === 0) await new Promise((resolve) => setImmediate(resolve)); // let batches run in between
      }
      await waitFor(() => store.stats().queuedRows === 0, 'the write-behind queue to drain');
      await store.flush();

      assert.deepEqual(errors, []);
      assert.equal(store.stats().writeErrors, 0);
      const rows = await db.peek('SELECT call_id, seq, offset_ms, raw FROM stream_events ORDER BY call_id, seq');
      for (let i = 0; i < calls; i++) {
        const mine = rows.filter((r) => r['call_id'] === `c${i}`);
        assert.deepEqual(mine.map((r) => r['seq']), Array.from({ length: perCall }, (_, k) => k), `seq of c${i}`);
        assert.deepEqual(mine.map((r) => ({ offsetMs: r['offset_ms'], raw: r['raw'] })), events(`c${i}`, 0, perCall), `events of c${i}`);
      }
      const statuses = await db.peek("SELECT count(*) AS n FROM calls WHERE status = 'completed'");
      assert.equal(Number(statuses[0]?.['n']), calls);
      assert.equal((await store.listSessions()).reduce((sum, s) => sum + s.callCount, 0), calls);
      await db.checkAuditChain();
    });

    test('a session id reused by another principal is refused, without breaking the store', async () => {
      const { store } = await fresh();
      await store.recordRequest(request('c1'));
      const mallory = { subject: 'mallory', email: 'm@example.test', groups: [], issuer: ISSUER, clientId: null };
      await assert.rejects(store.recordRequest(request('c2', { principal: mallory })), SessionOwnerConflictError);
      // the same subject from another issuer is another principal too
      const otherIdp = { ...request('x').principal, issuer: 'https://other-idp.example.test' };
      await assert.rejects(store.recordRequest(request('c3', { principal: otherIdp })), SessionOwnerConflictError);
      assert.equal(await store.getCall('c2'), null);
      assert.equal(await store.getCall('c3'), null);
      assert.deepEqual((await store.listSessions()).map((s) => [s.sessionId, s.subject, s.callCount]), [['sess-1', 'alice', 1]]);
      assert.equal((await store.health()).ok, true);
      await store.recordRequest(request('c4'));
      assert.equal((await store.listSessions())[0]?.callCount, 2);
      assert.equal(store.stats().recordFailures, 2);
    });

    test('a refused recordRequest rolls back and its error carries no record contents', async () => {
      const { store } = await fresh();
      await store.recordRequest(request('dup'));
      const err = await store.recordRequest(request('dup', { startedAt: T0 + 100_000_000 })).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof StoreWriteError);
      assert.match(err.message, driver.duplicateMessage);
      assert.ok(!err.message.includes(SECRET) && !err.message.includes('alice'));
      const [session] = await store.listSessions();
      assert.equal(session?.callCount, 1, 'the session upsert was rolled back with the failed insert');
      assert.equal(session?.lastCallAt, T0);
    });

    test('group commit: concurrent records share transactions, and a refused one fails alone', async () => {
      const { db, store } = await fresh();
      await store.recordRequest(request('dup'));
      const commitsBefore = store.stats().recordCommits;
      const mallory = { subject: 'mallory', email: null, groups: [], issuer: ISSUER, clientId: null };
      const records = Array.from({ length: 64 }, (_, i) => request(`g${i}`, { sessionId: `grp-${i % 4}`, startedAt: T0 + i }));
      records[10] = request('dup'); // duplicate call id
      records[20] = request('g20', { sessionId: 'grp-0', principal: mallory }); // grp-0 belongs to alice
      records[40] = request('g41', { sessionId: 'grp-0' }); // the same id twice in one group: the second is refused
      const outcomes = await Promise.allSettled(records.map((r) => store.recordRequest(r)));

      const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [i] : []));
      assert.deepEqual(failed, [10, 20, 41]);
      const dup = (outcomes[10] as PromiseRejectedResult).reason as unknown;
      assert.ok(dup instanceof StoreWriteError);
      assert.match(dup.message, driver.duplicateMessage);
      assert.ok((outcomes[20] as PromiseRejectedResult).reason instanceof SessionOwnerConflictError);
      assert.match(String((outcomes[41] as PromiseRejectedResult).reason), driver.duplicateMessage);

      const commits = store.stats().recordCommits - commitsBefore;
      assert.ok(commits >= 1 && commits < 32, `64 records in ${commits} transactions`);
      assert.equal(store.stats().recordFailures, 3);
      // every resolved record is committed: visible to another connection at once
      assert.equal(Number((await db.peek("SELECT count(*) AS n FROM calls WHERE id LIKE 'g%'"))[0]?.['n']), 61);
      const counts = await db.peek("SELECT id, call_count FROM sessions WHERE id LIKE 'grp-%' ORDER BY id");
      assert.deepEqual(counts.map((r) => [r['id'], Number(r['call_count'])]), [['grp-0', 15], ['grp-1', 15], ['grp-2', 15], ['grp-3', 16]]);
      assert.deepEqual(await store.health(), { ok: true, writeErrors: 0, detail: null });
      await db.checkAuditChain();
    });

    test('write-behind rows of a call that was never recorded are skipped, not fatal to the batch', async () => {
      const errors: string[] = [];
      const { store } = await fresh({ batchIntervalMs: 60_000, onWriteError: (e) => errors.push(e.message) });
      await store.recordRequest(request('real'));
      store.appendStreamEvents('ghost', events('ghost', 0, 2));
      store.appendStreamEvents('real', events('real', 0, 2));
      void store.finishCall(result('ghost'));
      void store.finishCall(result('real'));
      await store.flush();
      assert.deepEqual(await store.getStreamEvents('real'), events('real', 0, 2));
      assert.equal((await store.getCall('real'))?.status, 'completed');
      assert.equal(store.stats().orphanRows, 3);
      assert.equal(store.stats().writeErrors, 0);
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /skipped 3 queued rows of calls that were never recorded/);
    });

    test('blocked writes: recordRequest rejects while another connection holds the lock, health follows, then it recovers', async () => {
      const { db, store } = await fresh({ lockWaitMs: 50 });
      await store.recordRequest(request('c1'));
      const release = await db.blockWrites();
      try {
        const err = await store.recordRequest(request('c2')).then(() => null, (e: unknown) => e);
        assert.ok(err instanceof StoreWriteError);
        assert.match(err.message, driver.blockedMessage);
        assert.ok(!err.message.includes(SECRET));
        const health = await store.health();
        assert.equal(health.ok, false);
        assert.match(String(health.detail), /last write failed/);
      } finally {
        await release();
      }
      await store.recordRequest(request('c2'));
      assert.deepEqual(await store.health(), { ok: true, writeErrors: 0, detail: null });
      assert.equal((await store.listSessions())[0]?.callCount, 2);
    });

    test('a write-behind batch that fails once is retried and nothing is lost', async () => {
      const errors: string[] = [];
      const { db, store } = await fresh({ lockWaitMs: 20, batchIntervalMs: 150, maxBatch: 4, onWriteError: (e) => errors.push(e.message) });
      await store.recordRequest(request('c1'));
      const release = await db.blockWrites();
      try {
        store.appendStreamEvents('c1', events('c1', 0, 4)); // reaches maxBatch: written at once
        await waitFor(() => store.stats().writeErrors === 1, 'the first attempt to fail');
      } finally {
        await release();
      }
      assert.equal(store.stats().queuedRows, 4, 'kept for the retry');
      await waitFor(() => store.stats().queuedRows === 0, 'the retry');
      await store.flush();
      assert.equal(store.stats().droppedRows, 0);
      assert.equal(store.stats().writeErrors, 1);
      assert.deepEqual(await store.getStreamEvents('c1'), events('c1', 0, 4));
      assert.deepEqual(await store.health(), { ok: true, writeErrors: 1, detail: null });
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /writing 4 queued rows failed, will retry: /);
      assert.match(errors[0]!, driver.blockedMessage);
    });

    test('a write-behind batch that fails twice is dropped and counted; its call is not finished as whole; later writes work', async () => {
      const errors: string[] = [];
      const { db, store } = await fresh({ lockWaitMs: 10, batchIntervalMs: 5, maxBatch: 3, onWriteError: (e) => errors.push(e.message) });
      await store.recordRequest(request('c1'));
      const release = await db.blockWrites();
      try {
        store.appendStreamEvents('c1', events('c1', 0, 3));
        await waitFor(() => store.stats().droppedRows === 3, 'the batch to be dropped');
      } finally {
        await release();
      }
      assert.ok(store.stats().writeErrors >= 3, 'first try, retry, and the item on its own');
      assert.ok(errors.some((m) => /dropped 3 of 3 queued rows after a retry: /.test(m)), errors.join('\n'));
      assert.ok(errors.every((m) => !m.includes(SECRET) && !m.includes('data: {')), 'no record contents in reports');

      store.appendStreamEvents('c1', events('c1', 3, 1));
      await assert.rejects(store.finishCall(result('c1')), /recording the call result failed: some of its stream events could not be written/);
      await store.recordRequest(request('c2'));
      store.appendStreamEvents('c2', events('c2', 0, 2));
      await store.finishCall(result('c2'));
      assert.deepEqual((await store.getStreamEvents('c1')).map((e) => e.raw), events('c1', 3, 1).map((e) => e.raw), 'the dropped rows are gone, the later ones are there');
      assert.equal((await store.getCall('c1'))?.status, 'pending');
      assert.equal((await store.getCall('c2'))?.status, 'completed');
      assert.equal((await store.health()).ok, true);
      await db.checkAuditChain();
    });

    test('a closed store refuses writes and reports not ok', async () => {
      const { store } = await fresh({ onWriteError: () => {} });
      await store.close();
      await assert.rejects(store.recordRequest(request('c1')), /store is closed/);
      store.appendStreamEvents('c1', events('c1', 0, 1));
      assert.equal(store.stats().orphanRows, 1);
      assert.deepEqual(await store.health(), { ok: false, writeErrors: 0, detail: 'the store is closed' });
      await assert.rejects(store.listSessions(), /closed/);
      await assert.rejects(store.finishCall(result('c1')), /the store is closed/);
    });

    test('request bodies stored as shared chunks read back byte for byte', async () => {
      const { db, store } = await fresh();
      const turn = (n: number): string => JSON.stringify({
        model: 'gpt-4o',
        messages: Array.from({ length: n }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `turn ${i}: ${'lorem ipsum '.repeat(30)} \u00e9\u{1F600}` })),
        tools: [{ type: 'function', function: { name: 'read_file', description: 'x'.repeat(900), parameters: { type: 'object' } } }],
      });
      const bodies = [turn(4), turn(6), turn(8), `  ${turn(9)}\n`];
      for (const [i, body] of bodies.entries()) await store.recordRequest(request(`t${i}`, { requestBody: body, startedAt: T0 + i }));
      const calls = await store.listCalls('sess-1');
      assert.deepEqual(calls.map((c) => c.requestBody), bodies);
      assert.equal((await store.getCall('t2'))?.requestBody, bodies[2]);
      const detail = await store.getSessionDetail('sess-1', { sharedBodies: true });
      assert.ok(detail?.chunks !== undefined && detail.calls.every((c) => c.requestRef !== undefined && c.requestBody === ''));
      const stored = Number((await db.peek('SELECT sum(length(text)) AS n FROM body_chunks'))[0]?.['n']);
      assert.ok(stored < bodies.reduce((sum, b) => sum + b.length, 0) / 2, `the turns share what they repeat (${stored} characters stored)`);
      await db.checkAuditChain();
    });
  });

  describe(`session queries (${driver.name})`, () => {
    test('keyset pages neither skip nor repeat sessions that share a last-call time', async () => {
      const { store } = await fresh();
      for (let i = 0; i < 23; i++) await store.recordRequest(sessionCall(`c${i}`, i % 4 === 0 ? `S${String(i).padStart(2, '0')}` : `s${String(i).padStart(2, '0')}`, 'alice', T0 + (i % 3) * 1000));
      const whole = (await store.querySessions({}, { limit: 100, cursor: null })).sessions;
      assert.equal(whole.length, 23);
      for (const limit of [1, 2, 3, 5, 7, 23, 50]) assert.deepEqual(await allPages(store, {}, limit), whole, `limit ${limit}`);
      const order = whole.map((s) => [s.lastCallAt, s.sessionId] as const);
      assert.deepEqual(order, [...order].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : 1)), 'newest first, then ids in byte order');
    });

    test('every filter (and combinations) equals a brute-force answer over random data', async () => {
      const { store } = await fresh();
      const rand = seededRandom(7);
      const users = ['alice', 'bob', 'kate'];
      const actions = ['allow', 'block', 'mask_request', 'log'];
      const models = ['gpt-4o', 'gpt-4o-mini', null];
      const calls: CallRequestRecord[] = [];
      const records: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        const s = Math.floor(rand() * 60);
        const user = users[s % 3]!;
        const decisions: PolicyDecisionRecord[] = [{ stage: 'request', action: actions[Math.floor(rand() * actions.length)]!, ruleId: 'r1', reason: 'reason with "action":"approved" inside', mode: 'enforce' }];
        const c = sessionCall(`c${i}`, `s${s}`, user, T0 + Math.floor(rand() * 100) * 60_000, {
          provider: rand() < 0.3 ? 'anthropic' : 'openai',
          model: models[Math.floor(rand() * models.length)]!,
          decisions,
        });
        calls.push(c);
        records.push(store.recordRequest(c));
      }
      await Promise.all(records);
      const sessions = (await store.querySessions({}, { limit: 1000, cursor: null })).sessions;
      const expected = (filter: SessionFilter): string[] =>
        sessions
          .filter((s) => {
            const mine = calls.filter((c) => c.sessionId === s.sessionId);
            const asciiLower = (t: string): string => t.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
            return (
              (filter.owner === undefined || (s.subject === filter.owner.subject && s.issuer === filter.owner.issuer)) &&
              (filter.user === undefined || s.subject === filter.user || (s.email !== null && asciiLower(s.email) === asciiLower(filter.user))) &&
              (filter.since === undefined || s.lastCallAt >= filter.since) &&
              (filter.until === undefined || s.lastCallAt <= filter.until) &&
              (filter.provider === undefined || mine.some((c) => c.provider === filter.provider)) &&
              (filter.model === undefined || mine.some((c) => c.model === filter.model)) &&
              (filter.action === undefined || mine.some((c) => c.decisions.some((d) => d.action === filter.action)))
            );
          })
          .map((s) => s.sessionId);
      const mid = T0 + 50 * 60_000;
      const filters: SessionFilter[] = [
        { owner: { subject: 'alice', issuer: ISSUER } },
        { user: 'BOB@example.test' },
        { user: 'kate' },
        { user: '\u212Aate@example.test' }, // KELVIN SIGN: a look-alike of K, not a case of it
        { user: 'KATE@EXAMPLE.TEST' },
        { since: mid },
        { until: mid },
        { since: mid, until: mid + 20 * 60_000 },
        { provider: 'anthropic' },
        { model: 'gpt-4o' },
        { action: 'block' },
        { action: 'approved' },
        { action: '"block"' },
        { owner: { subject: 'bob', issuer: ISSUER }, action: 'mask_request', provider: 'openai' },
        { user: 'alice', since: mid, model: 'gpt-4o-mini' },
        { owner: { subject: 'alice', issuer: 'https://other-idp.example.test' } },
      ];
      for (const filter of filters) assert.deepEqual((await allPages(store, filter, 4)).map((s) => s.sessionId), expected(filter), JSON.stringify(filter));
      assert.ok(expected({ action: 'block' }).length > 0 && expected({ action: 'approved' }).length === 0, 'the data exercises both');
      assert.ok(expected({ user: 'KATE@EXAMPLE.TEST' }).length > 0 && expected({ user: '\u212Aate@example.test' }).length === 0, 'and the look-alike');
    });

    test('approval state (with effective expiry), detail approvals, and the access log with its audit entry', async () => {
      const { db, store } = await fresh();
      const now = Date.now();
      await store.recordRequest(sessionCall('held', 'ses-held', 'alice', now - 5000));
      await store.recordRequest(sessionCall('late', 'ses-late', 'alice', now - 4000));
      await store.recordRequest(sessionCall('reuse', 'ses-reuse', 'alice', now - 3000, {
        decisions: [{ stage: 'approval', action: 'approved', ruleId: 'r1', reason: 'apr_first approved earlier by bob@example.test; used by this retry', mode: 'enforce' }],
      }));
      const approval = (id: string, sessionId: string, callId: string, state: ApprovalRecord['state'], expiresAt: number): ApprovalRecord => ({
        id, state, requester: { sub: 'alice', email: 'alice@example.test', name: null, groups: ['eng'] }, ruleId: 'r1', ruleReason: 'why', approvers: ['approvers'], required: 1,
        provider: 'openai', model: 'gpt-4o-mini', endpoint: 'openai.chat.completions', stream: false, preview: 'user: …', sessionId, callId, contentHash: id,
        createdAt: now - 10_000, expiresAt, decidedAt: null, votes: [], reuse: 'window', retryWindowMs: 60_000, uses: 0,
      });
      await db.insertApprovals([
        approval('apr_first', 'ses-held', 'held', 'approved', now + 60_000),
        approval('apr_pending', 'ses-held', 'held', 'pending', now + 60_000),
        approval('apr_lapsed', 'ses-late', 'late', 'pending', now - 1000), // pending on disk, expired in effect
      ]);
      const ids = async (filter: SessionFilter): Promise<string[]> => (await allPages(store, filter, 10)).map((s) => s.sessionId).sort();
      assert.deepEqual(await ids({ approval: 'approved' }), ['ses-held']);
      assert.deepEqual(await ids({ approval: 'pending' }), ['ses-held']);
      assert.deepEqual(await ids({ approval: 'expired' }), ['ses-late']);
      assert.deepEqual(await ids({ approval: 'denied' }), []);
      assert.deepEqual(await ids({ approval: 'approved', user: 'nobody' }), []);

      const reuse = await store.getSessionDetail('ses-reuse');
      assert.deepEqual(reuse?.approvals.map((a) => a.id), ['apr_first'], 'an approval named by a decision comes along');
      const held = await store.getSessionDetail('ses-held');
      assert.deepEqual(held?.approvals.map((a) => a.id).sort(), ['apr_first', 'apr_pending']);
      assert.equal(held?.session.issuer, ISSUER);
      assert.equal(await store.getSessionDetail('nope'), null);
      assert.deepEqual((await store.listSessionApprovals('ses-late', [])).map((a) => a.id), ['apr_lapsed']);

      await store.recordAccess({ at: now, actor: { subject: 'carol', issuer: ISSUER, email: 'carol@example.test' }, action: 'show', sessionId: 'ses-held', filter: null });
      await store.recordAccess({ at: now + 1, actor: { subject: 'carol', issuer: ISSUER, email: null }, action: 'list', sessionId: null, filter: '{"user":"alice"}' });
      const log = await db.peek('SELECT at, subject, issuer, email, action, session_id, filter FROM access_log ORDER BY id');
      assert.deepEqual(log.map((r) => ({ ...r, at: Number(r['at']) })), [
        { at: now, subject: 'carol', issuer: ISSUER, email: 'carol@example.test', action: 'show', session_id: 'ses-held', filter: null },
        { at: now + 1, subject: 'carol', issuer: ISSUER, email: null, action: 'list', session_id: null, filter: '{"user":"alice"}' },
      ]);
      const accessEntries = await db.peek("SELECT ref FROM audit_log WHERE kind = 'access' ORDER BY seq");
      const accessIds = await db.peek('SELECT id FROM access_log ORDER BY id');
      assert.deepEqual(accessEntries.map((e) => String(e['ref'])), accessIds.map((r) => String(r['id'])), 'each access row has its audit entry');
      await db.checkAuditChain();
    });

    test('sealed raw copies are kept with their call and read back per session', async () => {
      const { db, store } = await fresh();
      const sealed = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 37) % 256)); // every byte value, zeros included
      await store.recordRequest(request('raw-1', { rawCopy: { keyId: 'k1', sealed } }));
      await store.recordRequest(request('raw-2'));
      const copies = await store.getRawCopies('sess-1');
      assert.deepEqual(Object.keys(copies), ['raw-1']);
      assert.equal(copies['raw-1']?.keyId, 'k1');
      assert.deepEqual([...copies['raw-1'].sealed], [...sealed]);
      assert.deepEqual(await store.getRawCopies('other'), {});
      const kinds = (await db.peek("SELECT kind, ref FROM audit_log WHERE ref = 'raw-1' ORDER BY seq")).map((e) => e['kind']);
      assert.deepEqual(kinds, ['request', 'raw']);
      await db.checkAuditChain();
    });
  });

  describe(`usage reports (${driver.name})`, () => {
    interface SeededCall {
      readonly request: CallRequestRecord;
      readonly status: CallResultRecord['status'];
      readonly usage: Usage | null;
    }
    const ZERO: UsageTotals = { calls: 0, inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0, costNanoUsd: 0n, unpricedCalls: 0, beforePricingCalls: 0, noUsageCalls: 0 };
    const add = (t: UsageTotals, c: SeededCall): UsageTotals => {
      const kinds = c.usage === null ? null : tokensByKind(c.request.providerKind, c.usage);
      const cost = c.usage?.costNanoUsd;
      return {
        calls: t.calls + 1,
        inputTokens: t.inputTokens + (kinds?.input ?? 0),
        cacheReadTokens: t.cacheReadTokens + (kinds?.cacheRead ?? 0),
        cacheWriteTokens: t.cacheWriteTokens + (kinds?.cacheWrite ?? 0),
        outputTokens: t.outputTokens + (kinds?.output ?? 0),
        reasoningTokens: t.reasoningTokens + (kinds?.reasoning ?? 0),
        costNanoUsd: t.costNanoUsd + (typeof cost === 'number' ? BigInt(cost) : 0n),
        unpricedCalls: t.unpricedCalls + (c.usage !== null && cost === null ? 1 : 0),
        beforePricingCalls: t.beforePricingCalls + (c.usage !== null && cost === undefined ? 1 : 0),
        noUsageCalls: t.noUsageCalls + (c.usage === null && c.status === 'completed' ? 1 : 0),
      };
    };
    const keyOf = (k: UsageKey): string => JSON.stringify(k);
    /** The report as a brute force over the seeded calls would give it (rows keyed, unordered). */
    const expectedReport = (calls: readonly SeededCall[], q: UsageQuery): { rows: Map<string, UsageTotals>; total: UsageTotals } => {
      const lower = (t: string): string => t.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
      const chosen = calls.filter(({ request: r }) =>
        r.startedAt >= q.since && r.startedAt < q.until &&
        (q.owner === undefined || (r.principal.subject === q.owner.subject && r.principal.issuer === q.owner.issuer)) &&
        (q.user === undefined || r.principal.subject === q.user || (r.principal.email !== null && lower(r.principal.email) === lower(q.user))));
      const rows = new Map<string, UsageTotals>();
      const into = (key: UsageKey, c: SeededCall): void => void rows.set(keyOf(key), add(rows.get(keyOf(key)) ?? ZERO, c));
      const days = q.by === 'day' ? (dayRanges(q.zone ?? parseTimeZone('UTC')!, q.since, q.until, 10_000) ?? []) : [];
      for (const day of days) rows.set(keyOf({ by: 'day', day: day.day }), ZERO);
      const latest = new Map<string, SeededCall>();
      for (const c of chosen) {
        const r = c.request;
        if (q.by === 'user') {
          const id = `${r.principal.issuer} ${r.principal.subject}`;
          const prev = latest.get(id);
          if (prev === undefined || prev.request.startedAt < r.startedAt) latest.set(id, c);
        } else if (q.by === 'group') {
          const groups = [...new Set(r.principal.groups)];
          if (groups.length === 0) into({ by: 'group', group: null }, c);
          for (const group of groups) into({ by: 'group', group }, c);
        } else if (q.by === 'model') into({ by: 'model', provider: r.provider, model: r.model }, c);
        else {
          const day = days.find((d) => r.startedAt >= d.start && r.startedAt < d.end);
          assert.ok(day !== undefined, 'every chosen call is on a day of the range');
          into({ by: 'day', day: day.day }, c);
        }
      }
      if (q.by === 'user') {
        for (const c of chosen) {
          const p = c.request.principal;
          const last = latest.get(`${p.issuer} ${p.subject}`)!.request.principal;
          into({ by: 'user', subject: p.subject, issuer: p.issuer, email: last.email }, c);
        }
      }
      return { rows, total: chosen.reduce(add, ZERO) };
    };
    const assertReport = (report: UsageReport, expected: ReturnType<typeof expectedReport>, q: UsageQuery): void => {
      const what = JSON.stringify(q);
      assert.deepEqual(report.total, expected.total, `total of ${what}`);
      assert.deepEqual(new Map(report.rows.map(({ key, ...totals }) => [keyOf(key), totals])), expected.rows, `rows of ${what}`);
      assert.equal(report.rows.length, expected.rows.size, `each row once: ${what}`);
      if (q.by === 'day') assert.deepEqual(report.rows.map((r) => (r.key as { day: string }).day), [...expected.rows.keys()].map((k) => (JSON.parse(k) as { day: string }).day), 'days in order, every one');
      else {
        for (let i = 1; i < report.rows.length; i++) {
          const [a, b] = [report.rows[i - 1]!, report.rows[i]!];
          assert.ok(a.costNanoUsd > b.costNanoUsd || (a.costNanoUsd === b.costNanoUsd && a.calls >= b.calls), `dearest first: ${what}`);
        }
      }
    };

    test('sums by user, group, model and day equal a brute force over random calls; costs exact past 2^53', async () => {
      const { store } = await fresh();
      const rand = seededRandom(15);
      const pick = <T,>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
      const users = [
        { subject: 'alice', emails: ['alice@example.test', 'Alice@Example.test'] },
        { subject: 'bob', emails: ['BOB@example.test'] },
        { subject: 'kate', emails: [null] },
      ];
      const groupSets = [['eng'], ['eng', 'ml'], [], ['ml', 'ml'], ['finance']];
      const models = [['openai', 'openai', 'gpt-4o'], ['openai', 'openai', 'gpt-4o-mini'], ['openai', 'openai', null], ['anthropic', 'anthropic', 'claude-sonnet-4-5'], ['corp-openai', 'openai', 'gpt-4o']] as const;
      const calls: SeededCall[] = [];
      for (let i = 0; i < 360; i++) {
        const user = pick(users);
        const [provider, kind, model] = pick(models);
        const startedAt = T0 + Math.floor(rand() * 4 * 24 * 60) * 60_000 + i; // four days; no two calls at one ms
        const request = sessionCall(`u${i}`, `us-${user.subject}-${i % 7}`, user.subject, startedAt, {
          principal: principal({ subject: user.subject, email: pick(user.emails), issuer: ISSUER, groups: pick(groupSets) }),
          provider, providerKind: kind, model,
        });
        const roll = rand();
        const status: CallResultRecord['status'] = roll < 0.1 ? 'blocked' : roll < 0.15 ? 'failed' : 'completed';
        let usage: Usage | null = null;
        if (status !== 'blocked' && rand() < 0.9) {
          const input = Math.floor(rand() * 50_000);
          const cacheRead = rand() < 0.5 ? Math.floor(rand() * (kind === 'openai' ? input + 10 : 20_000)) : undefined; // an OpenAI cache read above its input count once in a while
          const output = Math.floor(rand() * 4000);
          const priced = rand();
          usage = {
            inputTokens: input, outputTokens: output, totalTokens: input + output,
            ...(cacheRead !== undefined ? { cacheReadTokens: cacheRead } : {}),
            ...(kind === 'anthropic' && rand() < 0.5 ? { cacheWriteTokens: Math.floor(rand() * 9000) } : {}),
            ...(rand() < 0.3 ? { reasoningTokens: Math.floor(output / 2) } : {}),
            // A few costs near 2^52 nano-dollars: their sum passes 2^53, where doubles lose units.
            ...(priced < 0.7 ? { costNanoUsd: i % 40 === 0 ? 4_503_599_627_370_497 + i : Math.floor(rand() * 90_000_000) } : priced < 0.85 ? { costNanoUsd: null } : {}),
          };
        }
        calls.push({ request, status, usage });
      }
      await Promise.all(calls.map((c) => store.recordRequest(c.request)));
      await Promise.all(calls.map((c) => store.finishCall(callResult(c.request.callId, { status: c.status, usage: c.usage, endedAt: c.request.startedAt + 500 }))));
      const everything = expectedReport(calls, { by: 'model', since: 0, until: T0 * 2 }).total;
      assert.ok(everything.costNanoUsd > 2n ** 53n && everything.unpricedCalls > 0 && everything.beforePricingCalls > 0 && everything.noUsageCalls > 0, 'the data exercises each count');

      const zone = parseTimeZone('America/New_York')!;
      const since = T0 + 7 * 3_600_000;
      const until = T0 + 3 * 24 * 3_600_000 + 5 * 60_000;
      const ranges: Omit<UsageQuery, 'by'>[] = [
        { since: 0, until: T0 * 2 },
        { since, until },
        { since, until, owner: { subject: 'alice', issuer: ISSUER } },
        { since: 0, until: T0 * 2, owner: { subject: 'alice', issuer: 'https://other-idp.example.test' } },
        { since, until, user: 'alice@EXAMPLE.test' },
        { since: 0, until: T0 * 2, user: 'kate' },
        { since: until, until: until + 1 },
        { since: T0 * 2, until: T0 * 2 + 86_400_000 },
      ];
      for (const range of ranges) {
        for (const by of ['user', 'group', 'model', 'day'] as const satisfies readonly UsageGrouping[]) {
          // By day, the widest ranges are cut to the four days of calls and one on each side.
          const daySince = Math.max(range.since, T0 - 86_400_000);
          const dayUntil = Math.max(daySince, Math.min(range.until, T0 + 5 * 86_400_000));
          const q: UsageQuery = by === 'day' ? { ...range, by, zone, since: daySince, until: dayUntil } : { ...range, by };
          assertReport(await store.usageReport(q), expectedReport(calls, q), q);
        }
      }
      const byUser = await store.usageReport({ by: 'user', since: 0, until: T0 * 2 });
      assert.deepEqual(byUser.rows.map((r) => r.key.by === 'user' && r.key.subject).sort(), ['alice', 'bob', 'kate']);
      const byGroup = await store.usageReport({ by: 'group', since: 0, until: T0 * 2 });
      assert.ok(byGroup.rows.reduce((n, r) => n + r.calls, 0) > byGroup.total.calls, 'a call counts in each of its groups, once in the total');
      await store.close(); // its connections back now, not after the file
    });

    test('by day: each day its own row in the caller\'s zone, empty days included, a call at midnight on the later day, clock changes', async () => {
      const { store } = await fresh();
      const record = async (id: string, at: number, costNanoUsd: number): Promise<void> => {
        await store.recordRequest(sessionCall(id, 'ses-days', 'alice', at));
        await store.finishCall(callResult(id, { usage: { inputTokens: 10, outputTokens: 1, costNanoUsd } }));
      };
      const zone = parseTimeZone('+05:30')!;
      const midnight = Date.UTC(2026, 10, 25) - 330 * 60_000; // 2026-11-25 00:00 at +05:30
      for (const [i, t] of [midnight - 1, midnight, midnight + 86_400_000 * 2 + 5].entries()) await record(`d${i}`, t, 1000 + i);
      const days = async (z: TimeZone, since: number, until: number): Promise<[string, number, bigint][]> =>
        (await store.usageReport({ by: 'day', since, until, zone: z })).rows.map((r) => [(r.key as { day: string }).day, r.calls, r.costNanoUsd]);
      assert.deepEqual(await days(zone, midnight - 86_400_000, midnight + 3 * 86_400_000), [
        ['2026-11-24', 1, 1000n],
        ['2026-11-25', 1, 1001n],
        ['2026-11-26', 0, 0n],
        ['2026-11-27', 1, 1002n],
      ]);
      assert.equal(dayOf(zone, midnight), '2026-11-25');
      const report = await store.usageReport({ by: 'day', since: midnight - 86_400_000, until: midnight + 3 * 86_400_000, zone });
      assert.deepEqual(report.total, { ...ZERO, calls: 3, inputTokens: 30, outputTokens: 3, costNanoUsd: 3003n });
      assert.deepEqual(await store.usageReport({ by: 'day', since: 5, until: 5, zone }), { rows: [], total: ZERO });

      // New York falls back on 2026-11-01 (a day of 25 hours): 01:30 comes twice, both on the 1st.
      const ny = parseTimeZone('America/New_York')!;
      const nyTimes = ['2026-10-31T23:30:00-04:00', '2026-11-01T01:30:00-04:00', '2026-11-01T01:30:00-05:00', '2026-11-01T23:30:00-05:00', '2026-11-02T00:30:00-05:00'];
      for (const [i, t] of nyTimes.entries()) await record(`ny${i}`, Date.parse(t), 1);
      assert.deepEqual((await days(ny, Date.parse('2026-10-31T00:00:00-04:00'), Date.parse('2026-11-03T00:00:00-05:00'))).map(([d, n]) => [d, n]), [
        ['2026-10-31', 1],
        ['2026-11-01', 3],
        ['2026-11-02', 1],
      ]);
      // Santiago skips from 23:59:59 to 01:00 into 2026-09-06; Samoa skipped 2011-12-30 whole.
      const scl = parseTimeZone('America/Santiago')!;
      await record('scl0', Date.parse('2026-09-05T23:59:59-04:00'), 1);
      await record('scl1', Date.parse('2026-09-06T01:00:00-03:00'), 1);
      assert.deepEqual((await days(scl, Date.parse('2026-09-05T00:00:00-04:00'), Date.parse('2026-09-07T00:00:00-03:00'))).map(([d, n]) => [d, n]), [['2026-09-05', 1], ['2026-09-06', 1]]);
      const apia = parseTimeZone('Pacific/Apia')!;
      await record('apia0', Date.parse('2011-12-29T23:00:00-10:00'), 1);
      await record('apia1', Date.parse('2011-12-31T01:00:00+14:00'), 1);
      assert.deepEqual((await days(apia, Date.parse('2011-12-29T00:00:00-10:00'), Date.parse('2012-01-01T00:00:00+14:00'))).map(([d, n]) => [d, n]), [['2011-12-29', 1], ['2011-12-31', 1]]);
      await store.close();
    });
  });

  describe(`calls cut by a crash (${driver.name})`, () => {
    const children = new Set<() => void>();
    after(() => {
      for (const kill of children) kill(); // a failed test must not leave its recorder running
    });

    /** A process that records calls a (events at 5 and 40 ms), b (no events) and c (finished), prints "ready" and waits to be killed. */
    function startRecorder(db: ContractDatabase): { ready: Promise<void>; kill: () => Promise<NodeJS.Signals | null> } {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-recorder-'));
      const script = path.join(dir, 'recorder.mjs');
      fs.writeFileSync(script, `
        ${db.openScript()}
        for (const id of ['a', 'b', 'c']) await store.recordRequest({ ...${JSON.stringify(callRequest('x', { startedAt: T0 }))}, callId: id });
        store.appendStreamEvents('a', [{ offsetMs: 5, raw: 'data: one\\n\\n' }, { offsetMs: 40, raw: 'data: two\\n\\n' }]);
        await store.finishCall(${JSON.stringify(callResult('c'))});
        await store.flush();
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);
      `);
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve(signal);
      }));
      const killNow = (): void => void child.kill('SIGKILL');
      children.add(killNow);
      void exited.then(() => children.delete(killNow));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(); });
        child.once('exit', () => reject(new Error(`the recorder ended early: ${stderr}`)));
      });
      return { ready, kill: async () => { child.kill('SIGKILL'); return exited; } };
    }

    test('a killed process: its pending calls are marked aborted at its last event; a live one is left alone', async () => {
      const db = await driver.freshDatabase();
      const recorder = startRecorder(db);
      await recorder.ready;

      // While the recorder lives, another store opening the database settles nothing.
      const settledWhileAlive: number[] = [];
      const beside = await reopen(db, { onSettled: (n) => settledWhileAlive.push(n) });
      assert.equal((await beside.getCall('a'))?.status, 'pending');
      assert.equal((await beside.getCall('b'))?.status, 'pending');
      assert.deepEqual(settledWhileAlive, []);
      await beside.close();

      assert.equal(await recorder.kill(), 'SIGKILL');
      const settled: number[] = [];
      const store = await reopen(db, { onSettled: (n) => settled.push(n) });
      const a = await store.getCall('a');
      assert.equal(a?.status, 'aborted');
      assert.equal(a?.errorCode, 'AIGOV_E_GATEWAY_STOPPED');
      assert.equal(a?.endedAt, T0 + 40, 'ended at the time of its last recorded event');
      assert.equal(a?.latencyMs, 40);
      assert.deepEqual((await store.getStreamEvents('a')).map((e) => e.raw), ['data: one\n\n', 'data: two\n\n'], 'its events are kept');
      const b = await store.getCall('b');
      assert.equal(b?.status, 'aborted');
      assert.equal(b?.endedAt, T0, 'no event: ended at its start');
      assert.equal(b?.errorMessage, 'the gateway stopped before the call ended; the answer may have been cut off at the client');
      const c = await store.getCall('c');
      assert.equal(c?.status, 'completed', 'a finished call is untouched');
      assert.equal(c?.endedAt, callResult('c').endedAt);
      assert.deepEqual(settled, [2], 'the count is reported once');
      assert.equal(store.stats().settledAtOpen, 2);
      // 3 requests, 1 events batch, 1 result (c), 2 settlements — each settlement through the chain
      assert.deepEqual((await db.peek("SELECT ref FROM audit_log WHERE kind = 'result' ORDER BY seq")).map((r) => r['ref']), ['c', 'a', 'b']);
      await store.close();

      // Settled once: opening again changes nothing.
      const again = await reopen(db);
      assert.equal(again.stats().settledAtOpen, 0);
      assert.equal(Number((await db.peek('SELECT count(*) AS n FROM audit_log'))[0]?.['n']), 7);
      await db.checkAuditChain();
    });

    test('two stores at once: opening the second does not settle the first one\'s open calls', async () => {
      const { db, store: first } = await fresh();
      await first.recordRequest(callRequest('open'));
      const second = await reopen(db);
      assert.equal((await second.getCall('open'))?.status, 'pending');
      assert.equal(second.stats().settledAtOpen, 0);
      // The owner finishes it normally afterwards.
      await first.finishCall(callResult('open'));
      assert.equal((await second.getCall('open'))?.status, 'completed');
      await db.checkAuditChain();
    });

    test('a call that can never finish (its store closed first) is settled at the next open; a late finish is refused, not written twice', async () => {
      const { db, store: first } = await fresh();
      await first.recordRequest(callRequest('left'));
      first.appendStreamEvents('left', [{ offsetMs: 12, raw: 'data: x\n\n' }]);
      await first.close();
      await assert.rejects(Promise.resolve(first.finishCall(callResult('left'))), /the store is closed/);

      const second = await reopen(db, { onSettled: () => {} });
      assert.equal((await second.getCall('left'))?.status, 'aborted');
      assert.equal((await second.getCall('left'))?.endedAt, callRequest('left').startedAt + 12);
      assert.equal(second.stats().settledAtOpen, 1);
      await assert.rejects(Promise.resolve(second.finishCall(callResult('left'))), /the call already has a result/);
      assert.equal((await second.getCall('left'))?.status, 'aborted');
      await db.checkAuditChain();
    });
  });
}
