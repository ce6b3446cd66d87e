/**
 * PostgreSQL connection URLs (`storage.url`): checking one, and the only form in which one is
 * ever shown — with its password, and any password-like query parameter, replaced by `***`.
 * A URL is a secret when it carries a password; nothing here echoes it.
 */

/** Query parameters libpq and node-postgres read that hold secrets. */
const SECRET_PARAMS = new Set(['password', 'sslpassword', 'sslkey', 'sslcert', 'sslrootcert', 'passfile']);

/** A reason the text is not a usable PostgreSQL URL (never quoting it), or null. */
export function databaseUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'expected a URL such as postgres://aigov@db.internal:5432/aigov (the value given cannot be parsed as a URL; percent-encode special characters in the password)';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return `expected a postgres:// or postgresql:// URL (got the scheme ${JSON.stringify(url.protocol.replace(/:$/, '').slice(0, 20))})`;
  if (url.hash !== '') return 'expected a URL without a #fragment';
  return null;
}

/** True when the URL carries a password (in its user info or a query parameter). */
export function databaseUrlHasPassword(text: string): boolean {
  try {
    const url = new URL(text);
    return url.password !== '' || [...url.searchParams.keys()].some((k) => k.toLowerCase() === 'password');
  } catch {
    return true; // unknown: treat it as secret
  }
}

/** The URL as it may be logged and shown: `postgres://aigov:***@db:5432/aigov`. */
export function redactDatabaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '(a PostgreSQL URL that cannot be parsed)';
  }
  if (url.password !== '') url.password = '***';
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAMS.has(key.toLowerCase())) url.searchParams.set(key, '***');
  }
  url.hash = '';
  // URL escapes the stars in the user info (%2A%2A%2A); show them as written.
  return url.toString().replace(/%2A%2A%2A/g, '***');
}

/** `text` with every occurrence of the URL's secrets (password, whole URL) replaced: for error texts from the driver. */
export function scrubDatabaseSecrets(text: string, databaseUrl: string): string {
  let out = text.split(databaseUrl).join(redactDatabaseUrl(databaseUrl));
  const secrets: string[] = [];
  try {
    const url = new URL(databaseUrl);
    if (url.password !== '') secrets.push(url.password, decodeURIComponent(url.password));
    for (const [key, value] of url.searchParams) if (SECRET_PARAMS.has(key.toLowerCase()) && value !== '') secrets.push(value);
  } catch {
    // unparsable: only the whole URL is known
  }
  for (const secret of secrets.sort((a, b) => b.length - a.length)) {
    // Even a one-letter password is hidden (the text then reads badly; it never leaks).
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}
