/**
 * The gateway's state is private to the user who runs it: directories 0700; databases (with
 * their -wal/-shm), keys and the dev approve secret 0600 — on a fresh start, and after a start
 * over a state dir left 0755/0644 by an older aigov (tightened, with a warning naming the path
 * and old mode, never the contents). Attacked as a second local user (`nobody`, through
 * setpriv) when the tests run as root; the mode checks run for everyone.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { AigovError } from '../src/core/errors.ts';
import {
  ensurePrivateDatabase,
  ensurePrivateDir,
  ensurePrivateFile,
  writePrivateFileExclusive,
  writePrivateFileReplacing,
  type TightenedPath,
} from '../src/config/private-files.ts';
import { createFileStore } from '../src/auth/credential-stores.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import { ensureRuntimeDir } from '../src/daemon/runtime-files.ts';
import { startDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { startHarness } from './support/gateway-harness.ts';

const NOBODY = 65534;
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const CAN_ACT_AS_OTHER_USER = IS_ROOT && SETPRIV !== undefined;

const roots: string[] = [];
after(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

/** A temp dir another local user can traverse (mkdtemp makes 0700, which would hide everything from the attacker anyway, as a home dir does not). */
function openParent(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aigov-private-'));
  chmodSync(dir, 0o755);
  roots.push(dir);
  return dir;
}

function mode(path: string): string {
  return `0${(statSync(path).mode & 0o777).toString(8).padStart(3, '0')}`;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : [p];
  });
}

