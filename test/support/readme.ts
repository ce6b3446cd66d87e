/**
 * README.md read as a newcomer reads it: a section by its heading, the commands in its ```bash
 * blocks (`./bin/run.js` and `aigov` alike, comments dropped, optional `[…]` parts set aside) and
 * the inline `code` of its text. Tests run these commands as written, so a README edit that
 * breaks a step breaks the test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const README_PATH = join(import.meta.dirname, '..', '..', 'README.md');

/** A command of a code block: its words (the program first) and the optional `[…]` parts, each as words. */
export interface ReadmeCommand {
  readonly line: string;
  readonly words: readonly string[];
  readonly optional: readonly (readonly string[])[];
}

export interface ReadmeSection {
  readonly heading: string;
  /** The section's text, code blocks included. */
  readonly text: string;
  /** Its text without code blocks (what a reader reads as prose). */
  readonly prose: string;
  readonly commands: readonly ReadmeCommand[];
  /** The inline `code` of the prose, in order. */
  readonly inline: readonly string[];
}

/** Shell words of a line: whitespace-separated, with '…' and "…" quoting (no escapes inside single quotes). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      assert.ok(end > i, `unterminated quote in README command: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** A command line without its `# comment` and `[optional]` parts (outside quotes), and those parts. */
function parseCommand(line: string): ReadmeCommand {
  let required = '';
  const optional: string[][] = [];
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      required += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      required += c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      break;
    } else if (c === '[' && (i === 0 || /\s/.test(line[i - 1]!))) {
      const end = line.indexOf(']', i);
      assert.ok(end > i, `unclosed [ in README command: ${line}`);
      optional.push(shellWords(line.slice(i + 1, end)));
      i = end;
    } else {
      required += c;
    }
  }
  return { line, words: shellWords(required), optional };
}

const README = (): string => readFileSync(README_PATH, 'utf8');

/** The section whose `## ` heading starts with `heading`, up to the next `## ` heading. */
export function readmeSection(heading: string): ReadmeSection {
  const text = README();
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`## ${heading}`));
  assert.ok(start >= 0, `README has no section "## ${heading}"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return sectionOf(lines[start]!.slice(3), lines.slice(start + 1, end === -1 ? undefined : end));
}

/** What README says before its first `## ` heading. */
export function readmeOpening(): ReadmeSection {
  const lines = README().split('\n');
  const end = lines.findIndex((l) => l.startsWith('## '));
  return sectionOf('(opening)', lines.slice(0, end));
}

function sectionOf(heading: string, lines: string[]): ReadmeSection {
  const commands: ReadmeCommand[] = [];
  const prose: string[] = [];
  let inBlock = false;
  let shell = false;
  for (const line of lines) {
    const fence = /^\s*```(\w*)/.exec(line);
    if (fence !== null) {
      inBlock = !inBlock;
      shell = inBlock && (fence[1] === 'bash' || fence[1] === 'sh');
      continue;
    }
    if (!inBlock) prose.push(line);
    else if (shell && line.trim() !== '' && !line.trim().startsWith('#')) commands.push(parseCommand(line.trim()));
  }
  const proseText = prose.join('\n');
  return { heading, text: lines.join('\n'), prose: proseText, commands, inline: [...proseText.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!) };
}

/** `aigov …` and `./bin/run.js …` are the same program from a checkout. */
function aigovArgs(words: readonly string[]): string[] | null {
  const [program, ...rest] = words;
  return program === 'aigov' || program === './bin/run.js' ? rest : null;
}

/**
 * The aigov command of the section's code blocks whose arguments begin with `start` (exactly one
 * must): its arguments after the program, and its optional parts.
 */
export function aigovCommand(section: ReadmeSection, start: string): { args: string[]; optional: (flag: string) => string[]; line: string } {
  const prefix = shellWords(start);
  const found = section.commands.filter((c) => {
    const args = aigovArgs(c.words);
    return args !== null && prefix.every((w, i) => args[i] === w);
  });
  assert.equal(found.length, 1, `README "${section.heading}" has ${found.length} commands starting "aigov ${start}": ${found.map((c) => c.line).join(' | ')}`);
  const command = found[0]!;
  return {
    args: aigovArgs(command.words)!,
    line: command.line,
    optional: (flag) => {
      const part = command.optional.find((o) => o[0] === flag);
      assert.ok(part, `README's "${command.line}" has no optional ${flag}`);
      return [...part];
    },
  };
}

/** The inline `aigov …` of the section's prose that begins with `start` (the first one). */
export function inlineAigov(section: ReadmeSection, start: string): string[] {
  const found = section.inline.find((code) => code.startsWith(`aigov ${start}`));
  assert.ok(found !== undefined, `README "${section.heading}" does not mention \`aigov ${start}…\``);
  return shellWords(found).slice(1);
}
