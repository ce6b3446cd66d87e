/**
 * `aigov sessions list` without loading oclif (see bin/run.js): the command is meant to be quick
 * (docs/benchmarks.md). Accepts the documented flags in `--flag value` and `--flag=value` form and
 * returns false for anything else (help, unknown or malformed flags) so oclif handles it with
 * its usual messages. Behaviour is the same as the oclif command: both call sessionsList.
 */
import { defaultProfile } from '../config/paths.ts';
import { parseFastFlags } from './fast-flags.ts';
import { runCommand } from './run-command.ts';
import { sessionsList, type SessionsListFlags } from './sessions-list.ts';

const VALUE_FLAGS = new Set(['user', 'since', 'until', 'provider', 'model', 'action', 'approval', 'limit', 'profile']);
const APPROVAL_STATES = new Set(['pending', 'approved', 'denied', 'expired']);

export async function fastSessionsList(args: readonly string[]): Promise<boolean> {
  const parsed = parseFastFlags(args, (name) => VALUE_FLAGS.has(name));
  if (parsed === null) return false;
  const { values, json } = parsed;
  let limit: number | undefined;
  if (values['limit'] !== undefined) {
    limit = Number(values['limit']);
    if (!/^\d+$/.test(values['limit']) || limit < 1) return false;
  }
  if (values['approval'] !== undefined && !APPROVAL_STATES.has(values['approval'])) return false;
  const flags: SessionsListFlags = {
    profile: values['profile'] ?? defaultProfile(),
    ...(values['user'] !== undefined ? { user: values['user'] } : {}),
    ...(values['since'] !== undefined ? { since: values['since'] } : {}),
    ...(values['until'] !== undefined ? { until: values['until'] } : {}),
    ...(values['provider'] !== undefined ? { provider: values['provider'] } : {}),
    ...(values['model'] !== undefined ? { model: values['model'] } : {}),
    ...(values['action'] !== undefined ? { action: values['action'] } : {}),
    ...(values['approval'] !== undefined ? { approval: values['approval'] } : {}),
    ...(limit !== undefined ? { limit } : {}),
    json,
  };
  await runCommand(() => sessionsList(flags));
  return true;
}
