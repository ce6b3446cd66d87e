/**
 * The optional raw request copy (config `audit.raw_copy.key`): a real gateway (SQLite in a temp
 * dir, a pseudonymize + mask policy, a replaying upstream) seals each request body as the client
 * sent it. The database never holds the original personal data in clear (file, WAL, shm); an
 * auditor gets the exact original body back with `?raw=1` on show and export, and each such read
 * is in the access log; developers and approvers get 403; a gateway without the key says it keeps
 * none; a tampered, moved or otherwise-keyed copy is reported, never returned; `aigov audit
 * verify` still passes; the retention purge deletes raw copies with their calls.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { createSessionsClient, type SessionsClient } from '../src/cli/sessions-service.ts';
import { buildGatewayConfig } from '../src/config/load.ts';
import type { GatewayConfig } from '../src/config/schema.ts';
import { AigovError } from '../src/core/errors.ts';
import type { CallView, ExportLine, SessionDetail } from '../src/protocol/sessions.ts';
import { bindServer, startGateway, type RunningGateway } from '../src/gateway/start-gateway.ts';
import { RawCopySealer } from '../src/store/raw-copy-sealer.ts';
import { AuditMaintenance } from '../src/store/sqlite/audit-maintenance.ts';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import type { Transcript } from './support/replay-upstream.ts';

const RAW_KEY = randomBytes(32).toString('base64');
const OTHER_KEY = randomBytes(32).toString('hex');
const JANE = 'jane.raw-copy@example.com';
const CARD = '4111 1111 1111 1111';

const POLICY = `
version: 1
default_action: allow
rules:
  - id: pseudonymize-contacts
    match:
      detectors: [EMAIL_ADDRESS]
    action: pseudonymize
  - id: mask-cards
    match:
      detectors: [CREDIT_CARD]
    action: mask_request
`;

const ANSWER: Transcript = {
  description: 'a chat completion built by the test',
  request: { method: 'POST', path: '/v1/chat/completions' },
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    id: 'chatcmpl-raw',
    object: 'chat.completion',
    created: 1760433151,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Noted.', refusal: null }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  }),
};

/** A body as a client might send it, byte for byte: odd spacing and key order the gateway must not normalize. */
function clientBody(tag: string): string {
  return `{ "messages":[{"role":"user","content":"${tag}: write to ${JANE}, card ${CARD} \\u00e9"}],\n  "model" : "gpt-4o-mini" }`;
}

