/**
 * The replay TUI (Ink) rendered with ink-testing-library. Its clock is a prop: a fake clock that
 * the test moves forward shows that each recorded chunk appears exactly at its offset (scaled by
 * the speed), and keys pause, seek and change speed. One test runs on the real clock and checks
 * the chunks appear on time within a tolerance. The real terminal is in session-replay-cli.test.ts.
 */
// Colours on, so the masked-span highlight (inverse) is in the frames.
process.env.FORCE_COLOR = '1';
import './support/tsx-loader.ts';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, it } from 'node:test';
import { createElement } from 'react';
import { buildTimeline } from '../src/cli/replay-model.ts';
import type { ReplayClock } from '../src/tui/SessionReplay.tsx';
import { call, chatChunk, eventsAt, iso, session, T0 } from './support/session-fixtures.ts';

// Loaded after FORCE_COLOR is set (static imports would load Ink's colour library first).
const { cleanup, render } = await import('ink-testing-library');
const ink = await import('ink');
const { SessionReplay, systemClock } = await import('../src/tui/SessionReplay.tsx');

/** Timers that fire only when the test moves time forward. */
class FakeClock implements ReplayClock {
  t = 0;
  #next = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#next;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown): void => void this.#timers.delete(handle as number);
  /** Moves to `target`, firing due timers in order and letting React render after each. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      await settle();
      const due = [...this.#timers].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = target;
    await settle();
  }
}

/** Lets Ink read input, React commit and effects schedule their timers. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 8));

// eslint-disable-next-line no-control-regex
const plain = (frame: string | undefined): string => (frame ?? '').replace(/\u001b\[[0-9;]*m/g, '');

const ANSWER = ['The ', 'owner ', 'is ', '«EMAIL_1»', '.'];
const OFFSETS = [100, 250, 600, 900, 1200];

function twoCalls() {
  return session([
    call('call_1', {
      decisions: [{ stage: 'request', action: 'pseudonymize', rule_id: 'pii', reason: 'Emails get placeholders', mode: 'enforce' }],
      approvals: [
        { id: 'apr_9', state: 'approved', rule_id: 'customer-data', created_at: iso(T0 + 5), decided_at: iso(T0 + 3005), votes: [{ by: { sub: 'bob', email: 'bob@aigov.dev' }, decision: 'approve', reason: 'ok for ticket 7', at: iso(T0 + 3005) }] },
      ],
      request_body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Who owns [EMAIL] and card ****1111?' }] }),
      events: eventsAt([...ANSWER.map(chatChunk), 'data: [DONE]\n\n'], [...OFFSETS, 1210]),
      latency_ms: 1210,
    }),
    call('call_2', {
      started_at: iso(T0 + 20_000),
      stream: false,
      request_body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'second question' }] }),
      response_body: JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'Second answer, all at once.' }, finish_reason: 'stop' }] }),
      latency_ms: 400,
    }),
  ]);
}

function setup(opts: { speed?: number } = {}) {
  const clock = new FakeClock();
  let quits = 0;
  const view = render(createElement(SessionReplay, { timeline: buildTimeline(twoCalls()), clock, redrawMs: 100_000, onQuit: () => void quits++, ...(opts.speed ? { speed: opts.speed } : {}) }));
  return { clock, ...view, frame: () => plain(view.lastFrame()), quits: () => quits };
}

/** The answer text as shown (the lines under the Answer label, up to the blank line). */
function answerShown(frame: string): string {
  const lines = frame.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Answer'));
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines
    .slice(start + 1, end)
    .map((l) => l.trim())
    .join(' ');
}

after(() => cleanup());

describe('SessionReplay', () => {
  it('re-streams each chunk exactly at its recorded offset (fake clock), and shows the call, decisions, approval and prompt', async () => {
    const { clock, frame, unmount } = setup();
    await clock.advanceTo(0);
    let f = frame();
    assert.match(f, /aigov sessions replay ses_replay · alice@aigov\.dev · 2 calls/);
    assert.match(f, /◆─+○─* call 1\/2/);
    assert.match(f, /Call 1 of 2 · completed \(HTTP 200\) · 1\.2 s · 12:00:00\.000Z \(\+0 ms\)\nopenai\/gpt-4o-mini · openai\.chat\.completions · streamed · openai-node\n/);
    assert.match(f, /⚑ pseudonymize · rule pii · request · Emails get placeholders/);
    assert.match(f, /Approval apr_9 \(rule customer-data\): approved at 12:00:03\.005Z, held 3\.0 s/);
    assert.match(f, /✔ approved by bob@aigov\.dev at 12:00:03\.005Z: “ok for ticket 7”/);
    assert.match(f, /system +│ Be brief\./);
    assert.match(f, /user +│ Who owns \[EMAIL\] and card \*\*\*\*1111\?/);
    assert.match(f, /\(waiting for the first token…\)/);
    assert.match(f, /▶ playing 1×/);

    let expected = '';
    for (let i = 0; i < OFFSETS.length; i++) {
      await clock.advanceTo(OFFSETS[i]! - 1);
      assert.equal(answerShown(frame()), expected === '' ? '(waiting for the first token…)' : expected.trim(), `1 ms before chunk ${i} at ${OFFSETS[i]} ms`);
      await clock.advanceTo(OFFSETS[i]!);
      expected += ANSWER[i];
      assert.equal(answerShown(frame()), expected.trim(), `chunk ${i} at ${OFFSETS[i]} ms`);
    }
    f = frame();
    assert.match(f, /1\.2s \/ 1\.2s/);
    unmount();
  });

  it('highlights masked spans in the prompt and the answer', async () => {
    const { clock, lastFrame, unmount } = setup();
    await clock.advanceTo(2000);
    const raw = lastFrame() ?? '';
    for (const masked of ['[EMAIL]', '****1111', '«EMAIL_1»']) {
      assert.ok(raw.includes(`\u001b[7m${masked}`) || new RegExp(`\\u001b\\[7m(?:\\u001b\\[[0-9;]*m)*${masked.replace(/[[\]*]/g, '\\$&')}`).test(raw), `${masked} is shown inverse:\n${JSON.stringify(raw)}`);
    }
    // eslint-disable-next-line no-control-regex
    assert.ok(!/\u001b\[7m(?:\u001b\[[0-9;]*m)*Who owns/.test(raw), 'plain text is not highlighted');
    unmount();
  });

  it('at 4× the chunks come four times sooner; space pauses and resumes; +/- change the speed', async () => {
    const { clock, frame, stdin, unmount } = setup({ speed: 4 });
    await clock.advanceTo(0);
    assert.match(frame(), /▶ playing 4×/);
    await clock.advanceTo(63); // 252 ms of call time
    assert.equal(answerShown(frame()), 'The owner');
    stdin.write(' ');
    await clock.advanceTo(5000);
    let f = frame();
    assert.match(f, /❚❚ paused 4×/);
    assert.equal(answerShown(f), 'The owner', 'nothing more while paused');
    stdin.write(' ');
    await clock.advanceTo(5000 + 86); // 252 + 344 = 596 ms: not yet the chunk at 600
    assert.equal(answerShown(frame()), 'The owner');
    await clock.advanceTo(5000 + 87);
    assert.equal(answerShown(frame()), 'The owner is');
    stdin.write('-');
    await clock.advanceTo(5087);
    stdin.write('-');
    await clock.advanceTo(5087);
    f = frame();
    assert.match(f, /▶ playing 1×/);
    // 1×: the chunk at 900 ms comes 900 - 600 = 300 ms later.
    await clock.advanceTo(5087 + 299);
    assert.equal(answerShown(frame()), 'The owner is');
    await clock.advanceTo(5087 + 300);
    assert.equal(answerShown(frame()), 'The owner is «EMAIL_1»');
    for (let i = 0; i < 9; i++) stdin.write('+');
    await clock.advanceTo(5387);
    assert.match(frame(), /▶ playing 16×/);
    unmount();
  });

  it('→ and ← move between calls; after the last call it stops; q quits', async () => {
    const { clock, frame, stdin, quits, unmount } = setup();
    await clock.advanceTo(10);
    stdin.write('\u001B[C');
    await clock.advanceTo(20);
    let f = frame();
    assert.match(f, /Call 2 of 2 · completed \(HTTP 200\) · 400 ms · 12:00:20\.000Z \(\+20\.0 s\)\nopenai\/gpt-4o-mini · openai\.chat\.completions · openai-node\n/);
    assert.match(f, /●─+◆─* call 2\/2/);
    assert.match(f, /No policy decision: allowed as sent\./);
    // A body that came whole is shown whole at once: no progress bar playing out its latency.
    const answerLabel = f.split('\n').find((l) => l.startsWith('Answer')) ?? '';
    assert.equal(answerLabel, 'Answer (not streamed: it came whole after 400 ms)');
    assert.equal(answerShown(f), 'Second answer, all at once.');
    await clock.advanceTo(60);
    assert.match(frame(), /■ finished/, 'nothing left to play: it finishes at once');
    stdin.write('\u001B[D');
    await clock.advanceTo(70);
    f = frame();
    assert.match(f, /Call 1 of 2/);
    assert.match(f, /▶ playing/);
    assert.match(f, /\(waiting for the first token…\)/, 'from the start of the call');
    // Played through, it moves on to the next call by itself after the (capped) gap.
    await clock.advanceTo(70 + 1210 + 2000);
    assert.match(frame(), /Call 2 of 2/);
    stdin.write('q');
    await clock.advanceTo(4300);
    assert.equal(quits(), 1);
    unmount();
  });

  it('escapes control characters from the recording', async () => {
    const detail = session([call('c', { request_body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi \u001b[2J\u202eevil' }] }) })]);
    const clock = new FakeClock();
    const view = render(createElement(SessionReplay, { timeline: buildTimeline(detail), clock }));
    await clock.advanceTo(0);
    const raw = view.lastFrame() ?? '';
    assert.ok(!raw.includes('\u001b[2J') && !raw.includes('\u202e'), 'no raw control sequence reaches the terminal');
    assert.match(plain(raw), /user +│ hi \\x1b\[2J\\u202eevil/);
    view.unmount();
  });

  it('on the real clock the chunks appear on time (within 250 ms late on a busy machine, never early)', async () => {
    const offsets = [300, 600, 900, 1500];
    const texts = ['one ', 'two ', 'three ', 'four'];
    const detail = session([call('c', { events: eventsAt(texts.map(chatChunk), offsets), latency_ms: 1500 })]);
    // The replay starts when the view first reads the clock: measure from there.
    const first = { at: Number.NaN };
    const clock: ReplayClock = {
      ...systemClock,
      now: () => {
        const t = systemClock.now();
        if (Number.isNaN(first.at)) first.at = t;
        return t;
      },
    };
    const view = render(createElement(SessionReplay, { timeline: buildTimeline(detail), clock }));
    const start = first.at;
    assert.ok(!Number.isNaN(start));
    const seenAt: number[] = [];
    while (seenAt.length < texts.length && systemClock.now() - start < 3000) {
      const shown = answerShown(plain(view.lastFrame()));
      const count = texts.filter((_, i) => shown.includes(texts.slice(0, i + 1).join('').trim())).length;
      while (seenAt.length < count) seenAt.push(systemClock.now() - start);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    view.unmount();
    assert.equal(seenAt.length, texts.length, 'every chunk appeared');
    seenAt.forEach((at, i) => {
      assert.ok(at >= offsets[i]! - 5, `chunk ${i} appeared at ${at.toFixed(0)} ms, before its offset ${offsets[i]} ms`);
      assert.ok(at <= offsets[i]! + 250, `chunk ${i} appeared at ${at.toFixed(0)} ms, offset ${offsets[i]} ms`);
    });
  });
});

/** A terminal of a given size for Ink (ink-testing-library's is always 100 columns and no rows). */
class SizedTerminal extends EventEmitter {
  readonly columns: number;
  readonly rows: number;
  frame = '';
  constructor(size: { columns: number; rows: number }) {
    super();
    this.columns = size.columns;
    this.rows = size.rows;
  }
  write = (frame: string): void => void (this.frame = frame);
}

class QuietStdin extends EventEmitter {
  isTTY = true;
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
  read = (): null => null;
}

/** The replay's first frame on a terminal of `size`. */
async function frameOn(size: { columns: number; rows: number }, detail: ReturnType<typeof session>): Promise<string> {
  const stdout = new SizedTerminal(size);
  const clock = new FakeClock();
  const instance = ink.render(createElement(SessionReplay, { timeline: buildTimeline(detail), clock, redrawMs: 100_000 }), {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: new QuietStdin() as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  await clock.advanceTo(0);
  const frame = stdout.frame;
  instance.unmount();
  if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(frame);
  return plain(frame);
}

/** A held call with many decisions and a 2-of-2 approval: the record a terminal must not hide. */
function heldCall() {
  const rules = ['pii', 'cards', 'answers-masked', 'contractors', 'preview-models', 'prod-credentials'];
  return session([
    call('call_held', {
      decisions: [
        ...rules.map((rule) => ({ stage: 'request' as const, action: 'log', rule_id: rule, reason: `rule ${rule} matched`, mode: 'enforce' as const })),
        { stage: 'approval', action: 'approved', rule_id: 'prod-credentials', reason: 'apr_7 approved by bob@aigov.dev, dave@aigov.dev', mode: 'enforce' },
      ],
      approvals: [
        {
          id: 'apr_7',
          state: 'approved',
          rule_id: 'prod-credentials',
          created_at: iso(T0),
          decided_at: iso(T0 + 9000),
          votes: [
            { by: { sub: 'bob', email: 'bob@aigov.dev' }, decision: 'approve', reason: 'for the migration', at: iso(T0 + 4000) },
            { by: { sub: 'dave', email: 'dave@aigov.dev' }, decision: 'approve', reason: 'legal ok', at: iso(T0 + 9000) },
          ],
        },
      ],
      events: eventsAt(['Sure.'].map(chatChunk), [9100]),
      latency_ms: 9200,
    }),
  ]);
}

describe('SessionReplay on terminals of other sizes', () => {
  it('on a 200-column terminal the timeline, the rule under it and the text share one width', async () => {
    const long = 'word '.repeat(80).trim();
    const detail = session([
      call('c1', { request_body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: long }] }), events: eventsAt([chatChunk(long)], [10]) }),
      call('c2', { started_at: iso(T0 + 5000) }),
    ]);
    const frame = await frameOn({ columns: 200, rows: 40 }, detail);
    const lines = frame.split('\n');
    const timeline = lines.find((l) => l.includes(' call 1/2')) ?? '';
    const rule = lines.find((l) => /^─+$/.test(l)) ?? '';
    assert.equal([...timeline].length, [...rule].length, `timeline and rule are as wide:\n${frame}`);
    const widest = Math.max(...lines.map((l) => [...l.trimEnd()].length));
    assert.equal(widest, [...rule].length, 'no line is wider than the rule');
    assert.ok(widest <= 120, `at most 120 columns, not ${widest}`);
    assert.ok(lines.filter((l) => l.includes('word')).length >= 4, 'the long prompt and answer wrap at that width');
  });

  it('on a 50-row terminal every decision, the approval and both votes show; on a 20-row one what is left out is counted', async () => {
    const tall = await frameOn({ columns: 120, rows: 50 }, heldCall());
    for (const rule of ['pii', 'cards', 'answers-masked', 'contractors', 'preview-models']) assert.match(tall, new RegExp(`⚑ log · rule ${rule} · request`), tall);
    assert.match(tall, /⚑ approved · rule prod-credentials · approval · apr_7 approved by bob@aigov\.dev, dave@aigov\.dev/);
    assert.match(tall, /Approval apr_7 \(rule prod-credentials\): approved at/);
    assert.match(tall, /✔ approved by bob@aigov\.dev at .*“for the migration”/);
    assert.match(tall, /✔ approved by dave@aigov\.dev at .*“legal ok”/);
    assert.doesNotMatch(tall, /more line/);
    assert.ok(tall.split('\n').length <= 50, 'it fits the screen');

    const short = await frameOn({ columns: 120, rows: 20 }, heldCall());
    const hidden = /… (\d+) more lines? of decisions and approvals \(all of them: --no-tty\)/.exec(short);
    assert.ok(hidden, short);
    const shownRecord = short.split('\n').filter((l) => l.startsWith('⚑') || l.startsWith('Approval') || l.startsWith('  ✔')).length;
    assert.equal(shownRecord + Number(hidden[1]), 7 + 1 + 2, 'shown and counted add up to the whole record');
    assert.match(short, /user +│ question of call_held/, 'the prompt keeps its rows');
    assert.ok(short.split('\n').length <= 20, 'it fits the screen');
  });
});
