/**
 * The daemon process: profile → credential store → token refresher → loopback proxy + control
 * socket, until `stop`, SIGTERM or SIGINT. `startDaemonRuntime` is the wiring without the
 * profile and credentials (tests give it any TokenSource); `runDaemon` is the whole process.
 */
import type { Writable } from 'node:stream';
import type { TokenSource } from '../auth/token-source.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { canonicalDir, defaultConfigDir, defaultRuntimeDir } from '../config/paths.ts';
import type { Discovery } from '../protocol/discovery.ts';
import type { AccessTokenResponse, DaemonUser, MintRunResponse, StatusResponse } from './control-protocol.ts';
import { startControlServer, type ControlServer } from './control-server.ts';
import { createLineLogger, silentLogger, type DaemonLogger } from './daemon-log.ts';
import { startDaemonServer, type DaemonServer } from './daemon-server.ts';

export interface DaemonRuntimeOptions {
  /** The configuration served: a profile of a config dir. Together they name its socket. */
  readonly profile: string;
  readonly configDir: string;
  readonly runtimeDir: string;
  /** The profile's login it serves (reported by `status`: a CLI uses only a daemon serving its current login). */
  readonly gatewayUrl: string;
  readonly discovery: Pick<Discovery, 'providers'>;
  readonly tokenSource: TokenSource & { close?(): void };
  readonly user: DaemonUser | null;
  /** Epoch ms of that login (the profile's `loggedInAt`); null for a login from the environment (CI). */
  readonly loggedInAt: number | null;
  readonly version: string;
  readonly caFile?: string;
  readonly logger?: DaemonLogger;
  /** How long requests in flight may run on after a stop; default 5000 ms. */
  readonly graceMs?: number;
}

export interface RunningDaemon {
  readonly server: DaemonServer;
  readonly control: ControlServer;
  /** Graceful stop: refuse new requests, let those in flight finish (bounded), remove socket and pid file. Idempotent. */
  stop(): Promise<void>;
  /** Settles once the daemon has stopped, however it was asked to. */
  readonly stopped: Promise<void>;
}

export async function startDaemonRuntime(options: DaemonRuntimeOptions): Promise<RunningDaemon> {
  const logger = options.logger ?? silentLogger;
  const startedAt = Date.now();
  const configDir = canonicalDir(options.configDir);
  const server = await startDaemonServer({
    gatewayUrl: options.gatewayUrl,
    discovery: options.discovery,
    tokenSource: options.tokenSource,
    profile: options.profile,
    logger,
    ...(options.caFile ? { caFile: options.caFile } : {}),
  });
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | null = null;
  let control: ControlServer | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping');
      // Socket and pid file go first: from now on this daemon is not there for new callers.
      await control?.close();
      await server.close({ graceMs: options.graceMs ?? 5000 });
      options.tokenSource.close?.();
      logger.info('stopped');
      resolveStopped();
    })();
    return stopping;
  };
  const providers = options.discovery.providers.map((p) => ({ name: p.name, kind: p.kind, path: p.path, base_url: `${server.baseUrl}${p.path}` }));
  try {
    control = await startControlServer({
      runtimeDir: options.runtimeDir,
      configDir,
      profile: options.profile,
      port: server.port,
      version: options.version,
      startedAt,
      logger,
      handlers: {
        status: (): StatusResponse => ({
          ok: true,
          pid: process.pid,
          port: server.port,
          profile: options.profile,
          configDir,
          gateway: options.gatewayUrl,
          user: options.user,
          loggedInAt: options.loggedInAt,
          runs: server.runs,
          startedAt,
          version: options.version,
          tokenExpiresAt: server.tokenExpiresAt,
        }),
        mintRun: (label): MintRunResponse => {
          const grant = server.mintRun(label);
          logger.info(`run started: session ${grant.sessionId}`);
          return { ok: true, ...grant, baseUrl: server.baseUrl, providers };
        },
        revokeRun: (runKey) => server.revokeRun(runKey),
        accessToken: async (renew): Promise<AccessTokenResponse> => {
          if (renew) options.tokenSource.invalidate();
          try {
            const { token, expiresAt } = await options.tokenSource.getAccessToken();
            return { ok: true, token, expiresAt, gateway: options.gatewayUrl };
          } catch (error) {
            logger.warn(`access token for a CLI command: ${isAigovError(error) ? error.code : 'failed'}`);
            // The refresher's message names the profile only sometimes; this one always does.
            if (isAigovError(error) && error.code === 'AIGOV_E_SESSION_EXPIRED') throw new AigovError('AIGOV_E_SESSION_EXPIRED', { profile: options.profile });
            throw error;
          }
        },
        stop: () => void stop(),
      },
    });
  } catch (error) {
    await server.close({ graceMs: 0 });
    throw error;
  }
  logger.info(`listening on ${server.baseUrl} for profile ${options.profile} of ${configDir}, gateway ${options.gatewayUrl}, control socket ${control.files.socket}`);
  return { server, control, stop, stopped };
}

