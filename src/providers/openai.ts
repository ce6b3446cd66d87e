/**
 * OpenAI wire protocol: Chat Completions, Responses, Embeddings, Models — and any
 * OpenAI-compatible upstream reached by base URL.
 */
import { AigovError } from '../core/errors.ts';
import type { ContentPart, EndpointId, NormalizedMessage, NormalizedRequest, ResponseEvent, Role, ToolDefinition } from '../core/events.ts';
import { fixedRoute, modelRoute, pickForwardedHeaders, type ProviderCodec, type ProviderError, type RouteResult } from './codec.ts';
import { arr, isObject, num, parseJson, positiveInt, str, type Json, type JsonObject } from '../core/json.ts';
import type { TextLocation } from '../core/policy/types.ts';
import { at, SlotSink, type ReadRequest } from './request-slots.ts';
import { base64Text, dataUrlText } from './attached-text.ts';
import { createStreamReader } from './channels.ts';
import { callInput, classifyOpenAIEvent, openaiStreamEvents, openaiStreamRewriter, pushChatUsage, pushResponsesUsage, rewriteOpenAIAnswer, unknownOpenAIParts } from './openai-text.ts';

const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

export const openaiCodec: ProviderCodec = {
  kind: 'openai',

  clientBasePath: (mount) => `/${mount}/v1`,

  route(method, subpath): RouteResult {
    const m = /^\/v1(\/.*)$/.exec(subpath);
    const rest = m?.[1];
    if (rest === undefined) return { ok: false, reason: 'not_found' };
    // Each upstream path is one of these constants (the base URL already ends in /v1).
    const post = (endpoint: EndpointId, upstreamPath: string): RouteResult => fixedRoute(method, 'POST', endpoint, upstreamPath);
    const get = (endpoint: EndpointId, upstreamPath: string): RouteResult => fixedRoute(method, 'GET', endpoint, upstreamPath);
    if (rest === '/chat/completions') return post('openai.chat.completions', '/chat/completions');
    if (rest === '/responses') return post('openai.responses', '/responses');
    if (rest === '/embeddings') return post('openai.embeddings', '/embeddings');
    if (rest === '/models') return get('openai.models.list', '/models');
    const id = /^\/models\/([^/]+)$/.exec(rest)?.[1];
    if (id !== undefined) return modelRoute(method, 'openai.models.retrieve', '/models', id);
    return { ok: false, reason: 'not_found' };
  },

  parseRequest(endpoint, body): NormalizedRequest {
    return readOpenAIRequest(endpoint, body, '').request;
  },

  readRequest: readOpenAIRequest,

  readMessage(endpoint, element): NormalizedMessage | null {
    // A sink of its own: the view wants the normalized message, not its slots.
    try {
      if (endpoint === 'openai.chat.completions') return parseChatMessage(element, 0, new SlotSink());
      if (endpoint === 'openai.responses') return parseResponsesItem(element, 0, 0, new SlotSink());
    } catch (error) {
      if (!(error instanceof AigovError)) throw error;
    }
    return null;
  },

  upstreamHeaders(client, apiKey, extra) {
    const headers = pickForwardedHeaders(client);
    Object.assign(headers, extra);
    if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
    return headers;
  },

  parseResponseBody(endpoint, body): ResponseEvent[] {
    if (!isObject(body)) return [];
    const events: ResponseEvent[] = [];
    if (typeof body.model === 'string') events.push({ type: 'model', model: body.model });
    if (endpoint === 'openai.chat.completions') {
      for (const choice of arr(body.choices)) {
        if (!isObject(choice)) continue;
        const index = num(choice.index) ?? 0;
        const message = isObject(choice.message) ? choice.message : {};
        const text = str(message.content);
        if (text) events.push({ type: 'text', choice: index, text });
        const refusal = str(message.refusal);
        if (refusal) events.push({ type: 'refusal', choice: index, text: refusal });
        arr(message.tool_calls).forEach((call, i) => {
          if (!isObject(call) || !isObject(call.function)) return;
          events.push({ type: 'tool_call', choice: index, index: i, id: str(call.id), name: str(call.function.name), argumentsDelta: str(call.function.arguments) ?? '' });
        });
        const reason = str(choice.finish_reason);
        if (reason) events.push({ type: 'finish', choice: index, reason });
      }
      pushChatUsage(events, body.usage);
    } else if (endpoint === 'openai.responses') {
      arr(body.output).forEach((item, i) => {
        if (!isObject(item)) return;
        if (item.type === 'message') {
          for (const part of arr(item.content)) {
            if (isObject(part) && part.type === 'output_text') events.push({ type: 'text', choice: 0, text: str(part.text) ?? '', block: i });
            else if (isObject(part) && part.type === 'refusal') events.push({ type: 'refusal', choice: 0, text: str(part.refusal) ?? '' });
          }
        } else if (item.type === 'function_call' || item.type === 'custom_tool_call') {
          events.push({ type: 'tool_call', choice: 0, index: i, id: str(item.call_id), name: str(item.name), argumentsDelta: callInput(item) ?? '' });
        }
      });
      const status = str(body.status);
      if (status) events.push({ type: 'finish', choice: 0, reason: status });
      pushResponsesUsage(events, body.usage);
    } else if (endpoint === 'openai.embeddings') {
      pushChatUsage(events, body.usage);
    }
    return events;
  },

  streamReader(endpoint, rewriter, unknown = 'mask') {
    return createStreamReader((item) => openaiStreamEvents(endpoint, item), rewriter ? openaiStreamRewriter(endpoint, rewriter) : null, (item) => classifyOpenAIEvent(endpoint, item), unknown);
  },

  rewriteAnswer: rewriteOpenAIAnswer,
  unknownParts: unknownOpenAIParts,

  isStreamTerminal(endpoint, event) {
    if (event.data === null) return false;
    if (endpoint === 'openai.chat.completions') return event.data === '[DONE]';
    const type = event.event ?? '';
    if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed' || type === 'error') return true;
    // Some OpenAI-compatible servers end Responses streams with [DONE] as well.
    return event.data === '[DONE]';
  },

  renderError(error: ProviderError): string {
    return JSON.stringify({ error: { message: error.message, type: error.type, param: null, code: error.code } });
  },

  renderStreamError(endpoint, error): string {
    if (endpoint === 'openai.responses') {
      const data = JSON.stringify({ type: 'error', code: error.code ?? error.type, message: error.message, param: null });
      return `event: error\ndata: ${data}\n\n`;
    }
    return `data: ${JSON.stringify({ error: { message: error.message, type: error.type, param: null, code: error.code } })}\n\n`;
  },

  parseErrorBody(status, body): ProviderError | null {
    const data = parseJson(body);
    if (!isObject(data) || !isObject(data.error)) return null;
    const e = data.error;
    return { status, type: str(e.type) ?? 'api_error', message: str(e.message) ?? '', code: str(e.code) ?? null };
  },
};

