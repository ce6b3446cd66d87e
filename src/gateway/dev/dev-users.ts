/**
 * The dev IdP's seeded users (aigov server --dev). Their groups match the example policies:
 * `security` and `legal` approve there, `auditors` read recordings.
 */
export interface DevUser {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly groups: readonly string[];
}

export const DEV_USERS: readonly DevUser[] = Object.freeze([
  Object.freeze({ id: 'alice', email: 'alice@aigov.dev', name: 'Alice Developer', groups: Object.freeze(['developers']) }),
  Object.freeze({ id: 'bob', email: 'bob@aigov.dev', name: 'Bob Approver', groups: Object.freeze(['approvers', 'security']) }),
  Object.freeze({ id: 'carol', email: 'carol@aigov.dev', name: 'Carol Auditor', groups: Object.freeze(['auditors']) }),
  Object.freeze({ id: 'dave', email: 'dave@aigov.dev', name: 'Dave Approver', groups: Object.freeze(['approvers', 'legal']) }),
]);

/** Every group some dev user has. */
export const DEV_GROUPS: readonly string[] = Object.freeze([...new Set(DEV_USERS.flatMap((user) => user.groups))]);
