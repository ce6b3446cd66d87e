/**
 * Entity detection: the built-in detectors, custom regex detectors, and `detectEntities`, which
 * runs detectors on the normalized text (./normalize.ts: NFKC, invisible characters removed,
 * look-alikes folded), maps positions back to the original text and resolves overlaps. Pure: no
 * I/O, no clock, no randomness.
 */
import { withSharedScans } from './anchors.ts';
import { normalizeScanned } from './normalize.ts';
import type { NormalizedText } from './normalize.ts';
import { PII_DETECTORS } from './pii.ts';
import { personDetector } from './person-names.ts';
import { SECRET_DETECTORS } from './secrets.ts';
import type { Detection, Detector, EntityType } from './types.ts';

export type { Detection, Detector, EntityType } from './types.ts';
export { normalizeForMatching } from './normalize.ts';
export { TOKEN_SHAPES } from './secrets.ts';
export type { TokenShape } from './secrets.ts';
export type { NormalizedText } from './normalize.ts';
export { createRegexDetector, DEFAULT_REGEX_BUDGET, PatternBudgetError, regexProgramSize, RegexDetectorError } from './custom-regex.ts';
export type { RegexBudget, RegexDetectorSpec } from './custom-regex.ts';

/**
 * Every built-in detector: secrets first, then personal data (the order breaks exact ties).
 * Person names are not among them: see OPT_IN_DETECTORS.
 */
export const BUILTIN_DETECTORS: readonly Detector[] = Object.freeze([...SECRET_DETECTORS, ...PII_DETECTORS]);

/**
 * Built-in detectors that run only where a policy rule names their type itself — never through
 * a group such as PII: the experimental person-name detector (type PERSON; figures in
 * docs/benchmarks.md, "Person names").
 */
export const OPT_IN_DETECTORS: readonly Detector[] = Object.freeze([personDetector]);

/** The built-in detector for an entity type, if there is one. */
export function builtinDetector(type: EntityType): Detector | undefined {
  return BUILTIN_DETECTORS.find((d) => d.type === type);
}

/** The longest entity any of `detectors` can report (a stream masker's holdback bound). */
export function maxEntityLength(detectors: readonly Detector[]): number {
  let max = 0;
  for (const d of detectors) if (d.maxLength > max) max = d.maxLength;
  return max;
}

/** The most context any of `detectors` reads before / after a match. */
export function maxContextLength(detectors: readonly Detector[]): { before: number; after: number } {
  let b = 0;
  let a = 0;
  for (const d of detectors) {
    b = Math.max(b, d.lookbehind ?? 0);
    a = Math.max(a, d.lookahead ?? 0);
  }
  return { before: b, after: a };
}

/**
 * A segment whose normalized form is all ASCII spells the ASCII of its NFKD's base characters (see
 * ./normalize.ts; an NFKC that is all ASCII is such a spelling too), and combining marks that
 * follow it change neither these bases nor, then, its form: a text whose last segment normalizes
 * to ASCII normalizes to a prefix of what it and any continuation normalize to.
 */
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * The streaming hint of `detectors` together, for detectEntities: see {@link detectStreaming}.
 * (Runs the detectors; when you need the detections too, call detectStreaming once instead.)
 */
export function settledPrefix(text: string, detectors: readonly Detector[], options?: DetectOptions): number {
  return detectStreaming(text, detectors, options).settled;
}

export interface DetectOptions {
  /** Detections below this confidence are dropped before overlaps are resolved. Default 0. */
  minConfidence?: number;
}

type Ranked = { d: Detection; rank: number };

/**
 * Every detection, in original positions, not yet resolved: sorted by start, then longest first;
 * equal spans in detector order, then in each detector's order (what a stable sort of all the
 * detectors' lists one after the other gives); rank[i] is the index of the detector of found[i].
 */
type Collected = { found: Detection[]; rank: number[] };

/** Runs the detectors on normalized text; detections in original positions, not yet resolved. */
function collect(norm: NormalizedText, foldsLikeAscii: boolean, detectors: readonly Detector[], min: number): Collected {
  // The detectors share their scans of the text (digit runs, trigger positions) within this call.
  const lists = withSharedScans(norm.text, () => collectShared(norm, detectors, min), foldsLikeAscii);
  return mergeLists(lists);
}

