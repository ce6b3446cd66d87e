/**
 * Finds where a token may be written spaced out or broken over lines — `A K I A Z 7 Q 3 …`,
 * `AKIAZ7Q3 XK2MPLQW4NV5`, `ghp_abc…⏎…xyz`, `sk-ant-…\n…` inside JSON, a card as `4111⏎1111⏎…` — for
 * block rules, which must see what the model can read. Joining a whole run of words would glue
 * the neighbouring words onto the token, and the detectors' boundaries would then reject it. So
 * candidates are cut at the token boundaries inside a run instead: each candidate is a list of
 * pieces of the text (the token's parts, without the spaces or line breaks between them) that
 *
 *  - starts where a known token prefix begins (itself possibly spaced out: `A K I A`) after a
 *    boundary, and ends at a boundary (a space or line break between pieces, a character that is
 *    not a token character, a blank line or the end of the text), within the shape's lengths;
 *    or, for card numbers, is a whole run of digit groups (never a window of a longer list);
 *  - holds at least one gap: a single space or tab, or ONE line break with indentation around
 *    it (real, or JSON-escaped as `\n`, `\r\n`, `\t`); two line breaks or two spaces end a run;
 *  - is spaced regularly: broken once, or in equal pieces (characters spaced out, groups of 4,
 *    lines wrapped at one width) — the first may be shorter (or hold the prefix), the last shorter.
 *    Prose glued together (words of every length) is not.
 *
 * The detectors then decide on each candidate, joined, as on any text. Bounded: the characters of
 * all candidates are charged to `budget` (shared with the decoders); past it the finder stops and
 * says so. Pure: no I/O.
 */
import type { DecodeBudget } from './decode-encodings.ts';
import { normalizeForMatching } from './normalize.ts';

/** A prefixed token type to look for: see TokenShape in ./secrets.ts. */
export interface SpacedShape {
  readonly prefixes: readonly string[];
  readonly minLength: number;
  readonly maxLength: number;
}

export interface SpacedTargets {
  readonly shapes: readonly SpacedShape[];
  /** Also card numbers: runs of digit groups holding 12 to 19 digits. */
  readonly cards: boolean;
}

/** One candidate: [start, end) ranges of the text, in order, separated by gaps. */
export type SpacedCandidate = readonly (readonly [number, number])[];

/** The most digits of a card number (and the fewest, CARD_RE's). */
const CARD_MAX = 19;
const CARD_MIN = 12;

const TOKEN = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-') TOKEN[c.charCodeAt(0)] = 1;
/** A character the detectors' token boundaries (`[A-Za-z0-9_-]`) count as inside a token. */
const isToken = (c: number): boolean => c < 128 && TOKEN[c] === 1;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** A space within a line: space, tab, and Unicode's spaces (no-break, en, em, thin, ideographic…). */
const isBlank = (c: number): boolean =>
  c === 32 || c === 9 || (c >= 0x2000 && c <= 0x200a) || c === 0xa0 || c === 0x1680 || c === 0x202f || c === 0x205f || c === 0x3000;
/** A line break: LF, and VT, FF, NEL, LINE and PARAGRAPH SEPARATOR (CR before LF is part of it). */
const isBreak = (c: number): boolean => c === 10 || c === 11 || c === 12 || c === 0x85 || c === 0x2028 || c === 0x2029;
const isSpace = (c: number): boolean => isBlank(c) || isBreak(c) || c === 13;
/** isBlank and isBreak as regex classes. */
const BLANK = String.raw`[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]`;
const BREAK = String.raw`(?:\r?\n|[\v\f\u0085\u2028\u2029])`;

/** A JSON escape that writes whitespace (`\n`, `\r`, `\t`) at i. */
function escapedSpace(t: string, i: number): boolean {
  if (t.charCodeAt(i) !== 92) return false;
  const d = t.charCodeAt(i + 1);
  return d === 110 || d === 116 || d === 114;
}

