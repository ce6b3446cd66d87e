/**
 * The audit chain over approvals and sealed raw request copies, on real SQLite files: the
 * approval store (main-thread connection) and the writer thread extend one chain; edits made
 * directly in SQLite to an approval or a raw copy (edited, deleted, moved, inserted) are caught
 * and named; the retention purge keeps what remains verifiable; a gateway run with a held and
 * approved request and raw copies verifies clean.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ApprovalRecord } from '../src/core/approvals/approval.ts';
import type { CallRequestRecord } from '../src/store/recording-store.ts';
import { RawCopySealer } from '../src/store/raw-copy-sealer.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { verifyAuditDatabase, type AuditVerifyReport } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';
import { insertApproval, updateApproval } from './support/approval-writes.ts';
import { openSqliteStore, type SqliteRecordingStore } from '../src/store/sqlite/sqlite-store.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { assertAuditBroken, callRequest, callResult, chatBody, query, tamper, useTempDirs } from './support/store-fixtures.ts';

const SECRET = 'sk-RAW-SECRET-7731';
const DAY = 86_400_000;
const sealer = new RawCopySealer(randomBytes(32));

const { freshFile } = useTempDirs('aigov-audit-apr-');

function request(callId: string, startedAt: number, raw: boolean): CallRequestRecord {
  const body = chatBody(`${SECRET} ${callId}`);
  return callRequest(callId, {
    sessionId: `sess-${callId.split('-')[0]}`,
    client: { userAgent: 'OpenAI/JS 5.1.0', remoteAddress: '127.0.0.1', sdk: null },
    stream: false,
    requestBody: body.replace(SECRET, '[SECRET]'),
    decisions: [],
    startedAt,
    rawCopy: raw ? sealer.seal(callId, body) : null,
  });
}

async function recordCall(store: SqliteRecordingStore, callId: string, startedAt: number, raw = true): Promise<void> {
  await store.recordRequest(request(callId, startedAt, raw));
}

function finish(store: SqliteRecordingStore, callId: string, endedAt: number): void {
  void store.finishCall(callResult(callId, { responseBody: '{"ok":true}', usage: null, firstByteMs: 3, latencyMs: 9, endedAt }));
}

function approval(id: string, createdAt: number, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id, state: 'pending', requester: { sub: 'alice', email: 'alice@example.test', name: null, groups: ['eng'] }, ruleId: 'r1', ruleReason: 'why',
    approvers: ['approvers'], required: 1, provider: 'openai', model: 'gpt-4o-mini', endpoint: 'openai.chat.completions', stream: false,
    preview: 'user: [redacted]', sessionId: 'sess-a', callId: `call-${id}`, contentHash: `h-${id}`, createdAt, expiresAt: createdAt + 60_000,
    decidedAt: null, votes: [], reuse: 'once', retryWindowMs: 60_000, uses: 0, ...overrides,
  };
}

/** pending → one vote → approved (3 entries). */
async function approveIn(store: ReturnType<typeof openSqliteApprovalStore>, a: ApprovalRecord, at: number): Promise<ApprovalRecord> {
  await insertApproval(store, a);
  const vote = { by: { sub: 'bob', email: 'bob@example.test', name: null }, decision: 'approve' as const, reason: 'fine', at };
  const approved = { ...a, state: 'approved' as const, votes: [vote], decidedAt: at };
  await updateApproval(store, approved);
  const used = { ...approved, uses: 1 };
  await updateApproval(store, used);
  return used;
}

function copyOf(file: string): string {
  const copy = freshFile();
  fs.copyFileSync(file, copy);
  return copy;
}

function seqOf(file: string, kind: string, ref: string): number {
  return Number(query(file, 'SELECT max(seq) AS seq FROM audit_log WHERE kind = ? AND ref = ?', kind, ref)[0]?.['seq']);
}

function assertBroken(report: AuditVerifyReport, expected: { problem: string; seq?: number | null; kind?: string; ref?: string | null }): void {
  assertAuditBroken(report, expected, SECRET);
}

