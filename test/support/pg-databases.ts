/**
 * A PostgreSQL database of its own for each test case: `aigov_test_<random>` created on the
 * server at AIGOV_TEST_PG_URL (default: postgres://postgres@127.0.0.1:5432/postgres, trust auth,
 * as on the CI machine; .ci/run starts the server when it is down), dropped after the file's
 * tests. Parallel test files never share one.
 */
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import pg from 'pg';

export const ADMIN_URL = process.env['AIGOV_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `name` on the test server. */
export function databaseUrl(name: string, base = ADMIN_URL): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on the server's admin database. */
export async function adminQuery(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** Registers an after() hook that drops every database the returned function created. */
export function usePgDatabases(): () => Promise<{ name: string; url: string }> {
  const created: string[] = [];
  after(async () => {
    for (const name of created) await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  });
  return async () => {
    const name = `aigov_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    created.push(name);
    return { name, url: databaseUrl(name) };
  };
}

/** A client on `url` for checks and tampering, closed by the caller. */
export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** Rows of one query on `url`, on a connection of its own (bigints as numbers). */
export async function pgQuery<T extends Record<string, unknown> = Record<string, unknown>>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const getTypeParser = ((oid: number, format?: 'text' | 'binary'): unknown => (oid === 20 ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format ?? 'text') as unknown))) as typeof pg.types.getTypeParser;
  const client = new pg.Client({ connectionString: url, types: { getTypeParser } });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}
