/**
 * The shared budget ledger in Redis (the default for several replicas: bench/budget-ledger.ts):
 * each reserve, settle, seed and renewal is one Lua script — atomic on the server, one round
 * trip — on Redis's own clock (TIME), so replicas' clocks never decide a deadline.
 *
 * Keys, under a prefix (default `aigov:budget:`), per counter `K`:
 * - `c:K` hash: `r` = reserved, `s:<step>` = spent in that step; expires after its window.
 * - `h:K` hash: call id → `<amount>:<step>:<L|X>` (L: live, X: lapsed — its process missed the
 *   deadline; a late settle of it still adds what the call was charged, once).
 * - `d:K` sorted set: call id → deadline (ms) of the live reservations.
 * and `seed:<fingerprint>` (never expires) once a budget's counters are seeded, `m:K:<mark>`
 * for a warning already sent.
 *
 * When Redis loses its data (a restart without persistence, a flush), the seed keys are gone
 * with the counters: the next reserve answers "unseeded" and the gateway seeds them again from
 * the record. Reservations lost with them are forgotten (their settles find nothing: a call is
 * never counted twice). Redis must not evict keys (`maxmemory-policy noeviction`): an evicted
 * counter would restart from zero under a seed that remains — {@link RedisBudgetLedger.open}
 * warns otherwise.
 */
import { SettleRetries } from '../settle-retries.ts';
import { Redis } from 'ioredis';
import { LedgerUnavailableError, type BudgetLedger, type CounterState, type LedgerCharge, type ReserveResult, type SeedEntry } from '../budget-ledger.ts';

export interface RedisLedgerOptions {
  /** redis://[:password@]host:port[/db] or rediss://… (may hold a password: never log it). */
  readonly url: string;
  readonly ttlMs: number;
  /** How often this process renews its running calls' reservations (default a third of the TTL). */
  readonly renewMs?: number;
  readonly prefix?: string;
  /** A command that takes longer fails (closed), ms. */
  readonly commandTimeoutMs?: number;
  readonly onError?: (message: string) => void;
}

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Sets a key's expiry to `at` unless it already expires later. */
const EXPIRE_FN = `local function expire_at(key, at)
  local e = redis.call('PEXPIRETIME', key)
  if e >= 0 and e < at then redis.call('PEXPIREAT', key, at) elseif e == -1 then redis.call('PEXPIREAT', key, at) end
end`;

/**
 * KEYS: the seed keys (ARGV[3] of them), then c, h, d per counter. ARGV: id, ttl, seeds, then
 * per counter: limit ('' = none), amount, step, oldest step, expires at.
 * Returns {0, used...} | {-1} (unseeded) | {i, spent, reserved} (refused by counter i).
 */
const RESERVE = `${NOW}
${EXPIRE_FN}
local id, ttl, seeds = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, seeds do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {-1} end
end
local n = (#KEYS - seeds) / 3
local used = {0}
for i = 1, n do
  local c, h, d = KEYS[seeds + 3 * i - 2], KEYS[seeds + 3 * i - 1], KEYS[seeds + 3 * i]
  local a = 3 + 5 * (i - 1)
  local limit, amount, oldest = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 4])
  local lapsed = redis.call('ZRANGEBYSCORE', d, '-inf', '(' .. now)
  for _, hid in ipairs(lapsed) do
    local v = redis.call('HGET', h, hid)
    if v then
      local amt, step, state = string.match(v, '^(%-?%d+):(%-?%d+):(%u)$')
      if state == 'L' then
        redis.call('HINCRBY', c, 'r', -tonumber(amt))
        redis.call('HSET', h, hid, amt .. ':' .. step .. ':X')
      end
    end
    redis.call('ZREM', d, hid)
  end
  local fields = redis.call('HGETALL', c)
  local spent, reserved = 0, 0
  for j = 1, #fields, 2 do
    local f = fields[j]
    if f == 'r' then
      reserved = tonumber(fields[j + 1])
    elseif tonumber(string.sub(f, 3)) >= oldest then
      spent = spent + tonumber(fields[j + 1])
    else
      redis.call('HDEL', c, f)
    end
  end
  if limit ~= '' and spent + reserved + math.max(amount, 1) > tonumber(limit) then return {i, spent, reserved} end
  used[i + 1] = spent + reserved
end
for i = 1, n do
  local c, h, d = KEYS[seeds + 3 * i - 2], KEYS[seeds + 3 * i - 1], KEYS[seeds + 3 * i]
  local a = 3 + 5 * (i - 1)
  local expires = tonumber(ARGV[a + 5])
  if redis.call('HSETNX', h, id, ARGV[a + 2] .. ':' .. ARGV[a + 3] .. ':L') == 1 then
    redis.call('HINCRBY', c, 'r', ARGV[a + 2])
    redis.call('ZADD', d, now + ttl, id)
  end
  expire_at(c, expires)
  expire_at(h, expires + 86400000)
  expire_at(d, expires + 86400000)
end
return used`;

