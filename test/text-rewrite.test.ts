/**
 * The stream rewriter keeps each provider's stream valid and, for any chunking and any amount of
 * holdback, gives the client exactly the text a whole-text rewrite gives — checked on the
 * recorded provider transcripts with the official SDKs' own stream parsers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SseParser } from '../src/core/sse.ts';
import { readFileSync } from 'node:fs';
import type { EndpointId, NormalizedRequest } from '../src/core/events.ts';
import { requestTextItems } from '../src/core/policy/evaluate-policy.ts';
import type { SseEvent } from '../src/core/sse.ts';
import type { ChannelTransformer, TextRewriter } from '../src/providers/channels.ts';
import { codecForEndpoint, rewriteAnswer as rewriteResponseBody } from '../src/providers/registry.ts';
import { createToolCallReplacer } from '../src/providers/tool-call-replace.ts';

/** The codec's stream reader as the relay uses it: upstream events in, the events to send out. */
function createStreamRewriter(endpoint: EndpointId, rewriter: TextRewriter): { event(e: SseEvent): SseEvent[]; end(): SseEvent[] } {
  const reader = codecForEndpoint(endpoint)!.streamReader(endpoint, rewriter);
  return { event: (e) => reader.read(e).out.map((item) => item.sse()), end: () => reader.end().map((item) => item.sse()) };
}
import { loadTranscript } from './support/replay-upstream.ts';

/** Upper-cases text and holds back a random amount of it (up to everything) until more arrives or the channel ends. */
function holdingRewriter(seed: number): TextRewriter {
  let state = seed;
  const next = (): number => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  const transform = (s: string): string => s.replace(/[a-z]/g, (c) => c.toUpperCase());
  return {
    whole: (text) => transform(text),
    channel(): ChannelTransformer {
      let held = '';
      return {
        push(delta) {
          held += delta;
          const cut = Math.floor(next() * (held.length + 1));
          const out = held.slice(0, cut);
          held = held.slice(cut);
          return transform(out);
        },
        end() {
          const out = held;
          held = '';
          return transform(out);
        },
      };
    },
  };
}

function rewriteStream(body: string, endpoint: Parameters<typeof createStreamRewriter>[0], rewriter: TextRewriter, cuts: number[]): string {
  const parser = new SseParser();
  const stream = createStreamRewriter(endpoint, rewriter);
  let out = '';
  let last = 0;
  for (const cut of [...cuts.map((c) => c % (body.length + 1)).sort((a, b) => a - b), body.length]) {
    for (const event of parser.push(body.slice(last, cut))) for (const e of stream.event(event)) out += e.raw;
    last = cut;
  }
  for (const event of parser.end()) for (const e of stream.event(event)) out += e.raw;
  for (const e of stream.end()) out += e.raw;
  return out;
}

/** The texts a client assembles from a stream, by channel, with plain JSON parsing. */
function openaiChatTexts(stream: string): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const line of stream.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const data = JSON.parse(line.slice(6)) as { choices: { index: number; delta: { content?: string; tool_calls?: { index: number; function?: { arguments?: string } }[] } }[] };
    for (const c of data.choices) {
      if (c.delta.content) texts[`${c.index}`] = (texts[`${c.index}`] ?? '') + c.delta.content;
      for (const t of c.delta.tool_calls ?? []) if (t.function?.arguments) texts[`${c.index}:${t.index}`] = (texts[`${c.index}:${t.index}`] ?? '') + t.function.arguments;
    }
  }
  return texts;
}

function anthropicTexts(stream: string): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const line of stream.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const data = JSON.parse(line.slice(6)) as { type: string; index?: number; delta?: { type: string; text?: string; partial_json?: string }; content_block?: { type: string; text?: string } };
    if (data.type === 'content_block_delta') texts[`${data.index}`] = (texts[`${data.index}`] ?? '') + (data.delta?.text ?? data.delta?.partial_json ?? '');
    if (data.type === 'content_block_start' && data.content_block?.text) texts[`${data.index}`] = (texts[`${data.index}`] ?? '') + data.content_block.text;
  }
  return texts;
}

function upper(texts: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(texts).map(([k, v]) => [k, v.replace(/[a-z]/g, (c) => c.toUpperCase())]));
}

