/**
 * The daemon's TokenSource: trades the stored refresh token for access tokens, keeps the current
 * access token in memory only, refreshes shortly before it expires, and does so one refresh at a
 * time however many requests wait. Rotated refresh tokens are written back to the credential
 * store — unless the store no longer holds the token this refresher last wrote there: a login or
 * logout since then (whose daemon stop missed this one) owns the profile's secret now, and an
 * older session must not overwrite it nor bring a logged-out one back. A refused refresh token (invalid_grant) ends the session: AIGOV_E_SESSION_EXPIRED.
 */
import type { Configuration } from 'openid-client';
import { AigovError, isAigovError } from '../core/errors.ts';
import type { CredentialStore } from './credentials.ts';
import { discoverIssuer, isInvalidGrant, isTransientError, networkReason, refreshTokens, type FetchLike } from './oidc-client.ts';
import type { AccessToken, TokenSource } from './token-source.ts';

export interface TokenRefresherOptions {
  issuer: string;
  clientId: string;
  profile: string;
  store: CredentialStore;
  initialRefreshToken: string;
  /** RFC 8707 resource indicator sent with each refresh (the gateway's `resource`). */
  resource?: string;
  /** Refresh this long before expiry (default 60 s; capped at half the token's lifetime). */
  refreshSkewSeconds?: number;
  /** Injected fetch (tests count token-endpoint calls with it). */
  fetch?: FetchLike;
  /** Delays between attempts after a transient failure (default [250, 1000] ms: three attempts). */
  retryDelaysMs?: readonly number[];
  /** Told when a rotated refresh token could not be persisted (it is kept in memory). Never given a token. */
  onWarning?: (message: string) => void;
  now?: () => number;
}

export interface TokenRefresher extends TokenSource {
  /** Stops handing out tokens; later calls reject. */
  close(): void;
}

const DEFAULT_SKEW_SECONDS = 60;
const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [250, 1000];

interface CachedToken extends AccessToken {
  readonly refreshAt: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function createTokenRefresher(opts: TokenRefresherOptions): TokenRefresher {
  const now = opts.now ?? Date.now;
  const skewMs = Math.max(0, (opts.refreshSkewSeconds ?? DEFAULT_SKEW_SECONDS) * 1000);
  const retryDelays = opts.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  let refreshToken = opts.initialRefreshToken;
  /** What the store held when this refresher last read or wrote it. */
  let persisted: string | null = opts.initialRefreshToken;
  let current: CachedToken | null = null;
  let inflight: Promise<AccessToken> | null = null;
  let config: Promise<Configuration> | null = null;
  let sessionOver: AigovError | null = null;
  let closed = false;

  const discoverOptions = opts.fetch ? { fetch: opts.fetch } : {};
  function issuerConfig(): Promise<Configuration> {
    if (!config) {
      config = discoverIssuer(opts.issuer, opts.clientId, discoverOptions);
      // A failed discovery is retried on the next refresh rather than cached.
      config.catch(() => {
        config = null;
      });
    }
    return config;
  }

  function unavailable(reason: string, cause?: unknown): AigovError {
    return new AigovError('AIGOV_E_LOGIN_FAILED', { reason: `cannot refresh the access token: ${reason}` }, { cause });
  }

  async function refreshOnce(): Promise<AccessToken> {
    const cfg = await issuerConfig();
    const used = refreshToken;
    const refreshOptions = opts.resource ? { resource: opts.resource, now } : { now };
    const tokens = await refreshTokens(cfg, used, refreshOptions);
    const issuedAt = now();
    if (tokens.refreshToken && tokens.refreshToken !== used) {
      refreshToken = tokens.refreshToken;
      await persist(tokens.refreshToken);
    }
    const lifetime = Math.max(0, tokens.expiresAt - issuedAt);
    const refreshAt = tokens.expiresAt - Math.min(skewMs, lifetime / 2);
    current = Object.freeze({ token: tokens.accessToken, expiresAt: tokens.expiresAt, refreshAt });
    return current;
  }

  /** Compare, then write: the window between the two is a store round trip, not a refresh. */
  async function persist(rotated: string): Promise<void> {
    if (persisted === null) return;
    try {
      if ((await opts.store.load(opts.profile)) !== persisted) {
        persisted = null;
        opts.onWarning?.('the profile was signed in again or out since this daemon started; its rotated refresh token is kept in memory only, not saved over that');
        return;
      }
      await opts.store.save(opts.profile, rotated);
      persisted = rotated;
    } catch (error) {
      const code = isAigovError(error) ? error.code : 'an error';
      opts.onWarning?.(`the rotated refresh token could not be saved (${code}); it is kept in memory until the daemon stops`);
    }
  }

  async function refreshWithRetry(): Promise<AccessToken> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await refreshOnce();
      } catch (error) {
        if (isInvalidGrant(error)) {
          sessionOver = new AigovError('AIGOV_E_SESSION_EXPIRED', { profile: opts.profile }, { cause: error });
          current = null;
          throw sessionOver;
        }
        const delay = retryDelays[attempt];
        if (closed || delay === undefined || !(isTransientError(error) || isTransientDiscovery(error))) {
          // Not a failed sign-in: nothing the user does with `aigov login` helps while the IdP is down.
          if (isTransientDiscovery(error) || isTransientError(error)) {
            const cause = isAigovError(error) ? error.cause : error;
            const status = (cause as { status?: unknown; cause?: { status?: unknown } } | undefined)?.status ?? (cause as { cause?: { status?: unknown } } | undefined)?.cause?.status;
            const reason = typeof status === 'number' ? `it answered HTTP ${status}` : networkReason(cause);
            throw new AigovError('AIGOV_E_IDP_UNREACHABLE', { url: originOf(opts.issuer), reason }, { cause: error });
          }
          if (isAigovError(error)) throw error;
          throw unavailable('the identity provider refused the request', error);
        }
        await sleep(delay);
      }
    }
  }

  return {
    getAccessToken(): Promise<AccessToken> {
      if (closed) return Promise.reject(unavailable('the token source is closed'));
      if (sessionOver) return Promise.reject(sessionOver);
      if (current && now() < current.refreshAt) return Promise.resolve(current);
      if (!inflight) {
        inflight = refreshWithRetry().finally(() => {
          inflight = null;
        });
      }
      return inflight;
    },
    invalidate(): void {
      current = null;
    },
    close(): void {
      closed = true;
      current = null;
    },
  };
}

/** Discovery failures arrive already coded; a network-caused one is worth another attempt. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'its issuer URL';
  }
}

function isTransientDiscovery(error: unknown): boolean {
  return isAigovError(error) && error.code === 'AIGOV_E_LOGIN_FAILED' && (error.cause instanceof TypeError || isTransientError(error.cause));
}
