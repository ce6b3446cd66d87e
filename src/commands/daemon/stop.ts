import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class DaemonStop extends Command {
  static override summary = "Stop the profile's aigov daemon (does nothing if none runs).";
  static override description = 'Runs still in progress lose their connection to the gateway; requests in flight get a few seconds to finish.';

  static override examples = ['<%= config.bin %> daemon stop', '<%= config.bin %> daemon stop --profile work'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile whose daemon to stop (default "default").', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStop);
    await runCommand(async () => {
      const { stopDaemon } = await import('../../daemon/daemon-client.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const profile = flags.profile ?? defaultProfile();
      const outcome = await stopDaemon(profile, { env: process.env });
      const text = {
        stopped: `stopped the aigov daemon of profile ${profile}`,
        stale: `no daemon was running for profile ${profile}; removed the files a stale one left`,
        absent: `no daemon is running for profile ${profile}`,
      }[outcome];
      process.stderr.write(`${text}\n`);
    });
  }
}
