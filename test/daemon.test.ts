/**
 * The daemon with real parts: the dev gateway in-process (embedded oidc-provider, SQLite, the
 * built-in dev model) on a real socket, access tokens from the real device flow, the official
 * OpenAI and Anthropic SDKs pointed at the daemon with a per-run key, the control socket in a
 * temp runtime dir, and — for the on-demand start — a real detached daemon process wired to
 * the real profile settings, file credential store and token refresher.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync, writeFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { AccessToken, TokenSource } from '../src/auth/token-source.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import { buildGatewayConfig } from '../src/config/load.ts';
import { AigovError } from '../src/core/errors.ts';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { startDevIdp, type DevIdp } from '../src/gateway/dev/idp.ts';
import { startDevModel } from '../src/gateway/dev/dev-model.ts';
import { bindServer, startGateway, type RunningGateway } from '../src/gateway/start-gateway.ts';
import { DISCOVERY_PATH, DiscoverySchema, type Discovery } from '../src/protocol/discovery.ts';
import { daemonFiles } from '../src/daemon/control-protocol.ts';
import { connectDaemon, inspectDaemon, stopDaemon } from '../src/daemon/daemon-client.ts';
import { startDaemonRuntime, type RunningDaemon } from '../src/daemon/daemon-main.ts';
import { startDaemonServer, type DaemonServer } from '../src/daemon/daemon-server.ts';
import { deviceLogin, refresh, type DeviceLoginTokens } from './support/dev-login.ts';

const CLIENT_ID = 'aigov-cli';
const MODEL = 'aigov-dev';

/**
 * A TokenSource over the real refresh grant, like the daemon's refresher: caches the access
 * token, refreshes (single-flight) when it is near expiry or invalidated, and rejects with
 * AIGOV_E_SESSION_EXPIRED when the refresh token is refused. `claimedTtlMs` makes it believe a
 * token lives longer than it does (a clock skew), so the gateway is the one to say "expired".
 */
class RefreshingTokenSource implements TokenSource {
  readonly #issuer: string;
  #refreshToken: string;
  #current: AccessToken | null;
  #inflight: Promise<AccessToken> | null = null;
  readonly #claimedTtlMs: number | null;
  refreshes = 0;
  invalidations = 0;

  constructor(issuer: string, tokens: DeviceLoginTokens | { refreshToken: string }, opts: { claimedTtlMs?: number } = {}) {
    this.#issuer = issuer;
    this.#refreshToken = tokens.refreshToken;
    this.#claimedTtlMs = opts.claimedTtlMs ?? null;
    this.#current = 'accessToken' in tokens ? { token: tokens.accessToken, expiresAt: Date.now() + (this.#claimedTtlMs ?? tokens.expiresIn * 1000) } : null;
  }

  async getAccessToken(): Promise<AccessToken> {
    if (this.#current && this.#current.expiresAt - 5000 > Date.now()) return this.#current;
    this.#inflight ??= (async () => {
      try {
        const tokens = await refresh(this.#issuer, CLIENT_ID, this.#refreshToken).catch((error: unknown) => {
          throw new AigovError('AIGOV_E_SESSION_EXPIRED', { profile: 'test' }, { cause: error });
        });
        this.refreshes++;
        this.#refreshToken = tokens.refreshToken;
        this.#current = { token: tokens.accessToken, expiresAt: Date.now() + (this.#claimedTtlMs ?? tokens.expiresIn * 1000) };
        return this.#current;
      } finally {
        this.#inflight = null;
      }
    })();
    return this.#inflight;
  }

  invalidate(): void {
    this.invalidations++;
    this.#current = null;
  }
}

async function fetchDiscovery(gatewayUrl: string): Promise<Discovery> {
  const res = await fetch(`${gatewayUrl}${DISCOVERY_PATH}`);
  return DiscoverySchema.parse(await res.json());
}

async function sessionCount(gateway: { store: RunningGateway['store'] }): Promise<number> {
  await gateway.store.flush();
  return (await gateway.store.listSessions({ limit: 10_000 })).length;
}

/**
 * A dev-style gateway whose IdP issues short-lived access tokens (no clock skew allowed) and
 * whose dev model pauses between streamed events: what the expiry and streaming tests need.
 */
