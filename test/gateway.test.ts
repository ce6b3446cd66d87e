/**
 * The gateway end to end over real sockets: the dev IdP issues real JWTs through the device
 * flow, the official SDKs are the clients, the upstream replays recorded provider transcripts
 * chunked in awkward ways, and every call lands in SQLite.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { SignJWT, UnsecuredJWT, decodeJwt, importJWK, type JWK } from 'jose';
import { ANTHROPIC_KEY, OPENAI_KEY, startHarness, type Harness } from './support/gateway-harness.ts';
import { chatStreamText, loadTranscript, type ReplayOptions } from './support/replay-upstream.ts';

const CHUNKINGS: { name: string; options: ReplayOptions }[] = [
  { name: 'whole', options: { chunking: 'whole' } },
  { name: '1-byte', options: { chunking: 'bytes' } },
  { name: 'random', options: { chunking: { random: 42 } } },
  { name: 'keep-alive', options: { chunking: { size: 7 }, keepAliveComments: true } },
];

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
});

function openai(token = h.token, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: token, maxRetries: 0, ...extra });
}
function anthropic(token = h.token): Anthropic {
  return new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: token, maxRetries: 0 });
}

async function raw(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(h.url + path, { method, headers: init.headers, body: init.body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function lastCall(): Promise<NonNullable<Awaited<ReturnType<Harness['gateway']['store']['getCall']>>>> {
  await h.gateway.store.flush();
  const sessions = await h.gateway.store.listSessions({ limit: 1 });
  const calls = await h.gateway.store.listCalls(sessions[0]!.sessionId);
  return calls.at(-1)!;
}

function assertNoSecrets(text: string): void {
  for (const secret of [OPENAI_KEY, ANTHROPIC_KEY, h.token, 'UPSTREAMsecret']) assert.ok(!text.includes(secret), 'a secret leaked');
}

describe('discovery and operations', () => {
  it('publishes what `aigov login --gateway URL` needs', async () => {
    const { status, text } = await raw('GET', '/.well-known/aigov-configuration');
    assert.equal(status, 200);
    const doc = JSON.parse(text) as Record<string, unknown>;
    assert.equal(doc.issuer, `${h.url}/oidc`);
    assert.equal(doc.cli_client_id, 'aigov-cli');
    assert.equal(doc.resource, h.url);
    assert.deepEqual(doc.providers, [
      { name: 'openai', kind: 'openai', base_url: `${h.url}/openai/v1`, path: '/openai/v1', models: [], dev_model: false },
      { name: 'anthropic', kind: 'anthropic', base_url: `${h.url}/anthropic`, path: '/anthropic', models: [], dev_model: false },
    ]);
    assertNoSecrets(text);
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    assert.equal((await raw('GET', '/healthz')).status, 200);
    const ready = await raw('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal((JSON.parse(ready.text) as { store: string }).store, 'ok');
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const metrics = await raw('GET', '/metrics');
    assert.match(metrics.text, /aigov_requests_total\{provider="openai",model="gpt-4o-mini",status="200"\} \d+/);
    assert.match(metrics.text, /aigov_request_duration_seconds_bucket/);
    assert.match(metrics.text, /aigov_time_to_first_token_seconds_bucket/);
    assert.match(metrics.text, /aigov_store_errors_total/);
  });
});

describe('OpenAI through the gateway', () => {
  it('chat completion: key swapped in, user token never forwarded, call recorded', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const { data, response } = await openai()
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Who do I contact?' }] })
      .withResponse();
    const expected = JSON.parse(loadTranscript('openai-chat').body) as OpenAI.ChatCompletion;
    assert.deepEqual(data.choices, expected.choices);
    assert.ok(response.headers.get('x-aigov-call-id')?.startsWith('call_'));
    assert.equal(response.headers.get('set-cookie'), null, 'upstream cookies are not passed on');

    const [sent] = h.upstream.received;
    assert.equal(sent?.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(sent?.headers['x-aigov-session'], undefined);
    assert.ok(!JSON.stringify(sent?.headers).includes(h.token));

    const call = await lastCall();
    assert.equal(call.principal.subject, 'alice');
    assert.equal(call.principal.email, 'alice@aigov.dev');
    assert.deepEqual(call.principal.groups, ['developers']);
    assert.equal(call.provider, 'openai');
    assert.equal(call.endpoint, 'openai.chat.completions');
    assert.equal(call.model, 'gpt-4o-mini');
    assert.equal(call.status, 'completed');
    assert.equal(call.httpStatus, 200);
    assert.equal(call.requestBody, sent?.body);
    assert.deepEqual(JSON.parse(call.responseBody!), expected);
    assert.ok(call.usage?.totalTokens && call.usage.totalTokens > 0);
    assert.equal(call.client.sdk?.split(' ')[0], 'js');
    assertNoSecrets(JSON.stringify(call));
  });

  for (const { name, options } of CHUNKINGS) {
    it(`streamed chat (${name} chunking): the SDK gets every delta, the bytes are unchanged, events recorded with offsets`, async () => {
      const transcript = loadTranscript('openai-chat-stream');
      h.upstream.route('POST', '/v1/chat/completions', transcript, options);
      const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        usage = chunk.usage ?? usage;
      }
      assert.equal(text, chatStreamText('openai-chat-stream'));
      assert.ok(usage?.total_tokens);
      const call = await lastCall();
      assert.equal(call.stream, true);
      assert.equal(call.status, 'completed');
      assert.equal(call.responseBody, null);
      assert.equal(call.usage?.totalTokens, usage.total_tokens);
      const events = await h.gateway.store.getStreamEvents(call.callId);
      const replayed = events.map((e) => e.raw).join('');
      const expectedBody = options.keepAliveComments ? replayed : transcript.body;
      assert.equal(replayed, expectedBody, 'recorded events are the bytes the client got');
      assert.ok(events.every((e, i) => i === 0 || e.offsetMs >= events[i - 1]!.offsetMs));
    });
  }

  it('passes a stream through byte for byte (raw client)', async () => {
    const transcript = loadTranscript('openai-chat-stream');
    h.upstream.route('POST', '/v1/chat/completions', transcript, { chunking: 'bytes' });
    const res = await raw('POST', '/openai/v1/chat/completions', {
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.text, transcript.body);
  });

  it('streamed parallel tool calls assemble into the same calls as the transcript', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream-tools'), { chunking: { random: 7 } });
    const stream = openai().chat.completions.stream({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
    });
    const completion = await stream.finalChatCompletion();
    const calls = completion.choices[0]?.message.tool_calls ?? [];
    assert.equal(calls.length, 2);
    for (const c of calls) assert.doesNotThrow(() => JSON.parse((c as { function: { arguments: string } }).function.arguments));
    assert.equal(completion.choices[0]?.finish_reason, 'tool_calls');
    const call = await lastCall();
    assert.equal(call.status, 'completed');
  });

  it('several choices (n=2) stream through', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream-multichoice'), { chunking: { size: 5 } });
    const completion = await openai().chat.completions.stream({ model: 'gpt-4o-mini', n: 2, messages: [{ role: 'user', content: 'two' }] }).finalChatCompletion();
    assert.equal(completion.choices.length, 2);
    assert.ok(completion.choices.every((c) => (c.message.content ?? '').length > 0));
  });

  it('Responses API, streamed and not', async () => {
    h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses'));
    const plain = await openai().responses.create({ model: 'gpt-4o-mini', input: 'hello' });
    assert.ok(plain.output_text.length > 0);
    h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses-stream'), { chunking: 'bytes' });
    const stream = openai().responses.stream({ model: 'gpt-4o-mini', input: 'hello' });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => {
      deltas += e.delta;
    });
    const final = await stream.finalResponse();
    assert.equal(deltas, final.output_text);
    const call = await lastCall();
    assert.equal(call.endpoint, 'openai.responses');
    assert.equal(call.status, 'completed');
    assert.ok(call.usage?.outputTokens);
  });

  it('embeddings (float and the SDK default base64) and models', async () => {
    h.upstream.route('POST', '/v1/embeddings', loadTranscript('openai-embeddings-base64'));
    const emb = await openai().embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    assert.ok(emb.data[0]!.embedding.length > 0);
    h.upstream.route('POST', '/v1/embeddings', loadTranscript('openai-embeddings'));
    const floats = await openai().embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float' });
    assert.ok(floats.data.length > 0);
    h.upstream.route('GET', '/v1/models', loadTranscript('openai-models'));
    const models = [];
    for await (const m of openai().models.list()) models.push(m.id);
    assert.ok(models.length > 1);
  });

  it('upstream errors keep their status and shape (429 → RateLimitError)', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-error-429'));
    const error = await openai()
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.RateLimitError);
    assert.equal(error.status, 429);
    assert.match(error.message, /Rate limit/i);
    assert.equal((await lastCall()).status, 'failed');
  });

  it('an upstream 401 never reveals any part of the provider key', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-error-401'));
    const res = await raw('POST', '/openai/v1/chat/completions', {
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 401);
    assert.ok(!/sk-|\*\*\*\*|abcd/.test(res.text), res.text);
    assert.match(res.text, /refused the gateway's credentials/);
    const call = await lastCall();
    assert.ok(!/sk-|\*\*\*\*/.test(JSON.stringify(call)));
  });

  it('an upstream that dies mid-stream gives the SDK an error, not a silently short answer', async () => {
    const transcript = loadTranscript('openai-chat-stream');
    h.upstream.route('POST', '/v1/chat/completions', transcript, { chunking: { size: 50 }, dieAfterBytes: Math.floor(transcript.body.length / 2) });
    const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const error = await (async () => {
      for await (const _ of stream) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, /ended the stream before it was complete/);
    const call = await lastCall();
    assert.equal(call.status, 'failed');
    assert.equal(call.errorCode, 'AIGOV_E_UPSTREAM_STREAM_BROKEN');
  });

  it('refuses models outside the allowlist and filters the model list', async () => {
    const g = await startHarness({ openaiModels: ['gpt-4o-mini'] });
    try {
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      const error = await client.chat.completions.create({ model: 'gpt-5-secret', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.PermissionDeniedError);
      assert.match(error.message, /gpt-5-secret.*not enabled/);
      assert.equal(g.upstream.received.length, 0);
      g.upstream.route('GET', '/v1/models', loadTranscript('openai-models'));
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.deepEqual(ids, ids.filter((id) => id === 'gpt-4o-mini'));
    } finally {
      await g.close();
    }
  });
});