describe('raw copies in the chain', () => {
  /** r-0, r-1 with copies, r-2 without; all finished. */
  async function populated(): Promise<string> {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    try {
      const now = Date.now();
      await recordCall(store, 'r-0', now);
      await recordCall(store, 'r-1', now + 1);
      await recordCall(store, 'r-2', now + 2, false);
      for (const id of ['r-0', 'r-1', 'r-2']) finish(store, id, now + 10);
      await store.flush();
    } finally {
      await store.close();
    }
    return file;
  }

  test('each copy has an entry right after its request entry (over the sealed bytes, never plaintext); the store verifies', async () => {
    const file = await populated();
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.entries, 3 + 2 + 3);
    assert.deepEqual(
      query(file, 'SELECT kind, ref FROM audit_log ORDER BY seq LIMIT 5').map((r) => `${String(r['kind'])}:${String(r['ref'])}`),
      ['request:r-0', 'raw:r-0', 'request:r-1', 'raw:r-1', 'request:r-2'],
    );
    const bytes = fs.readFileSync(file);
    assert.ok(!bytes.includes(SECRET));
  });

  test('an edited sealed copy or key id is caught at its raw entry', async () => {
    const file = await populated();
    const seq = seqOf(file, 'raw', 'r-1');
    const bytes = copyOf(file);
    tamper(bytes, "UPDATE raw_copies SET sealed = zeroblob(length(sealed)) WHERE call_id = 'r-1'");
    assertBroken(verifyAuditDatabase(bytes), { problem: 'content_changed', seq, kind: 'raw', ref: 'r-1' });
    tamper(file, "UPDATE raw_copies SET key_id = 'feedfacefeedface' WHERE call_id = 'r-1'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq, kind: 'raw', ref: 'r-1' });
  });

  test('a deleted copy is caught (GCM alone would not show it)', async () => {
    const file = await populated();
    tamper(file, "DELETE FROM raw_copies WHERE call_id = 'r-0'");
    const report = verifyAuditDatabase(file);
    assertBroken(report, { problem: 'row_missing', seq: seqOf(file, 'raw', 'r-0'), kind: 'raw', ref: 'r-0' });
    assert.match(report.problem?.detail ?? '', /raw copy of call r-0 was deleted or moved/);
  });

  test('a copy moved to another call is caught: to a call without one, or swapped with another copy', async () => {
    const file = await populated();
    const moved = copyOf(file);
    tamper(moved, "UPDATE raw_copies SET call_id = 'r-2' WHERE call_id = 'r-1'");
    assertBroken(verifyAuditDatabase(moved), { problem: 'row_missing', kind: 'raw', ref: 'r-1' });
    const db = new DatabaseSync(file, { enableForeignKeyConstraints: false }); // a swap goes through a free id
    for (const [from, to] of [['r-0', 'tmp'], ['r-1', 'r-0'], ['tmp', 'r-1']] as const) db.prepare('UPDATE raw_copies SET call_id = ? WHERE call_id = ?').run(to, from);
    db.close();
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq: seqOf(file, 'raw', 'r-0'), kind: 'raw', ref: 'r-0' });
  });

  test('a copy inserted behind the gateway is caught', async () => {
    const file = await populated();
    const forged = sealer.seal('r-2', 'forged body');
    const db = new DatabaseSync(file);
    db.prepare('INSERT INTO raw_copies (call_id, key_id, sealed) VALUES (?, ?, ?)').run('r-2', forged.keyId, forged.sealed);
    db.close();
    assertBroken(verifyAuditDatabase(file), { problem: 'unrecorded_row', kind: 'raw_copies', ref: 'r-2' });
  });

  test('retention: copies go with their calls; a call the cut goes through keeps its copy; what remains verifies', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const now = Date.now();
    for (let i = 0; i < 3; i++) await recordCall(store, `old-${i}`, now - 40 * DAY + i); // entries 1..6
    for (let i = 0; i < 3; i++) finish(store, `old-${i}`, now - 40 * DAY + 50); // 7..9
    await store.flush();
    await recordCall(store, 'open-0', now - 40 * DAY + 60); // 10, 11: straddles the cut
    await recordCall(store, 'new-0', now - DAY); // 12, 13
    finish(store, 'new-0', now);
    finish(store, 'open-0', now);
    await store.close();

    for (const chunkEntries of [3, 500]) { // 3: chunks end between a request entry and its raw entry
      const copy = copyOf(file);
      const maintenance = new AuditMaintenance(copy, { key: null, chunkEntries });
      const purged = await maintenance.purge(now - 30 * DAY);
      await maintenance.close();
      assert.equal(purged.calls, 3);
      assert.equal(purged.anchorSeq, 11);
      assert.deepEqual(query(copy, 'SELECT call_id FROM raw_copies ORDER BY rowid').map((r) => r['call_id']), ['open-0', 'new-0']);
      const report = verifyAuditDatabase(copy);
      assert.equal(report.problem, null, `chunks of ${chunkEntries}`);
      assert.equal(report.firstSeq, 12);
      // The remaining copies are still covered one by one.
      tamper(copy, "DELETE FROM raw_copies WHERE call_id = 'new-0'");
      assertBroken(verifyAuditDatabase(copy), { problem: 'row_missing', kind: 'raw', ref: 'new-0' });
    }
  });
});

