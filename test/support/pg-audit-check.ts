/**
 * An independent check of the audit chain in a PostgreSQL recording database, for tests (written
 * apart from `aigov audit verify`, so a bug shared by the writer and the verifier still shows):
 * every entry recomputed from its own fields and linked to the one before, every content hash recomputed from the rows as they are now (a request stored as
 * chunks with the chunks it added, each checked against its SHA-256), chain_head at the last entry,
 * and every row covered: as many request entries as calls, result entries as settled calls,
 * events in the entries' spans as stream events, access entries as access rows, raw entries as raw
 * copies. Throws an assertion error naming the first entry that does not hold.
 */
import assert from 'node:assert/strict';
import { GENESIS_HASH, parseSpan } from '../../src/core/audit/chain.ts';
import { parseRequestParts } from '../../src/core/recording/request-chunks.ts';
import { accessContentHash, approvalContentHash, eventsContentHasher, linkHash, rawCopyContentHash, requestContentHash, resultContentHash } from '../../src/store/audit-hash.ts';
import { chunkHash } from '../../src/store/request-chunk-writer.ts';
import { connect } from './pg-databases.ts';

type Row = Record<string, unknown>;
const n = (v: unknown): number => Number(v);
const asNum = (v: unknown): number | null => (v === null ? null : Number(v));

