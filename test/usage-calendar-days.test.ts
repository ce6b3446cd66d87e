/**
 * Calendar days in a time zone (src/core/usage/calendar-days.ts), which `aigov usage --by day`
 * groups calls by: zone parsing, days of 23, 24.5 and 25 hours, a midnight that does not exist,
 * a day a country skipped — and, for random zones and ranges, the laws the usage report relies on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dayLabel, dayNumberAt, dayOf, dayRanges, endOfDate, offsetSegments, parseTimeZone, startOfDate, startOfDay, type TimeZone } from '../src/core/usage/calendar-days.ts';

const zone = (text: string): TimeZone => {
  const z = parseTimeZone(text);
  assert.ok(z !== null, text);
  return z;
};
const HOUR = 3_600_000;

/** The days of `from` … before `to` (dates in the zone): [day, start ISO, hours]. */
function days(zoneText: string, from: string, to: string): [string, string, number][] {
  const z = zone(zoneText);
  const ranges = dayRanges(z, startOfDate(z, from)!, startOfDate(z, to)!, 100);
  assert.ok(ranges !== null);
  return ranges.map((d) => [d.day, new Date(d.start).toISOString(), (d.end - d.start) / HOUR]);
}

describe('time zones as the usage API takes them', () => {
  const cases: [string, ReturnType<typeof parseTimeZone>][] = [
    ['UTC', { kind: 'offset', name: 'UTC', offsetMinutes: 0 }],
    ['z', { kind: 'offset', name: 'UTC', offsetMinutes: 0 }],
    ['+05:30', { kind: 'offset', name: '+05:30', offsetMinutes: 330 }],
    ['-0330', { kind: 'offset', name: '-03:30', offsetMinutes: -210 }],
    ['UTC+2', { kind: 'offset', name: '+02:00', offsetMinutes: 120 }],
    ['+14:00', { kind: 'offset', name: '+14:00', offsetMinutes: 840 }],
    ['Europe/Paris', { kind: 'iana', name: 'Europe/Paris' }],
    ['europe/paris', { kind: 'iana', name: 'Europe/Paris' }],
    ['+14:01', null],
    ['+05:60', null],
    ['Mars/Olympus', null],
    ['../../etc/passwd', null],
    ['', null],
    ['Europe/Paris; rm -rf /', null],
    ['A'.repeat(65), null],
  ];
  for (const [text, expected] of cases) it(`${JSON.stringify(text)} → ${expected === null ? 'refused' : expected.name}`, () => assert.deepEqual(parseTimeZone(text), expected));
});

