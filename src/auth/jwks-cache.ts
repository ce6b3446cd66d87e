/**
 * The issuer's signing keys, found through OIDC discovery and cached.
 *
 * - The JWKS URI comes from `${issuer}/.well-known/openid-configuration`; the metadata's
 *   `issuer` must equal the configured issuer exactly, else the IdP is refused (RFC 8414 §3.3).
 * - One fetch at a time: concurrent callers share the in-flight discovery + JWKS fetch.
 * - An unknown `kid` may trigger a refetch, but at most once per `refetchIntervalMs`, so a
 *   client spraying random `kid`s cannot make the gateway hammer the IdP.
 * - A failed first load is not cached forever: it is retried after `failureRetryMs`.
 * - A key set older than `maxAgeMs` is refreshed in the background (stale-while-revalidate),
 *   so keys the IdP has withdrawn eventually stop being trusted.
 *
 * Errors carry short, safe reasons (no response bodies); the underlying error is kept as `cause`.
 */
import { createLocalJWKSet } from 'jose';
import type { JWTVerifyGetKey } from 'jose';

export interface JwksCacheOptions {
  readonly issuer: string;
  /** Minimum milliseconds between fetches caused by an unknown `kid`. */
  readonly refetchIntervalMs: number;
  readonly fetch: typeof globalThis.fetch;
  /** Millisecond clock. */
  readonly now: () => number;
  /** Wait before retrying after a failed load while no key set is cached. Default 5 s (capped at refetchIntervalMs). */
  readonly failureRetryMs?: number;
  /** Age after which a cached key set is refreshed in the background. Default 10 min. */
  readonly maxAgeMs?: number;
  /** Per-request timeout for discovery and JWKS. Default 5 s. */
  readonly timeoutMs?: number;
  /** Largest discovery/JWKS body accepted. Default 512 KiB. */
  readonly maxBodyBytes?: number;
}

/** A key set as loaded at one moment; `generation` grows with every successful fetch. */
export interface KeySetSnapshot {
  readonly getKey: JWTVerifyGetKey;
  readonly generation: number;
}

/** The IdP could not be used to get keys. `message` is a short, safe reason. */
export class IdpUnavailableError extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'IdpUnavailableError';
  }
}

export class JwksCache {
  readonly #issuer: string;
  readonly #discoveryUrl: string;
  readonly #refetchIntervalMs: number;
  readonly #failureRetryMs: number;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #now: () => number;

  #jwksUri: string | null = null;
  #snapshot: KeySetSnapshot | null = null;
  #fetchedAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastFailure: IdpUnavailableError | null = null;
  #inflight: Promise<KeySetSnapshot> | null = null;
  #generation = 0;

  constructor(options: JwksCacheOptions) {
    this.#issuer = options.issuer;
    this.#discoveryUrl = `${options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    this.#refetchIntervalMs = options.refetchIntervalMs;
    this.#failureRetryMs = options.failureRetryMs ?? Math.min(5_000, options.refetchIntervalMs);
    this.#maxAgeMs = Math.max(options.maxAgeMs ?? 600_000, options.refetchIntervalMs);
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxBodyBytes = options.maxBodyBytes ?? 512 * 1024;
    this.#fetch = options.fetch;
    this.#now = options.now;
  }