function readOpenAIRequest(endpoint: EndpointId, body: unknown, text: string): ReadRequest {
  if (!isObject(body)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'the body must be a JSON object' });
  const model = str(body.model) ?? null;
  const stream = body.stream === true;
  const sink = new SlotSink();
  switch (endpoint) {
    case 'openai.chat.completions': {
      requireModel(model);
      if (!Array.isArray(body.messages)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: '`messages` must be an array' });
      const messages = body.messages.map((raw, i) => parseChatMessage(raw, i, sink));
      readChatSettings(body, sink);
      const outputLimit = { maxTokens: positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens) ?? null, choices: positiveInt(body.n) ?? 1 };
      return sink.read({ endpoint, model, stream, messages, tools: parseChatTools(body, sink), inputs: [], outputLimit }, body, text);
    }
    case 'openai.responses': {
      requireModel(model);
      const messages = parseResponsesInput(body, sink);
      readResponsesSettings(body, sink);
      const outputLimit = { maxTokens: positiveInt(body.max_output_tokens) ?? null, choices: 1 };
      return sink.read({ endpoint, model, stream, messages, tools: parseResponsesTools(body, sink), inputs: [], outputLimit }, body, text);
    }
    case 'openai.embeddings': {
      requireModel(model);
      const input = body.input;
      const inputs: string[] = [];
      if (typeof input === 'string') {
        inputs.push(input);
        sink.field({ kind: 'input', index: 0 }, body, 'input');
      } else {
        arr(input).forEach((value, j) => {
          if (typeof value !== 'string') return;
          sink.field({ kind: 'input', index: inputs.length }, input as Json[], j);
          inputs.push(value);
        });
      }
      return sink.read({ endpoint, model, stream: false, messages: [], tools: [], inputs, outputLimit: { maxTokens: 0, choices: 1 } }, body, text);
    }
    default:
      return sink.read({ endpoint, model, stream: false, messages: [], tools: [], inputs: [] }, body, text);
  }
}

