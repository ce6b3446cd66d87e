/**
 * A linear-time matcher for the policy's custom patterns: JavaScript regex syntax, compiled to a
 * Thompson NFA and run as a Pike VM (all threads advance together, one pass over the text), so no
 * pattern can backtrack: `(a+)+$`, `(a{1,100}){1,10}$` or `a+b` cost one step per live thread per
 * character, never a re-scan per start position or an exponential search.
 *
 * SEMANTICS. Leftmost-first, as JS RegExp: at the leftmost position where some match starts, the
 * match the backtracking engine would pick (greedy/lazy priorities, alternation order). Scanning
 * the whole text gives what a global RegExp's exec loop gives (empty matches are reported, the
 * scan then moves one character on — a code point with `u`). Character semantics — classes,
 * escapes, `.`, `\w`/`\b`, case folding under `i`/`u`, `\p{…}` — are V8's own: each
 * character-consuming atom is tested by a one-atom JS RegExp (no quantifier, so constant time
 * per character), memoized per character.
 *
 * ACCEPTED: literals, escapes, classes, `.`, groups (capturing, non-capturing, named — captures
 * are not reported), alternation, greedy and lazy quantifiers (`* + ? {n} {n,} {n,m}`), anchors
 * `^ $ \b \B`, flags i, m, s, u.
 * REFUSED (PatternRefusal, the reason never quotes the pattern): backreferences and legacy octal
 * escapes (no linear algorithm exists for backreferences); lookarounds and inline modifiers (not
 * implemented); and a compiled program over `maxProgramSize` instructions (bounded repeats are
 * expanded: `(a{1,100}){1,100}` is 20 000 instructions, and the time per character grows with the
 * program).
 *
 * COST. One search is one left-to-right pass: at most (program size) thread steps per character.
 * After a match the next search starts where it ended; the previous search may have looked at
 * most `maxLength` + 1 characters past the match's start (threads that would only make a match
 * longer than `maxLength` stop the search once a match is known — such a match is cut to
 * `maxLength` by the caller anyway, so only which one of two over-long matches is reported can
 * differ from JS). Every call also has a step budget: past it, MatchBudgetExceeded is thrown and
 * callers fail closed.
 *
 * Pure: no I/O, no clock. A compiled matcher keeps scratch arrays: not reentrant (JS is single-
 * threaded and `exec` never yields, so that only matters to a caller that nests calls).
 */

/** A pattern this engine will not run; `message` is the reason, never the pattern. */
export class PatternRefusal extends Error {
  override readonly name = 'PatternRefusal';
}

/** A scan took more steps than its budget: the caller must fail closed. */
export class MatchBudgetExceeded extends Error {
  override readonly name = 'MatchBudgetExceeded';
  constructor() {
    super('the pattern took more steps than its budget on this text');
  }
}

/** Default largest compiled program, in instructions. */
export const MAX_PROGRAM_SIZE = 10_000;

export interface LinearRegexOptions {
  /** Largest compiled program (instructions); default MAX_PROGRAM_SIZE. */
  readonly maxProgramSize?: number;
  /**
   * ASCII characters (codes) that a character-consuming atom (its source, and a test of one
   * character against it) matches besides those V8 says it does: the text it runs on has been
   * folded, and the atom must match what the characters it names were folded to.
   */
  readonly alsoMatches?: (atom: string, matches: (cp: number) => boolean) => readonly number[];
}

export interface ScanOptions {
  /**
   * Matches longer than this may be reported as another over-long match than JS would pick (see
   * COST above); default: unlimited (exact JS semantics, at a worst-case quadratic cost).
   */
  readonly maxLength?: number;
  /** Thread steps allowed for this call; default: unlimited. */
  readonly budget?: number;
}

// ---------------------------------------------------------------- syntax tree

const BOL = 0;
const EOL = 1;
const WORD_BOUNDARY = 2;
const NOT_WORD_BOUNDARY = 3;

type Ast =
  | { readonly t: 'atom'; readonly src: string }
  | { readonly t: 'assert'; readonly kind: number }
  | { readonly t: 'seq'; readonly items: readonly Ast[] }
  | { readonly t: 'alt'; readonly alts: readonly Ast[] }
  | { readonly t: 'repeat'; readonly node: Ast; readonly min: number; readonly max: number; readonly greedy: boolean };

