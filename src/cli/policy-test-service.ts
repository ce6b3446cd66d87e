/**
 * The services behind `aigov policy test` and `aigov policy validate`: evaluate a policy
 * locally on a piece of text, without a gateway, and report what it decided.
 *
 * The report shows entity types and positions, never detected values; the only text printed
 * is the masked text, in which every detection is replaced (by its rule's operator where a
 * masking rule applies, else redacted).
 */
import { plural } from './terminal-text.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadPolicy } from '../config/load-policy.ts';
import { BUILTIN_DETECTORS, detectEntities } from '../core/detection/index.ts';
import { AigovError } from '../core/errors.ts';
import type { EndpointId, NormalizedRequest, Principal, Role } from '../core/events.ts';
import { maskText } from '../core/masking/operators.ts';
import { PseudonymVault } from '../core/masking/pseudonym-vault.ts';
import { approverGroupsNobodyHas, describeUnknownApproverGroups } from '../core/policy/approver-groups.ts';
import { evaluatePolicy } from '../core/policy/evaluate-policy.ts';
import { judgeToolCall } from '../core/policy/judge-tool-call.ts';
import { readToolCall } from '../core/policy/tool-calls.ts';
import { UNINSPECTABLE_KINDS, type PlannedSpan, type PolicyDecisionRecord, type TextLocation, type UninspectableKind } from '../core/policy/types.ts';

/** Exit codes of `aigov policy test`, by outcome. */
export const POLICY_TEST_EXIT = { allow: 0, masked: 3, require_approval: 4, block: 5 } as const;
export type PolicyTestOutcome = keyof typeof POLICY_TEST_EXIT;

export interface PolicyTestOptions {
  readonly policyFile: string;
  /** The text itself, `@path` to read a file, or `-` for stdin (already read by the caller). */
  readonly text: string;
  readonly user: string;
  readonly groups: readonly string[];
  readonly provider: string;
  readonly model: string | null;
  readonly endpoint: EndpointId;
  readonly role: Role;
  /** Treat the text as a model answer (mask_response) instead of a prompt. */
  readonly response: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface PolicyTestDetection {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly confidence: number;
  readonly ruleId: string;
  readonly detector: string;
}

export interface PolicyTestReport {
  readonly policy: { readonly file: string; readonly rules: number };
  readonly as: { readonly user: string; readonly groups: readonly string[]; readonly provider: string; readonly model: string | null; readonly endpoint: EndpointId; readonly role: Role };
  readonly evaluated: 'prompt' | 'answer';
  readonly outcome: PolicyTestOutcome;
  readonly action: 'allow' | 'block' | 'require_approval';
  readonly ruleId: string;
  readonly reason: string;
  readonly decisions: readonly PolicyDecisionRecord[];
  readonly detections: readonly PolicyTestDetection[];
  /** Rules that would mask answers (prompt mode). */
  readonly answerMaskingRules: readonly string[];
  readonly maskedText: string;
  readonly exitCode: number;
}

/** Reads `@file` arguments; other text is returned as is. */
export function readTextArgument(arg: string): string {
  if (!arg.startsWith('@') || arg.length === 1) return arg;
  const file = resolve(arg.slice(1));
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new AigovError('AIGOV_E_POLICY_TEST_USAGE', { reason: `cannot read the text file ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})` });
  }
}

