/**
 * SHA-256 for the audit chain (src/core/audit/chain.ts defines what is hashed; this file only
 * hashes it). Shared by both drivers' writers, the checkpoint writer, the purge and the verifier.
 */
import { createHash, hash } from 'node:crypto';
import {
  chainInput,
  feedAccessContent,
  feedApprovalContent,
  feedRawCopyContent,
  feedRequestContent,
  feedResultContent,
  requestPartsContent,
  startEventsContent,
  type ACCESS_COLUMNS,
  type APPROVAL_COLUMNS,
  type ChainLink,
  type ChunkDigest,
  type ColumnsOf,
  type HashSink,
  type REQUEST_COLUMNS,
  type RESULT_COLUMNS,
} from '../core/audit/chain.ts';

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

// ── the content hash of each entry kind, from the row as written ────────────────────────────

/** A `request` entry; `parts`: a body stored as chunks (calls.request_parts and the chunks this call added). */
export function requestContentHash(row: ColumnsOf<typeof REQUEST_COLUMNS>, parts: { readonly text: string; readonly added: readonly ChunkDigest[] } | null): string {
  const sink = new TextSink();
  feedRequestContent(sink, row);
  if (parts !== null) sink.update(requestPartsContent(parts.text, parts.added));
  return textHash(sink.text);
}

export function resultContentHash(row: ColumnsOf<typeof RESULT_COLUMNS>): string {
  const sink = new TextSink();
  feedResultContent(sink, row);
  return textHash(sink.text);
}

export function accessContentHash(row: ColumnsOf<typeof ACCESS_COLUMNS>): string {
  const sink = new TextSink();
  feedAccessContent(sink, row);
  return textHash(sink.text);
}

/** A sealed raw copy: its call id, key id and the SHA-256 of the sealed bytes. */
export function rawCopyContentHash(callId: string, keyId: string, sealed: Uint8Array): string {
  const sink = new TextSink();
  feedRawCopyContent(sink, { call_id: callId, key_id: keyId, sealed_sha256: bytesHash(sealed) });
  return textHash(sink.text);
}

export function approvalContentHash(row: ColumnsOf<typeof APPROVAL_COLUMNS>): string {
  const sink = new TextSink();
  feedApprovalContent(sink, row);
  return textHash(sink.text);
}

/** An `events` entry over one batch of one call's events, fed in seq order. */
export function eventsContentHasher(callId: string): { add(seq: number, offsetMs: number, raw: string): void; hash(): string } {
  const sink = new TextSink();
  const content = startEventsContent(sink, callId);
  return { add: (seq, offsetMs, raw) => content.add(seq, offsetMs, raw), hash: () => textHash(sink.text) };
}
