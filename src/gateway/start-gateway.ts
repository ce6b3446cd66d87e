/**
 * Assembles a running gateway from a configuration: store, token verifier, upstream pool,
 * metrics, logger, HTTP server. `aigov server` is a thin layer over this; tests and benchmarks
 * use it directly.
 */
import type { Server } from 'node:http';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { createTokenVerifier, type TokenVerifier } from '../auth/verify-token.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { RecordingStore } from '../store/recording-store.ts';
import { openApprovalStore, openBudgetLedger, openRecordingStore } from '../store/open-store.ts';
import { BudgetService } from './budgets/budget-service.ts';
import { describeAmount } from '../core/budgets/charges.ts';
import { Pricing } from './pricing.ts';
import { AigovError } from '../core/errors.ts';
import type { ApprovalStore } from '../store/approval-store.ts';
import { redactDatabaseUrl } from '../config/database-url.ts';
import { startAuditSchedule, type AuditSchedule } from '../store/sqlite/audit-schedule.ts';
import { openPgAuditMaintenance } from '../store/open-audit-maintenance.ts';
import { ApprovalService } from './approvals/approval-service.ts';
import { createWebhookNotifier, policyReceivers, type WebhookNotifier } from './approvals/webhook-notifier.ts';
import { createApprovalsApi, type ApprovalsApi } from './approvals/approvals-api.ts';
import type { PipelineHooks } from './hooks.ts';
import { openPolicyFile, type WatchedPolicy } from './policy-file.ts';
import { createPolicyHooks } from './policy-hooks.ts';
import { PolicyOffload } from './policy-offload.ts';
import { openSessionVaults, type SessionVaults } from './session-vaults.ts';
import { humanLogDestination } from './human-log.ts';
import { createServer, listen } from './listen.ts';
import { answerWhileStarting, installRequestHandler } from './while-starting.ts';
import type { TightenedPath } from '../config/private-files.ts';
import { GatewayMetrics } from './metrics.ts';
import { errorSummary } from './pipeline.ts';
import { createGatewayHandler, type GatewayHandler, type MountedHandler } from './server.ts';
import { createSessionsApi } from './sessions-api.ts';
import { createUsageApi } from './usage-api.ts';
import { RawCopySealer } from '../store/raw-copy-sealer.ts';
import { createUpstreamAgent } from './upstream.ts';

export interface RunningGateway {
  readonly url: string;
  readonly server: Server;
  readonly config: GatewayConfig;
  readonly store: RecordingStore;
  readonly handler: GatewayHandler;
  readonly logger: Logger;
  /** The policy's budgets (null without a policy file). */
  readonly budgets: BudgetService | null;
  /** Graceful stop: drain, then close the store. Idempotent. */
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  readonly version: string;
  readonly hooks?: PipelineHooks;
  readonly mounts?: readonly MountedHandler[];
  readonly dev?: boolean;
  readonly logger?: Logger;
  /** Use this store instead of opening the configured one (tests). */
  readonly store?: RecordingStore;
  /** How often a stream held for approval gets an SSE comment (default 15 s). */
  readonly approvalKeepAliveMs?: number;
  /** Every group the IdP's users have, where the gateway knows them (the dev IdP): the policy's approver groups are checked against it. */
  readonly knownGroups?: readonly string[];
  /** Called before the gateway closes its own parts (e.g. the dev IdP and dev model). */
  readonly onClose?: () => Promise<void>;
  /** The clock calls start by and budget windows are read with (tests); default Date.now. */
  readonly now?: () => number;
}

/** Logs (once per path: a tightened path is private afterwards) that a file of the gateway was made private: path and old mode, never contents. */
export function tightenedLogger(logger: Logger): (event: TightenedPath) => void {
  return (event) => logger.warn({ path: event.path, oldMode: event.oldMode, mode: event.mode }, 'a file of the gateway was accessible to other users; made it private');
}

/** JSON lines on stdout; `human`: one readable line per entry instead (a person at a terminal). */
export function createLogger(level: GatewayConfig['logging']['level'], options: { human?: boolean } = {}): Logger {
  const settings = {
    level,
    base: { service: 'aigov-gateway' },
    // Belt and braces: even if a header object slips into a log call, these never print.
    redact: { paths: ['authorization', '*.authorization', 'headers.authorization', '*["x-api-key"]', 'apiKey', '*.apiKey'], censor: '[redacted]' },
  };
  return options.human ? pino(settings, humanLogDestination(process.stdout)) : pino(settings);
}

/**
 * Binds the server first so the URL is known; `startGateway` builds the rest. Until it installs
 * the gateway's handler, every request is answered at once with 503 "starting" (while-starting.ts).
 */