export function testPolicy(options: PolicyTestOptions): PolicyTestReport {
  const loaded = loadPolicy(options.policyFile, { env: options.env });
  const text = options.text;
  const location: TextLocation = { kind: 'message', message: 0, part: 0, role: options.role, field: 'text' };
  const request: NormalizedRequest = {
    endpoint: options.endpoint,
    model: options.model,
    stream: false,
    // An answer is judged in the context of a prompt; the prompt here is empty.
    messages: options.response ? [] : [{ role: options.role, parts: [{ type: 'text', text }] }],
    tools: [],
    inputs: [],
    texts: [],
  };
  const user = options.user;
  const evaluation = evaluatePolicy(loaded.compiled, {
    principal: testPrincipal(user, options.groups),
    provider: options.provider,
    model: options.model,
    endpoint: options.endpoint,
    request,
  });

  const vault = new PseudonymVault();
  const spans: PlannedSpan[] = [];
  let masked = false;
  if (options.response) {
    const plan = evaluation.responseMasking;
    if (plan) {
      for (const d of detectEntities(text, plan.detectors)) spans.push({ ...d, operator: plan.operatorFor(d), ruleId: d.detector.split('/')[0] ?? '' });
      masked = spans.length > 0;
    }
  } else {
    const key = JSON.stringify(location);
    const target = evaluation.requestMasking?.targets.find((t) => JSON.stringify(t.location) === key);
    if (target) {
      spans.push(...target.spans);
      masked = target.spans.length > 0;
    }
    // Whatever else a rule found is redacted in the output: values are never printed.
    const seen = new Set(spans.map((d) => `${d.start}:${d.end}`));
    for (const finding of evaluation.findings) {
      if (finding.location.kind !== 'message' || finding.location.message !== 0 || finding.location.part !== 0) continue;
      for (const d of finding.detections) {
        if (seen.has(`${d.start}:${d.end}`)) continue;
        seen.add(`${d.start}:${d.end}`);
        spans.push({ ...d, operator: { kind: 'redact' }, ruleId: finding.ruleId });
      }
    }
  }
  const ordered = orderSpans(spans);
  const maskedText = maskText(text, ordered, (d) => (d as PlannedSpan).operator, vault);

  const outcome: PolicyTestOutcome = evaluation.action === 'allow' ? (masked ? 'masked' : 'allow') : evaluation.action;
  return {
    policy: { file: loaded.source, rules: loaded.document.rules.length },
    as: { user, groups: options.groups, provider: options.provider, model: options.model, endpoint: options.endpoint, role: options.role },
    evaluated: options.response ? 'answer' : 'prompt',
    outcome,
    action: evaluation.action,
    ruleId: evaluation.ruleId,
    reason: evaluation.reason,
    decisions: evaluation.decisions,
    detections: ordered.map((d) => ({ type: d.type, start: d.start, end: d.end, confidence: d.confidence, ruleId: d.ruleId, detector: d.detector })),
    answerMaskingRules: options.response ? [] : (evaluation.responseMasking?.ruleIds ?? []),
    maskedText,
    exitCode: POLICY_TEST_EXIT[outcome],
  };
}

