/**
 * Compiles a validated policy document into matchers: entity types resolve to detectors (built-in,
 * custom regex from the file, or injected), regexes and keyword lists become detectors too, and
 * names become globs. Every detector a rule uses is wrapped so it reports the rule's minimum
 * confidence and, if it throws, names itself (`PolicyAnalyzerError`) — evaluation fails closed.
 *
 * Problems a schema cannot see (an unknown entity type, a regex the linear-time matcher refuses)
 * are collected with their key path and thrown together as `PolicyCompileError`.
 */
import { BUILTIN_DETECTORS, createRegexDetector, normalizeForMatching, OPT_IN_DETECTORS, PatternBudgetError, RegexDetectorError, type RegexBudget } from '../detection/index.ts';
import type { Detection, Detector } from '../detection/types.ts';
import { compileBudgets, type CompiledBudget } from '../budgets/compile-budgets.ts';
import type { BudgetSettings } from '../budgets/types.ts';
import type { Role } from '../events.ts';
import type { MaskOperator } from '../masking/operators.ts';
import { anyGlob, createKeywordDetector, scopeDetector } from './matchers.ts';
import {
  TERMINAL_ACTIONS,
  type OnError,
  type OperatorSpec,
  type PolicyAction,
  type PolicyDocument,
  type PolicyInput,
  type RuleMode,
  type RuleSpec,
  type TerminalAction,
  type ToolFieldMatchers,
  type ToolFieldPattern,
} from './types.ts';

/** Entity-type groups a rule may name instead of listing every type. */
export const ENTITY_GROUPS: Readonly<Record<string, readonly string[]>> = {
  SECRETS: [
    'PRIVATE_KEY', 'AWS_ACCESS_KEY', 'AWS_SECRET_KEY', 'GITHUB_TOKEN', 'GITLAB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'OPENAI_KEY', 'ANTHROPIC_KEY',
    'GOOGLE_API_KEY', 'JWT', 'NPM_TOKEN', 'PYPI_TOKEN', 'HUGGINGFACE_TOKEN', 'SENDGRID_KEY', 'DATABASE_URL_CREDENTIALS', 'URL_CREDENTIALS', 'BASIC_AUTH_CREDENTIALS',
    'BEARER_TOKEN',
  ],
  PII: ['EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IBAN_CODE', 'US_SSN', 'IP_ADDRESS', 'PERSON'],
};

/** Longest tool-call arguments an argument pattern is assumed to span (for stream holdback). */
const TOOL_ARGUMENT_MAX_LENGTH = 4096;

export interface PolicyIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export class PolicyCompileError extends Error {
  readonly issues: readonly PolicyIssue[];
  constructor(issues: readonly PolicyIssue[]) {
    super(`invalid policy:\n${issues.map((i) => `  - ${formatPath(i.path)}: ${i.message}`).join('\n')}`);
    this.name = 'PolicyCompileError';
    this.issues = issues;
  }
}

/** A detector threw while a rule was being evaluated. Carries the detector id, never the text. */
export class PolicyAnalyzerError extends Error {
  readonly detectorId: string;
  constructor(detectorId: string, options?: ErrorOptions) {
    super(`content analyzer ${detectorId} failed`, options);
    this.name = 'PolicyAnalyzerError';
    this.detectorId = detectorId;
  }
}

/**
 * A rule's custom pattern went past its matching budget on this text. Not an analyzer failure a
 * rule may skip (`on_error: fail_open`): evaluation stops and the request is refused, naming the
 * rule — the text is never part of it.
 */
export class PolicyBudgetError extends Error {
  readonly ruleId: string;
  readonly detectorId: string;
  constructor(ruleId: string, detectorId: string, options?: ErrorOptions) {
    super(`rule ${ruleId}: pattern ${detectorId} went past its matching budget`, options);
    this.name = 'PolicyBudgetError';
    this.ruleId = ruleId;
    this.detectorId = detectorId;
  }
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
}