describe('approvals in the chain', () => {
  async function populated(): Promise<{ file: string; ids: string[] }> {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const approvals = openSqliteApprovalStore(file);
    const now = Date.now();
    try {
      // The writer thread and the approval store append at the same time: one chain.
      const recorded = Promise.all([0, 1, 2, 3].map((i) => recordCall(store, `c-${i}`, now + i, false)));
      await approveIn(approvals, approval('apr_a', now), now + 5);
      await insertApproval(approvals, approval('apr_b', now));
      await recorded;
      await updateApproval(approvals, { ...approval('apr_b', now), state: 'denied', decidedAt: now + 7 });
      for (let i = 0; i < 4; i++) finish(store, `c-${i}`, now + 20);
      await store.flush();
    } finally {
      await approvals.close();
      await store.close();
    }
    return { file, ids: ['apr_a', 'apr_b'] };
  }

  test('each insert and update appends an entry in the same chain as the writer thread; verifies', async () => {
    const { file } = await populated();
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.entries, 4 + 4 + 3 + 2);
    assert.deepEqual(query(file, "SELECT ref, count(*) AS n FROM audit_log WHERE kind = 'approval' GROUP BY ref ORDER BY ref").map((r) => [r['ref'], r['n']]), [['apr_a', 3], ['apr_b', 2]]);
    const seqs = query(file, 'SELECT seq FROM audit_log ORDER BY seq').map((r) => Number(r['seq']));
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
  });

  test('the change feed reads the same from close behind the head and from far behind (past 20,000 entries of calls)', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const approvals = openSqliteApprovalStore(file);
    const now = Date.now();
    try {
      const early = await insertApproval(approvals, approval('apr_early', now));
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < 21_000) await recordCall(store, `bulk-${next++}`, now, false);
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      await store.flush();
      const late = await updateApproval(approvals, { ...approval('apr_early', now), state: 'denied', decidedAt: now + 1 });
      const other = await insertApproval(approvals, approval('apr_late', now));
      const seqsOf = async (after: number): Promise<[number, string, string][]> => (await approvals.changesAfter(after, 10)).map((c) => [c.seq, c.approval.id, c.approval.state]);
      // From before the first: far behind (the approvals' index); each approval once, at its latest change.
      assert.deepEqual(await seqsOf(0), [[late, 'apr_early', 'denied'], [other, 'apr_late', 'pending']]);
      assert.deepEqual(await seqsOf(early), [[late, 'apr_early', 'denied'], [other, 'apr_late', 'pending']]);
      // From just before the last two: close behind (audit_log's key).
      assert.deepEqual(await seqsOf(late - 1), [[late, 'apr_early', 'denied'], [other, 'apr_late', 'pending']]);
      assert.deepEqual(await seqsOf(late), [[other, 'apr_late', 'pending']]);
      assert.deepEqual(await seqsOf(other), []);
      assert.deepEqual((await approvals.changesAfter(0, 1)).map((c) => c.approval.id), ['apr_early'], 'the limit keeps the oldest');
    } finally {
      await approvals.close();
      await store.close();
    }
  });

  test('an edited approval record or state is caught and named at its latest entry', async () => {
    const { file } = await populated();
    const seq = seqOf(file, 'approval', 'apr_a');
    const state = copyOf(file);
    tamper(state, "UPDATE approvals SET state = 'denied' WHERE id = 'apr_a'");
    assertBroken(verifyAuditDatabase(state), { problem: 'content_changed', seq, kind: 'approval', ref: 'apr_a' });
    tamper(file, "UPDATE approvals SET record = json_set(record, '$.votes[0].by.sub', 'mallory') WHERE id = 'apr_a'");
    const report = verifyAuditDatabase(file);
    assertBroken(report, { problem: 'content_changed', seq, kind: 'approval', ref: 'apr_a' });
    assert.match(report.problem?.detail ?? '', /approval apr_a was changed/);
  });

  test('a deleted approval row is caught; one inserted behind the gateway too', async () => {
    const { file } = await populated();
    const inserted = copyOf(file);
    tamper(file, "DELETE FROM approvals WHERE id = 'apr_b'");
    assertBroken(verifyAuditDatabase(file), { problem: 'row_missing', seq: seqOf(file, 'approval', 'apr_b'), kind: 'approval', ref: 'apr_b' });
    tamper(inserted, "INSERT INTO approvals (id, state, requester_sub, content_hash, created_at, expires_at, record) SELECT 'apr_forged', 'approved', requester_sub, 'x', created_at, expires_at, record FROM approvals WHERE id = 'apr_a'");
    assertBroken(verifyAuditDatabase(inserted), { problem: 'unrecorded_row', kind: 'approvals', ref: 'apr_forged' });
  });

  test('a failed write leaves no entry (same transaction)', async () => {
    const { file } = await populated();
    const approvals = openSqliteApprovalStore(file);
    try {
      // A duplicate id reaches the INSERT (the key names no approval) and fails there.
      await assert.rejects(approvals.mutate({ requesterSub: 'nobody', contentHash: 'none' }, () => ({ result: null, write: approval('apr_a', Date.now()) })), /UNIQUE/);
      // The caller's decision fails after the head was read.
      await assert.rejects(approvals.mutate({ id: 'apr_b' }, () => {
        throw new Error('no decision');
      }), /no decision/);
    } finally {
      await approvals.close();
    }
    assert.equal(query(file, "SELECT count(*) AS n FROM audit_log WHERE kind = 'approval'")[0]?.['n'], 5);
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  test('retention purges approvals done before the cut with their entries; later ones stay covered', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const approvals = openSqliteApprovalStore(file);
    const now = Date.now();
    const old = now - 40 * DAY;
    await recordCall(store, 'old-0', old); // 1, 2
    await approveIn(approvals, approval('apr_old', old), old + 10); // 3..5
    await insertApproval(approvals, approval('apr_lapsed', old)); // 6: never decided, expired long ago
    finish(store, 'old-0', old + 20); // 7
    await store.flush();
    await insertApproval(approvals, approval('apr_new', now)); // 8
    await recordCall(store, 'new-0', now); // 9, 10
    finish(store, 'new-0', now); // 11
    await store.flush();
    await updateApproval(approvals, { ...approval('apr_new', now), state: 'denied', decidedAt: now }); // 12
    await approvals.close();
    await store.close();

    const maintenance = new AuditMaintenance(file, { key: null });
    const purged = await maintenance.purge(now - 30 * DAY);
    await maintenance.close();
    assert.equal(purged.anchorSeq, 7);
    assert.equal(purged.approvals, 2);
    assert.equal(purged.calls, 1);
    assert.deepEqual(query(file, 'SELECT id FROM approvals').map((r) => r['id']), ['apr_new']);
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.firstSeq, 8);
    tamper(file, "UPDATE approvals SET state = 'approved' WHERE id = 'apr_new'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq: 12, kind: 'approval', ref: 'apr_new' });
  });

  test('an approval still open at the cut stops the purge there (its row and entries stay)', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const approvals = openSqliteApprovalStore(file);
    const now = Date.now();
    await recordCall(store, 'old-0', now - 40 * DAY, false); // 1
    finish(store, 'old-0', now - 40 * DAY); // 2
    await store.flush();
    await insertApproval(approvals, approval('apr_window', now - 40 * DAY, { expiresAt: now + 60_000 })); // 3: still open
    await recordCall(store, 'old-1', now - 39 * DAY, false); // 4
    finish(store, 'old-1', now - 39 * DAY); // 5
    await approvals.close();
    await store.close();
    const maintenance = new AuditMaintenance(file, { key: null });
    const purged = await maintenance.purge(now - 30 * DAY);
    await maintenance.close();
    assert.equal(purged.anchorSeq, 2);
    assert.equal(purged.approvals, 0);
    assert.deepEqual(query(file, 'SELECT id FROM calls').map((r) => r['id']), ['old-1']);
    assert.equal(verifyAuditDatabase(file).problem, null);
  });
});

