/**
 * How sessions read on a terminal, for `aigov sessions list|show`: pure functions of the API's
 * views. Everything shown was typed by someone (prompts, answers, reasons), so it goes through
 * terminalSafe first.
 */
import { graphOfWireChunks, type ChunkGraph } from '../core/recording/request-chunks.ts';
import type { CallApprovalView, CallView, DecisionView, SessionDetail, SessionSummaryView } from '../protocol/sessions.ts';
import { formatColumns, terminalSafe } from './approvals-format.ts';
import { answerAt, answerOf, type AnswerPart } from './replay-model.ts';
import { requestView } from './request-view.ts';

/** `2026-11-25 14:03:07` in local time. */
export function formatTime(isoText: string): string {
  const d = new Date(isoText);
  if (Number.isNaN(d.getTime())) return isoText;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function userLabel(user: { sub: string; email: string | null }): string {
  return terminalSafe(user.email ?? user.sub);
}

/** The `aigov sessions list` table: id, user, started, last call, calls. */
export function formatSessionTable(sessions: readonly SessionSummaryView[]): string {
  const rows = [['SESSION', 'USER', 'STARTED', 'LAST CALL', 'CALLS']];
  for (const s of sessions) rows.push([terminalSafe(s.id), userLabel(s.user), formatTime(s.started_at), formatTime(s.last_call_at), String(s.call_count)]);
  return formatColumns(rows).join('\n');
}

/** Cut to `max` characters on one line, with … when cut. */
export function oneLine(text: string, max: number): string {
  // Only the start is shown: work on a prefix long enough for `max` characters (a tool result or
  // a prompt may be megabytes), unless collapsing its whitespace leaves too few of them.
  const prefix = text.length > max * 2 + 32 ? text.slice(0, max * 2 + 32) : text;
  if (prefix !== text && [...terminalSafe(prefix.replace(/\s+/g, ' ').trim())].length <= max) return cutLine(text, max);
  return cutLine(prefix, max);
}

function cutLine(text: string, max: number): string {
  const flat = terminalSafe(text.replace(/\s+/g, ' ').trim());
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join('')}…`;
}

/** The answer's text (all its text parts), as the provider's codec reads the body or the SSE events. */
export function answerText(call: CallView): string | null {
  return answerTextOf(answerAt(answerOf(call), Number.POSITIVE_INFINITY));
}

function answerTextOf(parts: readonly { part: AnswerPart; text: string }[]): string | null {
  const texts = parts.filter((p) => p.part.kind === 'text').map((p) => p.text);
  return texts.length > 0 ? texts.join('\n') : null;
}

function tokens(usage: CallView['usage']): string | null {
  if (usage === null) return null;
  const parts: string[] = [];
  if (usage.input_tokens !== undefined) parts.push(`${usage.input_tokens} in`);
  if (usage.output_tokens !== undefined) parts.push(`${usage.output_tokens} out`);
  if (parts.length === 0 && usage.total_tokens !== undefined) parts.push(`${usage.total_tokens} total`);
  if (usage.cache_read_tokens) parts.push(`${usage.cache_read_tokens} cached`);
  const cost = usage.cost_usd === undefined ? '' : usage.cost_usd === null ? ' · unpriced' : ` · ${formatUsd(usage.cost_usd)}`;
  return parts.length > 0 ? `tokens ${parts.join(' / ')}${cost}` : null;
}

/** Dollars with the precision a small amount needs: $12.34, $0.0421, $0.000075. */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  const decimals = Math.min(9, Math.max(2, Math.ceil(-Math.log10(usd)) + 1));
  return `$${usd.toFixed(decimals).replace(/0+$/, '').replace(/\.$/, '')}`;
}

/** Shown of each tool result. */
const RESULT_START = 80;

/**
 * A tool call as one line: the command for shell tools (`command` / `cmd`, Codex's
 * `tools.exec_command({cmd: …})` inside its `exec` JavaScript), else the arguments as sent.
 */
export function toolCallSummary(args: string): string {
  try {
    const value = JSON.parse(args) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const v = value as Record<string, unknown>;
      for (const key of ['command', 'cmd']) {
        const c = v[key];
        if (typeof c === 'string') return c;
        if (Array.isArray(c) && c.every((x) => typeof x === 'string')) return c.join(' ');
      }
    }
  } catch {
    // not JSON: e.g. a custom tool's free-form input
  }
  const exec = /exec_command\(\s*\{\s*cmd\s*:\s*("(?:[^"\\\n]|\\.)*")/.exec(args);
  if (exec) {
    try {
      return `exec_command ${JSON.parse(exec[1]!) as string}`;
    } catch {
      // fall through to the arguments
    }
  }
  return args;
}

/**
 * Whether an approval-stage decision only says what its approval's own line says (`apr_1 approved
 * by bob`): that line follows with the votes and their reasons, so the decision is not printed
 * too. A decision that adds something (an approval used by a retry, or for a tool call) stays.
 */
function restatesApproval(decision: DecisionView, approvals: readonly CallApprovalView[]): boolean {
  if (decision.stage !== 'approval') return false;
  const approval = approvals.find((a) => decision.reason.startsWith(`${a.id} `));
  if (approval === undefined || decision.action !== approval.state) return false;
  const rest = decision.reason.slice(approval.id.length + 1);
  return rest === 'expired undecided' || (/^(?:approved|denied) by [^;]*$/.test(rest) && !rest.includes(' for tool call '));
}

/** One call as a readable block. `graph`: the session's chunks, for calls whose body is one (`request_ref`). */
export function formatCall(call: CallView, index: number, width = 100, graph: ChunkGraph | null = null): string {
  const lines: string[] = [];
  const model = call.model === null ? call.provider : `${call.provider}/${call.model}`;
  const status = `${call.status}${call.http_status === null ? '' : ` ${call.http_status}`}`;
  const facts = [status, call.stream ? 'streamed' : null, call.latency_ms === null ? null : `${call.latency_ms} ms`, tokens(call.usage)].filter((x) => x !== null);
  lines.push(`[${index}] ${formatTime(call.started_at)}  ${terminalSafe(model)}  ${facts.join(' · ')}`);
  lines.push(`    call ${terminalSafe(call.id)}  ${terminalSafe(call.method)} ${terminalSafe(call.path)}`);
  for (const d of call.decisions) {
    if (restatesApproval(d, call.approvals)) continue;
    const rule = d.rule_id === null ? '' : ` (${terminalSafe(d.rule_id)})`;
    lines.push(`    ${d.stage} ${terminalSafe(d.action)}${rule}${d.mode === 'shadow' ? ' [shadow]' : ''}: ${oneLine(d.reason, width - 30)}`);
  }
  for (const a of call.approvals) {
    const votes = a.votes.map((v) => `${v.decision === 'approve' ? 'approved' : 'denied'} by ${userLabel(v.by)}${v.reason ? ` ("${oneLine(v.reason, 60)}")` : ''}`);
    lines.push(`    approval ${terminalSafe(a.id)} ${a.state} (rule ${terminalSafe(a.rule_id)})${votes.length > 0 ? `: ${votes.join('; ')}` : ''}`);
  }
  if (call.error !== null) lines.push(`    error ${terminalSafe(call.error.code)}${call.error.message ? `: ${oneLine(call.error.message, width - 30)}` : ''}`);
  const request = requestView(call, graph);
  if (request.lastUser !== null) lines.push(`    user:   ${oneLine(request.lastUser, width - 12)}`);
  for (const r of request.toolResults) {
    const label = `${r.name === null ? '' : `${terminalSafe(r.name)} `}${r.callId === null ? '' : terminalSafe(r.callId)}`.trim();
    lines.push(`    tool result${label === '' ? '' : ` ${label}`}: ${oneLine(r.text, Math.min(RESULT_START, Math.max(20, width - 30)))}`);
  }
  // The answer read once: its text, then its tool calls with their arguments.
  const answer = answerAt(answerOf(call), Number.POSITIVE_INFINITY);
  const text = answerTextOf(answer);
  if (text !== null) lines.push(`    answer: ${oneLine(text, width - 12)}`);
  const toolCalls = answer.filter((p) => p.part.kind === 'tool').map((p) => ({ name: p.part.label ?? '?', args: p.text }));
  for (const t of toolCalls) lines.push(`    tool call ${terminalSafe(t.name)}: ${oneLine(toolCallSummary(t.args), Math.max(20, width - 20 - t.name.length))}`);
  return lines.join('\n');
}

/** `aigov sessions show`: a header, then each call's block. */
export function formatSessionDetail(detail: SessionDetail, width = 100): string {
  const s = detail.session;
  const head = `Session ${terminalSafe(s.id)} · ${userLabel(s.user)} · ${s.call_count} call${s.call_count === 1 ? '' : 's'} · ${formatTime(s.started_at)} → ${formatTime(s.last_call_at)}`;
  const graph = detail.body_chunks === undefined ? null : graphOfWireChunks(detail.body_chunks);
  return [head, ...detail.calls.map((call, i) => `\n${formatCall(call, i + 1, width, graph)}`)].join('\n');
}
