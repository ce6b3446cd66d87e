/**
 * Unicode normalization for matching: what a text says to a reader, spelt the way the detectors
 * and the policy's keywords and patterns are written.
 *
 *  - Invisible/format characters are removed, so that a zero-width space, a bidi control or a
 *    tag character cannot split an entity past the detectors.
 *  - Each segment (a starter and the combining marks after it) is folded on its own: NFKC
 *    (fullwidth digits, ligatures, mathematical letters, non-breaking spaces and other
 *    compatibility forms to their plain equivalents) — and when every base character of its NFKD
 *    is ASCII, a look-alike of an ASCII character (Cyrillic А, Greek Ο, the U+2010 hyphen: UTS #39
 *    confusables, ./confusables-data.ts) or a non-ASCII decimal digit (Arabic-Indic ٣, Devanagari
 *    ३: by value), the segment is those ASCII characters, its marks dropped: `A\u0301`, `Á`,
 *    `4\u0336` (struck through) and Cyrillic `Ӓ` are `A`, `A`, `4` and `A`. Marks on other
 *    letters stay (a Devanagari vowel sign, an Arabic vowel mark, Japanese dakuten): they tell
 *    words apart, and they cannot make an ASCII entity.
 *
 * Detectors run on the normalized text; positions are mapped back to the original text, which is
 * what gets masked (a segment maps to the whole of it, marks included).
 */
import { foldsLikeAscii } from './anchors.ts';
import { DIGIT_ZEROS, LOOKALIKES } from './confusables-data.ts';

/**
 * Characters removed before matching: every format character (Unicode category Cf: zero-width
 * space/non-joiner/joiner, word joiner, BOM, soft hyphen, LRM/RLM, bidi embeddings, overrides and
 * isolates, invisible operators, Mongolian vowel separator, tag characters, interlinear
 * annotation marks…) plus the invisible characters outside Cf: the combining grapheme joiner,
 * variation selectors and the Hangul fillers.
 */
const INVISIBLE = /\p{Cf}|\u034F|\u115F|\u1160|\u3164|\uFFA0|[\uFE00-\uFE0F]|[\u{E0100}-\u{E01EF}]/u;
const COMBINING = /^\p{M}$/u;

/** The ASCII code a BMP code unit folds to by look or digit value (0: none); the rest in ASTRAL_ASCII. */
const BMP_ASCII = new Uint8Array(0x10000);
const ASTRAL_ASCII = new Map<number, number>();
{
  const set = (cp: number, ascii: number): void => {
    if (cp < 0x10000) BMP_ASCII[cp] = ascii;
    else ASTRAL_ASCII.set(cp, ascii);
  };
  for (const zero of DIGIT_ZEROS) for (let v = 0; v < 10; v++) set(zero + v, 0x30 + v);
  for (const pair of LOOKALIKES.split(' ')) set(pair.codePointAt(0)!, pair.charCodeAt(pair.length - 1));
}

/** The ASCII code the code point folds to by look or digit value, 0 when none. */
function asciiFor(cp: number): number {
  return cp < 0x10000 ? BMP_ASCII[cp]! : (ASTRAL_ASCII.get(cp) ?? 0);
}

// eslint-disable-next-line no-control-regex
const ALL_ASCII = /^[\u0000-\u007f]*$/;

/**
 * The normalized form of one segment (a starter and its combining marks, invisible characters
 * already removed; or a lone mark): the ASCII its NFKD's base characters spell when each is
 * ASCII, a look-alike or a digit (marks dropped) — else its NFKC.
 */
export function foldSegment(segment: string): string {
  const nfkc = segment.normalize('NFKC');
  if (ALL_ASCII.test(nfkc)) return nfkc;
  let out = '';
  let bases = 0;
  for (const ch of segment.normalize('NFKD')) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out += ch;
    else if (COMBINING.test(ch)) continue;
    else {
      const ascii = asciiFor(cp);
      if (ascii === 0) return nfkc;
      out += String.fromCharCode(ascii);
    }
    bases++;
  }
  // A lone mark (no base) keeps its NFKC, as a mark on a letter that is not folded does.
  return bases > 0 ? out : nfkc;
}

/**
 * NFKC segment by segment, invisible characters removed — without folding by look: for the names
 * of resources (paths, URLs), where a look-alike, an accent or another script's digit names
 * another file or host. (A rule must not take `/home/alice/prоj` with a Cyrillic о for the work
 * tree `/home/alice/proj`, nor an allowed host for its homograph.)
 */