describe('a database from before approvals and raw copies were chained (schema 5)', () => {
  test('their old rows are reported as not covered; an old approval is covered from its next change; rows added among them are caught', async () => {
    const { MIGRATIONS, migrateDatabase } = await import('../src/store/sqlite/migrations.ts');
    const file = freshFile();
    const db = new DatabaseSync(file);
    migrateDatabase(db, MIGRATIONS.filter((m) => m.version <= 2));
    const now = Date.now();
    db.prepare("INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count) VALUES ('sess-x', 'alice', 'https://idp.example.test', NULL, ?, ?, 1)").run(now, now);
    db.prepare(`INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
      VALUES ('x-0', 'sess-x', 'alice', NULL, '[]', 'https://idp.example.test', 'openai', 'openai', 'openai.chat.completions', 'POST', '/v1/chat/completions', 0, '{}', '[]', ?, 'completed')`).run(now);
    const a = approval('apr_old', now);
    db.prepare('INSERT INTO approvals (id, state, requester_sub, content_hash, created_at, expires_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)').run(a.id, a.state, a.requester.sub, a.contentHash, a.createdAt, a.expiresAt, JSON.stringify(a));
    migrateDatabase(db, MIGRATIONS.filter((m) => m.version <= 5)); // the call is from before the chain; then raw copies came
    const sealed = sealer.seal('x-0', 'old body');
    db.prepare('INSERT INTO raw_copies (call_id, key_id, sealed) VALUES (?, ?, ?)').run('x-0', sealed.keyId, sealed.sealed);
    db.close();

    const approvals = openSqliteApprovalStore(file); // migrates to schema 6
    assert.deepEqual(
      { ...query(file, 'SELECT raw_rowid, raw_count, approvals_rowid, approvals_count FROM audit_legacy')[0] },
      { raw_rowid: 1, raw_count: 1, approvals_rowid: 1, approvals_count: 1 },
    );
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.ok(report.warnings.some((w) => /1 raw copies and 1 approvals were stored before/.test(w)), report.warnings.join('; '));
    await updateApproval(approvals, { ...a, state: 'denied', decidedAt: now });
    await approvals.close();
    assert.equal(verifyAuditDatabase(file).problem, null);
    const edited = copyOf(file);
    tamper(edited, "UPDATE approvals SET state = 'approved' WHERE id = 'apr_old'");
    assertBroken(verifyAuditDatabase(edited), { problem: 'content_changed', kind: 'approval', ref: 'apr_old' });
    tamper(file, "INSERT INTO approvals (rowid, id, state, requester_sub, content_hash, created_at, expires_at, record) SELECT 0, 'apr_hidden', state, requester_sub, 'y', created_at, expires_at, record FROM approvals WHERE id = 'apr_old'");
    assertBroken(verifyAuditDatabase(file), { problem: 'unrecorded_row', kind: 'approvals' });
  });
});

