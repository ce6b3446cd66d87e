/**
 * The `storage` settings: SQLite by default, PostgreSQL by `driver: postgres` with its URL given
 * by reference. Errors name the key path and never echo the URL (it may hold a password); an
 * inline URL is warned about only when it carries a password; the audit trail's settings
 * (signing key, retention) work with either driver.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildGatewayConfig, loadGatewayConfig } from '../src/config/load.ts';
import type { GatewayConfigInput } from '../src/config/schema.ts';
import { isAigovError, type AigovError } from '../src/core/errors.ts';
import { readmeSection } from './support/readme.ts';

const dir = mkdtempSync(join(tmpdir(), 'aigov-config-storage-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SOURCE = join(dir, 'gateway.yaml');

const BASE: GatewayConfigInput = {
  identity: { issuer: 'https://idp.example.com', audience: 'https://aigov.example.com', cli_client_id: 'aigov-cli' },
  providers: [{ name: 'openai', kind: 'openai', base_url: 'https://api.openai.com/v1' }],
};

function build(storage: unknown, extra: Partial<GatewayConfigInput> = {}, env: Record<string, string> = {}): ReturnType<typeof buildGatewayConfig> {
  return buildGatewayConfig({ ...BASE, ...extra, ...(storage === undefined ? {} : { storage }) }, SOURCE, { env });
}

function failure(fn: () => unknown): AigovError {
  try {
    fn();
  } catch (error) {
    assert.ok(isAigovError(error), `expected AigovError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

const password = (): string => ['pw', randomBytes(8).toString('hex')].join('_');

describe('storage settings', () => {
  it('SQLite by default, its path resolved against the configuration file', () => {
    assert.deepEqual(build(undefined).storage, { driver: 'sqlite', path: join(dir, 'aigov.db') });
    assert.deepEqual(build({ driver: 'sqlite', path: 'state/x.db' }).storage, { driver: 'sqlite', path: join(dir, 'state', 'x.db') });
  });

  it('PostgreSQL with the URL from the environment: defaults for the pool, the timeout and the local file', () => {
    const url = `postgres://aigov:${password()}@db.internal:5432/aigov`;
    const config = build({ driver: 'postgres', url: '${DATABASE_URL}' }, {}, { DATABASE_URL: url });
    assert.deepEqual(config.storage, { driver: 'postgres', url, poolSize: 10, statementTimeoutMs: 5000, synchronousCommit: 'on', path: join(dir, 'aigov.db') });
    assert.deepEqual(config.warnings, []);
    const tuned = build({ driver: 'postgres', url: { env: 'PG' }, pool_size: 32, statement_timeout_ms: 1500, synchronous_commit: 'off', path: '/var/lib/aigov/local.db' }, {}, { PG: url });
    assert.deepEqual(tuned.storage, { driver: 'postgres', url, poolSize: 32, statementTimeoutMs: 1500, synchronousCommit: 'off', path: '/var/lib/aigov/local.db' });
  });

  it('PostgreSQL with the URL from a file (trimmed), relative to the configuration', () => {
    const url = `postgresql://aigov:${password()}@db/aigov?sslmode=require`;
    writeFileSync(join(dir, 'db-url'), `${url}\n`);
    const storage = build({ driver: 'postgres', url: { file: 'db-url' } }).storage;
    assert.ok(storage.driver === 'postgres');
    assert.equal(storage.url, url);
  });

  it('an unset variable or a missing file names storage.url, never a value', () => {
    const unset = failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}' }));
    assert.equal(unset.code, 'AIGOV_E_SECRET_UNRESOLVED');
    assert.match(unset.message, /Cannot resolve the secret at storage\.url in .*environment variable DATABASE_URL is not set/);
    const missing = failure(() => build({ driver: 'postgres', url: { file: 'nope' } }));
    assert.equal(missing.code, 'AIGOV_E_SECRET_UNRESOLVED');
    assert.match(missing.message, /storage\.url/);
  });

  it('a URL that is not a PostgreSQL one is refused by key path, without echoing it', () => {
    for (const bad of [`mysql://root:${password()}@db/aigov`, `not a url ${password()}`, `postgres://aigov:${password()}@db/aigov#frag`]) {
      const err = failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}' }, {}, { DATABASE_URL: bad }));
      assert.equal(err.code, 'AIGOV_E_CONFIG_INVALID');
      assert.match(err.message, /storage\.url: expected/);
      assert.ok(!err.message.includes(bad.split('@')[0]!.split(':').at(-1)!), err.message);
      assert.ok(!err.message.includes('pw_'), err.message);
    }
  });

  it('an inline URL is fine without a password, and warned about (without the password) with one', () => {
    assert.deepEqual(build({ driver: 'postgres', url: 'postgres://aigov@db/aigov' }).warnings, []);
    const secret = password();
    for (const url of [`postgres://aigov:${secret}@db/aigov`, `postgres://aigov@db/aigov?password=${secret}`]) {
      const config = build({ driver: 'postgres', url });
      assert.equal(config.warnings.length, 1);
      assert.match(config.warnings[0]!, /storage\.url in .* holds a password inline; prefer \$\{DATABASE_URL\}/);
      assert.ok(!config.warnings[0]!.includes(secret));
    }
  });

  it('bad numbers, unknown keys and mixed-up drivers are refused by key path', () => {
    const env = { DATABASE_URL: 'postgres://aigov@db/aigov' };
    assert.match(failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}', pool_size: 1 }, {}, env)).message, /storage\.pool_size: /);
    assert.match(failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}', statement_timeout_ms: 10 }, {}, env)).message, /storage\.statement_timeout_ms: /);
    assert.match(failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}', host: 'db' }, {}, env)).message, /storage: unknown key "host"/);
    assert.match(failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}', synchronous_commit: 'local' }, {}, env)).message, /storage\.synchronous_commit: /);
    assert.match(failure(() => build({ driver: 'sqlite', url: '${DATABASE_URL}' }, {}, env)).message, /storage: unknown key "url"/);
    assert.match(failure(() => build({ driver: 'postgres' }, {}, env)).message, /storage\.url: /);
    assert.match(failure(() => build({ driver: 'mysql' }, {}, env)).message, /storage\.driver: /);
  });

  it('the audit trail settings work with PostgreSQL too: a signing key and retention are taken as with SQLite', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const env = { DATABASE_URL: 'postgres://aigov@db/aigov', KEY: pem };
    const config = build({ driver: 'postgres', url: '${DATABASE_URL}' }, { audit: { signing_key: '${KEY}', retention_days: 30, auditor_groups: ['auditors'], checkpoint_interval: '1m' } }, env);
    assert.equal(config.audit.signingKey, pem.trim());
    assert.equal(config.audit.retentionDays, 30);
    assert.equal(config.audit.checkpointIntervalMs, 60_000);
    assert.deepEqual(config.audit.auditorGroups, ['auditors']);
    // A key that is not Ed25519 is refused by name, as with SQLite.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assert.match(failure(() => build({ driver: 'postgres', url: '${DATABASE_URL}' }, { audit: { signing_key: '${KEY}' } }, { ...env, KEY: rsa })).message, /audit\.signing_key/);
  });

  it('the configuration README "Run several replicas" shows loads: PostgreSQL by ${DATABASE_URL}, its pool and timeout, the vault and signing keys', () => {
    const text = readmeSection('Run it for real').text;
    const block = /```yaml\n([\s\S]*?)```/.exec(text.slice(text.indexOf('### Run several replicas')))?.[1];
    assert.ok(block !== undefined, 'the section has a yaml block');
    // The key file is the deployment's: the same YAML with the path of one made here.
    const keyFile = join(dir, 'aigov_audit_key');
    writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const file = join(dir, 'replicas.yaml');
    assert.ok(block.includes('/run/secrets/aigov_audit_key'));
    writeFileSync(file, block.replace('/run/secrets/aigov_audit_key', keyFile));
    const url = `postgres://aigov:${password()}@db.internal:5432/aigov`;
    const config = loadGatewayConfig(file, { env: { DATABASE_URL: url, AIGOV_PSEUDONYM_KEY: randomBytes(32).toString('base64'), OPENAI_API_KEY: 'sk-not-a-real-key' } });
    assert.deepEqual(config.storage, { driver: 'postgres', url, poolSize: 10, statementTimeoutMs: 5000, synchronousCommit: 'on', path: join(dir, 'aigov.db') });
    assert.equal(config.listen.public_url, 'https://aigov.example.com');
    assert.ok(config.pseudonyms.key !== null && config.audit.signingKey !== null);
    assert.deepEqual(config.warnings, []);
  });
});
