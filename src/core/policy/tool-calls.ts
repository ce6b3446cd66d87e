/**
 * What an agent's tool call asks for, read per known tool: the command line it runs, the paths
 * it reads or writes, the URLs it fetches — so rules match fields (`command`, `paths`, `urls`)
 * rather than JSON text.
 *
 * A call is read into TARGETS, the units a rule is matched against:
 *  - the call itself: its name, its raw arguments (for `arguments` patterns), the file paths and
 *    URLs of file and fetch tools;
 *  - for a shell tool, the whole command line (as sent, as written, canonical) and each simple
 *    command in it with the paths and URLs it names (./shell-command.ts), so a rule's command,
 *    path and URL conditions hold together on one command (`rm -rf` AND a path outside the work
 *    tree), while pipeline patterns (`curl … | sh`) see the line;
 *  - for Codex's code-mode `exec`, each nested `tools.X(…)` call read from the JavaScript
 *    (./code-mode.ts), named both X and exec; when the source cannot be read exactly, a
 *    fallback target holds every string literal and the whole source as commands, paths and
 *    URLs, and matches any tool name (fail closed).
 *
 * Known tools (names case-insensitive): Claude Code's Bash, Write, Edit, MultiEdit, Read,
 * NotebookEdit, Glob, Grep, LS, WebFetch; Codex's shell, local_shell, container.exec,
 * exec_command, write_stdin, apply_patch, view_image, exec; Gemini CLI's run_shell_command,
 * write_file, read_file, read_many_files, replace, list_directory, glob, web_fetch. Any other
 * tool: string arguments named like a command (command, cmd, script), a path (path, file_path,
 * filename, directory, …) or a URL (url, uri, href) at any depth.
 *
 * Pure. Never throws on odd input: what cannot be read is read as text.
 */
import { normalizeCompatibility, normalizeForMatching } from '../detection/normalize.ts';
import { readCodeMode } from './code-mode.ts';
import { analyzeShell } from './shell-command.ts';
import { homeOf, looksLikeHost, normalizePath, normalizeUrl, resolveAbsolute, URL_LIKE, type NormalizedPath, type PathContext } from './tool-paths.ts';

export interface ToolCallContext {
  /** The agent's working directory (absolute), from the request; null when unknown. */
  readonly workTree: string | null;
  /** The user's home; null: derived from the work tree, else any /home/x, /Users/x, /root. */
  readonly home?: string | null;
}

export interface ToolTarget {
  /** Normalized lower-case tool names this target answers to (a nested call: its own and the outer one). */
  readonly names: readonly string[];
  /** A fallback target: matches any `names` condition. */
  readonly anyName: boolean;
  /** The call's raw arguments (JSON text or a custom tool's input); null for inner targets. */
  readonly arguments: string | null;
  /** Command-line spellings (views) of one command or of the line. */
  readonly commands: readonly string[];
  /** A whole command line (several commands): block and require_approval rules only — allow decides per command. */
  readonly line: boolean;
  readonly paths: readonly NormalizedPath[];
  readonly urls: readonly string[];
}

export interface ToolCallReading {
  readonly targets: readonly ToolTarget[];
  /** A short description for notices and records: `Bash \`rm -rf /\``, `Read ~/.ssh/id_rsa`. Not redacted. */
  readonly summary: string;
  /** Part of the call could not be read (a command line past the reader's limits): judge it refused. */
  readonly unreadable: boolean;
}

type FieldKind = 'command' | 'argv' | 'path' | 'url' | 'patch' | 'cwd' | 'text-urls' | 'paths';

/** Which argument of a known tool holds what. */
const KNOWN_TOOLS: Readonly<Record<string, Readonly<Record<string, FieldKind>>>> = {
  // Claude Code
  bash: { command: 'command' },
  write: { file_path: 'path' },
  edit: { file_path: 'path' },
  multiedit: { file_path: 'path' },
  read: { file_path: 'path' },
  notebookedit: { notebook_path: 'path' },
  notebookread: { notebook_path: 'path' },
  glob: { path: 'path', pattern: 'path' },
  grep: { path: 'path' },
  ls: { path: 'path' },
  webfetch: { url: 'url' },
  // Codex
  shell: { command: 'argv', workdir: 'cwd' },
  local_shell: { command: 'argv', workdir: 'cwd' },
  'container.exec': { command: 'argv', workdir: 'cwd' },
  exec_command: { cmd: 'command', command: 'command', workdir: 'cwd' },
  write_stdin: { chars: 'command' },
  apply_patch: { input: 'patch', patch: 'patch' },
  view_image: { path: 'path' },
  // Gemini CLI
  run_shell_command: { command: 'command', directory: 'cwd' },
  write_file: { file_path: 'path', absolute_path: 'path' },
  read_file: { absolute_path: 'path', file_path: 'path', path: 'path' },
  read_many_files: { paths: 'paths' },
  replace: { file_path: 'path' },
  list_directory: { path: 'path' },
  web_fetch: { prompt: 'text-urls', url: 'url' },
};