export async function bindServer(config: Pick<GatewayConfig, 'listen'>): Promise<{ server: Server; url: string }> {
  const server = createServer(config.listen.tls);
  answerWhileStarting(server);
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return;
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  const url = await listen(server, config.listen);
  return { server, url };
}

export async function startGateway(config: GatewayConfig, options: StartGatewayOptions, bound?: { server: Server; url: string }): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger(config.logging.level);
  for (const warning of config.warnings) logger.warn(warning);
  const metrics = new GatewayMetrics();
  const pgObserver = metrics.pgObserver();
  const onTightened = tightenedLogger(logger);
  const store =
    options.store ??
    (await openRecordingStore(config.storage, process.cwd(), {
      onWriteError: (error) => {
        metrics.storeErrors.inc({ operation: 'write_behind' });
        logger.error({ err: errorSummary(error) }, 'recording store write-behind failed');
      },
      onSettled: (count) => {
        logger.warn({ settled: count, errorCode: 'AIGOV_E_GATEWAY_STOPPED' }, 'recording store: calls left pending by a gateway that stopped were marked aborted');
      },
      onTightened,
      pgObserver,
    }));
  if (config.storage.driver === 'postgres') {
    logger.info({ database: redactDatabaseUrl(config.storage.url) }, 'recordings, approvals and pseudonym vaults are kept in PostgreSQL');
  }
  let verifier: TokenVerifier;
  let server: Server;
  let url: string;
  try {
    verifier = createTokenVerifier({
      issuer: config.identity.issuer,
      audience: config.identity.audience,
      algorithms: config.identity.algorithms,
      clockSkewSeconds: config.identity.clock_skew_seconds,
      requiredScope: config.identity.required_scope,
      groupsClaim: config.identity.groups_claim,
      emailClaim: config.identity.email_claim,
      jwksRefetchIntervalSeconds: config.identity.jwks_refetch_interval_seconds,
    });
    ({ server, url } = bound ?? (await bindServer(config)));
  } catch (error) {
    await store.close();
    throw error;
  }
  let policy: WatchedPolicy | null = null;
  let vaults: SessionVaults | null = null;
  try {
    if (!options.hooks && config.policy) policy = openPolicyFile(config.policy.file, { reload: config.policy.reload, logger, knownGroups: options.knownGroups });
    if (policy) vaults = await openSessionVaults(config, logger, pgObserver);
  } catch (error) {
    policy?.close();
    server.close();
    await store.close();
    throw error;
  }
  let approvals: { service: ApprovalService; api: ApprovalsApi; store: ApprovalStore; notifier: WebhookNotifier } | null = null;
  let approvalStore: ApprovalStore | null = null;
  let notifier: WebhookNotifier | null = null;
  try {
    approvalStore = await openApprovalStore(config.storage, process.cwd(), { onTightened, pgObserver, onError: (message) => logger.warn({ errorCode: 'AIGOV_E_STORE_UNAVAILABLE' }, message) });
    // Webhook notices go to the outbox beside the approvals, in the transaction of each change; every replica posts.
    const webhooks = createWebhookNotifier({
      webhooks: config.approvals.webhooks,
      logger,
      version: options.version,
      outbox: approvalStore.outbox,
      rules: policyReceivers(() => policy?.current().document ?? null),
      onOutcome: (outcome, count) => metrics.webhookDeliveries.inc({ outcome }, count),
      onStoreError: () => metrics.storeErrors.inc({ operation: 'webhook_outbox' }),
    });
    notifier = webhooks;
    metrics.observeWebhookOutbox(() => webhooks.depth());
    const service = await ApprovalService.open({ store: approvalStore, logger, announcer: webhooks.announcer(url) });
    approvals = { service, notifier: webhooks, store: approvalStore, api: createApprovalsApi({ service, verifier, logger }) };
  } catch (error) {
    await notifier?.close();
    policy?.close();
    await vaults?.close();
    await approvalStore?.close().catch(() => {});
    server.close();
    await store.close();
    const location = config.storage.driver === 'postgres' ? redactDatabaseUrl(config.storage.url) : config.storage.path;
    throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `approvals table: ${errorSummary(error)}` }, { cause: error });
  }
  // The audit trail's checkpoints and retention purge (the chain itself is written by the store).
  let audit: AuditSchedule | null = null;
  {
    const storage = config.storage;
    try {
      audit = startAuditSchedule({
        ...(storage.driver === 'sqlite'
          ? { file: path.resolve(process.cwd(), storage.path) }
          : // On PostgreSQL one replica at a time signs, at most about once per interval across replicas.
            { open: (key, now) => openPgAuditMaintenance(storage, key, now, 0.9 * config.audit.checkpointIntervalMs) }),
        signingKey: config.audit.signingKey,
        checkpointIntervalMs: config.audit.checkpointIntervalMs,
        retentionDays: config.audit.retentionDays,
        log: logger,
      });
    } catch (error) {
      policy?.close();
      await vaults?.close();
      await approvals.store.close();
      server.close();
      await store.close();
      const location = storage.driver === 'sqlite' ? storage.path : redactDatabaseUrl(storage.url);
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location, reason: `audit trail: ${errorSummary(error)}` }, { cause: error });
    }
  }
  // Budgets: counted where budgets.counters says, seeded from the record before the first request.
  let budgets: BudgetService | null = null;
  if (policy) {
    try {
      const ledger = await openBudgetLedger(config.budgets, config.storage, { onError: (message) => logger.warn({ errorCode: 'AIGOV_E_BUDGET_STORE_UNAVAILABLE' }, message) });
      const watched = policy;
      const notifier = approvals.notifier;
      budgets = new BudgetService({
        ledger,
        store,
        pricing: new Pricing(config.pricing),
        policy: watched,
        logger,
        metrics,
        now: options.now,
        onWarning: (w) => {
          const hooks = watched.current().budgets.find((b) => b.id === w.budget)?.approval?.notify ?? [];
          notifier.notifyBudget(
            {
              type: 'budget.warning',
              gatewayUrl: url,
              budget: {
                id: w.budget,
                unit: w.unit,
                limit: w.limit,
                limit_text: describeAmount(w.unit, w.limit),
                used: w.used,
                used_text: describeAmount(w.unit, w.used),
                fraction: w.fraction,
                scope: w.scope,
                user: { sub: w.user.subject, email: w.user.email },
                reset_at: new Date(w.resetAt).toISOString(),
                call_id: w.callId,
              },
            },
            hooks,
          );
        },
      });
      await budgets.start().catch((error: unknown) => logger.error({ counters: ledger.kind, err: errorSummary(error) }, 'could not count the budgets from the record yet; budgeted requests are refused until it works'));
    } catch (error) {
      policy.close();
      await vaults?.close();
      await approvals.store.close();
      await audit?.close();
      server.close();
      await store.close();
      throw new AigovError('AIGOV_E_STORE_OPEN_FAILED', { location: `budgets.counters ${config.budgets.counters}`, reason: errorSummary(error) }, { cause: error });
    }
  }
  // Large texts are scanned for the policy on worker threads, never on the event loop.
  const offload = policy ? new PolicyOffload({ deadlineMs: config.limits.policy_scan_deadline_ms, workers: config.limits.policy_workers }) : null;
  const agent = createUpstreamAgent(config.limits);
  const rawCopy = config.audit.rawCopyKey === null ? null : new RawCopySealer(Buffer.from(config.audit.rawCopyKey, 'hex'));
  if (rawCopy) logger.info({ keyId: rawCopy.keyId }, 'raw request copies are kept sealed with the calls (audit.raw_copy; auditors only)');
  const handler = createGatewayHandler({
    config,
    store,
    verifier,
    agent,
    metrics,
    logger,
    version: options.version,
    hooks: options.hooks ?? (policy ? createPolicyHooks(policy, vaults ?? undefined, offload) : undefined),
    mounts: [
      ...(options.mounts ?? []),
      createSessionsApi({ store, verifier, logger, auditorGroups: config.audit.auditorGroups, rawCopy }),
      createUsageApi({ store, verifier, logger, auditorGroups: config.audit.auditorGroups }),
    ],
    rawCopy,
    dev: options.dev,
    approvals: { service: approvals.service, api: approvals.api, keepAliveMs: options.approvalKeepAliveMs ?? config.approvals.keepAliveMs },
    budgets,
    now: options.now,
  });
  // A client must send its request within these (a slow-loris body holds no connection forever).
  server.requestTimeout = config.limits.client_request_timeout_ms;
  server.headersTimeout = Math.min(config.limits.client_headers_timeout_ms, config.limits.client_request_timeout_ms);
  installRequestHandler(server, handler.handle);
  // Learn the IdP's keys now so the first request does not wait; an IdP that is down is not fatal.
  verifier.warmUp().catch((error: unknown) => logger.warn({ issuer: config.identity.issuer, err: errorSummary(error) }, 'identity provider not reachable yet; tokens will be rejected until it is'));
  let closing: Promise<void> | null = null;
  return {
    url,
    server,
    config,
    store,
    handler,
    logger,
    budgets,
    close() {
      closing ??= (async () => {
        policy?.close();
        await handler.shutdown(server);
        await budgets?.close(); // after the calls ended: their settles are sent
        await offload?.close();
        await audit?.close(); // after the store flushed: the shutdown checkpoint signs everything recorded
        await vaults?.close();
        await approvals?.notifier.close();
        await approvals?.store.close();
        await options.onClose?.();
      })();
      return closing;
    },
  };
}
