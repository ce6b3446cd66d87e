/**
 * The sessions API (contract: src/protocol/sessions.ts): list sessions, read one with every call,
 * its decisions, approvals and stream events, and export it as jsonl or json. Authenticated with
 * the same access tokens as the governed API. A user sees their own sessions; members of the
 * auditor groups (config `audit.auditor_groups`) see everyone's, and each of their reads is
 * written to the access log BEFORE the answer is sent: a read that cannot be logged is refused.
 *
 * `?bodies=shared` on show: request bodies stored as chunks come once per session (`body_chunks`)
 * and each call names its root (`request_ref`): a long agent session is not rebuilt into every
 * call's full body (`aigov sessions show` asks for it; --json and export get whole bodies).
 *
 * Fail closed: a store that cannot answer gives 503 AIGOV_E_STORE_READ_FAILED, never a crash; an
 * export that fails half-way is cut off (the client sees a truncated body, not a complete one).
 * Someone else's session is "not found" (404), so ids do not reveal whose sessions exist.
 *
 * Raw copies (`?raw=1` on show and export, gateway config `audit.raw_copy`): auditors only (403
 * for anyone else, 409 when the gateway keeps none). Each call then also carries
 * `raw_request_body`, the request as the client sent it, opened with the gateway's key (null for
 * a call recorded without one); the read is logged as `show-raw` / `export-raw` before any of it
 * is opened. A copy that does not open (another key, altered bytes) fails the whole read with
 * AIGOV_E_RAW_COPY_UNREADABLE naming the call: nothing of it is returned.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/verify-token.ts';
import { effectiveState, type ApprovalRecord } from '../core/approvals/approval.ts';
import { AigovError } from '../core/errors.ts';
import type { Principal } from '../core/events.ts';
import type { StoredChunk } from '../core/recording/request-chunks.ts';
import type { CallApprovalView, CallView, DecisionView, ExportLine, SessionDetail, SessionList, SessionSummaryView } from '../protocol/sessions.ts';
import { SESSIONS_PATH } from '../protocol/sessions.ts';
import { authenticateApiCall, sendApiError, sendApiJson } from './api-response.ts';
import { RawCopyOpenError, type RawCopySealer } from '../store/raw-copy-sealer.ts';
import {
  approvalIdsInDecisions,
  type AccessLogEntry,
  type CallRecord,
  type RecordingStore,
  type SessionCursor,
  type SessionFilter,
  type SessionRecord,
  type StreamEventRecord,
} from '../store/recording-store.ts';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const ACTIONS = ['allow', 'block', 'require_approval', 'mask_request', 'pseudonymize', 'mask_response', 'log', 'approved', 'denied', 'expired'];
const APPROVAL_STATES = new Set(['pending', 'approved', 'denied', 'expired'] as const);

export interface SessionsApi {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface SessionsApiDeps {
  readonly store: RecordingStore;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  /** Members of any of these groups read every user's sessions (and are logged doing so). */
  readonly auditorGroups: readonly string[];
  /** With `audit.raw_copy`: opens the sealed raw request copies for auditors (`?raw=1`). */
  readonly rawCopy?: RawCopySealer | null;
  readonly now?: () => number;
}

interface Reader {
  readonly principal: Principal;
  readonly auditor: boolean;
}

