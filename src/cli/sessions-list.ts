/**
 * `aigov sessions list`, shared by the oclif command and the oclif-free fast path (bin/run.js →
 * fast-sessions.ts), so both behave the same.
 */
import { timeFlag } from './flag-values.ts';
import { openSessions } from './sessions-service.ts';

export interface SessionsListFlags {
  readonly profile: string;
  readonly user?: string;
  readonly since?: string;
  readonly until?: string;
  readonly provider?: string;
  readonly model?: string;
  readonly action?: string;
  readonly approval?: string;
  readonly limit?: number;
  readonly json?: boolean;
}

export async function sessionsList(flags: SessionsListFlags): Promise<void> {
  const now = Date.now();
  const since = timeFlag('--since', flags.since, now, 'aigov sessions list --since 24h');
  const until = timeFlag('--until', flags.until, now, 'aigov sessions list --until 2026-11-25T14:00:00Z');
  const { client } = await openSessions({ profile: flags.profile });
  const list = await client.list({
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(flags.provider !== undefined ? { provider: flags.provider } : {}),
    ...(flags.model !== undefined ? { model: flags.model } : {}),
    ...(flags.action !== undefined ? { action: flags.action } : {}),
    ...(flags.approval !== undefined ? { approval: flags.approval } : {}),
    limit: flags.limit ?? 50,
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return;
  }
  if (list.sessions.length === 0) {
    process.stdout.write('No sessions match.\n');
    return;
  }
  const { formatSessionTable } = await import('./sessions-format.ts');
  process.stdout.write(`${formatSessionTable(list.sessions)}\n`);
  if (list.next_cursor !== null) process.stderr.write(`(more sessions match: raise --limit or narrow with --since/--user)\n`);
}
