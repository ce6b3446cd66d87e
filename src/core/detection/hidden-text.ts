/**
 * Text hidden in invisible characters that a model still reads ("ASCII smuggling"):
 *
 *  - tag characters: U+E0020–E007E spell ASCII (U+E0041 is `A`), U+E0001 and U+E007F frame them.
 *    Their one legitimate use is the emoji tag sequence of a subdivision flag (🏴 + tags +
 *    U+E007F: the flags of England, Scotland and Wales).
 *  - variation selectors in a run: VS1–VS16 (U+FE00–FE0F) and VS17–VS256 (U+E0100–E01EF) are the
 *    256 byte values, so a run of them after one visible character carries any bytes — UTF-8 text
 *    included. One selector after a character is legitimate (emoji or text presentation, an
 *    ideographic variant); a run of two or more never is. A run may have other format characters
 *    (zero-width joiners…) between its selectors.
 *
 * Matching removes both (./normalize.ts), so a rule never sees them. Hence the two uses here:
 * `findHiddenText` decodes them into a view for block rules (a secret spelt in tag characters is
 * found), and `stripHiddenText` removes them from what is forwarded, so that the model reads what
 * the rules read. Pure: no I/O.
 */
import type { DecodeBudget, DecodedRegion } from './decode-encodings.ts';

/** A code unit some hidden character begins with: the tags' and VS17–256's high surrogate, or VS1–16. */
const MAY_HIDE = /\uDB40|[\uFE00-\uFE0F]/;
/** The same, or (in JSON text) an escape spelling one. */
const MAY_HIDE_JSON = /\uDB40|[\uFE00-\uFE0F]|\\u(?:[dD][bB]40|[fF][eE]0[0-9a-fA-F])/;
const FORMAT = /^\p{Cf}$/u;
/** Where a run can begin: a tag character or a variation selector (raw; in JSON, escaped too). */
const HIDDEN = /[\uFE00-\uFE0F]|\uDB40[\uDC00-\uDC7F\uDD00-\uDDEF]/g;
const HIDDEN_JSON = /[\uFE00-\uFE0F]|\uDB40[\uDC00-\uDC7F\uDD00-\uDDEF]|\\u(?:[fF][eE]0[0-9a-fA-F]|[dD][bB]40\\u[dD][cCdD][0-9a-fA-F]{2})/g;

const OTHER = 0;
const TAG = 1;
const SELECTOR = 2;
/** Another format character: part of a run, neither removed nor decoded. */
const FORMAT_CHAR = 3;

function kindOf(cp: number): number {
  if (cp >= 0xe0000 && cp <= 0xe007f) return TAG;
  if ((cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0xe0100 && cp <= 0xe01ef)) return SELECTOR;
  if (cp >= 0xad && FORMAT.test(String.fromCodePoint(cp))) return FORMAT_CHAR;
  return OTHER;
}

/** The byte a variation selector stands for. */
function selectorByte(cp: number): number {
  return cp <= 0xfe0f ? cp - 0xfe00 : cp - 0xe0100 + 16;
}

interface Unit {
  readonly start: number;
  readonly end: number;
  readonly cp: number;
  readonly kind: number;
}

/**
 * The runs of hidden and format characters of `text` (each a list of units), with `json`
 * reading `\uXXXX` escapes (a surrogate pair as two) as the characters they spell. A run is kept
 * when it holds a tag character or two variation selectors. Only the text from each hidden
 * character on is read (found by one regex scan): format characters before a run's first hidden
 * character are left out of it, which changes nothing here.
 */