export function createSessionsApi(deps: SessionsApiDeps): SessionsApi {
  const now = deps.now ?? Date.now;
  const auditorGroups = new Set(deps.auditorGroups);

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const rest = url.pathname.slice(SESSIONS_PATH.length).replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const parts = rest === '' ? [] : rest.slice(1).split('/');
    const shape = parts.length <= 1 || (parts.length === 2 && parts[1] === 'export');
    if (!shape) return sendApiError(res, new AigovError('AIGOV_E_UNKNOWN_ENDPOINT', { method, path: url.pathname.slice(0, 200) }));
    if (method !== 'GET') return sendApiError(res, new AigovError('AIGOV_E_METHOD_NOT_ALLOWED', { method, path: url.pathname.slice(0, 200) }));
    const principal = await authenticateApiCall(deps.verifier, req, res);
    if (!principal) return;
    const reader: Reader = { principal, auditor: principal.groups.some((g) => auditorGroups.has(g)) };
    if (parts.length === 0) return list(res, reader, url.searchParams);
    const raw = parseRawFlag(url.searchParams.get('raw'));
    if (raw === null) return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected raw=1 or raw=0' }));
    if (raw) {
      if (!reader.auditor) return sendApiError(res, new AigovError('AIGOV_E_RAW_COPY_FORBIDDEN', { groups: [...auditorGroups].join(', ') || 'none configured' }));
      if (!deps.rawCopy) return sendApiError(res, new AigovError('AIGOV_E_RAW_COPY_DISABLED'));
    }
    const id = decodeId(parts[0] ?? '');
    const bodies = url.searchParams.get('bodies') ?? 'whole';
    if (bodies !== 'whole' && bodies !== 'shared') return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected bodies=whole or bodies=shared' }));
    if (parts.length === 1) return show(res, reader, id, raw, bodies === 'shared');
    return exportSession(req, res, reader, id, url.searchParams.get('format') ?? 'jsonl', raw);
  };

  /**
   * For a `?raw=1` read by an auditor: logs it, then opens every raw copy of the session. The
   * bodies by call id (null: recorded without a copy), or the error to answer with.
   */
  const openRawCopies = async (reader: Reader, action: 'show-raw' | 'export-raw', sessionId: string, calls: readonly CallRecord[]): Promise<Map<string, string | null> | AigovError> => {
    const sealer = deps.rawCopy;
    if (!sealer) return new AigovError('AIGOV_E_RAW_COPY_DISABLED');
    const copies = await deps.store.getRawCopies(sessionId);
    await logAccess(reader, action, sessionId, null);
    const bodies = new Map<string, string | null>();
    try {
      for (const call of calls) {
        const copy = copies[call.callId];
        bodies.set(call.callId, copy === undefined ? null : sealer.open(call.callId, copy));
      }
    } catch (error) {
      if (!(error instanceof RawCopyOpenError)) throw error;
      deps.logger.error({ sessionId: safeId(sessionId), callId: error.callId, reason: error.reason }, 'a raw request copy did not open');
      return new AigovError('AIGOV_E_RAW_COPY_UNREADABLE', { reason: error.message });
    }
    return bodies;
  };

  const list = async (res: ServerResponse, reader: Reader, query: URLSearchParams): Promise<void> => {
    const parsed = parseListQuery(query);
    if ('error' in parsed) return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: parsed.error }));
    const { filter: asked, limit, cursor } = parsed;
    let filter: SessionFilter = asked;
    if (!reader.auditor) {
      const { user, ...others } = asked;
      if (user !== undefined && !isSelf(reader.principal, user)) {
        return sendApiError(res, new AigovError('AIGOV_E_SESSIONS_FORBIDDEN', { groups: [...auditorGroups].join(', ') || 'none configured' }));
      }
      filter = { ...others, owner: { subject: reader.principal.subject, issuer: reader.principal.issuer } };
    }
    const page = await deps.store.querySessions(filter, { limit, cursor });
    if (reader.auditor) await logAccess(reader, 'list', null, describeFilter(asked, limit, cursor !== null));
    const body: SessionList = { sessions: page.sessions.map(toSummaryView), next_cursor: page.next === null ? null : encodeCursor(page.next) };
    sendApiJson(res, 200, body);
  };

  /** The session if the reader may see it, else null (not found, whoever owns it). */
  const visibleSession = async (reader: Reader, id: string): Promise<SessionRecord | null> => {
    if (!validId(id)) return null;
    const session = await deps.store.getSession(id);
    if (session === null) return null;
    return reader.auditor || owns(reader.principal, session) ? session : null;
  };

  const show = async (res: ServerResponse, reader: Reader, id: string, raw: boolean, shared: boolean): Promise<void> => {
    if (!validId(id)) return sendApiError(res, new AigovError('AIGOV_E_SESSION_NOT_FOUND', { id: safeId(id) }));
    const detail = await deps.store.getSessionDetail(id, { sharedBodies: shared });
    if (detail === null || !(reader.auditor || owns(reader.principal, detail.session))) {
      return sendApiError(res, new AigovError('AIGOV_E_SESSION_NOT_FOUND', { id: safeId(id) }));
    }
    let rawBodies: Map<string, string | null> | null = null;
    if (raw) {
      const opened = await openRawCopies(reader, 'show-raw', id, detail.calls);
      if (opened instanceof AigovError) return sendApiError(res, opened);
      rawBodies = opened;
    } else if (reader.auditor) await logAccess(reader, 'show', id, null);
    const at = now();
    const body: SessionDetail = {
      session: toSummaryView(detail.session),
      calls: detail.calls.map((call) => toCallView(call, detail.events[call.callId] ?? [], detail.approvals, at, rawBodies?.get(call.callId))),
      ...(detail.chunks === undefined ? {} : { body_chunks: chunksView(detail.chunks) }),
    };
    sendApiJson(res, 200, body);
  };

  const exportSession = async (req: IncomingMessage, res: ServerResponse, reader: Reader, id: string, format: string, raw: boolean): Promise<void> => {
    if (format !== 'jsonl' && format !== 'json') return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected format=jsonl or format=json' }));
    const session = await visibleSession(reader, id);
    if (session === null) return sendApiError(res, new AigovError('AIGOV_E_SESSION_NOT_FOUND', { id: safeId(id) }));
    // Calls (with their bodies) and approvals are read up front; the stream events, the bulk of
    // a session, are read and written one call at a time with backpressure.
    const calls = await deps.store.listCalls(id);
    const approvals = await deps.store.listSessionApprovals(id, calls.flatMap((c) => approvalIdsInDecisions(c.decisions)));
    let rawBodies: Map<string, string | null> | null = null;
    if (raw) {
      const opened = await openRawCopies(reader, 'export-raw', id, calls);
      if (opened instanceof AigovError) return sendApiError(res, opened);
      rawBodies = opened;
    } else if (reader.auditor) await logAccess(reader, 'export', id, null);
    const at = now();
    let closed = false;
    res.on('close', () => (closed = true));
    req.on('error', () => res.destroy());
    res.writeHead(200, {
      'content-type': format === 'jsonl' ? 'application/x-ndjson; charset=utf-8' : 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-disposition': `attachment; filename="session-${safeId(id)}.${format}"`,
    });
    const write = async (text: string): Promise<void> => {
      if (closed) throw new ClientGone();
      if (!res.write(text)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    };
    try {
      if (format === 'jsonl') {
        await write(`${JSON.stringify({ type: 'session', session: toSummaryView(session) } satisfies ExportLine)}\n`);
        for (const call of calls) {
          const { events: _none, ...view } = toCallView(call, [], approvals, at, rawBodies?.get(call.callId));
          await write(`${JSON.stringify({ type: 'call', call: view } satisfies ExportLine)}\n`);
          const events = await deps.store.getStreamEvents(call.callId);
          let seq = 0;
          let chunk = '';
          for (const event of events) {
            chunk += `${JSON.stringify({ type: 'event', call_id: call.callId, seq: seq++, offset_ms: event.offsetMs, raw: event.raw } satisfies ExportLine)}\n`;
            if (chunk.length >= 64 * 1024) {
              await write(chunk);
              chunk = '';
            }
          }
          if (chunk !== '') await write(chunk);
        }
      } else {
        // The SessionDetail, written call by call so that only one call's events are in memory.
        await write(`{"session":${JSON.stringify(toSummaryView(session))},"calls":[`);
        for (const [i, call] of calls.entries()) {
          const events = await deps.store.getStreamEvents(call.callId);
          await write(`${i > 0 ? ',' : ''}${JSON.stringify(toCallView(call, events, approvals, at, rawBodies?.get(call.callId)))}`);
        }
        await write(']}\n');
      }
      res.end();
    } catch (error) {
      if (error instanceof ClientGone) return;
      // Headers are out: cut the body off so the client cannot take it for a complete export.
      deps.logger.error({ err: error instanceof Error ? error.message : String(error), sessionId: safeId(id) }, 'sessions export failed');
      res.destroy();
    }
  };

  const logAccess = async (reader: Reader, action: AccessLogEntry['action'], sessionId: string | null, filter: string | null): Promise<void> => {
    const p = reader.principal;
    await deps.store.recordAccess({ at: now(), actor: { subject: p.subject, issuer: p.issuer, email: p.email }, action, sessionId, filter });
  };

  return {
    prefix: SESSIONS_PATH,
    handle(req, res) {
      route(req, res).catch((error: unknown) => {
        // A store that cannot answer (or cannot log an auditor's read): fail closed, keep serving.
        deps.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'sessions API failed');
        if (!res.headersSent) sendApiError(res, new AigovError('AIGOV_E_STORE_READ_FAILED'));
        else res.destroy();
      });
    },
  };
}

