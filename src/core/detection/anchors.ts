/**
 * Anchored scanning: the built-in detectors run their regexes only where a match can start, found
 * from cheap scans of the text — the runs of ASCII digits (shared by the phone, card, SSN, IPv4
 * and IBAN detectors) and single trigger characters or literals that every match holds (`@`, `_`,
 * `-`, `:`, `=`, `://`…), searched with indexOf. Each helper yields exactly the matches a global
 * scan of the same regex yields (the same matches, in the same order); the comments say why.
 *
 * Shared scans are memoized for the duration of one `withSharedScans(text, fn)` call (detectEntities
 * wraps its detector loop in one), keyed by the text itself: every detector that scans that very
 * string inside it reuses them; nothing is kept afterwards. Pure: no I/O, no clock.
 */

// The open scope (a stream masker opens one per delta: no allocation beyond the memo itself).
let scopeText: string | undefined;
let scopeFolds: boolean | undefined;
let scopeRuns: DigitRuns | undefined;
let scopeMemo: Map<object, unknown> | undefined;

/** Runs `fn` with shared scans of `text` memoized for the detectors it runs (nestable). */
export function withSharedScans<T>(text: string, fn: () => T, knownFoldsLikeAscii?: boolean): T {
  const outerText = scopeText;
  const outerFolds = scopeFolds;
  const outerRuns = scopeRuns;
  const outerMemo = scopeMemo;
  scopeText = text;
  // A caller that has already scanned the text may say foldsLikeAscii(text).
  scopeFolds = knownFoldsLikeAscii;
  scopeRuns = undefined;
  scopeMemo = undefined;
  try {
    return fn();
  } finally {
    scopeText = outerText;
    scopeFolds = outerFolds;
    scopeRuns = outerRuns;
    scopeMemo = outerMemo;
  }
}

/** `compute(text)`, memoized under `key` while a withSharedScans scope of this text is open. */
export function shared<T>(key: object, text: string, compute: (text: string) => T): T {
  if (text !== scopeText) return compute(text);
  let memo = scopeMemo;
  if (memo === undefined) scopeMemo = memo = new Map();
  if (memo.has(key)) return memo.get(key) as T;
  const value = compute(text);
  memo.set(key, value);
  return value;
}

/**
 * The maximal runs of ASCII digits of a text, in increasing order, RUN_FIELDS numbers per run in
 * one array: run r is [data[r·RUN_FIELDS + START], … + END); BEFORE1/2/3 are the code units 1, 2
 * and 3 before its start and AFTER the one at its end, NONE outside the text; SPAN is how many
 * characters from its start are digits or the separators written numbers use ([0-9 \t()./-]), at
 * most SPAN_MAX. The digit-driven detectors filter their candidate starts on these numbers alone
 * and read the text only near the runs that pass: on a long text the runs are scattered over
 * megabytes, and reading the text at every run costs a cache miss each, per detector.
 */
export interface DigitRuns {
  readonly count: number;
  readonly data: Int32Array;
}
export const START = 0;
export const END = 1;
export const BEFORE1 = 2;
export const BEFORE2 = 3;
export const BEFORE3 = 4;
export const AFTER = 5;
export const SPAN = 6;
export const RUN_FIELDS = 7;

/** The most SPAN counts. */
export const SPAN_MAX = 8;

const NUMBER_CHARS = new Uint8Array(128);
for (const c of '0123456789 \t()./-') NUMBER_CHARS[c.charCodeAt(0)] = 1;

/**
 * The code unit recorded outside the text. It is U+FFFF, a noncharacter: every detector test on
 * these columns treats it as what is outside the text — no ASCII class holds it — so a real
 * U+FFFF in the text is judged exactly as the text's edge would be, which is also what the
 * detectors' own regexes do with it.
 */
export const NONE = 0xffff;

