import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Server extends Command {
  static override summary = 'Run the aigov gateway.';
  static override description =
    'Verifies OIDC access tokens, proxies the OpenAI and Anthropic APIs with the provider keys swapped in, and records every call. ' +
    'Use --dev for a zero-config local gateway with an embedded identity provider, SQLite in the state dir and a built-in dev model.';

  static override examples = [
    { command: '<%= config.bin %> server --dev', description: 'Try aigov on this machine, offline.' },
    { command: '<%= config.bin %> server --config gateway.yaml', description: 'Run with a configuration file (see examples/gateway.yaml).' },
  ];

  static override flags = {
    config: Flags.string({ char: 'c', summary: 'Gateway configuration file (YAML).', env: 'AIGOV_CONFIG', exclusive: ['dev'] }),
    dev: Flags.boolean({ summary: 'Zero-config dev gateway: embedded IdP, SQLite, built-in dev model; binds 127.0.0.1.', env: 'AIGOV_DEV' }),
    port: Flags.integer({ char: 'p', summary: 'Port to listen on (overrides listen.port; dev default 8787, 0 picks a free one).', env: 'AIGOV_PORT', min: 0, max: 65535 }),
    'state-dir': Flags.string({ summary: 'Dev mode: where to keep the IdP keys and the SQLite recordings.', env: 'AIGOV_STATE_DIR' }),
    policy: Flags.string({ summary: 'Policy file to enforce (overrides the configuration\'s policy.file; see examples/policy.yaml).', env: 'AIGOV_POLICY' }),
    'max-calls-per-session': Flags.integer({ summary: 'Most calls one session (one `aigov run`) may make; 0 = no limit (overrides limits.max_calls_per_session; dev default 300).', env: 'AIGOV_MAX_CALLS_PER_SESSION', min: 0 }),
    'log-level': Flags.string({ summary: 'Log level (overrides logging.level).', env: 'AIGOV_LOG_LEVEL', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Server);
    if (!flags.dev && !flags.config) {
      this.error('Pass --config FILE to run with a configuration, or --dev for a zero-config local gateway.', { exit: 64 });
    }
    await runCommand(async () => {
      const { serveGateway } = await import('../gateway/serve.ts');
      await serveGateway({
        version: this.config.version,
        dev: flags.dev,
        configFile: flags.config,
        port: flags.port,
        stateDir: flags['state-dir'],
        logLevel: flags['log-level'] as 'info' | undefined,
        policyFile: flags.policy,
        maxCallsPerSession: flags['max-calls-per-session'],
      });
    });
  }
}
