/**
 * Pricing: the price table's lookups (snapshots, globs, config first), the cost arithmetic in
 * whole nano-dollars (cache reads and writes, both providers' input conventions), and the cost
 * the gateway records for real calls — streamed, chunked a byte at a time, with cache tokens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { callCostNanoUsd, findPrice, type ModelPrice } from '../src/core/cost/price-call.ts';
import { BUILT_IN_PRICES } from '../src/core/cost/price-table.ts';
import { mergeUsage, type Usage } from '../src/core/events.ts';
import { formatUsd } from '../src/cli/sessions-format.ts';
import { buildGatewayConfig } from '../src/config/load.ts';
import { parse as parseYaml } from 'yaml';
import { readmeSection } from './support/readme.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript, type Transcript } from './support/replay-upstream.ts';

const openaiProvider = { name: 'openai', kind: 'openai' } as const;
const anthropicProvider = { name: 'anthropic', kind: 'anthropic' } as const;
const builtIn = (provider: typeof openaiProvider | typeof anthropicProvider, model: string): string | null => findPrice([], BUILT_IN_PRICES, provider, model)?.model ?? null;

describe('price lookup', () => {
  const cases: [typeof openaiProvider | typeof anthropicProvider, string, string | null][] = [
    [openaiProvider, 'gpt-4o', 'gpt-4o'],
    [openaiProvider, 'gpt-4o-2024-08-06', 'gpt-4o'],
    [openaiProvider, 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    [openaiProvider, 'gpt-4o-audio-preview', null],
    [openaiProvider, 'gpt-4o-mini-tts', null],
    [openaiProvider, 'o3-mini-2025-01-31', 'o3-mini'],
    [openaiProvider, 'gpt-5-2025-08-07', 'gpt-5'],
    [openaiProvider, 'claude-sonnet-4-5', null],
    [anthropicProvider, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    [anthropicProvider, 'claude-opus-4-1-20250805', 'claude-opus-4-1'],
    [anthropicProvider, 'claude-opus-4-5-20251101', 'claude-opus-4-5'],
    [anthropicProvider, 'claude-opus-4-20250514', 'claude-opus-4'],
    [anthropicProvider, 'claude-3-7-sonnet-latest', 'claude-3-7-sonnet'],
    [anthropicProvider, 'claude-sonnet-4-5-20250929-evil', null],
    [anthropicProvider, 'gpt-4o', null],
    [anthropicProvider, '', null],
  ];
  for (const [provider, model, expected] of cases) {
    it(`${provider.name} ${JSON.stringify(model)} → ${expected ?? 'unpriced'}`, () => assert.equal(builtIn(provider, model), expected));
  }

  it('config prices come first, in order, for their provider only; globs match whole names', () => {
    const configured: ModelPrice[] = [
      { kind: 'openai', provider: 'azure', model: 'gpt-4o', input: 1, output: 1, cachedInput: null, cacheWrite: null, cacheWrite1h: null },
      { kind: 'openai', provider: 'openai', model: 'ft:gpt-4o-mini:*', input: 0.3, output: 1.2, cachedInput: null, cacheWrite: null, cacheWrite1h: null },
      { kind: 'openai', provider: 'openai', model: 'gpt-4o*', input: 9, output: 9, cachedInput: null, cacheWrite: null, cacheWrite1h: null },
    ];
    assert.equal(findPrice(configured, BUILT_IN_PRICES, openaiProvider, 'ft:gpt-4o-mini:acme::abc123')?.input, 0.3);
    assert.equal(findPrice(configured, BUILT_IN_PRICES, openaiProvider, 'gpt-4o-mini')?.input, 9, 'the glob entry wins over the built-in table');
    assert.equal(findPrice(configured, BUILT_IN_PRICES, { name: 'azure', kind: 'openai' }, 'gpt-4o')?.input, 1);
    assert.equal(findPrice(configured, BUILT_IN_PRICES, { name: 'azure', kind: 'openai' }, 'gpt-4o-mini')?.input, 0.15, 'the azure entry names one model; others fall to the table');
    assert.equal(findPrice(configured, BUILT_IN_PRICES, openaiProvider, 'xft:gpt-4o-mini:a'), null);
  });
});

describe('pricing in the config', () => {
  const base = {
    identity: { issuer: 'https://idp.example.com', audience: 'https://aigov.example.com', cli_client_id: 'aigov-cli' },
    providers: [
      { name: 'openai', kind: 'openai', base_url: 'https://api.openai.com/v1' },
      { name: 'anthropic', kind: 'anthropic', base_url: 'https://api.anthropic.com' },
    ],
  };

  it('the README\'s pricing example loads, in order, with each provider\'s kind', () => {
    const text = readmeSection('Sessions').text;
    const block = /```yaml\n(pricing:[\s\S]*?)```/.exec(text)?.[1];
    assert.ok(block !== undefined, 'README "See what was spent" shows a pricing block');
    const config = buildGatewayConfig({ ...base, ...(parseYaml(block) as object) }, 'README.md');
    assert.deepEqual(config.pricing.map((p) => [p.provider, p.kind, p.model, p.input, p.cachedInput, p.cacheWrite, p.cacheWrite1h, p.output]), [
      ['openai', 'openai', 'ft:gpt-4o-mini:*', 0.3, 0.15, null, null, 1.2],
      ['anthropic', 'anthropic', 'claude-sonnet-4-5', 3, 0.3, 3.75, 6, 15],
    ]);
  });

  it('a price for a provider the config does not have, a negative price or too many decimals: a clear error', () => {
    const load = (models: unknown[]): unknown => buildGatewayConfig({ ...base, pricing: { models } }, 'gw.yaml');
    assert.throws(() => load([{ provider: 'azure', model: 'gpt-4o', input: 1, output: 1 }]), /pricing\.models\[0\]\.provider: no provider is named "azure" \(this config has: openai, anthropic\)/);
    assert.throws(() => load([{ provider: 'openai', model: 'gpt-4o', input: -1, output: 1 }]), /pricing\.models\.0\.input|pricing\.models\[0\]\.input/);
    assert.throws(() => load([{ provider: 'openai', model: 'gpt-4o', input: 0.0000001, output: 1 }]), /at most six decimals/);
    assert.throws(() => load([{ provider: 'openai', model: 'gpt-4o', input: 1 }]), /output/);
  });
});

describe('call cost', () => {
  const price = (model: string, provider = openaiProvider as typeof openaiProvider | typeof anthropicProvider): ModelPrice => findPrice([], BUILT_IN_PRICES, provider, model)!;

  it('OpenAI: cached tokens are part of the input count and billed at the cached rate', () => {
    // gpt-4o: $2.50 in, $1.25 cached, $10 out per million.
    assert.equal(callCostNanoUsd(price('gpt-4o'), { inputTokens: 1000, outputTokens: 500 }), 7_500_000);
    assert.equal(callCostNanoUsd(price('gpt-4o'), { inputTokens: 1000, cacheReadTokens: 800, outputTokens: 500 }), 200 * 2500 + 800 * 1250 + 500 * 10_000);
    // Reasoning tokens are already in the output count: no extra charge.
    assert.equal(callCostNanoUsd(price('o3'), { inputTokens: 10, outputTokens: 100, reasoningTokens: 90 }), 10 * 2000 + 100 * 8000);
  });

  it('Anthropic: cache reads and writes are counted apart from the input, one-hour writes dearer', () => {
    const sonnet = price('claude-sonnet-4-5', anthropicProvider);
    // $3 in, $0.30 cache read, $3.75 five-minute write, $6 one-hour write, $15 out.
    const usage: Usage = { inputTokens: 100, cacheReadTokens: 10_000, cacheWriteTokens: 2000, cacheWrite1hTokens: 500, outputTokens: 300 };
    assert.equal(callCostNanoUsd(sonnet, usage), 100 * 3000 + 10_000 * 300 + 1500 * 3750 + 500 * 6000 + 300 * 15_000);
    assert.equal(callCostNanoUsd(sonnet, usage), 16_425_000); // $0.016425
  });

  it('rounds to the nearest nano-dollar and stays exact past 2^53 pico-dollars', () => {
    assert.equal(callCostNanoUsd(price('gpt-5-nano'), { inputTokens: 1, outputTokens: 0 }), 50); // $0.05/M = 50 nano per token
    const cheap: ModelPrice = { kind: 'openai', model: 'x', input: 0.000001, output: 0, cachedInput: null, cacheWrite: null, cacheWrite1h: null };
    assert.equal(callCostNanoUsd(cheap, { inputTokens: 499 }), 0);
    assert.equal(callCostNanoUsd(cheap, { inputTokens: 500 }), 1);
    const dear: ModelPrice = { kind: 'openai', model: 'x', input: 99_999.999999, output: 0, cachedInput: null, cacheWrite: null, cacheWrite1h: null };
    assert.equal(callCostNanoUsd(dear, { inputTokens: 1_000_000_000 }), 99_999_999_999_000_000);
  });

  it('says nothing (null) for usage without counts or with counts not to be believed', () => {
    const p = price('gpt-4o');
    assert.equal(callCostNanoUsd(p, {}), null);
    assert.equal(callCostNanoUsd(p, { totalTokens: 50 }), null);
    assert.equal(callCostNanoUsd(p, { inputTokens: -1, outputTokens: 1 }), null);
    assert.equal(callCostNanoUsd(p, { inputTokens: 1.5 }), null);
    assert.equal(callCostNanoUsd(p, { inputTokens: 2e9 }), null);
    assert.equal(callCostNanoUsd(p, { inputTokens: 10, cacheReadTokens: 50 }), 50 * 1250, 'more cached than input: no negative uncached part');
  });

  it('merging Anthropic stream usage: the total follows the final output count', () => {
    const start = mergeUsage(undefined, { inputTokens: 472, outputTokens: 1, totalTokens: 473, cacheReadTokens: 0 });
    const end = mergeUsage(start, { outputTokens: 89 });
    assert.deepEqual(end, { inputTokens: 472, outputTokens: 89, totalTokens: 561, cacheReadTokens: 0 });
  });

  it('formats dollars readably', () => {
    assert.deepEqual([16.425, 0.016425, 0.0075, 0.000075, 3e-7, 0].map(formatUsd), ['$16.43', '$0.016', '$0.0075', '$0.000075', '$0.0000003', '$0']);
  });
});

describe('the gateway records what each call cost', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      pricing: { models: [{ provider: 'openai', model: 'house-model', input: 1, output: 2 }] },
    });
  });
  after(async () => {
    await h.close();
  });

  async function lastUsage(): Promise<Usage | null> {
    await h.gateway.store.flush();
    const sessions = await h.gateway.store.listSessions({ limit: 1 });
    const calls = await h.gateway.store.listCalls(sessions[0]!.sessionId);
    return calls.at(-1)!.usage;
  }

  /** A recorded transcript with its usage numbers changed (the wire format as recorded). */
  function withUsage(name: string, replace: [string, string][]): Transcript {
    const t = loadTranscript(name);
    let body = t.body;
    for (const [from, to] of replace) {
      assert.ok(body.includes(from), `${name} has ${from}`);
      body = body.replace(from, to);
    }
    return { ...t, body };
  }

  it('an Anthropic stream with cache reads and writes, a byte at a time', async () => {
    h.upstream.reset();
    h.upstream.route(
      'POST',
      '/v1/messages',
      withUsage('anthropic-messages-stream-tools', [
        // message_start, then message_delta's cumulative counts (as the API sends them since 2025).
        ['"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0}', '"cache_creation_input_tokens":2000,"cache_read_input_tokens":10000,"cache_creation":{"ephemeral_5m_input_tokens":1500,"ephemeral_1h_input_tokens":500}'],
        ['"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":89', '"cache_creation_input_tokens":2000,"cache_read_input_tokens":10000,"output_tokens":89'],
      ]),
      { chunking: 'bytes' },
    );
    const client = new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 });
    const final = await client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'weather' }] }).finalMessage();
    const usage = await lastUsage();
    const { input_tokens: input, output_tokens: output } = final.usage;
    assert.equal(usage?.cacheReadTokens, 10_000);
    assert.equal(usage?.cacheWriteTokens, 2000);
    assert.equal(usage?.cacheWrite1hTokens, 500);
    assert.equal(usage?.outputTokens, output);
    assert.equal(usage?.totalTokens, input + output);
    assert.equal(usage?.costNanoUsd, input * 3000 + 10_000 * 300 + 1500 * 3750 + 500 * 6000 + output * 15_000);
  });

  it('an OpenAI chat stream with include_usage and cached tokens, priced by the snapshot the answer names', async () => {
    h.upstream.reset();
    h.upstream.route('POST', '/v1/chat/completions', withUsage('openai-chat-stream', [['"prompt_tokens_details":{"cached_tokens":0', '"prompt_tokens_details":{"cached_tokens":16']]), { chunking: { random: 7 } });
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) void chunk;
    const usage = await lastUsage();
    // gpt-4o-mini-2024-07-18: $0.15 in, $0.075 cached, $0.60 out; 24 prompt tokens of which 16 cached, 25 out.
    assert.equal(usage?.cacheReadTokens, 16);
    assert.equal(usage?.costNanoUsd, 8 * 150 + 16 * 75 + 25 * 600);
  });

  it('a model with a config price, and one with no price at all (recorded as unpriced)', async () => {
    h.upstream.reset();
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
    // The transcript's answer names gpt-4o-mini-2024-07-18: priced by what the answer says.
    const answer = await client.chat.completions.create({ model: 'house-model', messages: [{ role: 'user', content: 'hi' }] });
    const usage = await lastUsage();
    assert.equal(usage?.costNanoUsd, (answer.usage!.prompt_tokens - (answer.usage!.prompt_tokens_details?.cached_tokens ?? 0)) * 150 + (answer.usage!.prompt_tokens_details?.cached_tokens ?? 0) * 75 + answer.usage!.completion_tokens * 600);

    h.upstream.route('POST', '/v1/chat/completions', () => {
      const t = loadTranscript('openai-chat');
      return { ...t, body: t.body.replaceAll('gpt-4o-mini-2024-07-18', 'house-model') };
    });
    await client.chat.completions.create({ model: 'house-model', messages: [{ role: 'user', content: 'hi' }] });
    const house = await lastUsage();
    assert.equal(house?.costNanoUsd, house!.inputTokens! * 1000 + house!.outputTokens! * 2000);

    h.upstream.route('POST', '/v1/chat/completions', () => {
      const t = loadTranscript('openai-chat');
      return { ...t, body: t.body.replaceAll('gpt-4o-mini-2024-07-18', 'mystery-model') };
    });
    await client.chat.completions.create({ model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] });
    const unpriced = await lastUsage();
    assert.ok(unpriced?.inputTokens);
    assert.equal(unpriced?.costNanoUsd, null);
  });
});
