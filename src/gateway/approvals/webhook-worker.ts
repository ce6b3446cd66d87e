/**
 * The webhook outbox's delivery worker: one per gateway process. It claims due deliveries from
 * the outbox (src/store/webhook-outbox.ts), posts each to its receiver — looked up in the
 * configuration by the row's receiver key, so URLs and secrets never leave the config — signs
 * every attempt afresh, and settles the row: delivered, due again after a backoff, or failed
 * (src/core/approvals/webhook-retry.ts decides which).
 *
 * When it runs: after a local write (wake()), when another process stores rows (the store's
 * watch: PostgreSQL NOTIFY), when the next row falls due (a retry's time, or the end of a lease
 * another process took and never settled — its process died), and at most every `pollMs` as a
 * fallback. Never in a loop that spins: each pass ends with the time of the next due row.
 *
 * It claims only as many rows as it has free posting slots, and only rows for receivers it knows
 * (a replica whose configuration lags behind leaves the others' receivers alone). A periodic
 * sweep drops rows whose receiver left the configuration (after a grace period, logged by host),
 * fails rows stranded by a crash during their last attempt, and purges settled rows after the
 * retention.
 *
 * The store failing (the database down) never throws out of here: each failure is counted and
 * logged (once, then quietly until it recovers), and the worker tries again with a backoff.
 */
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { nextDeliveryStep, parseRetryAfter, statusOutcome, type AttemptResult, type RetryPolicy } from '../../core/approvals/webhook-retry.ts';
import type { Webhook } from '../../config/webhook-schema.ts';
import type { ClaimedDelivery, OutboxSettle, WebhookOutboxStore } from '../../store/webhook-outbox.ts';

export const SIGNATURE_HEADER = 'x-aigov-signature';
export const TIMESTAMP_HEADER = 'x-aigov-timestamp';
export const DELIVERY_HEADER = 'x-aigov-delivery';
export const EVENT_HEADER = 'x-aigov-event';

/** Between two passes when due rows were seen but another process held them (it is claiming them). */
const MIN_WAIT_MS = 25;
const STORE_RETRY_MIN_MS = 250;
const STORE_RETRY_MAX_MS = 30_000;

export type DeliveryOutcome = 'delivered' | 'failed' | 'dropped';

/** What the worker counts (the notifier's stats). */
export interface DeliveryCounts {
  delivered: number;
  failed: number;
  dropped: number;
  retries: number;
  /** Pending rows in the outbox, as last counted and adjusted since. */
  pending: number;
}

export interface WebhookWorkerOptions {
  readonly store: WebhookOutboxStore;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  readonly policy: RetryPolicy;
  readonly dispatcher: Dispatcher;
  readonly userAgent: string;
  readonly now: () => number;
  readonly random: () => number;
  /** Keys of every receiver this process can post to now. */
  readonly receivers: () => readonly string[];
  /** The receiver a claimed row names, as configured now; null: no longer configured. */
  readonly resolve: (delivery: ClaimedDelivery) => Webhook | null;
  readonly sign: (secret: string, timestamp: string, body: string) => string;
  readonly counts: DeliveryCounts;
  readonly onOutcome: (outcome: DeliveryOutcome, count: number) => void;
  readonly onStoreError: () => void;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly sweepIntervalMs: number;
  readonly retentionMs: number;
  readonly unknownReceiverGraceMs: number;
  readonly closeTimeoutMs: number;
}

export interface WebhookWorker {
  /** Look for due rows now (rows were just stored, a slot freed). */
  wake(): void;
  /** Stops claiming, lets posts in flight finish up to the deadline, then cuts them (durable: due again at once). */
  close(): Promise<void>;
}

const CUT = Symbol('cut');

