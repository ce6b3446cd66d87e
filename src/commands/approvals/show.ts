import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class ApprovalsShow extends Command {
  static override summary = 'Show one approval: requester, rule, request, votes and the redacted preview of the prompt.';
  static override description = 'You see approvals you may decide and your own requests; any other id is "not found" (exit 66).';

  static override examples = ['<%= config.bin %> approvals show apr_01J9Z8', '<%= config.bin %> approvals show apr_01J9Z8 --json'];

  static override args = {
    id: Args.string({ required: true, description: 'The approval id (from `aigov approvals list`).' }),
  };

  static override flags = {
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the approval as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ApprovalsShow);
    await runCommand(async () => {
      const { openApprovals } = await import('../../cli/approvals-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openApprovals({ profile: flags.profile ?? defaultProfile() });
      const approval = await client.get(args.id);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(approval, null, 2)}\n`);
        return;
      }
      const { formatApprovalDetail } = await import('../../cli/approvals-format.ts');
      process.stdout.write(`${formatApprovalDetail(approval, Date.now())}\n`);
    });
  }
}