/** Every byte SQLite may have written for the database: the file, its WAL and shared memory. */
function databaseBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`, `${file}-shm`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

interface ApiError {
  readonly error: { readonly code: string; readonly message: string };
}

describe('raw request copies (audit.raw_copy)', () => {
  let h: Harness;
  let policyDir: string;
  let dbFile: string;
  let tokens: { alice: string; bob: string; carol: string };
  let other: RunningGateway | null = null;

  before(async () => {
    policyDir = mkdtempSync(join(tmpdir(), 'aigov-raw-'));
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    h = await startHarness({ policyFile: join(policyDir, 'policy.yaml'), rawCopyKey: RAW_KEY });
    h.upstream.route('POST', '/v1/chat/completions', () => ANSWER);
    dbFile = join(h.dir, 'aigov.db');
    tokens = { alice: h.token, bob: await h.tokenFor('bob'), carol: await h.tokenFor('carol') };
  });
  after(async () => {
    await other?.close();
    await h.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  const url = (): string => other?.url ?? h.url;
  const send = async (session: string, body: string): Promise<void> => {
    const res = await fetch(`${url()}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json', 'x-aigov-session': session },
      body,
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
  };
  const read = (token: string, path: string): Promise<Response> => fetch(`${url()}/aigov/v1/sessions/${path}`, { headers: { authorization: `Bearer ${token}` } });
  const errorOf = async (res: Response, status: number, code: string): Promise<string> => {
    const text = await res.text();
    assert.equal(res.status, status, text);
    const body = JSON.parse(text) as ApiError;
    assert.equal(body.error.code, code);
    return body.error.message;
  };
  const accessActions = (): string[] => {
    const db = new DatabaseSync(dbFile, { readOnly: true });
    try {
      return db.prepare('SELECT subject, action FROM access_log ORDER BY id').all().map((r) => `${String(r['subject'])}:${String(r['action'])}`);
    } finally {
      db.close();
    }
  };
  /** Runs `edit` on the database behind the gateway's back. */
  const tamper = (edit: (db: DatabaseSync) => void): void => {
    const db = new DatabaseSync(dbFile, { timeout: 5000 });
    try {
      edit(db);
    } finally {
      db.close();
    }
  };

  it('stores only sealed bytes: no plaintext of the original in the database, the WAL or shm; the upstream got the masked body', async () => {
    const body = clientBody('first');
    await send('ses_raw_1', body);
    const sent = h.upstream.received.at(-1)?.body ?? '';
    assert.ok(sent.includes('«EMAIL_1»') && !sent.includes(JANE) && !sent.includes(CARD), 'the upstream got the masked body');
    await h.gateway.store.flush();

    const bytes = databaseBytes(dbFile);
    for (const value of [JANE, 'jane.raw-copy', CARD, '4111111111111111', body]) assert.equal(bytes.indexOf(value), -1, `the database holds "${value.slice(0, 12)}…" in clear`);
    const db = new DatabaseSync(dbFile, { readOnly: true });
    const rows = db.prepare('SELECT r.key_id, length(r.sealed) AS size, c.request_body FROM raw_copies r JOIN calls c ON c.id = r.call_id WHERE c.session_id = ?').all('ses_raw_1');
    db.close();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['key_id'], new RawCopySealer(Buffer.from(RAW_KEY, 'base64')).keyId);
    assert.equal(rows[0]!['size'], Buffer.byteLength(body) + 12 + 16, 'nonce ‖ ciphertext ‖ tag');
    assert.ok(!String(rows[0]!['request_body']).includes(JANE), 'the recorded request is the masked one');
  });

  it('gives an auditor the exact original body with ?raw=1 on show and both exports, and logs each read as show-raw / export-raw', async () => {
    const body = clientBody('first');
    const before = accessActions().length;

    const plain = (await (await read(tokens.carol, 'ses_raw_1')).json()) as SessionDetail;
    assert.equal(plain.calls[0]?.raw_request_body, undefined, 'no raw copy without ?raw=1');
    assert.ok(!plain.calls[0]?.request_body.includes(JANE));

    const res = await read(tokens.carol, 'ses_raw_1?raw=1');
    assert.equal(res.status, 200);
    const detail = (await res.json()) as SessionDetail;
    assert.equal(detail.calls.length, 1);
    assert.equal(detail.calls[0]?.raw_request_body, body, 'the body exactly as the client sent it');
    assert.ok(!detail.calls[0]?.request_body.includes(JANE), 'request_body stays the masked one');

    const jsonl = await (await read(tokens.carol, 'ses_raw_1/export?format=jsonl&raw=1')).text();
    const callLine = jsonl.trim().split('\n').map((l) => JSON.parse(l) as ExportLine).find((l) => l.type === 'call');
    assert.equal(callLine?.type === 'call' ? callLine.call.raw_request_body : undefined, body);
    const json = (await (await read(tokens.carol, 'ses_raw_1/export?format=json&raw=1')).json()) as { calls: CallView[] };
    assert.equal(json.calls[0]?.raw_request_body, body);

    assert.deepEqual(accessActions().slice(before), ['carol:show', 'carol:show-raw', 'carol:export-raw', 'carol:export-raw']);
  });

  it('the CLI client (sessions show/export --raw) asks for and validates the raw copies, and carries the 403 for others', async () => {
    const client = (token: string): SessionsClient => createSessionsClient({ gatewayUrl: h.url, getToken: () => Promise.resolve({ token, expiresAt: Date.now() + 3_600_000 }) });
    const detail = await client(tokens.carol).get('ses_raw_1', { raw: true });
    assert.equal(detail.calls[0]?.raw_request_body, clientBody('first'));
    assert.equal((await client(tokens.carol).get('ses_raw_1')).calls[0]?.raw_request_body, undefined);
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        out += chunk.toString('utf8');
        done();
      },
    });
    await client(tokens.carol).exportTo('ses_raw_1', 'jsonl', sink, { raw: true });
    assert.ok(out.includes(JSON.stringify(clientBody('first'))), 'the jsonl export carries the raw body');
    await assert.rejects(client(tokens.alice).get('ses_raw_1', { raw: true }), (error: unknown) => error instanceof AigovError && error.code === 'AIGOV_E_RAW_COPY_FORBIDDEN');
  });

  it('refuses raw copies to developers and approvers (403), even of their own sessions, and logs nothing for them', async () => {
    const before = accessActions().length;
    for (const token of [tokens.alice, tokens.bob]) {
      await errorOf(await read(token, 'ses_raw_1?raw=1'), 403, 'AIGOV_E_RAW_COPY_FORBIDDEN');
      await errorOf(await read(token, 'ses_raw_1/export?format=jsonl&raw=1'), 403, 'AIGOV_E_RAW_COPY_FORBIDDEN');
    }
    // alice still reads her own session as recorded (masked), without the raw field.
    const own = (await (await read(tokens.alice, 'ses_raw_1')).json()) as SessionDetail;
    assert.equal(own.calls[0]?.raw_request_body, undefined);
    await errorOf(await read(tokens.carol, 'ses_raw_1?raw=yes'), 400, 'AIGOV_E_BAD_REQUEST');
    assert.deepEqual(accessActions().slice(before), []);
  });

  it('reports a tampered or moved copy (AES-GCM authentication) instead of returning it; the rest of the session still reads', async () => {
    const body = clientBody('tampered');
    await send('ses_raw_tamper', body);
    await send('ses_raw_tamper', clientBody('second'));
    await h.gateway.store.flush();
    const ids = (await h.gateway.store.listCalls('ses_raw_tamper')).map((c) => c.callId);
    assert.equal(ids.length, 2);
    const peek = new DatabaseSync(dbFile, { readOnly: true });
    const original = peek.prepare('SELECT sealed FROM raw_copies WHERE call_id = ?').get(ids[0]!)?.['sealed'];
    peek.close();
    assert.ok(original instanceof Uint8Array);
    tamper((db) => {
      const flipped = Buffer.from(original);
      flipped[20] = flipped[20]! ^ 0x01;
      db.prepare('UPDATE raw_copies SET sealed = ? WHERE call_id = ?').run(flipped, ids[0]!);
    });
    let message = await errorOf(await read(tokens.carol, 'ses_raw_tamper?raw=1'), 500, 'AIGOV_E_RAW_COPY_UNREADABLE');
    assert.match(message, new RegExp(`call ${ids[0]!} failed authentication`));
    assert.ok(!message.includes(JANE));
    await errorOf(await read(tokens.carol, 'ses_raw_tamper/export?format=jsonl&raw=1'), 500, 'AIGOV_E_RAW_COPY_UNREADABLE');
    assert.equal((await read(tokens.carol, 'ses_raw_tamper')).status, 200, 'the masked session still reads');

    // The intact bytes of call 0, moved onto call 1: the call id is bound in, so it does not open.
    tamper((db) => db.prepare('UPDATE raw_copies SET sealed = ? WHERE call_id = ?').run(original, ids[1]!));
    tamper((db) => db.prepare('UPDATE raw_copies SET sealed = ? WHERE call_id = ?').run(original, ids[0]!));
    message = await errorOf(await read(tokens.carol, 'ses_raw_tamper?raw=1'), 500, 'AIGOV_E_RAW_COPY_UNREADABLE');
    assert.match(message, new RegExp(`call ${ids[1]!} failed authentication`));

    tamper((db) => db.prepare('DELETE FROM raw_copies WHERE call_id = ?').run(ids[1]!));
    const detail = (await (await read(tokens.carol, 'ses_raw_tamper?raw=1')).json()) as SessionDetail;
    assert.deepEqual(detail.calls.map((c) => c.raw_request_body), [body, null], 'restored: opens again; a call without a copy is null');
  });

  it('`aigov audit verify` names the copy deleted above (the audit chain covers raw copies); the rest verifies', () => {
    const report = verifyAuditDatabase(dbFile);
    assert.equal(report.problem?.problem, 'row_missing', report.problem?.detail);
    assert.equal(report.problem?.kind, 'raw');
    assert.match(report.problem?.detail ?? '', /^the raw copy of call \S+ was deleted or moved/);
  });

  it('with another key: reports both key ids, never a key; without one: no copies and ?raw=1 says the gateway keeps none', async () => {
    await h.gateway.close();
    const restart = async (rawCopyKey: string | null): Promise<RunningGateway> => {
      await other?.close();
      other = null;
      const config: GatewayConfig = { ...h.gateway.config, audit: { ...h.gateway.config.audit, rawCopyKey } };
      const bound = await bindServer(config);
      return startGateway(config, { version: 'test', mounts: [{ prefix: '/oidc', handle: (req, res) => h.idp.handle(req, res) }] }, bound);
    };
    other = await restart(OTHER_KEY);
    const message = await errorOf(await read(tokens.carol, 'ses_raw_1?raw=1'), 500, 'AIGOV_E_RAW_COPY_UNREADABLE');
    assert.ok(message.includes(new RawCopySealer(Buffer.from(RAW_KEY, 'base64')).keyId) && message.includes(new RawCopySealer(Buffer.from(OTHER_KEY, 'hex')).keyId), message);
    assert.ok(!message.includes(OTHER_KEY) && !message.includes(RAW_KEY));
    assert.equal((await read(tokens.carol, 'ses_raw_1')).status, 200, 'the masked session still reads');

    other = await restart(null);
    await send('ses_raw_nokey', clientBody('no key'));
    await other.store.flush();
    const message2 = await errorOf(await read(tokens.carol, 'ses_raw_nokey?raw=1'), 409, 'AIGOV_E_RAW_COPY_DISABLED');
    assert.match(message2, /audit\.raw_copy is not configured/);
    const db = new DatabaseSync(dbFile, { readOnly: true });
    const copies = db.prepare("SELECT count(*) AS n FROM raw_copies r JOIN calls c ON c.id = r.call_id WHERE c.session_id = 'ses_raw_nokey'").get()?.['n'];
    db.close();
    assert.equal(copies, 0);
    assert.equal(databaseBytes(dbFile).indexOf(JANE), -1, 'without the key the original is not kept at all');
  });

  it('deletes raw copies with their calls in the retention purge, and verify still passes after it', async () => {
    await other?.close();
    other = null;
    const count = (): number => {
      const db = new DatabaseSync(dbFile, { readOnly: true });
      try {
        return Number(db.prepare('SELECT count(*) AS n FROM raw_copies').get()?.['n']);
      } finally {
        db.close();
      }
    };
    assert.ok(count() > 0);
    const maintenance = new AuditMaintenance(dbFile, { key: null });
    try {
      const purged = await maintenance.purge(Date.now() + 60_000);
      assert.ok(purged.calls >= 4);
    } finally {
      await maintenance.close();
    }
    assert.equal(count(), 0);
    assert.equal(verifyAuditDatabase(dbFile).problem, null);
  });

  it('checks audit.raw_copy.key when loading the config, naming the key path and never the value', () => {
    const base = {
      identity: { issuer: 'https://idp.example.com', audience: 'https://gw.example.com', cli_client_id: 'aigov-cli' },
      providers: [{ name: 'openai', kind: 'openai' as const, base_url: 'https://api.openai.com/v1' }],
    };
    const config = buildGatewayConfig({ ...base, audit: { raw_copy: { key: '${RAW}' } } }, '/etc/aigov/gateway.yaml', { env: { RAW: RAW_KEY } });
    assert.equal(config.audit.rawCopyKey, Buffer.from(RAW_KEY, 'base64').toString('hex'));
    assert.equal(buildGatewayConfig(base, '/etc/aigov/gateway.yaml', { env: {} }).audit.rawCopyKey, null);
    assert.throws(
      () => buildGatewayConfig({ ...base, audit: { raw_copy: { key: '${RAW}' } } }, '/etc/aigov/gateway.yaml', { env: { RAW: 'too-short-secret' } }),
      (error: unknown) => error instanceof AigovError && error.code === 'AIGOV_E_CONFIG_INVALID' && /audit\.raw_copy\.key: expected 32 random bytes/.test(error.message) && !error.message.includes('too-short-secret'),
    );
  });
});
