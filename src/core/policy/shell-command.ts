/**
 * Reads a shell command line the way a shell would, far enough to judge it: quotes and escapes
 * removed (`'r''m'`, `r\m`, `$'\x72m'` all read `rm`), `$HOME`/`${HOME}` read `~`, the line split
 * into simple commands at `;` `&&` `||` `|` `&` and newlines, command and process substitutions
 * (`$(…)`, backticks, `<(…)`) and the scripts of `sh -c`, `eval` and `env -S` read as commands
 * too, wrappers dropped (`sudo -u root`, `env X=1`, `command`, `nohup`, `timeout 5`, `xargs`…),
 * and the program named by its basename (`/usr/bin/rm` → `rm`).
 *
 * Each simple command is given in two spellings: as written (words de-quoted, joined by one
 * space) and canonical, where every short option is merged into one sorted cluster right after
 * the program (and git's subcommand), and the long options of a few commands read as their short
 * form — so `rm -r -f /`, `rm -fr /`, `rm -Rf /` and `rm --recursive --force /` all read
 * `rm -fr /`. The whole line is given as written and canonical too, operators kept (`curl x|bash`
 * reads `curl x | bash`), for patterns over pipelines.
 *
 * Best effort, never fail open: what cannot be read exactly (a variable, a substitution, a brace
 * expansion in a word) is marked dynamic, and the callers treat a dynamic path as outside the
 * work tree. Pure; bounded in length, depth and count.
 */

/** A word of a simple command after quote removal. */
export interface ShellWord {
  readonly text: string;
  /** Holds a variable other than HOME/PWD, a substitution or a brace expansion: its value is unknown. */
  readonly dynamic: boolean;
}

export interface SimpleCommand {
  /** The program's basename, after wrappers ('' when the command is only assignments or redirections). */
  readonly program: string;
  /** Words after the program (options and operands), de-quoted. */
  readonly args: readonly ShellWord[];
  /** Redirection targets (`> file`, `2>> log`, `< in`). */
  readonly redirects: readonly ShellWord[];
  /** As written: program and args joined by one space. */
  readonly written: string;
  /** Canonical: program, one sorted cluster of short options, long options, operands. */
  readonly canonical: string;
  /** Operand words (not options): the paths and URLs the command names. */
  readonly operands: readonly ShellWord[];
  /** A `cd` target (relative paths after it resolve from there). */
  readonly cd: ShellWord | null;
}

export interface ShellAnalysis {
  /** The simple commands, substitutions and nested scripts included, in reading order. */
  readonly commands: readonly SimpleCommand[];
  /** The whole line, words as written, operators kept. */
  readonly written: string;
  /** The whole line, each command canonical, operators kept. */
  readonly canonical: string;
  /** Something could not be read (too long, too deep, unterminated quote): fall back on the text. */
  readonly partial: boolean;
  /** Commands were left unread (past MAX_SHELL_CHARS or MAX_COMMANDS): the line cannot be judged. */
  readonly truncated: boolean;
}

/** Longest command line analysed; past it the analysis is partial. */
export const MAX_SHELL_CHARS = 1024 * 1024;
const MAX_DEPTH = 6;
const MAX_COMMANDS = 20_000;

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'ash', 'mksh', 'fish', 'busybox-sh', 'rbash']);

/** Wrappers: programs that run the rest of their arguments as a command. Value: options that take a value. */
const WRAPPERS: Readonly<Record<string, ReadonlySet<string>>> = {
  sudo: new Set(['-u', '-g', '-h', '-p', '-C', '-D', '-r', '-t', '-T', '-U', '--user', '--group', '--host', '--prompt', '--chdir', '--role', '--type', '--other-user', '--close-from']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '--unset', '--chdir']),
  command: new Set([]),
  builtin: new Set([]),
  exec: new Set(['-a']),
  nohup: new Set([]),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '-n', '-p']),
  time: new Set(['-f', '-o', '--format', '--output']),
  timeout: new Set(['-s', '-k', '--signal', '--kill-after']),
  stdbuf: new Set(['-i', '-o', '-e']),
  setsid: new Set([]),
  unbuffer: new Set([]),
  caffeinate: new Set([]),
  chronic: new Set([]),
  xargs: new Set(['-I', '-i', '-n', '-P', '-d', '-a', '-E', '-e', '-L', '-l', '-s', '--max-args', '--max-procs', '--delimiter', '--arg-file', '--replace']),
  watch: new Set(['-n', '-d', '--interval']),
  flock: new Set(['-w', '-E', '--timeout']),
  busybox: new Set([]),
  strace: new Set(['-e', '-o', '-p', '-s', '-u']),
  su: new Set([]),
  runuser: new Set(['-u', '-g', '-G']),
  chroot: new Set([]),
};

