/**
 * The daemon's loopback proxy: a child process started by `aigov run` talks to it with a per-run
 * key; the daemon checks the key, swaps it for the user's access token and the run's session id
 * and forwards the request to the gateway over kept-alive connections (undici, see
 * gateway-forwarder.ts). Answers stream back as they arrive; errors the daemon itself raises are
 * rendered in the provider's own shape so the child's SDK raises them as ordinary API errors.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, TokenSource } from '../auth/token-source.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { toProviderError, type ProviderCodec } from '../providers/codec.ts';
import { openaiCodec } from '../providers/openai.ts';
import { CODECS } from '../providers/registry.ts';
import type { Discovery } from '../protocol/discovery.ts';
import { ambiguousPath, isWebSocketUpgrade } from '../protocol/request-path.ts';
import { silentLogger, type DaemonLogger } from './daemon-log.ts';
import { createGatewayPool, GatewayCall, type CallBody, type CallOwner } from './gateway-forwarder.ts';
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

/**
 * Request headers that never go to the gateway: the run key, hop-by-hop headers, anything the
 * daemon sets itself (host: the gateway's; the body's framing: from the body as sent).
 */
const DROPPED_REQUEST_HEADERS = new Set([
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
  'host',
  'transfer-encoding',
  'expect',
  'accept-encoding',
]);

interface ProviderRoute {
  readonly path: string;
  readonly adapter: ProviderCodec;
}

export async function startDaemonServer(options: DaemonServerOptions): Promise<DaemonServer> {
  const logger = options.logger ?? silentLogger;
  const profile = options.profile ?? 'default';
  const maxBuffered = options.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
  const target = new URL(options.gatewayUrl);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error(`the gateway URL must be http or https, not ${target.protocol}`);
  const routes = providerRoutes(options.discovery.providers);
  const runs = new RunRegistry();
  const pool = createGatewayPool(target, options.caFile);
  const basePath = target.pathname.replace(/\/+$/, '');
  let tokenExpiresAt: number | null = null;
  let inflight = 0;
  let closing = false;
  const idleWaiters: (() => void)[] = [];

  const getToken = async (): Promise<AccessToken> => {
    const token = await options.tokenSource.getAccessToken();
    tokenExpiresAt = token.expiresAt;
    return token;
  };

  /** Fetches a token (refreshing if need be) and sends the call with it. */
  const send = async (call: GatewayCall): Promise<void> => {
    let token: AccessToken;
    try {
      token = await getToken();
    } catch (error) {
      const failure = isAigovError(error) ? error : new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it could not obtain an access token' });
      if (isAigovError(error) && error.code === 'AIGOV_E_SESSION_EXPIRED') logger.warn(`profile ${profile}: the sign-in expired; the user must run \`aigov login\``);
      else logger.error(`cannot obtain an access token: ${failure.code}`);
      // The refresher's message names the profile; ours does when it only said "failed".
      sendError(call.res, call.adapter, failure.code === 'AIGOV_E_SESSION_EXPIRED' ? new AigovError('AIGOV_E_SESSION_EXPIRED', { profile }) : failure);
      return;
    }
    if (call.res.destroyed) return;
    call.send(pool, token.token);
  };

  const owner: CallOwner = {
    tokenExpired(call) {
      options.tokenSource.invalidate();
      logger.info('the gateway said the access token expired; refreshing and retrying once');
      void send(call);
    },
    connectionLost(call) {
      void send(call);
    },
    failed(call, reason) {
      logger.warn(`forwarding to the gateway failed: ${reason}`);
      sendError(call.res, call.adapter, new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: target.origin, reason }));
    },
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes.find((r) => pathname === r.path || pathname.startsWith(`${r.path}/`));
    const adapter = route?.adapter ?? openaiCodec;
    const run = verifyRunKey(runs, req.headers);
    if (run === null) {
      logger.warn(`refused ${req.method ?? '?'} ${pathname}: no valid run key`);
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_RUN_KEY_INVALID'), { 'www-authenticate': 'Bearer realm="aigov-daemon"' });
      return;
    }
    // The child is untrusted: a path a proxy could resolve differently (`/openai/../aigov/…`) must
    // not carry the user's token anywhere but the provider endpoints.
    const ambiguous = ambiguousPath(pathname);
    if (ambiguous !== null) {
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_BAD_PATH', { reason: ambiguous }));
      return;
    }
    if (isWebSocketUpgrade(req.headers)) {
      logger.info(`refused a WebSocket handshake on ${pathname}: aigov governs HTTP (Codex falls back to it)`);
      req.resume();
      sendError(res, adapter, new AigovError('AIGOV_E_WEBSOCKET_UNSUPPORTED', { path: pathname }), { connection: 'close' });
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
    let call: GatewayCall | null = null;
    res.once('close', () => {
      inflight--;
      if (inflight === 0) for (const wake of idleWaiters.splice(0)) wake();
      call?.clientClosed();
    });
    const body = await readBody(req, maxBuffered);
    if (body === null || res.destroyed) return;
    call = new GatewayCall({ owner, run, adapter, res, method: req.method ?? 'GET', path: basePath + (req.url ?? '/'), headers: requestHeaders(req.headers, run, body), body });
    await send(call);
  };

  // noDelay: answers go out as soon as they are written (TCP_NODELAY on accepted sockets; undici sets it on its own).
  const server = http.createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error(`internal error: ${error instanceof Error ? error.name : 'unknown'}`);
      if (!res.headersSent) sendError(res, openaiCodec, new AigovError('AIGOV_E_DAEMON_UNAVAILABLE', { reason: 'it hit an internal error' }));
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
        await pool.destroy();
      })();
      return closed;
    },
  };
}

function providerRoutes(providers: Discovery['providers']): ProviderRoute[] {
  return providers
    .map((p) => ({ path: p.path.replace(/\/+$/, ''), adapter: CODECS[p.kind] }))
    .filter((r) => r.path.startsWith('/') && r.path.length > 1)
    .sort((a, b) => b.path.length - a.path.length);
}

/** The headers the gateway gets: the client's, less the dropped ones, plus the run's session. */
function requestHeaders(incoming: http.IncomingHttpHeaders, run: RunInfo, body: CallBody): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name)) continue;
    // A fully buffered body is sent with its own length; a streamed one keeps the client's, if any.
    if (name === 'content-length' && body.complete) continue;
    out[name] = value;
  }
  out['x-aigov-session'] = run.sessionId;
  out['accept-encoding'] = 'identity';
  return out;
}

/** The run a request's key belongs to: `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic). */
function verifyRunKey(runs: RunRegistry, headers: http.IncomingHttpHeaders): RunInfo | null {
  const auth = headers.authorization;
  const bearer = typeof auth === 'string' && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : null;
  const apiKey = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'].trim() : null;
  return runs.verify(bearer) ?? runs.verify(apiKey);
}

function sendError(res: http.ServerResponse, adapter: ProviderCodec, error: AigovError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = adapter.renderError(toProviderError(error));
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-aigov-error': error.code,
    ...extraHeaders,
  });
  res.end(body);
}

/**
 * Buffers the request body up to `limit` bytes. A longer body is not refused here (the gateway
 * has its own limit): the buffered part and the unread rest are streamed on, without a retry.
 * Null when the client went away.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<CallBody | null> {
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
