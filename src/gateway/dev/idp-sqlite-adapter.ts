/**
 * oidc-provider storage adapter for the dev identity provider, backed by `node:sqlite`.
 *
 * One table holds every model (Session, Interaction, Grant, DeviceCode, RefreshToken, …), keyed
 * by (model, id), with the secondary keys oidc-provider looks rows up by: grantId (to revoke a
 * grant's tokens), userCode (device flow) and uid (sessions). Expired rows are invisible to
 * lookups and purged at open and then at most once a minute on writes.
 *
 * Dev only: `aigov server --dev` keeps its logins in `${stateDir}/idp.sqlite` so they survive
 * a restart. A production gateway talks to the company IdP and never opens this file.
 */
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';

/** A stored oidc-provider model payload (opaque to us apart from the indexed keys). */
export type AdapterPayload = Record<string, unknown>;

/** The oidc-provider Adapter contract (see oidc-provider's memory adapter for the reference). */
export interface OidcAdapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

const PURGE_INTERVAL_MS = 60_000;

/** Runs synchronous SQLite work behind the Promise API oidc-provider expects (throws become rejections). */
function settle<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => resolve(work()));
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_model (
  model      TEXT    NOT NULL,
  id         TEXT    NOT NULL,
  payload    TEXT    NOT NULL,
  expiresAt  INTEGER,
  grantId    TEXT,
  userCode   TEXT,
  uid        TEXT,
  consumedAt INTEGER,
  PRIMARY KEY (model, id)
) STRICT;
CREATE INDEX IF NOT EXISTS oidc_model_grant ON oidc_model (grantId) WHERE grantId IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_model_user_code ON oidc_model (model, userCode) WHERE userCode IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_model_uid ON oidc_model (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_model_expires ON oidc_model (expiresAt) WHERE expiresAt IS NOT NULL;
`;

interface Row {
  payload: string;
  consumedAt: number | null;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** Owns the SQLite database and hands out one adapter per oidc-provider model name. */
export class SqliteAdapterStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #stmts: {
    upsert: StatementSync;
    find: StatementSync;
    findByUserCode: StatementSync;
    findByUid: StatementSync;
    consume: StatementSync;
    destroy: StatementSync;
    revokeByGrantId: StatementSync;
    purge: StatementSync;
  };
  #lastPurge = 0;
  #closed = false;

  constructor(path: string, now: () => number = Date.now) {
    this.#now = now;
    this.#db = new DatabaseSync(path);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
    this.#db.exec(SCHEMA);
    const live = '(expiresAt IS NULL OR expiresAt > ?)';
    this.#stmts = {
      upsert: this.#db.prepare(`
        INSERT INTO oidc_model (model, id, payload, expiresAt, grantId, userCode, uid, consumedAt)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (model, id) DO UPDATE SET
          payload = excluded.payload, expiresAt = excluded.expiresAt, grantId = excluded.grantId,
          userCode = excluded.userCode, uid = excluded.uid, consumedAt = excluded.consumedAt`),
      find: this.#db.prepare(`SELECT payload, consumedAt FROM oidc_model WHERE model = ? AND id = ? AND ${live}`),
      findByUserCode: this.#db.prepare(
        `SELECT payload, consumedAt FROM oidc_model WHERE model = ? AND userCode = ? AND ${live} LIMIT 1`,
      ),
      findByUid: this.#db.prepare(`SELECT payload, consumedAt FROM oidc_model WHERE model = ? AND uid = ? AND ${live} LIMIT 1`),
      consume: this.#db.prepare('UPDATE oidc_model SET consumedAt = ? WHERE model = ? AND id = ?'),
      destroy: this.#db.prepare('DELETE FROM oidc_model WHERE model = ? AND id = ?'),
      revokeByGrantId: this.#db.prepare('DELETE FROM oidc_model WHERE model = ? AND grantId = ?'),
      purge: this.#db.prepare('DELETE FROM oidc_model WHERE expiresAt IS NOT NULL AND expiresAt <= ?'),
    };
    this.purgeExpired();
  }

  /** Deletes every row whose lifetime has ended. */
  purgeExpired(): void {
    this.#lastPurge = this.#now();
    this.#stmts.purge.run(this.#lastPurge);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** The adapter factory handed to oidc-provider's `adapter` option. */
  adapterFor(model: string): OidcAdapter {
    const read = (row: unknown): AdapterPayload | undefined => {
      if (row === undefined) return undefined;
      const { payload, consumedAt } = row as Row;
      const parsed = JSON.parse(payload) as AdapterPayload;
      if (consumedAt !== null) parsed['consumed'] = consumedAt;
      return parsed;
    };
    const stmts = this.#stmts;
    return {
      upsert: (id, payload, expiresIn) => settle(() => {
        const now = this.#now();
        const expiresAt = typeof expiresIn === 'number' ? now + expiresIn * 1000 : null;
        stmts.upsert.run(
          model,
          id,
          JSON.stringify(payload),
          expiresAt,
          optionalString(payload['grantId']),
          optionalString(payload['userCode']),
          optionalString(payload['uid']),
          typeof payload['consumed'] === 'number' ? payload['consumed'] : null,
        );
        if (now - this.#lastPurge >= PURGE_INTERVAL_MS) this.purgeExpired();
      }),
      find: (id) => settle(() => read(stmts.find.get(model, id, this.#now()))),
      findByUserCode: (userCode) => settle(() => read(stmts.findByUserCode.get(model, userCode, this.#now()))),
      findByUid: (uid) => settle(() => read(stmts.findByUid.get(model, uid, this.#now()))),
      consume: (id) => settle(() => {
        stmts.consume.run(Math.floor(this.#now() / 1000), model, id);
      }),
      destroy: (id) => settle(() => {
        stmts.destroy.run(model, id);
      }),
      revokeByGrantId: (grantId) => settle(() => {
        stmts.revokeByGrantId.run(model, grantId);
      }),
    };
  }
}