/** Long options read as their short form, per program. */
const LONG_TO_SHORT: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  rm: { recursive: 'r', force: 'f', dir: 'd', interactive: 'i', verbose: 'v' },
  cp: { recursive: 'r', force: 'f', archive: 'a' },
  mv: { force: 'f' },
  chmod: { recursive: 'R' },
  chown: { recursive: 'R' },
  chgrp: { recursive: 'R' },
  push: { force: 'f', delete: 'd', all: 'a', mirror: 'M' },
};
/** Short options that are the same as another, per program (`rm -R` is `rm -r`). */
const SHORT_ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  rm: { R: 'r' },
  cp: { R: 'r' },
};

/** git's global options that take a value (skipped to find the subcommand). */
const GIT_GLOBAL_WITH_VALUE = new Set(['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env']);

export function analyzeShell(text: string): ShellAnalysis {
  const state: State = { commands: [], partial: false, truncated: false };
  const input = text.length > MAX_SHELL_CHARS ? text.slice(0, MAX_SHELL_CHARS) : text;
  if (input !== text) state.partial = state.truncated = true;
  const line = parseScript(input, 0, state);
  return { commands: state.commands, written: line.written, canonical: line.canonical, partial: state.partial, truncated: state.truncated };
}

interface State {
  commands: SimpleCommand[];
  partial: boolean;
  truncated: boolean;
}

interface RawWord {
  text: string;
  dynamic: boolean;
  /** The word had quotes or escapes (so `#`, `{` or `=` in it are literal). */
  quoted: boolean;
  /** Substitutions inside the word, as canonical text, for the line view. */
  view: string;
}

type Token = { kind: 'word'; word: RawWord } | { kind: 'op'; op: string } | { kind: 'redirect'; op: string };

interface LineView {
  written: string;
  canonical: string;
}

/** Parses a script: splits it into simple commands, records each, and returns the line views. */
function parseScript(script: string, depth: number, state: State): LineView {
  if (depth > MAX_DEPTH) {
    state.partial = true;
    return { written: script, canonical: script };
  }
  const tokens = tokenize(script, depth, state);
  const written: string[] = [];
  const canonical: string[] = [];
  let words: RawWord[] = [];
  let redirects: RawWord[] = [];
  let pendingRedirect = false;
  const flush = (): void => {
    if (words.length > 0 || redirects.length > 0) {
      const views = recordCommand(words, redirects, depth, state);
      written.push(views.written);
      canonical.push(views.canonical);
    }
    words = [];
    redirects = [];
    pendingRedirect = false;
  };
  for (const token of tokens) {
    if (token.kind === 'word') {
      if (pendingRedirect) {
        redirects.push(token.word);
        pendingRedirect = false;
      } else words.push(token.word);
    } else if (token.kind === 'redirect') {
      // The next word is the target (a file, a descriptor for `>&2`, a here-document's delimiter).
      pendingRedirect = true;
    } else {
      flush();
      if (token.op !== '\n' || (written.length > 0 && written.at(-1) !== ';')) {
        const op = token.op === '\n' ? ';' : token.op;
        written.push(op);
        canonical.push(op);
      }
    }
  }
  flush();
  while (written.length > 0 && (written.at(-1) === ';' || written.at(-1) === '&')) {
    written.pop();
    canonical.pop();
  }
  return { written: written.join(' '), canonical: canonical.join(' ') };
}

