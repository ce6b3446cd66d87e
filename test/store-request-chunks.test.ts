/**
 * Request bodies stored as chunks shared by the calls of a session (issue 11 item 5), through
 * the real SQLite store (writer thread, reader thread, audit chain, purge) in temp files:
 * exact round trips, sharing, tampering as someone with the file would, a broken store, a
 * database from before (schema 8), retention, and `sessions show`'s text view of tool calls.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { graphOfWireChunks, parseRequestParts } from '../src/core/recording/request-chunks.ts';
import { formatSessionDetail } from '../src/cli/sessions-format.ts';
import { toCallView } from '../src/gateway/sessions-api.ts';
import { SessionDetailSchema, type SessionDetail } from '../src/protocol/sessions.ts';
import type { CallRequestRecord, SessionDetailRecord } from '../src/store/recording-store.ts';
import { ChainWriter } from '../src/store/sqlite/audit-chain-writer.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { MIGRATIONS, migrateDatabase } from '../src/store/sqlite/migrations.ts';
import { StoreWriteError, type SqliteRecordingStore } from '../src/store/sqlite/sqlite-store.ts';
import { agentSessionBodies } from './support/agent-session.ts';
import { assertAuditBroken, callRequest, callResult, query, tamper, useStoreOpener, useTempDirs } from './support/store-fixtures.ts';

const { freshFile, freshDir } = useTempDirs('aigov-chunks-');
const open = useStoreOpener();
const DAY = 86_400_000;
/** Planted in every tool output of the agent bodies below: never in an error or a report. */
const SECRET = 'turn ';

function anthropic(callId: string, sessionId: string, requestBody: string, startedAt: number, overrides: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return callRequest(callId, { sessionId, requestBody, startedAt, provider: 'anthropic', providerKind: 'anthropic', endpoint: 'anthropic.messages', path: '/v1/messages', model: 'claude-opus-5-5', ...overrides });
}

/** Records the bodies call by call (request, then result) in `sessionId`; call ids `${prefix}-N`. */
async function recordSession(store: SqliteRecordingStore, prefix: string, sessionId: string, bodies: readonly string[], startedAt: number): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, body] of bodies.entries()) {
    const id = `${prefix}-${i}`;
    await store.recordRequest(anthropic(id, sessionId, body, startedAt + i * 1000));
    await store.finishCall(callResult(id, { endedAt: startedAt + i * 1000 + 500 }));
    ids.push(id);
  }
  return ids;
}

/** The session's detail as `aigov sessions show` gets it (shared bodies, through the wire schema). */
async function shownDetail(store: SqliteRecordingStore, sessionId: string): Promise<SessionDetail> {
  const detail = (await store.getSessionDetail(sessionId, { sharedBodies: true })) as SessionDetailRecord;
  const view = {
    session: { id: sessionId, user: { sub: detail.session.subject, email: detail.session.email }, started_at: new Date(detail.session.startedAt).toISOString(), last_call_at: new Date(detail.session.lastCallAt).toISOString(), call_count: detail.session.callCount },
    calls: detail.calls.map((c) => toCallView(c, detail.events[c.callId] ?? [], detail.approvals, Date.now())),
    ...(detail.chunks === undefined ? {} : { body_chunks: Object.fromEntries([...detail.chunks].map(([id, c]) => [String(id), `${c.kind}${c.text}`])) }),
  };
  return SessionDetailSchema.parse(JSON.parse(JSON.stringify(view)));
}

const ODD_BODIES = [
  // unicode escapes (also of structural characters), escaped quotes and backslashes
  `{"model":"claude-opus-5-5","messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00 \\" \\\\ \\u007b\\u005b ${'a'.repeat(3000)}"},{"r\\u006fle":"assistant","content":"\\\\\\"}]"}]}`,
  // pretty-printed with tabs and CRLF, whitespace around the root
  `\r\n\t{\r\n  "messages" :\r\n  [\r\n\t{ "role" : "user" ,\n "content" : "${'b'.repeat(3000)}" } ,\n\n {"role":"user","content":"c"}  ] ,\n "tools":[ ]\n}\n\n `,
  // duplicate keys
  `{"messages":[{"role":"user","content":"first"}],"messages":[{"role":"user","content":"${'d'.repeat(3000)}"}],"stream":true,"stream":false}`,
  // a huge string (2 MB) and numbers in every form
  `{"system":"${'x'.repeat(2_000_000)}","n":[-0,1e400,1.5E-7,-12345678901234567890],"messages":[{"role":"user","content":"hi"}]}`,
  // non-BMP characters, combining marks, an escaped NUL
  `{"messages":[${Array.from({ length: 40 }, (_, i) => `{"role":"user","content":"\u{1F600}e\u0301\\u0000 ${i} ${'g'.repeat(100)}"}`).join(',')}]}`,
];
const WHOLE_BODIES = [
  'not json at all, but long: '.repeat(200), // not JSON: stored whole
  `{"messages":[{"role":"user","content":"${'h'.repeat(3000)}"}]`, // malformed (unterminated)
  '{"model":"m","messages":[{"role":"user","content":"short"}]}', // short
  '',
];

