/**
 * The CLI's OAuth client: the gateway's discovery document, the IdP's OpenID configuration,
 * the device authorization grant (RFC 8628), the refresh grant and token revocation, all with
 * panva's openid-client. Every failure leaves this module as a coded AigovError whose message
 * carries only safe reasons (error codes, host names), never a token.
 */
import * as oidc from 'openid-client';
import { AigovError, isAigovError } from '../core/errors.ts';
import { DISCOVERY_PATH, DiscoverySchema, type Discovery } from '../protocol/discovery.ts';
import { isLoopbackUrl, normalizeGatewayUrl } from './gateway-url.ts';

// Kept here too for the callers that import them from the OAuth client.
export { isLoopbackUrl, normalizeGatewayUrl } from './gateway-url.ts';

export type FetchLike = typeof fetch;

/** Tokens from the token endpoint, reduced to what aigov uses. */
export interface TokenSet {
  readonly accessToken: string;
  /** Null when the IdP issued none (or, on refresh, did not rotate it). */
  readonly refreshToken: string | null;
  /** Epoch milliseconds; from `expires_in`, else the JWT's `exp`, else five minutes. */
  readonly expiresAt: number;
  /** Claims of the ID token, when one was issued (used for the email when the access token lacks it). */
  readonly idTokenClaims: Readonly<Record<string, unknown>> | null;
}

/** What the user must see to approve a device login. */
export interface DevicePrompt {
  readonly userCode: string;
  readonly verificationUri: string;
  /** The URL with the code filled in, when the IdP offers one. */
  readonly verificationUriComplete: string | null;
  /** Epoch milliseconds when the code stops working. */
  readonly expiresAt: number;
  /** Seconds between polls (the server's `interval`, default 5). */
  readonly intervalSeconds: number;
}

export interface DeviceLogin {
  readonly prompt: DevicePrompt;
  /** Polls until the user approves (tokens), denies (AIGOV_E_LOGIN_DENIED) or the code expires (AIGOV_E_LOGIN_EXPIRED). */
  waitForTokens(signal?: AbortSignal): Promise<TokenSet>;
}

const DEFAULT_TIMEOUT_SECONDS = 30;
const DEFAULT_EXPIRES_IN_SECONDS = 300;

/** A short, safe description of a network failure: the errno-style code when there is one. */
export function networkReason(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code) && !code.startsWith('OAUTH_')) {
      if (code === 'ECONNREFUSED') return 'connection refused';
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
      if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connection timed out';
      if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
      if (code.startsWith('ERR_TLS') || code.includes('CERT')) return `TLS error (${code})`;
      return code;
    }
    if (current instanceof DOMException && current.name === 'TimeoutError') return 'timed out';
    current = (current as { cause?: unknown }).cause;
  }
  return 'network error';
}

/** True for failures worth retrying: network errors, timeouts, 5xx and 429 from the IdP. */
export function isTransientError(error: unknown): boolean {
  if (error instanceof oidc.ResponseBodyError) return error.status >= 500 || error.status === 429;
  if (error instanceof TypeError) return true; // fetch failed
  if (error instanceof oidc.ClientError) {
    if (error.code === 'OAUTH_TIMEOUT') return true;
    if (error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
      const status = (error.cause as { status?: unknown } | undefined)?.status;
      return typeof status === 'number' && (status >= 500 || status === 429);
    }
  }
  return false;
}

function describeOAuthError(error: oidc.ResponseBodyError): string {
  const code = /^[\w.-]{1,64}$/.test(error.error) ? error.error : 'error';
  const description = typeof error.error_description === 'string' ? error.error_description.replace(/[^\x20-\x7e]/g, ' ').trim() : '';
  const clipped = description.length > 160 ? `${description.slice(0, 160)}…` : description;
  return clipped ? `the identity provider answered ${code} (${clipped})` : `the identity provider answered ${code}`;
}

