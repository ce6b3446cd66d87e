/**
 * The built-in aigov dev model: a real HTTP server that speaks the OpenAI and Anthropic wire
 * formats (JSON and SSE) and answers deterministically, without any real LLM behind it.
 *
 * `aigov server --dev` points its upstreams here so the whole data path (auth, policy, masking,
 * recording, streaming) can be tried on a laptop with no provider key. Every answer names the
 * model `aigov-dev` and says that it comes from the aigov dev model. Authorization / x-api-key
 * headers are ignored.
 *
 * It is safe to drive with a coding agent (Claude Code, Codex): it never invents a tool call from
 * what the user wrote. It calls a declared tool only when the latest user turn is a scripted
 * directive — "run `COMMAND` with TOOL" or "call TOOL with {JSON}" — and ends every tool loop
 * after one round, answering tool results with text. The grammar is in dev-model-script.ts and
 * docs/dev-model.md.
 *
 * Routes (P = the listening port; Anthropic paths also without /v1, as @ai-sdk/anthropic sends them):
 *   OpenAI     http://127.0.0.1:P/openai/v1   chat/completions, responses, embeddings, models, models/{id}
 *   Anthropic  http://127.0.0.1:P/anthropic   v1/messages, v1/messages/count_tokens, v1/models, v1/models/{id}
 */
import { waitForDrain } from '../backpressure.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEV_MODEL_NOTICE, planAnswer, type DeclaredTool, type DevPlan, type LatestTurn } from './dev-model-script.ts';

/** The dev model's id: every answer carries it, whatever model the request named. */
export const DEV_MODEL_ID = 'aigov-dev';
export const DEV_MODEL_OPENAI = DEV_MODEL_ID;
export const DEV_MODEL_ANTHROPIC = DEV_MODEL_ID;

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
const EMBEDDING_DIMENSIONS = 1536;
const ARGUMENT_PIECE_CHARS = 8;

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
    const rest = path.slice('/anthropic'.length);
    const sub = rest === '/v1' || rest.startsWith('/v1/') ? rest : `/v1${rest}`;
    if (method === 'POST' && sub === '/v1/messages') {
      const body = await readJson(req, res, 'anthropic');
      if (body) await anthropicMessages(body, res, delayMs);
      return;
    }
    if (method === 'POST' && sub === '/v1/messages/count_tokens') {
      const body = await readJson(req, res, 'anthropic');
      if (body) anthropicCountTokens(body, res);
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
// Reading requests

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objects(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Text parts of an OpenAI / Anthropic / Responses content value (a string is one part). */
function textParts(content: unknown): string[] {
  if (typeof content === 'string') return [content];
  const parts: string[] = [];
  for (const part of Array.isArray(content) ? (content as unknown[]) : []) {
    if (typeof part === 'string') parts.push(part);
    else if (isObject(part) && part.type !== 'tool_result' && typeof part.text === 'string') parts.push(part.text);
  }
  return parts;
}

/** All the text of a content value, tool results' included. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  const texts: string[] = [];
  for (const part of Array.isArray(content) ? (content as unknown[]) : []) {
    if (typeof part === 'string') texts.push(part);
    else if (isObject(part)) {
      if (typeof part.text === 'string') texts.push(part.text);
      else if (part.type === 'tool_result') texts.push(contentText(part.content));
    }
  }
  return texts.join('\n');
}

/** The last text part of the last message of `role` (to quote when the latest turn is not one). */
function lastUserText(items: unknown[], isUser: (item: Json) => boolean): string {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (isObject(item) && isUser(item)) return textParts(item.content).filter((t) => t.trim() !== '').at(-1) ?? '';
  }
  return '';
}

/** System and developer turns sit between the user's turn and the answer without being one. */
function isInstruction(item: Json): boolean {
  return item.role === 'system' || item.role === 'developer';
}

// ---------------------------------------------------------------------------------------------
// Deterministic answers

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
  return out.length > 0 ? out : [''];
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

function outputTokens(plan: DevPlan): number {
  return plan.kind === 'text' ? countTokens(plan.text) : countTokens(plan.input) + 5;
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions

function chatTools(body: Json): DeclaredTool[] {
  const tools: DeclaredTool[] = [];
  for (const tool of objects(body.tools)) {
    const spec = tool.type === 'custom' ? tool.custom : tool.function;
    if (!isObject(spec) || typeof spec.name !== 'string' || spec.name === '') continue;
    tools.push({ name: spec.name, namespace: null, kind: tool.type === 'custom' ? 'custom' : 'function', parameters: spec.parameters, description: str(spec.description) });
  }
  return tools;
}

function chatTurn(messages: unknown[]): LatestTurn {
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (!isObject(m) || (results.length === 0 && isInstruction(m))) continue;
    if (m.role === 'tool' || m.role === 'function') {
      results.unshift(contentText(m.content));
      continue;
    }
    if (results.length > 0) break;
    if (m.role === 'user') return { kind: 'user', texts: textParts(m.content) };
    break;
  }
  if (results.length > 0) return { kind: 'tool_results', text: results.join('\n') };
  return { kind: 'other', userText: lastUserText(messages, (m) => m.role === 'user') };
}

function chatPlan(body: Json): DevPlan {
  const plan = planAnswer(chatTurn(body.messages as unknown[]), chatTools(body), { toolsOff: body.tool_choice === 'none' });
  if (plan.kind === 'tool' && plan.tool.kind === 'custom') {
    return { kind: 'text', text: `[aigov dev model] ${plan.tool.name} is a custom tool; the dev model calls custom tools over the Responses API only, so none was called. ${DEV_MODEL_NOTICE}` };
  }
  return plan;
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
  const model = DEV_MODEL_ID;
  const id = `chatcmpl-${base62(29)}`;
  const created = nowSeconds();
  const fingerprint = 'fp_aigovdev';
  const prompt = promptTokens(body.messages as unknown[]);
  const completionEach = outputTokens(plan);
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
              tool_calls: [{ id: callId, type: 'function', function: { name: plan.tool.name, arguments: plan.input } }],
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
            tool_calls: [{ index: 0, id: callIds[index], type: 'function', function: { name: plan.tool.name, arguments: '' } }],
            refusal: null,
          }),
        ]),
      );
      for (const piece of stringPieces(plan.input, ARGUMENT_PIECE_CHARS)) {
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

/**
 * Function and custom tools of `tools` and of Codex's `additional_tools` input items, namespaces
 * flattened. The default namespace `functions` is the top level (calls carry no namespace).
 */
function responsesTools(body: Json): DeclaredTool[] {
  const tools: DeclaredTool[] = [];
  const add = (list: unknown, namespace: string | null, depth: number): void => {
    for (const tool of objects(list)) {
      if (tool.type === 'namespace' && depth === 0) {
        const ns = str(tool.name);
        add(tool.tools, ns === '' || ns === 'functions' ? null : ns, 1);
      } else if ((tool.type === 'function' || tool.type === 'custom') && typeof tool.name === 'string' && tool.name !== '') {
        tools.push({ name: tool.name, namespace, kind: tool.type, parameters: tool.parameters, description: str(tool.description) });
      }
    }
  };
  add(body.tools, null, 0);
  for (const item of objects(body.input)) if (item.type === 'additional_tools') add(item.tools, null, 0);
  return tools;
}

const TOOL_OUTPUTS = new Set(['function_call_output', 'custom_tool_call_output']);

function responsesTurn(input: unknown): LatestTurn {
  if (typeof input === 'string') return { kind: 'user', texts: [input] };
  const items = Array.isArray(input) ? (input as unknown[]) : [];
  const results: string[] = [];
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (!isObject(item) || (results.length === 0 && (isInstruction(item) || item.type === 'additional_tools'))) continue;
    if (typeof item.type === 'string' && TOOL_OUTPUTS.has(item.type)) {
      results.unshift(typeof item.output === 'string' ? item.output : contentText(item.output));
      continue;
    }
    if (results.length > 0) break;
    if (item.role === 'user') return { kind: 'user', texts: textParts(item.content) };
    break;
  }
  if (results.length > 0) return { kind: 'tool_results', text: results.join('\n') };
  return { kind: 'other', userText: lastUserText(items, (item) => item.role === 'user') };
}

