/**
 * The gateway's per-event work on a streamed answer, in process: for each upstream SSE event,
 * reading it into normalized events (usage, tool judging, recording) and rewriting its text under
 * mask_response — what the relay does between the SSE parser and the socket — and the SSE block
 * the store keeps. The policy is the real one (a mask_response rule on PII through
 * createPolicyHooks); the streams are word-by-word answers (~8 KB of text, one email or phone
 * number per ~250 characters) in each provider's format: Chat Completions, Anthropic Messages,
 * Responses.
 *
 *   node bench/stream-relay.ts                   (this checkout)
 *   node bench/stream-relay.ts --before DIR      (side by side with another checkout, e.g.
 *                                                 `git archive <commit> | tar -x -C DIR` plus a
 *                                                 node_modules link; its src/ is imported as is)
 *
 * Sides alternate within each of ROUNDS rounds; the table gives medians of the per-round µs per
 * event (wall clock, one core, the process doing nothing else).
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROUNDS = 9;
const STREAMS_PER_ROUND = 40;
const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const beforeAt = args.indexOf('--before');
const beforeDir = beforeAt === -1 ? null : path.resolve(args[beforeAt + 1] ?? '');

const POLICY = `version: 1
default_action: allow
rules:
  - id: mask-answer-pii
    match:
      detectors: [EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE]
    action: mask_response
`;

type Endpoint = 'openai.chat.completions' | 'anthropic.messages' | 'openai.responses';
interface Sse {
  event: string | null;
  id: string | null;
  data: string | null;
  comment: boolean;
  raw: string;
}

function words(): string[] {
  const out: string[] = [];
  const filler = 'the gateway reads each event once and writes it back only when its text changed so the answer'.split(' ');
  let n = 0;
  let chars = 0;
  while (chars < 8000) {
    const word = n % 40 === 39 ? (n % 80 === 79 ? 'jane.doe@example.com' : '+1 415 555 0100') : filler[n % filler.length]!;
    out.push(`${n === 0 ? '' : ' '}${word}`);
    chars += word.length + 1;
    n++;
  }
  return out;
}

function block(event: string | null, data: unknown): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

function stream(endpoint: Endpoint): string {
  const ws = words();
  if (endpoint === 'openai.chat.completions') {
    const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', system_fingerprint: 'fp_x' };
    return [
      block(null, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }),
      ...ws.map((w) => block(null, { ...base, choices: [{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }] })),
      block(null, { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }),
      block(null, { ...base, choices: [], usage: { prompt_tokens: 10, completion_tokens: ws.length, total_tokens: 10 + ws.length } }),
      block(null, '[DONE]'),
    ].join('');
  }
  if (endpoint === 'anthropic.messages') {
    return [
      block('message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude', content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 1 } } }),
      block('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      ...ws.map((w) => block('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } })),
      block('content_block_stop', { type: 'content_block_stop', index: 0 }),
      block('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: ws.length } }),
      block('message_stop', { type: 'message_stop' }),
    ].join('');
  }
  const text = ws.join('');
  let seq = 0;
  const e = (type: string, body: Record<string, unknown>): string => block(type, { type, sequence_number: seq++, ...body });
  const item = { id: 'msg_b', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', annotations: [], text }] };
  return [
    e('response.created', { response: { id: 'resp_b', status: 'in_progress', output: [] } }),
    e('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }),
    e('response.content_part.added', { item_id: 'msg_b', output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text: '' } }),
    ...ws.map((w) => e('response.output_text.delta', { item_id: 'msg_b', output_index: 0, content_index: 0, delta: w, logprobs: [] })),
    e('response.output_text.done', { item_id: 'msg_b', output_index: 0, content_index: 0, text, logprobs: [] }),
    e('response.content_part.done', { item_id: 'msg_b', output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text } }),
    e('response.output_item.done', { output_index: 0, item }),
    e('response.completed', { response: { id: 'resp_b', status: 'completed', output: [item], usage: { input_tokens: 10, output_tokens: ws.length, total_tokens: 10 + ws.length } } }),
  ].join('');
}

/** One checkout's relay work on one stream: returns the bytes it would send (to check the sides agree). */
type Relay = (endpoint: Endpoint, events: readonly Sse[]) => string;

