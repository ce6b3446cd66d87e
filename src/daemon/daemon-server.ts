/**
 * The daemon's loopback proxy: a child process started by `aigov run` talks to it with a per-run
 * key; the daemon checks the key, swaps it for the user's access token and the run's session id
 * and forwards the request to the gateway over kept-alive connections (http-proxy-3, native
 * path). Answers stream back as they arrive; errors the daemon itself raises are rendered in the
 * provider's own shape so the child's SDK raises them as ordinary API errors.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { createProxyServer } from 'http-proxy-3';
import type { AccessToken, TokenSource } from '../auth/token-source.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { anthropicAdapter } from '../gateway/providers/anthropic.ts';
import type { ProviderAdapter } from '../gateway/providers/adapter.ts';
import { openaiAdapter } from '../gateway/providers/openai.ts';
import type { Discovery } from '../protocol/discovery.ts';
import { silentLogger, type DaemonLogger } from './daemon-log.ts';
import { RunRegistry, type RunGrant, type RunInfo } from './run-keys.ts';

export interface DaemonServerOptions {
  /** The gateway's base URL (http or https); provider paths are appended 1:1. */
  readonly gatewayUrl: string;
  /** The gateway's discovery document: which paths are which provider. */
  readonly discovery: Pick<Discovery, 'providers'>;
  readonly tokenSource: TokenSource;
  /** PEM file with extra CA certificates to trust for an https gateway (AIGOV_CA_FILE / --ca-file). */
  readonly caFile?: string;
  readonly logger?: DaemonLogger;
  /** Profile name, for error messages. */
  readonly profile?: string;
  /** Request bodies up to this size are buffered so a request can be retried once after a token refresh. Default 10 MiB. */
  readonly maxBufferedBodyBytes?: number;
  /** Port on 127.0.0.1; default 0 (a free one). */
  readonly port?: number;
}

export interface DaemonServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  mintRun(label: string): RunGrant;
  /** False when the key was not live. */
  revokeRun(runKey: string): boolean;
  /** Live runs (never their keys). */
  readonly runs: RunInfo[];
  /** Expiry (epoch ms) of the last access token used, or null before the first. */
  readonly tokenExpiresAt: number | null;
  /** Requests being forwarded right now. */
  readonly inflight: number;
  /** Stops accepting, lets requests in flight finish for up to `graceMs` (default 5000), then cuts the rest. Idempotent. */
  close(options?: { graceMs?: number }): Promise<void>;
}

export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 10 * 1024 * 1024;
/** The most of a gateway 401 body read to decide whether to retry. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Request headers that never go to the gateway: the run key, hop-by-hop headers, anything the daemon sets itself. */
const DROPPED_REQUEST_HEADERS = [
  'authorization',
  'x-api-key',
  'proxy-authorization',
  'cookie',
  'x-aigov-session',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
] as const;

const HOP_BY_HOP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);

interface ProviderRoute {
  readonly path: string;
  readonly adapter: ProviderAdapter;
}

interface Attempt {
  readonly run: RunInfo;
  readonly adapter: ProviderAdapter;
  readonly chunks: Buffer[];
  /** True when the whole body is in `chunks` (so the request can be sent again). */
  readonly complete: boolean;
  readonly length: number;
  /** The rest of an over-large body, still unread. */
  readonly rest: Readable | null;
  retried: boolean;
  proxyReq: http.ClientRequest | null;
  done: () => void;
}

