/**
 * The policy as data: what a validated policy file holds (`PolicyDocument`, the output of
 * src/config/policy-schema.ts after secret references are resolved) and what evaluating it
 * returns (`PolicyEvaluation`). Pure types: no I/O, no clock.
 *
 * Keys mirror the YAML file (snake_case) so an error's key path and the data agree.
 */
import type { Detection, Detector, EntityType } from '../detection/types.ts';
import type { EndpointId, NormalizedRequest, Principal, Role } from '../events.ts';
import type { BudgetSpec } from '../budgets/types.ts';
import type { MaskOperator } from '../masking/operators.ts';

export type PolicyAction = 'allow' | 'block' | 'require_approval' | 'mask_request' | 'pseudonymize' | 'mask_response' | 'log';
/** Actions that decide the request's fate: the first enforced match wins. */
export type TerminalAction = 'allow' | 'block' | 'require_approval';
export type RuleMode = 'enforce' | 'shadow';
export type OnError = 'fail_closed' | 'fail_open';

export const TERMINAL_ACTIONS: readonly PolicyAction[] = ['allow', 'block', 'require_approval'];
export const MASKING_ACTIONS: readonly PolicyAction[] = ['mask_request', 'pseudonymize', 'mask_response'];

/** An operator as written in the file; `hmac.key` is already resolved from its reference. */
export type OperatorSpec =
  | { readonly kind: 'redact' }
  | { readonly kind: 'mask'; readonly keep_last: number; readonly char?: string | undefined }
  | { readonly kind: 'hmac'; readonly key: string };

export interface CustomDetectorSpec {
  readonly id: string;
  readonly type: string;
  readonly pattern: string;
  readonly flags?: string | undefined;
  readonly max_length: number;
  readonly confidence?: number | undefined;
  readonly context_words?: readonly string[] | undefined;
}

export interface DetectorRef {
  /** An entity type (built-in or custom), or a group: `SECRETS`, `PII`. */
  readonly type: string;
  readonly min_confidence: number;
}

export interface RegexSpec {
  readonly pattern: string;
  readonly flags?: string | undefined;
  readonly type: string;
  readonly max_length: number;
}

/** A pattern over one field of a tool call (linear-time engine, like custom detectors). */
export interface ToolFieldPattern {
  readonly pattern: string;
  readonly flags?: string | undefined;
}

export interface ToolMatchSpec {
  /** Tool names (case-insensitive, `*` wildcard). Omitted: any tool. */
  readonly names?: readonly string[] | undefined;
  /** Regular expressions over a tool call's JSON arguments. Omitted: any arguments. */
  readonly arguments?: readonly string[] | undefined;
  /** Patterns over the command line a call runs (each simple command and the line; ./shell-command.ts). */
  readonly command?: readonly ToolFieldPattern[] | undefined;
  /** Patterns over the paths a call names (normalized, absolute and `~/…`; ./tool-paths.ts). */
  readonly paths?: readonly ToolFieldPattern[] | undefined;
  /** Patterns over the URLs a call fetches (normalized). */
  readonly urls?: readonly ToolFieldPattern[] | undefined;
  /** The call names a path outside the agent's work tree (or one whose value is unknown). */
  readonly outside_work_tree?: boolean | undefined;
}

export interface RuleMatchSpec {
  readonly users?: readonly string[] | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly providers?: readonly string[] | undefined;
  readonly models?: readonly string[] | undefined;
  readonly endpoints?: readonly string[] | undefined;
  readonly roles?: readonly Role[] | undefined;
  readonly detectors?: readonly DetectorRef[] | undefined;
  readonly regex?: readonly RegexSpec[] | undefined;
  readonly keywords?: readonly string[] | undefined;
  /** How many content hits it takes (e.g. 3 secrets make a "credential dump"). */
  readonly min_matches: number;
  readonly tools?: ToolMatchSpec | undefined;
}

/** Who approves a held request (durations in milliseconds). */
export interface ApprovalSpec {
  readonly approvers: readonly string[];
  readonly required: number;
  readonly timeout: number;
  readonly retry_window: number;
  readonly reuse: 'once' | 'window';
  /** Webhooks for this rule's approvals, secrets resolved (never log them). */
  readonly notify?: readonly ApprovalWebhook[] | undefined;
}

/** A webhook target (the same shape as config's Webhook). */
export interface ApprovalWebhook {
  readonly url: string;
  readonly secret: string;
  readonly events: readonly ('created' | 'decided' | 'expired' | 'budget_warning')[];
  readonly include_preview: boolean;
  readonly timeout: number;
}

