/**
 * The tamper-evident audit trail on a real SQLite file: the writer chains every record, the
 * verifier recomputes it, and edits made directly in SQLite (as an attacker with file access
 * would) are caught and named. Also: signed checkpoints, retention purge with its anchor,
 * restart continuity, and `aigov audit verify` as a process.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { GENESIS_HASH } from '../src/core/audit/chain.ts';
import type { CallRequestRecord, CallResultRecord } from '../src/store/recording-store.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { parseSigningKey, type SigningKey } from '../src/store/audit-keys.ts';
import { verifyAuditDatabase, type AuditVerifyReport } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteStore, type SqliteRecordingStore } from '../src/store/sqlite/sqlite-store.ts';
import { assertAuditBroken, callRequest, callResult, chatBody, query, SECRET_PROMPT as SECRET, tamper, useTempDirs } from './support/store-fixtures.ts';

const DAY = 86_400_000;

const { freshFile } = useTempDirs('aigov-audit-');

function newKey(): { key: SigningKey; privatePem: string; publicPem: string } {
  const pair = generateKeyPairSync('ed25519');
  const privatePem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const key = parseSigningKey(privatePem);
  if ('problem' in key) throw new Error(key.problem);
  return { key, privatePem, publicPem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

function request(callId: string, startedAt: number, overrides: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return callRequest(callId, {
    sessionId: `sess-${callId.split('-')[0]}`,
    client: { userAgent: 'OpenAI/JS 5.1.0', remoteAddress: '127.0.0.1', sdk: null },
    requestBody: chatBody(`${SECRET} ${callId}`),
    startedAt,
    ...overrides,
  });
}

function result(callId: string, endedAt: number, overrides: Partial<CallResultRecord> = {}): CallResultRecord {
  return callResult(callId, {
    usage: { inputTokens: 3, outputTokens: 5, totalTokens: 8 },
    firstByteMs: 12.4,
    latencyMs: 80.6,
    decisions: [{ stage: 'response', action: 'mask', ruleId: 'email', reason: 'email in answer', mode: 'enforce' }],
    endedAt,
    ...overrides,
  });
}

/** Records `calls` streamed calls (3 event batches each, then the result); returns the store. */
async function recordCalls(store: SqliteRecordingStore, prefix: string, calls: number, startedAt: number): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const id = `${prefix}-${i}`;
    await store.recordRequest(request(id, startedAt + i));
  }
  for (let batch = 0; batch < 3; batch++) {
    for (let i = 0; i < calls; i++) {
      store.appendStreamEvents(`${prefix}-${i}`, [
        { offsetMs: batch * 10 + 0.4, raw: `data: {"n":${batch},"text":"${SECRET}"}\n\n` },
        { offsetMs: batch * 10 + 5, raw: `data: {"n":${batch}.5}\n\n` },
      ]);
    }
    await store.flush();
  }
  for (let i = 0; i < calls; i++) void store.finishCall(result(`${prefix}-${i}`, startedAt + i + 100));
  await store.flush();
}

async function populated(options: { calls?: number; startedAt?: number } = {}): Promise<string> {
  const file = freshFile();
  const store = await openSqliteStore({ path: file });
  try {
    await recordCalls(store, 'a', options.calls ?? 4, options.startedAt ?? Date.now());
  } finally {
    await store.close();
  }
  return file;
}

function assertBroken(report: AuditVerifyReport, expected: { problem: string; seq?: number | null; kind?: string; ref?: string }): void {
  assertAuditBroken(report, expected, SECRET);
}

