/**
 * The gateway under benchmark, in its own process: the dev IdP mounted under /oidc, one openai
 * provider pointing at the upstream given as argv[2], SQLite recording in a temp dir, logging
 * silent. Logs alice in through the real device flow and prints ONE JSON line
 * `{"url","token","pid"}` on stdout — for the parent's pipe only (the token must not reach a
 * terminal). Stops, removing its temp dir, on SIGTERM or when stdin closes.
 *
 *   node bench/gateway-process.ts http://127.0.0.1:P [--recording-off] [--max-connections N] [--policy FILE]
 *                                 [--database-url postgres://… [--synchronous-commit on|off]]  (record in PostgreSQL instead of SQLite)
 *                                 [--budget-counters memory|redis|postgres [--redis-url redis://… --redis-prefix P]]  (where the policy's budgets count)
 *   (spawned by bench/gateway-overhead.ts, bench/many-streams.ts, bench/stream-masking.ts)
 *
 * --recording-off swaps in a store that discards everything: a diagnostic that isolates what
 * recording costs. Never a production mode (the gateway refuses to forward what it cannot record).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGatewayConfig } from '../src/config/load.ts';
import type { GatewayConfigInput } from '../src/config/schema.ts';
import { startDevIdp } from '../src/gateway/dev/idp.ts';
import { bindServer, startGateway } from '../src/gateway/start-gateway.ts';
import type { RecordingStore } from '../src/store/recording-store.ts';
import { deviceLogin } from '../test/support/dev-login.ts';

const CLIENT_ID = 'aigov-cli';
const upstreamUrl = process.argv[2];
if (!upstreamUrl || !/^http:\/\/127\.0\.0\.1:\d+$/.test(upstreamUrl)) {
  process.stderr.write('usage: node bench/gateway-process.ts http://127.0.0.1:PORT\n');
  process.exit(2);
}

const flag = process.argv.indexOf('--max-connections');
const maxConnections = flag === -1 ? null : Number(process.argv[flag + 1]);
const policyFlag = process.argv.indexOf('--policy');
const policyFile = policyFlag === -1 ? null : process.argv[policyFlag + 1];
const databaseFlag = process.argv.indexOf('--database-url');
const databaseUrl = databaseFlag === -1 ? null : process.argv[databaseFlag + 1];
const syncFlag = process.argv.indexOf('--synchronous-commit');
const synchronousCommit = syncFlag === -1 ? 'on' : process.argv[syncFlag + 1] === 'off' ? 'off' : 'on';
const countersFlag = process.argv.indexOf('--budget-counters');
const budgetCounters = countersFlag === -1 ? null : (process.argv[countersFlag + 1] as 'memory' | 'redis' | 'postgres');
const redisFlag = process.argv.indexOf('--redis-url');
const redisUrl = redisFlag === -1 ? null : process.argv[redisFlag + 1]!;
const prefixFlag = process.argv.indexOf('--redis-prefix');
const redisPrefix = prefixFlag === -1 ? undefined : process.argv[prefixFlag + 1];
const dir = await mkdtemp(join(tmpdir(), 'aigov-bench-gw-'));
const bound = await bindServer({ listen: { host: '127.0.0.1', port: 0 } });
const issuer = `${bound.url}/oidc`;
const idp = await startDevIdp({ issuer, audience: bound.url, cliClientId: CLIENT_ID, requiredScope: 'aigov', stateDir: join(dir, 'idp'), accessTokenTtlSeconds: 3600 });
const input: GatewayConfigInput = {
  listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
  identity: { issuer, audience: bound.url, cli_client_id: CLIENT_ID, required_scope: 'aigov' },
  providers: [{ name: 'openai', kind: 'openai', base_url: `${upstreamUrl}/v1`, api_key: '${BENCH_OPENAI_KEY}' }],
  storage: databaseUrl ? { driver: 'postgres', url: '${BENCH_DATABASE_URL}', synchronous_commit: synchronousCommit, path: join(dir, 'aigov.db') } : { driver: 'sqlite', path: join(dir, 'aigov.db') },
  logging: { level: 'silent' },
  ...(maxConnections ? { limits: { upstream_max_connections: maxConnections } } : {}),
  ...(policyFile ? { policy: { file: policyFile } } : {}),
  ...(budgetCounters ? { budgets: { counters: budgetCounters, ...(redisUrl ? { redis_url: '${BENCH_REDIS_URL}' } : {}), ...(redisPrefix ? { redis_prefix: redisPrefix } : {}) } } : {}),
};
const config = buildGatewayConfig(input, join(dir, 'bench-config'), { env: { BENCH_OPENAI_KEY: 'sk-bench-not-a-real-key-0000000000000000', ...(databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {}), ...(redisUrl ? { BENCH_REDIS_URL: redisUrl } : {}) } });
const discardingStore: RecordingStore = {
  recordRequest: async () => {},
  appendStreamEvents: () => {},
  finishCall: async () => {},
  flush: async () => {},
  health: async () => ({ ok: true, writeErrors: 0, detail: null }),
  listSessions: async () => [],
  getCall: async () => null,
  listCalls: async () => [],
  getStreamEvents: async () => [],
  querySessions: async () => ({ sessions: [], next: null }),
  getSession: async () => null,
  getSessionDetail: async () => null,
  listSessionApprovals: async () => [],
  getRawCopies: async () => ({}),
  usageReport: async () => ({ rows: [], total: { calls: 0, inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0, costNanoUsd: 0n, unpricedCalls: 0, beforePricingCalls: 0, noUsageCalls: 0 } }),
  chargesSince: async () => [],
  recordAccess: async () => {},
  close: async () => {},
};
const recordingOff = process.argv.includes('--recording-off');
const gateway = await startGateway(config, { version: 'bench', store: recordingOff ? discardingStore : undefined, mounts: [{ prefix: '/oidc', handle: (req, res) => idp.handle(req, res) }] }, bound);
const { accessToken } = await deviceLogin(idp, CLIENT_ID, 'alice');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await gateway.close();
    await idp.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
    // process.exit (not a kill) so that `--cpu-prof` can write its profile.
    process.exit(0);
  }
}
process.on('SIGTERM', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();

process.stdout.write(`${JSON.stringify({ url: bound.url, token: accessToken, pid: process.pid })}\n`);
