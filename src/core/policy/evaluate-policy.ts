/**
 * Evaluates a compiled policy against one request. Pure: same input, same evaluation.
 *
 * Content is every piece of request text — each message's text parts by role (system prompts
 * included), tool results, tool-call arguments, the name, context and text of documents and files
 * the codec can read (text documents, text data URLs decoded), embedding inputs, tool definitions
 * and the other strings the model reads (response formats, predicted output, metadata) — and all
 * matching runs on normalized text (NFKC, invisible characters removed, look-alikes folded: via
 * detectEntities), so a zero-width space or a Cyrillic А cannot hide a secret from a rule.
 * Positions map back to the original text.
 *
 * Precedence (also documented at the top of examples/policy.yaml):
 *  - Every rule is evaluated; each one that matches is recorded with its id, in file order.
 *  - allow / block / require_approval are terminal: the FIRST matching enforced terminal rule
 *    decides; later matching terminal rules are recorded as `superseded`. None matched → the
 *    default action.
 *  - mask_request, pseudonymize, mask_response and log accumulate from every matching enforced
 *    rule, wherever it stands; on overlapping spans the earlier rule's operator wins and the
 *    masked span covers both.
 *  - shadow rules are recorded (effect `shadow`) and never change the outcome.
 *  - An analyzer (detector) that throws fails closed: the request is blocked naming the rule —
 *    unless the rule says `on_error: fail_open`, then the rule is skipped and that is recorded.
 *  - A custom pattern past its matching budget throws PolicyBudgetError out of evaluatePolicy
 *    (whatever on_error says): the caller refuses the request naming the rule.
 *  - Parts no rule can read (images, binary documents, files by id or URL, audio) are judged by
 *    the policy's `uninspectable` setting on top of all that: the stricter outcome wins
 *    (./uninspectable.ts).
 */
import type { NormalizedRequest } from '../events.ts';
import { detectEntities, maxContextLength, maxEntityLength, normalizeForMatching } from '../detection/index.ts';
import type { Detection, Detector, EntityType } from '../detection/types.ts';
import type { MaskOperator } from '../masking/operators.ts';
import { PolicyAnalyzerError, PolicyBudgetError, type CompiledPolicy, type CompiledRule } from './compile-policy.ts';
import { matchingEntries } from './judge-tool-call.ts';
import { buildScanViews, mapToItems, SPACED_TYPES, spacedTargets, spansJoin, type ScanViews, type TextItem } from './scan-views.ts';
import { findWorkTree } from './tool-calls.ts';
import { judgeUninspectable, SEVERITY } from './uninspectable.ts';
import type {
  EntityCount,
  PartField,
  PlannedSpan,
  PolicyDecisionRecord,
  PolicyEvaluation,
  PolicyInput,
  RequestMaskTarget,
  RuleFinding,
  TerminalAction,
  TextLocation,
  ToolGate,
  ToolGateEntry,
} from './types.ts';


interface ToolCallItem {
  readonly name: string;
  readonly arguments: string;
}

interface ContentHits {
  readonly total: number;
  readonly byLocation: readonly { readonly item: TextItem; readonly detections: readonly Detection[] }[];
  /** Entity types found (one per detection, a view's detection once though it maps to several items). */
  readonly types: readonly EntityType[];
}

