/**
 * The webhook retry decision (src/core/approvals/webhook-retry.ts), as a table: which results end
 * a delivery, which are retried and after how long (backoff with jitter, Retry-After honoured up
 * to its cap, attempts counted), plus the laws the worker relies on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RETRY_POLICY, nextDeliveryStep, parseRetryAfter, retryDelay, statusOutcome, type AttemptResult } from '../src/core/approvals/webhook-retry.ts';

const policy = DEFAULT_RETRY_POLICY;
const http = (status: number, retryAfterMs: number | null = null): AttemptResult => {
  const outcome = statusOutcome(status);
  return outcome === 'ok' ? { ok: true, status } : { ok: false, retryable: outcome === 'retry', status, reason: `HTTP ${status}`, retryAfterMs };
};
const network: AttemptResult = { ok: false, retryable: true, status: null, reason: 'network error ECONNREFUSED', retryAfterMs: null };

describe('nextDeliveryStep', () => {
  const table: [string, AttemptResult, number, number, ReturnType<typeof nextDeliveryStep>][] = [
    ['200 delivers', http(200), 1, 0.5, { kind: 'delivered' }],
    ['204 on the last attempt delivers', http(204), 5, 0.5, { kind: 'delivered' }],
    ['400 is final at once', http(400), 1, 0.5, { kind: 'failed', reason: 'HTTP 400' }],
    ['a redirect is final (not followed)', http(302), 1, 0.5, { kind: 'failed', reason: 'HTTP 302' }],
    ['404 is final', http(404), 2, 0.5, { kind: 'failed', reason: 'HTTP 404' }],
    ['503 on the first attempt: 0.5 s (no jitter at 0.5)', http(503), 1, 0.5, { kind: 'retry', delayMs: 500 }],
    ['503 on the second: 1 s', http(503), 2, 0.5, { kind: 'retry', delayMs: 1000 }],
    ['500 on the fourth: 4 s', http(500), 4, 0.5, { kind: 'retry', delayMs: 4000 }],
    ['500 on the fifth: no attempts left', http(500), 5, 0.5, { kind: 'failed', reason: 'HTTP 500; no attempts left' }],
    ['an attempt past the last (a crash during it) is final too', http(500), 6, 0.5, { kind: 'failed', reason: 'HTTP 500; no attempts left' }],
    ['jitter low end: -20 %', http(502), 1, 0, { kind: 'retry', delayMs: 400 }],
    ['jitter high end: +20 %', http(502), 1, 0.999999, { kind: 'retry', delayMs: 600 }],
    ['429 with Retry-After 10 s waits 10 s', http(429, 10_000), 1, 0.5, { kind: 'retry', delayMs: 10_000 }],
    ['429 with Retry-After an hour waits the cap', http(429, 3_600_000), 1, 0.5, { kind: 'retry', delayMs: 30_000 }],
    ['Retry-After shorter than the backoff: the backoff', http(503, 100), 3, 0.5, { kind: 'retry', delayMs: 2000 }],
    ['network error: retried', network, 1, 0.5, { kind: 'retry', delayMs: 500 }],
    ['network error on the last attempt', network, 5, 0.5, { kind: 'failed', reason: 'network error ECONNREFUSED; no attempts left' }],
  ];
  for (const [name, result, attempt, random, expected] of table) {
    it(name, () => assert.deepEqual(nextDeliveryStep(result, attempt, policy, random), expected));
  }

  it('laws: a retry waits at least the jittered backoff and never more than the larger of it and the cap; delays grow with attempts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.option(fc.integer({ min: 0, max: 10_000_000 })), (attempt, random, retryAfter) => {
        const delay = retryDelay(attempt, retryAfter, policy, random);
        const base = policy.backoffBaseMs * 2 ** (attempt - 1);
        assert.ok(delay >= Math.floor(base * 0.8), `${delay} below the backoff`);
        assert.ok(delay <= Math.max(Math.ceil(base * 1.2), policy.maxRetryAfterMs), `${delay} above the cap`);
        if (attempt < 4) assert.ok(retryDelay(attempt + 1, null, policy, random) > retryDelay(attempt, null, policy, random));
      }),
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');
  it('reads seconds and HTTP dates; ignores the rest', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter([' 3 '], now), 3000);
    assert.equal(parseRetryAfter('Sun, 01 Jun 2025 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Sun, 01 Jun 2025 11:00:00 GMT', now), 0, 'a date in the past: now');
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter('', now), null);
    assert.equal(parseRetryAfter(undefined, now), null);
    assert.equal(parseRetryAfter('-5', now), null);
  });
});