/** True when whitespace (real or JSON-escaped) begins at i. */
function spaceAt(t: string, i: number): boolean {
  return i < t.length && (isSpace(t.charCodeAt(i)) || escapedSpace(t, i));
}

/** True when whitespace (real or JSON-escaped) ends right before i. */
function spaceBefore(t: string, i: number): boolean {
  if (i <= 0) return false;
  if (isSpace(t.charCodeAt(i - 1))) return true;
  return i >= 2 && escapedSpace(t, i - 2);
}

/**
 * The end of the gap that begins at i — one space or tab, or one line break with spaces or tabs
 * around it, real or JSON-escaped, followed by a non-space character — else -1 (no whitespace at
 * i, or a boundary: two spaces, a blank line, the end of the text).
 */
export function gapEnd(t: string, i: number): number {
  const n = t.length;
  let j = i;
  let breaks = 0;
  let blanks = 0;
  while (j < n) {
    const c = t.charCodeAt(j);
    if (isBlank(c)) {
      blanks++;
      j++;
    } else if (isBreak(c)) {
      breaks++;
      j++;
    } else if (c === 13 && t.charCodeAt(j + 1) === 10) {
      j++;
    } else if (c === 92) {
      const d = t.charCodeAt(j + 1);
      if (d === 110) breaks++;
      else if (d === 116) blanks++;
      else if (!(d === 114 && t.charCodeAt(j + 2) === 92 && t.charCodeAt(j + 3) === 110)) break;
      j += 2;
    } else {
      break;
    }
  }
  if (j === i || j >= n || breaks > 1 || (breaks === 0 && blanks > 1)) return -1;
  return j;
}

/** A run read from a start: its characters without the gaps, and where each piece lies. */
interface Walk {
  /** The pieces joined, at most `limit` + 1 characters. */
  readonly text: string;
  /** Piece k is text[pieceAt[k], pieceAt[k + 1]) and lies at t[from[k], …). */
  readonly pieceAt: readonly number[];
  readonly from: readonly number[];
  /** The text ends at a boundary (a gap, a boundary or the end of the text), not at the limit. */
  readonly ended: boolean;
}

/**
 * Reads the run from t[a] on, joining pieces across gaps, up to `limit` + 1 joined characters —
 * with `regular`, only up to the first piece after piece 1 whose width differs from piece 1's
 * (no candidate regularly spaced goes past it: it can only be the last piece).
 */
function walk(t: string, a: number, limit: number, regular = false): Walk {
  const n = t.length;
  const pieceAt: number[] = [];
  const from: number[] = [];
  const parts: string[] = [];
  let length = 0;
  let i = a;
  for (;;) {
    let j = i;
    while (j < n && length + (j - i) <= limit && !spaceAt(t, j)) j++;
    pieceAt.push(length);
    from.push(i);
    parts.push(t.slice(i, j));
    length += j - i;
    if (length > limit) return { text: parts.join(''), pieceAt, from, ended: false };
    const g = j < n ? gapEnd(t, j) : -1;
    const k = pieceAt.length - 1;
    const irregular = regular && k >= 2 && length - pieceAt[k]! !== pieceAt[2]! - pieceAt[1]!;
    if (g < 0 || irregular) return { text: parts.join(''), pieceAt, from, ended: true };
    i = g;
  }
}

/** The text ranges of the first `e` joined characters of a walk. */
function piecesOf(w: Walk, e: number): SpacedCandidate {
  const out: [number, number][] = [];
  for (let k = 0; k < w.pieceAt.length && w.pieceAt[k]! < e; k++) {
    const end = k + 1 < w.pieceAt.length ? Math.min(e, w.pieceAt[k + 1]!) : e;
    out.push([w.from[k]!, w.from[k]! + end - w.pieceAt[k]!]);
  }
  return out;
}

const GAP_SOURCE = String.raw`(?:${BLANK}|\\t|${BLANK}*(?:${BREAK}|(?:\\r)?\\n)${BLANK}*)?`;
const finders = new Map<string, RegExp>();