export interface CompiledToolMatch {
  /** null: any name. Takes a normalized name. */
  readonly name: ((normalizedName: string) => boolean) | null;
  readonly names: readonly string[];
  readonly argumentDetectors: readonly Detector[];
  /** Conditions on the call's command, paths, URLs; null: none. Such a rule judges answers only. */
  readonly fields: ToolFieldMatchers | null;
}

export interface CompiledRule {
  readonly id: string;
  readonly index: number;
  readonly action: PolicyAction;
  readonly terminal: boolean;
  readonly mode: RuleMode;
  readonly onError: OnError;
  readonly reason: string | undefined;
  /** Principal, provider, model and endpoint conditions. */
  readonly inScope: (input: PolicyInput) => boolean;
  /** Content roles looked at; null = every role, tool definitions and embedding inputs. */
  readonly roles: ReadonlySet<Role> | null;
  /** Content condition (detectors, regex, keywords); empty = none. */
  readonly contentDetectors: readonly Detector[];
  /** The content condition's entity types as the file names them (`PII`, `KEYWORD`…), for reasons. */
  readonly contentTypes: readonly string[];
  readonly minMatches: number;
  readonly tools: CompiledToolMatch | null;
  /** For mask_request / pseudonymize / mask_response. */
  readonly operator: MaskOperator | null;
}

export interface CompiledPolicy {
  readonly document: PolicyDocument;
  readonly defaultAction: TerminalAction;
  readonly rules: readonly CompiledRule[];
  /** The budgets (../budgets), in file order; empty when there are none. */
  readonly budgets: readonly CompiledBudget[];
  readonly budgetSettings: BudgetSettings;
}

export interface CompileOptions {
  /** Built-in detectors (default: BUILTIN_DETECTORS). */
  readonly builtins?: readonly Detector[];
  /** Extra detectors rules may name by type (tests, plug-ins). */
  readonly detectors?: readonly Detector[];
  /** Work allowed per scan of a custom pattern (default: DEFAULT_REGEX_BUDGET). */
  readonly regexBudget?: RegexBudget;
}

export function compilePolicy(document: PolicyDocument, options: CompileOptions = {}): CompiledPolicy {
  const issues: PolicyIssue[] = [];
  const byType = new Map<string, Detector[]>();
  const add = (d: Detector): void => {
    const list = byType.get(d.type) ?? [];
    list.push(d);
    byType.set(d.type, list);
  };
  for (const d of options.builtins ?? BUILTIN_DETECTORS) add(d);
  for (const d of options.detectors ?? []) add(d);
  // Opt-in built-ins (PERSON): only a rule that names the type itself gets them, never a group.
  const optIn = new Map<string, Detector[]>();
  for (const d of options.builtins === undefined ? OPT_IN_DETECTORS : []) optIn.set(d.type, [...(optIn.get(d.type) ?? []), d]);
  document.detectors.forEach((spec, i) => {
    try {
      add(
        createRegexDetector({
          id: spec.id,
          type: spec.type,
          pattern: spec.pattern,
          flags: spec.flags,
          maxLength: spec.max_length,
          confidence: spec.confidence,
          contextWords: spec.context_words ? [...spec.context_words] : undefined,
          budget: options.regexBudget,
        }),
      );
    } catch (error) {
      issues.push({ path: ['detectors', i, 'pattern'], message: describeError(error) });
    }
  });

  const rules = document.rules.map((rule, index) => compileRule(rule, index, byType, optIn, issues, options.regexBudget));
  const budgetSettings: BudgetSettings = {
    budget_timezone: document.budget_timezone ?? 'UTC',
    budgets_default_output_cap: document.budgets_default_output_cap ?? 4096,
    budgets_enforce_output_cap: document.budgets_enforce_output_cap ?? false,
  };
  const budgets = compileBudgets(document.budgets ?? [], budgetSettings, document.approval, issues);
  if (issues.length > 0) throw new PolicyCompileError(issues);
  return Object.freeze({ document, defaultAction: document.default_action, rules: Object.freeze(rules), budgets: Object.freeze(budgets), budgetSettings: Object.freeze(budgetSettings) });
}

