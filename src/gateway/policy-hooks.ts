/**
 * The policy engine plugged into the pipeline: each request is evaluated against the current
 * policy; the verdict refuses it, or rewrites its text (masking, pseudonyms) and the answer's
 * text (masking PII in answers, restoring pseudonyms), streamed or not.
 */
import { BUILTIN_DETECTORS, detectEntities } from '../core/detection/index.ts';
import { maskText, PseudonymVault, StreamMasker, StreamRestorer } from '../core/masking/index.ts';
import { checkToolCall, createRequestRewriter, evaluatePolicy, type CompiledPolicy, type ResponseMaskingPlan, type ToolGate } from '../core/policy/index.ts';
import type { PipelineHooks, RequestVerdict } from './hooks.ts';
import type { ChannelTransformer, TextRewriter } from './text-rewrite.ts';
import type { ToolCallCheck } from './tool-gate.ts';

export interface PolicySource {
  /** The policy in force now (swapped atomically on reload). */
  current(): CompiledPolicy;
}

/**
 * A refused request is recorded, never sent: its record keeps the words but not the secrets or
 * personal data that got it refused.
 */
function redactForRecord(text: string): string {
  return maskText(text, detectEntities(text, BUILTIN_DETECTORS), () => ({ kind: 'redact' }));
}

/** Pseudonym vaults per session, in memory, least recently used evicted past `limit`. */
export class SessionVaults {
  readonly #vaults = new Map<string, PseudonymVault>();
  readonly #limit: number;
  constructor(limit = 10_000) {
    this.#limit = limit;
  }
  for(sessionId: string): PseudonymVault {
    let vault = this.#vaults.get(sessionId);
    if (vault) this.#vaults.delete(sessionId);
    else vault = new PseudonymVault();
    this.#vaults.set(sessionId, vault);
    if (this.#vaults.size > this.#limit) this.#vaults.delete(this.#vaults.keys().next().value as string);
    return vault;
  }
}

export function createPolicyHooks(source: PolicySource, vaults = new SessionVaults()): PipelineHooks {
  return {
    evaluateRequest(ctx): RequestVerdict {
      const evaluation = evaluatePolicy(source.current(), { principal: ctx.principal, provider: ctx.provider, model: ctx.request.model, endpoint: ctx.endpoint, request: ctx.request });
      const refuse = evaluation.action === 'block' || evaluation.action === 'require_approval' ? { kind: evaluation.action, ruleId: evaluation.ruleId, reason: evaluation.reason } : null;
      const vault = evaluation.requestMasking?.pseudonymize ? vaults.for(ctx.sessionId) : undefined;
      const rewriteText = refuse ? redactForRecord : evaluation.requestMasking ? createRequestRewriter(evaluation.requestMasking, vault) : null;
      return {
        decisions: evaluation.decisions.map((d) => ({
          action: d.action,
          ruleId: d.ruleId,
          reason: d.effect === 'enforced' ? d.reason : `${d.reason} (${d.effect})`,
          mode: d.mode,
        })),
        refuse,
        rewriteRequest: rewriteText && ((text) => rewriteText(text)),
        rewriteResponse: evaluation.responseMasking || vault ? answerRewriter(evaluation.responseMasking, vault) : null,
        checkToolCall: toolCheck(evaluation.toolGate),
      };
    },
  };
}

/** Enforced tool gates refuse a call; shadow ones only show in the request's decisions. */
function toolCheck(gate: ToolGate | null): ToolCallCheck | null {
  if (!gate) return null;
  const enforced: ToolGate = { entries: gate.entries.filter((e) => e.mode === 'enforce') };
  if (enforced.entries.length === 0) return null;
  return (call) => {
    const [hit] = checkToolCall(enforced, call);
    return hit ? { ruleId: hit.ruleId, reason: hit.reason } : null;
  };
}

/**
 * Answers: PII the model produced is masked first, then pseudonyms from the request are restored
 * (so the user sees their own values back, and masking never hides them again).
 */
function answerRewriter(plan: ResponseMaskingPlan | null, vault: PseudonymVault | undefined): TextRewriter {
  return {
    whole(text, kind) {
      const masked = plan ? maskText(text, detectEntities(text, plan.detectors), plan.operatorFor) : text;
      return vault ? vault.restore(masked, { json: kind === 'json' }) : masked;
    },
    channel(kind): ChannelTransformer {
      const masker = plan ? new StreamMasker({ detectors: plan.detectors, operatorFor: plan.operatorFor }) : null;
      const restorer = vault ? new StreamRestorer(vault, { json: kind === 'json' }) : null;
      return {
        push(delta) {
          const masked = masker ? masker.push(delta) : delta;
          return restorer ? restorer.push(masked) : masked;
        },
        end() {
          const masked = masker ? masker.end() : '';
          return restorer ? restorer.push(masked) + restorer.end() : masked;
        },
      };
    },
  };
}