export async function startDaemonServer(options: DaemonServerOptions): Promise<DaemonServer> {
  const logger = options.logger ?? silentLogger;
  const profile = options.profile ?? 'default';
  const maxBuffered = options.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
  const target = new URL(options.gatewayUrl);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error(`the gateway URL must be http or https, not ${target.protocol}`);
  const routes = providerRoutes(options.discovery.providers);
  const runs = new RunRegistry();
  const agent = createAgent(target, options.caFile);
  const proxy = createProxyServer({ target: options.gatewayUrl, agent, changeOrigin: true, selfHandleResponse: true, xfwd: false });
  const attempts = new WeakMap<http.IncomingMessage, Attempt>();
  let tokenExpiresAt: number | null = null;
  let inflight = 0;
  let closing = false;
  const idleWaiters: (() => void)[] = [];

  const getToken = async (): Promise<AccessToken> => {
    const token = await options.tokenSource.getAccessToken();
    tokenExpiresAt = token.expiresAt;
    return token;
  };

  proxy.on('proxyReq', (proxyReq, req) => {
    const attempt = attempts.get(req);
    if (attempt) attempt.proxyReq = proxyReq;
  });

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const attempt = attempts.get(req);
    if (!attempt) {
      proxyRes.resume();
      return;
    }
    if (proxyRes.statusCode === 401 && attempt.complete && !attempt.retried) {
      // Maybe our token expired between fetching it and the gateway checking it: read the
      // (small) error body, and if the gateway says so, refresh and send the request once more.
      readSmall(proxyRes, MAX_ERROR_BODY_BYTES).then(
        (body) => {
          if (res.destroyed) return;
          if (isExpiredTokenAnswer(proxyRes.headers, body)) {
            attempt.retried = true;
            options.tokenSource.invalidate();
            logger.info('the gateway said the access token expired; refreshing and retrying once');
            void forward(req, res, attempt);
            return;
          }
          res.writeHead(401, proxyRes.statusMessage, responseHeaders(proxyRes.headers, body.length));
          res.end(body);
          attempt.done();
        },
        () => {
          if (!res.headersSent) sendError(res, attempt.adapter, new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: target.origin, reason: 'the connection broke' }));
          else res.destroy();
          attempt.done();
        },
      );
      return;
    }
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes.headers, null));
    // A stream's headers go out at once; a JSON answer's go with its body, in one write.
    if (String(proxyRes.headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
    proxyRes.on('error', () => res.destroy());
    proxyRes.pipe(res);
  });

  const forward = async (req: http.IncomingMessage, res: http.ServerResponse, attempt: Attempt): Promise<void> => {
    let token: AccessToken;
    try {
      token = await getToken();
    } catch (error) {
      const failure = isAigovError(error) ? error : new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it could not obtain an access token' });
      if (isAigovError(error) && error.code === 'AIGOV_E_SESSION_EXPIRED') logger.warn(`profile ${profile}: the sign-in expired; the user must run \`aigov login\``);
      else logger.error(`cannot obtain an access token: ${failure.code}`);
      // The refresher's message names the profile; ours does when it only said "failed".
      sendError(res, attempt.adapter, failure.code === 'AIGOV_E_SESSION_EXPIRED' ? new AigovError('AIGOV_E_SESSION_EXPIRED', { profile }) : failure);
      attempt.done();
      return;
    }
    if (res.destroyed) {
      attempt.done();
      return;
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${token.token}`,
      'x-aigov-session': attempt.run.sessionId,
      'accept-encoding': 'identity',
    };
    if (attempt.complete && (attempt.length > 0 || (req.method !== 'GET' && req.method !== 'HEAD'))) headers['content-length'] = String(attempt.length);
    const body = attempt.complete ? Readable.from(attempt.chunks) : Readable.from(concatBody(attempt.chunks, attempt.rest));
    attempt.proxyReq = null;
    proxy.web(req, res, { headers, buffer: body }, (error) => {
      const proxyReq = attempt.proxyReq;
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      // A kept-alive connection the gateway closed just as we reused it: safe to send again.
      if (proxyReq?.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') && attempt.complete && !attempt.retried && !res.headersSent) {
        attempt.retried = true;
        void forward(req, res, attempt);
        return;
      }
      logger.warn(`forwarding to the gateway failed: ${code}`);
      if (!res.headersSent) sendError(res, attempt.adapter, new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: target.origin, reason: code }));
      else res.destroy();
      attempt.done();
    });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes.find((r) => pathname === r.path || pathname.startsWith(`${r.path}/`));
    const adapter = route?.adapter ?? openaiAdapter;
    const run = verifyRunKey(runs, req.headers);
    if (run === null) {
      logger.warn(`refused ${req.method ?? '?'} ${pathname}: no valid run key`);
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_RUN_KEY_INVALID'), { 'www-authenticate': 'Bearer realm="aigov-daemon"' });
      return;
    }
    if (route === undefined) {
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_UNKNOWN_ENDPOINT', { method: req.method ?? '?', path: pathname }));
      return;
    }
    if (closing) {
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it is shutting down' }), { connection: 'close' });
      return;
    }
    inflight++;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      inflight--;
      if (inflight === 0) for (const wake of idleWaiters.splice(0)) wake();
    };
    res.once('close', done);
    const body = await readBody(req, maxBuffered);
    if (body === null) {
      done();
      return;
    }
    for (const name of DROPPED_REQUEST_HEADERS) delete req.headers[name];
    if (body.complete) delete req.headers['transfer-encoding'];
    const attempt: Attempt = { run, adapter, ...body, retried: false, proxyReq: null, done };
    attempts.set(req, attempt);
    req.socket.setNoDelay(true);
    await forward(req, res, attempt);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error(`internal error: ${error instanceof Error ? error.name : 'unknown'}`);
      if (!res.headersSent) sendError(res, openaiAdapter, new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it hit an internal error' }));
      else res.destroy();
    });
  });
  // Long streams are normal here; the gateway enforces its own limits.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | null = null;

  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    mintRun: (label) => runs.mint(label),
    revokeRun: (runKey) => runs.revoke(runKey),
    get runs() {
      return runs.list();
    },
    get tokenExpiresAt() {
      return tokenExpiresAt;
    },
    get inflight() {
      return inflight;
    },
    close({ graceMs = 5000 } = {}) {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inflight > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, graceMs);
            idleWaiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        server.closeAllConnections();
        await stopped;
        agent.destroy();
      })();
      return closed;
    },
  };
}

function providerRoutes(providers: Discovery['providers']): ProviderRoute[] {
  return providers
    .map((p) => ({ path: p.path.replace(/\/+$/, ''), adapter: p.kind === 'anthropic' ? anthropicAdapter : openaiAdapter }))
    .filter((r) => r.path.startsWith('/') && r.path.length > 1)
    .sort((a, b) => b.path.length - a.path.length);
}

function createAgent(target: URL, caFile: string | undefined): http.Agent {
  if (target.protocol === 'https:') {
    // Extra CAs are added to the public roots, not instead of them.
    const ca = caFile ? [...rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
    return new https.Agent({ keepAlive: true, scheduling: 'lifo', ...(ca ? { ca } : {}) });
  }
  return new http.Agent({ keepAlive: true, scheduling: 'lifo' });
}

/** The run a request's key belongs to: `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic). */
function verifyRunKey(runs: RunRegistry, headers: http.IncomingHttpHeaders): RunInfo | null {
  const auth = headers.authorization;
  const bearer = typeof auth === 'string' && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : null;
  const apiKey = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'].trim() : null;
  return runs.verify(bearer) ?? runs.verify(apiKey);
}

function sendError(res: http.ServerResponse, adapter: ProviderAdapter, error: AigovError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = adapter.renderError({ status: error.status, type: error.spec.type, message: `${error.message} ${error.hint}`, code: error.code });
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-aigov-error': error.code,
    ...extraHeaders,
  });
  res.end(body);
}