async function load(root: string): Promise<Relay> {
  const im = (rel: string): Promise<Record<string, unknown>> => import(pathToFileURL(path.join(root, rel)).href) as Promise<Record<string, unknown>>;
  // Older checkouts (--before) name the registry ADAPTERS.
  const registry = (await im('src/providers/registry.ts')) as { CODECS?: Record<string, Record<string, (...a: unknown[]) => unknown>>; ADAPTERS?: Record<string, Record<string, (...a: unknown[]) => unknown>> };
  const CODECS = registry.CODECS ?? registry.ADAPTERS!;
  const { createPolicyHooks } = (await im('src/gateway/policy-hooks.ts')) as { createPolicyHooks: (source: { current(): unknown }) => { evaluateRequest(ctx: unknown): { rewriteResponse: { forRecord?: (s: string) => string } | null } } };
  const { parsePolicyText } = (await im('src/config/load-policy.ts')) as { parsePolicyText: (yaml: string, name: string) => { compiled: unknown } };
  const policy = parsePolicyText(POLICY, 'bench-policy.yaml').compiled;
  const hooks = createPolicyHooks({ current: () => policy });
  const rewriterFor = (endpoint: Endpoint): { forRecord?: (s: string) => string } => {
    const verdict = hooks.evaluateRequest({ callId: 'c', sessionId: 's', principal: { subject: 'alice', email: null, groups: [], issuer: 'i', clientId: null }, provider: 'p', endpoint, request: { endpoint, model: 'm', stream: true, messages: [{ role: 'user', parts: [{ type: 'text', text: 'hi' }] }], tools: [], inputs: [] } });
    return verdict.rewriteResponse!;
  };
  const adapterOf = (endpoint: Endpoint): Record<string, (...a: unknown[]) => unknown> => CODECS[endpoint.split('.')[0]!]!;
  const record = (rewriter: { forRecord?: (s: string) => string }, raw: string): string => (rewriter.forRecord ? rewriter.forRecord(raw) : raw);
  if (typeof adapterOf('openai.responses').streamReader === 'function') {
    // Codecs that parse each event once.
    return (endpoint, events) => {
      const rewriter = rewriterFor(endpoint);
      const reader = adapterOf(endpoint).streamReader!(endpoint, rewriter) as { read(e: Sse): { events: unknown[]; out: { sse(): Sse }[] }; end(): { sse(): Sse }[] };
      let out = '';
      let kept = 0;
      for (const event of events) {
        const read = reader.read(event);
        kept += read.events.length;
        for (const item of read.out) {
          const raw = item.sse().raw;
          out += raw;
          kept += record(rewriter, raw).length;
        }
      }
      for (const item of reader.end()) out += item.sse().raw;
      return kept > 0 ? out : '';
    };
  }
  // The former shape: the adapter parses each event, then the stream rewriter parses it again.
  const { createStreamRewriter } = (await im('src/gateway/text-rewrite.ts')) as { createStreamRewriter: (endpoint: string, rewriter: unknown) => { event(e: Sse): Sse[]; end(): Sse[] } };
  return (endpoint, events) => {
    const rewriter = rewriterFor(endpoint);
    const adapter = adapterOf(endpoint);
    const rewrite = createStreamRewriter(endpoint, rewriter);
    let out = '';
    let kept = 0;
    for (const event of events) {
      kept += (adapter.parseStreamEvent!(endpoint, event) as unknown[]).length;
      for (const sent of rewrite.event(event)) {
        out += sent.raw;
        kept += record(rewriter, sent.raw).length;
      }
    }
    for (const sent of rewrite.end()) out += sent.raw;
    return kept > 0 ? out : '';
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { SseParser } = (await import(pathToFileURL(path.join(ROOT, 'src/core/sse.ts')).href)) as { SseParser: new () => { push(s: string): Sse[]; end(): Sse[] } };
  const sides = [...(beforeDir ? [{ name: 'before', relay: await load(beforeDir) }] : []), { name: beforeDir ? 'after' : 'this checkout', relay: await load(ROOT) }];
  const endpoints: Endpoint[] = ['openai.chat.completions', 'anthropic.messages', 'openai.responses'];
  const rows: string[] = [];
  for (const endpoint of endpoints) {
    const parser = new SseParser();
    const events = [...parser.push(stream(endpoint)), ...parser.end()];
    // The sides must send the same thing (the bench measures the same work).
    const outs = sides.map((s) => s.relay(endpoint, events));
    const texts = outs.map((o) => o.replace(/data: (\{.*\})/g, (_, json: string) => JSON.stringify(JSON.parse(json))));
    if (texts.some((t) => t.length === 0)) throw new Error(`${endpoint}: a side sent nothing`);
    if (texts.some((t) => t !== texts[0])) throw new Error(`${endpoint}: the sides sent different answers`);
    for (let i = 0; i < 300; i++) for (const s of sides) s.relay(endpoint, events);
    const perEvent = new Map<string, number[]>(sides.map((s) => [s.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < STREAMS_PER_ROUND; i++) side.relay(endpoint, events);
        perEvent.get(side.name)!.push(Number(process.hrtime.bigint() - t0) / 1000 / (STREAMS_PER_ROUND * events.length));
      }
    }
    rows.push(`| ${endpoint} (${events.length} events) | ${sides.map((s) => `${median(perEvent.get(s.name)!).toFixed(2)} µs`).join(' | ')} |${sides.length === 2 ? ` ${(median(perEvent.get('after')!) / median(perEvent.get('before')!)).toFixed(2)}× |` : ''}`);
  }
  const header = `| stream | ${sides.map((s) => `${s.name}: µs per event`).join(' | ')} |${sides.length === 2 ? ' after / before |' : ''}`;
  const rule = `|---|${sides.map(() => '---|').join('')}${sides.length === 2 ? '---|' : ''}`;
  process.stdout.write(`${[header, rule, ...rows].join('\n')}\n\n${ROUNDS} rounds × ${STREAMS_PER_ROUND} streams per side, sides alternating, medians of the per-round figures; mask_response on PII (real detectors, StreamMasker per channel). ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus()[0]?.model ?? ''}, 1-min load ${os.loadavg()[0]!.toFixed(2)}.\n`);
}

await main();