export function startWebhookWorker(options: WebhookWorkerOptions): WebhookWorker {
  const { store, logger, policy, counts } = options;
  const closing = new AbortController();
  /** Aborted at close()'s deadline: posts still in flight are cut. */
  const cut = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let dirty = true;
  let wakeUp: (() => void) | null = null;
  let storeFailures = 0;

  function wake(): void {
    dirty = true;
    wakeUp?.();
  }

  const unwatch = store.watch?.(wake) ?? null;

  function idle(ms: number): Promise<void> {
    if (dirty || closing.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      wakeUp = done;
    });
  }

  function storeFailed(error: unknown, what: string): void {
    options.onStoreError();
    storeFailures += 1;
    const fields = { err: errorText(error), failures: storeFailures };
    if (storeFailures === 1) logger.warn(fields, `approval webhook outbox: could not ${what}; retrying (notices already stored wait in the outbox)`);
    else logger.debug(fields, `approval webhook outbox: could not ${what}`);
  }

  function storeAnswered(): void {
    if (storeFailures > 0) logger.info({ failures: storeFailures }, 'approval webhook outbox: the store answers again');
    storeFailures = 0;
  }

  async function sweep(): Promise<void> {
    const result = await store.sweep({
      receivers: options.receivers(),
      unknownGraceMs: options.unknownReceiverGraceMs,
      maxAttempts: policy.maxAttempts,
      retentionMs: options.retentionMs,
    });
    for (const [host, count] of result.unknown) {
      counts.dropped += count;
      counts.pending = Math.max(0, counts.pending - count);
      options.onOutcome('dropped', count);
      logger.warn({ webhook: host, deliveries: count }, 'approval webhook deliveries dropped: their receiver is no longer configured');
    }
    if (result.stranded > 0) {
      counts.failed += result.stranded;
      counts.pending = Math.max(0, counts.pending - result.stranded);
      options.onOutcome('failed', result.stranded);
      logger.warn({ deliveries: result.stranded }, 'approval webhook deliveries given up: the process posting them stopped during their last attempt');
    }
    if (result.purged > 0) logger.debug({ purged: result.purged }, 'approval webhook outbox: settled deliveries past the retention purged');
  }

  async function run(): Promise<void> {
    let nextSweep = 0;
    while (!closing.signal.aborted) {
      dirty = false;
      let wait: number;
      try {
        if (options.now() >= nextSweep) {
          await sweep();
          nextSweep = options.now() + options.sweepIntervalMs;
        }
        const receivers = options.receivers();
        // A read first: the claim is a write (on SQLite it takes the file's write lock), made only when a row is due.
        const status = await store.status(receivers, policy.maxAttempts);
        counts.pending = status.pending;
        storeAnswered();
        const free = options.concurrency - inFlight.size;
        const due = receivers.length > 0 && status.nextDueInMs !== null && status.nextDueInMs <= 0;
        if (due && free > 0) {
          const claimed = await store.claim({ limit: free, leaseMs: options.leaseMs, receivers, maxAttempts: policy.maxAttempts });
          if (closing.signal.aborted) {
            // Claimed while close() began: hand them back untouched.
            await Promise.allSettled(claimed.map((c) => store.settle(c, { kind: 'release' })));
            break;
          }
          for (const c of claimed) track(deliver(c));
          if (claimed.length > 0) continue; // more may be due
        }
        const untilSweep = Math.max(0, nextSweep - options.now());
        if (receivers.length === 0) wait = untilSweep; // nothing to post: only the sweep (or a wake-up) has work
        else if (free <= 0 || status.nextDueInMs === null) wait = Math.min(options.pollMs, untilSweep); // a finishing post wakes the worker
        else if (due) wait = MIN_WAIT_MS; // due, but another process is claiming them: look again shortly
        else wait = Math.min(status.nextDueInMs, options.pollMs, untilSweep);
      } catch (error) {
        storeFailed(error, 'read the due deliveries');
        wait = Math.min(STORE_RETRY_MAX_MS, STORE_RETRY_MIN_MS * 2 ** Math.min(storeFailures - 1, 10));
      }
      await idle(wait);
    }
  }

  function track(task: Promise<void>): void {
    const guarded = task.catch((error: unknown) => {
      // deliver() handles its own failures; this only keeps a bug from escaping as an unhandled rejection.
      logger.warn({ err: errorText(error) }, 'approval webhook delivery failed unexpectedly');
    });
    inFlight.add(guarded);
    void guarded.finally(() => {
      inFlight.delete(guarded);
      wake();
    });
  }

  async function deliver(d: ClaimedDelivery): Promise<void> {
    if (d.attempt > 1) counts.retries += 1;
    const webhook = options.resolve(d);
    if (webhook === null) {
      counts.dropped += 1;
      counts.pending = Math.max(0, counts.pending - 1);
      options.onOutcome('dropped', 1);
      logger.warn({ webhook: d.host, delivery: d.id, type: d.type }, 'approval webhook delivery dropped: its receiver is no longer configured');
      await settle(d, { kind: 'failed', status: null, error: 'its receiver is no longer configured' });
      return;
    }
    const result = await attemptOnce(d, webhook);
    if (result === CUT) {
      if (store.durable) {
        logger.warn({ webhook: d.host, delivery: d.id, attempt: d.attempt }, 'approval webhook attempt cut at shutdown; it will be posted again (same delivery id)');
        await settle(d, { kind: 'retry', delayMs: 0, status: null, error: 'cut at shutdown' });
      } else {
        giveUp(d, 'cut at shutdown', null);
        await settle(d, { kind: 'failed', status: null, error: 'cut at shutdown' });
      }
      return;
    }
    if (result.ok) {
      counts.delivered += 1;
      counts.pending = Math.max(0, counts.pending - 1);
      options.onOutcome('delivered', 1);
      logger.info({ webhook: d.host, status: result.status, delivery: d.id, type: d.type, attempt: d.attempt }, 'approval webhook delivered');
      await settle(d, { kind: 'delivered', status: result.status });
      return;
    }
    const step = nextDeliveryStep(result, d.attempt, policy, options.random());
    const status = result.status;
    switch (step.kind) {
      case 'delivered': // not for a failed attempt
      case 'failed': {
        const reason = step.kind === 'failed' ? step.reason : result.reason;
        giveUp(d, reason, status);
        await settle(d, { kind: 'failed', status, error: reason });
        return;
      }
      case 'retry':
        logger.warn({ webhook: d.host, status, delivery: d.id, attempt: d.attempt, retryInMs: step.delayMs }, `approval webhook attempt failed (${result.reason}); retrying`);
        await settle(d, { kind: 'retry', delayMs: step.delayMs, status, error: result.reason });
        return;
    }
  }

  function giveUp(d: ClaimedDelivery, reason: string, status: number | null): void {
    counts.failed += 1;
    counts.pending = Math.max(0, counts.pending - 1);
    options.onOutcome('failed', 1);
    logger.warn({ webhook: d.host, status, delivery: d.id, type: d.type, attempts: d.attempt }, `approval webhook delivery given up (${reason})`);
  }

  async function settle(d: ClaimedDelivery, outcome: OutboxSettle): Promise<void> {
    try {
      if (!(await store.settle(d, outcome))) {
        logger.warn({ webhook: d.host, delivery: d.id, attempt: d.attempt }, 'approval webhook delivery: its lease ran out before the outcome was recorded; another process may post it again (same delivery id)');
      }
    } catch (error) {
      storeFailed(error, 'record a delivery outcome');
      logger.warn({ webhook: d.host, delivery: d.id, attempt: d.attempt }, 'approval webhook delivery: the outcome could not be recorded; it will be posted again when its lease ends (same delivery id)');
    }
  }

  async function attemptOnce(d: ClaimedDelivery, webhook: Webhook): Promise<AttemptResult | typeof CUT> {
    const timestamp = String(Math.floor(options.now() / 1000));
    // The attempt ends well inside its lease, so no other process takes the row while it runs.
    const timeoutMs = Math.max(1, Math.min(webhook.timeout, Math.floor(options.leaseMs / 2)));
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, cut.signal]);
    try {
      const res = await request(webhook.url, {
        method: 'POST',
        dispatcher: options.dispatcher,
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': options.userAgent,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: options.sign(webhook.secret, timestamp, d.body),
          [DELIVERY_HEADER]: d.id,
          [EVENT_HEADER]: d.type,
        },
        body: d.body,
      });
      // The answer is not read, only drained (bounded) so the connection can be reused.
      await res.body.dump({ limit: 64 * 1024, signal }).catch(() => undefined);
      const status = res.statusCode;
      const outcome = statusOutcome(status);
      if (outcome === 'ok') return { ok: true, status };
      return { ok: false, retryable: outcome === 'retry', status, reason: `HTTP ${status}`, retryAfterMs: outcome === 'retry' ? parseRetryAfter(res.headers['retry-after'], options.now()) : null };
    } catch (error) {
      if (cut.signal.aborted) return CUT;
      const reason = timeout.aborted ? `timed out after ${timeoutMs}ms` : `network error ${errorCode(error)}`;
      return { ok: false, retryable: true, status: null, reason, retryAfterMs: null };
    }
  }

  const loop = run().catch((error: unknown) => {
    logger.warn({ err: errorText(error) }, 'approval webhook worker stopped unexpectedly');
  });

  let closed: Promise<void> | null = null;
  return {
    wake,
    close() {
      closed ??= (async () => {
        closing.abort();
        wake();
        unwatch?.();
        await loop;
        const all = Promise.allSettled([...inFlight]);
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([all.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(resolve, options.closeTimeoutMs, false)))]);
        clearTimeout(timer);
        if (!inTime) {
          logger.warn({ inFlight: inFlight.size }, 'approval webhook deliveries still in flight at the shutdown deadline; cutting them');
          cut.abort();
          await Promise.allSettled([...inFlight]);
        }
      })();
      return closed;
    },
  };
}

export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | null;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.name === 'string') return e.name;
  return 'unknown';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
