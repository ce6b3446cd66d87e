/**
 * The aigov API's own answers (approvals, sessions): JSON bodies, `{"error": {code, message, hint}}`
 * errors with the registry's status, and the authentication every endpoint starts with. The
 * governed provider API answers in the providers' shapes instead (providers/codec.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenVerifier, VerifyResult } from '../auth/verify-token.ts';
import { AigovError } from '../core/errors.ts';
import type { Principal } from '../core/events.ts';

/** The coded error for a token the verifier refused. */
export function authError(result: Extract<VerifyResult, { ok: false }>): AigovError {
  if (result.code === 'AIGOV_E_AUTH_INVALID') return new AigovError('AIGOV_E_AUTH_INVALID', { reason: result.reason });
  if (result.code === 'AIGOV_E_AUTH_SCOPE') return new AigovError('AIGOV_E_AUTH_SCOPE', { scope: result.scope ?? 'required by this gateway' });
  return new AigovError(result.code);
}

/** The caller's principal, or null once a 401/403 has been sent. */
export async function authenticateApiCall(verifier: TokenVerifier, req: IncomingMessage, res: ServerResponse): Promise<Principal | null> {
  const result = await verifier.verify(req.headers.authorization);
  if (result.ok) return result.principal;
  sendApiError(res, authError(result), { 'www-authenticate': result.wwwAuthenticate });
  return null;
}

export function sendApiJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
  res.end(text);
}

export function sendApiError(res: ServerResponse, error: AigovError, headers: Record<string, string> = {}): void {
  sendApiJson(res, error.status, { error: { code: error.code, message: error.message, hint: error.hint } }, headers);
}
