/**
 * Access-token verification at the gateway.
 *
 * `verify(authorizationHeader)` returns a value, never throws: either the Principal of a
 * verified token or a failure with an aigov error code, a short reason that is safe to show
 * (it never contains the token or any claim value) and the RFC 6750 `WWW-Authenticate` value.
 *
 * Order of checks: Bearer scheme → compact-JWS shape → verified-token cache → `alg` allowlist
 * (asymmetric only: `none` and HS* are refused even if configured) → `typ` → key from the
 * issuer's JWKS (refetched on an unknown `kid`, rate-limited) → signature → iss/aud/exp/nbf/iat
 * with clock skew → required scope. A verified token is cached (bounded LRU keyed by its
 * SHA-256, valid until its `exp`), so a repeat costs one hash and one map lookup.
 */
import { hash } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';
import { AigovError } from '../core/errors.ts';
import type { Principal } from '../core/events.ts';
import { IdpUnavailableError, JwksCache } from './jwks-cache.ts';
import type { KeySetSnapshot } from './jwks-cache.ts';

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  algorithms: readonly string[];
  clockSkewSeconds: number;
  requiredScope: string | null;
  groupsClaim: string;
  emailClaim: string;
  /** Min seconds between JWKS refetches caused by an unknown kid. */
  jwksRefetchIntervalSeconds: number;
  fetch?: typeof globalThis.fetch;
  /** Millisecond clock. */
  now?: () => number;
  /** Verified-token cache entries (default 10_000; 0 disables the cache). */
  cacheSize?: number;
}

export type VerifyFailureCode =
  | 'AIGOV_E_AUTH_MISSING'
  | 'AIGOV_E_AUTH_INVALID'
  | 'AIGOV_E_AUTH_EXPIRED'
  | 'AIGOV_E_AUTH_SCOPE'
  | 'AIGOV_E_IDP_UNAVAILABLE';

export type VerifyResult =
  | { ok: true; principal: Principal; expiresAt: number /* epoch ms */ }
  | { ok: false; code: VerifyFailureCode; reason: string; wwwAuthenticate: string; /** AIGOV_E_AUTH_SCOPE: the scope required. */ scope?: string };

export interface TokenVerifier {
  verify(authorization: string | undefined): Promise<VerifyResult>;
  /** Fetch discovery + JWKS now; rejects (AigovError AIGOV_E_IDP_UNAVAILABLE) when the IdP is unreachable. */
  warmUp(): Promise<void>;
}

/** Signature algorithms we can ever accept: asymmetric only, so a public key is never used as an HMAC secret. */
const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

/** Access tokens are short; anything this long is not one of ours (and would only cost hashing). */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** JWS Compact Serialization: three base64url segments (an empty signature is let through so `alg: none` gets its own reason). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const REALM = 'Bearer realm="aigov"';

