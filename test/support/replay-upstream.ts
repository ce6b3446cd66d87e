/**
 * A fake upstream provider for tests: a real HTTP server on 127.0.0.1 that replays recorded
 * wire transcripts (test/fixtures/transcripts/*.json) byte for byte, chunked however a test asks
 * (whole, 1 byte, fixed size, seeded random — boundaries fall anywhere, inside multi-byte UTF-8
 * characters included), optionally with keep-alive comments between SSE events, delays, or a
 * connection that dies after N body bytes. It records every request it receives.
 */
import { waitForDrain } from '../../src/gateway/backpressure.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { seededRandom } from './seeded-random.ts';

export interface Transcript {
  readonly description: string;
  readonly request: { readonly method: string; readonly path: string };
  readonly status: number;
  /** Response headers as the provider sent them (without content-length / transfer-encoding). */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact raw response body text. */
  readonly body: string;
}

export interface ReplayOptions {
  /** How the body bytes are split into separate writes (default 'whole'). */
  chunking?: 'whole' | 'bytes' | { size: number } | { random: number /* seed */ };
  /** Pause between body writes (default 0: each write still goes out on its own turn of the event loop). */
  chunkDelayMs?: number;
  /** Insert `: keep-alive\n\n` between SSE events, as OpenAI-compatible servers do. */
  keepAliveComments?: boolean;
  /** Destroy the socket after sending this many body bytes. */
  dieAfterBytes?: number;
  /** Wait this long before sending the status line and headers. */
  headersDelayMs?: number;
}

/** What a route's function answers: a transcript, or one with options of its own for this request (over the route's). */
export type RouteAnswer = Transcript | { readonly transcript: Transcript; readonly options: ReplayOptions };