export function evaluatePolicy(policy: CompiledPolicy, input: PolicyInput): PolicyEvaluation {
  const items = requestTextItems(input.request);
  const toolCalls = collectToolCalls(input);
  const toolDefinitions = input.request.tools.map((t) => normalizeName(t.name));

  const decisions: PolicyDecisionRecord[] = [];
  let decided: PolicyDecisionRecord | null = null;
  let errorBlock: PolicyDecisionRecord | null = null;
  const maskRules: { rule: CompiledRule; hits: ContentHits }[] = [];
  const responseRules: CompiledRule[] = [];
  const gate: ToolGateEntry[] = [];
  const findings: RuleFinding[] = [];
  // Terminal content rules also scan views of the text as the model reads it (scan-views.ts).
  let views: ScanViews | null = null;
  const viewsFor = (): ScanViews => (views ??= buildScanViews(items, joinWindow(policy, input), spacedTargets(viewTypes(policy, input))));

  for (const rule of policy.rules) {
    if (!rule.inScope(input)) continue;
    let hits: ContentHits | null = null;
    let toolMatched = false;
    try {
      // mask_response's detectors are for the answer, not the request.
      if (rule.contentDetectors.length > 0 && rule.action !== 'mask_response') hits = findContent(rule, items, blocksOnContent(rule) ? viewsFor() : null);
      if (rule.tools) toolMatched = matchTools(rule, toolDefinitions, toolCalls);
    } catch (error) {
      // Past a matching budget the request is refused whatever the rule's on_error says.
      if (error instanceof PolicyBudgetError) throw error;
      const record = analyzerFailure(rule, error, decided !== null || errorBlock !== null);
      decisions.push(record);
      if (record.effect === 'enforced' && errorBlock === null) errorBlock = record;
      continue;
    }
    const contentOk = rule.contentDetectors.length === 0 || rule.action === 'mask_response' || (hits !== null && hits.total >= rule.minMatches && hits.total > 0);
    if (contentOk && rule.tools && (rule.action === 'allow' || rule.action === 'block' || rule.action === 'require_approval')) {
      gate.push({
        ruleId: rule.id,
        action: rule.action,
        mode: rule.mode,
        reason: rule.reason ?? (rule.action === 'allow' ? 'the tool call is allowed' : rule.action === 'block' ? 'the answer calls a forbidden tool' : 'the tool call needs approval'),
        names: rule.tools.names,
        argumentDetectors: rule.tools.argumentDetectors,
        fields: rule.tools.fields,
      });
    }
    if (!contentOk || (rule.tools && !toolMatched)) continue;

    const entities = countEntities(hits);
    const effect = rule.mode === 'shadow' ? 'shadow' : rule.terminal && (decided !== null || errorBlock !== null) ? 'superseded' : 'enforced';
    const record: PolicyDecisionRecord = { ruleId: rule.id, action: rule.action, mode: rule.mode, effect, reason: rule.reason ?? autoReason(rule, entities), entities };
    decisions.push(record);
    for (const { item, detections } of hits?.byLocation ?? []) findings.push({ ruleId: rule.id, location: item.location, detections });
    if (effect !== 'enforced') continue;
    if (rule.terminal) decided = record;
    else if ((rule.action === 'mask_request' || rule.action === 'pseudonymize') && hits) maskRules.push({ rule, hits });
    else if (rule.action === 'mask_response') responseRules.push(rule);
  }

  // An enforced block stands; otherwise a fail-closed analyzer error blocks; otherwise the
  // first terminal match; otherwise the default.
  let final = decided !== null && decided.action === 'block' ? decided : (errorBlock ?? decided);
  const fallback: PolicyDecisionRecord = { ruleId: 'default', action: policy.defaultAction, mode: 'enforce', effect: 'enforced', reason: defaultReason(policy.defaultAction), entities: [] };
  // Parts no rule could read: the uninspectable setting applies on top, the stricter outcome wins.
  for (const part of judgeUninspectable(policy.document.uninspectable, input.request)) {
    const stricter = SEVERITY[part.action] > SEVERITY[(final ?? fallback).action as TerminalAction];
    const record: PolicyDecisionRecord = { ruleId: part.ruleId, action: part.action, mode: 'enforce', effect: stricter ? 'enforced' : 'superseded', reason: part.reason, entities: [] };
    decisions.push(record);
    if (stricter) final = record;
  }
  if (final === null) {
    final = fallback;
    decisions.push(final);
  }

  return {
    action: final.action as TerminalAction,
    ruleId: final.ruleId,
    reason: final.reason,
    decisions,
    requestMasking: buildRequestPlan(maskRules),
    responseMasking: buildResponsePlan(responseRules),
    toolGate: gate.length > 0 ? { entries: gate, workTree: findWorkTree(input.request.messages) } : null,
    findings,
    stripHiddenText: policy.rules.some((rule) => rule.mode === 'enforce' && readsRequestText(rule) && rule.inScope(input)),
  };
}

