/**
 * One daemon per configuration (config dir and profile), as a confused user or a hostile process
 * of the same OS user would meet it: two configurations of one uid (two config dirs, two HOMEs)
 * sharing one runtime dir, each logged in to its own dev gateway (embedded oidc-provider, SQLite,
 * dev model) through the real device flow; their daemons run side by side, a login in one leaves
 * the other's alone, each `aigov run` goes to its own gateway; a daemon on a configuration's socket
 * that answers for another configuration is refused and never stopped, and this configuration's
 * own daemon still serving an earlier login is restarted by `aigov run`. The last group drives the
 * BUILT CLI as processes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { createFileStore } from '../src/auth/credential-stores.ts';
import { login, logout, readStatus } from '../src/auth/login-service.ts';
import { createTokenRefresher } from '../src/auth/token-refresher.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import { canonicalDir } from '../src/config/paths.ts';
import { readProfileLogin, type ProfileLogin } from '../src/config/profile-login.ts';
import { AigovError } from '../src/core/errors.ts';
import { daemonFiles, MAX_SOCKET_PATH_BYTES } from '../src/daemon/control-protocol.ts';
import { createControlServer } from '../src/daemon/control-transport.ts';
import { connectDaemon, inspectDaemon, stopDaemon, type DaemonClient } from '../src/daemon/daemon-client.ts';
import { daemonFit, describeDaemon, type ExpectedDaemon } from '../src/daemon/daemon-identity.ts';
import { startDaemonRuntime, type RunningDaemon } from '../src/daemon/daemon-main.ts';
import { ensureRuntimeDir } from '../src/daemon/runtime-files.ts';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { DISCOVERY_PATH, DiscoverySchema, type Discovery } from '../src/protocol/discovery.ts';
import { isBuilt, loginWithDeviceCode, runCli, type CliResult } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';

const SCRIPTS = join(import.meta.dirname, 'fixtures', 'scripts');
const BUILT = isBuilt('commands/run.js', 'commands/login.js', 'cli/fast-run.js');

let root: string;
let gatewayOne: RunningDevGateway;
let gatewayTwo: RunningDevGateway;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'aigov-confs-'));
  [gatewayOne, gatewayTwo] = await Promise.all([
    startDevGateway({ version: 'test', port: 0, stateDir: join(root, 'gateway-one'), logLevel: 'silent' }),
    startDevGateway({ version: 'test', port: 0, stateDir: join(root, 'gateway-two'), logLevel: 'silent' }),
  ]);
});

after(async () => {
  await Promise.all([gatewayOne.close(), gatewayTwo.close()]);
  await rm(root, { recursive: true, force: true });
});

async function discoveryOf(gateway: RunningDevGateway): Promise<Discovery> {
  return DiscoverySchema.parse(await (await fetch(`${gateway.url}${DISCOVERY_PATH}`)).json());
}

const USERS = {
  alice: { subject: 'alice', email: 'alice@aigov.dev', groups: ['developers'] },
  bob: { subject: 'bob', email: 'bob@aigov.dev', groups: ['approvers'] },
  carol: { subject: 'carol', email: 'carol@aigov.dev', groups: ['auditors'] },
} as const;

interface Signed {
  readonly gateway: RunningDevGateway;
  readonly discovery: Discovery;
  readonly user: keyof typeof USERS;
  readonly loggedInAt: number;
}

/** What `aigov login` leaves behind, done through the real device flow: the refresh token in the config dir's file store, the profile in its settings. */
async function signIn(configDir: string, profile: string, gateway: RunningDevGateway, user: keyof typeof USERS, loggedInAt = Date.now()): Promise<Signed> {
  const discovery = await discoveryOf(gateway);
  const { refreshToken } = await deviceLogin(gateway.idp, discovery.cli_client_id, user, { resource: discovery.resource });
  await createFileStore({ configDir }).save(profile, refreshToken);
  openCliSettings(configDir).setProfile(profile, { gatewayUrl: gateway.url, discovery, credentialStore: 'file', user: { ...USERS[user], groups: [...USERS[user].groups] }, loggedInAt });
  return { gateway, discovery, user, loggedInAt };
}

