/**
 * The budget ledger's contract, held against each implementation with its real parts: the
 * in-process ledger, PostgreSQL (a database of its own) and Redis (127.0.0.1:6379, keys under a
 * random prefix). All-or-none reservations across counters, exact limits under a concurrent
 * flood from three instances, idempotent settles, seeding once, rolling steps, and for the
 * shared ones: a dead process's reservations lapse after the TTL, a live one's are renewed, a
 * late settle still counts once, and a Redis that lost its data asks to be seeded again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { BudgetLedger, LedgerCharge } from '../src/store/budget-ledger.ts';
import { MemoryLedger } from '../src/store/memory-budget-ledger.ts';
import { PgBudgetLedger } from '../src/store/postgres/pg-budget-ledger.ts';
import { RedisBudgetLedger } from '../src/store/redis/redis-budget-ledger.ts';
import { usePgDatabases } from './support/pg-databases.ts';

const REDIS_URL = process.env['AIGOV_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const newDatabase = usePgDatabases();
const DAY = 86_400_000;

interface Kind {
  readonly name: string;
  readonly shared: boolean;
  /** `count` ledgers on one new store (the replicas of a deployment); `reuse`: on the store opened last. */
  open(count: number, ttlMs?: number, options?: { renewMs?: number; reuse?: boolean }): Promise<BudgetLedger[]>;
  /** The shared store loses everything (a Redis restart without persistence). */
  lose?(): Promise<void>;
}

const opened: BudgetLedger[] = [];
after(async () => {
  for (const l of opened) await l.close();
});