const GENERIC_FIELDS: readonly [RegExp, FieldKind][] = [
  [/^(command|cmd|script|shell_command|commandline|command_line)$/i, 'command'],
  [/^(argv)$/i, 'argv'],
  [/^(cwd|workdir|working_directory|working_dir)$/i, 'cwd'],
  [/^(path|paths|file|files|file_path|filepath|filename|file_name|absolute_path|notebook_path|target_file|target_path|source|source_path|destination|dest|destination_path|dir|directory|folder|output|output_path)$/i, 'path'],
  [/^(url|urls|uri|href|link|endpoint)$/i, 'url'],
];

/** Programs whose bare `host/path` operands are fetched. */
const FETCHERS = new Set(['curl', 'wget', 'http', 'https', 'xh', 'xhs', 'aria2c', 'fetch', 'lynx', 'links', 'w3m', 'httpie', 'curlie']);

const MAX_TARGETS = 25_000;
const MAX_DEPTH = 4;

export function normalizeToolName(name: string): string {
  return normalizeForMatching(name).text.trim().toLowerCase();
}

/** Reads one tool call; `args` is the JSON arguments text (or a custom tool's raw input). */
export function readToolCall(call: { readonly name: string; readonly arguments: string }, ctx: ToolCallContext): ToolCallReading {
  const home = ctx.home ?? homeOf(ctx.workTree);
  const reader = new Reader({ workTree: ctx.workTree === null ? null : resolveAbsolute(ctx.workTree), home });
  const name = normalizeToolName(call.name);
  reader.read(name, parseArguments(call.arguments), [], call.arguments, 0);
  // Summaries name the tool as the model spelled it.
  const spelled = normalizeForMatching(call.name).text.trim().slice(0, 64) || '(unnamed tool)';
  const summary = reader.summary ?? name;
  return { targets: reader.targets, summary: summary.startsWith(name) ? spelled + summary.slice(name.length) : summary, unreadable: reader.unreadable };
}