describe('audit chain', () => {
  test('a fresh store with requests, stream batches and results verifies; entries chain from genesis', async () => {
    const file = await populated({ calls: 4 });
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.ok, true);
    // 4 requests + 4×3 event batches + 4 results
    assert.equal(report.entries, 20);
    assert.equal(report.rows, 4 + 4 * 6 + 4);
    const entries = query(file, 'SELECT seq, kind, ref, span, prev_hash, hash FROM audit_log ORDER BY seq');
    assert.equal(entries[0]?.['prev_hash'], GENESIS_HASH);
    assert.deepEqual(entries.slice(0, 5).map((e) => e['kind']), ['request', 'request', 'request', 'request', 'events']);
    assert.equal(entries[4]?.['span'], '0..1');
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i]?.['prev_hash'], entries[i - 1]?.['hash']);
  });

  test('an edited request_body is caught and named (seq, request, call id)', async () => {
    const file = await populated();
    const seq = Number(query(file, "SELECT seq FROM audit_log WHERE kind = 'request' AND ref = 'a-2'")[0]?.['seq']);
    tamper(file, "UPDATE calls SET request_body = replace(request_body, 'sk-', 'xx-') WHERE id = 'a-2'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq, kind: 'request', ref: 'a-2' });
  });

  test('an edited result (status, decisions) is caught at the result entry', async () => {
    const file = await populated();
    const seq = Number(query(file, "SELECT seq FROM audit_log WHERE kind = 'result' AND ref = 'a-1'")[0]?.['seq']);
    tamper(file, "UPDATE calls SET decisions = '[]' WHERE id = 'a-1'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq, kind: 'result', ref: 'a-1' });
  });

  test('a deleted stream event is caught at its batch', async () => {
    const file = await populated();
    const seq = Number(query(file, "SELECT seq FROM audit_log WHERE kind = 'events' AND ref = 'a-3' AND span = '2..3'")[0]?.['seq']);
    tamper(file, "DELETE FROM stream_events WHERE call_id = 'a-3' AND seq = 3");
    const report = verifyAuditDatabase(file);
    assertBroken(report, { problem: 'row_missing', seq, kind: 'events', ref: 'a-3' });
    assert.match(report.problem?.detail ?? '', /stream event 3/);
  });

  test('an edited stream event text is caught', async () => {
    const file = await populated();
    tamper(file, "UPDATE stream_events SET raw = 'data: {}\n\n' WHERE call_id = 'a-0' AND seq = 0");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', kind: 'events', ref: 'a-0' });
  });

  test('a deleted call is caught at its request entry', async () => {
    const file = await populated();
    tamper(file, "DELETE FROM stream_events WHERE call_id = 'a-1'");
    tamper(file, "DELETE FROM calls WHERE id = 'a-1'");
    assertBroken(verifyAuditDatabase(file), { problem: 'row_missing', seq: 2, kind: 'request', ref: 'a-1' });
  });

  test('a call row deleted and inserted again unchanged (rows out of step) still verifies; changed, it does not', async () => {
    const file = await populated({ calls: 4 });
    const copy = (sql: string): void => {
      const db = new DatabaseSync(file, { enableForeignKeyConstraints: false }); // keep its stream events
      try {
        db.exec('BEGIN');
        db.exec("CREATE TEMP TABLE saved AS SELECT * FROM calls WHERE id = 'a-1'");
        db.exec("DELETE FROM calls WHERE id = 'a-1'");
        db.exec(sql);
        db.exec('INSERT INTO calls SELECT * FROM saved');
        db.exec('COMMIT');
      } finally {
        db.close();
      }
    };
    copy('SELECT 1');
    assert.deepEqual(query(file, 'SELECT id FROM calls ORDER BY rowid').map((r) => r['id']), ['a-0', 'a-2', 'a-3', 'a-1']);
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null, report.problem?.detail);
    assert.equal(report.entries, 20);
    copy("UPDATE saved SET model = 'gpt-5'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', seq: 2, kind: 'request', ref: 'a-1' });
  });

  test('a deleted call together with its audit entries is caught as missing entries', async () => {
    const file = await populated();
    tamper(file, "DELETE FROM stream_events WHERE call_id = 'a-1'");
    tamper(file, "DELETE FROM calls WHERE id = 'a-1'");
    tamper(file, "DELETE FROM audit_log WHERE ref = 'a-1'");
    assertBroken(verifyAuditDatabase(file), { problem: 'entry_missing', seq: 2 });
  });

  test('two audit entries swapped (reordered) are caught as broken order', async () => {
    const file = await populated();
    tamper(file, 'UPDATE audit_log SET seq = -1 WHERE seq = 6');
    tamper(file, 'UPDATE audit_log SET seq = 6 WHERE seq = 9');
    tamper(file, 'UPDATE audit_log SET seq = 9 WHERE seq = -1');
    assertBroken(verifyAuditDatabase(file), { problem: 'order_broken', seq: 6 });
  });

  test('an audit entry rewritten to match edited content is caught by the next link', async () => {
    const file = await populated();
    // Change the first hex digit to another one (setting it to 'f' was a no-op one run in 16).
    tamper(file, "UPDATE audit_log SET content_hash = (CASE substr(content_hash, 1, 1) WHEN 'f' THEN 'e' ELSE 'f' END) || substr(content_hash, 2) WHERE seq = 3");
    assertBroken(verifyAuditDatabase(file), { problem: 'entry_altered', seq: 3, kind: 'request', ref: 'a-2' });
  });

  test('a call inserted behind the gateway (no audit entry) is caught', async () => {
    const file = await populated();
    tamper(
      file,
      `INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
       SELECT 'forged', session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, 'completed' FROM calls WHERE id = 'a-0'`,
    );
    assertBroken(verifyAuditDatabase(file), { problem: 'unrecorded_row', kind: 'calls', ref: 'forged' });
  });

  test('a session handed to another owner is caught', async () => {
    const file = await populated();
    tamper(file, "UPDATE sessions SET subject = 'mallory' WHERE id = 'sess-a'");
    assertBroken(verifyAuditDatabase(file), { problem: 'session_owner_changed', ref: 'sess-a' });
  });

  test('the chain survives a restart: the reopened writer continues from the last hash', async () => {
    const file = freshFile();
    let store = await openSqliteStore({ path: file });
    await recordCalls(store, 'a', 2, Date.now());
    await store.close();
    const before = query(file, 'SELECT max(seq) AS seq FROM audit_log')[0]?.['seq'];
    store = await openSqliteStore({ path: file });
    await recordCalls(store, 'b', 2, Date.now());
    await store.close();
    const first = query(file, "SELECT seq, prev_hash FROM audit_log WHERE ref = 'b-0' AND kind = 'request'")[0];
    assert.equal(first?.['seq'], Number(before) + 1);
    assert.equal(first?.['prev_hash'], query(file, 'SELECT hash FROM audit_log WHERE seq = ?', Number(before))[0]?.['hash']);
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.entries, 20);
  });

  test('two stores writing the same file (an old gateway draining while the new one starts) keep one chain', async () => {
    const file = freshFile();
    const first = await openSqliteStore({ path: file });
    const second = await openSqliteStore({ path: file });
    try {
      for (let round = 0; round < 3; round++) {
        await recordCalls(first, `x${round}`, 2, Date.now());
        await recordCalls(second, `y${round}`, 2, Date.now());
      }
      await Promise.all([recordCalls(first, 'xz', 3, Date.now()), recordCalls(second, 'yz', 3, Date.now())]);
    } finally {
      await first.close();
      await second.close();
    }
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.entries, (6 * 2 + 6) * 5);
  });

  test('verify while the gateway writes: one snapshot, no false alarm', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    try {
      await recordCalls(store, 'a', 300, Date.now());
      let stop = false;
      let written = 0;
      // The writer thread commits these while verify runs (synchronously) on this thread.
      const writing = (async () => {
        for (let i = 0; !stop && i < 2000; i++) {
          const pending = store.recordRequest(request(`w-${i}`, Date.now()));
          store.appendStreamEvents(`w-${i}`, [{ offsetMs: 1, raw: 'data: {}\n\n' }]);
          void store.finishCall(result(`w-${i}`, Date.now()));
          if (i % 20 === 19) await pending;
          written++;
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 30));
      const reports: AuditVerifyReport[] = [];
      for (let round = 0; round < 5; round++) {
        reports.push(verifyAuditDatabase(file));
        await new Promise((resolve) => setImmediate(resolve));
      }
      stop = true;
      await writing;
      await store.flush();
      for (const report of reports) assert.equal(report.problem, null, report.problem?.detail);
      assert.ok(written > 0);
      assert.ok(reports.some((r, i) => i > 0 && r.entries !== reports[0]!.entries), 'the writes really ran between the verifications');
    } finally {
      await store.close();
    }
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  test('a refused record (duplicate id) leaves no entry and the chain stays whole', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    try {
      await store.recordRequest(request('a-0', Date.now()));
      const [dup, ok] = await Promise.allSettled([store.recordRequest(request('a-0', Date.now())), store.recordRequest(request('a-1', Date.now()))]);
      assert.equal(dup.status, 'rejected');
      assert.equal(ok.status, 'fulfilled');
      await store.flush();
    } finally {
      await store.close();
    }
    assert.deepEqual(query(file, 'SELECT seq, ref FROM audit_log ORDER BY seq').map((r) => [r['seq'], r['ref']]), [[1, 'a-0'], [2, 'a-1']]);
    assert.equal(verifyAuditDatabase(file).problem, null);
  });
});

