/**
 * The approvals API (contract: src/protocol/approvals.ts): list, get, approve, deny, and a live
 * event stream. Every call is authenticated with the same access tokens as the governed API;
 * approvers see what they may decide, requesters their own requests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../../auth/verify-token.ts';
import type { Actor, ApprovalRecord } from '../../core/approvals/approval.ts';
import { AigovError } from '../../core/errors.ts';
import type { Principal } from '../../core/events.ts';
import { APPROVALS_PATH, ApprovalDecisionBodySchema, ApprovalScopeSchema, ApprovalStateSchema, type ApprovalScope } from '../../protocol/approvals.ts';
import { authenticateApiCall, sendApiError, sendApiJson } from '../api-response.ts';
import { inScope, toApprovalView, type ApprovalService, type ApprovalWatch, type DecideResult } from './approval-service.ts';

const MAX_BODY = 16 * 1024;
const KEEP_ALIVE_MS = 15_000;

export interface ApprovalsApi {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Ends the open event streams (the gateway is stopping). */
  close(): void;
}

export function createApprovalsApi(deps: { service: ApprovalService; verifier: TokenVerifier; logger: Logger; now?: () => number; keepAliveMs?: number }): ApprovalsApi {
  const now = deps.now ?? Date.now;
  const streams = new Set<ServerResponse>();

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const rest = url.pathname.slice(APPROVALS_PATH.length).replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const parts = rest === '' ? [] : rest.slice(1).split('/');
    const known = (parts.length === 0 && method === 'GET') || (parts.length === 1 && method === 'GET') || (parts.length === 2 && method === 'POST' && (parts[1] === 'approve' || parts[1] === 'deny'));
    if (!known) {
      const exists = parts.length <= 1 || (parts.length === 2 && (parts[1] === 'approve' || parts[1] === 'deny'));
      return sendApiError(res, new AigovError(exists ? 'AIGOV_E_METHOD_NOT_ALLOWED' : 'AIGOV_E_UNKNOWN_ENDPOINT', { method, path: url.pathname.slice(0, 200) }));
    }
    const principal = await authenticateApiCall(deps.verifier, req, res);
    if (!principal) return;
    const actor = toActor(principal);
    if (parts.length === 0) return list(res, actor, url.searchParams);
    if (parts[0] === 'events') return events(req, res, actor, url.searchParams);
    const id = decodeURIComponent(parts[0] ?? '');
    if (parts.length === 1) {
      const approval = await deps.service.get(id, actor);
      if (!approval) return sendApiError(res, new AigovError('AIGOV_E_APPROVAL_NOT_FOUND', { id: safeId(id) }));
      return sendApiJson(res, 200, toApprovalView(approval, actor, now()));
    }
    const body = await readJson(req);
    if (!body.ok) return sendApiError(res, body.error);
    const parsed = ApprovalDecisionBodySchema.safeParse(body.value ?? {});
    if (!parsed.success) return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected {"reason": "…"} with an optional reason of at most 2000 characters' }));
    const reason = parsed.data.reason?.trim() || null;
    const result = await deps.service.decide(id, actor, parts[1] === 'approve' ? 'approve' : 'deny', reason);
    if (!result.ok) return sendApiError(res, refusalError(result, id, (await deps.service.get(id, actor))?.approvers ?? []));
    return sendApiJson(res, 200, toApprovalView(result.approval, actor, now()));
  };

  const list = async (res: ServerResponse, actor: Actor, query: URLSearchParams): Promise<void> => {
    const scope = parseScope(query.get('scope'));
    const stateText = query.get('state') ?? 'pending';
    const state = stateText === 'all' ? null : ApprovalStateSchema.safeParse(stateText);
    const limit = Number(query.get('limit') ?? 100);
    if (scope === null || (state !== null && !state.success) || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
      return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected scope=decide|mine|all, state=pending|approved|denied|expired|all and limit between 1 and 1000' }));
    }
    const approvals = await deps.service.list(actor, { scope, states: state === null ? null : [state.data], limit });
    sendApiJson(res, 200, { approvals: approvals.map((a) => toApprovalView(a, actor, now())) });
  };

  /**
   * The live inbox: a snapshot of the pending approvals in scope, then every change from any
   * gateway process, each with its change number as the event id. A client that reconnects with
   * `Last-Event-ID` (header, or `last_event_id` for clients that cannot set headers) gets the
   * changes it missed instead of a snapshot — or a snapshot when it is too far behind.
   */
  const events = async (req: IncomingMessage, res: ServerResponse, actor: Actor, query: URLSearchParams): Promise<void> => {
    const scope = parseScope(query.get('scope'));
    const session = query.get('session');
    if (scope === null) return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: 'expected scope=decide|mine|all' }));
    let closed = false;
    const visible = (approval: ApprovalRecord): boolean => inScope(approval, actor, scope) && (session === null || approval.sessionId === session);
    const send = (event: string, data: unknown, id: number): void => {
      if (closed) return;
      res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // Registered before the first await: a client gone while the feed is being read stops its watch.
    let watch: ApprovalWatch | null = null;
    res.on('close', () => {
      closed = true;
      watch?.stop();
      streams.delete(res);
    });
    req.on('error', () => res.destroy());
    watch = await deps.service.watch(parseEventId(req.headers['last-event-id'] ?? query.get('last_event_id')), ({ seq, approval }) => {
      if (visible(approval)) send('approval', toApprovalView(approval, actor, now()), seq);
    });
    if (closed) {
      watch.stop();
      return;
    }
    streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), deps.keepAliveMs ?? KEEP_ALIVE_MS);
    res.on('close', () => clearInterval(keepAlive));
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    // Sent now, not with the first event: a resumed stream with nothing missed has no event to
    // send yet, and its client is live as soon as it has the answer.
    res.flushHeaders();
    if (watch.replay === null) {
      const pending = (await deps.service.list(actor, { scope, states: ['pending'], limit: 1000 })).filter((a) => session === null || a.sessionId === session);
      send('snapshot', { approvals: pending.map((a) => toApprovalView(a, actor, now())) }, watch.position);
    } else {
      for (const { seq, approval } of watch.replay) if (visible(approval)) send('approval', toApprovalView(approval, actor, now()), seq);
    }
    watch.start();
  };

  return {
    prefix: APPROVALS_PATH,
    handle(req, res) {
      route(req, res).catch((error: unknown) => {
        // A store that cannot answer: fail closed, say so, keep serving.
        deps.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'approvals API failed');
        if (!res.headersSent) sendApiError(res, new AigovError('AIGOV_E_APPROVALS_UNAVAILABLE'));
        else res.destroy();
      });
    },
    close() {
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}

