/**
 * The daemon's hop to the gateway: one undici `Pool` per gateway origin (kept-alive sockets,
 * TCP_NODELAY) and one `GatewayCall` per proxied request, which is its own dispatch handler. A
 * buffered request body goes out as one Buffer (headers and body in one write); the answer is
 * written into the daemon's response as it arrives, paused while the client's socket is full.
 * What to do when something goes wrong (refresh the token, render a provider-shaped error) is
 * the owner's business: the call reports it through `CallOwner`.
 *
 * Why undici and not http-proxy-3 over node:http's client: measured side by side in
 * docs/benchmarks.md (daemon hop), ~30 % less daemon CPU per call (0.84 against 1.22 ms) and a
 * lower added p50 in most runs; node:http's client path (ClientRequest, Agent, a Readable for
 * the buffered body, pipe) was the part that went away.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { ProviderCodec } from '../providers/codec.ts';
import type { RunInfo } from './run-keys.ts';

/** The most of a gateway 401 body read to decide whether to retry. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Response headers that describe the gateway → daemon connection, not the answer. */
const HOP_BY_HOP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);

/** Connection failures before any answer on which a fully buffered request is sent once more. */
const RESENDABLE_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** Kept-alive connections to the gateway. Extra CAs are added to the public roots, not instead of them. */
export function createGatewayPool(target: URL, caFile: string | undefined): Pool {
  const ca = target.protocol === 'https:' && caFile ? [...rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
  return new Pool(target.origin, {
    ...(ca ? { connect: { ca } } : {}),
    // Long generations and long pauses in a stream are normal; the gateway enforces its own limits.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/** What a call reports back to the daemon. */
export interface CallOwner {
  /** The gateway refused the token as expired (and the body can be sent again): refresh, then `send` once more. */
  tokenExpired(call: GatewayCall): void;
  /** A kept-alive connection broke before any answer (and the body can be sent again): `send` once more. */
  connectionLost(call: GatewayCall, reason: string): void;
  /** The gateway could not be reached, or the connection broke before the answer started. */
  failed(call: GatewayCall, reason: string): void;
}

export interface CallBody {
  readonly chunks: Buffer[];
  readonly length: number;
  /** True when the whole body is in `chunks` (so the request can be sent again). */
  readonly complete: boolean;
  /** The rest of an over-large body, still unread. */
  readonly rest: Readable | null;
}

/** One proxied request: the daemon's response, the request to send on, and the dispatch handler for its answer. */
export class GatewayCall implements Dispatcher.DispatchHandler {
  readonly run: RunInfo;
  readonly adapter: ProviderCodec;
  readonly res: http.ServerResponse;
  readonly complete: boolean;
  /** Headers for the gateway; `authorization` is set on each send. */
  readonly headers: Record<string, string | string[]>;
  /** True once the call was sent a second time (after a token refresh or a lost connection). */
  retried = false;
  readonly #owner: CallOwner;
  readonly #method: Dispatcher.HttpMethod;
  readonly #path: string;
  readonly #body: Buffer | Readable | null;
  #controller: Dispatcher.DispatchController | null = null;
  #clientGone = false;
  /** Response headers arrived for the current send. */
  #answered = false;
  /** A 401 being read to see whether the token only expired. */
  #held: { status: number; message: string | undefined; headers: IncomingHttpHeaders; chunks: Buffer[]; length: number } | null = null;
  #resumeOnDrain: (() => void) | null = null;

  constructor(init: { owner: CallOwner; run: RunInfo; adapter: ProviderCodec; res: http.ServerResponse; method: string; path: string; headers: Record<string, string | string[]>; body: CallBody }) {
    this.#owner = init.owner;
    this.run = init.run;
    this.adapter = init.adapter;
    this.res = init.res;
    this.#method = init.method;
    this.#path = init.path;
    this.headers = init.headers;
    const { chunks, length, complete, rest } = init.body;
    this.complete = complete;
    if (!complete) this.#body = Readable.from(concatBody(chunks, rest), { objectMode: false });
    else if (length === 0) this.#body = null;
    else this.#body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
  }

  /** Sends (or sends again) the request with this access token. */
  send(pool: Pool, accessToken: string): void {
    this.headers.authorization = `Bearer ${accessToken}`;
    this.#controller = null;
    this.#answered = false;
    this.#held = null;
    try {
      pool.dispatch({ method: this.#method, path: this.#path, headers: this.headers, body: this.#body }, this);
    } catch (error) {
      // A header undici will not send, or a closed pool.
      this.#owner.failed(this, errorCode(error));
    }
  }

  /** The client went away (the daemon's response closed before it finished): abort the gateway request. */
  clientClosed(): void {
    if (this.res.writableFinished) return;
    this.#clientGone = true;
    this.#controller?.abort(new Error('the client closed the connection'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new Error('the client closed the connection'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, message?: string): void {
    if (status < 200) return; // 1xx: informational, the answer follows
    this.#answered = true;
    if (status === 401 && this.complete && !this.retried) {
      // Maybe our token expired between fetching it and the gateway checking it: read the
      // (small) error body, and if the gateway says so, refresh and send the request once more.
      this.#held = { status, message, headers, chunks: [], length: 0 };
      return;
    }
    const res = this.res;
    if (res.destroyed) return;
    res.writeHead(status, message, responseHeaders(headers, null));
    // A stream's headers go out at once; a JSON answer's go with its body, in one write.
    const type = headers['content-type'];
    if (typeof type === 'string' && type.startsWith('text/event-stream')) res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held !== null) {
      held.length += chunk.length;
      if (held.length <= MAX_ERROR_BODY_BYTES) held.chunks.push(chunk);
      return;
    }
    const res = this.res;
    if (res.destroyed) return;
    if (!res.write(chunk)) {
      controller.pause();
      this.#resumeOnDrain ??= () => this.#controller?.resume();
      res.once('drain', this.#resumeOnDrain);
    }
  }

  onResponseEnd(): void {
    const held = this.#held;
    const res = this.res;
    if (held === null) {
      if (!res.destroyed) res.end();
      return;
    }
    this.#held = null;
    if (res.destroyed) return;
    const body = Buffer.concat(held.chunks);
    if (isExpiredTokenAnswer(held.headers, body)) {
      this.retried = true;
      this.#owner.tokenExpired(this);
      return;
    }
    res.writeHead(held.status, held.message, responseHeaders(held.headers, body.length));
    res.end(body);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#clientGone) return;
    const code = errorCode(error);
    const res = this.res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A kept-alive connection the gateway closed just as we reused it: safe to send again.
    if (!this.#answered && this.complete && !this.retried && RESENDABLE_ERRORS.has(code)) {
      this.retried = true;
      this.#owner.connectionLost(this, code);
      return;
    }
    this.#owner.failed(this, this.#held ? 'the connection broke' : code);
  }
}

function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

async function* concatBody(chunks: readonly Buffer[], rest: Readable | null): AsyncGenerator<Buffer> {
  yield* chunks;
  if (rest) for await (const chunk of rest) yield chunk as Buffer;
}

/** Did the gateway refuse the token only because it expired? (code in the body, or the RFC 6750 header) */
function isExpiredTokenAnswer(headers: IncomingHttpHeaders, body: Buffer): boolean {
  if (body.includes('AIGOV_E_AUTH_EXPIRED')) return true;
  const challenge = headers['www-authenticate'];
  return typeof challenge === 'string' && /invalid_token/.test(challenge) && /expired/i.test(challenge);
}

function responseHeaders(headers: IncomingHttpHeaders, contentLength: number | null): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP_RESPONSE_HEADERS.has(name)) continue;
    out[name] = value;
  }
  if (contentLength !== null) out['content-length'] = contentLength;
  return out;
}
