/**
 * Schema migrations of the PostgreSQL recording store.
 *
 * An ordered list; migration N brings the schema to version N. `aigov_schema_migrations` holds
 * one row per applied version (its primary key makes a second application of one fail rather
 * than run twice). Replicas starting together are safe: {@link migratePostgres} runs under a
 * session advisory lock, so one migrates while the others wait and then find nothing to do; all
 * pending migrations go in one transaction (PostgreSQL's DDL is transactional), so a failing one
 * leaves the previous version intact. A database whose version is newer than this build's is
 * refused (SchemaTooNewError): an older replica must not write under a newer schema.
 *
 * Rules for adding one: append, never edit or reorder a released entry.
 *
 * The tables mirror the SQLite store's (src/store/sqlite/migrations.ts) column for column, so the
 * audit chain's canonical forms (src/core/audit/chain.ts) cover the same values on both, plus:
 * - `calls.rec`: insertion order (SQLite's rowid), for listing calls that started together;
 * - `owners`: one row per gateway process that writes (see owner-lock.ts), `heartbeat_at` for leases;
 * - `chain_head`: the one row every write transaction locks first (FOR UPDATE): the audit chain's
 *   head and the next body chunk id, so appends from any number of replicas form one chain.
 * Ids compared in keyset paging use COLLATE "C" (byte order), as SQLite compares them.
 */
import { SchemaTooNewError } from '../schema-too-new.ts';
import { BUDGET_MIGRATION_SQL } from './pg-budget-sql.ts';
import { connectClient, type PgClient, type PgSettings } from './pg-connection.ts';

