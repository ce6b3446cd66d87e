/** Small shared helpers for the built-in detectors: regex scanning, context words, confidence. */
import { windowFoldsLikeAscii } from './anchors.ts';
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

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * A test for "one of `words` (lower-case) occurs in the `window` characters before `start`", as
 * `before(text, start, window)` followed by `includes(word)` for each word would say — without
 * lower-casing the window (one case-insensitive regex test on it).
 */
export function contextTest(words: readonly string[], window = CONTEXT_WINDOW): (text: string, start: number) => boolean {
  if (words.length === 0) return () => false;
  const slow = (w: string): boolean => {
    const lower = w.toLowerCase();
    for (const word of words) if (lower.includes(word)) return true;
    return false;
  };
  // The regex is exact for lower-case ASCII words only (a word with an upper-case letter never
  // matches a lower-cased window; non-ASCII letters fold differently under /i).
  // eslint-disable-next-line no-control-regex
  if (!words.every((word) => /^[\u0000-\u0040\u005B-\u007F]*$/.test(word))) {
    return (text, start) => slow(text.slice(start > window ? start - window : 0, start));
  }
  const re = new RegExp(words.map(escapeRegex).join('|'), 'i');
  return (text, start) => {
    const w = text.slice(start > window ? start - window : 0, start);
    return windowFoldsLikeAscii(text, w) ? re.test(w) : slow(w);
  };
}

/**
 * A test for "the lower-cased `window` characters before `start` match `lowerRe`" (a pattern
 * written for lower-case text), without lower-casing them: `lowerRe` with the `i` flag.
 */
export function contextRegexTest(lowerRe: RegExp, window: number): (text: string, start: number) => boolean {
  const re = new RegExp(lowerRe.source, lowerRe.flags.includes('i') ? lowerRe.flags : `${lowerRe.flags}i`);
  return (text, start) => {
    const w = text.slice(start > window ? start - window : 0, start);
    return windowFoldsLikeAscii(text, w) ? re.test(w) : lowerRe.test(w.toLowerCase());
  };
}

const contextTests = new WeakMap<readonly string[], Map<number, (text: string, start: number) => boolean>>();

/** True when one of `words` (lower-case) occurs in the window before `start`. */
export function hasContext(text: string, start: number, words: readonly string[], window = CONTEXT_WINDOW): boolean {
  if (words.length === 0) return false;
  let byWindow = contextTests.get(words);
  if (byWindow === undefined) contextTests.set(words, (byWindow = new Map<number, (text: string, start: number) => boolean>()));
  let test = byWindow.get(window);
  if (test === undefined) byWindow.set(window, (test = contextTest(words, window)));
  return test(text, start);
}

/** Base confidence, raised by `boost` when a context word precedes the match. */
export function withContext(base: number, text: string, start: number, words: readonly string[], boost = 0.2): number {
  return hasContext(text, start, words) ? Math.min(1, base + boost) : base;
}

/**
 * The matches `matches(global, text)` would yield, found without running the regex at every
 * position: when every match of the regex holds a `trigger` character (or string) such that the
 * match can only start at `startFor(text, t)` for the first trigger t it holds (-1: nowhere),
 * the regex is tried, sticky, at those starts only, in increasing order and never before the end
 * of the previous match — which yields exactly the global scan's matches. `startFor` must be
 * nondecreasing in t. `sticky` is the same pattern with the `y` flag.
 */
export function anchoredMatches(sticky: RegExp, text: string, trigger: string, startFor: (text: string, t: number) => number): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  let from = 0;
  let last = -1;
  for (let t = text.indexOf(trigger); t >= 0; t = text.indexOf(trigger, t + 1)) {
    const q = startFor(text, t);
    if (q < from || q === last) continue;
    last = q;
    sticky.lastIndex = q;
    const m = sticky.exec(text);
    if (m === null || m[0].length === 0) continue;
    out.push(m);
    from = q + m[0].length;
    if (from > t + 1) t = from - 1;
  }
  return out;
}