export async function checkPgAuditChain(url: string): Promise<{ entries: number }> {
  const db = await connect(url);
  try {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const one = async (sql: string, values: unknown[]): Promise<Row | undefined> => (await db.query(sql, values)).rows[0] as Row | undefined;
    const entries = (await db.query('SELECT seq, kind, ref, span, at, content_hash, prev_hash, hash FROM audit_log ORDER BY seq')).rows as Row[];
    let prev = GENESIS_HASH;
    let expectSeq = 1;
    const counts = { request: 0, result: 0, events: 0, access: 0, raw: 0 };
    /** Each approval's latest entry: its current row must match it (the earlier ones are states it went through). */
    const latestApproval = new Map<string, { seq: number; content: string }>();
    for (const e of entries) {
      const seq = n(e['seq']);
      const kind = String(e['kind']);
      const ref = String(e['ref']);
      const at = `entry ${seq} (${kind} ${ref})`;
      assert.equal(seq, expectSeq, `${at}: seq follows the previous one`);
      assert.equal(e['prev_hash'], prev, `${at}: links to the previous entry`);
      const span = e['span'] === null ? null : (e['span'] as string);
      const link = { seq, kind, ref, span, at: n(e['at']), contentHash: String(e['content_hash']), prevHash: prev };
      assert.equal(e['hash'], linkHash(link), `${at}: its hash is recomputed from its fields`);
      let content: string;
      if (kind === 'request') {
        const c = await one('SELECT * FROM calls WHERE id = $1', [ref]);
        assert.ok(c, `${at}: its call exists`);
        const row = {
          id: c['id'] as string, session_id: c['session_id'] as string, subject: c['subject'] as string, email: c['email'] as string | null, groups: c['groups'] as string,
          issuer: c['issuer'] as string, client_id: c['client_id'] as string | null, user_agent: c['user_agent'] as string | null, remote_address: c['remote_address'] as string | null,
          sdk: c['sdk'] as string | null, provider: c['provider'] as string, provider_kind: c['provider_kind'] as string, endpoint: c['endpoint'] as string, method: c['method'] as string,
          path: c['path'] as string, model: c['model'] as string | null, stream: n(c['stream']), request_body: c['request_body'] as string, started_at: n(c['started_at']),
        };
        let parts: { text: string; added: { id: number; kind: number; hash: string }[] } | null = null;
        if (c['request_parts'] !== null) {
          const text = c['request_parts'] as string;
          const parsed = parseRequestParts(text);
          assert.ok(parsed, `${at}: its request parts parse`);
          const added: { id: number; kind: number; hash: string }[] = [];
          if (parsed.first > 0) {
            const chunks = (await db.query("SELECT id, kind, encode(hash, 'hex') AS hash, text, session_id FROM body_chunks WHERE id BETWEEN $1 AND $2 ORDER BY id", [parsed.first, parsed.last])).rows as Row[];
            assert.equal(chunks.length, parsed.last - parsed.first + 1, `${at}: the chunks it added are all there`);
            for (const ch of chunks) {
              assert.equal(ch['session_id'], row.session_id, `${at}: chunk ${String(ch['id'])} is of its session`);
              assert.equal(ch['hash'], chunkHash(n(ch['kind']) === 1 ? 1 : 0, String(ch['text'])), `${at}: chunk ${String(ch['id'])} matches its hash`);
              added.push({ id: n(ch['id']), kind: n(ch['kind']), hash: String(ch['hash']) });
            }
          }
          parts = { text, added };
        }
        content = requestContentHash(row, parts);
      } else if (kind === 'result') {
        const c = await one('SELECT * FROM calls WHERE id = $1', [ref]);
        assert.ok(c, `${at}: its call exists`);
        content = resultContentHash({
          id: c['id'] as string, status: c['status'] as string, http_status: asNum(c['http_status']), response_body: c['response_body'] as string | null, usage: c['usage'] as string | null,
          first_byte_ms: asNum(c['first_byte_ms']), latency_ms: asNum(c['latency_ms']), error_code: c['error_code'] as string | null, error_message: c['error_message'] as string | null,
          decisions: c['decisions'] as string, ended_at: asNum(c['ended_at']),
        });
      } else if (kind === 'events') {
        const range = parseSpan(span);
        assert.ok(range, `${at}: its span parses`);
        const rows = (await db.query('SELECT seq, offset_ms, raw FROM stream_events WHERE call_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq', [ref, range.first, range.last])).rows as Row[];
        assert.equal(rows.length, range.last - range.first + 1, `${at}: its events are all there`);
        const hasher = eventsContentHasher(ref);
        for (const r of rows) hasher.add(n(r['seq']), n(r['offset_ms']), String(r['raw']));
        content = hasher.hash();
        counts.events += rows.length;
      } else if (kind === 'access') {
        const a = await one('SELECT * FROM access_log WHERE id = $1', [Number(ref)]);
        assert.ok(a, `${at}: its access row exists`);
        content = accessContentHash({
          id: n(a['id']), at: n(a['at']), subject: a['subject'] as string, issuer: a['issuer'] as string, email: a['email'] as string | null,
          action: a['action'] as string, session_id: a['session_id'] as string | null, filter: a['filter'] as string | null,
        });
      } else if (kind === 'raw') {
        const r = await one('SELECT call_id, key_id, sealed FROM raw_copies WHERE call_id = $1', [ref]);
        assert.ok(r, `${at}: its raw copy exists`);
        content = rawCopyContentHash(String(r['call_id']), String(r['key_id']), r['sealed'] as Buffer);
      } else if (kind === 'approval') {
        latestApproval.set(ref, { seq, content: String(e['content_hash']) });
        content = String(e['content_hash']); // checked against the row after the pass
      } else {
        assert.fail(`${at}: unknown kind`);
      }
      assert.equal(e['content_hash'], content, `${at}: its content hash is recomputed from the rows`);
      if (kind !== 'events' && kind !== 'approval') counts[kind as keyof typeof counts]++;
      prev = String(e['hash']);
      expectSeq++;
    }
    const approvals = (await db.query('SELECT id, state, requester_sub, content_hash, created_at, expires_at, record, change_seq FROM approvals')).rows as Row[];
    assert.equal(approvals.length, latestApproval.size, 'every approval has entries, every approval entry its row');
    for (const a of approvals) {
      const latest = latestApproval.get(String(a['id']));
      assert.ok(latest, `approval ${String(a['id'])} has an entry`);
      const row = { id: String(a['id']), state: String(a['state']), requester_sub: String(a['requester_sub']), content_hash: String(a['content_hash']), created_at: n(a['created_at']), expires_at: n(a['expires_at']), record: String(a['record']) };
      assert.equal(approvalContentHash(row), latest.content, `approval ${row.id} is as its latest entry ${latest.seq} recorded it`);
      assert.equal(n(a['change_seq']), latest.seq, `approval ${row.id}'s change number is its latest entry`);
    }
    const head = await one('SELECT seq, hash FROM chain_head', []);
    assert.deepEqual({ seq: n(head?.['seq']), hash: head?.['hash'] }, { seq: expectSeq - 1, hash: prev }, 'chain_head is the last entry');
    const count = async (sql: string): Promise<number> => n((await one(sql, []))?.['n']);
    assert.equal(counts.request, await count('SELECT count(*) AS n FROM calls'), 'one request entry per call');
    assert.equal(counts.result, await count("SELECT count(*) AS n FROM calls WHERE status <> 'pending'"), 'one result entry per settled call');
    assert.equal(counts.events, await count('SELECT count(*) AS n FROM stream_events'), 'every stream event in an entry\'s span');
    assert.equal(counts.access, await count('SELECT count(*) AS n FROM access_log'), 'one entry per access row');
    assert.equal(counts.raw, await count('SELECT count(*) AS n FROM raw_copies'), 'one entry per raw copy');
    await db.query('COMMIT');
    return { entries: entries.length };
  } finally {
    await db.end();
  }
}
