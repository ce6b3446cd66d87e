// FROZEN COPY of src/core/detection at commit a1e3bc1 — the oracle for test/detection-differential.test.ts
// and the baseline of bench/masking-throughput.ts --baseline. Do not edit.
/**
 * Custom regex detectors from a policy file, with a load-time refusal of patterns open to
 * catastrophic backtracking.
 *
 * The check is STATIC and CONSERVATIVE: it parses the pattern (ECMAScript syntax, flags i/m/s/u)
 * into a small tree and refuses
 *   1. backreferences (`\1`, `\k<name>`) — matching with them is NP-hard in general;
 *   2. nested repetition where either level is unbounded — `(a+)+`, `(\w*x)*`, `(a{1,5})+`;
 *   3. a repeated group containing an alternation whose branches can start with the same
 *      character, or an empty branch — `(a|a)*`, `(\d|\w)+`, `(a|ab){1,9}`, `(a|)+`;
 *   4. two unbounded repetitions in sequence over overlapping characters with only optional items
 *      between them — `\d+\d+`, `.*\s*.*`, `a*b?a*` (polynomial backtracking);
 * and then rewrites every remaining unbounded quantifier (`*`, `+`, `{n,}`) to `{n,maxLength}`,
 * so the work per start position is bounded by `maxLength` (a match can never be longer anyway).
 *
 * Limits (documented, deliberate): it reasons on first characters and character classes, not on
 * full languages, so it refuses some safe patterns (`(\w+@)(\w+)` is refused by rule 4 because a
 * group is summarised by all the characters it contains) and it does not model lookarounds'
 * interaction with the main pattern (their contents are checked by the same rules). Unicode
 * property escapes (`\p{…}`) and non-ASCII characters are treated as overlapping everything
 * non-ASCII. The `v` flag (set notation) is refused rather than half-parsed.
 */
import type { Detection, Detector, EntityType } from './types.ts';
import { clamp01, hasContext, matches } from './detector-kit.ts';

export interface RegexDetectorSpec {
  id: string;
  type: string;
  pattern: string;
  flags?: string;
  /** Longest match, in UTF-16 code units; required, 1..65536. */
  maxLength: number;
  /** 0..1, default 0.8. */
  confidence?: number;
  /** Words that, within 48 characters before a match, raise its confidence by 0.15. */
  contextWords?: string[];
}

