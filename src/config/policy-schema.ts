/**
 * The policy file schema (examples/policy.yaml documents every key). Defaults live here;
 * `loadPolicy` parses once, resolves the hmac key reference, compiles (which refuses unknown
 * entity types and unsafe regexes) and freezes. The output matches core's `PolicyDocument`
 * once `operator.key` is resolved.
 */
import { z } from 'zod';
import { isTimeZone } from '../core/budgets/windows.ts';
import { RuleWebhooksSchema } from './webhook-schema.ts';

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ENTITY_TYPE = /^[A-Z][A-Z0-9_]{0,63}$/;

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;
const ENDPOINTS = [
  'openai.chat.completions',
  'openai.responses',
  'openai.embeddings',
  'openai.models.list',
  'openai.models.retrieve',
  'anthropic.messages',
  'anthropic.messages.count_tokens',
  'anthropic.models.list',
  'anthropic.models.retrieve',
] as const;

const nonEmptyList = (what: string) => z.array(z.string().min(1, `expected a non-empty ${what}`)).min(1, `expected at least one ${what}`);

const regexFlags = z
  .string()
  .regex(/^[imsu]*$/, 'expected regex flags from "i", "m", "s", "u" (matching always scans the whole text)')
  .optional();

export const CustomDetectorSchema = z.strictObject({
  id: z.string().regex(ID, 'expected an id of lowercase letters, digits, ".", "_" or "-"'),
  type: z.string().regex(ENTITY_TYPE, 'expected an upper-case entity type such as PROJECT_CODE'),
  pattern: z.string().min(1, 'expected a regular expression'),
  flags: regexFlags,
  /** The longest text the pattern can match: bounds what a stream holds back. */
  max_length: z.number().int().min(1).max(4096).default(256),
  confidence: z.number().min(0).max(1).optional(),
  context_words: z.array(z.string().min(1)).optional(),
});

/** `EMAIL_ADDRESS` or `{ type: EMAIL_ADDRESS, min_confidence: 0.8 }`. */
export const DetectorRefSchema = z.union([
  z.string().regex(ENTITY_TYPE, 'expected an upper-case entity type such as EMAIL_ADDRESS').transform((type) => ({ type, min_confidence: 0.5 })),
  z.strictObject({
    type: z.string().regex(ENTITY_TYPE, 'expected an upper-case entity type such as EMAIL_ADDRESS'),
    min_confidence: z.number().min(0).max(1).default(0.5),
  }),
]);

/** A pattern string, or `{ pattern, flags, type, max_length }`. */
export const RegexSpecSchema = z.union([
  z.string().min(1, 'expected a regular expression').transform((pattern) => ({ pattern, flags: undefined, type: 'REGEX', max_length: 256 })),
  z.strictObject({
    pattern: z.string().min(1, 'expected a regular expression'),
    flags: regexFlags,
    type: z.string().regex(ENTITY_TYPE, 'expected an upper-case entity type').default('REGEX'),
    max_length: z.number().int().min(1).max(4096).default(256),
  }),
]);

/** Patterns over a tool call's field: each a regex, or `{ pattern, flags }` (flags from i, m, s, u). */
export const ToolPatternsSchema = z
  .array(
    z.union([
      z.string().min(1, 'expected a regular expression').transform((pattern) => ({ pattern, flags: undefined })),
      z.strictObject({ pattern: z.string().min(1, 'expected a regular expression'), flags: regexFlags }),
    ]),
  )
  .min(1, 'expected at least one pattern');

/** A secret by reference only: `${ENV_VAR}`, `{ env: NAME }` or `{ file: PATH }` — never inline. */
export const KeyRefSchema = z.union([
  z.string().regex(/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/, 'expected a key reference such as ${AIGOV_HMAC_KEY} (inline keys are refused)'),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
  z.strictObject({ file: z.string().min(1, 'expected a file path') }),
]);
export type KeyRef = z.infer<typeof KeyRefSchema>;

/** `redact`, `hmac` (needs a key), `{ kind: mask, keep_last: 4 }`, `{ kind: hmac, key: … }`. */
export const OperatorSchema = z.union([
  z.literal('redact').transform(() => ({ kind: 'redact' as const })),
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('redact') }),
    z.strictObject({
      kind: z.literal('mask'),
      keep_last: z.number().int().min(0).max(64).default(4),
      char: z.string().length(1, 'expected one character').optional(),
    }),
    z.strictObject({ kind: z.literal('hmac'), key: KeyRefSchema }),
  ]),
]);

