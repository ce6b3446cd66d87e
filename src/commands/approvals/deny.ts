import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class ApprovalsDeny extends Command {
  static override summary = 'Deny a held request: it is not sent, and the requester is told why.';
  static override description =
    'One denial is final. You cannot deny your own request (exit 77). Errors exit with the code of the gateway\'s answer: 77 not allowed, 66 not found, 65 already decided.';

  static override examples = ['<%= config.bin %> approvals deny apr_01J9Z8 --reason "contains a customer list"', '<%= config.bin %> approvals deny apr_01J9Z8 --json'];

  static override args = {
    id: Args.string({ required: true, description: 'The approval id (from `aigov approvals list`).' }),
  };

  static override flags = {
    reason: Flags.string({ char: 'r', summary: 'Why (recorded, and shown to the requester in the error their program gets).' }),
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
    json: Flags.boolean({ summary: 'Print the approval as the gateway answered it, as JSON on stdout.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ApprovalsDeny);
    await runCommand(async () => {
      const { openApprovals } = await import('../../cli/approvals-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client } = await openApprovals({ profile: flags.profile ?? defaultProfile() });
      const approval = await client.deny(args.id, flags.reason);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(approval, null, 2)}\n`);
        return;
      }
      const { formatDecisionResult } = await import('../../cli/approvals-format.ts');
      process.stdout.write(`${formatDecisionResult(approval, 'deny')}\n`);
    });
  }
}
