/**
 * Upstream answers in which a coding agent's model calls tools, in each provider's real wire
 * format (shapes as in the recorded transcripts of test/fixtures/transcripts and the providers'
 * API references): Anthropic Messages (a text block, then tool_use blocks whose input arrives as
 * input_json_delta pieces, the first one empty), OpenAI Chat Completions (tool_calls deltas),
 * OpenAI Responses (function_call and Codex's custom_tool_call items with their delta/done events,
 * sequence numbers, response.completed carrying the output). Arguments are cut into pieces at
 * seeded-random places — mid-word, mid-escape — so no gate can rely on a whole field per event.
 */
import type { Transcript } from './replay-upstream.ts';
import { seededRandom } from './seeded-random.ts';

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': 'req_agent_transcript' };
const JSON_HEADERS = { 'content-type': 'application/json' };

/** Cuts text into 1..`longest`-character pieces at seeded-random places. */
export function pieces(text: string, seed: number, longest = 6): string[] {
  const random = seededRandom(seed);
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(random() * longest);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

/** One SSE event block: an optional `event:` line and the JSON data. */
export function sse(event: string | null, data: unknown): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

export interface AnthropicCall {
  readonly name: string;
  readonly input: Record<string, unknown>;
}

export function anthropicToolStream(calls: readonly AnthropicCall[], text = "I'll take care of that.", seed = 7): Transcript {
  let body = sse('message_start', { type: 'message_start', message: { id: 'msg_01AgentToolStream', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1200, output_tokens: 1 } } });
  let index = 0;
  if (text !== '') {
    body += sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    body += sse('ping', { type: 'ping' });
    for (const piece of pieces(text, seed)) body += sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    body += sse('content_block_stop', { type: 'content_block_stop', index });
    index++;
  }
  for (const call of calls) {
    body += sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: `toolu_01Agent${index}`, name: call.name, input: {} } });
    body += sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of pieces(JSON.stringify(call.input), seed + index)) body += sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
    body += sse('content_block_stop', { type: 'content_block_stop', index });
    index++;
  }
  body += sse('message_delta', { type: 'message_delta', delta: { stop_reason: calls.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 120 } });
  body += sse('message_stop', { type: 'message_stop' });
  return { description: 'Anthropic Messages stream: text then tool_use blocks (input in pieces)', request: { method: 'POST', path: '/v1/messages' }, status: 200, headers: SSE_HEADERS, body };
}

export function anthropicToolMessage(calls: readonly AnthropicCall[], text = "I'll take care of that."): Transcript {
  const content = [...(text ? [{ type: 'text', text }] : []), ...calls.map((c, i) => ({ type: 'tool_use', id: `toolu_01Agent${i}`, name: c.name, input: c.input }))];
  const body = JSON.stringify({ id: 'msg_01AgentToolMessage', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content, stop_reason: calls.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: 1200, output_tokens: 120 } });
  return { description: 'Anthropic Messages JSON answer with tool_use blocks', request: { method: 'POST', path: '/v1/messages' }, status: 200, headers: JSON_HEADERS, body };
}

export interface ChatCall {
  readonly name: string;
  readonly arguments: string;
}

export function chatToolStream(calls: readonly ChatCall[], seed = 11): Transcript {
  const base = { id: 'chatcmpl-AgentTools', object: 'chat.completion.chunk', created: 1760433170, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_agent' };
  const chunk = (delta: unknown, finish: string | null = null): string => sse(null, { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null });
  let body = '';
  calls.forEach((call, j) => {
    body += chunk({ ...(j === 0 ? { role: 'assistant', content: null } : {}), tool_calls: [{ index: j, id: `call_Agent${j}`, type: 'function', function: { name: call.name, arguments: '' } }] });
    for (const piece of pieces(call.arguments, seed + j)) body += chunk({ tool_calls: [{ index: j, function: { arguments: piece } }] });
  });
  body += chunk({}, 'tool_calls');
  body += sse(null, { ...base, choices: [], usage: { prompt_tokens: 900, completion_tokens: 60, total_tokens: 960 } });
  body += 'data: [DONE]\n\n';
  return { description: 'OpenAI chat stream with tool_calls deltas', request: { method: 'POST', path: '/v1/chat/completions' }, status: 200, headers: SSE_HEADERS, body };
}

export function chatToolMessage(calls: readonly ChatCall[]): Transcript {
  const body = JSON.stringify({
    id: 'chatcmpl-AgentToolsJson',
    object: 'chat.completion',
    created: 1760433170,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls.map((c, j) => ({ id: `call_Agent${j}`, type: 'function', function: { name: c.name, arguments: c.arguments } })), refusal: null }, logprobs: null, finish_reason: 'tool_calls' }],
    usage: { prompt_tokens: 900, completion_tokens: 60, total_tokens: 960 },
  });
  return { description: 'OpenAI chat JSON answer with tool_calls', request: { method: 'POST', path: '/v1/chat/completions' }, status: 200, headers: JSON_HEADERS, body };
}

