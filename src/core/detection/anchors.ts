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

let scopeText: string | undefined;
let scopeMemo: Map<object, unknown> | undefined;

/** What a caller that has already scanned the text knows about it: seeds the shared scans. */
export interface KnownScans {
  /** foldsLikeAscii(text). */
  readonly foldsLikeAscii?: boolean;
}

/** Runs `fn` with shared scans of `text` memoized for the detectors it runs (nestable). */
export function withSharedScans<T>(text: string, fn: () => T, known?: KnownScans): T {
  const outerText = scopeText;
  const outerMemo = scopeMemo;
  scopeText = text;
  scopeMemo = undefined;
  if (known?.foldsLikeAscii !== undefined) scopeMemo = new Map<object, unknown>([[FOLDS_KEY, known.foldsLikeAscii]]);
  try {
    return fn();
  } finally {
    scopeText = outerText;
    scopeMemo = outerMemo;
  }
}

/** True when a withSharedScans scope of `text` is open (then `shared` memoizes). */
export function inScope(text: string): boolean {
  return text === scopeText;
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
 * The maximal runs of ASCII digits of a text, in increasing order, as columns: run r is
 * [start[r], end[r]); before1/2/3[r] are the code units 1, 2 and 3 before its start and after[r]
 * the one at its end, NONE outside the text; span[r] is how many characters from its start are
 * digits or the separators written numbers use ([0-9 \t()./-]), at most SPAN_MAX. The
 * digit-driven detectors filter their candidate starts on these columns alone and read the text
 * only near the runs that pass: on a long text the runs are scattered over megabytes, and reading
 * the text at every run costs a cache miss each, per detector.
 */
export interface DigitRuns {
  readonly count: number;
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly before1: Uint16Array;
  readonly before2: Uint16Array;
  readonly before3: Uint16Array;
  readonly after: Uint16Array;
  readonly span: Uint8Array;
}

/** The most span[r] counts. */
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

/** The shared-scan key of foldsLikeAscii(text). */
export const FOLDS_KEY = {};

const DIGIT_RUN_RE = /[0-9]+/g;

/** One regex scan (test() sets lastIndex to a run's end without allocating a match), then back to its start. */
function scanDigitRuns(text: string): DigitRuns {
  const n = text.length;
  let cap = 64;
  let start = new Int32Array(cap);
  let end = new Int32Array(cap);
  let before1 = new Uint16Array(cap);
  let before2 = new Uint16Array(cap);
  let before3 = new Uint16Array(cap);
  let after = new Uint16Array(cap);
  let span = new Uint8Array(cap);
  let count = 0;
  const at = (i: number): number => (i >= 0 && i < n ? text.charCodeAt(i) : NONE);
  const re = DIGIT_RUN_RE;
  re.lastIndex = 0;
  while (re.test(text)) {
    const e = re.lastIndex;
    let s = e - 1;
    while (s > 0) {
      const c = text.charCodeAt(s - 1);
      if (c < 48 || c > 57) break;
      s--;
    }
    if (count === cap) {
      cap *= 2;
      const grow = <T extends Int32Array | Uint16Array | Uint8Array>(a: T, b: T): T => {
        b.set(a);
        return b;
      };
      start = grow(start, new Int32Array(cap));
      end = grow(end, new Int32Array(cap));
      before1 = grow(before1, new Uint16Array(cap));
      before2 = grow(before2, new Uint16Array(cap));
      before3 = grow(before3, new Uint16Array(cap));
      after = grow(after, new Uint16Array(cap));
      span = grow(span, new Uint8Array(cap));
    }
    let k = e;
    const limit = Math.min(n, s + SPAN_MAX);
    while (k < limit) {
      const c = text.charCodeAt(k);
      if (c >= 128 || NUMBER_CHARS[c] !== 1) break;
      k++;
    }
    start[count] = s;
    end[count] = e;
    before1[count] = at(s - 1);
    before2[count] = at(s - 2);
    before3[count] = at(s - 3);
    after[count] = at(e);
    span[count] = Math.min(k, s + SPAN_MAX) - s;
    count++;
  }
  return { count, start, end, before1, before2, before3, after, span };
}

const DIGIT_RUNS_KEY = {};

/** The digit runs of `text` (shared within a withSharedScans scope). */
export function digitRuns(text: string): DigitRuns {
  return shared(DIGIT_RUNS_KEY, text, scanDigitRuns);
}

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
): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  const k = triggers.length;
  const next: number[] = [];
  for (let i = 0; i < k; i++) next.push(text.indexOf(triggers[i]!));
  let from = 0; // where the global scan resumes
  let tried = -1; // every start ≤ tried has been tried (or lies before `from`)
  for (;;) {
    // The next occurrence of any trigger.
    let t = -1;
    let which = -1;
    for (let i = 0; i < k; i++) {
      const p = next[i]!;
      if (p >= 0 && (t < 0 || p < t)) {
        t = p;
        which = i;
      }
    }
    if (t < 0) break;
    next[which] = text.indexOf(triggers[which]!, t + 1);
    if (near !== undefined && !near(text, t)) continue;
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
    // Occurrences inside the match are passed over by the loop (their starts are < from).
  }
  sticky.lastIndex = 0;
  return out;
}
