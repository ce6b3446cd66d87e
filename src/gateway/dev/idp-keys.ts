/**
 * Persistent secrets of the dev identity provider: the token signing key (a private JWKS) and
 * the cookie signing keys. Generated once into the (0700) state directory with file mode 0600 and
 * reused afterwards, so tokens and browser sessions stay valid across `aigov server --dev`
 * restarts. Never logged.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import { ensurePrivateDir, ensurePrivateFile, writePrivateFileExclusive, type PrivatePathOptions } from '../../config/private-files.ts';

export const SIGNING_ALG = 'ES256';

export interface DevIdpSecrets {
  /** Private JWKS handed to oidc-provider (`jwks` option). */
  readonly jwks: { keys: JWK[] };
  /** Keys for oidc-provider's signed cookies (`cookies.keys`). */
  readonly cookieKeys: string[];
}

/**
 * Reads `file`, or creates it with `create()` (mode 0600, exclusive) when it does not exist. An
 * existing file must be ours (one planted by another user would hand them the keys) and is
 * made 0600 before it is read.
 */
async function loadOrCreate<T>(file: string, create: () => Promise<T>, validate: (value: unknown) => value is T, privacy: PrivatePathOptions): Promise<T> {
  if (ensurePrivateFile(file, privacy)) {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (!validate(parsed)) throw new Error(`dev IdP state file ${file} is malformed; delete it to regenerate`);
    return parsed;
  }
  const value = await create();
  if (writePrivateFileExclusive(file, `${JSON.stringify(value, null, 2)}\n`, privacy)) return value;
  // Another process created it first: use theirs so both agree on the keys.
  return loadOrCreate(file, create, validate, privacy);
}

function isJwks(value: unknown): value is { keys: JWK[] } {
  if (typeof value !== 'object' || value === null) return false;
  const keys = (value as { keys?: unknown }).keys;
  return Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === 'object' && k !== null && typeof (k as JWK).kid === 'string' && typeof (k as JWK).d === 'string');
}

function isKeyList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((k) => typeof k === 'string' && k.length >= 32);
}

async function generateSigningJwks(): Promise<{ keys: JWK[] }> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { keys: [{ ...jwk, kid, alg: SIGNING_ALG, use: 'sig' }] };
}

export async function loadDevIdpSecrets(stateDir: string, privacy: PrivatePathOptions = {}): Promise<DevIdpSecrets> {
  ensurePrivateDir(stateDir, privacy);
  const jwks = await loadOrCreate(join(stateDir, 'idp-jwks.json'), generateSigningJwks, isJwks, privacy);
  const cookieKeys = await loadOrCreate(
    join(stateDir, 'idp-cookie-keys.json'),
    () => Promise.resolve([randomBytes(32).toString('base64url')]),
    isKeyList,
    privacy,
  );
  return { jwks, cookieKeys };
}