describe('a database from before the audit trail (schema 2)', () => {
  test('its old rows are reported as not covered, rows added among them are caught, retention deletes them', async () => {
    const { MIGRATIONS, migrateDatabase } = await import('../src/store/sqlite/migrations.ts');
    const file = freshFile();
    const old = Date.now() - 40 * DAY;
    const db = new DatabaseSync(file);
    migrateDatabase(db, MIGRATIONS.slice(0, 2));
    db.prepare("INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count) VALUES ('sess-legacy', 'alice', 'https://idp.example.test', NULL, ?, ?, 2)").run(old, old);
    for (const id of ['legacy-0', 'legacy-1']) {
      db.prepare(`INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
        VALUES (?, 'sess-legacy', 'alice', NULL, '[]', 'https://idp.example.test', 'openai', 'openai', 'openai.chat.completions', 'POST', '/v1/chat/completions', 1, '{}', '[]', ?, 'completed')`).run(id, old);
      db.prepare("INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES (?, 0, 1, 'data: {}\n\n')").run(id);
    }
    db.prepare("INSERT INTO access_log (at, subject, issuer, email, action, session_id, filter) VALUES (?, 'audrey', 'https://idp.example.test', NULL, 'show', 'sess-legacy', NULL)").run(old);
    db.close();

    const store = await openSqliteStore({ path: file }); // migrates to the audit schema
    await recordCalls(store, 'a', 2, Date.now());
    await store.close();
    assert.deepEqual({ ...query(file, 'SELECT * FROM audit_legacy')[0] }, {
      calls_rowid: 2, calls_count: 2, events_rowid: 2, events_count: 2, access_id: 1, access_count: 1, raw_rowid: 0, raw_count: 0, approvals_rowid: 0, approvals_count: 0,
    });
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.ok(report.warnings.some((w) => /2 calls, 2 stream events and 1 access rows were recorded before/.test(w)), report.warnings.join('; '));

    const forged = freshFile();
    fs.copyFileSync(file, forged);
    tamper(
      forged,
      `INSERT INTO calls (rowid, id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
       SELECT 0, 'forged', session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status FROM calls WHERE id = 'legacy-0'`,
    );
    assertBroken(verifyAuditDatabase(forged), { problem: 'unrecorded_row', kind: 'calls' });

    const maintenance = new AuditMaintenance(file, { key: null });
    const purged = await maintenance.purge(Date.now() - DAY);
    await maintenance.close();
    assert.equal(purged.calls, 2);
    assert.equal(purged.events, 2);
    assert.equal(purged.accessRows, 1);
    assert.equal(purged.sessions, 1);
    assert.equal(purged.entries, 0, 'the chained calls are newer than the cut');
    const after = verifyAuditDatabase(file);
    assert.equal(after.problem, null);
    assert.ok(!after.warnings.some((w) => /recorded before/.test(w)));
  });
});