export function normalizeCompatibility(text: string): string {
  NON_ASCII_RUN.lastIndex = 0;
  if (!NON_ASCII_RUN.test(text)) return text;
  let out = '';
  let segment = '';
  for (const ch of text) {
    if (INVISIBLE.test(ch)) continue;
    if (segment !== '' && COMBINING.test(ch)) segment += ch;
    else {
      out += segment.normalize('NFKC');
      segment = ch;
    }
  }
  return out + segment.normalize('NFKC');
}

let preimages: readonly (readonly [number, number])[] | undefined;

/**
 * Every non-ASCII code point that normalizes, alone, to one ASCII character, with that
 * character's code — computed once, on first use (for custom patterns, which must match what the
 * characters they name are normalized to). Planes 0 and 1 are searched, except the blocks whose
 * characters never normalize to ASCII (CJK ideographs, Yi, Hangul syllables, surrogates, private
 * use); test/detection-normalize.test.ts checks that this misses nothing.
 */
export function asciiPreimages(): readonly (readonly [number, number])[] {
  if (preimages !== undefined) return preimages;
  const out: [number, number][] = [];
  for (let cp = 0x80; cp < 0x20000; cp++) {
    if (cp === 0x3400) cp = 0x4dc0;
    else if (cp === 0x4e00) cp = 0xa490;
    else if (cp === 0xac00) cp = 0xf900;
    const f = foldSegment(String.fromCodePoint(cp));
    if (f.length === 1 && f.charCodeAt(0) < 0x80) out.push([cp, f.charCodeAt(0)]);
  }
  return (preimages = out);
}

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
 * The normalized text (see the top of this file), with a mapping back to original positions.
 *
 * Only the non-ASCII parts of a text can change, so the work is done region by region: a region
 * is a maximal run of non-ASCII code units together with the ASCII character just before it (a
 * starter that a following combining mark may attach to). The segmentation (a starter and its
 * combining marks) never crosses a region's edge, and an ASCII segment is its own fold, so the
 * normalized text is the concatenation of the regions' and of the ASCII characters between them.
 * Everything between regions maps to itself, so the cost is that of a scan for non-ASCII
 * characters plus the regions.
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
  // Folded code units not yet in `out` (regions folded unit by unit, and the text between them):
  // one string per stretch of them rather than one per region.
  let pending = PENDING;
  let pendingLength = 0;
  let pendingSurrogates = false;
  const flushPending = (): void => {
    if (pendingLength === 0) return;
    out.push(unitsToString(pending, pendingLength, pendingSurrogates));
    pendingLength = 0;
    pendingSurrogates = false;
  };
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
    // A region of simple and one-for-one code units (after its first character) is normalized
    // unit by unit (each is a segment of its own) and maps position by position: it is mapped
    // with what surrounds it, and only its text changes when some unit is not its own fold.
    const first = original.charCodeAt(from) < 0x80 ? from + 1 : from;
    let simple = true;
    let folded = false;
    for (let i = first; i < to; i++) {
      const f = unitFlags(original.charCodeAt(i));
      if ((f & (SIMPLE | ONE)) === 0) {
        simple = false;
        break;
      }
      if ((f & ONE) !== 0) folded = true;
    }
    if (simple) {
      if (folded) {
        // Its code units go to the pending buffer, with the short stretch of text before it (a
        // long one is pushed as a slice: no copy).
        if (first - copiedTo > 32) {
          flushPending();
          out.push(original.slice(copiedTo, first));
          copiedTo = first;
        }
        if (pendingLength + (to - copiedTo) > pending.length) {
          const grown = new Uint16Array(Math.max(2 * pending.length, pendingLength + (to - copiedTo)));
          grown.set(pending.subarray(0, pendingLength));
          pending = grown;
        }
        for (let i = copiedTo; i < to; i++) {
          const c = original.charCodeAt(i);
          const u = i >= first && (unitFlags(c) & ONE) !== 0 ? UNIT_ONE[c]! : c;
          if (u >= 0xd800 && u <= 0xdfff) pendingSurrogates = true;
          else if (u === 0x130 || u === 0x212a) specialFolds = true;
          pending[pendingLength++] = u;
        }
        copiedTo = to;
        changed = true;
      }
      continue;
    }
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
      const normalized = segEnd - segStart === 1 ? unitFold(segment.charCodeAt(0)) : cachedFold(segment);
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
      flushPending();
      if (from > copiedTo) out.push(original.slice(copiedTo, from));
      out.push(normalized);
      copiedTo = to;
    }
    if (!foldsLikeAscii(normalized)) specialFolds = true;
  }
  // Nothing changed: the same text, mapped lazily the same way (no runs needed).
  if (!changed) return { norm: unchanged(original), foldsLikeAscii: !specialFolds };
  flushPending();
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