describe('a gateway run with approvals and raw copies', () => {
  test('a held request approved by bob, plain calls, a restart: every approval change and raw copy is chained; verify passes', async () => {
    const policyFile = path.join(freshFile(), '..', 'policy.yaml');
    fs.writeFileSync(policyFile, `
version: 1
rules:
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['production password'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 20s, retry_window: 1m, reuse: window }
`);
    const h = await startHarness({ policyFile, rawCopyKey: randomBytes(32).toString('base64'), approvalKeepAliveMs: 50 });
    try {
      h.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
      const bob = await h.tokenFor('bob');
      const chat = (content: string) => fetchAsUser(h.url, h.token, '/openai/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] } });
      const approveHeld = async (): Promise<string> => {
        for (let i = 0; i < 400; i++) {
          const list = (await (await fetchAsUser(h.url, bob, '/aigov/v1/approvals?scope=decide')).json()) as { approvals: { id: string; state: string }[] };
          const pending = list.approvals.find((a) => a.state === 'pending');
          if (pending) {
            const res = await fetchAsUser(h.url, bob, `/aigov/v1/approvals/${pending.id}/approve`, { method: 'POST', body: { reason: 'fine' } });
            assert.equal(res.status, 200);
            return pending.id;
          }
          await new Promise((r) => setTimeout(r, 25));
        }
        throw new Error('no pending approval');
      };
      assert.equal((await chat('hello')).status, 200);
      const held = chat('what is the production password policy?');
      const first = await approveHeld();
      assert.equal((await held).status, 200);
      assert.equal((await chat('what is the production password policy?')).status, 200, 'the retry reuses the approval');
      await h.restart(); // a new approval store and writer continue the same chain
      const again = chat('rotate the production password now');
      const second = await approveHeld();
      assert.equal((await again).status, 200);
      await h.gateway.store.flush();

      const file = path.join(h.dir, 'aigov.db');
      const report = verifyAuditDatabase(file);
      assert.equal(report.problem, null);
      const kinds = new Map(query(file, 'SELECT kind, count(*) AS n FROM audit_log GROUP BY kind').map((r) => [String(r['kind']), Number(r['n'])]));
      assert.equal(kinds.get('raw'), 4, 'one per call');
      assert.equal(query(file, 'SELECT count(*) AS n FROM raw_copies')[0]?.['n'], 4);
      for (const id of [first, second]) {
        const n = Number(query(file, "SELECT count(*) AS n FROM audit_log WHERE kind = 'approval' AND ref = ?", id)[0]?.['n']);
        assert.ok(n >= 2, `approval ${id}: created and approved (${n} entries)`);
      }
      // Editing the decided approval (as someone with the file) is caught.
      const edited = copyOf(file);
      tamper(edited, "UPDATE approvals SET record = json_set(record, '$.votes', json('[]')) WHERE id = ?", first);
      assertBroken(verifyAuditDatabase(edited), { problem: 'content_changed', kind: 'approval', ref: first });
    } finally {
      await h.close();
    }
  });
});

const BUILT = fs.existsSync(path.resolve('dist/commands/audit/verify.js'));
describe('aigov audit verify names the approval or raw copy (built CLI)', { skip: BUILT ? false : 'dist/ is not built (npm run build)' }, () => {
  test('exit 65 naming an edited approval and a deleted raw copy', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const approvals = openSqliteApprovalStore(file);
    await recordCall(store, 'cli-0', Date.now());
    await approveIn(approvals, approval('apr_cli', Date.now()), Date.now());
    await approvals.close();
    await store.close();
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AIGOV_')));
    const run = (db: string) => spawnSync(process.execPath, [path.resolve('bin/run.js'), 'audit', 'verify', '--db', db, '--json'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(run(file).status, 0);
    const raw = copyOf(file);
    tamper(file, "UPDATE approvals SET record = json_set(record, '$.required', 0) WHERE id = 'apr_cli'");
    const edited = run(file);
    assert.equal(edited.status, 65, edited.stderr);
    assert.match(edited.stdout, /"kind":\s*"approval"/);
    assert.match(edited.stdout, /apr_cli/);
    tamper(raw, "DELETE FROM raw_copies WHERE call_id = 'cli-0'");
    const deleted = run(raw);
    assert.equal(deleted.status, 65, deleted.stderr);
    assert.match(deleted.stdout, /"kind":\s*"raw"/);
    assert.match(deleted.stdout, /cli-0/);
  });
});
