/**
 * Budgets, the pure core: calendar windows in time zones (DST days of 23 and 25 hours, a zone
 * whose midnight does not exist, half-hour zones), rolling windows in steps, who and what a
 * budget counts, what a request reserves, what a call is charged, and the policy file's budget
 * keys with their errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { amountIn, chargeOf, countersFor, describeAmount, recordedCharge, refusalReason, reservationOf, usageTokens, type Reservation } from '../src/core/budgets/charges.ts';
import { compileBudgets, type BudgetSubject, type CompiledBudget } from '../src/core/budgets/compile-budgets.ts';
import type { BudgetSpec } from '../src/core/budgets/types.ts';
import { calendarWindowEnd, calendarWindowLabel, countsIn, rollingStepMs, windowAt } from '../src/core/budgets/windows.ts';
import { findPrice } from '../src/core/cost/price-call.ts';
import { BUILT_IN_PRICES } from '../src/core/cost/price-table.ts';
import type { NormalizedRequest } from '../src/core/events.ts';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { readFileSync } from 'node:fs';

const at = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

describe('calendar windows', () => {
  const cases: [string, 'day' | 'week' | 'month', string, string, string][] = [
    // zone, unit, instant, label, end of that window
    ['UTC', 'day', '2025-06-30T23:59:59.999Z', 'd2025-06-30', '2025-07-01T00:00:00.000Z'],
    ['UTC', 'month', '2024-02-29T12:00:00Z', 'm2024-02', '2024-03-01T00:00:00.000Z'],
    ['UTC', 'week', '2025-01-01T00:00:00Z', 'w2024-12-30', '2025-01-06T00:00:00.000Z'],
    // New York, spring forward: 2025-03-09 is 23 hours long.
    ['America/New_York', 'day', '2025-03-09T04:59:59Z', 'd2025-03-08', '2025-03-09T05:00:00.000Z'],
    ['America/New_York', 'day', '2025-03-09T05:00:00Z', 'd2025-03-09', '2025-03-10T04:00:00.000Z'],
    // Fall back: 2025-11-02 is 25 hours long.
    ['America/New_York', 'day', '2025-11-02T04:00:00Z', 'd2025-11-02', '2025-11-03T05:00:00.000Z'],
    ['America/New_York', 'day', '2025-11-03T04:59:00Z', 'd2025-11-02', '2025-11-03T05:00:00.000Z'],
    // Santiago moves from 00:00 to 01:00 on 2025-09-07: that day starts at 01:00 local.
    ['America/Santiago', 'day', '2025-09-07T03:59:59Z', 'd2025-09-06', '2025-09-07T04:00:00.000Z'],
    ['America/Santiago', 'day', '2025-09-07T04:00:00Z', 'd2025-09-07', '2025-09-08T03:00:00.000Z'],
    ['America/Santiago', 'week', '2025-09-06T12:00:00Z', 'w2025-09-01', '2025-09-08T03:00:00.000Z'],
    // Half-hour and 45-minute offsets.
    ['Asia/Kolkata', 'day', '2025-01-01T18:29:59Z', 'd2025-01-01', '2025-01-01T18:30:00.000Z'],
    ['Asia/Kolkata', 'day', '2025-01-01T18:30:00Z', 'd2025-01-02', '2025-01-02T18:30:00.000Z'],
    ['Asia/Kathmandu', 'month', '2025-01-31T18:14:00Z', 'm2025-01', '2025-01-31T18:15:00.000Z'],
    // Lord Howe changes by half an hour (02:00 → 01:30 on 2025-04-06).
    ['Australia/Lord_Howe', 'week', '2025-04-05T12:00:00Z', 'w2025-03-31', '2025-04-06T13:30:00.000Z'],
    ['Pacific/Kiritimati', 'day', '2025-01-01T09:59:00Z', 'd2025-01-01', '2025-01-01T10:00:00.000Z'],
  ];
  for (const [zone, unit, instant, label, end] of cases) {
    it(`${zone} ${unit} at ${instant}: ${label} until ${end}`, () => {
      assert.equal(calendarWindowLabel(unit, zone, at(instant)), label);
      assert.equal(iso(calendarWindowEnd(unit, zone, at(instant))), end);
    });
  }

  it('law: a window ends at the first minute of the next one, in any zone, at any time', () => {
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'America/Santiago', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/St_Johns', 'Pacific/Chatham'];
    fc.assert(
      fc.property(fc.integer({ min: at('2020-01-01T00:00:00Z'), max: at('2032-01-01T00:00:00Z') }), fc.constantFrom(...zones), fc.constantFrom('day' as const, 'week' as const, 'month' as const), (t, zone, unit) => {
        const label = calendarWindowLabel(unit, zone, t);
        const end = calendarWindowEnd(unit, zone, t);
        assert.ok(end > t);
        assert.equal(end % 60_000, 0);
        assert.notEqual(calendarWindowLabel(unit, zone, end), label);
        assert.equal(calendarWindowLabel(unit, zone, end - 1), label);
        const length = end - t;
        assert.ok(length <= (unit === 'day' ? 26 : unit === 'week' ? 7 * 24 + 2 : 31 * 24 + 2) * 3_600_000);
      }),
      { numRuns: 400 },
    );
  });
});

describe('rolling windows', () => {
  it('count in steps of N·60/96 minutes, and keep a charge between N hours and N hours plus one step', () => {
    assert.equal(rollingStepMs(24), 15 * 60_000);
    assert.equal(rollingStepMs(1), 60_000);
    assert.equal(rollingStepMs(168), 105 * 60_000);
    const window = { kind: 'rolling', hours: 24 } as const;
    const t = at('2025-05-05T10:07:00Z');
    const now = windowAt(window, t);
    assert.equal(countsIn(window, now, t).counts, true);
    assert.equal(countsIn(window, now, t - 24 * 3_600_000 + 1).counts, true, 'within the last 24 hours');
    assert.equal(countsIn(window, now, t - 24 * 3_600_000 - 15 * 60_000).counts, false, 'a whole step older than the window');
    fc.assert(
      fc.property(fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2026-01-01T00:00:00Z') }), fc.integer({ min: 0, max: 48 * 3_600_000 }), (charged, later) => {
        const view = windowAt(window, charged + later);
        const counts = countsIn(window, view, charged).counts;
        if (later < 24 * 3_600_000) assert.ok(counts, 'never dropped before 24 hours');
        if (later >= 24 * 3_600_000 + rollingStepMs(24)) assert.ok(!counts, 'dropped within one step after');
      }),
    );
  });
});

const spec = (over: Partial<BudgetSpec> & Pick<BudgetSpec, 'who'>): BudgetSpec => ({ id: 'b', models: ['*'], window: '1d', limit: { usd: 5 }, action: 'block', warn_at: [], unpriced: 'block', ...over });
const compile = (specs: BudgetSpec[], timezone = 'UTC'): CompiledBudget[] => {
  const issues: { path: readonly (string | number)[]; message: string }[] = [];
  const out = compileBudgets(specs, { budget_timezone: timezone, budgets_default_output_cap: 4096, budgets_enforce_output_cap: false }, undefined, issues);
  assert.deepEqual(issues, []);
  return out;
};
const subject = (sub: string, groups: string[], model = 'gpt-4o', provider = 'openai', email: string | null = `${sub}@example.com`): BudgetSubject => ({ principal: { subject: sub, email, groups }, provider, model });

describe('who and what a budget counts', () => {
  it('everyone, each user, listed users (subject or email globs), groups shared or per member', () => {
    const [everyone, each, listed, groups, members] = compile([
      spec({ id: 'all', who: { kind: 'everyone' } }),
      spec({ id: 'each', who: { kind: 'users', users: '*' } }),
      spec({ id: 'listed', who: { kind: 'users', users: ['*@contractors.example', 'sub-bob'] } }),
      spec({ id: 'groups', who: { kind: 'groups', groups: ['developers', 'ops-*'], per: 'group' } }),
      spec({ id: 'members', who: { kind: 'groups', groups: ['developers'], per: 'user' } }),
    ]);
    const alice = subject('sub-alice', ['developers', 'ops-eu']);
    assert.deepEqual(everyone!.scopes(alice), ['all']);
    assert.deepEqual(each!.scopes(alice), ['u:sub-alice']);
    assert.deepEqual(listed!.scopes(alice), []);
    assert.deepEqual(listed!.scopes(subject('sub-carol', [], 'gpt-4o', 'openai', 'carol@contractors.example')), ['u:sub-carol']);
    assert.deepEqual(listed!.scopes(subject('sub-bob', [], 'gpt-4o', 'openai', null)), ['u:sub-bob']);
    assert.deepEqual(groups!.scopes(alice), ['g:developers', 'g:ops-eu'], 'one counter per group the user is in');
    assert.deepEqual(groups!.scopes(subject('x', ['sales'])), []);
    assert.deepEqual(members!.scopes(alice), ['u:sub-alice']);
  });

  it('models: provider/model globs, or model globs for any provider', () => {
    const [qualified, bare] = compile([
      spec({ id: 'q', who: { kind: 'everyone' }, models: ['openai/gpt-4o*'] }),
      spec({ id: 'm', who: { kind: 'everyone' }, models: ['claude-*'] }),
    ]);
    assert.deepEqual(qualified!.scopes(subject('a', [], 'gpt-4o-mini')), ['all']);
    assert.deepEqual(qualified!.scopes(subject('a', [], 'gpt-4o', 'azure')), [], 'another provider');
    assert.deepEqual(qualified!.scopes(subject('a', [], 'gpt-5')), []);
    assert.deepEqual(bare!.scopes(subject('a', [], 'claude-sonnet-4-5', 'anthropic')), ['all']);
    assert.deepEqual(bare!.scopes(subject('a', [], 'CLAUDE-SONNET-4-5', 'anthropic')), ['all'], 'globs are case-insensitive, as rules are');
  });

  it('the fingerprint names what is counted: a new limit keeps the counters, new models or zone start afresh', () => {
    const base = spec({ id: 'b', who: { kind: 'users', users: '*' } });
    const [a] = compile([base]);
    const [raised] = compile([{ ...base, limit: { usd: 50 }, action: 'require_approval', warn_at: [0.5] }]);
    const [other] = compile([{ ...base, models: ['gpt-*'] }]);
    const [zoned] = compile([base], 'Europe/Paris');
    const [tokens] = compile([{ ...base, limit: { tokens: 5 } }]);
    assert.equal(a!.fingerprint, raised!.fingerprint);
    for (const changed of [other, zoned, tokens]) assert.notEqual(a!.fingerprint, changed!.fingerprint);
    assert.equal(a!.limit, 5_000_000_000);
  });

  it('countersFor: every counter a call charges, sorted by key, with its window', () => {
    const budgets = compile([spec({ id: 'z-user', who: { kind: 'users', users: '*' } }), spec({ id: 'a-team', who: { kind: 'groups', groups: ['developers'], per: 'group' }, window: '24h', limit: { tokens: 100 } })], 'Asia/Kolkata');
    const counters = countersFor(budgets, subject('sub-alice', ['developers']), at('2025-01-01T18:30:00Z'));
    assert.deepEqual(counters.map((c) => c.key), [`a-team.${budgets[1]!.fingerprint}|g:developers|`, `z-user.${budgets[0]!.fingerprint}|u:sub-alice|d2025-01-02`]);
  });
});

const request = (over: Partial<NormalizedRequest> = {}): NormalizedRequest => ({ endpoint: 'openai.chat.completions', model: 'gpt-4o', stream: false, messages: [], tools: [], inputs: [], texts: [], ...over });

describe('reservations and charges', () => {
  const gpt4o = findPrice([], BUILT_IN_PRICES, { name: 'openai', kind: 'openai' }, 'gpt-4o');
  const sonnet = findPrice([], BUILT_IN_PRICES, { name: 'anthropic', kind: 'anthropic' }, 'claude-sonnet-4-5');

  it('reserves the body bytes, named images and files, and the stated output (times n) or the cap', () => {
    const plain = reservationOf(request({ outputLimit: { maxTokens: 100, choices: 2 } }), { bytes: 1000, asksForCaching: false }, gpt4o, 4096);
    assert.deepEqual(plain, { inputTokens: 1000, outputTokens: 200, tokens: 1200, nanoUsd: 1000 * 2500 + 200 * 10_000 + 1, requests: 1 });
    const images = reservationOf(
      request({ messages: [{ role: 'user', parts: [{ type: 'image', source: 'url' }, { type: 'image', source: 'base64' }, { type: 'file', source: 'reference' }] }] }),
      { bytes: 10, asksForCaching: false },
      null,
      4096,
    );
    assert.equal(images.inputTokens, 10 + 2 * 2500, 'a URL and a file id are not in the body; base64 bytes are');
    assert.equal(images.outputTokens, 4096, 'no maximum stated: the cap');
    assert.equal(images.nanoUsd, null, 'no price');
    const cached = reservationOf(request({ endpoint: 'anthropic.messages', outputLimit: { maxTokens: 10, choices: 1 } }), { bytes: 100, asksForCaching: true }, sonnet, 4096);
    assert.equal(cached.nanoUsd, 100 * 6000 + 10 * 15_000 + 1, 'a request asking for caching may be billed one-hour cache writes');
  });

  it('a real usage never costs more than its reservation when the request states its maximum', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 0, max: 4000 }), (text, max, written) => {
        const bytes = Buffer.byteLength(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] }));
        const r = reservationOf(request({ outputLimit: { maxTokens: max, choices: 1 } }), { bytes, asksForCaching: false }, gpt4o, 4096);
        // A tokenizer gives at most one token per byte of text; the model writes at most max tokens.
        const usage = { inputTokens: Buffer.byteLength(text) + 7, outputTokens: Math.min(written, max) };
        const charge = chargeOf({ forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { ...usage, costNanoUsd: 2500 * usage.inputTokens + 10_000 * usage.outputTokens }, usageFinal: true }, r);
        assert.ok(charge.nanoUsd <= r.nanoUsd!, `${charge.nanoUsd} <= ${r.nanoUsd}`);
        assert.ok(charge.tokens <= r.tokens);
      }),
    );
  });

  const reservation: Reservation = { inputTokens: 100, outputTokens: 50, tokens: 150, nanoUsd: 9999, requests: 1 };
  const cases: [string, Parameters<typeof chargeOf>[0], ReturnType<typeof chargeOf>][] = [
    ['refused before forwarding', { forwarded: false, upstreamStatus: null, providerKind: 'openai', usage: null, usageFinal: false }, { nanoUsd: 0, tokens: 0, requests: 0, basis: 'none' }],
    ['answered with usage', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { inputTokens: 10, outputTokens: 5, costNanoUsd: 77 }, usageFinal: true }, { nanoUsd: 77, tokens: 15, requests: 1, basis: 'usage' }],
    ['Anthropic cache tokens count', { forwarded: true, upstreamStatus: 200, providerKind: 'anthropic', usage: { inputTokens: 10, cacheReadTokens: 100, cacheWriteTokens: 20, outputTokens: 5, costNanoUsd: 1 }, usageFinal: true }, { nanoUsd: 1, tokens: 135, requests: 1, basis: 'usage' }],
    ['the answer named an unpriced model', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { inputTokens: 10, outputTokens: 5, costNanoUsd: null }, usageFinal: true }, { nanoUsd: 9999, tokens: 15, requests: 1, basis: 'reservation' }],
    ['upstream error, no usage', { forwarded: true, upstreamStatus: 429, providerKind: 'openai', usage: null, usageFinal: false }, { nanoUsd: 0, tokens: 0, requests: 1, basis: 'none' }],
    ['client gone mid-stream, no usage', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: null, usageFinal: false }, { nanoUsd: 9999, tokens: 150, requests: 1, basis: 'reservation' }],
    ['client gone mid-stream after Anthropic\'s first usage (1 output token): the reservation', { forwarded: true, upstreamStatus: 200, providerKind: 'anthropic', usage: { inputTokens: 80, outputTokens: 1, costNanoUsd: 5 }, usageFinal: false }, { nanoUsd: 9999, tokens: 150, requests: 1, basis: 'reservation' }],
    ['cut, but the partial usage already says more than the reservation', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { inputTokens: 900, outputTokens: 1, costNanoUsd: 20_000 }, usageFinal: false }, { nanoUsd: 20_000, tokens: 901, requests: 1, basis: 'reservation' }],
    ['a stream that ended without a usage report', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: null, usageFinal: true }, { nanoUsd: 9999, tokens: 150, requests: 1, basis: 'reservation' }],
    ['timeout before the headers', { forwarded: true, upstreamStatus: null, providerKind: 'openai', usage: null, usageFinal: false }, { nanoUsd: 9999, tokens: 150, requests: 1, basis: 'reservation' }],
    ['usage without counts', { forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { totalTokens: 3 }, usageFinal: true }, { nanoUsd: 9999, tokens: 150, requests: 1, basis: 'reservation' }],
  ];
  for (const [name, outcome, expected] of cases) it(`charge: ${name}`, () => assert.deepEqual(chargeOf(outcome, reservation), expected));

  it('an unpriced model (allowed) is charged no dollars', () => {
    assert.deepEqual(chargeOf({ forwarded: true, upstreamStatus: 200, providerKind: 'openai', usage: { inputTokens: 1, outputTokens: 1, costNanoUsd: null }, usageFinal: true }, { ...reservation, nanoUsd: null }), { nanoUsd: 0, tokens: 2, requests: 1, basis: 'usage' });
  });

  it('recorded charges: what was recorded, else what the usage says', () => {
    assert.deepEqual(recordedCharge('openai', { inputTokens: 3, charged: { nanoUsd: 5, tokens: 6, requests: 1, basis: 'reservation' } }), { nanoUsd: 5, tokens: 6, requests: 1, basis: 'reservation' });
    assert.deepEqual(recordedCharge('anthropic', { inputTokens: 3, cacheReadTokens: 4, outputTokens: 2, costNanoUsd: 9 }), { nanoUsd: 9, tokens: 9, requests: 1, basis: 'usage' });
    assert.deepEqual(recordedCharge('openai', null), { nanoUsd: 0, tokens: 0, requests: 0, basis: 'none' });
    assert.equal(usageTokens('openai', {}), null);
    assert.equal(amountIn('tokens', { nanoUsd: 1, tokens: 2, requests: 3 }), 2);
  });

  it('describes amounts and refusals', () => {
    assert.deepEqual([0, 5e9, 5.02e9, 75_000, 40_000_000].map((n) => describeAmount('usd', n)), ['$0', '$5', '$5.02', '$0.000075', '$0.04']);
    assert.equal(describeAmount('tokens', 12000), '12,000 tokens');
    assert.equal(describeAmount('requests', 1), '1 request');
    const [b] = compile([spec({ id: 'per-user-daily', who: { kind: 'users', users: '*' } })]);
    assert.equal(refusalReason(b!, 4.98e9, 0.04e9), 'budget per-user-daily exceeded: $5.02 of $5 ($4.98 spent or reserved, up to $0.04 for this request)');
  });
});

describe('the policy file', () => {
  const load = (yaml: string) => parsePolicyText(`version: 1\n${yaml}`, 'policy.yaml');
  const problems = (yaml: string): string => {
    try {
      load(yaml);
    } catch (error) {
      return String((error as { params: { problems: string } }).params.problems);
    }
    assert.fail('expected the policy to be refused');
  };

  it('reads the keys of the issue, with their defaults', () => {
    const policy = load(`budget_timezone: Europe/Paris
budgets:
  - id: per-user-daily
    who: { users: '*' }
    models: ['*']
    window: 1d
    limit: { usd: 5 }
    action: block
  - id: team
    who: { groups: [developers], per: user }
    window: 24h
    limit: { tokens: 1000000 }
    action: require_approval
    warn_at: [0.8, 0.5]
    approval: { approvers: [leads] }
  - id: all
    who: '*'
    models: [openai/gpt-4o*]
    window: 1mo
    timezone: America/New_York
    limit: { requests: 10000 }
`);
    const [daily, team, all] = policy.compiled.budgets;
    assert.equal(daily!.unit, 'usd');
    assert.deepEqual(daily!.window, { kind: 'calendar', unit: 'day', timeZone: 'Europe/Paris' });
    assert.equal(daily!.unpriced, 'block');
    assert.deepEqual(team!.window, { kind: 'rolling', hours: 24 });
    assert.deepEqual(team!.warnAt, [0.5, 0.8]);
    assert.deepEqual(team!.approval?.approvers, ['leads']);
    assert.deepEqual(all!.window, { kind: 'calendar', unit: 'month', timeZone: 'America/New_York' });
    assert.equal(all!.action, 'block');
    assert.equal(policy.compiled.budgetSettings.budgets_default_output_cap, 4096);
  });

  it('README\'s Budgets example is a valid policy and means what README says', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Budgets'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(yaml, 'README "Budgets" has a yaml block');
    const { budgets } = load(yaml).compiled;
    assert.deepEqual(budgets.map((b) => [b.id, b.unit, b.action]), [['per-user-daily', 'usd', 'block'], ['developers-monthly', 'usd', 'require_approval'], ['everyone-opus', 'tokens', 'block']]);
    assert.deepEqual(budgets[0]!.window, { kind: 'calendar', unit: 'day', timeZone: 'Europe/Paris' });
    assert.deepEqual(budgets[1]!.approval?.approvers, ['leads']);
    const alice = subject('alice', ['developers'], 'claude-opus-4-5', 'anthropic');
    assert.deepEqual(budgets.map((b) => b.scopes(alice)), [['u:alice'], ['g:developers'], ['all']]);
    assert.deepEqual(budgets[2]!.scopes(subject('alice', [], 'claude-opus-4-5', 'bedrock')), [], 'another provider');
  });

  it('names the budget, the line, the key and what was expected', () => {
    const text = problems(`budgets:
  - id: a
    who: { users: '*', groups: [x] }
    window: 2d
    limit: { usd: 5, tokens: 3 }
  - id: a
    who: { everyone: true, per: user }
    window: 24h
    timezone: Mars/Olympus
    limit: { requests: 1.5 }
    action: block
    approval: { approvers: [x] }
    warn_at: [1.2]
`);
    assert.match(text, /line 4, budget "a", budgets\[0\]\.who: expected exactly one of everyone, users, groups \(got users and groups\)/);
    assert.match(text, /budgets\[0\]\.window: expected 1d, 1w or 1mo/);
    assert.match(text, /budgets\[0\]\.limit: expected exactly one of usd, tokens, requests/);
    assert.match(text, /budgets\[1\]\.who\.per: per applies only to groups/);
    assert.match(text, /budgets\[1\]\.timezone: expected an IANA time zone/);
    assert.match(text, /budgets\[1\]\.limit\.requests: expected a whole number of requests/);
    assert.match(text, /budgets\[1\]\.warn_at\[0\]: expected a fraction below 1/);
    // Checks across keys run once each budget is well-formed.
    const budget = (id: string, extra = ''): string => `  - id: ${id}\n    who: '*'\n    window: 1d\n    limit: { usd: 1 }\n${extra}`;
    const later = problems(`budgets:\n${budget('a', '    approval: { approvers: [x] }\n')}${budget('a')}${budget('r', '    window: 24h\n    timezone: UTC\n').replace('    window: 1d\n', '')}`);
    assert.match(later, /budgets\[0\]\.approval: approval applies only to budgets with action require_approval/);
    assert.match(later, /budgets\[2\]\.timezone: a rolling window \(hours\) has no time zone/);
    assert.match(problems(`budgets:\n${budget('a')}${budget('a')}`), /budgets\[1\]\.id: duplicate budget id "a"/);
    assert.match(problems('budget_timezone: Nowhere/Land\n'), /budget_timezone: expected an IANA time zone/);
  });
});
