/**
 * The sessions API on the gateway (authenticated with the user's access token). Users see their
 * own sessions; members of the auditor groups (gateway config) see everyone's, and each of their
 * reads is itself recorded. The CLI validates answers with these same schemas.
 *
 *   GET /aigov/v1/sessions?user=U&since=ISO|ms&until=ISO|ms&provider=P&model=M&action=A&approval=S&limit=N&cursor=C
 *       → SessionList, newest activity first. `user` matches subject or email (auditors only for
 *         others than themselves); `action` a policy decision action any call of the session had
 *         (block, require_approval, mask_request, pseudonymize, mask_response, log, approved, denied,
 *         expired); `approval` an approval state (pending, approved, denied, expired).
 *   GET /aigov/v1/sessions/{id}         → SessionDetail (every call, with its decisions, approvals,
 *         request and answer as recorded — masked text, never raw values — and stream events)
 *   …/{id}?bodies=shared: request bodies the gateway stores as chunks (agents resend their whole
 *         conversation each call) come as `body_chunks` of the session, each once, and each such
 *         call names its body's root chunk in `request_ref` (its `request_body` is then '').
 *         Rebuild a body with ChunkGraph (src/core/recording/request-chunks.ts). Without it (and
 *         from an older gateway) every request_body is whole.
 *   GET /aigov/v1/sessions/{id}/export?format=jsonl|json
 *   …/{id}?raw=1 and …/export?raw=1: auditors only, with the gateway's `audit.raw_copy`: each call
 *         also carries `raw_request_body` (the request as the client sent it); logged as
 *         show-raw / export-raw.
 *       → jsonl: one ExportLine per line (session, then each call followed by its events);
 *         json: the SessionDetail.
 *
 * Errors: `{"error": {"code": "AIGOV_E_…", "message": "…", "hint": "…"}}` with the registry's status.
 */
import { z } from 'zod';

export const SESSIONS_PATH = '/aigov/v1/sessions';

export const SessionUserSchema = z.object({ sub: z.string(), email: z.string().nullable() });

export const SessionSummarySchema = z.object({
  id: z.string(),
  user: SessionUserSchema,
  /** ISO 8601. */
  started_at: z.string(),
  last_call_at: z.string(),
  call_count: z.number().int(),
});
export type SessionSummaryView = z.infer<typeof SessionSummarySchema>;

export const SessionListSchema = z.object({
  sessions: z.array(SessionSummarySchema),
  /** Pass as `cursor` for the next page; null at the end. */
  next_cursor: z.string().nullable(),
});
export type SessionList = z.infer<typeof SessionListSchema>;

export const DecisionViewSchema = z.object({
  stage: z.enum(['request', 'response', 'approval']),
  action: z.string(),
  rule_id: z.string().nullable(),
  reason: z.string(),
  mode: z.enum(['enforce', 'shadow']),
  /** What made the rule match: entity type and position in the client's text (never the value). */
  detections: z.array(z.object({ type: z.string(), where: z.string(), start: z.number().int(), end: z.number().int() })).optional(),
});
export type DecisionView = z.infer<typeof DecisionViewSchema>;

export const CallApprovalSchema = z.object({
  id: z.string(),
  state: z.enum(['pending', 'approved', 'denied', 'expired']),
  rule_id: z.string(),
  created_at: z.string(),
  decided_at: z.string().nullable(),
  votes: z.array(z.object({ by: SessionUserSchema, decision: z.enum(['approve', 'deny']), reason: z.string().nullable(), at: z.string() })),
});
export type CallApprovalView = z.infer<typeof CallApprovalSchema>;

export const StreamEventViewSchema = z.object({
  /** Milliseconds since the call started: replay at the original pace. */
  offset_ms: z.number(),
  /** The SSE block as it was sent to the client. */
  raw: z.string(),
});
export type StreamEventView = z.infer<typeof StreamEventViewSchema>;

export const CallViewSchema = z.object({
  id: z.string(),
  session_id: z.string(),
  user: SessionUserSchema.extend({ groups: z.array(z.string()) }),
  client: z.object({ user_agent: z.string().nullable(), sdk: z.string().nullable() }),
  provider: z.string(),
  provider_kind: z.enum(['openai', 'anthropic']),
  endpoint: z.string(),
  method: z.string(),
  path: z.string(),
  model: z.string().nullable(),
  stream: z.boolean(),
  status: z.enum(['pending', 'completed', 'failed', 'aborted', 'blocked']),
  http_status: z.number().int().nullable(),
  started_at: z.string(),
  ended_at: z.string().nullable(),
  first_byte_ms: z.number().nullable(),
  latency_ms: z.number().nullable(),
  usage: z
    .object({
      input_tokens: z.number().optional(),
      output_tokens: z.number().optional(),
      total_tokens: z.number().optional(),
      cache_read_tokens: z.number().optional(),
      cache_write_tokens: z.number().optional(),
      reasoning_tokens: z.number().optional(),
      /** US dollars; null: the model has no price (absent: recorded before pricing existed). */
      cost_usd: z.number().nullable().optional(),
    })
    .nullable(),
  error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
  decisions: z.array(DecisionViewSchema),
  approvals: z.array(CallApprovalSchema),
  /** The request body as recorded (what went upstream, after masking); '' when `request_ref` is given. */
  request_body: z.string(),
  /** Only with `?bodies=shared`: the body is the chunk with this id of the session's `body_chunks`. */
  request_ref: z.number().int().positive().optional(),
  /**
   * Only with `?raw=1` (auditors, gateway with `audit.raw_copy`): the request as the client sent
   * it, before masking; null when this call was recorded without a raw copy.
   */
  raw_request_body: z.string().nullable().optional(),
  /** The answer body as sent to the client (non-streamed), else null. */
  response_body: z.string().nullable(),
  /** The answer's SSE events as sent to the client (streamed), else empty. */
  events: z.array(StreamEventViewSchema),
});
export type CallView = z.infer<typeof CallViewSchema>;

export const SessionDetailSchema = z.object({
  session: SessionSummarySchema,
  calls: z.array(CallViewSchema),
  /**
   * Only with `?bodies=shared`: the session's request-body chunks by id, each as its kind digit
   * (`0` leaf, `1` node) followed by its stored text (src/core/recording/request-chunks.ts).
   */
  body_chunks: z.record(z.string(), z.string()).optional(),
});
export type SessionDetail = z.infer<typeof SessionDetailSchema>;

/** One line of a jsonl export. */
export const ExportLineSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('session'), session: SessionSummarySchema }),
  z.object({ type: z.literal('call'), call: CallViewSchema.omit({ events: true }) }),
  z.object({ type: z.literal('event'), call_id: z.string(), seq: z.number().int(), offset_ms: z.number(), raw: z.string() }),
]);
export type ExportLine = z.infer<typeof ExportLineSchema>;
