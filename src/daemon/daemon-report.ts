/** What `aigov daemon status|start` print: plain lines for people, or JSON. */
import type { StatusResponse } from './control-protocol.ts';
import type { DaemonFit } from './daemon-identity.ts';
import type { DaemonState } from './runtime-files.ts';

export interface DaemonReport {
  readonly profile: string;
  readonly running: boolean;
  /** 'running', 'absent', or 'stale' (files left by a daemon that no longer answers). */
  readonly state: DaemonState['state'];
  readonly reason: string | null;
  /**
   * When running: 'same' — it serves this configuration's current login; 'stale-login' — an
   * earlier login (the next `aigov run` restarts it); 'other-configuration' — the daemon on this
   * configuration's socket answers for another one (never used nor stopped).
   */
  readonly fit: DaemonFit | null;
  readonly status: StatusResponse | null;
}

export function daemonReport(profile: string, state: DaemonState, fit: DaemonFit | null = state.state === 'running' ? 'same' : null): DaemonReport {
  return {
    profile,
    running: state.state === 'running',
    state: state.state,
    reason: state.state === 'stale' ? state.reason : null,
    fit: state.state === 'running' ? fit : null,
    status: state.state === 'running' ? state.status : null,
  };
}

export function formatDaemonReport(report: DaemonReport, now: number = Date.now()): string {
  const s = report.status;
  if (!s) {
    return report.state === 'stale'
      ? `aigov daemon (profile ${report.profile}): not running (stale files: ${report.reason ?? 'no answer'})`
      : `aigov daemon (profile ${report.profile}): not running`;
  }
  const lines = [
    `aigov daemon (profile ${s.profile}): running${report.fit === 'stale-login' ? ' — serves an earlier login than the profile\'s; the next `aigov run` restarts it' : report.fit === 'other-configuration' ? ' — for another configuration: not used by this one' : ''}`,
    `  config:   ${typeof s.configDir === 'string' ? s.configDir : 'unknown'}`,
    `  pid:      ${s.pid}`,
    `  address:  http://127.0.0.1:${s.port}`,
    `  gateway:  ${s.gateway}`,
    `  user:     ${s.user ? `${s.user.email ?? s.user.subject}${s.user.groups.length ? ` (${s.user.groups.join(', ')})` : ''}` : 'unknown'}`,
    `  token:    ${s.tokenExpiresAt === null ? 'not fetched yet' : s.tokenExpiresAt > now ? `expires in ${Math.round((s.tokenExpiresAt - now) / 1000)} s` : 'expired (refreshed on the next request)'}`,
    `  up since: ${new Date(s.startedAt).toISOString()} (version ${s.version})`,
    `  runs:     ${s.runs.length}`,
  ];
  for (const run of s.runs) lines.push(`    ${run.sessionId}  ${run.label}`);
  return lines.join('\n');
}
