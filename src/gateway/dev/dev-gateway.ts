/**
 * `aigov server --dev`: a zero-config gateway for trying aigov on one machine. Binds 127.0.0.1,
 * embeds an OIDC provider with seeded users, records to SQLite in the state dir and, with no
 * provider key configured, answers from the built-in dev model.
 *
 * The state dir is private (0700; everything in it 0600: recordings, IdP logins, keys, the
 * per-start approve secret); an existing looser one is tightened with a warning in the log.
 */
import { join, resolve } from 'node:path';
import { ensurePrivateDir } from '../../config/private-files.ts';
import { buildGatewayConfig } from '../../config/load.ts';
import type { GatewayConfig, GatewayConfigInput } from '../../config/schema.ts';
import { bindServer, createLogger, startGateway, tightenedLogger, type RunningGateway, type StartGatewayOptions } from '../start-gateway.ts';
import { createDevApproveSecret } from './dev-approve-secret.ts';
import { DEV_MODEL_ID, startDevModel } from './dev-model.ts';
import { ensureDevPseudonymKey } from './dev-pseudonym-key.ts';
import { ensureDevAuditKey } from './dev-audit-key.ts';
import { DEV_GROUPS } from './dev-users.ts';
import { startDevIdp, type DevIdp } from './idp.ts';

export const DEV_CLI_CLIENT_ID = 'aigov-cli';
export const DEV_REQUIRED_SCOPE = 'aigov';
export const DEV_ISSUER_PATH = '/oidc';
/** Calls one session may make through the dev gateway (limits.max_calls_per_session). */
export const DEV_MAX_CALLS_PER_SESSION = 300;

/** What the dev gateway charges for the dev model, in US dollars per million tokens: made up (gpt-4o-mini's list price). */
export const DEV_MODEL_PRICE = { input: 0.15, cached_input: 0.075, output: 0.6 } as const;

export interface DevGatewayOptions extends Omit<StartGatewayOptions, 'dev' | 'mounts' | 'onClose'> {
  readonly port: number;
  readonly stateDir: string;
  readonly logLevel?: GatewayConfig['logging']['level'];
  /** Lifetime of the dev IdP's access tokens (default 600 s); tests shorten it to exercise refresh. */
  readonly accessTokenTtlSeconds?: number;
  /** A policy file to enforce (see examples/policy.yaml). */
  readonly policyFile?: string;
  /** limits.max_calls_per_session (default {@link DEV_MAX_CALLS_PER_SESSION}; 0 = no limit). */
  readonly maxCallsPerSession?: number;
}

export interface RunningDevGateway extends RunningGateway {
  readonly idp: DevIdp;
  readonly stateDir: string;
  /** This start's approve secret (the banner prints it) and the 0600 file in the state dir that holds it. */
  readonly approveSecret: string;
  readonly approveSecretFile: string;
}

export async function startDevGateway(options: DevGatewayOptions): Promise<RunningDevGateway> {
  const logger = options.logger ?? createLogger(options.logLevel ?? 'info');
  const privacy = { onTightened: tightenedLogger(logger) };
  ensurePrivateDir(options.stateDir, privacy);
  const approve = createDevApproveSecret(options.stateDir);
  const listenOnly = { listen: { host: '127.0.0.1', port: options.port } };
  let bound: Awaited<ReturnType<typeof bindServer>>;
  let devModel: Awaited<ReturnType<typeof startDevModel>>;
  try {
    bound = await bindServer(listenOnly);
  } catch (error) {
    approve.remove();
    throw error;
  }
  try {
    devModel = await startDevModel();
  } catch (error) {
    approve.remove();
    bound.server.close();
    throw error;
  }
  let idp: DevIdp | null = null;
  try {
    const issuer = `${bound.url}${DEV_ISSUER_PATH}`;
    idp = await startDevIdp({
      issuer,
      audience: bound.url,
      cliClientId: DEV_CLI_CLIENT_ID,
      requiredScope: DEV_REQUIRED_SCOPE,
      stateDir: options.stateDir,
      accessTokenTtlSeconds: options.accessTokenTtlSeconds,
      approveSecret: approve.secret,
      onTightened: privacy.onTightened,
    });
    const input: GatewayConfigInput = {
      listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
      identity: {
        issuer,
        audience: bound.url,
        cli_client_id: DEV_CLI_CLIENT_ID,
        required_scope: DEV_REQUIRED_SCOPE,
        scopes: ['openid', 'email', 'profile', 'offline_access'],
      },
      providers: [
        { name: 'openai', kind: 'openai', base_url: devModel.openaiBaseUrl },
        { name: 'anthropic', kind: 'anthropic', base_url: devModel.anthropicBaseUrl },
      ],
      storage: { driver: 'sqlite', path: join(options.stateDir, 'aigov.db') },
      logging: { level: options.logLevel ?? 'info' },
      // A runaway agent stops at a clear 429 instead of filling the state dir with recordings.
      limits: { max_calls_per_session: options.maxCallsPerSession ?? DEV_MAX_CALLS_PER_SESSION },
      ...(options.policyFile ? { policy: { file: resolve(options.policyFile) } } : {}),
      pseudonyms: { key: { file: ensureDevPseudonymKey(options.stateDir, privacy) } },
      audit: { auditor_groups: ['auditors'], signing_key: { file: ensureDevAuditKey(options.stateDir, privacy) } },
      // A made-up price for the dev model (gpt-4o-mini's), so that `aigov usage` has costs to show.
      pricing: { models: ['openai', 'anthropic'].map((provider) => ({ provider, model: DEV_MODEL_ID, ...DEV_MODEL_PRICE })) },
    };
    const base = buildGatewayConfig(input, '(built-in dev configuration)');
    const config: GatewayConfig = { ...base, providers: base.providers.map((p) => ({ ...p, devModel: true })) };
    const devIdp = idp;
    const gateway = await startGateway(
      config,
      {
        ...options,
        logger,
        dev: true,
        knownGroups: DEV_GROUPS,
        mounts: [{ prefix: DEV_ISSUER_PATH, handle: (req, res) => devIdp.handle(req, res) }],
        onClose: async () => {
          approve.remove();
          await devIdp.close();
          await devModel.close();
        },
      },
      bound,
    );
    return Object.assign(gateway, { idp: devIdp, stateDir: options.stateDir, approveSecret: approve.secret, approveSecretFile: approve.file });
  } catch (error) {
    approve.remove();
    await idp?.close().catch(() => undefined);
    await devModel.close().catch(() => undefined);
    bound.server.close();
    throw error;
  }
}