describe('request bodies as chunks', () => {
  test('every body comes back byte for byte: agent sessions, odd JSON, non-JSON (stored whole), through every read', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    const claude = agentSessionBodies('claude', 12);
    const codex = agentSessionBodies('codex', 12);
    const all = [...claude, ...codex, ...ODD_BODIES, ...WHOLE_BODIES];
    const ids = await recordSession(store, 'c', 'ses-odd', all, 1_760_000_000_000);
    const stored = query(file, 'SELECT id, request_body, request_parts FROM calls ORDER BY rowid');
    for (const [i, row] of stored.entries()) {
      if (i >= claude.length + codex.length + ODD_BODIES.length) {
        assert.equal(row['request_parts'], null, `stored whole: ${String(row['id'])}`);
        assert.equal(row['request_body'], all[i]);
      } else {
        assert.notEqual(row['request_parts'], null, `stored as chunks: ${String(row['id'])}`);
        assert.equal(row['request_body'], '');
      }
    }
    const listed = await store.listCalls('ses-odd');
    const detail = await store.getSessionDetail('ses-odd');
    assert.equal(listed.length, all.length);
    for (const [i, id] of ids.entries()) {
      assert.equal(listed[i]!.requestBody, all[i], `listCalls ${id}`);
      assert.equal(detail!.calls[i]!.requestBody, all[i], `getSessionDetail ${id}`);
      assert.equal((await store.getCall(id))!.requestBody, all[i], `getCall ${id}`);
      assert.equal(listed[i]!.requestRef, undefined);
    }
    // Shared: the same texts from the chunks, as the CLI rebuilds them from the wire.
    const shown = await shownDetail(store, 'ses-odd');
    const graph = graphOfWireChunks(shown.body_chunks ?? {});
    for (const [i, call] of shown.calls.entries()) {
      assert.equal(call.request_ref === undefined ? call.request_body : graph.text(call.request_ref), all[i], `shared ${call.id}`);
    }
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  test('a session stores what repeats once: 40 turns of Claude Code take about the last body, not the sum of all', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    const bodies = agentSessionBodies('claude', 40);
    await recordSession(store, 'a', 'ses-a', bodies, 1_760_000_000_000);
    const total = bodies.reduce((sum, b) => sum + b.length, 0);
    const chunkText = Number(query(file, 'SELECT sum(length(text)) AS n FROM body_chunks')[0]!['n']);
    assert.ok(chunkText < bodies.at(-1)!.length * 1.3, `chunks hold ${chunkText} characters; the last body has ${bodies.at(-1)!.length}, all bodies ${total}`);
    // The same body again adds nothing; the call names the existing root.
    await store.recordRequest(anthropic('again', 'ses-a', bodies.at(-1)!, 1_760_000_100_000));
    const [last, again] = query(file, "SELECT request_parts FROM calls WHERE id IN ('a-39', 'again') ORDER BY rowid").map((r) => parseRequestParts(String(r['request_parts']))!);
    assert.equal(again!.first, 0, 'no chunk added');
    assert.equal(again!.root, last!.root);
    // Another session shares nothing with it (each session stores its own).
    const before = Number(query(file, 'SELECT count(*) AS n FROM body_chunks')[0]!['n']);
    await store.recordRequest(anthropic('other', 'ses-b', bodies[0]!, 1_760_000_200_000));
    assert.ok(Number(query(file, "SELECT count(*) AS n FROM body_chunks WHERE session_id = 'ses-b'")[0]!['n']) > 10);
    assert.ok(Number(query(file, 'SELECT count(*) AS n FROM body_chunks')[0]!['n']) > before);
    assert.equal((await store.getCall('other'))!.requestBody, bodies[0]);
    await store.close();
    // A writer that starts again finds what the session stored (no second copy of it).
    const reopened = await open({ path: file });
    const count = Number(query(file, 'SELECT count(*) AS n FROM body_chunks')[0]!['n']);
    await reopened.recordRequest(anthropic('after-restart', 'ses-a', bodies.at(-1)!, 1_760_000_300_000));
    // Only the conversation's array node and the root are stated once more (the array without a base).
    const added = query(file, 'SELECT count(*) AS n, sum(length(text)) AS t FROM body_chunks WHERE id > (SELECT max(id) FROM body_chunks) - 2')[0]!;
    assert.ok(Number(query(file, 'SELECT count(*) AS n FROM body_chunks')[0]!['n']) <= count + 2);
    assert.ok(Number(added['t']) < bodies.at(-1)!.length / 20, `added ${String(added['t'])} characters`);
    assert.equal((await reopened.getCall('after-restart'))!.requestBody, bodies.at(-1));
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  describe('tampering, as someone holding the file', () => {
    /** A recorded 6-turn session; returns the file (closed) and the id of the chunk holding the tools (shared by every call). */
    async function recorded(): Promise<{ file: string; tools: number; ids: string[] }> {
      const file = freshFile();
      const store = await open({ path: file });
      const ids = await recordSession(store, 't', 'ses-t', agentSessionBodies('claude', 6), 1_760_000_000_000);
      await store.close();
      // The largest leaf the first call stored (a system prompt or tool text of the agent): every call's body names it.
      const first = parseRequestParts(String(query(file, "SELECT request_parts FROM calls WHERE id = 't-0'")[0]!['request_parts']))!;
      const tools = Number(query(file, 'SELECT id FROM body_chunks WHERE kind = 0 AND id BETWEEN ? AND ? ORDER BY length(text) DESC LIMIT 1', first.first, first.last)[0]!['id']);
      return { file, tools, ids };
    }
    const copy = (file: string): string => {
      const to = freshFile();
      fs.copyFileSync(file, to);
      return to;
    };

    test('an edited shared chunk: verify names it and every call it alters', async () => {
      const { file, tools, ids } = await recorded();
      assert.equal(verifyAuditDatabase(file).problem, null);
      const edited = copy(file);
      tamper(edited, "UPDATE body_chunks SET text = text || ' ' WHERE id = ?", tools);
      const report = verifyAuditDatabase(edited);
      assertAuditBroken(report, { problem: 'content_changed', kind: 'request', ref: ids[0]! }, SECRET);
      assert.match(report.problem!.detail, new RegExp(`chunk ${tools} of session ses-t was changed after it was written; it is shared: part of the requests of 6 calls \\(t-0, t-1, t-2, …\\)`));
    });

    test('text and key edited together are still caught (the request entry covers the key)', async () => {
      const { file, tools, ids } = await recorded();
      const edited = copy(file);
      const db = new DatabaseSync(edited);
      const row = db.prepare('SELECT kind, text FROM body_chunks WHERE id = ?').get(tools)!;
      const text = `${String(row['text'])} `;
      const { chunkHash } = await import('../src/store/request-chunk-writer.ts');
      db.prepare('UPDATE body_chunks SET text = ?, hash = ? WHERE id = ?').run(text, Buffer.from(chunkHash(0, text), 'hex'), tools);
      db.close();
      assertAuditBroken(verifyAuditDatabase(edited), { problem: 'content_changed', kind: 'request', ref: ids[0]! }, SECRET);
    });

    test('a deleted chunk, a changed or removed chunk list, a forged chunk, a chunk moved to another session', async () => {
      const { file, tools, ids } = await recorded();
      const deleted = copy(file);
      tamper(deleted, 'DELETE FROM body_chunks WHERE id = ?', tools);
      const report = verifyAuditDatabase(deleted);
      assertAuditBroken(report, { problem: 'row_missing', kind: 'request', ref: ids[0]! }, SECRET);
      assert.match(report.problem!.detail, /was deleted; it is shared: part of the requests of 6 calls/);

      const parts = copy(file);
      const own = parseRequestParts(String(query(file, "SELECT request_parts FROM calls WHERE id = 't-3'")[0]!['request_parts']))!;
      const earlier = parseRequestParts(String(query(file, "SELECT request_parts FROM calls WHERE id = 't-2'")[0]!['request_parts']))!;
      tamper(parts, "UPDATE calls SET request_parts = ? WHERE id = 't-3'", `${earlier.root} ${own.first}-${own.last}`);
      assertAuditBroken(verifyAuditDatabase(parts), { problem: 'content_changed', kind: 'request', ref: 't-3' }, SECRET);

      const whole = copy(file);
      tamper(whole, "UPDATE calls SET request_parts = NULL, request_body = '{\"messages\":[]}' WHERE id = 't-4'");
      assertAuditBroken(verifyAuditDatabase(whole), { problem: 'content_changed', kind: 'request', ref: 't-4' }, SECRET);

      const forged = copy(file);
      tamper(forged, "INSERT INTO body_chunks (session_id, hash, kind, text) VALUES ('ses-t', x'00', 0, '\"forged\"')");
      assertAuditBroken(verifyAuditDatabase(forged), { problem: 'unrecorded_row', kind: 'body_chunks' }, SECRET);

      const moved = copy(file);
      tamper(moved, "UPDATE body_chunks SET session_id = 'ses-other' WHERE id = ?", tools);
      assertAuditBroken(verifyAuditDatabase(moved), { problem: 'content_changed', kind: 'request' }, SECRET);
    });

    test('a read of a session whose chunk is gone fails; it never returns part of a body', async () => {
      const { file, tools, ids } = await recorded();
      tamper(file, 'DELETE FROM body_chunks WHERE id = ?', tools);
      const store = await open({ path: file });
      await assert.rejects(store.getSessionDetail('ses-t'), (err: Error) => /cannot be rebuilt/.test(err.message) && !err.message.includes(SECRET));
      await assert.rejects(store.getCall(ids[2]!), /chunk \d+ is missing/);
      await assert.rejects(store.listCalls('ses-t'), /cannot be rebuilt/);
    });
  });

  test('a broken store still fails closed: the request is refused, nothing half-written', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'data', 'aigov.db');
    const store = await open({ path: file });
    const bodies = agentSessionBodies('codex', 3);
    await store.recordRequest(anthropic('ok', 'ses-f', bodies[0]!, 1_760_000_000_000));
    // The chunk table made unwritable behind the gateway: the record (call row and chunks) is refused as a whole.
    const other = new DatabaseSync(file);
    other.exec("CREATE TRIGGER no_chunks BEFORE INSERT ON body_chunks BEGIN SELECT RAISE(ABORT, 'chunks refused'); END");
    other.close();
    const err = await store.recordRequest(anthropic('refused', 'ses-f', bodies[1]!, 1_760_000_001_000)).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof StoreWriteError, String(err));
    assert.ok(!(err).message.includes(SECRET));
    assert.equal(query(file, "SELECT count(*) AS n FROM calls WHERE id = 'refused'")[0]!['n'], 0);
    const dropTrigger = new DatabaseSync(file);
    dropTrigger.exec('DROP TRIGGER no_chunks');
    dropTrigger.close();
    // The writer forgot what the refused record added; the session goes on exactly.
    await store.recordRequest(anthropic('later', 'ses-f', bodies[2]!, 1_760_000_002_000));
    assert.equal((await store.getCall('later'))!.requestBody, bodies[2]);
    // The file gone: refused, as before chunks.
    fs.rmSync(path.join(dir, 'data'), { recursive: true });
    const gone = await store.recordRequest(anthropic('gone', 'ses-f', bodies[2]!, 1_760_000_003_000)).then(() => null, (e: unknown) => e);
    assert.ok(gone instanceof StoreWriteError);
    assert.match((gone).message, /deleted/);
  });

  test('a database from before (schema 8): its rows read as before, new ones are chunks, the trail verifies', async () => {
    const file = freshFile();
    const bodies = agentSessionBodies('claude', 6);
    const db = new DatabaseSync(file);
    migrateDatabase(db, MIGRATIONS.slice(0, 8));
    // Two calls as aigov at schema 8 wrote them: bodies whole, each with its request entry.
    const chain = new ChainWriter(db);
    db.exec('BEGIN IMMEDIATE');
    db.prepare("INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count) VALUES ('ses-old', 'alice', 'https://idp.example.test', NULL, 1, 2, 2)").run();
    for (const [i, body] of bodies.slice(0, 2).entries()) {
      const row = {
        id: `old-${i}`, session_id: 'ses-old', subject: 'alice', email: null, groups: '[]', issuer: 'https://idp.example.test', client_id: null, user_agent: null, remote_address: null, sdk: null,
        provider: 'anthropic', provider_kind: 'anthropic', endpoint: 'anthropic.messages', method: 'POST', path: '/v1/messages', model: null, stream: 1, request_body: body, started_at: 1 + i,
      };
      db.prepare(`INSERT INTO calls (id, session_id, subject, email, groups, issuer, provider, provider_kind, endpoint, method, path, stream, request_body, decisions, started_at, status)
        VALUES ($id, $session_id, $subject, $email, $groups, $issuer, $provider, $provider_kind, $endpoint, $method, $path, $stream, $request_body, '[]', $started_at, 'pending')`).run({
        id: row.id, session_id: row.session_id, subject: row.subject, email: row.email, groups: row.groups, issuer: row.issuer, provider: row.provider, provider_kind: row.provider_kind,
        endpoint: row.endpoint, method: row.method, path: row.path, stream: row.stream, request_body: row.request_body, started_at: row.started_at,
      });
      chain.request(row);
    }
    db.exec('COMMIT');
    chain.committed();
    db.close();
    assert.equal(verifyAuditDatabase(file).problem, null, 'verifies at schema 8 with this build');

    const store = await open({ path: file }); // migrates to 9 (and settles the old pending calls as aborted)
    assert.equal(Number(query(file, 'PRAGMA user_version')[0]!['user_version']), 9);
    await recordSession(store, 'new', 'ses-old', bodies.slice(2), 100);
    const calls = await store.listCalls('ses-old');
    assert.deepEqual(calls.map((c) => c.requestBody), bodies);
    assert.deepEqual(query(file, 'SELECT request_parts IS NULL AS whole FROM calls ORDER BY rowid').map((r) => r['whole']), [1, 1, 0, 0, 0, 0]);
    await store.close();
    assert.equal(verifyAuditDatabase(file).problem, null);
  });

  test('retention: chunks no remaining call names are deleted; the rest still rebuilds exactly and verifies', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    const now = Date.now();
    const old = now - 40 * DAY;
    const gone = agentSessionBodies('codex', 5, 1);
    const straddling = agentSessionBodies('claude', 8, 2);
    await recordSession(store, 'gone', 'ses-gone', gone, old);
    await recordSession(store, 'early', 'ses-long', straddling.slice(0, 4), old + 10_000);
    await recordSession(store, 'late', 'ses-long', straddling.slice(4, 6), now - 1000);
    const before = Number(query(file, "SELECT count(*) AS n FROM body_chunks WHERE session_id = 'ses-long'")[0]!['n']);

    const maintenance = new AuditMaintenance(file, { key: null });
    const purged = await maintenance.purge(now - DAY);
    await maintenance.close();
    assert.equal(purged.calls, 5 + 4);
    assert.equal(query(file, "SELECT count(*) AS n FROM body_chunks WHERE session_id = 'ses-gone'")[0]!['n'], 0, 'a session gone takes its chunks');
    const after = Number(query(file, "SELECT count(*) AS n FROM body_chunks WHERE session_id = 'ses-long'")[0]!['n']);
    assert.ok(after < before && after > 0, `chunks only the purged calls named are gone (${before} → ${after})`);
    assert.deepEqual((await store.listCalls('ses-long')).map((c) => c.requestBody), straddling.slice(4, 6));
    // The writer forgets the ids it remembered (some are gone): the session goes on exactly.
    await recordSession(store, 'next', 'ses-long', straddling.slice(6), now);
    assert.deepEqual((await store.listCalls('ses-long')).map((c) => c.requestBody), straddling.slice(4));
    await store.close();
    assert.equal(verifyAuditDatabase(file).problem, null);
  });
});

