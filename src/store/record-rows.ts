/**
 * A recordings row as a record of src/store/recording-store.ts: the one mapping both drivers
 * use (SQLite hands back numbers or bigints, PostgreSQL numbers — its bigint columns are parsed
 * to numbers — and both text as strings), so their reads cannot drift apart.
 */
import type { EndpointId, ProviderKind, Usage } from '../core/events.ts';
import { parseRequestParts } from '../core/recording/request-chunks.ts';
import type { CallRecord, CallStatus, ChargeRow, PolicyDecisionRecord, SessionRecord, SessionSummary, StreamEventRecord } from './recording-store.ts';

export type RecordRow = Readonly<Record<string, unknown>>;

export function str(value: unknown): string {
  if (typeof value === 'string') return value;
  throw new Error('recording store: unexpected non-text column value');
}

export function strOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : str(value);
}

export function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new Error('recording store: unexpected non-numeric column value');
}

export function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

export function toSessionSummary(row: RecordRow): SessionSummary {
  return {
    sessionId: str(row['id']),
    subject: str(row['subject']),
    email: strOrNull(row['email']),
    startedAt: num(row['started_at']),
    lastCallAt: num(row['last_call_at']),
    callCount: num(row['call_count']),
  };
}

export function toCallRecord(row: RecordRow): CallRecord {
  const usage = strOrNull(row['usage']);
  const partsText = strOrNull(row['request_parts']);
  let requestRef: number | undefined;
  if (partsText !== null) {
    const parts = parseRequestParts(partsText);
    if (parts === null) throw new Error('recording store: the request parts of a call are malformed');
    requestRef = parts.root;
  }
  return {
    callId: str(row['id']),
    sessionId: str(row['session_id']),
    principal: {
      subject: str(row['subject']),
      email: strOrNull(row['email']),
      groups: JSON.parse(str(row['groups'])) as string[],
      issuer: str(row['issuer']),
      clientId: strOrNull(row['client_id']),
    },
    client: {
      userAgent: strOrNull(row['user_agent']),
      remoteAddress: strOrNull(row['remote_address']),
      sdk: strOrNull(row['sdk']),
    },
    provider: str(row['provider']),
    providerKind: str(row['provider_kind']) as ProviderKind,
    endpoint: str(row['endpoint']) as EndpointId,
    method: str(row['method']),
    path: str(row['path']),
    model: strOrNull(row['model']),
    stream: num(row['stream']) === 1,
    requestBody: str(row['request_body']),
    ...(requestRef === undefined ? {} : { requestRef }),
    decisions: JSON.parse(str(row['decisions'])) as PolicyDecisionRecord[],
    startedAt: num(row['started_at']),
    status: str(row['status']) as CallStatus,
    httpStatus: numOrNull(row['http_status']),
    responseBody: strOrNull(row['response_body']),
    usage: usage === null ? null : (JSON.parse(usage) as Usage),
    firstByteMs: numOrNull(row['first_byte_ms']),
    latencyMs: numOrNull(row['latency_ms']),
    errorCode: strOrNull(row['error_code']),
    errorMessage: strOrNull(row['error_message']),
    endedAt: numOrNull(row['ended_at']),
  };
}


export function toSessionRecord(row: RecordRow): SessionRecord {
  return { ...toSessionSummary(row), issuer: str(row['issuer']) };
}

export function toStreamEvent(row: RecordRow): StreamEventRecord {
  return { offsetMs: num(row['offset_ms']), raw: str(row['raw']) };
}

/** A row of the charges query (both drivers: sqlite/store-reads.ts, postgres/pg-reads.ts). Sums may come back as text (PostgreSQL numeric). */
export function toChargeRow(row: RecordRow): ChargeRow {
  const sum = (value: unknown): number => (typeof value === 'string' ? Number(value) : value === null || value === undefined ? 0 : num(value));
  const groups = JSON.parse(str(row['groups'])) as unknown;
  return {
    subject: str(row['subject']),
    email: strOrNull(row['email']),
    groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
    provider: str(row['provider']),
    providerKind: str(row['provider_kind']) as ProviderKind,
    model: strOrNull(row['model']),
    minute: sum(row['minute']),
    nanoUsd: sum(row['nano_usd']),
    tokens: sum(row['tokens']),
    requests: sum(row['requests']),
  };
}

/**
 * The charges query's SELECT list, in either driver's JSON dialect (`field(path)` reads a usage
 * member as a number, NULL when absent): `usage.charged` when the gateway recorded one, else
 * what the usage says (core/budgets/charges.ts recordedCharge — the two must agree; the tests
 * compare them).
 */
export function chargeColumns(field: (path: string) => string): string {
  const counted = `(${field('inputTokens')} IS NOT NULL OR ${field('outputTokens')} IS NOT NULL)`;
  const tokens = `coalesce(${field('inputTokens')}, 0) + coalesce(${field('outputTokens')}, 0) + CASE WHEN provider_kind = 'anthropic' THEN coalesce(${field('cacheReadTokens')}, 0) + coalesce(${field('cacheWriteTokens')}, 0) ELSE 0 END`;
  return [
    `sum(CASE WHEN ${field('charged.nanoUsd')} IS NOT NULL THEN ${field('charged.nanoUsd')} WHEN ${counted} THEN coalesce(${field('costNanoUsd')}, 0) ELSE 0 END) AS nano_usd`,
    `sum(CASE WHEN ${field('charged.tokens')} IS NOT NULL THEN ${field('charged.tokens')} WHEN ${counted} THEN ${tokens} ELSE 0 END) AS tokens`,
    `sum(CASE WHEN ${field('charged.requests')} IS NOT NULL THEN ${field('charged.requests')} WHEN ${counted} THEN 1 ELSE 0 END) AS requests`,
  ].join(', ');
}
