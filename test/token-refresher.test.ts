/**
 * The daemon's token refresher against the real dev IdP (oidc-provider, rotating refresh
 * tokens) over real sockets, with the real file credential store in a temp dir. Token-endpoint
 * hits are counted through an injected fetch that passes every request on unchanged.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { openCredentialStore } from '../src/auth/credential-stores.ts';
import type { CredentialStore } from '../src/auth/credentials.ts';
import { createTokenRefresher, type TokenRefresherOptions } from '../src/auth/token-refresher.ts';
import { AigovError } from '../src/core/errors.ts';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { OAuthResponseError, deviceLogin, refresh } from './support/dev-login.ts';
import { rejection } from './support/aigov-assert.ts';

const CLIENT_ID = 'aigov-cli';
let home: string;
let gateway: RunningDevGateway;
let store: CredentialStore;

/** fetch that counts the requests to each path and forwards them untouched. */
function countingFetch(): { fetch: typeof fetch; hits: (suffix: string) => number } {
  const paths: string[] = [];
  const wrapped: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    paths.push(new URL(url).pathname);
    return fetch(input, init);
  };
  return { fetch: wrapped, hits: (suffix) => paths.filter((p) => p.endsWith(suffix)).length };
}

/** A fresh login as `user`: its refresh token, saved in the store under `profile`. */
async function freshLogin(profile: string, user = 'alice'): Promise<string> {
  const tokens = await deviceLogin(gateway.idp, CLIENT_ID, user, { resource: gateway.url });
  await store.save(profile, tokens.refreshToken);
  return tokens.refreshToken;
}

function refresherFor(profile: string, initialRefreshToken: string, extra: Partial<TokenRefresherOptions> = {}) {
  return createTokenRefresher({
    issuer: gateway.idp.issuer,
    clientId: CLIENT_ID,
    profile,
    store,
    initialRefreshToken,
    resource: gateway.url,
    ...extra,
  });
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'aigov-refresher-'));
  gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent' });
  store = (await openCredentialStore({ kind: 'file', configDir: join(home, 'config'), env: {} })).store;
});

after(async () => {
  await gateway.close();
  await rm(home, { recursive: true, force: true });
});