/** What `nobody` gets from `cat FILE`: its stdout, or null when refused. */
function readAsNobody(file: string): string | null {
  const r = spawnSync(SETPRIV as string, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'cat', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

/** `nobody` lists the directory: the names, or null when refused. */
function listAsNobody(dir: string): string | null {
  const r = spawnSync(SETPRIV as string, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ls', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

function captureLogger(): { logger: Logger; text(): string; entries(): Record<string, unknown>[] } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    logger: pino({ level: 'warn' }, sink),
    text: () => text,
    entries: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Asserts every directory under (and including) `dir` is 0700 and every file 0600. */
function assertAllPrivate(dir: string): void {
  assert.equal(mode(dir), '0700', dir);
  for (const p of walk(dir)) assert.equal(mode(p), statSync(p).isDirectory() ? '0700' : '0600', p);
}

const DEV_FILES = ['aigov.db', 'aigov.db-wal', 'aigov.db-shm', 'idp.sqlite', 'idp.sqlite-wal', 'idp.sqlite-shm', 'idp-jwks.json', 'idp-cookie-keys.json', 'pseudonym-vault.key', 'audit-signing.key', 'dev-approve.secret'];

describe('private files helper (real temp dirs)', () => {
  test('creates 0700 directories and 0600 files whatever the umask', () => {
    const root = openParent();
    const old = process.umask(0); // the most permissive umask: nothing may rely on it
    try {
      ensurePrivateDir(join(root, 'a', 'b'));
      assert.equal(mode(join(root, 'a', 'b')), '0700');
      assert.equal(mode(join(root, 'a')), '0700', 'missing parents are created private too');
      assert.equal(ensurePrivateFile(join(root, 'a', 'b', 'f'), { create: true }), true);
      assert.equal(mode(join(root, 'a', 'b', 'f')), '0600');
      assert.equal(writePrivateFileExclusive(join(root, 'a', 'key'), 'k1'), true);
      assert.equal(mode(join(root, 'a', 'key')), '0600');
      writePrivateFileReplacing(join(root, 'a', 'secret'), 's1');
      assert.equal(mode(join(root, 'a', 'secret')), '0600');
      ensurePrivateDatabase(join(root, 'db', 'x.db'));
      assert.equal(mode(join(root, 'db')), '0700');
      assert.equal(mode(join(root, 'db', 'x.db')), '0600');
      assert.deepEqual(readdirSync(join(root, 'a')).sort(), ['b', 'key', 'secret'], 'no temp file left behind');
    } finally {
      process.umask(old);
    }
  });

  test('tightens looser paths once, reporting path and old mode only; keeps contents', () => {
    const root = openParent();
    const dir = join(root, 'state');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o775);
    const key = join(dir, 'k.key');
    writeFileSync(key, 'TOP-SECRET-KEY-MATERIAL');
    chmodSync(key, 0o644);
    const events: TightenedPath[] = [];
    const onTightened = (e: TightenedPath): void => void events.push(e);

    ensurePrivateDir(dir, { onTightened });
    assert.equal(writePrivateFileExclusive(key, 'other', { onTightened }), false, 'an existing key is kept');
    assert.equal(readFileSync(key, 'utf8'), 'TOP-SECRET-KEY-MATERIAL');
    assert.equal(mode(dir), '0700');
    assert.equal(mode(key), '0600');
    assert.deepEqual(events, [
      { path: dir, oldMode: '0775', mode: '0700' },
      { path: key, oldMode: '0644', mode: '0600' },
    ]);
    ensurePrivateDir(dir, { onTightened });
    ensurePrivateFile(key, { onTightened });
    assert.equal(events.length, 2, 'reported once: a private path is not reported again');
    assert.ok(!JSON.stringify(events).includes('TOP-SECRET'));
  });

  test('refuses what is not a directory or regular file where one belongs', () => {
    const root = openParent();
    writeFileSync(join(root, 'file'), 'x');
    mkdirSync(join(root, 'dir'));
    const refused = (fn: () => unknown, re: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_PATH_NOT_PRIVATE' && re.test(e.message));
    refused(() => ensurePrivateDir(join(root, 'file')), /not a directory/);
    refused(() => ensurePrivateDir(join(root, 'file', 'sub')), /not a directory/);
    refused(() => ensurePrivateFile(join(root, 'dir')), /not a regular file/);
    refused(() => ensurePrivateDatabase(join(root, 'file', 'x.db')), /not a directory/);
  });

  test('refuses paths that belong to another user (planted by them)', { skip: IS_ROOT ? false : 'needs root to chown a file to another user' }, () => {
    const root = openParent();
    const dir = join(root, 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, NOBODY, NOBODY);
    assert.throws(() => ensurePrivateDir(dir), (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_PATH_NOT_PRIVATE' && /belongs to user id 65534/.test(e.message));
    // A world-writable shared directory where another user planted the database's WAL.
    const shared = join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    writeFileSync(join(shared, 'aigov.db-wal'), '');
    chownSync(join(shared, 'aigov.db-wal'), NOBODY, NOBODY);
    assert.throws(() => ensurePrivateDatabase(join(shared, 'aigov.db')), /aigov\.db-wal: it belongs to user id 65534|belongs to user id 65534/);
  });
});

describe('a real dev gateway start', () => {
  test('fresh: state dir 0700; database, -wal, -shm, IdP logins, keys and approve secret 0600; nobody else can read them', async () => {
    const parent = openParent();
    const stateDir = join(parent, 'dev');
    const log = captureLogger();
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir, logger: log.logger });
    try {
      for (const name of DEV_FILES) assert.ok(existsSync(join(stateDir, name)), `${name} exists while the gateway runs`);
      assertAllPrivate(stateDir);
      assert.equal(readFileSync(gateway.approveSecretFile, 'utf8').trim(), gateway.approveSecret);
      assert.deepEqual(log.entries().filter((e) => /accessible to other users/.test(String(e['msg']))), [], 'nothing to tighten on a fresh start');
      if (CAN_ACT_AS_OTHER_USER) {
        assert.equal(listAsNobody(stateDir), null, 'another user cannot list the state dir');
        for (const name of DEV_FILES) assert.equal(readAsNobody(join(stateDir, name)), null, `another user cannot read ${name}`);
      }
    } finally {
      await gateway.close();
    }
    assert.ok(!existsSync(join(stateDir, 'dev-approve.secret')), 'the per-start secret is removed at shutdown');
  });

  test('over a state dir left 0755/0644 (with -wal/-shm of a killed process): all tightened, each reported once, contents kept', async () => {
    const parent = openParent();
    const stateDir = join(parent, 'dev');
    // A first run creates everything; then the files are made as an older aigov left them.
    const first = await startDevGateway({ version: 'test', port: 0, stateDir, logger: captureLogger().logger });
    await first.close();
    const keysBefore = Object.fromEntries(['idp-jwks.json', 'idp-cookie-keys.json', 'pseudonym-vault.key', 'audit-signing.key'].map((f) => [f, readFileSync(join(stateDir, f), 'utf8')]));
    chmodSync(stateDir, 0o755);
    for (const p of walk(stateDir)) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
    // A process killed with -9 while it had the database open leaves -wal and -shm behind,
    // created (by SQLite) with the database's mode: 0644 here.
    const killed = spawnSync(process.execPath, ['-e', `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(${JSON.stringify(join(stateDir, 'aigov.db'))});
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      process.kill(process.pid, 'SIGKILL');`]);
    assert.equal(killed.signal, 'SIGKILL');
    for (const f of ['aigov.db-wal', 'aigov.db-shm']) assert.equal(mode(join(stateDir, f)), '0644', `${f} left behind 0644`);
    if (CAN_ACT_AS_OTHER_USER) assert.notEqual(readAsNobody(join(stateDir, 'audit-signing.key')), null, 'the setup is readable by others (as on main)');

    const log = captureLogger();
    const gateway = await startDevGateway({ version: 'test', port: 0, stateDir, logger: log.logger });
    try {
      assertAllPrivate(stateDir);
      for (const [f, text] of Object.entries(keysBefore)) assert.equal(readFileSync(join(stateDir, f), 'utf8'), text, `${f} kept`);
      const warned = log.entries().filter((e) => /accessible to other users/.test(String(e['msg'])));
      const byPath = new Map(warned.map((e) => [String(e['path']), e]));
      assert.equal(byPath.size, warned.length, 'each path reported once');
      assert.equal(byPath.get(stateDir)?.['oldMode'], '0755');
      for (const f of ['aigov.db', 'aigov.db-wal', 'aigov.db-shm', 'idp.sqlite', 'idp-jwks.json', 'idp-cookie-keys.json', 'pseudonym-vault.key', 'audit-signing.key']) {
        const entry = byPath.get(join(stateDir, f));
        assert.ok(entry, `a warning names ${f}`);
        assert.equal(entry['oldMode'], '0644');
        assert.equal(entry['mode'], '0600');
        assert.equal(entry['level'], 40, 'logged as a warning');
      }
      for (const text of Object.values(keysBefore)) {
        for (const line of text.split('\n').filter((l) => l.length > 20)) assert.ok(!log.text().includes(line.trim()), 'no key material in the log');
      }
      assert.ok(!log.text().includes(gateway.approveSecret), 'the approve secret is not logged');
      if (CAN_ACT_AS_OTHER_USER) {
        for (const name of DEV_FILES) assert.equal(readAsNobody(join(stateDir, name)), null, `another user cannot read ${name} any more`);
      }
    } finally {
      await gateway.close();
    }
  });

  test('refuses a state dir that belongs to another user, and writes nothing into it', { skip: IS_ROOT ? false : 'needs root to chown a directory to another user' }, async () => {
    const parent = openParent();
    const stateDir = join(parent, 'dev');
    mkdirSync(stateDir, { mode: 0o777 });
    chmodSync(stateDir, 0o777);
    chownSync(stateDir, NOBODY, NOBODY);
    const outcome = await startDevGateway({ version: 'test', port: 0, stateDir, logger: captureLogger().logger }).catch((e: unknown) => e);
    if (!(outcome instanceof Error)) await (outcome as { close(): Promise<void> }).close(); // it started: fail below, but do not leak it
    assert.ok(outcome instanceof AigovError && outcome.code === 'AIGOV_E_PATH_NOT_PRIVATE' && outcome.message.includes(stateDir), String(outcome));
    assert.deepEqual(readdirSync(stateDir), []);
  });
});

describe('a configured gateway (real start over a socket)', () => {
  test('creates its storage directory 0700 and the database with -wal/-shm 0600', async () => {
    const h = await startHarness({ storeSubdir: join('var', 'lib', 'aigov') });
    try {
      chmodSync(h.dir, 0o755);
      const storeDir = join(h.dir, 'var', 'lib', 'aigov');
      // A recorded call: the WAL holds a prompt right now.
      const res = await fetch(`${h.url}/openai/v1/models`, { headers: { authorization: `Bearer ${h.token}` } });
      await res.arrayBuffer();
      for (const dir of [join(h.dir, 'var'), join(h.dir, 'var', 'lib'), storeDir]) assert.equal(mode(dir), '0700', dir);
      for (const f of ['aigov.db', 'aigov.db-wal', 'aigov.db-shm']) {
        assert.ok(existsSync(join(storeDir, f)), `${f} exists`);
        assert.equal(mode(join(storeDir, f)), '0600', f);
      }
      if (CAN_ACT_AS_OTHER_USER) {
        chmodSync(join(h.dir, 'var'), 0o755); // even with a traversable parent
        for (const f of ['aigov.db', 'aigov.db-wal', 'aigov.db-shm']) assert.equal(readAsNobody(join(storeDir, f)), null, f);
      }
    } finally {
      await h.close();
    }
  });

  test('in an existing shared directory, a database left 0644 is tightened and the directory left alone', async () => {
    const parent = openParent();
    const file = join(parent, 'aigov.db');
    await (await openSqliteStore({ path: file })).close();
    chmodSync(file, 0o644);
    const events: TightenedPath[] = [];
    const store = await openSqliteStore({ path: file, onTightened: (e) => events.push(e) });
    try {
      assert.equal(mode(file), '0600');
      assert.equal(mode(`${file}-wal`), '0600');
      assert.equal(mode(`${file}-shm`), '0600');
      assert.equal(mode(parent), '0755', 'an existing directory that may be shared keeps its mode');
      assert.deepEqual(events, [{ path: file, oldMode: '0644', mode: '0600' }]);
    } finally {
      await store.close();
    }
  });
});

describe("the CLI's and daemon's own files", () => {
  const settingsProfile = (gateway: string) => ({
    gatewayUrl: gateway,
    discovery: {
      schema_version: 1 as const,
      version: '0.1.0',
      gateway_url: gateway,
      issuer: `${gateway}/oidc`,
      cli_client_id: 'aigov-cli',
      scopes: ['openid'],
      resource: gateway,
      audience: gateway,
      required_scope: null,
      providers: [],
      dev: true,
    },
    credentialStore: 'file' as const,
    user: { subject: 'alice', email: 'alice@example.com', groups: ['developers'] },
    loggedInAt: 1_700_000_000_000,
  });

  test('a fresh config dir is created 0700 (conf alone made it 0755); settings.json and credentials.json are 0600', async () => {
    const configDir = join(openParent(), 'home', '.config', 'aigov');
    openCliSettings(configDir).setProfile('default', settingsProfile('http://127.0.0.1:8787'));
    assert.equal(mode(configDir), '0700');
    assert.equal(mode(join(configDir, 'settings.json')), '0600');
    await createFileStore({ configDir }).save('default', 'rt-REFRESH-TOKEN-0123456789');
    assert.equal(mode(join(configDir, 'credentials.json')), '0600');
    if (CAN_ACT_AS_OTHER_USER) {
      assert.equal(readAsNobody(join(configDir, 'settings.json')), null);
      assert.equal(readAsNobody(join(configDir, 'credentials.json')), null);
    }
  });

  test('an existing 0755 config dir is tightened, with a warning from the credential store (never the token)', async () => {
    const configDir = join(openParent(), 'aigov');
    mkdirSync(configDir);
    chmodSync(configDir, 0o755);
    const warnings: string[] = [];
    await createFileStore({ configDir, onWarning: (m) => warnings.push(m) }).save('default', 'rt-REFRESH-TOKEN-0123456789');
    assert.equal(mode(configDir), '0700');
    assert.deepEqual(warnings, [`${configDir} was accessible to other users (mode 0755); it is now 0700`]);

    chmodSync(configDir, 0o755);
    openCliSettings(configDir).getProfile('default'); // a read tightens too (without creating anything)
    assert.equal(mode(configDir), '0700');
    const missing = join(openParent(), 'first-read');
    assert.equal(openCliSettings(missing).getProfile('default'), null);
    assert.equal(mode(missing), '0700', 'conf creates the directory even to read: it is created 0700 first');
  });

  test('the runtime dir (control socket, pid file, log) is made 0700; one of another user is refused', { skip: false }, (t) => {
    const dir = join(openParent(), 'run');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    ensureRuntimeDir(dir);
    assert.equal(mode(dir), '0700');
    if (!IS_ROOT) {
      t.diagnostic('not root: the other-user case is skipped');
      return;
    }
    const theirs = join(openParent(), 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, NOBODY, NOBODY);
    assert.throws(() => ensureRuntimeDir(theirs), (e: unknown) => e instanceof AigovError && e.code === 'AIGOV_E_DAEMON_UNAVAILABLE' && /belongs to another user/.test(e.message));
  });
});
