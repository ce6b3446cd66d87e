/**
 * Property: any request the provider's schema allows goes through the gateway unchanged when no
 * policy rewrites it — byte for byte, whatever roles, content-block types, item types and fields
 * it carries that aigov does not know. The gateway must never refuse what the provider would
 * accept. Bodies are generated from a seeded PRNG (reproducible: the failing seed is printed),
 * in the shapes the providers document and the agents send, with unknown extras mixed in, and
 * serialized with random whitespace and escapes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { seededRandom } from './support/seeded-random.ts';

/** Generated JSON values (loosely typed: optional fields come and go). */
type Json = unknown;

class Gen {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  times<T>(min: number, max: number, make: () => T): T[] {
    return Array.from({ length: min + this.int(max - min + 1) }, make);
  }
  text(): string {
    const pieces = ['hello', 'Grüße', '日本語', 'emoji 🚀', 'quote " and \\ backslash', 'tab\tnew\nline', '\u0000nul', '\u2028sep', 'zero\u200bwidth', '<tag>', '{"json":"inside"}', 'a'.repeat(300), ''];
    return this.times(1, 4, () => this.pick(pieces)).join(' ');
  }
  /** Fields nobody documented yet: a provider may add them any day. */
  extras(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (let i = this.int(3); i > 0; i--) out[`x_future_${this.int(1000)}`] = this.pick<Json>([null, true, 3.5e-7, -0, this.text(), [1, 'two', { three: 3 }], { nested: { deep: [this.text()] } }]);
    return out;
  }
  id(prefix: string): string {
    return `${prefix}_${this.int(1e9).toString(36)}`;
  }
}

// ---- Anthropic Messages ----

function anthropicBlock(g: Gen, role: string): Json {
  const cache = g.chance(0.2) ? { cache_control: { type: 'ephemeral', ...(g.chance(0.5) ? { ttl: '1h' } : {}) } } : {};
  const kinds = role === 'assistant' ? ['text', 'tool_use', 'thinking', 'redacted_thinking', 'server_tool_use', 'web_search_tool_result', 'future_block'] : ['text', 'image', 'document', 'tool_result', 'search_result', 'future_block'];
  switch (g.pick(kinds)) {
    case 'text':
      return { type: 'text', text: g.text(), ...(g.chance(0.2) ? { citations: [{ type: 'char_location', cited_text: g.text(), document_index: 0, start_char_index: 0, end_char_index: 3 }] } : {}), ...cache, ...g.extras() };
    case 'image':
      return { type: 'image', source: g.chance(0.5) ? { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } : { type: 'url', url: 'https://example.com/a.png' }, ...cache };
    case 'document':
      return { type: 'document', source: { type: 'text', media_type: 'text/plain', data: g.text() }, title: g.text(), context: g.text(), citations: { enabled: g.chance(0.5) } };
    case 'tool_result':
      return { type: 'tool_result', tool_use_id: g.id('toolu'), content: g.chance(0.5) ? g.text() : [{ type: 'text', text: g.text() }, { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } }], ...(g.chance(0.3) ? { is_error: true } : {}), ...cache };
    case 'search_result':
      return { type: 'search_result', source: 'https://example.com', title: g.text(), content: [{ type: 'text', text: g.text() }] };
    case 'tool_use':
      return { type: 'tool_use', id: g.id('toolu'), name: g.pick(['Bash', 'Read', 'Edit', 'mcp__x__y']), input: { command: g.text(), n: g.int(10), flags: [g.text()] } };
    case 'thinking':
      return { type: 'thinking', thinking: g.text(), signature: 'EqQBCkYIBxgC' };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' };
    case 'server_tool_use':
      return { type: 'server_tool_use', id: g.id('srvtoolu'), name: 'web_search', input: { query: g.text() } };
    case 'web_search_tool_result':
      return { type: 'web_search_tool_result', tool_use_id: g.id('srvtoolu'), content: [{ type: 'web_search_result', url: 'https://example.com', title: g.text(), encrypted_content: 'Eq0=' }] };
    default:
      return { type: `future_${g.int(100)}`, payload: g.text(), ...g.extras() };
  }
}

