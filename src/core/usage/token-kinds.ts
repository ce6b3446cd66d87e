/**
 * A call's tokens by the kind they are billed as, the same for both providers: OpenAI counts
 * cache reads inside its input count, Anthropic apart from it. Usage reports and the spend
 * metrics add these up; the store's aggregation query does the same arithmetic in SQL (the store
 * contract tests hold it to this function).
 */
import type { ProviderKind, Usage } from '../events.ts';

export interface TokensByKind {
  /** Input tokens billed at the plain input rate (neither read from nor written to a cache). */
  readonly input: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  /** Output tokens, reasoning included. */
  readonly output: number;
  /** Of `output`, those spent reasoning. */
  readonly reasoning: number;
}

export function tokensByKind(kind: ProviderKind, usage: Usage): TokensByKind {
  const input = usage.inputTokens ?? 0;
  const cacheRead = usage.cacheReadTokens ?? 0;
  return {
    input: kind === 'openai' ? Math.max(0, input - cacheRead) : input,
    cacheRead,
    cacheWrite: usage.cacheWriteTokens ?? 0,
    output: usage.outputTokens ?? 0,
    reasoning: usage.reasoningTokens ?? 0,
  };
}
