/**
 * `aigov run` without loading oclif (see bin/run.js). Accepts exactly the documented forms —
 * `run [--profile NAME | --profile=NAME] -- CMD ARGS…` — and returns false for anything else so
 * oclif handles it (help, errors, unusual spellings). Behaviour is the same as the oclif command:
 * both call runUnderAigov.
 */
import { defaultProfile } from '../config/paths.ts';
import { runCommand } from './run-command.ts';
import { runUnderAigov } from './run-service.ts';

export async function fastRun(args: readonly string[]): Promise<boolean> {
  let profile: string | undefined;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') break;
    if (arg === '--profile' && args[i + 1] !== undefined && !args[i + 1]?.startsWith('-')) profile = args[++i];
    else if (arg.startsWith('--profile=') && arg.length > '--profile='.length) profile = arg.slice('--profile='.length);
    else return false;
  }
  const [command, ...rest] = args.slice(i + 1);
  if (i >= args.length || !command) return false;
  await runCommand(async () => {
    process.exitCode = await runUnderAigov({ profile: profile ?? defaultProfile(), command, args: rest, env: process.env });
  });
  return true;
}
