/**
 * The sealing both encrypted stores use (pseudonym vault entries, raw request copies):
 * AES-256-GCM with a 12-byte random nonce, laid out as nonce ‖ ciphertext ‖ 16-byte tag, with
 * additional data that binds a sealed value to where it belongs; keys derived from one
 * configured 32-byte key with HKDF-SHA256 under distinct labels.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A key derived from `key` for one purpose (`info`): never the key itself, nor another purpose's key. */
export function deriveKey(key: Uint8Array, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), info, length));
}

/** nonce ‖ AES-256-GCM(`plaintext`, `aad`) ‖ tag. */
export function sealAesGcm(encKey: Buffer, aad: Buffer, plaintext: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', encKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

export type OpenedText = { readonly text: string } | { readonly failed: 'truncated' | 'unauthentic' };

/**
 * The plaintext of a {@link sealAesGcm} output; `truncated` when it cannot be one, `unauthentic`
 * when the tag does not verify (another key, another `aad`, or altered bytes).
 */
export function openAesGcm(encKey: Buffer, aad: Buffer, sealed: Uint8Array): OpenedText {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return { failed: 'truncated' };
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', encKey, bytes.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return { text: Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8') };
  } catch {
    return { failed: 'unauthentic' };
  }
}
