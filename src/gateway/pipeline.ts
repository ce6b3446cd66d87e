/**
 * The governed request pipeline, as explicit stages:
 *
 *   authenticate → read & parse into normalized events → policy hook → record request
 *   → forward upstream → response transform hook (streams event by event) → record response
 *
 * Each stage either hands a value to the next or ends the call with a provider-shaped error.
 * Nothing reaches the upstream before the request record is durable (fail closed).
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Agent, Dispatcher } from 'undici';
import type { TokenVerifier } from '../auth/verify-token.ts';
import type { GatewayConfig, ResolvedProvider } from '../config/schema.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { mergeUsage, type NormalizedRequest, type Principal, type ResponseEvent, type Usage } from '../core/events.ts';
import { scrubSecrets } from '../core/scrub-secrets.ts';
import { SseParser, type SseEvent } from '../core/sse.ts';
import { SessionOwnerConflictError, type CallStatus, type ClientInfo, type PolicyDecisionRecord, type RecordingStore, type SealedRawCopy, type StreamEventRecord } from '../store/recording-store.ts';
import type { RawCopySealer } from '../store/raw-copy-sealer.ts';
import { authError } from './api-response.ts';
import { waitForDrain } from './backpressure.ts';
import type { CallContext, PipelineHooks, Refusal, RequestVerdict } from './hooks.ts';
import type { ApprovalService, HoldResult, WaitOutcome } from './approvals/approval-service.ts';
import { decidingVote, describePerson, type ApprovalRecord } from '../core/approvals/approval.ts';
import type { ApprovalSpec } from '../core/policy/types.ts';
import type { StreamItem, TextRewriter } from '../providers/channels.ts';
import type { ReadRequest } from '../providers/request-slots.ts';
import type { GatewayMetrics } from './metrics.ts';
import { pickResponseHeaders, toProviderError, type ProviderAdapter, type ProviderError, type RouteMatch } from '../providers/adapter.ts';
import { isObject, parseJson } from '../core/json.ts';
import { createToolCallReplacer, replaceToolCallsInAnswer, type TimedEvent } from '../providers/tool-call-replace.ts';
import { settleToolCalls, type ToolCallHost } from './tool-call-settle.ts';
import { MAX_HELD_TOOL_CALL_BYTES, StreamToolGate, type ToolCallJudge } from './tool-gate.ts';
import { readRequestBody } from './request-body.ts';
import { classifyUpstreamError, decodedBody, type UpstreamSlots } from './upstream.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../core/json-depth.ts';
import type { SessionCallLimit } from './session-call-limit.ts';

export interface PipelineDeps {
  readonly verifier: TokenVerifier;
  readonly store: RecordingStore;
  readonly hooks: PipelineHooks;
  readonly agent: Agent;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** The gateway's `limits` section: request size, answer size/events/duration, upstream calls. */
  readonly limits: GatewayConfig['limits'];
  /** Open upstream calls per provider, bounded by limits.upstream_max_connections. */
  readonly slots: UpstreamSlots;
  /** Holds requests for approval; without it a require_approval decision refuses the request. */
  readonly approvals: ApprovalService | null;
  /** How often a held stream gets an SSE comment. */
  readonly approvalKeepAliveMs: number;
  /** With `audit.raw_copy`: seals the body as the client sent it, stored with the call (auditors only). */
  readonly rawCopy?: RawCopySealer | null;
  /** Counts each session's calls against limits.max_calls_per_session. */
  readonly sessionCalls?: SessionCallLimit | null;
}

export interface GovernedTarget {
  readonly provider: ResolvedProvider;
  readonly adapter: ProviderAdapter;
  readonly route: RouteMatch;
  readonly query: string;
}

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MAX_ERROR_BODY = 1024 * 1024;

/** Serves one governed call end to end. Never throws: every failure becomes a response. */
export async function handleGovernedCall(req: IncomingMessage, res: ServerResponse, target: GovernedTarget, deps: PipelineDeps): Promise<void> {
  const call = new CallState(req, res, target, deps);
  deps.metrics.inflight.inc();
  try {
    await runStages(call);
  } catch (error) {
    call.failInternal(error);
  } finally {
    deps.metrics.inflight.dec();
  }
}

