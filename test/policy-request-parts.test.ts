/**
 * Every part of a request the model reads is scanned by policy, through the real codecs: JSON
 * bodies as the SDKs send them (OpenAI Chat, OpenAI Responses, Anthropic Messages), each part
 * kind carrying an AWS key, a card number or a keyword — blocked by a block rule, masked (and
 * re-encoded where it was encoded) by a mask rule, and passed when it says nothing. Parts the
 * gateway cannot read are judged by the policy's `uninspectable` setting, under each value. Then
 * a real gateway: a blocked variant never reaches the upstream, the client gets the provider's
 * error naming the rule.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { isAigovError } from '../src/core/errors.ts';
import type { EndpointId, Principal } from '../src/core/events.ts';
import { approvalFor, createRequestRewriter, evaluatePolicy, requestTextItems, type CompiledPolicy, type PolicyEvaluation } from '../src/core/policy/index.ts';
import type { UninspectableKind } from '../src/core/policy/types.ts';
import { codecForEndpoint } from '../src/providers/registry.ts';
import type { ReadRequest } from '../src/providers/request-slots.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

// Built at run time: no literal secret in the repo.
const AWS_KEY = ['AK', 'IA', 'Z7VQX3MLP2RT4KWB'].join('');
const CARD = ['4111', '1111', '1111', '1111'].join(' ');
const KEYWORD = 'NIGHTJAR';
const PAYLOADS: readonly [string, string][] = [
  ['an AWS key', AWS_KEY],
  ['a card number', CARD],
  ['a keyword', KEYWORD],
];
const ORDINARY = 'the weather in Lisbon is mild today';

const BLOCK_RULES = `
  - { id: no-aws-keys, match: { detectors: [AWS_ACCESS_KEY] }, action: block }
  - { id: no-cards, match: { detectors: [CREDIT_CARD] }, action: block }
  - { id: no-codename, match: { keywords: [${KEYWORD}] }, action: block }`;
const RULE_FOR: Record<string, string> = { [AWS_KEY]: 'no-aws-keys', [CARD]: 'no-cards', [KEYWORD]: 'no-codename' };

const ALICE: Principal = { subject: 'alice', email: 'alice@example.com', groups: ['eng'], issuer: 'https://idp.test', clientId: null };

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const about = (payload: string): string => `please review: ${payload} — thanks`;

interface Variant {
  readonly name: string;
  readonly endpoint: EndpointId;
  /** The request body an SDK sends, with `payload` where the part kind carries text. */
  readonly body: (payload: string) => object;
  /** Scanned only by block/approval rules (a value split or encoded twice): not a masking case. */
  readonly viewsOnly?: boolean;
}

const chat = (content: unknown, extra: object = {}): object => ({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra });
const responses = (input: unknown, extra: object = {}): object => ({ model: 'gpt-4o', input, ...extra });
const messages = (content: unknown, extra: object = {}): object => ({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content }], ...extra });

