/**
 * Request paths that different HTTP layers could read differently. A reverse proxy or an
 * upstream may resolve `..`, turn `\` into `/` or decode `%2f` before routing; aigov routes on
 * the path exactly as sent. Where those readings could differ, the request is refused rather
 * than guessed at: the daemon refuses them from its (untrusted) child, the gateway from anyone.
 */

/** Why `pathname` (no query) is ambiguous, or null when every layer reads it the same way. */
export function ambiguousPath(pathname: string): string | null {
  if (!pathname.startsWith('/')) return 'a path that does not start with "/"';
  if (pathname.includes('\\')) return 'a backslash';
  if (/%(?:2f|5c|2e|25|00)/i.test(pathname)) return 'an encoded slash, backslash, dot, percent sign or NUL';
  if (pathname.includes('//')) return 'an empty path segment';
  if (/\/\.\.?(?:\/|$)/.test(pathname)) return 'a dot segment';
  if (!/^[\x21-\x7e]*$/.test(pathname)) return 'whitespace, control or non-ASCII characters';
  return null;
}

/**
 * A WebSocket handshake (`Upgrade: websocket`). aigov governs HTTP only: the daemon and the
 * gateway answer 426, on which Codex falls back to HTTPS at once (a 404/405 makes it retry).
 */
export function isWebSocketUpgrade(headers: { readonly upgrade?: string | undefined }): boolean {
  return typeof headers.upgrade === 'string' && /\bwebsocket\b/i.test(headers.upgrade);
}