/** Whether a rule's detectors run on the request's text (mask_response's run on the answer). */
function readsRequestText(rule: CompiledRule): boolean {
  return (rule.contentDetectors.length > 0 && rule.action !== 'mask_response') || (rule.tools?.argumentDetectors.length ?? 0) > 0;
}

/**
 * Checks one tool call (from an answer, streamed or not) against the gate. Returns the entries
 * it hits, enforce and shadow alike, in rule order (judgeToolCall says which one decides).
 * Throws PolicyAnalyzerError if a pattern fails: the caller fails closed.
 */
export function checkToolCall(gate: ToolGate, call: { readonly name: string; readonly arguments: string }): ToolGateEntry[] {
  return matchingEntries(gate, call);
}

/** Every text of a request policy scans, where it is (a codec's text slots address the same locations). */
export function requestTextItems(request: NormalizedRequest): TextItem[] {
  const items: TextItem[] = [];
  request.messages.forEach((message, m) => {
    message.parts.forEach((part, p) => {
      const add = (field: PartField, text: string | undefined): void => {
        if (text) items.push({ location: { kind: 'message', message: m, part: p, role: message.role, field }, role: message.role, text });
      };
      if (part.type === 'text') add('text', part.text);
      else if (part.type === 'tool_result') add('tool_result', part.text);
      else if (part.type === 'tool_call') add('tool_arguments', part.arguments);
      else if (part.type === 'file') {
        add('file_name', part.name);
        add('file_context', part.context);
        add('file_text', part.text);
      }
    });
  });
  request.inputs.forEach((text, index) => items.push({ location: { kind: 'input', index }, role: 'user', text }));
  for (const { path, role, text } of request.texts) items.push({ location: { kind: 'field', path }, role, text });
  request.tools.forEach((tool, t) => {
    if (tool.description) items.push({ location: { kind: 'tool_definition', tool: t, field: 'description' }, role: null, text: tool.description });
    if (tool.parameters !== undefined) {
      items.push({ location: { kind: 'tool_definition', tool: t, field: 'parameters' }, role: null, text: JSON.stringify(tool.parameters) ?? '' });
    }
  });
  return items.filter((i) => i.text.length > 0);
}

function collectToolCalls(input: PolicyInput): ToolCallItem[] {
  const calls: ToolCallItem[] = [];
  for (const message of input.request.messages) {
    for (const part of message.parts) if (part.type === 'tool_call') calls.push({ name: normalizeName(part.name), arguments: part.arguments });
  }
  return calls;
}

function normalizeName(name: string): string {
  return normalizeForMatching(name).text.toLowerCase();
}

/** block and require_approval hold against splits and encodings; masking needs exact positions, allow must not widen. */
function blocksOnContent(rule: CompiledRule): boolean {
  return rule.action === 'block' || rule.action === 'require_approval';
}

/** The joined views' window: the longest entity plus context any terminal content rule in scope can find. */
function joinWindow(policy: CompiledPolicy, input: PolicyInput): number {
  let w = 0;
  for (const rule of policy.rules) {
    if (!blocksOnContent(rule) || rule.contentDetectors.length === 0 || !rule.inScope(input)) continue;
    const context = maxContextLength(rule.contentDetectors);
    w = Math.max(w, maxEntityLength(rule.contentDetectors) + context.before + context.after);
  }
  return w;
}

/** The entity types the terminal content rules in scope can find (what the spaced view looks for). */
function viewTypes(policy: CompiledPolicy, input: PolicyInput): Set<EntityType> {
  const types = new Set<EntityType>();
  for (const rule of policy.rules) {
    if (!blocksOnContent(rule) || !rule.inScope(input)) continue;
    for (const d of rule.contentDetectors) types.add(d.type);
  }
  return types;
}

