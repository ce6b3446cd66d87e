/**
 * Access-token verification against a real (tiny) issuer: a node:http server on 127.0.0.1
 * serving OIDC discovery and a JWKS, with ES256 and RS256 keys made by jose. Tokens are signed
 * with jose's SignJWT (or hand-crafted for the attacks). The verifier runs on an injected clock
 * so expiry and the refetch rate limit are exercised without sleeping.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { authError } from '../src/gateway/api-response.ts';
import { createTokenVerifier } from '../src/auth/verify-token.ts';
import type { TokenVerifierOptions, VerifyFailureCode, VerifyResult } from '../src/auth/verify-token.ts';
import { AigovError } from '../src/core/errors.ts';

const AUDIENCE = 'https://gateway.aigov.test';
const SKEW = 30;
const INTERVAL = 30;

interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicKey: CryptoKey;
}

async function makeKey(kid: string, alg: 'ES256' | 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

/** A little OIDC issuer: discovery + JWKS, with hit counters and failure switches. */
class TestIssuer {
  readonly server: Server;
  issuer = '';
  keys: SigningKey[] = [];
  /** 'up' answers; 'reset' destroys the connection; 'http500' answers 500. */
  mode: 'up' | 'reset' | 'http500' | 'garbage' = 'up';
  /** When set, discovery advertises this issuer instead of the real one. */
  advertisedIssuer: string | null = null;
  discoveryHits = 0;
  jwksHits = 0;

  constructor() {
    this.server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') this.discoveryHits++;
      else if (req.url === '/jwks') this.jwksHits++;
      if (this.mode === 'reset') {
        req.socket.destroy();
        return;
      }
      if (this.mode === 'http500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
        return;
      }
      if (this.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>maintenance</html>');
        return;
      }
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: this.advertisedIssuer ?? this.issuer, jwks_uri: `${this.issuer}/jwks`, id_token_signing_alg_values_supported: ['ES256', 'RS256'] }));
      } else if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }));
      } else {
        res.writeHead(404).end();
      }
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  resetCounters(): void {
    this.discoveryHits = 0;
    this.jwksHits = 0;
  }
}

/** A mutable millisecond clock, shared by the verifier and the token factory. */
function makeClock(start = Date.UTC(2030, 0, 1)): { now: () => number; advance: (seconds: number) => void; seconds: () => number } {
  let t = start;
  return { now: () => t, advance: (s) => { t += s * 1000; }, seconds: () => Math.floor(t / 1000) };
}

let idp: TestIssuer;
let es1: SigningKey;
let rs1: SigningKey;
let es2: SigningKey;

before(async () => {
  [es1, rs1, es2] = await Promise.all([makeKey('es-1', 'ES256'), makeKey('rs-1', 'RS256'), makeKey('es-2', 'ES256')]);
  idp = new TestIssuer();
  idp.keys = [es1, rs1];
  await idp.start();
});
after(async () => {
  await idp.stop();
});

function options(clock: { now: () => number }, overrides: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    issuer: idp.issuer,
    audience: AUDIENCE,
    algorithms: ['ES256', 'RS256'],
    clockSkewSeconds: SKEW,
    requiredScope: null,
    groupsClaim: 'groups',
    emailClaim: 'email',
    jwksRefetchIntervalSeconds: INTERVAL,
    now: clock.now,
    ...overrides,
  };
}

interface TokenSpec {
  key?: SigningKey;
  kid?: string | null;
  typ?: string | null;
  claims?: JWTPayload;
  /** seconds relative to the clock */
  exp?: number | null;
  nbf?: number;
  iat?: number;
  iss?: string;
  aud?: string | string[];
  sub?: string;
}

