import { plural } from '../../cli/terminal-text.ts';
import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../../cli/run-command.ts';

export default class PolicyValidate extends Command {
  static override summary = 'Check a policy file: schema, entity types, regex safety.';
  static override description =
    'Loads the file as the gateway would: YAML, every key against the schema, hmac key references, entity types, and each custom ' +
    'regex (backreferences, lookarounds and oversized patterns are refused; matching is linear-time). Every problem names the key path and what was expected. ' +
    'The summary says what happens to parts the gateway cannot read (the `uninspectable` setting). ' +
    'With --dev, approver groups are also checked against the dev gateway\'s users: a group none of them has is warned about (its held requests could only expire).\n\n' +
    'Exit codes: 0 valid, 78 invalid (problems on stderr), 66 the file cannot be read.';

  static override examples = ['<%= config.bin %> policy validate examples/policy.yaml', '<%= config.bin %> policy validate policy.yaml --json', '<%= config.bin %> policy validate policy.yaml --dev'];

  static override args = {
    file: Args.string({ required: true, description: 'Policy file (YAML).' }),
  };

  static override flags = {
    json: Flags.boolean({ summary: 'Print a summary as JSON on stdout.' }),
    dev: Flags.boolean({ summary: 'Also check approver groups against the dev gateway\'s users (aigov server --dev).' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(PolicyValidate);
    await runCommand(async () => {
      const { describeUninspectable, validatePolicy } = await import('../../cli/policy-test-service.ts');
      const knownGroups = flags.dev ? (await import('../../gateway/dev/dev-users.ts')).DEV_GROUPS : undefined;
      const report = validatePolicy(args.file, { knownGroups });
      for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ valid: true, ...report }, null, 2)}\n`
          : `${report.file}: valid — ${plural(report.rules, 'rule')} (${report.shadowRules} in shadow mode), ${plural(report.detectors, 'custom detector')}, default action ${report.defaultAction}, ${describeUninspectable(report.uninspectable)}\n`,
      );
    });
  }
}
