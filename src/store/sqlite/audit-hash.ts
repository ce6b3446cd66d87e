/**
 * SHA-256 for the audit chain (src/core/audit/chain.ts defines what is hashed; this file only
 * hashes it). Shared by the writer thread, the checkpoint writer, the purge and the verifier.
 */
import { createHash, hash } from 'node:crypto';
import { chainInput, type ChainLink, type HashSink } from '../../core/audit/chain.ts';

/** Hex SHA-256 of whatever `feed` writes into the sink. */
export function contentHash(feed: (sink: HashSink) => void): string {
  const h = createHash('sha256');
  feed(h);
  return h.digest('hex');
}

/** Hex SHA-256 of a text (one-shot: cheaper than a Hash object for one update). */
export function textHash(text: string): string {
  return hash('sha256', text, 'hex');
}

/** Hex SHA-256 of bytes (a sealed raw copy: the chain covers its hash, not the bytes). */
export function bytesHash(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'hex');
}

/** A sink that collects the text, for {@link textHash} (one hash call instead of one per piece). */
export class TextSink implements HashSink {
  text = '';
  update(text: string): void {
    this.text += text;
  }
}

/** An entry's `hash`: hex SHA-256 of {@link chainInput}. */
export function linkHash(link: ChainLink): string {
  return hash('sha256', chainInput(link), 'hex');
}