function anthropicBody(g: Gen): Json {
  const messages: Json[] = [];
  const turns = 1 + g.int(5);
  for (let i = 0; i < turns; i++) {
    const role = i % 2 === 0 ? 'user' : 'assistant';
    messages.push({ role, content: g.chance(0.3) ? g.text() : g.times(1, 3, () => anthropicBlock(g, role)), ...g.extras() });
    // Claude Code 2.1 sends system turns mid-conversation.
    if (g.chance(0.15)) messages.push({ role: 'system', content: g.text() });
  }
  if ((messages.at(-1) as { role?: string }).role !== 'user') messages.push({ role: 'user', content: g.text() });
  const tools = g.times(0, 3, () =>
    g.pick<Json>([
      { name: g.pick(['Bash', 'Read', 'get_weather']), description: g.text(), input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] }, ...(g.chance(0.3) ? { cache_control: { type: 'ephemeral' } } : {}) },
      { type: 'bash_20250124', name: 'bash' },
      { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool', max_characters: 10000 },
      { type: 'web_search_20250305', name: 'web_search', max_uses: 5, allowed_domains: ['example.com'] },
      { type: 'future_tool_2027', name: 'future', config: g.extras() },
    ]),
  );
  return {
    model: g.pick(['claude-opus-5-5', 'claude-sonnet-4-5', 'claude-haiku-4-5-20251001']),
    max_tokens: 1 + g.int(64000),
    messages,
    ...(g.chance(0.6) ? { system: g.chance(0.5) ? g.text() : [{ type: 'text', text: g.text(), cache_control: { type: 'ephemeral' } }] } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(g.chance(0.3) ? { tool_choice: g.pick<Json>([{ type: 'auto', disable_parallel_tool_use: true }, { type: 'any' }, { type: 'tool', name: 'Bash' }, { type: 'none' }]) } : {}),
    ...(g.chance(0.3) ? { thinking: { type: 'enabled', budget_tokens: 1024 } } : {}),
    ...(g.chance(0.3) ? { metadata: { user_id: g.id('user') } } : {}),
    ...(g.chance(0.2) ? { stop_sequences: [g.text()] } : {}),
    ...(g.chance(0.2) ? { temperature: 0.7, top_p: 0.9, top_k: 40 } : {}),
    ...(g.chance(0.2) ? { service_tier: 'auto' } : {}),
    ...(g.chance(0.2) ? { context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] } } : {}),
    ...g.extras(),
    stream: g.chance(0.5),
  };
}

// ---- OpenAI Chat Completions ----