function parseArguments(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

class Reader {
  readonly targets: ToolTarget[] = [];
  summary: string | null = null;
  unreadable = false;
  readonly #ctx: PathContext;

  constructor(ctx: PathContext) {
    this.#ctx = ctx;
  }

  #push(target: ToolTarget): void {
    if (this.targets.length < MAX_TARGETS) this.targets.push(target);
    else this.unreadable = true;
  }

  /** Reads a call named `name` (normalized) with `input` (an object, or a raw string). */
  read(name: string, input: unknown, outer: readonly string[], raw: string | null, depth: number): void {
    const names = [name, ...outer];
    const spec = KNOWN_TOOLS[name];
    const fields = { commands: [] as string[], argv: [] as string[][], paths: [] as string[], urls: [] as string[], patches: [] as string[], cwd: null as string | null, textUrls: [] as string[] };

    if (typeof input === 'string') {
      if (name === 'exec' && depth < MAX_DEPTH) {
        this.#codeMode(input, names, raw, depth);
        return;
      }
      if (spec && Object.values(spec).includes('patch')) fields.patches.push(input);
      else if (spec && (Object.values(spec).includes('command') || Object.values(spec).includes('argv'))) fields.commands.push(input);
      else if (spec && Object.values(spec).includes('path')) fields.paths.push(input);
      else if (spec && Object.values(spec).includes('url')) fields.urls.push(input);
      else {
        // An unknown freeform input: judged as text in every field (fail closed).
        this.#push({ names, anyName: false, arguments: raw, commands: [normalizeForMatching(input).text], line: true, paths: input.length <= 4096 ? [normalizePath(input, this.#ctx)] : [], urls: urlsIn(input) });
        this.summary ??= `${name} ${cut(input)}`;
        return;
      }
    } else if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
      if (spec) {
        for (const [key, kind] of Object.entries(spec)) collect(fields, kind, (input as Record<string, unknown>)[key]);
      } else {
        scanGeneric(fields, input, 0);
      }
    }
    const cwd = fields.cwd === null ? null : normalizePath(fields.cwd, this.#ctx).views[0] ?? null;
    const pathCtx: PathContext = { ...this.#ctx, cwd: cwd !== null && cwd.startsWith('/') ? cwd : this.#ctx.cwd ?? null };
    const filePaths = fields.paths.map((p) => normalizePath(p, pathCtx));
    const urls = [...fields.urls.map((u) => normalizeUrl(u)), ...fields.textUrls.flatMap(urlsIn)];
    this.#push({ names, anyName: false, arguments: raw, commands: [], line: false, paths: filePaths, urls });
    for (const patch of fields.patches) this.#patch(patch, names, pathCtx);
    const commands = [...fields.commands, ...fields.argv.map(joinArgv)];
    for (const command of commands) this.#shell(command, names, pathCtx);
    this.summary ??= commands[0] !== undefined ? `${displayName(name, outer)} \`${cut(commands[0])}\`` : fields.paths[0] !== undefined ? `${displayName(name, outer)} ${cut(fields.paths[0])}` : urls[0] !== undefined ? `${displayName(name, outer)} ${cut(urls[0])}` : displayName(name, outer);
  }

  #codeMode(source: string, names: readonly string[], raw: string | null, depth: number): void {
    const reading = readCodeMode(source);
    this.#push({ names, anyName: false, arguments: raw, commands: [], line: false, paths: [], urls: [] });
    for (const call of reading.calls) this.read(normalizeToolName(call.name), call.input, names, null, depth + 1);
    if (reading.unsure) {
      const text = normalizeForMatching(source).text;
      const literals = reading.strings.filter((s) => s.trim() !== '').slice(0, 500);
      this.#push({
        names: [...names, ...reading.names.map(normalizeToolName)],
        anyName: true,
        arguments: null,
        commands: [text, ...literals.map((s) => normalizeForMatching(s).text)],
        line: true,
        paths: literals.filter((s) => s.length <= 4096).map((s) => normalizePath(s, this.#ctx)),
        urls: [...urlsIn(text), ...literals.filter((s) => URL_LIKE.test(s.trim())).map((s) => normalizeUrl(s))],
      });
      // A command in a literal may be the argument of a call not read exactly: read it as one too.
      for (const literal of literals) if (literal.length <= 4096 && /\s/.test(literal.trim())) this.#shell(literal, [...names, ...reading.names.map(normalizeToolName)], this.#ctx, true);
    }
    this.summary ??= `${names[0]} (code mode${reading.calls[0] ? `: ${reading.calls[0].name}` : ''})`;
  }

  /** A shell command: the line and each simple command, tracking `cd`. */
  #shell(command: string, names: readonly string[], ctx: PathContext, anyName = false): void {
    // Fullwidth letters and invisible characters are read as the shell would never see them: gone.
    const normalized = normalizeForMatching(command).text;
    const analysis = analyzeShell(normalized);
    if (analysis.truncated) this.unreadable = true;
    const raw = normalized.replace(/\s+/g, ' ').trim();
    this.#push({ names, anyName, arguments: null, commands: unique([raw, analysis.written, analysis.canonical]), line: true, paths: [], urls: [] });
    let cwd: string | null = ctx.cwd ?? ctx.workTree;
    let cwdUnknown = false;
    for (const c of analysis.commands) {
      const here: PathContext = { ...ctx, cwd };
      const paths: NormalizedPath[] = [];
      const urls: string[] = [];
      const fetcher = FETCHERS.has(c.program);
      for (const w of [...c.operands, ...c.redirects]) {
        if (w.text === '') continue;
        if (URL_LIKE.test(w.text)) urls.push(normalizeUrl(w.text));
        else if (fetcher && looksLikeHost(w.text)) urls.push(normalizeUrl(w.text, true));
        else {
          const p = normalizePath(w.text, here, w.dynamic);
          paths.push(cwdUnknown && !w.text.startsWith('/') && !w.text.startsWith('~') ? { ...p, outside: true } : p);
        }
      }
      this.#push({ names, anyName, arguments: null, commands: unique([c.written, c.canonical]), line: false, paths, urls });
      if (c.cd) {
        const target = normalizePath(c.cd.text, here, c.cd.dynamic);
        const abs = target.views[0];
        if (c.cd.dynamic || abs === undefined || !abs.startsWith('/')) cwdUnknown = true;
        else cwd = abs;
      }
    }
    if (command.includes('*** Begin Patch')) this.#patch(command, names, ctx);
  }

  /** An apply_patch body: the files it adds, updates, deletes or moves to. */
  #patch(patch: string, names: readonly string[], ctx: PathContext): void {
    const paths: NormalizedPath[] = [];
    for (const m of patch.matchAll(/^\*\*\* (?:Add File|Update File|Delete File|Move to): *(.+?)\s*$/gm)) paths.push(normalizePath(m[1]!, ctx));
    this.#push({ names, anyName: false, arguments: null, commands: [], line: false, paths, urls: [] });
    this.summary ??= `${names[0]} ${paths[0]?.views[0] ?? '(patch)'}`;
  }
}