type Failure = Extract<VerifyResult, { ok: false }>;

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  const algorithms = options.algorithms.filter((alg) => ASYMMETRIC_ALGORITHMS.has(alg));
  if (algorithms.length === 0) {
    throw new TypeError('token verifier: no usable asymmetric signature algorithm is configured');
  }
  const allowedAlgorithms: ReadonlySet<string> = new Set(algorithms);
  const skew = options.clockSkewSeconds;
  const keys = new JwksCache({
    issuer: options.issuer,
    refetchIntervalMs: options.jwksRefetchIntervalSeconds * 1000,
    fetch: options.fetch ?? globalThis.fetch,
    now,
  });
  const cache = new VerifiedTokenCache(options.cacheSize ?? 10_000);
  const claimOptions = (): JWTVerifyOptions => ({
    issuer: options.issuer,
    audience: options.audience,
    algorithms,
    clockTolerance: skew,
    currentDate: new Date(now()),
    requiredClaims: ['exp', 'sub'],
  });

  async function verify(authorization: string | undefined): Promise<VerifyResult> {
    const token = bearerToken(authorization);
    if (typeof token !== 'string') return token;
    if (token.length > MAX_TOKEN_LENGTH) return invalid('malformed token');

    // A hit means this exact token passed every check below before: one hash, one lookup.
    const cacheKey = options.cacheSize === 0 ? null : hash('sha256', token, 'base64');
    if (cacheKey !== null) {
      const hit = cache.get(cacheKey, now());
      if (hit !== undefined) return hit;
    }
    if (!COMPACT_JWS.test(token)) return invalid('malformed token');

    let alg: unknown;
    let typ: unknown;
    try {
      ({ alg, typ } = decodeProtectedHeader(token));
    } catch {
      return invalid('malformed token');
    }
    if (typeof alg !== 'string' || !allowedAlgorithms.has(alg)) return invalid('algorithm not allowed');
    if (!isAccessTokenType(typ)) return invalid('unexpected token type');

    let payload: JWTPayload;
    try {
      payload = await verifySignatureAndClaims(token);
    } catch (error) {
      return failureFrom(error);
    }

    const nowSeconds = Math.floor(now() / 1000);
    if (payload.iat !== undefined && (payload.iat) > nowSeconds + skew) return invalid('token issued in the future');
    if (typeof payload.sub !== 'string' || payload.sub === '') return invalid('invalid sub claim');
    const expiresAt = (payload.exp as number) * 1000;

    if (options.requiredScope !== null && !tokenScopes(payload).includes(options.requiredScope)) {
      return {
        ok: false,
        code: 'AIGOV_E_AUTH_SCOPE',
        reason: 'missing required scope',
        scope: options.requiredScope,
        wwwAuthenticate: `${REALM}, error="insufficient_scope", error_description="missing required scope", scope=${quote(options.requiredScope)}`,
      };
    }

    const principal: Principal = Object.freeze({
      subject: payload.sub,
      email: stringClaim(claimAt(payload, options.emailClaim)),
      groups: Object.freeze(groupsFrom(claimAt(payload, options.groupsClaim))),
      issuer: options.issuer,
      clientId: stringClaim(payload['client_id']) ?? stringClaim(payload['azp']),
    });
    const result: VerifyResult = Object.freeze({ ok: true, principal, expiresAt });
    if (cacheKey !== null) cache.set(cacheKey, result, now());
    return result;
  }

  /** jwtVerify against the cached key set; on an unknown key, one (rate-limited) refetch and retry. */
  async function verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    let keySet: KeySetSnapshot = await keys.current();
    try {
      return await verifyWith(token, keySet.getKey);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
    }
    const refreshed = await keys.refreshForUnknownKey(keySet);
    if (refreshed === null) throw new joseErrors.JWKSNoMatchingKey();
    keySet = refreshed;
    return verifyWith(token, keySet.getKey);
  }

  async function verifyWith(token: string, getKey: JWTVerifyGetKey): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, getKey, claimOptions())).payload;
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
      // No `kid` and several usable keys: try each; the first that verifies wins.
      let last: unknown = error;
      for await (const key of error) {
        try {
          return (await jwtVerify(token, key, claimOptions())).payload;
        } catch (candidateError) {
          last = candidateError;
          if (!(candidateError instanceof joseErrors.JWSSignatureVerificationFailed)) break;
        }
      }
      throw last;
    }
  }

  return {
    verify: async (authorization) => {
      try {
        return await verify(authorization);
      } catch {
        // Fail closed, with nothing from the token in the answer.
        return invalid('token could not be verified');
      }
    },
    warmUp: async () => {
      try {
        await keys.load();
      } catch (error) {
        throw new AigovError('AIGOV_E_IDP_UNAVAILABLE', {}, { cause: error });
      }
    },
  };
}

