/**
 * The policy engine plugged into the pipeline: each request is evaluated against the current
 * policy; the verdict refuses it, or rewrites its text (masking, pseudonyms) and the answer's
 * text (masking PII in answers, restoring pseudonyms), streamed or not.
 *
 * A request whose text is large for its policy is scanned on a worker thread, and so is a large
 * non-streamed answer to mask (./policy-offload.ts): the event loop only decides and rewrites.
 * A scan past its budget (steps here, a deadline there) refuses with AIGOV_E_POLICY_BUDGET.
 */
import { BUILTIN_DETECTORS, detectEntities, regexProgramSize, type Detector } from '../core/detection/index.ts';
import { stripHiddenText } from '../core/detection/hidden-text.ts';
import { AigovError } from '../core/errors.ts';
import { maskText, StreamMasker, StreamRestorer, type PseudonymVault } from '../core/masking/index.ts';
import { approvalFor, createRequestRewriter, evaluatePolicy, judgeToolCall, PolicyBudgetError, type CompiledPolicy, type ResponseMaskingPlan, type ToolGate } from '../core/policy/index.ts';
import type { ApprovalSpec, PolicyInput, RuleFinding, TextLocation, TextSlot } from '../core/policy/types.ts';
import type { DetectionRecord } from '../store/recording-store.ts';
import type { EndpointId, NormalizedRequest } from '../core/events.ts';
import type { CallContext, PipelineHooks, Refusal, RequestVerdict } from './hooks.ts';
import { memoizedBuiltins, memoizedPolicy, type DetectionMemo, type PolicyOffload } from './policy-offload.ts';
import { SessionVaults, type VaultLease } from './session-vaults.ts';
import type { ChannelTransformer, TextRewriter } from '../providers/channels.ts';
import { rewriteAnswer } from '../providers/registry.ts';
import type { ToolCallJudge, ToolCallVerdict } from './tool-gate.ts';

/** Request text (UTF-16 units) from which scanning always moves to a worker. */
export const OFFLOAD_CHARS = 64 * 1024;
/**
 * Worst-case custom-pattern work (characters × program instructions) kept on the event loop:
 * about 10-20 ms of one core at worst; above it the request is scanned on a worker.
 */
export const OFFLOAD_STEPS = 2_000_000;
/** Non-streamed answer bodies from this size (UTF-16 units) are masked on a worker. */
export const OFFLOAD_ANSWER_CHARS = 64 * 1024;

export interface PolicySource {
  /** The policy in force now (swapped atomically on reload). */
  current(): CompiledPolicy;
}

/**
 * A refused request is recorded, never sent: its record keeps the words but not the secrets or
 * personal data that got it refused.
 */
function redactForRecord(text: string, builtins: readonly Detector[] = BUILTIN_DETECTORS): string {
  return maskText(text, detectEntities(text, builtins), () => ({ kind: 'redact' }));
}

/** Whether some enforced rule of the policy pseudonymizes (then answers may hold placeholders to restore). */
const PSEUDONYMIZES = new WeakMap<CompiledPolicy, boolean>();
function pseudonymizes(policy: CompiledPolicy): boolean {
  let answer = PSEUDONYMIZES.get(policy);
  if (answer === undefined) PSEUDONYMIZES.set(policy, (answer = policy.rules.some((r) => r.action === 'pseudonymize' && r.mode === 'enforce')));
  return answer;
}

/** Worst-case instructions per character of all the policy's custom patterns (0: none). */
const REGEX_COST = new WeakMap<CompiledPolicy, number>();
function regexCost(policy: CompiledPolicy): number {
  let cost = REGEX_COST.get(policy);
  if (cost === undefined) {
    const doc = policy.document;
    cost = 0;
    for (const d of doc.detectors) cost += regexProgramSize(d.pattern, d.flags ?? '');
    for (const rule of doc.rules) {
      for (const r of rule.match.regex ?? []) cost += regexProgramSize(r.pattern, r.flags ?? '');
      for (const pattern of rule.match.tools?.arguments ?? []) cost += regexProgramSize(pattern);
      for (const spec of [...(rule.match.tools?.command ?? []), ...(rule.match.tools?.paths ?? []), ...(rule.match.tools?.urls ?? [])]) cost += regexProgramSize(spec.pattern, spec.flags ?? '');
    }
    REGEX_COST.set(policy, cost);
  }
  return cost;
}

function requestChars(request: NormalizedRequest): number {
  let chars = 0;
  for (const message of request.messages) {
    for (const part of message.parts) {
      if (part.type === 'text' || part.type === 'tool_result') chars += part.text.length;
      else if (part.type === 'tool_call') chars += part.arguments.length;
      else if (part.type === 'file') chars += (part.name?.length ?? 0) + (part.context?.length ?? 0) + (part.text?.length ?? 0);
    }
  }
  for (const input of request.inputs) chars += input.length;
  for (const text of request.texts) chars += text.text.length;
  for (const tool of request.tools) chars += (tool.description?.length ?? 0) + (tool.parameters === undefined ? 0 : (JSON.stringify(tool.parameters)?.length ?? 0));
  return chars;
}