describe('stream rewriting', () => {
  for (const name of ['openai-chat-stream', 'openai-chat-stream-tools', 'openai-chat-stream-multichoice']) {
    it(`${name}: any chunking and holdback gives the whole-text result per channel`, () => {
      const body = loadTranscript(name).body;
      const expected = upper(openaiChatTexts(body));
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1e9 }), fc.array(fc.nat(), { maxLength: 30 }), (seed, cuts) => {
          const out = rewriteStream(body, 'openai.chat.completions', holdingRewriter(seed), cuts);
          assert.deepEqual(openaiChatTexts(out), expected);
          assert.ok(out.trimEnd().endsWith('data: [DONE]'));
        }),
        { numRuns: 300 },
      );
    });
  }

  for (const name of ['anthropic-messages-stream', 'anthropic-messages-stream-tools']) {
    it(`${name}: any chunking and holdback gives the whole-text result per block`, () => {
      const body = loadTranscript(name).body;
      const expected = upper(anthropicTexts(body));
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1e9 }), fc.array(fc.nat(), { maxLength: 30 }), (seed, cuts) => {
          const out = rewriteStream(body, 'anthropic.messages', holdingRewriter(seed), cuts);
          assert.deepEqual(anthropicTexts(out), expected);
          // Every delta of a block, synthetic ones included, comes before that block's stop event.
          const stopped = new Set<number>();
          for (const line of out.split('\n')) {
            if (!line.startsWith('data: {')) continue;
            const d = JSON.parse(line.slice(6)) as { type: string; index?: number };
            if (d.type === 'content_block_stop') stopped.add(d.index ?? 0);
            if (d.type === 'content_block_delta') assert.ok(!stopped.has(d.index ?? 0), 'a delta after its block stopped');
          }
          assert.ok(out.trimEnd().endsWith('data: {"type":"message_stop"}') || /event: message_stop/.test(out));
        }),
        { numRuns: 300 },
      );
    });
  }

  it('openai-responses-stream: deltas and the *.done / completed snapshots agree', () => {
    const body = loadTranscript('openai-responses-stream').body;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.array(fc.nat(), { maxLength: 30 }), (seed, cuts) => {
        const out = rewriteStream(body, 'openai.responses', holdingRewriter(seed), cuts);
        let deltas = '';
        let done = '';
        let completed = '';
        for (const line of out.split('\n')) {
          if (!line.startsWith('data: {')) continue;
          const d = JSON.parse(line.slice(6)) as { type: string; delta?: string; text?: string; response?: { output?: { type: string; content?: { type: string; text: string }[] }[] } };
          if (d.type === 'response.output_text.delta') deltas += d.delta ?? '';
          if (d.type === 'response.output_text.done') done += d.text ?? '';
          if (d.type === 'response.completed') completed = (d.response?.output ?? []).flatMap((o) => o.content ?? []).map((c) => c.text).join('');
        }
        assert.equal(deltas, done);
        assert.equal(done, completed);
        assert.ok(!/[a-z]/.test(deltas), 'every delta went through the rewriter');
      }),
      { numRuns: 200 },
    );
  });

  it('each upstream event is parsed once (normalized events, masking and tool-call replacement share it); unchanged events go out as their own bytes', () => {
    const upperNoHold: TextRewriter = { whole: (t) => t.toUpperCase(), channel: () => ({ push: (d) => d.toUpperCase(), end: () => '' }) };
    const identity: TextRewriter = { whole: (t) => t, channel: () => ({ push: (d) => d, end: () => '' }) };
    for (const [name, endpoint] of [['openai-chat-stream-tools', 'openai.chat.completions'], ['anthropic-messages-stream-tools', 'anthropic.messages'], ['openai-responses-stream', 'openai.responses']] as const) {
      const events = new SseParser().push(loadTranscript(name).body + '\n\n');
      const withJson = events.filter((e) => e.data !== null && e.data !== '[DONE]').length;
      for (const rewriter of [upperNoHold, identity]) {
        const reader = codecForEndpoint(endpoint)!.streamReader(endpoint, rewriter);
        // With the identity rewriter, no call is replaced either: then nothing may change.
        const replacer = createToolCallReplacer(endpoint, rewriter === identity ? new Map() : new Map([['0:1', 'refused']]));
        const parse = JSON.parse;
        let parses = 0;
        JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
          parses++;
          return parse(text, reviver) as unknown;
        }) as typeof JSON.parse;
        const out: SseEvent[] = [];
        let normalized = 0;
        try {
          for (const event of events) {
            const read = reader.read(event);
            normalized += read.events.length;
            // The tool-call replacer and the record read the same parsed items: no parse of their own.
            for (const item of read.out) for (const { event: sent } of replacer.event({ event: item, offsetMs: 0 })) out.push(sent.sse());
          }
        } finally {
          JSON.parse = parse;
        }
        assert.equal(parses, withJson, `${name}: one JSON.parse per event`);
        assert.ok(normalized > 0);
        if (rewriter === identity) assert.deepEqual(out.map((e) => e.raw), events.map((e) => e.raw), `${name}: untouched events keep their bytes`);
      }
    }
  });

  it('non-streamed bodies: every answer text is rewritten, the rest untouched', () => {
    const rewriter = holdingRewriter(1);
    const chat = JSON.parse(rewriteResponseBody('openai.chat.completions', loadTranscript('openai-chat').body, rewriter)) as { id: string; choices: { message: { content: string } }[] };
    assert.ok(!/[a-z]/.test(chat.choices[0]!.message.content));
    assert.equal(chat.id, (JSON.parse(loadTranscript('openai-chat').body) as { id: string }).id);
    const msg = JSON.parse(rewriteResponseBody('anthropic.messages', loadTranscript('anthropic-messages').body, rewriter)) as { content: { type: string; text?: string }[] };
    assert.ok(msg.content.filter((b) => b.type === 'text').every((b) => !/[a-z]/.test(b.text ?? '')));
    const resp = JSON.parse(rewriteResponseBody('openai.responses', loadTranscript('openai-responses').body, rewriter)) as { output: { content?: { text: string }[] }[] };
    assert.ok(resp.output.flatMap((o) => o.content ?? []).every((c) => !/[a-z]/.test(c.text)));
    assert.equal(rewriteResponseBody('openai.chat.completions', 'not json', rewriter), 'not json');
  });
});

