/**
 * The built-in aigov dev model: a real HTTP server that speaks the OpenAI and Anthropic wire
 * formats (JSON and SSE) and answers deterministically, without any real LLM behind it.
 *
 * `aigov server --dev` points its upstreams here so the whole data path (auth, policy, masking,
 * recording, streaming) can be tried on a laptop with no provider key. Every answer says that it
 * comes from the aigov dev model. Authorization / x-api-key headers are ignored.
 *
 * Routes (P = the listening port):
 *   OpenAI     http://127.0.0.1:P/openai/v1   chat/completions, responses, embeddings, models, models/{id}
 *   Anthropic  http://127.0.0.1:P/anthropic   v1/messages, v1/models
 */
import { waitForDrain } from '../backpressure.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const DEV_MODEL_OPENAI = 'aigov-dev';
export const DEV_MODEL_ANTHROPIC = 'aigov-dev';

export interface DevModelServer {
  /** `http://127.0.0.1:P/openai/v1` — use as the OpenAI SDK's baseURL. */
  readonly openaiBaseUrl: string;
  /** `http://127.0.0.1:P/anthropic` — use as the Anthropic SDK's baseURL. */
  readonly anthropicBaseUrl: string;
  close(): Promise<void>;
}

export interface DevModelOptions {
  host?: string;
  port?: number;
  /** Pause between streamed SSE events, in milliseconds (default 0). */
  chunkDelayMs?: number;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const QUOTE_CHARS = 200;
const EMBEDDING_DIMENSIONS = 1536;
const ARGUMENT_PIECE_CHARS = 8;
const NOTICE = 'This answer comes from the built-in aigov dev model; no real LLM was called.';

export async function startDevModel(options: DevModelOptions = {}): Promise<DevModelServer> {
  const host = options.host ?? '127.0.0.1';
  const delayMs = options.chunkDelayMs ?? 0;
  const server = createServer((req, res) => {
    handle(req, res, delayMs).catch(() => {
      if (!res.headersSent) sendJson(res, 500, openaiError('Internal error in the aigov dev model.', 'server_error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    openaiBaseUrl: `${origin}/openai/v1`,
    anthropicBaseUrl: `${origin}/anthropic`,
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------------------------
// Routing

type Json = Record<string, unknown>;

async function handle(req: IncomingMessage, res: ServerResponse, delayMs: number): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://dev.invalid');
  const path = url.pathname.replace(/\/+$/, '');
  const method = req.method ?? 'GET';

  if (path === '/anthropic' || path.startsWith('/anthropic/')) {
    const sub = path.slice('/anthropic'.length);
    if (method === 'POST' && sub === '/v1/messages') {
      const body = await readJson(req, res, 'anthropic');
      if (body) await anthropicMessages(body, res, delayMs);
      return;
    }
    if (method === 'GET' && sub === '/v1/models') return sendJson(res, 200, anthropicModels(), anthropicHeaders());
    if (method === 'GET' && sub.startsWith('/v1/models/')) {
      return sendJson(res, 200, anthropicModel(decodeURIComponent(sub.slice('/v1/models/'.length))), anthropicHeaders());
    }
    await drainRequest(req);
    return sendJson(res, 404, anthropicError('not_found_error', 'Not Found'), anthropicHeaders());
  }

  if (path === '/openai' || path.startsWith('/openai/')) {
    const sub = path.slice('/openai'.length);
    if (method === 'POST' && sub === '/v1/chat/completions') {
      const body = await readJson(req, res, 'openai');
      if (body) await chatCompletions(body, res, delayMs);
      return;
    }
    if (method === 'POST' && sub === '/v1/responses') {
      const body = await readJson(req, res, 'openai');
      if (body) await responses(body, res, delayMs);
      return;
    }
    if (method === 'POST' && sub === '/v1/embeddings') {
      const body = await readJson(req, res, 'openai');
      if (body) embeddings(body, res);
      return;
    }
    if (method === 'GET' && sub === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: [openaiModel(DEV_MODEL_OPENAI)] }, openaiHeaders());
    }
    if (method === 'GET' && sub.startsWith('/v1/models/')) {
      return sendJson(res, 200, openaiModel(decodeURIComponent(sub.slice('/v1/models/'.length))), openaiHeaders());
    }
    await drainRequest(req);
    return sendJson(res, 404, openaiError(`Invalid URL (${method} ${sub || '/'})`, 'invalid_request_error'), openaiHeaders());
  }

  await drainRequest(req);
  sendJson(res, 404, openaiError(`Invalid URL (${method} ${url.pathname})`, 'invalid_request_error'), openaiHeaders());
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

async function drainRequest(req: IncomingMessage): Promise<void> {
  for await (const _chunk of req as AsyncIterable<Buffer>) void _chunk;
}

/** Reads a JSON object body; on failure answers 400/413 in the provider's shape and returns null. */
async function readJson(req: IncomingMessage, res: ServerResponse, provider: 'openai' | 'anthropic'): Promise<Json | null> {
  const raw = await readBody(req);
  const fail = (status: number, message: string): null => {
    if (provider === 'openai') sendJson(res, status, openaiError(message, 'invalid_request_error'), openaiHeaders());
    else sendJson(res, status, anthropicError(status === 413 ? 'request_too_large' : 'invalid_request_error', message), anthropicHeaders());
    return null;
  };
  if (raw === null) return fail(413, 'Request body too large for the aigov dev model.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return fail(
      400,
      provider === 'openai'
        ? "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        : 'There was an issue with your request body: the body is not valid JSON.',
    );
  }
  if (!isObject(parsed)) return fail(400, 'The request body must be a JSON object.');
  return parsed;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function openaiHeaders(): Record<string, string> {
  return { 'x-request-id': `req_${hex(16)}`, 'openai-processing-ms': '1', 'openai-version': '2020-10-01', 'x-aigov-dev-model': '1' };
}

function anthropicHeaders(): Record<string, string> {
  return { 'request-id': `req_${base62(24)}`, 'x-aigov-dev-model': '1' };
}

/** Writes SSE text events one at a time, honouring backpressure and the configured delay. */
class SseWriter {
  readonly #res: ServerResponse;
  readonly #delayMs: number;
  #first = true;

  constructor(res: ServerResponse, delayMs: number, headers: Record<string, string>) {
    this.#res = res;
    this.#delayMs = delayMs;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
  }

  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  async write(text: string): Promise<void> {
    if (this.closed) return;
    if (!this.#first && this.#delayMs > 0) await sleep(this.#delayMs);
    this.#first = false;
    if (this.closed) return;
    if (!this.#res.write(text)) await waitForDrain(this.#res);
  }

  /** `data: {json}` (OpenAI chat style, no event name). */
  data(payload: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  /** `event: name` + `data: {json}`. */
  event(name: string, payload: unknown): Promise<void> {
    return this.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
  }

  end(): void {
    if (!this.closed) this.#res.end();
  }
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Error shapes

function openaiError(message: string, type: string, param: string | null = null, code: string | null = null): Json {
  return { error: { message, type, param, code } };
}

function anthropicError(type: string, message: string): Json {
  return { type: 'error', error: { type, message } };
}

// ---------------------------------------------------------------------------------------------
// Deterministic answers

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text of an OpenAI / Anthropic / Responses content value (string or array of parts). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    else if (isObject(part)) {
      if (typeof part.text === 'string') texts.push(part.text);
      else if (part.type === 'tool_result') texts.push(contentText(part.content));
    }
  }
  return texts.join('\n');
}

function quote(text: string): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  const chars = Array.from(clean);
  return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join('')}…` : clean;
}

function echoAnswer(userText: string): string {
  return `[aigov dev model] You said: "${quote(userText)}". ${NOTICE}`;
}

function toolResultAnswer(resultText: string): string {
  return `[aigov dev model] The tool returned: "${quote(resultText)}". ${NOTICE}`;
}

/** Approximate tokens as words (at least 1). */
function countTokens(text: string): number {
  const words = text.split(/\s+/).filter((w) => w.length > 0).length;
  return Math.max(1, words);
}

/** Splits an answer into word-sized deltas that concatenate back to it exactly. */
function wordDeltas(text: string): string[] {
  const pieces: string[] = Array.from(text.match(/\s*\S+/g) ?? []);
  const joined = pieces.join('');
  if (joined.length < text.length) pieces.push(text.slice(joined.length));
  return pieces.length > 0 ? pieces : [text];
}

function stringPieces(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

/**
 * Builds arguments for a tool from its JSON schema: required properties (all when none are
 * required), the first string gets the user's text, other strings a sample value, numbers 1 (or
 * the minimum), booleans true, arrays one item, enums / consts their first value.
 */
export function argumentsFromSchema(schema: unknown, userText: string): unknown {
  const state = { userTextUsed: false };
  return sampleValue(schema, 'value', userText, state, 0);
}

function sampleValue(schema: unknown, name: string, userText: string, state: { userTextUsed: boolean }, depth: number): unknown {
  if (!isObject(schema) || depth > 8) return {};
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options: unknown = schema[key];
    if (Array.isArray(options) && options.length > 0) {
      const list = options as unknown[];
      const nonNull = list.find((o) => !(isObject(o) && o.type === 'null')) ?? list[0];
      return sampleValue(nonNull, name, userText, state, depth + 1);
    }
  }
  let type: unknown = schema.type;
  if (Array.isArray(type)) {
    const types = type as unknown[];
    type = types.find((t) => t !== 'null') ?? types[0];
  }
  if (type === undefined && isObject(schema.properties)) type = 'object';
  switch (type) {
    case 'string': {
      if (schema.format === 'date') return '2025-01-01';
      if (schema.format === 'date-time') return '2025-01-01T00:00:00Z';
      if (!state.userTextUsed && userText.trim() !== '') {
        state.userTextUsed = true;
        return quote(userText);
      }
      return `sample ${name}`;
    }
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' && schema.minimum > 1 ? Math.ceil(schema.minimum) : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return [sampleValue(schema.items, name, userText, state, depth + 1)];
    case 'object': {
      const out: Json = {};
      const props = isObject(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required)
        ? schema.required.filter((r): r is string => typeof r === 'string')
        : Object.keys(props);
      for (const key of required) out[key] = sampleValue(props[key], key, userText, state, depth + 1);
      return out;
    }
    default:
      return `sample ${name}`;
  }
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function base62(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function modelOf(body: Json, fallback: string): string {
  return typeof body.model === 'string' && body.model !== '' ? body.model : fallback;
}

interface ToolCallPlan {
  name: string;
  arguments: string;
}

type Plan = { kind: 'text'; text: string } | { kind: 'tool'; call: ToolCallPlan };

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions

function chatPlan(body: Json): Plan {
  const messages = body.messages as unknown[];
  const last = messages[messages.length - 1];
  const lastRole = isObject(last) ? last.role : undefined;
  const lastText = isObject(last) ? contentText(last.content) : '';
  if (lastRole === 'tool' || lastRole === 'function') return { kind: 'text', text: toolResultAnswer(lastText) };
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const first = tools[0];
  const fn = first && isObject(first.function) ? first.function : undefined;
  if (lastRole === 'user' && fn && typeof fn.name === 'string' && body.tool_choice !== 'none') {
    return { kind: 'tool', call: { name: fn.name, arguments: JSON.stringify(argumentsFromSchema(fn.parameters ?? { type: 'object' }, lastText)) } };
  }
  return { kind: 'text', text: echoAnswer(lastRole === 'user' ? lastText : lastUserText(messages)) };
}

function lastUserText(messages: unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (isObject(m) && m.role === 'user') return contentText(m.content);
  }
  return '';
}

function promptTokens(messages: unknown[], extra: unknown = undefined): number {
  let total = 0;
  for (const m of messages) if (isObject(m)) total += countTokens(contentText(m.content)) + 3;
  if (typeof extra === 'string') total += countTokens(extra);
  return Math.max(1, total);
}

async function chatCompletions(body: Json, res: ServerResponse, delayMs: number): Promise<void> {
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error', null, null), openaiHeaders());
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return sendJson(
      res,
      400,
      openaiError("Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter'),
      openaiHeaders(),
    );
  }
  const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n >= 1 && body.n <= 8 ? body.n : 1;
  const plan = chatPlan(body);
  const model = modelOf(body, DEV_MODEL_OPENAI);
  const id = `chatcmpl-${base62(29)}`;
  const created = nowSeconds();
  const fingerprint = 'fp_aigovdev';
  const prompt = promptTokens(body.messages as unknown[]);
  const completionEach = plan.kind === 'text' ? countTokens(plan.text) : countTokens(plan.call.arguments) + 5;
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completionEach * n,
    total_tokens: prompt + completionEach * n,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const callIds = Array.from({ length: n }, () => `call_${base62(24)}`);

  if (body.stream !== true) {
    const choices = callIds.map((callId, index) => ({
      index,
      message:
        plan.kind === 'text'
          ? { role: 'assistant', content: plan.text, refusal: null, annotations: [] }
          : {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: callId, type: 'function', function: { name: plan.call.name, arguments: plan.call.arguments } }],
              refusal: null,
              annotations: [],
            },
      logprobs: null,
      finish_reason: plan.kind === 'text' ? 'stop' : 'tool_calls',
    }));
    return sendJson(
      res,
      200,
      { id, object: 'chat.completion', created, model, choices, usage, service_tier: 'default', system_fingerprint: fingerprint },
      openaiHeaders(),
    );
  }

  const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
  const sse = new SseWriter(res, delayMs, openaiHeaders());
  const chunk = (choices: unknown[], extra: Json = {}): Json => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    service_tier: 'default',
    system_fingerprint: fingerprint,
    choices,
    ...(includeUsage ? { usage: null } : {}),
    ...extra,
  });
  const choice = (index: number, delta: Json, finish: string | null = null): Json => ({ index, delta, logprobs: null, finish_reason: finish });

  for (let index = 0; index < n; index++) {
    if (plan.kind === 'text') {
      await sse.data(chunk([choice(index, { role: 'assistant', content: '', refusal: null })]));
      for (const piece of wordDeltas(plan.text)) await sse.data(chunk([choice(index, { content: piece })]));
    } else {
      await sse.data(
        chunk([
          choice(index, {
            role: 'assistant',
            content: null,
            tool_calls: [{ index: 0, id: callIds[index], type: 'function', function: { name: plan.call.name, arguments: '' } }],
            refusal: null,
          }),
        ]),
      );
      for (const piece of stringPieces(plan.call.arguments, ARGUMENT_PIECE_CHARS)) {
        await sse.data(chunk([choice(index, { tool_calls: [{ index: 0, function: { arguments: piece } }] })]));
      }
    }
    await sse.data(chunk([choice(index, {}, plan.kind === 'text' ? 'stop' : 'tool_calls')]));
  }
  if (includeUsage) await sse.data(chunk([], { usage }));
  await sse.write('data: [DONE]\n\n');
  sse.end();
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses API

interface ResponsesInput {
  plan: Plan;
  inputTokens: number;
}

function responsesPlan(body: Json): ResponsesInput {
  const input = body.input;
  const instructions = typeof body.instructions === 'string' ? body.instructions : '';
  if (typeof input === 'string') {
    return { plan: responsesToolOrText(body, input), inputTokens: countTokens(input) + countTokens(instructions) };
  }
  const items: unknown[] = Array.isArray(input) ? (input as unknown[]) : [];
  let tokens = countTokens(instructions);
  for (const item of items) {
    if (!isObject(item)) continue;
    tokens += countTokens(contentText(item.content) || (typeof item.output === 'string' ? item.output : '')) + 3;
  }
  const last = items[items.length - 1];
  if (isObject(last) && last.type === 'function_call_output') {
    const output = typeof last.output === 'string' ? last.output : contentText(last.output);
    return { plan: { kind: 'text', text: toolResultAnswer(output) }, inputTokens: tokens };
  }
  if (isObject(last) && last.role === 'user') {
    return { plan: responsesToolOrText(body, contentText(last.content)), inputTokens: tokens };
  }
  let userText = '';
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (isObject(item) && item.role === 'user') {
      userText = contentText(item.content);
      break;
    }
  }
  return { plan: { kind: 'text', text: echoAnswer(userText) }, inputTokens: tokens };
}

function responsesToolOrText(body: Json, userText: string): Plan {
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const fn = tools.find((t) => t.type === 'function' && typeof t.name === 'string');
  if (fn && body.tool_choice !== 'none') {
    return { kind: 'tool', call: { name: fn.name as string, arguments: JSON.stringify(argumentsFromSchema(fn.parameters ?? { type: 'object' }, userText)) } };
  }
  return { kind: 'text', text: echoAnswer(userText) };
}

async function responses(body: Json, res: ServerResponse, delayMs: number): Promise<void> {
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, openaiError("Missing required parameter: 'model'.", 'invalid_request_error', 'model', 'missing_required_parameter'), openaiHeaders());
  }
  if (typeof body.input !== 'string' && !Array.isArray(body.input)) {
    return sendJson(res, 400, openaiError("Missing required parameter: 'input'.", 'invalid_request_error', 'input', 'missing_required_parameter'), openaiHeaders());
  }
  const { plan, inputTokens } = responsesPlan(body);
  const model = modelOf(body, DEV_MODEL_OPENAI);
  const outputTokens = plan.kind === 'text' ? countTokens(plan.text) : countTokens(plan.call.arguments) + 5;
  const usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
  const responseId = `resp_${hex(24)}`;
  const itemId = plan.kind === 'text' ? `msg_${hex(24)}` : `fc_${hex(24)}`;
  const callId = `call_${base62(24)}`;
  const base = (status: string, output: unknown[], withUsage: boolean): Json => ({
    id: responseId,
    object: 'response',
    created_at: nowSeconds(),
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: body.store !== false,
    temperature: 1.0,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: 1.0,
    truncation: 'disabled',
    usage: withUsage ? usage : null,
    user: null,
    metadata: isObject(body.metadata) ? body.metadata : {},
  });
  const textPart = (text: string): Json => ({ type: 'output_text', annotations: [], logprobs: [], text });
  const finalItem: Json =
    plan.kind === 'text'
      ? { id: itemId, type: 'message', status: 'completed', content: [textPart(plan.text)], role: 'assistant' }
      : { id: itemId, type: 'function_call', status: 'completed', arguments: plan.call.arguments, call_id: callId, name: plan.call.name };

  if (body.stream !== true) return sendJson(res, 200, base('completed', [finalItem], true), openaiHeaders());

  const sse = new SseWriter(res, delayMs, openaiHeaders());
  let seq = 0;
  const emit = (type: string, fields: Json): Promise<void> => sse.event(type, { type, sequence_number: seq++, ...fields });
  const inProgress = base('in_progress', [], false);
  await emit('response.created', { response: inProgress });
  await emit('response.in_progress', { response: inProgress });
  if (plan.kind === 'text') {
    await emit('response.output_item.added', {
      output_index: 0,
      item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
    });
    const at = { item_id: itemId, output_index: 0, content_index: 0 };
    await emit('response.content_part.added', { ...at, part: textPart('') });
    for (const delta of wordDeltas(plan.text)) await emit('response.output_text.delta', { ...at, delta, logprobs: [] });
    await emit('response.output_text.done', { ...at, text: plan.text, logprobs: [] });
    await emit('response.content_part.done', { ...at, part: textPart(plan.text) });
  } else {
    await emit('response.output_item.added', {
      output_index: 0,
      item: { id: itemId, type: 'function_call', status: 'in_progress', arguments: '', call_id: callId, name: plan.call.name },
    });
    for (const delta of stringPieces(plan.call.arguments, ARGUMENT_PIECE_CHARS)) {
      await emit('response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta });
    }
    await emit('response.function_call_arguments.done', { item_id: itemId, output_index: 0, arguments: plan.call.arguments });
  }
  await emit('response.output_item.done', { output_index: 0, item: finalItem });
  await emit('response.completed', { response: base('completed', [finalItem], true) });
  sse.end();
}

// ---------------------------------------------------------------------------------------------
// OpenAI embeddings and models

/** A deterministic unit vector derived from SHA-256 of the text, rounded to float32. */
export function devEmbedding(text: string, dimensions: number): number[] {
  const values: number[] = [];
  let counter = 0;
  while (values.length < dimensions) {
    const block = createHash('sha256').update(`${counter++}\u0000${text}`).digest();
    for (let i = 0; i + 4 <= block.length && values.length < dimensions; i += 4) {
      values.push(block.readUInt32LE(i) / 0xffffffff - 0.5);
    }
  }
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0)) || 1;
  return values.map((v) => Math.fround(v / norm));
}

function embeddings(body: Json, res: ServerResponse): void {
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error'), openaiHeaders());
  }
  const input = body.input;
  let inputs: string[];
  if (typeof input === 'string') inputs = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((i) => typeof i === 'number')) inputs = [input.join(',')];
  else if (Array.isArray(input) && input.length > 0) inputs = input.map((i) => (typeof i === 'string' ? i : JSON.stringify(i)));
  else {
    return sendJson(res, 400, openaiError("'input' is a required property", 'invalid_request_error', 'input', null), openaiHeaders());
  }
  const format: unknown = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    return sendJson(
      res,
      400,
      openaiError(`'${typeof format === 'string' ? format : JSON.stringify(format)}' is not one of ['float', 'base64'] - 'encoding_format'`, 'invalid_request_error', 'encoding_format', null),
      openaiHeaders(),
    );
  }
  const dimensions = typeof body.dimensions === 'number' && Number.isInteger(body.dimensions) && body.dimensions > 0 && body.dimensions <= 4096
    ? body.dimensions
    : EMBEDDING_DIMENSIONS;
  let tokens = 0;
  const data = inputs.map((text, index) => {
    tokens += countTokens(text);
    const vector = devEmbedding(text, dimensions);
    const embedding = format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
    return { object: 'embedding', index, embedding };
  });
  sendJson(
    res,
    200,
    { object: 'list', data, model: modelOf(body, DEV_MODEL_OPENAI), usage: { prompt_tokens: tokens, total_tokens: tokens } },
    openaiHeaders(),
  );
}

function openaiModel(id: string): Json {
  return { id, object: 'model', created: 1735689600, owned_by: 'aigov' };
}

// ---------------------------------------------------------------------------------------------
// Anthropic

function anthropicModel(id: string): Json {
  return { type: 'model', id, display_name: id === DEV_MODEL_ANTHROPIC ? 'aigov dev model' : id, created_at: '2025-01-01T00:00:00Z' };
}

function anthropicModels(): Json {
  return { data: [anthropicModel(DEV_MODEL_ANTHROPIC)], has_more: false, first_id: DEV_MODEL_ANTHROPIC, last_id: DEV_MODEL_ANTHROPIC };
}

function anthropicPlan(body: Json): Plan {
  const messages = body.messages as unknown[];
  const last = messages[messages.length - 1];
  if (!isObject(last) || last.role !== 'user') return { kind: 'text', text: echoAnswer(lastUserText(messages)) };
  const content = last.content;
  const toolResults = Array.isArray(content) ? content.filter((b) => isObject(b) && b.type === 'tool_result') : [];
  if (toolResults.length > 0) return { kind: 'text', text: toolResultAnswer(contentText(toolResults)) };
  const userText = contentText(content);
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const tool = tools.find((t) => typeof t.name === 'string' && (t.type === undefined || t.type === 'custom'));
  const choice = isObject(body.tool_choice) ? body.tool_choice.type : undefined;
  if (tool && choice !== 'none') {
    return { kind: 'tool', call: { name: tool.name as string, arguments: JSON.stringify(argumentsFromSchema(tool.input_schema ?? { type: 'object' }, userText)) } };
  }
  return { kind: 'text', text: echoAnswer(userText) };
}

async function anthropicMessages(body: Json, res: ServerResponse, delayMs: number): Promise<void> {
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, anthropicError('invalid_request_error', 'model: Field required'), anthropicHeaders());
  }
  if (!Array.isArray(body.messages)) {
    return sendJson(res, 400, anthropicError('invalid_request_error', 'messages: Field required'), anthropicHeaders());
  }
  if (body.messages.length === 0) {
    return sendJson(res, 400, anthropicError('invalid_request_error', 'messages: at least one message is required'), anthropicHeaders());
  }
  const plan = anthropicPlan(body);
  const model = modelOf(body, DEV_MODEL_ANTHROPIC);
  const id = `msg_${base62(24)}`;
  const toolId = `toolu_${base62(24)}`;
  const inputTokens = promptTokens(body.messages as unknown[], typeof body.system === 'string' ? body.system : contentText(body.system));
  const preamble = plan.kind === 'tool' ? `[aigov dev model] Calling the tool ${plan.call.name}.` : '';
  const outputTokens = plan.kind === 'text' ? countTokens(plan.text) : countTokens(preamble) + countTokens(plan.call.arguments) + 5;
  const stopReason = plan.kind === 'text' ? 'end_turn' : 'tool_use';
  const usage = (output: number): Json => ({
    input_tokens: inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: output,
    service_tier: 'standard',
  });
  const message = (content: unknown[], stop: string | null, output: number): Json => ({
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: usage(output),
  });

  if (body.stream !== true) {
    const content =
      plan.kind === 'text'
        ? [{ type: 'text', text: plan.text }]
        : [
            { type: 'text', text: preamble },
            { type: 'tool_use', id: toolId, name: plan.call.name, input: JSON.parse(plan.call.arguments) as unknown },
          ];
    return sendJson(res, 200, message(content, stopReason, outputTokens), anthropicHeaders());
  }

  const sse = new SseWriter(res, delayMs, anthropicHeaders());
  await sse.event('message_start', { type: 'message_start', message: message([], null, 1) });
  const textBlock = async (index: number, text: string, ping: boolean): Promise<void> => {
    await sse.event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    if (ping) await sse.write('event: ping\ndata: {"type": "ping"}\n\n');
    for (const piece of wordDeltas(text)) {
      await sse.event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    }
    await sse.event('content_block_stop', { type: 'content_block_stop', index });
  };
  if (plan.kind === 'text') {
    await textBlock(0, plan.text, true);
  } else {
    await textBlock(0, preamble, true);
    await sse.event('content_block_start', {
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: toolId, name: plan.call.name, input: {} },
    });
    await sse.event('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of stringPieces(plan.call.arguments, ARGUMENT_PIECE_CHARS)) {
      await sse.event('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: piece } });
    }
    await sse.event('content_block_stop', { type: 'content_block_stop', index: 1 });
  }
  await sse.event('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: outputTokens },
  });
  await sse.event('message_stop', { type: 'message_stop' });
  sse.end();
}
