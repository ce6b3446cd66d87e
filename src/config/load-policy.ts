/**
 * Loads a policy file: read YAML → validate with zod → resolve hmac key references → compile
 * (unknown entity types and regexes the linear-time matcher cannot run are refused here) →
 * freeze. Every failure names the file, the key path and what was expected; key values and
 * request content are never part of an error.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { AigovError, isAigovError, quotedInput } from '../core/errors.ts';
import { compilePolicy, formatPath, PolicyCompileError, type CompiledPolicy, type CompileOptions } from '../core/policy/compile-policy.ts';
import type { BudgetSpec } from '../core/budgets/types.ts';
import type { ApprovalSpec, OperatorSpec, PolicyDocument, RuleSpec } from '../core/policy/types.ts';
import { formatIssues } from './load.ts';
import { PolicySchema, type KeyRef, type PolicyFile } from './policy-schema.ts';
import { resolveWebhook } from './webhook-schema.ts';
import { describeYamlErrors, withLineNumbers } from './yaml-errors.ts';

export interface LoadPolicyOptions extends CompileOptions {
  /** Environment for key references; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface LoadedPolicy {
  /** Absolute path (or the label given to buildPolicy). */
  readonly source: string;
  readonly document: PolicyDocument;
  readonly compiled: CompiledPolicy;
}

export function loadPolicy(file: string, options: LoadPolicyOptions = {}): LoadedPolicy {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable');
    throw new AigovError('AIGOV_E_POLICY_NOT_FOUND', { file: path, reason });
  }
  return parsePolicyText(text, path, options);
}

/** Parses policy YAML given as text; `source` names it in errors and anchors relative key files. */
export function parsePolicyText(text: string, source: string, options: LoadPolicyOptions = {}): LoadedPolicy {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = describeYamlErrors(text, doc.errors);
    throw new AigovError('AIGOV_E_POLICY_INVALID', { file: source, problems: `${problems}\n  (expected valid YAML)` });
  }
  try {
    return buildPolicy(doc.toJS() as unknown, source, options);
  } catch (error) {
    if (!isAigovError(error) || error.code !== 'AIGOV_E_POLICY_INVALID') throw error;
    throw new AigovError('AIGOV_E_POLICY_INVALID', { file: source, problems: withLineNumbers(String(error.params['problems']), doc, text) });
  }
}

/** Validates and compiles an already-parsed policy object. */
export function buildPolicy(raw: unknown, source: string, options: LoadPolicyOptions = {}): LoadedPolicy {
  const invalid = (problems: string): AigovError => new AigovError('AIGOV_E_POLICY_INVALID', { file: source, problems: withRuleIds(problems, raw) });
  const parsed = PolicySchema.safeParse(raw ?? {});
  if (!parsed.success) throw invalid(formatIssues(parsed.error.issues));
  const problems: string[] = [];
  const document = toDocument(parsed.data, { source, baseDir: dirname(source), env: options.env ?? process.env, problems });
  if (problems.length > 0) throw invalid(problems.join('\n'));
  let compiled: CompiledPolicy;
  try {
    compiled = compilePolicy(document, options);
  } catch (error) {
    if (!(error instanceof PolicyCompileError)) throw error;
    throw invalid(error.issues.map((i) => `  - ${formatPath(i.path)}: ${i.message}`).join('\n'));
  }
  // The compiled policy holds detectors (some shared, with regex state): frozen shallowly by compilePolicy.
  return Object.freeze({ source, document: deepFreeze(document), compiled });
}

/**
 * Problem lines about a rule lead with its id, which is what people look for in the file:
 * `  - rule "customer-data", rules[4].action: …` (the index stays: ids may repeat or be missing).
 */
function withRuleIds(problems: string, raw: unknown): string {
  const lists = { rules: (raw as { rules?: unknown } | null)?.rules, budgets: (raw as { budgets?: unknown } | null)?.budgets };
  return problems.replace(/^( {2}- )((rules|budgets)\[(\d+)\])/gm, (whole, lead: string, at: string, list: 'rules' | 'budgets', index: string) => {
    const items = lists[list];
    const id = Array.isArray(items) ? (items[Number(index)] as { id?: unknown } | undefined)?.id : undefined;
    return typeof id === 'string' && id !== '' ? `${lead}${list === 'rules' ? 'rule' : 'budget'} ${quotedInput(id, 40)}, ${at}` : whole;
  });
}

interface KeyContext {
  readonly source: string;
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly problems: string[];
}

function toDocument(file: PolicyFile, ctx: KeyContext): PolicyDocument {
  const rules = file.rules.map((rule, i): RuleSpec => {
    const { operator, approval, ...rest } = rule;
    return {
      ...rest,
      operator: operator === undefined ? undefined : resolveOperator(operator, `rules[${i}].operator.key`, ctx),
      approval: approval === undefined ? undefined : resolveApproval(approval, `rules[${i}].approval`, ctx),
    };
  });
  const approval = file.approval === undefined ? undefined : resolveApproval(file.approval, 'approval', ctx);
  const { approval: partsApproval, ...parts } = file.uninspectable;
  const uninspectable = { ...parts, approval: partsApproval === undefined ? undefined : resolveApproval(partsApproval, 'uninspectable.approval', ctx) };
  const budgets = file.budgets.map((budget, i): BudgetSpec => {
    const { approval: budgetApproval, ...rest } = budget;
    return { ...rest, approval: budgetApproval === undefined ? undefined : resolveApproval(budgetApproval, `budgets[${i}].approval`, ctx) };
  });
  return {
    version: file.version,
    default_action: file.default_action,
    approval,
    uninspectable,
    detectors: file.detectors,
    rules,
    budgets,
    budget_timezone: file.budget_timezone,
    budgets_default_output_cap: file.budgets_default_output_cap,
    budgets_enforce_output_cap: file.budgets_enforce_output_cap,
  };
}

type FileApproval = NonNullable<PolicyFile['approval']>;

function resolveApproval(spec: FileApproval, path: string, ctx: KeyContext): ApprovalSpec {
  const { notify, ...rest } = spec;
  if (notify === undefined) return rest;
  const hooks = notify.flatMap((hook, i) => {
    const at = `${path}.notify[${i}].secret`;
    const resolved = resolveWebhook(hook, resolveKey(hook.secret, at, ctx));
    if ('problem' in resolved) {
      ctx.problems.push(`  - ${at}: ${resolved.problem}`);
      return [];
    }
    return [resolved.webhook];
  });
  return { ...rest, notify: hooks };
}

type FileOperator = NonNullable<PolicyFile['rules'][number]['operator']>;

function resolveOperator(op: FileOperator, path: string, ctx: KeyContext): OperatorSpec {
  if (op.kind !== 'hmac') return op;
  return { kind: 'hmac', key: resolveKey(op.key, path, ctx) };
}

function resolveKey(ref: KeyRef, path: string, ctx: KeyContext): string {
  const fail = (reason: string): string => {
    ctx.problems.push(`  - ${path}: ${reason}`);
    return '';
  };
  const envName = typeof ref === 'string' ? ref.slice(2, -1) : 'env' in ref ? ref.env : null;
  if (envName !== null) {
    const value = ctx.env[envName]?.trim();
    return value ? value : fail(`environment variable ${envName} is not set`);
  }
  const full = resolve(ctx.baseDir, (ref as { file: string }).file);
  try {
    const value = readFileSync(full, 'utf8').trim();
    return value ? value : fail(`${full} is empty`);
  } catch {
    return fail(`cannot read ${full}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