  /** The key set to verify with now; loads it on first use. Rejects with IdpUnavailableError. */
  current(): Promise<KeySetSnapshot> {
    const snapshot = this.#snapshot;
    if (snapshot !== null) {
      const now = this.#now();
      if (this.#inflight === null && now - this.#fetchedAt >= this.#maxAgeMs && now - this.#lastAttemptAt >= this.#refetchIntervalMs) {
        // Background refresh; a failure keeps the current keys and is retried after the interval.
        this.#refresh().catch(() => {});
      }
      return Promise.resolve(snapshot);
    }
    if (this.#inflight !== null) return this.#inflight;
    if (this.#lastFailure !== null && this.#now() - this.#lastAttemptAt < this.#failureRetryMs) {
      return Promise.reject(this.#lastFailure);
    }
    return this.#refresh();
  }

  /**
   * Called when `seen` had no key for a token. Resolves to a newer key set to retry with, or
   * null when a refetch is not allowed yet (rate limit). Rejects with IdpUnavailableError when
   * the refetch (or the last one, within the interval) failed.
   */
  async refreshForUnknownKey(seen: KeySetSnapshot): Promise<KeySetSnapshot | null> {
    if (this.#snapshot !== null && this.#snapshot.generation !== seen.generation) return this.#snapshot;
    if (this.#inflight !== null) return this.#inflight;
    if (this.#now() - this.#lastAttemptAt < this.#refetchIntervalMs) {
      if (this.#lastFailure !== null) throw this.#lastFailure;
      return null;
    }
    return this.#refresh();
  }

  /** Fetch discovery (if needed) and the JWKS now, ignoring the rate limit. */
  load(): Promise<KeySetSnapshot> {
    return this.#inflight ?? this.#refresh();
  }

  #refresh(): Promise<KeySetSnapshot> {
    if (this.#inflight !== null) return this.#inflight;
    this.#lastAttemptAt = this.#now();
    const attempt = this.#fetchKeySet().then(
      (getKey) => {
        const snapshot: KeySetSnapshot = Object.freeze({ getKey, generation: ++this.#generation });
        this.#snapshot = snapshot;
        this.#fetchedAt = this.#now();
        this.#lastFailure = null;
        return snapshot;
      },
      (error: unknown) => {
        const failure = error instanceof IdpUnavailableError ? error : new IdpUnavailableError('identity provider request failed', { cause: error });
        this.#lastFailure = failure;
        // The JWKS URI may have moved: rediscover next time.
        this.#jwksUri = null;
        throw failure;
      },
    ).finally(() => {
      if (this.#inflight === attempt) this.#inflight = null;
    });
    this.#inflight = attempt;
    return attempt;
  }

  async #fetchKeySet(): Promise<JWTVerifyGetKey> {
    const jwksUri = this.#jwksUri ?? (await this.#discover());
    this.#jwksUri = jwksUri;
    const body = await this.#getJson(jwksUri, 'JWKS');
    try {
      return createLocalJWKSet(body as Parameters<typeof createLocalJWKSet>[0]);
    } catch (cause) {
      throw new IdpUnavailableError('JWKS is malformed', { cause });
    }
  }

  async #discover(): Promise<string> {
    const metadata = await this.#getJson(this.#discoveryUrl, 'discovery');
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new IdpUnavailableError('discovery metadata is malformed');
    }
    const { issuer, jwks_uri: jwksUri } = metadata as Record<string, unknown>;
    if (issuer !== this.#issuer) throw new IdpUnavailableError('discovery metadata issuer mismatch');
    if (typeof jwksUri !== 'string') throw new IdpUnavailableError('discovery metadata has no jwks_uri');
    let url: URL;
    try {
      url = new URL(jwksUri);
    } catch (cause) {
      throw new IdpUnavailableError('discovery metadata jwks_uri is invalid', { cause });
    }
    const issuerProtocol = new URL(this.#issuer).protocol;
    // Plain http only when the issuer itself is http (a local/dev IdP); never downgrade from https.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && issuerProtocol === 'http:')) {
      throw new IdpUnavailableError('discovery metadata jwks_uri is not https');
    }
    return url.href;
  }

  async #getJson(url: string, what: 'discovery' | 'JWKS'): Promise<unknown> {
    let response: Response;
    try {
      response = await this.#fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new IdpUnavailableError(`${what} request failed`, { cause });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      throw new IdpUnavailableError(`${what} request failed (HTTP ${response.status})`);
    }
    let text: string;
    try {
      text = await readCapped(response, this.#maxBodyBytes);
    } catch (cause) {
      throw new IdpUnavailableError(`${what} response could not be read`, { cause });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new IdpUnavailableError(`${what} response is not JSON`, { cause });
    }
  }
}

async function readCapped(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`body exceeds ${limit} bytes`);
  }
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const value of response.body as AsyncIterable<Uint8Array>) {
    total += value.byteLength;
    if (total > limit) {
      await response.body.cancel().catch(() => {});
      throw new Error(`body exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
