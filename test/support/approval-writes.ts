/** Plain writes of whole approval records through the store's one write path (ApprovalStore.mutate), for tests. */
import type { ApprovalRecord } from '../../src/core/approvals/approval.ts';
import type { ApprovalStore } from '../../src/store/approval-store.ts';

/** Stores a new approval; rejects when one with its id exists. Resolves to its change number. */
export async function insertApproval(store: ApprovalStore, approval: ApprovalRecord): Promise<number> {
  const { seq } = await store.mutate({ id: approval.id }, (current) => {
    if (current !== null) throw new Error(`approval ${approval.id} exists`);
    return { result: null, write: approval };
  });
  return seq!;
}

/** Replaces the stored approval of the same id; rejects when there is none. Resolves to its change number. */
export async function updateApproval(store: ApprovalStore, approval: ApprovalRecord): Promise<number> {
  const { seq } = await store.mutate({ id: approval.id }, (current) => {
    if (current === null) throw new Error(`approval ${approval.id} does not exist`);
    return { result: null, write: approval };
  });
  return seq!;
}