/**
 * A pattern for `words` with GAP_SOURCE between any two characters, factored on common beginnings
 * (`s(?:k(?:-|_…))`) so that most text positions are ruled out after a character. A word that
 * another one begins with stands for both (only where a match starts matters).
 */
function trieSource(words: readonly string[]): string {
  const byFirst = new Map<string, string[]>();
  for (const w of words) byFirst.set(w[0]!, [...(byFirst.get(w[0]!) ?? []), w.slice(1)]);
  const alternatives = [...byFirst].map(([c, rests]) => {
    const head = c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    return rests.includes('') ? head : head + GAP_SOURCE + trieSource(rests);
  });
  return alternatives.length === 1 ? alternatives[0]! : `(?:${alternatives.join('|')})`;
}

/** A regex for the prefixes, each possibly spaced out (a gap between any two characters). */
function prefixFinder(shapes: readonly SpacedShape[]): RegExp {
  const prefixes = [...new Set(shapes.flatMap((s) => s.prefixes))].sort();
  const key = prefixes.join('\u0000');
  let re = finders.get(key);
  if (re === undefined) {
    // Only after a boundary (the text's start, a non-token character, a JSON-escaped space): the
    // lookbehind rules out most positions of a text (inside words) before any prefix is tried.
    re = new RegExp(String.raw`(?<=^|[^A-Za-z0-9_-]|\\[nrt])` + trieSource(prefixes), 'g');
    if (finders.size > 64) finders.clear();
    finders.set(key, re);
  }
  return re;
}

/**
 * The candidates of `text` (see the top of this file), as ranges of `text`; those found until
 * `budget` ran out. They are looked for in the text as the detectors see it (normalized: NFKC,
 * invisible characters removed), so `Ａ Ｋ Ｉ Ａ…` and a zero-width space inside a prefix do not hide one.
 */
export function findSpacedCandidates(text: string, targets: SpacedTargets, budget: DecodeBudget): SpacedCandidate[] {
  const norm = normalizeForMatching(text);
  const found = findIn(norm.text, targets, budget);
  if (norm.text === text) return found;
  return found.map((pieces) => pieces.map(([a, b]) => [norm.toOriginal(a), norm.toOriginalEnd(b)] as const));
}

function findIn(t: string, targets: SpacedTargets, budget: DecodeBudget): SpacedCandidate[] {
  const out: SpacedCandidate[] = [];
  const spend = (chars: number): boolean => {
    if (chars > budget.chars) {
      budget.exhausted = true;
      return false;
    }
    budget.chars -= chars;
    return true;
  };
  if (targets.shapes.length > 0 && !tokenCandidates(t, targets.shapes, out, spend)) return out;
  if (targets.cards) cardCandidates(t, out, spend);
  return out;
}

function tokenCandidates(t: string, shapes: readonly SpacedShape[], out: SpacedCandidate[], spend: (chars: number) => boolean): boolean {
  const re = prefixFinder(shapes);
  let longestPrefix = 0;
  for (const s of shapes) for (const p of s.prefixes) longestPrefix = Math.max(longestPrefix, p.length);
  re.lastIndex = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    const a = m.index;
    re.lastIndex = a + 1; // prefixes may overlap (`sk-` in `sk-ant-`): every start is tried
    // A token starts after a boundary: the start of the text, a gap, or a non-token character.
    if (a > 0 && !spaceBefore(t, a) && isToken(t.charCodeAt(a - 1))) continue;
    // Only a spaced prefix or a gap within the token's length makes a candidate.
    const head = walk(t, a, longestPrefix);
    let lo = Infinity;
    let hi = 0;
    let prefixLength = 0;
    for (const s of shapes) {
      for (const p of s.prefixes) {
        if (!head.text.startsWith(p)) continue;
        lo = Math.min(lo, s.minLength);
        hi = Math.max(hi, s.maxLength);
        prefixLength = Math.max(prefixLength, p.length);
      }
    }
    if (hi === 0) continue;
    const w = walk(t, a, hi, true);
    const at = w.pieceAt;
    if (at.length < 2 || at[1]! >= hi) continue;
    // Regular spacing (see the top): broken once, or pieces 1 … k−2 of one width, the first at
    // most the prefix plus that width, the last at most that width. Pieces 1 … u share piece 1's width.
    const width = (at[2] ?? w.text.length) - at[1]!;
    let u = 1;
    while (u + 2 < at.length && at[u + 2]! - at[u + 1]! === width) u++;
    const firstOk = at[1]! <= prefixLength + width;
    let k = 2; // pieces that start before e
    for (let e = Math.max(lo, at[1]! + 1); e <= hi && e <= w.text.length; e++) {
      while (k < at.length && at[k]! < e) k++;
      if (k > 2 && (k - 2 > u || !firstOk)) break; // irregular from here on
      if (k > 2 && e - at[k - 1]! > width) continue;
      const boundary = e === w.text.length ? w.ended : at[k] === e || !isToken(w.text.charCodeAt(e));
      if (!boundary) continue;
      if (!spend(e)) return false;
      out.push(piecesOf(w, e));
    }
  }
  return true;
}