/** KEYS: c, h, d per counter. ARGV: id, then the actual amount per counter. Returns how many holds it settled. */
const SETTLE = `local id = ARGV[1]
local settled = 0
for i = 1, #KEYS / 3 do
  local c, h, d = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local v = redis.call('HGET', h, id)
  if v then
    local amt, step, state = string.match(v, '^(%-?%d+):(%-?%d+):(%u)$')
    if state == 'L' then
      redis.call('HINCRBY', c, 'r', -tonumber(amt))
      redis.call('ZREM', d, id)
    end
    redis.call('HDEL', h, id)
    if ARGV[1 + i] ~= '0' and redis.call('EXISTS', c) == 1 then redis.call('HINCRBY', c, 's:' .. step, ARGV[1 + i]) end
    settled = settled + 1
  end
end
return settled`;

/** KEYS: d per reservation. ARGV: ttl, then the call id per key. Pushes the deadlines of live reservations only (XX). */
const RENEW = `${NOW}
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', 'GT', now + ttl, ARGV[1 + i]) end
return 0`;

/** KEYS: the seed key, then c per entry. ARGV: per entry step, amount, expires at. Returns 1 when it seeded, 0 when it was seeded already. */
const SEED = `${EXPIRE_FN}
if redis.call('SET', KEYS[1], '1', 'NX') == false then return 0 end
for i = 2, #KEYS do
  local a = 3 * (i - 2)
  redis.call('HINCRBY', KEYS[i], 's:' .. ARGV[a + 1], ARGV[a + 2])
  expire_at(KEYS[i], tonumber(ARGV[a + 3]))
end
return 1`;

/** KEYS: c, h, d per counter. ARGV: the oldest step per counter. Returns spent, reserved per counter (lapsed reservations not counted). */
const READ = `${NOW}
local out = {}
for i = 1, #KEYS / 3 do
  local c, h, d = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local oldest = tonumber(ARGV[i])
  local spent, reserved = 0, 0
  local fields = redis.call('HGETALL', c)
  for j = 1, #fields, 2 do
    if fields[j] == 'r' then reserved = tonumber(fields[j + 1])
    elseif tonumber(string.sub(fields[j], 3)) >= oldest then spent = spent + tonumber(fields[j + 1]) end
  end
  for _, hid in ipairs(redis.call('ZRANGEBYSCORE', d, '-inf', '(' .. now)) do
    local v = redis.call('HGET', h, hid)
    if v then reserved = reserved - tonumber(string.match(v, '^(%-?%d+):')) end
  end
  out[2 * i - 1] = spent
  out[2 * i] = reserved
end
return out`;

type Script = (...args: (string | number)[]) => Promise<unknown>;
type ScriptName = 'reserve' | 'settle' | 'renew' | 'seed' | 'read';

