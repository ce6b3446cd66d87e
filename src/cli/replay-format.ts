/**
 * How a replayed session reads, shared by the TUI and the plain transcript: the call's heading,
 * its policy decisions, its approval record, durations. Pure functions returning plain text that
 * is already terminal-safe (every recorded string goes through `terminalSafe`).
 */
import type { CallApprovalView, CallView, DecisionView, SessionDetail } from '../protocol/sessions.ts';
import { terminalSafe } from './approvals-format.ts';
import type { ReplayCall } from './replay-model.ts';

/** 850 ms, 2.1 s, 1m05s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Seconds with one decimal, for the player's clock: `0.8s`. */
export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

export function userLabel(user: { sub: string; email: string | null }): string {
  return terminalSafe(user.email ?? user.sub);
}

/** `openai/gpt-4o-mini`, or the provider alone. */
export function callModel(call: CallView): string {
  return terminalSafe(call.model ? `${call.provider}/${call.model}` : call.provider);
}

/** `completed (HTTP 200)`, `blocked (HTTP 403) AIGOV_E_POLICY_BLOCKED: …`. */
export function callOutcome(call: CallView): string {
  const http = call.http_status !== null ? ` (HTTP ${call.http_status})` : '';
  const error = call.error ? ` · ${terminalSafe(call.error.code)}${call.error.message ? `: ${terminalSafe(call.error.message)}` : ''}` : '';
  return `${call.status}${http}${error}`;
}

/** `12:00:03.250Z`: the time of day of an ISO timestamp (the date is in the session heading). */
export function timeOfDay(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return terminalSafe(iso);
  return new Date(ms).toISOString().slice(11, 23) + 'Z';
}

export function sessionHeading(detail: SessionDetail): string {
  const s = detail.session;
  const n = detail.calls.length;
  return `Session ${terminalSafe(s.id)} · ${userLabel(s.user)} · ${n} call${n === 1 ? '' : 's'} · ${terminalSafe(s.started_at)} → ${terminalSafe(s.last_call_at)}`;
}

/** `Call 2 of 3 · 12:00:03.250Z (+3.2 s) · openai/gpt-4o-mini · openai.chat.completions · streamed · completed (HTTP 200) · 2.1 s`. */
export function callHeading(replay: ReplayCall, total: number): string {
  const call = replay.call;
  const latency = call.latency_ms !== null ? ` · ${formatDuration(call.latency_ms)}` : '';
  return (
    `Call ${replay.index + 1} of ${total} · ${timeOfDay(call.started_at)} (+${formatDuration(replay.startMs)}) · ${callModel(call)} · ` +
    `${terminalSafe(call.endpoint)}${call.stream ? ' · streamed' : ''} · ${callOutcome(call)}${latency}`
  );
}

/**
 * The heading in two shorter lines for the TUI: what happened first (`Call 1 of 3 · completed
 * (HTTP 200) · 2.1 s · 12:00:03.250Z (+3.2 s)`), then to what (`openai/gpt-4o-mini ·
 * openai.chat.completions · streamed · openai-node`).
 */
export function callHeadingLines(replay: ReplayCall, total: number): [string, string] {
  const call = replay.call;
  const latency = call.latency_ms !== null ? ` · ${formatDuration(call.latency_ms)}` : '';
  const client = call.client.sdk ?? call.client.user_agent;
  return [
    `Call ${replay.index + 1} of ${total} · ${callOutcome(call)}${latency} · ${timeOfDay(call.started_at)} (+${formatDuration(replay.startMs)})`,
    `${callModel(call)} · ${terminalSafe(call.endpoint)}${call.stream ? ' · streamed' : ''}${client ? ` · ${terminalSafe(client)}` : ''}`,
  ];
}

/** A decision as one line: `mask_request · rule pii-mask · request · Emails are masked` (+ ` · shadow`). */
export function decisionLine(decision: DecisionView): string {
  const rule = decision.rule_id !== null ? ` · rule ${terminalSafe(decision.rule_id)}` : '';
  const shadow = decision.mode === 'shadow' ? ' · shadow (not enforced)' : '';
  const reason = decision.reason.trim() !== '' ? ` · ${terminalSafe(decision.reason)}` : '';
  return `${terminalSafe(decision.action)}${rule} · ${decision.stage}${reason}${shadow}`;
}

/** Tone of a decision action for colouring. */
export function decisionTone(action: string): 'bad' | 'warn' | 'good' | 'info' {
  if (action === 'block' || action === 'denied' || action === 'expired') return 'bad';
  if (action === 'require_approval') return 'warn';
  if (action === 'approved') return 'good';
  return 'info';
}

/** `Approval apr_1 (rule customer-data): approved at 12:00:05.000Z, held 25.0 s`. */
export function approvalHeading(approval: CallApprovalView): string {
  const held = approval.decided_at !== null ? `, held ${formatDuration(Date.parse(approval.decided_at) - Date.parse(approval.created_at))}` : '';
  const when = approval.decided_at !== null ? ` at ${timeOfDay(approval.decided_at)}` : approval.state === 'pending' ? ' (still waiting)' : '';
  return `Approval ${terminalSafe(approval.id)} (rule ${terminalSafe(approval.rule_id)}): ${approval.state}${when}${held}`;
}

/** One vote: `✔ approved by bob@aigov.dev at 12:00:05.000Z: “looks fine”`. */
export function voteLine(vote: CallApprovalView['votes'][number]): string {
  const verb = vote.decision === 'approve' ? '✔ approved' : '✘ denied';
  return `${verb} by ${userLabel(vote.by)} at ${timeOfDay(vote.at)}${vote.reason ? `: “${terminalSafe(vote.reason)}”` : ''}`;
}

/** The name shown before a tool call's arguments. */
export function partTitle(part: { kind: string; label: string | null }): string | null {
  if (part.kind === 'tool') return `→ tool call ${part.label !== null ? terminalSafe(part.label) : '?'}`;
  if (part.kind === 'refusal') return 'refusal';
  if (part.kind === 'error') return 'error';
  return null;
}