export type ResponsesItem =
  | { readonly type: 'message'; readonly text: string }
  | { readonly type: 'function_call'; readonly name: string; readonly arguments: string }
  | { readonly type: 'custom_tool_call'; readonly name: string; readonly input: string };

function doneItem(item: ResponsesItem, k: number): Record<string, unknown> {
  if (item.type === 'message') return { id: `msg_agent${k}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', annotations: [], logprobs: [], text: item.text }] };
  if (item.type === 'function_call') return { id: `fc_agent${k}`, type: 'function_call', status: 'completed', arguments: item.arguments, call_id: `call_agent${k}`, name: item.name };
  return { id: `ctc_agent${k}`, type: 'custom_tool_call', status: 'completed', call_id: `call_agent${k}`, name: item.name, input: item.input };
}

function responseObject(status: string, output: unknown[]): Record<string, unknown> {
  return { id: 'resp_agent0123', object: 'response', created_at: 1796679011, status, model: 'gpt-6.2-sol', output, parallel_tool_calls: false, tool_choice: 'auto', tools: [], usage: status === 'completed' ? { input_tokens: 2000, output_tokens: 90, total_tokens: 2090 } : null };
}

export function responsesStream(items: readonly ResponsesItem[], seed = 13): Transcript {
  let seq = 0;
  let body = '';
  const ev = (type: string, data: Record<string, unknown>): void => {
    body += sse(type, { type, sequence_number: seq++, ...data });
  };
  ev('response.created', { response: responseObject('in_progress', []) });
  ev('response.in_progress', { response: responseObject('in_progress', []) });
  items.forEach((item, k) => {
    const done = doneItem(item, k);
    const id = done.id as string;
    if (item.type === 'message') {
      ev('response.output_item.added', { output_index: k, item: { id, type: 'message', status: 'in_progress', content: [], role: 'assistant' } });
      ev('response.content_part.added', { item_id: id, output_index: k, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } });
      for (const piece of pieces(item.text, seed + k)) ev('response.output_text.delta', { item_id: id, output_index: k, content_index: 0, delta: piece, logprobs: [] });
      ev('response.output_text.done', { item_id: id, output_index: k, content_index: 0, text: item.text, logprobs: [] });
      ev('response.content_part.done', { item_id: id, output_index: k, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: item.text } });
    } else if (item.type === 'function_call') {
      ev('response.output_item.added', { output_index: k, item: { ...done, status: 'in_progress', arguments: '' } });
      for (const piece of pieces(item.arguments, seed + k)) ev('response.function_call_arguments.delta', { item_id: id, output_index: k, delta: piece });
      ev('response.function_call_arguments.done', { item_id: id, output_index: k, arguments: item.arguments });
    } else {
      ev('response.output_item.added', { output_index: k, item: { ...done, status: 'in_progress', input: '' } });
      for (const piece of pieces(item.input, seed + k)) ev('response.custom_tool_call_input.delta', { item_id: id, output_index: k, delta: piece });
      ev('response.custom_tool_call_input.done', { item_id: id, output_index: k, input: item.input });
    }
    ev('response.output_item.done', { output_index: k, item: done });
  });
  ev('response.completed', { response: responseObject('completed', items.map(doneItem)) });
  return { description: 'OpenAI Responses stream with tool call items', request: { method: 'POST', path: '/v1/responses' }, status: 200, headers: SSE_HEADERS, body };
}

export function responsesMessage(items: readonly ResponsesItem[]): Transcript {
  return { description: 'OpenAI Responses JSON answer with tool call items', request: { method: 'POST', path: '/v1/responses' }, status: 200, headers: JSON_HEADERS, body: JSON.stringify(responseObject('completed', items.map(doneItem))) };
}