function findContent(rule: CompiledRule, items: readonly TextItem[], views: ScanViews | null): ContentHits {
  let total = 0;
  const byLocation: { item: TextItem; detections: Detection[] }[] = [];
  const types: EntityType[] = [];
  const roleOk = (item: TextItem): boolean => rule.roles === null || (item.role !== null && rule.roles.has(item.role));
  for (const item of items) {
    if (!roleOk(item)) continue;
    const detections = detectEntities(item.text, rule.contentDetectors);
    if (detections.length === 0) continue;
    total += detections.length;
    byLocation.push({ item, detections });
    for (const d of detections) types.push(d.type);
  }
  if (views === null) return { total, byLocation, types };
  // Text the budget left undecoded could hide anything: the rule's analyzer fails (on_error decides).
  if (views.incomplete) throw new PolicyAnalyzerError('decoded-views', { cause: new Error('the request holds more encoded text than the policy scan decodes') });
  const spacedDetectors = rule.contentDetectors.filter((d) => SPACED_TYPES.has(d.type));
  // What the items' own scan found: a spaced candidate that runs on past a token it holds
  // (`glpat-…` glued to the next word) is that token again, not another one.
  const direct = new Map(byLocation.map(({ item, detections }) => [item, detections]));
  const foundDirectly = (p: { item: TextItem; start: number; end: number }): boolean =>
    direct.get(p.item)?.some((d) => d.start < p.end && p.start < d.end) === true;
  for (const view of views.views) {
    const detectors = view.spaced ? spacedDetectors : rule.contentDetectors;
    if (detectors.length === 0) continue;
    for (const d of detectEntities(view.text, detectors)) {
      const pieces = mapToItems(view, d.start, d.end);
      if (pieces.length === 0 || !pieces.some((p) => roleOk(p.item))) continue;
      if (view.mustSpanItems && pieces.length < 2) continue;
      if (view.spaced && (!spansJoin(view, d.start, d.end) || pieces.some(foundDirectly))) continue;
      total++;
      types.push(d.type);
      for (const p of pieces) byLocation.push({ item: p.item, detections: [{ ...d, start: p.start, end: p.end }] });
    }
  }
  return { total, byLocation, types };
}

/**
 * A tool condition holds when the request defines a tool with a forbidden name (only when the
 * rule has no argument patterns: a definition has no arguments) or carries a tool call whose
 * name and arguments both match.
 */
function matchTools(rule: CompiledRule, definitions: readonly string[], calls: readonly ToolCallItem[]): boolean {
  const tools = rule.tools;
  // Field rules (command, paths, urls) judge tool calls in answers, when the model makes them; a
  // call already in the conversation was judged then (an approved one must not hold every later turn).
  if (!tools || tools.fields !== null) return false;
  const nameOk = (name: string): boolean => tools.name === null || tools.name(name);
  if (tools.argumentDetectors.length === 0 && tools.name !== null && definitions.some(nameOk)) return true;
  return calls.some((call) => nameOk(call.name) && (tools.argumentDetectors.length === 0 || detectEntities(call.arguments, tools.argumentDetectors).length > 0));
}

function analyzerFailure(rule: CompiledRule, error: unknown, alreadyDecided: boolean): PolicyDecisionRecord {
  const id = analyzerId(error);
  const what = id ? `content analyzer ${id} failed` : 'a content analyzer failed';
  if (rule.onError === 'fail_open') {
    return { ruleId: rule.id, action: rule.action, mode: rule.mode, effect: 'skipped', error: 'fail_open', reason: `${what}; rule skipped (on_error: fail_open)`, entities: [] };
  }
  const base = { ruleId: rule.id, action: 'block' as const, mode: rule.mode, error: 'fail_closed' as const, entities: [] };
  if (rule.mode === 'shadow') return { ...base, action: rule.action, effect: 'shadow', reason: `${what}; shadow rule, not enforced` };
  // A terminal rule after the deciding one could not have changed the outcome.
  if (rule.terminal && alreadyDecided) return { ...base, action: rule.action, effect: 'superseded', reason: `${what}; an earlier rule had decided` };
  return { ...base, effect: 'enforced', reason: `${what}, so the request is refused (fail closed)` };
}

function analyzerId(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PolicyAnalyzerError) return e.detectorId;
  }
  return null;
}

