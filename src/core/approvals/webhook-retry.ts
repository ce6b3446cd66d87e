/**
 * What follows one attempt to deliver an approval webhook: done, another attempt later (and
 * when), or give up. Pure: the caller passes the attempt's result, the attempt number and a
 * random number for the jitter, and acts on the step returned (the outbox worker,
 * src/gateway/approvals/webhook-worker.ts).
 *
 * - 2xx: delivered.
 * - Network errors, timeouts, 429 and 5xx: retried, up to `maxAttempts` attempts in all, after
 *   `backoffBaseMs · 2^(attempt-1)` ±20 % (0.5 s, 1 s, 2 s, 4 s by default) or what Retry-After
 *   asks when that is longer, capped at `maxRetryAfterMs`.
 * - Any other status (3xx included: a redirect is not followed, the signed body goes only where
 *   configured; 4xx other than 429): final.
 */

export type AttemptResult =
  | { readonly ok: true; readonly status: number }
  | {
      readonly ok: false;
      /** Whether another attempt may succeed (network error, timeout, 429, 5xx). */
      readonly retryable: boolean;
      readonly status: number | null;
      /** For log lines: `HTTP 503`, `network error ECONNREFUSED`, `timed out after 5000ms`. No secrets, no URL. */
      readonly reason: string;
      /** What the receiver's Retry-After asked, in ms; null: nothing. */
      readonly retryAfterMs: number | null;
    };

export interface RetryPolicy {
  /** Attempts per delivery, the first included. */
  readonly maxAttempts: number;
  /** The first retry's delay; doubles with each retry. */
  readonly backoffBaseMs: number;
  /** The longest wait a Retry-After can impose. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, backoffBaseMs: 500, maxRetryAfterMs: 30_000 };

export type DeliveryStep =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly delayMs: number }
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * The step after attempt number `attempt` (from 1) ended with `result`. `random` is in [0, 1).
 */
export function nextDeliveryStep(result: AttemptResult, attempt: number, policy: RetryPolicy, random: number): DeliveryStep {
  if (result.ok) return { kind: 'delivered' };
  if (!result.retryable) return { kind: 'failed', reason: result.reason };
  if (attempt >= policy.maxAttempts) return { kind: 'failed', reason: `${result.reason}; no attempts left` };
  return { kind: 'retry', delayMs: retryDelay(attempt, result.retryAfterMs, policy, random) };
}

/** Milliseconds before the attempt after `attempt`: the backoff with jitter, or Retry-After (capped) when longer. */
export function retryDelay(attempt: number, retryAfterMs: number | null, policy: RetryPolicy, random: number): number {
  const jitter = 0.8 + 0.4 * Math.min(Math.max(random, 0), 1);
  const backoff = policy.backoffBaseMs * 2 ** Math.max(0, attempt - 1) * jitter;
  const asked = Math.min(Math.max(retryAfterMs ?? 0, 0), policy.maxRetryAfterMs);
  return Math.round(Math.max(backoff, asked));
}

/** How an HTTP status ends an attempt: accepted, worth another attempt, or final. */
export function statusOutcome(status: number): 'ok' | 'retry' | 'final' {
  if (status >= 200 && status < 300) return 'ok';
  return status === 429 || status >= 500 ? 'retry' : 'final';
}

/** Retry-After as seconds or an HTTP date, in milliseconds from `nowMs`; null when absent or unreadable. */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number): number | null {
  const v = typeof value === 'string' ? value : value?.[0];
  if (v === undefined || v.trim() === '') return null;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  if (!/[A-Za-z]{3}/.test(v)) return null; // an HTTP date names its day and month
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}
