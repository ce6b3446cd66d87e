/**
 * The gateway's HTTP front: operational endpoints, discovery, and dispatch of provider paths
 * (`/<provider>/…`) to the governed pipeline. Unknown paths get a provider-shaped 404: the
 * gateway is never an open proxy.
 */
import { Pricing } from './pricing.ts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { TokenVerifier } from '../auth/verify-token.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { AigovError } from '../core/errors.ts';
import { SecretScrubber } from '../core/scrub-secrets.ts';
import { DISCOVERY_PATH, type Discovery } from '../protocol/discovery.ts';
import { ambiguousPath, isWebSocketUpgrade } from '../protocol/request-path.ts';
import type { RecordingStore } from '../store/recording-store.ts';
import type { RawCopySealer } from '../store/raw-copy-sealer.ts';
import { defaultHooks, type PipelineHooks } from './hooks.ts';
import type { GatewayMetrics } from './metrics.ts';
import { errorSummary, handleGovernedCall, refuseUnrouted, type PipelineDeps } from './pipeline.ts';
import { SessionCallLimit } from './session-call-limit.ts';
import { toProviderError, type ProviderCodec } from '../providers/codec.ts';
import type { ApprovalService } from './approvals/approval-service.ts';
import type { ApprovalsApi } from './approvals/approvals-api.ts';
import type { BudgetService } from './budgets/budget-service.ts';
import { openaiCodec } from '../providers/openai.ts';
import { CODECS } from '../providers/registry.ts';
import { ThinkingSeal } from './thinking-seal.ts';
import { UpstreamSlots } from './upstream.ts';

/** A query string forwarded as it is: printable ASCII, no fragment. */
const SAFE_QUERY = /^(?:\?[\x21-\x22\x24-\x7e]*)?$/;


/** A handler for a path prefix outside the governed API (the dev IdP under /oidc, …). */
export interface MountedHandler {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface GatewayServices {
  readonly config: GatewayConfig;
  readonly store: RecordingStore;
  readonly verifier: TokenVerifier;
  readonly agent: Agent;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly version: string;
  readonly hooks?: PipelineHooks;
  readonly mounts?: readonly MountedHandler[];
  readonly dev?: boolean;
  /** The approvals hold and its API; without it require_approval decisions refuse. */
  readonly approvals?: { readonly service: ApprovalService; readonly api: ApprovalsApi; readonly keepAliveMs: number } | null;
  /** With `audit.raw_copy`: seals each request as the client sent it, stored with the call. */
  readonly rawCopy?: RawCopySealer | null;
  /** The policy's budgets; null: none. */
  readonly budgets?: BudgetService | null;
  /** The clock calls start by (tests move it across a window's end); default Date.now. */
  readonly now?: () => number;
}

export interface GatewayHandler {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Stops taking requests, lets in-flight calls finish up to the grace period, then cuts them. */
  shutdown(server: Server): Promise<void>;
  readonly inflight: number;
}

export function createGatewayHandler(services: GatewayServices): GatewayHandler {
  const { config, logger } = services;
  const providers = new Map(config.providers.map((p) => [p.name, p]));
  const deps: PipelineDeps = {
    verifier: services.verifier,
    store: services.store,
    hooks: services.hooks ?? defaultHooks,
    agent: services.agent,
    metrics: services.metrics,
    logger,
    limits: config.limits,
    slots: new UpstreamSlots(config.limits.upstream_max_connections),
    approvals: services.approvals?.service ?? null,
    approvalKeepAliveMs: services.approvals?.keepAliveMs ?? 15_000,
    rawCopy: services.rawCopy ?? null,
    sessionCalls: new SessionCallLimit(config.limits.max_calls_per_session),
    answers: config.answers,
    secrets: new SecretScrubber(providerSecrets(config.providers)),
    thinkingSeal: new ThinkingSeal(config.pseudonyms.key),
    pricing: services.budgets?.pricing ?? new Pricing(config.pricing),
    budgets: services.budgets ?? null,
    now: services.now ?? Date.now,
  };
  const mounts = [...(services.approvals ? [services.approvals.api] : []), ...(services.mounts ?? [])];
  const inflight = new Set<Promise<void>>();
  let draining = false;

  const discovery = (req: IncomingMessage): Discovery => {
    const base = gatewayUrl(config, req);
    return {
      schema_version: 1,
      version: services.version,
      gateway_url: base,
      issuer: config.identity.issuer,
      cli_client_id: config.identity.cli_client_id,
      scopes: [...config.identity.scopes],
      resource: config.identity.audience,
      audience: config.identity.audience,
      required_scope: config.identity.required_scope,
      providers: config.providers.map((p) => {
        const path = CODECS[p.kind].clientBasePath(p.name);
        return { name: p.name, kind: p.kind, base_url: base + path, path, models: [...p.models], dev_model: p.devModel };
      }),
      dev: services.dev === true,
    };
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q);

    const ambiguous = ambiguousPath(path);
    if (ambiguous !== null) return refuseOutside(req, res, path, new AigovError('AIGOV_E_BAD_PATH', { reason: ambiguous }));
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      void readiness(services.store, draining).then(({ status, body }) => sendJson(res, status, body));
      return;
    }
    if (path === '/metrics') {
      void services.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': services.metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    if (path === DISCOVERY_PATH) return sendJson(res, 200, discovery(req), { 'cache-control': 'max-age=60' });
    for (const mount of mounts) {
      if (path === mount.prefix || path.startsWith(`${mount.prefix}/`)) return mount.handle(req, res);
    }

    const slash = path.indexOf('/', 1);
    const name = slash === -1 ? path.slice(1) : path.slice(1, slash);
    const provider = providers.get(name);
    if (!provider) {
      const hint = path === '/' || path === '' ? { message: `aigov gateway ${services.version}. See ${DISCOVERY_PATH}.` } : null;
      if (hint) return sendJson(res, 200, hint);
      return refuseOutside(req, res, path, new AigovError('AIGOV_E_UNKNOWN_ENDPOINT', { method: req.method ?? 'GET', path: path.slice(0, 200) }));
    }
    const adapter = CODECS[provider.kind];
    const method = req.method ?? 'GET';
    const unrouted = (error: AigovError): void => track(refuseUnrouted(req, res, { provider, adapter, path }, error, deps));
    if (isWebSocketUpgrade(req.headers)) {
      res.setHeader('connection', 'close');
      return unrouted(new AigovError('AIGOV_E_WEBSOCKET_UNSUPPORTED', { path: path.slice(0, 200) }));
    }
    const subpath = slash === -1 ? '' : path.slice(slash);
    const route = adapter.route(method, subpath);
    if (!route.ok) {
      return unrouted(
        route.reason === 'method_not_allowed'
          ? new AigovError('AIGOV_E_METHOD_NOT_ALLOWED', { method, path: path.slice(0, 200) })
          : route.reason === 'bad_path'
            ? new AigovError('AIGOV_E_BAD_PATH', { reason: route.detail })
            : new AigovError('AIGOV_E_UNKNOWN_ENDPOINT', { method, path: path.slice(0, 200) }),
      );
    }
    if (!SAFE_QUERY.test(query)) return unrouted(new AigovError('AIGOV_E_BAD_PATH', { reason: 'the query string holds whitespace, control, non-ASCII characters or "#"' }));
    if (draining) {
      res.setHeader('connection', 'close');
      return sendProviderError(res, adapter, new AigovError('AIGOV_E_SHUTTING_DOWN'));
    }
    track(handleGovernedCall(req, res, { provider, adapter, route, query }, deps));
  };

