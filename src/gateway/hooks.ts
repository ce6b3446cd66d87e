/**
 * The pipeline's extension points. Policy (issue "Policy engine") and masking plug in here;
 * until then the defaults allow everything and pass answers through unchanged.
 */
import type { NormalizedRequest, PolicyDecision, Principal } from '../core/events.ts';
import type { SseEvent } from '../core/sse.ts';
import type { EndpointId } from '../core/events.ts';

export interface CallContext {
  readonly callId: string;
  readonly sessionId: string;
  readonly principal: Principal;
  readonly provider: string;
  readonly endpoint: EndpointId;
  readonly request: NormalizedRequest;
}

/** Transforms an answer on its way to the client. Must give the same result streamed or not. */
export interface ResponseTransform {
  /** Takes one whole upstream event; returns the events to send now (it may hold text back). */
  transformEvent(event: SseEvent): SseEvent[];
  /** The stream ended: returns whatever was held back. */
  end(): SseEvent[];
  /** Transforms a whole non-streamed JSON body (as text). */
  transformBody(body: string): string;
}

export interface PipelineHooks {
  evaluateRequest(ctx: CallContext): PolicyDecision[] | Promise<PolicyDecision[]>;
  createResponseTransform(ctx: CallContext): ResponseTransform;
}

const IDENTITY: ResponseTransform = {
  transformEvent: (event) => [event],
  end: () => [],
  transformBody: (body) => body,
};

export const defaultHooks: PipelineHooks = {
  evaluateRequest: () => [{ action: 'allow', ruleId: null, reason: 'no policy configured' }],
  createResponseTransform: () => IDENTITY,
};
