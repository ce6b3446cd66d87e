/**
 * The policy engine plugged into the pipeline: each request is evaluated against the current
 * policy; the verdict refuses it, or rewrites its text (masking, pseudonyms) and the answer's
 * text (masking PII in answers, restoring pseudonyms), streamed or not.
 */
import { BUILTIN_DETECTORS, detectEntities } from '../core/detection/index.ts';
import { maskText, StreamMasker, StreamRestorer, type PseudonymVault } from '../core/masking/index.ts';
import { checkToolCall, createRequestRewriter, evaluatePolicy, type CompiledPolicy, type ResponseMaskingPlan, type ToolGate } from '../core/policy/index.ts';
import type { ApprovalSpec, RuleFinding, TextLocation } from '../core/policy/types.ts';
import type { DetectionRecord } from '../store/recording-store.ts';
import type { NormalizedRequest } from '../core/events.ts';
import type { PipelineHooks, Refusal, RequestVerdict } from './hooks.ts';
import { SessionVaults, type VaultLease } from './session-vaults.ts';
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

/** Whether some enforced rule of the policy pseudonymizes (then answers may hold placeholders to restore). */
const PSEUDONYMIZES = new WeakMap<CompiledPolicy, boolean>();
function pseudonymizes(policy: CompiledPolicy): boolean {
  let answer = PSEUDONYMIZES.get(policy);
  if (answer === undefined) PSEUDONYMIZES.set(policy, (answer = policy.rules.some((r) => r.action === 'pseudonymize' && r.mode === 'enforce')));
  return answer;
}

export function createPolicyHooks(source: PolicySource, vaults = new SessionVaults()): PipelineHooks {
  return {
    evaluateRequest(ctx): RequestVerdict | Promise<RequestVerdict> {
      const policy = source.current();
      const evaluation = evaluatePolicy(policy, { principal: ctx.principal, provider: ctx.provider, model: ctx.request.model, endpoint: ctx.endpoint, request: ctx.request });
      const refuse: Refusal | null =
        evaluation.action === 'block'
          ? { kind: 'block', ruleId: evaluation.ruleId, reason: evaluation.reason }
          : evaluation.action === 'require_approval'
            ? { kind: 'require_approval', ruleId: evaluation.ruleId, reason: evaluation.reason, approval: approvalSpecFor(policy, evaluation.ruleId), preview: approvalPreview(ctx.request) }
            : null;
      // A refused request is never sent: its record is redacted. A held one may be sent once approved.
      const neverSent = refuse !== null && (refuse.kind === 'block' || refuse.approval === null);
      const verdict = (lease: VaultLease | null, vault: PseudonymVault | undefined): RequestVerdict => {
        const maskRequest = evaluation.requestMasking ? createRequestRewriter(evaluation.requestMasking, vault) : null;
        const rewriteText = neverSent ? redactForRecord : lease && maskRequest ? (text: string) => lease.issue(() => maskRequest(text)) : maskRequest;
        return {
          decisions: evaluation.decisions.map((d) => {
            const detections = detectionRecords(evaluation.findings, d.ruleId);
            return {
              action: d.action,
              ruleId: d.ruleId,
              reason: d.effect === 'enforced' ? d.reason : `${d.reason} (${d.effect})`,
              mode: d.mode,
              ...(detections.length > 0 ? { detections } : {}),
            };
          }),
          refuse,
          rewriteRequest: rewriteText && ((text) => rewriteText(text)),
          commit: lease ? () => lease.commit() : null,
          rewriteResponse: evaluation.responseMasking || vault ? answerRewriter(evaluation.responseMasking, vault) : null,
          checkToolCall: toolCheck(evaluation.toolGate, 'enforce'),
          shadowToolCheck: toolCheck(evaluation.toolGate, 'shadow'),
        };
      };
      // Pseudonymizing needs the session's vault, and the placeholders issued while rewriting are
      // stored before the request is recorded or sent (commit). An answer in a session that has a
      // vault is restored even when this request issued nothing. A vault store failure rejects
      // with AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE: the request is refused.
      if (neverSent) return verdict(null, undefined);
      if (evaluation.requestMasking?.pseudonymize) return vaults.forRequest(ctx.sessionId).then((lease) => verdict(lease, lease.vault));
      if (pseudonymizes(policy)) return vaults.forAnswer(ctx.sessionId).then((vault) => verdict(null, vault ?? undefined));
      return verdict(null, undefined);
    },
  };
}

const MAX_DETECTIONS_PER_DECISION = 50;

/** A rule's findings as records: type and position, never the value. */
function detectionRecords(findings: readonly RuleFinding[], ruleId: string): DetectionRecord[] {
  const out: DetectionRecord[] = [];
  for (const finding of findings) {
    if (finding.ruleId !== ruleId) continue;
    const where = describeLocation(finding.location);
    for (const d of finding.detections) {
      if (out.length >= MAX_DETECTIONS_PER_DECISION) return out;
      out.push({ type: d.type, where, start: d.start, end: d.end });
    }
  }
  return out;
}

function describeLocation(location: TextLocation): string {
  switch (location.kind) {
    case 'message':
      return `messages[${location.message}].parts[${location.part}]${location.field === 'text' ? '' : `.${location.field}`}`;
    case 'input':
      return `input[${location.index}]`;
    case 'tool_definition':
      return `tools[${location.tool}].${location.field}`;
  }
}

/** The rule's own approval settings, else the policy's; the default action uses the policy's. */
function approvalSpecFor(policy: CompiledPolicy, ruleId: string): ApprovalSpec | null {
  const rule = policy.document.rules.find((r) => r.id === ruleId);
  return rule?.approval ?? policy.document.approval ?? null;
}

const PREVIEW_MESSAGES = 6;
const PREVIEW_PART_CHARS = 600;
const PREVIEW_CHARS = 2000;

/** The last few messages, one line each, with detected secrets and personal data redacted. */
export function approvalPreview(request: NormalizedRequest): string {
  const lines: string[] = [];
  for (const message of request.messages.slice(-PREVIEW_MESSAGES)) {
    const texts = message.parts.map((p) => (p.type === 'text' || p.type === 'tool_result' ? p.text : p.type === 'tool_call' ? `[tool call ${p.name}] ${p.arguments}` : `[${p.type}]`));
    const text = texts.join(' ').replace(/\s+/g, ' ').trim();
    lines.push(`${message.role}: ${cut(redactForRecord(text), PREVIEW_PART_CHARS)}`);
  }
  for (const input of request.inputs.slice(-PREVIEW_MESSAGES)) lines.push(`input: ${cut(redactForRecord(input), PREVIEW_PART_CHARS)}`);
  const preview = lines.join('\n');
  return preview.length > PREVIEW_CHARS ? `…${preview.slice(-PREVIEW_CHARS)}` : preview;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The tool gate's entries of one mode as a check: enforced ones refuse a call, shadow ones are recorded. */
function toolCheck(gate: ToolGate | null, mode: 'enforce' | 'shadow'): ToolCallCheck | null {
  if (!gate) return null;
  const entries: ToolGate = { entries: gate.entries.filter((e) => e.mode === mode) };
  if (entries.entries.length === 0) return null;
  return (call) => {
    const [hit] = checkToolCall(entries, call);
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
    // The record keeps the placeholders: the user's real values never land in the store.
    ...(vault ? { forRecord: (sent: string) => vault.conceal(sent, { json: true }) } : {}),
  };
}
