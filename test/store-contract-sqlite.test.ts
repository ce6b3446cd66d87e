/**
 * The recording store contract (test/support/store-contract.ts) on SQLite: a database file in a
 * temp dir per case, checked, blocked and guarded through connections of its own.
 */
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteApprovalStore } from '../src/store/sqlite/sqlite-approval-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { insertApproval } from './support/approval-writes.ts';
import { describeStoreContract, type ContractDatabase } from './support/store-contract.ts';
import { useTempDirs } from './support/store-fixtures.ts';

const { freshFile } = useTempDirs('aigov-contract-sqlite-');
const STORE_URL = pathToFileURL(path.resolve('src/store/sqlite/sqlite-store.ts')).href;

function sqliteDatabase(file: string): ContractDatabase {
  return {
    open: (o = {}) =>
      openSqliteStore({ path: file, batchIntervalMs: o.batchIntervalMs, maxBatch: o.maxBatch, busyTimeoutMs: o.lockWaitMs, onWriteError: o.onWriteError, onSettled: o.onSettled }),
    openScript: () => `import { openSqliteStore } from ${JSON.stringify(STORE_URL)};\nconst store = await openSqliteStore({ path: ${JSON.stringify(file)} });`,
    peek: async (sql) => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return db.prepare(sql).all().map((row) => ({ ...row }));
      } finally {
        db.close();
      }
    },
    insertApprovals: async (approvals) => {
      const store = openSqliteApprovalStore(file);
      try {
        for (const approval of approvals) await insertApproval(store, approval);
      } finally {
        await store.close();
      }
    },
    guardEventsAfterFinish: async () => {
      const db = new DatabaseSync(file);
      try {
        db.exec(`CREATE TRIGGER test_event_after_finish BEFORE INSERT ON stream_events
          WHEN (SELECT ended_at FROM calls WHERE id = NEW.call_id) IS NOT NULL
          BEGIN SELECT RAISE(ABORT, 'event written after finish'); END`);
      } finally {
        db.close();
      }
    },
    checkAuditChain: async () => {
      const report = verifyAuditDatabase(file);
      assert.equal(report.problem, null, JSON.stringify(report.problem));
    },
    blockWrites: async () => {
      const locker = new DatabaseSync(file);
      locker.exec('BEGIN IMMEDIATE');
      return async () => {
        locker.exec('ROLLBACK');
        locker.close();
      };
    },
  };
}

describeStoreContract({
  name: 'SQLite',
  freshDatabase: async () => sqliteDatabase(freshFile()),
  duplicateMessage: /UNIQUE constraint failed: calls\.id/,
  blockedMessage: /database is locked/,
});
