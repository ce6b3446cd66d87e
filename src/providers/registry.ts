/** The provider codecs by kind: adding a provider is one module and one line here. */
import type { ProviderKind } from '../core/events.ts';
import type { ProviderAdapter } from './adapter.ts';
import { anthropicAdapter } from './anthropic.ts';
import { openaiAdapter } from './openai.ts';

export const ADAPTERS: Readonly<Record<ProviderKind, ProviderAdapter>> = { openai: openaiAdapter, anthropic: anthropicAdapter };
