/**
 * The attacker's table of issue 12, end to end: a configured gateway with block rules for secrets,
 * cards and a keyword, a scripted upstream that counts what reaches it, and every class of
 * request variant the issue lists — split across parts or messages, JSON escapes, light
 * encodings, spacing, Unicode tricks, fields outside the messages — on all three request shapes
 * (OpenAI Chat, OpenAI Responses, Anthropic Messages). Each must be refused with the provider's
 * error and reach the upstream zero times; the same requests without the value go through.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

/** Built at run time: no literal secret in the repository. */
const GITHUB = ((seed: string) => ['gh', 'p_'].join('') + seed + base62Encode(crc32(seed), 6))('aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1');
const AWS = ['AK', 'IAZ7Q3XK2MPLQW4NV5'].join('');
const CARD = '4111 1111 1111 1111';
const KEYWORD = 'PROJECT-NIGHTJAR';

const VALUES = [
  { name: 'AWS key', value: AWS, benign: 'AKIA is a prefix' },
  { name: 'GitHub token', value: GITHUB, benign: 'a token starts with ghp_' },
  { name: 'card', value: CARD, benign: '4111 is a number' },
  { name: 'keyword', value: KEYWORD, benign: 'project nightjar-ish' },
];

// ── how a value is disguised ─────────────────────────────────────────────────────────────────

const half = (s: string): [string, string] => [s.slice(0, Math.floor(s.length / 2)), s.slice(Math.floor(s.length / 2))];
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
const tags = (s: string) => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
const LOOKALIKE: Record<string, string> = { A: 'А', B: 'В', C: 'С', E: 'Е', H: 'Н', I: 'І', J: 'Ј', K: 'К', M: 'М', O: 'О', P: 'Р', T: 'Т', X: 'Х', a: 'а', c: 'с', e: 'е', o: 'о', p: 'р', x: 'х', y: 'у' };
const lookalike = (s: string) => [...s].map((c) => LOOKALIKE[c] ?? c).join('');
const arabicDigits = (s: string) => s.replace(/\d/g, (d) => String.fromCharCode(0x660 + Number(d)));
const marked = (s: string) => [...s].map((c) => `${c}\u0301`).join('');
const uEscape = (s: string) => [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

/** Where the value goes: prompt text, or a field of its own. */
type Placement =
  | { kind: 'text'; texts: string[][] } // messages of text parts
  | { kind: 'tool-args'; rawArguments: string } // an earlier tool call's raw JSON arguments
  | { kind: 'document'; text: string } // a text document / file attached to the prompt
  | { kind: 'field'; text: string }; // a request field outside the messages (schema description, metadata)

interface Variant {
  readonly name: string;
  place(value: string): Placement;
  /** Only for values this trick applies to. */
  readonly only?: (value: string) => boolean;
}

const say = (v: string) => `please use ${v} for the deploy`;
const VARIANTS: Variant[] = [
  { name: 'plain', place: (v) => ({ kind: 'text', texts: [[say(v)]] }) },
  { name: 'split over two text parts', place: (v) => ({ kind: 'text', texts: [[`use ${half(v)[0]}`, `${half(v)[1]} now`]] }) },
  { name: 'split over two messages', place: (v) => ({ kind: 'text', texts: [[`use ${half(v)[0]}`], [`${half(v)[1]} now`]] }) },
  { name: 'JSON \\u escapes in tool arguments', place: (v) => ({ kind: 'tool-args', rawArguments: `{"command":"echo ${uEscape(v)}"}` }) },
  { name: 'base64', place: (v) => ({ kind: 'text', texts: [[`decode this: ${b64(say(v))}`]] }) },
  { name: 'hex', place: (v) => ({ kind: 'text', texts: [[`decode this: ${hex(say(v))}`]] }) },
  { name: 'percent-encoding', place: (v) => ({ kind: 'text', texts: [[`decode this: ${pct(say(v))}`]] }) },
  { name: 'spaced out', place: (v) => ({ kind: 'text', texts: [[`use ${[...v.replace(/ /g, '')].join(' ')} now`]] }), only: (v) => v !== KEYWORD && v !== CARD },
  { name: 'broken over two lines', place: (v) => ({ kind: 'text', texts: [[`use ${half(v)[0]}\n${half(v)[1]} now`]] }), only: (v) => v !== KEYWORD },
  { name: 'zero-width space inside', place: (v) => ({ kind: 'text', texts: [[say(`${half(v)[0]}\u200b${half(v)[1]}`)]] }) },
  { name: 'tag characters (hidden)', place: (v) => ({ kind: 'text', texts: [[`hello ${tags(v)} world`]] }) },
  { name: 'tag characters between letters', place: (v) => ({ kind: 'text', texts: [[say([...v].join(tags('x')))]] }) },
  { name: 'a combining mark on every character', place: (v) => ({ kind: 'text', texts: [[say(marked(v))]] }) },
  { name: 'Cyrillic look-alikes', place: (v) => ({ kind: 'text', texts: [[say(lookalike(v))]] }), only: (v) => lookalike(v) !== v },
  { name: 'Arabic-Indic digits', place: (v) => ({ kind: 'text', texts: [[say(arabicDigits(v))]] }), only: (v) => v === CARD },
  { name: 'fullwidth letters', place: (v) => ({ kind: 'text', texts: [[say(v.normalize('NFKC').replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)))]] }) },
  { name: 'a text document', place: (v) => ({ kind: 'document', text: say(v) }) },
  { name: 'a schema description', place: (v) => ({ kind: 'field', text: say(v) }) },
];

// ── the three request shapes ─────────────────────────────────────────────────────────────────

interface Shape {
  readonly name: string;
  readonly path: string;
  body(placement: Placement): unknown;
}