function collectShared(norm: NormalizedText, detectors: readonly Detector[], min: number): Detection[][] {
  const n = norm.text.length;
  const lists: Detection[][] = [];
  for (let k = 0; k < detectors.length; k++) {
    const detector = detectors[k]!;
    const detected = detector.detect(norm.text);
    if (detected.length === 0) {
      lists.push(NONE_FOUND);
      continue;
    }
    const list: Detection[] = [];
    for (const d of detected) {
      if (!(d.confidence >= min)) continue;
      const s = Math.max(0, Math.min(n, Math.floor(d.start)));
      const e = Math.max(0, Math.min(n, Math.floor(d.end)));
      if (!(e > s)) continue;
      const start = norm.toOriginal(s);
      const end = norm.toOriginalEnd(e);
      if (end <= start) continue;
      list.push({ type: d.type, start, end, confidence: d.confidence, detector: d.detector });
    }
    lists.push(list);
  }
  return lists;
}

const NONE_FOUND: Detection[] = [];
const byStartLongest = (a: Detection, b: Detection): number => a.start - b.start || b.end - a.end;

/**
 * The detectors' lists merged into Collected order. Each list is put in that order by a stable
 * sort (most come in it already: checked first), then neighbouring lists are merged pairwise —
 * on equal keys the earlier detector's detection first — until one is left.
 */
function mergeLists(lists: Detection[][]): Collected {
  let parts: Collected[] = [];
  for (let k = 0; k < lists.length; k++) {
    let list = lists[k]!;
    if (list.length === 0) continue;
    for (let i = 1; i < list.length; i++) {
      if (byStartLongest(list[i - 1]!, list[i]!) > 0) {
        list = list.slice().sort(byStartLongest);
        break;
      }
    }
    parts.push({ found: list, rank: list.map(() => k) });
  }
  if (parts.length === 1) return parts[0]!;
  while (parts.length > 1) {
    const next: Collected[] = [];
    for (let p = 0; p + 1 < parts.length; p += 2) next.push(mergeTwo(parts[p]!, parts[p + 1]!));
    if (parts.length % 2 === 1) next.push(parts[parts.length - 1]!);
    parts = next;
  }
  return parts[0] ?? { found: [], rank: [] };
}

/** Merges two Collected lists, `a` holding only earlier detectors than `b`. */
function mergeTwo(a: Collected, b: Collected): Collected {
  const found: Detection[] = [];
  const rank: number[] = [];
  const na = a.found.length;
  const nb = b.found.length;
  let i = 0;
  let j = 0;
  while (i < na && j < nb) {
    if (byStartLongest(a.found[i]!, b.found[j]!) <= 0) {
      found.push(a.found[i]!);
      rank.push(a.rank[i++]!);
    } else {
      found.push(b.found[j]!);
      rank.push(b.rank[j++]!);
    }
  }
  for (; i < na; i++) {
    found.push(a.found[i]!);
    rank.push(a.rank[i]!);
  }
  for (; j < nb; j++) {
    found.push(b.found[j]!);
    rank.push(b.rank[j]!);
  }
  return { found, rank };
}

/**
 * Runs `detectors` on the normalized form of `text` and returns detections in ORIGINAL positions
 * (UTF-16 code units of `text`), without overlaps (the longer span wins, then the higher
 * confidence, then the earlier detector), sorted by start. A detector that throws makes this
 * throw (callers fail closed).
 */
export function detectEntities(text: string, detectors: readonly Detector[], options?: DetectOptions): Detection[] {
  const { norm, foldsLikeAscii } = normalizeScanned(text);
  return resolveOverlaps(collect(norm, foldsLikeAscii, detectors, options?.minConfidence ?? 0));
}

/**
 * detectEntities plus `settled`: an index of the ORIGINAL text such that, for EVERY continuation
 * s, detectEntities(text + s) and detectEntities(text) agree on every detection that starts
 * before it (same spans, confidences, detectors) — what a stream masker may release.
 *
 * How: each detector's `settledBefore` hint (see Detector) is asked on the normalized text —
 * without its last segment when a combining mark that may follow could still recompose it; a
 * detector without the hint settles all but its last maxLength + lookahead normalized
 * characters. The smallest answer is then moved back before any detection that straddles it (a
 * settled detection overlapping a pending one could still lose, or win, the overlap resolution),
 * so that every group of overlapping detections lies wholly before or wholly after it.
 */
