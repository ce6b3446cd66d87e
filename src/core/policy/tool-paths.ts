/**
 * Paths and URLs named by an agent's tool calls, normalized before rules see them, so that no
 * spelling hides a location from a pattern:
 *
 *  - paths: NFKC with invisible characters removed (not folded by look as matched text is: a
 *    look-alike letter names another file, a homograph another host); `$HOME`/`${HOME}` read `~` (done by the shell
 *    reader); `.` and `..` resolved and `//` collapsed; relative paths resolved from the command's
 *    directory (a `cd` before it, the tool's `workdir`, or the agent's work tree). A path is seen
 *    as absolute (`/home/alice/.ssh/id_rsa`) and, when it lies in a home directory, home-relative
 *    (`~/.ssh/id_rsa`) — a rule written for `~/.ssh` catches every spelling.
 *  - whether a path is outside the agent's work tree; a path whose value is unknown (a variable,
 *    a substitution, a brace expansion) counts as outside (fail closed).
 *  - URLs: parsed (WHATWG), scheme and host lower-cased, user info, default port and fragment
 *    dropped, dot segments resolved, IDNs in punycode: `HTTPS://github.com@evil.example:443/a/../x`
 *    reads `https://evil.example/x`. A fetch target without a scheme reads as `http://…`.
 *
 * Pure: no file system, no environment; the work tree and home come from the request.
 */
import { normalizeCompatibility } from '../detection/normalize.ts';

export interface PathContext {
  /** The agent's working directory, absolute (from the request), or null when unknown. */
  readonly workTree: string | null;
  /** The user's home, absolute, or null when unknown (then any /home/x, /Users/x or /root counts). */
  readonly home: string | null;
  /** The directory relative paths resolve from (a `cd`, a tool's `workdir`); default the work tree. */
  readonly cwd?: string | null;
}

export interface NormalizedPath {
  /**
   * The resolved spellings: absolute (or relative when it cannot be resolved), and `~/…` inside
   * a home. They name the same location, so any of them may satisfy an allow rule.
   */
  readonly views: readonly string[];
  /** The path as written (NFKC): block rules may look for a spelling (`..`) on purpose; never an allow. */
  readonly written: string;
  /** Outside the work tree, or unknown. */
  readonly outside: boolean;
}

/** The home directory a work tree lies in (`/home/alice/src/x` → `/home/alice`), or null. */
export function homeOf(path: string | null): string | null {
  if (path === null) return null;
  const m = /^(\/home\/[^/]+|\/Users\/[^/]+|\/root)(?:\/|$)/.exec(path);
  return m ? m[1]! : null;
}

/** Resolves `.`, `..` and repeated slashes of an absolute path (`..` above the root stays at the root). */
export function resolveAbsolute(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** Resolves a relative path's dot segments without a base; a leading `..` that cannot resolve stays. */
function resolveRelative(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out.at(-1) !== '..') out.pop();
    else out.push(part);
  }
  return out.length === 0 ? '.' : out.join('/');
}

function under(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Normalizes one path; `dynamic`: the value is unknown past its literal part (outside, fail closed).
 * `~user` paths keep their spelling and count as outside.
 */
export function normalizePath(raw: string, ctx: PathContext, dynamic = false): NormalizedPath {
  let text = normalizeCompatibility(raw).trim();
  if (text.startsWith('file://')) text = text.slice('file://'.length);
  text = text.replace(/^\$\{HOME\}|^\$HOME(?![A-Za-z0-9_])/, '~');
  const home = ctx.home ?? homeOf(ctx.workTree);
  const base = ctx.cwd ?? ctx.workTree;
  let absolute: string | null = null;
  let relative: string | null = null;
  let outside = dynamic || /[`{}]|\$\(|\$[A-Za-z_{]/.test(text);
  if (text === '~' || text.startsWith('~/')) {
    const rest = text.slice(1);
    if (home !== null) absolute = resolveAbsolute(home + rest);
    else {
      relative = `~${resolveAbsolute(rest || '/') === '/' ? '' : resolveAbsolute(rest)}`;
      outside = true;
    }
  } else if (text.startsWith('~')) {
    relative = text;
    outside = true;
  } else if (text.startsWith('/')) {
    absolute = resolveAbsolute(text);
  } else if (base !== null && base.startsWith('/')) {
    absolute = resolveAbsolute(`${base}/${text}`);
  } else {
    relative = resolveRelative(text);
    if (relative === '..' || relative.startsWith('../')) outside = true;
  }
  const views: string[] = [];
  if (absolute !== null) {
    views.push(absolute);
    const inHome = home !== null && under(absolute, home) ? home : homeOf(absolute);
    if (inHome !== null) views.push(absolute === inHome ? '~' : `~${absolute.slice(inHome.length)}`);
    if (ctx.workTree === null) outside = true;
    else if (!under(absolute, resolveAbsolute(ctx.workTree))) outside = true;
  } else if (relative !== null) {
    views.push(relative);
  }
  return { views, written: text, outside };
}

/** Text that looks like a URL (a scheme and `//`). */
export const URL_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * The canonical spelling of a URL; `assumeHttp`: a bare `host/path` (a curl or wget operand)
 * reads as `http://host/path`. A text that does not parse is returned normalized (NFKC, trimmed).
 */
export function normalizeUrl(raw: string, assumeHttp = false): string {
  const text = normalizeCompatibility(raw).trim();
  const withScheme = URL_LIKE.test(text) ? text : assumeHttp ? `http://${text}` : text;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return text;
  }
  if (url.host === '' && url.protocol !== 'file:') return text;
  const port = url.port === '' ? '' : `:${url.port}`;
  return `${url.protocol}//${url.hostname}${port}${url.pathname}${url.search}`;
}

/** Whether a command operand may be a host or URL to fetch (`example.com/x`, `10.0.0.1:8080`). */
export function looksLikeHost(text: string): boolean {
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?(\/\S*)?$/.test(text) || /^\[[0-9a-fA-F:]+\](:\d+)?(\/\S*)?$/.test(text);
}
