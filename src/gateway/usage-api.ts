/**
 * The usage API (contract: src/protocol/usage.ts): what the recorded calls used and cost, summed
 * by user, group, model or day, over a range, optionally for one user. Beside the sessions API and
 * under its rules: the same access tokens; a user sees their own usage; members of the auditor
 * groups (config `audit.auditor_groups`) see everyone's, and each of their reads is written to the
 * access log (action `usage`, the query as its filter) BEFORE the answer is sent — a read that
 * cannot be logged is refused. Another user's usage for anyone else: 403 AIGOV_E_USAGE_FORBIDDEN.
 *
 * Fail closed: a store that cannot answer gives 503 AIGOV_E_STORE_READ_FAILED, never a crash.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/verify-token.ts';
import { AigovError } from '../core/errors.ts';
import { dayRanges, parseTimeZone, type TimeZone } from '../core/usage/calendar-days.ts';
import { USAGE_GROUPINGS, USAGE_MAX_DAYS, USAGE_PATH, type UsageBy, type UsageReportView, type UsageRowView, type UsageTotalsView } from '../protocol/usage.ts';
import type { RecordingStore, UsageQuery, UsageRow, UsageTotals } from '../store/recording-store.ts';
import { authenticateApiCall, sendApiError, sendApiJson } from './api-response.ts';
import { isSelf, parseInstant } from './sessions-api.ts';

const DEFAULT_DAYS = 30;
const DAY_MS = 86_400_000;

export interface UsageApi {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface UsageApiDeps {
  readonly store: RecordingStore;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  /** Members of any of these groups see every user's usage (and are logged doing so). */
  readonly auditorGroups: readonly string[];
  readonly now?: () => number;
}

interface AskedReport {
  readonly by: UsageBy;
  readonly since: number;
  readonly until: number;
  readonly user: string | null;
  readonly zone: TimeZone;
}

export function createUsageApi(deps: UsageApiDeps): UsageApi {
  const now = deps.now ?? Date.now;
  const auditorGroups = new Set(deps.auditorGroups);
  const groupsText = (): string => [...auditorGroups].join(', ') || 'none configured';

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const method = req.method ?? 'GET';
    if (url.pathname.replace(/\/+$/, '') !== USAGE_PATH) return sendApiError(res, new AigovError('AIGOV_E_UNKNOWN_ENDPOINT', { method, path: url.pathname.slice(0, 200) }));
    if (method !== 'GET') return sendApiError(res, new AigovError('AIGOV_E_METHOD_NOT_ALLOWED', { method, path: url.pathname.slice(0, 200) }));
    const principal = await authenticateApiCall(deps.verifier, req, res);
    if (!principal) return;
    const auditor = principal.groups.some((g) => auditorGroups.has(g));
    const asked = parseUsageQuery(url.searchParams, now(), auditor);
    if ('error' in asked) return sendApiError(res, new AigovError('AIGOV_E_BAD_REQUEST', { reason: asked.error }));
    if (!auditor && asked.user !== null && !isSelf(principal, asked.user)) return sendApiError(res, new AigovError('AIGOV_E_USAGE_FORBIDDEN', { groups: groupsText() }));

    const query: UsageQuery = {
      by: asked.by,
      since: asked.since,
      until: asked.until,
      ...(auditor ? (asked.user === null ? {} : { user: asked.user }) : { owner: { subject: principal.subject, issuer: principal.issuer } }),
      ...(asked.by === 'day' ? { zone: asked.zone } : {}),
    };
    const report = await deps.store.usageReport(query);
    if (auditor) {
      const filter = { by: asked.by, since: iso(asked.since), until: iso(asked.until), ...(asked.user === null ? {} : { user: asked.user }), ...(asked.by === 'day' ? { tz: asked.zone.name } : {}) };
      await deps.store.recordAccess({ at: now(), actor: { subject: principal.subject, issuer: principal.issuer, email: principal.email }, action: 'usage', sessionId: null, filter: JSON.stringify(filter) });
    }
    const body: UsageReportView = {
      by: asked.by,
      since: iso(asked.since),
      until: iso(asked.until),
      time_zone: asked.zone.name,
      viewer: { sub: principal.subject, email: principal.email, auditor },
      user: asked.user,
      rows: report.rows.map(toRowView),
      total: toTotalsView(report.total),
    };
    sendApiJson(res, 200, body);
  };

  return {
    prefix: USAGE_PATH,
    handle(req, res) {
      route(req, res).catch((error: unknown) => {
        // A store that cannot answer (or cannot log an auditor's read): fail closed, keep serving.
        deps.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'usage API failed');
        if (!res.headersSent) sendApiError(res, new AigovError('AIGOV_E_STORE_READ_FAILED'));
        else res.destroy();
      });
    },
  };
}

/**
 * The query string as a report to make, or what is wrong with it. Without `by`: by user for an
 * auditor (who spent what), by model for anyone else (on what they spent it).
 */
export function parseUsageQuery(query: URLSearchParams, now: number, auditor: boolean): AskedReport | { readonly error: string } {
  const text = (name: string): string | undefined => {
    const value = query.get(name)?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const byText = text('by') ?? (auditor ? 'user' : 'model');
  if (!(USAGE_GROUPINGS as readonly string[]).includes(byText)) return { error: `by must be one of ${USAGE_GROUPINGS.join(', ')}` };
  const by = byText as UsageBy;
  const instant = (name: 'since' | 'until', fallback: number): number | { error: string } => {
    const value = text(name);
    if (value === undefined) return fallback;
    const ms = parseInstant(value);
    return ms === null ? { error: `${name} must be an ISO 8601 date-time or epoch milliseconds` } : ms;
  };
  const until = instant('until', now);
  if (typeof until !== 'number') return until;
  const since = instant('since', until - DEFAULT_DAYS * DAY_MS);
  if (typeof since !== 'number') return since;
  if (since > until) return { error: 'since must not be after until' };
  const tzText = text('tz') ?? 'UTC';
  const zone = parseTimeZone(tzText);
  if (zone === null) return { error: 'tz must be an IANA time zone (Europe/Paris) or a UTC offset (+05:30)' };
  if (by === 'day' && dayRanges(zone, since, until, USAGE_MAX_DAYS) === null) return { error: `by=day covers at most ${USAGE_MAX_DAYS} days: narrow since/until` };
  const user = text('user');
  return { by, since, until, user: user === undefined ? null : user.slice(0, 320), zone };
}

const iso = (ms: number): string => new Date(ms).toISOString();

function toTotalsView(t: UsageTotals): UsageTotalsView {
  return {
    calls: t.calls,
    input_tokens: t.inputTokens,
    cache_read_tokens: t.cacheReadTokens,
    cache_write_tokens: t.cacheWriteTokens,
    output_tokens: t.outputTokens,
    reasoning_tokens: t.reasoningTokens,
    cost_nano_usd: t.costNanoUsd.toString(),
    cost_usd: Number(t.costNanoUsd) / 1e9,
    unpriced_calls: t.unpricedCalls,
    before_pricing_calls: t.beforePricingCalls,
    no_usage_calls: t.noUsageCalls,
  };
}

function toRowView(row: UsageRow): UsageRowView {
  const { key, ...totals } = row;
  const view = toTotalsView(totals);
  switch (key.by) {
    case 'user':
      return { user: { sub: key.subject, email: key.email }, ...view };
    case 'group':
      return { group: key.group, ...view };
    case 'model':
      return { provider: key.provider, model: key.model, ...view };
    case 'day':
      return { day: key.day, ...view };
  }
}