/** By start, longer first; a stable sort keeps masking spans ahead of redact-only ones. */
function orderSpans(spans: readonly PlannedSpan[]): PlannedSpan[] {
  return [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
}

export function formatPolicyTestReport(report: PolicyTestReport): string {
  const lines: string[] = [];
  const as = report.as;
  lines.push(`policy      ${report.policy.file} (${plural(report.policy.rules, 'rule')})`);
  lines.push(`evaluated   ${report.evaluated} as ${as.user}${as.groups.length ? ` [${as.groups.join(', ')}]` : ''} → ${as.provider} ${as.model ?? '(any model)'} ${as.endpoint}, role ${as.role}`);
  lines.push('decisions');
  for (const d of report.decisions) {
    const flags = [d.mode === 'shadow' ? 'shadow' : '', d.effect !== 'enforced' && d.effect !== 'shadow' ? d.effect : '', d.error ? `error: ${d.error}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${d.ruleId.padEnd(32)} ${d.action.padEnd(16)} ${flags ? `(${flags}) ` : ''}${d.reason}`);
  }
  if (report.detections.length > 0) {
    lines.push('detections  (positions in UTF-16 code units; values are never shown)');
    for (const d of report.detections) {
      lines.push(`  ${d.type.padEnd(26)} ${`${d.start}-${d.end}`.padEnd(12)} confidence ${d.confidence.toFixed(2)}  rule ${d.ruleId}`);
    }
  } else {
    lines.push('detections  none');
  }
  if (report.answerMaskingRules.length > 0) lines.push(`answers     masked by ${report.answerMaskingRules.join(', ')} (test an answer with --response)`);
  lines.push(`action      ${report.outcome === 'masked' ? 'allow, masked' : report.action} — rule ${report.ruleId}: ${report.reason} (exit ${report.exitCode})`);
  lines.push('masked text');
  lines.push(report.maskedText.replace(/^/gm, '  '));
  return lines.join('\n');
}

export interface PolicyValidateReport {
  readonly file: string;
  readonly rules: number;
  readonly detectors: number;
  readonly defaultAction: string;
  readonly shadowRules: number;
  /** What is valid but will not work as meant (an approver group no known user has). */
  readonly warnings: readonly string[];
  /** What happens to parts the gateway cannot read, by kind. */
  readonly uninspectable: Readonly<Record<UninspectableKind, string>>;
}

/**
 * Throws AIGOV_E_POLICY_INVALID / _NOT_FOUND (exit 78 / 66) with every problem listed.
 * `knownGroups`: every group of the IdP's users, where they are known (the dev IdP's).
 */
export function validatePolicy(file: string, options: { env?: Readonly<Record<string, string | undefined>>; knownGroups?: readonly string[] } = {}): PolicyValidateReport {
  const loaded = loadPolicy(file, { env: options.env });
  const { knownGroups } = options;
  return {
    warnings: knownGroups === undefined ? [] : describeUnknownApproverGroups(approverGroupsNobodyHas(loaded.document, knownGroups), knownGroups),
    file: loaded.source,
    rules: loaded.document.rules.length,
    detectors: loaded.document.detectors.length,
    defaultAction: loaded.document.default_action,
    shadowRules: loaded.document.rules.filter((r) => r.mode === 'shadow').length,
    uninspectable: Object.fromEntries(UNINSPECTABLE_KINDS.map((kind) => [kind, loaded.document.uninspectable[kind]])) as Record<UninspectableKind, string>,
  };
}

/** `uninspectable parts allowed`, or the kinds that are not: `documents block, files require_approval`. */
export function describeUninspectable(setting: Readonly<Record<UninspectableKind, string>>): string {
  const strict = UNINSPECTABLE_KINDS.filter((kind) => setting[kind] !== 'allow');
  if (strict.length === 0) return 'uninspectable parts allowed';
  return `uninspectable parts: ${strict.map((kind) => `${kind} ${setting[kind]}`).join(', ')}${strict.length < UNINSPECTABLE_KINDS.length ? ' (others allowed)' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Tool calls: `aigov policy test --tool Bash --input '{"command":"rm -rf /"}'`

export interface ToolCallTestOptions {
  readonly policyFile: string;
  /** The tool's name as the agent declares it (Bash, Read, WebFetch, exec_command, exec…). */
  readonly tool: string;
  /** Its arguments: JSON text, or a custom tool's raw input (Codex `exec`'s JavaScript, a patch). */
  readonly input: string;
  /** The agent's working directory (absolute); null: unknown (every absolute path is outside). */
  readonly workTree: string | null;
  readonly user: string;
  readonly groups: readonly string[];
  readonly provider: string;
  readonly model: string | null;
  readonly endpoint: EndpointId;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface ToolCallTestReport {
  readonly policy: { readonly file: string; readonly rules: number };
  readonly as: { readonly user: string; readonly groups: readonly string[]; readonly provider: string; readonly model: string | null; readonly endpoint: EndpointId };
  readonly evaluated: 'tool_call';
  readonly tool: string;
  readonly workTree: string | null;
  /** The call, shortly (secrets redacted). */
  readonly summary: string;
  /** What the rules saw: each target's command spellings, paths (resolved, outside?) and URLs. */
  readonly reading: readonly { readonly commands: readonly string[]; readonly paths: readonly { readonly views: readonly string[]; readonly outside: boolean }[]; readonly urls: readonly string[] }[];
  readonly outcome: 'allow' | 'block' | 'require_approval';
  readonly ruleId: string;
  readonly reason: string;
  readonly shadow: readonly { readonly ruleId: string; readonly action: string; readonly reason: string }[];
  readonly exitCode: number;
}

/** Judges one tool call as it would be judged in an answer, locally. */
export function testToolCall(options: ToolCallTestOptions): ToolCallTestReport {
  const loaded = loadPolicy(options.policyFile, { env: options.env });
  if (options.workTree !== null && !options.workTree.startsWith('/')) {
    throw new AigovError('AIGOV_E_POLICY_TEST_USAGE', { reason: `the work tree must be an absolute path (got ${JSON.stringify(options.workTree.slice(0, 80))})` });
  }
  const user = options.user;
  // The gate a request of this user would carry; its work tree is the one given here.
  const evaluation = evaluatePolicy(loaded.compiled, {
    principal: testPrincipal(user, options.groups),
    provider: options.provider,
    model: options.model,
    endpoint: options.endpoint,
    request: { endpoint: options.endpoint, model: options.model, stream: false, messages: [], tools: [], inputs: [], texts: [] },
  });
  const call = { name: options.tool, arguments: options.input };
  const gate = evaluation.toolGate === null ? null : { ...evaluation.toolGate, workTree: options.workTree };
  const judged = gate === null ? { summary: readToolCall(call, { workTree: options.workTree }).summary, decision: null, shadow: [] } : judgeToolCall(gate, call);
  const reading = readToolCall(call, { workTree: options.workTree }).targets
    .filter((t) => t.commands.length > 0 || t.paths.length > 0 || t.urls.length > 0)
    .map((t) => ({ commands: t.commands.map(redact), paths: t.paths.map((p) => ({ views: p.views.map(redact), outside: p.outside })), urls: t.urls.map(redact) }));
  const decision = judged.decision;
  const outcome = decision?.action ?? 'allow';
  return {
    policy: { file: loaded.source, rules: loaded.document.rules.length },
    as: { user, groups: options.groups, provider: options.provider, model: options.model, endpoint: options.endpoint },
    evaluated: 'tool_call',
    tool: options.tool,
    workTree: options.workTree,
    summary: redact(judged.summary),
    reading,
    outcome,
    ruleId: decision?.ruleId ?? 'none',
    reason: decision?.reason ?? (gate === null ? 'the policy has no tool-call rules' : 'no tool-call rule matched; the call goes out unchanged'),
    shadow: judged.shadow.map((s) => ({ ruleId: s.ruleId, action: s.action, reason: s.reason })),
    exitCode: POLICY_TEST_EXIT[outcome],
  };
}

/** Secrets and personal data in what is printed are redacted, as in masked text. */
function redact(text: string): string {
  return maskText(text, detectEntities(text, BUILTIN_DETECTORS), () => ({ kind: 'redact' }));
}

export function formatToolCallTestReport(report: ToolCallTestReport): string {
  const lines: string[] = [];
  const as = report.as;
  lines.push(`policy      ${report.policy.file} (${plural(report.policy.rules, 'rule')})`);
  lines.push(`evaluated   tool call ${report.tool} as ${as.user}${as.groups.length ? ` [${as.groups.join(', ')}]` : ''} → ${as.provider} ${as.endpoint}, work tree ${report.workTree ?? '(unknown: absolute paths count as outside)'}`);
  lines.push(`call        ${report.summary}`);
  lines.push('read as     (what the rules match; commands in every spelling)');
  for (const target of report.reading) {
    if (target.commands.length > 0) lines.push(`  command   ${target.commands.join('  |  ')}`);
    for (const p of target.paths) lines.push(`  path      ${p.views.join('  |  ')}${p.outside ? '  (outside the work tree)' : ''}`);
    for (const u of target.urls) lines.push(`  url       ${u}`);
  }
  for (const s of report.shadow) lines.push(`shadow      ${s.ruleId.padEnd(32)} ${s.action.padEnd(16)} ${s.reason} (recorded only)`);
  lines.push(`action      ${report.outcome} — rule ${report.ruleId}: ${report.reason} (exit ${report.exitCode})`);
  return lines.join('\n');
}

/** The user a test request is judged as: an email-looking name is also their email. */
function testPrincipal(user: string, groups: readonly string[]): Principal {
  return { subject: user, email: user.includes('@') ? user : null, groups, issuer: 'aigov-policy-test', clientId: null };
}