describe('calendar days', () => {
  it('Paris: the spring day has 23 hours, the autumn one 25, each starting at local midnight', () => {
    assert.deepEqual(days('Europe/Paris', '2026-03-28', '2026-03-31'), [
      ['2026-03-28', '2026-03-27T23:00:00.000Z', 24],
      ['2026-03-29', '2026-03-28T23:00:00.000Z', 23],
      ['2026-03-30', '2026-03-29T22:00:00.000Z', 24],
    ]);
    assert.deepEqual(days('Europe/Paris', '2026-10-25', '2026-10-27').map((d) => d[2]), [25, 24]);
  });

  it('Santiago: the clock jumps at midnight, so the day starts at its first instant (01:00 local)', () => {
    assert.deepEqual(days('America/Santiago', '2026-09-05', '2026-09-08'), [
      ['2026-09-05', '2026-09-05T04:00:00.000Z', 24],
      ['2026-09-06', '2026-09-06T04:00:00.000Z', 23],
      ['2026-09-07', '2026-09-07T03:00:00.000Z', 24],
    ]);
  });

  it('Samoa skipped 2011-12-30: no such day in the list; Lord Howe moves its clock by half an hour', () => {
    assert.deepEqual(days('Pacific/Apia', '2011-12-29', '2012-01-01').map((d) => d[0]), ['2011-12-29', '2011-12-31']);
    assert.deepEqual(days('Australia/Lord_Howe', '2026-04-05', '2026-04-07').map((d) => d[2]), [24.5, 24]);
  });

  it('offsets: one instant is on different days in different zones; ranges are cut at both ends', () => {
    const at = Date.parse('2026-11-24T20:00:00Z');
    assert.equal(dayOf(zone('UTC'), at), '2026-11-24');
    assert.equal(dayOf(zone('+05:30'), at), '2026-11-25');
    assert.equal(dayOf(zone('America/Los_Angeles'), at), '2026-11-24');
    const z = zone('+05:30');
    assert.equal(startOfDay(z, at), Date.parse('2026-11-24T18:30:00Z'));
    assert.equal(endOfDate(z, '2026-11-25'), Date.parse('2026-11-25T18:30:00Z'));
    assert.deepEqual(dayRanges(z, at, at + 30 * HOUR, 10), [
      { day: '2026-11-25', start: at, end: Date.parse('2026-11-25T18:30:00Z') },
      { day: '2026-11-26', start: Date.parse('2026-11-25T18:30:00Z'), end: at + 30 * HOUR },
    ]);
    assert.deepEqual(dayRanges(z, at, at, 10), [], 'an empty range has no days');
    assert.equal(dayRanges(z, at, at + 11 * 24 * HOUR, 10), null, 'more days than allowed');
    assert.equal(startOfDate(z, '2026-02-29'), null, 'no such date');
    assert.equal(startOfDate(z, '2026-11-25T00:00'), null, 'a date only');
  });

  it('laws, for random zones and ranges: days follow each other without gap, each starts at its first instant', () => {
    const zones = ['UTC', '+05:30', '-09:30', 'Europe/Paris', 'America/New_York', 'America/Santiago', 'Australia/Lord_Howe', 'Pacific/Apia', 'Asia/Kathmandu', 'America/St_Johns'].map(zone);
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.parse('1990-01-01'), max: Date.parse('2040-01-01') }),
        fc.integer({ min: 1, max: 40 * 24 * HOUR }),
        (z, since, length) => {
          const until = since + length;
          const ranges = dayRanges(z, since, until, 100);
          assert.ok(ranges !== null && ranges.length > 0);
          assert.equal(ranges[0]!.start, since);
          assert.equal(ranges.at(-1)!.end, until);
          ranges.forEach((d, i) => {
            assert.ok(d.start < d.end, 'no empty day');
            assert.equal(dayOf(z, d.start), d.day);
            assert.equal(dayOf(z, d.end - 1), d.day, 'the whole range is on its day');
            if (i > 0) {
              assert.equal(d.start, ranges[i - 1]!.end, 'no gap, no overlap');
              assert.ok(d.day > ranges[i - 1]!.day, 'days in order');
              assert.equal(d.start, startOfDay(z, d.start), 'a day after the first starts at its first instant');
            }
          });
          const t = since + Math.floor(length / 2);
          const start = startOfDay(z, t);
          assert.ok(start <= t && dayOf(z, start) === dayOf(z, t) && dayOf(z, start - 1) < dayOf(z, t));
          // What the stores group by: the day number from the range's offsets, at each day's edges and inside.
          const segments = offsetSegments(z, since, until);
          for (const d of ranges) for (const at of [d.start, d.end - 1, Math.floor((d.start + d.end) / 2)]) assert.equal(dayLabel(dayNumberAt(segments, at)), d.day, `${z.name} ${new Date(at).toISOString()}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('offsets over a range: each clock change at its exact second', () => {
    const paris = zone('Europe/Paris');
    assert.deepEqual(offsetSegments(paris, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2027-01-01T00:00:00Z')), [
      { from: Date.parse('2026-01-01T00:00:00Z'), offsetMs: HOUR },
      { from: Date.parse('2026-03-29T01:00:00Z'), offsetMs: 2 * HOUR },
      { from: Date.parse('2026-10-25T01:00:00Z'), offsetMs: HOUR },
    ]);
    assert.deepEqual(offsetSegments(zone('+05:30'), 0, 1e12), [{ from: 0, offsetMs: 330 * 60_000 }]);
    assert.equal(offsetSegments(paris, Date.parse('2026-03-29T00:59:59Z'), Date.parse('2026-03-29T01:00:01Z')).length, 2, 'a change inside a two-second range');
  });
});
