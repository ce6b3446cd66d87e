/** The keep-alive connection pool to upstream providers (one undici Agent for all origins). */
import { Agent } from 'undici';
import type { GatewayConfig } from '../config/schema.ts';

export function createUpstreamAgent(limits: GatewayConfig['limits']): Agent {
  return new Agent({
    connect: { timeout: limits.upstream_connect_timeout_ms },
    headersTimeout: limits.upstream_headers_timeout_ms,
    bodyTimeout: limits.upstream_idle_timeout_ms,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: 256,
    pipelining: 1,
  });
}

/** Classifies an undici failure for the error registry. */
export function classifyUpstreamError(error: unknown): 'timeout' | 'unreachable' | 'aborted' {
  const code = (error as { code?: string } | null)?.code ?? '';
  const name = (error as { name?: string } | null)?.name ?? '';
  if (name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'aborted';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
  return 'unreachable';
}

const BASES = new Map<string, { readonly origin: string; readonly path: string }>();

/**
 * A provider's base URL (from the gateway config, trusted) split into the origin and the path
 * prefix that each upstream path is appended to — by concatenation, never URL resolution, so no
 * client text can climb out of the prefix.
 */
export function upstreamBase(baseUrl: string): { readonly origin: string; readonly path: string } {
  let base = BASES.get(baseUrl);
  if (base === undefined) {
    const url = new URL(baseUrl);
    base = { origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
    BASES.set(baseUrl, base);
  }
  return base;
}
