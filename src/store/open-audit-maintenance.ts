/**
 * The audit trail's maintenance (checkpoints, retention purge) for the PostgreSQL driver, loaded
 * on first use like the store itself (open-store.ts): a gateway on SQLite never loads `pg`.
 */
import type { StorageConfig } from '../config/schema.ts';
import type { SigningKey } from './audit-keys.ts';
import type { AuditMaintainer } from './audit-maintainer.ts';

/** `periodicSpacingMs`: a periodic checkpoint is skipped while one signed with this key is younger (see pg-audit-maintenance.ts). */
export function openPgAuditMaintenance(storage: Extract<StorageConfig, { driver: 'postgres' }>, key: SigningKey | null, now: () => number, periodicSpacingMs: number): AuditMaintainer {
  const loaded = import('./postgres/pg-audit-maintenance.ts').then(
    ({ PgAuditMaintenance }) =>
      new PgAuditMaintenance({
        settings: { url: storage.url, statementTimeoutMs: storage.statementTimeoutMs, connectTimeoutMs: 5000, lockTimeoutMs: 0 },
        key,
        now,
        periodicSpacingMs,
      }),
  );
  loaded.catch(() => {}); // reported by the first operation that needs it
  return {
    checkpoint: async (kind) => (await loaded).checkpoint(kind),
    purge: async (cutMs) => (await loaded).purge(cutMs),
    close: async () => (await loaded).close(),
  };
}
