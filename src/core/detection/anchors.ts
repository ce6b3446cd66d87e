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

/** Runs `fn` with shared scans of `text` memoized for the detectors it runs (nestable). */
export function withSharedScans<T>(text: string, fn: () => T): T {
  const outerText = scopeText;
  const outerMemo = scopeMemo;
  scopeText = text;
  scopeMemo = undefined;
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

const DIGIT_RUN_RE = /[0-9]+/g;

/** One regex scan (test() sets lastIndex to a run's end without allocating a match), then back to its start. */
function scanDigitRuns(text: string): number[] {
  const runs: number[] = [];
  const re = DIGIT_RUN_RE;
  re.lastIndex = 0;
  while (re.test(text)) {
    const end = re.lastIndex;
    let start = end - 1;
    while (start > 0) {
      const c = text.charCodeAt(start - 1);
      if (c < 48 || c > 57) break;
      start--;
    }
    runs.push(start, end);
  }
  return runs;
}

const DIGIT_RUNS_KEY = {};

/**
 * The maximal runs of ASCII digits of `text`, as [start, end, start, end, …] in increasing order
 * (shared within a withSharedScans scope).
 */
export function digitRuns(text: string): readonly number[] {
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
