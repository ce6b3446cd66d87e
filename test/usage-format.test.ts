/**
 * How `aigov usage` prints a report (src/cli/usage-format.ts): bars proportional to the dearest
 * row and as wide as the terminal leaves, plain without colour, names that cannot drive the
 * terminal, the calls whose cost is unknown said apart, and a helpful line when nothing matched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimeZone } from '../src/core/usage/calendar-days.ts';
import { bar, formatTokens, formatUsageReport } from '../src/cli/usage-format.ts';
import type { UsageReportView, UsageRowView, UsageTotalsView } from '../src/protocol/usage.ts';

const NOW = Date.parse('2026-11-26T14:00:00Z');
const UTC = parseTimeZone('UTC')!;

function totals(calls: number, nanoUsd: bigint, extra: Partial<UsageTotalsView> = {}): UsageTotalsView {
  return {
    calls, input_tokens: calls * 1000, cache_read_tokens: calls * 100, cache_write_tokens: 0, output_tokens: calls * 50, reasoning_tokens: 0,
    cost_nano_usd: nanoUsd.toString(), cost_usd: Number(nanoUsd) / 1e9, unpriced_calls: 0, before_pricing_calls: 0, no_usage_calls: 0, ...extra,
  };
}

function report(rows: UsageRowView[], total: UsageTotalsView, extra: Partial<UsageReportView> = {}): UsageReportView {
  return {
    by: 'user', since: new Date(NOW - 30 * 86_400_000).toISOString(), until: new Date(NOW).toISOString(), time_zone: 'UTC',
    viewer: { sub: 'carol', email: 'carol@example.com', auditor: true }, user: null, rows, total, ...extra,
  };
}

const plain = { width: 100, color: false, zone: UTC, now: NOW };
const barOf = (line: string): string => /[█▏▎▍▌▋▊▉]+$/.exec(line)?.[0] ?? '';

describe('aigov usage on a terminal', () => {
  const byUser = report(
    [
      { user: { sub: 'a', email: 'alice@example.com' }, ...totals(40, 12_340_000_000n) },
      { user: { sub: 'b', email: 'bob@example.com' }, ...totals(10, 6_170_000_000n) },
      { user: { sub: 'k', email: null }, ...totals(3, 0n, { unpriced_calls: 3 }) },
    ],
    totals(53, 18_510_000_000n, { unpriced_calls: 3 }),
  );

  it('a row per user with a bar in proportion to its cost, the total, and the unpriced calls said apart', () => {
    const text = formatUsageReport(byUser, plain);
    const lines = text.split('\n');
    const wide = formatUsageReport(byUser, { ...plain, width: 160 });
    assert.equal(lines[0], "Everyone's usage · 2026-10-27 14:00 → now (UTC) · by user");
    assert.match(lines[2]!, /^USER +CALLS +INPUT +CACHED +OUTPUT +COST$/);
    const alice = lines.find((l) => l.startsWith('alice@example.com'))!;
    const bob = lines.find((l) => l.startsWith('bob@example.com'))!;
    assert.match(alice, /^alice@example\.com +40 +44k +4k +2k +\$12\.34 +█+$/);
    assert.ok(Math.abs([...barOf(bob)].length - [...barOf(alice)].length / 2) <= 1, 'half the cost, half the bar');
    assert.match(lines.find((l) => l.startsWith('k '))!, /unpriced\*$/, 'a user without email by subject; no bar without a cost');
    assert.match(text, /^TOTAL +53 +58\.3k +5\.3k +2\.6k +\$18\.51\*$/m);
    assert.match(wide, /^ {2}3 calls of unpriced models are not counted in \$: give the models a price in the gateway config \(pricing\.models\)\.$/m);
    assert.match(text, /^ {2}3 calls of unpriced models .* gateway config\n {2}\(pricing\.models\)\.$/m, 'notes wrap at the width, indented');
    assert.ok(!text.includes('\x1b'), 'no escape codes without colour');
    for (const line of lines) assert.ok([...line].length <= 100, `fits the width: ${line}`);
  });

  it('the bars take what the terminal leaves: narrower terminal, shorter bars; colour only when asked', () => {
    const wide = barOf(formatUsageReport(byUser, { ...plain, width: 120 }).split('\n').find((l) => l.startsWith('alice'))!);
    const narrow = barOf(formatUsageReport(byUser, { ...plain, width: 72 }).split('\n').find((l) => l.startsWith('alice'))!);
    assert.ok([...wide].length > [...narrow].length && [...narrow].length >= 8, `${wide.length} > ${narrow.length}`);
    for (const line of formatUsageReport(byUser, { ...plain, width: 72 }).split('\n').slice(1, 8)) assert.ok([...line].length <= 72, line);
    const coloured = formatUsageReport(byUser, { ...plain, color: true });
    const esc = '\x1b';
    assert.ok(new RegExp(`${esc}\\[36m█+${esc}\\[0m`).test(coloured), 'bars in cyan');
  });

  it('a terminal too narrow for the table: names cut, then no bars rather than wrapped lines', () => {
    for (const width of [60, 50, 40]) {
      const text = formatUsageReport(byUser, { ...plain, width });
      for (const line of text.split('\n').filter((l) => !l.startsWith('USER') && !l.startsWith('─'))) {
        // Never wider than the terminal, unless the numbers alone (with names cut to 12) are.
        if (/^(alice|bob|k |TOTAL)/.test(line)) assert.ok([...line].length <= Math.max(width, 53), `${width}: ${line}`);
      }
      for (const line of text.split('\n').slice(0, 2)) assert.ok([...line].length <= Math.max(40, width), `title wraps at ${width}: ${line}`);
    }
    const narrow = formatUsageReport(byUser, { ...plain, width: 50 });
    assert.match(narrow, /^alice@examp… +40 /m, 'the name cut first');
    assert.doesNotMatch(narrow, /█/, 'no room left for a bar: none');
    assert.match(formatUsageReport(byUser, { ...plain, width: 72 }), /█/);
  });

  it('bars in eighths: anything above zero shows, a full row fills its width', () => {
    assert.equal(bar(1, 10), '█'.repeat(10));
    assert.equal(bar(0.5, 10), '█'.repeat(5));
    assert.equal(bar(0.55, 10), '█████▌');
    assert.equal(bar(0.51, 10), '█████▏');
    assert.equal(bar(0.0001, 10), '▏');
    assert.equal(bar(0, 10), '');
    assert.equal(bar(Number.NaN, 10), '');
  });

  it('names come from other people: control characters are shown, never sent to the terminal', () => {
    const hostile = report([{ group: 'eng\x1b[2J\x1b]0;pwned\x07', ...totals(1, 1n) }], totals(1, 1n), { by: 'group' });
    const text = formatUsageReport(hostile, plain);
    assert.ok(!text.includes('\x1b[2J') && !text.includes('\x07'));
    assert.match(text, /eng\\x1b\[2J/);
  });

  it('by group: the rows may add up to more than the total, and it says so; no group is named', () => {
    const text = formatUsageReport(report([{ group: 'eng', ...totals(5, 5n) }, { group: 'ml', ...totals(3, 3n) }, { group: null, ...totals(1, 1n) }], totals(7, 7n), { by: 'group' }), plain);
    assert.match(text, /^\(no group\) /m);
    assert.match(text, /A call counts in each of its caller's groups: the rows add up to more than the total\./);
  });

  it('by day: weekday beside the date; no cost at all → the bars show tokens, and say so', () => {
    const days = report([{ day: '2026-11-25', ...totals(2, 0n) }, { day: '2026-11-26', ...totals(0, 0n) }], totals(2, 0n), { by: 'day' });
    const text = formatUsageReport(days, plain);
    assert.match(text, /^Bars: tokens \(no call of the range has a known cost\)\.$/m);
    assert.match(text, /^2026-11-25 Wed +2 .*█+$/m);
    assert.match(text, /^2026-11-26 Thu +0 +0 +0 +0$/m, 'an empty day, without cost or bar');
  });

  it('calls without usage and calls from before pricing are explained', () => {
    const text = formatUsageReport(report([{ user: { sub: 'a', email: null }, ...totals(6, 0n, { no_usage_calls: 4, before_pricing_calls: 1 }) }], totals(6, 0n, { no_usage_calls: 4, before_pricing_calls: 1 })), { ...plain, width: 160 });
    assert.match(text, /1 call recorded before this gateway priced calls is not counted in \$\./);
    assert.match(text, /4 completed calls reported no token usage and are not counted \(an OpenAI stream reports it only with stream_options\.include_usage\)\./);
  });

  it('nothing in the range: what was looked at, and what to try', () => {
    const empty = totals(0, 0n);
    assert.match(formatUsageReport(report([], empty, { viewer: { sub: 'a', email: null, auditor: false } }), plain), /^Your usage · .*\n\nYou made no calls through the gateway in this range\.\nWiden it with --since \(e\.g\. --since 90d\)/);
    assert.match(formatUsageReport(report([], empty, { user: 'nobody@example.com' }), plain), /^Usage of nobody@example\.com · [^\n]*\n\nNo calls of nobody@example\.com in this range\.\nCheck the email or subject/);
    assert.match(formatUsageReport(report([], empty), plain), /No calls were recorded in this range\./);
  });

  it('token counts as people read them', () => {
    assert.deepEqual([0, 999, 1000, 1049, 12_345, 99_960, 100_000, 999_999, 1_234_567, 999_999_999, 2_500_000_000].map(formatTokens), ['0', '999', '1k', '1k', '12.3k', '100k', '100k', '1M', '1.2M', '1B', '2.5B']);
  });
});
