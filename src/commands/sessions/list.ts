import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class SessionsList extends Command {
  static override summary = 'List recorded sessions, newest activity first: your own, or everyone\'s for auditors.';
  static override description =
    'Columns: session id, user, started, last call, number of calls. Members of the gateway\'s auditor groups see every user\'s sessions ' +
    '(and their reads are recorded in the access log); others see their own. --since/--until filter on the last activity and take an ISO ' +
    'date, epoch milliseconds or a duration back from now (30m, 2h, 7d). --json prints {"sessions": [...], "next_cursor": …} as the gateway answered.';

  static override examples = [
    '<%= config.bin %> sessions list',
    '<%= config.bin %> sessions list --since 2h --json',
    { command: '<%= config.bin %> sessions list --user alice@example.com --action block --since 7d', description: 'Auditors: alice\'s sessions with a blocked call this week.' },
  ];

  static override flags = {
    user: Flags.string({ summary: 'Only sessions of this user (subject or email); auditors only, for others than yourself.' }),
    since: Flags.string({ summary: 'Last activity at or after: ISO date, epoch ms, or 30m/2h/7d ago.' }),
    until: Flags.string({ summary: 'Last activity at or before: ISO date, epoch ms, or 30m/2h/7d ago.' }),
    provider: Flags.string({ summary: 'Only sessions with a call to this provider (its name in the gateway config).' }),
    model: Flags.string({ summary: 'Only sessions with a call asking for this model.' }),
    action: Flags.string({ summary: 'Only sessions with a policy decision of this action (block, require_approval, mask_request, pseudonymize, mask_response, log, approved, denied, expired).' }),
    approval: Flags.string({ summary: 'Only sessions with an approval in this state.', options: ['pending', 'approved', 'denied', 'expired'] }),
    limit: Flags.integer({ summary: 'At most this many sessions (default 50).', min: 1 }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the list as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SessionsList);
    await runCommand(async () => {
      const { sessionsList } = await import('../../cli/sessions-list.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      await sessionsList({ ...flags, profile: flags.profile ?? defaultProfile() });
    });
  }
}
