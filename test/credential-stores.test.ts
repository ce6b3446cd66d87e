import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  createEnvStore,
  createFileStore,
  keychainAccount,
  keychainLocation,
  openCredentialStore,
  probeKeychain,
} from '../src/auth/credential-stores.ts';
import { AigovError } from '../src/core/errors.ts';
import { findExecutable, secretServiceSkipReason, startSecretService, type SecretService } from './support/secret-service.ts';

const token = (): string => `rt_${randomBytes(24).toString('base64url')}`;

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aigov-creds-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An environment in which no Secret Service can be reached. */
function noBusEnv(dir: string): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: dir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-such-bus')}` };
}

function assertUnreadable(error: unknown, ...secrets: string[]): true {
  assert.ok(error instanceof AigovError, `expected an AigovError, got ${String(error)}`);
  assert.equal(error.code, 'AIGOV_E_CREDENTIALS_UNREADABLE');
  for (const secret of secrets) assert.ok(!error.message.includes(secret), 'the error message must not contain the token');
  return true;
}

describe('file credential store', () => {
  it('round-trips two profiles independently in a 0600 file inside a 0700 dir', async () => {
    const configDir = join(await tempDir(), 'config', 'aigov');
    const store = createFileStore({ configDir });
    const [a, b] = [token(), token()];
    assert.equal(store.kind, 'file');
    assert.equal(store.location, `${join(configDir, 'credentials.json')} (0600 file)`);
    assert.equal(await store.load('alice'), null);

    await store.save('alice', a);
    await store.save('bob', b);
    assert.equal(await store.load('alice'), a);
    assert.equal(await store.load('bob'), b);
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    assert.equal((await stat(configDir)).mode & 0o777, 0o700);

    // A second instance (another process) sees the same data.
    const again = createFileStore({ configDir });
    assert.equal(await again.load('alice'), a);

    const rotated = token();
    await store.save('alice', rotated);
    assert.equal(await again.load('alice'), rotated);
    assert.equal(await again.load('bob'), b);

    assert.equal(await store.remove('alice'), true);
    assert.equal(await store.remove('alice'), false);
    assert.equal(await store.load('alice'), null);
    assert.equal(await store.load('bob'), b);
    assert.equal(await store.remove('bob'), true);
    await assert.rejects(stat(store.path), { code: 'ENOENT' }, 'the file goes when the last profile does');
    assert.equal(await store.load('__proto__'), null);
  });

  it('writes atomically: the file is replaced by rename, nothing is left behind, concurrent writers lose nothing', async () => {
    const configDir = await tempDir();
    const one = createFileStore({ configDir });
    const two = createFileStore({ configDir }); // its own in-process queue: only the lock file orders the two
    await one.save('seed', token());
    const inodeBefore = (await stat(one.path)).ino;
    await one.save('seed', token());
    assert.notEqual((await stat(one.path)).ino, inodeBefore, 'a save must rename a new file over the old one');

    const expected = new Map<string, string>();
    await Promise.all(Array.from({ length: 24 }, (_, i) => {
      const value = token();
      expected.set(`p${i}`, value);
      return (i % 2 === 0 ? one : two).save(`p${i}`, value);
    }));
    for (const [profile, value] of expected) assert.equal(await two.load(profile), value, profile);
    assert.deepEqual((await readdir(configDir)).sort(), ['credentials.json']);
    assert.equal((await stat(one.path)).mode & 0o777, 0o600);
  });

  it('takes over a stale lock left by a dead process', async () => {
    const configDir = await tempDir();
    const store = createFileStore({ configDir, lockTimeoutMs: 500 });
    const lock = `${store.path}.lock`;
    await writeFile(lock, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const value = token();
    await store.save('alice', value);
    assert.equal(await store.load('alice'), value);
  });

  it('puts a file readable by others back to 0600, and says so without the token', async () => {
    const configDir = await tempDir();
    const warnings: string[] = [];
    const store = createFileStore({ configDir, onWarning: (message) => warnings.push(message) });
    const value = token();
    await store.save('alice', value);
    await chmod(store.path, 0o644);
    assert.equal(await store.load('alice'), value);
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /credentials\.json was readable by other users \(mode 644\); it is now 0600/);
    assert.ok(!warnings[0]!.includes(value));
  });

  it('reports a malformed file as AIGOV_E_CREDENTIALS_UNREADABLE without quoting it; logout can clear it', async () => {
    const configDir = await tempDir();
    const store = createFileStore({ configDir });
    const secret = token();
    await writeFile(store.path, `{"profiles": {"alice": {"refreshToken": "${secret}"`, { mode: 0o600 });
    await assert.rejects(store.load('alice'), (error) => assertUnreadable(error, secret));
    await assert.rejects(store.save('bob', token()), (error) => assertUnreadable(error, secret), 'save must not overwrite other profiles silently');
    assert.match(await readFile(store.path, 'utf8'), new RegExp(secret), 'the malformed file is left as it was by save');

    await writeFile(store.path, JSON.stringify({ profiles: { alice: { refreshToken: 42 } }, note: secret }));
    await assert.rejects(store.load('alice'), (error) => assertUnreadable(error, secret));
    await writeFile(store.path, JSON.stringify([secret]));
    await assert.rejects(store.load('alice'), (error) => assertUnreadable(error, secret));

    assert.equal(await store.remove('alice'), true);
    await assert.rejects(stat(store.path), { code: 'ENOENT' });
    const fresh = token();
    await store.save('alice', fresh);
    assert.equal(await store.load('alice'), fresh);
  });
});