/** `aigov login` (the service, file storage) of the configuration in `configDir` to `gateway`, approved as `user`. */
function loginAs(configDir: string, runtimeDir: string, gateway: RunningDevGateway, user: string): ReturnType<typeof login> {
  return login({
    profile: 'default',
    gatewayUrl: gateway.url,
    insecureStorage: true,
    configDir,
    runtimeDir,
    env: {},
    stderr: { write: () => true, isTTY: false },
    interactive: false,
    pollIntervalSeconds: 0.05,
    onPrompt: (prompt) => void gateway.idp.approveDevice(prompt.userCode, user),
  });
}

/** A daemon in this process serving `signed` for the configuration, with the real refresher over its file store. */
async function startInProcess(configDir: string, runtimeDir: string, profile: string, signed: Signed): Promise<RunningDaemon & { hasStopped(): boolean }> {
  const store = createFileStore({ configDir });
  const refreshToken = await store.load(profile);
  assert.ok(refreshToken);
  const { discovery } = signed;
  const tokenSource = createTokenRefresher({ issuer: discovery.issuer, clientId: discovery.cli_client_id, profile, store, initialRefreshToken: refreshToken, resource: discovery.resource });
  const daemon = await startDaemonRuntime({
    profile,
    configDir,
    runtimeDir,
    gatewayUrl: signed.gateway.url,
    discovery,
    tokenSource,
    user: USERS[signed.user],
    loggedInAt: signed.loggedInAt,
    version: 'test',
  });
  let stopped = false;
  void daemon.stopped.then(() => (stopped = true));
  return Object.assign(daemon, { hasStopped: () => stopped });
}

/** Whether the daemon stops within `ms` (an in-process daemon's stop drains after its socket is gone). */
function stopsWithin(daemon: RunningDaemon, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([daemon.stopped.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]).finally(() => clearTimeout(timer));
}

/** One chat call under a run minted at `client`'s daemon; resolves with who the gateway recorded, and where. */
async function callThrough(client: DaemonClient): Promise<{ sessionId: string; one: string[]; two: string[] }> {
  const grant = await client.mintRun('node agent.mjs');
  try {
    const openai = new OpenAI({ baseURL: `${grant.baseUrl}/openai/v1`, apiKey: grant.runKey, maxRetries: 0 });
    await openai.chat.completions.create({ model: 'aigov-dev', messages: [{ role: 'user', content: 'which gateway am I on?' }] });
  } finally {
    await client.revokeRun(grant.runKey);
  }
  return { sessionId: grant.sessionId, ...(await recordedAt(grant.sessionId)) };
}

/** The subjects each gateway recorded for a session. */
async function recordedAt(sessionId: string): Promise<{ one: string[]; two: string[] }> {
  await Promise.all([gatewayOne.store.flush(), gatewayTwo.store.flush()]);
  const [one, two] = await Promise.all([gatewayOne.store.listCalls(sessionId), gatewayTwo.store.listCalls(sessionId)]);
  return { one: one.map((c) => c.principal.subject), two: two.map((c) => c.principal.subject) };
}