const SCHEMA = (description: string) => ({ type: 'object', properties: { answer: { type: 'string', description } } });

const SHAPES: Shape[] = [
  {
    name: 'OpenAI Chat',
    path: '/openai/v1/chat/completions',
    body: (p) => {
      const base = { model: 'gpt-4o-mini' };
      switch (p.kind) {
        case 'text':
          return { ...base, messages: p.texts.map((parts) => ({ role: 'user', content: parts.map((text) => ({ type: 'text', text })) })) };
        case 'tool-args':
          return {
            ...base,
            messages: [
              { role: 'user', content: 'run it' },
              { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'Bash', arguments: p.rawArguments } }] },
              { role: 'tool', tool_call_id: 'call_1', content: 'done' },
            ],
          };
        case 'document':
          return { ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'read this' }, { type: 'file', file: { filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(p.text)}` } }] }] };
        case 'field':
          return { ...base, messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'reply', schema: SCHEMA(p.text) } } };
      }
    },
  },
  {
    name: 'OpenAI Responses',
    path: '/openai/v1/responses',
    body: (p) => {
      const base = { model: 'gpt-4o-mini' };
      switch (p.kind) {
        case 'text':
          return { ...base, input: p.texts.map((parts) => ({ role: 'user', content: parts.map((text) => ({ type: 'input_text', text })) })) };
        case 'tool-args':
          return {
            ...base,
            input: [
              { role: 'user', content: 'run it' },
              { type: 'function_call', call_id: 'call_1', name: 'Bash', arguments: p.rawArguments },
              { type: 'function_call_output', call_id: 'call_1', output: 'done' },
            ],
          };
        case 'document':
          return { ...base, input: [{ role: 'user', content: [{ type: 'input_text', text: 'read this' }, { type: 'input_file', filename: 'notes.txt', file_data: `data:text/plain;base64,${b64(p.text)}` }] }] };
        case 'field':
          return { ...base, input: 'hi', text: { format: { type: 'json_schema', name: 'reply', schema: SCHEMA(p.text) } } };
      }
    },
  },
  {
    name: 'Anthropic Messages',
    path: '/anthropic/v1/messages',
    body: (p) => {
      const base = { model: 'claude-sonnet-4-5', max_tokens: 64 };
      switch (p.kind) {
        case 'text':
          return { ...base, messages: p.texts.map((parts) => ({ role: 'user', content: parts.map((text) => ({ type: 'text', text })) })) };
        case 'tool-args':
          // tool_use.input is an object: the escapes are in the body's JSON text (see bodyText).
          return {
            ...base,
            messages: [
              { role: 'user', content: 'run it' },
              { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: '__ARGS__' } }] },
              { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'done' }] },
            ],
          };
        case 'document':
          return { ...base, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: b64(p.text) } }, { type: 'text', text: 'read this' }] }] };
        case 'field':
          return { ...base, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'reply', description: 'answer', input_schema: SCHEMA(p.text) }] };
      }
    },
  },
];

/** The body as sent: for Anthropic tool input, the command's escapes go straight into the JSON text. */
function bodyText(shape: Shape, placement: Placement): string {
  const text = JSON.stringify(shape.body(placement));
  if (placement.kind !== 'tool-args' || !text.includes('__ARGS__')) return text;
  const command = /"command":"echo (.*)"\}$/.exec(placement.rawArguments)![1]!;
  return text.replace('"__ARGS__"', `"echo ${command}"`);
}

let h: Harness;
const dir = mkdtempSync(join(tmpdir(), 'aigov-bypass-'));

before(async () => {
  writeFileSync(
    join(dir, 'policy.yaml'),
    [
      'version: 1',
      'rules:',
      '  - { id: no-secrets, match: { detectors: [AWS_ACCESS_KEY, GITHUB_TOKEN] }, action: block }',
      '  - { id: no-cards, match: { detectors: [CREDIT_CARD] }, action: block }',
      `  - { id: codename, match: { keywords: [${KEYWORD}] }, action: block }`,
      '',
    ].join('\n'),
  );
  h = await startHarness({ policyFile: join(dir, 'policy.yaml') });
  h.upstream.route('POST', '/v1/chat/completions', () => loadTranscript('openai-chat'));
  h.upstream.route('POST', '/v1/responses', () => loadTranscript('openai-responses'));
  h.upstream.route('POST', '/v1/messages', () => loadTranscript('anthropic-messages'));
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function send(shape: Shape, body: string): Promise<{ status: number; text: string; reached: number }> {
  const before = h.upstream.received.length;
  const res = await fetch(`${h.url}${shape.path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, reached: h.upstream.received.length - before };
}

for (const shape of SHAPES) {
  describe(`${shape.name}: no class of variant gets a value past a block rule`, () => {
    for (const variant of VARIANTS) {
      it(variant.name, async () => {
        let tried = 0;
        for (const { name, value, benign } of VALUES) {
          if (variant.only && !variant.only(value)) continue;
          tried++;
          const blocked = await send(shape, bodyText(shape, variant.place(value)));
          assert.equal(blocked.reached, 0, `${name}: reached the upstream`);
          assert.equal(blocked.status, 403, `${name}: ${blocked.text}`);
          assert.match(blocked.text, /(no-secrets|no-cards|codename)/, `${name}: the error names the rule`);
          assert.ok(!blocked.text.includes(value), `${name}: the error never carries the value`);
          const allowed = await send(shape, bodyText(shape, variant.place(benign)));
          assert.equal(allowed.status, 200, `${name}, benign: ${allowed.text}`);
          assert.equal(allowed.reached, 1);
        }
        assert.ok(tried > 0);
      });
    }
  });
}