async function runStages(call: CallState): Promise<void> {
  // Stage 1: authenticate.
  const principal = await authenticate(call);
  if (!principal) return;
  // Stage 2: read and parse into normalized events.
  const parsed = await readAndParse(call);
  if (!parsed) return;
  // A session past its call budget is refused before anything is recorded or sent; SDKs must not retry it.
  const overLimit = call.deps.sessionCalls?.admit(principal, call.req.headers['x-aigov-session'] ? call.sessionId : null);
  if (overLimit) {
    call.sendError(overLimit, null, { 'x-should-retry': 'false' });
    return;
  }
  // Stage 3: policy. A policy failure refuses the request (fail closed).
  const ctx: CallContext = { callId: call.callId, sessionId: call.sessionId, principal, provider: call.target.provider.name, endpoint: call.target.route.endpoint, request: parsed.request };
  let verdict: RequestVerdict;
  try {
    verdict = await call.deps.hooks.evaluateRequest(ctx);
  } catch (error) {
    call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'policy evaluation failed; refusing the request');
    call.sendError(isAigovError(error) ? error : new AigovError('AIGOV_E_POLICY_FAILED'), 'failed');
    return;
  }
  call.decisions = verdict.decisions.map((d) => ({ ...d, stage: 'request' }));
  call.toolJudge = verdict.judgeToolCall ?? null;
  let bodyText = parsed.bodyText;
  // A refused request is rewritten too: then what the hook returns is only what gets recorded.
  // Policy writes into the codec's text slots; the body is serialized once, only if one changed.
  const rewrite = verdict.rewriteRequest;
  if (rewrite !== null && parsed.read.slots.length > 0) {
    try {
      for (const slot of parsed.read.slots) slot.set(rewrite(slot));
      bodyText = parsed.read.serialize();
    } catch (error) {
      call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'request rewriting failed; refusing the request');
      call.sendError(isAigovError(error) ? error : new AigovError('AIGOV_E_POLICY_FAILED'), 'failed');
      return;
    }
  }
  if (verdict.commit) {
    try {
      await verdict.commit();
    } catch (error) {
      call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'storing what the request rewrite produced failed; refusing the request');
      call.sendError(isAigovError(error) ? error : new AigovError('AIGOV_E_POLICY_FAILED'), 'failed');
      return;
    }
  }
  // Stage 4: record the request as it will be sent (durably, before anything is sent anywhere).
  if (!(await recordRequest(call, principal, bodyText, parsed.bodyText))) return;
  const refuse = verdict.refuse;
  if (refuse?.kind === 'require_approval' && refuse.approval !== null && call.deps.approvals) {
    if (!(await holdForApproval(call, principal, { ...refuse, approval: refuse.approval }, call.deps.approvals, parsed.bodyText))) return;
  } else if (refuse) {
    const { kind, ruleId, reason } = refuse;
    call.sendError(kind === 'block' ? new AigovError('AIGOV_E_POLICY_BLOCKED', { rule: ruleId, reason }) : new AigovError('AIGOV_E_APPROVAL_REQUIRED', { rule: ruleId, reason }), 'blocked');
    return;
  }
  // Stages 5-7: forward, transform, record the answer.
  await forward(call, bodyText, responseTransform(verdict.rewriteResponse));
}

const same = (text: string): string => text;

/** How an answer is rewritten on its way back: by the codec (stream reader, rewriteAnswer), with this rewriter. */
interface ResponseTransform {
  /** The rewriter (null: the answer's texts are not rewritten). */
  readonly rewriter: TextRewriter | null;
  /** What the store keeps of a sent SSE block or body (restored pseudonyms concealed again). */
  forRecord(sent: string): string;
}

function responseTransform(rewriter: TextRewriter | null): ResponseTransform {
  return { rewriter, forRecord: rewriter?.forRecord ? (sent) => rewriter.forRecord!(sent) : same };
}

// ---------------------------------------------------------------------------------------------
// Stage 1

function authorizationOf(req: IncomingMessage, adapter: ProviderAdapter): string | undefined {
  // Anthropic clients send their key as `x-api-key`; accept the aigov token there too.
  const apiKey = adapter.kind === 'anthropic' ? req.headers['x-api-key'] : undefined;
  return req.headers.authorization ?? (typeof apiKey === 'string' && apiKey !== '' ? `Bearer ${apiKey}` : undefined);
}

async function authenticate(call: CallState): Promise<Principal | null> {
  const result = await call.deps.verifier.verify(authorizationOf(call.req, call.target.adapter));
  if (result.ok) {
    call.principal = result.principal;
    return result.principal;
  }
  call.deps.metrics.authFailures.inc({ code: result.code });
  call.sendError(authError(result), null, { 'www-authenticate': result.wwwAuthenticate });
  return null;
}

// ---------------------------------------------------------------------------------------------
// Stage 2

interface ParsedRequest {
  readonly bodyText: string;
  readonly request: NormalizedRequest;
  /** The codec's reading of the body: its text slots, and the body to send once they are written. */
  readonly read: ReadRequest;
}

