/**
 * The sessions CLI's pure helpers (time flags, prompt and answer extraction). The session
 * queries themselves are part of the store contract (test/support/store-contract.ts), run on
 * SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { answerText } from '../src/cli/sessions-format.ts';
import { requestView } from '../src/cli/request-view.ts';
import { parseTimeFlag } from '../src/cli/flag-values.ts';
import { call as callView } from './support/session-fixtures.ts';

describe('sessions CLI helpers', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  test('time flags: durations back from now, ISO dates and epoch ms; anything else is null', () => {
    const cases: [string, number | null][] = [
      ['2h', now - 7_200_000],
      ['30m', now - 1_800_000],
      ['7d', now - 7 * 86_400_000],
      ['1w', now - 7 * 86_400_000],
      ['90s', now - 90_000],
      ['2026-11-24', Date.parse('2026-11-24')],
      ['2026-11-24T10:00:00Z', Date.parse('2026-11-24T10:00:00Z')],
      ['1764000000000', 1_764_000_000_000],
      ['yesterday', null],
      ['2h ago', null],
      ['-2h', null],
      ['', null],
      ['2026-13-45', null],
    ];
    for (const [text, want] of cases) assert.equal(parseTimeFlag(text, now), want, text);
  });

  test('the last user message and the answer text, per provider shape', () => {
    const lastUser = (endpoint: string, body: unknown): string | null => requestView({ endpoint, request_body: typeof body === 'string' ? body : JSON.stringify(body) }, null).lastUser;
    assert.equal(lastUser('openai.chat.completions', { model: 'm', messages: [{ role: 'user', content: 'first' }, { role: 'assistant', content: 'x' }, { role: 'user', content: 'second' }] }), 'second');
    assert.equal(lastUser('openai.chat.completions', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'https://x' } }, { type: 'text', text: 'b' }] }] }), 'a b');
    assert.equal(lastUser('anthropic.messages', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image', source: { type: 'url' } }, { type: 'text', text: 'b' }] }] }), 'a b');
    assert.equal(lastUser('openai.responses', { model: 'm', input: 'responses input' }), 'responses input');
    assert.equal(lastUser('openai.chat.completions', 'not json'), null);
    const chat = { endpoint: 'openai.chat.completions', stream: false, events: [] };
    const anthropic = { provider_kind: 'anthropic' as const, endpoint: 'anthropic.messages', stream: false, events: [] };
    assert.equal(answerText(callView('c', { ...chat, response_body: JSON.stringify({ choices: [{ message: { content: 'hi there' } }] }) })), 'hi there');
    assert.equal(answerText(callView('c', { ...anthropic, response_body: JSON.stringify({ content: [{ type: 'text', text: 'claude says' }] }) })), 'claude says');
    const sse = (data: unknown): { offset_ms: number; raw: string } => ({ offset_ms: 0, raw: `data: ${JSON.stringify(data)}\n\n` });
    assert.equal(answerText(callView('c', { events: [sse({ choices: [{ delta: { content: 'Hel' } }] }), sse({ choices: [{ delta: { content: 'lo' } }] }), { offset_ms: 1, raw: 'data: [DONE]\n\n' }] })), 'Hello');
    assert.equal(answerText(callView('c', { ...anthropic, stream: true, events: [{ offset_ms: 0, raw: `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi' } })}\n\n` }] })), 'Hi');
    assert.equal(answerText(callView('c', { response_body: null, events: [] })), null);
  });
});
