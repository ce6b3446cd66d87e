/**
 * `aigov sessions replay ID` without a terminal: the whole session as a readable plain-text
 * transcript (no ANSI, no cursor movement), call after call — heading, decisions, approval
 * record, prompt by role, the answer as it ended and how it streamed — for pipes, logs and CI.
 */
import { terminalSafe } from './approvals-format.ts';
import { answerAt, maskedSpansOf, type ReplayAnswer, type ReplayTimeline } from './replay-model.ts';
import { approvalHeading, callHeading, decisionLine, formatDuration, partTitle, sessionHeading, voteLine } from './replay-format.ts';

function indent(text: string, by: string): string[] {
  return text.split('\n').map((line) => (line === '' ? by.trimEnd() : by + line));
}

function streamSummary(answer: ReplayAnswer, firstByteMs: number | null): string {
  if (!answer.streamed) return 'Answer';
  const first = answer.deltas[0];
  const firstText = first !== undefined ? `, first text at ${formatDuration(first.offsetMs)}` : firstByteMs !== null ? `, first byte at ${formatDuration(firstByteMs)}` : '';
  return `Answer (streamed: ${answer.eventCount} event${answer.eventCount === 1 ? '' : 's'}, ${answer.deltas.length} text deltas${firstText}, last at ${formatDuration(answer.lastDeltaMs)})`;
}

export function formatTranscript(timeline: ReplayTimeline): string {
  const lines: string[] = [sessionHeading(timeline.detail)];
  const total = timeline.calls.length;
  if (total === 0) lines.push('', 'No calls recorded in this session.');
  for (const replay of timeline.calls) {
    const call = replay.call;
    lines.push('', callHeading(replay, total));
    lines.push('  Decisions');
    if (call.decisions.length === 0) lines.push('    none (allowed)');
    for (const decision of call.decisions) lines.push(`    ${decisionLine(decision)}`);
    for (const approval of call.approvals) {
      lines.push(`  ${approvalHeading(approval)}`);
      if (approval.votes.length === 0) lines.push('    no votes');
      for (const vote of approval.votes) lines.push(`    ${voteLine(vote)}`);
    }
    const masked = maskedSpansOf(replay);
    if (masked.length > 0) lines.push(`  Masked: ${masked.map((m) => terminalSafe(m)).join(' ')}`);
    lines.push('  Prompt');
    if (replay.prompt.length === 0) lines.push('    (empty)');
    for (const message of replay.prompt) {
      const text = terminalSafe(message.text, { newlines: true });
      lines.push(`    [${terminalSafe(message.role)}]`, ...indent(text === '' ? '(empty)' : text, '      '));
    }
    lines.push(`  ${streamSummary(replay.answer, call.first_byte_ms)}`);
    const parts = answerAt(replay.answer, Number.POSITIVE_INFINITY);
    if (parts.length === 0) lines.push(call.status === 'blocked' ? '    (none: the request was blocked)' : '    (no text)');
    for (const { part, text } of parts) {
      const title = partTitle(part);
      if (title !== null) lines.push(`    ${title}`);
      lines.push(...indent(terminalSafe(text, { newlines: true }), title !== null ? '      ' : '    '));
    }
  }
  return `${lines.join('\n')}\n`;
}
