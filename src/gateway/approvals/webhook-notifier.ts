/**
 * Approval webhooks: a signed JSON notice (with a Slack-compatible `text`) to every configured
 * receiver when an approval is created, decided or expires. docs/webhooks.md is the receiver's
 * side of this file.
 *
 * - A notice becomes one outbox row per receiver (src/store/webhook-outbox.ts): its delivery id
 *   and body are fixed then, so every attempt — on any replica, before or after a restart — sends
 *   the same bytes and the same `id`: receivers dedupe on it. In the gateway the rows are written
 *   in the transaction of the approval change ({@link WebhookNotifier.announcer}); `notify()`
 *   stores them on their own. Without an outbox store they wait in memory (tests, tools).
 * - The rows name the receiver by the SHA-256 of its URL; the URL and the secret are looked up in
 *   the configuration (global `approvals.webhooks`, the policy's `approval.notify`) when posting.
 * - webhook-worker.ts posts them: each attempt signed afresh (`x-aigov-timestamp: <unix seconds>`,
 *   `x-aigov-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`), retried with
 *   backoff (src/core/approvals/webhook-retry.ts), one process per row at a time.
 * - `notify()` never throws and never waits. The outbox is bounded: beyond `maxPending` pending
 *   deliveries a notice's rows are dropped (counted, logged).
 * - Log lines name the receiver's host, the status and the delivery id; never the secret, the
 *   URL's path or query (a Slack URL's path is its credential), the preview or a token.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Agent, type Dispatcher } from 'undici';
import type { Webhook, WebhookEvent } from '../../config/webhook-schema.ts';
import { DEFAULT_RETRY_POLICY } from '../../core/approvals/webhook-retry.ts';
import { approvalFor } from '../../core/policy/index.ts';
import type { PolicyDocument } from '../../core/policy/types.ts';
import type { ApprovalPerson, ApprovalView } from '../../protocol/approvals.ts';
import { MemoryWebhookOutbox } from '../../store/memory-webhook-outbox.ts';
import { receiverKey, type ClaimedDelivery, type OutboxBatch, type OutboxRow, type WebhookOutboxStore } from '../../store/webhook-outbox.ts';
import { toApprovalView, type ApprovalAnnouncer, type ApprovalChange } from './approval-service.ts';
import { startWebhookWorker, type DeliveryCounts, type DeliveryOutcome } from './webhook-worker.ts';

export { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './webhook-worker.ts';

export type ApprovalNoticeType = 'approval.created' | 'approval.decided' | 'approval.expired';

export interface ApprovalNotice {
  readonly type: ApprovalNoticeType;
  readonly approval: ApprovalView;
  /** The gateway's public URL (only its origin and path are sent). */
  readonly gatewayUrl: string;
}

/** A budget crossed one of its warning thresholds (the policy's `warn_at`): once per counter, window and threshold. */
export interface BudgetWarningNotice {
  readonly type: 'budget.warning';
  readonly budget: WebhookBudget;
  /** The gateway's public URL (only its origin and path are sent). */
  readonly gatewayUrl: string;
}

/** A budget warning as a receiver sees it (amounts in the budget's unit: nano-dollars for usd; `*_text` as people read them). */
export interface WebhookBudget {
  readonly id: string;
  readonly unit: 'usd' | 'tokens' | 'requests';
  readonly limit: number;
  readonly limit_text: string;
  /** Spent, plus reserved by calls still running, once the request that crossed the threshold was reserved. */
  readonly used: number;
  readonly used_text: string;
  readonly fraction: number;
  /** Whose counter: `all`, `user <subject>`, `group <name>`. */
  readonly scope: string;
  /** The user whose request crossed the threshold. */
  readonly user: { readonly sub: string; readonly email: string | null };
  /** ISO 8601: when what is counted starts to fall away (a calendar window's end). */
  readonly reset_at: string;
  readonly call_id: string;
}

/** The JSON body of a budget warning's delivery. */
export interface BudgetWebhookPayload {
  readonly type: 'budget.warning';
  readonly id: string;
  readonly created_at: string;
  readonly gateway_url: string;
  readonly budget: WebhookBudget;
  readonly text: string;
}

