/** The budget ledgers' owed settles (src/store/settle-retries.ts): retried in order with backoff until the store answers; a settle made meanwhile is not made again; close makes one last try. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SettleRetries, type SettleActuals } from '../src/store/settle-retries.ts';

function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out: ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('owed settles', () => {
  it('are retried in the order they failed, with growing delays, until the store answers; each made once', async () => {
    let down = 3; // the store fails the next three attempts
    const made: string[] = [];
    const attempts: number[] = [];
    const retries = new SettleRetries(async (id: string, actuals: SettleActuals) => {
      attempts.push(Date.now());
      if (down > 0) {
        down -= 1;
        throw new Error('store down');
      }
      made.push(`${id}:${actuals.map((a) => `${a.key}=${a.amount}`).join(',')}`);
      retries.paid(id);
    });
    retries.owe('a', [{ key: 'k1', amount: 5 }]);
    retries.owe('b', [{ key: 'k2', amount: 7 }]);
    assert.ok(retries.has('a') && retries.has('b'));
    await until(() => made.length === 2, 'both settles made');
    assert.deepEqual(made, ['a:k1=5', 'b:k2=7']);
    assert.equal(retries.has('a') || retries.has('b'), false);
    // 3 failed tries (200, 400, 800 ms apart), then the two settles in one pass.
    assert.equal(attempts.length, 5);
    const gaps = attempts.slice(1, 4).map((t, i) => t - attempts[i]!);
    assert.ok(gaps[0]! >= 350 && gaps[1]! >= 700, `the delay doubles: ${gaps.join(', ')} ms`);
    await retries.close();
  });

  it('a settle made meanwhile is not made again; close makes one last try of what is still owed', async () => {
    const made: string[] = [];
    let fail = true;
    const retries = new SettleRetries(async (id: string) => {
      if (fail) throw new Error('store down');
      made.push(id);
    });
    retries.owe('paid-meanwhile', [{ key: 'k', amount: 1 }]);
    retries.owe('still-owed', [{ key: 'k', amount: 2 }]);
    retries.paid('paid-meanwhile');
    fail = false;
    await retries.close();
    assert.deepEqual(made, ['still-owed']);
    retries.owe('after-close', [{ key: 'k', amount: 3 }]);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(made, ['still-owed'], 'nothing is retried after close');
  });
});
