/** The keep-alive connection pool to upstream providers (one undici Agent for all origins). */
import { Agent, type Dispatcher } from 'undici';
import type { GatewayConfig } from '../config/schema.ts';
import { decodeContent, type Decoded } from './content-coding.ts';

export function createUpstreamAgent(limits: GatewayConfig['limits']): Agent {
  return new Agent({
    connect: { timeout: limits.upstream_connect_timeout_ms },
    headersTimeout: limits.upstream_headers_timeout_ms,
    bodyTimeout: limits.upstream_idle_timeout_ms,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    // Sized from the config; the pipeline never lets more calls than this wait for one.
    connections: limits.upstream_max_connections,
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

/**
 * Counts the calls open to each provider, so a call past `upstream_max_connections` is refused
 * at once (503) instead of waiting in the pool's queue without headers.
 */
export class UpstreamSlots {
  readonly #open = new Map<string, number>();
  readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  /** Takes a slot for `provider`; false when all are taken. */
  take(provider: string): boolean {
    const open = this.#open.get(provider) ?? 0;
    if (open >= this.limit) return false;
    this.#open.set(provider, open + 1);
    return true;
  }
  release(provider: string): void {
    this.#open.set(provider, (this.#open.get(provider) ?? 1) - 1);
  }
}

/**
 * The upstream's body as identity bytes. We ask for `accept-encoding: identity`, but an upstream
 * or a proxy in front of it may compress anyway (content-coding.ts).
 */
export function decodedBody(upstream: Dispatcher.ResponseData): Decoded {
  return decodeContent(upstream.body, upstream.headers['content-encoding']);
}
