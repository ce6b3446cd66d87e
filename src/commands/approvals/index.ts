import { Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class Approvals extends Command {
  static override summary = 'Live inbox of the held requests you may approve or deny (terminal UI).';
  static override description =
    'New requests appear as they are held; the detail pane shows the requester, the rule, the model, the redacted preview of the prompt, ' +
    'the votes so far and a countdown to expiry. Keys: ↑/↓ or j/k select, a approve, d deny (each asks for a reason; ' +
    'denying needs one), r reconnect, q quit. Needs a terminal; in scripts use `aigov approvals list --json`, ' +
    '`aigov approvals approve ID` and `aigov approvals deny ID`.';

  static override examples = ['<%= config.bin %> approvals', '<%= config.bin %> approvals --profile work'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile to use (default "default").', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Approvals);
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      process.stderr.write(
        'aigov: `aigov approvals` is an interactive inbox and needs a terminal (stdin and stdout).\n' +
          '  hint: in scripts use `aigov approvals list --json`, `aigov approvals approve ID --reason …` or `aigov approvals deny ID --reason …`.\n',
      );
      process.exit(64);
    }
    await runCommand(async () => {
      const { openApprovals } = await import('../../cli/approvals-service.ts');
      const { defaultProfile } = await import('../../config/paths.ts');
      const { client, me } = await openApprovals({ profile: flags.profile ?? defaultProfile() });
      // https://no-color.org: Ink's colour library only knows FORCE_COLOR (read when it loads, just below).
      if (process.env.NO_COLOR && !('FORCE_COLOR' in process.env)) process.env.FORCE_COLOR = '0';
      const { runApprovalsInbox } = await import('../../tui/ApprovalsInbox.tsx');
      await runApprovalsInbox({ client, me, gatewayUrl: client.gatewayUrl });
    });
  }
}
