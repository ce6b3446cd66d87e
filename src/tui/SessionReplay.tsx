/**
 * `aigov sessions replay ID` in a terminal: the session's calls on a timeline; for the current
 * call its heading, the policy decisions, the approval record, the prompt as recorded (masked
 * spans highlighted) and the answer re-streamed at its recorded pace. Keys: space pause/resume,
 * ←/→ previous/next call, +/- speed (0.25× … 16×), ↑/↓ scroll the prompt, q quit.
 *
 * The pace comes from the pure player (src/cli/replay-player.ts) and an injected clock: the view
 * sleeps until the next recorded delta is due (`nextWakeMs`) instead of polling, and tests drive
 * it with a fake clock. Everything recorded is shown through `terminalSafe`. Loaded with
 * `await import()` only when the replay runs in a terminal.
 */
import { Box, Text, render, useApp, useInput, useWindowSize, type Key } from 'ink';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { terminalSafe } from '../cli/approvals-format.ts';
import { approvalHeading, callHeadingLines, decisionLine, decisionTone, formatDuration, formatSeconds, partTitle, userLabel, voteLine } from '../cli/replay-format.ts';
import { progressBar, REPLAY_MAX_WIDTH, shareRows, timelineCells, wrapText } from '../cli/replay-layout.ts';
import { answerAt, splitMasked, type ReplayCall, type ReplayTimeline } from '../cli/replay-model.ts';
import { changeSpeed, formatSpeed, nextWakeMs, positionOf, seekCall, startPlayer, tick, togglePause, type PlayerState } from '../cli/replay-player.ts';

export interface ReplayClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Monotonic time and the real timers. */
export const systemClock: ReplayClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface SessionReplayProps {
  readonly timeline: ReplayTimeline;
  /** Starting speed, 0.25 … 16 (default 1). */
  readonly speed?: number;
  readonly clock?: ReplayClock;
  /** Longest wait between redraws while playing (the clock on screen moves), in wall ms. */
  readonly redrawMs?: number;
  /** Shortest wait between redraws: chunks due closer together than this (fast streams at 16×) show together. */
  readonly frameMs?: number;
  /** Called on `q` / Ctrl-C; default: exit the Ink app. */
  readonly onQuit?: () => void;
}

const TONE_COLOR = { bad: 'red', warn: 'yellow', good: 'green', info: 'cyan' } as const;

/** A line of recorded text with its masked spans highlighted. */
function MaskedLine({ text, prefix = '' }: { text: string; prefix?: string }) {
  return (
    <Text wrap="truncate-end">
      {prefix}
      {splitMasked(text).map((span, i) =>
        span.masked ? (
          <Text key={i} color="yellow" inverse>
            {span.text}
          </Text>
        ) : (
          span.text
        ),
      )}
    </Text>
  );
}

interface Line {
  readonly text: string;
  readonly prefix: string;
  readonly dim?: boolean;
}

/** The prompt as lines: `role │ text`, continuation lines aligned under the text. */
function promptLines(replay: ReplayCall, width: number): Line[] {
  const roleWidth = Math.min(12, Math.max(4, ...replay.prompt.map((m) => [...m.role].length)));
  const lines: Line[] = [];
  for (const message of replay.prompt) {
    const role = terminalSafe(message.role).slice(0, roleWidth).padEnd(roleWidth);
    const text = terminalSafe(message.text, { newlines: true });
    wrapText(text === '' ? '(empty)' : text, Math.max(10, width - roleWidth - 5)).forEach((line, i) => {
      lines.push({ prefix: `  ${i === 0 ? role : ' '.repeat(roleWidth)} │ `, text: line });
    });
  }
  if (lines.length === 0) lines.push({ prefix: '  ', text: '(empty)', dim: true });
  return lines;
}

/** The answer as far as it has streamed at `position`, as lines. */
function answerLines(replay: ReplayCall, position: number, width: number): Line[] {
  const lines: Line[] = [];
  for (const { part, text } of answerAt(replay.answer, position)) {
    const title = partTitle(part);
    if (title !== null) lines.push({ prefix: '  ', text: title, dim: true });
    for (const line of wrapText(terminalSafe(text, { newlines: true }), Math.max(10, width - 6))) lines.push({ prefix: title !== null ? '    ' : '  ', text: line });
  }
  return lines;
}

interface RecordLine {
  readonly text: string;
  /** A policy decision, drawn after a ⚑ in its colour; other lines are drawn in theirs. */
  readonly flag: boolean;
  readonly color?: (typeof TONE_COLOR)[keyof typeof TONE_COLOR];
  readonly dim?: boolean;
}

