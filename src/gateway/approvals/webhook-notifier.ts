/**
 * Approval webhooks: posts a signed JSON notice (with a Slack-compatible `text`) to every
 * configured receiver when an approval is created, decided or expires. docs/webhooks.md is the
 * receiver's side of this file.
 *
 * - `notify()` never throws and never waits: it builds the body, queues one delivery per
 *   receiver and returns. The queue is bounded; a full queue drops the notice (counted, logged).
 * - Each attempt is signed afresh: `x-aigov-timestamp: <unix seconds>` and
 *   `x-aigov-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. The body, and so
 *   the delivery id in it, is the same on every attempt: receivers dedupe on `id`.
 * - Network errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter
 *   (0.5 s, 1 s, 2 s, 4 s for five attempts), waiting at least what Retry-After asks, up to a cap.
 *   Any other status is final (a 3xx is not followed: the signed body goes only where configured).
 * - Log lines name the receiver's host, the status and the delivery id; never the secret, the
 *   URL's path or query (a Slack URL's path is its credential), the preview or a token.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Agent, request, type Dispatcher } from 'undici';
import type { Webhook, WebhookEvent } from '../../config/webhook-schema.ts';
import type { ApprovalPerson, ApprovalView } from '../../protocol/approvals.ts';

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

export interface WebhookNotifierOptions {
  /** Global receivers (approvals.webhooks), resolved. */
  readonly webhooks: readonly Webhook[];
  readonly logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
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
  /** Deliveries posting at once; default 4. */
  readonly concurrency?: number;
  /** Deliveries queued or waiting to retry; beyond this a notice is dropped; default 1000. */
  readonly maxPending?: number;
  /** How long close() lets in-flight deliveries finish before aborting them; default 2 s. */
  readonly closeTimeoutMs?: number;
}

export interface WebhookNotifierStats {
  /** Deliveries accepted by a receiver (2xx). */
  readonly delivered: number;
  /** Deliveries given up: a final status, attempts exhausted, or shutdown. */
  readonly failed: number;
  /** Deliveries never queued: queue full, notifier closed, or an unbuildable notice. */
  readonly dropped: number;
  /** Attempts after the first, over all deliveries. */
  readonly retries: number;
  /** Deliveries queued, posting or waiting to retry. */
  readonly pending: number;
}

export interface WebhookNotifier {
  /** Fire and forget: never throws, never waits. `extra` adds the rule's own receivers (approval.notify). */
  notify(event: ApprovalNotice, extra?: readonly Webhook[]): void;
  /** Fire and forget, like notify: a budget warning to the receivers that listen to `budget_warning`. */
  notifyBudget(notice: BudgetWarningNotice, extra?: readonly Webhook[]): void;
  /** Stops accepting notices, abandons waits for retries, lets posts in flight finish up to the deadline. */
  close(): Promise<void>;
  stats(): WebhookNotifierStats;
}

export const SIGNATURE_HEADER = 'x-aigov-signature';
export const TIMESTAMP_HEADER = 'x-aigov-timestamp';
export const DELIVERY_HEADER = 'x-aigov-delivery';
export const EVENT_HEADER = 'x-aigov-event';

const EVENT_OF: Record<ApprovalNoticeType, WebhookEvent> = {
  'approval.created': 'created',
  'approval.decided': 'decided',
  'approval.expired': 'expired',
};

interface Delivery {
  readonly id: string;
  readonly host: string;
  readonly webhook: Webhook;
  readonly body: string;
  readonly type: ApprovalNoticeType | 'budget.warning';
}

type AttemptOutcome =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly retry: boolean; readonly status: number | null; readonly reason: string; readonly retryAfterMs: number | null };

