/**
 * The replay's player as a state machine over an injected clock: which call is shown, where in
 * it the replay is (milliseconds of the call's own time), playing or paused, at what speed.
 * Pure — every transition takes the current wall-clock time — so tests drive the pace with a
 * fake clock and the TUI asks `nextWakeMs` when to redraw instead of polling.
 *
 * A call plays from 0 to its duration; the player then waits for the recorded gap before the
 * next call (at least GAP_MIN_MS, at most GAP_MAX_MS of call time, scaled by the speed like
 * everything else) and moves on; after the last call it stops, finished.
 */
import { badFlag } from './flag-values.ts';

/** The speeds `+` and `-` step through. */
export const SPEEDS: readonly number[] = [0.25, 0.5, 1, 2, 4, 8, 16];
export const MIN_SPEED = 0.25;
export const MAX_SPEED = 16;
export const GAP_MIN_MS = 750;
export const GAP_MAX_MS = 2000;

export interface PlayerCall {
  /** Milliseconds from the session's first call to this one's start. */
  readonly startMs: number;
  readonly durationMs: number;
}

export interface PlayerState {
  readonly call: number;
  readonly playing: boolean;
  readonly speed: number;
  /** The position in the call (ms of call time) at wall time `since`. */
  readonly positionMs: number;
  /** Wall-clock time the position was taken at; while playing, the position grows from there. */
  readonly since: number;
  /** The last call has been played to its end. */
  readonly finished: boolean;
}

export function clampSpeed(speed: number): number {
  if (!Number.isFinite(speed)) return 1;
  return Math.min(MAX_SPEED, Math.max(MIN_SPEED, speed));
}

/** The `--speed` flag: a number from 0.25 to 16 (`2`, `0.5`, `4x`); default 1. */
export function parseSpeed(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 1;
  const speed = Number(text.trim().replace(/[x×]$/i, ''));
  if (!Number.isFinite(speed) || speed < MIN_SPEED || speed > MAX_SPEED) {
    throw badFlag('--speed', text, `it takes a number from ${MIN_SPEED} to ${MAX_SPEED} (0.5, 2 or 4x)`, 'aigov sessions replay ID --speed 4');
  }
  return speed;
}

export function startPlayer(now: number, options: { speed?: number; call?: number } = {}): PlayerState {
  return { call: options.call ?? 0, playing: true, speed: clampSpeed(options.speed ?? 1), positionMs: 0, since: now, finished: false };
}

/** Where the replay is in the current call at `now`, not clamped to the call's length. */
export function rawPosition(state: PlayerState, now: number): number {
  return state.playing ? state.positionMs + Math.max(0, now - state.since) * state.speed : state.positionMs;
}

/** Where the replay is in the current call at `now`: 0 … its duration. */
export function positionOf(state: PlayerState, calls: readonly PlayerCall[], now: number): number {
  const duration = calls[state.call]?.durationMs ?? 0;
  return Math.min(duration, rawPosition(state, now));
}

/** The pause after call `i` before the next one, in call time. */
export function gapAfter(calls: readonly PlayerCall[], i: number): number {
  const call = calls[i];
  const next = calls[i + 1];
  if (call === undefined || next === undefined) return 0;
  const recorded = next.startMs - (call.startMs + call.durationMs);
  return Math.min(GAP_MAX_MS, Math.max(GAP_MIN_MS, recorded));
}

/** Moves on to the next call(s) when the current one and its gap are over at `now`; stops after the last. */
export function tick(state: PlayerState, calls: readonly PlayerCall[], now: number): PlayerState {
  let current = state;
  while (current.playing) {
    const call = calls[current.call];
    if (call === undefined) return { ...current, playing: false, finished: true };
    const isLast = current.call >= calls.length - 1;
    const endMs = call.durationMs + (isLast ? 0 : gapAfter(calls, current.call));
    if (rawPosition(current, now) < endMs) return current;
    // The wall time the call (and its gap) ended: the next call starts exactly then.
    const endedAt = current.since + (endMs - current.positionMs) / current.speed;
    if (isLast) return { ...current, playing: false, finished: true, positionMs: call.durationMs, since: endedAt };
    current = { ...current, call: current.call + 1, positionMs: 0, since: endedAt };
  }
  return current;
}

/** Space: pause, or resume (from the start of the call when the replay had finished). */
export function togglePause(state: PlayerState, calls: readonly PlayerCall[], now: number): PlayerState {
  const at = tick(state, calls, now);
  if (at.playing) return { ...at, playing: false, positionMs: positionOf(at, calls, now), since: now };
  if (at.finished) return { ...at, playing: true, finished: false, positionMs: 0, since: now };
  return { ...at, playing: true, since: now };
}

/** ←/→: the previous or next call, from its start; playing or paused as before (a finished replay plays again). */
export function seekCall(state: PlayerState, calls: readonly PlayerCall[], delta: number, now: number): PlayerState {
  const at = tick(state, calls, now);
  const call = Math.max(0, Math.min(calls.length - 1, at.call + delta));
  return { ...at, call, positionMs: 0, since: now, playing: at.playing || at.finished, finished: false };
}

/** +/-: the next preset speed up or down, keeping the current position. */
export function changeSpeed(state: PlayerState, calls: readonly PlayerCall[], direction: 1 | -1, now: number): PlayerState {
  const at = tick(state, calls, now);
  const speed =
    direction > 0 ? (SPEEDS.find((s) => s > at.speed + 1e-9) ?? MAX_SPEED) : ([...SPEEDS].reverse().find((s) => s < at.speed - 1e-9) ?? MIN_SPEED);
  return { ...at, speed, positionMs: rawPosition(at, now), since: now };
}

/**
 * Wall milliseconds from `now` until the screen changes next: the next recorded offset in
 * `offsets` (sorted or not) beyond the position, or the end of the call or of its gap. Null
 * when nothing will change without a key (paused or finished).
 */
export function nextWakeMs(state: PlayerState, calls: readonly PlayerCall[], offsets: readonly number[], now: number): number | null {
  if (!state.playing) return null;
  const position = rawPosition(state, now);
  const call = calls[state.call];
  if (call === undefined) return null;
  const isLast = state.call >= calls.length - 1;
  let next = call.durationMs + (isLast ? 0 : gapAfter(calls, state.call));
  if (call.durationMs > position) next = Math.min(next, call.durationMs);
  for (const offset of offsets) if (offset > position && offset < next) next = offset;
  return Math.max(0, (next - position) / state.speed);
}

/** `1×`, `0.25×`, `16×`. */
export function formatSpeed(speed: number): string {
  return `${Number.isInteger(speed) ? speed : Number(speed.toFixed(2))}×`;
}
