/**
 * The replay's pure parts: prompts and answers parsed from recorded provider bytes (the
 * transcripts in test/fixtures), masked spans, the player's pace over a fake clock, and the
 * plain transcript printed without a terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { answerAt, answerOf, buildTimeline, promptOf, splitMasked } from '../src/cli/replay-model.ts';
import { GAP_MAX_MS, GAP_MIN_MS, changeSpeed, parseSpeed, nextWakeMs, positionOf, seekCall, startPlayer, tick, togglePause, type PlayerCall, type PlayerState } from '../src/cli/replay-player.ts';
import { progressBar, timelineCells, wrapText } from '../src/cli/replay-layout.ts';
import { formatTranscript } from '../src/cli/replay-transcript.ts';
import { call, chatChunk, eventsAt, iso, session, T0, transcriptBlocks, transcriptBody } from './support/session-fixtures.ts';

function streamed(name: string, overrides: Parameters<typeof call>[1] = {}) {
  return call('c1', { events: eventsAt(transcriptBlocks(name), { firstMs: 200, stepMs: 30 }), ...overrides });
}

describe('answers parsed from recorded streams', () => {
  it('OpenAI chat: the content deltas at the offsets of their events, an email split across deltas whole again', () => {
    const c = streamed('openai-chat-stream');
    const answer = answerOf(c);
    assert.equal(answer.streamed, true);
    assert.equal(answer.eventCount, c.events.length);
    assert.deepEqual(
      answerAt(answer, Infinity).map((p) => [p.part.kind, p.text]),
      [['text', 'Café ☕ contact: jane.doe@example.com, phone +1 415-555-0132. See you there 🎉']],
    );
    // Every delta carries the offset of the event it came in; they only grow.
    const offsets = new Set(c.events.map((e) => e.offset_ms));
    for (const d of answer.deltas) assert.ok(offsets.has(d.offsetMs));
    assert.deepEqual([...answer.deltas].sort((a, b) => a.offsetMs - b.offsetMs), answer.deltas);
    // Halfway through, only what had been sent by then.
    const half = answer.deltas[Math.floor(answer.deltas.length / 2)]!.offsetMs;
    const partial = answerAt(answer, half)[0]!.text;
    assert.ok(partial.length > 0 && partial.length < 70 && 'Café ☕ contact: jane.doe@example.com'.startsWith(partial.slice(0, 20)), partial);
  });

  it('OpenAI chat tool calls: one part per call, named, with arguments that parse', () => {
    const parts = answerAt(answerOf(streamed('openai-chat-stream-tools')), Infinity);
    assert.deepEqual(parts.map((p) => [p.part.kind, p.part.label]), [['tool', 'get_weather'], ['tool', 'send_email']]);
    assert.deepEqual(JSON.parse(parts[0]!.text), { location: 'Paris, France', unit: 'celsius' });
    assert.deepEqual(JSON.parse(parts[1]!.text), { to: 'jane.doe@example.com', subject: 'Météo' });
  });

  it('OpenAI chat with n=2: each choice its own part', () => {
    const parts = answerAt(answerOf(streamed('openai-chat-stream-multichoice')), Infinity);
    assert.equal(parts.length, 2);
    assert.deepEqual(parts.map((p) => p.part.key), ['0:content', '1:content']);
  });

  it('OpenAI Responses: the output_text deltas add up to the text of output_text.done', () => {
    const c = streamed('openai-responses-stream', { endpoint: 'openai.responses', path: '/v1/responses' });
    const done = transcriptBlocks('openai-responses-stream').find((b) => b.includes('"response.output_text.done"'))!;
    const expected = (JSON.parse(done.slice(done.indexOf('data: ') + 6)) as { text: string }).text;
    assert.deepEqual(answerAt(answerOf(c), Infinity).map((p) => p.text), [expected]);
    assert.match(expected, /elodie\.martin@example\.org/);
  });

  it('Anthropic: a text block and a tool_use block whose input_json deltas parse', () => {
    const c = streamed('anthropic-messages-stream-tools', { provider: 'anthropic', provider_kind: 'anthropic', endpoint: 'anthropic.messages', path: '/v1/messages' });
    const parts = answerAt(answerOf(c), Infinity);
    assert.deepEqual(parts.map((p) => [p.part.kind, p.part.label]), [['text', null], ['tool', 'get_weather']]);
    assert.equal(parts[0]!.text, "I'll look up the weather in Paris for you.");
    assert.deepEqual(JSON.parse(parts[1]!.text), { location: 'Paris, France', unit: 'celsius' });
  });

  it('Anthropic: an error event in the stream is shown as an error part after the text sent before it', () => {
    const c = streamed('anthropic-stream-error', { provider_kind: 'anthropic', endpoint: 'anthropic.messages' });
    const answer = answerOf(c);
    assert.deepEqual(answerAt(answer, Infinity).map((p) => [p.part.kind, p.text]), [
      ['text', 'Here is the first part of the answer'],
      ['error', 'overloaded_error: Overloaded'],
    ]);
    assert.equal(answer.deltas.at(-1)!.offsetMs, c.events.at(-1)!.offset_ms);
  });

  it('non-streamed bodies: all the text at once, per provider', () => {
    const chat = answerOf(call('c', { stream: false, response_body: transcriptBody('openai-chat') }));
    assert.equal(chat.streamed, false);
    assert.match(answerAt(chat, 0)[0]!.text, /^Sure\. The account owner is Jane Doe/);
    const responses = answerOf(call('c', { stream: false, endpoint: 'openai.responses', response_body: transcriptBody('openai-responses') }));
    assert.deepEqual(answerAt(responses, 0).map((p) => p.text), ['Your order #48213 ships tomorrow. Questions? Write to support@example.com.']);
    const anthropic = answerOf(call('c', { stream: false, provider_kind: 'anthropic', endpoint: 'anthropic.messages', response_body: transcriptBody('anthropic-messages') }));
    assert.match(answerAt(anthropic, 0)[0]!.text, /^I found the customer record/);
    const blocked = answerOf(call('c', { stream: false, status: 'blocked', response_body: JSON.stringify({ error: { code: 'AIGOV_E_POLICY_BLOCKED', message: 'Blocked by rule no-secrets.' } }) }));
    assert.deepEqual(answerAt(blocked, 0).map((p) => [p.part.kind, p.text]), [['error', 'AIGOV_E_POLICY_BLOCKED: Blocked by rule no-secrets.']]);
  });
});

describe('answers: refusals, failures and snapshots', () => {
  const sse = (data: unknown, event?: string): string => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;

  it('OpenAI chat refusals, streamed and not, are refusal parts', () => {
    const streamedRefusal = call('c', { events: eventsAt([sse({ choices: [{ index: 0, delta: { refusal: 'I cannot ' } }] }), sse({ choices: [{ index: 0, delta: { refusal: 'help.' } }] }), 'data: [DONE]\n\n'], [5, 9, 10]) });
    assert.deepEqual(answerAt(answerOf(streamedRefusal), Infinity).map((p) => [p.part.kind, p.text]), [['refusal', 'I cannot help.']]);
    const body = call('c', { stream: false, response_body: JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: 'No.' } }] }) });
    assert.deepEqual(answerAt(answerOf(body), 0).map((p) => [p.part.kind, p.text]), [['refusal', 'No.']]);
  });

  it('Responses: a failed response is an error part; a custom tool call with only its done event still shows its input', () => {
    const events = [
      sse({ type: 'response.output_item.added', output_index: 0, item: { type: 'custom_tool_call', call_id: 'ct_1', name: 'exec', input: '' } }, 'response.output_item.added'),
      sse({ type: 'response.custom_tool_call_input.done', output_index: 0, input: 'tools.exec_command({cmd: "pwd"})' }, 'response.custom_tool_call_input.done'),
      sse({ type: 'response.output_item.done', output_index: 0, item: { type: 'custom_tool_call', call_id: 'ct_1', name: 'exec', input: 'tools.exec_command({cmd: "pwd"})' } }, 'response.output_item.done'),
      sse({ type: 'response.failed', response: { status: 'failed', error: { code: 'server_error', message: 'boom' } } }, 'response.failed'),
    ];
    const c = call('c', { endpoint: 'openai.responses', events: eventsAt(events, [1, 2, 3, 4]) });
    assert.deepEqual(answerAt(answerOf(c), Infinity).map((p) => [p.part.kind, p.part.label, p.text]), [
      ['tool', 'exec', 'tools.exec_command({cmd: "pwd"})'],
      ['error', null, 'server_error: boom'],
    ]);
  });

  it('Anthropic: text blocks around a tool call stay apart; an aigov refusal in Anthropic shape shows its code', () => {
    const blocks = [
      sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Before.' } }, 'content_block_delta'),
      sse({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'tu_1', name: 'Read', input: {} } }, 'content_block_start'),
      sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"file_path":"a"}' } }, 'content_block_delta'),
      sse({ type: 'content_block_start', index: 2, content_block: { type: 'text', text: '' } }, 'content_block_start'),
      sse({ type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'After.' } }, 'content_block_delta'),
    ];
    const c = call('c', { provider_kind: 'anthropic', endpoint: 'anthropic.messages', events: eventsAt(blocks, [1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(answerAt(answerOf(c), Infinity).map((p) => [p.part.kind, p.text]), [['text', 'Before.'], ['tool', '{"file_path":"a"}'], ['text', 'After.']]);
    const refused = call('c', { stream: false, provider_kind: 'anthropic', endpoint: 'unrouted', status: 'blocked', http_status: 404, response_body: JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: 'No such endpoint.', code: 'AIGOV_E_NOT_FOUND' } }) });
    assert.deepEqual(answerAt(answerOf(refused), 0).map((p) => [p.part.kind, p.text]), [['error', 'AIGOV_E_NOT_FOUND: No such endpoint.']]);
  });
});

describe('prompts parsed from recorded request bodies', () => {
  it('OpenAI chat: roles, content parts, assistant tool calls and tool results', () => {
    const body = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: [{ type: 'text', text: 'Mail [EMAIL] about' }, { type: 'image_url', image_url: { url: 'data:…' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send', arguments: '{"to":"«EMAIL_1»"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sent' },
      ],
    };
    assert.deepEqual(promptOf({ endpoint: 'openai.chat.completions', request_body: JSON.stringify(body) }), [
      { role: 'system', text: 'You are terse.' },
      { role: 'user', text: 'Mail [EMAIL] about\n[image]' },
      { role: 'assistant', text: '→ tool call send({"to":"«EMAIL_1»"})' },
      { role: 'tool', text: '← result of call_1: sent' },
    ]);
  });

  it('OpenAI Responses: instructions, a string input or input items', () => {
    assert.deepEqual(promptOf({ endpoint: 'openai.responses', request_body: JSON.stringify({ model: 'gpt-5', instructions: 'Be kind', input: 'hello' }) }), [
      { role: 'instructions', text: 'Be kind' },
      { role: 'user', text: 'hello' },
    ]);
    const items = { model: 'gpt-5', input: [{ role: 'user', content: [{ type: 'input_text', text: 'weather?' }] }, { type: 'function_call', name: 'get_weather', arguments: '{}', call_id: 'fc_1' }, { type: 'function_call_output', call_id: 'fc_1', output: 'sunny' }] };
    assert.deepEqual(promptOf({ endpoint: 'openai.responses', request_body: JSON.stringify(items) }), [
      { role: 'user', text: 'weather?' },
      { role: 'assistant', text: '→ tool call get_weather({})' },
      { role: 'tool', text: '← result of fc_1: sunny' },
    ]);
  });

  it('Anthropic: the system prompt (string or blocks) first, then messages with tool_use and tool_result blocks', () => {
    const body = {
      model: 'claude-sonnet-4-5',
      system: [{ type: 'text', text: 'Policy: be brief.' }],
      messages: [
        { role: 'user', content: 'Call ****1111 owner' },
        { role: 'assistant', content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', id: 'tu_1', name: 'lookup', input: { card: '****1111' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'found' }] }] },
      ],
    };
    assert.deepEqual(promptOf({ endpoint: 'anthropic.messages', request_body: JSON.stringify(body) }), [
      { role: 'system', text: 'Policy: be brief.' },
      { role: 'user', text: 'Call ****1111 owner' },
      { role: 'assistant', text: 'Looking.\n→ tool call lookup({"card":"****1111"})' },
      { role: 'user', text: '← tool result tu_1: found' },
    ]);
  });

  it('OpenAI Responses from Codex code mode: custom exec calls and outputs, reasoning and additional_tools items by their type', () => {
    const body = {
      model: 'gpt-5-codex',
      instructions: 'You are Codex.',
      input: [
        { type: 'additional_tools', tools: [{ type: 'namespace', name: 'functions', tools: [{ type: 'custom', name: 'exec' }] }] },
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'sandbox: workspace-write' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
        { type: 'reasoning', summary: [], encrypted_content: 'gAAA' },
        { type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'The user wants a listing.' }] },
        { type: 'custom_tool_call', call_id: 'ct_1', name: 'exec', input: 'await tools.exec_command({cmd: "ls"})' },
        { type: 'custom_tool_call_output', call_id: 'ct_1', output: [{ type: 'input_text', text: 'README.md' }] },
      ],
    };
    assert.deepEqual(promptOf({ endpoint: 'openai.responses', request_body: JSON.stringify(body) }), [
      { role: 'instructions', text: 'You are Codex.' },
      { role: 'additional_tools', text: '[additional_tools]' },
      { role: 'developer', text: 'sandbox: workspace-write' },
      { role: 'user', text: 'list files' },
      { role: 'reasoning', text: '[reasoning]' },
      { role: 'reasoning', text: 'The user wants a listing.' },
      { role: 'assistant', text: '→ tool call exec(await tools.exec_command({cmd: "ls"}))' },
      { role: 'tool', text: '← result of ct_1: README.md' },
    ]);
  });

  it('Anthropic: mid-conversation system turns and thinking blocks keep their names; Chat `function` turns too', () => {
    const body = {
      model: 'claude-opus-4-5',
      messages: [
        { role: 'user', content: 'fix the test' },
        { role: 'system', content: 'Reminder: be careful.' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'tool_use', id: 'tu_9', name: 'Bash', input: { command: 'npm test' } }] },
      ],
    };
    assert.deepEqual(promptOf({ endpoint: 'anthropic.messages', request_body: JSON.stringify(body) }), [
      { role: 'user', text: 'fix the test' },
      { role: 'system', text: 'Reminder: be careful.' },
      { role: 'assistant', text: '[thinking]\n→ tool call Bash({"command":"npm test"})' },
    ]);
    const chat = { model: 'gpt-4o', messages: [{ role: 'function', name: 'lookup', content: 'found' }] };
    assert.deepEqual(promptOf({ endpoint: 'openai.chat.completions', request_body: JSON.stringify(chat) }), [{ role: 'function', text: '← result of lookup: found' }]);
  });

  it('a body the gateway refused as malformed, or of an unrouted call, is shown as recorded; an empty one not at all', () => {
    const noModel = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(promptOf({ endpoint: 'openai.chat.completions', request_body: noModel }), [{ role: 'body', text: noModel }]);
    assert.deepEqual(promptOf({ endpoint: 'unrouted', request_body: '{"x":1}' }), [{ role: 'body', text: '{"x":1}' }]);
    assert.deepEqual(promptOf({ endpoint: 'unrouted', request_body: '' }), []);
  });

  it('a body that is not JSON is shown as it was recorded; embeddings inputs each on their own', () => {
    assert.deepEqual(promptOf({ endpoint: 'openai.chat.completions', request_body: 'not json {' }), [{ role: 'body', text: 'not json {' }]);
    assert.deepEqual(promptOf({ endpoint: 'openai.embeddings', request_body: JSON.stringify({ model: 'text-embedding-3-small', input: ['a', 'b'] }) }), [
      { role: 'input', text: 'a' },
      { role: 'input', text: 'b' },
    ]);
  });
});

describe('masked spans', () => {
  const table: [string, string[]][] = [
    ['Mail [EMAIL] now', ['[EMAIL]']],
    ['id [EMAIL:3f9a0c1d2e3f4a5b] and [PHONE:3f9a…]', ['[EMAIL:3f9a0c1d2e3f4a5b]', '[PHONE:3f9a…]']],
    ['card ****1111, ssn *****6789.', ['****1111', '*****6789.']],
    ['ask «EMAIL_1» and « PHONE_12 » and «email_2»', ['«EMAIL_1»', '« PHONE_12 »', '«email_2»']],
    ['**bold** and [link] and [a] and « texte »', []],
  ];
  for (const [text, masked] of table) {
    it(`finds ${masked.length ? masked.join(', ') : 'nothing'} in ${JSON.stringify(text)}`, () => {
      assert.deepEqual(splitMasked(text).filter((s) => s.masked).map((s) => s.text), masked);
    });
  }
  it('the spans always join back to the text', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('[EMAIL]', '«EMAIL_1»', '****1111', '[EMAIL:3f9a…]', '*', '[', '«')), { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        assert.equal(splitMasked(text).map((s) => s.text).join(''), text);
      }),
    );
  });
});

/** Plays the calls from wall time 0, waking only when the player says, and notes when each delta count was first reached. */
function simulate(calls: readonly PlayerCall[], offsets: readonly (readonly number[])[], speed: number, limitMs = 1_000_000): { call: number; shown: number; at: number }[] {
  let now = 0;
  let state: PlayerState = startPlayer(now, { speed });
  const seen: { call: number; shown: number; at: number }[] = [];
  let last = '';
  while (now < limitMs) {
    state = tick(state, calls, now);
    const position = positionOf(state, calls, now);
    const shown = (offsets[state.call] ?? []).filter((o) => o <= position).length;
    const key = `${state.call}:${shown}`;
    if (key !== last) seen.push({ call: state.call, shown, at: now });
    last = key;
    const wake = nextWakeMs(state, calls, offsets[state.call] ?? [], now);
    if (wake === null) break;
    now += wake;
  }
  return seen;
}