async function readAndParse(call: CallState): Promise<ParsedRequest | null> {
  const { route, adapter, provider } = call.target;
  const sessionHeader = call.req.headers['x-aigov-session'];
  if (typeof sessionHeader === 'string' && sessionHeader !== '') {
    if (!SESSION_ID.test(sessionHeader)) {
      await refuse(call, new AigovError('AIGOV_E_BAD_SESSION', { reason: 'unexpected characters or length' }));
      return null;
    }
    call.sessionId = sessionHeader;
  }
  let bodyText = '';
  if (route.hasBody) {
    const limit = call.deps.limits.max_body_bytes;
    const body = await readRequestBody(call.req, limit);
    if (!body.ok) {
      if (body.reason === 'too_large') await refuse(call, new AigovError('AIGOV_E_BODY_TOO_LARGE', { limit }), { connection: 'close' });
      else if (body.reason === 'bad_coding') await refuse(call, new AigovError('AIGOV_E_BAD_CONTENT_ENCODING', { coding: body.coding, reason: body.detail }));
      else call.finish('aborted', null, { code: 'client_aborted', message: 'the client went away while sending the request' });
      return null;
    }
    bodyText = body.text;
    call.deps.metrics.requestBytes.inc({ provider: provider.name }, Buffer.byteLength(bodyText));
  }
  let json: unknown = {};
  if (route.hasBody) {
    if (jsonDepthExceeds(bodyText)) {
      await refuse(call, new AigovError('AIGOV_E_JSON_TOO_DEEP', { limit: MAX_JSON_DEPTH }));
      return null;
    }
    try {
      json = JSON.parse(bodyText);
    } catch (error) {
      await refuse(call, new AigovError('AIGOV_E_BAD_JSON', { reason: describeJsonError(error, bodyText) }));
      return null;
    }
    // Known before the adapter may refuse the body: a refusal is logged and recorded with its model.
    const claimed = isObject(json) ? json.model : undefined;
    if (typeof claimed === 'string') call.model = claimed.slice(0, 200);
  }
  let read: ReadRequest;
  try {
    read = adapter.readRequest(route.endpoint, json, bodyText);
  } catch (error) {
    if (isAigovError(error)) {
      await refuse(call, error);
      return null;
    }
    throw error;
  }
  const request = read.request;
  const model = route.param ?? request.model;
  call.model = model;
  call.stream = request.stream;
  if (model !== null && provider.models.length > 0 && !provider.models.includes(model)) {
    await refuse(call, new AigovError('AIGOV_E_MODEL_NOT_ALLOWED', { model, provider: provider.name }));
    return null;
  }
  return { bodyText, request, read };
}

function describeJsonError(error: unknown, text: string): string {
  if (text.trim() === '') return 'the body is empty';
  const message = error instanceof Error ? error.message : '';
  // V8: "Unexpected token } in JSON at position 12" / "… (line 1 column 13)". Keep the position only,
  // never the surrounding text (it may hold PII).
  const pos = /position (\d+)/.exec(message)?.[1] ?? /column (\d+)/.exec(message)?.[1];
  if (/Unexpected end/.test(message)) return 'it ends too early';
  return pos ? `syntax error at position ${pos}` : 'syntax error';
}

/**
 * Refuses a request that never reached policy (bad body, unknown endpoint, wrong method, …).
 * Once the user is known the refusal is on the record as a call — status, error code, model,
 * no body — besides the log line every call gets.
 */
async function refuse(call: CallState, error: AigovError, headers: Record<string, string> = {}): Promise<void> {
  if (call.principal !== null && !call.recorded) {
    const { provider, route } = call.target;
    try {
      await call.deps.store.recordRequest({
        callId: call.callId,
        sessionId: call.sessionId,
        principal: call.principal,
        client: clientInfo(call.req),
        provider: provider.name,
        providerKind: provider.kind,
        endpoint: route.endpoint,
        method: call.req.method ?? 'GET',
        path: route.upstreamPath,
        model: call.model,
        stream: call.stream,
        requestBody: '',
        rawCopy: null,
        decisions: [],
        startedAt: call.startedAt,
      });
      call.recorded = true;
    } catch (e) {
      // The refusal stands either way; it is still logged.
      if (!(e instanceof SessionOwnerConflictError)) call.deps.metrics.storeErrors.inc({ operation: 'record_request' });
      call.deps.logger.warn({ callId: call.callId, err: errorSummary(e) }, 'could not record a refused request');
    }
  }
  call.sendError(error, error.code === 'AIGOV_E_MODEL_NOT_ALLOWED' ? 'blocked' : 'failed', headers);
}

/**
 * A request under a provider's mount that matched none of its endpoints (unknown path, wrong
 * method, a WebSocket handshake): answered with `error`, logged with its user and, when its
 * token is good, recorded as a call. A bad or missing token changes nothing in the answer.
 */