describe('Anthropic through the gateway', () => {
  it('messages: x-api-key swapped in, answer intact', async () => {
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
    const message = await anthropic().messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(message, JSON.parse(loadTranscript('anthropic-messages').body));
    const [sent] = h.upstream.received;
    assert.equal(sent?.headers['x-api-key'], ANTHROPIC_KEY);
    assert.equal(sent?.headers.authorization, undefined);
    assert.ok(sent?.headers['anthropic-version']);
    const call = await lastCall();
    assert.equal(call.endpoint, 'anthropic.messages');
    assert.equal(call.usage?.inputTokens, message.usage.input_tokens);
  });

  for (const { name, options } of CHUNKINGS) {
    it(`streamed tool use (${name} chunking) assembles the same input`, async () => {
      h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream-tools'), options);
      const final = await anthropic()
        .messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'weather' }], tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }] })
        .finalMessage();
      const toolUse = final.content.find((b) => b.type === 'tool_use');
      assert.ok(toolUse && typeof toolUse.input === 'object');
      assert.equal(final.stop_reason, 'tool_use');
      const call = await lastCall();
      assert.equal(call.status, 'completed');
      assert.ok(call.usage?.outputTokens);
    });
  }

  it('accepts the token as x-api-key (how Anthropic clients send their key) and never forwards it', async () => {
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
    const res = await raw('POST', '/anthropic/v1/messages', {
      headers: { 'x-api-key': h.token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(h.upstream.received[0]?.headers['x-api-key'], ANTHROPIC_KEY);
    const bad = await raw('POST', '/anthropic/v1/messages', { headers: { 'x-api-key': 'nope', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 401);
  });

  it('streamed text, 1-byte chunking', async () => {
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream'), { chunking: 'bytes' });
    const direct = loadTranscript('anthropic-messages-stream')
      .body.split('\n')
      .filter((l) => l.startsWith('data: {') && l.includes('text_delta'))
      .map((l) => (JSON.parse(l.slice(6)) as { delta: { text: string } }).delta.text)
      .join('');
    const final = await anthropic().messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal(final.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), direct);
  });

  it('an in-stream overloaded error reaches the SDK as an error; a 529 keeps its status', async () => {
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-stream-error'), { chunking: { size: 3 } });
    const error = await anthropic()
      .messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage()
      .catch((e: unknown) => e);
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.match(error.message, /overloaded/i);

    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-error-529'));
    const e529 = await anthropic()
      .messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    assert.ok(e529 instanceof Anthropic.APIError);
    assert.equal(e529.status, 529);
  });
});

describe('identity: every proxied request needs a valid token', () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  async function withAuth(authorization: string | null, path = '/openai/v1/chat/completions'): Promise<{ status: number; headers: Headers; text: string }> {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authorization !== null) headers.authorization = authorization;
    return raw('POST', path, { headers, body });
  }

  it('no token: 401 in the OpenAI shape with WWW-Authenticate; the SDK raises AuthenticationError', async () => {
    const res = await withAuth(null);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="aigov"/);
    const err = (JSON.parse(res.text) as { error: { code: string; type: string } }).error;
    assert.equal(err.code, 'AIGOV_E_AUTH_MISSING');
    assert.equal(err.type, 'authentication_error');
    const sdkError = await openai('not-a-jwt').chat.completions.create({ model: 'm', messages: [] }).catch((e: unknown) => e);
    assert.ok(sdkError instanceof OpenAI.AuthenticationError);
    assert.equal(h.upstream.received.length, 0);
  });

  it('no token on the Anthropic mount: 401 in the Anthropic shape', async () => {
    const res = await withAuth(null, '/anthropic/v1/messages');
    assert.equal(res.status, 401);
    const parsed = JSON.parse(res.text) as { type: string; error: { type: string } };
    assert.equal(parsed.type, 'error');
    assert.equal(parsed.error.type, 'authentication_error');
    const sdkError = await anthropic('bad').messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    assert.ok(sdkError instanceof Anthropic.AuthenticationError);
  });

  it('wrong audience, wrong issuer, expired, not yet valid, alg none, tampered, unknown kid: all 401, nothing forwarded', async () => {
    const claims = decodeJwt(h.token);
    const [header, payload, signature] = h.token.split('.') as [string, string, string];
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${signature}`;
    const none = new UnsecuredJWT({ ...claims }).encode();
    const { privateKey } = await import('jose').then((j) => j.generateKeyPair('ES256'));
    const sign = (over: Record<string, unknown>, kid = 'unknown-kid'): Promise<string> =>
      new SignJWT({ ...claims, ...over }).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).sign(privateKey);
    // Tokens signed with the IdP's real key but wrong in one claim each.
    const idpJwk = (JSON.parse(readFileSync(join(h.dir, 'idp', 'idp-jwks.json'), 'utf8')) as { keys: JWK[] }).keys[0]!;
    const idpKey = await importJWK(idpJwk, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const signIdp = (over: Record<string, unknown>): Promise<string> =>
      new SignJWT({ ...claims, ...over }).setProtectedHeader({ alg: 'ES256', kid: idpJwk.kid!, typ: 'at+jwt' }).sign(idpKey);
    assert.equal((await withAuth(`Bearer ${await signIdp({})}`)).status, 200, 'control: a re-signed valid token passes');
    h.upstream.reset();
    const cases: [string, string, RegExp][] = [
      ['wrong audience', await signIdp({ aud: 'https://other.example.com' }), /audience[\s\S]*AIGOV_E_AUTH_INVALID/],
      ['wrong issuer', await signIdp({ iss: 'https://evil.example.com' }), /issuer[\s\S]*AIGOV_E_AUTH_INVALID/],
      ['expired', await signIdp({ iat: now - 7200, exp: now - 3600 }), /AIGOV_E_AUTH_EXPIRED/],
      ['not yet valid', await signIdp({ nbf: now + 3600 }), /AIGOV_E_AUTH_INVALID/],
      ['alg none', none, /AIGOV_E_AUTH_INVALID/],
      ['tampered', tampered, /AIGOV_E_AUTH_INVALID/],
      ['unknown kid', await sign({}), /AIGOV_E_AUTH_INVALID/],
      ['garbage', 'abc.def.ghi', /AIGOV_E_AUTH_INVALID/],
    ];
    for (const [label, token, code] of cases) {
      const res = await withAuth(`Bearer ${token}`);
      assert.equal(res.status, 401, label);
      assert.match(res.text, code, label);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/, label);
      assert.ok(!res.text.includes('evil.example') && !res.text.includes('other.example'), `${label}: claim value echoed`);
      assert.ok(!res.text.includes(token), `${label}: token echoed`);
    }
    assert.ok(payload.length > 0);
    assert.equal(h.upstream.received.length, 0);
  });

  it('a token for another user works and is recorded as that user', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const bobToken = await h.tokenFor('bob');
    await openai(bobToken).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const call = await lastCall();
    assert.equal(call.principal.subject, 'bob');
    assert.deepEqual(call.principal.groups, ['approvers', 'security']);
  });
});

describe('bad input gets a clear, provider-shaped error and loses nothing', () => {
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${h.token}`, 'content-type': 'application/json' });

  it('malformed JSON → 400 naming the position, never echoing the body', async () => {
    const res = await raw('POST', '/openai/v1/chat/completions', { headers: auth(), body: '{"model": "x", "messages": [ {"role": "user", "content": "my secret jane@x.com" ' });
    assert.equal(res.status, 400);
    assert.match(res.text, /AIGOV_E_BAD_JSON/);
    assert.ok(!res.text.includes('jane@x.com'));
    assert.equal(h.upstream.received.length, 0);
  });

  it('a body of the wrong shape → 400 that the SDK raises as BadRequestError', async () => {
    const error = await openai()
      .chat.completions.create({ model: 'gpt-4o-mini', messages: 'hello' as unknown as [] })
      .catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.match(error.message, /`messages` must be an array/);
  });

  it('a body over the limit → 413 without reading it all', async () => {
    const g = await startHarness({ limits: { max_body_bytes: 4096 } });
    try {
      const res = await fetch(`${g.url}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${g.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] }),
      });
      assert.equal(res.status, 413);
      assert.match(await res.text(), /exceeds the gateway limit of 4096 bytes/);
      assert.equal(g.upstream.received.length, 0);
    } finally {
      await g.close();
    }
  });

  it('unknown endpoints → 404 in provider shape, for both mounts and outside them (no open proxy)', async () => {
    for (const path of ['/openai/v1/files', '/openai/v1/../../etc/passwd', '/anthropic/v1/complete', '/nope/v1/chat/completions', '/openai/admin']) {
      const res = await raw('POST', path, { headers: auth(), body: '{}' });
      assert.equal(res.status, 404, path);
      assert.match(res.text, /AIGOV_E_UNKNOWN_ENDPOINT|not_found_error/, path);
    }
    const wrongMethod = await raw('GET', '/openai/v1/chat/completions', { headers: auth() });
    assert.equal(wrongMethod.status, 405);
    assert.equal(h.upstream.received.length, 0);
  });

  it('an invalid session header → 400', async () => {
    const res = await raw('POST', '/openai/v1/chat/completions', { headers: { ...auth(), 'x-aigov-session': 'bad session!' }, body: '{}' });
    assert.equal(res.status, 400);
    assert.match(res.text, /AIGOV_E_BAD_SESSION/);
  });

  it('upstream down → 502 naming the provider', async () => {
    const g = await startHarness();
    await g.upstream.close();
    try {
      const error = await new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 502);
      assert.match(error.message, /`openai` could not be reached/);
    } finally {
      await g.gateway.close();
      await g.idp.close();
    }
  });
});

describe('recording is the system of record', () => {
  it('calls carrying the same x-aigov-session header form one session', async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
    const session = `ses_test_${Date.now()}`;
    const headers = { 'x-aigov-session': session };
    await openai(h.token, { defaultHeaders: headers }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '1' }] });
    await openai(h.token, { defaultHeaders: headers }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '2' }] });
    await new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0, defaultHeaders: headers }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: '3' }] });
    await h.gateway.store.flush();
    const calls = await h.gateway.store.listCalls(session);
    assert.deepEqual(calls.map((c) => c.provider), ['openai', 'openai', 'anthropic']);
    assert.ok(!h.upstream.received.some((r) => 'x-aigov-session' in r.headers), 'aigov headers stay at the gateway');
  });

  it("a session id that belongs to another user is refused (409), not merged", async () => {
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const headers = { 'x-aigov-session': `ses_owned_${Date.now()}` };
    await openai(h.token, { defaultHeaders: headers }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mine' }] });
    const bob = await h.tokenFor('bob');
    const error = await openai(bob, { defaultHeaders: headers }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'theirs' }] }).catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.ConflictError, String(error));
    assert.match(error.message, /belongs to another user/);
    assert.equal(h.upstream.received.length, 1, 'the refused call was not forwarded');
  });

  it('a store that cannot record → 503 and nothing is forwarded (fail closed)', async () => {
    const g = await startHarness({ storeSubdir: 'data' });
    try {
      g.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
      const client = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 });
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'before' }] });
      assert.equal(g.upstream.received.length, 1);
      rmSync(join(g.dir, 'data'), { recursive: true });
      const error = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'after' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 503);
      assert.match(error.message, /not sent: the gateway could not record it/);
      assert.equal(g.upstream.received.length, 1, 'nothing was forwarded');
      const ready = await fetch(`${g.url}/readyz`);
      assert.equal(ready.status, 503);
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      assert.match(metrics, /aigov_store_errors_total\{operation="record_request"\} 1/);
    } finally {
      await g.close();
    }
  });

  it('a client that disconnects mid-stream: upstream aborted, call finalized as aborted', async () => {
    const transcript = loadTranscript('openai-chat-stream');
    h.upstream.route('POST', '/v1/chat/completions', transcript, { chunking: { size: 20 }, chunkDelayMs: 5 });
    const controller = new AbortController();
    const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: controller.signal });
    let n = 0;
    await (async () => {
      for await (const _ of stream) {
        if (++n === 3) controller.abort();
      }
    })().catch(() => undefined);
    const deadline = Date.now() + 5000;
    let call = await lastCall();
    while (call.status === 'pending' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      call = await lastCall();
    }
    assert.equal(call.status, 'aborted');
    assert.equal(call.errorCode, 'client_aborted');
    const events = await h.gateway.store.getStreamEvents(call.callId);
    assert.ok(events.length > 0 && events.map((e) => e.raw).join('').length < transcript.body.length);
  });

  it('a policy hook that blocks: provider-shaped 403, recorded as blocked, nothing forwarded', async () => {
    const g = await startHarness({
      hooks: {
        evaluateRequest: () => ({
          decisions: [{ action: 'block', ruleId: 'no-weather', reason: 'weather questions are not allowed', mode: 'enforce' }],
          refuse: { kind: 'block', ruleId: 'no-weather', reason: 'weather questions are not allowed' },
          rewriteRequest: null,
          rewriteResponse: null,
          judgeToolCall: null,
        }),
      },
    });
    try {
      const error = await new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0 }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'weather?' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.PermissionDeniedError);
      assert.match(error.message, /rule `no-weather`: weather questions are not allowed/);
      assert.equal(g.upstream.received.length, 0);
      await g.gateway.store.flush();
      const [session] = await g.gateway.store.listSessions();
      const [call] = await g.gateway.store.listCalls(session!.sessionId);
      assert.equal(call?.status, 'blocked');
      assert.equal(call?.decisions[0]?.ruleId, 'no-weather');
    } finally {
      await g.close();
    }
  });
});

describe('backpressure', () => {
  it('a client that stops reading makes the gateway stop reading the upstream (bounded buffering)', async (t) => {
    // An upstream that would stream 200 MB, writing only as fast as the gateway takes it.
    const chunk = `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'y'.repeat(60_000) }, finish_reason: null }] })}\n\n`;
    let written = 0;
    const upstream = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const pump = (): void => {
        while (written < 200e6) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end('data: [DONE]\n\n');
      };
      pump();
      res.on('close', () => res.removeAllListeners('drain'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    const g = await startHarness({ openaiBaseUrl: `http://127.0.0.1:${port}/v1` });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${g.url}/openai/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${g.token}`, 'content-type': 'application/json' } }, (res) => {
          res.once('data', () => {
            res.pause();
            setTimeout(() => {
              res.destroy();
              resolve();
            }, 1000);
          });
        });
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'big' }], stream: true }));
      });
      t.diagnostic(`upstream wrote ${Math.round(written / 1e6)} MB while the client was stalled`);
      // Socket buffers on the way hold some MB; an unbounded gateway would have taken all 200 MB.
      assert.ok(written < 25e6, `the upstream wrote ${Math.round(written / 1e6)} MB while the client was stalled`);
    } finally {
      await g.close();
      upstream.closeAllConnections();
      upstream.close();
    }
  });
});
