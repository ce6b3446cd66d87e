/**
 * Rewriting the text inside a request body without breaking the wire format: policy transforms
 * (masking, pseudonyms) work on plain text; this module finds the texts in each provider's JSON
 * and puts the transformed text back. (Answers are rewritten by the codecs, src/providers.)
 */
import type { EndpointId } from '../core/events.ts';
import { arr, isObject, parseJson, type JsonObject } from '../core/json.ts';
import type { TextKind } from '../providers/channels.ts';

/**
 * Rewrites every user-controlled text of a request body (messages, system prompts, tool results,
 * tool-call arguments, Responses input, embeddings input) — the same fields the adapters parse
 * into NormalizedRequest. Returns the body unchanged when nothing changed.
 */
export function rewriteRequestBody(endpoint: EndpointId, body: string, rewrite: (text: string, kind: TextKind) => string): string {
  const json = parseJson(body);
  if (!isObject(json)) return body;
  let changed = false;
  const set = (holder: JsonObject | unknown[], key: string | number, kind: TextKind): void => {
    const value = (holder as Record<string | number, unknown>)[key];
    if (typeof value !== 'string' || value === '') return;
    const next = rewrite(value, kind);
    if (next !== value) {
      (holder as Record<string | number, unknown>)[key] = next;
      changed = true;
    }
  };
  const setParts = (holder: JsonObject, key: string): void => {
    if (typeof holder[key] === 'string') return set(holder, key, 'text');
    for (const part of arr(holder[key])) if (isObject(part) && typeof part.text === 'string') set(part, 'text', 'text');
  };
  const setObjectAsJson = (holder: JsonObject, key: string): void => {
    if (holder[key] === undefined) return;
    const box: JsonObject = { v: JSON.stringify(holder[key]) };
    set(box, 'v', 'json');
    const parsed = parseJson(box.v as string);
    if (parsed !== undefined) holder[key] = parsed as JsonObject;
  };
  if (endpoint === 'openai.chat.completions') {
    for (const message of arr(json.messages)) {
      if (!isObject(message)) continue;
      setParts(message, 'content');
      for (const call of arr(message.tool_calls)) if (isObject(call) && isObject(call.function)) set(call.function, 'arguments', 'json');
    }
  } else if (endpoint === 'openai.responses') {
    set(json, 'instructions', 'text');
    if (typeof json.input === 'string') set(json, 'input', 'text');
    for (const item of arr(json.input)) {
      if (!isObject(item)) continue;
      if (item.type === 'function_call') set(item, 'arguments', 'json');
      else if (item.type === 'custom_tool_call') set(item, 'input', 'text');
      // Tool results (Codex's code-mode `exec` answers with custom_tool_call_output): a string or parts.
      else if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') setParts(item, 'output');
      else setParts(item, 'content');
    }
  } else if (endpoint === 'openai.embeddings') {
    if (typeof json.input === 'string') set(json, 'input', 'text');
    else if (Array.isArray(json.input)) json.input.forEach((_, i, list) => set(list, i, 'text'));
  } else if (endpoint === 'anthropic.messages' || endpoint === 'anthropic.messages.count_tokens') {
    setParts(json, 'system');
    for (const message of arr(json.messages)) {
      if (!isObject(message)) continue;
      if (typeof message.content === 'string') {
        set(message, 'content', 'text');
        continue;
      }
      for (const block of arr(message.content)) {
        if (!isObject(block)) continue;
        if (block.type === 'text') set(block, 'text', 'text');
        else if (block.type === 'tool_use') setObjectAsJson(block, 'input');
        else if (block.type === 'tool_result') setParts(block, 'content');
      }
    }
  }
  return changed ? JSON.stringify(json) : body;
}
