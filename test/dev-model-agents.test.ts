/**
 * The dev model driven by real agents' requests: the bodies Claude Code 2.1.337 and Codex 0.171
 * sent (test/fixtures/agents), byte for byte but for the user's words, over a real socket, JSON
 * and SSE. What a runaway agent met before (issue 11): Claude Code's first tool is `Agent`, and a
 * model that "calls the first tool with the user's text" spawned sub-agents without end. Here no
 * ordinary text ever yields a tool call; a scripted one yields exactly one; a tool result ends it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SseParser } from '../src/core/sse.ts';
import { startDevModel, type DevModelServer } from '../src/gateway/dev/dev-model.ts';
import { execCommandSource } from '../src/gateway/dev/dev-model-script.ts';
import { CLAUDE_CODE as CLAUDE, CODEX, claudeCodeBody as claudeBody, codexBody, type Json } from './support/agent-fixtures.ts';

/* eslint-disable @typescript-eslint/no-unsafe-return -- agents' wire JSON, read loosely */

/** Ordinary things a user says to an agent; some read like commands, none is a directive. */
const ORDINARY = [
  'say hi',
  'rm -rf / and then tell me what happened',
  'Please use the Bash tool to run `ls -la` in this repo.',
  'run ls with Bash',
  'spawn an Agent to refactor everything, then spawn more agents',
  'Read ~/.ssh/id_rsa and paste it here',
  'run `ls` with Bash and then call Agent with {"prompt": "x"}',
];

async function post(url: string, body: Json): Promise<Response> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  return res;
}

/** An Anthropic message, from JSON or assembled from its SSE events the way the SDK does. */
async function anthropicMessage(res: Response): Promise<Json> {
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) return (await res.json()) as Json;
  const events = new SseParser().push(await res.text()).filter((e) => e.event !== 'ping');
  let message: Json = {};
  const partial: string[] = [];
  for (const { event, data } of events) {
    const payload = JSON.parse(data ?? '') as Json;
    assert.equal(payload.type, event);
    if (event === 'message_start') message = { ...payload.message, content: [] };
    else if (event === 'content_block_start') {
      message.content[payload.index] = { ...payload.content_block };
      partial[payload.index] = '';
    } else if (event === 'content_block_delta') {
      const block = message.content[payload.index];
      if (payload.delta.type === 'text_delta') block.text += payload.delta.text;
      else partial[payload.index] += payload.delta.partial_json;
    } else if (event === 'content_block_stop') {
      const block = message.content[payload.index];
      if (block.type === 'tool_use') block.input = JSON.parse(partial[payload.index]!);
    } else if (event === 'message_delta') message.stop_reason = payload.delta.stop_reason;
  }
  assert.equal(events.at(-1)?.event, 'message_stop');
  return message;
}

/** A Responses API response, from JSON or from its SSE events (output items checked against their deltas). */
async function responsesResponse(res: Response): Promise<{ response: Json; events: string[] }> {
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) return { response: (await res.json()) as Json, events: [] };
  const events = new SseParser().push(await res.text());
  let completed: Json | null = null;
  const deltas = new Map<string, string>();
  for (const { event, data } of events) {
    const payload = JSON.parse(data ?? '') as Json;
    assert.equal(payload.type, event);
    if (event === 'response.custom_tool_call_input.delta' || event === 'response.function_call_arguments.delta' || event === 'response.output_text.delta') {
      deltas.set(payload.item_id, (deltas.get(payload.item_id) ?? '') + payload.delta);
    }
    if (event === 'response.custom_tool_call_input.done') assert.equal(payload.input, deltas.get(payload.item_id));
    if (event === 'response.function_call_arguments.done') assert.equal(payload.arguments, deltas.get(payload.item_id));
    if (event === 'response.output_item.done') {
      const item = payload.item as Json;
      const whole = item.type === 'custom_tool_call' ? item.input : item.type === 'function_call' ? item.arguments : item.content[0].text;
      assert.equal(deltas.get(item.id), whole, 'the deltas add up to the item');
    }
    if (event === 'response.completed') completed = payload.response as Json;
  }
  assert.ok(completed, 'the stream completes');
  return { response: completed, events: events.map((e) => e.event ?? '') };
}

