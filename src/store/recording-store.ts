/**
 * The recording store: the system of record for every governed call.
 *
 * Contract (the gateway relies on each point):
 * - `recordRequest` resolves only once the call row is durable (committed). If it rejects,
 *   the gateway answers 503 and forwards nothing: a request that cannot be recorded is not sent.
 * - `appendStreamEvents` and `finishCall` may be batched behind the scenes (write-behind), but
 *   `flush()` and `close()` make everything queued durable. Failures there are counted and
 *   logged (the answer is already on its way) and surface in `health()`.
 * - Implementations never log or throw values from the records themselves.
 *
 * SQLite (src/store/sqlite) is the default; a Postgres implementation follows later.
 */
import type { EndpointId, Principal, ProviderKind, Usage } from '../core/events.ts';

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
  readonly decisions: readonly PolicyDecisionRecord[];
  /** Epoch milliseconds. */
  readonly startedAt: number;
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
  /** Queues the final state of a call (write-behind). */
  finishCall(result: CallResultRecord): void;
  /** Makes everything queued durable. */
  flush(): Promise<void>;
  /** Cheap liveness probe for /readyz: the store answers a trivial query. */
  health(): Promise<StoreHealth>;

  listSessions(options?: { limit?: number; subject?: string }): Promise<SessionSummary[]>;
  getCall(callId: string): Promise<CallRecord | null>;
  listCalls(sessionId: string): Promise<CallRecord[]>;
  getStreamEvents(callId: string): Promise<StreamEventRecord[]>;

  /** Flushes and releases the store. Idempotent. */
  close(): Promise<void>;
}

/** recordRequest's rejection when the session id already belongs to another principal. Any driver throws it. */
export class SessionOwnerConflictError extends Error {
  constructor() {
    super('recording the request failed: the session id belongs to another principal');
    this.name = 'SessionOwnerConflictError';
  }
}