/** Maps anything openid-client (or fetch) throws during a login to a coded error. */
export function loginError(error: unknown): AigovError {
  if (isAigovError(error)) return error;
  if (error instanceof oidc.ResponseBodyError) {
    if (error.error === 'access_denied') return new AigovError('AIGOV_E_LOGIN_DENIED', undefined, { cause: error });
    if (error.error === 'expired_token') return new AigovError('AIGOV_E_LOGIN_EXPIRED', undefined, { cause: error });
    return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: describeOAuthError(error) }, { cause: error });
  }
  if (error instanceof TypeError) {
    return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: `cannot reach the identity provider: ${networkReason(error)}` }, { cause: error });
  }
  if (error instanceof oidc.ClientError) {
    if (error.code === 'OAUTH_TIMEOUT') {
      return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: 'the identity provider did not answer in time' }, { cause: error });
    }
    if (error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
      const status = (error.cause as { status?: unknown } | undefined)?.status;
      return new AigovError('AIGOV_E_LOGIN_FAILED', {
        reason: `the identity provider answered HTTP ${typeof status === 'number' ? status : '?'}`,
      }, { cause: error });
    }
    // openid-client's own messages are fixed strings ("discovered metadata issuer does not match …").
    return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: error.message }, { cause: error });
  }
  return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: error instanceof Error ? error.name : 'unexpected failure' }, { cause: error });
}

/** GET {gateway}/.well-known/aigov-configuration, validated with the shared schema. */
export async function fetchGatewayDiscovery(
  gatewayUrl: string,
  opts: { fetch?: FetchLike; timeoutSeconds?: number; signal?: AbortSignal } = {},
): Promise<Discovery> {
  const base = normalizeGatewayUrl(gatewayUrl);
  const doFetch = opts.fetch ?? fetch;
  const timeout = AbortSignal.timeout((opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000);
  let response: Response;
  try {
    response = await doFetch(`${base}${DISCOVERY_PATH}`, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
  } catch (error) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: base, reason: networkReason(error) }, { cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: base, reason: `${DISCOVERY_PATH} answered HTTP ${response.status}` });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: base, reason: `${DISCOVERY_PATH} is not JSON` });
  }
  const parsed = DiscoverySchema.safeParse(body);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.') || '(root)'))].slice(0, 5).join(', ');
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: base, reason: `unexpected discovery document (check: ${fields})` });
  }
  return Object.freeze(parsed.data);
}

/**
 * The IdP's OpenID configuration for the CLI's public client. Plain http is allowed only for a
 * loopback issuer (the dev gateway's embedded IdP).
 */
export async function discoverIssuer(
  issuer: string,
  clientId: string,
  opts: { fetch?: FetchLike; timeoutSeconds?: number } = {},
): Promise<oidc.Configuration> {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', { reason: 'the gateway advertises an issuer that is not a URL' });
  }
  const insecure = url.protocol === 'http:' && isLoopbackUrl(url);
  if (url.protocol !== 'https:' && !insecure) {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', {
      reason: `the issuer ${url.origin} is not https (plain http is allowed only on loopback addresses)`,
    });
  }
  const options: oidc.DiscoveryRequestOptions = { timeout: opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS };
  if (insecure) options.execute = [oidc.allowInsecureRequests];
  if (opts.fetch) options[oidc.customFetch] = opts.fetch;
  try {
    return await oidc.discovery(url, clientId, undefined, oidc.None(), options);
  } catch (error) {
    if (error instanceof TypeError) {
      throw new AigovError('AIGOV_E_LOGIN_FAILED', { reason: `cannot reach the identity provider at ${url.origin}: ${networkReason(error)}` }, { cause: error });
    }
    throw loginError(error);
  }
}

/** The scope string a login asks for: the gateway's scopes, offline_access and its required scope. */
export function loginScope(discovery: Discovery): string {
  const scopes = new Set(discovery.scopes);
  scopes.add('offline_access');
  if (discovery.required_scope) scopes.add(discovery.required_scope);
  return [...scopes].join(' ');
}

function expiresAtFrom(expiresIn: number | undefined, accessToken: string, now: number): number {
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) return now + expiresIn * 1000;
  const payload = accessToken.split('.')[1];
  if (payload) {
    try {
      const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
      if (typeof exp === 'number') return exp * 1000;
    } catch {
      // not a JWT: fall through
    }
  }
  return now + DEFAULT_EXPIRES_IN_SECONDS * 1000;
}

function tokenSetFrom(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, now: number): TokenSet {
  const claims = response.id_token ? response.claims() : undefined;
  return {
    accessToken: response.access_token,
    refreshToken: typeof response.refresh_token === 'string' && response.refresh_token !== '' ? response.refresh_token : null,
    expiresAt: expiresAtFrom(response.expires_in, response.access_token, now),
    idTokenClaims: claims ? Object.freeze({ ...claims }) : null,
  };
}

