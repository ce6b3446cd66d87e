/**
 * The pipeline's extension point: policy decides on each request, and may rewrite the request
 * text going upstream and the answer text coming back (streamed or not). Without a policy the
 * default verdict allows everything and changes nothing.
 */
import type { EndpointId, NormalizedRequest, Principal } from '../core/events.ts';
import type { ApprovalSpec, TextSlot } from '../core/policy/types.ts';
import type { PolicyDecisionRecord } from '../store/recording-store.ts';
import type { TextRewriter } from '../providers/channels.ts';
import type { ToolCallJudge } from './tool-gate.ts';

export interface CallContext {
  readonly callId: string;
  readonly sessionId: string;
  readonly principal: Principal;
  readonly provider: string;
  readonly endpoint: EndpointId;
  readonly request: NormalizedRequest;
}

/** What policy says about one request. Decisions are data: recorded, never thrown. */
export interface RequestVerdict {
  /** Every decision taken, shadow ones included (recorded with the call). */
  readonly decisions: readonly Omit<PolicyDecisionRecord, 'stage'>[];
  /** The request must not go upstream: answered with a provider-shaped 403 naming the rule. */
  readonly refuse: Refusal | null;
  /**
   * The new text of one text slot of the request (the codec's readRequest: a body string at the
   * location policy planned on), before it is recorded and sent (mask_request, pseudonymize).
   * For a refused request it shapes only the record (e.g. the blocked secret redacted).
   */
  readonly rewriteRequest: ((slot: TextSlot) => string) | null;
  /**
   * Makes durable what rewriting the request produced (new pseudonyms): awaited after
   * rewriteRequest, before the request is recorded or sent; a rejection refuses it (with the
   * rejection's AigovError code, else AIGOV_E_POLICY_FAILED). When another replica stored
   * pseudonyms for the session first (its numbers taken), the vault learns them and calls
   * `rewriteAgain` — which rewrites every slot again from the text as sent, with rewriteRequest —
   * before it stores again, so the request goes upstream with the placeholders every replica agrees on.
   */
  readonly commit?: ((rewriteAgain: () => void) => Promise<void>) | null;
  /** Rewrites the answer's text (mask_response, restoring pseudonyms), streamed or not. */
  readonly rewriteResponse: TextRewriter | null;
  /**
   * Judges the tool calls in the answer: a blocked call (or one an approver denies) is replaced
   * by a text saying so; require_approval holds the answer; shadow rules are recorded only.
   */
  readonly judgeToolCall?: ToolCallJudge | null;
}

export type Refusal =
  | { readonly kind: 'block'; readonly ruleId: string; readonly reason: string }
  | {
      readonly kind: 'require_approval';
      readonly ruleId: string;
      readonly reason: string;
      /** Who approves and for how long; null when the policy names no approvers (then it is refused). */
      readonly approval: ApprovalSpec | null;
      /** What approvers see: the prompt with secrets and personal data redacted, cut short. */
      readonly preview: string;
    };

export interface PipelineHooks {
  /**
   * Must not throw for expected outcomes; a throw is a policy failure and refuses the request
   * (fail closed) — with the thrown AigovError's code, else AIGOV_E_POLICY_FAILED. The same holds
   * for a throw from the verdict's rewriteRequest.
   */
  evaluateRequest(ctx: CallContext): RequestVerdict | Promise<RequestVerdict>;
}

export const ALLOW_ALL: RequestVerdict = Object.freeze({
  decisions: [{ action: 'allow', ruleId: null, reason: 'no policy configured', mode: 'enforce' as const }],
  refuse: null,
  rewriteRequest: null,
  rewriteResponse: null,
  judgeToolCall: null,
});

export const defaultHooks: PipelineHooks = { evaluateRequest: () => ALLOW_ALL };
