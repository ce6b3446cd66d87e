/**
 * The budget ledger's schema and its two functions in PostgreSQL (migration 5, migrations.ts).
 * Each reserve and each settle is ONE statement — one round trip — that does its whole work
 * under the row locks of the counters it touches:
 *
 * - `budget_counters`: one row per counter (`key`), with what is reserved on it. Its row lock is
 *   what serializes the reservations and settles of a counter across every replica: both
 *   functions lock their counters first, in key order (the caller sorts them), so two calls
 *   sharing counters never deadlock; a hold row is only written under its counter's lock.
 * - `budget_spent`: what a counter has spent, per step (a calendar window's counter has step 0;
 *   a rolling window's counter one row per step still counted).
 * - `budget_holds`: the reservations, one row per call and counter, with a deadline on the
 *   database's clock. A reserve first releases the holds of its counters that are past their
 *   deadline (their process is gone: it would have renewed them), marking them `expired`; a
 *   late settle of such a hold still adds what the call was charged, once.
 * - `budget_seeds`: the budget fingerprints whose counters were seeded from the record.
 */

export const BUDGET_MIGRATION_SQL = `
  CREATE TABLE budget_counters (
    key         text COLLATE "C" PRIMARY KEY,
    reserved    bigint NOT NULL,
    expires_at  bigint NOT NULL             -- epoch ms: past it (and with nothing reserved) the counter is dropped
  );
  CREATE TABLE budget_spent (
    key     text COLLATE "C" NOT NULL,
    step    bigint NOT NULL,
    amount  bigint NOT NULL,
    PRIMARY KEY (key, step)
  );
  CREATE TABLE budget_holds (
    id        text COLLATE "C" NOT NULL,    -- the call id
    key       text COLLATE "C" NOT NULL,
    amount    bigint NOT NULL,
    step      bigint NOT NULL,
    deadline  bigint NOT NULL,              -- epoch ms, database clock; renewed while the call runs
    expired   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (id, key)
  );
  CREATE INDEX budget_holds_live ON budget_holds (key, deadline) WHERE NOT expired;
  CREATE TABLE budget_seeds (
    fingerprint  text PRIMARY KEY,
    seeded_at    bigint NOT NULL
  );
  CREATE TABLE budget_marks (
    key         text COLLATE "C" NOT NULL,
    mark        text NOT NULL,              -- e.g. a warning threshold already announced
    expires_at  bigint NOT NULL,
    PRIMARY KEY (key, mark)
  );

  -- Reserves p_amounts on the counters p_keys (sorted) for call p_id, all or none. Returns one row:
  -- refused = 0 when reserved (used: what each counter had spent and reserved before), -1 when
  -- one of the fingerprints p_seeds was never seeded (nothing reserved), else the 1-based index of
  -- the first counter that refused, with its spent and reserved amounts. A NULL limit is never
  -- refused (counted only).
  CREATE FUNCTION aigov_budget_reserve(p_id text, p_seeds text[], p_keys text[], p_limits bigint[], p_amounts bigint[], p_steps bigint[], p_oldest bigint[], p_expires bigint[], p_ttl_ms bigint)
  RETURNS TABLE (refused integer, spent bigint, reserved bigint, used bigint[])
  LANGUAGE plpgsql AS $fn$
  DECLARE
    now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    n integer := coalesce(array_length(p_keys, 1), 0);
    v_reserved bigint;
    v_spent bigint;
    v_swept bigint;
    v_used bigint[] := '{}';
  BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_seeds) f WHERE NOT EXISTS (SELECT 1 FROM budget_seeds s WHERE s.fingerprint = f)) THEN
      RETURN QUERY SELECT -1, 0::bigint, 0::bigint, NULL::bigint[];
      RETURN;
    END IF;
    FOR i IN 1..n LOOP
      INSERT INTO budget_counters AS c (key, reserved, expires_at) VALUES (p_keys[i], 0, p_expires[i])
        ON CONFLICT (key) DO UPDATE SET expires_at = greatest(c.expires_at, excluded.expires_at)
        RETURNING c.reserved INTO v_reserved;
      WITH swept AS (
        UPDATE budget_holds SET expired = true WHERE key = p_keys[i] AND NOT expired AND deadline < now_ms RETURNING amount
      ) SELECT coalesce(sum(amount), 0) INTO v_swept FROM swept;
      IF v_swept <> 0 THEN
        v_reserved := v_reserved - v_swept;
        UPDATE budget_counters SET reserved = v_reserved WHERE key = p_keys[i];
      END IF;
      IF p_oldest[i] > 0 THEN
        DELETE FROM budget_spent WHERE key = p_keys[i] AND step < p_oldest[i];
      END IF;
      SELECT coalesce(sum(amount), 0) INTO v_spent FROM budget_spent WHERE key = p_keys[i] AND step >= p_oldest[i];
      IF p_limits[i] IS NOT NULL AND v_spent + v_reserved + greatest(p_amounts[i], 1) > p_limits[i] THEN
        RETURN QUERY SELECT i, v_spent, v_reserved, NULL::bigint[];
        RETURN;
      END IF;
      v_used := v_used || (v_spent + v_reserved);
    END LOOP;
    FOR i IN 1..n LOOP
      INSERT INTO budget_holds (id, key, amount, step, deadline) VALUES (p_id, p_keys[i], p_amounts[i], p_steps[i], now_ms + p_ttl_ms)
        ON CONFLICT (id, key) DO NOTHING;
      IF FOUND THEN
        UPDATE budget_counters SET reserved = budget_counters.reserved + p_amounts[i] WHERE key = p_keys[i];
      END IF;
    END LOOP;
    RETURN QUERY SELECT 0, 0::bigint, 0::bigint, v_used;
  END
  $fn$;

  -- Settles call p_id: each of its holds on p_keys (sorted) is replaced by p_actuals. Holds
  -- already settled are not found: a second settle does nothing.
  CREATE FUNCTION aigov_budget_settle(p_id text, p_keys text[], p_actuals bigint[])
  RETURNS integer
  LANGUAGE plpgsql AS $fn$
  DECLARE
    n integer := coalesce(array_length(p_keys, 1), 0);
    settled integer := 0;
    v_amount bigint;
    v_step bigint;
    v_expired boolean;
  BEGIN
    PERFORM 1 FROM budget_counters WHERE key = ANY (p_keys) ORDER BY key FOR UPDATE;
    FOR i IN 1..n LOOP
      DELETE FROM budget_holds WHERE id = p_id AND key = p_keys[i] RETURNING amount, step, expired INTO v_amount, v_step, v_expired;
      CONTINUE WHEN NOT FOUND;
      settled := settled + 1;
      IF NOT v_expired THEN
        UPDATE budget_counters SET reserved = reserved - v_amount WHERE key = p_keys[i];
      END IF;
      IF p_actuals[i] <> 0 THEN
        INSERT INTO budget_spent AS s (key, step, amount) VALUES (p_keys[i], v_step, p_actuals[i])
          ON CONFLICT (key, step) DO UPDATE SET amount = s.amount + excluded.amount;
      END IF;
    END LOOP;
    RETURN settled;
  END
  $fn$;
`;