export async function refuseUnrouted(req: IncomingMessage, res: ServerResponse, target: { provider: ResolvedProvider; adapter: ProviderAdapter; path: string }, error: AigovError, deps: PipelineDeps): Promise<void> {
  req.resume();
  const route: RouteMatch = { ok: true, endpoint: 'unrouted', upstreamPath: target.path.slice(0, 200), hasBody: false };
  const call = new CallState(req, res, { provider: target.provider, adapter: target.adapter, route, query: '' }, deps);
  try {
    const result = await deps.verifier.verify(authorizationOf(req, target.adapter));
    if (result.ok) call.principal = result.principal;
    const session = req.headers['x-aigov-session'];
    if (typeof session === 'string' && SESSION_ID.test(session)) call.sessionId = session;
    await refuse(call, error);
  } catch (e) {
    call.failInternal(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Stage 4

/** `clientBody`: the body as the client sent it; kept only sealed, and only with `audit.raw_copy`. */
async function recordRequest(call: CallState, principal: Principal, bodyText: string, clientBody: string): Promise<boolean> {
  const { provider, route } = call.target;
  let rawCopy: SealedRawCopy | null = null;
  if (call.deps.rawCopy) {
    try {
      rawCopy = call.deps.rawCopy.seal(call.callId, clientBody);
    } catch (error) {
      // Fail closed: a request whose raw copy cannot be kept is not sent.
      call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'sealing the raw request copy failed; not forwarding');
      call.sendError(new AigovError('AIGOV_E_RAW_COPY_SEAL_FAILED'), null);
      return false;
    }
  }
  try {
    await call.deps.store.recordRequest({
      callId: call.callId,
      sessionId: call.sessionId,
      principal,
      client: clientInfo(call.req),
      provider: provider.name,
      providerKind: provider.kind,
      endpoint: route.endpoint,
      method: call.req.method ?? 'GET',
      path: route.upstreamPath,
      model: call.model,
      stream: call.stream,
      requestBody: bodyText,
      rawCopy,
      decisions: call.decisions,
      startedAt: call.startedAt,
    });
    call.recorded = true;
    return true;
  } catch (error) {
    if (error instanceof SessionOwnerConflictError) {
      call.sendError(new AigovError('AIGOV_E_SESSION_CONFLICT'), null, { 'x-should-retry': 'false' }); // the SDKs retry a 409 otherwise
      return false;
    }
    call.deps.metrics.storeErrors.inc({ operation: 'record_request' });
    call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'recording store refused the request record; not forwarding');
    call.sendError(new AigovError('AIGOV_E_STORE_UNAVAILABLE'), null);
    return false;
  }
}

function clientInfo(req: IncomingMessage): ClientInfo {
  const lang = req.headers['x-stainless-lang'];
  const version = req.headers['x-stainless-package-version'];
  return {
    userAgent: req.headers['user-agent']?.slice(0, 256) ?? null,
    remoteAddress: req.socket.remoteAddress ?? null,
    sdk: typeof lang === 'string' ? `${lang}${typeof version === 'string' ? ` ${version}` : ''}`.slice(0, 64) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Stage 4b: hold for approval

type HeldRefusal = Extract<Refusal, { kind: 'require_approval' }> & { readonly approval: ApprovalSpec };

/**
 * Holds the request until its approval is decided. Streams get their headers at once and SSE
 * comments while they wait (SDKs ignore comments; proxies see a live connection); a plain
 * request waits silently. Returns true when the request may go upstream.
 */
async function holdForApproval(call: CallState, principal: Principal, refuse: HeldRefusal, approvals: ApprovalService, originalBody: string): Promise<boolean> {
  const { ruleId, reason } = refuse;
  let held: HoldResult;
  try {
    held = approvals.hold({
      requester: principal,
      ruleId,
      ruleReason: reason,
      spec: refuse.approval,
      provider: call.target.provider.name,
      model: call.model,
      endpoint: call.target.route.endpoint,
      stream: call.stream,
      preview: refuse.preview,
      sessionId: call.sessionId,
      callId: call.callId,
      body: originalBody,
    });
  } catch (error) {
    call.deps.metrics.storeErrors.inc({ operation: 'approval' });
    call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'could not record the approval; refusing the request');
    call.sendError(new AigovError('AIGOV_E_STORE_UNAVAILABLE'), 'failed');
    return false;
  }
  const approval = held.approval;
  if (held.kind === 'proceed') {
    call.approvalId = approval.id;
    call.approvalUsed = true;
    call.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId, reason: `${approval.id} approved earlier by ${approvers(approval)}; used by this retry`, mode: 'enforce' });
    return true;
  }
  call.approvalId = approval.id;
  call.deps.logger.info({ callId: call.callId, approvalId: approval.id, ruleId, joined: !held.created }, 'request held for approval');
  let keepAlive: NodeJS.Timeout | null = null;
  if (call.stream) {
    call.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    call.res.flushHeaders();
    void call.write(`: aigov: waiting for approval ${approval.id} (rule ${ruleId})\n\n`);
    keepAlive = setInterval(() => void call.write(': keep-alive\n\n'), call.deps.approvalKeepAliveMs);
  }
  const gone = new AbortController();
  const onClose = (): void => {
    if (!call.res.writableFinished) {
      call.clientGone = true;
      gone.abort();
    }
  };
  call.res.on('close', onClose);
  let outcome: WaitOutcome;
  try {
    outcome = await approvals.wait(approval, gone.signal);
  } finally {
    if (keepAlive) clearInterval(keepAlive);
    call.res.off('close', onClose);
  }
  const decided = outcome.approval;
  switch (outcome.kind) {
    case 'approved':
      call.approvalUsed = true;
      call.lateDecisions.push({ stage: 'approval', action: 'approved', ruleId, reason: `${decided.id} approved by ${approvers(decided)}`, mode: 'enforce' });
      return true;
    case 'denied': {
      const vote = decidingVote(decided);
      call.lateDecisions.push({ stage: 'approval', action: 'denied', ruleId, reason: `${decided.id} denied by ${vote ? describePerson(vote.by) : 'an approver'}`, mode: 'enforce' });
      call.sendError(new AigovError('AIGOV_E_APPROVAL_DENIED', { id: decided.id, rule: ruleId, by: vote ? describePerson(vote.by) : 'an approver', reason: vote?.reason ?? 'no reason given' }), 'blocked');
      return false;
    }
    case 'expired':
      call.lateDecisions.push({ stage: 'approval', action: 'expired', ruleId, reason: `${decided.id} expired undecided`, mode: 'enforce' });
      call.sendError(new AigovError('AIGOV_E_APPROVAL_EXPIRED', { id: decided.id, rule: ruleId, approvers: refuse.approval.approvers.join(', ') }), 'blocked');
      return false;
    case 'interrupted':
      if (call.clientGone) {
        call.finish('aborted', null, { code: 'AIGOV_E_APPROVAL_INTERRUPTED', message: `the client went away while ${decided.id} was pending` });
      } else {
        const why = decided.state === 'approved' ? 'the approval was already used' : 'the gateway is shutting down';
        call.sendError(new AigovError('AIGOV_E_APPROVAL_INTERRUPTED', { id: decided.id, reason: why }), 'failed');
      }
      return false;
  }
}

