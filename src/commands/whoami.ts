import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Whoami extends Command {
  static override summary = 'Print who you are signed in as: "<email> (<groups>) on <gateway>".';
  static override description = 'Exits with code 1 when the profile is not signed in.';

  static override examples = ['<%= config.bin %> whoami'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile to show (default "default").', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Whoami);
    await runCommand(async () => {
      const { readStatus, whoamiLine } = await import('../auth/login-service.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      const profile = flags.profile ?? defaultProfile();
      const line = whoamiLine(await readStatus({ profile, daemon: false, gateway: false }));
      if (line) {
        process.stdout.write(`${line}\n`);
      } else {
        process.stderr.write(`Not logged in (profile ${profile}). Run \`aigov login --gateway URL\`.\n`);
        process.exitCode = 1;
      }
    });
  }
}
