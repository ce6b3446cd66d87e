/**
 * The approvals inbox (Ink) rendered with ink-testing-library. The view takes its client and
 * clock as props: here a scripted client hands it the watch's events and answers approve/deny
 * the way the gateway does (ApprovalViews, or coded errors with the gateway's message), so the
 * test drives the screen key by key. The real gateway behind the real client is in
 * approvals-cli.test.ts.
 */
import './support/tsx-loader.ts';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createElement } from 'react';
import { cleanup, render } from 'ink-testing-library';
import { GatewayReportedError, type WatchHandlers } from '../src/cli/approvals-service.ts';
import type { ApprovalView } from '../src/protocol/approvals.ts';
import type { InboxClient } from '../src/tui/ApprovalsInbox.tsx';

const { ApprovalsInbox } = await import('../src/tui/ApprovalsInbox.tsx');

const T0 = Date.parse('2030-01-01T12:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function approval(id: string, overrides: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id,
    state: 'pending',
    requester: { sub: 'alice', email: 'alice@aigov.dev', name: 'Alice Developer', groups: ['developers'] },
    rule: { id: 'customer-data', reason: 'Customer data needs a second look' },
    approvers: { groups: ['approvers'], required: 1 },
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpoint: 'openai.chat.completions',
    stream: false,
    preview: `Summarise the complaint from [EMAIL_ADDRESS] (${id})`,
    session_id: 'ses_1',
    call_id: `call_${id}`,
    created_at: iso(T0 - 60_000),
    expires_at: iso(T0 + 300_000),
    decided_at: null,
    votes: [],
    can_decide: true,
    ...overrides,
  };
}

const BOB = { sub: 'bob', email: 'bob@aigov.dev', name: 'Bob Approver' };

/** A client whose watch events the test sends, and whose decisions it scripts. */
class ScriptedClient implements InboxClient {
  handlers: WatchHandlers | null = null;
  signal: AbortSignal | null = null;
  reconnects = 0;
  readonly calls: { decision: 'approve' | 'deny'; id: string; reason: string | undefined }[] = [];
  answer: (decision: 'approve' | 'deny', id: string, reason: string | undefined) => Promise<ApprovalView> = async (decision, id, reason) =>
    approval(id, {
      state: decision === 'approve' ? 'approved' : 'denied',
      decided_at: iso(T0),
      votes: [{ by: BOB, decision, reason: reason ?? null, at: iso(T0) }],
      can_decide: false,
    });

  watch(_scope: 'decide' | 'mine' | 'all', handlers: WatchHandlers, signal: AbortSignal) {
    this.handlers = handlers;
    this.signal = signal;
    return { reconnect: () => void this.reconnects++, done: Promise.resolve() };
  }
  readonly fetched: string[] = [];
  latest = new Map<string, ApprovalView>();
  async get(id: string) {
    this.fetched.push(id);
    const found = this.latest.get(id);
    if (!found) throw new GatewayReportedError('AIGOV_E_APPROVAL_NOT_FOUND', `No approval ${id} that you may see.`, 'List them.', 404);
    return found;
  }
  approve(id: string, reason?: string) {
    this.calls.push({ decision: 'approve', id, reason });
    return this.answer('approve', id, reason);
  }
  deny(id: string, reason?: string) {
    this.calls.push({ decision: 'deny', id, reason });
    return this.answer('deny', id, reason);
  }
}

const KEY = { up: '\u001B[A', down: '\u001B[B', enter: '\r', escape: '\u001B', backspace: '\u007F' } as const;

