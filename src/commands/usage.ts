import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Usage extends Command {
  static override summary = 'What your calls used and cost, by user, group, model or day, with a bar chart: your own, or everyone\'s for auditors.';
  static override description =
    'Sums the calls recorded by the gateway that started in the range (default: the last 30 days): calls, tokens (INPUT: every prompt token, ' +
    'CACHED: of those, read from the provider\'s prompt cache; OUTPUT: reasoning included) and cost in US dollars from the gateway\'s prices. ' +
    'Calls whose cost is not known (models without a price, answers without usage) are counted apart and said below the table. ' +
    'Members of the gateway\'s auditor groups see every user\'s usage (each read is recorded in the access log); others see their own. ' +
    'Without --by: by user for auditors, by model for others. --since/--until take a duration back from now (30m, 2h, 7d), an ISO date-time, ' +
    'epoch milliseconds, or a day (2026-11-01: that day in --tz, from its start for --since, through its end for --until). Days are calendar ' +
    'days in --tz (default: this machine\'s zone). --json prints the gateway\'s report (src/protocol/usage.ts): every token kind, and the ' +
    'exact cost in nano-dollars as cost_nano_usd.';

  static override examples = [
    '<%= config.bin %> usage',
    '<%= config.bin %> usage --by day --since 14d',
    { command: '<%= config.bin %> usage --by model --user alice@example.com --since 2026-11-01 --until 2026-11-30', description: 'Auditors: what alice spent in November, by model.' },
    '<%= config.bin %> usage --by group --json',
  ];

  static override flags = {
    by: Flags.string({ summary: 'Group by user, group, model or day (default: user for auditors, model for others).', env: 'AIGOV_USAGE_BY' }),
    since: Flags.string({ summary: 'Calls started at or after: 30m/2h/7d ago, an ISO date-time, epoch ms, or a day (default 30d).', env: 'AIGOV_USAGE_SINCE' }),
    until: Flags.string({ summary: 'Calls started before: 30m/2h/7d ago, an ISO date-time, epoch ms, or a day (through its end) (default: now).', env: 'AIGOV_USAGE_UNTIL' }),
    user: Flags.string({ summary: 'Only this user\'s calls (subject or email); auditors only, for others than yourself.', env: 'AIGOV_USAGE_USER' }),
    tz: Flags.string({ summary: 'Time zone of the days and times shown: an IANA name (Europe/Paris) or a UTC offset (+05:30) (default: this machine\'s).', env: 'AIGOV_USAGE_TZ' }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the gateway\'s report as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Usage);
    await runCommand(async () => {
      const { showUsage } = await import('../cli/usage-report.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      await showUsage({ ...flags, profile: flags.profile ?? defaultProfile() });
    });
  }
}
