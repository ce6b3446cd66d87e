/**
 * Ed25519 keys of the audit checkpoints: parsing (PEM), key ids, signing. The private key comes
 * from the gateway config (`audit.signing_key`, by reference); `aigov audit verify` needs only
 * the public key. Key material is never logged or put into an error message.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writePrivateFileExclusive, type PrivatePathOptions } from '../config/private-files.ts';
import { checkpointPayload, keyIdOf, type CheckpointFields } from '../core/audit/chain.ts';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
}

/** Why a text is not an Ed25519 private key (no key material in it), or the key. */
export function parseSigningKey(pem: string): SigningKey | { readonly problem: string } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return { problem: 'expected an Ed25519 private key in PEM (PKCS#8), e.g. from `openssl genpkey -algorithm ed25519`' };
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') return { problem: `expected an Ed25519 key, got a ${privateKey.asymmetricKeyType ?? 'different'} key` };
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOfPublicKey(publicKey) };
}

/** A public key from a PEM text holding either the public key (SPKI) or the private key. */
export function parsePublicKey(pem: string): KeyObject | { readonly problem: string } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' }); // also derives it from a private key PEM
  } catch {
    return { problem: 'expected an Ed25519 public key (or private key) in PEM' };
  }
  if (key.asymmetricKeyType !== 'ed25519') return { problem: `expected an Ed25519 key, got a ${key.asymmetricKeyType ?? 'different'} key` };
  return key;
}

export function keyIdOfPublicKey(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return keyIdOf(createHash('sha256').update(der).digest('hex'));
}

/** Base64 Ed25519 signature over the checkpoint's canonical payload. */
export function signCheckpoint(fields: CheckpointFields, key: KeyObject): string {
  return sign(null, Buffer.from(checkpointPayload(fields)), key).toString('base64');
}

/**
 * Writes a new Ed25519 private key (PEM, mode 0600) to `file` unless it exists (an existing one
 * must be ours and is made 0600). Returns whether it wrote one.
 */
export function createSigningKeyFile(file: string, privacy: PrivatePathOptions = {}): boolean {
  const { privateKey } = generateKeyPairSync('ed25519');
  return writePrivateFileExclusive(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), privacy);
}
