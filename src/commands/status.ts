import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Status extends Command {
  static override summary = 'Show the gateway, signed-in user, credentials and daemon state of a profile.';
  static override description = 'Exits with code 1 when the profile is not signed in (with --json too, after printing).';

  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile to show (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the status as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    await runCommand(async () => {
      const { readStatus, formatStatus } = await import('../auth/login-service.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      const report = await readStatus({ profile: flags.profile ?? defaultProfile() });
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
      if (!report.loggedIn) process.exitCode = 1;
    });
  }
}