export interface PgMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'sessions, calls, stream events, raw copies, request chunks, access log, audit chain, owners',
    sql: `
      CREATE TABLE sessions (
        id            text COLLATE "C" PRIMARY KEY,
        subject       text NOT NULL,
        issuer        text NOT NULL,
        email         text,
        started_at    bigint NOT NULL,
        last_call_at  bigint NOT NULL,
        call_count    integer NOT NULL
      );
      CREATE INDEX sessions_by_last_call ON sessions (last_call_at DESC, id);
      CREATE INDEX sessions_by_subject ON sessions (subject, last_call_at DESC, id);
      -- ASCII case folding only, as SQLite's NOCASE: a Kelvin sign is not a k.
      CREATE INDEX sessions_by_email ON sessions ((translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')), last_call_at DESC, id);

      CREATE TABLE owners (
        id            text PRIMARY KEY,         -- 32 hex digits, random per gateway process
        lock_key      bigint NOT NULL,          -- the session advisory lock its process holds while it lives
        pid           integer NOT NULL,
        host          text NOT NULL,
        started_at    bigint NOT NULL,
        heartbeat_at  bigint                    -- leases (a later release): last renewal; NULL until then
      );

      CREATE TABLE calls (
        id              text COLLATE "C" PRIMARY KEY,
        rec             bigint GENERATED ALWAYS AS IDENTITY,
        session_id      text COLLATE "C" NOT NULL REFERENCES sessions (id),
        subject         text NOT NULL,
        email           text,
        groups          text NOT NULL,           -- JSON array of strings
        issuer          text NOT NULL,
        client_id       text,
        user_agent      text,
        remote_address  text,
        sdk             text,
        provider        text NOT NULL,
        provider_kind   text NOT NULL,
        endpoint        text NOT NULL,
        method          text NOT NULL,
        path            text NOT NULL,
        model           text,
        stream          smallint NOT NULL,       -- 0 | 1
        request_body    text NOT NULL,           -- '' when stored as chunks (request_parts)
        request_parts   text,
        decisions       text NOT NULL,           -- JSON array: request-time, then response-time
        started_at      bigint NOT NULL,         -- epoch ms
        status          text NOT NULL,
        http_status     integer,
        response_body   text,
        usage           text,                    -- JSON object or NULL
        first_byte_ms   bigint,
        latency_ms      bigint,
        error_code      text,
        error_message   text,
        ended_at        bigint,
        owner           text                     -- owners.id of the process that recorded it
      );
      CREATE INDEX calls_by_session ON calls (session_id, started_at, rec);
      CREATE INDEX calls_pending_by_owner ON calls (owner) WHERE status = 'pending';

      CREATE TABLE stream_events (
        call_id    text COLLATE "C" NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq        integer NOT NULL,
        offset_ms  bigint NOT NULL,
        raw        text NOT NULL,
        PRIMARY KEY (call_id, seq)
      );

      CREATE TABLE raw_copies (
        call_id  text COLLATE "C" PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
        key_id   text NOT NULL,
        sealed   bytea NOT NULL
      );

      CREATE TABLE body_chunks (
        id          bigint PRIMARY KEY,          -- from chain_head.next_chunk: one call's chunks are consecutive
        session_id  text COLLATE "C" NOT NULL,
        hash        bytea NOT NULL,              -- SHA-256 of the kind digit followed by the text
        kind        smallint NOT NULL,           -- 0 leaf, 1 node (src/core/recording/request-chunks.ts)
        text        text NOT NULL
      );
      CREATE INDEX body_chunks_by_session ON body_chunks (session_id);

      CREATE TABLE access_log (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          bigint NOT NULL,
        subject     text NOT NULL,
        issuer      text NOT NULL,
        email       text,
        action      text NOT NULL,
        session_id  text,
        filter      text
      );
      CREATE INDEX access_log_by_at ON access_log (at);

      CREATE TABLE audit_log (
        seq           bigint PRIMARY KEY,
        kind          text NOT NULL,             -- request | result | events | access | raw
        ref           text NOT NULL,
        span          text,
        at            bigint NOT NULL,
        content_hash  text NOT NULL,
        prev_hash     text NOT NULL,
        hash          text NOT NULL
      );

      CREATE TABLE chain_head (
        id                 smallint PRIMARY KEY CHECK (id = 1),
        seq                bigint NOT NULL,      -- the last entry's seq (0: none yet)
        hash               text NOT NULL,        -- its hash (the genesis hash before the first)
        next_chunk         bigint NOT NULL,      -- the next body_chunks id
        chunks_generation  bigint NOT NULL       -- moves when a purge deletes chunks (writers forget their cache)
      );
      INSERT INTO chain_head VALUES (1, 0, repeat('0', 64), 1, 0);
    `,
  },
  {
    version: 2,
    name: 'approvals shared by every replica, with their change feed',
    sql: `
      -- The approval store's table (postgres/pg-approval-store.ts), the SQLite one's columns plus
      -- change_seq: the seq of the audit entry of the row's latest write. Every write locks
      -- chain_head first, so change_seq grows in commit order: the approvals API's event ids.
      CREATE TABLE approvals (
        id             text COLLATE "C" PRIMARY KEY,
        state          text NOT NULL,            -- pending | approved | denied | expired
        requester_sub  text NOT NULL,
        content_hash   text NOT NULL,
        created_at     bigint NOT NULL,
        expires_at     bigint NOT NULL,
        record         text NOT NULL,            -- the ApprovalRecord as JSON
        change_seq     bigint NOT NULL
      );
      CREATE INDEX approvals_by_request ON approvals (requester_sub, content_hash, created_at DESC);
      CREATE INDEX approvals_by_state ON approvals (state, created_at DESC);
      CREATE INDEX approvals_by_created ON approvals (created_at DESC);
      CREATE UNIQUE INDEX approvals_by_change ON approvals (change_seq);
      CREATE INDEX approvals_by_session ON approvals (((record::jsonb) ->> 'sessionId'));
    `,
  },
  {
    version: 3,
    name: 'pseudonym vaults (sealed, shared by every replica); owners.lock_backend for leases',
    // As the SQLite store's tables (sqlite/sqlite-pseudonym-store.ts), plus `seq`: see
    // pg-pseudonym-store.ts for why it grows in commit order per session.
    sql: `
      CREATE TABLE pseudonym_keys (
        key_id      text PRIMARY KEY,
        created_at  bigint NOT NULL
      );
      CREATE TABLE pseudonym_sessions (
        session_id    text PRIMARY KEY,          -- locked (FOR NO KEY UPDATE) by whoever adds entries
        last_used_at  bigint NOT NULL
      );
      CREATE INDEX pseudonym_sessions_by_last_use ON pseudonym_sessions (last_used_at);
      CREATE TABLE pseudonym_entries (
        session_id  text NOT NULL REFERENCES pseudonym_sessions (session_id) ON DELETE CASCADE,
        label       text NOT NULL,
        n           integer NOT NULL,
        seq         bigint GENERATED ALWAYS AS IDENTITY,
        value_mac   bytea NOT NULL,
        sealed      bytea NOT NULL,
        created_at  bigint NOT NULL,
        PRIMARY KEY (session_id, label, n),
        UNIQUE (session_id, label, value_mac)
      );
      CREATE INDEX pseudonym_entries_by_seq ON pseudonym_entries (session_id, seq);

      -- Leases (owner-leases.ts): the server process holding an owner's lock, ended when its lease expires.
      ALTER TABLE owners ADD COLUMN lock_backend integer;
    `,
  },
  {
    version: 4,
    name: 'audit checkpoints (signed, one replica at a time) and retention anchors',
    // As the SQLite store's audit_checkpoints: signed (Ed25519) statements "the chain up to seq had
    // this hash", written periodically, at shutdown and as the anchor of a retention purge
    // (pg-audit-maintenance.ts). The partial index lets the purge find an approval's later entries
    // without scanning the log; other entries never enter it, so appends do not pay for it.
    sql: `
      CREATE TABLE audit_checkpoints (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        seq        bigint NOT NULL,            -- last entry covered (anchor: last entry purged)
        hash       text NOT NULL,
        at         bigint NOT NULL,
        kind       text NOT NULL,              -- periodic | shutdown | anchor
        key_id     text,                       -- NULL: unsigned (no signing key configured)
        signature  text                        -- base64 Ed25519 over checkpointPayload()
      );
      CREATE INDEX audit_checkpoints_by_seq ON audit_checkpoints (seq, id);
      CREATE INDEX audit_log_approvals ON audit_log (ref, seq) WHERE kind = 'approval';
    `,
  },
  {
    version: 5,
    name: 'budget ledger (counters, spent steps, reservations, seeds); calls by start time',
    // The shared budget counters (pg-budget-sql.ts), and the index the counters are rebuilt from
    // the record with (calls of a window, by start time).
    sql: `${BUDGET_MIGRATION_SQL}
      CREATE INDEX calls_by_started ON calls (started_at);
    `,
  },
];