function requireModel(model: string | null): asserts model is string {
  if (!model) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: '`model` is required' });
}

function parseChatMessage(raw: unknown, i: number, sink: SlotSink): NormalizedMessage {
  if (!isObject(raw)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `messages[${i}] must be an object` });
  const roleName = str(raw.role);
  if (!roleName || !ROLES.has(roleName)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `messages[${i}].role must be one of system, developer, user, assistant, tool` });
  const role: Role = roleName === 'function' ? 'tool' : (roleName as Role);
  // A participant's name is shown to the model with the turn.
  sink.requestText(`messages[${i}].name`, role, raw, 'name');
  const parts: ContentPart[] = [];
  if (role === 'tool') {
    parts.push({ type: 'tool_result', toolCallId: str(raw.tool_call_id) ?? str(raw.name) ?? '', text: contentText(raw, 'content', sink, at(i, 0, role, 'tool_result')) });
    pushAttachments(raw.content, parts, sink, i, role);
  } else {
    parts.push(...contentParts(raw, 'content', sink, i, role));
  }
  // An assistant turn's refusal, given back in the conversation.
  if (typeof raw.refusal === 'string' && raw.refusal !== '') {
    sink.field(at(i, parts.length, role, 'text'), raw, 'refusal');
    parts.push({ type: 'text', text: raw.refusal });
  }
  for (const call of arr(raw.tool_calls)) {
    if (!isObject(call)) continue;
    const fn = isObject(call.function) ? call.function : {};
    sink.field(at(i, parts.length, role, 'tool_arguments'), fn, 'arguments', 'json');
    parts.push({ type: 'tool_call', id: str(call.id) ?? '', name: str(fn.name) ?? '', arguments: str(fn.arguments) ?? '' });
  }
  if (isObject(raw.function_call)) {
    sink.field(at(i, parts.length, role, 'tool_arguments'), raw.function_call, 'arguments', 'json');
    parts.push({ type: 'tool_call', id: '', name: str(raw.function_call.name) ?? '', arguments: str(raw.function_call.arguments) ?? '' });
  }
  return roleName === role ? { role, parts } : { role, parts, wire: roleName };
}

/** The field holding a text content part's text (`text`, or `refusal`), if it is a string. */
function textKey(part: JsonObject): 'text' | 'refusal' | null {
  return typeof part.text === 'string' ? 'text' : typeof part.refusal === 'string' ? 'refusal' : null;
}
const TEXT_PARTS: ReadonlySet<string> = new Set(['text', 'input_text', 'output_text', 'refusal']);

/**
 * Chat or Responses content (`holder[key]`): a string or an array of parts (text, image_url /
 * input_image, input_audio, file / input_file, refusal) — normalized as the parts of message `m`,
 * each text a slot.
 */
function contentParts(holder: JsonObject, key: string, sink: SlotSink, m: number, role: Role): ContentPart[] {
  const content = holder[key];
  if (typeof content === 'string') {
    sink.field(at(m, 0, role, 'text'), holder, key);
    return [{ type: 'text', text: content }];
  }
  const parts: ContentPart[] = [];
  for (const part of arr(content)) {
    if (!isObject(part)) continue;
    const type = str(part.type) ?? '';
    if (TEXT_PARTS.has(type)) {
      const field = textKey(part);
      if (field !== null) sink.field(at(m, parts.length, role, 'text'), part, field);
      parts.push({ type: 'text', text: str(part.text) ?? str(part.refusal) ?? '' });
    } else if (!pushAttachment(part, type, parts, sink, m, role)) {
      parts.push({ type: 'other', kind: type || 'unknown' });
    }
  }
  return parts;
}

/** The images, files and audio among content parts (a tool output's), appended to the parts of message `m`. */
function pushAttachments(content: unknown, parts: ContentPart[], sink: SlotSink, m: number, role: Role): void {
  for (const part of arr(content)) if (isObject(part)) pushAttachment(part, str(part.type) ?? '', parts, sink, m, role);
}