describe('createTokenRefresher', () => {
  it('20 concurrent callers share exactly one refresh; the rotated refresh token is persisted', async () => {
    const initial = await freshLogin('single');
    const counter = countingFetch();
    const refresher = refresherFor('single', initial, { fetch: counter.fetch });
    const tokens = await Promise.all(Array.from({ length: 20 }, () => refresher.getAccessToken()));
    assert.equal(counter.hits('/token'), 1, 'one token-endpoint request for 20 callers');
    assert.equal(new Set(tokens.map((t) => t.token)).size, 1);
    const claims = decodeJwt(tokens[0]!.token);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.aud, gateway.url);
    assert.ok(Math.abs(tokens[0]!.expiresAt - (Date.now() + 600_000)) < 10_000, 'expiry from expires_in (600 s)');

    // The IdP rotated the refresh token: the store has the new one, the old one is dead.
    const saved = await store.load('single');
    assert.ok(saved && saved !== initial);
    await assert.rejects(refresh(gateway.idp.issuer, CLIENT_ID, initial), (error: unknown) => {
      assert.ok(error instanceof OAuthResponseError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });

    // A cached token is handed out without another request.
    await refresher.getAccessToken();
    assert.equal(counter.hits('/token'), 1);
    refresher.close();
  });

  it('refreshes ahead of expiry (skew) and after invalidate(), each time with the latest rotated token', async () => {
    const initial = await freshLogin('skew');
    const counter = countingFetch();
    let offset = 0;
    const refresher = refresherFor('skew', initial, { fetch: counter.fetch, now: () => Date.now() + offset, refreshSkewSeconds: 60 });
    const first = await refresher.getAccessToken();
    assert.equal(counter.hits('/token'), 1);

    offset = 400_000; // 200 s left: outside the 60 s skew → cached
    assert.equal((await refresher.getAccessToken()).token, first.token);
    assert.equal(counter.hits('/token'), 1);

    offset = 545_000; // 55 s left: inside the skew → refreshed before it expires
    const second = await refresher.getAccessToken();
    assert.notEqual(second.token, first.token);
    assert.equal(counter.hits('/token'), 2);

    refresher.invalidate();
    const third = await refresher.getAccessToken();
    assert.notEqual(third.token, second.token);
    assert.equal(counter.hits('/token'), 3);

    // Each refresh used the token the previous one rotated in (else the IdP would have refused).
    const saved = await store.load('skew');
    assert.ok(saved);
    refresher.close();
    await rejection(refresher.getAccessToken());
  });

  it('short-lived tokens: the skew is capped at half the lifetime, so a token is reused before it is renewed', async () => {
    const initial = await freshLogin('short');
    const counter = countingFetch();
    let offset = 0;
    // A 60 s skew on 600 s tokens; make the clock run so that 250 s remain: 250 < 300 (half) but > 60.
    const refresher = refresherFor('short', initial, { fetch: counter.fetch, now: () => Date.now() + offset, refreshSkewSeconds: 10_000 });
    const first = await refresher.getAccessToken();
    offset = 200_000; // 400 s left, skew capped at 300 s → cached
    assert.equal((await refresher.getAccessToken()).token, first.token);
    offset = 350_000; // 250 s left → refreshed
    assert.notEqual((await refresher.getAccessToken()).token, first.token);
    assert.equal(counter.hits('/token'), 2);
    refresher.close();
  });

  it('an invalid refresh token → AIGOV_E_SESSION_EXPIRED, for every waiting caller, without retries', async () => {
    const counter = countingFetch();
    const refresher = refresherFor('invalid', 'not-a-real-refresh-token', { fetch: counter.fetch });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => refresher.getAccessToken()));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof AigovError);
      assert.equal(r.reason.code, 'AIGOV_E_SESSION_EXPIRED');
      assert.match(r.reason.message, /profile `invalid`/);
      assert.match(r.reason.hint, /aigov login/);
    }
    assert.equal(counter.hits('/token'), 1);
    // Later calls fail fast: the session is over until the user logs in again.
    assert.equal((await rejection(refresher.getAccessToken())).code, 'AIGOV_E_SESSION_EXPIRED');
    assert.equal(counter.hits('/token'), 1);
  });

  it('a revoked (already used) refresh token → AIGOV_E_SESSION_EXPIRED', async () => {
    const initial = await freshLogin('used');
    await refresh(gateway.idp.issuer, CLIENT_ID, initial); // rotates: `initial` is now dead
    const refresher = refresherFor('used', initial);
    assert.equal((await rejection(refresher.getAccessToken())).code, 'AIGOV_E_SESSION_EXPIRED');
  });

  it('a login or logout since the daemon started owns the stored token: a rotation is not saved over it', async () => {
    const initial = await freshLogin('relogin');
    const warnings: string[] = [];
    const refresher = refresherFor('relogin', initial, { onWarning: (message) => warnings.push(message) });
    await refresher.getAccessToken();
    const rotated = await store.load('relogin');
    assert.ok(rotated && rotated !== initial, 'the store still held its token: the rotation was saved');

    const newer = await freshLogin('relogin', 'bob'); // `aigov login` again, whose daemon stop missed this daemon
    refresher.invalidate();
    const token = await refresher.getAccessToken();
    assert.equal(await store.load('relogin'), newer, "bob's login is not overwritten by alice's older session");
    assert.equal(decodeJwt(token.token).sub, 'alice', 'the older session goes on in memory until its daemon is replaced');
    assert.deepEqual(warnings, ['the profile was signed in again or out since this daemon started; its rotated refresh token is kept in memory only, not saved over that']);
    refresher.invalidate();
    await refresher.getAccessToken();
    assert.equal(await store.load('relogin'), newer, 'nor by a later rotation');
    assert.equal(warnings.length, 1);
    refresher.close();

    const out = refresherFor('logged-out', await freshLogin('logged-out'));
    await store.remove('logged-out'); // `aigov logout`
    await out.getAccessToken();
    assert.equal(await store.load('logged-out'), null, 'a logged-out profile is not brought back');
    out.close();
  });

  it('an IdP that answers 503 to the refresh: AIGOV_E_IDP_UNREACHABLE naming the status, after the retries', async () => {
    const token = await freshLogin('busy');
    let refused = 0;
    const busy: typeof fetch = (input, init) => {
      if (new URL(input instanceof Request ? input.url : String(input)).pathname.endsWith('/token')) {
        refused++;
        return Promise.resolve(new Response(JSON.stringify({ error: 'server_error' }), { status: 503, headers: { 'content-type': 'application/json' } }));
      }
      return fetch(input, init);
    };
    const error = await rejection(refresherFor('busy', token, { fetch: busy, retryDelaysMs: [5] }).getAccessToken());
    assert.equal(error.code, 'AIGOV_E_IDP_UNREACHABLE');
    assert.match(error.message, /the identity provider at http:\/\/127\.0\.0\.1:\d+ is not available \(it answered HTTP 503\)\.$/);
    assert.equal(refused, 2, 'tried again once');
    assert.equal(await store.load('busy'), token, 'the sign-in is kept');
  });

  it('an unreachable IdP is retried briefly, then surfaced as AIGOV_E_IDP_UNREACHABLE (not a failed sign-in); a later call tries again', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const counter = countingFetch();
    const refresher = createTokenRefresher({
      issuer: `http://127.0.0.1:${port}/oidc`,
      clientId: CLIENT_ID,
      profile: 'down',
      store,
      initialRefreshToken: 'whatever',
      fetch: counter.fetch,
      retryDelaysMs: [10, 10],
    });
    const error = await rejection(refresher.getAccessToken());
    assert.equal(error.code, 'AIGOV_E_IDP_UNREACHABLE');
    assert.equal(error.message, `Cannot get an aigov access token: the identity provider at http://127.0.0.1:${port} is not available (connection refused).`);
    assert.doesNotMatch(error.hint, /aigov login/);
    assert.equal(counter.hits('/openid-configuration'), 3, 'three attempts');
    await rejection(refresher.getAccessToken());
    assert.equal(counter.hits('/openid-configuration'), 6, 'not cached as a permanent failure');
  });
});