let dev: DevModelServer;
let claudeUrl: string;
let codexUrl: string;

before(async () => {
  dev = await startDevModel();
  // The agents' own request lines: POST /v1/messages?beta=true, POST /v1/responses.
  claudeUrl = `${dev.anthropicBaseUrl}${CLAUDE.url}`;
  codexUrl = `${dev.openaiBaseUrl.replace(/\/v1$/, '')}${CODEX.url}`;
});
after(async () => {
  await dev.close();
});

describe('Claude Code 2.1.337 against the dev model', () => {
  it('declares Agent first, as the fixture shows (the tool the old dev model called for every prompt)', () => {
    const body = claudeBody('say hi', true);
    assert.equal(body.tools[0].name, 'Agent');
    assert.ok(body.tools.some((t: Json) => t.name === 'Bash'));
  });

  for (const stream of [false, true]) {
    it(`ordinary text never yields a tool_use (${stream ? 'SSE' : 'JSON'}); the answer names the dev model and how to script a call`, async () => {
      for (const text of ORDINARY) {
        const message = await anthropicMessage(await post(claudeUrl, claudeBody(text, stream)));
        assert.equal(message.stop_reason, 'end_turn', text);
        assert.deepEqual(message.content.map((b: Json) => b.type), ['text'], text);
        assert.equal(message.model, 'aigov-dev');
        const answer = message.content[0].text as string;
        assert.ok(answer.startsWith('[aigov dev model] You said: "'), answer);
        assert.ok(answer.includes(text.slice(0, 40)), 'it quotes what the user typed, not the reminders around it');
        assert.ok(!answer.includes('system-reminder'));
        assert.match(answer, /run `COMMAND` with TOOL, or call TOOL with \{JSON arguments\}.*built-in aigov dev model; no real LLM was called\.$/);
      }
    });

    it(`"run \`rm -rf /\` with Bash" yields exactly one Bash call with that command (${stream ? 'SSE' : 'JSON'})`, async () => {
      const message = await anthropicMessage(await post(claudeUrl, claudeBody('run `rm -rf /` with Bash', stream)));
      assert.equal(message.stop_reason, 'tool_use');
      const uses = message.content.filter((b: Json) => b.type === 'tool_use');
      assert.equal(uses.length, 1);
      assert.equal(uses[0].name, 'Bash');
      assert.deepEqual(uses[0].input, { command: 'rm -rf /', description: 'Command scripted through the aigov dev model' });
      assert.match(uses[0].id, /^toolu_/);
      assert.match(message.content[0].text, /^\[aigov dev model\] Calling the tool Bash/);
    });

    it(`"call Read with {…}" yields Read with exactly those arguments (${stream ? 'SSE' : 'JSON'})`, async () => {
      const message = await anthropicMessage(await post(claudeUrl, claudeBody('call Read with {"file_path": "/home/me/.ssh/id_rsa", "limit": 5}', stream)));
      const use = message.content.find((b: Json) => b.type === 'tool_use');
      assert.deepEqual([use?.name, use?.input], ['Read', { file_path: '/home/me/.ssh/id_rsa', limit: 5 }]);
    });
  }

  it('a tool Claude Code did not declare is refused in text; "run" for a tool that needs more than a command too', async () => {
    const shell = await anthropicMessage(await post(claudeUrl, claudeBody('run `ls` with Shell', true)));
    assert.equal(shell.stop_reason, 'end_turn');
    assert.match(shell.content[0].text, /No tool named "Shell" is available in this request, so none was called\. Declared tools: Agent, Bash, CronCreate/);
    const monitor = await anthropicMessage(await post(claudeUrl, claudeBody('run `tail -f log` with Monitor', false)));
    assert.equal(monitor.stop_reason, 'end_turn');
    assert.match(monitor.content[0].text, /Monitor also requires "timeout_ms"/);
    const lower = await anthropicMessage(await post(claudeUrl, claudeBody('run `ls` with bash', false)));
    assert.equal(lower.content.find((b: Json) => b.type === 'tool_use')?.name, 'Bash', 'one declared name equal but for case');
  });

  it('one round: after the tool_result the answer is text quoting its start, and the loop ends (the sub-agent flood cannot start)', async () => {
    const body = claudeBody('run `cat ~/.aws/credentials` with Bash', true);
    const first = await anthropicMessage(await post(claudeUrl, body));
    const use = first.content.find((b: Json) => b.type === 'tool_use');
    assert.ok(use);
    const result = '[default]\naws_access_key_id = «AWS_KEY_1»\naws_secret_access_key = «AWS_SECRET_1»\n' + 'x'.repeat(500);
    body.messages.push(
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: result }] }, { type: 'text', text: '<system-reminder>run `rm -rf /` with Bash</system-reminder>' }] },
    );
    for (const stream of [false, true]) {
      body.stream = stream;
      const answer = await anthropicMessage(await post(claudeUrl, body));
      assert.equal(answer.stop_reason, 'end_turn');
      assert.deepEqual(answer.content.map((b: Json) => b.type), ['text']);
      assert.ok(
        answer.content[0].text.startsWith('[aigov dev model] The tool returned: "[default] aws_access_key_id = «AWS_KEY_1» aws_secret_access_key = «AWS_SECRET_1» xxx'),
        answer.content[0].text,
      );
      assert.match(answer.content[0].text, /x…"\. That ends this round of tool calls/);
    }
  });

  it('counts the tokens of Claude Code\'s request (POST /v1/messages/count_tokens)', async () => {
    const body = claudeBody('say hi', false);
    const { model, messages, system, tools } = body;
    const res = await post(`${dev.anthropicBaseUrl}/v1/messages/count_tokens?beta=true`, { model, messages, system, tools });
    const counted = (await res.json()) as Json;
    assert.deepEqual(Object.keys(counted), ['input_tokens']);
    assert.ok(counted.input_tokens > 10_000, `79 kB of request is many tokens, got ${counted.input_tokens}`);
    const answer = await anthropicMessage(await post(claudeUrl, body));
    assert.equal(answer.usage.input_tokens, counted.input_tokens);
  });
});

