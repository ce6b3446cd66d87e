/**
 * Entity detection: the built-in detectors, custom regex detectors, and `detectEntities`, which
 * runs detectors on the normalized text (NFKC, invisible characters removed), maps positions back
 * to the original text and resolves overlaps. Pure: no I/O, no clock, no randomness.
 */
import { normalizeForMatching } from './normalize.ts';
import { PII_DETECTORS } from './pii.ts';
import { SECRET_DETECTORS } from './secrets.ts';
import type { Detection, Detector, EntityType } from './types.ts';

export type { Detection, Detector, EntityType } from './types.ts';
export { normalizeForMatching } from './normalize.ts';
export type { NormalizedText } from './normalize.ts';
export { createRegexDetector, RegexDetectorError } from './custom-regex.ts';
export type { RegexDetectorSpec } from './custom-regex.ts';

/**
 * Every built-in detector: secrets first, then personal data (the order breaks exact ties).
 * Person names are deliberately absent: no offline approach reached a precision worth shipping.
 */
export const BUILTIN_DETECTORS: readonly Detector[] = Object.freeze([...SECRET_DETECTORS, ...PII_DETECTORS]);

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

export interface DetectOptions {
  /** Detections below this confidence are dropped before overlaps are resolved. Default 0. */
  minConfidence?: number;
}

/**
 * Runs `detectors` on the normalized form of `text` and returns detections in ORIGINAL positions
 * (UTF-16 code units of `text`), without overlaps (the longer span wins, then the higher
 * confidence, then the earlier detector), sorted by start. A detector that throws makes this
 * throw (callers fail closed).
 */
export function detectEntities(text: string, detectors: readonly Detector[], options?: DetectOptions): Detection[] {
  const min = options?.minConfidence ?? 0;
  const norm = normalizeForMatching(text);
  const n = norm.text.length;
  const found: { d: Detection; rank: number }[] = [];
  for (let k = 0; k < detectors.length; k++) {
    const detector = detectors[k]!;
    for (const d of detector.detect(norm.text)) {
      if (!(d.confidence >= min)) continue;
      const s = Math.max(0, Math.min(n, Math.floor(d.start)));
      const e = Math.max(0, Math.min(n, Math.floor(d.end)));
      if (!(e > s)) continue;
      const start = norm.toOriginal(s);
      const end = norm.toOriginalEnd(e);
      if (end <= start) continue;
      found.push({ d: { type: d.type, start, end, confidence: d.confidence, detector: d.detector }, rank: k });
    }
  }
  return resolveOverlaps(found);
}

function better(a: { d: Detection; rank: number }, b: { d: Detection; rank: number }): number {
  return (
    b.d.end - b.d.start - (a.d.end - a.d.start) ||
    b.d.confidence - a.d.confidence ||
    a.rank - b.rank ||
    a.d.start - b.d.start
  );
}

function resolveOverlaps(found: { d: Detection; rank: number }[]): Detection[] {
  found.sort((a, b) => a.d.start - b.d.start || b.d.end - a.d.end);
  const out: Detection[] = [];
  // Clusters of transitively overlapping spans are resolved greedily; most texts have none.
  let i = 0;
  while (i < found.length) {
    let j = i + 1;
    let clusterEnd = found[i]!.d.end;
    while (j < found.length && found[j]!.d.start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, found[j]!.d.end);
      j++;
    }
    if (j === i + 1) {
      out.push(found[i]!.d);
    } else {
      const cluster = found.slice(i, j).sort(better);
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