/** The token from an `Authorization: Bearer …` header, or the AUTH_MISSING / AUTH_INVALID failure. */
function bearerToken(authorization: string | undefined): string | Failure {
  const value = authorization?.trim() ?? '';
  if (value === '') return missing('no authorization header');
  const space = value.search(/[ \t]/);
  const scheme = space < 0 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return missing('authorization scheme is not Bearer');
  const token = space < 0 ? '' : value.slice(space).trim();
  if (token === '') return missing('no bearer token');
  return token;
}

/** RFC 9068 `at+jwt`, plain `JWT`, or none; media-type form (`application/at+jwt`) and case are tolerated. */
function isAccessTokenType(typ: unknown): boolean {
  if (typ === undefined) return true;
  if (typeof typ !== 'string') return false;
  const normalized = typ.toLowerCase().replace(/^application\//, '');
  return normalized === 'jwt' || normalized === 'at+jwt';
}

function failureFrom(error: unknown): Failure {
  if (error instanceof IdpUnavailableError) {
    return { ok: false, code: 'AIGOV_E_IDP_UNAVAILABLE', reason: error.message, wwwAuthenticate: REALM };
  }
  if (error instanceof joseErrors.JWTExpired) {
    return { ok: false, code: 'AIGOV_E_AUTH_EXPIRED', reason: 'token expired', wwwAuthenticate: invalidTokenHeader('token expired') };
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) return invalid(claimFailureReason(error.claim, error.reason));
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('signature verification failed');
  if (error instanceof joseErrors.JWKSNoMatchingKey) return invalid('unknown signing key');
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return invalid('algorithm not allowed');
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return invalid('malformed token');
  if (error instanceof joseErrors.JOSENotSupported) return invalid('unsupported token');
  return invalid('token could not be verified');
}

const KNOWN_CLAIMS: ReadonlySet<string> = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'sub']);

/** Names only from a fixed set: jose's claim/reason fields are ours to trust, but keep it closed anyway. */
function claimFailureReason(claim: string, reason: string): string {
  if (!KNOWN_CLAIMS.has(claim)) return 'invalid claims';
  if (reason === 'missing') return `missing ${claim} claim`;
  if (claim === 'iss') return 'wrong issuer';
  if (claim === 'aud') return 'wrong audience';
  if (claim === 'nbf' && reason === 'check_failed') return 'token not yet valid';
  return `invalid ${claim} claim`;
}

function missing(reason: string): Failure {
  return { ok: false, code: 'AIGOV_E_AUTH_MISSING', reason, wwwAuthenticate: REALM };
}

function invalid(reason: string): Failure {
  return { ok: false, code: 'AIGOV_E_AUTH_INVALID', reason, wwwAuthenticate: invalidTokenHeader(reason) };
}

function invalidTokenHeader(description: string): string {
  return `${REALM}, error="invalid_token", error_description=${quote(description)}`;
}

/** RFC 7230 quoted-string. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** `scope` (space-separated string, RFC 9068) or `scp` (array, or string in some IdPs). */
function tokenScopes(payload: JWTPayload): string[] {
  const scopes: string[] = [];
  for (const value of [payload['scope'], payload['scp']]) {
    if (typeof value === 'string') scopes.push(...value.split(' ').filter(Boolean));
    else if (Array.isArray(value)) scopes.push(...value.filter((s): s is string => typeof s === 'string'));
  }
  return scopes;
}

/** A claim by name; a dotted name (`realm_access.roles`) walks nested objects when no claim has that exact name. */
function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  if (!name.includes('.')) return undefined;
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function groupsFrom(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string' && g !== '');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

function stringClaim(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

type Success = Extract<VerifyResult, { ok: true }>;

/** Bounded LRU of verified tokens (Map insertion order = recency); an entry is good until its token's exp. */
class VerifiedTokenCache {
  readonly #max: number;
  readonly #entries = new Map<string, Success>();

  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  get(key: string, nowMs: number): Success | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= nowMs) return undefined;
    this.#entries.set(key, entry);
    return entry;
  }

  set(key: string, entry: Success, nowMs: number): void {
    if (this.#max === 0 || entry.expiresAt <= nowMs) return;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }
}
