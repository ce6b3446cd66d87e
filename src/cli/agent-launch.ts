/**
 * Agents that do not read the SDKs' environment are told where the daemon is in their own words.
 *
 * Codex (0.171) ignores OPENAI_BASE_URL and, with its built-in provider, first tries a Responses
 * WebSocket. `aigov run -- codex …` therefore starts it with a provider entry of its own, given as
 * `-c` overrides ahead of the user's arguments: base URL = the daemon, key = the run key from
 * OPENAI_API_KEY, Responses over HTTP. Nothing is written to the user's ~/.codex, so Codex run
 * without aigov is untouched, and the daemon's port may change between runs. The user's own `-c`
 * flags come later and win. A wrapper (`npx codex`, a shell script) is not recognized: run the
 * `codex` binary itself, or pass the same two flags (README "Governing coding agents").
 */
import { basename } from 'node:path';

const CODEX = /^codex(?:\.js|\.cmd|\.exe)?$/i;

export const CODEX_PROVIDER_ID = 'aigov';

/** The argument list to start `command` with, given the child's environment. */
export function agentArgs(command: string, args: readonly string[], env: NodeJS.ProcessEnv): readonly string[] {
  const base = env.OPENAI_BASE_URL;
  if (!CODEX.test(basename(command)) || base === undefined || base === '') return args;
  return [...codexProviderFlags(base), ...args];
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
