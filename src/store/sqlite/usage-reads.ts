/**
 * The usage report of the SQLite store (RecordingStore.usageReport), on the reader thread: the
 * calls started in a range, optionally one user's, summed by user, group, model or day — tokens
 * by billed kind (core/usage/token-kinds.ts), the exact nano-dollar cost, and the calls whose cost
 * is not known. The same columns and rules as the PostgreSQL store's (postgres/pg-usage-reads.ts);
 * rows are mapped and ordered in ../usage-rows.ts.
 *
 * The calls are found through their sessions (../usage-rows.ts says why): sessions active since
 * the range began (sessions_by_last_call, or sessions_by_subject for one caller), then each
 * session's calls in the range (calls_by_session). By day, one pass: each call's local day number
 * from the zone's offsets over the range. Integers are read as bigints: the cost sum is exact past 2^53.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { UsageQuery, UsageReport, UsageRow } from '../recording-store.ts';
import { dayNumberSql, dayPlan, everyDay, orderUsageRows, sumOfRows, toUsageKey, toUsageTotals } from '../usage-rows.ts';

const U = (field: string): string => `json_extract(c.usage, '$.${field}')`;
const COST_TYPE = "json_type(c.usage, '$.costNanoUsd')";

/** The sums over the calls `c` of a group (a day without calls gives zeros and a null cost). */
const SUMS = `
  count(c.id) AS calls,
  ifnull(sum(CASE WHEN c.provider_kind = 'openai' THEN max(0, ifnull(${U('inputTokens')}, 0) - ifnull(${U('cacheReadTokens')}, 0)) ELSE ${U('inputTokens')} END), 0) AS input,
  ifnull(sum(${U('cacheReadTokens')}), 0) AS cache_read,
  ifnull(sum(${U('cacheWriteTokens')}), 0) AS cache_write,
  ifnull(sum(${U('outputTokens')}), 0) AS output,
  ifnull(sum(${U('reasoningTokens')}), 0) AS reasoning,
  sum(CASE WHEN ${COST_TYPE} = 'integer' THEN ${U('costNanoUsd')} END) AS cost,
  ifnull(sum(${COST_TYPE} = 'null'), 0) AS unpriced,
  ifnull(sum(c.usage IS NOT NULL AND ${COST_TYPE} IS NULL), 0) AS before_pricing,
  ifnull(sum(c.status = 'completed' AND c.usage IS NULL), 0) AS no_usage`;

type Params = Record<string, string | number | bigint>;

export class UsageReads {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Runs inside the caller's read transaction (one snapshot for the rows and the total). */
  report(query: UsageQuery): UsageReport {
    const params: Params = { since: query.since, until: query.until };
    const filters: string[] = [];
    if (query.owner !== undefined) {
      filters.push('s.subject = $ownerSubject AND s.issuer = $ownerIssuer AND c.subject = $ownerSubject AND c.issuer = $ownerIssuer');
      params['ownerSubject'] = query.owner.subject;
      params['ownerIssuer'] = query.owner.issuer;
    }
    if (query.user !== undefined) {
      filters.push('(c.subject = $user OR c.email = $user COLLATE NOCASE)');
      params['user'] = query.user;
    }
    // CROSS JOIN: sessions first (SQLite keeps the order), each one's calls by calls_by_session.
    const from = 'sessions s CROSS JOIN calls c ON c.session_id = s.id';
    const where = `WHERE s.last_call_at >= $since AND c.started_at >= $since AND c.started_at < $until${filters.map((f) => ` AND ${f}`).join('')}`;
    const calls = `${from} ${where}`;

    let sql: string;
    const rowParams: Params = { ...params };
    const plan = query.by === 'day' ? dayPlan(query) : null;
    switch (query.by) {
      case 'user':
        // `email`: SQLite takes a bare column from the row of max(started_at): the latest email.
        sql = `SELECT c.subject, c.issuer, c.email, max(c.started_at) AS latest, ${SUMS} FROM ${calls} GROUP BY c.issuer, c.subject`;
        break;
      case 'group':
        // A call counts once in each distinct group of its caller; a caller in no group, under NULL.
        sql = `SELECT g.value AS grp, ${SUMS} FROM ${from}
          LEFT JOIN json_each(c.groups) g ON NOT EXISTS (SELECT 1 FROM json_each(c.groups) h WHERE h.value = g.value AND h.key < g.key)
          ${where} GROUP BY g.value`;
        break;
      case 'model':
        sql = `SELECT c.provider, c.model, ${SUMS} FROM ${calls} GROUP BY c.provider, c.model`;
        break;
      case 'day': {
        let n = 0;
        const dayNumber = dayNumberSql('c.started_at', plan?.segments ?? [], (value) => {
          rowParams[`z${n}`] = BigInt(value); // bound as INTEGER (a number binds as REAL: no integer division)
          return `$z${n++}`;
        });
        sql = `SELECT ${dayNumber} AS dayno, ${SUMS} FROM ${calls} GROUP BY dayno`;
        break;
      }
    }
    const rows: UsageRow[] = this.#statement(sql).all(rowParams).map((row) => ({ key: toUsageKey(query.by, row), ...toUsageTotals(row) }));
    // By group a call may be in several rows: its total is summed apart (the same snapshot).
    const total = query.by === 'group' ? toUsageTotals(this.#statement(`SELECT ${SUMS} FROM ${calls}`).get(params) ?? {}) : sumOfRows(rows);
    return { rows: plan === null ? orderUsageRows(query.by, rows) : everyDay(plan, rows), total };
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      statement.setReadBigInts(true);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