/** `90s`, `5m`, `1h`, or a number of seconds; parsed to milliseconds. */
export const DurationSchema = z.union([
  z.number().positive('expected a positive number of seconds').transform((s) => Math.round(s * 1000)),
  z
    .string()
    .regex(/^\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)$/, 'expected a duration such as 90s, 5m or 1h')
    .transform((text) => {
      const [, n, unit] = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text) ?? [];
      const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
      return Math.round(Number(n) * scale);
    }),
]);

/** Who may approve a held request, how many must, and how long it waits. */
export const ApprovalSpecSchema = z.strictObject({
  /** Groups whose members may decide (never the requester). */
  approvers: nonEmptyList('approver group'),
  /** Distinct approvals needed (N of M); one denial is final. */
  required: z.number().int().min(1).max(10).default(1),
  /** How long the request is held and the approval stays open; then it expires (= denied). */
  timeout: DurationSchema.refine((ms) => ms >= 1000 && ms <= 86_400_000, 'expected a timeout between 1s and 24h').default(300_000),
  /** After approval, how long the same request from the same user may be retried without a new approval. */
  retry_window: DurationSchema.refine((ms) => ms <= 7 * 86_400_000, 'expected at most 7d').default(900_000),
  /** `once`: the approval lets exactly one request through; `window`: every identical retry within retry_window. */
  reuse: z.enum(['once', 'window']).default('once'),
  /** Webhooks told of this rule's approvals, besides the gateway's own (docs/webhooks.md); secrets by reference. */
  notify: RuleWebhooksSchema.optional(),
});

export const RuleSchema = z
  .strictObject({
    id: z.string().regex(ID, 'expected an id of lowercase letters, digits, ".", "_" or "-" (it is recorded with every decision)'),
    description: z.string().optional(),
    reason: z.string().min(1).max(200).optional(),
    mode: z.enum(['enforce', 'shadow']).default('enforce'),
    match: z
      .strictObject({
        users: nonEmptyList('user (subject or email, * wildcard)').optional(),
        groups: nonEmptyList('group').optional(),
        providers: nonEmptyList('provider name').optional(),
        models: nonEmptyList('model (* wildcard)').optional(),
        endpoints: z
          .array(z.string().refine((e) => ENDPOINTS.some((known) => globTest(e, known)), { message: `expected an endpoint (* wildcard) among ${ENDPOINTS.join(', ')}` }))
          .min(1)
          .optional(),
        roles: z.array(z.enum(ROLES)).min(1).optional(),
        detectors: z.array(DetectorRefSchema).min(1).optional(),
        regex: z.array(RegexSpecSchema).min(1).optional(),
        keywords: nonEmptyList('keyword').optional(),
        min_matches: z.number().int().min(1).default(1),
        tools: z
          .strictObject({
            names: nonEmptyList('tool name (* wildcard)').optional(),
            arguments: nonEmptyList('argument pattern').optional(),
            /** Patterns over the command line (docs/agent-policy.md: how commands are normalized). */
            command: ToolPatternsSchema.optional(),
            /** Patterns over the paths the call names (normalized; `~/…` for home). */
            paths: ToolPatternsSchema.optional(),
            /** Patterns over the URLs the call fetches (normalized). */
            urls: ToolPatternsSchema.optional(),
            /** The call names a path outside the agent's working directory. */
            outside_work_tree: z.literal(true, 'expected true (omit the key otherwise)').optional(),
          })
          .refine((t) => Object.values(t).some((v) => v !== undefined), 'expected names, arguments, command, paths, urls and/or outside_work_tree')
          .optional(),
      })
      .prefault({}),
    action: z.enum(['allow', 'block', 'require_approval', 'mask_request', 'pseudonymize', 'mask_response', 'log']),
    operator: OperatorSchema.optional(),
    /** For require_approval: who approves, how many, how long (defaults: the policy's `approval`). */
    approval: ApprovalSpecSchema.optional(),
    on_error: z.enum(['fail_closed', 'fail_open']).default('fail_closed'),
  })
  .superRefine((rule, ctx) => {
    const content = rule.match.detectors !== undefined || rule.match.regex !== undefined || rule.match.keywords !== undefined;
    const masking = rule.action === 'mask_request' || rule.action === 'pseudonymize' || rule.action === 'mask_response';
    if (masking && !content) {
      ctx.addIssue({ code: 'custom', path: ['match'], message: `action ${rule.action} needs match.detectors, match.regex or match.keywords (what to mask)` });
    }
    if (rule.operator !== undefined && rule.action !== 'mask_request' && rule.action !== 'mask_response') {
      ctx.addIssue({ code: 'custom', path: ['operator'], message: `operator applies only to mask_request and mask_response (pseudonymize always uses placeholders)` });
    }
    const tools = rule.match.tools;
    const fields = tools !== undefined && (tools.command !== undefined || tools.paths !== undefined || tools.urls !== undefined || tools.outside_work_tree !== undefined);
    if (fields && rule.action !== 'allow' && rule.action !== 'block' && rule.action !== 'require_approval') {
      ctx.addIssue({ code: 'custom', path: ['match', 'tools'], message: `command, paths, urls and outside_work_tree judge tool calls in answers: expected action allow, block or require_approval (not ${rule.action})` });
    }
    if (rule.action === 'mask_response' && rule.match.tools !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['match', 'tools'], message: 'mask_response masks answer text; gate tool calls with a block rule' });
    }
    if (rule.approval !== undefined && rule.action !== 'require_approval') {
      ctx.addIssue({ code: 'custom', path: ['approval'], message: 'approval applies only to require_approval rules' });
    }
    if (rule.action === 'mask_response' && rule.match.min_matches !== 1) {
      ctx.addIssue({ code: 'custom', path: ['match', 'min_matches'], message: 'min_matches does not apply to mask_response' });
    }
  });