describe('the player', () => {
  const calls: PlayerCall[] = [
    { startMs: 0, durationMs: 1000 },
    { startMs: 60_000, durationMs: 500 },
  ];

  it('shows each delta exactly when its recorded offset is reached, at any speed, and moves on after the gap', () => {
    const offsets = [[100, 250, 900], [0, 480]];
    for (const speed of [0.25, 1, 2, 16]) {
      const seen = simulate(calls, offsets, speed);
      const gap = Math.min(GAP_MAX_MS, Math.max(GAP_MIN_MS, 60_000 - 1000));
      assert.deepEqual(
        seen.map((s) => [s.call, s.shown, Math.round(s.at * 1000) / 1000]),
        [
          [0, 0, 0],
          [0, 1, 100 / speed],
          [0, 2, 250 / speed],
          [0, 3, 900 / speed],
          [1, 1, (1000 + gap) / speed],
          [1, 2, (1000 + gap + 480) / speed],
        ],
        `at ${speed}×`,
      );
    }
  });

  it('the pause between calls is the recorded one, within 0.75 … 2 s', () => {
    const close: PlayerCall[] = [
      { startMs: 0, durationMs: 100 },
      { startMs: 1200, durationMs: 100 },
      { startMs: 1400, durationMs: 100 },
    ];
    const seen = simulate(close, [[], [], []], 1);
    assert.deepEqual(seen.map((s) => [s.call, s.at]), [[0, 0], [1, 1200], [2, 1200 + 100 + 750]]);
  });

  it('pausing freezes the position; resuming goes on from it', () => {
    let s = startPlayer(0);
    s = togglePause(s, calls, 300);
    assert.equal(s.playing, false);
    assert.equal(positionOf(s, calls, 5000), 300);
    assert.equal(nextWakeMs(s, calls, [400], 5000), null, 'nothing to wake for while paused');
    s = togglePause(s, calls, 5000);
    assert.equal(positionOf(s, calls, 5100), 400);
    assert.equal(nextWakeMs(s, calls, [900], 5100), 500);
  });

  it('speed steps through 0.25× … 16× and keeps the position', () => {
    let s = startPlayer(0);
    const speeds: number[] = [];
    for (let i = 0; i < 7; i++) {
      s = changeSpeed(s, calls, 1, 0);
      speeds.push(s.speed);
    }
    assert.deepEqual(speeds, [2, 4, 8, 16, 16, 16, 16]);
    for (let i = 0; i < 8; i++) s = changeSpeed(s, calls, -1, 0);
    assert.equal(s.speed, 0.25);
    s = startPlayer(0);
    s = changeSpeed(s, calls, 1, 200); // 200 ms at 1×, then 2×
    assert.equal(positionOf(s, calls, 300), 400);
    assert.equal(startPlayer(0, { speed: 100 }).speed, 16);
  });

  it('--speed takes 0.25 … 16, with or without an x', () => {
    assert.deepEqual([parseSpeed(undefined), parseSpeed('2'), parseSpeed('0.25'), parseSpeed('4x'), parseSpeed(' 16× ')], [1, 2, 0.25, 4, 16]);
    for (const bad of ['0', '0.1', '17', 'fast', '-1', 'NaN', 'Infinity']) {
      assert.throws(() => parseSpeed(bad), (error: Error & { code?: string }) => error.code === 'AIGOV_E_BAD_FLAG' && /^--speed ".*" is not valid: it takes a number from 0\.25 to 16/.test(error.message), bad);
    }
  });

  it('←/→ go to the start of the previous or next call, within bounds; a finished replay plays again', () => {
    let s = startPlayer(0);
    s = seekCall(s, calls, 1, 50);
    assert.deepEqual([s.call, positionOf(s, calls, 50)], [1, 0]);
    s = seekCall(s, calls, 1, 60);
    assert.equal(s.call, 1);
    s = tick(s, calls, 10_000);
    assert.equal(s.finished, true);
    assert.equal(positionOf(s, calls, 10_000), 500);
    s = seekCall(s, calls, -1, 10_000);
    assert.deepEqual([s.call, s.playing, s.finished], [0, true, false]);
    s = seekCall(s, calls, -5, 10_000);
    assert.equal(s.call, 0);
  });
});

