import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { DEV_MODEL_ANTHROPIC, DEV_MODEL_OPENAI, devEmbedding, startDevModel } from '../src/gateway/dev/dev-model.ts';
import type { DevModelServer } from '../src/gateway/dev/dev-model.ts';
import { SseParser } from '../src/core/sse.ts';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a place',
  parameters: {
    type: 'object' as const,
    properties: {
      location: { type: 'string' },
      days: { type: 'integer' },
      metric: { type: 'boolean' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      note: { type: 'string' },
    },
    required: ['location', 'days', 'metric', 'unit'],
  },
};

const SHELL_TOOL = {
  name: 'run_shell',
  description: 'Run a shell command',
  parameters: { type: 'object' as const, properties: { command: { type: 'string' } }, required: ['command'] },
};

describe('aigov dev model', () => {
  let dev: DevModelServer;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    dev = await startDevModel();
    openai = new OpenAI({ baseURL: dev.openaiBaseUrl, apiKey: 'anything', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: dev.anthropicBaseUrl, apiKey: 'anything', maxRetries: 0 });
  });
  after(async () => {
    await dev.close();
  });

  it('listens on 127.0.0.1 with the documented base URLs', () => {
    assert.match(dev.openaiBaseUrl, /^http:\/\/127\.0\.0\.1:\d+\/openai\/v1$/);
    assert.match(dev.anthropicBaseUrl, /^http:\/\/127\.0\.0\.1:\d+\/anthropic$/);
  });

  describe('OpenAI chat completions', () => {
    it('answers non-streamed, labelled as the dev model, naming itself whatever model was asked for', async () => {
      const completion = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'What is the capital of France?' },
        ],
      });
      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.model, 'aigov-dev');
      const choice = completion.choices[0];
      assert.ok(choice);
      assert.equal(choice.finish_reason, 'stop');
      assert.equal(choice.message.role, 'assistant');
      assert.equal(
        choice.message.content,
        '[aigov dev model] You said: "What is the capital of France?". This answer comes from the built-in aigov dev model; no real LLM was called.',
      );
      assert.ok(completion.usage && completion.usage.completion_tokens > 5 && completion.usage.prompt_tokens > 5);
      assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
    });

    it('accepts array content parts and quotes at most 200 characters', async () => {
      const long = 'x'.repeat(300);
      const completion = await openai.chat.completions.create({
        model: DEV_MODEL_OPENAI,
        messages: [{ role: 'user', content: [{ type: 'text', text: long }] }],
      });
      const content = completion.choices[0]?.message.content ?? '';
      assert.ok(content.includes(`"${'x'.repeat(200)}…"`));
      assert.ok(!content.includes('x'.repeat(201)));
    });

    it('streams word by word with a usage chunk and [DONE], same text as non-streamed', async () => {
      const messages = [{ role: 'user' as const, content: 'Tell me a story about a café ☕ please' }];
      const plain = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages });
      const stream = await openai.chat.completions.create({
        model: DEV_MODEL_OPENAI,
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let deltas = 0;
      let usageChunks = 0;
      let finish: string | null = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) {
          usageChunks++;
          assert.deepEqual(chunk.choices, []);
          assert.ok(chunk.usage.completion_tokens > 0);
        }
        for (const choice of chunk.choices) {
          if (choice.delta.content) {
            text += choice.delta.content;
            deltas++;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
      }
      assert.equal(text, plain.choices[0]?.message.content);
      assert.ok(deltas >= 10, `expected many small deltas, got ${deltas}`);
      assert.equal(usageChunks, 1);
      assert.equal(finish, 'stop');
    });

    it('finalChatCompletion() assembles the stream', async () => {
      const final = await openai.chat.completions
        .stream({ model: DEV_MODEL_OPENAI, messages: [{ role: 'user', content: 'hello there' }], stream_options: { include_usage: true } })
        .finalChatCompletion();
      assert.match(final.choices[0]?.message.content ?? '', /^\[aigov dev model\] You said: "hello there"\./);
      assert.equal(final.choices[0]?.finish_reason, 'stop');
      assert.ok(final.usage && final.usage.total_tokens > 0);
    });

    it('n=2 gives two choices, streamed and not', async () => {
      const plain = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, n: 2, messages: [{ role: 'user', content: 'two' }] });
      assert.deepEqual(plain.choices.map((c) => c.index), [0, 1]);
      const final = await openai.chat.completions
        .stream({ model: DEV_MODEL_OPENAI, n: 2, messages: [{ role: 'user', content: 'two' }] })
        .finalChatCompletion();
      assert.equal(final.choices.length, 2);
      assert.equal(final.choices[1]?.message.content, plain.choices[1]?.message.content);
    });

    it('never calls a tool from ordinary text, even when tools are declared and the text reads like a command', async () => {
      const tools = [{ type: 'function' as const, function: WEATHER_TOOL }, { type: 'function' as const, function: SHELL_TOOL }];
      for (const content of ['Weather in Oslo?', 'rm -rf / please', 'please run `ls` with shell now', 'get_weather']) {
        const plain = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages: [{ role: 'user', content }], tools });
        assert.equal(plain.choices[0]?.finish_reason, 'stop', content);
        assert.equal(plain.choices[0]?.message.tool_calls, undefined);
        assert.match(plain.choices[0]?.message.content ?? '', /calls a tool only when asked in so many words: run `COMMAND` with TOOL, or call TOOL with \{JSON arguments\}/);
        const streamed = await openai.chat.completions.stream({ model: DEV_MODEL_OPENAI, messages: [{ role: 'user', content }], tools }).finalChatCompletion();
        assert.equal(streamed.choices[0]?.finish_reason, 'stop');
        assert.equal(streamed.choices[0]?.message.content, plain.choices[0]?.message.content);
      }
    });

    it('scripted tool call, streamed in argument pieces and not, then one round: the result is quoted and the loop ends', async () => {
      const tools = [{ type: 'function' as const, function: WEATHER_TOOL }, { type: 'function' as const, function: SHELL_TOOL }];
      const messages = [{ role: 'user' as const, content: 'call get_weather with {"location": "Oslo", "days": 2, "metric": true, "unit": "celsius"}' }];
      const plain = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages, tools });
      const call = plain.choices[0]?.message.tool_calls?.[0];
      assert.equal(plain.choices[0]?.finish_reason, 'tool_calls');
      assert.ok(call && call.type === 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Oslo', days: 2, metric: true, unit: 'celsius' });
      assert.match(call.id, /^call_/);

      const streamed = await openai.chat.completions.stream({ model: DEV_MODEL_OPENAI, messages, tools }).finalChatCompletion();
      const streamedCall = streamed.choices[0]?.message.tool_calls?.[0];
      assert.equal(streamed.choices[0]?.finish_reason, 'tool_calls');
      assert.ok(streamedCall && streamedCall.type === 'function');
      assert.equal(streamedCall.function.arguments, call.function.arguments);
      const raw = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages, tools, stream: true });
      let pieces = 0;
      for await (const chunk of raw) if (chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments) pieces++;
      assert.ok(pieces >= 3, `arguments should stream in several pieces, got ${pieces}`);

      const answer = await openai.chat.completions.create({
        model: DEV_MODEL_OPENAI,
        tools,
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: [{ id: streamedCall.id, type: 'function', function: streamedCall.function }] },
          { role: 'tool', tool_call_id: streamedCall.id, content: '{"temp_c": 18, "sky": "cloudy"}' },
        ],
      });
      assert.equal(answer.choices[0]?.finish_reason, 'stop');
      assert.equal(answer.choices[0]?.message.tool_calls, undefined);
      assert.equal(
        answer.choices[0]?.message.content,
        '[aigov dev model] The tool returned: "{"temp_c": 18, "sky": "cloudy"}". That ends this round of tool calls: the dev model calls another tool only when a new message asks for one. This answer comes from the built-in aigov dev model; no real LLM was called.',
      );
    });

    it('run `COMMAND` with TOOL fills the argument the schema names (command, cmd, or an argv array)', async () => {
      const cases: [OpenAI.FunctionDefinition, unknown][] = [
        [SHELL_TOOL, { command: 'rm -rf /' }],
        [{ name: 'exec_command', parameters: { type: 'object', properties: { cmd: { type: 'string' }, workdir: { type: 'string' } }, required: ['cmd'] } }, { cmd: 'rm -rf /' }],
        [{ name: 'shell', parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } }, required: ['command'] } }, { command: ['bash', '-lc', 'rm -rf /'] }],
      ];
      for (const [fn, expected] of cases) {
        const tools = [{ type: 'function' as const, function: WEATHER_TOOL }, { type: 'function' as const, function: fn }];
        for (const stream of [false, true]) {
          const messages = [{ role: 'user' as const, content: `run \`rm -rf /\` with ${fn.name}` }];
          const completion = stream
            ? await openai.chat.completions.stream({ model: DEV_MODEL_OPENAI, messages, tools }).finalChatCompletion()
            : await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages, tools });
          const call = completion.choices[0]?.message.tool_calls?.[0];
          assert.ok(call && call.type === 'function', `${fn.name} stream=${stream}`);
          assert.equal(call.function.name, fn.name);
          assert.deepEqual(JSON.parse(call.function.arguments), expected);
        }
      }
    });

    it('answers in text, calling nothing, for an undeclared tool, tool_choice none, bad JSON, or a tool without a command argument', async () => {
      const tools = [{ type: 'function' as const, function: WEATHER_TOOL }, { type: 'function' as const, function: SHELL_TOOL }];
      const ask = async (content: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}): Promise<string> => {
        const completion = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages: [{ role: 'user', content }], tools, ...extra });
        assert.equal(completion.choices[0]?.finish_reason, 'stop', content);
        assert.equal(completion.choices[0]?.message.tool_calls, undefined, content);
        return completion.choices[0]?.message.content ?? '';
      };
      assert.match(await ask('run `rm -rf /` with Bash'), /No tool named "Bash" is available in this request, so none was called\. Declared tools: get_weather, run_shell\./);
      assert.match(await ask('run `ls` with run_shell', { tool_choice: 'none' }), /Tool calls are turned off for this request \(tool_choice: none\), so run_shell was not called\./);
      assert.match(await ask('call run_shell with {command: ls}'), /The arguments for run_shell are not a JSON object/);
      assert.match(await ask('call run_shell with ["ls"]'), /not a JSON object/);
      assert.match(await ask('run `ls` with get_weather'), /get_weather declares no "command" or "cmd" argument/);
      const none = await openai.chat.completions.create({ model: DEV_MODEL_OPENAI, messages: [{ role: 'user', content: 'run `ls` with run_shell' }] });
      assert.match(none.choices[0]?.message.content ?? '', /this request declares no tools/);
    });

    it('several tool results in a row end the round too', async () => {
      const answer = await openai.chat.completions.create({
        model: DEV_MODEL_OPENAI,
        tools: [{ type: 'function' as const, function: SHELL_TOOL }],
        messages: [
          { role: 'user', content: 'run `ls` with run_shell' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'run_shell', arguments: '{"command":"ls"}' } }, { id: 'call_b', type: 'function', function: { name: 'run_shell', arguments: '{"command":"pwd"}' } }] },
          { role: 'tool', tool_call_id: 'call_a', content: 'README.md' },
          { role: 'tool', tool_call_id: 'call_b', content: '/home/me' },
          { role: 'system', content: 'a trailing instruction' },
        ],
      });
      assert.equal(answer.choices[0]?.message.tool_calls, undefined);
      assert.match(answer.choices[0]?.message.content ?? '', /^\[aigov dev model\] The tool returned: "README\.md \/home\/me"\. That ends this round/);
    });
  });

  describe('OpenAI responses', () => {
    it('answers non-streamed with output_text', async () => {
      const response = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'Summarize the news' });
      assert.equal(response.status, 'completed');
      assert.equal(response.model, 'aigov-dev');
      assert.equal(response.output_text, '[aigov dev model] You said: "Summarize the news". This answer comes from the built-in aigov dev model; no real LLM was called.');
      assert.ok(response.usage && response.usage.output_tokens > 0);
    });

    it('streams the real event sequence and finalResponse() assembles it', async () => {
      const input = [{ role: 'user' as const, content: [{ type: 'input_text' as const, text: 'Stream me' }] }];
      const stream = await openai.responses.create({ model: DEV_MODEL_OPENAI, input, stream: true });
      const types: string[] = [];
      const seq: number[] = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        seq.push(event.sequence_number);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
      assert.deepEqual(seq, types.map((_t, i) => i));
      const collapsed = types.filter((t, i) => t !== types[i - 1]);
      assert.deepEqual(collapsed, [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      assert.ok(types.filter((t) => t === 'response.output_text.delta').length >= 10);
      assert.match(text, /^\[aigov dev model\] You said: "Stream me"\./);

      const final = await openai.responses.stream({ model: DEV_MODEL_OPENAI, input }).finalResponse();
      assert.equal(final.output_text, text);
    });

    it('function tools: no call from ordinary text; a scripted function_call, streamed and not; then text after function_call_output', async () => {
      const tools = [{ type: 'function' as const, name: 'lookup', strict: false, parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } }];
      const ordinary = await openai.responses.create({ model: DEV_MODEL_OPENAI, input: 'find cats', tools });
      assert.deepEqual(ordinary.output.map((o) => o.type), ['message']);
      const input = 'call lookup with {"q": "cats"}';
      const plain = await openai.responses.create({ model: DEV_MODEL_OPENAI, input, tools });
      const item = plain.output[0];
      assert.ok(item && item.type === 'function_call');
      assert.equal(item.name, 'lookup');
      assert.deepEqual(JSON.parse(item.arguments), { q: 'cats' });
      const final = await openai.responses.stream({ model: DEV_MODEL_OPENAI, input, tools }).finalResponse();
      const streamed = final.output[0];
      assert.ok(streamed && streamed.type === 'function_call');
      assert.equal(streamed.arguments, item.arguments);
      const after = await openai.responses.create({
        model: DEV_MODEL_OPENAI,
        tools,
        input: [
          { role: 'user', content: input },
          { type: 'function_call', call_id: item.call_id, name: item.name, arguments: item.arguments },
          { type: 'function_call_output', call_id: item.call_id, output: '3 cats found' },
        ],
      });
      assert.deepEqual(after.output.map((o) => o.type), ['message']);
      assert.match(after.output_text, /The tool returned: "3 cats found"\. That ends this round of tool calls/);
    });
  });

  describe('OpenAI embeddings and models', () => {
    it('default (base64 on the wire) and float give the same deterministic vectors', async () => {
      const viaBase64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
      const viaFloat = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' });
      assert.equal(viaBase64.data.length, 2);
      assert.equal(viaBase64.data[0]?.embedding.length, 1536);
      assert.deepEqual(Array.from(viaBase64.data[0]?.embedding ?? []), viaFloat.data[0]?.embedding);
      assert.deepEqual(viaFloat.data[1]?.embedding, devEmbedding('beta', 1536));
      assert.notDeepEqual(viaFloat.data[0]?.embedding, viaFloat.data[1]?.embedding);
      const norm = Math.sqrt((viaFloat.data[0]?.embedding ?? []).reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - 1) < 1e-5);
      const again = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', encoding_format: 'float', dimensions: 8 });
      assert.equal(again.data[0]?.embedding.length, 8);
      assert.ok(viaFloat.usage.total_tokens >= 2);

      // The raw wire answer for the default request really is base64.
      const raw = await fetch(`${dev.openaiBaseUrl}/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', input: 'alpha', encoding_format: 'base64', dimensions: 4 }),
      });
      const json = (await raw.json()) as { data: { embedding: string }[] };
      const decoded = new Float32Array(new Uint8Array(Buffer.from(json.data[0]?.embedding ?? '', 'base64')).buffer);
      assert.deepEqual(Array.from(decoded), devEmbedding('alpha', 4));
    });

    it('lists and retrieves models', async () => {
      const page = await openai.models.list();
      assert.deepEqual(page.data.map((m) => m.id), [DEV_MODEL_OPENAI]);
      const model = await openai.models.retrieve('gpt-4o');
      assert.equal(model.id, 'gpt-4o');
      assert.equal(model.object, 'model');
    });
  });

  describe('Anthropic messages', () => {
    it('answers non-streamed', async () => {
      const message = await anthropic.messages.create({
        model: 'claude-echo-test',
        max_tokens: 100,
        system: 'be nice',
        messages: [{ role: 'user', content: 'Bonjour, ça va ?' }],
      });
      assert.equal(message.type, 'message');
      assert.equal(message.model, 'aigov-dev');
      assert.equal(message.stop_reason, 'end_turn');
      const block = message.content[0];
      assert.ok(block && block.type === 'text');
      assert.equal(block.text, '[aigov dev model] You said: "Bonjour, ça va ?". This answer comes from the built-in aigov dev model; no real LLM was called.');
      assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 5);
    });

    it('streams message_start … message_stop with ping, and finalMessage() equals the non-streamed text', async () => {
      const params = { model: DEV_MODEL_ANTHROPIC, max_tokens: 100, messages: [{ role: 'user' as const, content: 'stream please' }] };
      const plain = await anthropic.messages.create(params);
      const stream = anthropic.messages.stream(params);
      const types: string[] = [];
      stream.on('streamEvent', (event) => types.push(event.type));
      const final = await stream.finalMessage();
      assert.deepEqual(final.content, plain.content);
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.usage.output_tokens, plain.usage.output_tokens);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.ok(types.filter((t) => t === 'content_block_delta').length >= 10);

      // The raw stream has a ping and event: lines.
      const res = await fetch(`${dev.anthropicBaseUrl}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...params, stream: true }),
      });
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const events = new SseParser().push(await res.text());
      assert.deepEqual(
        events.map((e) => e.event).filter((e, i, all) => e !== all[i - 1]),
        ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
      );
    });

    it('no tool_use from ordinary text; a scripted tool_use, streamed (input_json_delta) and not; then text after tool_result', async () => {
      const tools = [{ name: 'get_weather', description: 'weather', input_schema: WEATHER_TOOL.parameters }];
      const ordinary = await anthropic.messages.create({ model: DEV_MODEL_ANTHROPIC, max_tokens: 200, tools, messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
      assert.equal(ordinary.stop_reason, 'end_turn');
      assert.deepEqual(ordinary.content.map((b) => b.type), ['text']);

      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'call get_weather with {"location": "Oslo", "days": 1, "metric": true, "unit": "celsius"}' }];
      const plain = await anthropic.messages.create({ model: DEV_MODEL_ANTHROPIC, max_tokens: 200, tools, messages });
      assert.equal(plain.stop_reason, 'tool_use');
      const use = plain.content.find((b) => b.type === 'tool_use');
      assert.ok(use && use.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, { location: 'Oslo', days: 1, metric: true, unit: 'celsius' });

      const stream = anthropic.messages.stream({ model: DEV_MODEL_ANTHROPIC, max_tokens: 200, tools, messages });
      let jsonPieces = 0;
      stream.on('inputJson', () => jsonPieces++);
      const final = await stream.finalMessage();
      assert.equal(final.stop_reason, 'tool_use');
      const streamedUse = final.content.find((b) => b.type === 'tool_use');
      assert.ok(streamedUse && streamedUse.type === 'tool_use');
      assert.deepEqual(streamedUse.input, use.input);
      assert.match(streamedUse.id, /^toolu_/);
      assert.ok(jsonPieces >= 3, `expected several input_json_delta pieces, got ${jsonPieces}`);

      const answer = await anthropic.messages.create({
        model: DEV_MODEL_ANTHROPIC,
        max_tokens: 200,
        tools,
        messages: [
          ...messages,
          { role: 'assistant', content: final.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: streamedUse.id, content: 'Oslo: 4°C, snow' }] },
        ],
      });
      assert.equal(answer.stop_reason, 'end_turn');
      assert.deepEqual(answer.content.map((b) => b.type), ['text']);
      const block = answer.content[0];
      assert.ok(block && block.type === 'text');
      assert.match(block.text, /^\[aigov dev model\] The tool returned: "Oslo: 4°C, snow"\. That ends this round of tool calls/);
    });

    it('tool_choice none and server tools: no tool_use', async () => {
      const tools = [{ name: 'get_weather', description: 'weather', input_schema: WEATHER_TOOL.parameters }];
      const off = await anthropic.messages.create({ model: DEV_MODEL_ANTHROPIC, max_tokens: 50, tools, tool_choice: { type: 'none' }, messages: [{ role: 'user', content: 'call get_weather with {"location": "Oslo"}' }] });
      assert.equal(off.stop_reason, 'end_turn');
      const server = await anthropic.messages.create({
        model: DEV_MODEL_ANTHROPIC,
        max_tokens: 50,
        tools: [{ type: 'web_search_20250305', name: 'web_search' }],
        messages: [{ role: 'user', content: 'call web_search with {"query": "x"}' }],
      });
      assert.equal(server.stop_reason, 'end_turn');
      assert.match((server.content[0] as Anthropic.TextBlock).text, /No tool named "web_search" is available/);
    });

    it('counts tokens: {"input_tokens": N}, the same N the answer reports, also without /v1', async () => {
      const params = { model: 'claude-echo-test', system: 'be brief', messages: [{ role: 'user' as const, content: 'How many tokens is this?' }] };
      const counted = await anthropic.messages.countTokens(params);
      assert.deepEqual(Object.keys(counted), ['input_tokens']);
      assert.ok(Number.isInteger(counted.input_tokens) && counted.input_tokens > 0);
      assert.deepEqual(await anthropic.messages.countTokens(params), counted, 'deterministic');
      const answer = await anthropic.messages.create({ ...params, max_tokens: 50 });
      assert.equal(answer.usage.input_tokens, counted.input_tokens);
      const bigger = await anthropic.messages.countTokens({ ...params, messages: [{ role: 'user', content: 'How many tokens is this? '.repeat(100) }] });
      assert.ok(bigger.input_tokens > counted.input_tokens * 10);
      const bare = await fetch(`${dev.anthropicBaseUrl}/messages/count_tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
      assert.equal(bare.status, 200);
      assert.deepEqual(await bare.json(), counted);
      const noModel = await fetch(`${dev.anthropicBaseUrl}/v1/messages/count_tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [] }) });
      assert.equal(noModel.status, 400);
      assert.equal(((await noModel.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    });

    it('lists models', async () => {
      const page = await anthropic.models.list();
      assert.deepEqual(page.data.map((m) => m.id), [DEV_MODEL_ANTHROPIC]);
    });
  });

  describe('errors in each provider\'s shape', () => {
    async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      return { status: res.status, json: await res.json() };
    }

    it('OpenAI: malformed JSON, missing model, missing messages → 400; unknown path → 404', async () => {
      const bad = await post(`${dev.openaiBaseUrl}/chat/completions`, '{"model": ');
      assert.equal(bad.status, 400);
      const err = (bad.json as { error: Record<string, unknown> }).error;
      assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(err.type, 'invalid_request_error');

      const noModel = await post(`${dev.openaiBaseUrl}/chat/completions`, JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }));
      assert.equal(noModel.status, 400);
      const noMessages = await post(`${dev.openaiBaseUrl}/chat/completions`, JSON.stringify({ model: 'm' }));
      assert.equal(noMessages.status, 400);
      assert.equal((noMessages.json as { error: { param: string } }).error.param, 'messages');

      await assert.rejects(
        openai.chat.completions.create({ model: '', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400,
      );
      await assert.rejects(
        openai.get('/nope'),
        (e: unknown) => e instanceof OpenAI.NotFoundError && (e.error as { type?: string }).type === 'invalid_request_error',
      );
    });

    it('Anthropic: malformed JSON, missing model/messages → 400; unknown path → 404', async () => {
      const bad = await post(`${dev.anthropicBaseUrl}/v1/messages`, 'not json', { 'x-api-key': 'whatever' });
      assert.equal(bad.status, 400);
      assert.deepEqual(Object.keys(bad.json as object).sort(), ['error', 'type']);
      assert.equal((bad.json as { type: string }).type, 'error');
      assert.equal((bad.json as { error: { type: string } }).error.type, 'invalid_request_error');

      await assert.rejects(
        anthropic.messages.create({ model: DEV_MODEL_ANTHROPIC, max_tokens: 10 } as unknown as Anthropic.MessageCreateParamsNonStreaming),
        (e: unknown) => e instanceof Anthropic.BadRequestError && (e.error as { error?: { type?: string } }).error?.type === 'invalid_request_error',
      );
      const noModel = await post(`${dev.anthropicBaseUrl}/v1/messages`, JSON.stringify({ max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }));
      assert.equal(noModel.status, 400);
      await assert.rejects(
        anthropic.get('/v1/nope'),
        (e: unknown) => e instanceof Anthropic.NotFoundError && (e.error as { error?: { type?: string } }).error?.type === 'not_found_error',
      );
    });
  });

  it('honours chunkDelayMs between streamed events', async () => {
    const slow = await startDevModel({ chunkDelayMs: 15 });
    try {
      const client = new OpenAI({ baseURL: slow.openaiBaseUrl, apiKey: 'k', maxRetries: 0 });
      const started = Date.now();
      const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'one two three' }] });
      const arrivals: number[] = [];
      for await (const _chunk of stream) arrivals.push(Date.now() - started);
      assert.ok(arrivals.length >= 10);
      assert.ok((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0) >= 15 * (arrivals.length - 2), `arrivals too fast: ${arrivals.join(',')}`);
    } finally {
      await slow.close();
    }
  });
});
