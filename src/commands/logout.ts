import { Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Logout extends Command {
  static override summary = 'Sign out: revoke the refresh token at the identity provider and delete it here.';
  static override description =
    'Revokes the stored refresh token at the IdP when it supports revocation (a failure is reported, not fatal), deletes it ' +
    'from the keychain or file, forgets the signed-in user and stops the profile\'s daemon. Safe to run twice.';

  static override examples = ['<%= config.bin %> logout', '<%= config.bin %> logout --profile work'];

  static override flags = {
    profile: Flags.string({ summary: 'Profile to sign out (default "default").', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Logout);
    await runCommand(async () => {
      const { logout, logoutSummary } = await import('../auth/login-service.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      const result = await logout({ profile: flags.profile ?? defaultProfile() });
      process.stderr.write(`${logoutSummary(result)}\n`);
    });
  }
}