/** The schema version this build of aigov writes. */
export const PG_LATEST_SCHEMA_VERSION: number = PG_MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** The advisory lock key migrations run under (one per database; any constant unlikely to be another application's). */
export const MIGRATION_LOCK_KEY = '7301092513459627651';

const BOOKKEEPING = `
  CREATE TABLE IF NOT EXISTS aigov_schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  bigint NOT NULL
  )`;

/**
 * Brings the database to the latest version, under the migration lock, on `client` (a
 * connection of its own without a statement timeout: a replica waits for another's migration).
 * Returns the versions applied. Throws SchemaTooNewError for a newer schema, and refuses a
 * database that holds tables of the same names without aigov's bookkeeping.
 */
/**
 * migratePostgres on a connection of its own, opened without a statement timeout and closed
 * after: what each store does at open (the recording store normally migrates first; then the
 * others' run is one cheap query under the lock).
 */
export async function migratePostgresAt(settings: PgSettings): Promise<number[]> {
  const client = await connectClient(settings, { statementTimeoutMs: 0 });
  try {
    return await migratePostgres(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function migratePostgres(client: PgClient, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  assertOrdered(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  try {
    const known = await client.query<{ present: boolean }>("SELECT to_regclass('aigov_schema_migrations') IS NOT NULL AS present");
    if (known.rows[0]?.present !== true) {
      const clash = await client.query<{ name: string }>(
        "SELECT c.relname AS name FROM pg_class c WHERE c.relname IN ('sessions', 'calls', 'stream_events', 'audit_log') AND c.relkind = 'r' AND pg_table_is_visible(c.oid) LIMIT 1",
      );
      if (clash.rows.length > 0) throw new Error(`the database already has a table named ${clash.rows[0]!.name} but no aigov schema version: it belongs to another application (use a database of its own)`);
    }
    let current = 0;
    if (known.rows[0]?.present === true) {
      const row = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM aigov_schema_migrations');
      current = row.rows[0]?.version ?? 0;
    }
    if (current > latest) throw new SchemaTooNewError(current, latest);
    if (current === latest) return [];
    await client.query('BEGIN');
    try {
      await client.query(BOOKKEEPING);
      const applied: number[] = [];
      for (const migration of migrations) {
        if (migration.version <= current) continue;
        await client.query(migration.sql);
        await client.query('INSERT INTO aigov_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
        applied.push(migration.version);
      }
      await client.query('COMMIT');
      return applied;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => {});
  }
}

function assertOrdered(migrations: readonly PgMigration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1 || !Number.isInteger(m.version)) {
      throw new Error(`migration list is not contiguous from 1: entry ${i} has version ${m.version}`);
    }
  });
}