  const track = (call: Promise<void>): void => {
    inflight.add(call);
    void call.finally(() => inflight.delete(call));
  };

  /** Refusals outside any provider mount: no provider shape to record them in, but one log line with the user. */
  const refuseOutside = (req: IncomingMessage, res: ServerResponse, path: string, error: AigovError): void => {
    sendPlainError(res, error);
    void subjectOf(req.headers.authorization).then((user) => {
      logger.warn({ user, method: req.method ?? 'GET', path: path.slice(0, 200), httpStatus: error.status, errorCode: error.code }, 'refused');
    });
  };

  /** Who a token names, for a log line; null without a good token. */
  const subjectOf = async (authorization: string | undefined): Promise<string | null> => {
    if (authorization === undefined) return null;
    const result = await services.verifier.verify(authorization).catch(() => null);
    return result?.ok ? result.principal.subject : null;
  };

  const shutdown = async (server: Server): Promise<void> => {
    draining = true;
    // Held requests answer "interrupted" (their approvals stay open for the retry); event streams end.
    services.approvals?.service.close();
    services.approvals?.api.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const grace = config.limits.shutdown_grace_ms;
    logger.info({ inflight: inflight.size, graceMs: grace }, 'shutting down: draining in-flight calls');
    const drained = Promise.allSettled([...inflight]).then(() => true);
    const timedOut = new Promise<false>((resolve) => setTimeout(() => resolve(false), grace).unref());
    if (!(await Promise.race([drained, timedOut]))) {
      logger.warn({ inflight: inflight.size }, 'grace period over: cutting the calls still open');
      server.closeAllConnections();
      await Promise.allSettled([...inflight]);
    }
    server.closeAllConnections();
    await closed;
    await services.agent.close().catch(() => undefined);
    try {
      await services.store.close();
    } catch (error) {
      logger.error({ err: errorSummary(error) }, 'recording store did not close cleanly');
    }
  };

  return {
    handle,
    shutdown,
    get inflight() {
      return inflight.size;
    },
  };
}

/**
 * What no answer may carry: every provider's key, and header values long enough to be
 * credentials (an organization id, a gateway token) — short ones would match ordinary words.
 */
function providerSecrets(providers: GatewayConfig['providers']): string[] {
  return providers.flatMap((p) => [...(p.apiKey === null ? [] : [p.apiKey]), ...Object.values(p.headers).filter((v) => v.length >= 16)]);
}

function gatewayUrl(config: GatewayConfig, req: IncomingMessage): string {
  if (config.listen.public_url) return config.listen.public_url.replace(/\/+$/, '');
  const scheme = config.listen.tls ? 'https' : 'http';
  const host = req.headers.host ?? `${config.listen.host}:${config.listen.port}`;
  return `${scheme}://${host}`;
}

async function readiness(store: RecordingStore, draining: boolean): Promise<{ status: number; body: unknown }> {
  if (draining) return { status: 503, body: { status: 'draining' } };
  try {
    const health = await store.health();
    return health.ok
      ? { status: 200, body: { status: 'ready', store: 'ok', write_errors: health.writeErrors } }
      : { status: 503, body: { status: 'not ready', store: health.detail ?? 'unavailable', write_errors: health.writeErrors } };
  } catch {
    return { status: 503, body: { status: 'not ready', store: 'unreachable' } };
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function sendProviderError(res: ServerResponse, adapter: ProviderCodec, error: AigovError): void {
  const body = adapter.renderError(toProviderError(error));
  res.writeHead(error.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Outside any provider mount there is no provider shape to follow: use OpenAI's, the most common. */
function sendPlainError(res: ServerResponse, error: AigovError): void {
  sendProviderError(res, openaiCodec, error);
}