async function startSlowShortLivedGateway(dir: string, opts: { ttlSeconds: number; chunkDelayMs: number }): Promise<{ url: string; idp: DevIdp; gateway: RunningGateway; close(): Promise<void> }> {
  const bound = await bindServer({ listen: { host: '127.0.0.1', port: 0 } });
  const devModel = await startDevModel({ chunkDelayMs: opts.chunkDelayMs });
  const issuer = `${bound.url}/oidc`;
  const idp = await startDevIdp({ issuer, audience: bound.url, cliClientId: CLIENT_ID, requiredScope: 'aigov', stateDir: join(dir, 'idp'), accessTokenTtlSeconds: opts.ttlSeconds });
  const config = buildGatewayConfig(
    {
      listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
      identity: { issuer, audience: bound.url, cli_client_id: CLIENT_ID, required_scope: 'aigov', clock_skew_seconds: 0 },
      providers: [
        { name: 'openai', kind: 'openai', base_url: devModel.openaiBaseUrl },
        { name: 'anthropic', kind: 'anthropic', base_url: devModel.anthropicBaseUrl },
      ],
      storage: { driver: 'sqlite', path: join(dir, 'aigov.db') },
      logging: { level: 'silent' },
    },
    '(test)',
  );
  const gateway = await startGateway(config, { version: 'test', dev: true, mounts: [{ prefix: '/oidc', handle: (req, res) => idp.handle(req, res) }] }, bound);
  return {
    url: bound.url,
    idp,
    gateway,
    async close() {
      await gateway.close();
      await idp.close();
      await devModel.close();
    },
  };
}

let home: string;
let gateway: RunningDevGateway;
let discovery: Discovery;

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'aigov-daemon-'));
  gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent' });
  discovery = await fetchDiscovery(gateway.url);
});

after(async () => {
  await gateway.close();
  await rm(home, { recursive: true, force: true });
});

async function loginAlice(): Promise<DeviceLoginTokens> {
  return deviceLogin(gateway.idp, CLIENT_ID, 'alice', { resource: gateway.url });
}

describe('daemon proxy', () => {
  let daemon: DaemonServer;
  let tokens: RefreshingTokenSource;

  before(async () => {
    tokens = new RefreshingTokenSource(gateway.idp.issuer, await loginAlice());
    daemon = await startDaemonServer({ gatewayUrl: gateway.url, discovery, tokenSource: tokens });
  });
  after(async () => {
    await daemon.close();
  });

  it('OpenAI SDK calls (plain and streamed) reach the gateway as alice, in the run\'s session', async () => {
    const run = daemon.mintRun('node script.mjs');
    assert.match(run.runKey, /^aigovrun_[A-Za-z0-9_-]{40,}$/);
    const client = new OpenAI({ baseURL: `${daemon.baseUrl}/openai/v1`, apiKey: run.runKey, maxRetries: 0 });
    const plain = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello daemon' }] });
    assert.match(plain.choices[0]?.message.content ?? '', /dev model/i);
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream please' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0, 'streamed text arrived');
    await gateway.store.flush();
    const calls = await gateway.store.listCalls(run.sessionId);
    assert.equal(calls.length, 2);
    for (const call of calls) {
      assert.equal(call.principal.subject, 'alice');
      assert.equal(call.sessionId, run.sessionId);
    }
    assert.deepEqual(calls.map((c) => c.stream).sort(), [false, true]);
  });

  it('Anthropic SDK calls (plain and streamed) carry the run key as x-api-key', async () => {
    const run = daemon.mintRun('python agent.py');
    const client = new Anthropic({ baseURL: `${daemon.baseUrl}/anthropic`, apiKey: run.runKey, maxRetries: 0 });
    const plain = await client.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(plain.type, 'message');
    const stream = client.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'stream' }] });
    const final = await stream.finalMessage();
    assert.equal(final.role, 'assistant');
    await gateway.store.flush();
    const calls = await gateway.store.listCalls(run.sessionId);
    assert.equal(calls.length, 2);
    assert.ok(calls.every((c) => c.principal.subject === 'alice' && c.provider === 'anthropic'));
  });

  it('refuses a wrong, missing or revoked run key in the provider\'s shape, and nothing reaches the gateway', async () => {
    const before = await sessionCount(gateway);
    const openai = new OpenAI({ baseURL: `${daemon.baseUrl}/openai/v1`, apiKey: 'aigovrun_not-a-real-key', maxRetries: 0 });
    const e1 = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    assert.ok(e1 instanceof OpenAI.AuthenticationError, `got ${String(e1)}`);
    assert.equal(e1.code, 'AIGOV_E_RUN_KEY_INVALID');

    const anthropic = new Anthropic({ baseURL: `${daemon.baseUrl}/anthropic`, apiKey: 'sk-ant-wrong', maxRetries: 0 });
    const e2 = await anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    assert.ok(e2 instanceof Anthropic.AuthenticationError, `got ${String(e2)}`);
    assert.deepEqual(Object.keys(e2.error as object).sort(), ['error', 'type']);
    assert.equal((e2.error as { type: string }).type, 'error');

    // No key at all, and the user's own access token (a real one) are refused too.
    const bare = await fetch(`${daemon.baseUrl}/openai/v1/models`);
    assert.equal(bare.status, 401);
    const ownToken = (await tokens.getAccessToken()).token;
    const withToken = await fetch(`${daemon.baseUrl}/openai/v1/models`, { headers: { authorization: `Bearer ${ownToken}` } });
    assert.equal(withToken.status, 401);
    assert.equal(((await withToken.json()) as { error: { code: string } }).error.code, 'AIGOV_E_RUN_KEY_INVALID');

    const run = daemon.mintRun('short-lived');
    const ok = await fetch(`${daemon.baseUrl}/openai/v1/models`, { headers: { authorization: `Bearer ${run.runKey}` } });
    assert.equal(ok.status, 200);
    assert.equal(daemon.revokeRun(run.runKey), true);
    assert.equal(daemon.revokeRun(run.runKey), false);
    const revoked = await fetch(`${daemon.baseUrl}/openai/v1/models`, { headers: { authorization: `Bearer ${run.runKey}` } });
    assert.equal(revoked.status, 401);
    assert.equal(await sessionCount(gateway), before + 1, 'only the one accepted call was recorded');
  });

  it('never passes the run key or a client-chosen session on to the gateway', async () => {
    const run = daemon.mintRun('spoof');
    const res = await fetch(`${daemon.baseUrl}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${run.runKey}`, 'x-aigov-session': 'ses_someone_else', 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'who am i' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-aigov-session-id'), run.sessionId);
    await gateway.store.flush();
    assert.equal((await gateway.store.listCalls('ses_someone_else')).length, 0);
  });

  it('answers 404 in the provider shape for paths that are not a provider API', async () => {
    const run = daemon.mintRun('probe');
    const res = await fetch(`${daemon.baseUrl}/.well-known/aigov-configuration`, { headers: { authorization: `Bearer ${run.runKey}` } });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'AIGOV_E_UNKNOWN_ENDPOINT');
  });
});

