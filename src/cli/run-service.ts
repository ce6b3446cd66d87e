/** The service behind `aigov run`: mint a run at the daemon, run the child, revoke the run. */
import { AigovError } from '../core/errors.ts';
import { agentLaunch } from './agent-launch.ts';
import { watchRunApprovals } from './run-approval-notice.ts';
import { childEnvironment, runChild } from './run-child.ts';

export interface RunOptions {
  readonly profile: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export async function runUnderAigov(options: RunOptions): Promise<number> {
  const outer = options.env.AIGOV_SESSION_ID;
  if (outer) throw new AigovError('AIGOV_E_RUN_NESTED', { session: outer });
  const { connectDaemon } = await import('../daemon/daemon-client.ts');
  const daemon = await connectDaemon(options.profile, { start: true, env: options.env });
  const label = [options.command, ...options.args].join(' ').slice(0, 200);
  const grant = await daemon.mintRun(label);
  const notices = new AbortController();
  watchRunApprovals({ sessionId: grant.sessionId, daemon, signal: notices.signal, env: options.env, write: (line) => process.stderr.write(`${line}\n`) });
  try {
    const launch = agentLaunch(options.command, options.args, childEnvironment(options.env, grant));
    return await runChild(options.command, launch.args, launch.env);
  } finally {
    notices.abort();
    await daemon.revokeRun(grant.runKey).catch(() => undefined);
  }
}
