/**
 * Stage 6, a streamed answer: relayed event by event as the codec reads it (masking, tool-call
 * judging; held from the first tool call until every call is judged), within the answer's limits;
 * the terminal event is sent only once the result is committed (stage 7).
 */
import { AigovError } from '../../core/errors.ts';
import { SseParser, type SseEvent } from '../../core/sse.ts';
import type { StreamEventRecord } from '../../store/recording-store.ts';
import { pickResponseHeaders } from '../../providers/codec.ts';
import type { StreamItem } from '../../providers/channels.ts';
import { createToolCallReplacer, type TimedEvent } from '../../providers/tool-call-replace.ts';
import { settleToolCalls } from '../tool-call-settle.ts';
import { MAX_HELD_TOOL_CALL_BYTES } from '../tool-gate.ts';
import { classifyUpstreamError } from '../upstream.ts';
import { AnswerLimits } from './answer-limits.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';
import type { ResponseTransform } from './response-transform.ts';
import type { UpstreamAnswer } from './upstream-answer.ts';

export async function relayStream(call: CallState, upstream: UpstreamAnswer, transform: ResponseTransform): Promise<void> {
  const { adapter, route, provider } = call.target;
  if (!call.res.headersSent) {
    call.writeHead(upstream.statusCode, {
      ...pickResponseHeaders(upstream.headers),
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    call.res.flushHeaders();
  }
  const parser = new SseParser();
  const decoder = new TextDecoder('utf-8');
  let terminal = false;
  const gate = call.toolGate();
  type Refused = { readonly ruleId: string; readonly reason: string };
  // Set inside handleEvents (a closure): declared so TypeScript does not narrow it to null.
  let refused = null as Refused | null;
  // Set inside handleEvents too: an upstream event the gateway cannot relay (data that is not the
  // provider's JSON, a type it does not know, a provider key it cannot scrub), and why.
  let unreadable = null as string | null;
  let dropped: string | null = null;
  const secrets = transform.secrets;
  // From the first tool call on (when policy may refuse one), events are held until every call is judged.
  const held: TimedEvent[] = [];
  let heldChars = 0;
  // The terminal event and everything after it: sent only once the call's result is committed,
  // so a client that sees `[DONE]` / `message_stop` / `response.completed` has a complete record.
  const finalEvents: TimedEvent[] = [];
  // Only whole events are written: a partial event is never sent, so if the upstream dies
  // mid-event the client still gets a well-formed stream ending in the provider's error event.
  const limits = new AnswerLimits(call.deps.limits);
  // The codec parses each event once: normalized events, masking and tool-call replacement share it.
  const reader = adapter.streamReader(route.endpoint, transform.rewriter, transform.unknown);
  /** Upstream events in (read by the codec), then `flushed`: what the rewriter still held at the end. */
  const handleEvents = (events: readonly SseEvent[], flushed: () => StreamItem[] = () => []): Batch => {
    const batch: Batch = { out: '', records: [] };
    const offsetMs = call.elapsedMs();
    if (limits.countEvents(events.length)) return batch;
    const pass = (item: StreamItem): void => {
      if (unreadable !== null) return;
      // The gateway's keys never go out, whatever string of the event holds them: one left where
      // no string can be rewritten (a key, the event name, a comment) ends the stream.
      if (secrets.mayHold(item.sse().raw)) {
        if (item.data !== null && secrets.json(item.data)) item.touch();
        if (secrets.holds(item.sse().raw)) {
          unreadable = 'a provider key where it cannot be scrubbed';
          return;
        }
      }
      if (terminal) finalEvents.push({ event: item, offsetMs });
      else if (gate?.holding) {
        // From the first tool call on, output is held until every call has been judged.
        held.push({ event: item, offsetMs });
        heldChars += item.size;
      } else {
        const raw = item.sse().raw;
        batch.out += raw;
        batch.records.push({ offsetMs, raw: transform.forRecord(raw) });
      }
    };
    for (const event of events) {
      if (refused || unreadable) break;
      if (adapter.isStreamTerminal(route.endpoint, event)) terminal = true;
      const read = reader.read(event);
      if (!read.readable || read.refused) {
        // Data the gateway cannot read (not JSON where the provider sends JSON; an event of a type
        // it does not know, under answers.unknown_events: fail) is not relayed unread: the stream
        // ends here with the provider's in-stream error (fail closed).
        unreadable = read.refused ? `a stream event of a kind it does not know (${read.refused.what})` : 'a stream event whose data is not JSON';
        break;
      }
      if (read.dropped) dropped ??= read.dropped.what;
      for (const e of read.events) {
        call.observe(e);
        gate?.observe(e);
      }
      for (const item of read.out) pass(item);
      if (heldChars > MAX_HELD_TOOL_CALL_BYTES) refused = { ruleId: 'aigov-limits', reason: 'the tool calls in this answer are too large to check' };
    }
    if (!refused && !unreadable) for (const item of flushed()) pass(item);
    return batch;
  };
  const send = async ({ out, records }: Batch): Promise<void> => {
    if (records.length > 0) call.deps.store.appendStreamEvents(call.callId, records);
    if (out !== '') await call.write(out);
  };
  let brokenBy: unknown = null;
  const overtime = setTimeout(() => limits.timeUp(upstream.body), call.deps.limits.max_stream_duration_ms);
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      if (limits.countBytes(chunk.length)) break;
      const events = parser.push(decoder.decode(chunk, { stream: true }));
      if (limits.checkPending(parser.pendingLength)) break;
      await send(handleEvents(events));
      if (call.clientGone || refused || unreadable || limits.hit) break; // leaving the loop closes the upstream response
    }
  } catch (error) {
    if (call.clientGone || (limits.hit === null && classifyUpstreamError(error) === 'aborted')) throw error;
    brokenBy = error;
  } finally {
    clearTimeout(overtime);
  }
  if (call.clientGone) throw new Error('client gone');
  if (limits.hit !== null && !refused) {
    // Cut at a limit: what was sent stays sent; held tool calls (unchecked) and the rest do not go.
    call.deps.metrics.upstreamLimits.inc({ provider: provider.name, limit: limits.hit.key });
    call.deps.logger.warn({ callId: call.callId, provider: provider.name, limit: limits.hit.key }, 'streamed answer cut at a limit');
    const error = new AigovError('AIGOV_E_UPSTREAM_LIMIT', { provider: provider.name, limit: limits.hit.text });
    await call.endStreamWith(call.streamError(error));
    call.finish('failed', upstream.statusCode, { code: error.code, message: `answer cut at ${limits.hit.key}` });
    return;
  }
  // A complete final event without its blank line still counts; a half event is dropped.
  const tail = refused ? { out: '', records: [] } : handleEvents(brokenBy === null ? parser.end() : [], () => reader.end());
  if (dropped !== null) call.deps.logger.warn({ callId: call.callId, provider: provider.name, first: dropped }, 'upstream stream events of unknown types left out (answers.unknown_events: drop)');
  if (unreadable !== null) {
    // Nothing held (tool calls not yet judged) or after the unreadable event reaches the client.
    call.deps.logger.warn({ callId: call.callId, provider: provider.name, reason: unreadable }, 'upstream stream event cannot be relayed; stream ended');
    const error = new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: unreadable });
    await call.endStreamWith(call.streamError(error));
    call.finish('failed', upstream.statusCode, { code: error.code, message: `upstream stream event not relayed: ${unreadable}` });
    return;
  }
  if (refused) {
    // Tool calls too large to judge: nothing held reaches the client; the provider's in-stream error does.
    const error = new AigovError('AIGOV_E_POLICY_BLOCKED', { rule: refused.ruleId, reason: refused.reason });
    await call.endStreamWith(call.streamError(error));
    call.finish('blocked', upstream.statusCode, { code: error.code, message: `tool call blocked by rule ${refused.ruleId}` });
    return;
  }
  // Judge every call now that its arguments are complete; replace the refused ones (held for approval meanwhile).
  let replacer = createToolCallReplacer(route.endpoint, new Map());
  if (gate && gate.callCount > 0) {
    const settled = await settleToolCalls(call.toolHost(), gate, { complete: terminal && brokenBy === null, keepAlive: true });
    if (settled.clientGone || call.clientGone) throw new Error('client gone');
    replacer = createToolCallReplacer(route.endpoint, settled.notices, gate.textChoices);
  }
  const release = (events: readonly TimedEvent[], into: Batch): void => {
    for (const timed of events) {
      for (const { event, offsetMs } of replacer.event(timed)) {
        const raw = event.sse().raw;
        into.out += raw;
        into.records.push({ offsetMs, raw: transform.forRecord(raw) });
      }
    }
  };
  const released: Batch = { out: '', records: [] };
  release(held, released);
  const final: Batch = { out: '', records: [] };
  release(finalEvents, final);
  tail.out = released.out + tail.out;
  tail.records.unshift(...released.records);
  if (terminal) {
    await send(tail);
    if (call.clientGone) throw new Error('client gone');
    // Commit the result with the final events, then let the client see the end of the answer.
    if (final.records.length > 0) call.deps.store.appendStreamEvents(call.callId, final.records);
    call.countOut(final.out);
    call.finish('completed', upstream.statusCode, null);
    if (await call.committed) {
      call.res.end(final.out);
      return;
    }
    // Not recorded: the client must not get a complete-looking answer. The provider's in-stream
    // error ends it instead of the terminal event (the call stays pending; settled on restart).
    const error = new AigovError('AIGOV_E_STORE_RESULT_FAILED');
    call.res.end(blockSeparator(tail.out) + call.streamError(error));
    return;
  }
  // The upstream ended (or died) without its closing event: tell the SDK in its own words
  // rather than letting a truncated answer pass for a complete one.
  const error = new AigovError('AIGOV_E_UPSTREAM_STREAM_BROKEN', { provider: provider.name });
  const block = call.streamError(error);
  tail.out += blockSeparator(tail.out) + block;
  tail.records.push({ offsetMs: call.elapsedMs(), raw: block });
  call.deps.logger.warn({ callId: call.callId, provider: provider.name, err: brokenBy ? errorSummary(brokenBy) : 'ended without terminal event' }, 'upstream stream broke');
  await send(tail);
  call.res.end();
  call.finish('failed', upstream.statusCode, { code: 'AIGOV_E_UPSTREAM_STREAM_BROKEN', message: 'upstream stream ended early' });
}

/** The blank line a new SSE block needs after `sent` ('' when `sent` is empty or already ends in one). */
function blockSeparator(sent: string): string {
  return sent !== '' && !/(?:\r\n|\r|\n){2}$/.test(sent) ? '\n\n' : '';
}

interface Batch {
  out: string;
  records: StreamEventRecord[];
}