/** An event id this API gave out: a change number (anything else is ignored: the client gets a snapshot). */
function parseEventId(value: string | string[] | null | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && /^[0-9]{1,15}$/.test(text.trim()) ? Number(text.trim()) : null;
}

function toActor(principal: Principal): Actor {
  return { subject: principal.subject, email: principal.email, groups: principal.groups };
}

function parseScope(value: string | null): ApprovalScope | null {
  const parsed = ApprovalScopeSchema.safeParse(value ?? 'decide');
  return parsed.success ? parsed.data : null;
}

function refusalError(result: Extract<DecideResult, { ok: false }>, id: string, approvers: readonly string[]): AigovError {
  const refusal = result.refusal;
  const groups = approvers.join(', ') || 'the approver groups';
  switch (refusal.code) {
    case 'AIGOV_E_APPROVAL_NOT_FOUND':
      return new AigovError(refusal.code, { id: safeId(id) });
    case 'AIGOV_E_APPROVAL_SELF':
    case 'AIGOV_E_APPROVAL_FORBIDDEN':
      return new AigovError(refusal.code, { id, approvers: groups });
    case 'AIGOV_E_APPROVAL_CLOSED':
      return new AigovError(refusal.code, { id, state: refusal.state });
    case 'AIGOV_E_APPROVAL_VOTED':
      return new AigovError(refusal.code, { id, remaining: refusal.remaining, approvers: groups });
  }
}

/** Ids come back in errors: keep only what an id can hold. */
function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64) || '(empty)';
}

type JsonResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: AigovError };

async function readJson(req: IncomingMessage): Promise<JsonResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return { ok: false, error: new AigovError('AIGOV_E_BODY_TOO_LARGE', { limit: MAX_BODY }) };
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, error: new AigovError('AIGOV_E_BAD_JSON', { reason: 'the body is not valid JSON' }) };
  }
}