const redisPrefixes: string[] = [];
after(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of redisPrefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

let lastPg = '';
const kinds: Kind[] = [
  {
    name: 'memory',
    shared: false,
    async open() {
      const l = new MemoryLedger();
      opened.push(l);
      return [l];
    },
  },
  {
    name: 'postgres',
    shared: true,
    async open(count, ttlMs = 60_000, options = {}) {
      const url = options.reuse === true ? lastPg : (await newDatabase()).url;
      lastPg = url;
      const list: BudgetLedger[] = [];
      for (let i = 0; i < count; i++) list.push(await PgBudgetLedger.open({ url, ttlMs, poolSize: 3, ...(options.renewMs ? { renewMs: options.renewMs } : {}) }));
      opened.push(...list);
      return list;
    },
  },
  (() => {
    let prefix = '';
    return {
      name: 'redis',
      shared: true,
      async open(count: number, ttlMs = 60_000, options: { renewMs?: number; reuse?: boolean } = {}) {
        if (options.reuse !== true) prefix = `aigov-test:${randomBytes(6).toString('hex')}:`;
        redisPrefixes.push(prefix);
        const list: BudgetLedger[] = [];
        for (let i = 0; i < count; i++) list.push(await RedisBudgetLedger.open({ url: REDIS_URL, ttlMs, prefix, ...(options.renewMs ? { renewMs: options.renewMs } : {}) }));
        opened.push(...list);
        return list;
      },
      async lose() {
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        redis.disconnect();
      },
    };
  })(),
];

const charge = (key: string, limit: number | null, amount: number, over: Partial<LedgerCharge> = {}): LedgerCharge => ({ key, fingerprint: 'fp', limit, amount, step: 0, oldestStep: 0, expiresAt: Date.now() + DAY, ...over });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

for (const kind of kinds) {
  describe(`budget ledger: ${kind.name}`, () => {
    it('refuses until the budget is seeded, seeds once', async () => {
      const [l] = await kind.open(1);
      assert.deepEqual(await l!.reserve('c1', [charge('k', 100, 1)]), { ok: false, unseeded: true });
      assert.equal(await l!.isSeeded('fp'), false);
      assert.equal(await l!.seed('fp', [{ key: 'k', step: 0, amount: 40, expiresAt: Date.now() + DAY }]), true);
      assert.equal(await l!.seed('fp', [{ key: 'k', step: 0, amount: 40, expiresAt: Date.now() + DAY }]), false, 'a second seed does nothing');
      assert.equal(await l!.isSeeded('fp'), true);
      assert.deepEqual(await l!.read([{ key: 'k', oldestStep: 0 }]), [{ spent: 40, reserved: 0 }]);
    });

    it('reserves on every counter or on none; settles once with what was charged', async () => {
      const [l] = await kind.open(1);
      await l!.seed('fp', []);
      assert.deepEqual(await l!.reserve('c1', [charge('a', 100, 60), charge('b', 100, 30)]), { ok: true, used: [0, 0] });
      const refused = await l!.reserve('c2', [charge('a', 1000, 10), charge('b', 100, 71)]);
      assert.deepEqual(refused, { ok: false, refused: { index: 1, key: 'b', spent: 0, reserved: 30, limit: 100, amount: 71 } });
      assert.deepEqual(await l!.read([{ key: 'a', oldestStep: 0 }, { key: 'b', oldestStep: 0 }]), [{ spent: 0, reserved: 60 }, { spent: 0, reserved: 30 }], 'nothing of c2 was held on a');
      await l!.settle('c1', [{ key: 'a', amount: 45 }, { key: 'b', amount: 7 }]);
      await l!.settle('c1', [{ key: 'a', amount: 45 }, { key: 'b', amount: 7 }]);
      assert.deepEqual(await l!.read([{ key: 'a', oldestStep: 0 }, { key: 'b', oldestStep: 0 }]), [{ spent: 45, reserved: 0 }, { spent: 7, reserved: 0 }], 'the second settle changed nothing');
      assert.deepEqual(await l!.reserve('c3', [charge('a', 100, 55)]), { ok: true, used: [45] });
      assert.equal((await l!.reserve('c4', [charge('a', 100, 1)])).ok, false, '45 + 55 reserved: full');
      assert.deepEqual((await l!.reserve('c5', [charge('a', null, 500)])).ok, true, 'no limit: counted, never refused');
      await l!.settle('c3', [{ key: 'a', amount: 0 }]);
      await l!.settle('c5', [{ key: 'a', amount: 500 }]);
      assert.deepEqual(await l!.read([{ key: 'a', oldestStep: 0 }]), [{ spent: 545, reserved: 0 }]);
      assert.equal((await l!.reserve('c6', [charge('a', 545, 0)])).ok, false, 'a used-up budget refuses even a reservation of 0');
    });

    it('counts a rolling window in steps: old steps fall away', async () => {
      const [l] = await kind.open(1);
      await l!.seed('fp', [{ key: 'r', step: 10, amount: 70, expiresAt: Date.now() + DAY }]);
      assert.equal((await l!.reserve('c1', [charge('r', 100, 40, { step: 12, oldestStep: 10 })])).ok, false);
      assert.deepEqual(await l!.reserve('c1', [charge('r', 100, 40, { step: 12, oldestStep: 11 })]), { ok: true, used: [0] });
      await l!.settle('c1', [{ key: 'r', amount: 30 }]);
      assert.deepEqual(await l!.read([{ key: 'r', oldestStep: 12 }]), [{ spent: 30, reserved: 0 }]);
      assert.deepEqual(await l!.read([{ key: 'r', oldestStep: 13 }]), [{ spent: 0, reserved: 0 }]);
    });

    it('a flood of reservations from every replica never passes the limit', async () => {
      const ledgers = await kind.open(kind.shared ? 3 : 1);
      await ledgers[0]!.seed('fp', []);
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => ledgers[i % ledgers.length]!.reserve(`f${i}`, [charge('hot', 1000, 7), charge(`user-${i % 5}`, 1000, 7)])));
      const granted = results.filter((r) => r.ok).length;
      assert.equal(granted, Math.floor(1000 / 7), 'exactly as many as fit');
      const [hot] = await ledgers[0]!.read([{ key: 'hot', oldestStep: 0 }]);
      assert.deepEqual(hot, { spent: 0, reserved: 7 * granted });
      await Promise.all(results.map((r, i) => (r.ok ? ledgers[i % ledgers.length]!.settle(`f${i}`, [{ key: 'hot', amount: 3 }, { key: `user-${i % 5}`, amount: 3 }]) : Promise.resolve())));
      assert.deepEqual(await ledgers[1 % ledgers.length]!.read([{ key: 'hot', oldestStep: 0 }]), [{ spent: 3 * granted, reserved: 0 }]);
    });

    it('announces a mark once', async () => {
      const ledgers = await kind.open(kind.shared ? 2 : 1);
      const marks = await Promise.all(Array.from({ length: 10 }, (_, i) => ledgers[i % ledgers.length]!.once('k', 'warn-0.8', Date.now() + DAY)));
      assert.equal(marks.filter(Boolean).length, 1);
      assert.equal(await ledgers[0]!.once('k', 'warn-0.9', Date.now() + DAY), true);
    });

    if (kind.shared) {
      it('a dead process\'s reservations lapse after the TTL; a live one\'s are renewed', async () => {
        const [dead, live, other] = await kind.open(3, 600);
        await other!.seed('fp', []);
        assert.equal((await dead!.reserve('gone', [charge('t', 100, 60)])).ok, true);
        assert.equal((await live!.reserve('running', [charge('t', 100, 30)])).ok, true);
        await dead!.close(); // stops renewing: as if killed
        assert.equal((await other!.reserve('x', [charge('t', 100, 20)])).ok, false, 'still held within the TTL');
        await sleep(1500);
        assert.deepEqual(await other!.reserve('x', [charge('t', 100, 20)]), { ok: true, used: [30] }, 'the dead one lapsed; the live one (renewed) still holds 30');
        await other!.settle('x', [{ key: 't', amount: 20 }]);
        await live!.settle('running', [{ key: 't', amount: 25 }]);
        assert.deepEqual(await other!.read([{ key: 't', oldestStep: 0 }]), [{ spent: 45, reserved: 0 }]);
      });

      it('a late settle of a lapsed reservation still counts, once', async () => {
        const [frozen] = await kind.open(1, 300, { renewMs: 3_600_000 }); // a process that stopped renewing (frozen, not dead)
        const [other] = await kind.open(1, 300, { reuse: true });
        await other!.seed('fp', []);
        assert.equal((await frozen!.reserve('late', [charge('l', 100, 50)])).ok, true);
        await sleep(800);
        assert.deepEqual(await other!.reserve('o', [charge('l', 100, 100)]), { ok: true, used: [0] }, 'lapsed: released');
        await other!.settle('o', [{ key: 'l', amount: 0 }]);
        await frozen!.settle('late', [{ key: 'l', amount: 35 }]);
        await frozen!.settle('late', [{ key: 'l', amount: 35 }]);
        assert.deepEqual(await other!.read([{ key: 'l', oldestStep: 0 }]), [{ spent: 35, reserved: 0 }]);
      });
    }

    if (kind.lose) {
      it('a store that lost its data asks to be seeded again', async () => {
        const [l] = await kind.open(1);
        await l!.seed('fp', [{ key: 'k', step: 0, amount: 5, expiresAt: Date.now() + DAY }]);
        assert.equal((await l!.reserve('c', [charge('k', 100, 1)])).ok, true);
        await kind.lose!();
        assert.deepEqual(await l!.reserve('c2', [charge('k', 100, 1)]), { ok: false, unseeded: true });
        await l!.settle('c', [{ key: 'k', amount: 1 }]); // its reservation went with the data: nothing to settle, nothing counted
        assert.equal(await l!.seed('fp', [{ key: 'k', step: 0, amount: 9, expiresAt: Date.now() + DAY }]), true);
        assert.deepEqual(await l!.read([{ key: 'k', oldestStep: 0 }]), [{ spent: 9, reserved: 0 }]);
      });
    }
  });
}
