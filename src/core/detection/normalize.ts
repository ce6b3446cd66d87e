/**
 * Unicode normalization for matching: NFKC (fullwidth digits, ligatures, non-breaking spaces and
 * other compatibility forms fold to their plain equivalents) and removal of invisible/format
 * characters, so that a zero-width space or a bidi control cannot split an entity past the
 * detectors. Detectors run on the normalized text; positions are mapped back to the original text,
 * which is what gets masked.
 */

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
    toOriginal: (index) => (index >= n ? n : index <= 0 ? 0 : segmentStart(index)),
    toOriginalEnd(index) {
      if (index <= 0) return 0;
      if (index >= n) return n;
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
  // Regions [from, to) — see above.
  const regions: number[] = [];
  NON_ASCII_RUN.lastIndex = 0;
  for (let m = NON_ASCII_RUN.exec(original); m !== null; m = NON_ASCII_RUN.exec(original)) {
    regions.push(m.index > 0 ? m.index - 1 : 0, m.index + m[0].length);
  }
  if (regions.length === 0) return identity(original);
  // stable[r/2]: the region has no invisible character and NFKC leaves it as it is.
  const stable = new Uint8Array(regions.length >> 1);
  let changed = false;
  for (let r = 0; r < regions.length; r += 2) {
    const region = original.slice(regions[r], regions[r + 1]);
    if (INVISIBLE.test(region) || region.normalize('NFKC') !== region) changed = true;
    else stable[r >> 1] = 1;
  }
  if (!changed) return unchanged(original);

  // Normalized text as pieces; the position map as a list of runs that tile the normalized text:
  // an identity run (normalized [nStart, nStart + len) ← original [oStart, oStart + len)) or a
  // segment (every normalized character of it ← the original segment [oStart, oEnd)).
  const out: string[] = [];
  const runN: number[] = []; // normalized start of each run
  const runO: number[] = []; // original start
  const runE: number[] = []; // original end of a segment, or -1 for an identity run
  let n = 0;
  let copiedTo = 0; // original text before this is already in `out`
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
    if (stable[r >> 1] === 1) {
      const region = original.slice(from, to);
      // Single-code-unit segments, each its own NFKC (as the whole region is; a code point that
      // NFKC changes alone is changed in any context): the identity, copied with what surrounds it.
      if (!SURROGATE.test(region) && !MARK.test(region)) continue;
    }
    if (from > copiedTo) {
      out.push(original.slice(copiedTo, from));
      identityRun(copiedTo, from);
    }
    copiedTo = to;
    // The per-code-point segmentation of the general path, on this region only.
    let segment = '';
    let segStart = 0;
    let segEnd = 0;
    const flush = (): void => {
      if (segment === '') return;
      const normalized = segment.normalize('NFKC');
      out.push(normalized);
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
        const code = original.codePointAt(i)!;
        const len = code > 0xffff ? 2 : 1;
        cp = original.slice(i, i + len);
        i += len;
        if (INVISIBLE.test(cp)) continue;
        if (segment !== '' && COMBINING.test(cp)) {
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
  }
  if (copiedTo < original.length) {
    out.push(original.slice(copiedTo));
    identityRun(copiedTo, original.length);
  }
  const text = out.join('');
  const total = original.length;
  const runs = runN.length;
  /** Index of the run holding normalized position index (0 ≤ index < n). */
  const runAt = (index: number): number => {
    let lo = 0;
    let hi = runs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runN[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  /** starts[index] of the general path. */
  const startOf = (index: number): number => {
    const k = runAt(index);
    return runE[k] === -1 ? runO[k]! + (index - runN[k]!) : runO[k]!;
  };
  return {
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
}

const SURROGATE = /[\uD800-\uDFFF]/;
const MARK = /\p{M}/u;
// eslint-disable-next-line no-control-regex
const NON_ASCII_RUN = /[^\u0000-\u007f]+/g;
