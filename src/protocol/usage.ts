/**
 * The usage API on the gateway (authenticated with the user's access token): what the recorded
 * calls used and cost, summed by user, group, model or day. Users see their own usage; members of
 * the auditor groups (gateway config `audit.auditor_groups`) see everyone's, and each of their
 * reads is written to the access log (action `usage`) before the answer is sent. `aigov usage`
 * validates answers with these same schemas; `aigov usage --json` prints the UsageReport.
 *
 *   GET /aigov/v1/usage?by=user|group|model|day&since=ISO|ms&until=ISO|ms&user=U&tz=ZONE
 *       → UsageReport. `by` defaults to user for auditors, model for others. Calls started at
 *         or after `since` (default: 30 days before `until`) and before `until` (default: now).
 *         `user` (subject or email) is for auditors, or oneself. `tz`: an IANA zone
 *         (`Europe/Paris`) or a UTC offset (`+05:30`), default UTC: the calendar days of
 *         `by=day` (each day cut to the range; at most 1000 of them).
 *
 * Tokens are counted by the kind they are billed as, the same for every provider:
 * `input_tokens` at the plain input rate (OpenAI's count of cached input taken out),
 * `cache_read_tokens`, `cache_write_tokens`, `output_tokens` (reasoning included) and, of
 * those, `reasoning_tokens`. `cost_nano_usd` is the exact sum of the priced calls' costs in
 * nano-dollars (10⁻⁹ USD) as a decimal integer string (it may pass 2^53); `cost_usd` the same in
 * dollars as a number, for display. Calls whose cost is not known are counted apart and not in
 * the cost: `unpriced_calls` (the model has no price), `before_pricing_calls` (recorded before
 * the gateway priced calls), `no_usage_calls` (completed, but the answer reported no usage — an
 * OpenAI stream without `stream_options.include_usage`). `calls` counts every call, refused ones too.
 *
 * Errors: `{"error": {"code": "AIGOV_E_…", "message": "…", "hint": "…"}}` with the registry's status
 * (AIGOV_E_USAGE_FORBIDDEN for another user's usage without being an auditor).
 */
import { z } from 'zod';

export const USAGE_PATH = '/aigov/v1/usage';

export const USAGE_GROUPINGS = ['user', 'group', 'model', 'day'] as const;
export type UsageBy = (typeof USAGE_GROUPINGS)[number];

/** The most days a `by=day` report may have. */
export const USAGE_MAX_DAYS = 1000;

const count = z.number().int().nonnegative();

export const UsageTotalsSchema = z.object({
  calls: count,
  input_tokens: count,
  cache_read_tokens: count,
  cache_write_tokens: count,
  output_tokens: count,
  reasoning_tokens: count,
  cost_nano_usd: z.string().regex(/^\d+$/),
  cost_usd: z.number().nonnegative(),
  unpriced_calls: count,
  before_pricing_calls: count,
  no_usage_calls: count,
});
export type UsageTotalsView = z.infer<typeof UsageTotalsSchema>;

/** One group of calls: the key of its grouping, and its sums. */
export const UsageRowSchema = UsageTotalsSchema.extend({
  /** by=user */
  user: z.object({ sub: z.string(), email: z.string().nullable() }).optional(),
  /** by=group: null for callers in no group. A call counts in each of its caller's groups. */
  group: z.string().nullable().optional(),
  /** by=model: the provider's name in the gateway config, and the model asked for. */
  provider: z.string().optional(),
  model: z.string().nullable().optional(),
  /** by=day: `YYYY-MM-DD` in `time_zone`. */
  day: z.string().optional(),
});
export type UsageRowView = z.infer<typeof UsageRowSchema>;

export const UsageReportSchema = z.object({
  by: z.enum(USAGE_GROUPINGS),
  /** ISO 8601: the calls started at or after `since` and before `until`. */
  since: z.string(),
  until: z.string(),
  /** The zone of the days (canonical: an IANA name, `UTC` or `+05:30`). */
  time_zone: z.string(),
  /** Whose usage: the reader, and whether they see everyone's (an auditor). */
  viewer: z.object({ sub: z.string(), email: z.string().nullable(), auditor: z.boolean() }),
  /** The `user` asked for, as given; null: the reader's own usage (not an auditor) or everyone's (an auditor). */
  user: z.string().nullable(),
  /** By day: every day of the range, in order, empty ones included. Otherwise dearest first. */
  rows: z.array(UsageRowSchema),
  /** The whole range (a call in several groups counts once). */
  total: UsageTotalsSchema,
});
export type UsageReportView = z.infer<typeof UsageReportSchema>;