function hiddenRuns(text: string, json: boolean): Unit[][] {
  const runs: Unit[][] = [];
  const find = json ? HIDDEN_JSON : HIDDEN;
  find.lastIndex = 0;
  const n = text.length;
  for (let m = find.exec(text); m !== null; m = find.exec(text)) {
    // An escape's backslash that is itself escaped (an odd number of backslashes before it) spells nothing.
    if (json && m[0].charCodeAt(0) === 0x5c) {
      let b = m.index;
      while (b > 0 && text.charCodeAt(b - 1) === 0x5c) b--;
      if ((m.index - b) % 2 === 1) {
        find.lastIndex = m.index + 1;
        continue;
      }
    }
    const run: Unit[] = [];
    let selectors = 0;
    let tags = 0;
    let i = m.index;
    while (i < n) {
      const start = i;
      let cp: number;
      let end: number;
      if (json && text.charCodeAt(i) === 0x5c) {
        const hi = escapedUnit(text, i);
        if (hi < 0) break;
        cp = hi;
        end = i + 6;
        if (hi >= 0xd800 && hi <= 0xdbff) {
          const lo = escapedUnit(text, end);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = (hi - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000;
            end += 6;
          }
        }
      } else {
        cp = text.codePointAt(i)!;
        end = i + (cp > 0xffff ? 2 : 1);
      }
      const kind = kindOf(cp);
      if (kind === OTHER) break;
      run.push({ start, end, cp, kind });
      if (kind === TAG) tags++;
      else if (kind === SELECTOR) selectors++;
      i = end;
    }
    if (tags > 0 || selectors > 1) runs.push(run);
    find.lastIndex = Math.max(i, m.index + 1);
  }
  return runs;
}

/** The code unit a JSON `\uXXXX` escape at i spells, −1 when there is none. */
function escapedUnit(text: string, i: number): number {
  if (text.charCodeAt(i) !== 0x5c || text.charCodeAt(i + 1) !== 0x75) return -1;
  const hex = text.slice(i + 2, i + 6);
  return /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : -1;
}

const UTF8 = new TextDecoder('utf-8');

/**
 * The hidden text of `text` decoded in place: a run of tag characters as the ASCII it spells, a
 * run of variation selectors as the UTF-8 of its bytes (U+FFFD where they are not UTF-8). Regions
 * are sorted and disjoint; the budget bounds the decoded characters.
 */
export function findHiddenText(text: string, budget: DecodeBudget): DecodedRegion[] {
  if (!MAY_HIDE.test(text)) return [];
  const out: DecodedRegion[] = [];
  for (const run of hiddenRuns(text, false)) {
    let decoded = '';
    const bytes: number[] = [];
    for (const u of run) {
      if (u.kind === TAG && u.cp >= 0xe0020 && u.cp <= 0xe007e) decoded += String.fromCharCode(u.cp - 0xe0000);
      else if (u.kind === SELECTOR) bytes.push(selectorByte(u.cp));
    }
    if (bytes.length > 1) decoded += UTF8.decode(Uint8Array.from(bytes));
    if (decoded === '') continue;
    if (budget.chars < decoded.length) {
      budget.exhausted = true;
      break;
    }
    budget.chars -= decoded.length;
    out.push({ start: run[0]!.start, end: run[run.length - 1]!.end, decoded });
  }
  return out;
}

/**
 * `text` without its hidden text: every tag character, and the variation selectors of every run
 * of two or more (other format characters and single selectors stay). With `json`, `text` is JSON
 * and escapes spelling these characters are removed too (whole escapes: it stays valid JSON).
 * The same string when there is nothing to remove (one regex scan).
 */
export function stripHiddenText(text: string, json = false): string {
  if (!(json ? MAY_HIDE_JSON : MAY_HIDE).test(text)) return text;
  const runs = hiddenRuns(text, json);
  if (runs.length === 0) return text;
  const parts: string[] = [];
  let copied = 0;
  for (const run of runs) {
    const selectors = run.filter((u) => u.kind === SELECTOR).length;
    for (const u of run) {
      if (u.kind === TAG || (u.kind === SELECTOR && selectors > 1)) {
        parts.push(text.slice(copied, u.start));
        copied = u.end;
      }
    }
  }
  parts.push(text.slice(copied));
  return parts.join('');
}
