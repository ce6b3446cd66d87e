/**
 * What the agents send reaches the provider as they sent it: the recorded Claude Code and Codex
 * requests (test/fixtures/agents) go through the gateway byte for byte with the headers their
 * providers expect, compressed request bodies are decoded (the body limit counts decoded bytes),
 * and a Responses WebSocket handshake is refused with the 426 Codex falls back from at once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { agentLaunch, codexProviderFlags } from '../src/cli/agent-launch.ts';
import { ANTHROPIC_KEY, OPENAI_KEY, startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

interface AgentRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const fixture = (name: string): AgentRequest => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'agents', name), 'utf8')) as AgentRequest;
const CLAUDE = fixture('claude-code-2.1.337-messages.json');
const CODEX = fixture('codex-0.171.0-responses.json');

const BODY_LIMIT = 256 * 1024;

let h: Harness;
before(async () => {
  h = await startHarness({ limits: { max_body_bytes: BODY_LIMIT } });
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
  h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses-stream'));
  h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream'));
});

interface Sent {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly ms: number;
}

/** One raw HTTP/1.1 request (fetch would add and normalize headers). */
function send(method: string, path: string, headers: Record<string, string>, body: Buffer | string = ''): Promise<Sent> {
  const url = new URL(h.url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The agent's own headers, its credential replaced by the aigov token, minus what the transport sets. */
function agentHeaders(agent: AgentRequest, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(agent.headers)) {
    if (['content-length', 'connection', 'authorization', 'x-api-key'].includes(name)) continue;
    headers[name] = value;
  }
  if ('x-api-key' in agent.headers) headers['x-api-key'] = h.token;
  else headers.authorization = `Bearer ${h.token}`;
  return { ...headers, ...extra };
}

describe('agent requests pass through unchanged', () => {
  it("Codex's Responses request: body byte for byte, its session and turn headers, the gateway's key only", async () => {
    const res = await send('POST', `/openai${CODEX.url}`, agentHeaders(CODEX), CODEX.body);
    assert.equal(res.status, 200, res.body);
    const [got] = h.upstream.received;
    assert.ok(got);
    assert.equal(got.body, CODEX.body);
    for (const name of ['originator', 'session-id', 'thread-id', 'x-client-request-id', 'x-codex-turn-metadata', 'x-codex-window-id', 'x-codex-beta-features', 'x-openai-internal-codex-responses-lite']) {
      assert.equal(got.headers[name], CODEX.headers[name], `${name} reaches the provider`);
    }
    assert.equal(got.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(got.headers['accept-encoding'], 'identity', 'the gateway reads the answer, so it asks for it uncompressed');
  });

  it("Claude Code's Messages request (?beta=true): body byte for byte, x-app and its session id, the gateway's key only", async () => {
    const res = await send('POST', `/anthropic${CLAUDE.url}`, agentHeaders(CLAUDE), CLAUDE.body);
    assert.equal(res.status, 200, res.body);
    const [got] = h.upstream.received;
    assert.ok(got);
    assert.equal(got.path, '/v1/messages?beta=true');
    assert.equal(got.body, CLAUDE.body);
    for (const name of ['x-app', 'x-claude-code-session-id', 'anthropic-beta', 'anthropic-version', 'x-stainless-package-version']) {
      assert.equal(got.headers[name], CLAUDE.headers[name], `${name} reaches the provider`);
    }
    assert.equal(got.headers['x-api-key'], ANTHROPIC_KEY);
    assert.equal(got.headers.authorization, undefined);
  });

  it('headers tied to a credential or to the connection stay at the gateway', async () => {
    const headers = agentHeaders(CODEX, { 'openai-organization': 'org-attacker', 'openai-project': 'proj_x', cookie: 'a=b', 'x-forwarded-for': '10.0.0.1', 'chatgpt-account-id': 'acct' });
    const res = await send('POST', `/openai${CODEX.url}`, headers, CODEX.body);
    assert.equal(res.status, 200, res.body);
    const [got] = h.upstream.received;
    for (const name of ['openai-organization', 'openai-project', 'cookie', 'x-forwarded-for', 'chatgpt-account-id']) assert.equal(got?.headers[name], undefined, name);
  });
});

describe('compressed request bodies', () => {
  const codings: [string, (b: Buffer) => Buffer][] = [
    ['gzip', (b) => gzipSync(b)],
    ['deflate', (b) => deflateSync(b)],
    ['br', (b) => brotliCompressSync(b)],
    ['zstd', (b) => zstdCompressSync(b)],
  ];
  for (const [coding, compress] of codings) {
    it(`${coding}: decoded, governed and forwarded as identity bytes`, async () => {
      const res = await send('POST', `/openai${CODEX.url}`, agentHeaders(CODEX, { 'content-encoding': coding }), compress(Buffer.from(CODEX.body)));
      assert.equal(res.status, 200, res.body);
      const [got] = h.upstream.received;
      assert.equal(got?.body, CODEX.body);
      assert.equal(got?.headers['content-encoding'], undefined);
    });
  }

  it('two codings are undone from the last one applied', async () => {
    const body = zstdCompressSync(gzipSync(Buffer.from(CLAUDE.body)));
    const res = await send('POST', `/anthropic${CLAUDE.url}`, agentHeaders(CLAUDE, { 'content-encoding': 'gzip, zstd' }), body);
    assert.equal(res.status, 200, res.body);
    assert.equal(h.upstream.received[0]?.body, CLAUDE.body);
  });

  it('a compression bomb stops at the body limit on its decoded size (413), the connection still answers', async () => {
    const bomb = zstdCompressSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    assert.ok(bomb.length < BODY_LIMIT / 10, 'the bomb itself is small');
    const res = await send('POST', '/openai/v1/responses', { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', 'content-encoding': 'zstd' }, bomb);
    assert.equal(res.status, 413);
    assert.match(res.body, /AIGOV_E_BODY_TOO_LARGE/);
    assert.equal(h.upstream.received.length, 0);
  });

  it('an unknown coding is refused with 415 naming it; corrupt data likewise; nothing goes upstream', async () => {
    const headers = { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' };
    const unknown = await send('POST', '/openai/v1/responses', { ...headers, 'content-encoding': 'compress' }, 'xx');
    assert.equal(unknown.status, 415);
    assert.match(unknown.body, /AIGOV_E_BAD_CONTENT_ENCODING/);
    assert.match(unknown.body, /content-encoding \\"compress\\"/);
    const corrupt = await send('POST', '/openai/v1/responses', { ...headers, 'content-encoding': 'gzip' }, gzipSync(Buffer.from(CODEX.body)).subarray(0, 200));
    assert.equal(corrupt.status, 415);
    assert.match(corrupt.body, /corrupt or cut short/);
    assert.equal(h.upstream.received.length, 0);
  });
});

describe('Responses WebSocket', () => {
  it('a WebSocket handshake gets 426 at once, in OpenAI shape, and reaches no upstream', async () => {
    const res = await send('GET', '/openai/v1/responses', {
      authorization: `Bearer ${h.token}`,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    assert.equal(res.status, 426);
    assert.match(res.body, /AIGOV_E_WEBSOCKET_UNSUPPORTED/);
    assert.ok(res.ms < 100, `answered in ${res.ms.toFixed(1)} ms`);
    assert.equal(h.upstream.received.length, 0);
  });
});

describe('aigov run starts the agents in their own words', () => {
  const env = { OPENAI_BASE_URL: 'http://127.0.0.1:4123/openai/v1', OPENAI_API_KEY: 'aigovrun_x', ANTHROPIC_BASE_URL: 'http://127.0.0.1:4123/anthropic', ANTHROPIC_API_KEY: 'aigovrun_x', PATH: '/usr/bin' };
  const argsOf = (command: string, args: string[], e: NodeJS.ProcessEnv = env): readonly string[] => agentLaunch(command, args, e).args;

  it('codex (by any path) gets the -c overrides ahead of the user arguments, which keep the last word', () => {
    for (const command of ['codex', '/usr/local/bin/codex', './node_modules/.bin/codex', 'codex.js']) {
      assert.deepEqual(argsOf(command, ['exec', 'say hi']), [...codexProviderFlags(env.OPENAI_BASE_URL), 'exec', 'say hi']);
      assert.equal(agentLaunch(command, [], env).env, env, 'its environment is the run\'s');
    }
    assert.deepEqual(codexProviderFlags(env.OPENAI_BASE_URL), [
      '-c',
      'model_provider="aigov"',
      '-c',
      'model_providers.aigov={ name = "aigov", base_url = "http://127.0.0.1:4123/openai/v1", env_key = "OPENAI_API_KEY", wire_api = "responses" }',
    ]);
  });

  it('claude gets the run key as ANTHROPIC_AUTH_TOKEN (it asks before using an ANTHROPIC_API_KEY), its arguments unchanged', () => {
    for (const command of ['claude', '/home/me/.local/bin/claude', 'node_modules/.bin/claude']) {
      const launch = agentLaunch(command, ['-p', 'hi'], env);
      assert.deepEqual(launch.args, ['-p', 'hi']);
      assert.equal(launch.env.ANTHROPIC_AUTH_TOKEN, 'aigovrun_x');
      assert.equal(launch.env.ANTHROPIC_API_KEY, undefined);
      assert.equal(launch.env.ANTHROPIC_BASE_URL, env.ANTHROPIC_BASE_URL);
      assert.equal(launch.env.PATH, '/usr/bin');
    }
  });

  it('through a package runner: npx codex, npx @openai/codex@version, npx -y @anthropic-ai/claude-code', () => {
    const flags = codexProviderFlags(env.OPENAI_BASE_URL);
    assert.deepEqual(argsOf('npx', ['codex', 'exec', 'hi']), ['codex', ...flags, 'exec', 'hi']);
    assert.deepEqual(argsOf('/usr/bin/npx', ['-y', '@openai/codex@0.171.0', 'exec', 'hi']), ['-y', '@openai/codex@0.171.0', ...flags, 'exec', 'hi']);
    assert.deepEqual(argsOf('bunx', ['@openai/codex']), ['@openai/codex', ...flags]);
    const claude = agentLaunch('npx', ['--yes', '@anthropic-ai/claude-code', '-p', 'hi'], env);
    assert.deepEqual(claude.args, ['--yes', '@anthropic-ai/claude-code', '-p', 'hi']);
    assert.equal(claude.env.ANTHROPIC_AUTH_TOKEN, 'aigovrun_x');
    assert.equal(claude.env.ANTHROPIC_API_KEY, undefined);
    // Too uncertain to touch: a runner option with a value, another package.
    assert.deepEqual(argsOf('npx', ['-p', '@openai/codex', 'codex', 'exec']), ['-p', '@openai/codex', 'codex', 'exec']);
    assert.deepEqual(argsOf('npx', ['codex-cli-clone', 'exec']), ['codex-cli-clone', 'exec']);
    assert.deepEqual(argsOf('npx', ['@openai/codex-sdk']), ['@openai/codex-sdk']);
  });

  it('other programs and a run without the provider are left alone', () => {
    for (const command of ['python3', 'codex-helper', 'claude-wrapper']) assert.deepEqual(agentLaunch(command, ['x'], env), { args: ['x'], env });
    assert.deepEqual(argsOf('codex', ['exec'], {}), ['exec']);
    assert.deepEqual(agentLaunch('claude', ['-p'], { PATH: '/bin' }).env, { PATH: '/bin' });
  });

  it('a base URL cannot break out of its TOML string', () => {
    const [, , , entry] = codexProviderFlags('http://h/"x\\y\n');
    assert.match(entry ?? '', /base_url = "http:\/\/h\/\\"x\\\\y\\u000a"/);
  });
});
