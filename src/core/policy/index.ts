/** The policy engine's public surface: compile a policy document, evaluate requests against it. */
export { approverGroupsNobodyHas, describeUnknownApproverGroups, type UnknownApproverGroup } from './approver-groups.ts';
export { applyPlannedSpans, createRequestRewriter, targetAt } from './apply-masking.ts';
export { compilePolicy, ENTITY_GROUPS, PolicyAnalyzerError, PolicyBudgetError, PolicyCompileError, type CompiledPolicy, type CompiledRule, type CompileOptions, type PolicyIssue } from './compile-policy.ts';
export { buildResponsePlan, checkToolCall, evaluatePolicy, requestTextItems } from './evaluate-policy.ts';
export { judgeToolCall } from './judge-tool-call.ts';
export { approvalFor, countUninspectable, judgeUninspectable, uninspectableKind } from './uninspectable.ts';
export { findWorkTree, readToolCall, type ToolCallContext, type ToolCallReading, type ToolTarget } from './tool-calls.ts';
export type * from './types.ts';
