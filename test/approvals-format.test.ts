/** How approvals read on a terminal (src/cli/approvals-format.ts): table tests. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitColumns, formatAge, formatColumns, formatCountdown, formatDecisionResult, formatExpiresIn, terminalSafe } from '../src/cli/approvals-format.ts';
import type { ApprovalView } from '../src/protocol/approvals.ts';

const T0 = Date.parse('2030-01-01T12:00:00Z');

function view(overrides: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: 'apr_1',
    state: 'pending',
    requester: { sub: 'alice', email: 'alice@aigov.dev', name: null, groups: [] },
    rule: { id: 'r', reason: 'why' },
    approvers: { groups: ['approvers'], required: 2 },
    provider: 'openai',
    model: 'gpt-4o',
    endpoint: 'openai.chat.completions',
    stream: false,
    preview: '',
    session_id: 's',
    call_id: 'c',
    created_at: new Date(T0).toISOString(),
    expires_at: new Date(T0 + 90_000).toISOString(),
    decided_at: null,
    votes: [],
    can_decide: true,
    ...overrides,
  };
}

const BOB = { sub: 'bob', email: 'bob@aigov.dev', name: null };

describe('approvals formatting', () => {
  it('countdowns and ages', () => {
    const countdowns: [number, string][] = [[0, '0:00'], [-5000, '0:00'], [999, '0:01'], [59_001, '1:00'], [3_725_000, '1:02:05']];
    for (const [ms, text] of countdowns) assert.equal(formatCountdown(ms), text, String(ms));
    const ages: [number, string][] = [[-1, '0s'], [59_999, '59s'], [60_000, '1m'], [3_599_999, '59m'], [3_600_000, '1h'], [172_800_000, '2d']];
    for (const [ms, text] of ages) assert.equal(formatAge(ms), text, String(ms));
    assert.equal(formatExpiresIn(view(), T0), '1:30');
    assert.equal(formatExpiresIn(view(), T0 + 90_000), 'expiring');
    assert.equal(formatExpiresIn(view({ state: 'denied' }), T0), 'denied');
  });

  it('terminalSafe shows control characters and bidi overrides as escapes, keeps newlines only when asked', () => {
    const table: [string, string, boolean][] = [
      ['plain text ✔ é', 'plain text ✔ é', false],
      ['a\u001b[31mred', 'a\\x1b[31mred', false],
      ['bell\u0007 del\u007f c1\u009b', 'bell\\x07 del\\x7f c1\\x9b', false],
      ['\u202eevil\u2066x\u2069', '\\u202eevil\\u2066x\\u2069', false],
      ['two\nlines\ttab', 'two↵lines\ttab', false],
      ['two\nlines\r', 'two\nlines\\x0d', true],
    ];
    for (const [input, output, newlines] of table) assert.equal(terminalSafe(input, { newlines }), output, JSON.stringify(input));
  });

  it('fitColumns cuts the flexible columns, widest first, until the rows fit', () => {
    const rows = [
      ['ID', 'REQUESTER', 'MODEL', 'VOTES'],
      ['apr_1', 'someone.with.a.long.name@example.com', 'openai/gpt-4o-mini', '0/1'],
    ];
    assert.deepEqual(fitColumns(rows, 200, [1, 2]), rows, 'wide enough: untouched');
    const fitted = fitColumns(rows, 40, [1, 2]);
    const lines = formatColumns(fitted);
    assert.ok(lines.every((l) => [...l].length <= 40), lines.join('\n'));
    assert.equal(fitted[1]?.[0], 'apr_1', 'fixed columns keep their text');
    assert.equal(fitted[1]?.[3], '0/1');
    assert.match(fitted[1]?.[1] ?? '', /…$/);
    // Too narrow even at the minimum width: cut to the minimum and no further.
    assert.ok(fitColumns(rows, 10, [1, 2]).every((r) => [...(r[1] ?? '')].length <= 9 && [...(r[1] ?? '')].length >= 8));
  });

  it('decision results', () => {
    const approve = (v: Partial<ApprovalView>) => formatDecisionResult(view(v), 'approve');
    assert.equal(approve({ state: 'approved' }), '✔ Approved apr_1: the request goes on to openai/gpt-4o.');
    assert.equal(approve({ votes: [{ by: BOB, decision: 'approve', reason: null, at: '' }] }), '✔ Your approval of apr_1 is recorded (1/2); it needs 1 more from another approver.');
    assert.equal(approve({ state: 'expired' }), 'Approval apr_1 is expired.');
    assert.equal(formatDecisionResult(view({ state: 'denied' }), 'deny'), '✘ Denied apr_1: the request will not be sent.');
    assert.equal(formatDecisionResult(view({ id: 'apr_\u001b[2J' , state: 'denied' }), 'deny'), '✘ Denied apr_\\x1b[2J: the request will not be sent.');
  });
});