class ClientGone extends Error {}

// ── query parsing ──────────────────────────────────────────────────────────────────────────

type ListQuery = { readonly filter: SessionFilter; readonly limit: number; readonly cursor: SessionCursor | null } | { readonly error: string };

function parseListQuery(query: URLSearchParams): ListQuery {
  const text = (name: string): string | undefined => {
    const value = query.get(name)?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const filter: { -readonly [K in keyof SessionFilter]: SessionFilter[K] } = {};
  const user = text('user');
  if (user !== undefined) filter.user = user.slice(0, 320);
  for (const name of ['since', 'until'] as const) {
    const value = text(name);
    if (value === undefined) continue;
    const ms = parseInstant(value);
    if (ms === null) return { error: `${name} must be an ISO 8601 date-time or epoch milliseconds` };
    filter[name] = ms;
  }
  const provider = text('provider');
  if (provider !== undefined) filter.provider = provider.slice(0, 100);
  const model = text('model');
  if (model !== undefined) filter.model = model.slice(0, 200);
  const action = text('action');
  if (action !== undefined) {
    if (!/^[a-z_]{1,40}$/.test(action)) return { error: `action must be a decision action (${ACTIONS.join(', ')})` };
    filter.action = action;
  }
  const approval = text('approval');
  if (approval !== undefined) {
    if (!APPROVAL_STATES.has(approval as 'pending')) return { error: 'approval must be pending, approved, denied or expired' };
    filter.approval = approval as 'pending';
  }
  const limitText = text('limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return { error: `limit must be an integer between 1 and ${MAX_LIMIT}` };
  const cursorText = text('cursor');
  const cursor = cursorText === undefined ? null : decodeCursor(cursorText);
  if (cursor === undefined) return { error: 'cursor is not one this gateway gave out (pass next_cursor as it came)' };
  return { filter, limit, cursor };
}

/** `raw`: absent, 0 or false → false; 1 or true → true; anything else → null (a bad request). */
function parseRawFlag(value: string | null): boolean | null {
  if (value === null || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  return null;
}

/** `since` / `until` as the aigov API takes them: ISO 8601 date(-time) or epoch milliseconds. */
export function parseInstant(value: string): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** Opaque to clients: base64url of `[lastCallAt, sessionId]`. */
export function encodeCursor(cursor: SessionCursor): string {
  return Buffer.from(JSON.stringify([cursor.lastCallAt, cursor.sessionId])).toString('base64url');
}

function decodeCursor(text: string): SessionCursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string' && validId(value[1])) {
      return { lastCallAt: value[0] as number, sessionId: value[1] };
    }
  } catch {
    // not ours
  }
  return undefined;
}