function approvers(approval: ApprovalRecord): string {
  const names = [...new Set(approval.votes.filter((v) => v.decision === 'approve').map((v) => describePerson(v.by)))];
  return names.length > 0 ? names.join(', ') : 'an approver';
}

// ---------------------------------------------------------------------------------------------
// Stages 5-7

/** Forwards in one of the provider's upstream slots, or answers 503 at once when none is free. */
async function forward(call: CallState, bodyText: string, transform: ResponseTransform): Promise<void> {
  const { provider } = call.target;
  if (!call.deps.slots.take(provider.name)) {
    call.deps.metrics.upstreamBusy.inc({ provider: provider.name });
    call.sendError(new AigovError('AIGOV_E_UPSTREAM_BUSY', { provider: provider.name, limit: call.deps.slots.limit }), 'failed', { 'retry-after': '1' });
    return;
  }
  try {
    await forwardInSlot(call, bodyText, transform);
  } finally {
    call.deps.slots.release(provider.name);
  }
}

async function forwardInSlot(call: CallState, bodyText: string, transform: ResponseTransform): Promise<void> {
  const { provider, adapter, route, query } = call.target;
  const abort = new AbortController();
  const onClientGone = (): void => {
    if (!call.res.writableFinished) {
      call.clientGone = true;
      abort.abort();
    }
  };
  call.res.on('close', onClientGone);
  // Joined, never resolved: the adapter built upstreamPath from constants and encoded parameters.
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await call.deps.agent.request({
      origin: provider.upstream.origin,
      path: provider.upstream.basePath + route.upstreamPath + query,
      method: route.hasBody ? 'POST' : 'GET',
      headers: adapter.upstreamHeaders(call.req.headers, provider.apiKey, provider.headers),
      body: route.hasBody ? bodyText : undefined,
      signal: abort.signal,
    });
  } catch (error) {
    const kind = classifyUpstreamError(error);
    if (kind === 'aborted' || call.clientGone) {
      call.finish('aborted', null, { code: 'client_aborted', message: 'the client went away before the upstream answered' });
      return;
    }
    call.deps.logger.warn({ callId: call.callId, provider: provider.name, err: errorSummary(error) }, 'upstream request failed');
    call.sendError(new AigovError(kind === 'timeout' ? 'AIGOV_E_UPSTREAM_TIMEOUT' : 'AIGOV_E_UPSTREAM_UNREACHABLE', { provider: provider.name }), 'failed');
    return;
  }
  try {
    const decoded = decodedBody(upstream);
    if (!decoded.ok) {
      // dump(), not destroy(): undici's destroy() emits an AbortError nobody listens to (a crash).
      void upstream.body.dump().catch(() => undefined);
      call.sendError(new AigovError('AIGOV_E_UPSTREAM_BAD_RESPONSE', { provider: provider.name, reason: `an answer in the content-encoding "${decoded.coding}"` }), 'failed');
      return;
    }
    const answer: UpstreamAnswer = { statusCode: upstream.statusCode, headers: upstream.headers, body: decoded.body };
    const contentType = String(upstream.headers['content-type'] ?? '').toLowerCase();
    if (upstream.statusCode >= 400) await relayUpstreamError(call, answer);
    else if (contentType.startsWith('text/event-stream')) await relayStream(call, answer, transform);
    else await relayBody(call, answer, transform);
  } catch (error) {
    if (call.clientGone || classifyUpstreamError(error) === 'aborted') {
      call.finish('aborted', call.res.headersSent ? call.res.statusCode : null, { code: 'client_aborted', message: 'the client went away before the answer ended' });
    } else {
      throw error;
    }
  } finally {
    call.res.off('close', onClientGone);
  }
}

/** The upstream's answer with its body decoded (upstream.ts decodedBody). */
interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Readable;
}

