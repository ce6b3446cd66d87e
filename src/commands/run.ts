import { Args, Command, Flags } from '@oclif/core';
import { runCommand } from '../cli/run-command.ts';

export default class Run extends Command {
  static override summary = "Run a program with its OpenAI/Anthropic SDK calls going through the aigov gateway.";
  static override description =
    'Starts the aigov daemon if needed and runs CMD with OPENAI_BASE_URL/OPENAI_API_KEY and ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY ' +
    'pointing at it (a per-run key, never your tokens or a real provider key) and AIGOV_SESSION_ID set. Real provider keys in your ' +
    'environment are not passed on. Everything after -- belongs to CMD. Exits with CMD\'s exit code (128 + signal number if a signal killed it).';

  static override examples = ['<%= config.bin %> run -- python script.py', '<%= config.bin %> run --profile work -- node agent.mjs --verbose'];
  static override usage = '<%= command.id %> [--profile <value>] -- CMD [ARGS...]';
  static override strict = false;
  // For the help only: the command line after `--` is read from argv as a whole.
  static override args = {
    cmd: Args.string({ description: 'The program to run, after `--`, with its arguments (passed on untouched).' }),
  };
  static override flags = {
    profile: Flags.string({ summary: 'Profile to use.', env: 'AIGOV_PROFILE' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Run);
    const [command, ...args] = argv as string[];
    if (!command) {
      process.stderr.write('aigov: nothing to run.\n  hint: put the program and its arguments after --, e.g. `aigov run -- python3 script.py`.\n');
      process.exit(64);
    }
    await runCommand(async () => {
      const { runUnderAigov } = await import('../cli/run-service.ts');
      const { defaultProfile } = await import('../config/paths.ts');
      process.exitCode = await runUnderAigov({ profile: flags.profile ?? defaultProfile(), command, args, env: process.env });
    });
  }
}
