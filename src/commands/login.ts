import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Login extends Command {
  static override summary = 'Sign in to an aigov gateway (OIDC device code).';
  static override description =
    "Reads the gateway's /.well-known/aigov-configuration, then signs you in at its identity provider with a device code: " +
    'open the URL shown (a browser opens by itself when possible), check the code matches, approve. The refresh token goes to ' +
    'the OS keychain (or a 0600 file with --insecure-storage, or when there is no keychain); access tokens stay in memory.';

  static override examples = [
    { command: '<%= config.bin %> login --gateway http://127.0.0.1:8787', description: 'Sign in to a local dev gateway.' },
    { command: '<%= config.bin %> login --gateway https://aigov.example.com --profile work --no-browser', description: 'Sign in over SSH.' },
    { command: '<%= config.bin %> login --profile bob', description: 'Sign in as another user to the gateway of the default profile.' },
  ];

  static override flags = {
    gateway: Flags.string({ char: 'g', summary: 'Gateway base URL; without a scheme, http for localhost/127.0.0.1 and https otherwise (default: the profile\'s gateway, else the default profile\'s).', env: 'AIGOV_GATEWAY' }),
    profile: Flags.string({ summary: 'Profile to sign in (default "default").', env: 'AIGOV_PROFILE' }),
    'no-browser': Flags.boolean({ summary: 'Do not open a browser; just show the URL and code.', env: 'AIGOV_NO_BROWSER' }),
    'insecure-storage': Flags.boolean({ summary: 'Keep the refresh token in a 0600 file in the config dir instead of the OS keychain.', env: 'AIGOV_INSECURE_STORAGE' }),
    json: Flags.boolean({ summary: 'Print the result as JSON on stdout (prompts still go to stderr).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Login);
    const controller = new AbortController();
    // Registered with `on`, not `once`, and idempotent: Ink's signal-exit hooks re-raise SIGINT
    // when they find no other listener, which would kill us before the view says "cancelled".
    const onSigint = () => {
      if (!controller.signal.aborted) controller.abort(new DOMException('login cancelled', 'AbortError'));
    };
    process.on('SIGINT', onSigint);
    await runCommand(async () => {
      const { login, loginSummary } = await import('../auth/login-service.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      const interval = Number(process.env.AIGOV_DEVICE_POLL_INTERVAL);
      try {
        const result = await login({
          profile: flags.profile ?? defaultProfile(),
          gatewayUrl: flags.gateway,
          noBrowser: flags['no-browser'],
          insecureStorage: flags['insecure-storage'],
          signal: controller.signal,
          ...(Number.isFinite(interval) && interval > 0 ? { pollIntervalSeconds: interval } : {}),
        });
        process.stderr.write(`${loginSummary(result)}\n`);
        if (flags.json) {
          const json = {
            profile: result.profile,
            gateway: result.gatewayUrl,
            user: result.user,
            credentials: result.credentials,
            loggedInAt: new Date(result.loggedInAt).toISOString(),
          };
          process.stdout.write(`${JSON.stringify(json)}\n`);
        }
      } catch (error) {
        if (controller.signal.aborted) {
          process.stderr.write('aigov: login cancelled.\n');
          process.exit(130);
        }
        throw error;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
  }
}