/** What policy and approvers decided about the call, a line each: decisions, then each approval and its votes. */
function recordLines(call: ReplayCall['call']): RecordLine[] {
  const lines: RecordLine[] =
    call.decisions.length === 0
      ? [{ text: 'No policy decision: allowed as sent.', flag: false, dim: true }]
      : call.decisions.map((d) => ({ text: decisionLine(d), flag: true, color: TONE_COLOR[decisionTone(d.action)] }));
  for (const approval of call.approvals) {
    lines.push({ text: approvalHeading(approval), flag: false, color: TONE_COLOR[decisionTone(approval.state)] });
    for (const vote of approval.votes) lines.push({ text: `  ${voteLine(vote)}`, flag: false });
  }
  return lines;
}

function Timeline({ timeline, current, width }: { timeline: ReplayTimeline; current: number; width: number }) {
  const label = ` call ${current + 1}/${timeline.calls.length}`;
  const { text, currentAt } = timelineCells(timeline, current, Math.max(timeline.calls.length, width - label.length));
  return (
    <Text wrap="truncate-end">
      <Text dimColor>{text.slice(0, currentAt)}</Text>
      <Text bold color="cyan">
        {text.slice(currentAt, currentAt + 1)}
      </Text>
      <Text dimColor>{text.slice(currentAt + 1)}</Text>
      <Text>{label}</Text>
    </Text>
  );
}