function compileRule(
  rule: RuleSpec,
  index: number,
  byType: ReadonlyMap<string, readonly Detector[]>,
  optIn: ReadonlyMap<string, readonly Detector[]>,
  issues: PolicyIssue[],
  budget: RegexBudget | undefined,
): CompiledRule {
  const at = (...path: (string | number)[]): (string | number)[] => ['rules', index, ...path];
  const m = rule.match;

  // Content detectors, deduplicated per underlying detector (the lowest minimum wins).
  const minById = new Map<string, { detector: Detector; min: number }>();
  const use = (detector: Detector, min: number): void => {
    const seen = minById.get(detector.id);
    if (!seen || min < seen.min) minById.set(detector.id, { detector, min });
  };
  (m.detectors ?? []).forEach((ref, j) => {
    const types = ENTITY_GROUPS[ref.type] ?? [ref.type];
    const found = types.flatMap((t) => byType.get(t) ?? []);
    if (ENTITY_GROUPS[ref.type] === undefined) found.push(...(optIn.get(ref.type) ?? []));
    if (found.length === 0) {
      issues.push({
        path: at('match', 'detectors', j, 'type'),
        message: `unknown entity type "${ref.type}"; expected a known type (${[...byType.keys(), ...optIn.keys()].sort().join(', ')}), a group (${Object.keys(ENTITY_GROUPS).join(', ')}) or a type defined under detectors`,
      });
    }
    for (const d of found) use(d, ref.min_confidence);
  });
  (m.regex ?? []).forEach((spec, j) => {
    try {
      use(createRegexDetector({ id: `regex[${j}]`, type: spec.type, pattern: spec.pattern, flags: spec.flags, maxLength: spec.max_length, confidence: 1, budget }), 0);
    } catch (error) {
      issues.push({ path: at('match', 'regex', j, 'pattern'), message: describeError(error) });
    }
  });
  if (m.keywords && m.keywords.length > 0) use(createKeywordDetector('keywords', m.keywords), 0);
  const contentDetectors = [...minById.values()].map(({ detector, min }) => guardDetector(scopeDetector(detector, rule.id, min), rule.id));

  let tools: CompiledToolMatch | null = null;
  if (m.tools) {
    const argumentDetectors: Detector[] = [];
    (m.tools.arguments ?? []).forEach((pattern, j) => {
      try {
        const d = createRegexDetector({ id: `tools.arguments[${j}]`, type: 'TOOL_ARGUMENT', pattern, maxLength: TOOL_ARGUMENT_MAX_LENGTH, confidence: 1, budget });
        argumentDetectors.push(guardDetector(scopeDetector(d, rule.id, 0), rule.id));
      } catch (error) {
        issues.push({ path: at('match', 'tools', 'arguments', j), message: describeError(error) });
      }
    });
    const field = (key: 'command' | 'paths' | 'urls'): Detector[] =>
      (m.tools?.[key] ?? []).flatMap((spec: ToolFieldPattern, j: number) => {
        try {
          const d = createRegexDetector({ id: `tools.${key}[${j}]`, type: `TOOL_${key.toUpperCase()}`, pattern: spec.pattern, flags: spec.flags, maxLength: TOOL_ARGUMENT_MAX_LENGTH, confidence: 1, budget });
          return [guardDetector(scopeDetector(d, rule.id, 0), rule.id)];
        } catch (error) {
          issues.push({ path: at('match', 'tools', key, j), message: describeError(error) });
          return [];
        }
      });
    const command = field('command');
    const paths = field('paths');
    const urls = field('urls');
    const outsideWorkTree = m.tools.outside_work_tree === true;
    const hasFields = m.tools.command !== undefined || m.tools.paths !== undefined || m.tools.urls !== undefined || outsideWorkTree;
    const names = m.tools.names ?? [];
    tools = {
      // Tool names are matched normalized (normalizeToolName): so are the globs.
      name: names.length > 0 ? anyGlob(names.map((n) => normalizeForMatching(n).text)) : null,
      names: names.map((n) => normalizeForMatching(n).text.toLowerCase()),
      argumentDetectors,
      fields: hasFields ? Object.freeze({ command, paths, urls, outsideWorkTree }) : null,
    };
  }

  const scope: ((input: PolicyInput) => boolean)[] = [];
  if (m.users) {
    const match = anyGlob(m.users);
    scope.push(({ principal }) => match(principal.subject) || (principal.email !== null && match(principal.email)));
  }
  if (m.groups) {
    const match = anyGlob(m.groups);
    scope.push(({ principal }) => principal.groups.some(match));
  }
  if (m.providers) {
    const match = anyGlob(m.providers);
    scope.push(({ provider }) => match(provider));
  }
  if (m.models) {
    const match = anyGlob(m.models);
    scope.push(({ model }) => model !== null && match(model));
  }
  if (m.endpoints) {
    const match = anyGlob(m.endpoints);
    scope.push(({ endpoint }) => match(endpoint));
  }

  return Object.freeze({
    id: rule.id,
    index,
    action: rule.action,
    terminal: TERMINAL_ACTIONS.includes(rule.action),
    mode: rule.mode,
    onError: rule.on_error,
    reason: rule.reason,
    inScope: (input: PolicyInput) => scope.every((s) => s(input)),
    roles: m.roles ? new Set(m.roles) : null,
    contentDetectors,
    contentTypes: [...new Set([...(m.detectors ?? []).map((d) => d.type), ...(m.regex ?? []).map((r) => r.type), ...(m.keywords ? ['KEYWORD'] : [])])],
    minMatches: m.min_matches,
    tools,
    operator: toMaskOperator(rule.action, rule.operator),
  });
}

