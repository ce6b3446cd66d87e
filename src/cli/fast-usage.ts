/**
 * `aigov usage` without loading oclif (see bin/run.js), as `sessions list` does: the documented
 * flags in `--flag value` and `--flag=value` form, each flag's AIGOV_* variable when the flag is
 * not given (as oclif reads them); false for anything else (help, unknown or malformed flags) so
 * oclif handles it with its usual messages. Both paths call showUsage, which checks the values.
 */
import { defaultProfile } from '../config/paths.ts';
import { parseFastFlags } from './fast-flags.ts';
import { runCommand } from './run-command.ts';
import { showUsage, type UsageFlags } from './usage-report.ts';

/** Each value flag and its environment variable (src/commands/usage.ts). */
const VALUE_FLAGS: Readonly<Record<string, string>> = {
  by: 'AIGOV_USAGE_BY',
  since: 'AIGOV_USAGE_SINCE',
  until: 'AIGOV_USAGE_UNTIL',
  user: 'AIGOV_USAGE_USER',
  tz: 'AIGOV_USAGE_TZ',
  profile: 'AIGOV_PROFILE',
};

export async function fastUsage(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const parsed = parseFastFlags(args, (name) => name in VALUE_FLAGS);
  if (parsed === null) return false;
  const { values, json } = parsed;
  for (const [name, variable] of Object.entries(VALUE_FLAGS)) {
    const fromEnv = env[variable];
    if (values[name] === undefined && fromEnv !== undefined && fromEnv !== '') values[name] = fromEnv;
  }
  const flags: UsageFlags = {
    profile: values['profile'] ?? defaultProfile(),
    ...(values['by'] !== undefined ? { by: values['by'] } : {}),
    ...(values['since'] !== undefined ? { since: values['since'] } : {}),
    ...(values['until'] !== undefined ? { until: values['until'] } : {}),
    ...(values['user'] !== undefined ? { user: values['user'] } : {}),
    ...(values['tz'] !== undefined ? { tz: values['tz'] } : {}),
    json,
  };
  await runCommand(() => showUsage(flags, env));
  return true;
}