function countEntities(hits: ContentHits | null): EntityCount[] {
  if (!hits) return [];
  const counts = new Map<EntityType, number>();
  for (const type of hits.types) counts.set(type, (counts.get(type) ?? 0) + 1);
  return [...counts].map(([type, count]) => ({ type, count }));
}

const ACTION_WORDS: Record<string, string> = {
  allow: 'allowed',
  block: 'blocked',
  require_approval: 'needs approval',
  mask_request: 'masked in the request',
  pseudonymize: 'pseudonymized in the request',
  mask_response: 'masked in the answer',
  log: 'logged',
};

function autoReason(rule: CompiledRule, entities: readonly EntityCount[]): string {
  const parts: string[] = [];
  if (entities.length > 0) parts.push(`the request contains ${entities.map((e) => (e.count > 1 ? `${e.type} ×${e.count}` : e.type)).join(', ')}`);
  if (rule.tools) parts.push('the request defines or calls a forbidden tool');
  if (rule.action === 'mask_response') {
    return `answers are masked for ${rule.contentTypes.join(', ')}`;
  }
  if (parts.length === 0) return `${ACTION_WORDS[rule.action] ?? rule.action} by rule scope`;
  return `${parts.join('; ')} (${ACTION_WORDS[rule.action] ?? rule.action})`;
}

function defaultReason(action: TerminalAction): string {
  return `no allow, block or require_approval rule matched; the default action is ${action}`;
}

function buildRequestPlan(rules: readonly { rule: CompiledRule; hits: ContentHits }[]): PolicyEvaluation['requestMasking'] {
  if (rules.length === 0) return null;
  const byKey = new Map<string, { location: TextLocation; spans: PlannedSpan[] }>();
  for (const { rule, hits } of rules) {
    const operator = rule.operator ?? { kind: 'redact' };
    for (const { item, detections } of hits.byLocation) {
      const key = JSON.stringify(item.location);
      const target = byKey.get(key) ?? { location: item.location, spans: [] };
      byKey.set(key, target);
      for (const d of detections) target.spans = mergeSpan(target.spans, { ...d, operator, ruleId: rule.id });
    }
  }
  const targets: RequestMaskTarget[] = [...byKey.values()].map((t) => ({ location: t.location, spans: t.spans.sort((a, b) => a.start - b.start) }));
  return {
    targets,
    pseudonymize: targets.some((t) => t.spans.some((s) => s.operator.kind === 'pseudonymize')),
    ruleIds: rules.map((r) => r.rule.id),
  };
}

/**
 * Adds a span to accepted ones. Accepted spans came from earlier rules and win: a span inside
 * one is dropped; a span that overlaps some is merged with them into one span carrying the
 * earliest's type and operator, so no character of either is left unmasked.
 */
function mergeSpan(accepted: PlannedSpan[], span: PlannedSpan): PlannedSpan[] {
  const overlapping = accepted.filter((a) => a.start < span.end && span.start < a.end);
  if (overlapping.length === 0) return [...accepted, span];
  if (overlapping.some((a) => a.start <= span.start && span.end <= a.end)) return accepted;
  const winner = overlapping[0] as PlannedSpan;
  const merged: PlannedSpan = {
    ...winner,
    start: Math.min(span.start, ...overlapping.map((a) => a.start)),
    end: Math.max(span.end, ...overlapping.map((a) => a.end)),
    confidence: Math.max(span.confidence, ...overlapping.map((a) => a.confidence)),
  };
  return [...accepted.filter((a) => !overlapping.includes(a)), merged];
}

/** How answers are masked for these mask_response rules (null: none); a policy worker builds the same plan from rule ids. */
export function buildResponsePlan(rules: readonly CompiledRule[]): PolicyEvaluation['responseMasking'] {
  if (rules.length === 0) return null;
  const detectors: Detector[] = [];
  const operators = new Map<string, MaskOperator>();
  for (const rule of rules) {
    for (const d of rule.contentDetectors) {
      detectors.push(d);
      operators.set(d.id, rule.operator ?? { kind: 'redact' });
    }
  }
  return {
    detectors,
    operatorFor: (d: Detection) => operators.get(d.detector) ?? { kind: 'redact' },
    ruleIds: rules.map((r) => r.id),
  };
}
