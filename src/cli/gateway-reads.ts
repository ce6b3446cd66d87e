/**
 * GETs of the gateway's own API (sessions, usage) from the CLI, on the profile's access tokens:
 * the token reused until shortly before it expires, renewed and the call retried once on a 401;
 * a JSON answer within a time limit; the gateway's coded errors as AigovErrors with its code,
 * message and hint; an answer checked against the protocol's zod schema.
 */
import { AigovError } from '../core/errors.ts';
import { errorFromResponse, type GatewayToken } from './approvals-service.ts';

export interface GatewayReaderOptions {
  readonly gatewayUrl: string;
  readonly getToken: (options: { renew: boolean }) => Promise<GatewayToken>;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** `json` gives up after this long without a complete answer; default 30 s. */
  readonly requestTimeoutMs?: number;
}

export interface GatewayReader {
  /** The gateway URL without a trailing slash. */
  readonly base: string;
  readonly origin: string;
  /** One GET (the token renewed and the call retried once on a 401); rejects with the gateway's coded error. */
  readonly get: (path: string, accept: string, signal?: AbortSignal) => Promise<Response>;
  /** A GET whose answer is JSON, within the time limit. */
  readonly json: (path: string) => Promise<unknown>;
}

const TOKEN_MARGIN_MS = 30_000;

export function createGatewayReader(options: GatewayReaderOptions): GatewayReader {
  const base = options.gatewayUrl.replace(/\/+$/, '');
  const origin = new URL(base).origin;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  let cached: GatewayToken | null = null;

  const token = async (renew: boolean): Promise<string> => {
    if (!renew && cached !== null && cached.expiresAt - TOKEN_MARGIN_MS > now()) return cached.token;
    cached = await options.getToken({ renew });
    return cached.token;
  };

  const get = async (path: string, accept: string, signal?: AbortSignal): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const bearer = await token(attempt > 0);
      let response: Response;
      try {
        response = await doFetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}`, accept }, redirect: 'error', ...(signal ? { signal } : {}) });
      } catch (error) {
        throw await unreachable(error, origin, signal);
      }
      if (response.ok) return response;
      const error = await errorFromResponse(response, 'GET', path, origin);
      if (response.status === 401 && attempt === 0) continue;
      throw error;
    }
  };

  return {
    base,
    origin,
    get,
    json: async (path) => {
      const signal = AbortSignal.timeout(timeoutMs);
      const response = await get(path, 'application/json', signal);
      try {
        return await response.json();
      } catch (error) {
        if (signal.aborted) throw await unreachable(error, origin, signal);
        throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: `its answer to GET ${pathOnly(path)} is not JSON` }, { cause: error });
      }
    },
  };
}

/** AIGOV_E_GATEWAY_UNREACHABLE for a request that failed (or ran out of time). */
export async function unreachable(error: unknown, origin: string, signal: AbortSignal | undefined): Promise<AigovError> {
  if (signal?.aborted) return new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'no answer in time' });
  const { networkReason } = await import('../auth/oidc-client.ts');
  return new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: networkReason(error) }, { cause: error });
}

function pathOnly(path: string): string {
  return path.split('?')[0] ?? path;
}

/** `value` as `schema` has it, or AIGOV_E_GATEWAY_INVALID naming where it differs from the `protocol`'s. */
export function validateAnswer<T>(
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[] }[] } } },
  value: unknown,
  what: string,
  origin: string,
  protocol: string,
): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues[0]?.path.map(String).join('.') || '(top level)';
  throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: `its answer to ${what} does not match the ${protocol} protocol (at ${where}); is the CLI older than the gateway?` });
}