const VARIANTS: readonly Variant[] = [
  // --- OpenAI Chat Completions ---------------------------------------------------------------
  { name: 'chat file: data:text/plain;base64', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'text', text: 'summarize' }, { type: 'file', file: { filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(about(p))}` } }]) },
  { name: 'chat file: data:application/json;base64', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'file', file: { filename: 'config.json', file_data: `data:application/json;base64,${b64(JSON.stringify({ note: about(p) }))}` } }]) },
  { name: 'chat file: base64 without a data URL, named .md', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'file', file: { filename: 'README.md', file_data: b64(`# notes\n${about(p)}\n`) } }]) },
  { name: 'chat file: its file name', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'file', file: { filename: `${p}.pdf`, file_id: 'file-abc123' } }]) },
  { name: 'chat file: URL-safe base64, upper-case DATA: and a charset', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'file', file: { filename: 'n.txt', file_data: `DATA:TEXT/PLAIN;CHARSET=UTF-8;BASE64,${Buffer.from(about(p) + ' ??>>').toString('base64url')}` } }]) },
  { name: 'chat image_url: data:text/plain;base64', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'image_url', image_url: { url: `data:text/plain;base64,${b64(about(p))}`, detail: 'low' } }]) },
  { name: 'chat image_url: data:text/plain percent-encoded', endpoint: 'openai.chat.completions', body: (p) => chat([{ type: 'image_url', image_url: { url: `data:text/plain,${encodeURIComponent(about(p))}` } }]) },
  { name: 'chat prediction.content string', endpoint: 'openai.chat.completions', body: (p) => chat('edit this file', { prediction: { type: 'content', content: about(p) } }) },
  { name: 'chat prediction.content parts', endpoint: 'openai.chat.completions', body: (p) => chat('edit this file', { prediction: { type: 'content', content: [{ type: 'text', text: 'line one' }, { type: 'text', text: about(p) }] } }) },
  { name: 'chat response_format json_schema description', endpoint: 'openai.chat.completions', body: (p) => chat('fill the form', { response_format: { type: 'json_schema', json_schema: { name: 'form', description: about(p), schema: { type: 'object' } } } }) },
  { name: 'chat response_format json_schema schema', endpoint: 'openai.chat.completions', body: (p) => chat('fill the form', { response_format: { type: 'json_schema', json_schema: { name: 'form', strict: true, schema: { type: 'object', properties: { account: { type: 'string', description: about(p) } } } } } }) },
  { name: 'chat metadata value', endpoint: 'openai.chat.completions', body: (p) => chat('hello', { store: true, metadata: { ticket: 'T-1', note: about(p) } }) },
  { name: 'chat message name', endpoint: 'openai.chat.completions', body: (p) => ({ model: 'gpt-4o', messages: [{ role: 'user', name: p.replaceAll(' ', '_'), content: 'hello' }] }) },
  { name: 'chat assistant refusal in the history', endpoint: 'openai.chat.completions', body: (p) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, refusal: about(p) }, { role: 'user', content: 'why?' }] }) },
  { name: 'chat custom tool description', endpoint: 'openai.chat.completions', body: (p) => chat('go', { tools: [{ type: 'custom', custom: { name: 'apply_patch', description: about(p) } }] }) },
  { name: 'chat tool message with a text file', endpoint: 'openai.chat.completions', body: (p) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'read it' }, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'done' }, { type: 'file', file: { filename: 'out.txt', file_data: `data:text/plain;base64,${b64(about(p))}` } }] }] }) },

  // --- OpenAI Responses -----------------------------------------------------------------------
  { name: 'responses input_file: data:text/plain;base64', endpoint: 'openai.responses', body: (p) => responses([{ role: 'user', content: [{ type: 'input_text', text: 'summarize' }, { type: 'input_file', filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(about(p))}` }] }]) },
  { name: 'responses input_file: data:text/csv', endpoint: 'openai.responses', body: (p) => responses([{ role: 'user', content: [{ type: 'input_file', filename: 'rows.csv', file_data: `data:text/csv;base64,${b64(`id,note\n1,${about(p)}\n`)}` }] }]) },
  { name: 'responses input_file: its file name', endpoint: 'openai.responses', body: (p) => responses([{ role: 'user', content: [{ type: 'input_file', filename: `${p}.pdf`, file_url: 'https://example.com/a.pdf' }] }]) },
  { name: 'responses input_image: data:text/plain', endpoint: 'openai.responses', body: (p) => responses([{ role: 'user', content: [{ type: 'input_image', image_url: `data:text/plain;base64,${b64(about(p))}`, detail: 'auto' }] }]) },
  { name: 'responses text.format schema', endpoint: 'openai.responses', body: (p) => responses('fill it', { text: { format: { type: 'json_schema', name: 'form', schema: { type: 'object', properties: { x: { type: 'string', description: about(p) } } } } } }) },
  { name: 'responses text.format description', endpoint: 'openai.responses', body: (p) => responses('fill it', { text: { format: { type: 'json_schema', name: 'form', description: about(p), schema: { type: 'object' } } } }) },
  { name: 'responses metadata value', endpoint: 'openai.responses', body: (p) => responses('hello', { metadata: { note: about(p) } }) },
  { name: 'responses prompt variable (string)', endpoint: 'openai.responses', body: (p) => responses('go', { prompt: { id: 'pmpt_1', variables: { customer: about(p) } } }) },
  { name: 'responses prompt variable (input_text)', endpoint: 'openai.responses', body: (p) => ({ model: 'gpt-4o', prompt: { id: 'pmpt_1', version: '2', variables: { customer: { type: 'input_text', text: about(p) } } } }) },
  { name: 'responses prompt variable (input_file)', endpoint: 'openai.responses', body: (p) => ({ model: 'gpt-4o', prompt: { id: 'pmpt_1', variables: { doc: { type: 'input_file', filename: 'a.txt', file_data: `data:text/plain;base64,${b64(about(p))}` } } } }) },
  { name: 'responses function_call_output with a file', endpoint: 'openai.responses', body: (p) => responses([{ type: 'function_call', call_id: 'c1', name: 'read', arguments: '{}' }, { type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'ok' }, { type: 'input_file', filename: 'r.json', file_data: `data:application/json;base64,${b64(JSON.stringify({ v: about(p) }))}` }] }]) },
  { name: 'responses local_shell_call_output', endpoint: 'openai.responses', body: (p) => responses([{ type: 'local_shell_call_output', id: 'ls_1', output: JSON.stringify({ stdout: about(p) }) }]) },
  { name: 'responses shell_call_output stdout', endpoint: 'openai.responses', body: (p) => responses([{ type: 'shell_call_output', call_id: 'sh_1', output: [{ stdout: about(p), stderr: '', outcome: { type: 'exit', exit_code: 0 } }] }]) },
  { name: 'responses apply_patch_call_output', endpoint: 'openai.responses', body: (p) => responses([{ type: 'apply_patch_call_output', call_id: 'ap_1', status: 'failed', output: about(p) }]) },
  { name: 'responses program_output', endpoint: 'openai.responses', body: (p) => responses([{ type: 'program_output', id: 'po_1', call_id: 'pr_1', result: about(p), status: 'completed' }]) },
  { name: 'responses MCP server description', endpoint: 'openai.responses', body: (p) => responses('go', { tools: [{ type: 'mcp', server_label: 'crm', server_url: 'https://mcp.example.com', server_description: about(p) }] }) },

  // --- Anthropic Messages ---------------------------------------------------------------------
  { name: 'anthropic document: text source', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: about(p) } }, { type: 'text', text: 'summarize' }]) },
  { name: 'anthropic document: base64 text/plain', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: b64(about(p)) } }]) },
  { name: 'anthropic document: base64 text/plain in MIME lines with a BOM', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: b64(`\uFEFF${'filler text. '.repeat(10)}${about(p)}`).replace(/.{76}/g, '$&\r\n') } }]) },
  { name: 'anthropic document: content source (string)', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', source: { type: 'content', content: about(p) } }]) },
  { name: 'anthropic document: content source (text blocks)', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'page one' }, { type: 'text', text: about(p) }] }, citations: { enabled: true } }]) },
  { name: 'anthropic document: title', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', title: about(p), source: { type: 'url', url: 'https://example.com/a.pdf' } }]) },
  { name: 'anthropic document: context', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'document', context: about(p), source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' } }]) },
  { name: 'anthropic search_result: content', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'search_result', source: 'https://wiki.example.com/x', title: 'Wiki', content: [{ type: 'text', text: about(p) }] }]) },
  { name: 'anthropic search_result: title', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'search_result', source: 'https://wiki.example.com/x', title: about(p), content: [{ type: 'text', text: 'x' }] }]) },
  { name: 'anthropic search_result: source', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'search_result', source: `https://wiki.example.com/${encodeURIComponent(p)}?q=${p.replaceAll(' ', '+')}`, title: 'Wiki', content: [{ type: 'text', text: 'x' }] }]) },
  { name: 'anthropic tool_result holding a document', endpoint: 'anthropic.messages', body: (p) => ({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'read' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Read', input: { path: 'a.txt' } }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'file:' }, { type: 'document', source: { type: 'text', media_type: 'text/plain', data: about(p) } }] }] }] }) },
  { name: 'anthropic tool_result holding a search result', endpoint: 'anthropic.messages', body: (p) => ({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'search' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_2', name: 'search', input: {} }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'search_result', source: 'kb://1', title: 'KB', content: [{ type: 'text', text: about(p) }] }] }] }] }) },
  { name: 'anthropic web_fetch_tool_result document', endpoint: 'anthropic.messages', body: (p) => ({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'fetch' }, { role: 'assistant', content: [{ type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_fetch', input: { url: 'https://example.com' } }, { type: 'web_fetch_tool_result', tool_use_id: 'srvtoolu_1', content: { type: 'web_fetch_result', url: 'https://example.com', content: { type: 'document', source: { type: 'text', media_type: 'text/plain', data: about(p) } } } }] }] }) },
  { name: 'anthropic image whose media type is text', endpoint: 'anthropic.messages', body: (p) => messages([{ type: 'image', source: { type: 'base64', media_type: 'text/plain', data: b64(about(p)) } }]) },
  { name: 'anthropic output_config.format schema', endpoint: 'anthropic.messages', body: (p) => messages('fill it', { output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: { x: { type: 'string', description: about(p) } } } } } }) },
  { name: 'anthropic output_format schema (beta)', endpoint: 'anthropic.messages', body: (p) => messages('fill it', { output_format: { type: 'json_schema', schema: { type: 'object', description: about(p) } } }) },
  { name: 'anthropic metadata.user_id', endpoint: 'anthropic.messages', body: (p) => messages('hello', { metadata: { user_id: about(p) } }) },
  { name: 'anthropic count_tokens document', endpoint: 'anthropic.messages.count_tokens', body: (p) => ({ model: 'claude-test', messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: about(p) } }] }] }) },
  { name: 'anthropic system block', endpoint: 'anthropic.messages', body: (p) => ({ model: 'claude-test', max_tokens: 100, system: [{ type: 'text', text: about(p) }], messages: [{ role: 'user', content: 'hi' }] }) },

  // --- encodings and splits an attacker would try (block rules read the text as the model does) -
  { name: 'half in the prompt, half in a text document', endpoint: 'anthropic.messages', viewsOnly: true, body: (p) => messages([{ type: 'text', text: `see: ${p.slice(0, 8)}` }, { type: 'document', source: { type: 'text', media_type: 'text/plain', data: `${p.slice(8)} end` } }]) },
  { name: 'base64 inside a base64 text document', endpoint: 'openai.chat.completions', viewsOnly: true, body: (p) => chat([{ type: 'file', file: { filename: 'blob.txt', file_data: `data:text/plain;base64,${b64(`payload=${b64(about(p))}`)}` } }]) },
  { name: 'a zero-width space inside a decoded document', endpoint: 'openai.responses', viewsOnly: true, body: (p) => responses([{ role: 'user', content: [{ type: 'input_file', filename: 'z.txt', file_data: `data:text/plain;base64,${b64(`x ${p.slice(0, 4)}\u200b${p.slice(4)} y`)}` }] }]) },
];

function compile(yaml: string): CompiledPolicy {
  return parsePolicyText(yaml, 'request-parts-policy.yaml').compiled;
}

function read(variant: { endpoint: EndpointId; body: object }): ReadRequest {
  const text = JSON.stringify(variant.body);
  return codecForEndpoint(variant.endpoint)!.readRequest(variant.endpoint, JSON.parse(text), text);
}

function evaluate(policy: CompiledPolicy, endpoint: EndpointId, reading: ReadRequest): PolicyEvaluation {
  const provider = endpoint.startsWith('anthropic') ? 'anthropic' : 'openai';
  return evaluatePolicy(policy, { principal: ALICE, provider, model: reading.request.model, endpoint, request: reading.request });
}

describe('every request part the model reads is scanned (real codecs)', () => {
  const blocking = compile(`version: 1\nrules:${BLOCK_RULES}\n`);
  for (const variant of VARIANTS) {
    it(`${variant.endpoint} — ${variant.name}: blocked for each payload, passed when ordinary`, () => {
      for (const [what, payload] of PAYLOADS) {
        if (variant.name.includes('message name') && payload === CARD) continue; // a name holds no spaces: covered by the others
        const evaluation = evaluate(blocking, variant.endpoint, read({ endpoint: variant.endpoint, body: variant.body(payload) }));
        assert.equal(evaluation.action, 'block', `${variant.name}: ${what} was not blocked`);
        assert.equal(evaluation.ruleId, RULE_FOR[payload], `${variant.name}: ${what}`);
        assert.ok(!evaluation.reason.includes(payload), 'the reason never quotes the value');
      }
      const ordinary = evaluate(blocking, variant.endpoint, read({ endpoint: variant.endpoint, body: variant.body(ORDINARY) }));
      assert.equal(ordinary.action, 'allow', variant.name);
      assert.deepEqual(ordinary.decisions.map((d) => d.ruleId), ['default'], `${variant.name}: nothing but the default decided`);
    });
  }

  it('a mask rule masks the value in every part it is found, re-encoded where it was encoded: the value never goes upstream', () => {
    const masking = compile('version: 1\nrules:\n  - { id: mask-aws, match: { detectors: [AWS_ACCESS_KEY] }, action: mask_request }\n');
    for (const variant of VARIANTS.filter((v) => !v.viewsOnly)) {
      const reading = read({ endpoint: variant.endpoint, body: variant.body(AWS_KEY) });
      const evaluation = evaluate(masking, variant.endpoint, reading);
      assert.ok(evaluation.requestMasking, `${variant.name}: the mask rule found the key`);
      const rewrite = createRequestRewriter(evaluation.requestMasking);
      for (const slot of reading.slots) slot.set(rewrite(slot));
      const sent = reading.serialize();
      assert.ok(!sent.includes(AWS_KEY), `${variant.name}: the key went up in clear`);
      // Read back as the provider would: decoded again, no text holds the key, one holds the label.
      const again = requestTextItems(read({ endpoint: variant.endpoint, body: JSON.parse(sent) as object }).request);
      assert.ok(again.every((item) => !item.text.includes(AWS_KEY)), `${variant.name}: the key is still in the decoded text`);
      assert.ok(again.some((item) => item.text.includes('[AWS_ACCESS_KEY]')), `${variant.name}: the masked text is what the model reads`);
    }
  });

  it('a masked document keeps its encoding and everything around the value', () => {
    const masking = compile('version: 1\nrules:\n  - { id: mask-cards, match: { detectors: [CREDIT_CARD] }, action: mask_request, operator: { kind: mask, keep_last: 4 } }\n');
    const body = messages([{ type: 'document', title: 'invoice', source: { type: 'base64', media_type: 'text/plain', data: b64(`Héllo — card ${CARD}, thanks ✓`) } }]);
    const reading = read({ endpoint: 'anthropic.messages', body });
    const evaluation = evaluate(masking, 'anthropic.messages', reading);
    const rewrite = createRequestRewriter(evaluation.requestMasking!);
    for (const slot of reading.slots) slot.set(rewrite(slot));
    const sent = JSON.parse(reading.serialize()) as { messages: { content: { title: string; source: { data: string; media_type: string } }[] }[] };
    const doc = sent.messages[0]!.content[0]!;
    assert.equal(doc.title, 'invoice');
    assert.equal(doc.source.media_type, 'text/plain');
    assert.equal(Buffer.from(doc.source.data, 'base64').toString('utf8'), 'Héllo — card ***************1111, thanks ✓');
    // A percent-encoded data URL stays one, its prefix as the client wrote it.
    const url = read({ endpoint: 'openai.chat.completions', body: chat([{ type: 'image_url', image_url: { url: `data:text/plain;charset=utf-8,${encodeURIComponent(`pay ${CARD} now`)}` } }]) });
    const planned = evaluate(masking, 'openai.chat.completions', url);
    for (const slot of url.slots) slot.set(createRequestRewriter(planned.requestMasking!)(slot));
    const sentUrl = (JSON.parse(url.serialize()) as { messages: { content: { image_url: { url: string } }[] }[] }).messages[0]!.content[0]!.image_url.url;
    assert.equal(sentUrl, `data:text/plain;charset=utf-8,${encodeURIComponent('pay ***************1111 now')}`);
  });

  it('a request without such parts reads as before: its bytes go upstream untouched, nothing new to scan', () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] };
    const reading = read({ endpoint: 'openai.chat.completions', body });
    assert.deepEqual(reading.request.texts, []);
    assert.deepEqual(reading.request.messages[0]!.parts, [{ type: 'text', text: 'hi' }, { type: 'image', source: 'base64' }]);
    assert.equal(reading.serialize(), JSON.stringify(body));
  });
});

// ---------------------------------------------------------------------------------------------
// Parts the gateway cannot read

interface Opaque {
  readonly name: string;
  readonly kind: UninspectableKind;
  readonly endpoint: EndpointId;
  readonly body: object;
}

const PDF = b64('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n');
const NOT_UTF8 = Buffer.from([0x41, 0x4b, 0xff, 0xfe, 0x49, 0x41]).toString('base64');
const OPAQUE: readonly Opaque[] = [
  { name: 'chat image by URL', kind: 'images', endpoint: 'openai.chat.completions', body: chat([{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }]) },
  { name: 'chat image data:image/png', kind: 'images', endpoint: 'openai.chat.completions', body: chat([{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }]) },
  { name: 'responses input_image by file id', kind: 'images', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_image', file_id: 'file-img', detail: 'high' }] }]) },
  { name: 'responses computer_call_output screenshot', kind: 'images', endpoint: 'openai.responses', body: responses([{ type: 'computer_call_output', call_id: 'cc', output: { type: 'computer_screenshot', image_url: 'data:image/png;base64,iVBORw0KGgo=' } }]) },
  { name: 'anthropic image base64 png', kind: 'images', endpoint: 'anthropic.messages', body: messages([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }]) },
  { name: 'anthropic image inside a tool_result', kind: 'images', endpoint: 'anthropic.messages', body: messages([{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'screenshot:' }, { type: 'image', source: { type: 'url', url: 'https://example.com/s.png' } }] }]) },
  { name: 'anthropic image inside a content-source document', kind: 'images', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'content', content: [{ type: 'text', text: 'p1' }, { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } }] } }]) },
  { name: 'anthropic document: base64 PDF', kind: 'documents', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF } }]) },
  { name: 'chat file: data:application/pdf', kind: 'documents', endpoint: 'openai.chat.completions', body: chat([{ type: 'file', file: { filename: 'report.pdf', file_data: `data:application/pdf;base64,${PDF}` } }]) },
  { name: 'responses input_file: raw base64 named .docx', kind: 'documents', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_file', filename: 'plan.docx', file_data: b64('PK\u0003\u0004 not really a zip') }] }]) },
  { name: 'a PDF labelled text/plain', kind: 'documents', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: PDF } }]) },
  { name: 'text/plain data that is not UTF-8', kind: 'documents', endpoint: 'openai.chat.completions', body: chat([{ type: 'file', file: { filename: 'x.txt', file_data: `data:text/plain;base64,${NOT_UTF8}` } }]) },
  { name: 'text in another charset', kind: 'documents', endpoint: 'openai.chat.completions', body: chat([{ type: 'file', file: { filename: 'x.txt', file_data: `data:text/plain;charset=utf-16le;base64,${Buffer.from('AKIA secret', 'utf16le').toString('base64')}` } }]) },
  { name: 'text-labelled data under a binary file name', kind: 'documents', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_file', filename: 'scan.pdf', file_data: `data:text/plain;base64,${b64('plain words')}` }] }]) },
  { name: 'base64 with padding inside (read differently by different decoders)', kind: 'documents', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: `${b64('ab')}${b64('hidden')}` } }]) },
  { name: 'chat file by file id', kind: 'files', endpoint: 'openai.chat.completions', body: chat([{ type: 'file', file: { file_id: 'file-abc' } }]) },
  { name: 'responses input_file by URL', kind: 'files', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_file', file_url: 'https://example.com/a.pdf' }] }]) },
  { name: 'responses input_file by file id', kind: 'files', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_file', file_id: 'file-abc' }] }]) },
  { name: 'anthropic document by URL', kind: 'files', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'url', url: 'https://example.com/a.pdf' } }]) },
  { name: 'anthropic document by file id', kind: 'files', endpoint: 'anthropic.messages', body: messages([{ type: 'document', source: { type: 'file', file_id: 'file_011' } }]) },
  { name: 'anthropic container_upload', kind: 'files', endpoint: 'anthropic.messages', body: messages([{ type: 'container_upload', file_id: 'file_011' }]) },
  { name: 'chat input_audio', kind: 'audio', endpoint: 'openai.chat.completions', body: chat([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }]) },
  { name: 'responses input_audio', kind: 'audio', endpoint: 'openai.responses', body: responses([{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'mp3' } }] }]) },
];

