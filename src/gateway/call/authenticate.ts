/** Stage 1: who sends this call (the aigov token, as a bearer token or Anthropic's `x-api-key`). */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../../core/events.ts';
import type { ProviderCodec } from '../../providers/codec.ts';
import { authError } from '../api-response.ts';
import type { CallState } from './call-state.ts';

export function authorizationOf(req: IncomingMessage, adapter: ProviderCodec): string | undefined {
  // Anthropic clients send their key as `x-api-key`; accept the aigov token there too.
  const apiKey = adapter.kind === 'anthropic' ? req.headers['x-api-key'] : undefined;
  return req.headers.authorization ?? (typeof apiKey === 'string' && apiKey !== '' ? `Bearer ${apiKey}` : undefined);
}

export async function authenticate(call: CallState): Promise<Principal | null> {
  const result = await call.deps.verifier.verify(authorizationOf(call.req, call.target.adapter));
  if (result.ok) {
    call.principal = result.principal;
    return result.principal;
  }
  call.deps.metrics.authFailures.inc({ code: result.code });
  call.sendError(authError(result), null, { 'www-authenticate': result.wwwAuthenticate });
  return null;
}