/** Whether scanning this request could hold the event loop for more than a few milliseconds. */
export function shouldOffload(policy: CompiledPolicy, request: NormalizedRequest): boolean {
  const chars = requestChars(request);
  return chars >= OFFLOAD_CHARS || chars * regexCost(policy) > OFFLOAD_STEPS;
}

/** A pattern past its matching budget refuses the request with the coded error naming the rule. */
function budgeted<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return run(...args);
    } catch (error) {
      if (error instanceof PolicyBudgetError) throw new AigovError('AIGOV_E_POLICY_BUDGET', { rule: error.ruleId }, { cause: error });
      throw error;
    }
  };
}

export function createPolicyHooks(source: PolicySource, vaults = new SessionVaults(), offload: PolicyOffload | null = null): PipelineHooks {
  return {
    evaluateRequest(ctx): RequestVerdict | Promise<RequestVerdict> {
      const policy = source.current();
      const input: PolicyInput = { principal: ctx.principal, provider: ctx.provider, model: ctx.request.model, endpoint: ctx.endpoint, request: ctx.request };
      if (offload && shouldOffload(policy, ctx.request)) {
        return offload.detect(policy, input).then((memo) => decide(policy, input, ctx, vaults, offload, memo));
      }
      return decide(policy, input, ctx, vaults, offload, null);
    },
  };
}

/**
 * The verdict on one request; with `memo` (what a worker found), detectors answer from it instead
 * of scanning here.
 */
function decide(policy: CompiledPolicy, input: PolicyInput, ctx: CallContext, vaults: SessionVaults, offload: PolicyOffload | null, memo: DetectionMemo | null): RequestVerdict | Promise<RequestVerdict> {
  const evaluation = budgeted(evaluatePolicy)(memo ? memoizedPolicy(policy, memo) : policy, input);
  const builtins = memo ? memoizedBuiltins(BUILTIN_DETECTORS, memo) : BUILTIN_DETECTORS;
  const refuse: Refusal | null =
    evaluation.action === 'block'
      ? { kind: 'block', ruleId: evaluation.ruleId, reason: evaluation.reason }
      : evaluation.action === 'require_approval'
        ? { kind: 'require_approval', ruleId: evaluation.ruleId, reason: evaluation.reason, approval: approvalSpecFor(policy, evaluation.ruleId), preview: approvalPreview(ctx.request, builtins) }
        : null;
  // A refused request is never sent: its record is redacted. A held one may be sent once approved.
  const neverSent = refuse !== null && (refuse.kind === 'block' || refuse.approval === null);
  const verdict = (lease: VaultLease | null, vault: PseudonymVault | undefined): RequestVerdict => {
    const maskRequest = evaluation.requestMasking ? budgeted(createRequestRewriter(evaluation.requestMasking, vault)) : null;
    const planned = neverSent ? (slot: TextSlot) => redactForRecord(slot.text, builtins) : lease && maskRequest ? (slot: TextSlot) => lease.issue(() => maskRequest(slot)) : maskRequest;
    // Hidden text goes neither upstream nor into the record: removed after masking (whose spans
    // are positions in the text as sent), before concealing (a value hidden text split is whole again).
    const mask = evaluation.stripHiddenText ? (slot: TextSlot) => stripHiddenText(planned ? planned(slot) : slot.text, slot.kind === 'json') : planned;
    // Masking applies by location (what policy planned). A value this session already gave a
    // placeholder never goes upstream in clear again, wherever it stands — e.g. an earlier answer,
    // restored for the user, sent back as conversation history: concealed in every slot.
    const rewriteText = neverSent || !vault ? mask : (slot: TextSlot) => vault.conceal(mask ? mask(slot) : slot.text, { json: slot.kind === 'json' });
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
      rewriteRequest: rewriteText,
      commit: lease ? (rewriteAgain) => lease.commit(rewriteAgain) : null,
      rewriteResponse: evaluation.responseMasking || vault ? answerRewriter(evaluation.responseMasking, vault, offload && evaluation.responseMasking ? { offload, policy, endpoint: ctx.endpoint } : null) : null,
      judgeToolCall: toolJudge(policy, evaluation.toolGate, builtins),
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
    case 'field':
      return location.path;
  }
}

/** The rule's own approval settings (the uninspectable setting's), else the policy's; the default action uses the policy's. */
function approvalSpecFor(policy: CompiledPolicy, ruleId: string): ApprovalSpec | null {
  return approvalFor(policy.document, ruleId);
}

const PREVIEW_MESSAGES = 6;
const PREVIEW_PART_CHARS = 600;
const PREVIEW_CHARS = 2000;

/**
 * Text redacted before a preview cuts it: the part shown plus far more than the longest entity
 * and its context, so what is shown is redacted as in the whole text — without scanning a
 * megabyte prompt on the event loop for 600 characters.
 */
const PREVIEW_SCAN_CHARS = PREVIEW_PART_CHARS + 32 * 1024;