async function relayUpstreamError(call: CallState, upstream: UpstreamAnswer): Promise<void> {
  const { adapter, provider } = call.target;
  const text = await readLimited(upstream.body, MAX_ERROR_BODY);
  const status = upstream.statusCode;
  const parsed = text === null ? null : adapter.parseErrorBody(status, text);
  const secrets = [provider.apiKey ?? '', ...Object.values(provider.headers)];
  let error: ProviderError;
  if (parsed && status !== 401 && status !== 403) {
    error = { ...parsed, message: scrubSecrets(parsed.message, secrets) };
  } else if (status === 401 || status === 403) {
    // The upstream refused the gateway's provider credential: not the user's fault, and its
    // message may echo a piece of the key. Keep the status, replace the words.
    error = { status, type: parsed?.type ?? (status === 401 ? 'authentication_error' : 'permission_error'), code: parsed?.code ?? null, message: `The upstream provider \`${provider.name}\` refused the gateway's credentials (HTTP ${status}). This is a gateway configuration problem; tell the aigov operators.` };
  } else {
    error = { status, type: status >= 500 ? 'api_error' : 'invalid_request_error', code: null, message: `The upstream provider \`${provider.name}\` answered HTTP ${status} without a readable error.` };
  }
  if (call.res.headersSent) {
    // A held stream already answered 200: the upstream's error goes in-stream.
    await call.endStreamWith(adapter.renderStreamError(call.target.route.endpoint, error));
    call.finish('failed', status, { code: String(error.type), message: error.message });
    return;
  }
  const body = adapter.renderError(error);
  call.writeHead(status, { ...pickResponseHeaders(upstream.headers), 'content-type': 'application/json' });
  call.endWith(body);
  call.finish('failed', status, { code: String(error.type), message: error.message }, body);
}

