/**
 * Small pure matchers the compiled policy is made of: `*` globs for names, a keyword-list
 * detector, and a detector wrapper that applies a rule's minimum confidence.
 */
import { literalPattern } from '../detection/literal-pattern.ts';
import type { Detection, Detector } from '../detection/types.ts';

/** Case-insensitive glob with `*` (any run of characters); everything else is literal. */
export function compileGlob(glob: string): (value: string) => boolean {
  const lowered = glob.normalize('NFKC').toLowerCase();
  if (!lowered.includes('*')) return (value) => value.toLowerCase() === lowered;
  const parts = lowered.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // Only literal parts joined by `[^]*?`: linear enough for the short names it sees.
  const re = new RegExp(`^${parts.join('[^]*')}$`, 's');
  return (value) => re.test(value.toLowerCase());
}

export function anyGlob(globs: readonly string[]): (value: string) => boolean {
  const matchers = globs.map(compileGlob);
  return (value) => matchers.some((m) => m(value));
}

const WORD = /[\p{L}\p{N}_]/u;
/**
 * Finds any of `keywords` (case-insensitive, normalized as the text is: see literalPattern) as
 * whole words where a keyword begins or ends with a letter or digit: `prod` does not fire inside
 * `product`. Reports type KEYWORD.
 */
export function createKeywordDetector(id: string, keywords: readonly string[]): Detector {
  const words = [...new Set(keywords.map((k) => k.normalize('NFKC').trim()).filter((k) => k.length > 0))];
  const literals = words.map(literalPattern).filter((l) => l.source !== '');
  const alternatives = literals
    .sort((a, b) => b.maxLength - a.maxLength)
    .map(({ source, first, last }) => {
      const before = first.some((f) => WORD.test(f.charAt(0))) ? '(?<![\\p{L}\\p{N}_])' : '';
      const after = last.some((f) => WORD.test(f.charAt(f.length - 1))) ? '(?![\\p{L}\\p{N}_])' : '';
      return `${before}${source}${after}`;
    });
  const re = alternatives.length === 0 ? null : new RegExp(alternatives.join('|'), 'giu');
  const maxLength = Math.max(1, ...literals.map((l) => l.maxLength));
  return {
    id,
    type: 'KEYWORD',
    maxLength,
    // Word-boundary checks read one character on each side.
    lookbehind: 1,
    lookahead: 1,
    detect(text: string): Detection[] {
      if (!re) return [];
      const found: Detection[] = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        found.push({ type: 'KEYWORD', start: m.index, end: m.index + m[0].length, confidence: 1, detector: id });
      }
      return found;
    },
  };
}

/**
 * Wraps a detector for one rule: keeps detections of at least `minConfidence` and labels them
 * with the wrapper's id (`rule-id/detector-id`) so a detection says which rule asked for it.
 */
export function scopeDetector(inner: Detector, ruleId: string, minConfidence: number): Detector {
  const id = `${ruleId}/${inner.id}`;
  return {
    id,
    type: inner.type,
    maxLength: inner.maxLength,
    lookbehind: inner.lookbehind ?? 0,
    lookahead: inner.lookahead ?? 0,
    detect(text: string): Detection[] {
      const out: Detection[] = [];
      for (const d of inner.detect(text)) {
        if (d.confidence >= minConfidence) out.push({ type: d.type, start: d.start, end: d.end, confidence: d.confidence, detector: id });
      }
      return out;
    },
    // Filtering by confidence keeps a settled prefix settled: pass the streaming hint through.
    ...(inner.settledBefore ? { settledBefore: inner.settledBefore.bind(inner) } : {}),
  };
}