export interface RunDaemonOptions {
  readonly profile: string;
  readonly runtimeDir?: string;
  readonly configDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly version?: string;
  /** Extra CA certificates (PEM file) for an https gateway and IdP; default $AIGOV_CA_FILE. */
  readonly caFile?: string;
  /** Where the log lines go; default stderr (the log file when started by `connectDaemon`). */
  readonly logStream?: Writable;
}

/**
 * The daemon process's body: resolves when it has stopped. Startup failures are logged as
 * `fatal code=… params=…` (read by `connectDaemon` to report them) and rethrown.
 */
export async function runDaemon(options: RunDaemonOptions): Promise<void> {
  const env = options.env ?? process.env;
  const logger = createLineLogger(options.logStream ?? process.stderr);
  let daemon: RunningDaemon;
  try {
    daemon = await startFromProfile({ ...options, env }, logger);
  } catch (error) {
    const coded = isAigovError(error) ? error : null;
    logger.error(coded ? `fatal code=${coded.code} params=${JSON.stringify(coded.params)} ${coded.message}` : `fatal ${error instanceof Error ? error.name : 'error'}`);
    throw error;
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info(`${signal} received`);
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    await daemon.stopped;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

async function startFromProfile(options: RunDaemonOptions & { env: NodeJS.ProcessEnv }, logger: DaemonLogger): Promise<RunningDaemon> {
  const { env, profile } = options;
  // One spelling of the config dir: it names this daemon's socket, as it does for the CLI.
  const configDir = canonicalDir(options.configDir ?? defaultConfigDir(env));
  const runtimeDir = options.runtimeDir ?? defaultRuntimeDir(env);
  const caFile = options.caFile ?? (env.AIGOV_CA_FILE?.trim() || undefined);
  const [{ openCliSettings }, { openCredentialStore }, { createTokenRefresher }] = await Promise.all([
    import('../config/cli-settings.ts'),
    import('../auth/credential-stores.ts'),
    import('../auth/token-refresher.ts'),
  ]);
  const fetchWithCa = caFile ? await (await import('./ca-fetch.ts')).caFetch(caFile) : undefined;

  let settings = openCliSettings(configDir).getProfile(profile);
  if (settings === null && env.AIGOV_REFRESH_TOKEN?.trim() && env.AIGOV_GATEWAY?.trim()) {
    // CI: no login happened on this machine; the gateway and the refresh token come from the environment.
    const { fetchGatewayDiscovery, normalizeGatewayUrl } = await import('../auth/oidc-client.ts');
    const gatewayUrl = normalizeGatewayUrl(env.AIGOV_GATEWAY, 'AIGOV_GATEWAY');
    const discovery = await fetchGatewayDiscovery(gatewayUrl, fetchWithCa ? { fetch: fetchWithCa } : {});
    settings = { gatewayUrl, discovery, credentialStore: 'env', user: null, loggedInAt: null };
  }
  if (settings === null) throw new AigovError('AIGOV_E_NOT_LOGGED_IN', { profile });
  const { store } = await openCredentialStore({ kind: settings.credentialStore, configDir, env });
  const refreshToken = await store.load(profile);
  if (refreshToken === null || refreshToken === '') throw new AigovError('AIGOV_E_NOT_LOGGED_IN', { profile });
  const { discovery } = settings;
  const tokenSource = createTokenRefresher({
    issuer: discovery.issuer,
    clientId: discovery.cli_client_id,
    profile,
    store,
    initialRefreshToken: refreshToken,
    resource: discovery.resource,
    onWarning: (message) => logger.warn(message),
    ...(fetchWithCa ? { fetch: fetchWithCa } : {}),
  });
  const daemon = await startDaemonRuntime({
    profile,
    configDir,
    runtimeDir,
    gatewayUrl: settings.gatewayUrl,
    discovery,
    tokenSource,
    user: settings.user,
    loggedInAt: settings.loggedInAt,
    version: options.version ?? 'unknown',
    logger,
    ...(caFile ? { caFile } : {}),
  });
  // Warm the first access token so the first request does not wait for the IdP; a failure
  // here is reported to whichever request needs the token.
  tokenSource.getAccessToken().then(
    () => logger.info('access token ready'),
    (error: unknown) => logger.warn(`could not get an access token yet: ${isAigovError(error) ? error.code : 'error'}`),
  );
  return daemon;
}
