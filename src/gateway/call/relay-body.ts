/**
 * Stage 6, a plain answer: read within its limit, parsed once; masking, the model-list filter and
 * tool-call replacement change it in place; committed (stage 7), then sent.
 */
import { AigovError } from '../../core/errors.ts';
import { isObject, parseJson } from '../../core/json.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../core/json-depth.ts';
import { pickResponseHeaders } from '../../providers/codec.ts';
import { replaceToolCallsInAnswer } from '../../providers/tool-call-replace.ts';
import { settleToolCalls } from '../tool-call-settle.ts';
import { classifyUpstreamError } from '../upstream.ts';
import type { CallState } from './call-state.ts';
import { errorSummary } from './error-summary.ts';
import type { ResponseTransform } from './response-transform.ts';
import { readLimited, type UpstreamAnswer } from './upstream-answer.ts';

export async function relayBody(call: CallState, upstream: UpstreamAnswer, transform: ResponseTransform): Promise<void> {
  const { adapter, route, provider } = call.target;
  const limit = call.deps.limits.max_response_bytes;
  let text: string | null;
  try {
    text = await readLimited(upstream.body, limit);
  } catch (error) {
    if (call.clientGone || classifyUpstreamError(error) === 'aborted') throw error;
    call.deps.logger.warn({ callId: call.callId, provider: provider.name, err: errorSummary(error) }, 'upstream answer could not be read');
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: 'a body that broke off or could not be decoded' }), 'failed');
    return;
  }
  if (text === null) {
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_LIMIT', { provider: provider.name, limit: `${limit} bytes per answer (limits.max_response_bytes)` }), 'failed');
    return;
  }
  // Governance reads the answer as JSON: one it cannot read (an HTML error page, a deep bomb) is
  // not passed on unread (fail closed). Parsed once: masking, the model filter and tool-call
  // replacement change it in place; serialized once, only if one of them changed it.
  const deep = jsonDepthExceeds(text);
  let json = deep ? undefined : parseJson(text);
  const unreadable = deep ? `JSON nested deeper than ${MAX_JSON_DEPTH} levels` : json === undefined ? `a body that is not JSON (content-type ${JSON.stringify(String(upstream.headers['content-type'] ?? 'none').slice(0, 60))})` : null;
  if (unreadable !== null) {
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: unreadable }), 'failed');
    return;
  }
  let changed = false;
  const rewriter = transform.rewriter;
  // Elements of types the codec does not know (answers.unknown_events): `fail` refuses the answer
  // here, `drop` takes them out once the answer is rewritten, `mask` lets the rewriter mask them.
  const unknown = isObject(json) && transform.unknown !== 'mask' ? adapter.unknownParts(route.endpoint, json) : [];
  if (unknown.length > 0 && transform.unknown === 'fail') {
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: `an answer holding a ${unknown[0]!.what} it does not know` }), 'failed');
    return;
  }
  if (rewriter !== null && isObject(json)) {
    try {
      // A large answer may be masked its own way (on a worker): then its result is read again.
      const own = rewriter.body?.(text) ?? null;
      if (own !== null) {
        const masked = await own;
        if (masked !== text) {
          const before = json;
          json = parseJson(masked);
          if (rewriter.sealThinking && isObject(json)) adapter.sealChangedThinking?.(route.endpoint, before, json, (upstreamText, signature) => rewriter.sealThinking!(upstreamText, signature));
          changed = true;
        }
      } else {
        changed = adapter.rewriteAnswer(route.endpoint, json, rewriter);
      }
    } catch (error) {
      // Masking the answer failed or went past its budget: the answer is withheld (fail closed).
      call.failPolicy(error, 'masking the answer failed; withholding it');
      return;
    }
  }
  if (unknown.length > 0 && isObject(json)) {
    // Found again: a body masked on a worker was parsed anew.
    for (const part of adapter.unknownParts(route.endpoint, json)) part.drop();
    changed = true;
  }
  if (route.endpoint.endsWith('.models.list') && provider.models.length > 0 && json !== undefined) {
    json = filterModelList(json, provider.models);
    changed = true;
  }
  if (json !== undefined) {
    const gate = call.toolGate();
    for (const event of adapter.parseResponseBody(route.endpoint, json)) {
      call.observe(event);
      gate?.observe(event);
    }
    // Tool calls: a refused one is replaced by a notice; one that needs approval waits for it.
    if (gate && gate.callCount > 0) {
      const settled = await settleToolCalls(call.toolHost(), gate, { complete: true, keepAlive: false });
      if (settled.clientGone) throw new Error('client gone');
      if (isObject(json) && replaceToolCallsInAnswer(route.endpoint, json, settled.notices)) changed = true;
    }
  }
  let body = changed ? JSON.stringify(json) : text;
  // The gateway's keys never go out, in whatever string of the answer (policy or not); one left
  // where no string can be rewritten (an object key) refuses the answer.
  const secrets = transform.secrets;
  if (secrets.mayHold(body)) {
    if (secrets.json(json)) body = JSON.stringify(json);
    if (secrets.holds(body)) {
      call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: 'a provider key where it cannot be scrubbed' }), 'failed');
      return;
    }
  }
  // The answer is complete at the client only once its record is: commit, then send the body.
  call.countOut(body);
  call.finish('completed', upstream.statusCode, null, transform.forRecord(body));
  if (!(await call.committed)) {
    call.sendError(new AigovError('AIGOV_E_STORE_RESULT_FAILED'), 'failed'); // 503, provider shape
    return;
  }
  call.writeHead(upstream.statusCode, { ...pickResponseHeaders(upstream.headers), 'content-length': String(Buffer.byteLength(body)) });
  call.res.end(body);
}

function filterModelList(json: unknown, allowed: readonly string[]): unknown {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { data?: unknown }).data)) return json;
  const list = json as { data: { id?: unknown }[] };
  return { ...list, data: list.data.filter((m) => typeof m.id === 'string' && allowed.includes(m.id)) };
}
