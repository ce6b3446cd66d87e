import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class ApprovalsList extends Command {
  static override summary = 'List approvals: by default the pending ones you may decide.';
  static override description =
    'Columns: id, requester, rule, provider/model, age, time left before it expires, approvals so far of those required. ' +
    'With --mine, your own requests instead. --json prints {"approvals": [...]} as the gateway answered (newest first).';

  static override examples = [
    '<%= config.bin %> approvals list',
    '<%= config.bin %> approvals list --state all --json',
    { command: '<%= config.bin %> approvals list --mine', description: 'Your own held requests.' },
  ];

  static override flags = {
    state: Flags.string({ summary: 'Which approvals.', options: ['pending', 'approved', 'denied', 'expired', 'all'], default: 'pending', env: 'AIGOV_APPROVALS_STATE' }),
    mine: Flags.boolean({ summary: 'Your own requests instead of those you may decide.' }),
    limit: Flags.integer({ summary: 'At most this many (newest first).', min: 1 }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the approvals as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ApprovalsList);
    await runCommand(async () => {
      const { openApprovals } = await import('../../cli/approvals-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openApprovals({ profile: flags.profile ?? defaultProfile() });
      const state = flags.state as 'pending' | 'all';
      const approvals = await client.list({ scope: flags.mine ? 'mine' : 'decide', state, ...(flags.limit ? { limit: flags.limit } : {}) });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ approvals }, null, 2)}\n`);
        return;
      }
      if (approvals.length === 0) {
        const which = state === 'all' ? '' : `${state} `;
        process.stdout.write(flags.mine ? `You have no ${which}approval requests.\n` : `No ${which}approvals for you to decide.\n`);
        return;
      }
      const { formatApprovalTable } = await import('../../cli/approvals-format.ts');
      process.stdout.write(`${formatApprovalTable(approvals, Date.now(), { showState: state !== 'pending' })}\n`);
    });
  }
}