function responsesInputTokens(body: Json): number {
  const instructions = typeof body.instructions === 'string' ? body.instructions : '';
  if (typeof body.input === 'string') return countTokens(body.input) + countTokens(instructions);
  let tokens = countTokens(instructions);
  for (const item of objects(body.input)) {
    tokens += countTokens(contentText(item.content) || (typeof item.output === 'string' ? item.output : '')) + 3;
  }
  return tokens;
}

async function responses(body: Json, res: ServerResponse, delayMs: number): Promise<void> {
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, openaiError("Missing required parameter: 'model'.", 'invalid_request_error', 'model', 'missing_required_parameter'), openaiHeaders());
  }
  if (typeof body.input !== 'string' && !Array.isArray(body.input)) {
    return sendJson(res, 400, openaiError("Missing required parameter: 'input'.", 'invalid_request_error', 'input', 'missing_required_parameter'), openaiHeaders());
  }
  const plan = planAnswer(responsesTurn(body.input), responsesTools(body), { toolsOff: body.tool_choice === 'none' });
  const inputTokens = responsesInputTokens(body);
  const outputCount = outputTokens(plan);
  const usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputCount,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputCount,
  };
  const responseId = `resp_${hex(24)}`;
  const itemId = plan.kind === 'text' ? `msg_${hex(24)}` : plan.tool.kind === 'custom' ? `ctc_${hex(24)}` : `fc_${hex(24)}`;
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
    model: DEV_MODEL_ID,
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
  /** The tool call item, in progress (empty arguments / input) or completed. */
  const callItem = (done: boolean): Json => {
    if (plan.kind !== 'tool') throw new Error('not a tool plan');
    const namespace = plan.tool.namespace === null ? {} : { namespace: plan.tool.namespace };
    const status = done ? 'completed' : 'in_progress';
    return plan.tool.kind === 'custom'
      ? { id: itemId, type: 'custom_tool_call', status, call_id: callId, name: plan.tool.name, ...namespace, input: done ? plan.input : '' }
      : { id: itemId, type: 'function_call', status, arguments: done ? plan.input : '', call_id: callId, name: plan.tool.name, ...namespace };
  };
  const finalItem: Json =
    plan.kind === 'text' ? { id: itemId, type: 'message', status: 'completed', content: [textPart(plan.text)], role: 'assistant' } : callItem(true);

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
    await emit('response.output_item.added', { output_index: 0, item: callItem(false) });
    const at = { item_id: itemId, output_index: 0 };
    if (plan.tool.kind === 'custom') {
      for (const delta of stringPieces(plan.input, ARGUMENT_PIECE_CHARS)) await emit('response.custom_tool_call_input.delta', { ...at, delta });
      await emit('response.custom_tool_call_input.done', { ...at, input: plan.input });
    } else {
      for (const delta of stringPieces(plan.input, ARGUMENT_PIECE_CHARS)) await emit('response.function_call_arguments.delta', { ...at, delta });
      await emit('response.function_call_arguments.done', { ...at, arguments: plan.input });
    }
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
    { object: 'list', data, model: DEV_MODEL_ID, usage: { prompt_tokens: tokens, total_tokens: tokens } },
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

