/**
 * The gateway URL a user gives (`--gateway`, AIGOV_GATEWAY) in its one normal form. Apart from
 * the OAuth client so that `aigov run` can compare URLs without loading openid-client.
 */
import { AigovError, quotedInput } from '../core/errors.ts';

/** 127.0.0.0/8, ::1 and localhost: the only hosts plain http is allowed for. */
export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

const EXAMPLE = '`aigov login --gateway https://aigov.example.com`, or `--gateway 127.0.0.1:8787` for a local `aigov server --dev`';

/**
 * Normalises a gateway URL given by the user: absolute http(s), no trailing slash, no query.
 * Without a scheme (`localhost:8787`, `aigov.example.com`) it is http for a loopback host and
 * https otherwise. A value that cannot be a gateway URL is the user's input error
 * (AIGOV_E_BAD_FLAG, exit 64) naming `flag`, never something a gateway answered.
 */
export function normalizeGatewayUrl(input: string, flag = '--gateway'): string {
  const text = input.trim();
  const bad = (problem: string): AigovError<'AIGOV_E_BAD_FLAG'> =>
    new AigovError('AIGOV_E_BAD_FLAG', { flag, value: quotedInput(withoutUserInfo(text)), problem, example: EXAMPLE });
  if (text === '') throw bad('it is empty; give the gateway base URL');
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(text) ? text : withDefaultScheme(text));
  } catch {
    throw bad('it is not a URL (scheme://host[:port])');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw bad(`aigov gateways answer over http(s), not ${url.protocol.slice(0, -1).slice(0, 20)}`);
  }
  if (url.protocol === 'http:' && !isLoopbackUrl(url)) {
    throw bad('plain http is allowed only for loopback hosts (localhost, 127.0.0.1, ::1); use https');
  }
  if (url.username || url.password) throw bad('a gateway URL carries no user name or password (you sign in with `aigov login`)');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** `localhost:8787` → `http://localhost:8787`; `aigov.example.com` → `https://aigov.example.com`. */
function withDefaultScheme(text: string): string {
  // `http:/host`, `https:host`: a scheme mistyped, not missing — guessing would hide the typo.
  if (/^https?:/i.test(text)) throw new TypeError('malformed scheme');
  const url = new URL(`http://${text}`);
  return isLoopbackUrl(url) ? url.href : `https://${text}`;
}

/** A URL as typed, minus any `user:password@` (never echoed). */
function withoutUserInfo(text: string): string {
  return text.replace(/^([a-z][a-z\d+.-]*:\/\/)?[^/?#@]*@/i, '$1***@');
}