async function frameMatching(lastFrame: () => string | undefined, predicate: (frame: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const frame = lastFrame() ?? '';
    if (predicate(frame)) return frame;
    if (Date.now() > deadline) assert.fail(`no frame showed ${what}; last frame:\n${frame}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Types text one keypress at a time, as a person does (and lets Ink read each one). */
async function type(stdin: { write(data: string): void }, text: string): Promise<void> {
  for (const key of text) {
    stdin.write(key);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function setup(opts: { clock?: () => number } = {}) {
  const client = new ScriptedClient();
  let quit = 0;
  const view = render(createElement(ApprovalsInbox, { client, me: { subject: 'bob', email: 'bob@aigov.dev' }, now: opts.clock ?? (() => T0), tickMs: 10, onQuit: () => void quit++ }));
  return { client, ...view, quits: () => quit };
}

/** The line of the list that shows `id`. */
function row(frame: string, id: string): string {
  return frame.split('\n').find((line) => line.includes(id) && /customer-data\s/.test(line)) ?? '';
}

after(() => cleanup());

describe('ApprovalsInbox', () => {
  it('shows the snapshot, then a new request live, and moves decided ones out of the pending list', async () => {
    const { client, lastFrame, unmount } = setup();
    await frameMatching(lastFrame, (f) => f.includes('Waiting for the gateway'), 'the waiting line');
    assert.ok(client.handlers, 'the view started a watch');
    client.handlers.onStatus?.({ state: 'live' });
    client.handlers.onSnapshot([approval('apr_one')]);
    let frame = await frameMatching(lastFrame, (f) => f.includes('apr_one'), 'the snapshot');
    assert.match(frame, /1 pending · ● live/);
    assert.match(frame, /› +apr_one +alice@aigov\.dev +customer-data +openai\/gpt-4o-mini +5:00 +0\/1/);

    client.handlers.onApproval(approval('apr_two', { expires_at: iso(T0 + 120_000), requester: { sub: 'dave', email: 'dave@aigov.dev', name: null, groups: [] } }));
    frame = await frameMatching(lastFrame, (f) => f.includes('apr_two'), 'the new request');
    assert.match(frame, /2 pending/);
    // Most urgent first; the selection stays where it was.
    assert.ok(frame.indexOf('apr_two') < frame.indexOf('apr_one'), frame);
    assert.match(row(frame, 'apr_one'), /^›/);

    client.handlers.onApproval(approval('apr_two', { state: 'approved', decided_at: iso(T0), votes: [{ by: { sub: 'dave2', email: 'erin@aigov.dev', name: null }, decision: 'approve', reason: null, at: iso(T0) }] }));
    frame = await frameMatching(lastFrame, (f) => /1 pending/.test(f), 'the decided one leaving');
    assert.match(row(frame, 'apr_two'), /✔ apr_two .* approved +1\/1/);
    assert.ok(frame.indexOf('apr_one') < frame.indexOf('apr_two'), 'decided ones go below the pending ones');

    // A reconnection's snapshot replaces the pending list; what left it meanwhile is looked up.
    client.latest.set('apr_one', approval('apr_one', { state: 'denied', decided_at: iso(T0), votes: [{ by: BOB, decision: 'deny', reason: 'no', at: iso(T0) }] }));
    client.handlers.onSnapshot([approval('apr_three')]);
    frame = await frameMatching(lastFrame, (f) => f.includes('apr_three') && /✘ apr_one .* denied/.test(f), 'the new snapshot');
    assert.match(frame, /1 pending/);
    assert.deepEqual(client.fetched, ['apr_one']);
    assert.match(frame, /✔ apr_two/, 'the decided one seen earlier stays marked');
    unmount();
    assert.equal(client.signal?.aborted, true, 'unmounting stops the watch');
  });

  it('selects with ↑/↓ and j/k; the detail pane follows with requester, groups, rule, model, votes and the redacted preview', async () => {
    const { client, lastFrame, stdin, unmount } = setup();
    client.handlers!.onSnapshot([
      approval('apr_a', { expires_at: iso(T0 + 100_000) }),
      approval('apr_b', { expires_at: iso(T0 + 200_000), approvers: { groups: ['approvers', 'security'], required: 2 }, votes: [{ by: BOB, decision: 'approve', reason: 'fine by me', at: iso(T0 - 1000) }], can_decide: false, stream: true, preview: 'line one\nline two\n[API_KEY] here' }),
      approval('apr_c', { expires_at: iso(T0 + 300_000) }),
    ]);
    let frame = await frameMatching(lastFrame, (f) => /^› +apr_a/m.test(f), 'the first selected');
    assert.match(frame, /Requester +Alice Developer <alice@aigov\.dev> \(developers\)/);
    assert.match(frame, /Rule +customer-data: Customer data needs a second look/);
    assert.match(frame, /Request +openai\/gpt-4o-mini · openai\.chat\.completions/);
    assert.match(frame, /│ Summarise the complaint from \[EMAIL_ADDRESS\] \(apr_a\)/);

    stdin.write(KEY.down);
    frame = await frameMatching(lastFrame, (f) => /^› +apr_b/m.test(f), 'apr_b selected');
    assert.match(frame, /apr_b +expires in 3:20 +approvals 1 of 2/);
    assert.match(frame, /Approvers +approvers, security/);
    assert.match(frame, /streamed/);
    assert.match(frame, /✔ approved by bob@aigov\.dev 1s ago: “fine by me”/);
    assert.match(frame, /approvals 1 of 2 · you approved, waiting for others/);
    assert.match(frame, /│ line one\n\s*│ line two\n\s*│ \[API_KEY\] here/);

    stdin.write('j');
    await frameMatching(lastFrame, (f) => /^› +apr_c/m.test(f), 'apr_c selected');
    stdin.write('j');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.match(lastFrame() ?? '', /^› +apr_c/m, 'stops at the end');
    stdin.write('k');
    await frameMatching(lastFrame, (f) => /^› +apr_b/m.test(f), 'back to apr_b');
    stdin.write(KEY.up);
    await frameMatching(lastFrame, (f) => /^› +apr_a/m.test(f), 'back to apr_a');
    unmount();
  });

  it('counts down to expiry with the injected clock', async () => {
    let clock = T0;
    const { client, lastFrame, unmount } = setup({ clock: () => clock });
    client.handlers!.onSnapshot([approval('apr_t', { expires_at: iso(T0 + 125_000) })]);
    await frameMatching(lastFrame, (f) => f.includes('expires in 2:05'), 'the countdown');
    clock = T0 + 66_000;
    const frame = await frameMatching(lastFrame, (f) => f.includes('expires in 0:59'), 'the countdown moving');
    assert.match(row(frame, 'apr_t'), / 0:59 /);
    clock = T0 + 126_000;
    await frameMatching(lastFrame, (f) => f.includes('expiring…'), 'past expiry, until the gateway says expired');
    client.handlers!.onApproval(approval('apr_t', { state: 'expired', decided_at: iso(T0 + 125_000), expires_at: iso(T0 + 125_000) }));
    const expired = await frameMatching(lastFrame, (f) => /0 pending/.test(f), 'expired');
    assert.match(row(expired, 'apr_t'), /✘ apr_t .* expired/);
    unmount();
  });

  it('a: asks for an optional reason, sends it, and shows the result', async () => {
    const { client, lastFrame, stdin, unmount } = setup();
    client.handlers!.onSnapshot([approval('apr_ok')]);
    await frameMatching(lastFrame, (f) => f.includes('apr_ok'), 'the request');
    stdin.write('a');
    await frameMatching(lastFrame, (f) => f.includes('Approve apr_ok — reason (optional):'), 'the reason prompt');
    await type(stdin, 'checked it');
    stdin.write(KEY.backspace);
    await type(stdin, 'T');
    await frameMatching(lastFrame, (f) => f.includes('reason (optional): checked iT'), 'the typed reason');
    stdin.write(KEY.enter);
    const frame = await frameMatching(lastFrame, (f) => f.includes('✔ Approved apr_ok'), 'the result');
    assert.deepEqual(client.calls, [{ decision: 'approve', id: 'apr_ok', reason: 'checked iT' }]);
    assert.match(frame, /0 pending/);
    assert.match(row(frame, 'apr_ok'), /✔ apr_ok .* approved/);
    assert.match(frame, /✔ approved by bob@aigov\.dev 0s ago: “checked iT”/);

    // Without a reason: Enter right away.
    client.handlers!.onApproval(approval('apr_ok2'));
    await frameMatching(lastFrame, (f) => /1 pending/.test(f), 'the next request');
    stdin.write(KEY.up);
    await frameMatching(lastFrame, (f) => /^› +apr_ok2/m.test(f), 'apr_ok2 selected');
    stdin.write('a');
    await frameMatching(lastFrame, (f) => f.includes('Approve apr_ok2'), 'the prompt');
    stdin.write(KEY.enter);
    await frameMatching(lastFrame, (f) => f.includes('✔ Approved apr_ok2'), 'the result');
    assert.deepEqual(client.calls[1], { decision: 'approve', id: 'apr_ok2', reason: undefined });
    unmount();
  });

  it('d: a reason is required; Esc cancels without calling the gateway', async () => {
    const { client, lastFrame, stdin, unmount } = setup();
    client.handlers!.onSnapshot([approval('apr_no')]);
    await frameMatching(lastFrame, (f) => f.includes('apr_no'), 'the request');
    stdin.write('d');
    await frameMatching(lastFrame, (f) => f.includes('Deny apr_no — reason:'), 'the deny prompt');
    stdin.write(KEY.enter);
    await frameMatching(lastFrame, (f) => f.includes('A reason is required to deny'), 'the reason being asked for');
    assert.equal(client.calls.length, 0);
    stdin.write(KEY.escape);
    await frameMatching(lastFrame, (f) => f.includes('Cancelled.') && f.includes('a approve · d deny'), 'the prompt closed');
    assert.equal(client.calls.length, 0);

    stdin.write('d');
    await frameMatching(lastFrame, (f) => f.includes('Deny apr_no — reason:'), 'the deny prompt again');
    await type(stdin, 'q: contains a customer list');
    await frameMatching(lastFrame, (f) => f.includes('reason: q: contains a customer list'), 'typed (q is a letter here, not quit)');
    stdin.write(KEY.enter);
    const frame = await frameMatching(lastFrame, (f) => f.includes('✘ Denied apr_no'), 'the denial');
    assert.deepEqual(client.calls, [{ decision: 'deny', id: 'apr_no', reason: 'q: contains a customer list' }]);
    assert.match(row(frame, 'apr_no'), /✘ apr_no .* denied/);
    stdin.write('a');
    await frameMatching(lastFrame, (f) => f.includes('apr_no is already denied.'), 'no prompt for a decided one');
    assert.equal(client.calls.length, 1);
    unmount();
  });

  it("shows the gateway's refusal (your own request) in the status line and keeps the request", async () => {
    const { client, lastFrame, stdin, unmount } = setup();
    client.answer = async (_decision, id) => {
      throw new GatewayReportedError('AIGOV_E_APPROVAL_SELF', `You cannot decide approval ${id}: it is your own request.`, 'Another approver (approvers) has to decide it.', 403);
    };
    client.handlers!.onSnapshot([approval('apr_mine')]);
    await frameMatching(lastFrame, (f) => f.includes('apr_mine'), 'the request');
    stdin.write('a');
    await frameMatching(lastFrame, (f) => f.includes('Approve apr_mine'), 'the prompt');
    stdin.write(KEY.enter);
    const frame = await frameMatching(lastFrame, (f) => f.includes('✘ You cannot decide approval apr_mine: it is your own request.'), 'the error');
    assert.match(frame, /Another approver \(approvers\) has to decide it\./);
    assert.match(frame, /1 pending/);
    assert.match(frame, /a approve · d deny/, 'back to browsing');
    unmount();
  });

  it('r reconnects, the connection state shows, q quits', async () => {
    const { client, lastFrame, stdin, unmount, quits } = setup();
    const { AigovError } = await import('../src/core/errors.ts');
    // Never connected yet: offline.
    client.handlers!.onStatus?.({ state: 'retrying', inMs: 1000, error: new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: 'https://gw', reason: 'connection refused' }) });
    await frameMatching(lastFrame, (f) => /0 pending · ○ offline/.test(f) && f.includes('Waiting for the gateway…'), 'offline before the first connection');
    client.handlers!.onStatus?.({ state: 'live' });
    await frameMatching(lastFrame, (f) => f.includes('● live') && f.includes('No pending approvals for you to decide'), 'live and empty');
    client.handlers!.onStatus?.({ state: 'retrying', inMs: 4000, error: new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: 'https://gw', reason: 'connection refused' }) });
    const offline = await frameMatching(lastFrame, (f) => f.includes('Disconnected (connection refused); retrying in 4s · r to retry now'), 'the retry');
    assert.match(offline, /0 pending · ○ reconnecting…/, 'it was live: it is reconnecting (with a backoff), not given up');
    stdin.write('r');
    await frameMatching(lastFrame, (f) => f.includes('Reconnecting…'), 'reconnecting');
    assert.equal(client.reconnects, 1);
    client.handlers!.onStatus?.({ state: 'live' });
    await frameMatching(lastFrame, (f) => f.includes('● live') && !f.includes('Reconnecting…'), 'live again');
    stdin.write('q');
    await frameMatching(lastFrame, () => quits() === 1, 'quit');
    unmount();
  });

  it('a dropped stream: the list stays, "reconnecting…" shows with why, and the changes missed meanwhile apply when it is back', async () => {
    const { client, lastFrame, unmount } = setup();
    client.handlers!.onSnapshot([approval('apr_1', { expires_at: iso(T0 + 100_000) }), approval('apr_2', { expires_at: iso(T0 + 200_000) })]);
    client.handlers!.onStatus?.({ state: 'live' });
    await frameMatching(lastFrame, (f) => f.includes('● live') && f.includes('2 pending'), 'live with two');
    const { AigovError } = await import('../src/core/errors.ts');
    client.handlers!.onStatus?.({ state: 'reconnecting', error: new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: 'https://gw', reason: 'the gateway closed the event stream' }) });
    const away = await frameMatching(lastFrame, (f) => f.includes('○ reconnecting…'), 'reconnecting');
    assert.match(away, /Disconnected \(the gateway closed the event stream\); reconnecting… what changed meanwhile follows/);
    assert.ok(row(away, 'apr_1') !== '' && row(away, 'apr_2') !== '', 'what was known stays on screen');
    // Resumed: the missed changes arrive as events (no snapshot), then it is live.
    client.handlers!.onApproval(approval('apr_1', { state: 'approved', decided_at: iso(T0), votes: [{ by: BOB, decision: 'approve', reason: 'ok', at: iso(T0) }], can_decide: false }));
    client.handlers!.onApproval(approval('apr_3', { expires_at: iso(T0 + 300_000) }));
    client.handlers!.onStatus?.({ state: 'live' });
    const back = await frameMatching(lastFrame, (f) => f.includes('● live') && f.includes('apr_3') && !f.includes('reconnecting'), 'live again with the missed changes');
    assert.match(back, /2 pending/);
    assert.match(row(back, 'apr_1'), /✔ apr_1/);
    assert.deepEqual(client.fetched, [], 'nothing to look up: the events said what happened');
    // Asked with r: reconnecting, without a "Disconnected" line.
    client.handlers!.onStatus?.({ state: 'reconnecting', error: null });
    const asked = await frameMatching(lastFrame, (f) => f.includes('○ reconnecting…'), 'reconnecting when asked');
    assert.doesNotMatch(asked, /Disconnected/);
    unmount();
  });

  it('keys that arrive in one chunk (fast typing, a slow SSH link) each act: "jalooks fine⏎" selects, opens, types and submits', async () => {
    const { client, lastFrame, stdin, unmount } = setup();
    client.handlers!.onSnapshot([approval('apr_1', { expires_at: iso(T0 + 100_000) }), approval('apr_2', { expires_at: iso(T0 + 200_000) })]);
    await frameMatching(lastFrame, (f) => /^› +apr_1/m.test(f), 'the first selected');
    stdin.write('jalooks fine\r');
    await frameMatching(lastFrame, (f) => f.includes('✔ Approved apr_2'), 'the approval of the second');
    assert.deepEqual(client.calls, [{ decision: 'approve', id: 'apr_2', reason: 'looks fine' }]);
    // A pasted reason with a line break inside does not submit early.
    stdin.write('kd');
    await frameMatching(lastFrame, (f) => f.includes('Deny apr_1'), 'the deny prompt for the one still pending');
    stdin.write('line one\nline two');
    await frameMatching(lastFrame, (f) => f.includes('reason: line one line two'), 'the pasted reason on one line');
    assert.equal(client.calls.length, 1);
    unmount();
  });

  it('wraps a long preview line at a space', async () => {
    const { client, lastFrame, unmount } = setup();
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    client.handlers!.onSnapshot([approval('apr_wrap', { preview: words })]);
    const frame = await frameMatching(lastFrame, (f) => f.includes('word0'), 'the preview');
    const lines = frame.split('\n').filter((l) => l.startsWith('  │ '));
    assert.ok(lines.length >= 2, frame);
    for (const line of lines) assert.match(line, /^ {2}│ (word\d+ )*word\d+$/, 'no word is cut');
    assert.equal(lines.map((l) => l.slice(4)).join(' '), words);
    unmount();
  });

  it('shows control characters in a prompt as visible escapes (a prompt cannot drive the terminal)', async () => {
    const { client, lastFrame, unmount } = setup();
    client.handlers!.onSnapshot([approval('apr_esc', { preview: 'hello \u001b[2J\u001b]0;pwned\u0007 world \u202eevil' })]);
    const frame = await frameMatching(lastFrame, (f) => f.includes('apr_esc'), 'the request');
    assert.match(frame, /hello \\x1b\[2J\\x1b\]0;pwned\\x07 world \\u202eevil/);
    assert.equal(frame.includes('\u001b[2J'), false);
    unmount();
  });
});
