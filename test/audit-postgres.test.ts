/**
 * The audit trail on PostgreSQL, on the real server (a database of its own per case):
 * `aigov audit verify` over a chain that two replicas append to at once (and while they do),
 * tampering caught with exactly the SQLite verifier's findings (the same recording written to
 * both, the same SQL run on both), signed checkpoints taken by one replica at a time (two
 * replicas hammering the checkpoint job never interleave), and the retention purge with the
 * SQLite purge's results.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isAigovError } from '../src/core/errors.ts';
import { parseSigningKey, type SigningKey } from '../src/store/audit-keys.ts';
import type { AuditVerifyOptions, AuditVerifyReport } from '../src/store/audit-verify-core.ts';
import { MAINTENANCE_LOCK, PgAuditMaintenance } from '../src/store/postgres/pg-audit-maintenance.ts';
import { verifyPostgresAudit } from '../src/store/postgres/pg-audit-verify.ts';
import type { PgSettings } from '../src/store/postgres/pg-connection.ts';
import { openPostgresStore, type PostgresRecordingStore } from '../src/store/postgres/postgres-store.ts';
import type { CallRequestRecord, CallResultRecord, RecordingStore } from '../src/store/recording-store.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { connect, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { assertAuditBroken, callRequest, callResult, chatBody, SECRET_PROMPT as SECRET, tamper, useTempDirs } from './support/store-fixtures.ts';

const DAY = 86_400_000;
const freshPg = usePgDatabases();
const { freshFile } = useTempDirs('aigov-audit-pg-');

const stores: RecordingStore[] = [];
const maintainers: (PgAuditMaintenance | AuditMaintenance)[] = [];
after(async () => {
  for (const m of maintainers) await m.close().catch(() => {});
  for (const s of stores) await s.close().catch(() => {});
});

async function openPg(url: string): Promise<PostgresRecordingStore> {
  const store = await openPostgresStore({ url, poolSize: 2 });
  stores.push(store);
  return store;
}

function settings(url: string): PgSettings {
  return { url, statementTimeoutMs: 5000, connectTimeoutMs: 5000, lockTimeoutMs: 0 };
}

function pgMaintenance(url: string, key: SigningKey | null, options: { chunkEntries?: number; periodicSpacingMs?: number } = {}): PgAuditMaintenance {
  const m = new PgAuditMaintenance({ settings: settings(url), key, ...options });
  maintainers.push(m);
  return m;
}

function verifyPg(url: string, options: AuditVerifyOptions = {}): Promise<AuditVerifyReport> {
  return verifyPostgresAudit(settings(url), options);
}

/** Pages of a few entries: a result met pages after its request, chunks and events read across pages. */
const TINY_PAGES = { entries: 3, events: 3 };

function newKey(): SigningKey {
  const key = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  if ('problem' in key) throw new Error(key.problem);
  return key;
}

/** A body above the chunking threshold: stored as chunks, shared with the session's other calls. */
const LONG = 'the shared system prompt of this agent, long enough to be stored as chunks. '.repeat(40);

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

