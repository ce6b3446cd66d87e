/**
 * Between recording and forwarding: thinking blocks whose text the gateway masked carry a seal
 * in their signature (../thinking-seal.ts); they go upstream with the provider's own text and
 * signature again. The record keeps the request as the client sent it (seals included).
 */
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import { isObject, parseJson } from '../../core/json.ts';
import { THINKING_SEAL_PREFIX } from '../thinking-seal.ts';
import type { CallState } from './call-state.ts';

/** The body to send, or null when a seal cannot be opened (the call is then refused). */
export function unsealThinking(call: CallState, principal: Principal, bodyText: string): string | null {
  const { adapter, route } = call.target;
  if (!adapter.unsealThinking || !bodyText.includes(THINKING_SEAL_PREFIX)) return bodyText;
  const json = parseJson(bodyText);
  if (!isObject(json)) return bodyText;
  const seal = call.deps.thinkingSeal;
  const result = adapter.unsealThinking(route.endpoint, json, (signature) => signature.startsWith(THINKING_SEAL_PREFIX), (signature) => seal.open(principal.subject, signature));
  if (result.unopened > 0) {
    call.deps.logger.warn({ callId: call.callId, seals: result.unopened }, 'a sealed thinking block cannot be opened (another key or user); request refused');
    call.sendError(new AigovError('AIGOV_E_THINKING_UNRESTORABLE'), 'failed');
    return null;
  }
  return result.changed ? JSON.stringify(json) : bodyText;
}
