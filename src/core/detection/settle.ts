/**
 * Helpers for the detectors' streaming hint `settledBefore(text)` (see Detector in ./types.ts):
 * the index before which nothing can still become, or change, an entity whatever text follows.
 *
 * The common shape: an entity (with the characters its regex reads after it) is made of a known
 * set of "run" characters, so only a candidate inside the trailing run of such characters can
 * still grow or change; a candidate elsewhere — or one too far from the end to reach it, or
 * whose text already diverges from every way the entity can begin — is decided by `text`
 * alone. Every hint returns the first candidate start that is still pending, else text.length.
 */

/**
 * A character-class test on a UTF-16 code unit. One made by asciiClass also carries its table
 * (ASCII code → 1 when in the class) and its answer for non-ASCII code units, so that loops over
 * many characters (runStart) can read the table instead of calling one of many closures.
 */
export type CharTest = ((code: number) => boolean) & { readonly table?: Uint8Array; readonly other?: boolean };

/** A CharTest for the ASCII characters in `chars` (plus ranges written a-z); non-ASCII → `other`. */
export function asciiClass(chars: string, other = false): CharTest {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i + 1] === '-' && i + 2 < chars.length) {
      const from = chars.charCodeAt(i);
      const to = chars.charCodeAt(i + 2);
      for (let c = from; c <= to; c++) table[c] = 1;
      i += 2;
    } else {
      table[chars.charCodeAt(i)] = 1;
    }
  }
  return Object.assign((code: number) => (code < 128 ? table[code] === 1 : other), { table, other });
}

/** Start of the longest suffix of `text` made of `inRun` characters (text.length when none). */
export function runStart(text: string, inRun: CharTest, from = text.length): number {
  let i = from;
  const table = inRun.table;
  if (table !== undefined) {
    const other = inRun.other === true;
    while (i > 0) {
      const c = text.charCodeAt(i - 1);
      if (!(c < 128 ? table[c] === 1 : other)) break;
      i--;
    }
    return i;
  }
  while (i > 0 && inRun(text.charCodeAt(i - 1))) i--;
  return i;
}

/** True when text[p…] starts with one of `prefixes`, or is itself a (partial) prefix of one. */
export function prefixCompatible(text: string, p: number, prefixes: readonly string[]): boolean {
  const rest = text.length - p;
  for (const prefix of prefixes) {
    const k = prefix.length < rest ? prefix.length : rest;
    if (text.startsWith(k === prefix.length ? prefix : prefix.slice(0, k), p)) return true;
  }
  return false;
}

/** [A-Za-z0-9_.-]: every character of a prefixed token (and the `.` of JWTs, SendGrid, GitLab). */
export const TOKEN_RUN = asciiClass('A-Za-z0-9_.-');
/** The left boundary of most token regexes: (?<![A-Za-z0-9_-]). */
export const TOKEN_BOUNDARY = asciiClass('A-Za-z0-9_-');

/**
 * Hint for a token that begins with one of `prefixes` after a `boundary`-free character, is made
 * of TOKEN_RUN characters, and is at most `maxLength` long (its regex can match nothing longer;
 * it reads one character after the match): pending from the first such start in the trailing
 * run whose text is compatible with a prefix and close enough to the end to reach it.
 */
export function prefixedTokenHint(prefixes: readonly string[], maxLength: number, boundary: CharTest = TOKEN_BOUNDARY): (text: string) => number {
  const firsts = new Set(prefixes.map((p) => p.charCodeAt(0)));
  return (text) => {
    const n = text.length;
    const r = runStart(text, TOKEN_RUN);
    for (let p = Math.max(r, n - maxLength); p < n; p++) {
      if (!firsts.has(text.charCodeAt(p))) continue;
      if (p > 0 && boundary(text.charCodeAt(p - 1))) continue;
      if (prefixCompatible(text, p, prefixes)) return p;
    }
    return n;
  };
}

/**
 * Hint for an entity whose reported span is the trailing run of `run` characters right after a
 * keyword (`Bearer `, `Authorization: Basic `, `aws_secret_access_key = `): pending from the run's
 * start when the text before it ends with the keyword (`keywordBefore`, tested on the last
 * `window` characters before the run) and the run is short enough to still be one.
 */
export function keywordSecretHint(run: CharTest, keywordBefore: RegExp, window: number, maxLength: number): (text: string) => number {
  return (text) => {
    const n = text.length;
    const r = runStart(text, run);
    if (r === n || n - r > maxLength) return n;
    return keywordBefore.test(text.slice(Math.max(0, r - window), r)) ? r : n;
  };
}