interface ReadBody {
  readonly chunks: Buffer[];
  readonly length: number;
  readonly complete: boolean;
  readonly rest: Readable | null;
}

/**
 * Buffers the request body up to `limit` bytes. A longer body is not refused here (the gateway
 * has its own limit): the buffered part and the unread rest are streamed on, without a retry.
 * Null when the client went away.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<ReadBody | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length > limit) {
        req.pause();
        cleanup();
        resolve({ chunks, length, complete: false, rest: req });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ chunks, length, complete: true, rest: null });
    };
    const onError = (): void => {
      cleanup();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

async function* concatBody(chunks: readonly Buffer[], rest: Readable | null): AsyncGenerator<Buffer> {
  yield* chunks;
  if (rest) for await (const chunk of rest) yield chunk as Buffer;
}

function readSmall(stream: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= limit) chunks.push(chunk);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Did the gateway refuse the token only because it expired? (code in the body, or the RFC 6750 header) */
function isExpiredTokenAnswer(headers: http.IncomingHttpHeaders, body: Buffer): boolean {
  if (body.includes('AIGOV_E_AUTH_EXPIRED')) return true;
  const challenge = headers['www-authenticate'];
  return typeof challenge === 'string' && /invalid_token/.test(challenge) && /expired/i.test(challenge);
}

function responseHeaders(headers: http.IncomingHttpHeaders, contentLength: number | null): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP_RESPONSE_HEADERS.has(name)) continue;
    out[name] = value;
  }
  if (contentLength !== null) out['content-length'] = contentLength;
  return out;
}
