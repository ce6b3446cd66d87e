/**
 * Test helpers that log in against the dev identity provider with the REAL OAuth device
 * authorization grant over HTTP (RFC 8628): discovery → device authorization request → the
 * user approves (through `idp.approveDevice`, as the gateway's dev endpoint does) → the client
 * polls the token endpoint, honouring `interval`, `authorization_pending` and `slow_down`.
 */

export interface DeviceLoginTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

export interface DiscoveryDocument {
  issuer: string;
  token_endpoint: string;
  device_authorization_endpoint: string;
  jwks_uri: string;
  revocation_endpoint?: string;
  [key: string]: unknown;
}

/** An OAuth error response from the token or device endpoint. */
export class OAuthResponseError extends Error {
  readonly status: number;
  readonly error: string;
  readonly errorDescription: string | undefined;
  constructor(status: number, error: string, errorDescription: string | undefined) {
    super(`${error}${errorDescription ? `: ${errorDescription}` : ''} (HTTP ${status})`);
    this.name = 'OAuthResponseError';
    this.status = status;
    this.error = error;
    this.errorDescription = errorDescription;
  }
}

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const DEFAULT_SCOPE = 'openid offline_access email profile aigov';

export async function discover(issuer: string): Promise<DiscoveryDocument> {
  const res = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`discovery failed with HTTP ${res.status}`);
  return (await res.json()) as DiscoveryDocument;
}

async function postForm(url: string, form: Record<string, string | undefined>): Promise<{ status: number; body: Record<string, unknown> }> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) params.set(k, v);
  const res = await fetch(url, { method: 'POST', body: params, headers: { accept: 'application/json' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function oauthError(status: number, body: Record<string, unknown>): OAuthResponseError {
  return new OAuthResponseError(
    status,
    typeof body['error'] === 'string' ? body['error'] : 'unknown_error',
    typeof body['error_description'] === 'string' ? body['error_description'] : undefined,
  );
}

function tokensFrom(body: Record<string, unknown>, previousRefreshToken?: string): DeviceLoginTokens {
  const { access_token: accessToken, expires_in: expiresIn } = body;
  // A refresh that does not rotate keeps the refresh token it was given.
  const refreshToken = body['refresh_token'] ?? previousRefreshToken;
  if (typeof accessToken !== 'string' || typeof refreshToken !== 'string' || typeof expiresIn !== 'number') {
    throw new Error(`token response lacks access_token/refresh_token/expires_in (has: ${Object.keys(body).join(', ')})`);
  }
  return { accessToken, refreshToken, expiresIn };
}

/** Step 1 of the device flow: the device authorization request. */
export async function requestDeviceAuthorization(
  issuer: string,
  clientId: string,
  opts: { scope?: string; resource?: string } = {},
): Promise<{ discovery: DiscoveryDocument; authorization: DeviceAuthorization }> {
  const discovery = await discover(issuer);
  const { status, body } = await postForm(discovery.device_authorization_endpoint, {
    client_id: clientId,
    scope: opts.scope ?? DEFAULT_SCOPE,
    resource: opts.resource,
  });
  if (status !== 200) throw oauthError(status, body);
  return { discovery, authorization: body as unknown as DeviceAuthorization };
}

/** One token-endpoint poll: tokens, or the OAuth error (authorization_pending, access_denied, …). */
export async function pollDeviceToken(
  discovery: DiscoveryDocument,
  clientId: string,
  deviceCode: string,
): Promise<{ ok: true; tokens: DeviceLoginTokens; body: Record<string, unknown> } | { ok: false; error: OAuthResponseError }> {
  const { status, body } = await postForm(discovery.token_endpoint, {
    client_id: clientId,
    grant_type: DEVICE_CODE_GRANT,
    device_code: deviceCode,
  });
  if (status === 200) return { ok: true, tokens: tokensFrom(body), body };
  return { ok: false, error: oauthError(status, body) };
}

/**
 * Polls until the login is decided: waits `interval` seconds after each authorization_pending
 * (plus 5 s after slow_down, per RFC 8628 §3.5), returns tokens, or throws the OAuth error.
 */
export async function pollUntilDecided(
  discovery: DiscoveryDocument,
  clientId: string,
  authorization: DeviceAuthorization,
  opts: { maxWaitMs?: number } = {},
): Promise<DeviceLoginTokens> {
  let intervalMs = (authorization.interval ?? 5) * 1000;
  const deadline = Date.now() + (opts.maxWaitMs ?? authorization.expires_in * 1000);
  for (;;) {
    const result = await pollDeviceToken(discovery, clientId, authorization.device_code);
    if (result.ok) return result.tokens;
    if (result.error.error === 'slow_down') intervalMs += 5000;
    else if (result.error.error !== 'authorization_pending') throw result.error;
    if (Date.now() + intervalMs > deadline) throw new Error('device login was not approved in time');
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The whole device login as `userId`. The first poll happens before approval (and must say
 * authorization_pending, as a real client sees); then the user approves and polling resumes.
 */
export async function deviceLogin(
  idp: { issuer: string; approveDevice(code: string, user: string): Promise<void> },
  clientId: string,
  userId: string,
  opts: { scope?: string; resource?: string } = {},
): Promise<DeviceLoginTokens> {
  const { discovery, authorization } = await requestDeviceAuthorization(idp.issuer, clientId, opts);
  const first = await pollDeviceToken(discovery, clientId, authorization.device_code);
  if (first.ok) throw new Error('the token endpoint issued tokens before the device login was approved');
  if (first.error.error !== 'authorization_pending') throw first.error;
  await idp.approveDevice(authorization.user_code, userId);
  return pollUntilDecided(discovery, clientId, authorization);
}

/** The refresh_token grant; returns the new tokens (the dev IdP rotates refresh tokens). */
export async function refresh(issuer: string, clientId: string, refreshToken: string): Promise<DeviceLoginTokens> {
  const discovery = await discover(issuer);
  const { status, body } = await postForm(discovery.token_endpoint, {
    client_id: clientId,
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
  });
  if (status !== 200) throw oauthError(status, body);
  return tokensFrom(body, refreshToken);
}
