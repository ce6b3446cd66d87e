/**
 * The daemon's `access-token` control request, which CLI commands that call the gateway
 * themselves (`aigov approvals`) use instead of running a second refresher: the dev gateway
 * in-process, alice's refresh token from the real device flow in a file credential store, the
 * real token refresher, the control socket in a temp runtime dir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFileStore } from '../src/auth/credential-stores.ts';
import { createTokenRefresher } from '../src/auth/token-refresher.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import { AigovError } from '../src/core/errors.ts';
import { connectDaemon } from '../src/daemon/daemon-client.ts';
import { startDaemonRuntime, type RunningDaemon } from '../src/daemon/daemon-main.ts';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { DISCOVERY_PATH, DiscoverySchema } from '../src/protocol/discovery.ts';
import { deviceLogin } from './support/dev-login.ts';

let home: string;
let gateway: RunningDevGateway;
let daemon: RunningDaemon;
let runtimeDir: string;
let refreshTokenAtStart: string;

async function startDaemon(profile: string, refreshToken: string): Promise<RunningDaemon> {
  const discovery = DiscoverySchema.parse(await (await fetch(`${gateway.url}${DISCOVERY_PATH}`)).json());
  const configDir = join(home, 'config');
  const store = createFileStore({ configDir });
  await store.save(profile, refreshToken);
  openCliSettings(configDir).setProfile(profile, { gatewayUrl: gateway.url, discovery, credentialStore: 'file', user: null, loggedInAt: null });
  const tokenSource = createTokenRefresher({ issuer: discovery.issuer, clientId: discovery.cli_client_id, profile, store, initialRefreshToken: refreshToken, resource: discovery.resource });
  return startDaemonRuntime({ profile, configDir, runtimeDir, gatewayUrl: gateway.url, discovery, tokenSource, user: null, loggedInAt: null, version: 'test' });
}

async function modelsStatus(token: string): Promise<number> {
  const res = await fetch(`${gateway.url}/openai/v1/models`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('daemon control request access-token', () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-at-'));
    runtimeDir = join(home, 'run');
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gw'), logLevel: 'silent' });
    refreshTokenAtStart = (await deviceLogin(gateway.idp, 'aigov-cli', 'bob', { resource: gateway.url })).refreshToken;
    daemon = await startDaemon('default', refreshTokenAtStart);
  });
  after(async () => {
    await daemon.stop();
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('hands out the current access token and the gateway it is for; the gateway accepts it', async () => {
    const client = await connectDaemon('default', { start: false, runtimeDir, configDir: join(home, 'config') });
    const first = await client.accessToken();
    assert.equal(first.ok, true);
    assert.equal(first.gateway, gateway.url);
    assert.ok(first.expiresAt > Date.now());
    assert.equal(await modelsStatus(first.token), 200);
    const again = await client.accessToken();
    assert.equal(again.token, first.token, 'a valid token is reused, not refreshed per call');
  });

  it('renew: a fresh token from one refresh at the daemon (the refresh token rotates there, not in the CLI)', async () => {
    const client = await connectDaemon('default', { start: false, runtimeDir, configDir: join(home, 'config') });
    const before = await client.accessToken();
    const renewed = await client.accessToken({ renew: true });
    assert.notEqual(renewed.token, before.token);
    assert.equal(await modelsStatus(renewed.token), 200);
    const stored = await createFileStore({ configDir: join(home, 'config') }).load('default');
    assert.notEqual(stored, refreshTokenAtStart, 'the daemon stored the rotated refresh token');
    // The status answer never carries the token.
    assert.equal(JSON.stringify(await client.status()).includes(renewed.token), false);
  });

  it('a sign-in that no longer works: AIGOV_E_SESSION_EXPIRED naming the profile', async () => {
    const other = await startDaemon('revoked', 'not-a-refresh-token');
    try {
      const client = await connectDaemon('revoked', { start: false, runtimeDir, configDir: join(home, 'config') });
      await assert.rejects(client.accessToken(), (error: unknown) => {
        assert.ok(error instanceof AigovError);
        assert.equal(error.code, 'AIGOV_E_SESSION_EXPIRED');
        assert.match(error.message, /profile `revoked`/);
        return true;
      });
    } finally {
      await other.stop();
    }
  });
});
