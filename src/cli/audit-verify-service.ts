/**
 * The service behind `aigov audit verify`: finds the database and the public key (from the
 * gateway configuration or from flags), verifies (src/store/audit-verify-core.ts over the SQLite
 * file or the PostgreSQL database the configuration names), and turns
 * the outcome into a report or a coded error. Never prints record contents or key material.
 */
import { plural } from './terminal-text.ts';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { AigovError } from '../core/errors.ts';
import { timeFlag } from './flag-values.ts';
import type { AuditVerifyReport } from '../store/audit-verify-core.ts';

export interface AuditVerifyInput {
  readonly config?: string;
  readonly db?: string;
  readonly publicKey?: string;
  readonly since?: string;
  /** Fail (AIGOV_E_AUDIT_UNSIGNED) when entries after the last signed checkpoint remain, or the purge anchor is unsigned. */
  readonly requireSigned?: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: number;
}

export interface AuditVerifyOutcome {
  readonly file: string;
  readonly report: AuditVerifyReport;
  /** The coded error for a failed verification (the report says what), or null. */
  readonly error: AigovError | null;
}

export async function runAuditVerify(input: AuditVerifyInput): Promise<AuditVerifyOutcome> {
  // The flag first: a typo in it is reported before anything is looked up.
  const since = timeFlag('--since', input.since, input.now ?? Date.now(), 'aigov audit verify --config gateway.yaml --since 24h') ?? null;
  const [{ verifyAuditDatabase }, { parsePublicKey, parseSigningKey }] = await Promise.all([
    import('../store/sqlite/audit-verify.ts'),
    import('../store/audit-keys.ts'),
  ]);
  let file: string | null = input.db === undefined ? null : resolve(input.db);
  let postgres: { readonly url: string; readonly statementTimeoutMs: number } | null = null;
  let publicKey: KeyObject | null = null;
  if (input.config !== undefined) {
    const { loadGatewayConfig } = await import('../config/load.ts');
    const config = loadGatewayConfig(input.config, { env: input.env });
    if (config.storage.driver === 'postgres' && file === null) postgres = config.storage;
    else file ??= config.storage.path;
    if (config.audit.signingKey !== null && input.publicKey === undefined) {
      const key = parseSigningKey(config.audit.signingKey);
      if ('problem' in key) throw new AigovError('AIGOV_E_AUDIT_KEY_INVALID', { file: 'audit.signing_key', reason: key.problem });
      publicKey = key.publicKey;
    }
  }
  if (file === null && postgres === null) throw new AigovError('AIGOV_E_AUDIT_NO_DATABASE');
  if (input.publicKey !== undefined) {
    const keyFile = resolve(input.publicKey);
    let text: string;
    try {
      text = readFileSync(keyFile, 'utf8');
    } catch (error) {
      throw new AigovError('AIGOV_E_AUDIT_KEY_INVALID', { file: keyFile, reason: (error as NodeJS.ErrnoException).code ?? 'unreadable' });
    }
    const key = parsePublicKey(text);
    if ('problem' in key) throw new AigovError('AIGOV_E_AUDIT_KEY_INVALID', { file: keyFile, reason: key.problem });
    publicKey = key;
  }
  if (postgres !== null) return outcomeOf(await verifyPostgres(postgres, publicKey, since), input);
  if (file === null) throw new AigovError('AIGOV_E_AUDIT_NO_DATABASE');
  if (!existsSync(file)) throw new AigovError('AIGOV_E_AUDIT_DB_UNREADABLE', { file, reason: 'no such file' });
  let report: AuditVerifyReport;
  try {
    report = verifyAuditDatabase(file, { publicKey, since });
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split('\n', 1)[0] ?? 'unreadable') : 'unreadable';
    throw new AigovError('AIGOV_E_AUDIT_DB_UNREADABLE', { file, reason: /no such table/.test(reason) ? `it has no audit trail (${reason})` : reason }, { cause: error });
  }
  return outcomeOf({ file, report }, input);
}

/** Verifies a PostgreSQL recording database; the outcome names it by its URL without the password. */
async function verifyPostgres(storage: { readonly url: string; readonly statementTimeoutMs: number }, publicKey: KeyObject | null, since: number | null): Promise<{ file: string; report: AuditVerifyReport }> {
  const [{ redactDatabaseUrl }, { verifyPostgresAudit }, { describePgError }] = await Promise.all([
    import('../config/database-url.ts'),
    import('../store/postgres/pg-audit-verify.ts'),
    import('../store/postgres/pg-connection.ts'),
  ]);
  const file = redactDatabaseUrl(storage.url);
  try {
    const settings = { url: storage.url, statementTimeoutMs: storage.statementTimeoutMs, connectTimeoutMs: 5000, lockTimeoutMs: 0 };
    return { file, report: await verifyPostgresAudit(settings, { publicKey, since }) };
  } catch (error) {
    // SQLSTATE and message only (never a value, never the password).
    throw new AigovError('AIGOV_E_AUDIT_DB_UNREADABLE', { file, reason: describePgError(error, storage.url) });
  }
}

function outcomeOf({ file, report }: { file: string; report: AuditVerifyReport }, input: AuditVerifyInput): AuditVerifyOutcome {
  let error: AigovError | null = null;
  if (report.problem !== null) {
    error = report.problem.problem === 'signature_invalid'
      ? new AigovError('AIGOV_E_AUDIT_SIGNATURE_INVALID', { detail: report.problem.detail })
      : new AigovError('AIGOV_E_AUDIT_CHAIN_BROKEN', { detail: report.problem.detail });
  } else if (input.requireSigned === true && (report.unsignedTail > 0 || report.unsignedAnchor)) {
    const what = [
      report.unsignedTail > 0 ? `the last ${report.unsignedTail} entries are not covered by a signed checkpoint yet` : null,
      report.unsignedAnchor ? 'the purge anchor the chain starts from is not signed' : null,
    ].filter((x) => x !== null).join('; ');
    error = new AigovError('AIGOV_E_AUDIT_UNSIGNED', { what });
  }
  return { file, report, error };
}

/** The human summary printed on success (and before the error line on failure). */
export function formatAuditReport(outcome: AuditVerifyOutcome): string {
  const { report, file } = outcome;
  const lines: string[] = [];
  const range = report.firstSeq === null ? 'no entries' : `entries ${report.firstSeq}..${report.lastSeq}`;
  const cps = report.checkpoints;
  const signatures = report.keyId === null ? 'signatures not checked' : `${cps.verified}/${cps.signed} signatures valid (key ${report.keyId})`;
  if (report.problem === null) {
    lines.push(`${file}: audit trail intact — ${plural(report.entries, 'entry', 'entries')} (${range}), ${plural(report.rows, 'row')} recomputed, ${plural(cps.total, 'checkpoint')}, ${signatures}`);
    if (report.keyId !== null && report.unsignedTail > 0) lines.push(`  note: the last ${report.unsignedTail} entries are not covered by a signed checkpoint yet`);
  } else {
    const p = report.problem;
    const where = [p.seq === null ? null : `seq ${p.seq}`, p.kind, p.ref === null ? null : `id ${p.ref}`].filter((x) => x !== null).join(', ');
    lines.push(`${file}: audit trail BROKEN at ${where} (${p.problem}): ${p.detail}`);
    lines.push(`  checked before it: ${report.entries} entries, ${report.rows} rows`);
  }
  for (const warning of report.warnings) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}
