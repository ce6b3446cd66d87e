/**
 * The gateway URL a user gives (`--gateway`, AIGOV_GATEWAY) in its one normal form. Apart from
 * the OAuth client so that `aigov run` can compare URLs without loading openid-client.
 */
import { AigovError } from '../core/errors.ts';

/** 127.0.0.0/8, ::1 and localhost: the only hosts plain http is allowed for. */
export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Normalises a gateway URL given by the user: absolute http(s), no trailing slash, no query. */
export function normalizeGatewayUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: safeUrlText(input), reason: 'not an absolute URL' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: url.origin, reason: 'only http(s) URLs are supported' });
  }
  if (url.protocol === 'http:' && !isLoopbackUrl(url)) {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', {
      url: url.origin,
      reason: 'plain http is allowed only for loopback addresses; use https',
    });
  }
  if (url.username || url.password) {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: url.origin, reason: 'the URL must not contain credentials' });
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function safeUrlText(input: string): string {
  const clipped = input.replace(/[^\x20-\x7e]/g, '?');
  return clipped.length > 80 ? `${clipped.slice(0, 80)}…` : clipped;
}
