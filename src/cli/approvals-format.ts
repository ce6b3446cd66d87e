/**
 * How approvals read on a terminal, for `aigov approvals list|show|approve|deny` and the inbox:
 * pure functions of an ApprovalView and the current time.
 *
 * Everything shown comes from other people (the requester's prompt, names, rule reasons), so it
 * goes through `terminalSafe` first: a prompt must not be able to move the approver's cursor,
 * recolour the screen or reorder text with bidi controls.
 */
import type { ApprovalPerson, ApprovalView } from '../protocol/approvals.ts';
import { formatCountdown } from './terminal-text.ts';

export { formatCountdown } from './terminal-text.ts';

/**
 * Control characters (C0 except newline and tab, DEL, C1) and bidi overrides/isolates shown as
 * visible escapes (`\x1b`, `\u202e`), so the text on screen is exactly what was sent.
 */
export function terminalSafe(text: string, opts: { newlines?: boolean } = {}): string {
  const keepNewlines = opts.newlines ?? false;
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n' && keepNewlines) return c;
    if (c === '\n') return '↵';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `alice@example.com`, else the name, else the subject. */
export function personLabel(person: ApprovalPerson): string {
  return terminalSafe(person.email ?? person.name ?? person.sub);
}

/** `Alice Developer <alice@example.com>`, as much of it as is known. */
export function personLong(person: ApprovalPerson): string {
  if (person.name && person.email) return terminalSafe(`${person.name} <${person.email}>`);
  return personLabel(person);
}


/** 12s, 4m, 3h, 2d. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

export function approvalsGiven(view: ApprovalView): number {
  return view.votes.filter((v) => v.decision === 'approve').length;
}

/** `1/2`: approvals so far of those required. */
export function formatVotes(view: ApprovalView): string {
  return `${approvalsGiven(view)}/${view.approvers.required}`;
}

/** Milliseconds until it expires (negative once past). */
export function remainingMs(view: ApprovalView, now: number): number {
  return Date.parse(view.expires_at) - now;
}

/** For a pending approval the countdown; otherwise its state. */
export function formatExpiresIn(view: ApprovalView, now: number): string {
  if (view.state !== 'pending') return view.state;
  const left = remainingMs(view, now);
  return left > 0 ? formatCountdown(left) : 'expiring';
}

export function modelLabel(view: ApprovalView): string {
  return terminalSafe(view.model ? `${view.provider}/${view.model}` : view.provider);
}

function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(1, width - 1)).join('')}…`;
}

function pad(text: string, width: number): string {
  const length = [...text].length;
  return length >= width ? text : text + ' '.repeat(width - length);
}

/** Rows as aligned columns; the last column is not padded. */
export function formatColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : pad(cell, widths[i] ?? 0))).join('  ').trimEnd());
}

/**
 * Cuts the `flexible` columns (with …), widest first, until the aligned rows fit in `width`;
 * the other columns keep their width. For a terminal of a given size.
 */
export function fitColumns(rows: readonly (readonly string[])[], width: number, flexible: readonly number[], minWidth = 8): string[][] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  let total = widths.reduce((sum, w) => sum + w, 0) + 2 * Math.max(0, widths.length - 1);
  while (total > width) {
    let widest = -1;
    for (const i of flexible) if ((widths[i] ?? 0) > minWidth && (widest < 0 || (widths[i] ?? 0) > (widths[widest] ?? 0))) widest = i;
    if (widest < 0) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
    total--;
  }
  return rows.map((row) => row.map((cell, i) => cut(cell, widths[i] ?? cell.length)));
}

/** The `aigov approvals list` table: id, requester, rule, model, age, expires in, votes (and state when not only pending ones). */
export function formatApprovalTable(views: readonly ApprovalView[], now: number, opts: { showState: boolean }): string {
  const header = ['ID', 'REQUESTER', 'RULE', 'MODEL', 'AGE', 'EXPIRES IN', 'VOTES', ...(opts.showState ? ['STATE'] : [])];
  const rows = views.map((v) => [
    terminalSafe(v.id),
    cut(personLabel(v.requester), 32),
    cut(terminalSafe(v.rule.id), 28),
    cut(modelLabel(v), 32),
    formatAge(now - Date.parse(v.created_at)),
    v.state === 'pending' ? formatExpiresIn(v, now) : '-',
    formatVotes(v),
    ...(opts.showState ? [v.state] : []),
  ]);
  return formatColumns([header, ...rows]).join('\n');
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? '' : by + line))
    .join('\n');
}

function stateLine(view: ApprovalView, now: number): string {
  switch (view.state) {
    case 'pending': {
      const left = remainingMs(view, now);
      return left > 0 ? `pending, expires in ${formatCountdown(left)}` : 'pending, expiring now';
    }
    case 'expired':
      return `expired ${view.decided_at ?? view.expires_at}`;
    default:
      return `${view.state} ${view.decided_at ?? ''}`.trimEnd();
  }
}

/** The `aigov approvals show` block: who, what, rule, votes with who/when/reason, and the redacted preview indented. */
export function formatApprovalDetail(view: ApprovalView, now: number): string {
  const groups = view.requester.groups.length > 0 ? ` (${terminalSafe(view.requester.groups.join(', '))})` : '';
  const given = approvalsGiven(view);
  const lines = [
    `Approval ${terminalSafe(view.id)}: ${stateLine(view, now)}`,
    ...formatColumns([
      ['  Requester', `${personLong(view.requester)}${groups}`],
      ['  Rule', `${terminalSafe(view.rule.id)}: ${terminalSafe(view.rule.reason)}`],
      ['  Request', `${modelLabel(view)} · ${terminalSafe(view.endpoint)}${view.stream ? ' · streamed' : ''}`],
      ['  Session', `${terminalSafe(view.session_id)} · call ${terminalSafe(view.call_id)}`],
      ['  Created', `${view.created_at} (${formatAge(now - Date.parse(view.created_at))} ago)`],
      ['  Approvers', `${terminalSafe(view.approvers.groups.join(', ')) || '(none)'} · ${given} of ${view.approvers.required} approval${view.approvers.required === 1 ? '' : 's'}`],
      ['  You', view.can_decide ? 'may decide it' : 'cannot decide it'],
    ]),
    '  Votes',
    ...(view.votes.length === 0
      ? ['    none yet']
      : formatColumns(
          view.votes.map((vote) => [
            `    ${vote.decision === 'approve' ? '✔ approve' : '✘ deny'}`,
            personLabel(vote.by),
            vote.at,
            vote.reason ? `“${terminalSafe(vote.reason)}”` : '',
          ]),
        )),
    '  Preview (redacted)',
    view.preview.trim() === '' ? '    (empty)' : indent(terminalSafe(view.preview, { newlines: true }), '    '),
  ];
  return lines.join('\n');
}

/** What `aigov approvals approve|deny` says once the gateway took the decision. */
export function formatDecisionResult(view: ApprovalView, decision: 'approve' | 'deny'): string {
  const id = terminalSafe(view.id);
  if (decision === 'deny') return view.state === 'denied' ? `✘ Denied ${id}: the request will not be sent.` : `Approval ${id} is ${view.state}.`;
  if (view.state === 'approved') return `✔ Approved ${id}: the request goes on to ${modelLabel(view)}.`;
  if (view.state === 'pending') {
    const missing = view.approvers.required - approvalsGiven(view);
    return `✔ Your approval of ${id} is recorded (${formatVotes(view)}); it needs ${missing} more from another approver.`;
  }
  return `Approval ${id} is ${view.state}.`;
}
