/**
 * SessionDetails for the replay tests, built from the recorded upstream transcripts in
 * test/fixtures/transcripts: a streamed body is cut into its SSE blocks (as the gateway records
 * them) and each block gets an offset, so the replay works on real provider bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SseParser } from '../../src/core/sse.ts';
import { SessionDetailSchema, type CallView, type SessionDetail, type StreamEventView } from '../../src/protocol/sessions.ts';

const TRANSCRIPTS = join(import.meta.dirname, '..', 'fixtures', 'transcripts');

export const T0 = Date.parse('2030-01-01T12:00:00Z');
export const iso = (ms: number): string => new Date(ms).toISOString();

/** The SSE blocks of a recorded transcript's body. */
export function transcriptBlocks(name: string): string[] {
  const { body } = JSON.parse(readFileSync(join(TRANSCRIPTS, `${name}.json`), 'utf8')) as { body: string };
  const parser = new SseParser();
  return [...parser.push(body), ...parser.end()].map((e) => e.raw);
}

export function transcriptBody(name: string): string {
  return (JSON.parse(readFileSync(join(TRANSCRIPTS, `${name}.json`), 'utf8')) as { body: string }).body;
}

/** Events at the given offsets (or firstMs, firstMs + stepMs, …). */
export function eventsAt(blocks: readonly string[], offsets: readonly number[] | { firstMs: number; stepMs: number }): StreamEventView[] {
  return blocks.map((raw, i) => ({ raw, offset_ms: Array.isArray(offsets) ? (offsets[i] ?? 0) : (offsets as { firstMs: number; stepMs: number }).firstMs + i * (offsets as { stepMs: number }).stepMs }));
}

/** An SSE block of an OpenAI chat chunk with `content`. */
export function chatChunk(content: string): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
}

export function call(id: string, overrides: Partial<CallView> = {}): CallView {
  const startedAt = overrides.started_at ?? iso(T0);
  return {
    id,
    session_id: 'ses_replay',
    user: { sub: 'alice', email: 'alice@aigov.dev', groups: ['developers'] },
    client: { user_agent: 'OpenAI/JS 5.0', sdk: 'openai-node' },
    provider: 'openai',
    provider_kind: 'openai',
    endpoint: 'openai.chat.completions',
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    stream: true,
    status: 'completed',
    http_status: 200,
    started_at: startedAt,
    ended_at: startedAt,
    first_byte_ms: 100,
    latency_ms: null,
    usage: null,
    error: null,
    decisions: [],
    approvals: [],
    request_body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `question of ${id}` }] }),
    response_body: null,
    events: [],
    ...overrides,
  };
}

/** A session of these calls, validated with the wire schema (what the CLI receives). */
export function session(calls: CallView[]): SessionDetail {
  const last = calls.at(-1)?.started_at ?? iso(T0);
  return SessionDetailSchema.parse({
    session: { id: 'ses_replay', user: { sub: 'alice', email: 'alice@aigov.dev' }, started_at: calls[0]?.started_at ?? iso(T0), last_call_at: last, call_count: calls.length },
    calls,
  });
}
