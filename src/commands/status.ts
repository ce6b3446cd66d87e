import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Status extends Command {
  static override summary = 'Show the gateway, signed-in user, credentials and daemon state of a profile.';
  static override description =
    'Asks the gateway whether it answers (3 s at most). Exit codes, with --json too (after printing): 69 when the gateway does not ' +
    'answer (JSON: "gatewayReachable": false and "gatewayProblem"), else 1 when the profile is not signed in, else 0.';

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
      // The exit code of AIGOV_E_GATEWAY_UNREACHABLE (69): a script tells "gateway down" from "not signed in".
      if (report.gatewayReachable === false) process.exitCode = (await import('../core/errors.ts')).ERRORS.AIGOV_E_GATEWAY_UNREACHABLE.exitCode;
      else if (!report.loggedIn) process.exitCode = 1;
    });
  }
}
