import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class ApprovalsApprove extends Command {
  static override summary = 'Approve a held request (your vote counts towards the approvals its rule requires).';
  static override description =
    'The request goes on once as many approvers as its rule requires have agreed. You cannot approve your own request (exit 77). Errors exit with the code of the gateway\'s answer: 77 not allowed, 66 not found, 65 already decided.';

  static override examples = ['<%= config.bin %> approvals approve apr_01J9Z8 --reason "reviewed, no customer data"', '<%= config.bin %> approvals approve apr_01J9Z8 --json'];

  static override args = {
    id: Args.string({ required: true, description: 'The approval id (from `aigov approvals list`).' }),
  };

  static override flags = {
    reason: Flags.string({ char: 'r', summary: 'Why (recorded with your vote and shown to the requester).' }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the approval as the gateway answered it, as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ApprovalsApprove);
    await runCommand(async () => {
      const { openApprovals } = await import('../../cli/approvals-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openApprovals({ profile: flags.profile ?? defaultProfile() });
      const approval = await client.approve(args.id, flags.reason);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(approval, null, 2)}\n`);
        return;
      }
      const { formatDecisionResult } = await import('../../cli/approvals-format.ts');
      process.stdout.write(`${formatDecisionResult(approval, 'approve')}\n`);
    });
  }
}