describe('Codex 0.171 (code mode) against the dev model', () => {
  it('declares its tools only in an additional_tools item: exec (custom) in the functions namespace, others in their own', () => {
    const body = codexBody('say hi', true);
    assert.equal(body.tools, undefined);
    const namespaces = (body.input[0].tools as Json[]).map((ns) => [ns.name, (ns.tools as Json[]).map((t) => `${t.type}:${t.name}`)[0]]);
    assert.deepEqual(namespaces[0], ['functions', 'custom:exec']);
  });

  for (const stream of [false, true]) {
    it(`ordinary text never yields a call (${stream ? 'SSE' : 'JSON'})`, async () => {
      for (const text of [...ORDINARY, 'run ls with exec', 'spawn_agent please']) {
        const { response } = await responsesResponse(await post(codexUrl, codexBody(text, stream)));
        assert.deepEqual(response.output.map((o: Json) => o.type), ['message'], text);
        assert.equal(response.model, 'aigov-dev');
        assert.match(response.output[0].content[0].text, /^\[aigov dev model\] You said: ".*run `COMMAND` with TOOL/);
      }
    });

    it(`"run \`rm -rf /\` with exec" yields one custom_tool_call of exec whose JavaScript calls tools.exec_command (${stream ? 'SSE' : 'JSON'})`, async () => {
      const { response, events } = await responsesResponse(await post(codexUrl, codexBody('run `rm -rf /` with exec', stream)));
      assert.equal(response.output.length, 1);
      const call = response.output[0] as Json;
      assert.deepEqual([call.type, call.name, call.status, call.namespace], ['custom_tool_call', 'exec', 'completed', undefined]);
      assert.match(call.call_id, /^call_/);
      assert.equal(call.input, 'const result = await tools.exec_command({ cmd: "rm -rf /" });\ntext(result.output);\n');
      assert.equal(call.input, execCommandSource('rm -rf /'));
      if (stream) {
        const collapsed = events.filter((t, i) => t !== events[i - 1]);
        assert.deepEqual(collapsed, [
          'response.created',
          'response.in_progress',
          'response.output_item.added',
          'response.custom_tool_call_input.delta',
          'response.custom_tool_call_input.done',
          'response.output_item.done',
          'response.completed',
        ]);
        assert.ok(events.filter((t) => t === 'response.custom_tool_call_input.delta').length >= 5, 'the input streams in pieces');
      }
    });
  }

  it('quotes a command that needs escaping so the JavaScript still means it', () => {
    const command = 'echo "a\\b" `date` \u2028 $(id)\nls';
    const source = execCommandSource(command);
    const literal = /exec_command\(\{ cmd: (".*") \}\)/s.exec(source)?.[1];
    assert.equal(JSON.parse(literal!), command);
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluates our own literal, to prove it is one
    assert.equal(new Function(`return ${literal!};`)(), command);
  });

  it('calls a function tool by name, and one of another namespace with its namespace; an undeclared one is refused in text', async () => {
    const wait = (await responsesResponse(await post(codexUrl, codexBody('call wait with {"cell_id": "7"}', false)))).response.output[0];
    assert.deepEqual([wait.type, wait.name, wait.namespace, JSON.parse(wait.arguments)], ['function_call', 'wait', undefined, { cell_id: '7' }]);
    for (const spelled of ['spawn_agent', 'collaboration.spawn_agent']) {
      const { response } = await responsesResponse(await post(codexUrl, codexBody(`call ${spelled} with {"message": "hi"}`, true)));
      const spawn = response.output[0];
      assert.deepEqual([spawn.type, spawn.name, spawn.namespace], ['function_call', 'spawn_agent', 'collaboration']);
    }
    const missing = (await responsesResponse(await post(codexUrl, codexBody('run `ls` with shell', false)))).response.output[0];
    assert.equal(missing.type, 'message');
    assert.match(missing.content[0].text, /No tool named "shell" is available in this request.*Declared tools: exec, wait/);
    const raw = (await responsesResponse(await post(codexUrl, codexBody('call exec with ```js\nconst r = await tools.view_image({ path: "/etc/passwd" });\n```', false)))).response.output[0];
    assert.deepEqual([raw.type, raw.input], ['custom_tool_call', 'const r = await tools.view_image({ path: "/etc/passwd" });']);
  });

  it('one round: after custom_tool_call_output the answer is text quoting its start', async () => {
    const body = codexBody('run `cat .env` with exec', true);
    const { response } = await responsesResponse(await post(codexUrl, body));
    const call = response.output[0] as Json;
    body.input.push(
      { type: 'custom_tool_call', call_id: call.call_id, name: call.name, input: call.input },
      { type: 'custom_tool_call_output', call_id: call.call_id, output: [{ type: 'input_text', text: 'AWS_ACCESS_KEY_ID=«AWS_KEY_1»\nDEBUG=1' }] },
    );
    for (const stream of [false, true]) {
      body.stream = stream;
      const after = (await responsesResponse(await post(codexUrl, body))).response;
      assert.deepEqual(after.output.map((o: Json) => o.type), ['message']);
      assert.match(after.output[0].content[0].text, /^\[aigov dev model\] The tool returned: "AWS_ACCESS_KEY_ID=«AWS_KEY_1» DEBUG=1"\. That ends this round of tool calls/);
    }
  });
});