describe('access log and --since', () => {
  test('auditor reads (access_log rows) are chained; an edited or deleted access row is caught', async () => {
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    try {
      await recordCalls(store, 'a', 1, Date.now());
      await store.recordAccess({ at: Date.now(), actor: { subject: 'audrey', issuer: 'https://idp.example.test', email: null }, action: 'show', sessionId: 'sess-a', filter: null });
      await store.recordAccess({ at: Date.now(), actor: { subject: 'audrey', issuer: 'https://idp.example.test', email: null }, action: 'list', sessionId: null, filter: '{"user":"alice"}' });
    } finally {
      await store.close();
    }
    const entries = query(file, "SELECT seq, ref FROM audit_log WHERE kind = 'access' ORDER BY seq");
    assert.equal(entries.length, 2);
    assert.equal(verifyAuditDatabase(file).problem, null);

    const edited = freshFile();
    fs.copyFileSync(file, edited);
    tamper(edited, "UPDATE access_log SET subject = 'someone-else' WHERE action = 'show'");
    assertBroken(verifyAuditDatabase(edited), { problem: 'content_changed', seq: Number(entries[0]?.['seq']), kind: 'access', ref: String(entries[0]?.['ref']) });

    tamper(file, "DELETE FROM access_log WHERE action = 'list'");
    assertBroken(verifyAuditDatabase(file), { problem: 'row_missing', seq: Number(entries[1]?.['seq']), kind: 'access' });
  });

  test('--since checks only the entries written since then', async () => {
    const file = await populated({ calls: 2 });
    tamper(file, "UPDATE calls SET request_body = '{}' WHERE id = 'a-0'");
    assertBroken(verifyAuditDatabase(file), { problem: 'content_changed', ref: 'a-0' });
    const later = verifyAuditDatabase(file, { since: Date.now() + 60_000 });
    assert.equal(later.problem, null);
    assert.equal(later.entries, 0);
    assertBroken(verifyAuditDatabase(file, { since: 0 }), { problem: 'content_changed', ref: 'a-0' });
  });
});

