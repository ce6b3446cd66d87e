/**
 * A real gateway for tests: the dev IdP mounted under /oidc on the gateway's own server, a
 * replaying fake upstream for each provider kind, SQLite in a temp dir (or PostgreSQL), and a token obtained
 * through the real device flow.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGatewayConfig } from '../../src/config/load.ts';
import type { GatewayConfigInput } from '../../src/config/schema.ts';
import { startDevIdp, type DevIdp } from '../../src/gateway/dev/idp.ts';
import type { PipelineHooks } from '../../src/gateway/hooks.ts';
import { bindServer, startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import { deviceLogin } from './dev-login.ts';
import { startReplayUpstream, type ReplayUpstream } from './replay-upstream.ts';

export const OPENAI_KEY = 'sk-proj-UPSTREAMsecretKEY0123456789abcd';
export const ANTHROPIC_KEY = 'sk-ant-api03-UPSTREAMsecretKEY0123456789wxyz';
export const CLIENT_ID = 'aigov-cli';

export interface Harness {
  readonly url: string;
  /** The running gateway (a new one after `restart()`). */
  readonly gateway: RunningGateway;
  readonly upstream: ReplayUpstream;
  readonly idp: DevIdp;
  readonly dir: string;
  /** alice's access token (developers). */
  readonly token: string;
  tokenFor(user: string): Promise<string>;
  /** Stops the gateway and starts a new one with the same config, port, IdP and database. */
  restart(): Promise<void>;
  /** Starts another gateway with the same config (IdP, database) on a port of its own: a replica (closed with the harness). */
  startReplica(): Promise<RunningGateway>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly hooks?: PipelineHooks;
  readonly limits?: GatewayConfigInput['limits'];
  readonly openaiModels?: string[];
  /** Put the database in a subdirectory (so a test can delete it under the gateway). */
  readonly storeSubdir?: string;
  /** Point the openai provider at another upstream than the replay server. */
  readonly openaiBaseUrl?: string;
  readonly logger?: Logger;
  /** A policy file for the gateway to enforce. */
  readonly policyFile?: string;
  /** pseudonyms.key (base64 or hex), given to the config as ${TEST_PSEUDONYM_KEY}; omitted: vaults in memory. */
  readonly pseudonymKey?: string;
  /** How often a stream held for approval gets an SSE comment. */
  readonly approvalKeepAliveMs?: number;
  /** audit.raw_copy.key (base64 or hex), given as ${TEST_RAW_COPY_KEY}; omitted: no raw copies. */
  readonly rawCopyKey?: string;
  /** The gateway's `answers` section. */
  readonly answers?: GatewayConfigInput['answers'];
  /** The gateway's `pricing` section. */
  readonly pricing?: GatewayConfigInput['pricing'];
  /** Extra headers the openai provider sends upstream (values are secrets to the gateway). */
  readonly openaiHeaders?: Record<string, string>;
  /** Record in PostgreSQL at this URL (given as ${TEST_DATABASE_URL}) instead of SQLite. */
  readonly databaseUrl?: string;
  /** storage.statement_timeout_ms with databaseUrl. */
  readonly statementTimeoutMs?: number;
  /**
   * Another replica of that harness's gateway: its IdP (tokens are valid on both), its upstream
   * and its users; a port, a local directory and a process state of its own. Closing it leaves
   * the shared parts running.
   */
  readonly replicaOf?: Harness;
  /** More of the `audit` section (signing_key, retention_days, checkpoint_interval). */
  readonly audit?: NonNullable<GatewayConfigInput['audit']>;
  /** The gateway's `budgets` section; a redis_url is given as ${TEST_REDIS_URL} from `redisUrl`. */
  readonly budgets?: NonNullable<GatewayConfigInput['budgets']>;
  readonly redisUrl?: string;
  /** The clock calls start by and budget windows are read with. */
  readonly now?: () => number;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'aigov-gw-'));
  const primary = options.replicaOf;
  const upstream = primary?.upstream ?? (await startReplayUpstream());
  const bound = await bindServer({ listen: { host: '127.0.0.1', port: 0 } });
  // Replicas trust the first one's IdP: one issuer and audience, as behind one load balancer.
  const audience = primary?.url ?? bound.url;
  const issuer = `${audience}/oidc`;
  const idp = primary?.idp ?? (await startDevIdp({ issuer, audience, cliClientId: CLIENT_ID, requiredScope: 'aigov', stateDir: join(dir, 'idp') }));
  const input: GatewayConfigInput = {
    listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
    identity: { issuer, audience, cli_client_id: CLIENT_ID, required_scope: 'aigov' },
    providers: [
      { name: 'openai', kind: 'openai', base_url: options.openaiBaseUrl ?? `${upstream.url}/v1`, api_key: '${TEST_OPENAI_KEY}', models: options.openaiModels ?? [], ...(options.openaiHeaders ? { headers: options.openaiHeaders } : {}) },
      { name: 'anthropic', kind: 'anthropic', base_url: upstream.url, api_key: '${TEST_ANTHROPIC_KEY}' },
    ],
    storage: options.databaseUrl
      ? { driver: 'postgres', url: '${TEST_DATABASE_URL}', pool_size: 4, path: join(dir, 'aigov.db'), ...(options.statementTimeoutMs ? { statement_timeout_ms: options.statementTimeoutMs } : {}) }
      : { driver: 'sqlite', path: join(dir, options.storeSubdir ?? '', 'aigov.db') },
    limits: options.limits ?? {},
    ...(options.answers ? { answers: options.answers } : {}),
    ...(options.pricing ? { pricing: options.pricing } : {}),
    ...(options.policyFile ? { policy: { file: options.policyFile } } : {}),
    ...(options.budgets || options.redisUrl ? { budgets: { ...options.budgets, ...(options.redisUrl ? { redis_url: '${TEST_REDIS_URL}' } : {}) } } : {}),
    ...(options.pseudonymKey ? { pseudonyms: { key: '${TEST_PSEUDONYM_KEY}' } } : {}),
    audit: { auditor_groups: ['auditors'], ...(options.rawCopyKey ? { raw_copy: { key: '${TEST_RAW_COPY_KEY}' } } : {}), ...options.audit },
    logging: { level: process.env.AIGOV_TEST_LOG === '1' ? 'debug' : 'silent' },
  };
  const config = buildGatewayConfig(input, join(dir, 'test-config'), { env: { TEST_OPENAI_KEY: OPENAI_KEY, TEST_ANTHROPIC_KEY: ANTHROPIC_KEY, TEST_PSEUDONYM_KEY: options.pseudonymKey, TEST_RAW_COPY_KEY: options.rawCopyKey, TEST_DATABASE_URL: options.databaseUrl, TEST_REDIS_URL: options.redisUrl } });
  const mounts = primary ? [] : [{ prefix: '/oidc', handle: (req: IncomingMessage, res: ServerResponse) => idp.handle(req, res) }];
  const startOptions = { version: 'test', hooks: options.hooks, logger: options.logger, approvalKeepAliveMs: options.approvalKeepAliveMs, mounts, now: options.now };
  let gateway = await startGateway(config, startOptions, bound);
  const replicas: RunningGateway[] = [];
  const tokenFor = primary ? (user: string): Promise<string> => primary.tokenFor(user) : (async (user: string): Promise<string> => (await deviceLogin(idp, CLIENT_ID, user)).accessToken);
  const token = primary?.token ?? (await tokenFor('alice'));
  return {
    url: bound.url,
    get gateway() {
      return gateway;
    },
    upstream,
    idp,
    dir,
    token,
    tokenFor,
    async restart() {
      await gateway.close();
      gateway = await startGateway(config, startOptions, await bindServer(config));
    },
    async startReplica() {
      const replica = await startGateway(config, { ...startOptions, mounts: [] }, await bindServer({ listen: { host: '127.0.0.1', port: 0 } }));
      replicas.push(replica);
      return replica;
    },
    async close() {
      for (const replica of replicas) await replica.close();
      await gateway.close();
      if (!primary) {
        await idp.close();
        await upstream.close();
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