/**
 * Rethrows anything a detector throws as a PolicyAnalyzerError naming it (never the text) — or,
 * for a pattern past its matching budget, as a PolicyBudgetError naming the rule.
 */
function guardDetector(inner: Detector, ruleId: string): Detector {
  const guard = <T>(run: () => T): T => {
    try {
      return run();
    } catch (error) {
      if (error instanceof PolicyAnalyzerError || error instanceof PolicyBudgetError) throw error;
      if (error instanceof PatternBudgetError) throw new PolicyBudgetError(ruleId, inner.id, { cause: error });
      throw new PolicyAnalyzerError(inner.id, { cause: error });
    }
  };
  const settledBefore = inner.settledBefore?.bind(inner);
  return {
    id: inner.id,
    type: inner.type,
    maxLength: inner.maxLength,
    lookbehind: inner.lookbehind ?? 0,
    lookahead: inner.lookahead ?? 0,
    detect: (text: string): Detection[] => guard(() => inner.detect(text)),
    // The streaming hint too: without it a stream holds back each detector's whole maxLength.
    ...(settledBefore ? { settledBefore: (text: string): number => guard(() => settledBefore(text)) } : {}),
  };
}

function toMaskOperator(action: PolicyAction, spec: OperatorSpec | undefined): MaskOperator | null {
  if (action === 'pseudonymize') return { kind: 'pseudonymize' };
  if (action !== 'mask_request' && action !== 'mask_response') return null;
  if (!spec || spec.kind === 'redact') return { kind: 'redact' };
  if (spec.kind === 'mask') return spec.char === undefined ? { kind: 'mask', keepLast: spec.keep_last } : { kind: 'mask', keepLast: spec.keep_last, char: spec.char };
  return { kind: 'hmac', key: spec.key };
}

function describeError(error: unknown): string {
  if (error instanceof RegexDetectorError) return error.reason;
  return error instanceof Error ? error.message : String(error);
}