/** A digit before a gap that holds a line break or a tab: where a broken card may lie. */
const BROKEN_DIGITS = new RegExp(String.raw`[0-9](?:${BLANK}*(?:${BREAK}|(?:\\r)?\\n)${BLANK}*|\\t|[\t\u00a0\u2000-\u200a\u202f\u3000])[0-9]`, 'g');

/**
 * Whole runs of digit groups joined by gaps, one run per candidate (12 to 19 digits, at least two
 * groups, spaced regularly): the first group may follow other characters in its word (`"4111`,
 * `card:4111`), the last may be followed by some (`1111",`), the ones between are digits only.
 */
function cardCandidates(t: string, out: SpacedCandidate[], spend: (chars: number) => boolean): void {
  const re = BROKEN_DIGITS;
  re.lastIndex = 0;
  let done = 0; // the runs found end before here
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    re.lastIndex = m.index + 1;
    if (m.index < done) continue;
    const groups = digitRun(t, m.index);
    done = groups[groups.length - 1]![1];
    // A last group that goes on into a word (`1111abc`) is not one.
    if (done < t.length && isToken(t.charCodeAt(done))) groups.pop();
    const widths = groups.map(([a, b]) => b - a);
    const digits = widths.reduce((n, x) => n + x, 0);
    if (groups.length < 2 || digits < CARD_MIN || digits > CARD_MAX) continue;
    const interior = widths.slice(1, -1);
    const w = interior[0];
    if (w !== undefined && (interior.some((x) => x !== w) || widths[0]! > w || widths[widths.length - 1]! > w)) continue;
    if (!spend(digits)) return;
    out.push(groups);
  }
}

/** The whole run of digit groups joined by gaps that holds the digit at h. */
function digitRun(t: string, h: number): [number, number][] {
  // Back to the run's first group.
  let s = h;
  while (s > 0 && isDigit(t.charCodeAt(s - 1))) s--;
  for (;;) {
    let g = s;
    while (g > 0 && spaceBefore(t, g)) g -= isSpace(t.charCodeAt(g - 1)) ? 1 : 2;
    if (g === s || g === 0 || gapEnd(t, g) !== s || !isDigit(t.charCodeAt(g - 1))) break;
    let q = g;
    while (q > 0 && isDigit(t.charCodeAt(q - 1))) q--;
    s = q;
    if (q > 0 && !spaceBefore(t, q)) break; // a group glued to a word (`card:4111`) starts the run
  }
  // Forward over the groups.
  const groups: [number, number][] = [];
  for (let i = s; ; ) {
    let j = i;
    while (j < t.length && isDigit(t.charCodeAt(j))) j++;
    groups.push([i, j]);
    const g = gapEnd(t, j);
    if (g < 0 || !isDigit(t.charCodeAt(g))) return groups;
    i = g;
  }
}
