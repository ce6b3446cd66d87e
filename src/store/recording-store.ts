/**
 * The recording store: the system of record for every governed call.
 *
 * Contract (the gateway relies on each point):
 * - `recordRequest` resolves only once the call row is durable (committed). If it rejects,
 *   the gateway answers 503 and forwards nothing: a request that cannot be recorded is not sent.
 * - `appendStreamEvents` and `finishCall` may be batched behind the scenes (write-behind), but
 *   `flush()` and `close()` make everything queued durable. Failures there are counted and
 *   logged and surface in `health()`.
 * - `finishCall` returns a promise that resolves only once the call's result and every stream
 *   event of the call appended before it are committed (many calls may share that commit), and
 *   rejects when the result was not written (the call stays `pending`). The gateway lets the
 *   terminal event of a stream, or a body, reach the client only after it resolves: an answer
 *   is complete at the client only once its record is. Callers that do not wait may ignore it
 *   (it never causes an unhandled rejection).
 * - Calls a stopped process left `pending` are marked `aborted` (AIGOV_E_GATEWAY_STOPPED) when a
 *   store opens, once their owner is known to be gone; never the calls of a live process.
 * - Implementations never log or throw values from the records themselves.
 *
 * SQLite (src/store/sqlite) is the default; PostgreSQL (src/store/postgres) is for several
 * gateway replicas sharing one database.
 */
import type { ApprovalRecord } from '../core/approvals/approval.ts';
import type { EndpointId, Principal, ProviderKind, Usage } from '../core/events.ts';
import type { StoredChunk } from '../core/recording/request-chunks.ts';
import type { TimeZone } from '../core/usage/calendar-days.ts';

export type CallStatus = 'pending' | 'completed' | 'failed' | 'aborted' | 'blocked';

export interface ClientInfo {
  readonly userAgent: string | null;
  readonly remoteAddress: string | null;
  /** e.g. "openai-node 5.1.0" from x-stainless-* headers, when present. */
  readonly sdk: string | null;
}

export interface PolicyDecisionRecord {
  /** `approval`: a hold's outcome (who approved or denied, or expiry), recorded when the call ends. */
  readonly stage: 'request' | 'response' | 'approval';
  readonly action: string;
  readonly ruleId: string | null;
  readonly reason: string;
  readonly mode: 'enforce' | 'shadow';
  /** What made the rule match: entity types and where (positions in the client's text) — never values. */
  readonly detections?: readonly DetectionRecord[];
}

export interface DetectionRecord {
  readonly type: string;
  /** e.g. `messages[2].parts[0]`, `input[0]`, `tools[1].description`. */
  readonly where: string;
  /** UTF-16 offsets in that text as the client sent it. */
  readonly start: number;
  readonly end: number;
}

export interface CallRequestRecord {
  readonly callId: string;
  /** The session this call belongs to; created on first use. */
  readonly sessionId: string;
  readonly principal: Principal;
  readonly client: ClientInfo;
  readonly provider: string;
  readonly providerKind: ProviderKind;
  readonly endpoint: EndpointId;
  readonly method: string;
  readonly path: string;
  readonly model: string | null;
  readonly stream: boolean;
  /** The request body exactly as sent upstream (after any request transform), as text. */
  readonly requestBody: string;
  /**
   * With `audit.raw_copy`: the body as the client sent it, SEALED (raw-copy-sealer.ts), written
   * in the same transaction as the call row. Never plaintext. Absent: no raw copy.
   */
  readonly rawCopy?: SealedRawCopy | null;
  readonly decisions: readonly PolicyDecisionRecord[];
  /** Epoch milliseconds. */
  readonly startedAt: number;
}

/** An AES-256-GCM sealed copy of a request body (raw-copy-sealer.ts) and the fingerprint of its key. */
export interface SealedRawCopy {
  readonly keyId: string;
  readonly sealed: Uint8Array;
}

export interface StreamEventRecord {
  /** Milliseconds since the call started (for replay at the original pace). */
  readonly offsetMs: number;
  /** The SSE block text as sent to the client. */
  readonly raw: string;
}

export interface CallResultRecord {
  readonly callId: string;
  readonly status: CallStatus;
  readonly httpStatus: number | null;
  /** Final body for non-streamed answers (as sent to the client); null for streams. */
  readonly responseBody: string | null;
  readonly usage: Usage | null;
  /** Time to the first byte of the answer to the client, ms since start. */
  readonly firstByteMs: number | null;
  readonly latencyMs: number;
  /** An error code (AIGOV_E_…) or the upstream error type, never a raw message with user data. */
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly decisions: readonly PolicyDecisionRecord[];
  readonly endedAt: number;
}

export interface SessionSummary {
  readonly sessionId: string;
  readonly subject: string;
  readonly email: string | null;
  readonly startedAt: number;
  readonly lastCallAt: number;
  readonly callCount: number;
}