export function createWebhookNotifier(options: WebhookNotifierOptions): WebhookNotifier {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  const backoffBaseMs = options.backoffBaseMs ?? 500;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  const maxPending = options.maxPending ?? 1000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const userAgent = `aigov-webhook/${options.version ?? packageVersion()}`;
  const ownAgent = options.dispatcher === undefined ? new Agent({ connect: { timeout: 10_000 }, keepAliveTimeout: 10_000, connections: 8 }) : null;
  const dispatcher = options.dispatcher ?? (ownAgent as Agent);
  const globalHooks = [...options.webhooks];

  const slots = createSlots(Math.max(1, options.concurrency ?? 4));
  /** Aborted by close(): waits for a retry end, and nothing new starts. */
  const closing = new AbortController();
  /** Aborted at close()'s deadline: posts still in flight are cut. */
  const cut = new AbortController();
  const running = new Set<Promise<void>>();
  const counts = { delivered: 0, failed: 0, dropped: 0, retries: 0 };

  function notify(event: ApprovalNotice, extra?: readonly Webhook[]): void {
    try {
      const hooks = receiversFor(EVENT_OF[event.type], globalHooks, extra ?? []);
      if (hooks.length === 0) return;
      if (closing.signal.aborted) {
        counts.dropped += hooks.length;
        logger.warn({ approval: event.approval.id, type: event.type, receivers: hooks.length }, 'approval webhook notice dropped: the notifier is closed');
        return;
      }
      const createdAt = new Date(now()).toISOString();
      const text = approvalText(event, now());
      const gatewayUrl = publicUrl(event.gatewayUrl);
      for (const webhook of hooks) {
        const host = hostOf(webhook.url);
        if (running.size >= maxPending) {
          counts.dropped += 1;
          logger.warn({ webhook: host, approval: event.approval.id, type: event.type, pending: running.size }, 'approval webhook notice dropped: too many deliveries pending');
          continue;
        }
        const payload: WebhookPayload = {
          type: event.type,
          id: `whd_${randomUUID().replaceAll('-', '')}`,
          created_at: createdAt,
          gateway_url: gatewayUrl,
          approval: webhookApproval(event.approval, webhook.include_preview),
          text,
        };
        const delivery: Delivery = { id: payload.id, host, webhook, body: JSON.stringify(payload), type: event.type };
        const task = deliver(delivery).catch((error: unknown) => {
          // deliver() handles its own failures; this only guards against a bug escaping as an unhandled rejection.
          counts.failed += 1;
          logger.warn({ webhook: host, delivery: delivery.id, err: errorCode(error) }, 'approval webhook delivery failed unexpectedly');
        });
        running.add(task);
        void task.finally(() => running.delete(task));
      }
    } catch (error) {
      counts.dropped += 1;
      logger.warn({ type: (event as Partial<ApprovalNotice> | undefined)?.type, err: errorCode(error) }, 'approval webhook notice could not be built');
    }
  }

  function notifyBudget(notice: BudgetWarningNotice, extra?: readonly Webhook[]): void {
    try {
      const hooks = receiversFor('budget_warning', globalHooks, extra ?? []);
      if (hooks.length === 0) return;
      if (closing.signal.aborted) {
        counts.dropped += hooks.length;
        logger.warn({ budget: notice.budget.id, type: notice.type, receivers: hooks.length }, 'budget webhook notice dropped: the notifier is closed');
        return;
      }
      const createdAt = new Date(now()).toISOString();
      const text = budgetText(notice.budget);
      for (const webhook of hooks) {
        const host = hostOf(webhook.url);
        if (running.size >= maxPending) {
          counts.dropped += 1;
          logger.warn({ webhook: host, budget: notice.budget.id, type: notice.type, pending: running.size }, 'budget webhook notice dropped: too many deliveries pending');
          continue;
        }
        const payload: BudgetWebhookPayload = { type: notice.type, id: `whd_${randomUUID().replaceAll('-', '')}`, created_at: createdAt, gateway_url: publicUrl(notice.gatewayUrl), budget: notice.budget, text };
        const delivery: Delivery = { id: payload.id, host, webhook, body: JSON.stringify(payload), type: notice.type };
        const task = deliver(delivery).catch((error: unknown) => {
          counts.failed += 1;
          logger.warn({ webhook: host, delivery: delivery.id, err: errorCode(error) }, 'budget webhook delivery failed unexpectedly');
        });
        running.add(task);
        void task.finally(() => running.delete(task));
      }
    } catch (error) {
      counts.dropped += 1;
      logger.warn({ type: 'budget.warning', err: errorCode(error) }, 'budget webhook notice could not be built');
    }
  }

  async function deliver(d: Delivery): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) counts.retries += 1;
      const outcome = await slots.run(() => attemptOnce(d), cut.signal);
      if (outcome === null) return giveUp(d, attempt, 'shutting down', null);
      if (outcome.ok) {
        counts.delivered += 1;
        logger.info({ webhook: d.host, status: outcome.status, delivery: d.id, type: d.type, attempt }, 'approval webhook delivered');
        return;
      }
      if (!outcome.retry) return giveUp(d, attempt, outcome.reason, outcome.status);
      if (attempt >= maxAttempts) return giveUp(d, attempt, `${outcome.reason}; no attempts left`, outcome.status);
      if (closing.signal.aborted) return giveUp(d, attempt, `${outcome.reason}; shutting down`, outcome.status);
      const backoff = backoffBaseMs * 2 ** (attempt - 1) * (0.8 + 0.4 * random());
      const waitMs = Math.round(Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, maxRetryAfterMs)));
      logger.warn({ webhook: d.host, status: outcome.status, delivery: d.id, attempt, retryInMs: waitMs }, `approval webhook attempt failed (${outcome.reason}); retrying`);
      if (!(await sleep(waitMs, closing.signal))) return giveUp(d, attempt, `${outcome.reason}; shutting down`, outcome.status);
    }
  }

  function giveUp(d: Delivery, attempts: number, reason: string, status: number | null): void {
    counts.failed += 1;
    logger.warn({ webhook: d.host, status, delivery: d.id, type: d.type, attempts }, `approval webhook delivery given up (${reason})`);
  }

  async function attemptOnce(d: Delivery): Promise<AttemptOutcome> {
    const timestamp = String(Math.floor(now() / 1000));
    const timeout = AbortSignal.timeout(d.webhook.timeout);
    const signal = AbortSignal.any([timeout, cut.signal]);
    try {
      const res = await request(d.webhook.url, {
        method: 'POST',
        dispatcher,
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': userAgent,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhookBody(d.webhook.secret, timestamp, d.body),
          [DELIVERY_HEADER]: d.id,
          [EVENT_HEADER]: d.type,
        },
        body: d.body,
      });
      // The answer is not read, only drained (bounded) so the connection can be reused.
      await res.body.dump({ limit: 64 * 1024, signal }).catch(() => undefined);
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { ok: true, status };
      const retry = status === 429 || status >= 500;
      return { ok: false, retry, status, reason: `HTTP ${status}`, retryAfterMs: retry ? parseRetryAfter(res.headers['retry-after'], now()) : null };
    } catch (error) {
      if (cut.signal.aborted) return { ok: false, retry: false, status: null, reason: 'cut at shutdown', retryAfterMs: null };
      const reason = timeout.aborted ? `timed out after ${d.webhook.timeout}ms` : `network error ${errorCode(error)}`;
      return { ok: false, retry: true, status: null, reason, retryAfterMs: null };
    }
  }

  async function close(): Promise<void> {
    if (!closing.signal.aborted) closing.abort();
    const all = Promise.allSettled([...running]);
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([all.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(resolve, closeTimeoutMs, false)))]);
    clearTimeout(timer);
    if (!inTime) {
      logger.warn({ pending: running.size }, 'approval webhook deliveries still in flight at the shutdown deadline; cutting them');
      cut.abort();
      await Promise.allSettled([...running]);
    }
    if (ownAgent) await ownAgent.close().catch(() => ownAgent.destroy());
  }

  return {
    notify,
    notifyBudget,
    close,
    stats: () => ({ ...counts, pending: running.size }),
  };
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

/** Retry-After as seconds or an HTTP date, in milliseconds from now. */
function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return null;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | null;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.name === 'string') return e.name;
  return 'unknown';
}

/** Resolves false when the signal fires first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

interface Slots {
  /** Runs `fn` when a slot is free; resolves null without running it if `abandon` fires first. */
  run<T>(fn: () => Promise<T>, abandon: AbortSignal): Promise<T | null>;
}

function createSlots(size: number): Slots {
  let free = size;
  const waiters: Array<() => void> = [];
  const release = (): void => {
    const next = waiters.shift();
    if (next) next();
    else free += 1;
  };
  return {
    async run(fn, abandon) {
      if (free > 0) free -= 1;
      else {
        if (abandon.aborted) return null;
        const got = await new Promise<boolean>((resolve) => {
          const grant = (): void => {
            abandon.removeEventListener('abort', onAbort);
            resolve(true);
          };
          const onAbort = (): void => {
            const i = waiters.indexOf(grant);
            if (i >= 0) waiters.splice(i, 1);
            resolve(false);
          };
          waiters.push(grant);
          abandon.addEventListener('abort', onAbort, { once: true });
        });
        if (!got) return null;
      }
      try {
        return await fn();
      } finally {
        release();
      }
    },
  };
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
