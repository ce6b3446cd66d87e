/**
 * The flags a fast path (fast-sessions.ts, fast-usage.ts: commands answered without loading
 * oclif) takes: `--json`, and value flags as `--name value` or `--name=value`, each once. Null
 * for anything else — an unknown or repeated flag, a missing or empty value, an argument — so
 * that oclif parses the command and says what is wrong.
 */
export function parseFastFlags(args: readonly string[], isValueFlag: (name: string) => boolean): { readonly values: Record<string, string>; readonly json: boolean } | null {
  const values: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--json') {
      json = true;
      continue;
    }
    if (!arg.startsWith('--')) return null;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!isValueFlag(name) || name in values) return null;
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) return null;
    values[name] = value;
  }
  return { values, json };
}