/** Thrown at load time for an unsafe or invalid custom pattern. Never contains the pattern. */
export class RegexDetectorError extends Error {
  readonly detectorId: string;
  readonly reason: string;
  constructor(detectorId: string, reason: string) {
    super(`custom detector "${detectorId}": ${reason}`);
    this.name = 'RegexDetectorError';
    this.detectorId = detectorId;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------- character sets (ASCII + "other")

/** 128 ASCII slots + slot 128 for "some non-ASCII character". */
type CharSet = Uint8Array;
const OTHER = 128;

function emptySet(): CharSet {
  return new Uint8Array(129);
}
function fullSet(): CharSet {
  return new Uint8Array(129).fill(1);
}
function addRange(set: CharSet, from: number, to: number): void {
  for (let c = from; c <= to && c < 128; c++) set[c] = 1;
  if (to >= 128) set[OTHER] = 1;
}
function union(a: CharSet, b: CharSet): CharSet {
  const out = emptySet();
  for (let i = 0; i < 129; i++) out[i] = a[i]! | b[i]!;
  return out;
}
function overlaps(a: CharSet, b: CharSet): boolean {
  for (let i = 0; i < 129; i++) if (a[i]! & b[i]!) return true;
  return false;
}
function complement(a: CharSet): CharSet {
  const out = emptySet();
  for (let i = 0; i < 128; i++) out[i] = a[i] ? 0 : 1;
  out[OTHER] = 1;
  return out;
}
function foldCase(a: CharSet): CharSet {
  const out = a.slice();
  for (let c = 65; c <= 90; c++) if (a[c] || a[c + 32]) out[c] = out[c + 32] = 1;
  return out;
}
const DIGIT = ((): CharSet => { const s = emptySet(); addRange(s, 48, 57); return s; })();
const WORD = ((): CharSet => { const s = emptySet(); addRange(s, 48, 57); addRange(s, 65, 90); addRange(s, 97, 122); s[95] = 1; return s; })();
const SPACE = ((): CharSet => { const s = emptySet(); addRange(s, 9, 13); s[32] = 1; s[OTHER] = 1; return s; })();

// ---------------------------------------------------------------- parse tree

type Node =
  | { kind: 'set'; set: CharSet }
  | { kind: 'assert' }
  | { kind: 'backref' }
  | { kind: 'group'; alts: Node[][]; at: number }
  | { kind: 'quant'; node: Node; min: number; max: number; at: number; srcStart: number; srcEnd: number };

class Refusal extends Error {}

function parse(pattern: string, flags: string): { tree: Node[][]; quants: Extract<Node, { kind: 'quant' }>[] } {
  const icase = flags.includes('i');
  const unicode = flags.includes('u');
  let i = 0;
  const quants: Extract<Node, { kind: 'quant' }>[] = [];

  const lit = (code: number): Node => {
    const s = emptySet();
    addRange(s, code, code);
    return { kind: 'set', set: icase ? foldCase(s) : s };
  };

  const parseEscape = (inClass: boolean): Node | CharSet => {
    const c = pattern[i++];
    switch (c) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return icase ? foldCase(WORD) : WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 'b': if (inClass) return singleton(8); return { kind: 'assert' };
      case 'B': return { kind: 'assert' };
      case 'n': return singleton(10);
      case 'r': return singleton(13);
      case 't': return singleton(9);
      case 'v': return singleton(11);
      case 'f': return singleton(12);
      case '0': return singleton(0);
      case 'c': i++; return fullSet();
      case 'x': { const h = pattern.slice(i, i + 2); i += 2; return singleton(parseInt(h, 16) || 0); }
      case 'u': {
        if (pattern[i] === '{') { const close = pattern.indexOf('}', i); const v = parseInt(pattern.slice(i + 1, close), 16); i = close + 1; return singleton(Number.isFinite(v) ? v : 128); }
        const h = pattern.slice(i, i + 4); i += 4; return singleton(parseInt(h, 16) || 0);
      }
      case 'p': case 'P': {
        if (pattern[i] === '{') i = pattern.indexOf('}', i) + 1;
        return fullSet();
      }
      case 'k':
        if (unicode || pattern[i] === '<') return { kind: 'backref' };
        return singleton(107);
      default:
        if (c !== undefined && c >= '1' && c <= '9') {
          while (i < pattern.length && /\d/.test(pattern[i]!)) i++;
          return { kind: 'backref' };
        }
        return singleton(c === undefined ? 92 : c.charCodeAt(0));
    }
  };
  const singleton = (code: number): CharSet => {
    const s = emptySet();
    addRange(s, code, code);
    return icase ? foldCase(s) : s;
  };

  const parseClass = (): CharSet => {
    // at '[' already consumed
    let negate = false;
    if (pattern[i] === '^') { negate = true; i++; }
    let set = emptySet();
    while (i < pattern.length && pattern[i] !== ']') {
      let lo: number | CharSet;
      if (pattern[i] === '\\') { i++; const e = parseEscape(true); lo = e instanceof Uint8Array ? e : 128; }
      else { lo = pattern.codePointAt(i)!; i += lo > 0xffff ? 2 : 1; }
      if (typeof lo === 'number' && pattern[i] === '-' && pattern[i + 1] !== undefined && pattern[i + 1] !== ']') {
        i++;
        let hi: number;
        if (pattern[i] === '\\') { i++; const e = parseEscape(true); hi = e instanceof Uint8Array ? 0x10ffff : 128; }
        else { hi = pattern.codePointAt(i)!; i += hi > 0xffff ? 2 : 1; }
        const r = emptySet();
        addRange(r, lo, Math.max(lo, hi));
        set = union(set, r);
      } else if (typeof lo === 'number') {
        const r = emptySet();
        addRange(r, lo, lo);
        set = union(set, r);
      } else set = union(set, lo);
    }
    i++; // ']'
    if (icase) set = foldCase(set);
    return negate ? complement(set) : set;
  };

  const parseAlts = (): Node[][] => {
    const alts: Node[][] = [[]];
    while (i < pattern.length) {
      const c = pattern[i]!;
      if (c === ')') break;
      if (c === '|') { i++; alts.push([]); continue; }
      const start = i;
      let atom: Node;
      if (c === '(') {
        i++;
        if (pattern[i] === '?') {
          i++;
          if (pattern[i] === '<' && pattern[i + 1] !== '=' && pattern[i + 1] !== '!') {
            i = pattern.indexOf('>', i) + 1; // named group
          } else if (pattern[i] === '<') {
            i += 2; // lookbehind
          } else if (pattern[i] === ':' || pattern[i] === '=' || pattern[i] === '!') {
            i++;
          } else {
            while (i < pattern.length && /[a-zA-Z-]/.test(pattern[i]!)) i++; // (?i:…) modifiers
            i++;
          }
        }
        const inner = parseAlts();
        i++; // ')'
        atom = { kind: 'group', alts: inner, at: start };
      } else if (c === '[') {
        i++;
        atom = { kind: 'set', set: parseClass() };
      } else if (c === '\\') {
        i++;
        const e = parseEscape(false);
        atom = e instanceof Uint8Array ? { kind: 'set', set: e } : e;
      } else if (c === '.') {
        i++;
        atom = { kind: 'set', set: fullSet() };
      } else if (c === '^' || c === '$') {
        i++;
        atom = { kind: 'assert' };
      } else {
        const cp = pattern.codePointAt(i)!;
        i += cp > 0xffff ? 2 : 1;
        atom = lit(cp);
      }
      // quantifier?
      const qStart = i;
      let min = -1;
      let max = -1;
      const q = pattern[i];
      if (q === '*') { min = 0; max = Infinity; i++; }
      else if (q === '+') { min = 1; max = Infinity; i++; }
      else if (q === '?') { min = 0; max = 1; i++; }
      else if (q === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
        if (m) {
          min = Number(m[1]);
          max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
          i += m[0].length;
        }
      }
      if (min >= 0) {
        const qEnd = i;
        if (pattern[i] === '?') i++; // lazy
        const node: Extract<Node, { kind: 'quant' }> = { kind: 'quant', node: atom, min, max, at: start, srcStart: qStart, srcEnd: qEnd };
        quants.push(node);
        atom = node;
      }
      alts[alts.length - 1]!.push(atom);
    }
    return alts;
  };

  const tree = parseAlts();
  return { tree, quants };
}

// ---------------------------------------------------------------- analysis

/** All characters a node can consume (a conservative summary). */
function charsOf(n: Node): CharSet {
  switch (n.kind) {
    case 'set': return n.set;
    case 'assert': case 'backref': return emptySet();
    case 'quant': return charsOf(n.node);
    case 'group': { let s = emptySet(); for (const alt of n.alts) for (const x of alt) s = union(s, charsOf(x)); return s; }
  }
}

function nullable(n: Node): boolean {
  switch (n.kind) {
    case 'set': return false;
    case 'assert': case 'backref': return true;
    case 'quant': return n.min === 0 || nullable(n.node);
    case 'group': return n.alts.some((alt) => alt.every(nullable));
  }
}

/** Characters a sequence can start with. */
function firstOfSeq(seq: Node[]): CharSet {
  let s = emptySet();
  for (const n of seq) {
    s = union(s, firstOf(n));
    if (!nullable(n)) break;
  }
  return s;
}
function firstOf(n: Node): CharSet {
  switch (n.kind) {
    case 'set': return n.set;
    case 'assert': case 'backref': return emptySet();
    case 'quant': return firstOf(n.node);
    case 'group': { let s = emptySet(); for (const alt of n.alts) s = union(s, firstOfSeq(alt)); return s; }
  }
}

function hasUnbounded(n: Node): boolean {
  switch (n.kind) {
    case 'quant': return n.max === Infinity || hasUnbounded(n.node);
    case 'group': return n.alts.some((alt) => alt.some(hasUnbounded));
    default: return false;
  }
}

function walk(n: Node, visit: (n: Node) => void): void {
  visit(n);
  if (n.kind === 'quant') walk(n.node, visit);
  else if (n.kind === 'group') for (const alt of n.alts) for (const x of alt) walk(x, visit);
}

function check(tree: Node[][]): void {
  const root: Node = { kind: 'group', alts: tree, at: 0 };
  walk(root, (n) => {
    if (n.kind === 'backref') throw new Refusal('backreferences are not allowed (matching with them can take exponential time)');
    if (n.kind === 'quant' && n.max > 1) {
      // Rule 2: nested repetition.
      walk(n.node, (inner) => {
        if (inner !== n && inner.kind === 'quant' && inner.max > 1 && (n.max === Infinity || inner.max === Infinity)) {
          throw new Refusal(`nested quantifier at offset ${n.at} (a repeated group containing a repetition, like (a+)+): catastrophic backtracking risk`);
        }
      });
      // Rule 3: overlapping or empty alternatives inside a repeated group.
      walk(n.node, (inner) => {
        if (inner.kind !== 'group' || inner.alts.length < 2) return;
        const firsts = inner.alts.map(firstOfSeq);
        for (let a = 0; a < inner.alts.length; a++) {
          if (inner.alts[a]!.every(nullable)) throw new Refusal(`repeated alternation with an empty branch at offset ${inner.at}: catastrophic backtracking risk`);
          for (let b = a + 1; b < inner.alts.length; b++) {
            if (overlaps(firsts[a]!, firsts[b]!)) {
              throw new Refusal(`repeated alternation at offset ${inner.at} whose branches can start with the same character (like (a|ab)+): catastrophic backtracking risk`);
            }
          }
        }
      });
    }
    if (n.kind === 'group') for (const alt of n.alts) checkSequence(alt);
  });
}

/** Rule 4: two unbounded repetitions over overlapping characters with only optional items between. */
function checkSequence(seq: Node[]): void {
  for (let a = 0; a < seq.length; a++) {
    const x = seq[a]!;
    if (!hasUnbounded(x)) continue;
    const xs = charsOf(x);
    for (let b = a + 1; b < seq.length; b++) {
      const y = seq[b]!;
      if (hasUnbounded(y) && overlaps(xs, charsOf(y))) {
        throw new Refusal(`adjacent unbounded repetitions over the same characters at offset ${nodeAt(x)} (like \\d+\\d+ or .*.*): polynomial backtracking risk`);
      }
      if (!nullable(y)) break;
    }
  }
}
function nodeAt(n: Node): number {
  return n.kind === 'quant' || n.kind === 'group' ? n.at : 0;
}

const ALLOWED_FLAGS = /^[imsu]*$/;
export const MAX_CUSTOM_LENGTH = 65536;

/**
 * Builds a detector from a policy's custom pattern. Throws RegexDetectorError (naming the
 * detector and the reason, never the pattern) for an invalid or unsafe pattern.
 */
export function createRegexDetector(spec: RegexDetectorSpec): Detector {
  const id = typeof spec.id === 'string' && spec.id !== '' ? spec.id : '(unnamed)';
  const flags = spec.flags ?? '';
  if (typeof spec.pattern !== 'string' || spec.pattern === '') throw new RegexDetectorError(id, 'pattern is required');
  if (!Number.isInteger(spec.maxLength) || spec.maxLength < 1 || spec.maxLength > MAX_CUSTOM_LENGTH) {
    throw new RegexDetectorError(id, `maxLength is required: an integer from 1 to ${MAX_CUSTOM_LENGTH}`);
  }
  if (!ALLOWED_FLAGS.test(flags) || new Set(flags).size !== flags.length) {
    throw new RegexDetectorError(id, 'flags may only combine i, m, s and u (g is implied)');
  }
  const confidence = spec.confidence ?? 0.8;
  if (!(confidence >= 0 && confidence <= 1)) throw new RegexDetectorError(id, 'confidence must be between 0 and 1');
  // Validity first: the engine's own parser.
  try {
    new RegExp(spec.pattern, flags);
  } catch (err) {
    const msg = err instanceof Error ? err.message : '';
    // V8's message embeds the pattern ("Invalid regular expression: /…/: reason"); keep the reason.
    const reason = msg.slice(msg.lastIndexOf(': ') + 2) || 'syntax error';
    throw new RegexDetectorError(id, `invalid regular expression: ${reason}`);
  }
  let source = spec.pattern;
  try {
    const { tree, quants } = parse(spec.pattern, flags);
    check(tree);
    // Bound every unbounded quantifier by maxLength (rewrite from the end to keep offsets valid).
    const unbounded = quants.filter((q) => q.max === Infinity).sort((a, b) => b.srcStart - a.srcStart);
    for (const q of unbounded) {
      if (q.min > spec.maxLength) throw new Refusal(`a repetition at offset ${q.at} needs more than maxLength characters`);
      source = source.slice(0, q.srcStart) + `{${q.min},${spec.maxLength}}` + source.slice(q.srcEnd);
    }
  } catch (err) {
    if (err instanceof Refusal) throw new RegexDetectorError(id, `pattern refused: ${err.message}`);
    throw new RegexDetectorError(id, 'pattern refused: it could not be analysed');
  }
  let re: RegExp;
  try {
    re = new RegExp(source, flags + 'g');
  } catch {
    throw new RegexDetectorError(id, 'pattern refused: it could not be analysed');
  }
  const words = (spec.contextWords ?? []).map((w) => w.toLowerCase()).filter((w) => w !== '');
  const type: EntityType = spec.type;
  const maxLength = spec.maxLength;
  return {
    id,
    type,
    maxLength,
    lookbehind: words.length > 0 ? 48 : 0,
    lookahead: 0,
    detect(text: string): Detection[] {
      const out: Detection[] = [];
      for (const m of matches(re, text)) {
        // Never longer than maxLength: a longer match is reported on its first maxLength units
        // (fail closed rather than drop it).
        const end = Math.min(m.index + m[0].length, m.index + maxLength);
        const c = hasContext(text, m.index, words) ? confidence + 0.15 : confidence;
        out.push({ type, start: m.index, end, confidence: clamp01(c), detector: id });
      }
      return out;
    },
  };
}
