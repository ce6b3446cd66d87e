/**
 * Custom regex detectors from a policy file, matched in linear time.
 *
 * A pattern is checked by V8's parser (syntax, flags), then compiled by ./linear-regex.ts into a
 * program run as a Pike VM: no input can make it backtrack, whatever the pattern's nesting — so
 * the old static "catastrophic backtracking" heuristics are gone, and with them their false
 * refusals. Refused at load time, with a reason that never quotes the pattern: backreferences,
 * lookarounds, inline modifiers, and patterns whose program (bounded repeats expanded) exceeds
 * the size limit.
 *
 * Each `detect` call has a step budget (base + per character of text); a scan past it throws
 * PatternBudgetError, which the policy turns into a refusal naming the rule (fail closed).
 */
import type { Detection, Detector, EntityType } from './types.ts';
import { clamp01, CONTEXT_WINDOW, hasContext } from './detector-kit.ts';
import { LinearRegex, MatchBudgetExceeded, PatternRefusal } from './linear-regex.ts';
import { literalPattern } from './literal-pattern.ts';
import { asciiPreimages } from './normalize.ts';

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
  /** Work allowed per `detect` call; default DEFAULT_REGEX_BUDGET. */
  budget?: RegexBudget;
  /** Largest compiled program, in instructions; default MAX_PROGRAM_SIZE. */
  maxProgramSize?: number;
}

/** Thread steps a scan may take: `base` + `perChar` × the text's length. */
export interface RegexBudget {
  readonly base: number;
  readonly perChar: number;
}

/**
 * About 20-40 ms of one core at worst for a short text, and 256 live threads per character on
 * average for a long one (ordinary patterns have a handful).
 */
export const DEFAULT_REGEX_BUDGET: RegexBudget = Object.freeze({ base: 4_000_000, perChar: 256 });

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

/** A scan of a custom pattern went past its step budget. Names the detector, never the text. */
export class PatternBudgetError extends Error {
  readonly detectorId: string;
  constructor(detectorId: string) {
    super(`custom detector "${detectorId}" went past its matching budget`);
    this.name = 'PatternBudgetError';
    this.detectorId = detectorId;
  }
}

const ALLOWED_FLAGS = /^[imsu]*$/;
export const MAX_CUSTOM_LENGTH = 65536;

/** The compiled program's size, in instructions (what one character of text can cost). */
export function regexProgramSize(pattern: string, flags = ''): number {
  try {
    return new LinearRegex(pattern, flags).size;
  } catch {
    return 0;
  }
}

// eslint-disable-next-line no-control-regex
const ASCII_ATOM = /^[\u0000-\u007f]*$/;
/** Atoms that match what is NOT named in them: `[^…]`, `.`, `\D`, `\W`, `\S`, `\P{…}` (also inside a class). */
const NEGATED_ATOM = /^\[\^|^\.$|\\[DWSP]/;

/**
 * The text a pattern runs on is normalized (./normalize.ts: Cyrillic а is `a`, é is `e`, ٣ is
 * `3`): an atom naming such characters (`пароль`, `[а-я]`, `é`, `\p{Script=Greek}`) also matches
 * the ASCII they are normalized to. An atom that matches by exclusion is left as written — the
 * ASCII fold of a character it admits may well be one it excludes (`[^a-z]` admits Cyrillic а,
 * whose fold is `a`) — and so is a pure-ASCII atom (`\d`, `[A-Z]`): what it names is ASCII already.
 */
function foldedMatches(atom: string, matches: (cp: number) => boolean): readonly number[] {
  if (NEGATED_ATOM.test(atom) || (ASCII_ATOM.test(atom) && !/\\[pux]/.test(atom))) return [];
  const out = new Set<number>();
  for (const [cp, ascii] of asciiPreimages()) if (!out.has(ascii) && matches(cp)) out.add(ascii);
  return [...out];
}

/**
 * Builds a detector from a policy's custom pattern. Throws RegexDetectorError (naming the
 * detector and the reason, never the pattern) for an invalid or refused pattern.
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
  let re: LinearRegex;
  try {
    re = new LinearRegex(spec.pattern, flags, { alsoMatches: foldedMatches, ...(spec.maxProgramSize === undefined ? {} : { maxProgramSize: spec.maxProgramSize }) });
  } catch (err) {
    if (err instanceof PatternRefusal) throw new RegexDetectorError(id, `pattern refused: ${err.message}`);
    throw new RegexDetectorError(id, 'pattern refused: it could not be analysed');
  }
  const words = (spec.contextWords ?? []).map((w) => w.toLowerCase()).filter((w) => w !== '');
  // Non-ASCII context words are found as the text is normalized (see literalPattern).
  const asciiWords = words.filter((w) => ASCII_ATOM.test(w));
  const otherWords = words.filter((w) => !ASCII_ATOM.test(w)).map((w) => literalPattern(w.normalize('NFKC')).source).filter((p) => p !== '');
  const otherContext = otherWords.length === 0 ? null : new RegExp(otherWords.join('|'), 'iu');
  const inContext = (text: string, start: number): boolean =>
    hasContext(text, start, asciiWords) || (otherContext !== null && otherContext.test(text.slice(Math.max(0, start - CONTEXT_WINDOW), start)));
  const type: EntityType = spec.type;
  const maxLength = spec.maxLength;
  const budget = spec.budget ?? DEFAULT_REGEX_BUDGET;
  return {
    id,
    type,
    maxLength,
    lookbehind: words.length > 0 ? CONTEXT_WINDOW : 0,
    lookahead: 0,
    detect(text: string): Detection[] {
      let spans: number[];
      try {
        spans = re.scan(text, { maxLength, budget: budget.base + budget.perChar * text.length });
      } catch (err) {
        if (err instanceof MatchBudgetExceeded) throw new PatternBudgetError(id);
        throw err;
      }
      const out: Detection[] = [];
      for (let k = 0; k < spans.length; k += 2) {
        const start = spans[k]!;
        // Empty matches are no entity; a longer match than maxLength is reported on its first
        // maxLength units (fail closed rather than drop it).
        if (spans[k + 1]! === start) continue;
        const end = Math.min(spans[k + 1]!, start + maxLength);
        const c = inContext(text, start) ? confidence + 0.15 : confidence;
        out.push({ type, start, end, confidence: clamp01(c), detector: id });
      }
      return out;
    },
  };
}
