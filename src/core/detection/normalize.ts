/**
 * Unicode normalization for matching: NFKC (fullwidth digits, ligatures, non-breaking spaces and
 * other compatibility forms fold to their plain equivalents) and removal of invisible/format
 * characters, so that a zero-width space or a bidi control cannot split an entity past the
 * detectors. Detectors run on the normalized text; positions are mapped back to the original text,
 * which is what gets masked.
 */
import { foldsLikeAscii } from './anchors.ts';

/**
 * Characters removed before matching: every format character (Unicode category Cf: zero-width
 * space/non-joiner/joiner, word joiner, BOM, soft hyphen, LRM/RLM, bidi embeddings, overrides and
 * isolates, invisible operators, Mongolian vowel separator, tag characters, interlinear
 * annotation marks…) plus the invisible characters outside Cf: the combining grapheme joiner,
 * variation selectors and the Hangul fillers.
 */
const INVISIBLE = /\p{Cf}|\u034F|\u115F|\u1160|\u3164|\uFFA0|[\uFE00-\uFE0F]|[\u{E0100}-\u{E01EF}]/u;
const COMBINING = /^\p{M}$/u;

export interface NormalizedText {
  /** The text detectors see. */
  readonly text: string;
  /**
   * Maps a position in the normalized text to the position in the original text where the
   * character at that position came from; `text.length` maps to the original length.
   */
  toOriginal(index: number): number;
  /**
   * Maps an exclusive end position in the normalized text to the exclusive end in the original
   * text: the end of the original character(s) that produced `text[index - 1]`.
   */
  toOriginalEnd(index: number): number;
}

function identity(text: string): NormalizedText {
  const clamp = (i: number): number => (i <= 0 ? 0 : i >= text.length ? text.length : i);
  return { text, toOriginal: clamp, toOriginalEnd: clamp };
}

const COMBINING_AT = /\p{M}/uy;

/**
 * A non-ASCII text that normalization leaves as it is: the same text, mapped as the general path
 * below maps it — segment by segment (a starter with its combining marks; a surrogate pair is one
 * code point), so that a mapped position never depends on whether some other part of the text
 * needed normalizing.
 */
function unchanged(text: string): NormalizedText {
  const n = text.length;
  const markAt = (i: number): boolean => {
    COMBINING_AT.lastIndex = i;
    return COMBINING_AT.test(text);
  };
  const lowSurrogateAt = (i: number): boolean => {
    const c = text.charCodeAt(i);
    return c >= 0xdc00 && c <= 0xdfff && i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff;
  };
  /** Start of the segment holding the code unit at i. */
  const segmentStart = (i: number): number => {
    for (;;) {
      if (i > 0 && lowSurrogateAt(i)) i--;
      if (i === 0 || !markAt(i)) return i;
      i--;
    }
  };
  return {
    text,
    // A position that is not an integer maps as in the general path: to the text's end (walking
    // segments from it never reached 0 when the text starts with a combining mark).
    toOriginal: (index) => (index >= n ? n : index <= 0 ? 0 : Number.isInteger(index) ? segmentStart(index) : n),
    toOriginalEnd(index) {
      if (index <= 0) return 0;
      if (index >= n || !Number.isInteger(index)) return n;
      let i = index;
      for (;;) {
        if (i < n && lowSurrogateAt(i)) i++;
        if (i >= n || !markAt(i)) return i;
        i += text.codePointAt(i)! > 0xffff ? 2 : 1;
      }
    },
  };
}

/**
 * NFKC + strip invisible/format characters, with a mapping back to original positions.
 *
 * Only the non-ASCII parts of a text can change, so the work is done region by region: a region
 * is a maximal run of non-ASCII code units together with the ASCII character just before it (a
 * starter that a following combining mark may attach to). An ASCII character never composes with
 * what precedes it and has combining class 0, so NFKC of the whole text is the concatenation of
 * NFKC of its regions and of the ASCII characters between them; likewise the segmentation below
 * (a starter and its combining marks) never crosses a region's edge. Everything between regions
 * maps to itself, so the cost is that of a scan for non-ASCII characters plus the regions.
 */
export function normalizeForMatching(original: string): NormalizedText {
  return normalizeScanned(original).norm;
}

/**
 * normalizeForMatching, plus what it learnt about the normalized text on the way (for
 * detectEntities, which hands it to the detectors' shared scans): foldsLikeAscii(norm.text).
 */