describe('sessions show: tool calls and tool results', () => {
  const sse = (data: unknown, event?: string): { offsetMs: number; raw: string } => ({ offsetMs: 5, raw: `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n` });

  test('Claude Code (shared bodies): each call lists the tool results it sends back and the tool call it gets', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    const bodies = agentSessionBodies('claude', 3);
    await recordSession(store, 'cc', 'ses-cc', bodies, 1_760_000_000_000);
    await store.recordRequest(anthropic('cc-tool', 'ses-cc', bodies[2]!, 1_760_000_009_000));
    store.appendStreamEvents('cc-tool', [
      sse({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_9', name: 'Bash', input: {} } }, 'content_block_start'),
      sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"command":"rm -rf ' } }, 'content_block_delta'),
      sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: 'build"}' } }, 'content_block_delta'),
    ]);
    await store.finishCall(callResult('cc-tool'));
    const shown = await shownDetail(store, 'ses-cc');
    assert.ok(shown.calls.every((c) => c.request_ref !== undefined && c.request_body === ''), 'the bodies came shared');
    const text = formatSessionDetail(shown, 120);
    const blocks = text.split('\n\n');
    assert.doesNotMatch(blocks[1]!, /tool result/, 'the first call sends no tool result');
    assert.match(blocks[2]!, /tool result Read toolu_01\w+: 1 \w/);
    assert.match(blocks[3]!, /tool result Edit toolu_01\w+: 1 \w/);
    assert.match(blocks[4]!, /tool call Bash: rm -rf build/);
    for (const block of blocks.slice(1)) assert.match(block, /user: +<system-reminder>/);
  });

  test('Codex (shared bodies): the Responses items are read element by element, the same as whole bodies', async () => {
    const file = freshFile();
    const store = await open({ path: file });
    const bodies = agentSessionBodies('codex', 3);
    for (const [i, body] of bodies.entries()) {
      await store.recordRequest(callRequest(`cx-${i}`, { sessionId: 'ses-cx', requestBody: body, startedAt: 1_760_000_000_000 + i * 1000, endpoint: 'openai.responses', path: '/v1/responses', model: 'gpt-6-codex' }));
      await store.finishCall(callResult(`cx-${i}`, { endedAt: 1_760_000_000_500 + i * 1000 }));
    }
    const shown = await shownDetail(store, 'ses-cx');
    assert.ok(shown.calls.some((c) => c.request_ref !== undefined && c.request_body === ''), 'the bodies came shared');
    const whole: SessionDetail = { ...shown, body_chunks: undefined, calls: shown.calls.map((c, i) => ({ ...c, request_ref: undefined, request_body: bodies[i]! })) };
    const text = formatSessionDetail(shown, 120);
    assert.equal(text, formatSessionDetail(whole, 120));
    assert.match(text, /user: +say hi/);
    assert.match(text, /tool result exec call_0+2\w*: 1 \w/);
    await store.close();
  });

  test('Codex (Responses, custom tool exec) and Chat Completions, whole bodies', () => {
    const codex = agentSessionBodies('codex', 3);
    const call = (id: string, endpoint: string, body: string, extra: Partial<SessionDetail['calls'][number]>): SessionDetail['calls'][number] => ({
      id, session_id: 's', user: { sub: 'alice', email: null, groups: [] }, client: { user_agent: null, sdk: null }, provider: 'openai', provider_kind: 'openai', endpoint, method: 'POST', path: '/v1/x', model: 'm', stream: false,
      status: 'completed', http_status: 200, started_at: '2026-12-07T10:00:00.000Z', ended_at: null, first_byte_ms: null, latency_ms: 10, usage: null, error: null, decisions: [], approvals: [],
      request_body: body, response_body: null, events: [], ...extra,
    });
    const chat = JSON.stringify({ model: 'm', messages: [
      { role: 'user', content: 'list the files' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'shell', arguments: '{"cmd":["ls","-la"]}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'total 0\ndrwxr-xr-x  2 alice' },
    ] });
    const detail: SessionDetail = {
      session: { id: 's', user: { sub: 'alice', email: null }, started_at: '2026-12-07T10:00:00.000Z', last_call_at: '2026-12-07T10:00:00.000Z', call_count: 2 },
      calls: [
        call('codex-2', 'openai.responses', codex[2]!, {
          stream: true,
          events: [
            { offset_ms: 1, raw: `event: response.output_item.added\ndata: ${JSON.stringify({ type: 'response.output_item.added', output_index: 0, item: { type: 'custom_tool_call', name: 'exec', call_id: 'c9', input: '' } })}\n\n` },
            { offset_ms: 2, raw: `event: response.custom_tool_call_input.delta\ndata: ${JSON.stringify({ type: 'response.custom_tool_call_input.delta', output_index: 0, delta: 'await tools.exec_command({cmd: "git status --short"});' })}\n\n` },
          ],
        }),
        call('chat', 'openai.chat.completions', chat, { response_body: JSON.stringify({ choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_2', type: 'function', function: { name: 'shell', arguments: '{"cmd":"cat README.md"}' } }] } }] }) }),
      ],
    };
    const text = formatSessionDetail(detail, 120);
    assert.match(text, /user: +say hi/);
    assert.match(text, /tool result exec call_0+2\w*: 1 \w/, 'the custom tool output of the last turn, named by its call');
    assert.match(text, /tool call exec: exec_command git status --short/);
    assert.match(text, /tool result shell call_1: total 0 drwxr-xr-x 2 alice/);
    assert.match(text, /tool call shell: cat README\.md/);
  });
});