async function relayBody(call: CallState, upstream: UpstreamAnswer, transform: ResponseTransform): Promise<void> {
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
  if (rewriter !== null && isObject(json)) {
    try {
      // A large answer may be masked its own way (on a worker): then its result is read again.
      const own = rewriter.body?.(text) ?? null;
      if (own !== null) {
        const masked = await own;
        if (masked !== text) {
          json = parseJson(masked);
          changed = true;
        }
      } else {
        changed = adapter.rewriteAnswer(route.endpoint, json, rewriter);
      }
    } catch (error) {
      // Masking the answer failed or went past its budget: the answer is withheld (fail closed).
      call.deps.logger.error({ callId: call.callId, err: errorSummary(error) }, 'masking the answer failed; withholding it');
      call.sendError(isAigovError(error) ? error : new AigovError('AIGOV_E_POLICY_FAILED'), 'failed');
      return;
    }
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
  const body = changed ? JSON.stringify(json) : text;
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

async function relayStream(call: CallState, upstream: UpstreamAnswer, transform: ResponseTransform): Promise<void> {
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
  const reader = adapter.streamReader(route.endpoint, transform.rewriter);
  /** Upstream events in (read by the codec), then `flushed`: what the rewriter still held at the end. */
  const handleEvents = (events: readonly SseEvent[], flushed: () => StreamItem[] = () => []): Batch => {
    const batch: Batch = { out: '', records: [] };
    const offsetMs = call.elapsedMs();
    if (limits.countEvents(events.length)) return batch;
    const pass = (item: StreamItem): void => {
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
      if (refused) break;
      if (adapter.isStreamTerminal(route.endpoint, event)) terminal = true;
      const read = reader.read(event);
      for (const e of read.events) {
        call.observe(e);
        gate?.observe(e);
      }
      for (const item of read.out) pass(item);
      if (heldChars > MAX_HELD_TOOL_CALL_BYTES) refused = { ruleId: 'aigov-limits', reason: 'the tool calls in this answer are too large to check' };
    }
    if (!refused) for (const item of flushed()) pass(item);
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
      if (call.clientGone || refused || limits.hit) break; // leaving the loop closes the upstream response
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
    await call.endStreamWith(adapter.renderStreamError(route.endpoint, toProviderError(error)));
    call.finish('failed', upstream.statusCode, { code: error.code, message: `answer cut at ${limits.hit.key}` });
    return;
  }
  // A complete final event without its blank line still counts; a half event is dropped.
  const tail = refused ? { out: '', records: [] } : handleEvents(brokenBy === null ? parser.end() : [], () => reader.end());
  if (refused) {
    // Tool calls too large to judge: nothing held reaches the client; the provider's in-stream error does.
    const error = new AigovError('AIGOV_E_POLICY_BLOCKED', { rule: refused.ruleId, reason: refused.reason });
    await call.endStreamWith(adapter.renderStreamError(route.endpoint, toProviderError(error)));
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
    call.res.end(blockSeparator(tail.out) + adapter.renderStreamError(route.endpoint, toProviderError(error)));
    return;
  }
  // The upstream ended (or died) without its closing event: tell the SDK in its own words
  // rather than letting a truncated answer pass for a complete one.
  const error = new AigovError('AIGOV_E_UPSTREAM_STREAM_BROKEN', { provider: provider.name });
  const block = adapter.renderStreamError(route.endpoint, toProviderError(error));
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

/** The limits one streamed answer runs into: its bytes, one event's size, its events, its duration. */
class AnswerLimits {
  hit: { readonly key: string; readonly text: string } | null = null;
  #bytes = 0;
  #events = 0;
  readonly #limits: GatewayConfig['limits'];
  constructor(limits: GatewayConfig['limits']) {
    this.#limits = limits;
  }
  #set(key: keyof GatewayConfig['limits'], text: string): true {
    this.hit ??= { key, text: `${text} (limits.${key})` };
    return true;
  }
  /** True once the answer's decoded bytes pass max_response_bytes. */
  countBytes(n: number): boolean {
    this.#bytes += n;
    return this.#bytes > this.#limits.max_response_bytes && this.#set('max_response_bytes', `${this.#limits.max_response_bytes} bytes per answer`);
  }
  /** True when an event still without its end is already larger than max_event_bytes (counted in UTF-16 units, ≤ bytes). */
  checkPending(length: number): boolean {
    return length > this.#limits.max_event_bytes && this.#set('max_event_bytes', `${this.#limits.max_event_bytes} bytes per event`);
  }
  countEvents(n: number): boolean {
    this.#events += n;
    return this.#events > this.#limits.max_stream_events && this.#set('max_stream_events', `${this.#limits.max_stream_events} events per answer`);
  }
  /** The stream ran past max_stream_duration_ms: cut the upstream (its loop then ends). */
  timeUp(body: Readable): void {
    this.#set('max_stream_duration_ms', `${this.#limits.max_stream_duration_ms} ms per streamed answer`);
    body.destroy();
  }
}

/** Reads a body up to `limit` bytes; null when larger (the rest is discarded). */
async function readLimited(body: Readable, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null; // leaving the loop destroys the body
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------------------------------------

/** The mutable state of one call, and the only place that writes to the client and the store. */
class CallState {
  readonly callId = `call_${randomUUID().replaceAll('-', '')}`;
  readonly startedAt = Date.now();
  readonly #t0 = performance.now();
  sessionId: string;
  /** Who sent it, once the token is verified (refusals and held tool calls name them). */
  principal: Principal | null = null;
  model: string | null = null;
  stream = false;
  decisions: PolicyDecisionRecord[] = [];
  /** Decisions taken after the request was recorded (approvals): recorded when the call ends. */
  readonly lateDecisions: PolicyDecisionRecord[] = [];
  /** Set while (and after) the call is held for approval, or when it goes through on one. */
  approvalId: string | null = null;
  /** The call took a use of its approval: given back if the client leaves before any answer. */
  approvalUsed = false;
  /** Set by policy: how to judge tool calls in the answer. */
  toolJudge: ToolCallJudge | null = null;
  recorded = false;
  clientGone = false;
  #finished = false;
  #committed: Promise<boolean> | null = null;
  #firstByteMs: number | null = null;
  #firstTokenMs: number | null = null;
  #usage: Usage | undefined;
  #bytesOut = 0;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly target: GovernedTarget;
  readonly deps: PipelineDeps;

  constructor(req: IncomingMessage, res: ServerResponse, target: GovernedTarget, deps: PipelineDeps) {
    this.req = req;
    this.res = res;
    this.target = target;
    this.deps = deps;
    this.sessionId = this.callId.replace(/^call_/, 'ses_');
  }

  /** A gate for the answer's tool calls, when policy has tool rules (enforced or shadow). */
  toolGate(): StreamToolGate | null {
    return this.toolJudge ? new StreamToolGate(this.toolJudge) : null;
  }

  /** This call as tool-call settling sees it (./tool-call-settle.ts). */
  toolHost(): ToolCallHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const call = this;
    return {
      callId: this.callId,
      sessionId: this.sessionId,
      model: this.model,
      stream: this.stream,
      principal: this.principal,
      provider: this.target.provider.name,
      endpoint: this.target.route.endpoint,
      approvals: this.deps.approvals,
      approvalKeepAliveMs: this.deps.approvalKeepAliveMs,
      logger: this.deps.logger,
      lateDecisions: this.lateDecisions,
      res: this.res,
      get clientGone() {
        return call.clientGone;
      },
      set clientGone(gone: boolean) {
        call.clientGone = gone;
      },
      write: (data) => this.write(data),
    };
  }

  elapsedMs(): number {
    return Math.round((performance.now() - this.#t0) * 1000) / 1000;
  }

  observe(event: ResponseEvent): void {
    if (event.type === 'usage') this.#usage = mergeUsage(this.#usage, event.usage);
    else if (this.#firstTokenMs === null && (event.type === 'text' || event.type === 'tool_call')) {
      this.#firstTokenMs = this.elapsedMs();
      this.deps.metrics.timeToFirstToken.observe({ provider: this.target.provider.name }, this.#firstTokenMs / 1000);
    }
  }

  writeHead(status: number, headers: Record<string, string>): void {
    const approval = this.approvalId === null ? {} : { 'x-aigov-approval-id': this.approvalId };
    this.res.writeHead(status, { ...headers, ...approval, 'x-aigov-call-id': this.callId, 'x-aigov-session-id': this.sessionId });
  }

  /** Writes with backpressure: waits for 'drain' (or the client leaving) when the socket is full. */
  async write(data: string | Buffer): Promise<void> {
    if (this.clientGone) return;
    this.#markFirstByte(data);
    if (!this.res.write(data)) await waitForDrain(this.res);
  }

  /** Ends an SSE answer with one last event block, recorded like the others. */
  async endStreamWith(block: string): Promise<void> {
    this.deps.store.appendStreamEvents(this.callId, [{ offsetMs: this.elapsedMs(), raw: block }]);
    await this.write(block);
    this.res.end();
  }

  endWith(body: string): void {
    this.#markFirstByte(body);
    this.res.end(body);
  }

  #markFirstByte(data: string | Buffer): void {
    this.#bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.#firstByteMs ??= this.elapsedMs();
  }

  /** Ends the call with an aigov error in the provider's shape. `status` says how to record it. */
  sendError(error: AigovError, status: CallStatus | null, headers: Record<string, string> = {}): void {
    const body = this.target.adapter.renderError(toProviderError(error));
    if (!this.res.headersSent) {
      this.writeHead(error.status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      this.endWith(body);
    } else if (this.approvalId !== null && this.stream) {
      // A held stream (200 already sent): the provider's in-stream error event ends it.
      void this.endStreamWith(this.target.adapter.renderStreamError(this.target.route.endpoint, toProviderError(error)));
    } else {
      this.res.end();
    }
    this.finish(status ?? 'failed', error.status, { code: error.code, message: error.message }, body);
  }

  failInternal(error: unknown): void {
    const ref = this.callId;
    this.deps.logger.error({ callId: this.callId, err: errorSummary(error), stack: error instanceof Error ? error.stack : undefined }, 'internal error in pipeline');
    if (this.res.headersSent) {
      this.res.destroy();
      this.finish('failed', this.res.statusCode, { code: 'AIGOV_E_INTERNAL', message: 'internal error' });
    } else {
      this.sendError(new AigovError('AIGOV_E_INTERNAL', { ref }), 'failed');
    }
  }

  /**
   * Records the outcome (write-behind), updates metrics and logs one line. Idempotent.
   * {@link committed} then says when the result is durable; a failure to record it is logged
   * and counted here.
   */
  finish(status: CallStatus, httpStatus: number | null, error: { code: string; message: string } | null, responseBody: string | null = null): void {
    if (this.#finished) return;
    this.#finished = true;
    if (status === 'aborted' && this.approvalUsed && this.approvalId !== null && this.#firstByteMs === null) this.deps.approvals?.release(this.approvalId);
    const latencyMs = this.elapsedMs();
    const provider = this.target.provider.name;
    const codeLabel = httpStatus === null ? (status === 'aborted' ? 'aborted' : 'none') : String(httpStatus);
    this.deps.metrics.requests.inc({ provider, model: this.deps.metrics.modelLabel(this.model), status: codeLabel });
    this.deps.metrics.duration.observe({ provider }, latencyMs / 1000);
    this.deps.metrics.responseBytes.inc({ provider }, this.#bytesOut);
    let committed: Promise<boolean> = Promise.resolve(true);
    if (this.recorded) {
      try {
        committed = this.deps.store.finishCall({
          callId: this.callId,
          status,
          httpStatus,
          responseBody: this.stream ? null : responseBody,
          usage: this.#usage ?? null,
          firstByteMs: this.#firstByteMs,
          latencyMs,
          errorCode: error?.code ?? null,
          errorMessage: error ? scrubSecrets(error.message, [this.target.provider.apiKey ?? '']) : null,
          decisions: this.lateDecisions,
          endedAt: Date.now(),
        }).then(
          () => true,
          (e: unknown) => {
            this.deps.metrics.storeErrors.inc({ operation: 'finish_call' });
            this.deps.logger.error({ callId: this.callId, status, err: errorSummary(e) }, 'could not record the call result; the call stays pending');
            return false;
          },
        );
      } catch (e) {
        this.deps.metrics.storeErrors.inc({ operation: 'finish_call' });
        this.deps.logger.error({ callId: this.callId, err: errorSummary(e) }, 'could not queue the call result');
        committed = Promise.resolve(false);
      }
    }
    const level = status === 'completed' ? 'info' : 'warn';
    this.deps.logger[level](
      { callId: this.callId, sessionId: this.sessionId, user: this.principal?.subject ?? null, provider, endpoint: this.target.route.endpoint, path: (this.req.url ?? '/').split('?')[0]?.slice(0, 200), model: this.model, stream: this.stream, status, httpStatus, latencyMs, errorCode: error?.code ?? null },
      'call',
    );
    this.#committed = committed;
  }

  /**
   * After {@link finish}: resolves true once the call's result is committed (or the call was
   * never recorded), false when it could not be recorded. Never rejects. The relays wait for it
   * before the last part of an answer reaches the client.
   */
  get committed(): Promise<boolean> {
    return this.#committed ?? Promise.resolve(false);
  }

  /**
   * Counts an answer about to be written only once its result is committed (first byte, bytes
   * out): so the recorded first_byte_ms and the metrics include it. Then write it with `res`.
   */
  countOut(data: string): void {
    this.#markFirstByte(data);
  }
}

/** A log-safe description of an error: its class and code, never its message's data. */
export function errorSummary(error: unknown): string {
  if (isAigovError(error)) return error.code;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `${error.name}${code ? ` ${code}` : ''}: ${error.message.slice(0, 200)}`;
  }
  return typeof error;
}