export interface CallRecord extends CallRequestRecord {
  /**
   * Only from a read with shared bodies ({@link RecordingStore.getSessionDetail} with
   * `sharedBodies`): the call's body is the chunk with this id of the detail's `chunks`, and
   * `requestBody` is ''. Absent: `requestBody` is the body.
   */
  readonly requestRef?: number;
  readonly status: CallStatus;
  readonly httpStatus: number | null;
  readonly responseBody: string | null;
  readonly usage: Usage | null;
  readonly firstByteMs: number | null;
  readonly latencyMs: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly endedAt: number | null;
}

/** A session as the session queries return it: the summary plus the owner's issuer. */
export interface SessionRecord extends SessionSummary {
  readonly issuer: string;
}

/** Filters of {@link RecordingStore.querySessions}; every one given must hold. */
export interface SessionFilter {
  /** Only this principal's sessions (a user who is not an auditor). */
  readonly owner?: { readonly subject: string; readonly issuer: string };
  /** Subject, or email (case-insensitive), of the session's owner. */
  readonly user?: string;
  /** Last activity at or after / at or before (epoch ms). */
  readonly since?: number;
  readonly until?: number;
  /** Some call of the session went to this provider / asked for this model. */
  readonly provider?: string;
  readonly model?: string;
  /** Some call of the session had a decision with this action (block, mask_request, approved, …). */
  readonly action?: string;
  /** Some approval of the session is in this state. */
  readonly approval?: 'pending' | 'approved' | 'denied' | 'expired';
}

/** Keyset position: the last session of the previous page (newest activity first). */
export interface SessionCursor {
  readonly lastCallAt: number;
  readonly sessionId: string;
}

export interface SessionPage {
  readonly sessions: readonly SessionRecord[];
  /** Where the next page starts; null when this was the last one. */
  readonly next: SessionCursor | null;
}

/** A session with every call, each call's stream events, and the approvals that concern it. */
export interface SessionDetailRecord {
  readonly session: SessionRecord;
  readonly calls: readonly CallRecord[];
  /** Stream events per call id (calls without events are absent). */
  readonly events: Readonly<Record<string, readonly StreamEventRecord[]>>;
  /**
   * Approvals whose call or session is this session's, or whose id an approval decision of one
   * of its calls names (a retry that reused an earlier approval). As stored (ApprovalRecord).
   */
  readonly approvals: readonly ApprovalRecord[];
  /**
   * With `sharedBodies`: the session's request-body chunks by id (src/core/recording/request-chunks.ts),
   * for the calls that carry a `requestRef`. Absent when no call needs them.
   */
  readonly chunks?: ReadonlyMap<number, StoredChunk>;
}

/** One read of the recordings, kept in the access log. Never record contents. */
export interface AccessLogEntry {
  /** Epoch ms. */
  readonly at: number;
  readonly actor: { readonly subject: string; readonly issuer: string; readonly email: string | null };
  /** `show-raw` / `export-raw`: the read included the decrypted raw request copies. `usage`: a usage report. */
  readonly action: 'list' | 'show' | 'export' | 'show-raw' | 'export-raw' | 'usage';
  /** show / export: the session read. */
  readonly sessionId: string | null;
  /** list, usage: the filters given, as a short JSON text. */
  readonly filter: string | null;
}

/** What a usage report is grouped by (one row per user, group, provider and model, or day). */
export type UsageGrouping = 'user' | 'group' | 'model' | 'day';

/** The calls a usage report sums: started in `[since, until)`, and every filter given holds. */
export interface UsageQuery {
  readonly by: UsageGrouping;
  /** Epoch ms: from (inclusive) … to (exclusive). */
  readonly since: number;
  readonly until: number;
  /** Only this principal's calls (a user who is not an auditor). */
  readonly owner?: { readonly subject: string; readonly issuer: string };
  /** Subject, or email (ASCII case-insensitive), of the caller. */
  readonly user?: string;
  /** With `by: 'day'`: the calendar days are this zone's (UTC when absent). The caller bounds how many days the range has. */
  readonly zone?: TimeZone;
}

/**
 * Sums over a set of calls. Tokens are by the kind they are billed as (core/usage/token-kinds.ts).
 * Every call of the set counts in `calls`, refused ones too (they have no usage).
 */
export interface UsageTotals {
  readonly calls: number;
  readonly inputTokens: number;
  readonly cacheReadTokens: number;
  readonly cacheWriteTokens: number;
  readonly outputTokens: number;
  readonly reasoningTokens: number;
  /** The sum of the priced calls' costs, exact (nano-dollars, 10⁻⁹ USD). */
  readonly costNanoUsd: bigint;
  /** Calls with usage but no cost: their model has no price (or the usage said too little). */
  readonly unpricedCalls: number;
  /** Calls with usage recorded before the gateway priced calls. */
  readonly beforePricingCalls: number;
  /** Completed calls whose answer reported no usage (e.g. an OpenAI stream without `stream_options.include_usage`). */
  readonly noUsageCalls: number;
}

/** Which group a usage row sums. */
export type UsageKey =
  | { readonly by: 'user'; readonly subject: string; readonly issuer: string; readonly email: string | null }
  /** `group` null: calls of callers in no group. */
  | { readonly by: 'group'; readonly group: string | null }
  | { readonly by: 'model'; readonly provider: string; readonly model: string | null }
  | { readonly by: 'day'; readonly day: string };

