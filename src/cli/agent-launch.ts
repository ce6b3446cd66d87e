/**
 * Agents that do not read the SDKs' environment as the SDKs do are told where the daemon is in
 * their own words. Recognized by the program's name (any path), also when a package runner starts
 * it (`npx codex`, `npx @openai/codex@0.171.0`); a wrapper script is not: README "Governing coding
 * agents" gives the settings to pass by hand.
 *
 * Codex (0.171) ignores OPENAI_BASE_URL and, with its built-in provider, first tries a Responses
 * WebSocket. `aigov run -- codex …` therefore starts it with a provider entry of its own, given as
 * `-c` overrides ahead of the user's arguments: base URL = the daemon, key = the run key from
 * OPENAI_API_KEY, Responses over HTTP. Nothing is written to the user's ~/.codex, so Codex run
 * without aigov is untouched, and the daemon's port may change between runs. The user's own `-c`
 * flags come later and win.
 *
 * Claude Code asks, interactively, whether to use an ANTHROPIC_API_KEY it finds in the
 * environment ("No" is its default, and it remembers the answer per key — a run key is new every
 * run). ANTHROPIC_AUTH_TOKEN it uses without asking: the run key goes there instead (the daemon
 * takes it as `Authorization: Bearer`).
 */
import { basename } from 'node:path';

const CODEX = /^codex(?:\.js|\.cmd|\.exe)?$/i;
const CLAUDE = /^claude(?:\.js|\.cmd|\.exe)?$/i;

export const CODEX_PROVIDER_ID = 'aigov';

export interface AgentLaunch {
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

/** Package runners that start an agent from its npm package: `npx codex`, `npx @openai/codex@0.171.0 exec …`. */
const RUNNER = /^(?:npx|pnpx|bunx)(?:\.cmd|\.exe)?$/i;
const CODEX_PACKAGE = /^@openai\/codex(?:@[^/\s]+)?$/;
const CLAUDE_PACKAGE = /^@anthropic-ai\/claude-code(?:@[^/\s]+)?$/;

/** How to start `command`: its arguments and environment, given the child's environment. */
export function agentLaunch(command: string, args: readonly string[], env: NodeJS.ProcessEnv): AgentLaunch {
  const name = basename(command);
  if (RUNNER.test(name)) {
    // The runner's own options come first; one taking a value (`-p pkg`) makes the line too
    // uncertain to touch.
    const at = args.findIndex((arg) => !arg.startsWith('-'));
    if (at === -1 || args.slice(0, at).some((arg) => /^(?:-p|--package|-c|--call)$/.test(arg))) return { args, env };
    const agent = args[at]!;
    const kind = CODEX.test(agent) || CODEX_PACKAGE.test(agent) ? 'codex' : CLAUDE.test(agent) || CLAUDE_PACKAGE.test(agent) ? 'claude' : null;
    if (kind === null) return { args, env };
    const launched = launchAs(kind, args.slice(at + 1), env);
    return { args: [...args.slice(0, at + 1), ...launched.args], env: launched.env };
  }
  return CODEX.test(name) ? launchAs('codex', args, env) : CLAUDE.test(name) ? launchAs('claude', args, env) : { args, env };
}

function launchAs(kind: 'codex' | 'claude', args: readonly string[], env: NodeJS.ProcessEnv): AgentLaunch {
  if (kind === 'codex') {
    const openai = env.OPENAI_BASE_URL;
    return openai !== undefined && openai !== '' ? { args: [...codexProviderFlags(openai), ...args], env } : { args, env };
  }
  const key = env.ANTHROPIC_API_KEY;
  if (key === undefined || key === '') return { args, env };
  const { ANTHROPIC_API_KEY: _asked, ...rest } = env;
  return { args, env: { ...rest, ANTHROPIC_AUTH_TOKEN: key } };
}

/** `-c` overrides that make Codex use the daemon as its model provider. */
export function codexProviderFlags(baseUrl: string): string[] {
  const entry = `{ name = "aigov", base_url = ${tomlString(baseUrl)}, env_key = "OPENAI_API_KEY", wire_api = "responses" }`;
  return ['-c', `model_provider=${tomlString(CODEX_PROVIDER_ID)}`, '-c', `model_providers.${CODEX_PROVIDER_ID}=${entry}`];
}

/** A TOML basic string: quotes and backslashes escaped, control characters as \uXXXX. */
function tomlString(value: string): string {
  let out = '';
  for (const c of value) {
    const code = c.codePointAt(0) ?? 0;
    out += c === '"' || c === '\\' ? `\\${c}` : code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : c;
  }
  return `"${out}"`;
}
