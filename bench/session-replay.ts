/**
 * Session replay (issue 6 item 3): what the replay costs before and while it plays.
 *
 *   node bench/session-replay.ts [--calls 200] [--chunks 400] [--runs 15]
 *
 * A synthetic session of --calls streamed OpenAI chat calls, each an answer of --chunks SSE
 * events (a few words each, some masked spans), validated with the wire schema as the CLI does.
 * Measured (median of --runs, after 3 warm-ups):
 *   1. parse: SessionDetailSchema.parse + buildTimeline (prompts and answer deltas of every call);
 *   2. transcript: formatTranscript of the whole session (the --no-tty output);
 *   3. frame: what the TUI recomputes per redraw for the longest call at its end — the answer so
 *      far (answerAt), wrapped to 100 columns, each line split into masked spans — i.e. the pure
 *      part of one frame, without Ink's own layout and write.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { answerAt, buildTimeline, splitMasked } from '../src/cli/replay-model.ts';
import { wrapText } from '../src/cli/replay-layout.ts';
import { formatTranscript } from '../src/cli/replay-transcript.ts';
import { SessionDetailSchema } from '../src/protocol/sessions.ts';
import { call, chatChunk, iso, session, T0 } from '../test/support/session-fixtures.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '200' }, chunks: { type: 'string', default: '400' }, runs: { type: 'string', default: '15' } } });
const CALLS = Number(values.calls);
const CHUNKS = Number(values.chunks);
const RUNS = Number(values.runs);

const WORDS = ['the ', 'account ', 'owner ', 'is ', '[EMAIL] ', 'and ', 'the ', 'card ', 'ends ', 'in ', '****1111. ', '«PERSON_1» ', 'will ', 'call.\n'];

/** A session of CALLS streamed calls of CHUNKS chunks each (the test fixtures' builders). */
function sessionJson(): unknown {
  const calls = Array.from({ length: CALLS }, (_, i) => {
    const started = T0 + i * 30_000;
    return call(`call_${i}`, {
      started_at: iso(started),
      ended_at: iso(started + CHUNKS * 20),
      first_byte_ms: 300,
      latency_ms: 300 + CHUNKS * 20,
      decisions: [{ stage: 'request', action: 'mask_request', rule_id: 'pii', reason: 'masked', mode: 'enforce' }],
      request_body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Question ${i} about [EMAIL] and ****1111`.repeat(20) }] }),
      events: [...Array.from({ length: CHUNKS }, (_, j) => ({ offset_ms: 300 + j * 20, raw: chatChunk(WORDS[j % WORDS.length]!) })), { offset_ms: 300 + CHUNKS * 20, raw: 'data: [DONE]\n\n' }],
    });
  });
  return session(calls);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function measure(fn: () => unknown): number {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

const raw = JSON.parse(JSON.stringify(sessionJson())) as unknown;
const parse = measure(() => buildTimeline(SessionDetailSchema.parse(raw)));
const timeline = buildTimeline(SessionDetailSchema.parse(raw));
let transcriptBytes = 0;
const transcript = measure(() => (transcriptBytes = formatTranscript(timeline).length));
const last = timeline.calls[0]!;
const frame = measure(() => {
  let spans = 0;
  for (const { text } of answerAt(last.answer, last.durationMs)) for (const line of wrapText(text, 94)) spans += splitMasked(line).length;
  return spans;
});

const events = CALLS * (CHUNKS + 1);
console.log(`session: ${CALLS} calls × ${CHUNKS} chunks = ${events} stream events, median of ${RUNS}`);
console.log(`parse (schema + timeline): ${parse.toFixed(1)} ms (${Math.round(events / (parse / 1000)).toLocaleString('en-US')} events/s)`);
console.log(`transcript: ${transcript.toFixed(1)} ms (${(transcriptBytes / 1024 / 1024).toFixed(1)} MiB of text)`);
console.log(`frame for one ${CHUNKS}-chunk answer at its end: ${frame.toFixed(2)} ms`);