function chatBody(g: Gen): Json {
  const part = (): Json =>
    g.pick<Json>([
      { type: 'text', text: g.text() },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } },
      { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
      { type: 'file', file: { file_id: g.id('file') } },
      { type: 'future_part', data: g.text() },
    ]);
  const messages: Json[] = g.times(1, 6, () => {
    switch (g.pick(['system', 'developer', 'user', 'assistant', 'tool', 'function'])) {
      case 'system':
        return { role: 'system', content: g.text(), ...(g.chance(0.3) ? { name: 'ops' } : {}) };
      case 'developer':
        return { role: 'developer', content: g.chance(0.5) ? g.text() : [{ type: 'text', text: g.text() }] };
      case 'user':
        return { role: 'user', content: g.chance(0.4) ? g.text() : g.times(1, 3, part), ...g.extras() };
      case 'assistant':
        return {
          role: 'assistant',
          content: g.chance(0.3) ? null : g.text(),
          ...(g.chance(0.4) ? { tool_calls: [{ id: g.id('call'), type: 'function', function: { name: 'shell', arguments: JSON.stringify({ command: g.text() }) } }] } : {}),
          ...(g.chance(0.1) ? { refusal: g.text() } : {}),
          ...(g.chance(0.1) ? { audio: { id: g.id('audio') } } : {}),
        };
      case 'tool':
        return { role: 'tool', tool_call_id: g.id('call'), content: g.chance(0.5) ? g.text() : [{ type: 'text', text: g.text() }] };
      default:
        return { role: 'function', name: 'legacy', content: g.text() };
    }
  });
  return {
    model: g.pick(['gpt-4o-mini', 'gpt-5', 'o3']),
    messages,
    ...(g.chance(0.4) ? { tools: [{ type: 'function', function: { name: 'shell', description: g.text(), parameters: { type: 'object', properties: {} }, strict: true } }, ...(g.chance(0.3) ? [{ type: 'custom', custom: { name: 'apply_patch', format: { type: 'text' } } }] : [])] } : {}),
    ...(g.chance(0.3) ? { response_format: g.pick<Json>([{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' }, strict: true } }]) } : {}),
    ...(g.chance(0.3) ? { reasoning_effort: 'low', verbosity: 'low' } : {}),
    ...(g.chance(0.2) ? { modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } } : {}),
    ...(g.chance(0.2) ? { stream_options: { include_usage: true } } : {}),
    ...(g.chance(0.2) ? { n: 2, seed: 7, logprobs: true, top_logprobs: 2, logit_bias: { '50256': -100 } } : {}),
    ...(g.chance(0.2) ? { prediction: { type: 'content', content: g.text() } } : {}),
    ...(g.chance(0.2) ? { metadata: { k: 'v' }, store: true, user: 'u1', safety_identifier: 'h1', prompt_cache_key: 'k' } : {}),
    ...g.extras(),
    stream: g.chance(0.5),
  };
}

// ---- OpenAI Responses (as Codex sends it) ----

function responsesBody(g: Gen): Json {
  const item = (): Json => {
    switch (g.pick(['message', 'message_parts', 'function_call', 'function_call_output', 'custom_tool_call', 'custom_tool_call_output', 'reasoning', 'item_reference', 'additional_tools', 'web_search_call', 'local_shell_call', 'future_item'])) {
      case 'message':
        return { type: 'message', role: g.pick(['user', 'developer', 'system', 'assistant']), content: g.text() };
      case 'message_parts':
        return { role: 'user', content: [{ type: 'input_text', text: g.text() }, { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'auto' }, { type: 'input_file', file_id: g.id('file') }] };
      case 'function_call':
        return { type: 'function_call', call_id: g.id('call'), name: 'exec_command', arguments: JSON.stringify({ cmd: g.text() }), ...(g.chance(0.5) ? { namespace: 'functions' } : {}) };
      case 'function_call_output':
        return { type: 'function_call_output', call_id: g.id('call'), output: g.chance(0.5) ? g.text() : [{ type: 'input_text', text: g.text() }] };
      case 'custom_tool_call':
        return { type: 'custom_tool_call', call_id: g.id('call'), name: 'exec', input: `const r = await tools.exec_command({cmd: ${JSON.stringify(g.text())}});\ntext(r);` };
      case 'custom_tool_call_output':
        return { type: 'custom_tool_call_output', call_id: g.id('call'), output: g.chance(0.5) ? g.text() : [{ type: 'input_text', text: g.text() }] };
      case 'reasoning':
        return { type: 'reasoning', id: g.id('rs'), summary: [{ type: 'summary_text', text: g.text() }], encrypted_content: 'gAAAAB' };
      case 'item_reference':
        return { type: 'item_reference', id: g.id('msg') };
      case 'additional_tools':
        return { type: 'additional_tools', id: g.id('at'), role: 'developer', tools: [{ type: 'namespace', name: 'functions', description: '', tools: [{ type: 'custom', name: 'exec', description: g.text(), format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' } }, { type: 'function', name: 'wait', description: g.text(), strict: false, parameters: { type: 'object', properties: {} } }] }] };
      case 'web_search_call':
        return { type: 'web_search_call', id: g.id('ws'), status: 'completed', action: { type: 'search', query: g.text() } };
      case 'local_shell_call':
        return { type: 'local_shell_call', id: g.id('lsh'), call_id: g.id('call'), status: 'completed', action: { type: 'exec', command: ['bash', '-lc', g.text()], env: {} } };
      default:
        return { type: `future_item_${g.int(10)}`, ...g.extras() };
    }
  };
  return {
    model: g.pick(['gpt-6.2-sol', 'gpt-5-codex', 'o4-mini']),
    input: g.chance(0.2) ? g.text() : g.times(1, 6, item),
    ...(g.chance(0.4) ? { instructions: g.text() } : {}),
    ...(g.chance(0.4) ? { tools: [{ type: 'function', name: 'shell', parameters: { type: 'object' }, strict: false }, { type: 'web_search' }, { type: 'custom', name: 'apply_patch', format: { type: 'text' } }, { type: 'future_tool' }] } : {}),
    ...(g.chance(0.3) ? { tool_choice: 'auto', parallel_tool_calls: false } : {}),
    ...(g.chance(0.3) ? { reasoning: { effort: 'low', summary: 'auto' }, include: ['reasoning.encrypted_content'] } : {}),
    ...(g.chance(0.3) ? { store: false, prompt_cache_key: g.id('pck'), text: { verbosity: 'low' } } : {}),
    ...(g.chance(0.3) ? { client_metadata: { thread_id: g.id('th') } } : {}),
    ...g.extras(),
    stream: g.chance(0.5),
  };
}

/** JSON text with random (legal) spacing and escapes, as different clients serialize. */
function serialize(g: Gen, value: Json): string {
  const json = JSON.stringify(value, null, g.pick([undefined, 1, 2, '\t']));
  return g.chance(0.3) ? json.replace(/[\u00e9\u00fc]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

const CASES = 60;

let h: Harness;
before(async () => {
  h = await startHarness({ limits: { max_body_bytes: 8 * 1024 * 1024 } });
});
after(async () => {
  await h.close();
});

/** Each endpoint answers with its recorded transcript, streamed when the request asked for a stream. */
function routeAnswers(): void {
  const answer = (plain: string) => (req: { body: string }) => loadTranscript(/"stream":\s*true/.test(req.body) ? `${plain}-stream` : plain);
  h.upstream.route('POST', '/v1/messages', answer('anthropic-messages'));
  h.upstream.route('POST', '/v1/chat/completions', answer('openai-chat'));
  h.upstream.route('POST', '/v1/responses', answer('openai-responses'));
}

const SHAPES: [string, string, (g: Gen) => Json][] = [
  ['Anthropic messages', '/anthropic/v1/messages', anthropicBody],
  ['OpenAI chat completions', '/openai/v1/chat/completions', chatBody],
  ['OpenAI responses', '/openai/v1/responses', responsesBody],
];

describe('requests the provider accepts pass through byte for byte', () => {
  for (const [name, path, make] of SHAPES) {
    it(`${name}: ${CASES} generated bodies`, async () => {
      for (let seed = 1; seed <= CASES; seed++) {
        const g = new Gen(seed * 7919 + path.length);
        const body = serialize(g, make(g));
        h.upstream.reset();
        routeAnswers();
        const res = await fetch(h.url + path, { method: 'POST', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body });
        const text = await res.text();
        assert.equal(res.status, 200, `seed ${seed}: ${text.slice(0, 300)}\nbody: ${body.slice(0, 600)}`);
        assert.equal(h.upstream.received.length, 1, `seed ${seed}: forwarded once`);
        assert.equal(h.upstream.received[0]?.body, body, `seed ${seed}: forwarded byte for byte`);
      }
    });
  }
});
