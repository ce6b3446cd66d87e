/**
 * `aigov sessions show`'s call block: an approval is printed once — its own line with the votes
 * and their reasons — not a second time as the approval-stage decision that says the same.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCall } from '../src/cli/sessions-format.ts';
import type { CallApprovalView, DecisionView } from '../src/protocol/sessions.ts';
import { call, iso, T0 } from './support/session-fixtures.ts';

const HOLD: DecisionView = { stage: 'request', action: 'require_approval', rule_id: 'prod-credentials', reason: 'the prompt names production credentials', mode: 'enforce' };

function approval(state: CallApprovalView['state'], votes: CallApprovalView['votes'] = []): CallApprovalView {
  return { id: 'apr_1', state, rule_id: 'prod-credentials', created_at: iso(T0), decided_at: state === 'pending' ? null : iso(T0 + 5000), votes };
}

const bob = (decision: 'approve' | 'deny', reason: string | null) => ({ by: { sub: 'bob', email: 'bob@aigov.dev' }, decision, reason, at: iso(T0 + 5000) });

function shown(decisions: DecisionView[], approvals: CallApprovalView[]): string[] {
  return formatCall(call('call_1', { stream: false, decisions, approvals }), 1, 120).split('\n');
}

const mentions = (lines: string[], text: string): string[] => lines.filter((line) => line.includes(text));

describe('sessions show: approvals', () => {
  it('an approved request: the hold, then one approval line with the vote and its reason', () => {
    const lines = shown([HOLD, { stage: 'approval', action: 'approved', rule_id: 'prod-credentials', reason: 'apr_1 approved by bob@aigov.dev', mode: 'enforce' }], [approval('approved', [bob('approve', 'ok for staging')])]);
    assert.deepEqual(mentions(lines, 'apr_1'), ['    approval apr_1 approved (rule prod-credentials): approved by bob@aigov.dev ("ok for staging")']);
    assert.deepEqual(mentions(lines, 'require_approval'), ['    request require_approval (prod-credentials): the prompt names production credentials']);
  });

  it('denied and expired requests too', () => {
    const denied = shown([HOLD, { stage: 'approval', action: 'denied', rule_id: 'prod-credentials', reason: 'apr_1 denied by bob@aigov.dev', mode: 'enforce' }], [approval('denied', [bob('deny', 'use the vault')])]);
    assert.deepEqual(mentions(denied, 'apr_1'), ['    approval apr_1 denied (rule prod-credentials): denied by bob@aigov.dev ("use the vault")']);
    const expired = shown([HOLD, { stage: 'approval', action: 'expired', rule_id: 'prod-credentials', reason: 'apr_1 expired undecided', mode: 'enforce' }], [approval('expired')]);
    assert.deepEqual(mentions(expired, 'apr_1'), ['    approval apr_1 expired (rule prod-credentials)']);
  });

  it('a decision that says more than the approval line is kept: an approval used by a retry, or for a tool call', () => {
    const retry = shown([HOLD, { stage: 'approval', action: 'approved', rule_id: 'prod-credentials', reason: 'apr_1 approved earlier by bob@aigov.dev; used by this retry', mode: 'enforce' }], [approval('approved', [bob('approve', null)])]);
    assert.equal(mentions(retry, 'apr_1').length, 2);
    assert.ok(retry.some((line) => line.includes('used by this retry')));
    const tool = shown([{ stage: 'approval', action: 'approved', rule_id: 'prod-credentials', reason: 'apr_1 approved by bob@aigov.dev for tool call Bash `rm -rf build`', mode: 'enforce' }], [approval('approved', [bob('approve', null)])]);
    assert.ok(tool.some((line) => line.includes('for tool call Bash')));
  });

  it('a decision about another approval, or one whose outcome differs from the record, is not folded away', () => {
    const other = shown([{ stage: 'approval', action: 'approved', rule_id: 'prod-credentials', reason: 'apr_10 approved by bob@aigov.dev', mode: 'enforce' }], [approval('approved', [bob('approve', null)])]);
    assert.equal(mentions(other, 'apr_10').length, 1, 'apr_10 is not apr_1');
    const differs = shown([{ stage: 'approval', action: 'denied', rule_id: 'prod-credentials', reason: 'apr_1 denied by bob@aigov.dev', mode: 'enforce' }], [approval('approved', [bob('approve', null)])]);
    assert.equal(mentions(differs, 'apr_1').length, 2);
  });

  it('a pending approval has its line though no decision names it yet', () => {
    assert.deepEqual(mentions(shown([HOLD], [approval('pending')]), 'apr_1'), ['    approval apr_1 pending (rule prod-credentials)']);
  });
});
