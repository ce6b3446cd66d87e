import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class DaemonStatus extends Command {
  static override summary = "Show whether the profile's aigov daemon runs, and its port, user, token expiry and runs.";
  static override description = 'Exits with code 1 when the daemon is not running (with --json too, after printing).';

  static override examples = ['<%= config.bin %> daemon status', '<%= config.bin %> daemon status --json'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile whose daemon to show (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the status as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DaemonStatus);
    await runCommand(async () => {
      const { inspectDaemon } = await import('../../daemon/daemon-client.ts');
      const { daemonReport, formatDaemonReport } = await import('../../daemon/daemon-report.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const profile = flags.profile ?? defaultProfile();
      const seen = await inspectDaemon(profile, { env: process.env });
      const report = daemonReport(profile, seen, seen.fit);
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDaemonReport(report)}\n`);
      if (!report.running) process.exitCode = 1;
    });
  }
}
