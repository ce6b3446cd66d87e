// FROZEN COPY of src/core/detection at commit a1e3bc1 — the oracle for test/detection-differential.test.ts
// and the baseline of bench/masking-throughput.ts --baseline. Do not edit.
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
// eslint-disable-next-line no-control-regex
const ASCII_ONLY = /^[\u0000-\u007f]*$/;

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

/** NFKC + strip invisible/format characters, with a mapping back to original positions. */
export function normalizeForMatching(original: string): NormalizedText {
  if (ASCII_ONLY.test(original)) return identity(original);
  if (!INVISIBLE.test(original) && original.normalize('NFKC') === original) return unchanged(original);

  // Collect kept code points, grouped into segments (a starter + its combining marks) so that
  // composition across code points happens as it would on the whole string.
  const out: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let segment = '';
  let segStart = 0;
  let segEnd = 0;
  const flush = (): void => {
    if (segment === '') return;
    const normalized = segment.normalize('NFKC');
    out.push(normalized);
    for (let k = 0; k < normalized.length; k++) {
      starts.push(segStart);
      ends.push(segEnd);
    }
    segment = '';
  };
  let i = 0;
  for (const cp of original) {
    const at = i;
    i += cp.length;
    if (INVISIBLE.test(cp)) continue;
    if (segment !== '' && COMBINING.test(cp)) {
      segment += cp;
      segEnd = i;
      continue;
    }
    flush();
    segment = cp;
    segStart = at;
    segEnd = i;
  }
  flush();
  const text = out.join('');
  const n = text.length;
  const total = original.length;
  return {
    text,
    toOriginal(index: number): number {
      if (index >= n) return total;
      if (index <= 0) return n === 0 ? total : (starts[0] ?? 0);
      return starts[index] ?? total;
    },
    toOriginalEnd(index: number): number {
      if (index <= 0) return 0;
      if (index > n) return total;
      return ends[index - 1] ?? total;
    },
  };
}