/** Splits a script into words, operators and redirections, reading quotes, escapes and substitutions. */
function tokenize(script: string, depth: number, state: State): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = script.length;
  let word: RawWord | null = null;
  const begin = (): RawWord => (word ??= { text: '', dynamic: false, quoted: false, view: '' });
  const add = (text: string, view = text): void => {
    const w = begin();
    w.text += text;
    w.view += view;
  };
  const end = (): void => {
    if (word !== null) {
      // Brace expansion (`{/,x}`, `{a..z}`) and unquoted globs stay in the text; braces make it dynamic.
      if (!word.quoted && /\{[^}]*(,|\.\.)[^}]*\}/.test(word.text)) word.dynamic = true;
      tokens.push({ kind: 'word', word });
    }
    word = null;
  };
  const substitution = (inner: string): string => {
    const view = parseScript(inner, depth + 1, state);
    return view.canonical;
  };
  while (i < n) {
    const c = script[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      end();
      i++;
      continue;
    }
    if (c === '\n') {
      end();
      tokens.push({ kind: 'op', op: '\n' });
      i++;
      continue;
    }
    if (c === '#' && word === null) {
      while (i < n && script[i] !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      if (script[i + 1] === '\n') {
        i += 2;
        continue;
      }
      if (i + 1 < n) add(script[i + 1]!);
      begin().quoted = true;
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = script.indexOf("'", i + 1);
      if (close < 0) {
        state.partial = true;
        add(script.slice(i + 1));
        i = n;
        continue;
      }
      add(script.slice(i + 1, close));
      begin().quoted = true;
      i = close + 1;
      continue;
    }
    if (c === '"') {
      begin().quoted = true;
      i = readDoubleQuoted(script, i + 1, (text, view, dynamic) => {
        add(text, view);
        if (dynamic) begin().dynamic = true;
      }, substitution, state);
      continue;
    }
    if (c === '$' && script[i + 1] === "'") {
      const { text, next } = readAnsiC(script, i + 2);
      add(text);
      begin().quoted = true;
      i = next;
      continue;
    }
    if (c === '$' || c === '`') {
      const read = readDollar(script, i, substitution, state);
      add(read.text, read.view);
      if (read.dynamic) begin().dynamic = true;
      i = read.next;
      continue;
    }
    if ((c === '<' || c === '>') && script[i + 1] === '(') {
      const close = matchParen(script, i + 1);
      const inner = script.slice(i + 2, close < 0 ? n : close);
      if (close < 0) state.partial = true;
      const view = substitution(inner);
      add(`${c}(…)`, `${c}( ${view} )`);
      begin().dynamic = true;
      i = close < 0 ? n : close + 1;
      continue;
    }
    const op = readOperator(script, i);
    if (op !== null) {
      // A descriptor number right before a redirection (`2>`) belongs to it, not to a word.
      if (op.redirect && word !== null && /^\d+$/.test((word as RawWord).text) && !(word as RawWord).quoted) word = null;
      end();
      // A here-document's body lines are read as commands too (fail closed: `sh <<EOF`).
      tokens.push(op.redirect ? { kind: 'redirect', op: op.text } : { kind: 'op', op: op.text });
      i += op.text.length;
      continue;
    }
    add(c);
    i++;
  }
  end();
  return tokens;
}

function readOperator(s: string, i: number): { text: string; redirect: boolean } | null {
  const three = s.slice(i, i + 3);
  const two = s.slice(i, i + 2);
  const one = s[i]!;
  if (three === '<<<' || three === '&>>' || three === '<<-') return { text: three, redirect: true };
  if (two === '&&' || two === '||' || two === '|&' || two === ';;') return { text: two === '|&' ? '|' : two === ';;' ? ';' : two, redirect: false };
  if (two === '>>' || two === '<<' || two === '&>' || two === '>|' || two === '>&' || two === '<&' || two === '<>') return { text: two, redirect: true };
  if (one === '>' || one === '<') return { text: one, redirect: true };
  if (one === '|' || one === ';' || one === '&' || one === '(' || one === ')') return { text: one === '(' || one === ')' ? ';' : one, redirect: false };
  return null;
}

/** Index of the `)` closing the `(` at `open`, skipping quotes and nested parentheses; -1 if none. */
function matchParen(s: string, open: number): number {
  let level = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close < 0) return -1;
      i = close;
      continue;
    }
    if (c === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) if (s[i] === '\\') i++;
      continue;
    }
    if (c === '(') level++;
    else if (c === ')' && --level === 0) return i;
  }
  return -1;
}

/** Reads `$NAME`, `${NAME}`, `$(…)`, `$((…))` or a backtick substitution starting at `i`. */
function readDollar(s: string, i: number, substitution: (inner: string) => string, state: State): { text: string; view: string; dynamic: boolean; next: number } {
  if (s[i] === '`') {
    let j = i + 1;
    let inner = '';
    for (; j < s.length && s[j] !== '`'; j++) {
      if (s[j] === '\\' && j + 1 < s.length) {
        inner += s[++j];
        continue;
      }
      inner += s[j];
    }
    if (j >= s.length) state.partial = true;
    return { text: '$(…)', view: `$( ${substitution(inner)} )`, dynamic: true, next: j + 1 };
  }
  const next = s[i + 1];
  if (next === '(') {
    const close = matchParen(s, i + 1);
    if (close < 0) state.partial = true;
    const end = close < 0 ? s.length : close;
    if (s[i + 2] === '(') return { text: '$((…))', view: s.slice(i, end + 1), dynamic: true, next: end + 1 };
    return { text: '$(…)', view: `$( ${substitution(s.slice(i + 2, end))} )`, dynamic: true, next: end + 1 };
  }
  if (next === '{') {
    const close = s.indexOf('}', i + 2);
    const inner = s.slice(i + 2, close < 0 ? s.length : close);
    const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(inner) ? inner : null;
    const after = close < 0 ? s.length : close + 1;
    if (close < 0) state.partial = true;
    return variable(name, s.slice(i, after), after);
  }
  const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9@*#?$!-]/.exec(s.slice(i + 1, i + 65));
  if (!m) return { text: '$', view: '$', dynamic: false, next: i + 1 };
  return variable(/^[A-Za-z_]/.test(m[0]) ? m[0] : null, `$${m[0]}`, i + 1 + m[0].length);
}

