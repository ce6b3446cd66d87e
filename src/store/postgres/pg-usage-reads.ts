/**
 * The usage report of the PostgreSQL store (RecordingStore.usageReport): the same columns and
 * rules as the SQLite store's (sqlite/usage-reads.ts), rows mapped and ordered in ../usage-rows.ts.
 * The calls are found through their sessions (../usage-rows.ts says why: sessions_by_last_call or
 * sessions_by_subject, then calls_by_session). Each call's usage text is parsed once (a fenced
 * subquery's jsonb); a value of another JSON type than the one expected is left out rather than
 * failing the cast (and the report). The cost is summed as numeric and read as text: exact
 * whatever its size. By day, one pass: each call's local day number from the zone's offsets.
 */
import type { UsageQuery, UsageReport, UsageRow } from '../recording-store.ts';
import type { RecordRow } from '../record-rows.ts';
import { dayNumberSql, dayPlan, everyDay, orderUsageRows, sumOfRows, toUsageKey, toUsageTotals } from '../usage-rows.ts';

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: RecordRow[] }>;
}

const FOLD_ASCII = (sql: string): string => `translate(${sql}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`;
/** A token count of the usage `c.u`, or NULL when it is absent or not a number. */
const N = (field: string): string => `CASE WHEN jsonb_typeof(c.u -> '${field}') = 'number' THEN (c.u ->> '${field}')::numeric END`;
const COST_TYPE = "jsonb_typeof(c.u -> 'costNanoUsd')";
const WHOLE_COST = `${COST_TYPE} = 'number' AND (c.u ->> 'costNanoUsd') ~ '^-?[0-9]+$'`;

const SUMS = `
  count(c.id) AS calls,
  coalesce(sum(CASE WHEN c.provider_kind = 'openai' THEN greatest(0, coalesce(${N('inputTokens')}, 0) - coalesce(${N('cacheReadTokens')}, 0)) ELSE ${N('inputTokens')} END), 0)::bigint AS input,
  coalesce(sum(${N('cacheReadTokens')}), 0)::bigint AS cache_read,
  coalesce(sum(${N('cacheWriteTokens')}), 0)::bigint AS cache_write,
  coalesce(sum(${N('outputTokens')}), 0)::bigint AS output,
  coalesce(sum(${N('reasoningTokens')}), 0)::bigint AS reasoning,
  (sum((c.u ->> 'costNanoUsd')::numeric) FILTER (WHERE ${WHOLE_COST}))::text AS cost,
  count(c.id) FILTER (WHERE ${COST_TYPE} = 'null') AS unpriced,
  count(c.id) FILTER (WHERE c.u IS NOT NULL AND NOT (c.u ? 'costNanoUsd')) AS before_pricing,
  count(c.id) FILTER (WHERE c.status = 'completed' AND c.u IS NULL) AS no_usage`;

/**
 * The calls of the sessions active since the range began that match `where`, each with its usage
 * parsed once as `u`. `OFFSET 0` keeps the planner from pulling the subquery up into the aggregate,
 * where it would parse the text again for each of the dozen references to `u` (measured: 347 ms
 * against 1,499 ms for 20,000 calls).
 */
const CALLS = (where: string): string =>
  `(SELECT c0.subject, c0.issuer, c0.email, c0.groups, c0.provider, c0.provider_kind, c0.model, c0.status, c0.started_at, c0.rec, c0.id, c0.usage::jsonb AS u
    FROM sessions s JOIN calls c0 ON c0.session_id = s.id WHERE ${where} OFFSET 0)`;

/** The report, in one snapshot of `db` (the caller's REPEATABLE READ transaction). */
export async function pgUsageReport(db: Queryable, query: UsageQuery): Promise<UsageReport> {
  const values: unknown[] = [];
  const p = (value: unknown): string => {
    values.push(value);
    return `$${values.length}`;
  };
  const since = p(query.since);
  const where = [`s.last_call_at >= ${since}`, `c0.started_at >= ${since}`, `c0.started_at < ${p(query.until)}`];
  if (query.owner !== undefined) {
    const [subject, issuer] = [p(query.owner.subject), p(query.owner.issuer)];
    where.push(`s.subject = ${subject} AND s.issuer = ${issuer} AND c0.subject = ${subject} AND c0.issuer = ${issuer}`);
  }
  if (query.user !== undefined) {
    const user = p(query.user);
    where.push(`(c0.subject = ${user} OR ${FOLD_ASCII('c0.email')} = ${FOLD_ASCII(user)})`);
  }
  const calls = CALLS(where.join(' AND '));
  const rangeValues = [...values];

  // The planner's guess for a call's groups (100 rows a call) prices the report high enough to JIT
  // it: ~90 ms of compiling for a query that then runs in less. Off for this transaction only.
  await db.query('SET LOCAL jit = off');
  const plan = query.by === 'day' ? dayPlan(query) : null;
  let sql: string;
  switch (query.by) {
    case 'user':
      sql = `SELECT c.subject, c.issuer, (array_agg(c.email ORDER BY c.started_at DESC, c.rec DESC))[1] AS email, ${SUMS}
        FROM ${calls} c GROUP BY c.issuer, c.subject`;
      break;
    case 'group':
      sql = `SELECT g.grp, ${SUMS} FROM ${calls} c
        LEFT JOIN LATERAL (SELECT DISTINCT e AS grp FROM jsonb_array_elements_text(c.groups::jsonb) e) g ON true
        GROUP BY g.grp`;
      break;
    case 'model':
      sql = `SELECT c.provider, c.model, ${SUMS} FROM ${calls} c GROUP BY c.provider, c.model`;
      break;
    case 'day':
      sql = `SELECT ${dayNumberSql('c.started_at', plan?.segments ?? [], (value) => `${p(value)}::bigint`)} AS dayno, ${SUMS} FROM ${calls} c GROUP BY 1`;
      break;
  }
  const res = await db.query(sql, values);
  const rows: UsageRow[] = res.rows.map((row) => ({ key: toUsageKey(query.by, row), ...toUsageTotals(row) }));
  // By group a call may be in several rows: its total is summed apart (the same snapshot).
  const total = query.by === 'group' ? toUsageTotals((await db.query(`SELECT ${SUMS} FROM ${calls} c`, rangeValues)).rows[0] ?? {}) : sumOfRows(rows);
  return { rows: plan === null ? orderUsageRows(query.by, rows) : everyDay(plan, rows), total };
}