/**
 * An image, file or audio part appended to `parts`, its texts slots; false for another type. An
 * image data URL that is really text (`data:text/plain;base64,…`) is read as a text file.
 */
function pushAttachment(part: JsonObject, type: string, parts: ContentPart[], sink: SlotSink, m: number, role: Role): boolean {
  const p = parts.length;
  if (type === 'image_url' || type === 'input_image') {
    const holder = isObject(part.image_url) ? part.image_url : part;
    const key = holder === part ? 'image_url' : 'url';
    const url = str(holder[key]);
    const inline = url !== undefined && /^data:/i.test(url);
    const text = inline ? dataUrlText(url) : null;
    if (text !== null) {
      sink.decoded(at(m, p, role, 'file_text'), holder, key, text);
      parts.push({ type: 'file', source: 'inline', text: text.text });
    } else {
      parts.push({ type: 'image', source: inline ? 'base64' : str(part.file_id) ? 'file' : 'url' });
    }
    return true;
  }
  if (type === 'file' || type === 'input_file') {
    parts.push(filePart(isObject(part.file) ? part.file : part, sink, m, p, role));
    return true;
  }
  if (type === 'input_audio') {
    parts.push({ type: 'audio' });
    return true;
  }
  return false;
}

/** A Chat `file` / Responses `input_file`, part `p`: its name, and its data when that is text, are slots. */
function filePart(file: JsonObject, sink: SlotSink, m: number, p: number, role: Role): ContentPart {
  const name = str(file.filename);
  sink.field(at(m, p, role, 'file_name'), file, 'filename');
  const named = name ? { name } : {};
  const data = str(file.file_data);
  if (!data) return { type: 'file', source: 'reference', ...named };
  const text = /^data:/i.test(data) ? dataUrlText(data, name) : base64Text(data, undefined, name);
  if (text === null) return { type: 'file', source: 'inline', ...named };
  sink.decoded(at(m, p, role, 'file_text'), file, 'file_data', text);
  return { type: 'file', source: 'inline', ...named, text: text.text };
}

/** The text of content (`holder[key]`) as one string (a tool result); its pieces are slots at `location`. */
function contentText(holder: JsonObject, key: string, sink: SlotSink, location: TextLocation): string {
  const content = holder[key];
  if (typeof content === 'string') {
    sink.field(location, holder, key);
    return content;
  }
  const pieces: { holder: JsonObject; key: string; text: string }[] = [];
  for (const part of arr(content)) {
    if (!isObject(part) || !TEXT_PARTS.has(str(part.type) ?? '')) continue;
    const field = textKey(part);
    pieces.push(field === null ? { holder: part, key: 'text', text: '' } : { holder: part, key: field, text: part[field] as string });
  }
  sink.joined(location, pieces);
  return pieces.map((p) => p.text).join('');
}

/** A tool definition `holder` as tool `t`: its description and parameters (`paramsKey`) are slots. */
function toolDefinition(holder: JsonObject, t: number, sink: SlotSink, name: string, descriptionKey: string, paramsKey: string): ToolDefinition {
  const description = str(holder[descriptionKey]);
  const parameters = holder[paramsKey];
  sink.field({ kind: 'tool_definition', tool: t, field: 'description' }, holder, descriptionKey);
  if (parameters !== undefined) sink.object({ kind: 'tool_definition', tool: t, field: 'parameters' }, holder, paramsKey, () => JSON.stringify(parameters) ?? '');
  return { name, description, parameters };
}

function parseChatTools(body: JsonObject, sink: SlotSink): ToolDefinition[] {
  const tools: ToolDefinition[] = [];
  for (const tool of arr(body.tools)) {
    if (!isObject(tool)) continue;
    if (isObject(tool.function)) tools.push(toolDefinition(tool.function, tools.length, sink, str(tool.function.name) ?? '', 'description', 'parameters'));
    else if (isObject(tool.custom)) tools.push(toolDefinition(tool.custom, tools.length, sink, str(tool.custom.name) ?? '', 'description', 'format'));
    else tools.push({ name: str(tool.name) ?? str(tool.type) ?? '' });
  }
  for (const fn of arr(body.functions)) {
    if (isObject(fn)) tools.push(toolDefinition(fn, tools.length, sink, str(fn.name) ?? '', 'description', 'parameters'));
  }
  return tools;
}

