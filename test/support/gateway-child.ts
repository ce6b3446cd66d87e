/**
 * A gateway in its own process, for tests that kill it: the dev IdP under /oidc, an openai and an
 * anthropic provider pointing at the upstream given as argv[2], SQLite recording at argv[3]
 * (kept: the test reads it after the kill) — or, with a PostgreSQL URL as argv[4], recording
 * there (argv[3] is then the replica's local file) — logging silent. Logs alice in through the
 * real device flow and prints ONE JSON line `{"url","token","pid"}` on stdout (for the parent's
 * pipe). Runs until killed; SIGTERM closes it gracefully.
 *
 * Budgets (optional, from the environment): AIGOV_CHILD_POLICY (a policy file), AIGOV_CHILD_REDIS_URL
 * and AIGOV_CHILD_REDIS_PREFIX (counters in Redis), AIGOV_CHILD_BUDGET_TTL (reservation TTL, seconds).
 *
 *   node test/support/gateway-child.ts http://127.0.0.1:P /tmp/dir/aigov.db [postgres://…]
 */
import { dirname, join } from 'node:path';
import { buildGatewayConfig } from '../../src/config/load.ts';
import type { GatewayConfigInput } from '../../src/config/schema.ts';
import { startDevIdp } from '../../src/gateway/dev/idp.ts';
import { bindServer, startGateway } from '../../src/gateway/start-gateway.ts';
import { deviceLogin } from './dev-login.ts';

const CLIENT_ID = 'aigov-cli';
const [upstreamUrl, dbPath, databaseUrl] = process.argv.slice(2);
if (!upstreamUrl || !/^http:\/\/127\.0\.0\.1:\d+$/.test(upstreamUrl) || !dbPath) {
  process.stderr.write('usage: node test/support/gateway-child.ts http://127.0.0.1:PORT DB_PATH\n');
  process.exit(2);
}
const dir = dirname(dbPath);
const bound = await bindServer({ listen: { host: '127.0.0.1', port: 0 } });
const issuer = `${bound.url}/oidc`;
const idp = await startDevIdp({ issuer, audience: bound.url, cliClientId: CLIENT_ID, requiredScope: 'aigov', stateDir: join(dir, 'idp'), accessTokenTtlSeconds: 3600 });
const input: GatewayConfigInput = {
  listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
  identity: { issuer, audience: bound.url, cli_client_id: CLIENT_ID, required_scope: 'aigov' },
  providers: [
    { name: 'openai', kind: 'openai', base_url: `${upstreamUrl}/v1`, api_key: '${CHILD_OPENAI_KEY}' },
    { name: 'anthropic', kind: 'anthropic', base_url: upstreamUrl, api_key: '${CHILD_ANTHROPIC_KEY}' },
  ],
  storage: databaseUrl ? { driver: 'postgres', url: '${CHILD_DATABASE_URL}', pool_size: 4, path: dbPath } : { driver: 'sqlite', path: dbPath },
  logging: { level: process.env.AIGOV_TEST_LOG === '1' ? 'debug' : 'silent' },
  ...(process.env.AIGOV_CHILD_POLICY ? { policy: { file: process.env.AIGOV_CHILD_POLICY } } : {}),
  ...(process.env.AIGOV_CHILD_REDIS_URL
    ? { budgets: { redis_url: '${CHILD_REDIS_URL}', redis_prefix: process.env.AIGOV_CHILD_REDIS_PREFIX ?? 'aigov:budget:', reservation_ttl_seconds: Number(process.env.AIGOV_CHILD_BUDGET_TTL ?? 60) } }
    : {}),
};
const config = buildGatewayConfig(input, join(dir, 'child-config'), {
  env: { CHILD_OPENAI_KEY: 'sk-child-not-a-real-key-000000000000000', CHILD_ANTHROPIC_KEY: 'sk-ant-child-not-a-real-key-0000000000', CHILD_DATABASE_URL: databaseUrl, CHILD_REDIS_URL: process.env.AIGOV_CHILD_REDIS_URL },
});
const gateway = await startGateway(config, { version: 'test', mounts: [{ prefix: '/oidc', handle: (req, res) => idp.handle(req, res) }] }, bound);
const { accessToken } = await deviceLogin(idp, CLIENT_ID, 'alice');
process.on('SIGTERM', () => {
  void gateway.close().then(() => idp.close()).then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ url: bound.url, token: accessToken, pid: process.pid })}\n`);