export class RedisBudgetLedger implements BudgetLedger {
  readonly kind = 'redis';
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #onError: (message: string) => void;
  readonly #scripts: Record<ScriptName, Script>;
  readonly #live = new Map<string, readonly string[]>();
  readonly #retry = new SettleRetries((id, actuals) => this.#settleNow(id, actuals));
  readonly #renewTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(redis: Redis, options: RedisLedgerOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? 'aigov:budget:';
    this.#ttlMs = options.ttlMs;
    this.#onError = options.onError ?? (() => {});
    const define = (name: string, lua: string): Script => {
      redis.defineCommand(name, { lua });
      return (redis as unknown as Record<string, Script>)[name]!.bind(redis);
    };
    this.#scripts = {
      reserve: define('aigovBudgetReserve', RESERVE),
      settle: define('aigovBudgetSettle', SETTLE),
      renew: define('aigovBudgetRenew', RENEW),
      seed: define('aigovBudgetSeed', SEED),
      read: define('aigovBudgetRead', READ),
    };
    this.#renewTimer = setInterval(() => void this.#renew(), options.renewMs ?? Math.max(100, Math.floor(options.ttlMs / 3)));
    this.#renewTimer.unref();
  }

  /**
   * Connects (commands fail at once while Redis is unreachable: budgets fail closed; ioredis
   * reconnects by itself). Resolves even when Redis is down at first; warns when its eviction
   * policy could drop counters.
   */
  static async open(options: RedisLedgerOptions): Promise<RedisBudgetLedger> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      connectTimeout: options.commandTimeoutMs ?? 2000,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    // ioredis reports connection errors here too; without a listener they would be thrown.
    redis.on('error', (error: Error) => options.onError?.(`budget ledger (Redis): ${describeRedisError(error)}`));
    const ledger = new RedisBudgetLedger(redis, options);
    try {
      await redis.connect();
      const policy = (await redis.config('GET', 'maxmemory-policy')) as string[];
      const value = policy[1];
      if (value !== undefined && value !== 'noeviction') options.onError?.(`Redis evicts keys (maxmemory-policy ${value}): a budget counter it drops restarts from zero; set maxmemory-policy noeviction`);
    } catch (error) {
      options.onError?.(`budget ledger (Redis) not reachable yet; budgets refuse requests until it is: ${describeRedisError(error)}`);
    }
    return ledger;
  }

  #keys(key: string): [string, string, string] {
    return [`${this.#prefix}c:${key}`, `${this.#prefix}h:${key}`, `${this.#prefix}d:${key}`];
  }

  async #run(script: ScriptName, args: (string | number)[]): Promise<unknown> {
    if (this.#closed) throw new LedgerUnavailableError('the budget ledger is closed');
    try {
      return await this.#scripts[script](...args);
    } catch (error) {
      throw new LedgerUnavailableError(`the budget ledger (Redis) failed: ${describeRedisError(error)}`, { cause: error });
    }
  }

  async reserve(id: string, charges: readonly LedgerCharge[]): Promise<ReserveResult> {
    const seeds = [...new Set(charges.map((c) => `${this.#prefix}seed:${c.fingerprint}`))];
    const keys = [...seeds, ...charges.flatMap((c) => this.#keys(c.key))];
    const args = charges.flatMap((c) => [c.limit === null ? '' : String(c.limit), String(c.amount), String(c.step), String(c.oldestStep), String(c.expiresAt)]);
    const out = (await this.#run('reserve', [keys.length, ...keys, id, this.#ttlMs, seeds.length, ...args])) as number[];
    const first = out[0];
    if (first === -1) return { ok: false, unseeded: true };
    if (first === 0) {
      this.#live.set(id, charges.map((c) => c.key));
      return { ok: true, used: out.slice(1).map(Number) };
    }
    const index = Number(first) - 1;
    const charge = charges[index]!;
    return { ok: false, refused: { index, key: charge.key, spent: Number(out[1]), reserved: Number(out[2]), limit: charge.limit ?? 0, amount: charge.amount } };
  }

  async settle(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void> {
    if (!this.#live.has(id) && !this.#retry.has(id)) return;
    try {
      await this.#settleNow(id, actuals);
    } catch (error) {
      this.#onError(`settling a call's budget reservations failed; retrying: ${error instanceof Error ? error.message : String(error)}`);
      this.#retry.owe(id, actuals);
      throw error;
    }
  }

  async #settleNow(id: string, actuals: readonly { readonly key: string; readonly amount: number }[]): Promise<void> {
    const keys = actuals.flatMap((a) => this.#keys(a.key));
    await this.#run('settle', [keys.length, ...keys, id, ...actuals.map((a) => String(a.amount))]);
    this.#live.delete(id);
    this.#retry.paid(id);
  }

  async #renew(): Promise<void> {
    if (this.#live.size === 0 || this.#closed) return;
    const keys: string[] = [];
    const ids: string[] = [];
    for (const [id, counters] of this.#live) {
      for (const key of counters) {
        keys.push(this.#keys(key)[2]);
        ids.push(id);
      }
    }
    try {
      await this.#run('renew', [keys.length, ...keys, this.#ttlMs, ...ids]);
    } catch (error) {
      this.#onError(`renewing budget reservations failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async isSeeded(fingerprint: string): Promise<boolean> {
    try {
      return (await this.#redis.exists(`${this.#prefix}seed:${fingerprint}`)) === 1;
    } catch (error) {
      throw new LedgerUnavailableError(`the budget ledger (Redis) failed: ${describeRedisError(error)}`, { cause: error });
    }
  }

  async seed(fingerprint: string, entries: readonly SeedEntry[]): Promise<boolean> {
    const keys = [`${this.#prefix}seed:${fingerprint}`, ...entries.map((e) => this.#keys(e.key)[0])];
    const args = entries.flatMap((e) => [String(e.step), String(e.amount), String(e.expiresAt)]);
    return (await this.#run('seed', [keys.length, ...keys, ...args])) === 1;
  }

  async once(key: string, mark: string, expiresAt: number): Promise<boolean> {
    try {
      return (await this.#redis.set(`${this.#prefix}m:${key}:${mark}`, '1', 'PXAT', expiresAt, 'NX')) === 'OK';
    } catch (error) {
      throw new LedgerUnavailableError(`the budget ledger (Redis) failed: ${describeRedisError(error)}`, { cause: error });
    }
  }

  async read(counters: readonly { readonly key: string; readonly oldestStep: number }[]): Promise<CounterState[]> {
    if (counters.length === 0) return [];
    const keys = counters.flatMap((c) => this.#keys(c.key));
    const out = (await this.#run('read', [keys.length, ...keys, ...counters.map((c) => String(c.oldestStep))])) as number[];
    return counters.map((_, i) => ({ spent: Number(out[2 * i]), reserved: Number(out[2 * i + 1]) }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#renewTimer);
    await this.#retry.close(); // a last try for settles still owed
    this.#closed = true;
    this.#redis.disconnect();
  }
}

/** An ioredis error as text: its message (which never holds the URL or password), the connection's code when there is one. */
function describeRedisError(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
