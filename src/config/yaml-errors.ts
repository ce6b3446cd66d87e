/**
 * YAML syntax errors worded for the person who made them. The parser notices an unclosed `[`,
 * `{` or quote only where it gives up — a line or more later — so such a mistake is placed at
 * the bracket or quote that was never closed; every problem comes with the lines around it and
 * a caret under the place, whole (not cut after the first line of the parser's message).
 */
import { CST, Parser, type Document, type YAMLError } from 'yaml';
import { scrubSecrets } from '../core/scrub-secrets.ts';

/** The snippet shows at most this many lines from the opening bracket to where the parser gave up. */
const SPAN_LINES = 3;

interface Opener {
  readonly char: '[' | '{' | "'" | '"';
  readonly offset: number;
}

/** Flow collections and quoted scalars that end without their closing character, in file order. */
function unclosedOpeners(text: string): Opener[] {
  const found: Opener[] = [];
  const note = (token: CST.Token | undefined): void => {
    if (token?.type === 'flow-collection') {
      const closed = token.end.some((t) => t.type === 'flow-map-end' || t.type === 'flow-seq-end');
      if (!closed && (token.start.source === '[' || token.start.source === '{')) found.push({ char: token.start.source, offset: token.offset });
    } else if (token?.type === 'single-quoted-scalar' || token?.type === 'double-quoted-scalar') {
      const quote = token.type === 'single-quoted-scalar' ? "'" : '"';
      const body = token.source.trimEnd();
      if (body.length < 2 || !body.endsWith(quote)) found.push({ char: quote, offset: token.offset });
    }
  };
  for (const token of new Parser().parse(text)) {
    if (token.type !== 'document') continue;
    CST.visit(token, (item) => {
      note(item.key ?? undefined);
      note(item.value);
    });
  }
  return found.sort((a, b) => a.offset - b.offset);
}

/** The opening character the parser's message says was not closed, if it says so. */
function unclosedCharOf(message: string): Opener['char'] | null {
  if (/end with a \]/.test(message)) return '[';
  if (/end with a \}/.test(message)) return '{';
  const quote = /Missing closing (["'])quote/.exec(message);
  return quote ? (quote[1] as '"' | "'") : null;
}

/** Lines `from`..`to` (1-based) with their numbers, a caret under `caretLine`:`caretCol`; long spans keep their ends. */
function snippet(lines: readonly string[], from: number, to: number, caretLine: number, caretCol: number): string[] {
  const numbers = to - from + 1 > SPAN_LINES ? [from, null, to] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const gutter = String(to).length;
  const out: string[] = [];
  for (const n of numbers) {
    if (n === null) {
      out.push(`      ${' '.repeat(gutter)} | …`);
      continue;
    }
    // Tabs as one space each, so the caret lines up; anything shaped like a key is not echoed.
    out.push(`      ${String(n).padStart(gutter)} | ${scrubSecrets((lines[n - 1] ?? '').replace(/\t/g, ' '), [])}`.trimEnd());
    if (n === caretLine) out.push(`      ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, caretCol - 1))}^`);
  }
  return out;
}

/**
 * The problems of a YAML text that did not parse, one `  - line L, column C: …` entry each with
 * its snippet, ready for an AIGOV_E_*_INVALID message.
 */
export function describeYamlErrors(text: string, errors: readonly YAMLError[]): string {
  const lines = text.split(/\r?\n/);
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  /** 1-based line and column of a UTF-16 offset. */
  const linePos = (offset: number): { line: number; col: number } => {
    let line = starts.length - 1;
    while (line > 0 && starts[line]! > offset) line--;
    return { line: line + 1, col: offset - starts[line]! + 1 };
  };
  const openers = unclosedOpeners(text);
  const used = new Set<number>();
  const problems: string[] = [];
  for (const error of errors) {
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    const at = error.pos[0];
    const seen = linePos(at);
    const char = unclosedCharOf(message);
    const opener = char === null ? undefined : openers.filter((o) => o.char === char && o.offset < at && !used.has(o.offset)).at(-1);
    if (opener !== undefined) {
      used.add(opener.offset);
      const open = linePos(opener.offset);
      const closing = char === '[' ? ']' : char === '{' ? '}' : char;
      problems.push(
        `  - line ${open.line}, column ${open.col}: this ${char} is never closed (the YAML parser found no ${closing} and gave up at line ${seen.line}, column ${seen.col}: ${message})`,
        ...snippet(lines, open.line, Math.max(open.line, seen.line), open.line, open.col),
      );
    } else {
      problems.push(`  - line ${seen.line}, column ${seen.col}: ${message}`, ...snippet(lines, Math.max(1, seen.line - 1), seen.line, seen.line, seen.col));
    }
  }
  return problems.join('\n');
}

/** A key path as problems name it: `rules[4].match.detectors[0]` → ['rules', 4, 'match', 'detectors', 0]. */
function pathSegments(keyPath: string): (string | number)[] {
  const segments: (string | number)[] = [];
  for (const [, key, index] of keyPath.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) segments.push(index !== undefined ? Number(index) : key!);
  return segments;
}

/**
 * Problem lines (`  - KEY.PATH: message`, maybe after `rule "id", `) with the line of the file
 * that holds the key — or, for a key that is missing, of the nearest enclosing one that is there:
 * `  - line 12, rules[4].action: …`. Lines whose path is not in the file are left as they are.
 */
export function withLineNumbers(problems: string, doc: Document, text: string): string {
  const lineAt = (offset: number): number => {
    let line = 1;
    for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
    return line;
  };
  return problems.replace(/^( {2}- )((?:(?:rule|budget) "(?:[^"\\]|\\.)*", )?)([\w.[\]-]+)(:)/gm, (whole, lead: string, rule: string, keyPath: string, colon: string) => {
    const segments = pathSegments(keyPath);
    for (let n = segments.length; n > 0; n--) {
      const node = doc.getIn(segments.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return `${lead}line ${lineAt(node.range[0])}, ${rule}${keyPath}${colon}`;
    }
    return whole;
  });
}
