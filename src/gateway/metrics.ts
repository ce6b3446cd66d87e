/** Prometheus metrics of the gateway (served at /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
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
  readonly budgetSpend = new Counter({ name: 'aigov_budget_spend_total', help: 'What calls were charged against each budget, in its unit (usd: US dollars; tokens; requests).', labelNames: ['budget', 'unit'], registers: [this.registry] });
  readonly budgetRefusals = new Counter({ name: 'aigov_budget_refusals_total', help: 'Requests a budget refused (block), held for approval (require_approval) or refused for a model without a price (unpriced).', labelNames: ['budget', 'action'], registers: [this.registry] });
  readonly budgetStoreErrors = new Counter({ name: 'aigov_budget_store_errors_total', help: 'Budget counter store failures (reserve: the request was refused; settle: retried).', labelNames: ['operation'], registers: [this.registry] });
  readonly budgetReserve = new Histogram({ name: 'aigov_budget_reserve_seconds', help: 'Time to reserve a request against its budgets (before forwarding).', buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registers: [this.registry] });
  readonly inflight = new Gauge({ name: 'aigov_inflight_requests', help: 'Requests being served.', registers: [this.registry] });
  readonly #models = new Set<string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'aigov_' });
  }

  modelLabel(model: string | null): string {
    if (model === null) return 'none';
    if (this.#models.has(model)) return model;
    if (this.#models.size >= MAX_MODEL_LABELS) return 'other';
    this.#models.add(model);
    return model;
  }
}