const TimeZoneSchema = z.string().refine(isTimeZone, 'expected an IANA time zone such as UTC, Europe/Paris or America/New_York');

/**
 * Who a budget counts: `'*'` or `{ everyone: true }` (one counter everyone shares), `{ users: '*' }`
 * (each user separately), `{ users: [alice@example.com, …] }` (each listed user separately),
 * `{ groups: [developers] }` (one counter per group, shared by its members) or
 * `{ groups: [developers], per: user }` (each member separately).
 */
export const BudgetWhoSchema = z
  .union([
    z.literal('*'),
    z.strictObject({
      everyone: z.literal(true, 'expected true (omit the key otherwise)').optional(),
      users: z.union([z.literal('*'), nonEmptyList('user (subject or email, * wildcard)')], 'expected \'*\' (each user) or a list of users (subject or email, * wildcard)').optional(),
      groups: nonEmptyList('group').optional(),
      per: z.enum(['user', 'group']).optional(),
    }),
  ], 'expected \'*\' or one of { everyone: true }, { users: \'*\' | [...] }, { groups: [...] }')
  .superRefine((who, ctx) => {
    if (who === '*') return;
    const given = (['everyone', 'users', 'groups'] as const).filter((k) => who[k] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `expected exactly one of everyone, users, groups${given.length > 1 ? ` (got ${given.join(' and ')})` : ''}` });
    if (who.per !== undefined && who.groups === undefined) ctx.addIssue({ code: 'custom', path: ['per'], message: 'per applies only to groups (users are always counted one by one)' });
  })
  .transform((who) => {
    if (who === '*' || who.everyone === true) return { kind: 'everyone' as const };
    if (who.users !== undefined) return { kind: 'users' as const, users: who.users };
    return { kind: 'groups' as const, groups: who.groups ?? [], per: who.per ?? 'group' };
  });

export const BudgetSchema = z
  .strictObject({
    id: z.string().regex(ID, 'expected an id of lowercase letters, digits, ".", "_" or "-" (refusals and metrics name it)'),
    description: z.string().optional(),
    who: BudgetWhoSchema,
    /** `provider/model` globs (`openai/gpt-4o*`) or model globs for any provider (`*`). */
    models: nonEmptyList('model glob (provider/model or model, * wildcard)').default(['*']),
    /** `1d`, `1w`, `1mo` (calendar, in the time zone) or `<N>h` (rolling, up to 8760h). */
    window: z.string().regex(/^(?:1d|1w|1mo|[1-9]\d{0,3}h)$/, 'expected 1d, 1w or 1mo (a calendar day, week or month) or a number of hours such as 24h (rolling)'),
    /** The calendar window's time zone; default the policy's budget_timezone. */
    timezone: TimeZoneSchema.optional(),
    limit: z
      .strictObject({
        usd: z.number().positive('expected a positive amount of US dollars').max(1e9).optional(),
        tokens: z.number().int('expected a whole number of tokens').positive('expected a positive number of tokens').max(Number.MAX_SAFE_INTEGER).optional(),
        requests: z.number().int('expected a whole number of requests').positive('expected a positive number of requests').max(Number.MAX_SAFE_INTEGER).optional(),
      })
      .refine((l) => [l.usd, l.tokens, l.requests].filter((v) => v !== undefined).length === 1, 'expected exactly one of usd, tokens, requests'),
    /** At the limit: refuse (429, retry-after at the window's reset), or hold for an approver who may let one request through. */
    action: z.enum(['block', 'require_approval']).default('block'),
    /** Fractions of the limit at which the approvals webhooks hear `budget.warning` (once per counter, window and fraction). */
    warn_at: z.array(z.number().gt(0, 'expected a fraction above 0').lt(1, 'expected a fraction below 1 (e.g. 0.8)')).default([]),
    /** A usd budget and a model without a price: block (default: fail closed) or allow it uncounted. */
    unpriced: z.enum(['block', 'allow']).default('block'),
    /** For require_approval: who approves (default: the policy's `approval`). */
    approval: ApprovalSpecSchema.optional(),
  })
  .superRefine((budget, ctx) => {
    if (budget.approval !== undefined && budget.action !== 'require_approval') ctx.addIssue({ code: 'custom', path: ['approval'], message: 'approval applies only to budgets with action require_approval' });
    if (budget.timezone !== undefined && budget.window.endsWith('h')) ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'a rolling window (hours) has no time zone; timezone applies to 1d, 1w and 1mo' });
  });