function variable(name: string | null, raw: string, next: number): { text: string; view: string; dynamic: boolean; next: number } {
  if (name === 'HOME') return { text: '~', view: '~', dynamic: false, next };
  if (name === 'PWD') return { text: '.', view: '.', dynamic: false, next };
  return { text: raw, view: raw, dynamic: true, next };
}

/** Reads a double-quoted string from `i` (after the quote); returns the index after the closing quote. */
function readDoubleQuoted(s: string, i: number, emit: (text: string, view: string, dynamic: boolean) => void, substitution: (inner: string) => string, state: State): number {
  let literal = '';
  const flush = (): void => {
    if (literal !== '') emit(literal, literal, false);
    literal = '';
  };
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"') {
      flush();
      return i + 1;
    }
    if (c === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1]!)) {
      if (s[i + 1] !== '\n') literal += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '$' || c === '`') {
      flush();
      const read = readDollar(s, i, substitution, state);
      emit(read.text, read.view, read.dynamic);
      i = read.next;
      continue;
    }
    literal += c;
    i++;
  }
  flush();
  state.partial = true;
  return i;
}

/** `$'…'` (ANSI-C quoting): `\n`, `\xHH`, `\uHHHH`, `\NNN` and friends decoded. */
function readAnsiC(s: string, i: number): { text: string; next: number } {
  let out = '';
  while (i < s.length && s[i] !== "'") {
    if (s[i] !== '\\' || i + 1 >= s.length) {
      out += s[i++];
      continue;
    }
    const e = s[i + 1]!;
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
    if (simple[e] !== undefined) {
      out += simple[e];
      i += 2;
      continue;
    }
    const hex = e === 'x' ? /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 2)) : e === 'u' ? /^[0-9a-fA-F]{1,4}/.exec(s.slice(i + 2)) : e === 'U' ? /^[0-9a-fA-F]{1,8}/.exec(s.slice(i + 2)) : null;
    if (hex) {
      const cp = Number.parseInt(hex[0], 16);
      out += cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
      i += 2 + hex[0].length;
      continue;
    }
    const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1));
    if (oct) {
      out += String.fromCharCode(Number.parseInt(oct[0], 8) & 0xff);
      i += 1 + oct[0].length;
      continue;
    }
    out += e;
    i += 2;
  }
  return { text: out, next: i + 1 };
}

