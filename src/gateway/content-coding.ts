/**
 * HTTP content codings, both ways: request bodies a client compressed and answers an upstream
 * compressed. gzip, deflate, br and zstd are decoded; any other coding is refused. Whoever reads
 * the decoded stream counts decoded bytes, so a compression bomb stops at its limit.
 */
import { pipeline, type Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib';

export type Decoded = { readonly ok: true; readonly body: Readable } | { readonly ok: false; readonly coding: string };

/** The decoders for a Content-Encoding header, in the order to apply them; or the coding we cannot read. */
export function decoders(header: string | string[] | undefined): Transform[] | { readonly unknown: string } {
  const codings = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const out: Transform[] = [];
  // Codings are listed in the order they were applied: undo them from the last.
  for (const coding of codings.reverse()) {
    const decoder = coding === 'gzip' || coding === 'x-gzip' ? createGunzip() : coding === 'deflate' ? createInflate() : coding === 'br' ? createBrotliDecompress() : coding === 'zstd' ? createZstdDecompress() : null;
    if (decoder === null) return { unknown: coding.replace(/[^\x21-\x7e]/g, '?').slice(0, 40) };
    out.push(decoder);
  }
  return out;
}

/** `body` decoded according to a Content-Encoding header; destroying either end destroys the other. */
export function decodeContent(body: Readable, header: string | string[] | undefined): Decoded {
  const chain = decoders(header);
  if (!Array.isArray(chain)) return { ok: false, coding: chain.unknown };
  // pipeline: an error or destroy on either side reaches the other, and never goes unhandled
  // (the reader may have stopped listening already).
  return { ok: true, body: chain.reduce<Readable>((out, decoder) => pipeline(out, decoder, () => undefined), body) };
}