/** This process's environment without AIGOV_* (a started daemon must see only what a test gives it). */
function withoutAigovVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AIGOV_')));
}

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof AigovError, `expected ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe('daemon files are named for the configuration', () => {
  it('one socket per config dir and profile: the same configuration always finds the same one, any other another', () => {
    const a = daemonFiles('/run/user/1000/aigov', '/home/a/.config/aigov', 'default');
    assert.deepEqual(daemonFiles('/run/user/1000/aigov', '/home/a/.config/aigov', 'default'), a);
    assert.match(a.socket, /^\/run\/user\/1000\/aigov\/daemon-default-[0-9a-f]{12}\.sock$/);
    assert.equal(a.pidFile, a.socket.replace(/\.sock$/, '.json'));
    assert.equal(a.logFile, a.socket.replace(/\.sock$/, '.log'));
    const others = [
      daemonFiles('/run/user/1000/aigov', '/home/b/.config/aigov', 'default'), // another HOME
      daemonFiles('/run/user/1000/aigov', '/home/a/.config/aigov', 'work'), // another profile
      daemonFiles('/run/user/1000/aigov', '/home/a/.config/aigov-', 'default'),
      daemonFiles('/run/user/1000/aigov', '/home/a/.config', 'aigov'),
    ];
    const sockets = new Set([a.socket, ...others.map((f) => f.socket)]);
    assert.equal(sockets.size, 1 + others.length);
    // Profile names stay a safe alphabet: nothing can walk out of the runtime dir.
    for (const bad of ['../x', 'a/b', '', '.hidden', 'x'.repeat(65)]) assert.throws(() => daemonFiles('/tmp/r', '/c', bad), /invalid profile name/);
  });

  it('two spellings of one config dir (a symlinked HOME, a trailing slash, ..) name one daemon, also before the dir exists', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-canon-'));
    try {
      mkdirSync(join(dir, 'real-home', '.config', 'aigov'), { recursive: true });
      symlinkSync(join(dir, 'real-home'), join(dir, 'home'));
      const real = canonicalDir(join(dir, 'real-home', '.config', 'aigov'));
      for (const spelling of [join(dir, 'home', '.config', 'aigov'), `${join(dir, 'home', '.config', 'aigov')}/`, join(dir, 'home', 'x', '..', '.config', 'aigov')]) {
        assert.equal(canonicalDir(spelling), real, spelling);
      }
      // Not created yet (a CI login: the daemon creates it): still one spelling through the symlink.
      assert.equal(canonicalDir(join(dir, 'home', '.config', 'aigov-ci', 'x')), join(canonicalDir(join(dir, 'real-home')), '.config', 'aigov-ci', 'x'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the longest profile fits a socket path under a long temp dir; a runtime dir too long is refused with what to do', async () => {
    const longTemp = `/var/folders/zz/${'y'.repeat(28)}/T/aigov-501`; // a macOS-like $TMPDIR/aigov-<uid>
    assert.ok(Buffer.byteLength(daemonFiles(longTemp, '/Users/someone/.config/aigov', 'p'.repeat(64)).socket) <= 103);
    const runtimeDir = join(root, 'r'.repeat(MAX_SOCKET_PATH_BYTES));
    await assert.rejects(connectDaemon('default', { start: true, runtimeDir, configDir: join(root, 'nowhere') }), (error: unknown) => {
      assert.ok(error instanceof AigovError && error.code === 'AIGOV_E_DAEMON_UNAVAILABLE', String(error));
      assert.match(error.message, /more than the \d+ a unix socket path may have; set AIGOV_RUNTIME_DIR to a shorter directory/);
      return true;
    });
  });
});

describe('which daemon a CLI may use (daemonFit)', () => {
  const login: ProfileLogin = { gateway: 'https://gw.example', subject: 'alice', loggedInAt: 1_700_000_000_000 };
  const expected: ExpectedDaemon = { configDir: '/home/a/.config/aigov', profile: 'default', login };
  const serving = (change: Partial<Record<'configDir' | 'profile' | 'gateway' | 'subject' | 'loggedInAt', unknown>> = {}): Parameters<typeof daemonFit>[0] => {
    const merged = { configDir: expected.configDir, profile: expected.profile, gateway: login.gateway, subject: login.subject, loggedInAt: login.loggedInAt, ...change };
    return { configDir: merged.configDir, profile: merged.profile as string, gateway: merged.gateway as string, user: { subject: merged.subject }, loggedInAt: merged.loggedInAt };
  };
  const table: [string, Parameters<typeof daemonFit>[0], ExpectedDaemon, string][] = [
    ['its configuration and current login', serving(), expected, 'same'],
    ['another config dir (another HOME)', serving({ configDir: '/home/b/.config/aigov' }), expected, 'other-configuration'],
    ['another profile', serving({ profile: 'work' }), expected, 'other-configuration'],
    ['a config dir spelled with a trailing slash (not canonical: not ours)', serving({ configDir: '/home/a/.config/aigov/' }), expected, 'other-configuration'],
    ['no config dir at all (an older or foreign daemon)', serving({ configDir: undefined }), expected, 'other-configuration'],
    ['a config dir that is not a string', serving({ configDir: ['/home/a/.config/aigov'] }), expected, 'other-configuration'],
    ['another gateway (re-login elsewhere)', serving({ gateway: 'https://other.example' }), expected, 'stale-login'],
    ['the gateway with a trailing slash', serving({ gateway: 'https://gw.example/' }), expected, 'stale-login'],
    ['another user', serving({ subject: 'bob' }), expected, 'stale-login'],
    ['no user where one is expected', serving({ subject: undefined }), expected, 'stale-login'],
    ['the same user, an earlier login', serving({ loggedInAt: login.loggedInAt! - 1 }), expected, 'stale-login'],
    ['a login time that is not a number', serving({ loggedInAt: String(login.loggedInAt) }), expected, 'stale-login'],
    ['the profile is logged out', serving(), { ...expected, login: null }, 'stale-login'],
    ['a CI login (no user, no time) that matches', serving({ subject: undefined, loggedInAt: null }), { ...expected, login: { gateway: login.gateway, subject: null, loggedInAt: null } }, 'same'],
  ];
  for (const [name, status, want, fit] of table) {
    it(`${name} → ${fit}`, () => assert.equal(daemonFit(status, want), fit));
  }

  it('describes what a daemon serves without its email, and survives a nonsense login time', () => {
    const text = describeDaemon({ ...serving(), user: { subject: 'alice', email: 'alice@example.com' } as never });
    assert.equal(text, 'profile default of /home/a/.config/aigov, gateway https://gw.example as user alice (logged in 2023-11-14T22:13:20.000Z)');
    assert.match(describeDaemon(serving({ loggedInAt: 1e300 })), /logged in at 1e\+300/);
  });
});

describe('the profile login aigov run compares with (readProfileLogin, no zod)', () => {
  it('reads gateway, subject and login time; treats a missing or malformed profile as not logged in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-plogin-'));
    try {
      const discovery = await discoveryOf(gatewayOne);
      assert.equal(readProfileLogin(dir, 'default'), null, 'no settings file');
      const settings = openCliSettings(dir);
      settings.setProfile('default', { gatewayUrl: gatewayOne.url, discovery, credentialStore: 'file', user: { ...USERS.bob, groups: ['approvers'] }, loggedInAt: 42 });
      settings.setProfile('ci', { gatewayUrl: gatewayOne.url, discovery, credentialStore: 'env', user: null, loggedInAt: null });
      assert.deepEqual(readProfileLogin(dir, 'default'), { gateway: gatewayOne.url, subject: 'bob', loggedInAt: 42 });
      assert.deepEqual(readProfileLogin(dir, 'ci'), { gateway: gatewayOne.url, subject: null, loggedInAt: null });
      // Names that are properties of every object are not profiles.
      for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) assert.equal(readProfileLogin(dir, name), null, name);
      const { writeFileSync } = await import('node:fs');
      const write = (value: unknown): void => writeFileSync(join(dir, 'settings.json'), typeof value === 'string' ? value : JSON.stringify(value));
      for (const [what, value] of [
        ['not JSON', '{"profiles":'],
        ['profiles not an object', { profiles: ['default'] }],
        ['no gateway', { profiles: { default: { user: null } } }],
        ['an empty gateway', { profiles: { default: { gatewayUrl: '' } } }],
        ['a gateway that is not a string', { profiles: { default: { gatewayUrl: { href: 'x' } } } }],
        ['a user without a subject', { profiles: { default: { gatewayUrl: 'https://gw', user: { email: 'x' } } } }],
        ['a login time that is a string', { profiles: { default: { gatewayUrl: 'https://gw', user: null, loggedInAt: '42' } } }],
      ] as const) {
        write(value);
        assert.equal(readProfileLogin(dir, 'default'), null, what);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('two configurations of one OS user, one runtime dir', () => {
  let runtimeDir: string;
  let configA: string;
  let configB: string;

  before(() => {
    runtimeDir = join(root, 'shared-run');
    configA = join(root, 'home-a', '.config', 'aigov');
    configB = join(root, 'home-b', 'xdg', 'aigov');
  });

  it('their daemons run side by side, each serving its own gateway and user; each run is recorded at its own gateway', async () => {
    const [signedA, signedB] = await Promise.all([signIn(configA, 'default', gatewayOne, 'alice'), signIn(configB, 'default', gatewayTwo, 'bob')]);
    const daemonA = await startInProcess(configA, runtimeDir, 'default', signedA);
    const daemonB = await startInProcess(configB, runtimeDir, 'default', signedB);
    try {
      assert.notEqual(daemonA.control.files.socket, daemonB.control.files.socket);
      const a = await connectDaemon('default', { start: false, runtimeDir, configDir: configA, env: {} });
      const b = await connectDaemon('default', { start: false, runtimeDir, configDir: configB, env: {} });
      const [statusA, statusB] = [await a.status(), await b.status()];
      assert.deepEqual([statusA.gateway, statusA.user?.subject, statusA.configDir], [gatewayOne.url, 'alice', canonicalDir(configA)]);
      assert.deepEqual([statusB.gateway, statusB.user?.subject, statusB.configDir], [gatewayTwo.url, 'bob', canonicalDir(configB)]);

      const viaA = await callThrough(a);
      assert.deepEqual([viaA.one, viaA.two], [['alice'], []], 'A: recorded at gateway one as alice, nothing at gateway two');
      const viaB = await callThrough(b);
      assert.deepEqual([viaB.one, viaB.two], [[], ['bob']], 'B: recorded at gateway two as bob, nothing at gateway one');

      // `aigov daemon stop` in A stops A's daemon only.
      assert.equal(await stopDaemon('default', { runtimeDir, configDir: configA, env: {} }), 'stopped');
      assert.equal(await stopsWithin(daemonA, 5000), true);
      assert.equal(daemonB.hasStopped(), false);
      assert.deepEqual((await callThrough(b)).two, ['bob'], "B's daemon still serves B");
    } finally {
      await Promise.all([daemonA.stop(), daemonB.stop()]);
    }
  });

  it("a login in one configuration stops its own daemon and leaves the other's running", async () => {
    const [signedA, signedB] = await Promise.all([signIn(configA, 'default', gatewayOne, 'alice'), signIn(configB, 'default', gatewayTwo, 'bob')]);
    const daemonA = await startInProcess(configA, runtimeDir, 'default', signedA);
    const daemonB = await startInProcess(configB, runtimeDir, 'default', signedB);
    try {
      const result = await loginAs(configA, runtimeDir, gatewayOne, 'carol');
      assert.equal(result.user.subject, 'carol');
      assert.equal(await stopsWithin(daemonA, 5000), true, "A's login stopped A's daemon (it held alice's tokens)");
      assert.equal(daemonB.hasStopped(), false, "A's login left B's daemon alone");
      const b = await connectDaemon('default', { start: false, runtimeDir, configDir: configB, env: {} });
      assert.deepEqual((await callThrough(b)).two, ['bob']);
      // Logging out of A does not touch B either.
      assert.equal((await logout({ profile: 'default', configDir: configA, runtimeDir, env: {} })).daemonStopped, false);
      assert.equal(daemonB.hasStopped(), false);
    } finally {
      await Promise.all([daemonA.stop(), daemonB.stop()]);
    }
  });
});

describe("a daemon on this configuration's socket that answers for another one", () => {
  let runtimeDir: string;
  let configA: string;
  let server: net.Server;
  let ops: string[];
  let answer: Record<string, unknown>;

  before(async () => {
    runtimeDir = join(root, 'impostor-run');
    configA = join(root, 'impostor-home-a', '.config', 'aigov');
    await signIn(configA, 'default', gatewayOne, 'alice');
    // A process of the same OS user listens where A's daemon would, answering as B's daemon
    // (another config dir, gateway two, bob): it must get nothing but status questions.
    ensureRuntimeDir(runtimeDir);
    const files = daemonFiles(runtimeDir, canonicalDir(configA), 'default');
    ops = [];
    server = createControlServer(async (request) => {
      ops.push(String((request as { op?: unknown }).op));
      return { reply: answer };
    }, () => undefined);
    await new Promise<void>((resolve) => server.listen(files.socket, resolve));
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const asB = (): Record<string, unknown> => ({
    ok: true, pid: 4242, port: 1, profile: 'default', configDir: '/home/b/.config/aigov', gateway: gatewayTwo.url,
    user: { subject: 'bob', email: 'bob@aigov.dev', groups: [] }, loggedInAt: 1, runs: [], startedAt: 1, version: 'x', tokenExpiresAt: null,
  });

  it('is refused with what it serves, what was expected and what to do; it is asked nothing but its status', async () => {
    answer = asB();
    ops.length = 0;
    for (const start of [true, false]) {
      await assert.rejects(connectDaemon('default', { start, runtimeDir, configDir: configA, env: {} }), (error: unknown) => {
        isCode('AIGOV_E_DAEMON_OTHER_CONFIG')(error);
        const { message, hint } = error as AigovError;
        assert.ok(message.includes(daemonFiles(runtimeDir, canonicalDir(configA), 'default').socket), message);
        assert.ok(message.includes(`(pid 4242) serves another configuration: profile default of /home/b/.config/aigov, gateway ${gatewayTwo.url} as user bob`), message);
        assert.ok(message.includes(`This command is for profile default of ${canonicalDir(configA)}, gateway ${gatewayOne.url} as user alice`), message);
        assert.match(message, /did not use that daemon and left it running/);
        assert.match(hint, /AIGOV_CONFIG_DIR.*AIGOV_RUNTIME_DIR/);
        assert.equal(message.includes('bob@aigov.dev'), false, 'no email in the message');
        return true;
      });
    }
    assert.deepEqual(ops, ['status', 'status']);
  });

  it('is never stopped: not by `aigov daemon stop`, not by a login or logout of this configuration', async () => {
    answer = asB();
    ops.length = 0;
    await assert.rejects(stopDaemon('default', { runtimeDir, configDir: configA, env: {} }), isCode('AIGOV_E_DAEMON_OTHER_CONFIG'));
    await loginAs(configA, runtimeDir, gatewayOne, 'alice');
    const out = await logout({ profile: 'default', configDir: configA, runtimeDir, env: {} });
    assert.equal(out.daemonStopped, false);
    assert.ok(ops.length >= 3 && ops.every((op) => op === 'status'), `ops: ${ops.join(',')}`);
    const report = await readStatus({ profile: 'default', configDir: configA, runtimeDir, env: {} });
    assert.equal(report.daemon?.running, false, "`aigov status` does not show another configuration's daemon as this one's");
  });

  it('one that does not say which configuration it serves (an older or foreign daemon) is refused too', async () => {
    const { configDir: _dropped, ...rest } = asB();
    answer = { ...rest, gateway: gatewayOne.url, user: { subject: 'alice', email: null, groups: [] } };
    ops.length = 0;
    await assert.rejects(connectDaemon('default', { start: true, runtimeDir, configDir: configA, env: {} }), (error: unknown) => {
      isCode('AIGOV_E_DAEMON_OTHER_CONFIG')(error);
      assert.match((error as AigovError).message, /a config dir it does not name/);
      return true;
    });
    const seen = await inspectDaemon('default', { runtimeDir, configDir: configA, env: {} });
    assert.equal(seen.state === 'running' && seen.fit, 'other-configuration');
    assert.deepEqual(ops, ['status', 'status']);
  });
});

describe("this configuration's daemon still serving an earlier login", () => {
  it('is reported by commands that only look, and restarted by those that start it: the next run goes to the new gateway as the new user', async () => {
    const runtimeDir = join(root, 'stale-run');
    const configDir = join(root, 'stale-home', '.config', 'aigov');
    const env = { ...withoutAigovVariables(), AIGOV_CONFIG_DIR: configDir };
    const old = await signIn(configDir, 'default', gatewayOne, 'alice', Date.parse('2026-11-01T08:00:00Z'));
    const daemon = await startInProcess(configDir, runtimeDir, 'default', old);
    try {
      // Then a login to gateway two as bob, from a shell whose runtime dir differed: it could not stop this daemon.
      await signIn(configDir, 'default', gatewayTwo, 'bob', Date.parse('2026-11-02T08:00:00Z'));

      await assert.rejects(connectDaemon('default', { start: false, runtimeDir, env }), (error: unknown) => {
        isCode('AIGOV_E_DAEMON_STALE')(error);
        assert.equal(
          (error as AigovError).message,
          `The aigov daemon of profile \`default\` (pid ${process.pid}) serves gateway ${gatewayOne.url} as user alice (logged in 2026-11-01T08:00:00.000Z), ` +
            `but the profile is now gateway ${gatewayTwo.url} as user bob (logged in 2026-11-02T08:00:00.000Z); it was not used.`,
        );
        return true;
      });
      const report = await readStatus({ profile: 'default', configDir, runtimeDir, env: {} });
      assert.deepEqual([report.daemon?.running, report.daemon?.currentLogin], [true, false]);
      assert.equal(daemon.hasStopped(), false, 'looking does not stop it');

      const notices: string[] = [];
      const client = await connectDaemon('default', { start: true, runtimeDir, env, onNotice: (line) => notices.push(line) });
      assert.equal(await stopsWithin(daemon, 5000), true, 'the stale daemon was stopped');
      assert.equal(client.started, true);
      assert.deepEqual(notices, [
        `restarting the daemon of profile default (pid ${process.pid}): it served gateway ${gatewayOne.url} as user alice (logged in 2026-11-01T08:00:00.000Z), ` +
          `the profile now has gateway ${gatewayTwo.url} as user bob (logged in 2026-11-02T08:00:00.000Z)`,
      ]);
      const status = await client.status();
      assert.notEqual(status.pid, process.pid, 'a daemon process of its own');
      assert.deepEqual([status.gateway, status.user?.subject], [gatewayTwo.url, 'bob']);
      const via = await callThrough(client);
      assert.deepEqual([via.one, via.two], [[], ['bob']]);
      const again = await connectDaemon('default', { start: true, runtimeDir, env, onNotice: (line) => notices.push(line) });
      assert.equal(again.started, false, 'the fresh daemon fits: used as it is');
      assert.equal(notices.length, 1);
    } finally {
      await daemon.stop();
      await stopDaemon('default', { runtimeDir, env }).catch(() => undefined);
    }
  });
});