const SYNTAX_CHARS = '^$\\.*+?()[]{}|/';
const HEX2 = /^[0-9a-fA-F]{2}/;
const HEX4 = /^[0-9a-fA-F]{4}/;
const QUANT = /^\{(\d+)(,(\d*))?\}/;

/** Parses a pattern already known to be valid for `new RegExp(pattern, flags)`. */
function parsePattern(p: string, unicode: boolean): Ast {
  let i = 0;

  const parseAlt = (): Ast => {
    const alts: Ast[] = [parseSeq()];
    while (p[i] === '|') {
      i++;
      alts.push(parseSeq());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  };

  const parseSeq = (): Ast => {
    const items: Ast[] = [];
    while (i < p.length && p[i] !== '|' && p[i] !== ')') items.push(parseQuantified(parseAtom()));
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  };

  const parseQuantified = (atom: Ast): Ast => {
    let min: number;
    let max: number;
    const q = p[i];
    if (q === '*') { min = 0; max = Infinity; i++; }
    else if (q === '+') { min = 1; max = Infinity; i++; }
    else if (q === '?') { min = 0; max = 1; i++; }
    else if (q === '{' && QUANT.test(p.slice(i, i + 40))) {
      const m = QUANT.exec(p.slice(i))!;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      i += m[0].length;
    } else return atom;
    let greedy = true;
    if (p[i] === '?') {
      greedy = false;
      i++;
    }
    if (atom.t === 'assert') throw new PatternRefusal('a quantified assertion is not supported');
    return { t: 'repeat', node: atom, min, max, greedy };
  };

  const parseAtom = (): Ast => {
    const c = p[i]!;
    if (c === '(') {
      i++;
      if (p[i] === '?') {
        const kind = p.slice(i, i + 3);
        if (kind.startsWith('?:')) i += 2;
        else if (kind === '?<=' || kind === '?<!' || kind.startsWith('?=') || kind.startsWith('?!')) {
          throw new PatternRefusal('lookarounds ((?=…), (?!…), (?<=…), (?<!…)) are not supported');
        } else if (kind.startsWith('?<')) i = p.indexOf('>', i) + 1;
        else throw new PatternRefusal('inline modifiers ((?i:…)) are not supported; use the flags field');
      }
      const inner = parseAlt();
      i++; // ')'
      return inner;
    }
    if (c === '[') {
      let j = i + 1;
      while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
      const src = p.slice(i, j + 1);
      i = j + 1;
      return { t: 'atom', src };
    }
    if (c === '\\') return parseEscape();
    if (c === '.') {
      i++;
      return { t: 'atom', src: '.' };
    }
    if (c === '^') {
      i++;
      return { t: 'assert', kind: BOL };
    }
    if (c === '$') {
      i++;
      return { t: 'assert', kind: EOL };
    }
    const cp = unicode ? p.codePointAt(i)! : p.charCodeAt(i);
    const ch = unicode ? String.fromCodePoint(cp) : p[i]!;
    i += ch.length;
    return { t: 'atom', src: SYNTAX_CHARS.includes(ch) ? `\\${ch}` : ch };
  };

  const parseEscape = (): Ast => {
    const e = p[i + 1];
    let len = 2;
    switch (e) {
      case 'b':
        i += 2;
        return { t: 'assert', kind: WORD_BOUNDARY };
      case 'B':
        i += 2;
        return { t: 'assert', kind: NOT_WORD_BOUNDARY };
      case '0':
        if (/[0-9]/.test(p[i + 2] ?? '')) throw new PatternRefusal('octal escapes are not supported; write \\xHH');
        break;
      case 'k':
        if (unicode || p[i + 2] === '<') throw new PatternRefusal('backreferences are not allowed (no linear-time algorithm matches them)');
        break;
      case 'c':
        if (!/[A-Za-z]/.test(p[i + 2] ?? '')) {
          // Annex B: a `\c` without a control letter is a literal backslash; the `c` follows.
          i += 1;
          return { t: 'atom', src: '\\\\' };
        }
        len = 3;
        break;
      case 'x':
        if (HEX2.test(p.slice(i + 2, i + 4))) len = 4;
        break;
      case 'u':
        if (unicode && p[i + 2] === '{') len = p.indexOf('}', i) + 1 - i;
        else if (HEX4.test(p.slice(i + 2, i + 6))) {
          len = 6;
          const lead = parseInt(p.slice(i + 2, i + 6), 16);
          if (unicode && lead >= 0xd800 && lead <= 0xdbff && p.slice(i + 6, i + 8) === '\\u' && HEX4.test(p.slice(i + 8, i + 12))) {
            const trail = parseInt(p.slice(i + 8, i + 12), 16);
            if (trail >= 0xdc00 && trail <= 0xdfff) len = 12;
          }
        }
        break;
      case 'p':
      case 'P':
        if (unicode) len = p.indexOf('}', i) + 1 - i;
        break;
      default:
        if (e !== undefined && e >= '1' && e <= '9') throw new PatternRefusal('backreferences are not allowed (no linear-time algorithm matches them)');
    }
    const src = p.slice(i, i + len);
    i += len;
    return { t: 'atom', src };
  };

  const ast = parseAlt();
  if (i < p.length) throw new PatternRefusal('it could not be parsed');
  return ast;
}

function nullable(n: Ast): boolean {
  switch (n.t) {
    case 'atom': return false;
    case 'assert': return true;
    case 'seq': return n.items.every(nullable);
    case 'alt': return n.alts.some(nullable);
    case 'repeat': return n.min === 0 || nullable(n.node);
  }
}

/** Instructions the node compiles to (a float: may exceed any cap). */
function programSize(n: Ast): number {
  switch (n.t) {
    case 'atom': case 'assert': return 1;
    case 'seq': return n.items.reduce((s, x) => s + programSize(x), 0);
    case 'alt': return n.alts.reduce((s, x) => s + programSize(x), 0) + 2 * (n.alts.length - 1);
    case 'repeat': {
      const body = programSize(n.node);
      // An optional round of a body that can match empty is compiled twice (see compileRound).
      const round = nullable(n.node) ? 2 * body + 1 : body;
      return n.min * body + (n.max === Infinity ? round + 2 : (n.max - n.min) * (round + 1));
    }
  }
}

// ---------------------------------------------------------------- program

const CHAR = 0;
const SPLIT = 1;
const JMP = 2;
const ASSERT = 3;
const MATCH = 4;
const FAIL = 5;

class ProgramBuilder {
  readonly op: number[] = [];
  readonly x: number[] = [];
  readonly y: number[] = [];
  readonly testerIds = new Map<string, number>();

  emit(op: number, x = 0, y = 0): number {
    this.op.push(op);
    this.x.push(x);
    this.y.push(y);
    return this.op.length - 1;
  }

  tester(src: string): number {
    let id = this.testerIds.get(src);
    if (id === undefined) this.testerIds.set(src, (id = this.testerIds.size));
    return id;
  }

  compile(n: Ast): void {
    switch (n.t) {
      case 'atom': {
        const pc = this.emit(CHAR, this.tester(n.src));
        this.y[pc] = pc + 1;
        return;
      }
      case 'assert':
        this.emit(ASSERT, n.kind);
        return;
      case 'seq':
        for (const item of n.items) this.compile(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        n.alts.forEach((alt, k) => {
          if (k === n.alts.length - 1) {
            this.compile(alt);
            return;
          }
          const split = this.emit(SPLIT);
          this.x[split] = split + 1;
          this.compile(alt);
          jumps.push(this.emit(JMP));
          this.y[split] = this.op.length;
        });
        for (const j of jumps) this.x[j] = this.op.length;
        return;
      }
      case 'repeat': {
        for (let k = 0; k < n.min; k++) this.compile(n.node);
        if (n.max === Infinity) {
          const split = this.emit(SPLIT);
          this.compileRound(n.node);
          this.emit(JMP, split);
          this.prefer(split, split + 1, this.op.length, n.greedy);
          return;
        }
        const splits: number[] = [];
        for (let k = n.min; k < n.max; k++) {
          splits.push(this.emit(SPLIT));
          this.compileRound(n.node);
        }
        for (const s of splits) this.prefer(s, s + 1, this.op.length, n.greedy);
        return;
      }
    }
  }

  /**
   * One optional round of a repetition. JS fails a round past the minimum that consumed nothing
   * (and backtracks into the round's other choices). A body that can match empty is therefore
   * compiled twice, as a product with one bit "consumed yet": the first copy's character steps
   * continue in the same place of the second copy, its end fails; the second copy's end goes on.
   * Priorities are unchanged (the copies have the same shape), and nested rounds compose.
   */
  private compileRound(body: Ast): void {
    if (!nullable(body)) {
      this.compile(body);
      return;
    }
    const fresh = this.op.length;
    this.compile(body);
    const fail = this.emit(FAIL);
    const offset = this.op.length - fresh;
    this.compile(body);
    for (let pc = fresh; pc < fail; pc++) if (this.op[pc] === CHAR) this.y[pc] = this.y[pc]! + offset;
  }

  /** A split entering `body` or leaving to `out`, in the quantifier's order of preference. */
  private prefer(split: number, body: number, out: number, greedy: boolean): void {
    this.x[split] = greedy ? body : out;
    this.y[split] = greedy ? out : body;
  }
}

const LINE_TERMINATORS = new Set([0x0a, 0x0d, 0x2028, 0x2029]);

/** A one-character test, exact for V8's semantics; ASCII precomputed, the rest memoized. */
class CharTester {
  readonly ascii = new Uint8Array(128);
  readonly #re: RegExp;
  readonly #unicode: boolean;
  readonly #memo = new Map<number, boolean>();

  /** ASCII characters matched only through LinearRegexOptions.alsoMatches. */
  readonly extra: readonly number[];

  constructor(src: string, flags: string, unicode: boolean, alsoMatches?: LinearRegexOptions['alsoMatches']) {
    this.#re = new RegExp(`^(?:${src})$`, flags);
    this.#unicode = unicode;
    for (let c = 0; c < 128; c++) this.ascii[c] = this.#re.test(String.fromCharCode(c)) ? 1 : 0;
    const extra: number[] = [];
    for (const c of alsoMatches?.(src, (cp) => this.test(cp)) ?? []) {
      if (c >= 0 && c < 128 && this.ascii[c] === 0) {
        this.ascii[c] = 1;
        extra.push(c);
      }
    }
    this.extra = extra;
  }

  test(c: number): boolean {
    if (c < 128) return this.ascii[c] === 1;
    let hit = this.#memo.get(c);
    if (hit === undefined) {
      hit = this.#re.test(this.#unicode ? String.fromCodePoint(c) : String.fromCharCode(c));
      if (this.#memo.size >= 4096) this.#memo.clear();
      this.#memo.set(c, hit);
    }
    return hit;
  }
}

/** A compiled pattern. */
export class LinearRegex {
  /** Instructions in the compiled program. */
  readonly size: number;
  readonly #op: Uint8Array;
  readonly #x: Int32Array;
  readonly #y: Int32Array;
  readonly #testers: CharTester[];
  readonly #word: CharTester;
  readonly #unicode: boolean;
  readonly #multiline: boolean;
  /** Finds the next position where a match can start (null: the pattern can match empty). */
  readonly #first: RegExp | null;
  // Scratch: two thread lists (pc, start), a visited mark per pc, the closure stack.
  #cpc: Int32Array;
  #cst: Int32Array;
  #npc: Int32Array;
  #nst: Int32Array;
  readonly #mark: Int32Array;
  readonly #stack: Int32Array;
  #gen = 0;

  /** Throws PatternRefusal; `flags` must already be accepted by `new RegExp(pattern, flags)`. */
  constructor(pattern: string, flags: string, options: LinearRegexOptions = {}) {
    const unicode = flags.includes('u');
    const ast = parsePattern(pattern, unicode);
    const limit = options.maxProgramSize ?? MAX_PROGRAM_SIZE;
    const estimate = programSize(ast) + 1;
    if (!(estimate <= limit)) {
      throw new PatternRefusal(`it compiles to ${Number.isFinite(estimate) && estimate < 1e9 ? Math.ceil(estimate) : 'too many'} instructions, more than the limit of ${limit} (bounded repeats are expanded: make their counts smaller, or nest them less)`);
    }
    const b = new ProgramBuilder();
    b.compile(ast);
    b.emit(MATCH);
    this.size = b.op.length;
    this.#op = Uint8Array.from(b.op);
    this.#x = Int32Array.from(b.x);
    this.#y = Int32Array.from(b.y);
    const testerFlags = [...flags].filter((f) => f === 'i' || f === 's' || f === 'u').join('');
    const sources = [...b.testerIds.keys()];
    this.#testers = sources.map((src) => new CharTester(src, testerFlags, unicode, options.alsoMatches));
    this.#word = new CharTester('\\w', testerFlags, unicode);
    this.#unicode = unicode;
    this.#multiline = flags.includes('m');
    this.#cpc = new Int32Array(this.size);
    this.#cst = new Int32Array(this.size);
    this.#npc = new Int32Array(this.size);
    this.#nst = new Int32Array(this.size);
    this.#mark = new Int32Array(this.size);
    this.#stack = new Int32Array(2 * this.size + 2);
    this.#first = this.#firstScanner(sources.map((src, k) => withExtra(src, this.#testers[k]!.extra)), testerFlags);
  }

  /**
   * The atoms a match can begin with, as one alternation of single-character atoms (constant
   * time per position for V8): positions where none matches are skipped while no thread is live.
   */
  #firstScanner(sources: readonly string[], flags: string): RegExp | null {
    const seen = new Set<number>();
    const firsts = new Set<string>();
    const stack = [0];
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (seen.has(pc)) continue;
      seen.add(pc);
      const op = this.#op[pc];
      if (op === MATCH) return null;
      if (op === CHAR) firsts.add(sources[this.#x[pc]!]!);
      else if (op === JMP) stack.push(this.#x[pc]!);
      else if (op === SPLIT) stack.push(this.#x[pc]!, this.#y[pc]!);
      else if (op === ASSERT) stack.push(pc + 1);
    }
    if (firsts.size === 0 || firsts.size > 64) return null;
    return new RegExp([...firsts].join('|'), `${flags}g`);
  }

  /**
   * Every match of a global scan, as [start, end) pairs flattened into one array; matches may be
   * empty. Throws MatchBudgetExceeded past `options.budget` steps.
   */
  scan(text: string, options: ScanOptions = {}): number[] {
    this.steps = 0;
    const maxLength = options.maxLength ?? Infinity;
    const budget = options.budget ?? Infinity;
    const out: number[] = [];
    const n = text.length;
    let steps = 0;
    let from = 0;
    while (from <= n) {
      const found = this.#search(text, from, maxLength, budget - steps);
      steps += this.#lastSteps;
      this.steps = steps;
      if (found < 0) break;
      const start = this.#matchStart;
      const end = this.#matchEnd;
      out.push(start, end);
      if (end > start) from = end;
      else if (start >= n) break;
      else from = start + (this.#unicode && isPairAt(text, start) ? 2 : 1);
    }
    return out;
  }

  /** Thread steps the last `scan` took (what its budget counts). */
  steps = 0;
  #lastSteps = 0;
  #matchStart = -1;
  #matchEnd = -1;

  /** One leftmost-first search from `from`; returns the match start or -1. */
  #search(text: string, from: number, maxLength: number, budget: number): number {
    const op = this.#op;
    const x = this.#x;
    const testers = this.#testers;
    const n = text.length;
    const unicode = this.#unicode;
    let steps = 0;
    let matchStart = -1;
    let matchEnd = -1;
    let ccount = 0;
    let p = from;
    if (this.#gen > 0x3fffffff - n - 2) {
      this.#mark.fill(0);
      this.#gen = 0;
    }
    let gen = ++this.#gen;
    for (;;) {
      if (matchStart < 0) {
        if (ccount === 0 && this.#first !== null) {
          this.#first.lastIndex = p;
          const next = p < n ? this.#first.exec(text) : null;
          if (next === null) break;
          if (next.index !== p) {
            p = next.index;
            gen = ++this.#gen;
          }
        }
        ccount = this.#addThread(text, this.#cpc, this.#cst, ccount, 0, p, p, gen);
        if (ccount === 0) {
          // Nothing live and no match yet: the scan moves on one character.
          if (p >= n) break;
          p += unicode && isPairAt(text, p) ? 2 : 1;
          gen = ++this.#gen;
          continue;
        }
      }
      if (ccount === 0) break;
      let c = -1;
      let w = 1;
      if (p < n) {
        c = text.charCodeAt(p);
        if (unicode && c >= 0xd800 && c <= 0xdbff && p + 1 < n) {
          const t = text.charCodeAt(p + 1);
          if (t >= 0xdc00 && t <= 0xdfff) {
            c = (c - 0xd800) * 0x400 + (t - 0xdc00) + 0x10000;
            w = 2;
          }
        }
      }
      const cpc = this.#cpc;
      const cst = this.#cst;
      const npc = this.#npc;
      const nst = this.#nst;
      const ngen = ++this.#gen;
      let ncount = 0;
      for (let k = 0; k < ccount; k++) {
        const pc = cpc[k]!;
        if (op[pc] === MATCH) {
          // The best match so far; every lower-priority thread is dropped.
          matchStart = cst[k]!;
          matchEnd = p;
          break;
        }
        if (c >= 0 && (c < 128 ? testers[x[pc]!]!.ascii[c] === 1 : testers[x[pc]!]!.test(c))) {
          ncount = this.#addThread(text, npc, nst, ncount, this.#y[pc]!, p + w, cst[k]!, ngen);
        }
      }
      steps += ccount + this.#closureSteps;
      this.#closureSteps = 0;
      if (steps > budget) throw new MatchBudgetExceeded();
      this.#cpc = npc;
      this.#cst = nst;
      this.#npc = cpc;
      this.#nst = cst;
      ccount = ncount;
      gen = ngen;
      if (p >= n) break;
      p += w;
      // Threads still live all started at or before the match: past maxLength they could only
      // make it longer than any match is reported.
      if (matchStart >= 0 && p - matchStart > maxLength) break;
    }
    this.#lastSteps = steps;
    this.#matchStart = matchStart;
    this.#matchEnd = matchEnd;
    return matchStart;
  }

  #closureSteps = 0;

  /** Adds the ε-closure of `pc0` at position `pos`, in priority order, to a thread list. */
  #addThread(text: string, lpc: Int32Array, lst: Int32Array, count: number, pc0: number, pos: number, start: number, gen: number): number {
    const op = this.#op;
    const x = this.#x;
    const y = this.#y;
    const mark = this.#mark;
    const stack = this.#stack;
    let sp = 0;
    stack[sp++] = pc0;
    let visited = 0;
    while (sp > 0) {
      const pc = stack[--sp]!;
      if (mark[pc] === gen) continue;
      mark[pc] = gen;
      visited++;
      switch (op[pc]) {
        case JMP:
          stack[sp++] = x[pc]!;
          break;
        case SPLIT:
          stack[sp++] = y[pc]!;
          stack[sp++] = x[pc]!;
          break;
        case ASSERT:
          if (this.#holds(x[pc]!, text, pos)) stack[sp++] = pc + 1;
          break;
        case FAIL:
          break;
        default:
          lpc[count] = pc;
          lst[count] = start;
          count++;
      }
    }
    this.#closureSteps += visited;
    return count;
  }

  #holds(kind: number, text: string, pos: number): boolean {
    const n = text.length;
    switch (kind) {
      case BOL:
        return pos === 0 || (this.#multiline && LINE_TERMINATORS.has(text.charCodeAt(pos - 1)));
      case EOL:
        return pos === n || (this.#multiline && LINE_TERMINATORS.has(text.charCodeAt(pos)));
      default: {
        const before = pos > 0 && this.#word.test(text.charCodeAt(pos - 1));
        const after = pos < n && this.#word.test(text.charCodeAt(pos));
        return (before !== after) === (kind === WORD_BOUNDARY);
      }
    }
  }
}

/** An atom's source that also matches the ASCII characters `extra`. */
function withExtra(src: string, extra: readonly number[]): string {
  if (extra.length === 0) return src;
  return `${src}|[${extra.map((c) => `\\x${c.toString(16).padStart(2, '0')}`).join('')}]`;
}

function isPairAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff || i + 1 >= text.length) return false;
  const t = text.charCodeAt(i + 1);
  return t >= 0xdc00 && t <= 0xdfff;
}