const APPROVAL = 'approval: { approvers: [security] }';

describe('parts the gateway cannot read follow the uninspectable setting', () => {
  for (const part of OPAQUE) {
    it(`${part.endpoint} — ${part.name} (${part.kind}): allow, block and require_approval`, () => {
      const reading = read(part);
      const withSetting = (action: string): PolicyEvaluation => evaluate(compile(`version: 1\n${APPROVAL}\nuninspectable:\n  ${part.kind}: ${action}\n`), part.endpoint, reading);
      const defaults = evaluate(compile('version: 1\n'), part.endpoint, reading);
      assert.equal(defaults.action, 'allow', 'left out, every kind is allowed');
      assert.equal(withSetting('allow').action, 'allow');

      const blocked = withSetting('block');
      assert.deepEqual([blocked.action, blocked.ruleId], ['block', `uninspectable.${part.kind}`]);
      assert.match(blocked.reason, /cannot inspect|cannot read as text|does not fetch/);

      const held = withSetting('require_approval');
      assert.deepEqual([held.action, held.ruleId], ['require_approval', `uninspectable.${part.kind}`]);

      // Another kind's setting does not touch it.
      const other = part.kind === 'audio' ? 'images' : 'audio';
      assert.equal(evaluate(compile(`version: 1\nuninspectable: { ${other}: block }\n`), part.endpoint, reading).action, 'allow');
    });
  }

  it('a text document is inspected, not an uninspectable part: documents: block does not refuse it', () => {
    const policy = compile('version: 1\nuninspectable: { images: block, documents: block, files: block, audio: block }\n');
    for (const variant of VARIANTS.filter((v) => !v.name.includes('file name') && !v.name.includes('title') && !v.name.includes('context'))) {
      const evaluation = evaluate(policy, variant.endpoint, read({ endpoint: variant.endpoint, body: variant.body(ORDINARY) }));
      assert.equal(evaluation.action, 'allow', variant.name);
    }
  });

  it('the stricter outcome wins: an allow rule does not lift a block; a blocking rule stands before a hold; one record per kind', () => {
    const reading = read({ endpoint: 'anthropic.messages', body: messages([{ type: 'text', text: 'look' }, { type: 'image', source: { type: 'url', url: 'https://x/a.png' } }, { type: 'image', source: { type: 'url', url: 'https://x/b.png' } }, { type: 'document', source: { type: 'url', url: 'https://x/c.pdf' } }]) });
    const allowRule = compile(`version: 1\nuninspectable: { images: block, files: require_approval }\n${APPROVAL}\nrules:\n  - { id: trusted, match: { groups: [eng] }, action: allow }\n`);
    const e1 = evaluate(allowRule, 'anthropic.messages', reading);
    assert.deepEqual([e1.action, e1.ruleId], ['block', 'uninspectable.images']);
    assert.deepEqual(e1.decisions.map((d) => `${d.ruleId}:${d.action}:${d.effect}`), ['trusted:allow:enforced', 'uninspectable.images:block:enforced', 'uninspectable.files:require_approval:superseded']);
    assert.match(e1.reason, /2 images/);

    const blockRule = compile(`version: 1\nuninspectable: { files: require_approval }\n${APPROVAL}\nrules:\n  - { id: no-looking, match: { keywords: [look] }, action: block }\n`);
    const e2 = evaluate(blockRule, 'anthropic.messages', reading);
    assert.deepEqual([e2.action, e2.ruleId], ['block', 'no-looking']);
    assert.equal(e2.decisions.find((d) => d.ruleId === 'uninspectable.files')?.effect, 'superseded');

    const defaultBlock = compile('version: 1\ndefault_action: block\nuninspectable: { files: require_approval }\n');
    const e3 = evaluate(defaultBlock, 'anthropic.messages', reading);
    assert.deepEqual([e3.action, e3.ruleId], ['block', 'default']);

    const holdOnly = compile('version: 1\nuninspectable: { files: require_approval }\n');
    const e4 = evaluate(holdOnly, 'anthropic.messages', reading);
    assert.deepEqual([e4.action, e4.ruleId], ['require_approval', 'uninspectable.files']);
    assert.deepEqual(e4.decisions.map((d) => d.ruleId), ['uninspectable.files'], 'the default did not apply, so it is not recorded');
  });

  it('a hold is approved by the setting\'s approvers, else the policy\'s', () => {
    const own = parsePolicyText('version: 1\napproval: { approvers: [security] }\nuninspectable:\n  documents: require_approval\n  approval: { approvers: [legal], required: 2 }\n', 'p.yaml').document;
    assert.deepEqual(approvalFor(own, 'uninspectable.documents')?.approvers, ['legal']);
    assert.equal(approvalFor(own, 'uninspectable.documents')?.required, 2);
    const shared = parsePolicyText('version: 1\napproval: { approvers: [security] }\nuninspectable: { documents: require_approval }\n', 'p.yaml').document;
    assert.deepEqual(approvalFor(shared, 'uninspectable.documents')?.approvers, ['security']);
    assert.equal(approvalFor(parsePolicyText('version: 1\nuninspectable: { documents: require_approval }\n', 'p.yaml').document, 'uninspectable.documents'), null);
  });

  it('the setting is validated like the rest of the file: values, kinds, and the ids it reserves', () => {
    const problems = (yaml: string): string => {
      try {
        parsePolicyText(yaml, 'p.yaml');
      } catch (error) {
        assert.ok(isAigovError(error) && error.code === 'AIGOV_E_POLICY_INVALID', String(error));
        return error.message;
      }
      return '';
    };
    assert.match(problems('version: 1\nuninspectable: { images: deny }\n'), /uninspectable\.images/);
    assert.match(problems('version: 1\nuninspectable: { video: block }\n'), /uninspectable.*video|video/);
    assert.match(problems('version: 1\nrules:\n  - { id: uninspectable.images, match: { keywords: [x] }, action: block }\n'), /rules\[0\]\.id.*reserved/);
    assert.match(problems('version: 1\nuninspectable: { approval: { approvers: [] } }\n'), /uninspectable\.approval\.approvers/);
    assert.equal(problems('version: 1\nuninspectable: { images: allow, documents: block, files: require_approval, audio: block }\n'), '');
  });
});

