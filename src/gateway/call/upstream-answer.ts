import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** The upstream's answer with its body decoded (upstream.ts decodedBody). */
export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Readable;
}

/** Reads a body up to `limit` bytes; null when larger (the rest is discarded). */
export async function readLimited(body: Readable, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null; // leaving the loop destroys the body
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
