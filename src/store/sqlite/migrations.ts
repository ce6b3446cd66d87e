/**
 * Schema migrations of the SQLite recording store.
 *
 * An ordered list; migration N brings the schema to version N. The applied version lives in
 * `PRAGMA user_version` (stored in the database header, so it changes atomically with the DDL
 * inside the same transaction). Rules for adding one: append, never edit or reorder a released
 * entry, and stick to SQL that the SQLite bundled with the oldest supported Node understands.
 */
import type { DatabaseSync } from 'node:sqlite';
import { SchemaTooNewError } from '../schema-too-new.ts';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions, calls and stream events',
    sql: `
      CREATE TABLE sessions (
        id            TEXT PRIMARY KEY,
        subject       TEXT NOT NULL,
        issuer        TEXT NOT NULL,
        email         TEXT,
        started_at    INTEGER NOT NULL,
        last_call_at  INTEGER NOT NULL,
        call_count    INTEGER NOT NULL
      );
      CREATE INDEX sessions_by_last_call ON sessions (last_call_at DESC, id);
      CREATE INDEX sessions_by_subject ON sessions (subject, last_call_at DESC, id);

      CREATE TABLE calls (
        id              TEXT PRIMARY KEY,
        session_id      TEXT NOT NULL REFERENCES sessions (id),
        subject         TEXT NOT NULL,
        email           TEXT,
        groups          TEXT NOT NULL,           -- JSON array of strings
        issuer          TEXT NOT NULL,
        client_id       TEXT,
        user_agent      TEXT,
        remote_address  TEXT,
        sdk             TEXT,
        provider        TEXT NOT NULL,
        provider_kind   TEXT NOT NULL,
        endpoint        TEXT NOT NULL,
        method          TEXT NOT NULL,
        path            TEXT NOT NULL,
        model           TEXT,
        stream          INTEGER NOT NULL,        -- 0 | 1
        request_body    TEXT NOT NULL,
        decisions       TEXT NOT NULL,           -- JSON array: request-time, then response-time
        started_at      INTEGER NOT NULL,        -- epoch ms
        status          TEXT NOT NULL,
        http_status     INTEGER,
        response_body   TEXT,
        usage           TEXT,                    -- JSON object or NULL
        first_byte_ms   INTEGER,
        latency_ms      INTEGER,
        error_code      TEXT,
        error_message   TEXT,
        ended_at        INTEGER
      );
      CREATE INDEX calls_by_session ON calls (session_id, started_at);

      CREATE TABLE stream_events (
        call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        offset_ms  INTEGER NOT NULL,
        raw        TEXT NOT NULL,
        PRIMARY KEY (call_id, seq)
      );
    `,
  },
  {
    version: 2,
    name: 'session queries and the access log of auditor reads',
    // IF NOT EXISTS: databases from before this migration got the table from the approval store.
    sql: `
      CREATE TABLE IF NOT EXISTS approvals (
        id            TEXT PRIMARY KEY,
        state         TEXT NOT NULL,
        requester_sub TEXT NOT NULL,
        content_hash  TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        record        TEXT NOT NULL
      ) STRICT;
      CREATE INDEX approvals_by_session ON approvals (json_extract(record, '$.sessionId'), state);
      CREATE INDEX sessions_by_email ON sessions (email COLLATE NOCASE, last_call_at DESC, id);

      CREATE TABLE access_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,           -- epoch ms
        subject     TEXT NOT NULL,              -- who read
        issuer      TEXT NOT NULL,
        email       TEXT,
        action      TEXT NOT NULL,              -- list | show | export
        session_id  TEXT,                       -- show, export: the session read
        filter      TEXT                        -- list: the filter as JSON (no record contents)
      );
      CREATE INDEX access_log_by_at ON access_log (at);
    `,
  },
  {
    version: 3,
    name: 'audit chain and signed checkpoints',
    // audit_log: one entry per request record, call result, stream-event batch and access_log
    // row, written by the writer thread in the same transaction as the rows it covers; each
    // entry's hash chains to the previous one (src/core/audit/chain.ts). audit_checkpoints:
    // signed (Ed25519) statements "the chain up to seq had this hash", written periodically, at
    // shutdown and as the anchor of a retention purge. No extra index: the writer only appends.
    sql: `
      CREATE TABLE audit_log (
        seq           INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,            -- request | result | events | access
        ref           TEXT NOT NULL,            -- call id, or access_log id
        span          TEXT,                     -- events: "first..last" stream seqs
        at            INTEGER NOT NULL,         -- epoch ms
        content_hash  TEXT NOT NULL,
        prev_hash     TEXT NOT NULL,
        hash          TEXT NOT NULL
      );

      CREATE TABLE audit_checkpoints (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        seq        INTEGER NOT NULL,            -- last entry covered (anchor: last entry purged)
        hash       TEXT NOT NULL,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,               -- periodic | shutdown | anchor
        key_id     TEXT,                        -- NULL: unsigned (no signing key configured)
        signature  TEXT                         -- base64 Ed25519 over checkpointPayload()
      );
    `,
  },
  {
    version: 4,
    name: 'rows recorded before the audit chain',
    // A database upgraded from version 1 or 2 holds rows no audit entry covers. One row here
    // says where they end (rowid / id) and how many there were, so `aigov audit verify` reports
    // them as not covered (instead of as inserted behind the gateway), catches rows added among
    // them later (the count only goes down, by retention), and the purge can still delete them.
    // On a new database every figure is 0.
    sql: `
      CREATE TABLE audit_legacy (
        calls_rowid   INTEGER NOT NULL,
        calls_count   INTEGER NOT NULL,
        events_rowid  INTEGER NOT NULL,
        events_count  INTEGER NOT NULL,
        access_id     INTEGER NOT NULL,
        access_count  INTEGER NOT NULL
      );
      INSERT INTO audit_legacy
      SELECT ifnull(max(c.rowid), 0), count(*),
             (SELECT ifnull(max(e.rowid), 0) FROM stream_events e WHERE e.call_id NOT IN (SELECT ref FROM audit_log WHERE kind = 'events')),
             (SELECT count(*) FROM stream_events e WHERE e.call_id NOT IN (SELECT ref FROM audit_log WHERE kind = 'events')),
             (SELECT ifnull(max(a.id), 0) FROM access_log a WHERE CAST(a.id AS TEXT) NOT IN (SELECT ref FROM audit_log WHERE kind = 'access')),
             (SELECT count(*) FROM access_log a WHERE CAST(a.id AS TEXT) NOT IN (SELECT ref FROM audit_log WHERE kind = 'access'))
      FROM calls c WHERE c.id NOT IN (SELECT ref FROM audit_log WHERE kind <> 'access');
    `,
  },
  {
    version: 5,
    name: 'sealed raw request copies',
    // With audit.raw_copy: the request body as the client sent it, AES-256-GCM sealed by the
    // gateway (src/store/raw-copy-sealer.ts) before it reaches the store; readable only by
    // auditors through the sessions API. Written with the call row; deleted with it (retention).
    sql: `
      CREATE TABLE raw_copies (
        call_id  TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
        key_id   TEXT NOT NULL,             -- fingerprint of the sealing key
        sealed   BLOB NOT NULL              -- nonce ‖ ciphertext ‖ tag; the call id is the additional data
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: 'approvals and raw copies in the audit chain',
    // From here on every approvals insert/update and every raw copy has an audit entry ('approval',
    // 'raw'). The rows already there have none: audit_legacy records where they end and how many
    // there were, as migration 4 did for calls. The partial index lets the retention purge ask
    // whether an approval has entries after the cut without scanning the log; it holds approval
    // entries only, so the writer thread's appends do not maintain it.
    sql: `
      ALTER TABLE audit_legacy ADD COLUMN raw_rowid INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE audit_legacy ADD COLUMN raw_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE audit_legacy ADD COLUMN approvals_rowid INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE audit_legacy ADD COLUMN approvals_count INTEGER NOT NULL DEFAULT 0;
      UPDATE audit_legacy SET
        raw_rowid = (SELECT ifnull(max(rowid), 0) FROM raw_copies),
        raw_count = (SELECT count(*) FROM raw_copies),
        approvals_rowid = (SELECT ifnull(max(rowid), 0) FROM approvals),
        approvals_count = (SELECT count(*) FROM approvals);
      CREATE INDEX audit_log_approvals ON audit_log (ref, seq) WHERE kind = 'approval';
    `,
  },
  {
    version: 7,
    name: 'approvals indexes in the migrations',
    // The approval store created these on its own connection (IF NOT EXISTS); now the schema has
    // one home. Existing databases already have them.
    sql: `
      CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, created_at);
      CREATE INDEX IF NOT EXISTS approvals_by_content ON approvals (requester_sub, content_hash, created_at);
      CREATE INDEX IF NOT EXISTS approvals_by_created ON approvals (created_at);
    `,
  },
  {
    version: 8,
    name: 'the owner of each call, to settle calls cut by a crash',
    // owner: the id of the store instance (writer thread) that recorded the call; its lock file
    // says whether it still runs (call-owners.ts). A store that opens marks the pending calls of
    // owners that are gone `aborted`. Not part of the audit entry (it only says who may settle).
    // The partial index holds pending calls only: rows enter it on insert and leave on finish.
    sql: `
      ALTER TABLE calls ADD COLUMN owner TEXT;
      CREATE INDEX calls_pending_by_owner ON calls (owner) WHERE status = 'pending';
    `,
  },
  {
    version: 9,
    name: 'request bodies as chunks shared by the calls of a session',
    // Agents resend their whole conversation on every call. A request body that splits
    // (src/core/recording/request-chunks.ts) is stored as body_chunks rows of its session —
    // each distinct part once, keyed by the SHA-256 of its kind and text — and the call row
    // names its root chunk and the chunks it added in request_parts (request_body is then '').
    // Rows from before keep request_parts NULL and their body whole, as do short bodies.
    // AUTOINCREMENT: ids only grow, so a call's added chunks are one range and never reused.
    // body_chunks_gc.generation moves when a purge deletes chunks (the writer forgets its cache).
    sql: `
      ALTER TABLE calls ADD COLUMN request_parts TEXT;
      CREATE TABLE body_chunks (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  TEXT NOT NULL,
        hash        BLOB NOT NULL,        -- SHA-256 of the kind digit followed by the text
        kind        INTEGER NOT NULL,     -- 0 leaf (raw text), 1 node (request-chunks.ts)
        text        TEXT NOT NULL
      );
      CREATE INDEX body_chunks_by_session ON body_chunks (session_id);
      CREATE TABLE body_chunks_gc (generation INTEGER NOT NULL);
      INSERT INTO body_chunks_gc VALUES (0);
    `,
  },
  {
    version: 10,
    name: 'the webhook outbox: approval notices that survive a restart',
    // One row per notice and receiver (src/store/webhook-outbox.ts), written in the transaction of
    // the approval change it announces. The receiver is named by the SHA-256 of its URL: the URL
    // (a Slack URL's path is its credential) and the secret stay in the configuration. While an
    // attempt runs, next_attempt_at is the end of its lease and claim its token. Not part of the
    // audit chain: a notice is a convenience, the approval row is the record.
    sql: `
      CREATE TABLE webhook_outbox (
        id               TEXT PRIMARY KEY,           -- the delivery id (whd_…), the body's id
        approval_id      TEXT NOT NULL,
        rule_id          TEXT NOT NULL,
        type             TEXT NOT NULL,              -- approval.created | approval.decided | approval.expired
        receiver         TEXT NOT NULL,              -- hex SHA-256 of the receiver's URL
        host             TEXT NOT NULL,              -- the URL's host, for log lines
        body             TEXT NOT NULL,              -- the JSON posted on every attempt (signed when sent)
        created_at       INTEGER NOT NULL,           -- epoch ms
        state            TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
        attempts         INTEGER NOT NULL DEFAULT 0, -- counted when claimed
        next_attempt_at  INTEGER NOT NULL,           -- due (pending), or the end of the claim's lease
        claim            TEXT,                       -- token of the attempt in flight
        last_status      INTEGER,
        last_error       TEXT,
        done_at          INTEGER                     -- delivered or failed at (retention)
      ) STRICT;
      CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE state = 'pending';
      CREATE INDEX webhook_outbox_done ON webhook_outbox (done_at) WHERE state <> 'pending';
    `,
  },
  {
    version: 11,
    name: 'calls by start time',
    // Budgets are rebuilt from the record when the gateway starts: the calls of a window, by start time.
    sql: `
      CREATE INDEX calls_by_started ON calls (started_at);
    `,
  },
];

/** The schema version this build of aigov writes. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** Thrown when the database's schema is newer than this build understands. */
export { SchemaTooNewError };

function readUserVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  const value = row?.['user_version'];
  return typeof value === 'number' ? value : Number(value ?? 0);
}

/**
 * Brings `db` to the latest version of `migrations`. All pending migrations run in one
 * `BEGIN IMMEDIATE` transaction (so two processes opening the same file cannot both migrate,
 * and a failing migration leaves the previous version intact). Idempotent.
 * Returns the versions applied.
 */
export function migrateDatabase(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number[] {
  assertOrdered(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  // Cheap check without taking the write lock: the common case is "nothing to do".
  const seen = readUserVersion(db);
  if (seen > latest) throw new SchemaTooNewError(seen, latest);
  if (seen === latest) return [];

  const applied: number[] = [];
  db.exec('BEGIN IMMEDIATE');
  try {
    const current = readUserVersion(db); // re-read under the lock: another process may have migrated
    if (current > latest) throw new SchemaTooNewError(current, latest);
    if (current === 0 && hasUserTables(db)) {
      throw new Error('the file is an SQLite database of another application (it has tables but no aigov schema version)');
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${migration.version}`);
      applied.push(migration.version);
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
  return applied;
}

function hasUserTables(db: DatabaseSync): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' LIMIT 1").get() !== undefined;
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1 || !Number.isInteger(m.version)) {
      throw new Error(`migration list is not contiguous from 1: entry ${i} has version ${m.version}`);
    }
  });
}