/** `calls` streamed calls (3 event batches each, then the result), in a fixed order: the same entries on either driver. */
async function recordCalls(store: RecordingStore, prefix: string, calls: number, startedAt: number): Promise<void> {
  for (let i = 0; i < calls; i++) await store.recordRequest(request(`${prefix}-${i}`, startedAt + i));
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

/** The recording the comparison cases tamper with: streamed calls, chunked bodies, a raw copy, an auditor's read. */
async function recordScenario(store: RecordingStore): Promise<void> {
  const now = Date.now();
  await recordCalls(store, 'a', 4, now);
  await store.recordRequest(request('b-0', now, { requestBody: chatBody(`${LONG} first ${SECRET}`), rawCopy: { keyId: 'k1', sealed: new Uint8Array([1, 2, 3, 4, 5]) } }));
  await store.recordRequest(request('b-1', now, { requestBody: chatBody(`${LONG} second`) }));
  await store.finishCall(result('b-0', now + 5));
  await store.finishCall(result('b-1', now + 6));
  await store.recordAccess({ at: now, actor: { subject: 'auditor', issuer: 'https://idp.example.com', email: null }, action: 'show', sessionId: 'sess-a', filter: null });
  await store.flush();
}

/** The same recording in an SQLite file and a PostgreSQL database. */
async function twins(): Promise<{ file: string; url: string }> {
  const file = freshFile();
  const sqlite = await openSqliteStore({ path: file });
  await recordScenario(sqlite);
  await sqlite.close();
  const { url } = await freshPg();
  const pg = await openPg(url);
  await recordScenario(pg);
  await pg.close();
  return { file, url };
}

async function tamperPg(url: string, sql: string): Promise<void> {
  const db = await connect(url);
  try {
    const res = await db.query(sql);
    assert.ok((res.rowCount ?? 0) > 0, `the tampering statement changed nothing: ${sql}`);
  } finally {
    await db.end();
  }
}

describe('aigov audit verify on PostgreSQL', () => {
  test('the same recording verifies on both drivers with the same counts; the chain is the one pg-audit-check recomputes', async () => {
    const { file, url } = await twins();
    const lite = verifyAuditDatabase(file);
    const pg = await verifyPg(url);
    assert.equal(pg.problem, null, pg.problem?.detail);
    assert.equal(lite.problem, null, lite.problem?.detail);
    const counts = (r: AuditVerifyReport): unknown => ({ entries: r.entries, rows: r.rows, firstSeq: r.firstSeq, lastSeq: r.lastSeq, checkpoints: r.checkpoints, warnings: r.warnings });
    assert.deepEqual(counts(pg), counts(lite));
    assert.deepEqual(counts(await verifyPostgresAudit(settings(url), {}, TINY_PAGES)), counts(lite));
    assert.equal((await checkPgAuditChain(url)).entries, pg.entries);
    assert.ok(pg.rows > pg.entries, 'chunks and events are recomputed too');
  });

  // Each case runs the same SQL on both databases: PostgreSQL's finding must be SQLite's, word for word.
  const cases: { name: string; sql: string[]; problem: string; kind?: string; ref?: string }[] = [
    { name: 'an edited request body', sql: ["UPDATE calls SET request_body = replace(request_body, 'sk-', 'xx-') WHERE id = 'a-2'"], problem: 'content_changed', kind: 'request', ref: 'a-2' },
    { name: 'an edited result', sql: ["UPDATE calls SET decisions = '[]' WHERE id = 'a-1'"], problem: 'content_changed', kind: 'result', ref: 'a-1' },
    { name: 'a deleted stream event', sql: ["DELETE FROM stream_events WHERE call_id = 'a-3' AND seq = 3"], problem: 'row_missing', kind: 'events', ref: 'a-3' },
    { name: 'an edited stream event', sql: ["UPDATE stream_events SET raw = 'data: {}' WHERE call_id = 'a-0' AND seq = 0"], problem: 'content_changed', kind: 'events', ref: 'a-0' },
    { name: 'a deleted call', sql: ["DELETE FROM stream_events WHERE call_id = 'a-1'", "DELETE FROM calls WHERE id = 'a-1'"], problem: 'row_missing', kind: 'request', ref: 'a-1' },
    { name: 'a deleted call with its entries', sql: ["DELETE FROM stream_events WHERE call_id = 'a-1'", "DELETE FROM calls WHERE id = 'a-1'", "DELETE FROM audit_log WHERE ref = 'a-1'"], problem: 'entry_missing' },
    { name: 'two entries swapped', sql: ['UPDATE audit_log SET seq = -1 WHERE seq = 6', 'UPDATE audit_log SET seq = 6 WHERE seq = 9', 'UPDATE audit_log SET seq = 9 WHERE seq = -1'], problem: 'order_broken' },
    { name: 'an entry rewritten', sql: ["UPDATE audit_log SET content_hash = (CASE substr(content_hash, 1, 1) WHEN 'f' THEN 'e' ELSE 'f' END) || substr(content_hash, 2) WHERE seq = 3"], problem: 'entry_altered', kind: 'request', ref: 'a-2' },
    { name: 'the last entries cut off (no checkpoint)', sql: ['DELETE FROM audit_log WHERE seq > 20'], problem: 'unrecorded_row', kind: 'calls', ref: 'b-0' },
    {
      name: 'a call inserted behind the gateway',
      sql: [
        `INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
         SELECT 'forged', session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, 'completed' FROM calls WHERE id = 'a-0'`,
      ],
      problem: 'unrecorded_row',
      kind: 'calls',
      ref: 'forged',
    },
    { name: 'a stream event inserted behind the gateway', sql: ["INSERT INTO stream_events (call_id, seq, offset_ms, raw) VALUES ('a-2', 99, 1, 'data: {}')"], problem: 'unrecorded_row', kind: 'stream_events', ref: 'a-2' },
    { name: 'an access row deleted', sql: ['DELETE FROM access_log'], problem: 'row_missing', kind: 'access' },
    { name: 'an access row inserted', sql: ["INSERT INTO access_log (at, subject, issuer, action) VALUES (1, 'mallory', 'x', 'list')"], problem: 'unrecorded_row', kind: 'access_log' },
    { name: 'a raw copy changed', sql: ["UPDATE raw_copies SET key_id = 'k2' WHERE call_id = 'b-0'"], problem: 'content_changed', kind: 'raw', ref: 'b-0' },
    { name: 'a raw copy moved to another call', sql: ["UPDATE raw_copies SET call_id = 'b-1' WHERE call_id = 'b-0'"], problem: 'row_missing', kind: 'raw', ref: 'b-0' },
    { name: 'a shared request chunk edited', sql: ["UPDATE body_chunks SET text = replace(text, 'agent', 'agenT') WHERE text LIKE '%agent%'"], problem: 'content_changed', kind: 'request', ref: 'b-0' },
    { name: 'a session handed to another owner', sql: ["UPDATE sessions SET subject = 'mallory' WHERE id = 'sess-a'"], problem: 'session_owner_changed', kind: 'sessions', ref: 'sess-a' },
  ];
  for (const c of cases) {
    test(`tampering caught as on SQLite: ${c.name}`, async () => {
      const { file, url } = await twins();
      for (const sql of c.sql) tamper(file, sql);
      for (const sql of c.sql) await tamperPg(url, sql);
      const lite = verifyAuditDatabase(file);
      const pg = await verifyPg(url);
      const paged = await verifyPostgresAudit(settings(url), {}, TINY_PAGES);
      assert.deepEqual(paged.problem, pg.problem, 'the same finding whatever the page size');
      assertAuditBroken(pg, { problem: c.problem, ...(c.kind === undefined ? {} : { kind: c.kind }), ...(c.ref === undefined ? {} : { ref: c.ref }) }, SECRET);
      assert.deepEqual(pg.problem, lite.problem);
      assert.equal(pg.entries, lite.entries, 'checked as far');
    });
  }

  test('two replicas appending at once: one chain, verified while they write (one snapshot, no false alarm) and after', async () => {
    const { url } = await freshPg();
    const replicas = [await openPg(url), await openPg(url)];
    const key = newKey();
    const jobs = [pgMaintenance(url, key), pgMaintenance(url, key)];
    let writing = true;
    const work = replicas.map(async (store, r) => {
      for (let round = 0; round < 12; round++) {
        await Promise.all(
          Array.from({ length: 6 }, async (_, i) => {
            const id = `r${r}c${round}x${i}`;
            const body = i % 3 === 0 ? chatBody(`${LONG} ${id}`) : chatBody(`${SECRET} ${id}`);
            await store.recordRequest(request(id, Date.now(), { sessionId: `shared-${i % 3}`, requestBody: body }));
            for (let b = 0; b < 3; b++) store.appendStreamEvents(id, [{ offsetMs: b, raw: `data: {"b":${b},"id":"${id}"}\n\n` }]);
            await store.finishCall(result(id, Date.now()));
          }),
        );
        await store.recordAccess({ at: Date.now(), actor: { subject: 'auditor', issuer: 'https://idp.example.com', email: null }, action: 'list', sessionId: null, filter: `{"r":${r}}` });
      }
    });
    const verifying = (async () => {
      let runs = 0;
      while (writing) {
        const report = await verifyPg(url, { publicKey: key.publicKey });
        assert.equal(report.problem, null, report.problem?.detail);
        runs++;
      }
      return runs;
    })();
    const checkpointing = (async () => {
      let taken = 0;
      while (writing) {
        const written = await Promise.all([jobs[0]!.checkpoint('periodic'), jobs[1]!.checkpoint('periodic'), jobs[0]!.checkpoint('shutdown'), jobs[1]!.checkpoint('shutdown')]);
        taken += written.filter((w) => w !== null).length;
      }
      return taken;
    })();
    try {
      await Promise.all(work);
    } finally {
      writing = false;
    }
    const [runs, taken] = await Promise.all([verifying, checkpointing]);
    assert.ok(runs > 0, 'verified at least once while the replicas wrote');
    assert.ok(taken > 0, 'checkpoints were taken while the replicas wrote');
    for (const store of replicas) await store.flush();
    await jobs[0]!.checkpoint('shutdown');

    // The two replicas' checkpoints never interleave: in the order written, the seqs never go back
    // and no head is signed twice.
    const cps = await pgQuery<{ seq: number; hash: string }>(url, 'SELECT seq, hash FROM audit_checkpoints ORDER BY id');
    for (let i = 1; i < cps.length; i++) {
      assert.ok(cps[i]!.seq > cps[i - 1]!.seq, `checkpoint ${i} (seq ${cps[i]!.seq}) follows checkpoint ${i - 1} (seq ${cps[i - 1]!.seq})`);
    }
    const report = await verifyPg(url, { publicKey: key.publicKey });
    assert.equal(report.problem, null, report.problem?.detail);
    assert.equal(report.entries, 2 * 12 * (6 * 5 + 1), 'request, 3 event batches and result per call, one access row per round');
    assert.deepEqual(report.checkpoints, { total: cps.length, signed: cps.length, verified: cps.length });
    assert.equal(report.unsignedTail, 0);
    assert.equal((await checkPgAuditChain(url)).entries, report.entries);
    const owners = await pgQuery(url, 'SELECT DISTINCT owner FROM calls');
    assert.equal(owners.length, 2, 'both replicas recorded');
  });
});

describe('--since on PostgreSQL', () => {
  test('checks only the entries written since then, as on SQLite', async () => {
    const { url } = await freshPg();
    const store = await openPg(url);
    await recordCalls(store, 'a', 2, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const since = Date.now();
    await recordCalls(store, 'b', 1, Date.now());
    const report = await verifyPg(url, { since });
    assert.equal(report.problem, null, report.problem?.detail);
    assert.equal(report.entries, 5);
    assert.equal(report.firstSeq, 11);
    assert.equal((await verifyPostgresAudit(settings(url), { since }, TINY_PAGES)).entries, 5);
    assert.equal((await verifyPg(url, { since: Date.now() + DAY })).entries, 0, 'nothing written since: nothing to check');
    // An edit before the window is outside it; one inside is caught.
    await tamperPg(url, "UPDATE calls SET model = 'x' WHERE id = 'a-0'");
    assert.equal((await verifyPg(url, { since })).problem, null);
    await tamperPg(url, "UPDATE calls SET model = 'x' WHERE id = 'b-0'");
    assertAuditBroken(await verifyPg(url, { since }), { problem: 'content_changed', seq: 11, kind: 'request', ref: 'b-0' }, SECRET);
  });
});

describe('signed checkpoints on PostgreSQL: one replica at a time', () => {
  test('a periodic checkpoint skips while another replica holds the job; the shutdown one waits for it; spacing spares a second replica', async () => {
    const { url } = await freshPg();
    const store = await openPg(url);
    await recordCalls(store, 'a', 2, Date.now());
    const key = newKey();
    const job = pgMaintenance(url, key);
    // Another replica in the middle of a checkpoint: it holds the job's lock.
    const other = await connect(url);
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1, $2)', [...MAINTENANCE_LOCK]);
      assert.equal(await job.checkpoint('periodic'), null, 'skipped: another replica is signing');
      let done = false;
      const waiting = job.checkpoint('shutdown').then((cp) => {
        done = true;
        return cp;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(done, false, 'the shutdown checkpoint waits for the other replica');
      await other.query('COMMIT');
      const cp = await waiting;
      assert.equal(cp?.seq, 10);
      assert.equal(cp?.kind, 'shutdown');
    } finally {
      await other.end();
    }
    assert.equal(await job.checkpoint('periodic'), null, 'nothing new: no second checkpoint');

    // With spacing (the gateway's 0.9 × interval), a replica does not sign again right after another did.
    const spaced = pgMaintenance(url, key, { periodicSpacingMs: 60_000 });
    await recordCalls(store, 'b', 1, Date.now());
    assert.equal(await spaced.checkpoint('periodic'), null, 'signed moments ago');
    const fresh = await spaced.checkpoint('shutdown');
    assert.equal(fresh?.seq, 15, 'a shutdown checkpoint signs regardless');
    const report = await verifyPg(url, { publicKey: key.publicKey });
    assert.equal(report.problem, null, report.problem?.detail);
    assert.deepEqual(report.checkpoints, { total: 2, signed: 2, verified: 2 });
    assert.equal(report.unsignedTail, 0);
  });

  test('checkpoints verify with the key; a wrong key, a changed signature, a moved checkpoint and a cut tail are caught', async () => {
    const key = newKey();
    const signed = async (): Promise<string> => {
      const { url } = await freshPg();
      const store = await openPg(url);
      await recordCalls(store, 'a', 3, Date.now());
      assert.equal((await pgMaintenance(url, key).checkpoint('periodic'))?.seq, 15);
      return url;
    };
    const url = await signed();
    assertAuditBroken(await verifyPg(url, { publicKey: newKey().publicKey }), { problem: 'signature_invalid', seq: 15, kind: 'checkpoint' }, SECRET);
    const unchecked = await verifyPg(url);
    assert.equal(unchecked.problem, null);
    assert.ok(unchecked.warnings.some((w) => /signatures were not checked/.test(w)));
    await tamperPg(url, 'UPDATE audit_checkpoints SET seq = 13');
    assertAuditBroken(await verifyPg(url, { publicKey: key.publicKey }), { problem: 'checkpoint_mismatch', seq: 13 }, SECRET);
    await tamperPg(url, "UPDATE audit_checkpoints SET seq = 15, signature = (CASE substr(signature, 1, 1) WHEN 'A' THEN 'B' ELSE 'A' END) || substr(signature, 2)");
    assertAuditBroken(await verifyPg(url, { publicKey: key.publicKey }), { problem: 'signature_invalid', seq: 15, kind: 'checkpoint' }, SECRET);

    // The last entries deleted: the signed checkpoint says the log went further.
    const cut = await signed();
    await tamperPg(cut, 'DELETE FROM audit_log WHERE seq >= 14');
    const report = await verifyPg(cut, { publicKey: key.publicKey });
    assertAuditBroken(report, { problem: 'entry_missing', seq: 14 }, SECRET);
    assert.match(report.problem?.detail ?? '', /covers entries up to 15, but the log ends at 13: entries 14\.\.15 were deleted/);
  });
});

describe('retention purge on PostgreSQL', () => {
  /** Old calls, one that straddles the cut, newer ones, an old auditor read: the SQLite retention test's recording. */
  async function recordAging(store: RecordingStore, now: number): Promise<void> {
    await recordCalls(store, 'old', 3, now - 40 * DAY); // seq 1..15
    await store.recordRequest(request('open-0', now - 40 * DAY)); // 16
    await recordCalls(store, 'new', 2, now - 1 * DAY); // 17..26
    void store.finishCall(result('open-0', now)); // 27
    await store.flush();
  }

  test('removes what the SQLite purge removes, anchors the cut (signed), and what remains verifies; forging among the cut is caught', async () => {
    const key = newKey();
    const now = Date.now();
    const file = freshFile();
    const sqlite = await openSqliteStore({ path: file });
    await recordAging(sqlite, now);
    await sqlite.close();
    const { url } = await freshPg();
    const pg = await openPg(url);
    await recordAging(pg, now);

    const liteJob = new AuditMaintenance(file, { key, chunkEntries: 4 });
    maintainers.push(liteJob);
    const litePurged = await liteJob.purge(now - 30 * DAY);
    // Two replicas start their daily purge together: one purges, the other finds the job taken.
    const [purged, second] = await Promise.all([pgMaintenance(url, key, { chunkEntries: 4 }).purge(now - 30 * DAY), pgMaintenance(url, key, { chunkEntries: 4 }).purge(now - 30 * DAY)]);
    const total = purged.entries > 0 ? purged : second;
    const idle = purged.entries > 0 ? second : purged;
    assert.deepEqual(total, litePurged);
    assert.equal(idle.entries, 0, 'the other replica did not purge alongside');
    assert.equal(total.calls, 3);
    assert.equal(total.events, 3 * 6);
    assert.equal(total.sessions, 1);
    assert.equal(total.anchorSeq, 16);
    assert.deepEqual((await pgQuery(url, 'SELECT id FROM calls ORDER BY rec')).map((r) => r['id']), ['open-0', 'new-0', 'new-1']);
    assert.deepEqual((await pgQuery(url, 'SELECT seq, kind FROM audit_checkpoints')).map((r) => [r['seq'], r['kind']]), [[16, 'anchor']]);

    const report = await verifyPg(url, { publicKey: key.publicKey });
    assert.equal(report.problem, null, report.problem?.detail);
    const lite = verifyAuditDatabase(file, { publicKey: key.publicKey });
    assert.deepEqual({ ...report, durationMs: 0 }, { ...lite, durationMs: 0 });
    assert.equal(report.firstSeq, 17);
    assert.equal(report.unsignedAnchor, false);
    assert.deepEqual({ ...(await verifyPostgresAudit(settings(url), { publicKey: key.publicKey }, TINY_PAGES)), durationMs: 0 }, { ...report, durationMs: 0 });

    // The chain goes on from the last entry ever written: new calls of every replica chain on.
    await recordCalls(pg, 'later', 1, Date.now());
    assert.equal((await verifyPg(url, { publicKey: key.publicKey })).problem, null);

    // A call forged among the cut ones (no entry names it) is still caught.
    await tamperPg(
      url,
      `INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
       SELECT 'forged', session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, 'completed' FROM calls WHERE id = 'new-0'`,
    );
    assertAuditBroken(await verifyPg(url, { publicKey: key.publicKey }), { problem: 'unrecorded_row', kind: 'calls', ref: 'forged' }, SECRET);
    await tamperPg(url, "DELETE FROM calls WHERE id = 'forged'");

    // An unsigned anchor is reported, not trusted; a deleted one (a faked purge) is caught.
    await tamperPg(url, "UPDATE audit_checkpoints SET key_id = NULL, signature = NULL WHERE kind = 'anchor'");
    const weak = await verifyPg(url, { publicKey: key.publicKey });
    assert.equal(weak.problem, null);
    assert.equal(weak.unsignedAnchor, true);
    await tamperPg(url, "DELETE FROM audit_checkpoints WHERE kind = 'anchor'");
    assertAuditBroken(await verifyPg(url, { publicKey: key.publicKey }), { problem: 'anchor_missing', seq: 17 }, SECRET);
  });

  test('purging everything (chunked bodies included) leaves an anchor the next entries of any replica chain to', async () => {
    const { url } = await freshPg();
    const a = await openPg(url);
    const old = Date.now() - 10 * DAY;
    await a.recordRequest(request('c-0', old, { requestBody: chatBody(`${LONG} one`) }));
    await a.finishCall(result('c-0', old + 1));
    await recordCalls(a, 'old', 2, old);
    assert.ok(Number((await pgQuery(url, 'SELECT count(*)::int AS n FROM body_chunks'))[0]?.['n']) > 0);
    const purged = await pgMaintenance(url, null).purge(Date.now() - DAY);
    assert.equal(purged.anchorSeq, 12);
    assert.deepEqual(await pgQuery(url, 'SELECT (SELECT count(*)::int FROM audit_log) AS entries, (SELECT count(*)::int FROM body_chunks) AS chunks, (SELECT count(*)::int FROM calls) AS calls'), [{ entries: 0, chunks: 0, calls: 0 }]);
    assert.equal((await verifyPg(url)).problem, null);
    // The writer forgets the chunk ids it remembered (chunks_generation moved): the same session's body again is written whole.
    await a.recordRequest(request('c-1', Date.now(), { requestBody: chatBody(`${LONG} one`) }));
    await a.finishCall(result('c-1', Date.now()));
    const b = await openPg(url);
    await recordCalls(b, 'new', 1, Date.now());
    const report = await verifyPg(url);
    assert.equal(report.problem, null, report.problem?.detail);
    assert.equal(report.firstSeq, 13);
    assert.ok(report.warnings.some((w) => /anchor checkpoint is not checked/.test(w)), report.warnings.join('; '));
  });
});

describe('aigov audit verify --config on PostgreSQL', () => {
  function writeConfig(dir: string, extra: string[] = []): string {
    const config = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(config, [
      'identity: { issuer: https://idp.example.com, audience: https://aigov.example.com, cli_client_id: aigov-cli }',
      'providers: [{ name: openai, kind: openai, base_url: https://api.openai.com/v1 }]',
      "storage: { driver: postgres, url: '${DATABASE_URL}' }",
      ...extra,
    ].join('\n'));
    return config;
  }

  test('the database and the key come from the configuration; --require-signed; the password is never printed', async () => {
    const { runAuditVerify, formatAuditReport } = await import('../src/cli/audit-verify-service.ts');
    const { url } = await freshPg();
    const store = await openPg(url);
    await recordCalls(store, 'a', 2, Date.now());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-pg-verify-'));
    try {
      const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      fs.writeFileSync(path.join(dir, 'audit.key'), pem, { mode: 0o600 });
      const config = writeConfig(dir, ['audit: { signing_key: { file: audit.key } }']);
      const password = ['pw', randomBytes(6).toString('hex')].join('-');
      const u = new URL(url);
      u.password = password; // trust auth ignores it; nothing may print it
      const env = { DATABASE_URL: u.toString() };

      const unsigned = await runAuditVerify({ config, env, requireSigned: true });
      assert.equal(unsigned.report.problem, null);
      assert.equal(unsigned.error?.code, 'AIGOV_E_AUDIT_UNSIGNED');
      const key = parseSigningKey(pem);
      if ('problem' in key) throw new Error(key.problem);
      await pgMaintenance(url, key).checkpoint('shutdown');
      const outcome = await runAuditVerify({ config, env, requireSigned: true });
      assert.equal(outcome.error, null);
      assert.equal(outcome.report.keyId, key.keyId);
      const text = formatAuditReport(outcome);
      assert.match(text, /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/aigov_test_\w+: audit trail intact — 10 entries \(entries 1\.\.10\)/);
      assert.ok(!text.includes(password) && !JSON.stringify(outcome).includes(password));

      await tamperPg(url, "UPDATE calls SET model = 'gpt-5' WHERE id = 'a-1'");
      const broken = await runAuditVerify({ config, env });
      assert.equal(broken.error?.code, 'AIGOV_E_AUDIT_CHAIN_BROKEN');
      assert.match(formatAuditReport(broken), /audit trail BROKEN at seq 2, request, id a-1 \(content_changed\)/);

      // A server that does not answer: a clear error naming the URL without its password.
      const dead = writeConfig(dir);
      const err = await runAuditVerify({ config: dead, env: { DATABASE_URL: `postgres://aigov:${password}@127.0.0.1:1/aigov` } }).then(() => null, (e: unknown) => e);
      assert.ok(isAigovError(err) && err.code === 'AIGOV_E_AUDIT_DB_UNREADABLE', String(err));
      assert.match(err.message, /postgres:\/\/aigov:\*\*\*@127\.0\.0\.1:1\/aigov: .*ECONNREFUSED/);
      assert.ok(!err.message.includes(password));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('two gateways on one PostgreSQL database with audit.signing_key and audit.retention_days', { timeout: 240_000 }, () => {
  test('each purges at start (one at a time), signs at shutdown, and aigov audit verify --config --require-signed passes', async () => {
    const { startHarness } = await import('./support/gateway-harness.ts');
    const { loadTranscript } = await import('./support/replay-upstream.ts');
    const { runAuditVerify } = await import('../src/cli/audit-verify-service.ts');
    const { default: OpenAI } = await import('openai');
    const { url } = await freshPg();
    // Recordings from 40 days ago, before the gateways start.
    const seed = await openPg(url);
    await recordCalls(seed, 'old', 2, Date.now() - 40 * DAY);
    await seed.close();

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-pg-gw-audit-'));
    try {
      const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const keyFile = path.join(dir, 'audit.key');
      fs.writeFileSync(keyFile, pem, { mode: 0o600 });
      const audit = { signing_key: { file: keyFile }, retention_days: 30, checkpoint_interval: '1h' };
      const [a, b] = await Promise.all([startHarness({ databaseUrl: url, audit }), startHarness({ databaseUrl: url, audit })]);
      try {
        for (const h of [a, b]) h.upstream.route('POST', '/v1/chat/completions', (req) => loadTranscript((JSON.parse(req.body) as { stream?: boolean }).stream ? 'openai-chat-stream' : 'openai-chat'));
        await Promise.all(
          [a, b].flatMap((h, r) =>
            [false, true].map(async (stream) => {
              const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': `ses-audit-${r}` } });
              if (!stream) return client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${r}` }] });
              for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `stream ${r}` }], stream: true })) void chunk;
              return null;
            }),
          ),
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      // The startup purges removed the old calls (whichever replica ran it) and anchored the cut.
      assert.deepEqual(await pgQuery(url, "SELECT count(*)::int AS n FROM calls WHERE id LIKE 'old-%'"), [{ n: 0 }]);
      const cps = await pgQuery<{ kind: string; seq: number }>(url, 'SELECT kind, seq FROM audit_checkpoints ORDER BY id');
      assert.equal(cps.filter((c) => c.kind === 'anchor').length, 1, JSON.stringify(cps));
      assert.ok(cps.some((c) => c.kind === 'shutdown'), 'a shutdown checkpoint signs what the gateways recorded');
      for (let i = 1; i < cps.length; i++) assert.ok(cps[i]!.seq > cps[i - 1]!.seq, JSON.stringify(cps));

      const config = path.join(dir, 'gateway.yaml');
      fs.writeFileSync(config, [
        'identity: { issuer: https://idp.example.com, audience: https://aigov.example.com, cli_client_id: aigov-cli }',
        'providers: [{ name: openai, kind: openai, base_url: https://api.openai.com/v1 }]',
        "storage: { driver: postgres, url: '${DATABASE_URL}' }",
        'audit: { signing_key: { file: audit.key }, retention_days: 30 }',
      ].join('\n'));
      const outcome = await runAuditVerify({ config, env: { DATABASE_URL: url }, requireSigned: true });
      assert.equal(outcome.report.problem, null, outcome.report.problem?.detail);
      assert.equal(outcome.error, null, outcome.error?.message);
      assert.equal(outcome.report.firstSeq, 11, 'the chain starts after the purged calls');
      assert.equal(outcome.report.unsignedAnchor, false);
      assert.equal(outcome.report.unsignedTail, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