describe('env credential store', () => {
  it('reads AIGOV_REFRESH_TOKEN, keeps a rotated token in memory only, never removes', async () => {
    const dir = await tempDir();
    const initial = token();
    const env = { AIGOV_REFRESH_TOKEN: ` ${initial}\n` };
    const store = createEnvStore(env);
    assert.equal(store.kind, 'env');
    assert.equal(store.location, 'environment (AIGOV_REFRESH_TOKEN)');
    assert.equal(await store.load('default'), initial);
    assert.equal(await store.load('ci'), initial);

    const rotated = token();
    await store.save('default', rotated);
    assert.equal(await store.load('default'), rotated);
    assert.equal(await store.load('ci'), initial);
    assert.equal(env.AIGOV_REFRESH_TOKEN, ` ${initial}\n`, 'the environment is not changed');
    assert.equal(await createEnvStore(env).load('default'), initial, 'nothing persisted');
    assert.equal(await store.remove('default'), false);
    assert.deepEqual(await readdir(dir), []);

    assert.equal(await createEnvStore({}).load('default'), null);
    assert.equal(await createEnvStore({ AIGOV_REFRESH_TOKEN: '  ' }).load('default'), null);
  });
});

describe('openCredentialStore selection', () => {
  it('uses the recorded kind as is, without probing', async () => {
    const dir = await tempDir();
    const env = noBusEnv(dir);
    const keychain = await openCredentialStore({ kind: 'keychain', configDir: dir, env });
    assert.equal(keychain.store.kind, 'keychain', 'no probe, so no fallback even without a bus');
    assert.equal(keychain.store.location, keychainLocation());
    assert.equal(keychain.warning, null);
    const file = await openCredentialStore({ kind: 'file', configDir: dir, env });
    assert.equal(file.store.kind, 'file');
    assert.equal(file.store.location, `${join(dir, 'credentials.json')} (0600 file)`);
    assert.equal(file.warning, null);
    const envStore = await openCredentialStore({ kind: 'env', configDir: dir, env: { ...env, AIGOV_REFRESH_TOKEN: 'x' } });
    assert.equal(envStore.store.kind, 'env');
  });

  it('--insecure-storage picks the file without a warning; AIGOV_REFRESH_TOKEN picks the env store', async () => {
    const dir = await tempDir();
    const insecure = await openCredentialStore({ insecureStorage: true, configDir: dir, env: noBusEnv(dir) });
    assert.equal(insecure.store.kind, 'file');
    assert.equal(insecure.warning, null);
    const value = token();
    const ci = await openCredentialStore({ configDir: dir, env: { ...noBusEnv(dir), AIGOV_REFRESH_TOKEN: value } });
    assert.equal(ci.store.kind, 'env');
    assert.equal(ci.warning, null);
    assert.equal(await ci.store.load('default'), value);
  });

  it('falls back to the 0600 file with a clear warning when there is no D-Bus', async () => {
    const dir = await tempDir();
    const configDir = join(dir, 'cfg');
    const probe = await probeKeychain({ env: noBusEnv(dir) });
    assert.equal(probe.ok, false);

    const { store, warning } = await openCredentialStore({ configDir, env: noBusEnv(dir) });
    assert.equal(store.kind, 'file');
    const path = join(configDir, 'credentials.json');
    assert.ok(warning);
    assert.ok(warning.startsWith('no OS keychain available ('), warning);
    assert.ok(warning.endsWith(`); storing the refresh token in ${path} (0600)`), warning);
    assert.match(warning, /no-such-bus|connect/i, 'the reason says what failed');
    const value = token();
    await store.save('default', value);
    assert.equal(await store.load('default'), value);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('names a missing session bus plainly', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
    const dir = await tempDir();
    const { store, warning } = await openCredentialStore({ configDir: dir, env: { PATH: process.env.PATH, HOME: dir } });
    assert.equal(store.kind, 'file');
    assert.match(warning ?? '', /^no OS keychain available \(no D-Bus session bus \(DBUS_SESSION_BUS_ADDRESS is not set\)\); storing/);
  });

  it('gives up on a Secret Service that never answers after the probe timeout', async (t) => {
    const dir = await tempDir();
    const socket = join(dir, 'hung-bus');
    const held: Socket[] = [];
    const server: Server = createServer((connection) => { held.push(connection); }); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    t.after(() => { for (const c of held) c.destroy(); server.close(); });

    const env = { ...noBusEnv(dir), DBUS_SESSION_BUS_ADDRESS: `unix:path=${socket}` };
    const started = Date.now();
    const { store, warning } = await openCredentialStore({ configDir: dir, env, probeTimeoutMs: 1_500 });
    const elapsed = Date.now() - started;
    assert.equal(store.kind, 'file');
    assert.match(warning ?? '', /no OS keychain available \(it did not answer within 1500 ms\)/);
    assert.ok(elapsed >= 1_400 && elapsed < 6_000, `took ${elapsed} ms`);
    assert.ok(held.length > 0, 'the probe did connect to the hung bus');
  });
});

// ---------------------------------------------------------------------------------------------
// The real Secret Service (GNOME Keyring on a private D-Bus). The keychain code runs in child
// processes: the native library binds to DBUS_SESSION_BUS_ADDRESS once per process.

const CHILD_SCRIPT = `
import { createKeychainStore, openCredentialStore } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', 'src', 'auth', 'credential-stores.ts')).href)};
const [step, configDir] = process.argv.slice(2);
const { TOKEN_A: a, TOKEN_B: b } = process.env;
const out = {};
try {
  if (step === 'save') {
    const { store, warning } = await openCredentialStore({ configDir });
    Object.assign(out, { kind: store.kind, location: store.location, warning });
    await store.save('alice', a);
    await store.save('bob', b);
    out.alice = await store.load('alice') === a;
    out.bob = await store.load('bob') === b;
  } else if (step === 'remove') {
    const { store } = await openCredentialStore({ configDir, kind: 'keychain' });
    out.aliceBefore = await store.load('alice') === a;
    out.removed = await store.remove('alice');
    out.removedAgain = await store.remove('alice');
    out.aliceAfter = await store.load('alice');
    out.bob = await store.load('bob') === b;
  } else if (step === 'configurations') {
    // Two configurations of one OS user: the same profile name, two config dirs.
    const one = createKeychainStore({ configDir });
    const two = createKeychainStore({ configDir: configDir + '-other' });
    await one.save('alice', a);
    await two.save('alice', b);
    out.one = await one.load('alice') === a;
    out.two = await two.load('alice') === b;
    out.removedTwo = await two.remove('alice');
    out.oneAfter = await one.load('alice') === a;
  } else if (step === 'legacy') {
    // An entry an earlier version saved under the bare name "carol": only the standard config dir adopts it.
    out.other = await createKeychainStore({ configDir: configDir + '-other', standardConfigDir: configDir }).load('carol');
    out.adopted = await createKeychainStore({ configDir, standardConfigDir: configDir }).load('carol') === a;
    out.again = await createKeychainStore({ configDir, standardConfigDir: configDir }).load('carol') === a;
  } else if (step === 'broken') {
    const { store } = await openCredentialStore({ configDir, kind: 'keychain' });
    try { await store.save('alice', a); out.saved = true; } catch (error) { out.code = error.code; out.message = error.message; }
  }
} catch (error) {
  out.failed = { code: error.code, message: error.message };
}
process.stdout.write(JSON.stringify(out));
`;

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('keychain credential store against a real Secret Service', { skip: secretServiceSkipReason() ?? false }, () => {
  let service: SecretService;
  let script: string;
  let configDir: string;
  const [a, b] = [token(), token()];

  before(async () => {
    const started = await startSecretService();
    assert.ok(started, 'gnome-keyring-daemon is installed, so the Secret Service must start');
    service = started;
    const dir = await tempDir();
    script = join(dir, 'keychain-child.mjs');
    configDir = join(dir, 'config');
    await writeFile(script, CHILD_SCRIPT);
  });
  after(async () => { await service?.stop(); });

  const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, ...service.env, TOKEN_A: a, TOKEN_B: b, ...extra });
  const step = async (name: string, extra?: Record<string, string>): Promise<Record<string, unknown>> => {
    const result = await run(process.execPath, [script, name, configDir], childEnv(extra));
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  };
  const secretTool = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    run(findExecutable('secret-tool') ?? 'secret-tool', args, { ...process.env, ...service.env });

  const account = (profile: string, dir = configDir): string => keychainAccount(dir, profile).account;

  it('probes, saves two profiles in the Secret Service (not in a file), and they are isolated', async () => {
    assert.deepEqual(await probeKeychain({ env: { ...process.env, ...service.env } }), { ok: true });
    const saved = await step('save');
    assert.deepEqual(saved, { kind: 'keychain', location: 'OS keychain (Secret Service)', warning: null, alice: true, bob: true });

    // secret-tool (libsecret) reads the Secret Service directly: the tokens are really there.
    assert.equal((await secretTool('lookup', 'service', 'aigov', 'username', account('alice'))).stdout, a);
    assert.equal((await secretTool('lookup', 'service', 'aigov', 'username', account('bob'))).stdout, b);
    const search = await secretTool('search', '--all', 'service', 'aigov');
    assert.equal(search.code, 0, search.stderr);
    const listing = search.stdout + search.stderr; // secret-tool prints the attributes on stderr
    assert.match(listing, new RegExp(`attribute\\.username = ${account('alice')}\n`));
    assert.match(listing, new RegExp(`attribute\\.username = ${account('bob')}\n`));
    assert.match(listing, /attribute\.service = aigov\n/);
    const probes = await secretTool('search', '--all', 'service', 'aigov-probe');
    assert.doesNotMatch(probes.stdout + probes.stderr, /attribute\.username/, 'the probe entry was deleted');
    await assert.rejects(stat(join(configDir, 'credentials.json')), { code: 'ENOENT' }, 'no file fallback');
  });

  it('loads and removes in a new process, leaving the other profile alone', async () => {
    const removed = await step('remove');
    assert.deepEqual(removed, { aliceBefore: true, removed: true, removedAgain: false, aliceAfter: null, bob: true });
    const gone = await secretTool('lookup', 'service', 'aigov', 'username', account('alice'));
    assert.notEqual(gone.code, 0);
    assert.equal(gone.stdout, '');
    assert.equal((await secretTool('lookup', 'service', 'aigov', 'username', account('bob'))).stdout, b);
  });

  it('two configurations of one OS user keep separate entries for the same profile name', async () => {
    assert.deepEqual(await step('configurations'), { one: true, two: true, removedTwo: true, oneAfter: true });
    assert.notEqual(account('alice'), account('alice', `${configDir}-other`));
  });

  it('an entry saved under the bare profile name is adopted by the standard config dir only, and moved', async () => {
    const stored = await new Promise<number>((resolve) => {
      const child = execFile(findExecutable('secret-tool') ?? 'secret-tool', ['store', '--label=aigov carol', 'service', 'aigov', 'username', 'carol'], { env: { ...process.env, ...service.env } }, (error) => resolve(error ? 1 : 0));
      child.stdin?.end(a);
    });
    assert.equal(stored, 0);
    assert.deepEqual(await step('legacy'), { other: null, adopted: true, again: true });
    assert.notEqual((await secretTool('lookup', 'service', 'aigov', 'username', 'carol')).code, 0, 'the bare entry is gone');
    assert.equal((await secretTool('lookup', 'service', 'aigov', 'username', account('carol'))).stdout, a);
  });

  it('maps an unreachable keychain to AIGOV_E_KEYCHAIN_UNAVAILABLE without the token', async () => {
    const broken = await step('broken', { DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(configDir, 'no-such-bus')}` });
    assert.equal(broken.code, 'AIGOV_E_KEYCHAIN_UNAVAILABLE');
    assert.equal(typeof broken.message, 'string');
    assert.match(broken.message as string, /^The OS keychain is not available: .+\.$/);
    assert.ok(!(broken.message as string).includes(a));
  });
});