export function SessionReplay({ timeline, speed = 1, clock = systemClock, redrawMs = 250, frameMs = 16, onQuit }: SessionReplayProps) {
  const { exit } = useApp();
  const size = useWindowSize();
  const calls = timeline.calls;
  const [player, setPlayerState] = useState<PlayerState>(() => startPlayer(clock.now(), { speed }));
  // Keys can arrive faster than React re-renders (several in one chunk): handlers read and
  // write the latest state through this ref.
  const playerRef = useRef(player);
  const setPlayer = useCallback((update: (current: PlayerState) => PlayerState) => {
    playerRef.current = update(playerRef.current);
    setPlayerState(playerRef.current);
  }, []);
  // The time of the last wake or key: a new value re-renders the screen at the new position.
  const [, setNow] = useState(() => clock.now());
  const [promptOffset, setPromptOffset] = useState(0);

  const offsets = useMemo(() => calls.map((c) => c.answer.deltas.map((d) => d.offsetMs)), [calls]);

  // Sleep until the next delta is due (or the clock on screen should move), advance, and sleep
  // again from the timer itself: waiting for React to re-run an effect would add a frame of delay.
  // Keys re-arm it (`armed` changes) since they change what is due next.
  const [armed, setArmed] = useState(0);
  useEffect(() => {
    let handle: unknown = null;
    const arm = (): void => {
      const wake = nextWakeMs(playerRef.current, calls, offsets[playerRef.current.call] ?? [], clock.now());
      if (wake === null) return;
      handle = clock.setTimeout(
        () => {
          const t = clock.now();
          setPlayer((current) => tick(current, calls, t));
          setNow(t);
          arm();
        },
        Math.max(frameMs, 1, Math.min(redrawMs, Math.ceil(wake))),
      );
    };
    arm();
    return () => {
      if (handle !== null) clock.clearTimeout(handle);
    };
  }, [armed, calls, offsets, clock, redrawMs, frameMs, setPlayer]);

  const current = player.call;
  useEffect(() => setPromptOffset(0), [current]);

  const quit = useCallback(() => (onQuit ? onQuit() : exit()), [onQuit, exit]);

  const handleKey = (input: string, key: Key): void => {
    const t = clock.now();
    if ((key.ctrl && input === 'c') || input === 'q') quit();
    else if (input === ' ') setPlayer((p) => togglePause(p, calls, t));
    else if (key.leftArrow || input === 'h') setPlayer((p) => seekCall(p, calls, -1, t));
    else if (key.rightArrow || input === 'l') setPlayer((p) => seekCall(p, calls, 1, t));
    else if (input === '+' || input === '=') setPlayer((p) => changeSpeed(p, calls, 1, t));
    else if (input === '-' || input === '_') setPlayer((p) => changeSpeed(p, calls, -1, t));
    else if (key.downArrow || input === 'j') setPromptOffset((o) => o + 1);
    else if (key.upArrow || input === 'k') setPromptOffset((o) => Math.max(0, o - 1));
    else return;
    setNow(t);
    setArmed((n) => n + 1);
  };

  useInput((input, key) => {
    const special = key.ctrl || key.meta || key.escape || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow;
    const chars = [...input];
    if (special || chars.length <= 1) handleKey(input, key);
    else for (const char of chars) handleKey(char, key);
  });

  const width = Math.min(REPLAY_MAX_WIDTH, Math.max(40, size.columns || 80));
  const rows = Math.max(16, size.rows || 24);
  const session = timeline.detail.session;
  const title = (
    <Text wrap="truncate-end">
      <Text bold>aigov sessions replay</Text> {terminalSafe(session.id)} · {userLabel(session.user)} · {calls.length} call{calls.length === 1 ? '' : 's'}
    </Text>
  );
  const replay = calls[current];
  // The whole answer's height sizes the rows, so the prompt does not shrink as the answer streams in.
  const answerHeight = useMemo(() => (replay === undefined ? 0 : answerLines(replay, Number.POSITIVE_INFINITY, width).length), [replay, width]);
  if (replay === undefined) {
    return (
      <Box flexDirection="column" width={width}>
        {title}
        <Text>No calls recorded in this session.</Text>
        <Text dimColor>q quit</Text>
      </Box>
    );
  }

  const call = replay.call;
  const heading = callHeadingLines(replay, calls.length);
  const position = positionOf(player, calls, clock.now());
  const record = recordLines(call);
  const prompt = promptLines(replay, width);
  const answer = answerLines(replay, position, width);
  const share = shareRows(rows, { record: record.length, prompt: prompt.length, answer: answerHeight });
  const promptRows = share.prompt;
  const answerRows = share.answer;
  const offset = Math.max(0, Math.min(promptOffset, prompt.length - promptRows));
  const promptShown = prompt.slice(offset, offset + promptRows);
  const promptHidden = prompt.length - promptShown.length;
  const answerShown = answer.slice(Math.max(0, answer.length - answerRows));
  const duration = replay.durationMs;
  const state = player.finished ? '■ finished' : player.playing ? '▶ playing' : '❚❚ paused';
  const waiting = answer.length === 0;

  return (
    <Box flexDirection="column" width={width}>
      {title}
      <Timeline timeline={timeline} current={current} width={width} />
      <Text dimColor>{'─'.repeat(width)}</Text>
      <Text bold wrap="truncate-end">
        {heading[0]}
      </Text>
      <Text wrap="truncate-end">{heading[1]}</Text>
      {record.slice(0, share.record).map((line, i) => (
        <Text key={`d${i}`} wrap="truncate-end" dimColor={line.dim === true} {...(line.flag || line.color === undefined ? {} : { color: line.color })}>
          {line.flag ? <Text {...(line.color === undefined ? {} : { color: line.color })}>⚑ </Text> : null}
          {line.text}
        </Text>
      ))}
      {share.recordHidden > 0 ? <Text dimColor>… {share.recordHidden} more line{share.recordHidden === 1 ? '' : 's'} of decisions and approvals (all of them: --no-tty)</Text> : null}
      <Text dimColor wrap="truncate-end">
        Prompt{promptHidden > 0 ? ` · lines ${offset + 1}-${offset + promptShown.length} of ${prompt.length}, ↑/↓ to scroll` : ''}
      </Text>
      {promptShown.map((line, i) => (
        <MaskedLine key={`p${i}`} prefix={line.prefix} text={line.text} />
      ))}
      {replay.answer.streamed ? (
        <Text wrap="truncate-end">
          <Text dimColor>Answer </Text>
          <Text color="cyan">{progressBar(duration > 0 ? position / duration : 1, Math.min(30, Math.max(10, width - 40)))}</Text> {formatSeconds(position)} / {formatSeconds(duration)}
        </Text>
      ) : (
        <Text dimColor wrap="truncate-end">
          Answer (not streamed{call.latency_ms !== null ? `: it came whole after ${formatDuration(call.latency_ms)}` : ''})
        </Text>
      )}
      {waiting ? (
        <Text dimColor>{call.status === 'blocked' ? '  (none: the request was blocked)' : position < duration ? '  (waiting for the first token…)' : '  (no text)'}</Text>
      ) : (
        answerShown.map((line, i) => (line.dim ? <Text key={`r${i}`} dimColor wrap="truncate-end">{line.prefix + line.text}</Text> : <MaskedLine key={`r${i}`} prefix={line.prefix} text={line.text} />))
      )}
      <Text> </Text>
      <Text wrap="truncate-end">
        <Text color={player.playing ? 'green' : 'yellow'}>{state}</Text> {formatSpeed(player.speed)}
      </Text>
      <Text dimColor wrap="truncate-end">
        space pause · ←/→ call · +/- speed · ↑/↓ prompt · q quit
      </Text>
    </Box>
  );
}

/** Runs the replay full-screen on the terminal until the user quits. */
export async function runSessionReplay(props: Omit<SessionReplayProps, 'onQuit'>): Promise<void> {
  const instance = render(<SessionReplay {...props} />, { exitOnCtrlC: false, patchConsole: false, interactive: true, alternateScreen: true });
  await instance.waitUntilExit();
}
