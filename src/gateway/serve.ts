/**
 * `aigov server` as a service: start the gateway (configured or dev), tell the operator what
 * to do next, and shut down gracefully on SIGINT/SIGTERM (a second signal exits at once).
 */
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { loadGatewayConfig } from '../config/load.ts';
import { defaultDevStateDir } from '../config/paths.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { startDevGateway, DEV_ISSUER_PATH, DEV_MODEL_PRICE, type RunningDevGateway } from './dev/dev-gateway.ts';
import { errorSummary } from './pipeline.ts';
import { createLogger, startGateway, type RunningGateway } from './start-gateway.ts';

export interface ServeOptions {
  readonly version: string;
  readonly dev: boolean;
  readonly configFile?: string | undefined;
  readonly port?: number | undefined;
  readonly stateDir?: string | undefined;
  readonly logLevel?: GatewayConfig['logging']['level'] | undefined;
  /** Overrides the configuration's policy file. */
  readonly policyFile?: string | undefined;
  /** Overrides limits.max_calls_per_session (the dev gateway's default is 300). */
  readonly maxCallsPerSession?: number | undefined;
}

export async function serveGateway(options: ServeOptions): Promise<void> {
  let gateway: RunningGateway;
  if (options.dev) {
    const dev = await startDevGateway({
      version: options.version,
      port: options.port ?? 8787,
      stateDir: options.stateDir ?? defaultDevStateDir(),
      logLevel: options.logLevel,
      policyFile: options.policyFile,
      maxCallsPerSession: options.maxCallsPerSession,
      // A person at a terminal reads the dev gateway's log: lines, not JSON.
      ...(process.stdout.isTTY ? { logger: createLogger(options.logLevel ?? 'info', { human: true }) } : {}),
    });
    printDevBanner(dev);
    if (process.stdin.isTTY) acceptTerminalApprovals(dev);
    gateway = dev;
  } else {
    let config = loadGatewayConfig(options.configFile ?? 'gateway.yaml');
    if (options.port !== undefined || options.logLevel !== undefined || options.policyFile !== undefined || options.maxCallsPerSession !== undefined) {
      config = {
        ...config,
        listen: { ...config.listen, port: options.port ?? config.listen.port },
        logging: { level: options.logLevel ?? config.logging.level },
        policy: options.policyFile ? { file: resolve(options.policyFile), reload: config.policy?.reload ?? true } : config.policy,
        limits: { ...config.limits, max_calls_per_session: options.maxCallsPerSession ?? config.limits.max_calls_per_session },
      };
    }
    gateway = await startGateway(config, { version: options.version });
    process.stderr.write(`aigov gateway ${options.version} listening on ${gateway.url} (config: ${config.source})\n`);
  }
  gateway.logger.info({ url: gateway.url, providers: gateway.config.providers.map((p) => p.name) }, 'gateway started');
  await waitForStopSignal(gateway);
}

function waitForStopSignal(gateway: RunningGateway): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`aigov: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write(`aigov: ${signal} received, finishing in-flight calls (up to ${gateway.config.limits.shutdown_grace_ms} ms; ${signal} again to exit now)\n`);
      gateway
        .close()
        .catch((error: unknown) => gateway.logger.error({ err: errorSummary(error) }, 'shutdown failed'))
        .finally(() => {
          gateway.logger.flush();
          resolve();
          // Open handles (stdin readline) must not keep a stopped gateway alive.
          setImmediate(() => process.exit(0));
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function printDevBanner(dev: RunningDevGateway): void {
  const users = dev.idp.users.map((u) => `${u.id} (${u.groups.join(', ')})`).join(', ');
  const lines = [
    '',
    'aigov DEV gateway — for trying aigov on this machine only (not for production)',
    `  gateway     ${dev.url}`,
    `  identity    ${dev.url}${DEV_ISSUER_PATH}  embedded OIDC provider; users: ${users}`,
    `  model       built-in dev model (no provider key configured; deterministic answers, offline)`,
    '              it calls a tool only when asked in so many words: run `COMMAND` with TOOL, or call TOOL with {JSON} (docs/dev-model.md)',
    `              priced at a made-up $${DEV_MODEL_PRICE.input.toFixed(2)} in / $${DEV_MODEL_PRICE.output.toFixed(2)} out per million tokens, so that \`aigov usage\` shows costs`,
    `  limits      ${dev.config.limits.max_calls_per_session || 'no limit on'} calls per session (--max-calls-per-session)`,
    `  providers   ${dev.config.providers.map((p) => `${p.name} → ${dev.url}/${p.name}${p.kind === 'openai' ? '/v1' : ''}`).join(', ')}`,
    `  recordings  ${dev.config.storage.path}`,
    `  policy      ${dev.config.policy ? dev.config.policy.file : 'none (every request allowed and recorded; try --policy examples/policy.yaml)'}`,
    `  approve     secret ${dev.approveSecret}  (new each start; the browser sign-in page and ${DEV_ISSUER_PATH}/dev/approve ask for it; also in ${dev.approveSecretFile}, readable only by you)`,
    '',
    'Next, in another terminal (from a checkout, use ./bin/run.js for aigov):',
    `  aigov login --gateway ${dev.url}`,
    process.stdin.isTTY
      ? '  then approve the code it shows by typing here:   approve CODE alice   (or deny CODE; users: alice, bob, carol, dave)'
      : `  then approve the code it shows:  curl -s -X POST ${dev.url}${DEV_ISSUER_PATH}/dev/approve -H 'content-type: application/json' -d '{"user_code":"CODE","user":"alice","secret":"${dev.approveSecret}"}'`,
    '  aigov run -- python3 examples/hello.py "Hello"     # any program using the OpenAI/Anthropic SDKs works the same way',
    `  node examples/dev-quickstart.mjs ${dev.url}       # or: the official SDKs with a token, without the CLI`,
  ];
  process.stderr.write(`${lines.join('\n')}\n\n`);
}

/** Dev only: `approve CODE [USER]` / `deny CODE` typed into the server's terminal. */
function acceptTerminalApprovals(dev: RunningDevGateway): void {
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    const [verb, code, user = 'alice'] = line.trim().split(/\s+/);
    if (!verb) return;
    if ((verb !== 'approve' && verb !== 'deny') || !code) {
      process.stderr.write('usage: approve CODE [USER]  |  deny CODE\n');
      return;
    }
    const action = verb === 'approve' ? dev.idp.approveDevice(code, user) : dev.idp.denyDevice(code);
    action.then(
      () => process.stderr.write(verb === 'approve' ? `approved ${code} as ${user}\n` : `denied ${code}\n`),
      (error: unknown) => process.stderr.write(`could not ${verb} ${code}: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  });
}
