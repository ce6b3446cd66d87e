/**
 * The usage report of the PostgreSQL store (RecordingStore.usageReport): the same columns and
 * rules as the SQLite store's (sqlite/usage-reads.ts), rows mapped and ordered in ../usage-rows.ts.
 * Each call's usage text is parsed once (a LATERAL jsonb); a value of another JSON type than the
 * one expected is left out rather than failing the cast (and the report). The cost is summed as
 * numeric and read as text: exact whatever its size.
 *
 * Indexes (migration 5): calls_by_start (started_at), calls_by_subject_start (subject, started_at).
 * By day, each day is a LATERAL range lookup, the days the outer side of a LEFT JOIN.
 */
import type { UsageQuery, UsageReport, UsageRow } from '../recording-store.ts';
import type { RecordRow } from '../record-rows.ts';
import { orderUsageRows, toUsageKey, toUsageTotals } from '../usage-rows.ts';

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
 * The calls matching `where`, each with its usage parsed once as `u`. `OFFSET 0` keeps the planner
 * from pulling the subquery up into the aggregate, where it would parse the text again for each of
 * the dozen references to `u` (measured: several times slower).
 */
const CALLS = (where: string): string =>
  `(SELECT c0.subject, c0.issuer, c0.email, c0.groups, c0.provider, c0.provider_kind, c0.model, c0.status, c0.started_at, c0.rec, c0.id, c0.usage::jsonb AS u FROM calls c0 WHERE ${where} OFFSET 0)`;

/** The report, in one snapshot of `db` (the caller's REPEATABLE READ transaction). */
export async function pgUsageReport(db: Queryable, query: UsageQuery): Promise<UsageReport> {
  const values: unknown[] = [];
  const p = (value: unknown): string => {
    values.push(value);
    return `$${values.length}`;
  };
  const filters: string[] = [];
  if (query.owner !== undefined) filters.push(`c0.subject = ${p(query.owner.subject)} AND c0.issuer = ${p(query.owner.issuer)}`);
  if (query.user !== undefined) {
    const user = p(query.user);
    filters.push(`(c0.subject = ${user} OR ${FOLD_ASCII('c0.email')} = ${FOLD_ASCII(user)})`);
  }
  const filter = filters.map((f) => ` AND ${f}`).join('');
  const filterValues = [...values];
  const inRange = `c0.started_at >= ${p(query.since)} AND c0.started_at < ${p(query.until)}${filter}`;
  const rangeValues = [...values];

  // The planner's guess for a call's groups (100 rows a call) prices the report high enough to JIT
  // it: ~90 ms of compiling for a query that then runs in less. Off for this transaction only.
  await db.query('SET LOCAL jit = off');
  const totalRes = await db.query(`SELECT ${SUMS} FROM ${CALLS(inRange)} c`, rangeValues);
  const total = toUsageTotals(totalRes.rows[0] ?? {});
  let sql: string;
  let rowValues = rangeValues;
  switch (query.by) {
    case 'user':
      sql = `SELECT c.subject, c.issuer, (array_agg(c.email ORDER BY c.started_at DESC, c.rec DESC))[1] AS email, ${SUMS}
        FROM ${CALLS(inRange)} c GROUP BY c.issuer, c.subject`;
      break;
    case 'group':
      sql = `SELECT g.grp, ${SUMS} FROM ${CALLS(inRange)} c
        LEFT JOIN LATERAL (SELECT DISTINCT e AS grp FROM jsonb_array_elements_text(c.groups::jsonb) e) g ON true
        GROUP BY g.grp`;
      break;
    case 'model':
      sql = `SELECT c.provider, c.model, ${SUMS} FROM ${CALLS(inRange)} c GROUP BY c.provider, c.model`;
      break;
    case 'day': {
      const days = query.days ?? [];
      rowValues = [...filterValues, days.map((d) => d.day), days.map((d) => d.start), days.map((d) => d.end)];
      const n = filterValues.length;
      sql = `SELECT d.day, ${SUMS}
        FROM unnest($${n + 1}::text[], $${n + 2}::bigint[], $${n + 3}::bigint[]) WITH ORDINALITY AS d(day, lo, hi, ord)
        LEFT JOIN LATERAL ${CALLS(`c0.started_at >= d.lo AND c0.started_at < d.hi${filter}`)} c ON true
        GROUP BY d.ord, d.day ORDER BY d.ord`;
      break;
    }
  }
  const res = await db.query(sql, rowValues);
  const rows: UsageRow[] = res.rows.map((row) => ({ key: toUsageKey(query.by, row), ...toUsageTotals(row) }));
  return { rows: orderUsageRows(query.by, rows), total };
}
