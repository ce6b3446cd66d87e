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
  /** Where a scan must begin to be in step with the whole text's (see Detector.scanStart); absent = none. */
  scanStart?: (text: string, at: number) => number;
}

/** Wraps a finder into a Detector, dropping empty or over-long spans. */
export function defineDetector(spec: DetectorSpec): Detector {
  const { id, type, maxLength } = spec;
  const hint = spec.settledBefore;
  const scanStart = spec.scanStart;
  return {
    ...(hint === undefined ? {} : { settledBefore: (text: string): number => hint(text) }),
    ...(scanStart === undefined ? {} : { scanStart: (text: string, at: number): number => scanStart(text, at) }),
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

/**
 * A test for "one of `words` (lower-case) occurs in the `window` characters before `start`", as
 * `before(text, start, window)` followed by `includes(word)` for each word would say — without
 * slicing or lower-casing the window: when every word is lower-case ASCII, one pass of an
 * Aho–Corasick automaton over the window's characters, ASCII letters folded to lower case.
 *
 * Exact: toLowerCase maps an ASCII letter to its lower case and a non-ASCII character to
 * non-ASCII characters — except U+0130 (İ → i + U+0307) and U+212A (Kelvin sign → k), the only
 * two code points whose lower case holds ASCII or has another length (checked over all of
 * Unicode); a window holding one of them takes the lower-casing path. A match the automaton finds
 * before such a character is in the lower-cased window too.
 */
export function contextTest(words: readonly string[], window = CONTEXT_WINDOW): (text: string, start: number) => boolean {
  if (words.length === 0) return () => false;
  const slow = (text: string, start: number): boolean => {
    const lower = text.slice(Math.max(0, start - window), start).toLowerCase();
    for (const word of words) if (lower.includes(word)) return true;
    return false;
  };
  // A word with an upper-case letter never matches a lower-cased window, non-ASCII words fold
  // otherwise, the empty word is in every window: all keep the definition.
  // eslint-disable-next-line no-control-regex
  if (!words.every((word) => word !== '' && /^[\u0000-\u0040\u005B-\u007F]*$/.test(word))) return slow;
  const { classes, width, next, accepts } = wordAutomaton(words);
  return (text, start) => {
    if (!(Number.isInteger(start) && start >= 0 && start <= text.length)) return slow(text, start);
    let state = 0;
    for (let i = start > window ? start - window : 0; i < start; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128) {
        if (c === 0x130 || c === 0x212a) return slow(text, start);
        state = 0; // no word holds a non-ASCII character
        continue;
      }
      state = next[state * width + classes[c]!]!;
      if (accepts[state] === 1) return true;
    }
    return false;
  };
}

/**
 * The Aho–Corasick automaton of lower-case ASCII `words` as a full transition table: characters
 * in classes (0: in no word; an upper-case letter in its lower case's class), `next[state · width +
 * class]`, and `accepts[state]` when a word ends there (or at a suffix of it).
 */
function wordAutomaton(words: readonly string[]): { classes: Uint8Array; width: number; next: Int32Array; accepts: Uint8Array } {
  const classes = new Uint8Array(128);
  let width = 1;
  for (const word of words) {
    for (let i = 0; i < word.length; i++) {
      const c = word.charCodeAt(i);
      if (classes[c] !== 0) continue;
      classes[c] = width;
      if (c >= 97 && c <= 122) classes[c - 32] = width;
      width++;
    }
  }
  // The trie.
  const goto: number[][] = [new Array<number>(width).fill(-1)];
  const accept: number[] = [0];
  for (const word of words) {
    let state = 0;
    for (let i = 0; i < word.length; i++) {
      const k = classes[word.charCodeAt(i)]!;
      let to = goto[state]![k]!;
      if (to < 0) {
        to = goto.length;
        goto.push(new Array<number>(width).fill(-1));
        accept.push(0);
        goto[state]![k] = to;
      }
      state = to;
    }
    accept[state] = 1;
  }
  // Failure links, breadth first, folded into a full transition table.
  const states = goto.length;
  const next = new Int32Array(states * width);
  const accepts = new Uint8Array(states);
  const fail = new Int32Array(states);
  const queue: number[] = [];
  for (let k = 0; k < width; k++) {
    const to = goto[0]![k]!;
    next[k] = to < 0 ? 0 : to;
    if (to > 0) queue.push(to);
  }
  accepts[0] = accept[0]!;
  for (let q = 0; q < queue.length; q++) {
    const state = queue[q]!;
    accepts[state] = accept[state]! === 1 || accepts[fail[state]!] === 1 ? 1 : 0;
    for (let k = 0; k < width; k++) {
      const to = goto[state]![k]!;
      if (to < 0) {
        next[state * width + k] = next[fail[state]! * width + k]!;
      } else {
        fail[to] = next[fail[state]! * width + k]!;
        next[state * width + k] = to;
        queue.push(to);
      }
    }
  }
  return { classes, width, next, accepts };
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
