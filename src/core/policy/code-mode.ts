/**
 * Codex "code mode": the model calls one custom tool, `exec`, whose input is JavaScript that
 * calls the real tools — `await tools.exec_command({cmd: "ls"})`, `tools.apply_patch("*** Begin
 * Patch…")`. This reads those nested calls out of the source, best effort: a call whose name and
 * input are literals (strings, numbers, booleans, null, arrays and objects of them, strings
 * joined by `+`, templates without `${…}`) is read exactly.
 *
 * Anything it cannot read exactly makes the reading `unsure`: a `tools` reference that is not
 * such a call, a non-literal argument (a variable, a call, an interpolated template), or a name
 * that can reach the tools or run code another way (`globalThis`, `eval`, `Function`,
 * `constructor`, `Reflect`, `import`, `require`, `setTimeout`, `ALL_TOOLS`…). The caller then
 * also matches the rules against every string literal and the whole source (fail closed).
 *
 * Pure; linear in the source's length.
 */

export interface NestedCall {
  readonly name: string;
  /** The argument: an object (read as JSON arguments) or a string (a freeform input). */
  readonly input: unknown;
}

export interface CodeModeReading {
  readonly calls: readonly NestedCall[];
  /** Every string literal (with `+`-joined literals joined), for the fallback. */
  readonly strings: readonly string[];
  /** Names used as `tools.NAME` (also when not read exactly). */
  readonly names: readonly string[];
  readonly unsure: boolean;
}

const MAX_SOURCE = 256 * 1024;
/** Identifiers that reach the tools or evaluate code without naming `tools.X(…)`. */
const ESCAPES = new Set(['globalThis', 'eval', 'Function', 'constructor', 'Reflect', 'Proxy', 'import', 'require', 'self', 'window', 'global', 'setTimeout', 'setInterval', 'ALL_TOOLS', 'with', 'this', '__proto__', 'prototype', 'bind', 'call', 'apply']);

type Tok =
  | { readonly t: 'id'; readonly v: string }
  | { readonly t: 'str'; readonly v: string; readonly exact: boolean }
  | { readonly t: 'num'; readonly v: number }
  | { readonly t: 'p'; readonly v: string };

export function readCodeMode(source: string): CodeModeReading {
  const tooLong = source.length > MAX_SOURCE;
  const { tokens, ok } = tokenizeJs(tooLong ? source.slice(0, MAX_SOURCE) : source);
  let unsure = tooLong || !ok;
  const calls: NestedCall[] = [];
  const names = new Set<string>();
  const strings: string[] = [];
  // String literals, `+`-joined runs joined.
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.t !== 'str') continue;
    let joined = tok.v;
    strings.push(tok.v);
    while (tokens[i + 1]?.t === 'p' && tokens[i + 1]!.v === '+' && tokens[i + 2]?.t === 'str') {
      joined += (tokens[i + 2] as { v: string }).v;
      i += 2;
      strings.push((tokens[i] as { v: string }).v);
    }
    if (joined !== tok.v) strings.push(joined);
  }
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.t === 'str' && !tok.exact) unsure = true;
    if (tok.t !== 'id') continue;
    if (ESCAPES.has(tok.v)) unsure = true;
    if (tok.v !== 'tools') continue;
    // Property access after `.` (`x.tools`) is still the tools object for all we know: same rules.
    let name: string | null = null;
    let at = i + 1;
    const a = tokens[at];
    const b = tokens[at + 1];
    if (a?.t === 'p' && (a.v === '.' || a.v === '?.') && b?.t === 'id') {
      name = b.v;
      at += 2;
    } else if (a?.t === 'p' && a.v === '[' && b?.t === 'str' && b.exact && tokens[at + 2]?.t === 'p' && tokens[at + 2]!.v === ']') {
      name = b.v;
      at += 3;
    }
    if (name === null) {
      unsure = true;
      continue;
    }
    names.add(name);
    if (tokens[at]?.t === 'p' && tokens[at]!.v === '?.') at++;
    if (!(tokens[at]?.t === 'p' && tokens[at]!.v === '(')) {
      unsure = true;
      continue;
    }
    const parsed = readValue(tokens, at + 1);
    if (parsed === null || !(tokens[parsed.next]?.t === 'p' && (tokens[parsed.next]!.v === ')' || tokens[parsed.next]!.v === ','))) {
      unsure = true;
      continue;
    }
    calls.push({ name, input: parsed.value });
    i = parsed.next;
  }
  return { calls, strings, names: [...names], unsure };
}