describe('signed checkpoints', () => {
  test('checkpoints verify with the key; a changed signature, a wrong key and a cut tail are caught', async () => {
    const { key, publicPem } = newKey();
    const file = await populated({ calls: 3 });
    const maintenance = new AuditMaintenance(file, { key });
    const cp = await maintenance.checkpoint('periodic');
    assert.equal(cp?.seq, 15);
    assert.equal(await maintenance.checkpoint('periodic'), null, 'nothing new: no second checkpoint');
    await maintenance.close();

    const report = verifyAuditDatabase(file, { publicKey: key.publicKey });
    assert.equal(report.problem, null);
    assert.deepEqual(report.checkpoints, { total: 1, signed: 1, verified: 1 });
    assert.equal(report.unsignedTail, 0);
    assert.equal(report.keyId, key.keyId);
    assert.ok(publicPem.includes('PUBLIC KEY'));

    const other = newKey();
    assertBroken(verifyAuditDatabase(file, { publicKey: other.key.publicKey }), { problem: 'signature_invalid', seq: 15, kind: 'checkpoint' });

    // A chain cut after the checkpoint (last entries deleted) is caught through it.
    const cut = freshFile();
    fs.copyFileSync(file, cut);
    tamper(cut, 'DELETE FROM audit_log WHERE seq >= 14');
    assertBroken(verifyAuditDatabase(cut, { publicKey: key.publicKey }), { problem: 'entry_missing', seq: 14 });

    tamper(file, "UPDATE audit_checkpoints SET signature = (CASE substr(signature, 1, 1) WHEN 'A' THEN 'B' ELSE 'A' END) || substr(signature, 2)");
    assertBroken(verifyAuditDatabase(file, { publicKey: key.publicKey }), { problem: 'signature_invalid', seq: 15, kind: 'checkpoint' });
  });

  test('a chain recomputed after an edit still fails against the signed checkpoint', async () => {
    const { key } = newKey();
    const file = await populated({ calls: 2 });
    const maintenance = new AuditMaintenance(file, { key });
    await maintenance.checkpoint('periodic');
    await maintenance.close();
    // The attacker edits a request and rewrites the whole chain consistently (they know the format).
    tamper(file, "UPDATE calls SET request_body = '{}' WHERE id = 'a-0'");
    const { contentHash, linkHash } = await import('../src/store/audit-hash.ts');
    const { feedRequestContent } = await import('../src/core/audit/chain.ts');
    const db = new DatabaseSync(file);
    const row = db.prepare("SELECT * FROM calls WHERE id = 'a-0'").get()!;
    const entries = db.prepare('SELECT * FROM audit_log ORDER BY seq').all();
    let prev = GENESIS_HASH;
    for (const e of entries) {
      const content = e['seq'] === 1 ? contentHash((sink) => feedRequestContent(sink, row as never)) : String(e['content_hash']);
      const hash = linkHash({ seq: Number(e['seq']), kind: String(e['kind']), ref: String(e['ref']), span: e['span'] === null ? null : String(e['span']), at: Number(e['at']), contentHash: content, prevHash: prev });
      db.prepare('UPDATE audit_log SET content_hash = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(content, prev, hash, Number(e['seq']));
      prev = hash;
    }
    db.close();
    assertBroken(verifyAuditDatabase(file, { publicKey: key.publicKey }), { problem: 'checkpoint_mismatch', seq: 10 });
  });
});

describe('retention purge', () => {
  test('old calls, events, sessions and their entries go; an anchor keeps what remains verifiable', async () => {
    const { key } = newKey();
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    const now = Date.now();
    await recordCalls(store, 'old', 3, now - 40 * DAY); // seq 1..15
    // An old call that ends only after newer ones started: it straddles the cut and stays whole.
    await store.recordRequest(request('open-0', now - 40 * DAY)); // 16
    await recordCalls(store, 'new', 2, now - 1 * DAY); // 17..26
    void store.finishCall(result('open-0', now)); // 27
    await store.close();

    // Chunks of 4 entries: every chunk boundary cuts calls in flight (requests 1-3, then their
    // event batches, then their results): they keep their rows until their last entry goes.
    const maintenance = new AuditMaintenance(file, { key, chunkEntries: 4 });
    const purged = await maintenance.purge(now - 30 * DAY);
    await maintenance.close();
    assert.equal(purged.calls, 3);
    assert.equal(purged.events, 3 * 6);
    assert.equal(purged.sessions, 1);
    assert.equal(purged.entries, 16);
    assert.equal(purged.anchorSeq, 16);
    // open-0 stays: its result (entry 27) comes after newer calls; its request entry (16) is gone.
    assert.deepEqual(query(file, 'SELECT id FROM calls ORDER BY rowid').map((r) => r['id']), ['open-0', 'new-0', 'new-1']);
    assert.equal(query(file, "SELECT count(*) AS n FROM sessions WHERE id = 'sess-old'")[0]?.['n'], 0);
    assert.deepEqual(query(file, "SELECT seq, kind FROM audit_checkpoints").map((r) => [r['seq'], r['kind']]), [[16, 'anchor']]);

    const report = verifyAuditDatabase(file, { publicKey: key.publicKey });
    assert.equal(report.problem, null);
    assert.equal(report.firstSeq, 17);
    assert.equal(report.checkpoints.verified, 1);

    // A call row forged among the cut ones (no entry names it) is still caught.
    const forged = freshFile();
    fs.copyFileSync(file, forged);
    tamper(
      forged,
      `INSERT INTO calls (rowid, id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
       SELECT 0, 'forged', session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, 'completed' FROM calls WHERE id = 'new-0'`,
    );
    assertBroken(verifyAuditDatabase(forged, { publicKey: key.publicKey }), { problem: 'unrecorded_row', kind: 'calls', ref: 'forged' });

    // The remaining chain continues after a restart, and still verifies.
    const reopened = await openSqliteStore({ path: file });
    await recordCalls(reopened, 'later', 1, Date.now());
    await reopened.close();
    assert.equal(verifyAuditDatabase(file, { publicKey: key.publicKey }).problem, null);

    // An unsigned anchor (written without a key) in front of a signed trail is reported, not trusted.
    const unsigned = freshFile();
    fs.copyFileSync(file, unsigned);
    tamper(unsigned, "UPDATE audit_checkpoints SET key_id = NULL, signature = NULL WHERE kind = 'anchor'");
    const weak = verifyAuditDatabase(unsigned, { publicKey: key.publicKey });
    assert.equal(weak.problem, null);
    assert.equal(weak.unsignedAnchor, true);
    assert.ok(weak.warnings.some((w) => /anchor checkpoint is not signed/.test(w)), weak.warnings.join('; '));

    // Deleting the anchor (or faking a purge by deleting old entries) is caught.
    tamper(file, "DELETE FROM audit_checkpoints WHERE kind = 'anchor'");
    assertBroken(verifyAuditDatabase(file, { publicKey: key.publicKey }), { problem: 'anchor_missing', seq: 17 });
  });

  test('purging everything leaves an anchor the next entries chain to, also across a restart', async () => {
    const file = freshFile();
    let store = await openSqliteStore({ path: file });
    await recordCalls(store, 'old', 2, Date.now() - 10 * DAY);
    await store.close();
    const maintenance = new AuditMaintenance(file, { key: null });
    const purged = await maintenance.purge(Date.now() - DAY);
    await maintenance.close();
    assert.equal(purged.anchorSeq, 10);
    assert.equal(query(file, 'SELECT count(*) AS n FROM audit_log')[0]?.['n'], 0);
    assert.equal(verifyAuditDatabase(file).problem, null);
    store = await openSqliteStore({ path: file });
    await recordCalls(store, 'new', 1, Date.now());
    await store.close();
    const report = verifyAuditDatabase(file);
    assert.equal(report.problem, null);
    assert.equal(report.firstSeq, 11);
  });
});

const BUILT = fs.existsSync(path.resolve('dist/commands/audit/verify.js'));
describe('aigov audit verify (built CLI, as a process)', { skip: BUILT ? false : 'dist/ is not built (npm run build)' }, () => {
  const bin = path.resolve('bin/run.js');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AIGOV_')));
  const run = (args: string[]) => spawnSync(process.execPath, [bin, 'audit', 'verify', ...args], { encoding: 'utf8', env, timeout: 60_000 });

  test('exit 0 with a summary; --json report; 65 and the named record after an edit; 64 without a database', async () => {
    const { key, publicPem } = newKey();
    const file = await populated({ calls: 2 });
    const maintenance = new AuditMaintenance(file, { key });
    await maintenance.checkpoint('shutdown');
    await maintenance.close();
    const pub = path.join(path.dirname(file), 'audit.pub');
    fs.writeFileSync(pub, publicPem);

    const ok = run(['--db', file, '--public-key', pub]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /audit trail intact — 10 entries/);
    assert.match(ok.stdout, /1\/1 signatures valid/);

    const json = run(['--db', file, '--public-key', pub, '--json']);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; entries: number; error: unknown };
    assert.equal(parsed.ok, true);
    assert.equal(parsed.entries, 10);
    assert.equal(parsed.error, null);

    tamper(file, "UPDATE calls SET request_body = '{}' WHERE id = 'a-1'");
    const broken = run(['--db', file, '--public-key', pub, '--json']);
    assert.equal(broken.status, 65, broken.stderr);
    const report = JSON.parse(broken.stdout) as { ok: boolean; problem: { problem: string; seq: number; kind: string; ref: string }; error: { code: string } };
    assert.equal(report.ok, false);
    assert.deepEqual({ ...report.problem, detail: undefined }, { problem: 'content_changed', seq: 2, kind: 'request', ref: 'a-1', detail: undefined });
    assert.equal(report.error.code, 'AIGOV_E_AUDIT_CHAIN_BROKEN');
    assert.match(broken.stderr, /AIGOV_E_AUDIT_CHAIN_BROKEN/);
    assert.ok(!broken.stdout.includes(SECRET) && !broken.stderr.includes(SECRET));

    const human = run(['--db', file]);
    assert.equal(human.status, 65);
    assert.match(human.stdout, /BROKEN at seq 2, request, id a-1 \(content_changed\)/);

    const none = run([]);
    assert.equal(none.status, 64, none.stderr);
    assert.match(none.stderr, /AIGOV_E_AUDIT_NO_DATABASE/);
  });

  test('--config: the database and the key come from the gateway configuration; --require-signed fails on an unsigned tail', async () => {
    const { privatePem } = newKey();
    const file = await populated({ calls: 1 });
    const dir = path.dirname(file);
    fs.writeFileSync(path.join(dir, 'signing.key'), privatePem, { mode: 0o600 });
    const config = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(
      config,
      [
        'identity: { issuer: "https://idp.example.test", audience: "aigov", cli_client_id: "aigov-cli" }',
        'providers: [{ name: openai, kind: openai, base_url: "https://api.openai.com/v1" }]',
        'storage: { driver: sqlite, path: aigov.db }',
        'audit: { signing_key: { file: signing.key } }',
      ].join('\n'),
    );
    const plain = run(['--config', config]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /not covered by a signed checkpoint yet/);
    const strict = run(['--config', config, '--require-signed']);
    assert.equal(strict.status, 75, strict.stderr);
    assert.match(strict.stderr, /AIGOV_E_AUDIT_UNSIGNED/);
  });
});

