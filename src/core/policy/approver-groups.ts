/**
 * Approver groups that no known user belongs to: a held request under such a rule can never be
 * decided and waits until it expires. Only checkable where the users are known (the dev IdP's
 * seeded users); a real IdP's groups are not enumerable.
 */
import { UNINSPECTABLE_KINDS, type PolicyDocument } from './types.ts';

/** How the uninspectable setting's own approval is named in a warning. */
const UNINSPECTABLE_APPROVAL = 'uninspectable.approval';

export interface UnknownApproverGroup {
  /** The rule naming it (`uninspectable.approval` for that setting's own), or null for the policy's default `approval`. */
  readonly ruleId: string | null;
  readonly group: string;
}

export function approverGroupsNobodyHas(document: PolicyDocument, knownGroups: readonly string[]): UnknownApproverGroup[] {
  const known = new Set(knownGroups);
  const found: UnknownApproverGroup[] = [];
  const check = (ruleId: string | null, groups: readonly string[] | undefined): void => {
    for (const group of groups ?? []) if (!known.has(group)) found.push({ ruleId, group });
  };
  const { uninspectable } = document;
  const holdsUninspectable = UNINSPECTABLE_KINDS.some((kind) => uninspectable[kind] === 'require_approval');
  const usesDefault = document.rules.some((rule) => rule.action === 'require_approval' && rule.approval === undefined) || (holdsUninspectable && uninspectable.approval === undefined);
  if (usesDefault) check(null, document.approval?.approvers);
  for (const rule of document.rules) if (rule.action === 'require_approval') check(rule.id, rule.approval?.approvers);
  if (holdsUninspectable) check(UNINSPECTABLE_APPROVAL, uninspectable.approval?.approvers);
  return found;
}

/** One line per group, for a log or a terminal. */
export function describeUnknownApproverGroups(found: readonly UnknownApproverGroup[], knownGroups: readonly string[]): string[] {
  return found.map(
    ({ ruleId, group }) =>
      `${ruleId === null ? 'the default approval' : ruleId === UNINSPECTABLE_APPROVAL ? ruleId : `rule ${ruleId}`} names approver group "${group}", which no user has (groups: ${[...new Set(knownGroups)].join(', ')}): its held requests can only expire`,
  );
}