/** Reads a literal value from token `i`; null when it is not one. */
function readValue(tokens: readonly Tok[], i: number, depth = 0): { value: unknown; next: number } | null {
  if (depth > 32) return null;
  const tok = tokens[i];
  if (!tok) return null;
  if (tok.t === 'str') {
    if (!tok.exact) return null;
    let value = tok.v;
    let next = i + 1;
    while (tokens[next]?.t === 'p' && tokens[next]!.v === '+') {
      const more = tokens[next + 1];
      if (more?.t !== 'str' || !more.exact) return null;
      value += more.v;
      next += 2;
    }
    return { value, next };
  }
  if (tok.t === 'num') return { value: tok.v, next: i + 1 };
  if (tok.t === 'id') {
    if (tok.v === 'true' || tok.v === 'false') return { value: tok.v === 'true', next: i + 1 };
    if (tok.v === 'null' || tok.v === 'undefined') return { value: null, next: i + 1 };
    return null;
  }
  if (tok.v === '-' && tokens[i + 1]?.t === 'num') return { value: -(tokens[i + 1] as { v: number }).v, next: i + 2 };
  if (tok.v === '[') {
    const list: unknown[] = [];
    let next = i + 1;
    while (!(tokens[next]?.t === 'p' && tokens[next]!.v === ']')) {
      const item = readValue(tokens, next, depth + 1);
      if (!item) return null;
      list.push(item.value);
      next = item.next;
      if (tokens[next]?.t === 'p' && tokens[next]!.v === ',') next++;
      else if (!(tokens[next]?.t === 'p' && tokens[next]!.v === ']')) return null;
    }
    return { value: list, next: next + 1 };
  }
  if (tok.v === '{') {
    const object: Record<string, unknown> = {};
    let next = i + 1;
    while (!(tokens[next]?.t === 'p' && tokens[next]!.v === '}')) {
      const key = tokens[next];
      if (!key || (key.t !== 'id' && !(key.t === 'str' && key.exact) && key.t !== 'num')) return null;
      if (!(tokens[next + 1]?.t === 'p' && tokens[next + 1]!.v === ':')) return null; // shorthand `{cmd}`: not a literal
      const item = readValue(tokens, next + 2, depth + 1);
      if (!item) return null;
      object[String(key.v)] = item.value;
      next = item.next;
      if (tokens[next]?.t === 'p' && tokens[next]!.v === ',') next++;
      else if (!(tokens[next]?.t === 'p' && tokens[next]!.v === '}')) return null;
    }
    return { value: object, next: next + 1 };
  }
  return null;
}

