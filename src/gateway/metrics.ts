/** Prometheus metrics of the gateway (served at /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PgObserver, PgPoolCounts } from '../store/postgres/pg-connection.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Waits for a pooled connection and notification lags: sub-millisecond when all is well, seconds when not. */
const PG_WAIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Model names come from clients: cap the label set so a stream of made-up names cannot blow up memory. */
const MAX_MODEL_LABELS = 200;

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'aigov_requests_total', help: 'Governed requests by provider, model and HTTP status.', labelNames: ['provider', 'model', 'status'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'aigov_request_duration_seconds', help: 'Time from request arrival to the end of the answer.', labelNames: ['provider'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly timeToFirstToken = new Histogram({ name: 'aigov_time_to_first_token_seconds', help: 'Time from request arrival to the first streamed content sent to the client.', labelNames: ['provider'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly requestBytes = new Counter({ name: 'aigov_request_bytes_total', help: 'Request body bytes received from clients.', labelNames: ['provider'], registers: [this.registry] });
  readonly responseBytes = new Counter({ name: 'aigov_response_bytes_total', help: 'Response body bytes sent to clients.', labelNames: ['provider'], registers: [this.registry] });
  readonly storeErrors = new Counter({ name: 'aigov_store_errors_total', help: 'Recording store failures.', labelNames: ['operation'], registers: [this.registry] });
  readonly authFailures = new Counter({ name: 'aigov_auth_failures_total', help: 'Rejected access tokens by error code.', labelNames: ['code'], registers: [this.registry] });
  readonly upstreamBusy = new Counter({ name: 'aigov_upstream_busy_total', help: 'Calls refused at once because all of a provider\'s upstream slots (limits.upstream_max_connections) were taken.', labelNames: ['provider'], registers: [this.registry] });
  readonly upstreamLimits = new Counter({ name: 'aigov_upstream_limit_total', help: 'Answers cut at a limit (size, event size, event count, duration).', labelNames: ['provider', 'limit'], registers: [this.registry] });
  readonly spend = new Counter({ name: 'aigov_spend_usd_total', help: 'Cost of the calls answered with usage, in US dollars, by provider and model asked for (priced calls only: see aigov_unpriced_calls_total).', labelNames: ['provider', 'model'], registers: [this.registry] });
  readonly tokens = new Counter({ name: 'aigov_tokens_total', help: 'Tokens of the calls answered with usage, by provider, model asked for and billed kind (input: at the plain input rate; cache_read; cache_write; output, reasoning included).', labelNames: ['provider', 'model', 'kind'], registers: [this.registry] });
  readonly unpriced = new Counter({ name: 'aigov_unpriced_calls_total', help: 'Calls answered with usage whose cost is not known (the model has no price), by provider and model asked for.', labelNames: ['provider', 'model'], registers: [this.registry] });
  readonly budgetSpend = new Counter({ name: 'aigov_budget_spend_total', help: 'What calls were charged against each budget, in its unit (usd: US dollars; tokens; requests).', labelNames: ['budget', 'unit'], registers: [this.registry] });
  readonly budgetRefusals = new Counter({ name: 'aigov_budget_refusals_total', help: 'Requests a budget refused (block), held for approval (require_approval) or refused for a model without a price (unpriced).', labelNames: ['budget', 'action'], registers: [this.registry] });
  readonly budgetStoreErrors = new Counter({ name: 'aigov_budget_store_errors_total', help: 'Budget counter store failures (reserve: the request was refused; settle: retried).', labelNames: ['operation'], registers: [this.registry] });
  readonly budgetReserve = new Histogram({ name: 'aigov_budget_reserve_seconds', help: 'Time to reserve a request against its budgets (before forwarding).', buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registers: [this.registry] });
  readonly inflight = new Gauge({ name: 'aigov_inflight_requests', help: 'Requests being served.', registers: [this.registry] });
  // PostgreSQL (storage.driver postgres): filled through pgObserver().
  readonly pgPoolWait = new Histogram({ name: 'aigov_pg_pool_wait_seconds', help: 'Time a caller waited for a connection of a PostgreSQL pool (queued behind others, or connecting), by pool.', labelNames: ['pool'], buckets: PG_WAIT_BUCKETS, registers: [this.registry] });
  readonly pgPoolConnections = new Gauge({
    name: 'aigov_pg_pool_connections',
    help: 'Connections of a PostgreSQL pool at scrape time, by pool and state (open: all, idle: free); the writer, lock and listening connections are outside the pools.',
    labelNames: ['pool', 'state'],
    registers: [this.registry],
    collect: () => {
      for (const [name, sum] of this.#poolSums()) {
        this.pgPoolConnections.set({ pool: name, state: 'open' }, sum.open);
        this.pgPoolConnections.set({ pool: name, state: 'idle' }, sum.idle);
      }
    },
  });
  readonly pgPoolWaiting = new Gauge({
    name: 'aigov_pg_pool_waiting_clients',
    help: 'Callers queued for a connection of a PostgreSQL pool at scrape time, by pool.',
    labelNames: ['pool'],
    registers: [this.registry],
    collect: () => {
      for (const [name, sum] of this.#poolSums()) this.pgPoolWaiting.set({ pool: name }, sum.waiting);
    },
  });
  readonly pgNotifyLag = new Histogram({
    name: 'aigov_pg_notify_lag_seconds',
    help: 'Time from a change being written (stamped by the writing replica just before its commit) to its PostgreSQL NOTIFY reaching this replica, by channel; across hosts it includes their clock offset.',
    labelNames: ['channel'],
    buckets: PG_WAIT_BUCKETS,
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'aigov_webhook_deliveries_total',
    help: 'Approval webhook deliveries settled by this process: delivered (2xx), failed (given up), dropped (outbox full, outbox unreachable, receiver removed from the configuration).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  #webhookOutboxDepth: () => Promise<number> = () => Promise.resolve(0);
  readonly webhookOutboxDepth = new Gauge({
    name: 'aigov_webhook_outbox_depth',
    help: 'Approval webhook deliveries pending in the outbox, counted at the scrape (on PostgreSQL every replica reports the shared outbox).',
    registers: [this.registry],
    collect: async () => {
      this.webhookOutboxDepth.set(await this.#webhookOutboxDepth());
    },
  });
  readonly #models = new Set<string>();
  readonly #pools: { readonly name: string; readonly pool: PgPoolCounts }[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'aigov_' });
  }

  /** What the PostgreSQL stores report to (pg-connection.ts PgObserver). */
  pgObserver(): PgObserver {
    return {
      poolOpened: (name, pool) => {
        this.#pools.push({ name, pool });
      },
      poolWaited: (name, seconds) => this.pgPoolWait.observe({ pool: name }, seconds),
      notifyLag: (channel, seconds) => this.pgNotifyLag.observe({ channel }, seconds),
    };
  }

  /** The pools' counts now, by name (pools of one name summed). */
  #poolSums(): Map<string, { open: number; idle: number; waiting: number }> {
    const sums = new Map<string, { open: number; idle: number; waiting: number }>();
    for (const { name, pool } of this.#pools) {
      const sum = sums.get(name) ?? { open: 0, idle: 0, waiting: 0 };
      sum.open += pool.totalCount;
      sum.idle += pool.idleCount;
      sum.waiting += pool.waitingCount;
      sums.set(name, sum);
    }
    return sums;
  }

  /** Where the outbox depth gauge reads its value. */
  observeWebhookOutbox(depth: () => Promise<number>): void {
    this.#webhookOutboxDepth = depth;
  }

  modelLabel(model: string | null): string {
    if (model === null) return 'none';
    if (this.#models.has(model)) return model;
    if (this.#models.size >= MAX_MODEL_LABELS) return 'other';
    this.#models.add(model);
    return model;
  }
}