/** The approval as a receiver sees it: no `can_decide` (it is per caller), `preview` only when the webhook asks. */
export type WebhookApproval = Omit<ApprovalView, 'can_decide' | 'preview'> & { preview?: string };

/** The JSON body of a delivery. */
export interface WebhookPayload {
  readonly type: ApprovalNoticeType;
  /** Unique per notice and receiver, the same on every retry: dedupe on it. */
  readonly id: string;
  /** ISO 8601: when the notice was raised (not when this attempt was sent). */
  readonly created_at: string;
  readonly gateway_url: string;
  readonly approval: WebhookApproval;
  /** Slack mrkdwn, for Slack/Mattermost-compatible incoming webhooks. */
  readonly text: string;
}

/** The receivers rules add (a rule's `approval.notify`, else the policy's), as the policy in force names them. */
export interface RuleReceivers {
  /** The receivers of approvals under this rule, besides the global ones. */
  forRule(ruleId: string): readonly Webhook[];
  /** Every receiver any rule names. */
  all(): readonly Webhook[];
}

export interface WebhookNotifierOptions {
  /** Global receivers (approvals.webhooks), resolved. */
  readonly webhooks: readonly Webhook[];
  readonly logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /**
   * Where deliveries wait: the approval store's outbox (they survive a restart; on PostgreSQL each
   * is posted by one replica). Default: this process's memory, lost at exit.
   */
  readonly outbox?: WebhookOutboxStore;
  /** The rules' own receivers, looked up when a notice is raised and when a stored delivery is posted. */
  readonly rules?: RuleReceivers;
  /** Connection pool for deliveries; default a private undici Agent, closed by close(). */
  readonly dispatcher?: Dispatcher;
  /** Epoch milliseconds; default Date.now. */
  readonly now?: () => number;
  /** In [0, 1), for jitter; default Math.random. */
  readonly random?: () => number;
  /** For the user-agent; default the package version. */
  readonly version?: string;
  /** Attempts per delivery, first included; default 5. */
  readonly maxAttempts?: number;
  /** First retry delay; doubles each retry; default 500 ms. */
  readonly backoffBaseMs?: number;
  /** Longest wait a Retry-After header can impose; default 30 s. */
  readonly maxRetryAfterMs?: number;
  /** Deliveries posting at once (per process); default 4. */
  readonly concurrency?: number;
  /** Deliveries pending in the outbox (all processes'); beyond this a notice's rows are dropped; default 1000. */
  readonly maxPending?: number;
  /** How long close() lets in-flight deliveries finish before cutting them; default 2 s. */
  readonly closeTimeoutMs?: number;
  /**
   * How long a claimed delivery is this process's (an attempt is cut at half of it); past it,
   * another process takes the row — this one is presumed dead. Default 2 min.
   */
  readonly leaseMs?: number;
  /** The outbox is re-read at least this often (rows stored by a process that could not signal); default 15 s. */
  readonly pollMs?: number;
  /** How often the outbox is swept (receivers gone, stranded rows, retention); default 5 min. */
  readonly sweepIntervalMs?: number;
  /** Delivered and failed rows are kept this long (for inspection), then purged; default 7 days. */
  readonly retentionMs?: number;
  /**
   * A pending delivery whose receiver no process here knows is dropped once it is this old (a
   * replica of a newer configuration may know it during a rollout); default 10 min.
   */
  readonly unknownReceiverGraceMs?: number;
  /** Told of each final outcome (metrics). */
  readonly onOutcome?: (outcome: DeliveryOutcome, count: number) => void;
  /** Told when the outbox store fails (metrics); the failure is logged too. */
  readonly onStoreError?: () => void;
}

export interface WebhookNotifierStats {
  /** Deliveries accepted by a receiver (2xx), by this process. */
  readonly delivered: number;
  /** Deliveries given up by this process: a final status, attempts exhausted, or (in memory) shutdown. */
  readonly failed: number;
  /** Deliveries never queued (outbox full, notifier closed, store failing, unbuildable notice) or dropped (receiver removed). */
  readonly dropped: number;
  /** Attempts after the first, by this process. */
  readonly retries: number;
  /** Deliveries pending in the outbox (on PostgreSQL, every replica's), as last counted. */
  readonly pending: number;
}

