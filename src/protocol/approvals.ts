/**
 * The approvals API on the gateway (authenticated with the user's access token, like every
 * gateway call). Versioned with the path; the CLI validates answers with these same schemas.
 *
 *   GET  /aigov/v1/approvals?scope=decide|mine|all&state=pending|approved|denied|expired|all&limit=N
 *        → { approvals: ApprovalView[] }   newest first. scope: decide = what the caller may decide
 *          (default), mine = the caller's own requests, all = both.
 *   GET  /aigov/v1/approvals/{id}          → ApprovalView (404 AIGOV_E_APPROVAL_NOT_FOUND when the
 *          caller may neither decide it nor owns it)
 *   POST /aigov/v1/approvals/{id}/approve  {"reason"?: string} → ApprovalView
 *   POST /aigov/v1/approvals/{id}/deny     {"reason"?: string} → ApprovalView
 *   GET  /aigov/v1/approvals/events?scope=decide|mine|all[&session=SID]   text/event-stream:
 *          `event: snapshot` data {approvals: ApprovalView[]} (pending ones in scope), then
 *          `event: approval` data ApprovalView on every change (created, voted, decided, expired),
 *          from any gateway replica, and `: keep-alive` comments every 15 s. Every event has an
 *          `id:` (a change number, growing); a client that reconnects with `Last-Event-ID: N` (or
 *          `&last_event_id=N`) gets the `approval` events after N (each approval once, as it is
 *          now) instead of a snapshot — or a snapshot when N is too far back or unknown.
 *
 * Errors: `{"error": {"code": "AIGOV_E_…", "message": "…", "hint": "…"}}` with the registry's status.
 */
import { z } from 'zod';

export const APPROVALS_PATH = '/aigov/v1/approvals';

export const ApprovalStateSchema = z.enum(['pending', 'approved', 'denied', 'expired']);
export type ApprovalState = z.infer<typeof ApprovalStateSchema>;

export const ApprovalPersonSchema = z.object({
  sub: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
});
export type ApprovalPerson = z.infer<typeof ApprovalPersonSchema>;

export const ApprovalVoteSchema = z.object({
  by: ApprovalPersonSchema,
  decision: z.enum(['approve', 'deny']),
  reason: z.string().nullable(),
  /** ISO 8601. */
  at: z.string(),
});
export type ApprovalVote = z.infer<typeof ApprovalVoteSchema>;

export const ApprovalViewSchema = z.object({
  id: z.string(),
  state: ApprovalStateSchema,
  requester: ApprovalPersonSchema.extend({ groups: z.array(z.string()) }),
  rule: z.object({ id: z.string(), reason: z.string() }),
  /** Who may decide: members of any of these groups (never the requester); `required` distinct approvals. */
  approvers: z.object({ groups: z.array(z.string()), required: z.number().int().min(1) }),
  provider: z.string(),
  model: z.string().nullable(),
  endpoint: z.string(),
  stream: z.boolean(),
  /** The prompt with detected secrets and personal data redacted, cut to a few KB. */
  preview: z.string(),
  session_id: z.string(),
  /** Sessions whose identical requests joined it while it was pending (retries); older gateways omit it. */
  joined_session_ids: z.array(z.string()).optional(),
  call_id: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  decided_at: z.string().nullable(),
  votes: z.array(ApprovalVoteSchema),
  /** Whether the caller may approve or deny it now. */
  can_decide: z.boolean(),
});
export type ApprovalView = z.infer<typeof ApprovalViewSchema>;

export const ApprovalListSchema = z.object({ approvals: z.array(ApprovalViewSchema) });

export const ApprovalDecisionBodySchema = z.strictObject({ reason: z.string().max(2000).optional() });

export const ApprovalScopeSchema = z.enum(['decide', 'mine', 'all']);
export type ApprovalScope = z.infer<typeof ApprovalScopeSchema>;
