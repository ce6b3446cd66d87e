/**
 * Anthropic signs each thinking block: a client sends the block back (multi-turn, tool loops)
 * and the API checks the text against its `signature`. When the gateway masks text inside a
 * thinking block, the signature no longer fits, and the next request would fail upstream with a
 * 400 about an invalid signature.
 *
 * So a thinking block whose text the gateway changed gets, in place of its signature, a SEAL: the
 * upstream's text and signature encrypted (AES-256-GCM) under a gateway key, bound to the user
 * (the token's subject). The client keeps it like any signature and cannot read it; when it sends
 * the block back, the gateway opens the seal and sends the upstream its own text and signature
 * again (the record keeps the request as the client sent it, seal included). The upstream learns
 * nothing it did not write; the client never sees what was masked.
 *
 * The key is derived from `pseudonyms.key` when one is set (seals survive restarts and work
 * across replicas); without it, it is random per process. A seal the gateway cannot open (another
 * key, another user, a damaged seal) refuses the request with AIGOV_E_THINKING_UNRESTORABLE
 * instead of a confusing upstream error.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** How a sealed signature starts (never a prefix of Anthropic's own base64 signatures: it has dashes and a dot). */
export const THINKING_SEAL_PREFIX = 'aigov-thinking-seal.v1.';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class ThinkingSeal {
  readonly #key: Buffer;

  /** `pseudonymKey`: pseudonyms.key as 64 hex digits, or null (a random key for this process). */
  constructor(pseudonymKey: string | null) {
    this.#key = pseudonymKey === null ? randomBytes(32) : Buffer.from(hkdfSync('sha256', Buffer.from(pseudonymKey, 'hex'), Buffer.alloc(0), 'aigov thinking seal v1', 32));
  }

  /** The seal of a thinking block's upstream `text` and `signature`, for the user `subject`. */
  seal(subject: string, text: string, signature: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(subject, 'utf8'));
    const plain = Buffer.from(JSON.stringify([text, signature]), 'utf8');
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return THINKING_SEAL_PREFIX + sealed.toString('base64url');
  }

  /** The upstream text and signature in `sealed`, or null when it is not a seal this gateway made for `subject`. */
  open(subject: string, sealed: string): { readonly text: string; readonly signature: string } | null {
    if (!sealed.startsWith(THINKING_SEAL_PREFIX)) return null;
    const bytes = Buffer.from(sealed.slice(THINKING_SEAL_PREFIX.length), 'base64url');
    if (bytes.length < IV_BYTES + TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(subject, 'utf8'));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
      const value = JSON.parse(plain.toString('utf8')) as unknown;
      if (!Array.isArray(value) || typeof value[0] !== 'string' || typeof value[1] !== 'string') return null;
      return { text: value[0], signature: value[1] };
    } catch {
      return null;
    }
  }
}