/**
 * The only characters whose toLowerCase() holds an ASCII character or changes the length (checked
 * over every code point): U+0130 (İ → i + U+0307) and U+212A (Kelvin sign → k). A string without
 * them lower-cases character by character onto ASCII only from ASCII, so a case-insensitive regex
 * (non-Unicode /i folds ASCII letters only) finds in it exactly what its lower-cased form holds.
 */
export function foldsLikeAscii(s: string): boolean {
  return !s.includes('\u0130') && !s.includes('\u212A');
}

/**
 * foldsLikeAscii(window), where `window` is a slice of `text`: answered for the whole text once
 * per withSharedScans scope of it when it holds there.
 */
export function windowFoldsLikeAscii(text: string, window: string): boolean {
  if (text === scopeText) {
    if (scopeFolds === undefined) scopeFolds = foldsLikeAscii(text);
    if (scopeFolds) return true;
  }
  return foldsLikeAscii(window);
}

const FIRST_DIGIT_RE = /[0-9]/g;

/** One regex scan (test() sets lastIndex to a run's end without allocating a match), then back to its start. */
const NO_RUNS: DigitRuns = { count: 0, data: new Int32Array(0) };
/** Where runs are gathered before they are copied out at their exact size (one allocation per scan). */
let scratch = new Int32Array(64 * RUN_FIELDS);

/** The code unit at i, NONE outside the text. */
function unitAt(text: string, i: number): number {
  return i >= 0 && i < text.length ? text.charCodeAt(i) : NONE;
}

/**
 * One regex call per cluster — a digit and the NUMBER_CHARS after it (`+1 415 555-0100`, a card,
 * an IP address: several runs each) — then the runs in it by a loop over its characters, while
 * they are in the CPU's cache. A run's SPAN is read off the cluster: the characters from its start
 * to the cluster's end are all NUMBER_CHARS, and the one after is not.
 */
function scanDigitRuns(text: string): DigitRuns {
  const n = text.length;
  const re = FIRST_DIGIT_RE;
  re.lastIndex = 0;
  let buf = scratch;
  let o = 0;
  while (re.test(text)) {
    // The cluster [first, end): text[first] is a digit not preceded by a NUMBER_CHAR... or by one
    // of a cluster already scanned (the scan resumes at a cluster's end, a non-NUMBER_CHAR).
    const first = re.lastIndex - 1;
    let end = first + 1;
    while (end < n) {
      const c = text.charCodeAt(end);
      if (c >= 128 || NUMBER_CHARS[c] !== 1) break;
      end++;
    }
    let i = first;
    while (i < end) {
      // A run starts at i (a digit).
      const s = i;
      i++;
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c < 48 || c > 57) break;
        i++;
      }
      if (o === buf.length) {
        const grown = new Int32Array(buf.length * 2);
        grown.set(buf);
        buf = grown;
      }
      buf[o + START] = s;
      buf[o + END] = i;
      buf[o + BEFORE1] = unitAt(text, s - 1);
      buf[o + BEFORE2] = unitAt(text, s - 2);
      buf[o + BEFORE3] = unitAt(text, s - 3);
      buf[o + AFTER] = unitAt(text, i);
      buf[o + SPAN] = end - s < SPAN_MAX ? end - s : SPAN_MAX;
      o += RUN_FIELDS;
      // To the next digit of the cluster, if any.
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c >= 48 && c <= 57) break;
        i++;
      }
    }
    re.lastIndex = end;
  }
  if (o === 0) return NO_RUNS;
  // A small buffer is kept for the next scan (the runs are copied out); a large one (a long
  // text's runs) is handed over as it is.
  if (buf.length > 4096 * RUN_FIELDS) return { count: o / RUN_FIELDS, data: buf.subarray(0, o) };
  scratch = buf;
  return { count: o / RUN_FIELDS, data: buf.slice(0, o) };
}

/** The digit runs of `text` (shared within a withSharedScans scope). */
export function digitRuns(text: string): DigitRuns {
  if (text !== scopeText) return scanDigitRuns(text);
  return (scopeRuns ??= scanDigitRuns(text));
}

