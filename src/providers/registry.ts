/** The provider codecs by kind: adding a provider is one module and one line here. */
import type { EndpointId, ProviderKind } from '../core/events.ts';
import { rewriteAnswerBody, type ProviderAdapter } from './adapter.ts';
import type { TextRewriter } from './channels.ts';
import { anthropicAdapter } from './anthropic.ts';
import { openaiAdapter } from './openai.ts';

export const ADAPTERS: Readonly<Record<ProviderKind, ProviderAdapter>> = { openai: openaiAdapter, anthropic: anthropicAdapter };

/** The codec an endpoint belongs to (null: `unrouted`). */
export function adapterForEndpoint(endpoint: EndpointId): ProviderAdapter | null {
  if (endpoint.startsWith('openai.')) return openaiAdapter;
  if (endpoint.startsWith('anthropic.')) return anthropicAdapter;
  return null;
}

/** rewriteAnswerBody for an endpoint's codec; the body unchanged for `unrouted`. */
export function rewriteAnswer(endpoint: EndpointId, body: string, rewriter: TextRewriter): string {
  const adapter = adapterForEndpoint(endpoint);
  return adapter ? rewriteAnswerBody(adapter, endpoint, body, rewriter) : body;
}