describe('daemon tokens', () => {
  it('a failed refresh gives the child a provider-shaped 401 with the `aigov login` hint', async () => {
    const login = await loginAlice();
    await refresh(gateway.idp.issuer, CLIENT_ID, login.refreshToken); // rotates: the old refresh token is now dead
    const dead = new RefreshingTokenSource(gateway.idp.issuer, { refreshToken: login.refreshToken });
    const daemon = await startDaemonServer({ gatewayUrl: gateway.url, discovery, tokenSource: dead, profile: 'work' });
    try {
      const before = await sessionCount(gateway);
      const run = daemon.mintRun('x');
      const openai = new OpenAI({ baseURL: `${daemon.baseUrl}/openai/v1`, apiKey: run.runKey, maxRetries: 0 });
      const error = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.AuthenticationError, `got ${String(error)}`);
      assert.equal(error.code, 'AIGOV_E_SESSION_EXPIRED');
      assert.match(error.message, /aigov login/);
      assert.match(error.message, /profile `work`/);
      const anthropic = new Anthropic({ baseURL: `${daemon.baseUrl}/anthropic`, apiKey: run.runKey, maxRetries: 0 });
      const e2 = await anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(e2 instanceof Anthropic.AuthenticationError);
      assert.match(e2.message, /aigov login/);
      assert.equal(await sessionCount(gateway), before);
    } finally {
      await daemon.close();
    }
  });

  it('an access token that expires mid-run is refreshed and the request retried, unnoticed by the child', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-ttl-'));
    const short = await startSlowShortLivedGateway(dir, { ttlSeconds: 2, chunkDelayMs: 0 });
    try {
      const login = await deviceLogin(short.idp, CLIENT_ID, 'alice', { resource: short.url });
      // The source believes tokens live an hour: only the gateway's 401 tells it otherwise.
      const source = new RefreshingTokenSource(short.idp.issuer, login, { claimedTtlMs: 3_600_000 });
      const daemon = await startDaemonServer({ gatewayUrl: short.url, discovery: await fetchDiscovery(short.url), tokenSource: source });
      try {
        const run = daemon.mintRun('long job');
        const client = new OpenAI({ baseURL: `${daemon.baseUrl}/openai/v1`, apiKey: run.runKey, maxRetries: 0 });
        await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'first' }] });
        assert.equal(source.refreshes, 0);
        await new Promise((resolve) => setTimeout(resolve, 2600));
        const second = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'after expiry' }] });
        assert.ok(second.choices[0]?.message.content);
        const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream' }], stream: true });
        for await (const _ of stream) {
          /* drain */
        }
        assert.equal(source.invalidations, 1, 'the gateway\'s 401 made the daemon drop the token once');
        assert.equal(source.refreshes, 1);
        await short.gateway.store.flush();
        const calls = await short.gateway.store.listCalls(run.sessionId);
        assert.equal(calls.length, 3);
        assert.ok(calls.every((c) => c.principal.subject === 'alice'));
      } finally {
        await daemon.close();
      }
    } finally {
      await short.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('streams pass through unbuffered: the first event arrives long before the stream ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-sse-'));
    const slow = await startSlowShortLivedGateway(dir, { ttlSeconds: 600, chunkDelayMs: 60 });
    try {
      const login = await deviceLogin(slow.idp, CLIENT_ID, 'alice', { resource: slow.url });
      const daemon = await startDaemonServer({ gatewayUrl: slow.url, discovery: await fetchDiscovery(slow.url), tokenSource: new RefreshingTokenSource(slow.idp.issuer, login) });
      try {
        const run = daemon.mintRun('sse');
        const started = Date.now();
        const arrivals: number[] = [];
        await new Promise<void>((resolve, reject) => {
          const req = httpRequest(
            `${daemon.baseUrl}/openai/v1/chat/completions`,
            { method: 'POST', headers: { authorization: `Bearer ${run.runKey}`, 'content-type': 'application/json', 'accept-encoding': 'gzip, br' } },
            (res) => {
              assert.equal(res.statusCode, 200);
              assert.equal(res.headers['content-encoding'], undefined, 'not compressed');
              assert.match(String(res.headers['content-type']), /text\/event-stream/);
              res.on('data', () => arrivals.push(Date.now() - started));
              res.on('end', resolve);
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'tell me a long story about proxies' }] }));
        });
        const first = arrivals[0]!;
        const last = arrivals.at(-1)!;
        assert.ok(arrivals.length >= 4, `several chunks arrived separately (${arrivals.length})`);
        assert.ok(last - first >= 3 * 60, `the first chunk (${first} ms) came well before the last (${last} ms)`);
      } finally {
        await daemon.close();
      }
    } finally {
      await slow.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a gateway that is down gives a provider-shaped 502', async () => {
    const port = await freePort();
    const daemon = await startDaemonServer({
      gatewayUrl: `http://127.0.0.1:${port}`,
      discovery,
      tokenSource: { getAccessToken: async () => ({ token: 'unused', expiresAt: Date.now() + 60_000 }), invalidate() {} },
    });
    try {
      const run = daemon.mintRun('x');
      const anthropic = new Anthropic({ baseURL: `${daemon.baseUrl}/anthropic`, apiKey: run.runKey, maxRetries: 0 });
      const error = await anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof Anthropic.APIError, `got ${String(error)}`);
      assert.equal(error.status, 502);
      assert.match(error.message, /Cannot reach the aigov gateway/);
    } finally {
      await daemon.close();
    }
  });
});