/** Folds of segments of several code units (syllables with marks, emoji), a bounded memo. */
const SEGMENT_FOLDS = new Map<string, string>();

function cachedFold(segment: string): string {
  let f = SEGMENT_FOLDS.get(segment);
  if (f === undefined) {
    if (SEGMENT_FOLDS.size >= 8192) SEGMENT_FOLDS.clear();
    SEGMENT_FOLDS.set(segment, (f = foldSegment(segment)));
  }
  return f;
}

/** Scratch for folded code units (a larger buffer is allocated for a call that needs it). */
const PENDING = new Uint16Array(4096);

/** Decodes code units at native speed — where they are little-endian, and hold no surrogate (it would turn a lone one into U+FFFD). */
const UTF16 = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? new TextDecoder('utf-16le', { ignoreBOM: true }) : null;

/** The string of units[0, length); `surrogates`: some unit may be a surrogate. */
function unitsToString(units: Uint16Array, length: number, surrogates: boolean): string {
  if (UTF16 !== null && !surrogates) return UTF16.decode(units.subarray(0, length));
  // A chunk at a time: an argument list has a limit.
  if (length <= 4096) return String.fromCharCode.apply(null, units.subarray(0, length) as unknown as number[]);
  const parts: string[] = [];
  for (let i = 0; i < length; i += 4096) parts.push(String.fromCharCode.apply(null, units.subarray(i, Math.min(length, i + 4096)) as unknown as number[]));
  return parts.join('');
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

// Properties of a BMP code unit, computed once each (lazily) from the regexes and foldSegment.
const KNOWN = 1;
/** Removed before matching (INVISIBLE). */
const INV = 2;
/** A combining mark (\p{M}). */
const MARK_FLAG = 4;
/** The fold of the character alone (foldSegment) is itself. */
const SELF = 8;
/**
 * Not invisible, not a mark, not a surrogate and not a Hangul jamo: a character that is a segment
 * of its own unless a mark follows it — and no neighbour then changes its fold (segments are
 * folded one by one). A run of such characters after an ASCII character is normalized unit by
 * unit.
 */
const PLAIN = 16;
/** PLAIN and SELF. */
const SIMPLE = 32;
/** PLAIN, and its fold is one code unit other than itself (UNIT_ONE): Cyrillic а → a, ٣ → 3, ℃ no (two). */
const ONE = 64;
const UNIT_FLAGS = new Uint8Array(0x10000);
/** The fold of each ONE code unit. */
const UNIT_ONE = new Uint16Array(0x10000);
/** The fold of BMP code units that are neither SELF nor ONE, computed once each. */
const UNIT_FOLD = new Map<number, string>();

/** The fold of the single code unit c (a lone surrogate is its own). */
function unitFold(c: number): string {
  const f = unitFlags(c);
  if ((f & SELF) !== 0) return String.fromCharCode(c);
  if ((f & ONE) !== 0) return String.fromCharCode(UNIT_ONE[c]!);
  let n = UNIT_FOLD.get(c);
  if (n === undefined) UNIT_FOLD.set(c, (n = foldSegment(String.fromCharCode(c))));
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
    const jamo = (c >= 0x1100 && c <= 0x11ff) || (c >= 0xa960 && c <= 0xa97f) || (c >= 0xd7b0 && c <= 0xd7ff);
    if ((f & (INV | MARK_FLAG)) === 0 && !jamo) f |= PLAIN;
    const folded = foldSegment(ch);
    if (folded === ch) f |= SELF;
    if ((f & PLAIN) !== 0) {
      if ((f & SELF) !== 0) f |= SIMPLE;
      else if (folded.length === 1) {
        f |= ONE;
        UNIT_ONE[c] = folded.charCodeAt(0);
      }
    }
  }
  UNIT_FLAGS[c] = f;
  return f;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII_RUN = /[^\u0000-\u007f]+/g;