const PUNCT = ['?.', '...', '===', '!==', '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '++', '--', '+=', '-=', '**'];
/** After these a `/` starts a regular expression literal, not a division. */
const REGEX_AFTER = new Set(['(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^', '=>', '==', '===', '!=', '!==', '&&', '||', '??', 'return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'await', 'yield']);

/** A small JS tokenizer: strings (escapes decoded), templates, comments, regex literals, identifiers, numbers, punctuation. */
function tokenizeJs(src: string): { tokens: Tok[]; ok: boolean } {
  const tokens: Tok[] = [];
  let ok = true;
  let i = 0;
  const n = src.length;
  const prev = (): string | null => {
    const last = tokens.at(-1);
    if (!last) return null;
    return last.t === 'p' || last.t === 'id' ? last.v : last.t;
  };
  while (i < n) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) {
        ok = false;
        break;
      }
      i = end + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      const read = readJsString(src, i + 1, c);
      if (!read) {
        ok = false;
        break;
      }
      tokens.push({ t: 'str', v: read.value, exact: true });
      i = read.next;
      continue;
    }
    if (c === '`') {
      const read = readTemplate(src, i + 1);
      if (!read) {
        ok = false;
        break;
      }
      tokens.push({ t: 'str', v: read.value, exact: read.exact });
      i = read.next;
      continue;
    }
    if (c === '/') {
      const p = prev();
      if (p === null || REGEX_AFTER.has(p)) {
        // A regular expression literal: skip it (classes may hold `/`).
        let j = i + 1;
        let inClass = false;
        for (; j < n && src[j] !== '\n'; j++) {
          if (src[j] === '\\') j++;
          else if (src[j] === '[') inClass = true;
          else if (src[j] === ']') inClass = false;
          else if (src[j] === '/' && !inClass) break;
        }
        if (j >= n || src[j] !== '/') {
          ok = false;
          break;
        }
        i = j + 1;
        while (i < n && /[a-z]/.test(src[i]!)) i++;
        tokens.push({ t: 'p', v: 'regex' });
        continue;
      }
    }
    const id = /^[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*/.exec(src.slice(i, i + 256));
    if (id) {
      // Unicode escapes in identifiers (`\u0074ools`) are not read: unsure.
      tokens.push({ t: 'id', v: id[0].normalize('NFKC') });
      i += id[0].length;
      continue;
    }
    if (c === '\\') {
      ok = false;
      i++;
      continue;
    }
    const num = /^(?:0[xXoObB][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)n?/.exec(src.slice(i, i + 64));
    if (num) {
      tokens.push({ t: 'num', v: Number(num[0].replaceAll('_', '').replace(/n$/, '')) });
      i += num[0].length;
      continue;
    }
    const punct = PUNCT.find((p) => src.startsWith(p, i)) ?? c;
    tokens.push({ t: 'p', v: punct });
    i += punct.length;
  }
  return { tokens, ok };
}

function readJsString(src: string, i: number, quote: string): { value: string; next: number } | null {
  let out = '';
  while (i < src.length) {
    const c = src[i]!;
    if (c === quote) return { value: out, next: i + 1 };
    if (c === '\n') return null;
    if (c === '\\') {
      const escaped = readEscape(src, i + 1);
      out += escaped.text;
      i = escaped.next;
      continue;
    }
    out += c;
    i++;
  }
  return null;
}

function readTemplate(src: string, i: number): { value: string; exact: boolean; next: number } | null {
  let out = '';
  let exact = true;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '`') return { value: out, exact, next: i + 1 };
    if (c === '\\') {
      const escaped = readEscape(src, i + 1);
      out += escaped.text;
      i = escaped.next;
      continue;
    }
    if (c === '$' && src[i + 1] === '{') {
      exact = false;
      // Skip the expression (nested braces, strings inside are rare here: counted roughly).
      let level = 0;
      let j = i + 1;
      for (; j < src.length; j++) {
        if (src[j] === '{') level++;
        else if (src[j] === '}' && --level === 0) break;
      }
      if (j >= src.length) return null;
      out += '${…}';
      i = j + 1;
      continue;
    }
    out += c;
    i++;
  }
  return null;
}

function readEscape(src: string, i: number): { text: string; next: number } {
  const e = src[i];
  if (e === undefined) return { text: '', next: i };
  const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', 0: '\0', '\n': '' };
  if (e === 'x') {
    const hex = /^[0-9a-fA-F]{2}/.exec(src.slice(i + 1, i + 3));
    if (hex) return { text: String.fromCharCode(Number.parseInt(hex[0], 16)), next: i + 3 };
  }
  if (e === 'u') {
    const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(src.slice(i + 1, i + 9));
    if (braced) {
      const cp = Number.parseInt(braced[1]!, 16);
      return { text: cp <= 0x10ffff ? String.fromCodePoint(cp) : '', next: i + 1 + braced[0].length };
    }
    const hex = /^[0-9a-fA-F]{4}/.exec(src.slice(i + 1, i + 5));
    if (hex) return { text: String.fromCharCode(Number.parseInt(hex[0], 16)), next: i + 5 };
  }
  if (simple[e] !== undefined && !(e === '0' && /[0-9]/.test(src[i + 1] ?? ''))) return { text: simple[e], next: i + 1 };
  return { text: e, next: i + 1 };
}