/** What the pipeline does with a verdict's rewriteRequest: every slot of the codec's reading, then one serialization. */
function rewriteRequestBody(endpoint: EndpointId, body: string, rewrite: (text: string) => string): string {
  const read = codecForEndpoint(endpoint)!.readRequest(endpoint, JSON.parse(body), body);
  for (const slot of read.slots) slot.set(rewrite(slot.text));
  return read.serialize();
}

/** The texts policy scans, by location. */
function policyTexts(request: NormalizedRequest): Map<string, string> {
  return new Map(requestTextItems(request).map((item) => [JSON.stringify(item.location), item.text]));
}

describe('request rewriting', () => {
  it('text slots address the texts policy sees: each slot is its location\'s text (or a piece of it at its offset), and every text policy sees is covered by slots, recorded agent requests included', () => {
    const text = (s: string): string => Buffer.from(s).toString('base64');
    const bodies: [EndpointId, string][] = [
      ['anthropic.messages', (JSON.parse(readFileSync('test/fixtures/agents/claude-code-2.1.337-messages.json', 'utf8')) as { body: string }).body],
      ['openai.responses', (JSON.parse(readFileSync('test/fixtures/agents/codex-0.171.0-responses.json', 'utf8')) as { body: string }).body],
      ['openai.chat.completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'u' } }, { type: 'text', text: 'b' }] }, { role: 'tool', tool_call_id: 'c', content: [{ type: 'text', text: 'one ' }, { type: 'text', text: 'two' }] }, { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }] })],
      ['anthropic.messages', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'x1' }, { type: 'image', source: {} }, { type: 'text', text: 'y2' }] }] }] })],
      ['openai.embeddings', JSON.stringify({ model: 'e', input: ['a', 3, 'b'] })],
      // Documents, files, settings and tool definitions.
      ['anthropic.messages', JSON.stringify({
        model: 'm', output_config: { format: { type: 'json_schema', schema: { type: 'object', description: 'the form' } } }, metadata: { user_id: 'u-1' },
        tools: [{ name: 't', description: 'does t', input_schema: { type: 'object' } }],
        messages: [{ role: 'user', content: [
          { type: 'document', title: 'T', context: 'C', source: { type: 'text', media_type: 'text/plain', data: 'plain doc' } },
          { type: 'document', source: { type: 'base64', media_type: 'text/plain', data: text('encoded doc') } },
          { type: 'document', title: 'P', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' } },
          { type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'one' }, { type: 'image', source: { type: 'url', url: 'https://x/i.png' } }, { type: 'text', text: 'two' }] } },
          { type: 'search_result', title: 'S', source: 'https://x', content: [{ type: 'text', text: 'found' }] },
          { type: 'tool_result', tool_use_id: 'u', content: [{ type: 'text', text: 'r' }, { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'inner' } }] },
        ] }],
      })],
      ['openai.chat.completions', JSON.stringify({
        model: 'm', response_format: { type: 'json_schema', json_schema: { name: 'n', description: 'd', schema: { type: 'object' } } }, prediction: { type: 'content', content: [{ type: 'text', text: 'p1' }, { type: 'text', text: 'p2' }] }, metadata: { a: 'one', b: 'two' },
        tools: [{ type: 'function', function: { name: 'f', description: 'fd', parameters: { type: 'object' } } }, { type: 'custom', custom: { name: 'c', description: 'cd' } }],
        messages: [{ role: 'user', name: 'alice', content: [{ type: 'file', file: { filename: 'a.txt', file_data: `data:text/plain;base64,${text('file text')}` } }, { type: 'image_url', image_url: { url: `data:text/plain,${encodeURIComponent('url text')}` } }, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }, { role: 'assistant', content: null, refusal: 'no' }],
      })],
      ['openai.responses', JSON.stringify({
        model: 'm', text: { format: { type: 'json_schema', name: 'n', schema: { type: 'object' } } }, prompt: { id: 'p', variables: { who: 'bob', doc: { type: 'input_file', filename: 'n.md', file_data: text('# notes') } } },
        tools: [{ type: 'mcp', server_label: 's', server_description: 'sd', server_url: 'https://mcp' }, { type: 'function', name: 'f', description: 'fd', parameters: { type: 'object' } }],
        input: [
          { role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }, { type: 'input_image', image_url: `data:text/markdown;base64,${text('md')}` }] },
          { type: 'function_call_output', call_id: 'c', output: [{ type: 'input_text', text: 'out' }, { type: 'input_file', filename: 'o.json', file_data: `data:application/json;base64,${text('{"k":1}')}` }] },
          { type: 'shell_call_output', call_id: 's', output: [{ stdout: 'so', stderr: 'se', outcome: { type: 'exit', exit_code: 0 } }] },
          { type: 'local_shell_call_output', id: 'l', output: 'lo' },
          { type: 'computer_call_output', call_id: 'cc', output: { type: 'computer_screenshot', image_url: 'data:image/png;base64,iVBORw0KGgo=' } },
        ],
      })],
    ];
    for (const [endpoint, body] of bodies) {
      const read = codecForEndpoint(endpoint)!.readRequest(endpoint, JSON.parse(body), body);
      assert.ok(read.slots.length > 0, endpoint);
      const texts = policyTexts(read.request);
      for (const slot of read.slots) {
        const whole = texts.get(JSON.stringify(slot.location));
        assert.equal(whole?.slice(slot.offset, slot.offset + slot.text.length), slot.text, `${endpoint} ${JSON.stringify(slot.location)}`);
      }
      // Every text policy sees is covered by slots: masking can reach all of it.
      const covered = new Map<string, number>();
      for (const slot of read.slots) covered.set(JSON.stringify(slot.location), (covered.get(JSON.stringify(slot.location)) ?? 0) + slot.text.length);
      for (const [key, whole] of texts) {
        // An Anthropic tool_use without `input` is read as `{}`: nothing to write back into.
        if (whole === '{}' && endpoint.startsWith('anthropic') && key.includes('tool_arguments')) continue;
        assert.equal(covered.get(key), whole.length, `${endpoint} ${key}`);
      }
      assert.equal(read.serialize(), body, 'nothing written: the client\'s bytes');
    }
  });

  const up = (t: string): string => t.toUpperCase();
  it('a tool_use input whose masked text is no longer JSON refuses the request (fail closed), never goes up unmasked', () => {
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { to: 'a@example.com' } }] }] });
    const read = codecForEndpoint('anthropic.messages')!.readRequest('anthropic.messages', JSON.parse(body), body);
    const slot = read.slots.find((s) => s.location.kind === 'message' && s.location.field === 'tool_arguments')!;
    assert.equal(slot.text, '{"to":"a@example.com"}');
    assert.throws(() => slot.set('{"to":"[EMAIL]'), (e: unknown) => (e as { code?: string }).code === 'AIGOV_E_POLICY_FAILED');
    assert.equal(read.serialize(), body);
    slot.set('{"to":"[EMAIL]"}');
    assert.deepEqual((JSON.parse(read.serialize()) as { messages: { content: { input: unknown }[] }[] }).messages[0]!.content[0]!.input, { to: '[EMAIL]' });
  });

  it('a slot written again takes the new text, the text as sent included (a request rewritten again after another replica numbered its pseudonyms first)', () => {
    const b64 = (t: string): string => Buffer.from(t).toString('base64');
    // Plain fields, a JSON text (tool_use input: an object slot) and a decoded document (base64).
    const bodies: [EndpointId, string][] = [
      ['openai.chat.completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'mail a@x.io' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"to":"a@x.io"}' } }] }] })],
      ['anthropic.messages', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: b64('doc a@x.io') } }] }, { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { to: 'a@x.io' } }] }] })],
    ];
    for (const [endpoint, body] of bodies) {
      const read = codecForEndpoint(endpoint)!.readRequest(endpoint, JSON.parse(body), body);
      for (const slot of read.slots) slot.set(slot.text.replaceAll('a@x.io', '«EMAIL_1»'));
      assert.ok(!read.serialize().includes('a@x.io'));
      for (const slot of read.slots) slot.set(slot.text.replaceAll('a@x.io', '«EMAIL_2»'));
      const second = read.serialize();
      assert.ok(second.includes('EMAIL_2') && !second.includes('EMAIL_1'), `${endpoint}: the second rewrite replaces the first: ${second}`);
      for (const slot of read.slots) slot.set(slot.text);
      assert.deepEqual(JSON.parse(read.serialize()), JSON.parse(body), `${endpoint}: written back as sent`);
    }
  });

  it('rewrites every text field the adapters parse, for each provider shape', () => {
    const chat = JSON.parse(
      rewriteRequestBody(
        'openai.chat.completions',
        JSON.stringify({ model: 'm', messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: [{ type: 'text', text: 'part' }, { type: 'image_url', image_url: { url: 'http://x' } }] }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":"arg"}' } }] }, { role: 'tool', tool_call_id: 'c', content: 'result' }] }),
        up,
      ),
    ) as { model: string; messages: { content: unknown; tool_calls?: { function: { name: string; arguments: string } }[] }[] };
    assert.equal(chat.model, 'm');
    assert.equal(chat.messages[0]!.content, 'SYS');
    assert.deepEqual(chat.messages[1]!.content, [{ type: 'text', text: 'PART' }, { type: 'image_url', image_url: { url: 'http://x' } }]);
    assert.equal(chat.messages[2]!.tool_calls![0]!.function.arguments, '{"A":"ARG"}');
    assert.equal(chat.messages[2]!.tool_calls![0]!.function.name, 'f', 'tool names are not content');
    assert.equal(chat.messages[3]!.content, 'RESULT');

    const anthropicBody = JSON.parse(
      rewriteRequestBody(
        'anthropic.messages',
        JSON.stringify({ model: 'm', system: [{ type: 'text', text: 'sys' }], messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { q: 'x' } }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'out' }] }] }),
        up,
      ),
    ) as { system: { text: string }[]; messages: { content: unknown }[] };
    assert.equal(anthropicBody.system[0]!.text, 'SYS');
    assert.equal(anthropicBody.messages[0]!.content, 'HI');
    assert.deepEqual((anthropicBody.messages[1]!.content as { input: unknown }[])[0]!.input, { Q: 'X' });
    assert.equal((anthropicBody.messages[2]!.content as { content: string }[])[0]!.content, 'OUT');

    const responses = JSON.parse(rewriteRequestBody('openai.responses', JSON.stringify({ model: 'm', instructions: 'be nice', input: [{ role: 'user', content: [{ type: 'input_text', text: 'q' }] }, { type: 'function_call_output', call_id: 'c', output: 'o' }] }), up)) as { instructions: string; input: { content?: { text: string }[]; output?: string }[] };
    assert.equal(responses.instructions, 'BE NICE');
    assert.equal(responses.input[0]!.content![0]!.text, 'Q');
    assert.equal(responses.input[1]!.output, 'O');
    assert.deepEqual(JSON.parse(rewriteRequestBody('openai.embeddings', JSON.stringify({ model: 'e', input: ['a', 'b'] }), up)), { model: 'e', input: ['A', 'B'] });
    const untouched = JSON.stringify({ model: 'm', messages: [] });
    assert.equal(rewriteRequestBody('openai.chat.completions', untouched, up), untouched);
  });
});