function basename(program: string): string {
  const trimmed = program.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*\+?=/;

/** Drops assignments and wrappers, records the command (and any nested script), returns its views. */
function recordCommand(raw: RawWord[], redirects: RawWord[], depth: number, state: State): LineView {
  let words = raw;
  // Leading assignments (`FOO=1 rm …`).
  while (words.length > 0 && !words[0]!.quoted && ASSIGNMENT.test(words[0]!.text)) words = words.slice(1);
  // Wrappers, possibly several (`sudo env X=1 nice -n 5 rm …`).
  for (let guard = 0; guard < 16 && words.length > 0; guard++) {
    const name = basename(words[0]!.text);
    const valued = WRAPPERS[name];
    if (!valued) break;
    if (name === 'env') {
      const split = words.findIndex((w, k) => k > 0 && (w.text === '-S' || w.text.startsWith('--split-string')));
      if (split > 0) {
        const script = words[split]!.text.includes('=') ? words[split]!.text.slice(words[split]!.text.indexOf('=') + 1) : (words[split + 1]?.text ?? '');
        parseScript(script, depth + 1, state);
      }
    }
    if (name === 'su' || name === 'runuser') {
      const c = words.findIndex((w, k) => k > 0 && (w.text === '-c' || w.text === '--command'));
      if (c > 0 && words[c + 1]) parseScript(words[c + 1]!.text, depth + 1, state);
    }
    let k = 1;
    while (k < words.length) {
      const w = words[k]!.text;
      if (w === '--') {
        k++;
        break;
      }
      if (name === 'env' && ASSIGNMENT.test(w)) {
        k++;
        continue;
      }
      if (!w.startsWith('-') || w === '-') break;
      k += valued.has(w) ? 2 : 1;
    }
    // `timeout 5 rm`, `nice 10 rm`, `chroot /x rm`: a leading number/duration or the chroot dir.
    if ((name === 'timeout' && /^\d/.test(words[k]?.text ?? '')) || name === 'chroot') k++;
    words = words.slice(k);
  }
  if (words.length === 0) {
    const redirectText = redirects.map((r) => `> ${r.view}`).join(' ');
    if (state.commands.length < MAX_COMMANDS) state.commands.push({ program: '', args: [], redirects: redirects.map(toWord), written: redirectText, canonical: redirectText, operands: [], cd: null });
    else state.partial = state.truncated = true;
    return { written: redirectText, canonical: redirectText };
  }
  const program = basename(words[0]!.text);
  const args = words.slice(1);
  // A shell's -c script, `eval`'s words: commands too (substitutions in them were read already).
  let script: RawWord | null = null;
  if (SHELLS.has(program)) {
    const c = args.findIndex((w) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(w.text) && !w.quoted);
    script = c >= 0 ? (args[c + 1] ?? null) : null;
    if (script) parseScript(script.text.replaceAll('$(…)', ' '), depth + 1, state);
  } else if (program === 'eval') {
    parseScript(args.map((w) => w.text.replaceAll('$(…)', ' ')).join(' '), depth + 1, state);
  }
  const written = [program, ...args.map((w) => w.view)].join(' ');
  const canon = canonicalize(program, args);
  const canonical = canon.canonical;
  // The script is not a path the shell opens: its commands were recorded on their own.
  const operands = program === 'eval' ? [] : script ? canon.operands.filter((o) => o.text !== script.text) : canon.operands;
  const cd = program === 'cd' || program === 'pushd' ? (operands[0] ?? { text: '~', dynamic: false }) : null;
  if (state.commands.length < MAX_COMMANDS) state.commands.push({ program, args: args.map(toWord), redirects: redirects.map(toWord), written, canonical, operands, cd });
  else state.partial = state.truncated = true;
  const redirectText = redirects.length > 0 ? ` ${redirects.map((r) => `> ${r.view}`).join(' ')}` : '';
  return { written: written + redirectText, canonical: canonical + redirectText };
}

function toWord(w: RawWord): ShellWord {
  return { text: w.text, dynamic: w.dynamic };
}

/** The canonical spelling of one command and its operands. */
function canonicalize(program: string, args: readonly RawWord[]): { canonical: string; operands: ShellWord[] } {
  let head = program;
  let rest = args;
  let table = program;
  if (program === 'git') {
    // Skip git's global options to reach the subcommand.
    let k = 0;
    while (k < rest.length && rest[k]!.text.startsWith('-')) k += GIT_GLOBAL_WITH_VALUE.has(rest[k]!.text) ? 2 : 1;
    if (k < rest.length) {
      head = `git ${rest[k]!.text}`;
      table = rest[k]!.text;
      rest = rest.slice(k + 1);
    } else rest = [];
  }
  const shorts = new Set<string>();
  const longs: string[] = [];
  const operands: ShellWord[] = [];
  const aliases = SHORT_ALIASES[table] ?? {};
  const longMap = LONG_TO_SHORT[table] ?? {};
  let endOfOptions = false;
  for (const w of rest) {
    const t = w.text;
    if (endOfOptions || w.dynamic || !t.startsWith('-') || t === '-') {
      operands.push(toWord(w));
      continue;
    }
    if (t === '--') {
      endOfOptions = true;
      continue;
    }
    if (t.startsWith('--')) {
      const [name = '', value] = t.slice(2).split(/=(.*)/s, 2);
      const short = longMap[name];
      if (short !== undefined) shorts.add(short);
      else longs.push(`--${name}`);
      // `--output=/etc/x`: the value names a path or URL too.
      if (value !== undefined && value !== '') operands.push({ text: value, dynamic: w.dynamic });
      continue;
    }
    // A short cluster (`-rf`); a cluster with a non-letter (`-n5`, `-O-`) keeps its tail as a value.
    const letters = /^-([A-Za-z]+)(.*)$/s.exec(t);
    if (!letters) {
      longs.push(t);
      continue;
    }
    for (const ch of letters[1]!) shorts.add(aliases[ch] ?? ch);
    if (letters[2]) operands.push({ text: letters[2], dynamic: false });
  }
  const cluster = shorts.size > 0 ? ` -${[...shorts].sort().join('')}` : '';
  const tail = [...longs, ...operands.map((o) => o.text)].join(' ');
  return { canonical: `${head}${cluster}${tail ? ` ${tail}` : ''}`, operands };
}
