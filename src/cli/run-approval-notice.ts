/**
 * The requester's side of approvals in `aigov run`: while a request of this run is held at the
 * gateway, the run's stderr says so — which approval, which rule, who can approve, when it
 * expires — and then the outcome. The child's stdout is never touched.
 *
 * It follows the gateway's approvals event stream for the user's own requests and keeps those
 * of this run's session. It starts a moment after the child does (short runs never pay for it;
 * the stream's snapshot reports a hold that began before it connected) and stays silent about
 * its own connection trouble: the held request itself still ends with a clear error.
 */
import type { ApprovalView } from '../protocol/approvals.ts';
import type { TokenLender } from './approvals-service.ts';

export interface RunApprovalNoticeOptions {
  readonly sessionId: string;
  readonly daemon: TokenLender;
  readonly write: (line: string) => void;
  readonly signal: AbortSignal;
  /** Delay before connecting (default 300 ms). */
  readonly delayMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
}

export function watchRunApprovals(options: RunApprovalNoticeOptions): void {
  const timer = setTimeout(() => void start(options).catch(() => undefined), options.delayMs ?? 300);
  timer.unref();
  options.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
}

async function start(options: RunApprovalNoticeOptions): Promise<void> {
  if (options.signal.aborted) return;
  const { approvalsClientFromDaemon } = await import('./approvals-service.ts');
  const client = await approvalsClientFromDaemon(options.daemon, options.env);
  const reporter = createNoticeReporter(options.write, options.now ?? Date.now, options.sessionId);
  const mine = (a: ApprovalView): boolean => a.session_id === options.sessionId || (a.joined_session_ids?.includes(options.sessionId) ?? false);
  const watch = client.watch(
    'mine',
    {
      onSnapshot: (approvals) => approvals.filter(mine).forEach(reporter),
      onApproval: (approval) => {
        if (mine(approval)) reporter(approval);
      },
    },
    options.signal,
  );
  await watch.done;
}

/**
 * Turns approval updates into stderr lines, each state (and each vote) told once. `sessionId`:
 * the run's own session — an approval opened by another session is one this run's request joined.
 */
export function createNoticeReporter(write: (line: string) => void, now: () => number, sessionId?: string): (approval: ApprovalView) => void {
  const told = new Map<string, string>();
  return (a) => {
    const key = `${a.state}:${a.votes.length}`;
    if (told.get(a.id) === key) return;
    const before = told.get(a.id);
    told.set(a.id, key);
    const approvals = a.votes.filter((v) => v.decision === 'approve');
    const by = (list: typeof a.votes): string => [...new Set(list.map((v) => v.by.email ?? v.by.name ?? v.by.sub))].join(', ');
    switch (a.state) {
      case 'pending':
        if (before === undefined) {
          const groups = a.approvers.groups.join(', ');
          const needed = a.approvers.required === 1 ? '1 approval needed' : `${a.approvers.required} approvals needed`;
          const since = Math.round((now() - Date.parse(a.created_at)) / 1000);
          const joined = sessionId !== undefined && a.session_id !== sessionId ? ` (opened ${formatIn(since * 1000)} ago by the same request, sent earlier)` : '';
          write(`aigov: request held for approval ${a.id}${joined} — rule ${a.rule.id}: ${a.rule.reason}.`);
          write(`aigov:   who can approve: members of ${groups} (${needed}), with \`aigov approvals\`; expires in ${formatIn(Date.parse(a.expires_at) - now())}.`);
        } else if (approvals.length > 0) {
          write(`aigov: ${a.id}: ${approvals.length} of ${a.approvers.required} approvals so far (${by(approvals)}).`);
        }
        return;
      case 'approved': {
        const reason = approvals.at(-1)?.reason;
        write(`aigov: ${a.id} approved by ${by(approvals)}${reason ? ` ("${oneLine(reason)}")` : ''} — the request goes on.`);
        return;
      }
      case 'denied': {
        const denial = a.votes.findLast((v) => v.decision === 'deny');
        write(`aigov: ${a.id} denied by ${denial ? by([denial]) : 'an approver'}${denial?.reason ? `: ${oneLine(denial.reason)}` : ''}. The request was not sent.`);
        return;
      }
      case 'expired':
        write(`aigov: ${a.id} expired before anyone decided. The request was not sent.`);
        return;
    }
  };
}

function formatIn(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Text from other people goes to the terminal: one line, no control characters. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').slice(0, 300);
}