export interface ReceivedRequest {
  method: string;
  /** The request target as received (path and query). */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ReplayUpstream {
  /** `http://127.0.0.1:P` */
  readonly url: string;
  readonly received: ReceivedRequest[];
  /**
   * Route method + path (exact, or a prefix when it ends with '*') to a transcript; a later route for the same key replaces the earlier one.
   * A function may answer later (a promise: the request waits, headers unsent, until it settles) and with options of its own.
   */
  route(method: string, path: string, transcript: Transcript | ((req: ReceivedRequest) => RouteAnswer | Promise<RouteAnswer>), options?: ReplayOptions): void;
  /** Forgets all routes and received requests. */
  reset(): void;
  close(): Promise<void>;
}

export const TRANSCRIPTS_DIR = join(import.meta.dirname, '..', 'fixtures', 'transcripts');

/** The text an OpenAI chat stream transcript carries in choice 0, concatenated (what a client shows). */
export function chatStreamText(name: string): string {
  return loadTranscript(name)
    .body.split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map((l) => (JSON.parse(l.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
    .join('');
}

export function loadTranscript(name: string): Transcript {
  const parsed = JSON.parse(readFileSync(join(TRANSCRIPTS_DIR, `${name}.json`), 'utf8')) as Transcript;
  if (typeof parsed.body !== 'string' || typeof parsed.status !== 'number' || typeof parsed.headers !== 'object') {
    throw new Error(`transcript ${name} is malformed`);
  }
  return parsed;
}

export function listTranscripts(): string[] {
  return readdirSync(TRANSCRIPTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

interface Route {
  method: string;
  path: string;
  prefix: boolean;
  transcript: Transcript | ((req: ReceivedRequest) => RouteAnswer | Promise<RouteAnswer>);
  options: ReplayOptions;
}

/** Headers the replay computes itself rather than copying from the transcript. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'content-encoding']);

export async function startReplayUpstream(): Promise<ReplayUpstream> {
  let routes: Route[] = [];
  const received: ReceivedRequest[] = [];

  const server = createServer((req, res) => {
    serve(req, res).catch(() => res.destroy());
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) parts.push(chunk);
    const request: ReceivedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body: Buffer.concat(parts).toString('utf8'),
    };
    received.push(request);
    const pathname = new URL(request.path, 'http://replay.invalid').pathname;
    const route = findRoute(routes, request.method, pathname);
    if (!route) {
      const body = JSON.stringify({
        error: { message: `Invalid URL (${request.method} ${pathname})`, type: 'invalid_request_error', param: null, code: null },
      });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const answer = typeof route.transcript === 'function' ? await route.transcript(request) : route.transcript;
    if ('transcript' in answer) await replay(res, answer.transcript, { ...route.options, ...answer.options });
    else await replay(res, answer, route.options);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    received,
    route(method, path, transcript, options = {}) {
      const prefix = path.endsWith('*');
      const entry: Route = { method: method.toUpperCase(), path: prefix ? path.slice(0, -1) : path, prefix, transcript, options };
      routes = routes.filter((r) => !(r.method === entry.method && r.path === entry.path && r.prefix === entry.prefix));
      routes.push(entry);
    },
    reset() {
      routes = [];
      received.length = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

/** Exact routes win; otherwise the longest matching prefix. */
function findRoute(routes: Route[], method: string, pathname: string): Route | undefined {
  const candidates = routes.filter((r) => r.method === method.toUpperCase());
  const exact = candidates.find((r) => !r.prefix && r.path === pathname);
  if (exact) return exact;
  let best: Route | undefined;
  for (const r of candidates) {
    if (r.prefix && pathname.startsWith(r.path) && (!best || r.path.length > best.path.length)) best = r;
  }
  return best;
}

function isEventStream(headers: Readonly<Record<string, string>>): boolean {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'content-type') return value.toLowerCase().startsWith('text/event-stream');
  }
  return false;
}

/** Inserts `: keep-alive\n\n` after every SSE event but the last. */
export function withKeepAliveComments(body: string): string {
  const blocks = body.split(/(?<=\r\n\r\n|\n\n|\r\r)/);
  return blocks.map((b, i) => (i < blocks.length - 1 && b !== '' ? `${b}: keep-alive\n\n` : b)).join('');
}

/** Chunk sizes covering `total` bytes according to the chunking option. */
export function chunkSizes(total: number, chunking: ReplayOptions['chunking'] = 'whole'): number[] {
  if (total === 0) return [];
  if (chunking === 'whole') return [total];
  if (chunking === 'bytes') return Array.from({ length: total }, () => 1);
  const sizes: number[] = [];
  if ('size' in chunking) {
    const size = Math.max(1, Math.floor(chunking.size));
    for (let left = total; left > 0; left -= size) sizes.push(Math.min(size, left));
    return sizes;
  }
  const next = seededRandom(chunking.random);
  for (let left = total; left > 0; ) {
    const size = Math.min(left, 1 + Math.floor(next() * 48));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

async function replay(res: ServerResponse, transcript: Transcript, options: ReplayOptions): Promise<void> {
  const sse = isEventStream(transcript.headers);
  const text = sse && options.keepAliveComments ? withKeepAliveComments(transcript.body) : transcript.body;
  const bytes = Buffer.from(text, 'utf8');
  if (options.headersDelayMs) await sleep(options.headersDelayMs);
  if (res.destroyed) return;

  const headers: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(transcript.headers)) {
    if (!HOP_HEADERS.has(name.toLowerCase())) headers[name] = value;
  }
  // JSON answers carry a length; streams go out chunked, as providers send them.
  if (!sse) headers['content-length'] = bytes.length;
  res.writeHead(transcript.status, headers);
  res.flushHeaders();

  const limit = options.dieAfterBytes ?? Infinity;
  const delayMs = options.chunkDelayMs ?? 0;
  let sent = 0;
  let first = true;
  for (const size of chunkSizes(bytes.length, options.chunking)) {
    if (sent >= limit) break;
    const piece = bytes.subarray(sent, Math.min(sent + size, limit));
    if (!first || delayMs > 0) await (delayMs > 0 ? sleep(delayMs) : nextTurn());
    first = false;
    if (res.destroyed) return;
    sent += piece.length;
    if (!res.write(piece)) await waitForDrain(res);
  }
  if (sent < bytes.length) {
    // Let what was written leave, then cut the connection mid-body.
    await nextTurn();
    res.socket?.destroy();
    res.destroy();
    return;
  }
  if (!res.destroyed) res.end();
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
