import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { DEV_USERS, DevIdpError, startDevIdp } from '../src/gateway/dev/idp.ts';
import type { DevIdp } from '../src/gateway/dev/idp.ts';
import {
  DEFAULT_SCOPE,
  OAuthResponseError,
  deviceLogin,
  discover,
  pollDeviceToken,
  pollUntilDecided,
  refresh,
  requestDeviceAuthorization,
} from './support/dev-login.ts';
import type { DiscoveryDocument } from './support/dev-login.ts';

const CLIENT_ID = 'aigov-cli';
const SCOPE = 'aigov';
const TTL = 300;

interface Harness {
  base: string;
  issuer: string;
  stateDir: string;
  idp: DevIdp;
  internalErrors: Error[];
  restart(): Promise<void>;
}

/** A node:http server that routes /oidc/... to the dev IdP and 404s the rest (as the gateway does). */
async function startHarness(): Promise<{ harness: Harness; server: Server; cleanup: () => Promise<void> }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aigov-dev-idp-'));
  let current: DevIdp | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (current && (path === '/oidc' || path.startsWith('/oidc/'))) {
      current.handle(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  const internalErrors: Error[] = [];
  const start = () =>
    startDevIdp({
      issuer: `${base}/oidc`,
      audience: base,
      cliClientId: CLIENT_ID,
      requiredScope: SCOPE,
      stateDir,
      accessTokenTtlSeconds: TTL,
      onError: (error) => internalErrors.push(error),
    });
  current = await start();
  const harness: Harness = {
    base,
    issuer: `${base}/oidc`,
    stateDir,
    internalErrors,
    get idp() {
      return current as DevIdp;
    },
    async restart() {
      await current?.close();
      current = await start();
    },
  };
  return {
    harness,
    server,
    cleanup: async () => {
      await current?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

async function verifyAccessToken(h: Harness, discovery: DiscoveryDocument, token: string): Promise<JWTPayload> {
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload } = await jwtVerify(token, jwks, { issuer: h.issuer, audience: h.base, typ: 'at+jwt' });
  return payload;
}

/** A tiny cookie jar + manual redirects, to walk the browser pages with fetch. */
class Browser {
  readonly #cookies = new Map<string, string>();
  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#cookies.size) headers['cookie'] = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: URLSearchParams | undefined;
    if (init.form) body = new URLSearchParams(init.form);
    const res = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(cookie) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return res;
  }
  /** Follows 3xx redirects (GET) until a non-redirect answer. */
  async follow(res: Response, from: string): Promise<{ res: Response; url: string }> {
    let url = from;
    while (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      assert.ok(location, 'redirect without Location');
      url = new URL(location, url).href;
      res = await this.request(url);
    }
    return { res, url };
  }
}

function hiddenInputs(html: string, formId: string): Record<string, string> {
  const start = html.indexOf(`id="${formId}"`);
  assert.ok(start >= 0, `form ${formId} not found`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) {
    fields[m[1] as string] = (m[2] as string).replaceAll('&amp;', '&');
  }
  return fields;
}

describe('dev identity provider', () => {
  let h: Harness;
  let cleanup: () => Promise<void>;
  let discovery: DiscoveryDocument;
  const consoleCalls: string[] = [];
  const originals = { info: console.info, warn: console.warn, log: console.log, error: console.error };

  before(async () => {
    for (const name of ['info', 'warn', 'log', 'error'] as const) {
      console[name] = (...args: unknown[]) => {
        consoleCalls.push(`console.${name}: ${String(args[0]).slice(0, 80)}`);
      };
    }
    ({ harness: h, cleanup } = await startHarness());
    discovery = await discover(h.issuer);
  });

  after(async () => {
    Object.assign(console, originals);
    await cleanup();
  });

  test('discovery works through the mounted handler with every endpoint under the issuer path', async () => {
    assert.equal(discovery.issuer, h.issuer);
    for (const key of ['token_endpoint', 'device_authorization_endpoint', 'jwks_uri', 'revocation_endpoint'] as const) {
      const url = discovery[key];
      assert.equal(typeof url, 'string', key);
      assert.ok((url as string).startsWith(`${h.issuer}/`), `${key} = ${String(url)}`);
    }
    assert.ok((discovery['grant_types_supported'] as string[]).includes('urn:ietf:params:oauth:grant-type:device_code'));
    assert.ok((discovery['grant_types_supported'] as string[]).includes('refresh_token'));

    const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Record<string, unknown>[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.['alg'], 'ES256');
    assert.equal(jwks.keys[0]?.['d'], undefined, 'the JWKS must not publish the private key');

    const outside = await fetch(`${h.base}/.well-known/openid-configuration`);
    assert.equal(outside.status, 404);
  });

  test('device login yields a gateway JWT access token with iss, aud, scope, email and groups', async () => {
    const alice = DEV_USERS.find((u) => u.id === 'alice');
    assert.deepEqual(alice, { id: 'alice', email: 'alice@aigov.dev', name: alice?.name, groups: ['developers'] });

    const tokens = await deviceLogin(h.idp, CLIENT_ID, 'alice');
    assert.equal(tokens.expiresIn, TTL);
    assert.ok(tokens.refreshToken.length > 20);
    assert.equal(decodeProtectedHeader(tokens.accessToken).alg, 'ES256');

    const payload = await verifyAccessToken(h, discovery, tokens.accessToken);
    assert.equal(payload.iss, h.issuer);
    assert.equal(payload.aud, h.base);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload['client_id'], CLIENT_ID);
    assert.ok(String(payload['scope']).split(' ').includes(SCOPE));
    assert.equal(payload['email'], 'alice@aigov.dev');
    assert.deepEqual(payload['groups'], ['developers']);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), TTL);
  });

  test('an explicit resource equal to the audience works; any other resource is refused', async () => {
    const tokens = await deviceLogin(h.idp, CLIENT_ID, 'bob', { resource: h.base });
    const payload = await verifyAccessToken(h, discovery, tokens.accessToken);
    assert.equal(payload.sub, 'bob');
    assert.deepEqual(payload['groups'], ['approvers', 'security']);

    await assert.rejects(
      requestDeviceAuthorization(h.issuer, CLIENT_ID, { resource: 'https://elsewhere.example' }),
      (e: unknown) => e instanceof OAuthResponseError && e.error === 'invalid_target',
    );
  });

  test('without the required scope the token carries no gateway scope (the gateway will refuse it)', async () => {
    const tokens = await deviceLogin(h.idp, CLIENT_ID, 'alice', { scope: 'openid offline_access' });
    const payload = await verifyAccessToken(h, discovery, tokens.accessToken);
    assert.ok(!(typeof payload['scope'] === 'string' && payload['scope'].split(' ').includes(SCOPE)));
  });

  test('the refresh token yields a new JWT and is rotated', async () => {
    const first = await deviceLogin(h.idp, CLIENT_ID, 'carol');
    const second = await refresh(h.issuer, CLIENT_ID, first.refreshToken);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.notEqual(second.refreshToken, first.refreshToken);
    const a = await verifyAccessToken(h, discovery, first.accessToken);
    const b = await verifyAccessToken(h, discovery, second.accessToken);
    assert.notEqual(a.jti, b.jti);
    assert.equal(b.sub, 'carol');
    assert.deepEqual(b['groups'], ['auditors']);
    assert.ok(String(b['scope']).split(' ').includes(SCOPE));

    // Reusing a rotated refresh token is refused (and revokes the grant).
    await assert.rejects(refresh(h.issuer, CLIENT_ID, first.refreshToken), (e: unknown) => e instanceof OAuthResponseError && e.error === 'invalid_grant');
    await assert.rejects(refresh(h.issuer, CLIENT_ID, second.refreshToken), (e: unknown) => e instanceof OAuthResponseError && e.error === 'invalid_grant');
  });

  test('a revoked refresh token no longer works', async () => {
    const tokens = await deviceLogin(h.idp, CLIENT_ID, 'alice');
    assert.ok(discovery.revocation_endpoint);
    const res = await fetch(discovery.revocation_endpoint, {
      method: 'POST',
      body: new URLSearchParams({ client_id: CLIENT_ID, token: tokens.refreshToken, token_type_hint: 'refresh_token' }),
    });
    assert.equal(res.status, 200);
    await assert.rejects(refresh(h.issuer, CLIENT_ID, tokens.refreshToken), (e: unknown) => e instanceof OAuthResponseError && e.error === 'invalid_grant');
  });

  test('denyDevice makes the polling client get access_denied', async () => {
    const { discovery: d, authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    await h.idp.denyDevice(authorization.user_code);
    const result = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.error.error, 'access_denied');
    await assert.rejects(h.idp.approveDevice(authorization.user_code, 'alice'), (e: unknown) => e instanceof DevIdpError && e.reason === 'user_code_already_used');
  });

  test('approveDevice rejects unknown users and codes, accepts codes in any case without dashes', async () => {
    const { discovery: d, authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    await assert.rejects(h.idp.approveDevice(authorization.user_code, 'mallory'), (e: unknown) => e instanceof DevIdpError && e.reason === 'unknown_user' && /alice, bob, carol, dave/.test(e.message));
    await assert.rejects(h.idp.approveDevice('ZZZZ-ZZZZ', 'alice'), (e: unknown) => e instanceof DevIdpError && e.reason === 'unknown_user_code');
    await assert.rejects(h.idp.approveDevice('', 'alice'), (e: unknown) => e instanceof DevIdpError && e.reason === 'unknown_user_code');

    // Still pending after the failed attempts.
    const pending = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(!pending.ok && pending.error.error, 'authorization_pending');

    await h.idp.approveDevice(authorization.user_code.replace('-', '').toLowerCase(), 'alice');
    const tokens = await pollUntilDecided(d, CLIENT_ID, authorization);
    assert.equal((await verifyAccessToken(h, discovery, tokens.accessToken)).sub, 'alice');
    await assert.rejects(h.idp.approveDevice(authorization.user_code, 'bob'), (e: unknown) => e instanceof DevIdpError && e.reason === 'user_code_already_used');

    // A used device code cannot be redeemed twice.
    const again = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(!again.ok && again.error.error, 'invalid_grant');
  });

  test('POST /oidc/dev/approve and /oidc/dev/deny', async () => {
    // With the approve secret unless the body says otherwise.
    const post = (path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      fetch(`${h.issuer}/dev/${path}`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify({ secret: h.idp.approveSecret, ...(body as object) }),
      });

    const { discovery: d, authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);

    let res = await fetch(`${h.issuer}/dev/approve`);
    assert.equal(res.status, 405);
    res = await post('approve', { user_code: authorization.user_code, user: 'bob' }, { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
    res = await post('approve', { user_code: authorization.user_code, user: 'bob' }, { 'content-type': 'application/json', origin: 'http://evil.example' });
    assert.equal(res.status, 403);
    res = await post('approve', '{not json');
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    res = await post('approve', { user_code: authorization.user_code });
    assert.equal(res.status, 400);
    res = await post('approve', { user_code: authorization.user_code, user: 'mallory' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'unknown_user');
    res = await post('approve', { user_code: 'QQQQ-QQQQ', user: 'bob' });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: string }).error, 'unknown_user_code');

    res = await post('approve', { user_code: authorization.user_code, user: 'bob' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { approved: true, user: 'bob' });
    const tokens = await pollUntilDecided(d, CLIENT_ID, authorization);
    assert.equal((await verifyAccessToken(h, discovery, tokens.accessToken)).sub, 'bob');

    res = await post('approve', { user_code: authorization.user_code, user: 'bob' });
    assert.equal(res.status, 409);

    const second = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    res = await post('deny', { user_code: second.authorization.user_code, secret: undefined });
    assert.equal(res.status, 403, 'denying needs the secret too');
    res = await post('deny', { user_code: second.authorization.user_code });
    assert.equal(res.status, 200);
    const denied = await pollDeviceToken(d, CLIENT_ID, second.authorization.device_code);
    assert.equal(!denied.ok && denied.error.error, 'access_denied');
  });

  test('an attacker on this machine without the approve secret cannot approve (or deny) a login: 403, no token', async () => {
    // The attacker starts a login and tries to approve it as alice, the way the dev endpoint
    // worked before: no secret, a guessed one, one of the right length, the secret's prefix.
    const { discovery: d, authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    // What `curl -X POST …/dev/approve -d '{"user_code":"…","user":"alice"}'` gets.
    const bare = await fetch(`${h.issuer}/dev/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_code: authorization.user_code, user: 'alice' }) });
    assert.equal(bare.status, 403, 'approving without the secret is refused');
    const secret = h.idp.approveSecret;
    assert.ok(secret.length >= 32, 'a long random secret');
    const attempts: unknown[] = [undefined, '', 'alice', 'x'.repeat(secret.length), secret.slice(0, -1), `${secret}x`, secret.toUpperCase(), 12345, [secret], { secret }];
    for (const guess of attempts) {
      for (const action of ['approve', 'deny']) {
        const res = await fetch(`${h.issuer}/dev/${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user_code: authorization.user_code, user: 'alice', ...(guess === undefined ? {} : { secret: guess }) }),
        });
        assert.equal(res.status, 403, `${action} with ${JSON.stringify(guess)}`);
        const body = (await res.json()) as { error: string; error_description: string };
        assert.equal(body.error, 'forbidden');
        assert.match(body.error_description, /secret/);
        assert.ok(!JSON.stringify(body).includes(secret), 'the answer never carries the secret');
      }
    }
    // An unknown user code answers the same 403 (no oracle for codes without the secret).
    const unknown = await fetch(`${h.issuer}/dev/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_code: 'QQQQ-QQQQ', user: 'alice' }) });
    assert.equal(unknown.status, 403);
    const pending = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(!pending.ok && pending.error.error, 'authorization_pending', 'still pending: no token was issued');
    // The operator (who has the secret) can still decide it.
    const ok = await fetch(`${h.issuer}/dev/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_code: authorization.user_code, user: 'alice', secret: ` ${secret}\n` }) });
    assert.equal(ok.status, 200, 'surrounding whitespace (as read from the file) is fine');
    const tokens = await pollUntilDecided(d, CLIENT_ID, authorization);
    assert.equal((await verifyAccessToken(h, discovery, tokens.accessToken)).sub, 'alice');
  });

  test('the dev endpoint refuses callers that are not on loopback', async (t) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (!external) {
      t.skip('this machine has no non-loopback IPv4 address');
      return;
    }
    // A second listener on this machine's LAN address feeds the same IdP; the request comes
    // from that address, not from loopback.
    const lan = createServer((req, res) => h.idp.handle(req, res));
    await new Promise<void>((resolve) => lan.listen(0, external.address, resolve));
    t.after(() => new Promise<void>((resolve) => lan.close(() => resolve())));
    const { port } = lan.address() as AddressInfo;
    const { authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    const res = await fetch(`http://${external.address}:${port}/oidc/dev/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_code: authorization.user_code, user: 'alice', secret: h.idp.approveSecret }),
    });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error_description: string }).error_description, /loopback/);
    await h.idp.denyDevice(authorization.user_code);
  });

  test('a person can finish the login in a browser: code entry, pick a seeded user, done', async () => {
    const { discovery: d, authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    const browser = new Browser();

    let res = await browser.request(authorization.verification_uri);
    assert.equal(res.status, 200);
    let html = await res.text();
    assert.match(html, /aigov DEV identity provider/);
    const input = hiddenInputs(html, 'op.deviceInputForm');

    // A wrong code re-renders the entry page with an error.
    res = await browser.request(authorization.verification_uri, { form: { ...input, user_code: 'WRNG-CODE' } });
    html = await res.text();
    assert.match(html, /incorrect/);
    const retry = hiddenInputs(html, 'op.deviceInputForm');

    res = await browser.request(authorization.verification_uri, { form: { ...retry, user_code: authorization.user_code.toLowerCase() } });
    assert.equal(res.status, 200);
    html = await res.text();
    assert.match(html, /Confirm device/);
    assert.ok(html.includes(authorization.user_code), 'the confirmation page shows the code');
    const confirm = hiddenInputs(html, 'op.deviceConfirmForm');
    assert.equal(confirm['confirm'], 'yes');

    res = await browser.request(authorization.verification_uri, { form: confirm });
    let followed = await browser.follow(res, authorization.verification_uri);
    assert.equal(followed.res.status, 200);
    assert.match(followed.url, new RegExp(`^${h.issuer}/interaction/`));
    html = await followed.res.text();
    assert.match(html, /aigov DEV identity provider/);
    for (const u of DEV_USERS) assert.ok(html.includes(u.email), `picker lists ${u.id}`);

    assert.match(html, /type="password" name="secret"/, 'the picker asks for the approve secret');

    // Without the approve secret (or with a wrong one) nobody is signed in: 403, the picker again.
    for (const form of [{ user: 'carol' }, { user: 'carol', secret: '' }, { user: 'carol', secret: 'guess' }] as Record<string, string>[]) {
      res = await browser.request(followed.url, { form });
      assert.equal(res.status, 403);
      html = await res.text();
      assert.match(html, /approve secret is missing or wrong/);
      assert.ok(!html.includes(h.idp.approveSecret));
    }
    let pending = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(!pending.ok && pending.error.error, 'authorization_pending');

    // An unknown user is rejected and the interaction stays usable.
    res = await browser.request(followed.url, { form: { user: 'mallory', secret: h.idp.approveSecret } });
    assert.equal(res.status, 400);
    pending = await pollDeviceToken(d, CLIENT_ID, authorization.device_code);
    assert.equal(!pending.ok && pending.error.error, 'authorization_pending');

    res = await browser.request(followed.url, { form: { user: 'carol', secret: h.idp.approveSecret } });
    assert.equal(res.status, 303);
    followed = await browser.follow(res, followed.url);
    assert.equal(followed.res.status, 200);
    assert.match(await followed.res.text(), /Signed in/);

    const tokens = await pollUntilDecided(d, CLIENT_ID, authorization);
    const payload = await verifyAccessToken(h, discovery, tokens.accessToken);
    assert.equal(payload.sub, 'carol');
    assert.equal(payload['email'], 'carol@aigov.dev');
    assert.deepEqual(payload['groups'], ['auditors']);
    assert.ok(String(payload['scope']).split(' ').includes(SCOPE));

    // The same browser (with a session now) is asked again who it is on the next login.
    const next = await requestDeviceAuthorization(h.issuer, CLIENT_ID);
    res = await browser.request(next.authorization.verification_uri_complete ?? '');
    html = await res.text();
    // verification_uri_complete auto-submits the code entry form.
    const auto = hiddenInputs(html.replace('<form', '<form id="auto"'), 'auto');
    res = await browser.request(next.authorization.verification_uri, { form: auto });
    html = await res.text();
    res = await browser.request(next.authorization.verification_uri, { form: hiddenInputs(html, 'op.deviceConfirmForm') });
    followed = await browser.follow(res, next.authorization.verification_uri);
    assert.match(followed.url, /\/interaction\//);
    res = await browser.request(followed.url, { form: { deny: 'yes' } });
    await browser.follow(res, followed.url);
    const denied = await pollDeviceToken(d, CLIENT_ID, next.authorization.device_code);
    assert.equal(!denied.ok && denied.error.error, 'access_denied');
  });

  test('logins survive a restart: same keys, refresh token still works', async () => {
    const tokens = await deviceLogin(h.idp, CLIENT_ID, 'alice', { scope: DEFAULT_SCOPE });
    const kidBefore = decodeProtectedHeader(tokens.accessToken).kid;
    const { authorization } = await requestDeviceAuthorization(h.issuer, CLIENT_ID);

    await h.restart();

    const fresh = await discover(h.issuer);
    const refreshed = await refresh(h.issuer, CLIENT_ID, tokens.refreshToken);
    assert.equal(decodeProtectedHeader(refreshed.accessToken).kid, kidBefore);
    const payload = await verifyAccessToken(h, fresh, refreshed.accessToken);
    assert.equal(payload.sub, 'alice');
    // The token issued before the restart still verifies against the new instance's JWKS.
    await verifyAccessToken(h, fresh, tokens.accessToken);
    // A device login started before the restart can be finished after it.
    await h.idp.approveDevice(authorization.user_code, 'bob');

    for (const file of ['idp-jwks.json', 'idp-cookie-keys.json']) {
      const { mode } = await stat(join(h.stateDir, file));
      assert.equal(mode & 0o777, 0o600, `${file} mode`);
    }
    await stat(join(h.stateDir, 'idp.sqlite'));
  });

  test('after close the handler answers 503', async () => {
    const { harness, cleanup: stop } = await startHarness();
    try {
      await harness.idp.close();
      const res = await fetch(`${harness.issuer}/.well-known/openid-configuration`);
      assert.equal(res.status, 503);
    } finally {
      await stop();
    }
  });

  test('oidc-provider stayed quiet and no internal error happened', () => {
    assert.deepEqual(consoleCalls, []);
    assert.deepEqual(h.internalErrors.map((e) => e.message), []);
  });
});