describe('the gateway writes the trail', () => {
  test('aigov server --dev: generated key, calls chained, a signed checkpoint at shutdown, verify passes', async () => {
    const { startDevGateway } = await import('../src/gateway/dev/dev-gateway.ts');
    const { deviceLogin } = await import('./support/dev-login.ts');
    const { parsePublicKey } = await import('../src/store/audit-keys.ts');
    const stateDir = path.join(path.dirname(freshFile()), 'state');
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir, logLevel: 'silent' });
    try {
      const token = (await deviceLogin(gateway.idp, 'aigov-cli', 'alice', { resource: gateway.url })).accessToken;
      for (const stream of [true, false]) {
        const res = await fetch(`${gateway.url}/openai/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'aigov-dev', stream, messages: [{ role: 'user', content: 'hello' }] }),
        });
        assert.equal(res.status, 200);
        await res.text();
      }
    } finally {
      await gateway.close();
    }
    const keyFile = path.join(stateDir, 'audit-signing.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const publicKey = parsePublicKey(fs.readFileSync(keyFile, 'utf8'));
    assert.ok(!('problem' in publicKey));
    const file = path.join(stateDir, 'aigov.db');
    const report = verifyAuditDatabase(file, { publicKey });
    assert.equal(report.problem, null);
    assert.ok(report.entries >= 5, `two requests, two results and the stream's events (${report.entries} entries)`);
    assert.equal(report.unsignedTail, 0, 'the shutdown checkpoint signs everything recorded');
    assert.deepEqual(query(file, 'SELECT kind FROM audit_checkpoints').map((r) => r['kind']), ['shutdown']);
  });
});

describe('audit schedule (gateway wiring)', () => {
  test('without a key: one warning, no periodic checkpoints; retention purges at startup and anchors the cut', async () => {
    const { startAuditSchedule } = await import('../src/store/sqlite/audit-schedule.ts');
    const file = freshFile();
    const store = await openSqliteStore({ path: file });
    await recordCalls(store, 'old', 2, Date.now() - 40 * DAY);
    await recordCalls(store, 'new', 1, Date.now());
    await store.close();
    const lines: { level: string; message: string }[] = [];
    const log = {
      info: (_: object, message: string) => lines.push({ level: 'info', message }),
      warn: (_: object, message: string) => lines.push({ level: 'warn', message }),
      error: (_: object, message: string) => lines.push({ level: 'error', message }),
    };
    const schedule = startAuditSchedule({ file, signingKey: null, checkpointIntervalMs: 1000, retentionDays: 30, log });
    await schedule.close(); // waits for the startup purge
    assert.deepEqual(lines.filter((l) => l.level === 'warn').length, 1);
    assert.match(lines.find((l) => l.level === 'warn')?.message ?? '', /audit\.signing_key is not set/);
    assert.ok(lines.some((l) => l.level === 'info' && /retention purge/.test(l.message)));
    assert.ok(!lines.some((l) => l.level === 'error'), JSON.stringify(lines));
    assert.deepEqual(query(file, 'SELECT id FROM calls').map((r) => r['id']), ['new-0']);
    assert.deepEqual(query(file, 'SELECT kind, key_id FROM audit_checkpoints').map((r) => [r['kind'], r['key_id']]), [['anchor', null]]);
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  test('with a key: the checkpoint of a running gateway signs the head; a bad key is refused at start', async () => {
    const { startAuditSchedule } = await import('../src/store/sqlite/audit-schedule.ts');
    const { key, privatePem } = newKey();
    const file = await populated({ calls: 1 });
    const log = { info: () => {}, warn: () => assert.fail('no warning with a key'), error: () => assert.fail('no error') };
    const schedule = startAuditSchedule({ file, signingKey: privatePem, checkpointIntervalMs: 60_000, retentionDays: null, log });
    const cp = await schedule.checkpoint('periodic');
    assert.equal(cp?.seq, 5);
    assert.equal(cp?.keyId, key.keyId);
    await schedule.close(); // nothing new since: no second checkpoint
    assert.equal(query(file, 'SELECT count(*) AS n FROM audit_checkpoints')[0]?.['n'], 1);
    assert.equal(verifyAuditDatabase(file, { publicKey: key.publicKey }).unsignedTail, 0);
    assert.throws(() => startAuditSchedule({ file, signingKey: 'not a key', checkpointIntervalMs: 1000, retentionDays: null, log }), /audit\.signing_key: expected an Ed25519 private key/);
  });
});