describe('the built CLI: two HOMEs of one user, one runtime dir', { skip: BUILT ? false : 'run `npm run build` first', timeout: 120_000 }, () => {
  let envA: NodeJS.ProcessEnv;
  let envB: NodeJS.ProcessEnv;

  before(() => {
    const shared = join(root, 'xdg-run'); // both shells have the same XDG_RUNTIME_DIR, as on one desktop session
    mkdirSync(shared, { mode: 0o700 });
    const base = { PATH: process.env.PATH, XDG_RUNTIME_DIR: shared, AIGOV_DEVICE_POLL_INTERVAL: '1' };
    envA = { ...base, HOME: join(root, 'cli-home-a') }; // config dir ~/.config/aigov
    envB = { ...base, HOME: join(root, 'cli-home-b'), XDG_CONFIG_HOME: join(root, 'cli-home-b', 'xdg') }; // $XDG_CONFIG_HOME/aigov
  });
  after(async () => {
    await Promise.all([runCli(['daemon', 'stop'], { env: envA }), runCli(['daemon', 'stop'], { env: envB })]);
  });

  const run = (env: NodeJS.ProcessEnv): Promise<CliResult> => runCli(['run', '--', process.execPath, join(SCRIPTS, 'openai-chat.mjs')], { env, forbidTokens: true });
  const sessionOf = (result: CliResult): string => {
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
    return String((JSON.parse(line ?? '{}') as { session?: unknown }).session);
  };
  const daemonPid = async (env: NodeJS.ProcessEnv): Promise<number | null> => {
    const result = await runCli(['daemon', 'status', '--json'], { env });
    return (JSON.parse(result.stdout) as { status: { pid: number } | null }).status?.pid ?? null;
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('each logs in to its own gateway; both daemons run; each run is recorded at its own gateway; a login in one leaves the other alone', async () => {
    const [inA, inB] = await Promise.all([loginWithDeviceCode(gatewayOne, 'alice', { env: envA }), loginWithDeviceCode(gatewayTwo, 'bob', { env: envB })]);
    assert.equal(inA.code, 0, inA.stderr);
    assert.equal(inB.code, 0, inB.stderr);

    assert.deepEqual(await recordedAt(sessionOf(await run(envA))), { one: ['alice', 'alice'], two: [] });
    assert.deepEqual(await recordedAt(sessionOf(await run(envB))), { one: [], two: ['bob', 'bob'] });
    const [pidA, pidB] = [await daemonPid(envA), await daemonPid(envB)];
    assert.ok(pidA !== null && pidB !== null && pidA !== pidB && alive(pidA) && alive(pidB), `daemons ${pidA} and ${pidB}`);

    // A logs in again, as carol: A's daemon goes (it held alice's tokens), B's stays.
    const again = await loginWithDeviceCode(gatewayOne, 'carol', { env: envA });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(alive(pidA), false, "A's login stopped A's daemon");
    assert.equal(alive(pidB), true, "A's login left B's daemon running");
    const runB = await run(envB);
    assert.deepEqual(await recordedAt(sessionOf(runB)), { one: [], two: ['bob', 'bob'] });
    assert.equal(await daemonPid(envB), pidB, "B's run used B's daemon, the same process");
    assert.deepEqual(await recordedAt(sessionOf(await run(envA))), { one: ['carol', 'carol'], two: [] });
  });

  it("a login from a shell with another runtime dir cannot stop the daemon; the next run restarts it for the new login and says so", async () => {
    const pidA = await daemonPid(envA);
    assert.ok(pidA !== null && alive(pidA));
    const elsewhere = join(root, 'xdg-run-other');
    mkdirSync(elsewhere, { mode: 0o700 });
    const relogin = await loginWithDeviceCode(gatewayTwo, 'alice', { env: { ...envA, XDG_RUNTIME_DIR: elsewhere } });
    assert.equal(relogin.code, 0, relogin.stderr);
    assert.equal(alive(pidA), true, 'that login could not see the daemon');
    const status = await runCli(['status'], { env: envA });
    assert.match(status.stdout, /serves an earlier login; the next `aigov run` restarts it/);

    const result = await run(envA);
    assert.match(result.stderr, new RegExp(`^aigov: restarting the daemon of profile default \\(pid ${pidA}\\): it served gateway ${gatewayOne.url.replace(/[.]/g, '\\.')} as user carol .*the profile now has gateway ${gatewayTwo.url.replace(/[.]/g, '\\.')} as user alice`, 'm'));
    assert.deepEqual(await recordedAt(sessionOf(result)), { one: [], two: ['alice', 'alice'] });
    assert.equal(alive(pidA), false);
  });
});