describe('control socket and lifecycle', () => {
  let runtimeDir: string;
  let configDir: string;
  let tokens: RefreshingTokenSource;
  const alice = { subject: 'alice', email: 'alice@aigov.dev', groups: ['developers'] };
  const loggedInAt = Date.parse('2026-11-20T09:00:00Z');
  const where = (): { runtimeDir: string; configDir: string } => ({ runtimeDir, configDir });

  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-rt-'));
    runtimeDir = join(dir, 'runtime');
    configDir = join(dir, 'config');
    tokens = new RefreshingTokenSource(gateway.idp.issuer, await loginAlice());
    // The CLI side uses a daemon only when it serves the profile's login as saved by `aigov login`.
    for (const profile of ['default', 'work', 'stale']) saveProfile(configDir, profile, { gatewayUrl: gateway.url, discovery, user: alice, loggedInAt });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const start = (profile: string): Promise<RunningDaemon> =>
    startDaemonRuntime({ profile, configDir, runtimeDir, gatewayUrl: gateway.url, discovery, tokenSource: tokens, user: alice, loggedInAt, version: 'test' });

  it('serves status, mint-run and revoke-run on a 0600 socket in a 0700 dir; one daemon per profile', async () => {
    const daemon = await start('default');
    try {
      const files = daemonFiles(runtimeDir, configDir, 'default');
      assert.equal(statSync(runtimeDir).mode & 0o777, 0o700);
      assert.ok(statSync(files.socket).isSocket());
      assert.equal(statSync(files.socket).mode & 0o777, 0o600);
      assert.equal(statSync(files.pidFile).mode & 0o777, 0o600);

      const client = await connectDaemon('default', { start: false, ...where() });
      const grant = await client.mintRun('node script.mjs');
      assert.equal(grant.baseUrl, daemon.server.baseUrl);
      assert.deepEqual(
        grant.providers.map((p) => [p.kind, p.base_url]),
        discovery.providers.map((p) => [p.kind, `${daemon.server.baseUrl}${p.path}`]),
      );
      const openai = new OpenAI({ baseURL: grant.providers.find((p) => p.kind === 'openai')!.base_url, apiKey: grant.runKey, maxRetries: 0 });
      await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'via control socket' }] });

      const status = await client.status();
      assert.equal(status.pid, process.pid);
      assert.equal(status.port, daemon.server.port);
      assert.equal(status.user?.subject, 'alice');
      assert.deepEqual(status.runs.map((r) => [r.sessionId, r.label]), [[grant.sessionId, 'node script.mjs']]);
      assert.ok(status.tokenExpiresAt !== null && status.tokenExpiresAt > Date.now());
      assert.ok(!JSON.stringify(status).includes(grant.runKey), 'status never shows run keys');

      assert.equal(await client.revokeRun(grant.runKey), true);
      assert.equal((await client.status()).runs.length, 0);
      await assert.rejects(openai.models.list(), OpenAI.AuthenticationError);

      // A second daemon for the same profile is refused; another profile is fine.
      await assert.rejects(start('default'), (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_DAEMON_RUNNING');
      const other = await start('work');
      await other.stop();
      assert.equal((await client.status()).pid, process.pid, 'the first daemon is untouched');
    } finally {
      await daemon.stop();
    }
    assert.equal(existsSync(daemonFiles(runtimeDir, configDir, 'default').socket), false, 'socket removed');
    assert.equal(existsSync(daemonFiles(runtimeDir, configDir, 'default').pidFile), false, 'pid file removed');
  });

  it('detects a stale pid file and socket, and starts over them', async () => {
    const files = daemonFiles(runtimeDir, configDir, 'stale');
    const deadPid = await exitedPid();
    writeFileSync(files.pidFile, JSON.stringify({ pid: deadPid, port: 1, socket: files.socket, profile: 'stale', configDir, startedAt: 1, version: 'old' }));
    writeFileSync(files.socket, '');
    const seen = await inspectDaemon('stale', where());
    assert.equal(seen.state, 'stale');
    await assert.rejects(connectDaemon('stale', { start: false, ...where() }), (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_DAEMON_UNAVAILABLE');
    const daemon = await start('stale');
    try {
      const status = await (await connectDaemon('stale', { start: false, ...where() })).status();
      assert.equal(status.pid, process.pid);
    } finally {
      await daemon.stop();
    }
    assert.equal((await inspectDaemon('stale', where())).state, 'absent');
  });

  it('stop over the socket lets a request in flight finish, then removes its files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-stop-'));
    const slow = await startSlowShortLivedGateway(dir, { ttlSeconds: 600, chunkDelayMs: 60 });
    try {
      const login = await deviceLogin(slow.idp, CLIENT_ID, 'alice', { resource: slow.url });
      const slowDiscovery = await fetchDiscovery(slow.url);
      saveProfile(configDir, 'draining', { gatewayUrl: slow.url, discovery: slowDiscovery, user: null, loggedInAt: null });
      const daemon = await startDaemonRuntime({
        profile: 'draining',
        configDir,
        runtimeDir,
        gatewayUrl: slow.url,
        discovery: slowDiscovery,
        tokenSource: new RefreshingTokenSource(slow.idp.issuer, login),
        user: null,
        loggedInAt: null,
        version: 'test',
      });
      const client = await connectDaemon('draining', { start: false, ...where() });
      const grant = await client.mintRun('draining');
      const openai = new OpenAI({ baseURL: `${grant.baseUrl}/openai/v1`, apiKey: grant.runKey, maxRetries: 0 });
      const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'a long answer please' }], stream: true });
      await client.stop();
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.ok(text.length > 0, 'the stream in flight completed');
      await daemon.stopped;
      assert.equal((await inspectDaemon('draining', where())).state, 'absent');
      await assert.rejects(connectDaemon('draining', { start: false, ...where() }), (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_DAEMON_UNAVAILABLE');
    } finally {
      await slow.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('daemon process started on demand', () => {
  it('a profile that never logged in, or logged out: "not logged in" at once, no daemon started, no log left behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-proc-'));
    const configDir = join(dir, 'config');
    const runtimeDir = join(dir, 'run');
    try {
      const env = cleanEnv({ AIGOV_CONFIG_DIR: configDir });
      // What `aigov logout` leaves: the gateway kept for the next login, no user.
      openCliSettings(configDir).setProfile('left', { gatewayUrl: gateway.url, discovery, credentialStore: 'file', user: null, loggedInAt: null });
      for (const profile of ['nobody', 'left']) {
        const error = await connectDaemon(profile, { start: true, runtimeDir, env }).catch((e: unknown) => e);
        assert.ok(error instanceof AigovError, `got ${String(error)}`);
        assert.equal(error.code, 'AIGOV_E_NOT_LOGGED_IN');
        assert.match(error.message, new RegExp(`profile \`${profile}\``));
        assert.equal((await inspectDaemon(profile, { runtimeDir, env })).state, 'absent');
      }
      assert.deepEqual(existsSync(runtimeDir) ? readdirSync(runtimeDir) : [], [], 'no daemon log with a fatal line');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports "not logged in" from a daemon that cannot start (its credentials are gone from the store)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-proc-'));
    const configDir = join(dir, 'config');
    try {
      openCliSettings(configDir).setProfile('emptied', { gatewayUrl: gateway.url, discovery, credentialStore: 'file', user: { subject: 'alice', email: 'alice@aigov.dev', groups: [] }, loggedInAt: Date.now() });
      const env = cleanEnv({ AIGOV_CONFIG_DIR: configDir });
      const error = await connectDaemon('emptied', { start: true, runtimeDir: join(dir, 'run'), env }).catch((e: unknown) => e);
      assert.ok(error instanceof AigovError, `got ${String(error)}`);
      assert.equal(error.code, 'AIGOV_E_NOT_LOGGED_IN');
      assert.match(error.message, /profile `emptied`/);
      assert.equal((await inspectDaemon('emptied', { runtimeDir: join(dir, 'run'), env })).state, 'absent');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts a detached daemon from the saved profile and credentials, forwards a run, stops', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-daemon-proc-'));
    const configDir = join(dir, 'config');
    const runtimeDir = join(dir, 'run');
    try {
      const { openCredentialStore } = await import('../src/auth/credential-stores.ts');
      const login = await loginAlice();
      const { store } = await openCredentialStore({ kind: 'file', configDir });
      await store.save('ci', login.refreshToken);
      openCliSettings(configDir).setProfile('ci', {
        gatewayUrl: gateway.url,
        discovery,
        credentialStore: 'file',
        user: { subject: 'alice', email: 'alice@aigov.dev', groups: ['developers'] },
        loggedInAt: Date.now(),
      });
      const env = cleanEnv({ AIGOV_CONFIG_DIR: configDir });
      const client = await connectDaemon('ci', { start: true, runtimeDir, env });
      assert.equal(client.started, true);
      const again = await connectDaemon('ci', { start: true, runtimeDir, env });
      assert.equal(again.started, false, 'a running daemon is reused');
      const status = await client.status();
      assert.notEqual(status.pid, process.pid);

      const grant = await client.mintRun('node script.mjs');
      const openai = new OpenAI({ baseURL: `${grant.baseUrl}/openai/v1`, apiKey: grant.runKey, maxRetries: 0 });
      const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'through the daemon process' }], stream: true });
      for await (const _ of stream) {
        /* drain */
      }
      await gateway.store.flush();
      const calls = await gateway.store.listCalls(grant.sessionId);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]!.principal.subject, 'alice');

      assert.equal(await stopDaemon('ci', { runtimeDir, env }), 'stopped');
      assert.equal((await inspectDaemon('ci', { runtimeDir, env })).state, 'absent');
      assert.equal(await stopDaemon('ci', { runtimeDir, env }), 'absent');
    } finally {
      await stopDaemon('ci', { runtimeDir, configDir }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A stand-in gateway on a real socket: records what arrives and lets each test answer as it needs. */
async function startFakeGateway(
  answer: (req: IncomingMessage, res: ServerResponse, body: Buffer, n: number) => void,
  tls?: { cert: Buffer; key: Buffer },
): Promise<{ url: string; server: Server; seen: { headers: IncomingMessage['headers']; body: Buffer }[]; connections: number; close(): Promise<void> }> {
  const state = { seen: [] as { headers: IncomingMessage['headers']; body: Buffer }[], connections: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      state.seen.push({ headers: req.headers, body });
      answer(req, res, body, state.seen.length);
    });
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  server.on(tls ? 'secureConnection' : 'connection', () => state.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    server,
    get seen() {
      return state.seen;
    },
    get connections() {
      return state.connections;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const FAKE_DISCOVERY: Pick<Discovery, 'providers'> = {
  providers: [{ name: 'openai', kind: 'openai', base_url: 'unused', path: '/openai/v1', models: [], dev_model: false }],
};
const STATIC_TOKEN: TokenSource = { getAccessToken: async () => ({ token: 'gw-token', expiresAt: Date.now() + 60_000 }), invalidate() {} };

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('daemon forwarding, against a stand-in gateway', () => {
  it('sends one clean request: gateway token, session, identity encoding, the gateway as host, exact body; answers pass through', async () => {
    const gw = await startFakeGateway((_req, res, body) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes', 'keep-alive': 'timeout=17' });
      res.end(JSON.stringify({ echoed: body.length }));
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('clean');
      const payload = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'héllo' }] });
      const res = await fetch(`${daemon.baseUrl}/openai/v1/chat/completions?x=1`, {
        method: 'POST',
        headers: { authorization: `Bearer ${run.runKey}`, 'content-type': 'application/json', 'accept-encoding': 'gzip, br', cookie: 'a=b', 'x-forwarded-for': '10.0.0.1', 'x-custom': 'kept' },
        body: payload,
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('x-upstream'), 'yes');
      assert.notEqual(res.headers.get('keep-alive'), 'timeout=17', 'hop-by-hop headers stay on their hop');
      assert.deepEqual(await res.json(), { echoed: Buffer.byteLength(payload) });
      const [seen] = gw.seen;
      assert.ok(seen);
      assert.equal(seen.headers.authorization, 'Bearer gw-token');
      assert.equal(seen.headers['x-aigov-session'], run.sessionId);
      assert.equal(seen.headers['accept-encoding'], 'identity');
      assert.equal(seen.headers.host, new URL(gw.url).host);
      assert.equal(seen.headers['content-length'], String(Buffer.byteLength(payload)));
      assert.equal(seen.headers['x-custom'], 'kept');
      assert.equal(seen.headers.cookie, undefined);
      assert.equal(seen.headers['x-forwarded-for'], undefined);
      assert.equal(seen.body.toString(), payload);
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('refuses paths a proxy could resolve elsewhere: the child cannot carry the user\'s token past the provider endpoints', async () => {
    const gw = await startFakeGateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('traversal');
      const spellings = [
        '/openai/../aigov/v1/approvals',
        '/openai/v1/../../aigov/v1/sessions',
        '/openai/./v1/models',
        '/openai/v1/models/..',
        '/openai/%2e%2e/aigov/v1/approvals',
        '/openai/%2E%2e/aigov',
        '/openai/..%2faigov%2fv1%2fapprovals',
        '/openai/..%5caigov',
        '/openai\\..\\aigov',
        '/openai/..\\aigov',
        '/openai//v1/models',
        '/openai/%252e%252e/aigov',
        '/openai/v1/models/%00',
      ];
      const url = new URL(daemon.baseUrl);
      for (const path of spellings) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = httpRequest({ host: url.hostname, port: url.port, path, headers: { authorization: `Bearer ${run.runKey}` } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 400, path);
      }
      assert.equal(gw.seen.length, 0, 'nothing reached the gateway');
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('a Responses WebSocket handshake gets 426 from the daemon itself, at once, so Codex falls back to HTTPS', async () => {
    const gw = await startFakeGateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('websocket');
      const url = new URL(daemon.baseUrl);
      const headers = { authorization: `Bearer ${run.runKey}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
      const t0 = performance.now();
      const { status, code } = await new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, path: '/openai/v1/responses', headers }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, code: res.headers['x-aigov-error'] as string | undefined });
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 426);
      assert.equal(code, 'AIGOV_E_WEBSOCKET_UNSUPPORTED');
      assert.ok(performance.now() - t0 < 100);
      assert.equal(gw.seen.length, 0, 'nothing reached the gateway');
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('a client that goes away mid-stream aborts the gateway request', async () => {
    let upstreamClosed = false;
    const gw = await startFakeGateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"first":true}\n\n');
      res.on('close', () => (upstreamClosed = true));
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('abort');
      const controller = new AbortController();
      const res = await fetch(`${daemon.baseUrl}/openai/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${run.runKey}` }, body: '{}', signal: controller.signal });
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.match(Buffer.from(first.value).toString(), /first/);
      assert.equal(daemon.inflight, 1);
      controller.abort();
      await until(() => upstreamClosed, 'the gateway request to close');
      await until(() => daemon.inflight === 0, 'the daemon to forget the request');
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('a kept-alive connection the gateway resets is retried once on a fresh one; a gateway that keeps resetting gives a 502', async () => {
    const gw = await startFakeGateway((req, res, _body, n) => {
      if (n === 2 || n >= 4) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ n }));
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('reset');
      const call = async (): Promise<Response> => fetch(`${daemon.baseUrl}/openai/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${run.runKey}` }, body: '{"x":1}' });
      assert.deepEqual(await (await call()).json(), { n: 1 });
      assert.deepEqual(await (await call()).json(), { n: 3 }, 'the reset request was sent again');
      assert.equal(gw.seen.length, 3);
      assert.equal(gw.connections, 2);
      const failed = await call();
      assert.equal(failed.status, 502);
      assert.equal(failed.headers.get('x-aigov-error'), 'AIGOV_E_GATEWAY_UNREACHABLE');
      await failed.arrayBuffer();
      assert.equal(gw.seen.length, 5, 'one retry, not more');
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('a large answer to a slow reader arrives whole, and the gateway side waits for the client meanwhile', async () => {
    const big = Buffer.alloc(32 * 1024 * 1024);
    let gatewayFinished = false;
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const gw = await startFakeGateway((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
      res.end(big, () => (gatewayFinished = true));
    });
    const daemon = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      const run = daemon.mintRun('big');
      let pausedGatewayFinished: boolean | null = null;
      const digest = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${daemon.baseUrl}/openai/v1/files/x/content`, { headers: { authorization: `Bearer ${run.runKey}` } }, (res) => {
          const hash = createHash('sha256');
          res.pause();
          setTimeout(() => {
            pausedGatewayFinished = gatewayFinished;
            res.on('data', (chunk: Buffer) => hash.update(chunk));
            res.on('end', () => resolve(hash.digest('hex')));
            res.resume();
          }, 200);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(pausedGatewayFinished, false, 'while the client read nothing, the daemon did not drain the gateway into memory');
      assert.equal(digest, createHash('sha256').update(big).digest('hex'));
      assert.ok(gatewayFinished);
    } finally {
      await daemon.close();
      await gw.close();
    }
  });

  it('an https gateway is trusted with an extra CA file (added to the public roots) and refused without it', async () => {
    const tlsDir = join(import.meta.dirname, 'fixtures', 'tls');
    const cert = readFileSync(join(tlsDir, 'localhost.crt'));
    const gw = await startFakeGateway(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"tls":true}');
      },
      { cert, key: readFileSync(join(tlsDir, 'localhost.key')) },
    );
    const trusting = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN, caFile: join(tlsDir, 'localhost.crt') });
    const untrusting = await startDaemonServer({ gatewayUrl: gw.url, discovery: FAKE_DISCOVERY, tokenSource: STATIC_TOKEN });
    try {
      for (const [daemon, status] of [
        [trusting, 200],
        [untrusting, 502],
      ] as const) {
        const run = daemon.mintRun('tls');
        const res = await fetch(`${daemon.baseUrl}/openai/v1/models`, { headers: { authorization: `Bearer ${run.runKey}` } });
        assert.equal(res.status, status);
        if (status === 200) assert.deepEqual(await res.json(), { tls: true });
        else assert.equal(res.headers.get('x-aigov-error'), 'AIGOV_E_GATEWAY_UNREACHABLE');
      }
      assert.equal(gw.seen.length, 1);
    } finally {
      await trusting.close();
      await untrusting.close();
      await gw.close();
    }
  });
});

/** The environment for a daemon process: ours, minus anything that would point it elsewhere. */
/** Saves a profile as `aigov login` does (the CLI compares a daemon's login with it). */
function saveProfile(configDir: string, profile: string, login: { gatewayUrl: string; discovery: Discovery; user: { subject: string; email: string | null; groups: string[] } | null; loggedInAt: number | null }): void {
  openCliSettings(configDir).setProfile(profile, { ...login, credentialStore: 'file' });
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('AIGOV_')) delete env[name];
  return { ...env, ...extra };
}

/** The pid of a process that has exited (so it is certainly not a live daemon). */
function exitedPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid!));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