export function normalizeScanned(original: string): { norm: NormalizedText; foldsLikeAscii: boolean } {
  // Regions [from, to) — see above. (test() moves lastIndex to a run's end without allocating.)
  const regions: number[] = [];
  const re = NON_ASCII_RUN;
  re.lastIndex = 0;
  while (re.test(original)) {
    const to = re.lastIndex;
    let first = to - 1;
    while (first > 0 && original.charCodeAt(first - 1) >= 0x80) first--;
    regions.push(first > 0 ? first - 1 : 0, to);
  }
  if (regions.length === 0) return { norm: identity(original), foldsLikeAscii: true };
  // U+0130 or U+212A in the normalized text (see foldsLikeAscii in ./anchors.ts).
  let specialFolds = false;
  let changed = false;

  // The normalized text is built from pieces (the original between changed regions, and their
  // normalized segments); the position map is a list of runs that tile the normalized text: an
  // identity run (normalized [nStart, nStart + len) ← original [oStart, oStart + len)) or a
  // segment (every normalized character of it ← the original segment [oStart, oEnd)).
  const out: string[] = [];
  const runN: number[] = []; // normalized start of each run
  const runO: number[] = []; // original start
  const runE: number[] = []; // original end of a segment, or -1 for an identity run
  let n = 0;
  let copiedTo = 0; // original text before this is already in `out`
  let mappedTo = 0; // original text before this is already mapped
  /** Identity run of original [from, to) at normalized position n, merged with the previous one when contiguous. */
  const identityRun = (from: number, to: number): void => {
    if (to <= from) return;
    const k = runN.length - 1;
    if (!(k >= 0 && runE[k] === -1 && runO[k]! + (n - runN[k]!) === from)) {
      runN.push(n);
      runO.push(from);
      runE.push(-1);
    }
    n += to - from;
  };
  for (let r = 0; r < regions.length; r += 2) {
    const from = regions[r]!;
    const to = regions[r + 1]!;
    // A region of simple code units (after its first character) is its own NFKC, segment by
    // segment (single code units): the identity, mapped with what surrounds it.
    let simple = true;
    for (let i = original.charCodeAt(from) < 0x80 ? from + 1 : from; i < to; i++) {
      const c = original.charCodeAt(i);
      if ((unitFlags(c) & SIMPLE) === 0) {
        simple = false;
        break;
      }
      if (c === 0x130) specialFolds = true;
    }
    if (simple) continue;
    identityRun(mappedTo, from);
    mappedTo = to;
    // The per-code-point segmentation (a starter and its combining marks; invisible characters
    // dropped), each segment normalized on its own. The normalized segments replace the region
    // in the text when they differ from it; when they spell the region itself, it stays in the
    // copied original and is only mapped (segment by segment, as a changed region is).
    const pieces: string[] = [];
    let segment = '';
    let segStart = 0;
    let segEnd = 0;
    const flush = (): void => {
      if (segment === '') return;
      const normalized = segEnd - segStart === 1 ? unitNfkc(segment.charCodeAt(0)) : segment.normalize('NFKC');
      pieces.push(normalized);
      if (normalized.length === 1 && segEnd - segStart === 1) identityRun(segStart, segEnd);
      else if (normalized.length > 0) {
        runN.push(n);
        runO.push(segStart);
        runE.push(segEnd);
        n += normalized.length;
      }
      segment = '';
    };
    let i = from;
    while (i < to) {
      const at = i;
      const c = original.charCodeAt(i);
      let cp: string;
      if (c < 0x80) {
        cp = original[i]!;
        i++;
      } else {
        let flags: number;
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < to && isLowSurrogate(original.charCodeAt(i + 1))) {
          cp = original.slice(i, i + 2);
          i += 2;
          flags = (INVISIBLE.test(cp) ? INV : 0) | (COMBINING.test(cp) ? MARK_FLAG : 0);
        } else {
          cp = original[i]!;
          i++;
          flags = unitFlags(c);
        }
        if ((flags & INV) !== 0) continue;
        if (segment !== '' && (flags & MARK_FLAG) !== 0) {
          segment += cp;
          segEnd = i;
          continue;
        }
      }
      flush();
      segment = cp;
      segStart = at;
      segEnd = i;
    }
    flush();
    const normalized = pieces.length === 1 ? pieces[0]! : pieces.join('');
    if (normalized !== original.slice(from, to)) {
      changed = true;
      if (from > copiedTo) out.push(original.slice(copiedTo, from));
      out.push(normalized);
      copiedTo = to;
    }
    if (!foldsLikeAscii(normalized)) specialFolds = true;
  }
  // Nothing changed: the same text, mapped lazily the same way (no runs needed).
  if (!changed) return { norm: unchanged(original), foldsLikeAscii: !specialFolds };
  if (copiedTo < original.length) out.push(original.slice(copiedTo));
  identityRun(mappedTo, original.length);
  const text = out.join('');
  const total = original.length;
  const runs = runN.length;
  // The last run found: mapped positions usually come in increasing order (detections of one
  // detector), so the run holding the next one is most often this one or the next.
  let hint = 0;
  /** Index of the run holding normalized position index (0 ≤ index < n). */
  const runAt = (index: number): number => {
    if (runN[hint]! <= index) {
      if (hint + 1 >= runs || runN[hint + 1]! > index) return hint;
      if (hint + 2 >= runs || runN[hint + 2]! > index) return ++hint;
    }
    let lo = 0;
    let hi = runs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runN[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return (hint = lo);
  };
  /** starts[index] of the general path. */
  const startOf = (index: number): number => {
    const k = runAt(index);
    return runE[k] === -1 ? runO[k]! + (index - runN[k]!) : runO[k]!;
  };
  const norm: NormalizedText = {
    text,
    toOriginal(index: number): number {
      if (index >= n) return total;
      if (index <= 0) return n === 0 ? total : startOf(0);
      if (!Number.isInteger(index)) return total; // starts[fraction] is undefined
      return startOf(index);
    },
    toOriginalEnd(index: number): number {
      if (index <= 0) return 0;
      if (index > n) return total;
      if (!Number.isInteger(index)) return total;
      const k = runAt(index - 1);
      return runE[k] === -1 ? runO[k]! + (index - runN[k]!) : runE[k]!;
    },
  };
  return { norm, foldsLikeAscii: !specialFolds };
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

// Properties of a BMP code unit, computed once each (lazily) from the regexes and String#normalize.
const KNOWN = 1;
/** Removed before matching (INVISIBLE). */
const INV = 2;
/** A combining mark (\p{M}). */
const MARK_FLAG = 4;
/** NFKC of the character alone is itself. */
const NFKC_SELF = 8;
/**
 * NFKC_SELF, not invisible, not a mark, not a surrogate and not a Hangul jamo: a character that
 * no neighbour changes under NFKC. (Checked over all of Unicode: the only code points that
 * compose with a preceding character are combining marks, the Hangul medial vowel and final
 * consonant jamo, and U+16D67, which is not in the BMP; and every non-mark whose NFKD begins with
 * a mark — U+0E33, U+0EB3, U+FF9E, U+FF9F — is not NFKC_SELF.) A run of them after an ASCII
 * character is its own NFKC, and its segments are single code units.
 */
const SIMPLE = 16;
const UNIT_FLAGS = new Uint8Array(0x10000);
/** NFKC of BMP code units that are not their own NFKC, computed once each. */
const UNIT_NFKC = new Map<number, string>();

/** NFKC of the single code unit c (a lone surrogate is its own). */
function unitNfkc(c: number): string {
  const ch = String.fromCharCode(c);
  if ((unitFlags(c) & NFKC_SELF) !== 0) return ch;
  let n = UNIT_NFKC.get(c);
  if (n === undefined) UNIT_NFKC.set(c, (n = ch.normalize('NFKC')));
  return n;
}

function unitFlags(c: number): number {
  let f = UNIT_FLAGS[c]!;
  if (f !== 0) return f;
  const ch = String.fromCharCode(c);
  f = KNOWN;
  const surrogate = c >= 0xd800 && c <= 0xdfff;
  if (!surrogate) {
    if (INVISIBLE.test(ch)) f |= INV;
    if (COMBINING.test(ch)) f |= MARK_FLAG;
    if (ch.normalize('NFKC') === ch) f |= NFKC_SELF;
    const jamo = (c >= 0x1100 && c <= 0x11ff) || (c >= 0xa960 && c <= 0xa97f) || (c >= 0xd7b0 && c <= 0xd7ff);
    if ((f & (INV | MARK_FLAG)) === 0 && (f & NFKC_SELF) !== 0 && !jamo) f |= SIMPLE;
  }
  UNIT_FLAGS[c] = f;
  return f;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII_RUN = /[^\u0000-\u007f]+/g;