export interface RuleSpec {
  readonly id: string;
  readonly description?: string | undefined;
  /** Said to the user when the rule blocks or holds; never contains matched values. */
  readonly reason?: string | undefined;
  readonly mode: RuleMode;
  readonly match: RuleMatchSpec;
  readonly action: PolicyAction;
  readonly operator?: OperatorSpec | undefined;
  readonly approval?: ApprovalSpec | undefined;
  readonly on_error: OnError;
}

/** Parts of a request the gateway cannot read, by kind (./uninspectable.ts says which part is which). */
export const UNINSPECTABLE_KINDS = ['images', 'documents', 'files', 'audio'] as const;
export type UninspectableKind = (typeof UNINSPECTABLE_KINDS)[number];

/** What happens to a request carrying a part of each kind: applied on top of the rules, the stricter outcome wins. */
export interface UninspectableSpec {
  readonly images: TerminalAction;
  readonly documents: TerminalAction;
  readonly files: TerminalAction;
  readonly audio: TerminalAction;
  /** For require_approval (default: the policy's `approval`). */
  readonly approval?: ApprovalSpec | undefined;
}

export interface PolicyDocument {
  readonly version: 1;
  readonly default_action: TerminalAction;
  readonly approval?: ApprovalSpec | undefined;
  readonly uninspectable: UninspectableSpec;
  readonly detectors: readonly CustomDetectorSpec[];
  readonly rules: readonly RuleSpec[];
  /** Budgets (../budgets/types.ts); absent: none. */
  readonly budgets?: readonly BudgetSpec[] | undefined;
  /** The time zone of calendar budget windows without their own (default UTC). */
  readonly budget_timezone?: string | undefined;
  /** The output reserved for a request that states no maximum (default 4096 tokens). */
  readonly budgets_default_output_cap?: number | undefined;
  /** Write that cap into a budgeted request that states no maximum (default false). */
  readonly budgets_enforce_output_cap?: boolean | undefined;
}

// ---- evaluation ----

export interface PolicyInput {
  readonly principal: Principal;
  /** The gateway's provider name (providers[].name), e.g. `openai`. */
  readonly provider: string;
  readonly model: string | null;
  readonly endpoint: EndpointId;
  readonly request: NormalizedRequest;
}

/** The text fields of a message part: its text, a tool result or call's arguments, a file's name, context and text. */
export type PartField = 'text' | 'tool_result' | 'tool_arguments' | 'file_name' | 'file_context' | 'file_text';

/** Where a piece of request text lives, so the gateway can rewrite exactly that string. */
export type TextLocation =
  | { readonly kind: 'message'; readonly message: number; readonly part: number; readonly role: Role; readonly field: PartField }
  | { readonly kind: 'input'; readonly index: number }
  | { readonly kind: 'tool_definition'; readonly tool: number; readonly field: 'description' | 'parameters' }
  /** A RequestText (../events.ts), by its wire path. */
  | { readonly kind: 'field'; readonly path: string };

/**
 * One string of a request body, addressed by the location policy planned on (a provider codec
 * reads them with the normalized request). A location's text may be several body strings joined
 * (a tool result in content parts): each is a slot, `offset` says where it starts in that text.
 */
export interface TextSlot {
  readonly location: TextLocation;
  /** The string as the client sent it. */
  readonly text: string;
  /** `json`: the text of JSON (tool-call arguments), where a replacement must keep it valid. */
  readonly kind: 'text' | 'json';
  readonly offset: number;
  /**
   * Writes the string into the body (serialized once, only if some slot changed). May be called
   * again, e.g. with a new rewrite of `text`, or `text` itself to put it back.
   */
  set(next: string): void;
}

/** How a recorded decision took effect. */
export type DecisionEffect =
  /** Applied (terminal decision, masking, logging). */
  | 'enforced'
  /** Matched in shadow mode: recorded only. */
  | 'shadow'
  /** Matched, but an earlier terminal rule had already decided. */
  | 'superseded'
  /** The rule's analyzer failed and the rule says `on_error: fail_open`: skipped. */
  | 'skipped';

export interface EntityCount {
  readonly type: EntityType;
  readonly count: number;
}