export interface WebhookNotifier {
  /** Fire and forget: never throws, never waits. `extra` adds the rule's own receivers (default: `rules`). */
  notify(event: ApprovalNotice, extra?: readonly Webhook[]): void;
  /** For ApprovalService: the rows announcing a change, stored in its transaction, and a wake-up after. */
  announcer(gatewayUrl: string): ApprovalAnnouncer;
  /** Fire and forget, like notify: a budget warning to the receivers that listen to `budget_warning`. */
  notifyBudget(notice: BudgetWarningNotice, extra?: readonly Webhook[]): void;
  /** Stops claiming; lets posts in flight finish up to the deadline. Stored deliveries stay for the next start; in-memory ones are given up. */
  close(): Promise<void>;
  stats(): WebhookNotifierStats;
  /** The outbox depth counted now (the metrics scrape); the last count when the store does not answer. */
  depth(): Promise<number>;
}

const EVENT_OF: Record<ApprovalNoticeType, WebhookEvent> = {
  'approval.created': 'created',
  'approval.decided': 'decided',
  'approval.expired': 'expired',
};

/** Receivers handed to notify() are remembered per rule, up to this many in all (they come from the configuration). */
const MAX_REMEMBERED = 1000;

export function createWebhookNotifier(options: WebhookNotifierOptions): WebhookNotifier {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const maxPending = options.maxPending ?? 1000;
  const policy = {
    maxAttempts: Math.max(1, options.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts),
    backoffBaseMs: options.backoffBaseMs ?? DEFAULT_RETRY_POLICY.backoffBaseMs,
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_RETRY_POLICY.maxRetryAfterMs,
  };
  const ownAgent = options.dispatcher === undefined ? new Agent({ connect: { timeout: 10_000 }, keepAliveTimeout: 10_000, connections: 8 }) : null;
  const dispatcher = options.dispatcher ?? (ownAgent as Agent);
  const globalHooks = [...options.webhooks];
  const memory = options.outbox === undefined ? new MemoryWebhookOutbox(now) : null;
  const store: WebhookOutboxStore = options.outbox ?? (memory as MemoryWebhookOutbox);
  const counts: DeliveryCounts = { delivered: 0, failed: 0, dropped: 0, retries: 0, pending: 0 };
  const onOutcome = (outcome: DeliveryOutcome, count: number): void => {
    try {
      options.onOutcome?.(outcome, count);
    } catch {
      // metrics must not break deliveries
    }
  };
  const onStoreError = (): void => {
    try {
      options.onStoreError?.();
    } catch {
      // idem
    }
  };
  /** Receivers handed to notify() explicitly, by rule: a stored row of theirs can still be posted by this process. */
  const remembered = new Map<string, Map<string, Webhook>>();
  let rememberedCount = 0;
  const keys = new Map<string, string>();
  const keyOf = (url: string): string => {
    let key = keys.get(url);
    if (key === undefined) {
      if (keys.size >= 10_000) keys.clear();
      key = receiverKey(url);
      keys.set(url, key);
    }
    return key;
  };
  let closed = false;
  const storing = new Set<Promise<void>>();

  function remember(ruleId: string, hooks: readonly Webhook[]): void {
    if (hooks.length === 0) return;
    if (rememberedCount + hooks.length > MAX_REMEMBERED) {
      remembered.clear();
      rememberedCount = 0;
    }
    const byKey = remembered.get(ruleId) ?? new Map<string, Webhook>();
    for (const hook of hooks) {
      if (!byKey.has(keyOf(hook.url))) rememberedCount += 1;
      byKey.set(keyOf(hook.url), hook);
    }
    remembered.set(ruleId, byKey);
  }

  function knownHooks(): Webhook[] {
    const all = [...globalHooks, ...(options.rules?.all() ?? [])];
    for (const byKey of remembered.values()) all.push(...byKey.values());
    return all;
  }

  /** The receiver a stored row names, as configured now: the rule's own first, then the global ones, then any. */
  function resolve(d: ClaimedDelivery): Webhook | null {
    const match = (hooks: Iterable<Webhook>): Webhook | undefined => {
      for (const hook of hooks) if (keyOf(hook.url) === d.receiver) return hook;
      return undefined;
    };
    return match(options.rules?.forRule(d.ruleId) ?? []) ?? match(remembered.get(d.ruleId)?.values() ?? []) ?? match(globalHooks) ?? match(knownHooks()) ?? null;
  }

  const worker = startWebhookWorker({
    store,
    logger,
    policy,
    dispatcher,
    userAgent: `aigov-webhook/${options.version ?? packageVersion()}`,
    now,
    random,
    receivers: () => [...new Set(knownHooks().map((h) => keyOf(h.url)))],
    resolve,
    sign: (secret, timestamp, body) => signWebhookBody(secret, timestamp, body),
    counts,
    onOutcome,
    onStoreError,
    concurrency: Math.max(1, options.concurrency ?? 4),
    leaseMs: Math.max(100, options.leaseMs ?? 120_000),
    pollMs: Math.max(10, options.pollMs ?? 15_000),
    sweepIntervalMs: Math.max(10, options.sweepIntervalMs ?? 5 * 60_000),
    retentionMs: Math.max(0, options.retentionMs ?? 7 * 24 * 3_600_000),
    unknownReceiverGraceMs: Math.max(0, options.unknownReceiverGraceMs ?? 10 * 60_000),
    closeTimeoutMs: options.closeTimeoutMs ?? 2000,
  });

  /** The rows of a notice, one per receiver listening to its event; null when nobody listens. */
  function batchOf(event: ApprovalNotice, extra: readonly Webhook[] | undefined): OutboxBatch | null {
    const ruleHooks = extra ?? options.rules?.forRule(event.approval.rule.id) ?? [];
    if (extra !== undefined) remember(event.approval.rule.id, extra);
    const hooks = receiversFor(EVENT_OF[event.type], globalHooks, ruleHooks);
    if (hooks.length === 0) return null;
    const createdAt = now();
    const created = new Date(createdAt).toISOString();
    const text = approvalText(event, createdAt);
    const gatewayUrl = publicUrl(event.gatewayUrl);
    const rows: OutboxRow[] = hooks.map((webhook) => {
      const payload: WebhookPayload = {
        type: event.type,
        id: `whd_${randomUUID().replaceAll('-', '')}`,
        created_at: created,
        gateway_url: gatewayUrl,
        approval: webhookApproval(event.approval, webhook.include_preview),
        text,
      };
      return {
        id: payload.id,
        approvalId: event.approval.id,
        ruleId: event.approval.rule.id,
        type: event.type,
        receiver: keyOf(webhook.url),
        host: hostOf(webhook.url),
        body: JSON.stringify(payload),
        createdAt,
      };
    });
    return { rows, maxPending };
  }

  /** After rows were stored: count (and log) those beyond the cap, and go post the others. */
  function stored(batch: OutboxBatch, kept: number): void {
    const dropped = batch.rows.slice(Math.max(0, kept));
    counts.pending += Math.max(0, kept);
    if (dropped.length > 0) {
      counts.dropped += dropped.length;
      onOutcome('dropped', dropped.length);
      for (const row of dropped) {
        logger.warn({ webhook: row.host, approval: row.approvalId, type: row.type, maxPending }, 'approval webhook notice dropped: too many deliveries pending');
      }
    }
    if (kept > 0) worker.wake();
  }

  function dropClosed(event: ApprovalNotice, extra: readonly Webhook[] | undefined): void {
    const receivers = receiversFor(EVENT_OF[event.type], globalHooks, extra ?? options.rules?.forRule(event.approval.rule.id) ?? []).length;
    if (receivers === 0) return;
    counts.dropped += receivers;
    onOutcome('dropped', receivers);
    logger.warn({ approval: event.approval.id, type: event.type, receivers }, 'approval webhook notice dropped: the notifier is closed');
  }

  function notify(event: ApprovalNotice, extra?: readonly Webhook[]): void {
    try {
      if (closed) {
        dropClosed(event, extra);
        return;
      }
      const batch = batchOf(event, extra);
      if (batch === null) return;
      const task = store.enqueue(batch).then(
        (kept) => stored(batch, kept),
        (error: unknown) => {
          counts.dropped += batch.rows.length;
          onOutcome('dropped', batch.rows.length);
          onStoreError();
          logger.warn({ approval: event.approval.id, type: event.type, receivers: batch.rows.length, err: errorText(error) }, 'approval webhook notice dropped: the outbox could not store it');
        },
      );
      storing.add(task);
      void task.finally(() => storing.delete(task));
    } catch (error) {
      counts.dropped += 1;
      onOutcome('dropped', 1);
      logger.warn({ type: (event as Partial<ApprovalNotice> | undefined)?.type, err: errorText(error) }, 'approval webhook notice could not be built');
    }
  }

  function announcer(gatewayUrl: string): ApprovalAnnouncer {
    const nobody = { subject: '', email: null, groups: [] };
    return {
      rows(change: ApprovalChange): OutboxBatch | null {
        const type = noticeType(change.type);
        if (type === null) return null;
        const event: ApprovalNotice = { type, approval: toApprovalView(change.approval, nobody, now()), gatewayUrl };
        // Stored rows outlive this process: once closed, a durable outbox still takes them (the next start posts them).
        if (closed && !store.durable) {
          dropClosed(event, undefined);
          return null;
        }
        return batchOf(event, undefined);
      },
      written: stored,
    };
  }

  /** A budget warning: one outbox row per receiver listening to `budget_warning`, delivered as approval notices are. */
  function notifyBudget(notice: BudgetWarningNotice, extra?: readonly Webhook[]): void {
    try {
      const hooks = receiversFor('budget_warning', globalHooks, extra ?? []);
      if (hooks.length === 0) return;
      if (closed) {
        counts.dropped += hooks.length;
        onOutcome('dropped', hooks.length);
        logger.warn({ budget: notice.budget.id, type: notice.type, receivers: hooks.length }, 'budget webhook notice dropped: the notifier is closed');
        return;
      }
      const createdAt = now();
      const created = new Date(createdAt).toISOString();
      const text = budgetText(notice.budget);
      const rows: OutboxRow[] = hooks.map((webhook) => {
        const payload: BudgetWebhookPayload = { type: notice.type, id: `whd_${randomUUID().replaceAll('-', '')}`, created_at: created, gateway_url: publicUrl(notice.gatewayUrl), budget: notice.budget, text };
        return { id: payload.id, approvalId: '', ruleId: '', type: notice.type, receiver: keyOf(webhook.url), host: hostOf(webhook.url), body: JSON.stringify(payload), createdAt };
      });
      if (extra !== undefined) remember('', extra);
      const batch: OutboxBatch = { rows, maxPending };
      const task = store.enqueue(batch).then(
        (kept) => stored(batch, kept),
        (error: unknown) => {
          counts.dropped += rows.length;
          onOutcome('dropped', rows.length);
          onStoreError();
          logger.warn({ budget: notice.budget.id, type: notice.type, receivers: rows.length, err: errorText(error) }, 'budget webhook notice dropped: the outbox could not store it');
        },
      );
      storing.add(task);
      void task.finally(() => storing.delete(task));
    } catch (error) {
      counts.dropped += 1;
      onOutcome('dropped', 1);
      logger.warn({ type: 'budget.warning', err: errorText(error) }, 'budget webhook notice could not be built');
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await Promise.allSettled([...storing]);
    await worker.close();
    if (memory !== null) {
      // Nothing in memory survives the process: what still waits is given up.
      for (const row of memory.abandon()) {
        counts.failed += 1;
        onOutcome('failed', 1);
        logger.warn({ webhook: row.host, delivery: row.id, type: row.type }, 'approval webhook delivery given up (shutting down)');
      }
      counts.pending = 0;
    } else {
      try {
        counts.pending = (await store.status([], policy.maxAttempts)).pending;
      } catch {
        // the store is going away too: the last count stands
      }
    }
    if (ownAgent) await ownAgent.close().catch(() => ownAgent.destroy());
  }

  return {
    notify,
    announcer,
    notifyBudget,
    close,
    stats: () => ({ ...counts }),
    async depth() {
      if (closed) return counts.pending;
      try {
        counts.pending = (await store.status([], policy.maxAttempts)).pending;
      } catch {
        // the worker reports a failing store; the metric keeps the last count
      }
      return counts.pending;
    },
  };
}

/**
 * The rules' receivers in the policy `current()` returns (null: no policy): a rule's own
 * `approval.notify`, else the policy's default approval's.
 */
export function policyReceivers(current: () => PolicyDocument | null): RuleReceivers {
  const everyOne = new WeakMap<PolicyDocument, readonly Webhook[]>();
  return {
    forRule(ruleId) {
      const document = current();
      if (document === null) return [];
      return approvalFor(document, ruleId)?.notify ?? document.approval?.notify ?? [];
    },
    all() {
      const document = current();
      if (document === null) return [];
      let hooks = everyOne.get(document);
      if (hooks === undefined) {
        const specs = [document.approval, document.uninspectable.approval, ...document.rules.map((r) => r.approval)];
        hooks = specs.flatMap((spec) => spec?.notify ?? []);
        everyOne.set(document, hooks);
      }
      return hooks;
    },
  };
}

/** The notice a change of the approval service makes; null: none (a request joining an approval). */
function noticeType(type: ApprovalChange['type']): ApprovalNoticeType | null {
  switch (type) {
    case 'created':
      return 'approval.created';
    case 'expired':
      return 'approval.expired';
    case 'voted':
    case 'decided':
      return 'approval.decided';
    case 'joined':
      return null;
  }
}

/**
 * The `x-aigov-signature` value for a body: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`
 * keyed with the webhook secret.
 */
export function signWebhookBody(secret: string, timestamp: string, body: string | Uint8Array): string {
  return `v1=${hmacHex(secret, timestamp, body)}`;
}

export interface VerifyOptions {
  /** Largest accepted age (or clock skew ahead) of the timestamp, in seconds; default 300. */
  readonly toleranceSec?: number;
  /** Epoch milliseconds; default Date.now. */
  readonly now?: () => number;
}

/**
 * For receivers (and tests): true when `signature` (the `x-aigov-signature` header, possibly a
 * list such as `v1=…, v1=…` during a secret rotation) signs exactly these body bytes at this
 * timestamp, and the timestamp is within the tolerance. Compares in constant time.
 */
export function verifyWebhookSignature(secret: string, timestamp: string, body: string | Uint8Array, signature: string, options: VerifyOptions = {}): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  const toleranceSec = options.toleranceSec ?? 300;
  const nowSec = (options.now ?? Date.now)() / 1000;
  if (Math.abs(nowSec - Number(timestamp)) > toleranceSec) return false;
  const expected = Buffer.from(hmacHex(secret, timestamp, body), 'utf8');
  let match = false;
  for (const part of signature.split(/[\s,]+/)) {
    if (!part.startsWith('v1=')) continue;
    const given = Buffer.from(part.slice(3).toLowerCase(), 'utf8');
    // The length of a hex SHA-256 is public; only the content is compared in constant time.
    if (given.length === expected.length && timingSafeEqual(given, expected)) match = true;
  }
  return match;
}