/** The last few messages, one line each, with detected secrets and personal data redacted. */
export function approvalPreview(request: NormalizedRequest, builtins: readonly Detector[] = BUILTIN_DETECTORS): string {
  const lines: string[] = [];
  const redact = (text: string): string => cut(redactForRecord(text.slice(0, PREVIEW_SCAN_CHARS), builtins), PREVIEW_PART_CHARS);
  for (const message of request.messages.slice(-PREVIEW_MESSAGES)) {
    const texts = message.parts.map((p) => {
      if (p.type === 'text' || p.type === 'tool_result') return p.text.slice(0, PREVIEW_SCAN_CHARS);
      if (p.type === 'tool_call') return `[tool call ${p.name}] ${p.arguments.slice(0, PREVIEW_SCAN_CHARS)}`;
      // A held document shows what it is: its name, and its text when the gateway reads it.
      if (p.type === 'file') return `[${p.text === undefined ? (p.source === 'reference' ? 'file by id or URL' : 'document, not text') : 'file'}${p.name ? ` ${p.name.slice(0, 200)}` : ''}]${p.text ? ` ${p.text.slice(0, PREVIEW_SCAN_CHARS)}` : ''}`;
      return `[${p.type}]`;
    });
    const text = texts.join(' ').replace(/\s+/g, ' ').trim();
    lines.push(`${message.role}: ${redact(text)}`);
  }
  for (const input of request.inputs.slice(-PREVIEW_MESSAGES)) lines.push(`input: ${redact(input)}`);
  const preview = lines.join('\n');
  return preview.length > PREVIEW_CHARS ? `…${preview.slice(-PREVIEW_CHARS)}` : preview;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

const MAX_SUMMARY_CHARS = 160;

/**
 * The tool gate as the pipeline's judge. The call's summary is redacted (it goes into notices,
 * approvals and records); an analyzer that fails, or a pattern past its budget, blocks the call
 * (fail closed) naming the rule when it is known.
 */
function toolJudge(policy: CompiledPolicy, gate: ToolGate | null, builtins: readonly Detector[]): ToolCallJudge | null {
  if (!gate) return null;
  return {
    enforcing: gate.entries.some((e) => e.mode === 'enforce' && e.action !== 'allow'),
    judge(call): ToolCallVerdict {
      const summary = (text: string): string => cut(redactForRecord(text.replace(/\s+/g, ' ').slice(0, 4 * MAX_SUMMARY_CHARS), builtins), MAX_SUMMARY_CHARS);
      try {
        const judged = judgeToolCall(gate, call);
        const decision = judged.decision;
        return { summary: summary(judged.summary), decision, shadow: judged.shadow, approval: decision?.action === 'require_approval' ? approvalSpecFor(policy, decision.ruleId) : null };
      } catch (error) {
        const ruleId = error instanceof PolicyBudgetError ? error.ruleId : 'aigov-policy';
        const why = error instanceof PolicyBudgetError ? 'a pattern went past its matching budget' : 'a content analyzer failed';
        return { summary: summary(call.name), decision: { action: 'block', ruleId, reason: `${why}, so the tool call is refused (fail closed)` }, shadow: [], approval: null };
      }
    },
  };
}

/**
 * Answers: PII the model produced is masked first, then pseudonyms from the request are restored
 * (so the user sees their own values back, and masking never hides them again).
 */
function answerRewriter(plan: ResponseMaskingPlan | null, vault: PseudonymVault | undefined, large: { offload: PolicyOffload; policy: CompiledPolicy; endpoint: EndpointId } | null): TextRewriter {
  const restore = (text: string, kind: 'text' | 'json'): string => (vault ? vault.restore(text, { json: kind === 'json' }) : text);
  return {
    whole: budgeted((text, kind) => {
      const masked = plan ? maskText(text, detectEntities(text, plan.detectors), plan.operatorFor) : text;
      return restore(masked, kind);
    }),
    channel(kind): ChannelTransformer {
      const masker = plan ? new StreamMasker({ detectors: plan.detectors, operatorFor: plan.operatorFor }) : null;
      const restorer = vault ? new StreamRestorer(vault, { json: kind === 'json' }) : null;
      return {
        push: budgeted((delta: string) => {
          const masked = masker ? masker.push(delta) : delta;
          return restorer ? restorer.push(masked) : masked;
        }),
        end: budgeted(() => {
          const masked = masker ? masker.end() : '';
          return restorer ? restorer.push(masked) + restorer.end() : masked;
        }),
      };
    },
    // A large non-streamed answer is masked on a worker; restoring pseudonyms stays here.
    ...(large && plan
      ? {
          body(body: string): string | Promise<string> | null {
            if (body.length < OFFLOAD_ANSWER_CHARS) return null;
            return large.offload.mask(large.policy, plan.ruleIds, large.endpoint, body).then((masked) => (vault ? rewriteAnswer(large.endpoint, masked, { whole: restore, channel: () => ({ push: (d) => d, end: () => '' }) }) : masked));
          },
        }
      : {}),
    // The record keeps the placeholders: the user's real values never land in the store.
    ...(vault ? { forRecord: (sent: string) => vault.conceal(sent, { json: true }) } : {}),
    // Masking: token-by-token copies of the answer (logprobs) would show what the masks hide.
    ...(plan ? { hidesText: true } : {}),
  };
}
