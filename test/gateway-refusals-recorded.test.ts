/**
 * Every refusal is on the record. A request the gateway refuses before policy — a body it cannot
 * read, an unknown endpoint, a wrong method, a WebSocket handshake — is logged with its user,
 * path, status and code, and, when its token is good, recorded as a call (status, error code,
 * model; no body). A refusal never depends on the store: with the store broken it still answers.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { startHarness, type Harness } from './support/gateway-harness.ts';

const SECRET = 'AKIAIOSFODNN7EXAMPLE';
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    lines.push(chunk.toString('utf8'));
    cb();
  },
});

let h: Harness;
before(async () => {
  h = await startHarness({ logger: pino({ level: 'info' }, sink), limits: { max_body_bytes: 64 * 1024 }, openaiModels: ['gpt-4o-mini'] });
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
  lines.length = 0;
});

interface Answer {
  readonly status: number;
  readonly callId: string | null;
  readonly text: string;
}

async function send(method: string, path: string, body: string | Buffer | null, headers: Record<string, string> = {}): Promise<Answer> {
  if (headers.upgrade !== undefined) return sendRaw(method, path, { authorization: `Bearer ${h.token}`, ...headers });
  const res = await fetch(h.url + path, { method, headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, callId: res.headers.get('x-aigov-call-id'), text: await res.text() };
}

/** fetch refuses to send `Upgrade`: a WebSocket handshake goes out by hand. */
function sendRaw(method: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const url = new URL(h.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, callId: (res.headers['x-aigov-call-id'] as string | undefined) ?? null, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The log line of one call (or refusal), parsed. */
async function logged(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 50; i++) {
    const hit = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find(predicate);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`no such log line in:\n${lines.join('')}`);
}

async function recorded(callId: string | null) {
  assert.ok(callId, 'the answer names its call');
  const call = await h.gateway.store.getCall(callId);
  assert.ok(call, 'the refusal is recorded as a call');
  return call;
}

describe('refused while reading the request', () => {
  const cases: [string, () => Promise<Answer>, number, string][] = [
    ['malformed JSON', () => send('POST', '/openai/v1/chat/completions', `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${SECRET}"`), 400, 'AIGOV_E_BAD_JSON'],
    ['a body the endpoint does not accept', () => send('POST', '/openai/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: `${SECRET}` })), 400, 'AIGOV_E_BAD_REQUEST'],
    ['too deep', () => send('POST', '/openai/v1/chat/completions', `${'['.repeat(600)}${']'.repeat(600)}`), 400, 'AIGOV_E_JSON_TOO_DEEP'],
    ['too large', () => send('POST', '/openai/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: SECRET.repeat(5000) }] })), 413, 'AIGOV_E_BODY_TOO_LARGE'],
    ['corrupt gzip', () => send('POST', '/openai/v1/chat/completions', gzipSync(Buffer.from(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${SECRET}"}]}`)).subarray(0, 30), { 'content-encoding': 'gzip' }), 415, 'AIGOV_E_BAD_CONTENT_ENCODING'],
    ['a model the gateway does not enable', () => send('POST', '/openai/v1/chat/completions', JSON.stringify({ model: 'gpt-9-secret', messages: [{ role: 'user', content: SECRET }] })), 403, 'AIGOV_E_MODEL_NOT_ALLOWED'],
    ['a bad session header', () => send('POST', '/openai/v1/chat/completions', '{}', { 'x-aigov-session': 'bad session!' }), 400, 'AIGOV_E_BAD_SESSION'],
  ];
  for (const [what, act, status, code] of cases) {
    it(`${what}: ${status} ${code}, recorded with alice and the code, no body; logged with user and path`, async () => {
      const answer = await act();
      assert.equal(answer.status, status, answer.text);
      assert.match(answer.text, new RegExp(code));
      const call = await recorded(answer.callId);
      assert.equal(call.errorCode, code);
      assert.equal(call.httpStatus, status);
      assert.equal(call.status, code === 'AIGOV_E_MODEL_NOT_ALLOWED' ? 'blocked' : 'failed');
      assert.equal(call.principal.subject, (await logged((l) => l.callId === answer.callId)).user);
      assert.equal(call.requestBody, '', 'nothing of the body is kept');
      assert.ok(!JSON.stringify(call).includes(SECRET), 'the prompt appears nowhere in the record');
      const line = await logged((l) => l.callId === answer.callId);
      assert.equal(line.errorCode, code);
      assert.equal(line.httpStatus, status);
      assert.equal(typeof line.user, 'string');
      assert.equal(line.path, '/openai/v1/chat/completions');
      assert.ok(!lines.join('').includes(SECRET), 'nor in the log');
      assert.equal(h.upstream.received.length, 0);
    });
  }

  it('the model is named when the body had one, even though the body was refused', async () => {
    const answer = await send('POST', '/openai/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: 'not a list' }));
    assert.equal(answer.status, 400);
    assert.equal((await recorded(answer.callId)).model, 'gpt-4o-mini');
    assert.equal((await logged((l) => l.callId === answer.callId)).model, 'gpt-4o-mini');
  });
});

describe('refused before matching an endpoint', () => {
  const cases: [string, string, string, Record<string, string>, number, string][] = [
    ['an unknown endpoint', 'POST', '/openai/v1/files', {}, 404, 'AIGOV_E_UNKNOWN_ENDPOINT'],
    ['a wrong method', 'DELETE', '/openai/v1/chat/completions', {}, 405, 'AIGOV_E_METHOD_NOT_ALLOWED'],
    ['an unreadable model id', 'GET', '/anthropic/v1/models/a%ZZb', {}, 400, 'AIGOV_E_BAD_PATH'],
    ['a WebSocket handshake', 'GET', '/openai/v1/responses', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }, 426, 'AIGOV_E_WEBSOCKET_UNSUPPORTED'],
  ];
  for (const [what, method, path, headers, status, code] of cases) {
    it(`${what}: ${status} ${code}, recorded as alice's call and logged`, async () => {
      const answer = await send(method, path, method === 'GET' ? null : '{}', headers);
      assert.equal(answer.status, status, answer.text);
      const call = await recorded(answer.callId);
      assert.equal(call.endpoint, 'unrouted');
      assert.equal(call.errorCode, code);
      assert.equal(call.principal.subject, (await logged((l) => l.callId === answer.callId)).user);
      const line = await logged((l) => l.callId === answer.callId);
      assert.equal(line.errorCode, code);
      assert.equal(typeof line.user, 'string');
    });
  }

  it('without a good token the answer is the same, nothing is recorded, and the log names no user', async () => {
    for (const auth of [undefined, 'Bearer not-a-token']) {
      lines.length = 0;
      const res = await fetch(`${h.url}/openai/v1/files`, { method: 'POST', headers: auth ? { authorization: auth } : {}, body: '{}' });
      assert.equal(res.status, 404);
      const callId = res.headers.get('x-aigov-call-id');
      await res.text();
      const line = await logged((l) => l.errorCode === 'AIGOV_E_UNKNOWN_ENDPOINT');
      assert.equal(line.user, null);
      if (callId) assert.equal(await h.gateway.store.getCall(callId), null);
    }
  });

  it('outside any provider mount: answered, and logged with the user', async () => {
    const res = await fetch(`${h.url}/admin/keys`, { headers: { authorization: `Bearer ${h.token}` } });
    assert.equal(res.status, 404);
    await res.text();
    const line = await logged((l) => l.msg === 'refused' && l.errorCode === 'AIGOV_E_UNKNOWN_ENDPOINT');
    assert.equal(line.path, '/admin/keys');
    assert.equal(typeof line.user, 'string');
    assert.equal(line.httpStatus, 404);
  });
});

describe('with the store broken', () => {
  it('a refusal is still answered as it would be, and the failure to record it is logged', async () => {
    const db = new DatabaseSync(join(h.dir, 'aigov.db'));
    db.exec(`CREATE TRIGGER refuse_calls BEFORE INSERT ON calls BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
    try {
      const answer = await send('POST', '/openai/v1/chat/completions', '{"model":');
      assert.equal(answer.status, 400);
      assert.match(answer.text, /AIGOV_E_BAD_JSON/);
      await logged((l) => l.msg === 'could not record a refused request');
      assert.equal((await logged((l) => l.msg === 'call' && l.callId === answer.callId)).errorCode, 'AIGOV_E_BAD_JSON');
    } finally {
      db.exec('DROP TRIGGER refuse_calls');
      db.close();
    }
  });
});
