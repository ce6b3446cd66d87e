/**
 * normalizeForMatching edge cases not covered by the detection and streaming-hint tests.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { normalizeForMatching } from '../src/core/detection/index.ts';

it('a position that is not an integer maps to the end, also for a text NFKC leaves as it is that starts with a combining mark', () => {
  // '\u0301x' is left as it is (the "unchanged" path); '\u0301x\u200B' is changed (the general path).
  for (const text of ['\u0301x', '\u0301\u0301y😀', '\u0301x\u200B']) {
    const n = normalizeForMatching(text);
    for (const index of [0.5, 1.5, Number.NaN]) {
      assert.equal(n.toOriginal(index), text.length, `${JSON.stringify(text)} toOriginal(${index})`);
      assert.equal(n.toOriginalEnd(index), text.length, `${JSON.stringify(text)} toOriginalEnd(${index})`);
    }
  }
});