/** One recorded decision. `reason` never contains a matched value. */
export interface PolicyDecisionRecord {
  /** The rule id, or `default` for the default action. */
  readonly ruleId: string;
  readonly action: PolicyAction;
  readonly mode: RuleMode;
  readonly effect: DecisionEffect;
  readonly reason: string;
  /** Entity types and counts that made the rule match (never values or positions). */
  readonly entities: readonly EntityCount[];
  /** Set when the rule's analyzer threw. */
  readonly error?: OnError;
}

/** A detection with the operator and rule that mask it. */
export interface PlannedSpan extends Detection {
  readonly operator: MaskOperator;
  readonly ruleId: string;
}

export interface RequestMaskTarget {
  readonly location: TextLocation;
  /** Non-overlapping, sorted by start, positions in the original text at `location`. */
  readonly spans: readonly PlannedSpan[];
}

export interface RequestMaskingPlan {
  readonly targets: readonly RequestMaskTarget[];
  /** Some span pseudonymizes: a per-session vault is needed and the answer must be restored. */
  readonly pseudonymize: boolean;
  readonly ruleIds: readonly string[];
}

export interface ResponseMaskingPlan {
  /** Hand these to a StreamMasker / detectEntities + maskText. */
  readonly detectors: readonly Detector[];
  readonly operatorFor: (detection: Detection) => MaskOperator;
  readonly ruleIds: readonly string[];
}

/** A rule's conditions on a tool call's fields (empty lists: no condition). */
export interface ToolFieldMatchers {
  readonly command: readonly Detector[];
  readonly paths: readonly Detector[];
  readonly urls: readonly Detector[];
  readonly outsideWorkTree: boolean;
}

export interface ToolGateEntry {
  readonly ruleId: string;
  /** `allow` takes part in precedence: the first enforced entry matching a call decides. */
  readonly action: 'allow' | 'block' | 'require_approval';
  readonly mode: RuleMode;
  readonly reason: string;
  /** Normalized lower-case name globs; empty = any name. */
  readonly names: readonly string[];
  /** Argument pattern detectors; empty = any arguments. */
  readonly argumentDetectors: readonly Detector[];
  /** Field conditions; null = none (a name/argument rule). */
  readonly fields: ToolFieldMatchers | null;
}

export interface ToolGate {
  readonly entries: readonly ToolGateEntry[];
  /** The agent's working directory stated in the request (findWorkTree), or null. */
  readonly workTree: string | null;
}

/** What one tool call in an answer met (judgeToolCall). Reasons never quote matched values. */
export interface ToolCallJudgement {
  /** A short description of the call (`Bash \`rm -rf /\``): may hold secrets, redact before showing. */
  readonly summary: string;
  /** The enforced decision (the most severe over the call's targets); null when no enforced rule matched. */
  readonly decision: { readonly action: 'allow' | 'block' | 'require_approval'; readonly ruleId: string; readonly reason: string } | null;
  /** Shadow rules that matched: recorded, never enforced. */
  readonly shadow: readonly { readonly action: 'allow' | 'block' | 'require_approval'; readonly ruleId: string; readonly reason: string }[];
}

/** Where a matched rule found content: for previews (redact them) and `aigov policy test`. */
export interface RuleFinding {
  readonly ruleId: string;
  readonly location: TextLocation;
  /** Positions in the original text at `location`; never the values. */
  readonly detections: readonly Detection[];
}

export interface PolicyEvaluation {
  /** The terminal outcome to enforce. */
  readonly action: TerminalAction;
  /** The rule that decided it; `default` when none matched. */
  readonly ruleId: string;
  /** Safe to show the user and to put in a provider-shaped error. */
  readonly reason: string;
  /** Every matched rule in file order, then the default if it applied. */
  readonly decisions: readonly PolicyDecisionRecord[];
  /** Enforced mask_request / pseudonymize work on the request; null when none. */
  readonly requestMasking: RequestMaskingPlan | null;
  /** Enforced mask_response work on the answer; null when none. */
  readonly responseMasking: ResponseMaskingPlan | null;
  /** Tool-call gates for the answer (enforce and shadow entries); null when none. */
  readonly toolGate: ToolGate | null;
  /** Content hits of every rule that matched (any effect), in rule order. */
  readonly findings: readonly RuleFinding[];
  /**
   * Some enforced rule in scope reads the request's text: hidden text (tag characters,
   * variation-selector runs — ../detection/hidden-text.ts), which matching does not see, is
   * removed from every text slot before the request is forwarded, so the model reads what the
   * rules read.
   */
  readonly stripHiddenText: boolean;
}
