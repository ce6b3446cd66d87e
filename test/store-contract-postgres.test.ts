/**
 * The recording store contract (test/support/store-contract.ts) on PostgreSQL: a database of
 * its own per case on the test server (test/support/pg-databases.ts), the sessions' approvals in
 * it too (written by the PostgreSQL approval store, as the gateway does). PostgreSQL-specific behaviour
 * (migrations, a dead or vanishing server, several replicas, secrets) is in store-postgres.test.ts.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openPostgresStore } from '../src/store/postgres/postgres-store.ts';
import { openPostgresApprovalStore } from '../src/store/postgres/pg-approval-store.ts';
import { insertApproval } from './support/approval-writes.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { connect, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { describeStoreContract, type ContractDatabase } from './support/store-contract.ts';

const freshPg = usePgDatabases();
const STORE_URL = pathToFileURL(path.resolve('src/store/postgres/postgres-store.ts')).href;

function postgresDatabase(url: string): ContractDatabase {
  return {
    open: (o = {}) =>
      openPostgresStore({
        url,
        poolSize: 3,
        batchIntervalMs: o.batchIntervalMs,
        maxBatch: o.maxBatch,
        lockTimeoutMs: o.lockWaitMs,
        onWriteError: o.onWriteError,
        onSettled: o.onSettled,
      }),
    openScript: () => `import { openPostgresStore } from ${JSON.stringify(STORE_URL)};\nconst store = await openPostgresStore({ url: ${JSON.stringify(url)}, poolSize: 2 });`,
    peek: (sql) => pgQuery(url, sql),
    insertApprovals: async (approvals) => {
      const store = await openPostgresApprovalStore({ url, poolSize: 1 });
      try {
        for (const approval of approvals) await insertApproval(store, approval);
      } finally {
        await store.close();
      }
    },
    guardEventsAfterFinish: async () => {
      await pgQuery(url, `CREATE FUNCTION test_event_after_finish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          -- A result committed by an EARLIER transaction (one statement may write events and result together).
          IF EXISTS (SELECT 1 FROM calls WHERE id = NEW.call_id AND ended_at IS NOT NULL AND xmin <> pg_current_xact_id()::xid) THEN
            RAISE EXCEPTION 'event written after finish';
          END IF;
          RETURN NEW;
        END $$`);
      await pgQuery(url, 'CREATE TRIGGER test_event_after_finish BEFORE INSERT ON stream_events FOR EACH ROW EXECUTE FUNCTION test_event_after_finish()');
    },
    checkAuditChain: async () => {
      await checkPgAuditChain(url);
    },
    blockWrites: async () => {
      const locker = await connect(url);
      await locker.query('BEGIN');
      await locker.query('SELECT * FROM chain_head FOR UPDATE'); // the row every write transaction locks first
      return async () => {
        await locker.query('ROLLBACK');
        await locker.end();
      };
    },
  };
}

describeStoreContract({
  name: 'PostgreSQL',
  freshDatabase: async () => postgresDatabase((await freshPg()).url),
  duplicateMessage: /a call with this id is already recorded/,
  blockedMessage: /canceling statement due to lock timeout/,
});