async function sign(clock: { seconds: () => number }, spec: TokenSpec = {}): Promise<string> {
  const key = spec.key ?? es1;
  const now = clock.seconds();
  const payload: JWTPayload = {
    iss: spec.iss ?? idp.issuer,
    aud: spec.aud ?? AUDIENCE,
    sub: spec.sub ?? 'user-7f3a',
    iat: now + (spec.iat ?? 0),
    client_id: 'aigov-cli',
    ...spec.claims,
  };
  if (spec.exp !== null) payload.exp = now + (spec.exp ?? 300);
  if (spec.nbf !== undefined) payload.nbf = now + spec.nbf;
  const header: { alg: string; kid?: string; typ?: string } = { alg: key.alg };
  if (spec.kid !== null) header.kid = spec.kid ?? key.kid;
  if (spec.typ !== null) header.typ = spec.typ ?? 'at+jwt';
  return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
}

function assertOk(result: VerifyResult): Extract<VerifyResult, { ok: true }> {
  assert.equal(result.ok, true, result.ok ? '' : `expected success, got ${result.code}: ${result.reason}`);
  return result;
}

/** A failure with the code and reason, whose texts hold nothing from the token. */
function assertFailure(result: VerifyResult, code: VerifyFailureCode, reason: RegExp, token?: string): Extract<VerifyResult, { ok: false }> {
  assert.equal(result.ok, false, 'expected a failure');
  const failure = result;
  assert.equal(failure.code, code, `reason was: ${failure.reason}`);
  assert.match(failure.reason, reason);
  assert.ok(failure.reason.length <= 80, 'reason is short');
  for (const text of [failure.reason, failure.wwwAuthenticate]) {
    for (const secret of ['user-7f3a', 'alice@example.com', 'aigov-cli']) assert.ok(!text.includes(secret), `no claim value in ${text}`);
    if (token !== undefined) for (const segment of token.split('.').filter((s) => s.length > 8)) assert.ok(!text.includes(segment), 'no token in texts');
  }
  if (code === 'AIGOV_E_AUTH_MISSING') assert.equal(failure.wwwAuthenticate, 'Bearer realm="aigov"');
  if (code === 'AIGOV_E_AUTH_INVALID' || code === 'AIGOV_E_AUTH_EXPIRED') {
    assert.equal(failure.wwwAuthenticate, `Bearer realm="aigov", error="invalid_token", error_description="${failure.reason}"`);
  }
  return failure;
}