function displayName(name: string, outer: readonly string[]): string {
  return outer.length > 0 ? `${outer.at(-1)} → ${name}` : name;
}

function collect(fields: { commands: string[]; argv: string[][]; paths: string[]; urls: string[]; patches: string[]; cwd: string | null; textUrls: string[] }, kind: FieldKind, value: unknown): void {
  if (value === undefined || value === null) return;
  const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  switch (kind) {
    case 'command':
      if (Array.isArray(value)) fields.argv.push(strings(value));
      else fields.commands.push(...strings(value));
      break;
    case 'argv':
      if (Array.isArray(value)) fields.argv.push(strings(value));
      else fields.commands.push(...strings(value));
      break;
    case 'path':
    case 'paths':
      fields.paths.push(...strings(value));
      break;
    case 'url':
      fields.urls.push(...strings(value));
      break;
    case 'patch':
      fields.patches.push(...strings(value));
      break;
    case 'cwd':
      if (typeof value === 'string') fields.cwd = value;
      break;
    case 'text-urls':
      fields.textUrls.push(...strings(value));
      break;
  }
}

function scanGeneric(fields: Parameters<typeof collect>[0], value: unknown, depth: number): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value.slice(0, 256)) scanGeneric(fields, item, depth + 1);
    return;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>).slice(0, 256)) {
    const kind = GENERIC_FIELDS.find(([re]) => re.test(key))?.[1];
    if (kind && (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))) collect(fields, kind, v);
    else if (typeof v === 'string' && URL_LIKE.test(v.trim())) fields.urls.push(v);
    else scanGeneric(fields, v, depth + 1);
  }
}

/** argv joined into a command line each shell would read back the same (single-quoted words). */
function joinArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

function urlsIn(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"`<>)\]]+/g)) {
    if (out.length >= 64) break;
    out.push(normalizeUrl(m[0]));
  }
  return out;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values.filter((v) => v !== ''))];
}

function cut(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

const WORK_TREE_PATTERNS: readonly RegExp[] = [
  // Claude Code: "Primary working directory: /x" (older: "Working directory: /x").
  /(?:Primary working directory|Working directory):[ \t]*(\/[^\s`'"]*)/g,
  // Codex: <environment_context><cwd>/x</cwd>
  /<cwd>[ \t]*(\/[^<\n]*?)[ \t]*<\/cwd>/g,
];

/**
 * The agent's working directory as its own prompt states it (Claude Code's environment section,
 * Codex's environment context): the last statement in a system or developer message, else the
 * last in a user message (Codex sends its context as one) — never in a tool result or an answer,
 * which the model or a fetched page could shape. Null when the request states none, or states
 * `/` (then every absolute path counts as outside the work tree).
 */
export function findWorkTree(messages: readonly { readonly role: string; readonly parts: readonly { readonly type: string; readonly text?: string }[] }[]): string | null {
  let fromSystem: string | null = null;
  let fromUser: string | null = null;
  for (const message of messages) {
    const system = message.role === 'system' || message.role === 'developer';
    if (!system && message.role !== 'user') continue;
    for (const part of message.parts) {
      if (part.type !== 'text' || typeof part.text !== 'string' || part.text.length === 0) continue;
      if (!part.text.includes('orking directory') && !part.text.includes('<cwd>')) continue;
      for (const re of WORK_TREE_PATTERNS) {
        for (const m of part.text.matchAll(re)) {
          const dir = resolveAbsolute(normalizeCompatibility(m[1]!));
          if (system) fromSystem = dir;
          else fromUser = dir;
        }
      }
    }
  }
  const found = fromSystem ?? fromUser;
  return found === '/' ? null : found;
}
