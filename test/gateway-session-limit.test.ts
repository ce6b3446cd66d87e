/**
 * limits.max_calls_per_session, attacked through the real dev gateway (embedded IdP, SQLite, the
 * dev model upstream, a policy) with the official SDKs: a client flooding one session
 * gets a clear 429 past the limit, which the SDKs do not retry, and nothing past it is recorded or
 * sent; other sessions and other users go on. Also the dev gateway with a real agent's request:
 * count_tokens answered, a scripted `rm -rf` refused by policy, ordinary text answered in text.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { buildGatewayConfig } from '../src/config/load.ts';
import { SseParser } from '../src/core/sse.ts';
import { DEV_MAX_CALLS_PER_SESSION, startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { SessionCallLimit } from '../src/gateway/session-call-limit.ts';
import { CLAUDE_CODE, claudeCodeBody } from './support/agent-fixtures.ts';
import { deviceLogin } from './support/dev-login.ts';

const LIMIT = 5;

let dir: string;
let gateway: RunningDevGateway;
let alice: string;
let bob: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-session-limit-'));
  // The example policy's rule on destructive tool arguments (its rule against shell tools would refuse Claude Code outright).
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, `version: 1
rules:
  - id: block-destructive-tool-arguments
    reason: a tool call asks for a recursive delete
    match: { tools: { arguments: ['rm\\s+-(?:rf|fr)\\s+(?:/|~)'] } }
    action: block
`);
  gateway = await startDevGateway({
    version: 'test',
    port: 0,
    stateDir: join(dir, 'gateway'),
    logLevel: 'silent',
    maxCallsPerSession: LIMIT,
    policyFile,
  });
  alice = (await deviceLogin(gateway.idp, 'aigov-cli', 'alice', { resource: gateway.url })).accessToken;
  bob = (await deviceLogin(gateway.idp, 'aigov-cli', 'bob', { resource: gateway.url })).accessToken;
});
after(async () => {
  await gateway.close();
  await rm(dir, { recursive: true, force: true });
});

/** An OpenAI client in `session` that retries like a real one (maxRetries 3) and counts the requests it sends. */
function openaiIn(token: string, session: string | null, maxRetries = 3): { client: OpenAI; sent: () => number } {
  let sent = 0;
  const client = new OpenAI({
    baseURL: `${gateway.url}/openai/v1`,
    apiKey: token,
    maxRetries,
    defaultHeaders: session === null ? {} : { 'x-aigov-session': session },
    fetch: (input, init) => {
      sent++;
      return fetch(input, init);
    },
  });
  return { client, sent: () => sent };
}

const ask = (client: OpenAI, content = 'hello') => client.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content }] });

async function recordedCalls(sessionId: string): Promise<number> {
  await gateway.store.flush();
  return (await gateway.store.listCalls(sessionId)).length;
}

