/**
 * The optional raw copy of a request (config `audit.raw_copy.key`): the body exactly as the
 * client sent it, before masking or pseudonymizing, sealed with AES-256-GCM (aes-gcm-seal.ts) so
 * that only the sealed bytes ever reach the store. The additional data binds a copy to its call
 * id, so a copy moved to another call fails to open; `keyId` (a fingerprint, safe to store and
 * print) tells a copy sealed with another key from an altered one. Keys are derived from the
 * configured 32 bytes with HKDF-SHA256 under labels of their own: the same bytes used as the
 * pseudonym vault key would still give other keys.
 */
import { deriveKey, openAesGcm, sealAesGcm } from './aes-gcm-seal.ts';
import type { SealedRawCopy } from './recording-store.ts';

const INFO = 'aigov raw request copy v1';

/** Why a raw copy could not be opened. Names the call, never contents or keys. */
export class RawCopyOpenError extends Error {
  readonly callId: string;
  readonly reason: 'other_key' | 'unauthentic';
  constructor(callId: string, reason: 'other_key' | 'unauthentic', message: string) {
    super(message);
    this.name = 'RawCopyOpenError';
    this.callId = callId;
    this.reason = reason;
  }
}

export class RawCopySealer {
  readonly #encKey: Buffer;
  /** Hex fingerprint of the key (safe to print and to store). */
  readonly keyId: string;

  /** `key`: exactly 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('the raw copy key must be 32 bytes');
    this.#encKey = deriveKey(key, `${INFO} encryption`, 32);
    this.keyId = deriveKey(key, `${INFO} key id`, 8).toString('hex');
  }

  seal(callId: string, body: string): SealedRawCopy {
    return { keyId: this.keyId, sealed: sealAesGcm(this.#encKey, aad(callId), body) };
  }

  /** The body as the client sent it; throws {@link RawCopyOpenError} for another key or altered bytes. */
  open(callId: string, copy: SealedRawCopy): string {
    if (copy.keyId !== this.keyId) {
      throw new RawCopyOpenError(callId, 'other_key', `the raw copy of call ${callId} was sealed with key ${copy.keyId}; this gateway's audit.raw_copy.key is ${this.keyId}`);
    }
    const opened = openAesGcm(this.#encKey, aad(callId), copy.sealed);
    if ('text' in opened) return opened.text;
    throw new RawCopyOpenError(callId, 'unauthentic', `the raw copy of call ${callId} failed authentication (AES-GCM): it was altered or moved from another call`);
  }
}

function aad(callId: string): Buffer {
  return Buffer.from(`${INFO}\u0000${callId}`, 'utf8');
}