describe('createTokenVerifier', () => {
  it('accepts a valid ES256 token and builds the principal (groups array, email)', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const token = await sign(clock, { claims: { email: 'alice@example.com', groups: ['eng', 'ml-admins'] } });
    const result = assertOk(await verifier.verify(`Bearer ${token}`));
    assert.deepEqual(result.principal, {
      subject: 'user-7f3a', email: 'alice@example.com', groups: ['eng', 'ml-admins'], issuer: idp.issuer, clientId: 'aigov-cli',
    });
    assert.equal(result.expiresAt, (clock.seconds() + 300) * 1000);
  });

  it('accepts RS256, a string groups claim, custom claim names, azp, typ JWT and a case-insensitive scheme', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock, { groupsClaim: 'roles', emailClaim: 'upn' }));
    const token = await sign(clock, { key: rs1, typ: 'JWT', claims: { client_id: undefined, azp: 'sdk-client', upn: 'alice@example.com', roles: 'eng, ml-admins  ops', groups: ['ignored'] } });
    const result = assertOk(await verifier.verify(`bEaReR   ${token}`));
    assert.deepEqual(result.principal.groups, ['eng', 'ml-admins', 'ops']);
    assert.equal(result.principal.email, 'alice@example.com');
    assert.equal(result.principal.clientId, 'sdk-client');

    const noGroups = assertOk(await verifier.verify(`Bearer ${await sign(clock, { typ: null })}`));
    assert.deepEqual(noGroups.principal.groups, []);
    assert.equal(noGroups.principal.email, null);
  });

  it('reads a nested groups claim by dotted path (Keycloak realm_access.roles)', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock, { groupsClaim: 'realm_access.roles' }));
    const token = await sign(clock, { claims: { realm_access: { roles: ['approvers'] } } });
    assert.deepEqual(assertOk(await verifier.verify(`Bearer ${token}`)).principal.groups, ['approvers']);
  });

  it('answers AIGOV_E_AUTH_MISSING without a header, with an empty one, or another scheme', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const token = await sign(clock);
    assertFailure(await verifier.verify(undefined), 'AIGOV_E_AUTH_MISSING', /no authorization header/);
    assertFailure(await verifier.verify('   '), 'AIGOV_E_AUTH_MISSING', /no authorization header/);
    assertFailure(await verifier.verify('Bearer'), 'AIGOV_E_AUTH_MISSING', /no bearer token/);
    assertFailure(await verifier.verify(`Basic ${token}`), 'AIGOV_E_AUTH_MISSING', /not Bearer/, token);
    assertFailure(await verifier.verify(`Token ${token}`), 'AIGOV_E_AUTH_MISSING', /not Bearer/, token);
  });

  it('refuses malformed tokens, JWE and non-access-token typ', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    assertFailure(await verifier.verify('Bearer not-a-jwt'), 'AIGOV_E_AUTH_INVALID', /^malformed token$/);
    assertFailure(await verifier.verify('Bearer a.b.c.d.e'), 'AIGOV_E_AUTH_INVALID', /^malformed token$/);
    assertFailure(await verifier.verify('Bearer e30.e30.sig extra'), 'AIGOV_E_AUTH_INVALID', /^malformed token$/);
    assertFailure(await verifier.verify('Bearer !!!.e30.abc'), 'AIGOV_E_AUTH_INVALID', /^malformed token$/);
    const dpop = await sign(clock, { typ: 'dpop+jwt' });
    assertFailure(await verifier.verify(`Bearer ${dpop}`), 'AIGOV_E_AUTH_INVALID', /unexpected token type/, dpop);
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { typ: 'application/at+JWT' })}`));
  });

  it('answers AIGOV_E_AUTH_EXPIRED for an expired token (beyond the skew) and accepts one within it', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const expired = await sign(clock, { iat: -600, exp: -(SKEW + 1) });
    const failure = assertFailure(await verifier.verify(`Bearer ${expired}`), 'AIGOV_E_AUTH_EXPIRED', /^token expired$/, expired);
    assert.equal(failure.wwwAuthenticate, 'Bearer realm="aigov", error="invalid_token", error_description="token expired"');
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { iat: -600, exp: -(SKEW - 5) })}`));
    const noExp = await sign(clock, { exp: null });
    assertFailure(await verifier.verify(`Bearer ${noExp}`), 'AIGOV_E_AUTH_INVALID', /^missing exp claim$/, noExp);
  });

  it('honours nbf and iat with the clock skew', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const early = await sign(clock, { nbf: SKEW + 60 });
    assertFailure(await verifier.verify(`Bearer ${early}`), 'AIGOV_E_AUTH_INVALID', /^token not yet valid$/, early);
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { nbf: SKEW - 5 })}`));
    const future = await sign(clock, { iat: SKEW + 60 });
    assertFailure(await verifier.verify(`Bearer ${future}`), 'AIGOV_E_AUTH_INVALID', /^token issued in the future$/, future);
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { iat: SKEW - 5 })}`));
  });

  it('refuses a wrong audience and a wrong issuer; accepts the audience inside an array', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const wrongAud = await sign(clock, { aud: 'https://other.example' });
    assertFailure(await verifier.verify(`Bearer ${wrongAud}`), 'AIGOV_E_AUTH_INVALID', /^wrong audience$/, wrongAud);
    const wrongIss = await sign(clock, { iss: `${idp.issuer}/evil` });
    assertFailure(await verifier.verify(`Bearer ${wrongIss}`), 'AIGOV_E_AUTH_INVALID', /^wrong issuer$/, wrongIss);
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { aud: ['https://other.example', AUDIENCE] })}`));
  });

  it('refuses alg "none" even when it is configured', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock, { algorithms: ['none', 'ES256'] }));
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ iss: idp.issuer, aud: AUDIENCE, sub: 'user-7f3a', exp: clock.seconds() + 300 }));
    for (const unsigned of [`${header}.${payload}.`, `${header}.${payload}.AAAA`]) {
      assertFailure(await verifier.verify(`Bearer ${unsigned}`), 'AIGOV_E_AUTH_INVALID', /^algorithm not allowed$/, unsigned);
    }
  });

  it('refuses HS256 signed with the public key as the HMAC secret (key confusion), even when HS256 is configured', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock, { algorithms: ['HS256', 'RS256', 'ES256'] }));
    const claims = { iss: idp.issuer, aud: AUDIENCE, sub: 'user-7f3a', exp: clock.seconds() + 300 };
    const spki = await exportSPKI(rs1.publicKey);
    for (const secret of [Buffer.from(spki), Buffer.from(JSON.stringify(rs1.publicJwk))]) {
      const signingInput = `${base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'rs-1' }))}.${base64url.encode(JSON.stringify(claims))}`;
      const forged = `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
      assertFailure(await verifier.verify(`Bearer ${forged}`), 'AIGOV_E_AUTH_INVALID', /^algorithm not allowed$/, forged);
    }
    // Only HS* configured: nothing usable is left, which is a configuration error.
    assert.throws(() => createTokenVerifier(options(clock, { algorithms: ['HS256', 'none'] })), /no usable asymmetric/);
  });

  it('refuses algorithms outside the allowlist and a key whose type does not match alg', async () => {
    const clock = makeClock();
    const esOnly = createTokenVerifier(options(clock, { algorithms: ['ES256'] }));
    const rsToken = await sign(clock, { key: rs1 });
    assertFailure(await esOnly.verify(`Bearer ${rsToken}`), 'AIGOV_E_AUTH_INVALID', /^algorithm not allowed$/, rsToken);

    // ES256 header naming the RSA key: no usable key for that alg.
    const verifier = createTokenVerifier(options(clock));
    const mismatched = await sign(clock, { key: es1, kid: 'rs-1' });
    assertFailure(await verifier.verify(`Bearer ${mismatched}`), 'AIGOV_E_AUTH_INVALID', /^unknown signing key$/, mismatched);
  });

  it('detects a tampered payload', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock));
    const token = await sign(clock, { claims: { groups: ['eng'] } });
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as JWTPayload;
    const tampered = `${h}.${base64url.encode(JSON.stringify({ ...claims, groups: ['ml-admins'] }))}.${s}`;
    assertFailure(await verifier.verify(`Bearer ${tampered}`), 'AIGOV_E_AUTH_INVALID', /^signature verification failed$/, tampered);
    const otherKeySig = (await sign(clock, { key: es2, kid: 'es-1' })).split('.')[2];
    const swapped = `${h}.${p}.${otherKeySig}`;
    assertFailure(await verifier.verify(`Bearer ${swapped}`), 'AIGOV_E_AUTH_INVALID', /^signature verification failed$/, swapped);
  });

  it('answers AIGOV_E_AUTH_SCOPE without the required scope; reads scope and scp', async () => {
    const clock = makeClock();
    const verifier = createTokenVerifier(options(clock, { requiredScope: 'aigov:use' }));
    const without = await sign(clock, { claims: { scope: 'openid email aigov:use-not' } });
    const failure = assertFailure(await verifier.verify(`Bearer ${without}`), 'AIGOV_E_AUTH_SCOPE', /^missing required scope$/, without);
    assert.equal(failure.wwwAuthenticate, 'Bearer realm="aigov", error="insufficient_scope", error_description="missing required scope", scope="aigov:use"');
    // What the user reads names the scope, not the reason (it used to say "lacks the scope `missing required scope`").
    assert.equal(authError(failure).message, 'The access token lacks the scope `aigov:use` that this gateway requires.');
    assertFailure(await verifier.verify(`Bearer ${await sign(clock)}`), 'AIGOV_E_AUTH_SCOPE', /scope/);
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { claims: { scope: 'openid aigov:use email' } })}`));
    assertOk(await verifier.verify(`Bearer ${await sign(clock, { claims: { scp: ['openid', 'aigov:use'] } })}`));
  });

  describe('key rotation and the JWKS cache', () => {
    it('shares one discovery + JWKS fetch among concurrent first uses', async () => {
      const clock = makeClock();
      idp.resetCounters();
      const verifier = createTokenVerifier(options(clock));
      const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => sign(clock, { sub: `user-${i}` })));
      const results = await Promise.all(tokens.map((t) => verifier.verify(`Bearer ${t}`)));
      for (const r of results) assertOk(r);
      assert.equal(idp.discoveryHits, 1);
      assert.equal(idp.jwksHits, 1);
    });

    it('refetches on an unknown kid and finds a rotated key; at most one refetch per interval', async (t) => {
      const clock = makeClock();
      idp.keys = [es1, rs1];
      t.after(() => { idp.keys = [es1, rs1]; });
      idp.resetCounters();
      const verifier = createTokenVerifier(options(clock));
      await verifier.warmUp();
      assert.equal(idp.jwksHits, 1);

      // The IdP rotates to es-2 after our fetch.
      idp.keys = [es2, es1, rs1];
      clock.advance(INTERVAL + 1);
      const rotated = await sign(clock, { key: es2 });
      assertOk(await verifier.verify(`Bearer ${rotated}`));
      assert.equal(idp.jwksHits, 2, 'one refetch for the unknown kid');

      // A spray of random kids inside the interval: no further fetches, all refused.
      const sprayed = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(clock, { key: es2, kid: `random-${i}` })));
      const results = await Promise.all(sprayed.map((tok) => verifier.verify(`Bearer ${tok}`)));
      for (const [i, r] of results.entries()) assertFailure(r, 'AIGOV_E_AUTH_INVALID', /^unknown signing key$/, sprayed[i]);
      clock.advance(INTERVAL - 2);
      assertFailure(await verifier.verify(`Bearer ${sprayed[0]}`), 'AIGOV_E_AUTH_INVALID', /^unknown signing key$/);
      assert.equal(idp.jwksHits, 2, 'no second fetch within the interval');
      assert.equal(idp.discoveryHits, 1, 'discovery is cached');

      // After the interval, concurrent verifications with a new kid share one fetch.
      const es3 = await makeKey('es-3', 'ES256');
      idp.keys = [es3, es2];
      clock.advance(3);
      const fresh = await Promise.all(Array.from({ length: 10 }, (_, i) => sign(clock, { key: es3, sub: `user-${i}` })));
      for (const r of await Promise.all(fresh.map((tok) => verifier.verify(`Bearer ${tok}`)))) assertOk(r);
      assert.equal(idp.jwksHits, 3, 'concurrent unknown-kid verifications share one fetch');
    });

    it('refreshes an old key set in the background, so a withdrawn key stops being trusted', async (t) => {
      const clock = makeClock();
      t.after(() => { idp.keys = [es1, rs1]; });
      idp.resetCounters();
      const verifier = createTokenVerifier(options(clock));
      await verifier.warmUp();
      idp.keys = [es2]; // es-1 and rs-1 withdrawn by the IdP
      clock.advance(60);
      assertOk(await verifier.verify(`Bearer ${await sign(clock, { sub: 'young-set' })}`));
      assert.equal(idp.jwksHits, 1, 'a young key set is not refetched');
      clock.advance(600);
      // Served from the current set while a background refresh starts (no verify waits for it).
      assertOk(await verifier.verify(`Bearer ${await sign(clock, { sub: 'stale-set' })}`));
      for (const deadline = Date.now() + 5_000; idp.jwksHits < 2 && Date.now() < deadline;) await delay(5);
      assert.equal(idp.jwksHits, 2, 'the old key set was refetched in the background');
      // The IdP has answered the fetch; once the verifier has taken the new set in (no verify
      // waits for it), the withdrawn key is refused. es-1 is still in the old set, so until then
      // its tokens pass: wait for the swap, never for a fixed time.
      const withdrawn = await sign(clock, { sub: 'after-refresh' });
      let result = await verifier.verify(`Bearer ${withdrawn}`);
      for (const deadline = Date.now() + 5_000; result.ok && Date.now() < deadline; result = await verifier.verify(`Bearer ${withdrawn}`)) await delay(5);
      assertFailure(result, 'AIGOV_E_AUTH_INVALID', /^unknown signing key$/, withdrawn);
      assert.equal(idp.jwksHits, 2, 'tokens of a known key never start another fetch');
    });

    it('tries every usable key when the token has no kid', async () => {
      const clock = makeClock();
      const es4 = await makeKey('es-4', 'ES256');
      const es5 = await makeKey('es-5', 'ES256');
      idp.keys = [es4, es5, rs1];
      try {
        const verifier = createTokenVerifier(options(clock));
        assertOk(await verifier.verify(`Bearer ${await sign(clock, { key: es5, kid: null })}`));
        const foreign = await sign(clock, { key: es1, kid: null });
        assertFailure(await verifier.verify(`Bearer ${foreign}`), 'AIGOV_E_AUTH_INVALID', /^signature verification failed$/, foreign);
      } finally {
        idp.keys = [es1, rs1];
      }
    });
  });

  describe('IdP availability', () => {
    for (const mode of ['reset', 'http500', 'garbage'] as const) {
      it(`answers AIGOV_E_IDP_UNAVAILABLE while the IdP is down (${mode}) and recovers when it is back`, async (t) => {
        const clock = makeClock();
        idp.mode = mode;
        t.after(() => { idp.mode = 'up'; });
        idp.resetCounters();
        const verifier = createTokenVerifier(options(clock));
        const token = await sign(clock);

        const failure = assertFailure(await verifier.verify(`Bearer ${token}`), 'AIGOV_E_IDP_UNAVAILABLE', /^discovery (request failed|response is not JSON)/, token);
        assert.equal(failure.wwwAuthenticate, 'Bearer realm="aigov"');
        await assert.rejects(verifier.warmUp(), (error: unknown) => error instanceof AigovError && error.code === 'AIGOV_E_IDP_UNAVAILABLE' && error.status === 503);
        const hitsWhileDown = idp.discoveryHits;
        // Failures are not re-fetched on every request (brief backoff) ...
        assertFailure(await verifier.verify(`Bearer ${token}`), 'AIGOV_E_IDP_UNAVAILABLE', /discovery/);
        assert.equal(idp.discoveryHits, hitsWhileDown);

        // ... nor cached forever: once the IdP is back, the next attempt after the backoff succeeds.
        idp.mode = 'up';
        clock.advance(6);
        const result = assertOk(await verifier.verify(`Bearer ${await sign(clock)}`));
        assert.equal(result.principal.subject, 'user-7f3a');
        assert.equal(idp.jwksHits, 1);
      });
    }

    it('refuses an IdP whose discovery metadata names another issuer', async (t) => {
      const clock = makeClock();
      idp.advertisedIssuer = `${idp.issuer}/`;
      t.after(() => { idp.advertisedIssuer = null; });
      idp.resetCounters();
      const verifier = createTokenVerifier(options(clock));
      const token = await sign(clock);
      assertFailure(await verifier.verify(`Bearer ${token}`), 'AIGOV_E_IDP_UNAVAILABLE', /^discovery metadata issuer mismatch$/, token);
      await assert.rejects(verifier.warmUp(), AigovError);
      assert.equal(idp.jwksHits, 0, 'the JWKS of a mismatched issuer is never fetched');
    });

    it('answers AIGOV_E_IDP_UNAVAILABLE when an unknown-kid refetch fails, and keeps the cached keys', async (t) => {
      const clock = makeClock();
      const verifier = createTokenVerifier(options(clock));
      await verifier.warmUp();
      idp.mode = 'reset';
      t.after(() => { idp.mode = 'up'; });
      clock.advance(INTERVAL + 1);
      const unknown = await sign(clock, { key: es2 });
      assertFailure(await verifier.verify(`Bearer ${unknown}`), 'AIGOV_E_IDP_UNAVAILABLE', /request failed/, unknown);
      assertOk(await verifier.verify(`Bearer ${await sign(clock)}`));
    });
  });

  describe('verified-token cache', () => {
    it('returns the cached principal for a repeat token and drops it at the token exp', async (t) => {
      const clock = makeClock();
      const verifier = createTokenVerifier(options(clock));
      const token = await sign(clock, { exp: 60, claims: { email: 'alice@example.com', groups: ['eng'] } });
      const first = assertOk(await verifier.verify(`Bearer ${token}`));
      const second = assertOk(await verifier.verify(`Bearer ${token}`));
      assert.equal(second.principal, first.principal, 'same object: served from the cache');
      assert.ok(Object.isFrozen(first.principal) && Object.isFrozen(first.principal.groups));

      clock.advance(59);
      assert.equal(assertOk(await verifier.verify(`Bearer ${token}`)).principal, first.principal);
      // At exp the entry is gone: full verification again (still inside the clock skew → accepted, new object).
      clock.advance(1);
      const third = assertOk(await verifier.verify(`Bearer ${token}`));
      assert.notEqual(third.principal, first.principal);
      assert.deepEqual(third.principal, first.principal);
      clock.advance(SKEW);
      assertFailure(await verifier.verify(`Bearer ${token}`), 'AIGOV_E_AUTH_EXPIRED', /expired/, token);

      // Cost of a cached vs an uncached verification (reported, not asserted).
      const clock2 = makeClock();
      const timed = createTokenVerifier(options(clock2));
      const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => sign(clock2, { sub: `user-${i}` })));
      await timed.verify(`Bearer ${tokens[0]}`);
      let start = process.hrtime.bigint();
      for (const tok of tokens.slice(1)) assertOk(await timed.verify(`Bearer ${tok}`));
      const uncachedUs = Number(process.hrtime.bigint() - start) / 1000 / (tokens.length - 1);
      const header = `Bearer ${tokens[1]}`;
      const rounds = 20_000;
      for (let i = 0; i < 2_000; i++) await timed.verify(header); // warm up
      start = process.hrtime.bigint();
      for (let i = 0; i < rounds; i++) await timed.verify(header);
      const cachedUs = Number(process.hrtime.bigint() - start) / 1000 / rounds;
      t.diagnostic(`verify ES256: uncached ${uncachedUs.toFixed(1)} µs/call, cached ${cachedUs.toFixed(2)} µs/call`);
    });

    it('is bounded (LRU eviction) and can be disabled', async () => {
      const clock = makeClock();
      const verifier = createTokenVerifier(options(clock, { cacheSize: 2 }));
      const [a, b, c] = await Promise.all([sign(clock, { sub: 'a' }), sign(clock, { sub: 'b' }), sign(clock, { sub: 'c' })]);
      const firstA = assertOk(await verifier.verify(`Bearer ${a}`)).principal;
      const firstB = assertOk(await verifier.verify(`Bearer ${b}`)).principal;
      assert.equal(assertOk(await verifier.verify(`Bearer ${a}`)).principal, firstA, 'a refreshed as most recent');
      assertOk(await verifier.verify(`Bearer ${c}`)); // evicts b, the least recently used
      assert.equal(assertOk(await verifier.verify(`Bearer ${a}`)).principal, firstA);
      assert.notEqual(assertOk(await verifier.verify(`Bearer ${b}`)).principal, firstB);

      const uncached = createTokenVerifier(options(clock, { cacheSize: 0 }));
      const p1 = assertOk(await uncached.verify(`Bearer ${a}`)).principal;
      assert.notEqual(assertOk(await uncached.verify(`Bearer ${a}`)).principal, p1);
    });

    it('does not cache failures into successes: a tampered copy of a cached token is still refused', async () => {
      const clock = makeClock();
      const verifier = createTokenVerifier(options(clock));
      const token = await sign(clock);
      assertOk(await verifier.verify(`Bearer ${token}`));
      const tampered = `${token.slice(0, -4)}${token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      assertFailure(await verifier.verify(`Bearer ${tampered}`), 'AIGOV_E_AUTH_INVALID', /signature verification failed|malformed/, tampered);
    });
  });
});