/** What an auditor asked for, for the access log: filter names and values, no record contents. */
function describeFilter(filter: SessionFilter, limit: number, paged: boolean): string {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (value !== undefined && typeof value !== 'object') out[key] = key === 'since' || key === 'until' ? new Date(value as number).toISOString() : (value as string | number);
  }
  out['limit'] = limit;
  if (paged) out['cursor'] = true;
  return JSON.stringify(out);
}

// ── access ─────────────────────────────────────────────────────────────────────────────────

function owns(principal: Principal, session: SessionRecord): boolean {
  return session.subject === principal.subject && session.issuer === principal.issuer;
}

/** `user` (a subject, or an email in any case) names the principal itself. */
export function isSelf(principal: Principal, user: string): boolean {
  return user === principal.subject || (principal.email !== null && user.toLowerCase() === principal.email.toLowerCase());
}

/** A path segment as an id; a malformed escape is an id no session has. */
function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/** Session ids as the gateway accepts them in x-aigov-session. */
function validId(id: string): boolean {
  return /^[A-Za-z0-9._:-]{1,128}$/.test(id);
}

/** Ids come back in errors: keep only what an id can hold. */
function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9._:-]/g, '').slice(0, 128) || '(empty)';
}

// ── views ──────────────────────────────────────────────────────────────────────────────────