/** Chat settings the model reads or the provider keeps: response format, predicted output, metadata. */
function readChatSettings(body: JsonObject, sink: SlotSink): void {
  if (isObject(body.response_format)) readSchemaFormat(body.response_format.json_schema, 'response_format.json_schema', sink);
  if (isObject(body.prediction)) {
    const prediction = body.prediction;
    if (Array.isArray(prediction.content)) {
      prediction.content.forEach((part, j) => {
        if (isObject(part)) sink.requestText(`prediction.content[${j}].text`, null, part, 'text');
      });
    } else {
      sink.requestText('prediction.content', null, prediction, 'content');
    }
  }
  readMetadata(body, sink);
}

/** Responses settings: the text format, metadata. */
function readResponsesSettings(body: JsonObject, sink: SlotSink): void {
  if (isObject(body.text)) readSchemaFormat(body.text.format, 'text.format', sink);
  readMetadata(body, sink);
}

/** A JSON schema format (`{name, description, schema}`): the model reads all three. */
function readSchemaFormat(format: unknown, path: string, sink: SlotSink): void {
  if (!isObject(format)) return;
  for (const key of ['name', 'description', 'schema']) sink.requestText(`${path}.${key}`, null, format, key);
}

/** Metadata values (kept by the provider with the call). By index: a key is the client's text, never a path in a record. */
function readMetadata(body: JsonObject, sink: SlotSink): void {
  if (!isObject(body.metadata)) return;
  const metadata = body.metadata;
  Object.keys(metadata).forEach((key, j) => {
    if (typeof metadata[key] === 'string') sink.requestText(`metadata[${j}]`, null, metadata, key);
  });
}

function parseResponsesInput(body: JsonObject, sink: SlotSink): NormalizedMessage[] {
  const messages: NormalizedMessage[] = [];
  const instructions = str(body.instructions);
  if (instructions) {
    sink.field(at(messages.length, 0, 'system', 'text'), body, 'instructions');
    messages.push({ role: 'system', parts: [{ type: 'text', text: instructions }], wire: 'instructions' });
  }
  const input = body.input;
  if (typeof input === 'string') {
    sink.field(at(messages.length, 0, 'user', 'text'), body, 'input');
    messages.push({ role: 'user', parts: [{ type: 'text', text: input }] });
  } else {
    if (input !== undefined && !Array.isArray(input)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: '`input` must be a string or an array' });
    arr(input).forEach((item, i) => messages.push(parseResponsesItem(item, i, messages.length, sink)));
  }
  // A stored prompt's variables are put into it where the model reads them: one user turn.
  const variables = isObject(body.prompt) && isObject(body.prompt.variables) ? body.prompt.variables : null;
  if (variables !== null) messages.push({ role: 'user', parts: promptVariables(variables, messages.length, sink), wire: 'prompt.variables' });
  return messages;
}

/** Prompt variables (a string, or an input_text / input_image / input_file part each) as the parts of message `m`. */
function promptVariables(variables: JsonObject, m: number, sink: SlotSink): ContentPart[] {
  const parts: ContentPart[] = [];
  for (const name of Object.keys(variables)) {
    const value = variables[name];
    if (typeof value === 'string') {
      sink.field(at(m, parts.length, 'user', 'text'), variables, name);
      parts.push({ type: 'text', text: value });
    } else if (isObject(value)) {
      const type = str(value.type) ?? '';
      if (TEXT_PARTS.has(type)) {
        sink.field(at(m, parts.length, 'user', 'text'), value, 'text');
        parts.push({ type: 'text', text: str(value.text) ?? '' });
      } else {
        pushAttachment(value, type, parts, sink, m, 'user');
      }
    }
  }
  return parts;
}

/** Output items a tool or the client hands back, by the key of their output (text, or text and attachment parts). */
const TOOL_OUTPUTS: Readonly<Record<string, string>> = {
  function_call_output: 'output',
  // Codex's code-mode `exec` answers with custom_tool_call_output.
  custom_tool_call_output: 'output',
  local_shell_call_output: 'output',
  apply_patch_call_output: 'output',
  program_output: 'result',
};

