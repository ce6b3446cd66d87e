/**
 * Laying out the replay screen's text in a terminal of a given size: word wrapping, the call
 * markers on the session timeline, the progress bar. Pure, measured in code points (the text is
 * terminal-safe already; wide characters may overflow a little and are cut by Ink).
 */
import type { ReplayTimeline } from './replay-model.ts';

export { wrapText } from './terminal-text.ts';

/**
 * The session timeline as one line of `width` cells: `─` with a marker per call at its start
 * time (`●` played, `◆` current, `○` still to come). Calls too close to each other for their own
 * cell take the next free one, so every call keeps a marker while there is room; with more calls
 * than cells, each cell stands for a run of calls.
 */
export function timelineCells(timeline: ReplayTimeline, current: number, width: number): { text: string; currentAt: number } {
  const w = Math.max(1, Math.floor(width));
  const n = timeline.calls.length;
  const cells = Array.from({ length: w }, () => '─');
  const span = timeline.spanMs;
  const mark = (i: number): string => (i < current ? '●' : i === current ? '◆' : '○');
  if (n > w) {
    // More calls than cells: each cell stands for a run of calls, in order; the current call's cell shows it.
    timeline.calls.forEach((_, i) => {
      const at = Math.floor((i * w) / n);
      if (cells[at] !== '◆') cells[at] = mark(i);
    });
    return { text: cells.join(''), currentAt: Math.floor((current * w) / n) };
  }
  let used = -1;
  let currentAt = 0;
  timeline.calls.forEach((call, i) => {
    const ideal = span > 0 ? Math.round((call.startMs / span) * (w - 1)) : 0;
    const at = Math.min(w - (n - i), Math.max(used + 1, ideal));
    used = at;
    cells[at] = mark(i);
    if (i === current) currentAt = at;
  });
  return { text: cells.join(''), currentAt };
}

/** `━━━━━━╸─────` filled to `fraction` of `width`. */
export function progressBar(fraction: number, width: number): string {
  const w = Math.max(1, Math.floor(width));
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(f * w);
  if (filled >= w) return '━'.repeat(w);
  return '━'.repeat(filled) + '╸' + '─'.repeat(Math.max(0, w - filled - 1));
}

/** The replay screen is never wider than this: a timeline, rule and text of one width, readable on a wide terminal. */
export const REPLAY_MAX_WIDTH = 120;

/** Rows besides the record, the prompt and the answer: title, timeline, rule, heading (2), the prompt and answer labels, a blank line, status, keys. */
export const REPLAY_FIXED_ROWS = 10;

/** Rows the prompt and the answer keep each, however long the record. */
const TEXT_MIN_ROWS = 2;

export interface ReplayRows {
  /** Lines of the record (decisions, approvals, votes) shown. */
  readonly record: number;
  /** Lines of the record left out (said on one more line). */
  readonly recordHidden: number;
  readonly prompt: number;
  readonly answer: number;
}

/**
 * How a `rows`-high screen is shared. The record (what policy and approvers decided) is shown
 * whole while the prompt and the answer keep two rows each; past that it is cut, and one line
 * says how much is left out. The prompt gets what the answer does not need, and at least 40 %
 * of the text rows.
 */
export function shareRows(rows: number, wanted: { readonly record: number; readonly prompt: number; readonly answer: number }): ReplayRows {
  const room = Math.max(2 * TEXT_MIN_ROWS + 1, Math.floor(rows) - REPLAY_FIXED_ROWS);
  const recordRoom = room - 2 * TEXT_MIN_ROWS;
  const record = wanted.record <= recordRoom ? wanted.record : Math.max(0, recordRoom - 1);
  const recordHidden = wanted.record - record;
  const text = room - record - (recordHidden > 0 ? 1 : 0);
  const answerWanted = Math.max(TEXT_MIN_ROWS, wanted.answer);
  const prompt = Math.max(TEXT_MIN_ROWS, Math.min(wanted.prompt, Math.max(Math.floor(text * 0.4), text - answerWanted)));
  return { record, recordHidden, prompt, answer: Math.max(TEXT_MIN_ROWS, text - prompt) };
}