const NO_MATCHES: readonly RegExpExecArray[] = Object.freeze([]);

/**
 * The matches of a global scan of the pattern of `sticky` (the same pattern with the `y` flag,
 * and no `g`) over `text`, when every match holds an occurrence of one of `triggers` (literal
 * strings) starting at most `back` characters after the match's own start: the pattern is tried
 * only at starts q with t − back ≤ q ≤ t for an occurrence t, in increasing order, never twice,
 * never before the end of the previous match, and only where `mayStart(text, q)` — which must hold
 * wherever a match can start — allows it. An occurrence t where `near(text, t)` is false is passed
 * over: `near` must hold for at least one occurrence (within `back` of the start) in every match.
 *
 * Why this is the global scan: a global scan from position `from` returns the match at the
 * smallest q ≥ from where the pattern matches (sticky exec at q gives that same match). That q is
 * at most `back` before an occurrence t ≥ q ≥ from, so it is among the starts tried for t or for
 * an earlier occurrence ≥ from − back; every start tried before it, all ≥ from, did not match.
 */
export function matchesNear(
  sticky: RegExp,
  text: string,
  triggers: readonly string[],
  back: number,
  mayStart?: (text: string, q: number) => boolean,
  near?: (text: string, t: number) => boolean,
): readonly RegExpExecArray[] {
  const at = triggers.length === 1 ? occurrences(text, triggers[0]!) : mergedOccurrences(text, triggers);
  if (at.length === 0) return NO_MATCHES;
  const out: RegExpExecArray[] = [];
  let from = 0; // where the global scan resumes
  let tried = -1; // every start ≤ tried has been tried (or lies before `from`)
  for (let j = 0; j < at.length; j++) {
    const t = at[j]!;
    if (t < from || (near !== undefined && !near(text, t))) continue;
    let q = Math.max(t - back, from, tried + 1);
    let matched = false;
    for (; q <= t; q++) {
      if (mayStart !== undefined && !mayStart(text, q)) continue;
      sticky.lastIndex = q;
      const m = sticky.exec(text);
      if (m === null || m[0].length === 0) continue;
      out.push(m);
      from = q + m[0].length;
      matched = true;
      break;
    }
    tried = matched ? from - 1 : Math.max(tried, t);
  }
  sticky.lastIndex = 0;
  return out;
}

const NO_POSITIONS: readonly number[] = Object.freeze([]);
const OCCURRENCE_KEYS = new Map<string, object>();

/**
 * Every position where `literal` occurs in `text` (overlapping occurrences too), in increasing
 * order — shared within a withSharedScans scope, so that the detectors triggered by the same
 * character (`-`, `_`, `:`) search for it once.
 */
export function occurrences(text: string, literal: string): readonly number[] {
  const first = text.indexOf(literal);
  if (first < 0) return NO_POSITIONS;
  let key = OCCURRENCE_KEYS.get(literal);
  if (key === undefined) OCCURRENCE_KEYS.set(literal, (key = {}));
  return shared(key, text, () => {
    const out: number[] = [];
    for (let p = first; p >= 0; p = text.indexOf(literal, p + 1)) out.push(p);
    return out;
  });
}

/** The union of the occurrences of several literals, in increasing order (each position once). */
function mergedOccurrences(text: string, literals: readonly string[]): readonly number[] {
  let all: readonly number[] = NO_POSITIONS;
  for (const literal of literals) {
    const more = occurrences(text, literal);
    if (more.length === 0) continue;
    if (all.length === 0) {
      all = more;
      continue;
    }
    const merged: number[] = [];
    let i = 0;
    let j = 0;
    while (i < all.length || j < more.length) {
      const a = i < all.length ? all[i]! : Infinity;
      const b = j < more.length ? more[j]! : Infinity;
      if (a <= b) {
        merged.push(a);
        i++;
        if (a === b) j++;
      } else {
        merged.push(b);
        j++;
      }
    }
    all = merged;
  }
  return all;
}