/** Input item `i` of a Responses request, normalized as message `m`. */
function parseResponsesItem(item: unknown, i: number, m: number, sink: SlotSink): NormalizedMessage {
  if (!isObject(item)) throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `input[${i}] must be an object` });
  const type = str(item.type) ?? 'message';
  if (type === 'message') {
    const role = str(item.role) ?? 'user';
    const governed: Role = ROLES.has(role) ? (role as Role) : 'user';
    const parts = contentParts(item, 'content', sink, m, governed);
    return governed === role ? { role: governed, parts } : { role: governed, parts, wire: role };
  }
  if (type === 'function_call') {
    sink.field(at(m, 0, 'assistant', 'tool_arguments'), item, 'arguments', 'json');
    return { role: 'assistant', parts: [{ type: 'tool_call', id: str(item.call_id) ?? '', name: str(item.name) ?? '', arguments: str(item.arguments) ?? '' }] };
  }
  if (type === 'custom_tool_call') {
    sink.field(at(m, 0, 'assistant', 'tool_arguments'), item, 'input');
    return { role: 'assistant', parts: [{ type: 'tool_call', id: str(item.call_id) ?? '', name: str(item.name) ?? '', arguments: str(item.input) ?? '' }] };
  }
  const toolCallId = str(item.call_id) ?? str(item.id) ?? '';
  const key = TOOL_OUTPUTS[type];
  if (key !== undefined) {
    // A string or parts: text joined, images and files besides.
    const parts: ContentPart[] = [{ type: 'tool_result', toolCallId, text: contentText(item, key, sink, at(m, 0, 'tool', 'tool_result')) }];
    pushAttachments(item[key], parts, sink, m, 'tool');
    return { role: 'tool', parts, ...(type === 'function_call_output' || type === 'custom_tool_call_output' ? {} : { wire: type }) };
  }
  if (type === 'shell_call_output') {
    // Chunks of stdout and stderr, read in order.
    const pieces = arr(item.output)
      .filter(isObject)
      .flatMap((chunk) => (['stdout', 'stderr'] as const).filter((k) => typeof chunk[k] === 'string').map((k) => ({ holder: chunk, key: k, text: chunk[k] as string })));
    sink.joined(at(m, 0, 'tool', 'tool_result'), pieces);
    return { role: 'tool', parts: [{ type: 'tool_result', toolCallId, text: pieces.map((p) => p.text).join('') }], wire: type };
  }
  if (type === 'computer_call_output') {
    // A screenshot: an image (or a text data URL, read as text).
    const parts: ContentPart[] = [{ type: 'tool_result', toolCallId, text: '' }];
    if (isObject(item.output)) pushAttachment(item.output, 'input_image', parts, sink, m, 'tool');
    return { role: 'tool', parts, wire: type };
  }
  // Another item type (reasoning, additional_tools, …): passed through, its content's text kept for views.
  const text = arr(item.content)
    .map((part) => (isObject(part) ? str(part.text) : undefined))
    .filter((t): t is string => t !== undefined && t !== '')
    .join('\n');
  return { role: 'user', parts: [{ type: 'other', kind: type, ...(text === '' ? {} : { text }) }], wire: type };
}

/**
 * The tools a Responses request defines: `tools`, and those Codex (0.171) puts in an input item
 * `{type: "additional_tools", tools: [...]}`. Namespaces (`{type: "namespace", tools: [...]}`)
 * are opened: policy sees `exec`, `wait`, … as the model does. Descriptions and parameters are
 * slots (an MCP server's description too).
 */
function parseResponsesTools(body: JsonObject, sink: SlotSink): ToolDefinition[] {
  const out: ToolDefinition[] = [];
  const add = (tools: unknown, depth: number): void => {
    for (const tool of arr(tools)) {
      if (!isObject(tool)) continue;
      if (tool.type === 'namespace' && depth < 4) add(tool.tools, depth + 1);
      else {
        const descriptionKey = tool.description === undefined && tool.type === 'mcp' ? 'server_description' : 'description';
        const paramsKey = tool.parameters === undefined && isObject(tool.format) ? 'format' : 'parameters';
        out.push(toolDefinition(tool, out.length, sink, str(tool.name) ?? str(tool.type) ?? '', descriptionKey, paramsKey));
      }
    }
  };
  add(body.tools, 0);
  for (const item of arr(body.input)) if (isObject(item) && item.type === 'additional_tools') add(item.tools, 0);
  return out;
}