// ---------------------------------------------------------------------------------------------
// Through a real gateway

describe('through the gateway: a blocked part never reaches the upstream', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-parts-'));
    const file = join(dir, 'policy.yaml');
    await writeFile(file, `version: 1
approval: { approvers: [security] }
uninspectable: { documents: block, files: require_approval }
rules:${BLOCK_RULES}
  - { id: mask-cards, match: { detectors: [CREDIT_CARD] }, action: mask_request, mode: shadow }
  - { id: mask-emails, match: { detectors: [EMAIL_ADDRESS] }, action: mask_request }
`);
    h = await startHarness({ policyFile: file });
    h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses'));
    h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const openai = (): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
  const anthropic = (): Anthropic => new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 });
  const textDoc = (text: string) => ({ type: 'document' as const, source: { type: 'base64', media_type: 'text/plain', data: b64(text) } as unknown as Anthropic.Base64PDFSource });

  it('a secret in a base64 text document, a file part or a response schema: refused in the provider\'s shape naming the rule, nothing forwarded', async () => {
    const before = h.upstream.received.length;
    const chatError = await openai()
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'summarize' }, { type: 'file', file: { filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(about(AWS_KEY))}` } }] }] })
      .catch((e: unknown) => e);
    assert.ok(chatError instanceof OpenAI.PermissionDeniedError, String(chatError));
    assert.match(chatError.message, /no-aws-keys/);
    assert.ok(!chatError.message.includes(AWS_KEY));

    const responsesError = await openai()
      .responses.create({ model: 'gpt-4o', input: 'fill it', text: { format: { type: 'json_schema', name: 'form', schema: { type: 'object', properties: { card: { type: 'string', description: about(CARD) } } } } } })
      .catch((e: unknown) => e);
    assert.ok(responsesError instanceof OpenAI.PermissionDeniedError, String(responsesError));
    assert.match(responsesError.message, /no-cards/);

    const anthropicError = await anthropic()
      .messages.create({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: [textDoc(about(KEYWORD)), { type: 'text', text: 'summarize' }] }] })
      .catch((e: unknown) => e);
    assert.ok(anthropicError instanceof Anthropic.PermissionDeniedError, String(anthropicError));
    assert.match(anthropicError.message, /no-codename/);

    const pdfError = await anthropic()
      .messages.create({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF } }] }] })
      .catch((e: unknown) => e);
    assert.ok(pdfError instanceof Anthropic.PermissionDeniedError, String(pdfError));
    assert.match(pdfError.message, /uninspectable\.documents/);
    assert.match(pdfError.message, /cannot read as text/);

    assert.equal(h.upstream.received.length, before, 'no blocked request reached the upstream');

    // The refused call is recorded without the secret: the document was redacted and re-encoded.
    await h.gateway.store.flush();
    const calls = (await Promise.all((await h.gateway.store.listSessions({ limit: 20 })).map((s) => h.gateway.store.listCalls(s.sessionId)))).flat();
    const chatCall = calls.find((c) => c.endpoint === 'openai.chat.completions' && c.status === 'blocked')!;
    const recorded = (JSON.parse(chatCall.requestBody) as { messages: { content: { file?: { file_data: string } }[] }[] }).messages[0]!.content[1]!.file!.file_data;
    const decoded = Buffer.from(recorded.replace(/^data:text\/plain;base64,/, ''), 'base64').toString('utf8');
    assert.ok(!decoded.includes(AWS_KEY) && decoded.includes('please review'), decoded);
  });

  it('a large text document is scanned on a policy worker like a large prompt: the key at its end is found', async () => {
    const before = h.upstream.received.length;
    const big = `${'Quarterly notes, nothing secret here.\n'.repeat(4000)}aws: ${AWS_KEY}\n`;
    assert.ok(big.length > 128 * 1024);
    const error = await openai()
      .responses.create({ model: 'gpt-4o', input: [{ role: 'user', content: [{ type: 'input_file', filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(big)}` }] }] })
      .catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.match(error.message, /no-aws-keys/);
    assert.equal(h.upstream.received.length, before);
  });

  it('ordinary documents go upstream; an email in a base64 document goes up masked, still base64', async () => {
    const before = h.upstream.received.length;
    await openai().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'file', file: { filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(ORDINARY)}` } }] }] });
    await anthropic().messages.create({ model: 'claude-test', max_tokens: 50, messages: [{ role: 'user', content: [textDoc(`write to jane.doe@example.com: ${ORDINARY}`)] }] });
    assert.equal(h.upstream.received.length, before + 2);
    const chatSent = JSON.parse(h.upstream.received.at(-2)!.body) as { messages: { content: { file: { file_data: string } }[] }[] };
    assert.equal(chatSent.messages[0]!.content[0]!.file.file_data, `data:text/plain;base64,${b64(ORDINARY)}`, 'untouched: the client\'s bytes');
    const sent = JSON.parse(h.upstream.received.at(-1)!.body) as { messages: { content: { source: { data: string } }[] }[] };
    assert.equal(Buffer.from(sent.messages[0]!.content[0]!.source.data, 'base64').toString('utf8'), `write to [EMAIL]: ${ORDINARY}`);
  });

  it('a file by id under files: require_approval is held for the approvers, naming the setting; nothing is forwarded while it waits', async () => {
    const before = h.upstream.received.length;
    const controller = new AbortController();
    const held = openai()
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'read this plan' }, { type: 'file', file: { file_id: 'file-abc', filename: 'plan.pdf' } }] }] }, { signal: controller.signal })
      .catch((e: unknown) => e);
    let mine: { rule: { id: string }; approvers: { groups: string[] }; state: string; preview: string }[] = [];
    for (let i = 0; i < 100 && mine.length === 0; i++) {
      const res = await fetch(`${h.url}/aigov/v1/approvals?scope=mine`, { headers: { authorization: `Bearer ${h.token}` } });
      mine = ((await res.json()) as { approvals: typeof mine }).approvals.filter((a) => a.state === 'pending');
      if (mine.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(mine[0]?.rule.id, 'uninspectable.files');
    assert.deepEqual(mine[0]?.approvers.groups, ['security']);
    assert.match(mine[0]?.preview ?? '', /read this plan \[file by id or URL plan\.pdf\]/);
    assert.equal(h.upstream.received.length, before, 'held, not forwarded');
    controller.abort();
    assert.ok((await held) instanceof OpenAI.APIUserAbortError);
  });
});