/**
 * Starts a device login. `pollIntervalSeconds` replaces the server's interval (tests, and the
 * dev gateway whose IdP sends none); slow_down still adds 5 s per RFC 8628.
 */
export async function startDeviceLogin(
  config: oidc.Configuration,
  opts: { scope: string; resource?: string; pollIntervalSeconds?: number; now?: () => number },
): Promise<DeviceLogin> {
  const now = opts.now ?? Date.now;
  const parameters: Record<string, string> = { scope: opts.scope };
  if (opts.resource) parameters['resource'] = opts.resource;
  let response: oidc.DeviceAuthorizationResponse;
  try {
    response = await oidc.initiateDeviceAuthorization(config, parameters);
  } catch (error) {
    throw loginError(error);
  }
  const startedAt = now();
  const intervalSeconds = opts.pollIntervalSeconds ?? response.interval ?? 5;
  const prompt: DevicePrompt = Object.freeze({
    userCode: response.user_code,
    verificationUri: response.verification_uri,
    verificationUriComplete: typeof response.verification_uri_complete === 'string' ? response.verification_uri_complete : null,
    expiresAt: startedAt + response.expires_in * 1000,
    intervalSeconds,
  });
  const pollable: oidc.DeviceAuthorizationResponse = { ...response, interval: intervalSeconds };
  const tokenParameters: Record<string, string> = {};
  if (opts.resource) tokenParameters['resource'] = opts.resource;

  return {
    prompt,
    async waitForTokens(signal?: AbortSignal): Promise<TokenSet> {
      const remaining = Math.max(0, prompt.expiresAt - now());
      const expiry = AbortSignal.timeout(remaining);
      const pollingSignal = signal ? AbortSignal.any([signal, expiry]) : expiry;
      // openid-client notices an abort only between its (up to 5 s) sleep steps; settle at once.
      const poll = oidc.pollDeviceAuthorizationGrant(config, pollable, tokenParameters, { signal: pollingSignal });
      poll.catch(() => undefined);
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => reject(pollingSignal.reason as Error);
        if (pollingSignal.aborted) onAbort();
        else pollingSignal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        const result = await Promise.race([poll, aborted]);
        return tokenSetFrom(result, now());
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (expiry.aborted) throw new AigovError('AIGOV_E_LOGIN_EXPIRED', undefined, { cause: error });
        throw loginError(error);
      } finally {
        if (onAbort) pollingSignal.removeEventListener('abort', onAbort);
      }
    },
  };
}

/**
 * The refresh grant. Rejects with the raw openid-client error so callers can tell invalid_grant
 * (the session is over) from transient failures; see isTransientError / isInvalidGrant.
 */
export async function refreshTokens(
  config: oidc.Configuration,
  refreshToken: string,
  opts: { resource?: string; now?: () => number } = {},
): Promise<TokenSet> {
  const parameters: Record<string, string> = {};
  if (opts.resource) parameters['resource'] = opts.resource;
  const result = await oidc.refreshTokenGrant(config, refreshToken, parameters);
  return tokenSetFrom(result, (opts.now ?? Date.now)());
}

/** invalid_grant: the refresh token is expired, revoked or already used. */
export function isInvalidGrant(error: unknown): boolean {
  return error instanceof oidc.ResponseBodyError && (error.error === 'invalid_grant' || error.error === 'unauthorized_client');
}

export type RevocationOutcome = { readonly revoked: true } | { readonly revoked: false; readonly reason: string };

/** Revokes a refresh token at the IdP when it advertises a revocation endpoint (RFC 7009). */
export async function revokeRefreshToken(config: oidc.Configuration, refreshToken: string): Promise<RevocationOutcome> {
  if (!config.serverMetadata().revocation_endpoint) {
    return { revoked: false, reason: 'the identity provider does not support revocation' };
  }
  try {
    await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
    return { revoked: true };
  } catch (error) {
    if (error instanceof TypeError) return { revoked: false, reason: `cannot reach the identity provider: ${networkReason(error)}` };
    return { revoked: false, reason: loginError(error).params['reason']?.toString() ?? 'the identity provider refused' };
  }
}