/** Client tools (no `type`, or `custom`); server tools (web_search_…) are the provider's to run. */
function anthropicTools(body: Json): DeclaredTool[] {
  return objects(body.tools)
    .filter((t) => typeof t.name === 'string' && t.name !== '' && (t.type === undefined || t.type === 'custom'))
    .map((t) => ({ name: t.name as string, namespace: null, kind: 'function' as const, parameters: t.input_schema, description: str(t.description) }));
}

function anthropicTurn(messages: unknown[]): LatestTurn {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    // Claude Code sends `system` turns after the user's message.
    if (!isObject(m) || isInstruction(m)) continue;
    if (m.role !== 'user') break;
    const results = Array.isArray(m.content) ? m.content.filter((b) => isObject(b) && b.type === 'tool_result') : [];
    if (results.length > 0) return { kind: 'tool_results', text: contentText(results) };
    return { kind: 'user', texts: textParts(m.content) };
  }
  return { kind: 'other', userText: lastUserText(messages, (m) => m.role === 'user') };
}

/**
 * A deterministic estimate of a request's input tokens (UTF-8 bytes of its system, messages and
 * tools, over 4): what count_tokens answers and what an answer's usage reports for the same body.
 */
function anthropicInputTokens(body: Json): number {
  const counted = JSON.stringify([body.system ?? null, body.messages ?? null, body.tools ?? null]);
  return Math.max(1, Math.ceil(Buffer.byteLength(counted) / 4));
}

/** The 400 Anthropic answers for a body without `model` or `messages`, or null. */
function anthropicBodyError(body: Json, needMessages: 'nonempty' | 'array'): Json | null {
  if (typeof body.model !== 'string' || body.model === '') return anthropicError('invalid_request_error', 'model: Field required');
  if (!Array.isArray(body.messages)) return anthropicError('invalid_request_error', 'messages: Field required');
  if (needMessages === 'nonempty' && body.messages.length === 0) return anthropicError('invalid_request_error', 'messages: at least one message is required');
  return null;
}

function anthropicCountTokens(body: Json, res: ServerResponse): void {
  const error = anthropicBodyError(body, 'array');
  if (error) return sendJson(res, 400, error, anthropicHeaders());
  sendJson(res, 200, { input_tokens: anthropicInputTokens(body) }, anthropicHeaders());
}

async function anthropicMessages(body: Json, res: ServerResponse, delayMs: number): Promise<void> {
  const error = anthropicBodyError(body, 'nonempty');
  if (error) return sendJson(res, 400, error, anthropicHeaders());
  const choice = isObject(body.tool_choice) ? body.tool_choice.type : undefined;
  const plan = planAnswer(anthropicTurn(body.messages as unknown[]), anthropicTools(body), { toolsOff: choice === 'none' });
  const model = DEV_MODEL_ID;
  const id = `msg_${base62(24)}`;
  const toolId = `toolu_${base62(24)}`;
  const inputTokens = anthropicInputTokens(body);
  const preamble = plan.kind === 'tool' ? `[aigov dev model] Calling the tool ${plan.tool.name}, as your message asked.` : '';
  const outputCount = plan.kind === 'text' ? countTokens(plan.text) : countTokens(preamble) + outputTokens(plan);
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
            { type: 'tool_use', id: toolId, name: plan.tool.name, input: JSON.parse(plan.input) as unknown },
          ];
    return sendJson(res, 200, message(content, stopReason, outputCount), anthropicHeaders());
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
      content_block: { type: 'tool_use', id: toolId, name: plan.tool.name, input: {} },
    });
    await sse.event('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of stringPieces(plan.input, ARGUMENT_PIECE_CHARS)) {
      await sse.event('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: piece } });
    }
    await sse.event('content_block_stop', { type: 'content_block_stop', index: 1 });
  }
  await sse.event('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: outputCount },
  });
  await sse.event('message_stop', { type: 'message_stop' });
  sse.end();
}
