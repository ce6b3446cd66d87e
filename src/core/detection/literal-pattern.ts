/**
 * A literal the policy names (a keyword, a context word) as a pattern for normalized text: the
 * text is folded by look (./normalize.ts), so the literal must be too — case by case.
 */
import { normalizeForMatching } from './normalize.ts';

const WHITESPACE = /^\s+$/u;
const MARK = /^\p{M}$/u;

/**
 * A literal (a keyword) as a pattern for normalized text, and its longest match: segment by
 * segment (a starter and its marks), every normalized form of the segment and of its upper and
 * lower case — normalization folds letters by look, which does not keep case pairs together
 * (Cyrillic К folds to K, к stays), so a case-insensitive match must also accept the fold of the
 * other case. Whitespace matches 1 to 8 whitespace characters.
 */
export function literalPattern(literal: string): { source: string; maxLength: number; first: readonly string[]; last: readonly string[] } {
  const segments: string[] = [];
  for (const ch of literal) {
    if (segments.length > 0 && MARK.test(ch)) segments[segments.length - 1] += ch;
    else segments.push(ch);
  }
  let source = '';
  let maxLength = 0;
  let first: string[] = [];
  let last: string[] = [];
  let space = false;
  for (const segment of segments) {
    const forms: string[] = [];
    for (const variant of [segment, segment.toLowerCase(), segment.toUpperCase()]) {
      const form = normalizeForMatching(variant).text;
      // A form the others already match case-insensitively adds nothing (ASCII letters: one form).
      if (form !== '' && !forms.some((f) => new RegExp(`^${escape(f)}$`, 'iu').test(form))) forms.push(form);
    }
    if (forms.length === 0) continue;
    if (forms.every((f) => WHITESPACE.test(f))) {
      if (!space) {
        source += '\\s{1,8}';
        maxLength += 8;
      }
      space = true;
      continue;
    }
    space = false;
    const escaped = forms.map((f) => escape(f).replace(/\s+/g, '\\s{1,8}'));
    source += escaped.length === 1 ? escaped[0]! : `(?:${escaped.join('|')})`;
    maxLength += Math.max(...forms.map((f) => f.length));
    if (first.length === 0) first = forms;
    last = forms;
  }
  return { source, maxLength, first, last };
}

function escape(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