const iso = (ms: number): string => new Date(ms).toISOString();

function toSummaryView(s: SessionRecord): SessionSummaryView {
  return { id: s.sessionId, user: { sub: s.subject, email: s.email }, started_at: iso(s.startedAt), last_call_at: iso(s.lastCallAt), call_count: s.callCount };
}

/** The session's request-body chunks on the wire: id → kind digit followed by the text. */
function chunksView(chunks: ReadonlyMap<number, StoredChunk>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, chunk] of chunks) out[String(id)] = `${chunk.kind}${chunk.text}`;
  return out;
}

function toApprovalView(a: ApprovalRecord, now: number): CallApprovalView {
  return {
    id: a.id,
    state: effectiveState(a, now),
    rule_id: a.ruleId,
    created_at: iso(a.createdAt),
    decided_at: a.decidedAt === null ? null : iso(a.decidedAt),
    votes: a.votes.map((v) => ({ by: { sub: v.by.sub, email: v.by.email }, decision: v.decision, reason: v.reason, at: iso(v.at) })),
  };
}

/** `rawBody`: with `?raw=1`, the opened raw copy (null: none); undefined leaves the field out. */
export function toCallView(call: CallRecord, events: readonly StreamEventRecord[], approvals: readonly ApprovalRecord[], now: number, rawBody?: string | null): CallView {
  const named = approvalIdsInDecisions(call.decisions);
  const usage = call.usage;
  return {
    id: call.callId,
    session_id: call.sessionId,
    user: { sub: call.principal.subject, email: call.principal.email, groups: [...call.principal.groups] },
    client: { user_agent: call.client.userAgent, sdk: call.client.sdk },
    provider: call.provider,
    provider_kind: call.providerKind,
    endpoint: call.endpoint,
    method: call.method,
    path: call.path,
    model: call.model,
    stream: call.stream,
    status: call.status,
    http_status: call.httpStatus,
    started_at: iso(call.startedAt),
    ended_at: call.endedAt === null ? null : iso(call.endedAt),
    first_byte_ms: call.firstByteMs,
    latency_ms: call.latencyMs,
    usage:
      usage === null
        ? null
        : {
            ...(usage.inputTokens !== undefined ? { input_tokens: usage.inputTokens } : {}),
            ...(usage.outputTokens !== undefined ? { output_tokens: usage.outputTokens } : {}),
            ...(usage.totalTokens !== undefined ? { total_tokens: usage.totalTokens } : {}),
            ...(usage.cacheReadTokens !== undefined ? { cache_read_tokens: usage.cacheReadTokens } : {}),
            ...(usage.cacheWriteTokens !== undefined ? { cache_write_tokens: usage.cacheWriteTokens } : {}),
            ...(usage.reasoningTokens !== undefined ? { reasoning_tokens: usage.reasoningTokens } : {}),
            ...(usage.costNanoUsd !== undefined ? { cost_usd: usage.costNanoUsd === null ? null : usage.costNanoUsd / 1e9 } : {}),
          },
    error: call.errorCode === null ? null : { code: call.errorCode, message: call.errorMessage },
    decisions: call.decisions.map((d): DecisionView => ({ stage: d.stage, action: d.action, rule_id: d.ruleId, reason: d.reason, mode: d.mode, ...(d.detections ? { detections: [...d.detections] } : {}) })),
    approvals: approvals.filter((a) => a.callId === call.callId || named.includes(a.id)).map((a) => toApprovalView(a, now)),
    request_body: call.requestBody,
    ...(call.requestRef !== undefined ? { request_ref: call.requestRef } : {}),
    ...(rawBody !== undefined ? { raw_request_body: rawBody } : {}),
    response_body: call.responseBody,
    events: events.map((e) => ({ offset_ms: e.offsetMs, raw: e.raw })),
  };
}
