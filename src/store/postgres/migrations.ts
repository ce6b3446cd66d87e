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
 *   head and the next body chunk id, so appends from any number of replicas form one chain;
 * - functions (migration 6) for the write lane's one-round-trip path (pg-writer.ts), which link
 *   audit entries in the database with the canonical text of src/core/audit/chain.ts.
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
    name: 'the webhook outbox: approval notices delivered once across replicas, surviving restarts',
    // As the SQLite store's webhook_outbox (src/store/webhook-outbox.ts): one row per notice and
    // receiver, written in the transaction of the approval change it announces; replicas claim
    // due rows with FOR UPDATE SKIP LOCKED and a lease (pg-webhook-outbox.ts). Times are the
    // database's clock (one clock for every replica), except created_at (the notice's).
    sql: `
      CREATE TABLE webhook_outbox (
        id               text COLLATE "C" PRIMARY KEY,   -- the delivery id (whd_…), the body's id
        approval_id      text NOT NULL,
        rule_id          text NOT NULL,
        type             text NOT NULL,
        receiver         text NOT NULL,                  -- hex SHA-256 of the receiver's URL
        host             text NOT NULL,
        body             text NOT NULL,
        created_at       bigint NOT NULL,
        state            text NOT NULL DEFAULT 'pending',
        attempts         integer NOT NULL DEFAULT 0,
        next_attempt_at  bigint NOT NULL,
        claim            text,
        last_status      integer,
        last_error       text,
        done_at          bigint
      );
      CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE state = 'pending';
      CREATE INDEX webhook_outbox_done ON webhook_outbox (done_at) WHERE state <> 'pending';
    `,
  },
  {
    version: 6,
    name: 'one-round-trip recording writes: the audit chain linked in the database, records and write-behind batches as one call each',
    // The write lane's fast path (pg-writer.ts, pg-write-functions.ts): one statement per
    // transaction, committed at its Sync, instead of BEGIN + head lock + reads, then the write +
    // COMMIT. The functions lock chain_head (FOR UPDATE, as every other writer does), check under
    // the lock what the writer assumed, and write everything or nothing: on 'retry' the writer
    // takes the locked two-round-trip path, which refuses records one by one.
    //
    // Both write functions run with enable_seqscan off: every statement in them reads by key, and
    // plans cached while the tables were nearly empty (a fresh database) scanned them for every
    // group (`id = ANY (…)` over all calls) until the next ANALYZE: 3× the database's CPU per call.
    //
    // aigov_link_hash is chainInput() + linkHash() of src/core/audit/chain.ts and audit-hash.ts:
    // the same text, hashed as UTF-8 (encodeValue counts UTF-16 code units: characters beyond
    // U+FFFF count twice). The verifier recomputes every hash in TypeScript from the stored fields,
    // so a difference between the two shows as a broken chain, never as a silently different one.
    sql: `
      -- (Written so the planner inlines them into the caller's cached plan: only text || text and
      -- explicit casts, no concat(); STABLE because convert_to is. Not inlined, each call would be
      -- planned again: ~0.2 ms per entry.)
      CREATE FUNCTION aigov_audit_text(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN v IS NULL THEN 'z;'
          ELSE 's' || (char_length(v) + CASE WHEN octet_length(v) = char_length(v) THEN 0
            ELSE char_length(regexp_replace(v, '[^\\U00010000-\\U0010FFFF]', '', 'g')) END)::text || ':' || v END
      $fn$;

      CREATE FUNCTION aigov_link_hash(prev_hash text, content_hash text, seq bigint, kind text, ref text, span text, at bigint)
        RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
        SELECT encode(sha256(convert_to('aigov.audit.v1/link' || chr(10) || prev_hash || chr(10) || content_hash || chr(10) || seq::text || chr(10)
          || kind || chr(10) || aigov_audit_text(ref) || aigov_audit_text(span) || at::text, 'UTF8')), 'hex')
      $fn$;

      -- Appends entries after the head (head_seq, head_hash) the caller locked; returns the new head.
      CREATE FUNCTION aigov_append_entries(head_seq bigint, head_hash text, e_kind text[], e_ref text[], e_span text[], e_at bigint[], e_content text[],
        OUT new_seq bigint, OUT new_hash text) LANGUAGE plpgsql AS $fn$
      DECLARE
        n integer := coalesce(cardinality(e_kind), 0);
        seqs bigint[] := '{}';
        prevs text[] := '{}';
        hashes text[] := '{}';
      BEGIN
        new_seq := head_seq;
        new_hash := head_hash;
        FOR i IN 1 .. n LOOP
          new_seq := new_seq + 1;
          seqs[i] := new_seq;
          prevs[i] := new_hash;
          new_hash := aigov_link_hash(new_hash, e_content[i], new_seq, e_kind[i], e_ref[i], e_span[i], e_at[i]);
          hashes[i] := new_hash;
        END LOOP;
        IF n > 0 THEN
          INSERT INTO audit_log (seq, kind, ref, span, at, content_hash, prev_hash, hash)
            SELECT * FROM unnest(seqs, e_kind, e_ref, e_span, e_at, e_content, prevs, hashes);
        END IF;
      END
      $fn$;

      -- A group of request records. 'retry' (nothing written) when a call id is already recorded,
      -- a session belongs to another principal, the chunks the writer remembers may be gone
      -- (chunks_generation moved; p_generation NULL: the group names no chunks), or a session the
      -- writer took for one without chunks (p_fresh: not in its memory; usually a new session) has
      -- some. p_reserve > 0 reserves that many body chunk ids for the writer's next records:
      -- chunk_block is the first.
      CREATE FUNCTION aigov_record_calls(
        p_owner text, p_generation bigint, p_reserve bigint, p_fresh text[],
        s_id text[], s_subject text[], s_issuer text[], s_email text[], s_started bigint[], s_last bigint[], s_count integer[],
        c_id text[], c_session text[], c_subject text[], c_email text[], c_groups text[], c_issuer text[], c_client text[], c_agent text[],
        c_remote text[], c_sdk text[], c_provider text[], c_kind text[], c_endpoint text[], c_method text[], c_path text[], c_model text[],
        c_stream smallint[], c_body text[], c_parts text[], c_decisions text[], c_started bigint[],
        k_id bigint[], k_session text[], k_hash text[], k_kind smallint[], k_text text[],
        r_call text[], r_key text[], r_sealed bytea[],
        e_kind text[], e_ref text[], e_span text[], e_at bigint[], e_content text[],
        OUT outcome text, OUT chunk_block bigint) LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
      DECLARE
        h record;
        t record;
      BEGIN
        SELECT seq, hash, next_chunk, chunks_generation INTO h FROM chain_head WHERE id = 1 FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the chain_head row is missing (the database was changed behind aigov)';
        END IF;
        IF (p_generation IS NOT NULL AND p_generation <> h.chunks_generation)
          OR EXISTS (SELECT 1 FROM calls WHERE id = ANY (c_id))
          OR EXISTS (SELECT 1 FROM body_chunks WHERE session_id = ANY (p_fresh))
          OR EXISTS (SELECT 1 FROM unnest(s_id, s_subject, s_issuer) AS x(id, subject, issuer) JOIN sessions s ON s.id = x.id
                     WHERE s.subject <> x.subject OR s.issuer <> x.issuer) THEN
          outcome := 'retry';
          RETURN;
        END IF;
        INSERT INTO sessions (id, subject, issuer, email, started_at, last_call_at, call_count)
          SELECT * FROM unnest(s_id, s_subject, s_issuer, s_email, s_started, s_last, s_count)
          ON CONFLICT (id) DO UPDATE SET call_count = sessions.call_count + excluded.call_count,
            last_call_at = greatest(sessions.last_call_at, excluded.last_call_at);
        INSERT INTO calls (id, session_id, subject, email, groups, issuer, client_id, user_agent, remote_address, sdk, provider,
            provider_kind, endpoint, method, path, model, stream, request_body, request_parts, decisions, started_at, status, owner)
          SELECT u.*, 'pending', p_owner FROM unnest(c_id, c_session, c_subject, c_email, c_groups, c_issuer, c_client, c_agent, c_remote, c_sdk,
            c_provider, c_kind, c_endpoint, c_method, c_path, c_model, c_stream, c_body, c_parts, c_decisions, c_started) AS u;
        IF cardinality(k_id) > 0 THEN
          INSERT INTO body_chunks (id, session_id, hash, kind, text)
            SELECT x.i, x.s, decode(x.h, 'hex'), x.k, x.t FROM unnest(k_id, k_session, k_hash, k_kind, k_text) AS x(i, s, h, k, t);
        END IF;
        IF cardinality(r_call) > 0 THEN
          INSERT INTO raw_copies (call_id, key_id, sealed) SELECT * FROM unnest(r_call, r_key, r_sealed);
        END IF;
        t := aigov_append_entries(h.seq, h.hash, e_kind, e_ref, e_span, e_at, e_content);
        UPDATE chain_head SET seq = t.new_seq, hash = t.new_hash, next_chunk = next_chunk + greatest(p_reserve, 0) WHERE id = 1;
        chunk_block := CASE WHEN p_reserve > 0 THEN h.next_chunk END;
        outcome := 'ok';
      END
      $fn$;

      -- A write-behind batch: stream events, results, their entries. 'retry' (nothing written) when a
      -- result's call is no longer pending (or gone) or an events' call was never recorded.
      -- Results are written only over pending calls (the check above, under the head lock that
      -- every writer of a status holds).
      CREATE FUNCTION aigov_write_behind(
        v_call text[], v_seq integer[], v_offset bigint[], v_raw text[],
        f_id text[], f_status text[], f_http integer[], f_body text[], f_usage text[], f_first_byte bigint[], f_latency bigint[],
        f_code text[], f_message text[], f_decisions text[], f_ended bigint[],
        e_kind text[], e_ref text[], e_span text[], e_at bigint[], e_content text[],
        OUT outcome text) LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
      DECLARE
        h record;
        t record;
        event_calls text[];
      BEGIN
        SELECT seq, hash INTO h FROM chain_head WHERE id = 1 FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the chain_head row is missing (the database was changed behind aigov)';
        END IF;
        SELECT coalesce(array_agg(DISTINCT c), '{}') INTO event_calls FROM unnest(v_call) AS c;
        -- (count with FILTER, not status = 'pending' in WHERE: that would lead the planner to the
        -- partial index of pending calls, whose entries of finished calls stay until VACUUM)
        IF (SELECT count(*) FILTER (WHERE status = 'pending') FROM calls WHERE id = ANY (f_id)) <> cardinality(f_id)
          OR (SELECT count(*) FROM calls WHERE id = ANY (event_calls)) <> cardinality(event_calls) THEN
          outcome := 'retry';
          RETURN;
        END IF;
        IF cardinality(v_call) > 0 THEN
          INSERT INTO stream_events (call_id, seq, offset_ms, raw) SELECT * FROM unnest(v_call, v_seq, v_offset, v_raw);
        END IF;
        IF cardinality(f_id) > 0 THEN
          UPDATE calls AS c SET status = f.status, http_status = f.http_status, response_body = f.response_body, usage = f.usage,
              first_byte_ms = f.first_byte_ms, latency_ms = f.latency_ms, error_code = f.error_code, error_message = f.error_message,
              decisions = f.decisions, ended_at = f.ended_at
            FROM unnest(f_id, f_status, f_http, f_body, f_usage, f_first_byte, f_latency, f_code, f_message, f_decisions, f_ended)
              AS f(id, status, http_status, response_body, usage, first_byte_ms, latency_ms, error_code, error_message, decisions, ended_at)
            WHERE c.id = f.id;
        END IF;
        t := aigov_append_entries(h.seq, h.hash, e_kind, e_ref, e_span, e_at, e_content);
        UPDATE chain_head SET seq = t.new_seq, hash = t.new_hash WHERE id = 1;
        outcome := 'ok';
      END
      $fn$;
    `,
  },
  {
    version: 7,
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