export function detectStreaming(text: string, detectors: readonly Detector[], options?: DetectOptions): StreamingDetection {
  const { norm, foldsLikeAscii } = normalizeScanned(text);
  const collected = collect(norm, foldsLikeAscii, detectors, options?.minConfidence ?? 0);
  const detections = resolveOverlaps(collected);
  const full = norm.text;
  const n = full.length;
  const scanStart = (at: number): number => scanStartIn(text, norm, at, detectors);
  if (detectors.length === 0) return { detections, settled: text.length, scanStart };
  if (n === 0) return { detections, settled: 0, scanStart };
  let base = full;
  // The last segment (a starter and its marks) is dropped unless it normalizes to ASCII: a mark
  // that follows can change it.
  const origin = norm.toOriginal(n - 1);
  let k = n - 1;
  while (k > 0 && norm.toOriginal(k - 1) === origin) k--;
  if (full.charCodeAt(n - 1) >= 0x80 || NON_ASCII.test(full.slice(k))) base = full.slice(0, k);
  let h = base.length;
  for (const d of detectors) {
    const s = d.settledBefore !== undefined ? d.settledBefore(base) : base.length - d.maxLength - Math.max(0, d.lookahead ?? 0);
    if (!(s > 0)) return { detections, settled: 0, scanStart }; // also NaN
    if (s < h) h = Math.floor(s);
  }
  let settled = h >= n ? text.length : norm.toOriginal(h);
  // No straddling: a detection [start, end) with start < settled < end moves it back to start.
  // (One pass by decreasing start suffices: a detection passed over starts at or after any new value.)
  const { found } = collected;
  for (let i = found.length - 1; i >= 0; i--) {
    const d = found[i]!;
    if (d.start < settled && d.end > settled) settled = d.start;
  }
  return { detections, settled, scanStart };
}

export interface StreamingDetection {
  detections: Detection[];
  settled: number;
  /**
   * The detectors' Detector.scanStart together, in ORIGINAL positions of the text: for `at`, the
   * smallest scan start of any of them, asked on the normalized text (at the first normalized
   * position that maps to `at` or later) and mapped back — `at` itself when none has the hook or
   * none needs to reach back. Reads only the text before `at` (normalized as part of this text).
   */
  readonly scanStart: (at: number) => number;
}

/**
 * The detectors' scan start for position `at` of `text` (see StreamingDetection.scanStart), for a
 * caller that does not run detectStreaming.
 */
export function scanStartOf(text: string, at: number, detectors: readonly Detector[]): number {
  if (!detectors.some((d) => d.scanStart !== undefined)) return at;
  return scanStartIn(text, normalizeScanned(text).norm, at, detectors);
}

function scanStartIn(text: string, norm: NormalizedText, at: number, detectors: readonly Detector[]): number {
  if (at <= 0) return 0;
  const n = norm.text.length;
  // The first normalized position that maps to `at` or later (toOriginal is nondecreasing).
  let k: number;
  if (at >= text.length) {
    k = n;
  } else if (norm.text === text) {
    k = at; // nothing to normalize: positions map to themselves
  } else {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (norm.toOriginal(mid) >= at) hi = mid;
      else lo = mid + 1;
    }
    k = lo;
  }
  let j = k;
  for (const d of detectors) {
    if (d.scanStart === undefined) continue;
    const s = d.scanStart(norm.text, k);
    if (!(s >= 0)) return 0; // also NaN: a scan from the start is always in step
    if (s < j) j = Math.floor(s);
  }
  return j >= k ? at : j <= 0 ? 0 : Math.min(at, norm.toOriginal(j));
}

function better(a: Ranked, b: Ranked): number {
  return (
    b.d.end - b.d.start - (a.d.end - a.d.start) ||
    b.d.confidence - a.d.confidence ||
    a.rank - b.rank ||
    a.d.start - b.d.start
  );
}

function resolveOverlaps({ found, rank }: Collected): Detection[] {
  const out: Detection[] = [];
  // Clusters of transitively overlapping spans are resolved greedily; most texts have none.
  let i = 0;
  while (i < found.length) {
    let j = i + 1;
    let clusterEnd = found[i]!.end;
    while (j < found.length && found[j]!.start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, found[j]!.end);
      j++;
    }
    if (j === i + 1) {
      out.push(found[i]!);
    } else {
      const cluster: Ranked[] = [];
      for (let k = i; k < j; k++) cluster.push({ d: found[k]!, rank: rank[k]! });
      cluster.sort(better);
      const kept: Detection[] = [];
      for (const c of cluster) {
        if (kept.every((k) => c.d.end <= k.start || c.d.start >= k.end)) kept.push(c.d);
      }
      kept.sort((a, b) => a.start - b.start);
      out.push(...kept);
    }
    i = j;
  }
  return out;
}