const PartAction = z.enum(['allow', 'block', 'require_approval']).default('allow');

/**
 * Parts the gateway cannot read, by kind: what happens to a request carrying one. Applied on top
 * of the rules (the stricter outcome wins); every kind defaults to allow.
 */
export const UninspectableSchema = z.strictObject({
  /** Images (inline, by URL or by file id). */
  images: PartAction,
  /** Documents and files whose bytes are in the request but are not text (PDF, Office, binary). */
  documents: PartAction,
  /** Documents and files given by id or URL, which the gateway does not fetch. */
  files: PartAction,
  /** Audio input. */
  audio: PartAction,
  /** For require_approval (default: the policy's `approval`). */
  approval: ApprovalSpecSchema.optional(),
});

export const PolicySchema = z
  .strictObject({
    version: z.literal(1, 'expected version: 1'),
    /** What happens when no allow/block/require_approval rule matches. */
    default_action: z.enum(['allow', 'block', 'require_approval']).default('allow'),
    /** Approval settings for require_approval rules without their own `approval` (and the default action). */
    approval: ApprovalSpecSchema.optional(),
    /** What happens to a request carrying a part the gateway cannot read (an image, a PDF, a file id…). */
    uninspectable: UninspectableSchema.prefault({}),
    detectors: z.array(CustomDetectorSchema).default([]),
    rules: z.array(RuleSchema).default([]),
    /** Spending, token and request budgets, enforced before forwarding (README "Budgets"). */
    budgets: z.array(BudgetSchema).default([]),
    /** The time zone of calendar budget windows (1d, 1w, 1mo) without their own. */
    budget_timezone: TimeZoneSchema.default('UTC'),
    /** The output a request that states no maximum (max_tokens, …) reserves against budgets. */
    budgets_default_output_cap: z.number().int().min(1).max(10_000_000).default(4096),
    /**
     * Write budgets_default_output_cap into a budgeted request that states no maximum
     * (max_completion_tokens, max_output_tokens): the provider stops there, so no answer can cost
     * more than its reservation. Off by default (such requests are sent as they are, and an answer
     * past the cap is charged what it cost).
     */
    budgets_enforce_output_cap: z.boolean().default(false),
  })
  .superRefine((policy, ctx) => {
    const ruleIds = new Set<string>();
    policy.rules.forEach((r, i) => {
      if (ruleIds.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${r.id}"` });
      // The uninspectable setting's decisions carry these ids.
      if (r.id.startsWith('uninspectable.')) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `rule ids starting with "uninspectable." are reserved for the uninspectable setting` });
      ruleIds.add(r.id);
    });
    const budgetIds = new Set<string>();
    policy.budgets.forEach((b, i) => {
      if (budgetIds.has(b.id)) ctx.addIssue({ code: 'custom', path: ['budgets', i, 'id'], message: `duplicate budget id "${b.id}"` });
      budgetIds.add(b.id);
    });
    const detectorIds = new Set<string>();
    policy.detectors.forEach((d, i) => {
      if (detectorIds.has(d.id)) ctx.addIssue({ code: 'custom', path: ['detectors', i, 'id'], message: `duplicate detector id "${d.id}"` });
      detectorIds.add(d.id);
    });
  });

export type PolicyFile = z.output<typeof PolicySchema>;
export type PolicyFileInput = z.input<typeof PolicySchema>;

function globTest(glob: string, value: string): boolean {
  const re = new RegExp(`^${glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}
