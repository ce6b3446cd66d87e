/**
 * Sealing pseudonym vault entries: the real values behind «EMAIL_1»-style placeholders are
 * personal data, so a store keeps only
 * - `sealed`: AES-256-GCM of the value (12-byte random nonce ‖ ciphertext ‖ 16-byte tag), with
 *   the session, label and number as additional data, so a row moved to another session or
 *   placeholder fails to open instead of restoring the wrong value;
 * - `mac`: HMAC-SHA256 over session, label and value, so a store can enforce "one placeholder
 *   per value" (a unique index) without holding the value;
 * - `keyId`: a fingerprint that tells whether a vault was written with this key.
 * The three are derived from the configured 32-byte key with HKDF-SHA256 under distinct labels;
 * none reveals the key or the others.
 */
import { createHmac } from 'node:crypto';
import { deriveKey, openAesGcm, sealAesGcm } from './aes-gcm-seal.ts';

const INFO = 'aigov pseudonym vault v1';

/** A sealed row failed to open: wrong key, or the row was altered or moved. Names no value. */
export class PseudonymSealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PseudonymSealError';
  }
}

export class PseudonymSealer {
  readonly #encKey: Buffer;
  readonly #macKey: Buffer;
  /** Hex fingerprint of the key (safe to print and to store). */
  readonly keyId: string;

  /** `key`: exactly 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('the pseudonym vault key must be 32 bytes');
    const derive = (what: string, length: number): Buffer => deriveKey(key, `${INFO} ${what}`, length);
    this.#encKey = derive('encryption', 32);
    this.#macKey = derive('value mac', 32);
    this.keyId = derive('key id', 8).toString('hex');
  }

  seal(sessionId: string, label: string, n: number, value: string): Buffer {
    return sealAesGcm(this.#encKey, aad(sessionId, label, n), value);
  }

  open(sessionId: string, label: string, n: number, sealed: Uint8Array): string {
    const opened = openAesGcm(this.#encKey, aad(sessionId, label, n), sealed);
    if ('text' in opened) return opened.text;
    throw new PseudonymSealError(
      opened.failed === 'truncated' ? 'a pseudonym vault entry is truncated' : 'a pseudonym vault entry failed authentication (another key, or the row was altered)',
    );
  }

  /** Equal for equal (session, label, value); reveals nothing about the value without the key. */
  mac(sessionId: string, label: string, value: string): Buffer {
    // Session ids and labels cannot contain NUL, so the value (last) cannot shift the fields.
    return createHmac('sha256', this.#macKey).update(`${sessionId}\u0000${label}\u0000${value}`, 'utf8').digest();
  }
}

function aad(sessionId: string, label: string, n: number): Buffer {
  return Buffer.from(`${INFO}\u0000${sessionId}\u0000${label}\u0000${n}`, 'utf8');
}
