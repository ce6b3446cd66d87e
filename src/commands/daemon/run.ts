import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class DaemonRun extends Command {
  static override hidden = true;
  static override summary = "Run the profile's aigov daemon in the foreground (what `aigov daemon start` starts).";

  static override flags = {
    profile: Flags.string({ summary: 'Profile to serve (default "default").', env: 'AIGOV_PROFILE' }),
    'ca-file': Flags.string({ summary: 'PEM file with extra CA certificates to trust for the gateway and IdP.', env: 'AIGOV_CA_FILE' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonRun);
    await runCommand(async () => {
      const { runDaemon } = await import('../../daemon/daemon-main.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      await runDaemon({ profile: flags.profile ?? defaultProfile(), version: this.config.version, ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}) });
      // Whatever a library left open (keychain, sockets), the daemon is done.
      process.exit(0);
    });
  }
}