function hmacHex(secret: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** Global and rule receivers listening to this event; one delivery per URL (the rule's settings win). */
function receiversFor(event: WebhookEvent, global: readonly Webhook[], extra: readonly Webhook[]): Webhook[] {
  const byUrl = new Map<string, Webhook>();
  for (const hook of [...global, ...extra]) {
    if (hook.events.includes(event)) byUrl.set(hook.url, hook);
  }
  return [...byUrl.values()];
}

export function webhookApproval(view: ApprovalView, includePreview: boolean): WebhookApproval {
  // Listed field by field: a field added to ApprovalView is not sent until someone decides it may be.
  const approval: WebhookApproval = {
    id: view.id,
    state: view.state,
    requester: view.requester,
    rule: view.rule,
    approvers: view.approvers,
    provider: view.provider,
    model: view.model,
    endpoint: view.endpoint,
    stream: view.stream,
    session_id: view.session_id,
    call_id: view.call_id,
    created_at: view.created_at,
    expires_at: view.expires_at,
    decided_at: view.decided_at,
    votes: view.votes,
  };
  if (includePreview) approval.preview = view.preview;
  return approval;
}

/**
 * The Slack mrkdwn line for a notice. It names people, the rule and the model, never the prompt
 * (not even its redacted preview) nor anything secret.
 */
/** The Slack-compatible text of a budget warning. */
export function budgetText(b: WebhookBudget): string {
  const percent = `${Math.round(b.fraction * 100)}%`;
  return `:warning: Budget \`${code(b.id)}\` (${mrkdwn(b.scope)}) reached ${percent}: ${mrkdwn(b.used_text)} of ${mrkdwn(b.limit_text)} spent or reserved. It resets ${b.reset_at}.`;
}

export function approvalText(event: ApprovalNotice, nowMs: number): string {
  const a = event.approval;
  const who = `*${mrkdwn(personName(a.requester))}*`;
  const rule = `rule \`${code(a.rule.id)}\``;
  const id = `\`${code(a.id)}\``;
  const target = [a.provider, a.model].filter((s): s is string => s !== null && s !== '').map(mrkdwn).join(' ');
  const approvals = a.votes.filter((v) => v.decision === 'approve');
  const denial = a.votes.find((v) => v.decision === 'deny');

  if (a.state === 'approved') {
    const reasons = approvals.map((v) => v.reason).filter((r): r is string => r !== null && r.trim() !== '');
    return `:white_check_mark: Approval ${id} for ${who} under ${rule} (${target}) was approved by ${people(approvals.map((v) => v.by))}${reasons.length > 0 ? `: ${quote(reasons.join('; '))}` : ''}.`;
  }
  if (a.state === 'denied') {
    const by = denial ? people([denial.by]) : 'an approver';
    return `:no_entry: Approval ${id} for ${who} under ${rule} (${target}) was denied by ${by}${denial?.reason ? `: ${quote(denial.reason)}` : ''}.`;
  }
  if (a.state === 'expired') {
    const partial = approvals.length > 0 ? ` with ${approvals.length} of ${a.approvers.required} approvals` : ' before anyone decided';
    return `:hourglass: Approval ${id} for ${who} under ${rule} (${target}) expired${partial} (${clock(a.expires_at, nowMs)}); the request was not sent.`;
  }
  if (event.type === 'approval.decided') {
    // A vote that does not settle an N-of-M approval yet.
    return `:ballot_box_with_check: ${people(approvals.map((v) => v.by))} approved ${id} for ${who} under ${rule}: ${approvals.length} of ${a.approvers.required} approvals so far.`;
  }
  const needed = a.approvers.required > 1 ? `${a.approvers.required} approvals` : 'approval';
  const groups = a.approvers.groups.length > 0 ? ` Approvers: ${a.approvers.groups.map(mrkdwn).join(', ')}.` : '';
  return (
    `:lock: ${who} needs ${needed} under ${rule} (${target}): ${quote(a.rule.reason)}.${groups} ` +
    `Approve with \`aigov approvals approve ${code(a.id)}\` or deny with \`aigov approvals deny ${code(a.id)}\` — expires ${clock(a.expires_at, nowMs)}.`
  );
}

function personName(p: ApprovalPerson): string {
  return p.email ?? p.name ?? p.sub;
}

function people(list: readonly ApprovalPerson[]): string {
  return list.length === 0 ? 'an approver' : list.map((p) => `*${mrkdwn(personName(p))}*`).join(', ');
}

/** Escapes what Slack parses as links, mentions (`<!channel>`) and entities, and keeps it on one line. */
function mrkdwn(text: string): string {
  return text.replace(/\s+/g, ' ').replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function code(text: string): string {
  return mrkdwn(text).replaceAll('`', "'");
}

function quote(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return `_${mrkdwn(one.length > 200 ? `${one.slice(0, 199)}…` : one).replaceAll('_', ' ')}_`;
}

/** `12:34 UTC` today, `2025-06-01 12:34 UTC` another day. */
function clock(iso: string, nowMs: number): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return 'at an unknown time';
  const [day, time] = t.toISOString().split('T') as [string, string];
  const today = new Date(nowMs).toISOString().slice(0, 10);
  return `${day === today ? '' : `${day} `}${time.slice(0, 5)} UTC`;
}

function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '';
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
}

let cachedVersion: string | undefined;
function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      // src/gateway/approvals/ and dist/gateway/approvals/ are both three levels below the package root.
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
