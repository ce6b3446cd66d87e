/**
 * Agents that do not read the SDKs' environment as the SDKs do are told where the daemon is in
 * their own words. Recognized by the program's name (any path); a wrapper (`npx codex`, a shell
 * script) is not: README "Governing coding agents" gives the settings to pass by hand.
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

/** How to start `command`: its arguments and environment, given the child's environment. */
export function agentLaunch(command: string, args: readonly string[], env: NodeJS.ProcessEnv): AgentLaunch {
  const name = basename(command);
  const openai = env.OPENAI_BASE_URL;
  if (CODEX.test(name) && openai !== undefined && openai !== '') return { args: [...codexProviderFlags(openai), ...args], env };
  const key = env.ANTHROPIC_API_KEY;
  if (CLAUDE.test(name) && key !== undefined && key !== '') {
    const { ANTHROPIC_API_KEY: _asked, ...rest } = env;
    return { args, env: { ...rest, ANTHROPIC_AUTH_TOKEN: key } };
  }
  return { args, env };
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