describe('limits.max_calls_per_session', () => {
  it('is off in a configured gateway unless set, and 300 in the dev gateway', async () => {
    const plain = await startDevGateway({ version: 'test', port: 0, stateDir: join(dir, 'default'), logLevel: 'silent' });
    try {
      assert.equal(plain.config.limits.max_calls_per_session, 300);
    } finally {
      await plain.close();
    }
    const config = buildGatewayConfig(
      {
        identity: { issuer: 'https://idp.example.test', audience: 'https://gw.example.test', cli_client_id: 'aigov-cli' },
        providers: [{ name: 'openai', kind: 'openai', base_url: 'https://api.openai.com/v1', api_key: 'sk-test' }],
      },
      'inline',
    );
    assert.equal(config.limits.max_calls_per_session, 0);
    assert.equal(DEV_MAX_CALLS_PER_SESSION, 300);
    assert.equal(gateway.config.limits.max_calls_per_session, LIMIT);
    assert.throws(
      () =>
        buildGatewayConfig(
          {
            identity: { issuer: 'https://idp.example.test', audience: 'https://gw.example.test', cli_client_id: 'aigov-cli' },
            providers: [{ name: 'openai', kind: 'openai', base_url: 'https://api.openai.com/v1', api_key: 'sk-test' }],
            limits: { max_calls_per_session: -1 },
          },
          'inline',
        ),
      /limits\.max_calls_per_session/,
    );
  });

  it('a client flooding one session, all at once, gets exactly LIMIT answers and a clear 429 for the rest; the SDK does not retry it; nothing past it is recorded', async () => {
    const { client, sent } = openaiIn(alice, 'run-flood');
    const outcomes = await Promise.allSettled(Array.from({ length: 3 * LIMIT }, (_, i) => ask(client, `flood ${i}`)));
    const ok = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    assert.equal(ok.length, LIMIT);
    assert.equal(refused.length, 2 * LIMIT);
    for (const error of refused) {
      assert.ok(error instanceof OpenAI.RateLimitError, String(error));
      assert.equal(error.status, 429);
      assert.equal(error.code, 'AIGOV_E_SESSION_CALL_LIMIT');
      assert.equal(error.headers.get('x-should-retry'), 'false');
      assert.equal(error.headers.get('x-aigov-session-id'), 'run-flood');
      assert.match(error.message, /This session has made 5 calls, the most the gateway allows one session \(limits\.max_calls_per_session\); this one was not sent\./);
      assert.match(error.message, /Start a new session \(a new `aigov run`\)/);
    }
    assert.equal(sent(), 3 * LIMIT, 'no retries of a 429 that says x-should-retry: false');
    assert.equal(await recordedCalls('run-flood'), LIMIT, 'refused calls are neither recorded nor sent');

    // Still refused later, streamed too, and in Anthropic's shape on the Anthropic route.
    await assert.rejects(client.chat.completions.create({ model: 'aigov-dev', stream: true, messages: [{ role: 'user', content: 'x' }] }), OpenAI.RateLimitError);
    const anthropic = new Anthropic({ baseURL: `${gateway.url}/anthropic`, apiKey: alice, maxRetries: 3, defaultHeaders: { 'x-aigov-session': 'run-flood' } });
    const error = await anthropic.messages.create({ model: 'aigov-dev', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    assert.ok(error instanceof Anthropic.RateLimitError, String(error));
    assert.deepEqual((error.error as { type: string; error: { type: string } }).type, 'error');
    assert.equal((error.error as { error: { type: string } }).error.type, 'rate_limit_error');
    assert.equal(await recordedCalls('run-flood'), LIMIT);

    // A new session, and calls without a session header (each its own), are not held back.
    assert.match((await ask(openaiIn(alice, 'run-next').client)).choices[0]?.message.content ?? '', /aigov dev model/);
    for (let i = 0; i < LIMIT + 2; i++) await ask(openaiIn(alice, null).client);
  });

  it("another user naming the session neither uses up nor resets its owner's count", async () => {
    await ask(openaiIn(alice, 'run-shared').client);
    // The 409 carries x-should-retry: false, so the SDK (3 retries allowed) sends each request once.
    const { client: intruder, sent } = openaiIn(bob, 'run-shared');
    const codes: string[] = [];
    for (let i = 0; i < LIMIT + 2; i++) codes.push(await ask(intruder).then(() => 'ok', (e: unknown) => (e instanceof OpenAI.APIError ? String(e.code) : String(e))));
    assert.deepEqual(codes, [...Array<string>(LIMIT).fill('AIGOV_E_SESSION_CONFLICT'), 'AIGOV_E_SESSION_CALL_LIMIT', 'AIGOV_E_SESSION_CALL_LIMIT']);
    assert.equal(sent(), LIMIT + 2, 'no retries');
    const owner = openaiIn(alice, 'run-shared').client;
    for (let i = 1; i < LIMIT; i++) await ask(owner);
    await assert.rejects(ask(owner), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'AIGOV_E_SESSION_CALL_LIMIT');
    assert.equal(await recordedCalls('run-shared'), LIMIT);
  });

  it('tracks a bounded number of sessions, forgetting the least recently active first', () => {
    const limit = new SessionCallLimit(2, 3);
    const who = { subject: 'alice', email: null, groups: [], issuer: 'https://idp.test', clientId: null };
    assert.equal(limit.admit(who, 'a'), null);
    assert.equal(limit.admit(who, 'a'), null);
    assert.equal(limit.admit(who, 'a')?.code, 'AIGOV_E_SESSION_CALL_LIMIT');
    for (const s of ['b', 'c']) assert.equal(limit.admit(who, s), null);
    assert.equal(limit.admit(who, 'a')?.code, 'AIGOV_E_SESSION_CALL_LIMIT', 'a refused session stays the most recent');
    assert.equal(limit.admit(who, 'd'), null);
    assert.equal(limit.tracked, 3);
    assert.equal(limit.admit(who, 'a')?.code, 'AIGOV_E_SESSION_CALL_LIMIT', 'b was forgotten, not a');
    assert.equal(limit.admit(who, null), null, 'calls without a session are not counted');
    assert.equal(new SessionCallLimit(0).admit(who, 'a'), null);
  });
});

describe('the dev gateway and Claude Code 2.1.337', () => {
  const headers = (): Record<string, string> => ({ ...CLAUDE_CODE.headers, 'x-api-key': alice, 'content-length': '' });
  const post = (path: string, body: unknown) => {
    const h = headers();
    delete h['content-length'];
    delete h['accept-encoding'];
    return fetch(`${gateway.url}/anthropic${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) });
  };

  it('answers count_tokens (POST /v1/messages/count_tokens?beta=true, and without /v1) with {"input_tokens": N}', async () => {
    const { model, messages, system, tools } = claudeCodeBody('say hi', false);
    for (const path of ['/v1/messages/count_tokens?beta=true', '/messages/count_tokens']) {
      const res = await post(path, { model, messages, system, tools });
      assert.equal(res.status, 200, path);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ['input_tokens']);
      assert.ok(typeof body.input_tokens === 'number' && body.input_tokens > 10_000);
    }
  });

  it('ordinary text streams back as text, no tool_use; a scripted `rm -rf ~` with Bash is refused by policy', async () => {
    const ordinary = await post('/v1/messages?beta=true', claudeCodeBody('clean up my home directory', true));
    assert.equal(ordinary.status, 200);
    const events = new SseParser().push(await ordinary.text());
    assert.ok(!events.some((e) => e.data?.includes('"tool_use"')), 'no tool_use from ordinary text');
    const text = events.map((e) => (e.data ? (JSON.parse(e.data) as { delta?: { text?: string } }).delta?.text ?? '' : '')).join('');
    assert.match(text, /^\[aigov dev model\] You said: "clean up my home directory"\./);
    assert.equal(events.at(-1)?.event, 'message_stop');

    const scripted = await post('/v1/messages?beta=true', claudeCodeBody('run `rm -rf ~` with Bash', true));
    const refused = await scripted.text();
    assert.match(refused, /aigov blocked Bash `rm -rf ~`: rule block-destructive-tool-arguments/, 'the agent reads what was blocked');
    assert.ok(!refused.includes('"tool_use"') && !refused.includes('input_json_delta'), 'no part of the refused call reached the agent');
    assert.match(refused, /"stop_reason":"end_turn"/);
  });
});