export interface UsageRow extends UsageTotals {
  readonly key: UsageKey;
}

export interface UsageReport {
  /**
   * By day: every day of the range, in order, empty ones included. Otherwise the groups with calls,
   * dearest first (then most calls, then by key). By group, a call counts in each of its caller's groups.
   */
  readonly rows: readonly UsageRow[];
  /** Over the whole range (a call in several groups counts once). */
  readonly total: UsageTotals;
}

/**
 * What calls started in one minute were charged against budgets (`usage.charged`, else what
 * their usage says: recordedCharge in core/budgets), summed per user, provider and model:
 * what the budget counters are rebuilt from.
 */
export interface ChargeRow {
  readonly subject: string;
  readonly email: string | null;
  readonly groups: readonly string[];
  readonly provider: string;
  readonly providerKind: ProviderKind;
  readonly model: string | null;
  /** Epoch ms of the minute's start. */
  readonly minute: number;
  readonly nanoUsd: number;
  readonly tokens: number;
  readonly requests: number;
}

export interface StoreHealth {
  readonly ok: boolean;
  /** Write-behind failures since start. */
  readonly writeErrors: number;
  readonly detail: string | null;
}

export interface RecordingStore {
  /** Durably records the request before it is forwarded. Rejects when it cannot. */
  recordRequest(record: CallRequestRecord): Promise<void>;
  /** Queues stream events of a call (write-behind, in order). */
  appendStreamEvents(callId: string, events: readonly StreamEventRecord[]): void;
  /**
   * Queues the final state of a call (write-behind). Resolves after the COMMIT that holds it and
   * the call's events queued before it; rejects when it was not written. Safe to ignore.
   */
  finishCall(result: CallResultRecord): Promise<void>;
  /** Makes everything queued durable. */
  flush(): Promise<void>;
  /** Cheap liveness probe for /readyz: the store answers a trivial query. */
  health(): Promise<StoreHealth>;

  listSessions(options?: { limit?: number; subject?: string }): Promise<SessionSummary[]>;
  getCall(callId: string): Promise<CallRecord | null>;
  listCalls(sessionId: string): Promise<CallRecord[]>;
  getStreamEvents(callId: string): Promise<StreamEventRecord[]>;

  /** Sessions matching `filter`, newest activity first, `limit` per page from `cursor`. */
  querySessions(filter: SessionFilter, page: { readonly limit: number; readonly cursor: SessionCursor | null }): Promise<SessionPage>;
  /**
   * A session with its calls, events and approvals; null when there is no such session.
   * `sharedBodies`: request bodies stored as chunks stay chunks (each call's `requestRef`, the
   * detail's `chunks`), so a long agent session is not rebuilt into every call's full body.
   */
  getSessionDetail(sessionId: string, options?: { readonly sharedBodies?: boolean }): Promise<SessionDetailRecord | null>;
  /** The session alone (no calls); null when there is none. */
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /** Approvals of this session, plus those with these ids (named by its approval decisions); oldest first. */
  listSessionApprovals(sessionId: string, approvalIds: readonly string[]): Promise<ApprovalRecord[]>;
  /** The sealed raw request copies of a session's calls, by call id (calls without one are absent). */
  getRawCopies(sessionId: string): Promise<Readonly<Record<string, SealedRawCopy>>>;
  /** Calls, tokens and cost of the calls `query` selects, grouped by `query.by`; one snapshot. */
  usageReport(query: UsageQuery): Promise<UsageReport>;
  /** The charges of the calls started at or after `since` (epoch ms), per minute (budgets are rebuilt from them). */
  chargesSince(since: number): Promise<ChargeRow[]>;
  /** Durably records a read of the recordings (resolves after COMMIT; rejects when it cannot). */
  recordAccess(entry: AccessLogEntry): Promise<void>;

  /** Flushes and releases the store. Idempotent. */
  close(): Promise<void>;
}

/** A write to (or read of) the recording store failed; the message has no record contents. Any driver throws it. */
export class StoreWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreWriteError';
  }
}

/** recordRequest's rejection when the session id already belongs to another principal. Any driver throws it. */
export class SessionOwnerConflictError extends Error {
  constructor() {
    super('recording the request failed: the session id belongs to another principal');
    this.name = 'SessionOwnerConflictError';
  }
}

/**
 * The approval ids an approval-stage decision names: the pipeline writes them first in the
 * reason (`apr_… approved by …`). A retry that reuses an earlier approval names it this way.
 */
export function approvalIdsInDecisions(decisions: readonly PolicyDecisionRecord[]): string[] {
  const ids: string[] = [];
  for (const d of decisions) {
    if (d.stage !== 'approval') continue;
    const id = /^(apr_[A-Za-z0-9]+)\b/.exec(d.reason)?.[1];
    if (id !== undefined && !ids.includes(id)) ids.push(id);
  }
  return ids;
}