describe('the plain transcript', () => {
  it('tells the whole session as text: heading, decisions, approval votes, masked spans, prompt by role, the answer', () => {
    const detail = session([
      call('call_1', {
        decisions: [{ stage: 'request', action: 'mask_request', rule_id: 'pii-mask', reason: 'Emails are masked', mode: 'enforce' }],
        approvals: [
          {
            id: 'apr_1',
            state: 'approved',
            rule_id: 'customer-data',
            created_at: iso(T0 + 10),
            decided_at: iso(T0 + 25_010),
            votes: [{ by: { sub: 'bob', email: 'bob@aigov.dev' }, decision: 'approve', reason: 'ticket 42', at: iso(T0 + 25_010) }],
          },
        ],
        request_body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Write to [EMAIL] \u001b[31mnow' }] }),
        events: eventsAt([chatChunk('Hello '), chatChunk('«EMAIL_1»'), 'data: [DONE]\n\n'], [300, 420, 430]),
        latency_ms: 430,
      }),
      call('call_2', {
        started_at: iso(T0 + 5000),
        stream: false,
        status: 'blocked',
        http_status: 403,
        error: { code: 'AIGOV_E_POLICY_BLOCKED', message: 'Blocked by rule no-keys.' },
        decisions: [{ stage: 'request', action: 'block', rule_id: 'no-keys', reason: 'No API keys', mode: 'enforce' }],
      }),
    ]);
    const text = formatTranscript(buildTimeline(detail));
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /\u001b/, 'no ANSI and no control character from the recording');
    assert.match(text, /^Session ses_replay · alice@aigov\.dev · 2 calls · 2030-01-01T12:00:00\.000Z/);
    assert.match(text, /Call 1 of 2 · 12:00:00\.000Z \(\+0 ms\) · openai\/gpt-4o-mini · openai\.chat\.completions · streamed · completed \(HTTP 200\) · 430 ms/);
    assert.match(text, /\n {4}mask_request · rule pii-mask · request · Emails are masked\n/);
    assert.match(text, /Approval apr_1 \(rule customer-data\): approved at 12:00:25\.010Z, held 25\.0 s\n {4}✔ approved by bob@aigov\.dev at 12:00:25\.010Z: “ticket 42”/);
    assert.match(text, /Masked: \[EMAIL\] «EMAIL_1»/);
    assert.match(text, /\[system\]\n {6}Be brief\n {4}\[user\]\n {6}Write to \[EMAIL\] \\x1b\[31mnow/);
    assert.match(text, /Answer \(streamed: 3 events, 2 text deltas, first text at 300 ms, last at 420 ms\)\n {4}Hello «EMAIL_1»\n/);
    assert.match(text, /Call 2 of 2 · 12:00:05\.000Z \(\+5\.0 s\) .* blocked \(HTTP 403\) · AIGOV_E_POLICY_BLOCKED: Blocked by rule no-keys\./);
    assert.match(text, /block · rule no-keys · request · No API keys\n {2}Prompt\n {4}\[user\]\n {6}question of call_2\n {2}Answer\n {4}\(none: the request was blocked\)\n$/);
  });
});

describe('the screen layout', () => {
  const timelineOf = (starts: number[]) => buildTimeline(session(starts.map((ms, i) => call(`c${i}`, { started_at: iso(T0 + ms), latency_ms: 100 }))));

  it('puts each call on the timeline at its start time; close calls take the next free cell', () => {
    assert.deepEqual(timelineCells(timelineOf([0, 5000, 9900]), 1, 11), { text: '●────◆────○', currentAt: 5 });
    assert.deepEqual(timelineCells(timelineOf([0, 1, 2, 10_000]), 0, 8), { text: '◆○○────○', currentAt: 0 });
  });

  it('with more calls than cells each cell stands for a run of calls and the current one still shows', () => {
    const many = timelineOf(Array.from({ length: 50 }, (_, i) => i * 1000));
    const { text, currentAt } = timelineCells(many, 37, 10);
    assert.equal([...text].length, 10);
    assert.equal([...text][currentAt], '◆');
    assert.equal(currentAt, 7);
    assert.equal(text, '●●●●●●●◆○○');
  });

  it('wraps at a space where one is near, else cuts; keeps empty lines', () => {
    assert.deepEqual(wrapText('the quick brown fox jumps', 10), ['the quick', 'brown fox', 'jumps']);
    assert.deepEqual(wrapText('abcdefghijklmnop', 5), ['abcde', 'fghij', 'klmno', 'p']);
    assert.deepEqual(wrapText('a\n\nb', 5), ['a', '', 'b']);
  });

  it('draws the progress bar', () => {
    assert.equal(progressBar(0, 5), '╸────');
    assert.equal(progressBar(0.5, 10), '━━━━━╸────');
    assert.equal(progressBar(1, 5), '━━━━━');
    assert.equal(progressBar(Number.NaN, 3), '╸──');
  });
});
