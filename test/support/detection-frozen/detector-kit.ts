// FROZEN COPY of src/core/detection at commit a1e3bc1 — the oracle for test/detection-differential.test.ts
// and the baseline of bench/masking-throughput.ts --baseline. Do not edit.
/** Small shared helpers for the built-in detectors: regex scanning, context words, confidence. */
import type { Detection, Detector, EntityType } from './types.ts';

/** Characters before a match searched for context words. */
export const CONTEXT_WINDOW = 48;

export interface Candidate {
  start: number;
  end: number;
  confidence: number;
}

export interface DetectorSpec {
  id: string;
  type: EntityType;
  maxLength: number;
  lookbehind?: number;
  lookahead?: number;
  find(text: string): Candidate[];
  /** The streaming hint (see Detector.settledBefore); absent = none. */
  settledBefore?: (text: string) => number;
}

/** Wraps a finder into a Detector, dropping empty or over-long spans. */
export function defineDetector(spec: DetectorSpec): Detector {
  const { id, type, maxLength } = spec;
  const hint = spec.settledBefore;
  return {
    ...(hint === undefined ? {} : { settledBefore: (text: string): number => hint(text) }),
    id,
    type,
    maxLength,
    lookbehind: spec.lookbehind ?? 0,
    lookahead: spec.lookahead ?? 0,
    detect(text: string): Detection[] {
      const found: Detection[] = [];
      for (const c of spec.find(text)) {
        if (c.end <= c.start || c.end - c.start > maxLength) continue;
        found.push({ type, start: c.start, end: c.end, confidence: clamp01(c.confidence), detector: id });
      }
      return found;
    },
  };
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : Math.round(x * 1000) / 1000;
}

/** Every non-empty match of a global/sticky-free regex, as [match, index] pairs. */
export function* matches(re: RegExp, text: string): Generator<RegExpExecArray> {
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    if (m === null) return;
    if (m[0].length === 0) {
      re.lastIndex = m.index + 1;
      continue;
    }
    yield m;
  }
}

/** The lower-cased text in the window before `start`. */
export function before(text: string, start: number, window = CONTEXT_WINDOW): string {
  return text.slice(Math.max(0, start - window), start).toLowerCase();
}

/** True when one of `words` (lower-case) occurs in the window before `start`. */
export function hasContext(text: string, start: number, words: readonly string[], window = CONTEXT_WINDOW): boolean {
  if (words.length === 0) return false;
  const w = before(text, start, window);
  for (const word of words) if (w.includes(word)) return true;
  return false;
}

/** Base confidence, raised by `boost` when a context word precedes the match. */
export function withContext(base: number, text: string, start: number, words: readonly string[], boost = 0.2): number {
  return hasContext(text, start, words) ? Math.min(1, base + boost) : base;
}
