/**
 * Reads a client's request body, decoding `Content-Encoding: gzip | deflate | br | zstd`. The
 * body limit applies to the decoded size (a 10 KB zstd bomb stops at the limit, it is never
 * expanded in full). The request stream itself is only ever drained, never destroyed, so the
 * refusal can still be answered on the connection.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { decoders } from './content-coding.ts';

export type BodyResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: 'too_large' | 'aborted' }
  | { readonly ok: false; readonly reason: 'bad_coding'; readonly coding: string; readonly detail: string };

export function readRequestBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve({ ok: false, reason: 'too_large' });
  }
  const header = req.headers['content-encoding'];
  const chain = decoders(header);
  if (!Array.isArray(chain)) {
    req.resume();
    return Promise.resolve({ ok: false, reason: 'bad_coding', coding: chain.unknown, detail: '' });
  }
  // .pipe(), not pipeline(): stopping a decoder must not destroy the request (and its socket).
  const source: Readable = chain.reduce<Readable>((out, decoder) => out.pipe(decoder), req);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: BodyResult): void => {
      if (done) return;
      done = true;
      // The 'close' listener lives as long as the call: let it not keep the raw body alive.
      chunks.length = 0;
      if (chain.length > 0) {
        req.unpipe();
        req.resume();
        for (const decoder of chain) decoder.destroy();
      }
      resolve(value);
    };
    const text = (): string => Buffer.concat(chunks).toString('utf8');
    source.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        req.resume();
        finish({ ok: false, reason: 'too_large' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => finish({ ok: false, reason: 'aborted' }));
    if (chain.length === 0) {
      req.on('end', () => finish({ ok: true, text: text() }));
      req.on('close', () => finish(req.complete ? { ok: true, text: text() } : { ok: false, reason: 'aborted' }));
      return;
    }
    const coding = (Array.isArray(header) ? header.join(',') : (header ?? '')).slice(0, 40);
    for (const decoder of chain) decoder.on('error', () => finish({ ok: false, reason: 'bad_coding', coding, detail: ': the compressed data is corrupt or cut short' }));
    source.on('end', () => finish({ ok: true, text: text() }));
    req.on('close', () => {
      if (!req.complete) finish({ ok: false, reason: 'aborted' });
    });
  });
}
