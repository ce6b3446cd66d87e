/**
 * `aigov login / logout / status / whoami` against the real dev gateway (embedded oidc-provider)
 * over real sockets, with the file credential store and the settings in temp dirs. The service
 * functions are called directly; the last group spawns the BUILT CLI as a user would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { openCredentialStore } from '../src/auth/credential-stores.ts';
import {
  formatStatus,
  login,
  loginSummary,
  logout,
  logoutSummary,
  readStatus,
  whoamiLine,
  type LoginOptions,
} from '../src/auth/login-service.ts';
import type { DevicePrompt } from '../src/auth/oidc-client.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { OAuthResponseError, refresh } from './support/dev-login.ts';
import { rejection } from './support/aigov-assert.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'run.js');
const BUILT = existsSync(join(ROOT, 'dist', 'commands', 'login.js')) && existsSync(join(ROOT, 'oclif.manifest.json'));

let home: string;
let gateway: RunningDevGateway;
let configDir: string;
let runtimeDir: string;

class Capture {
  text = '';
  readonly isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** A login whose device code is decided by `decide` (approve/deny/expire) shortly after it is shown. */
async function loginWith(
  decide: (prompt: DevicePrompt) => Promise<unknown>,
  overrides: Partial<LoginOptions> = {},
): Promise<{ stderr: Capture; result: Awaited<ReturnType<typeof login>> }> {
  const stderr = new Capture();
  let decision: Promise<unknown> = Promise.resolve();
  const result = await login({
    profile: 'default',
    gatewayUrl: gateway.url,
    insecureStorage: true,
    configDir,
    runtimeDir,
    env: {},
    stderr,
    interactive: false,
    pollIntervalSeconds: 0.05,
    // Decide after a few polls have seen authorization_pending, as with a real user.
    onPrompt: (prompt) => {
      decision = new Promise((resolve) => setTimeout(resolve, 150)).then(() => decide(prompt));
    },
    openBrowser: () => assert.fail('no browser may be opened when not interactive'),
    ...overrides,
  }).finally(() => decision);
  return { stderr, result };
}

const approveAs = (user: string) => (prompt: DevicePrompt) => gateway.idp.approveDevice(prompt.userCode, user);

async function storedToken(profile: string): Promise<string | null> {
  const { store } = await openCredentialStore({ kind: 'file', configDir, env: {} });
  return store.load(profile);
}

/** Every file under the config dir except the credential file: none may contain the token. */
async function nonSecretFiles(): Promise<string[]> {
  const names = await readdir(configDir, { recursive: true, withFileTypes: true });
  return names
    .filter((d) => d.isFile() && !d.name.startsWith('credentials'))
    .map((d) => readFileSync(join(d.parentPath, d.name), 'utf8'));
}

/** A loopback URL where nothing listens (a port just freed). */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'aigov-login-'));
  configDir = join(home, 'config');
  runtimeDir = join(home, 'run');
  gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent' });
});

after(async () => {
  await gateway.close();
  await rm(home, { recursive: true, force: true });
});

describe('aigov login (service)', () => {
  it('logs in with the device code: refresh token in the file store, profile saved, no token in settings or output', async () => {
    const { stderr, result } = await loginWith(approveAs('alice'));
    assert.equal(result.user.subject, 'alice');
    assert.equal(result.user.email, 'alice@aigov.dev');
    assert.deepEqual(result.user.groups, ['developers']);
    assert.equal(result.credentials.kind, 'file');
    assert.match(loginSummary(result), /^Logged in to http:\/\/127\.0\.0\.1:\d+ as alice@aigov\.dev \(groups developers\)\. Credentials: .+\.$/);

    // The prompt: URL (complete form) and the code on a line of its own, on stderr.
    assert.match(stderr.text, /open this URL in a browser:\n {2}http:\/\/127\.0\.0\.1:\d+\/oidc\/device\?user_code=/);
    assert.match(stderr.text, /\n {2}[A-Z]{4}-[A-Z]{4}\n/);
    assert.match(stderr.text, /The code expires in 10 minutes/);

    const token = await storedToken('default');
    assert.ok(token && token.length > 20, 'a refresh token is stored');
    const settings = openCliSettings(configDir).getProfile('default');
    assert.ok(settings);
    assert.equal(settings.gatewayUrl, gateway.url);
    assert.equal(settings.credentialStore, 'file');
    assert.equal(settings.discovery.issuer, `${gateway.url}/oidc`);
    assert.deepEqual(settings.user, { subject: 'alice', email: 'alice@aigov.dev', groups: ['developers'] });
    assert.ok(settings.loggedInAt && Math.abs(settings.loggedInAt - Date.now()) < 60_000);

    const files = await nonSecretFiles();
    assert.ok(files.length >= 1, 'the settings file exists');
    for (const text of [...files, stderr.text, loginSummary(result), JSON.stringify(result)]) {
      assert.equal(text.includes(token), false, 'the refresh token appears nowhere but the credential store');
      assert.equal(/eyJ[\w-]+\.[\w-]+\./.test(text), false, 'no JWT (access token) anywhere');
    }
  });

  it('a second login to the saved gateway needs no --gateway and replaces the stored token', async () => {
    const before = await storedToken('default');
    const { result } = await loginWith(approveAs('carol'), { gatewayUrl: undefined });
    assert.equal(result.gatewayUrl, gateway.url);
    assert.equal(result.user.email, 'carol@aigov.dev');
    const after = await storedToken('default');
    assert.ok(after && after !== before);
  });

  it('a denied device code → AIGOV_E_LOGIN_DENIED (exit code 4), nothing saved', async () => {
    const error = await rejection(loginWith((prompt) => gateway.idp.denyDevice(prompt.userCode), { profile: 'denied' }));
    assert.equal(error.code, 'AIGOV_E_LOGIN_DENIED');
    assert.equal(error.exitCode, 4);
    assert.equal(openCliSettings(configDir).getProfile('denied'), null);
    assert.equal(await storedToken('denied'), null);
  });

  it('a denied device code through the dev endpoint POST {issuer}/dev/deny', async () => {
    const deny = async (prompt: DevicePrompt) => {
      const res = await fetch(`${gateway.idp.issuer}/dev/deny`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_code: prompt.userCode, secret: gateway.approveSecret }),
      });
      assert.equal(res.status, 200);
    };
    const error = await rejection(loginWith(deny, { profile: 'denied' }));
    assert.equal(error.code, 'AIGOV_E_LOGIN_DENIED');
  });

  it('a device code that expires at the IdP → AIGOV_E_LOGIN_EXPIRED', async () => {
    // The dev IdP's device codes live 10 minutes; age this one by rewriting its `exp` in the
    // IdP's own store, so the IdP itself answers expired_token.
    const expire = async (prompt: DevicePrompt) => {
      const db = new DatabaseSync(join(gateway.stateDir, 'idp.sqlite'));
      try {
        const changed = db
          .prepare("UPDATE oidc_model SET payload = json_set(payload, '$.exp', ?) WHERE model = 'DeviceCode' AND userCode = ?")
          .run(Math.floor(Date.now() / 1000) - 5, prompt.userCode.replace(/\W/g, ''));
        assert.equal(changed.changes, 1);
      } finally {
        db.close();
      }
    };
    const error = await rejection(loginWith(expire, { profile: 'expired' }));
    assert.equal(error.code, 'AIGOV_E_LOGIN_EXPIRED');
    assert.equal(error.exitCode, 4);
  });

  it('can be cancelled while waiting (AbortSignal): an AbortError, not a denial or expiry; nothing saved', async () => {
    const controller = new AbortController();
    const pending = login({
      profile: 'cancelled',
      gatewayUrl: gateway.url,
      insecureStorage: true,
      configDir,
      runtimeDir,
      env: {},
      stderr: new Capture(),
      interactive: false,
      // A long interval: cancelling must not wait for the next poll.
      pollIntervalSeconds: 30,
      signal: controller.signal,
      onPrompt: () => setTimeout(() => controller.abort(new DOMException('cancelled', 'AbortError')), 100),
    });
    const started = Date.now();
    await assert.rejects(pending, (error: unknown) => error instanceof DOMException && error.name === 'AbortError');
    assert.ok(Date.now() - started < 2000, 'settles promptly after the abort');
    assert.equal(openCliSettings(configDir).getProfile('cancelled'), null);
    assert.equal(await storedToken('cancelled'), null);
  });

  it('opens a browser only when interactive, not over SSH and without --no-browser', async () => {
    const cases: { name: string; overrides: Partial<LoginOptions>; opens: boolean }[] = [
      { name: 'interactive', overrides: { interactive: true }, opens: true },
      { name: 'over SSH', overrides: { interactive: true, env: { SSH_CONNECTION: '10.0.0.1 5000 10.0.0.2 22' } }, opens: false },
      { name: '--no-browser', overrides: { interactive: true, noBrowser: true }, opens: false },
      { name: 'not interactive', overrides: { interactive: false }, opens: false },
    ];
    for (const { name, overrides, opens } of cases) {
      const opened: string[] = [];
      const { stderr } = await loginWith(approveAs('alice'), {
        profile: 'browser',
        openBrowser: (url) => {
          opened.push(url);
          return true;
        },
        ...overrides,
      });
      assert.equal(opened.length, opens ? 1 : 0, name);
      if (opens) {
        assert.match(opened[0]!, /\/oidc\/device\?user_code=[A-Z]{4}-[A-Z]{4}$/, 'the complete URL');
        assert.match(stderr.text, /Opening it in your browser/);
      } else {
        assert.doesNotMatch(stderr.text, /Opening it in your browser/, name);
      }
    }
  });

  it('reports an unreachable gateway, a URL that is not a gateway and plain http off loopback (the --gateway value is the mistake)', async () => {
    const unreachable = await rejection(loginWith(approveAs('alice'), { profile: 'x', gatewayUrl: await deadUrl() }));
    assert.equal(unreachable.code, 'AIGOV_E_GATEWAY_UNREACHABLE');
    assert.match(unreachable.message, /connection refused/);
    const notGateway = await rejection(loginWith(approveAs('alice'), { profile: 'x', gatewayUrl: `${gateway.url}/oidc` }));
    assert.equal(notGateway.code, 'AIGOV_E_GATEWAY_INVALID');
    const http = await rejection(loginWith(approveAs('alice'), { profile: 'x', gatewayUrl: 'http://example.com' }));
    assert.equal(http.code, 'AIGOV_E_BAD_FLAG');
    assert.equal(http.exitCode, 64);
    assert.match(http.message, /^--gateway "http:\/\/example\.com" is not valid: plain http is allowed only for loopback hosts/);
  });

  it('a gateway typed without a scheme: http for a loopback host, which is then the one signed in to and saved', async () => {
    const bare = gateway.url.replace(/^http:\/\//, '');
    const { stderr, result } = await loginWith(approveAs('alice'), { profile: 'bare', gatewayUrl: bare });
    assert.equal(result.gatewayUrl, gateway.url);
    assert.equal(openCliSettings(configDir).getProfile('bare')?.gatewayUrl, gateway.url);
    assert.match(stderr.text, new RegExp(`To sign in to ${gateway.url.replace(/\./g, '\\.')},`));
  });
});

describe('aigov login --profile NAME without --gateway (a profile signing in for the first time)', () => {
  /** A config dir of its own, with `profiles` already signed in to the given gateways. */
  async function configWith(profiles: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(home, 'profiles-'));
    const template = openCliSettings(configDir).getProfile('default');
    assert.ok(template, 'the first test signed the default profile in');
    for (const [name, url] of Object.entries(profiles)) openCliSettings(dir).setProfile(name, { ...template, gatewayUrl: url });
    return dir;
  }

  it("takes the default profile's gateway, and says so", async () => {
    const dir = await configWith({ default: gateway.url, other: await deadUrl() });
    const { stderr, result } = await loginWith(approveAs('bob'), { profile: 'bob', gatewayUrl: undefined, configDir: dir });
    assert.equal(result.gatewayUrl, gateway.url);
    assert.equal(result.user.subject, 'bob');
    assert.match(stderr.text, new RegExp(`^Profile bob has no gateway yet: signing in to ${gateway.url.replace(/\./g, '\\.')}, the gateway of profile default \\(--gateway URL picks another\\)\\.$`, 'm'));
    assert.equal(openCliSettings(dir).getProfile('bob')?.gatewayUrl, gateway.url, 'saved: the next login of bob needs no flag either');
  });

  it("AIGOV_PROFILE names the default profile; without it, the only gateway any profile knows", async () => {
    const dead = await deadUrl();
    const named = await configWith({ work: gateway.url, default: dead });
    const viaEnv = await loginWith(approveAs('bob'), { profile: 'bob', gatewayUrl: undefined, configDir: named, env: { AIGOV_PROFILE: 'work' } });
    assert.equal(viaEnv.result.gatewayUrl, gateway.url);
    assert.match(viaEnv.stderr.text, /the gateway of profile work/);

    const only = await configWith({ work: gateway.url, laptop: gateway.url });
    const viaOnly = await loginWith(approveAs('bob'), { profile: 'bob', gatewayUrl: undefined, configDir: only });
    assert.equal(viaOnly.result.gatewayUrl, gateway.url);
    assert.match(viaOnly.stderr.text, /the gateway of profile laptop/, 'named after the first profile (by name) that uses it');
  });

  it('no gateway anywhere, or several and no default: AIGOV_E_GATEWAY_REQUIRED (exit 64), before anything is asked', async () => {
    const empty = await rejection(loginWith(approveAs('bob'), { profile: 'bob', gatewayUrl: undefined, configDir: await mkdtemp(join(home, 'empty-')) }));
    assert.equal(empty.code, 'AIGOV_E_GATEWAY_REQUIRED');
    assert.equal(empty.exitCode, 64);
    assert.match(empty.message, /profile `bob`.*no profile has signed in to one yet/);
    assert.match(empty.hint, /aigov login --profile bob --gateway https:\/\/aigov\.example\.com/);

    const [a, b] = [await deadUrl(), gateway.url];
    const several = await rejection(loginWith(approveAs('bob'), { profile: 'bob', gatewayUrl: undefined, configDir: await configWith({ one: a, two: b }) }));
    assert.equal(several.code, 'AIGOV_E_GATEWAY_REQUIRED');
    assert.ok(several.message.includes(`the profiles use 2 gateways (${a}, ${b})`), several.message);
  });
});

describe('aigov status / whoami (service)', () => {
  it('reports the logged-in user, credentials and a daemon that is not running', async () => {
    await loginWith(approveAs('alice'), { profile: 'status' });
    const report = await readStatus({ profile: 'status', configDir, runtimeDir, env: {} });
    assert.equal(report.loggedIn, true);
    assert.equal(report.gateway, gateway.url);
    assert.deepEqual(report.user?.groups, ['developers']);
    assert.equal(report.credentials?.kind, 'file');
    assert.equal(report.credentials?.present, true);
    assert.equal(report.daemon?.running, false);
    const text = formatStatus(report);
    assert.match(text, /User: +alice@aigov\.dev \(sub alice\)/);
    assert.match(text, /Daemon: +not running/);
    assert.doesNotMatch(text, /Logged in: +no/);
    assert.equal(whoamiLine(report), `alice@aigov.dev (developers) on ${gateway.url}`);
  });

  it('a gateway that does not answer: gatewayReachable false with the reason, and the text says so', async () => {
    const settings = openCliSettings(configDir);
    const template = settings.getProfile('status');
    assert.ok(template);
    const dead = await deadUrl();
    settings.setProfile('gateway-down', { ...template, gatewayUrl: dead });
    const report = await readStatus({ profile: 'gateway-down', configDir, runtimeDir, env: {} });
    assert.equal(report.gatewayReachable, false);
    assert.equal(report.gatewayProblem, 'unreachable: connection refused');
    const text = formatStatus(report);
    assert.match(text, new RegExp(`^Gateway: +${dead.replace(/\./g, '\\.')} — unreachable: connection refused$`, 'm'));
    assert.match(text, /^Check that the gateway runs/m);

    const up = await readStatus({ profile: 'status', configDir, runtimeDir, env: {} });
    assert.deepEqual([up.gatewayReachable, up.gatewayProblem], [true, null]);
    assert.match(formatStatus(up), /^Gateway: +\S+ \(reachable\)$/m);
    const whoami = await readStatus({ profile: 'gateway-down', configDir, runtimeDir, env: {}, daemon: false, gateway: false });
    assert.equal(whoami.gatewayReachable, null, 'whoami does not ask the gateway');

    // An unreadable AIGOV_CA_FILE is reported as such, not as a crash of `aigov status`.
    settings.setProfile('private-ca', { ...template, gatewayUrl: 'https://gw.example.invalid' });
    const noCa = await readStatus({ profile: 'private-ca', configDir, runtimeDir, env: { AIGOV_CA_FILE: join(home, 'no-such-ca.pem') }, daemon: false });
    assert.deepEqual([noCa.gatewayReachable, noCa.gatewayProblem], [false, 'the gateway could not be asked (ENOENT; check AIGOV_CA_FILE)']);
  });

  it('a profile never logged in: loggedIn false, no whoami line', async () => {
    const report = await readStatus({ profile: 'nobody', configDir, runtimeDir, env: {} });
    assert.equal(report.loggedIn, false);
    assert.equal(report.user, null);
    assert.equal(whoamiLine(report), null);
    assert.match(formatStatus(report), /Logged in: +no[\s\S]*aigov login --gateway URL/);
  });
});

describe('aigov logout (service)', () => {
  it('revokes the refresh token at the IdP, deletes it, clears the user; a second logout is a no-op', async () => {
    await loginWith(approveAs('bob'), { profile: 'leaving' });
    const token = await storedToken('leaving');
    assert.ok(token);

    const result = await logout({ profile: 'leaving', configDir, runtimeDir, env: {} });
    assert.deepEqual(result.revocation, { revoked: true, reason: null });
    assert.ok(result.removedFrom);
    assert.equal(result.wasLoggedIn, true);
    assert.match(logoutSummary(result), /Revoked the refresh token at the identity provider\.[\s\S]*Logged out \(profile leaving\)\./);

    assert.equal(await storedToken('leaving'), null);
    const profile = openCliSettings(configDir).getProfile('leaving');
    assert.equal(profile?.user, null);
    assert.equal(profile?.gatewayUrl, gateway.url, 'the gateway is kept for the next login');
    const afterLogout = await readStatus({ profile: 'leaving', configDir, runtimeDir, env: {} });
    assert.equal(afterLogout.loggedIn, false);
    // The file is there (other profiles use it); what is missing is this profile's entry in it.
    assert.match(formatStatus(afterLogout), /^Credentials: +none for this profile in \S+credentials\.json/m);

    // The old refresh token no longer works at the token endpoint.
    await assert.rejects(refresh(gateway.idp.issuer, 'aigov-cli', token), (error: unknown) => {
      assert.ok(error instanceof OAuthResponseError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });

    const again = await logout({ profile: 'leaving', configDir, runtimeDir, env: {} });
    assert.equal(again.wasLoggedIn, false);
    assert.equal(again.revocation, null);
    assert.equal(logoutSummary(again), 'Not logged in (profile leaving); nothing to do.');
  });

  it('still deletes locally, and says so, when the IdP cannot be reached to revoke', async () => {
    await loginWith(approveAs('carol'), { profile: 'offline' });
    const settings = openCliSettings(configDir);
    const profile = settings.getProfile('offline');
    assert.ok(profile);
    settings.setProfile('offline', { ...profile, discovery: { ...profile.discovery, issuer: `${await deadUrl()}/oidc` } });
    const result = await logout({ profile: 'offline', configDir, runtimeDir, env: {} });
    assert.equal(result.revocation?.revoked, false);
    assert.match(result.revocation?.reason ?? '', /connection refused/);
    assert.match(logoutSummary(result), /Could not revoke the refresh token at the identity provider: .*connection refused/);
    assert.equal(await storedToken('offline'), null);
  });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aigov(args: string[], env: NodeJS.ProcessEnv, onStderr?: (stderr: string) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the built CLI', { skip: BUILT ? false : 'run `npm run build` first' }, () => {
  let cliEnv: NodeJS.ProcessEnv;
  before(() => {
    cliEnv = {
      PATH: process.env.PATH,
      HOME: home,
      AIGOV_CONFIG_DIR: join(home, 'cli-config'),
      AIGOV_RUNTIME_DIR: join(home, 'cli-run'),
      AIGOV_DEVICE_POLL_INTERVAL: '0.2',
    };
  });

  /** `aigov login`, answering the code it prints on stderr at the dev endpoint. */
  function cliLogin(action: 'approve' | 'deny', extra: string[] = []): Promise<CliResult> {
    let sent = false;
    return aigov(['login', '--gateway', gateway.url, '--no-browser', '--insecure-storage', ...extra], cliEnv, (stderr) => {
      const code = /^ {2}([A-Z]{4}-[A-Z]{4})$/m.exec(stderr)?.[1];
      if (!code || sent) return;
      sent = true;
      // As the operator's script would: the approve secret from the gateway's 0600 file.
      void fetch(`${gateway.idp.issuer}/dev/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_code: code, user: 'alice', secret: readFileSync(gateway.approveSecretFile, 'utf8') }),
      });
    });
  }

  it('login → whoami → status --json → logout → whoami/status say not logged in', async () => {
    const loggedIn = await cliLogin('approve', ['--json']);
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    assert.match(loggedIn.stderr, /Logged in to http:\/\/127\.0\.0\.1:\d+ as alice@aigov\.dev \(groups developers\)\. Credentials: /);
    const json = JSON.parse(loggedIn.stdout) as { profile: string; gateway: string; user: { email: string }; credentials: { kind: string } };
    assert.deepEqual([json.profile, json.gateway, json.user.email, json.credentials.kind], ['default', gateway.url, 'alice@aigov.dev', 'file']);

    const whoami = await aigov(['whoami'], cliEnv);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.equal(whoami.stdout, `alice@aigov.dev (developers) on ${gateway.url}\n`);

    const status = await aigov(['status', '--json'], cliEnv);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { loggedIn: boolean; credentials: { kind: string }; daemon: { running: boolean } };
    assert.equal(report.loggedIn, true);
    assert.equal(report.credentials.kind, 'file');
    assert.equal(report.daemon.running, false);

    const { store } = await openCredentialStore({ kind: 'file', configDir: join(home, 'cli-config'), env: {} });
    const token = await store.load('default');
    assert.ok(token);
    for (const text of [loggedIn.stderr, loggedIn.stdout, whoami.stdout, status.stdout]) {
      assert.equal(text.includes(token), false);
      assert.equal(/eyJ[\w-]+\.[\w-]+\./.test(text), false);
    }

    const out = await aigov(['logout'], cliEnv);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /Revoked the refresh token at the identity provider/);

    const whoamiAfter = await aigov(['whoami'], cliEnv);
    assert.equal(whoamiAfter.code, 1);
    assert.match(whoamiAfter.stderr, /Not logged in/);
    const statusAfter = await aigov(['status', '--json'], cliEnv);
    assert.equal(statusAfter.code, 1);
    assert.equal((JSON.parse(statusAfter.stdout) as { loggedIn: boolean }).loggedIn, false);
  });

  it("login --profile bob, as README writes it: the default profile's gateway, named in the output", async () => {
    let sent = false;
    const bob = await aigov(['login', '--profile', 'bob', '--no-browser', '--insecure-storage'], cliEnv, (stderr) => {
      const code = /^ {2}([A-Z]{4}-[A-Z]{4})$/m.exec(stderr)?.[1];
      if (!code || sent) return;
      sent = true;
      void gateway.idp.approveDevice(code, 'bob');
    });
    assert.equal(bob.code, 0, bob.stderr);
    assert.ok(bob.stderr.startsWith(`Profile bob has no gateway yet: signing in to ${gateway.url}, the gateway of profile default`), bob.stderr);
    assert.match(bob.stderr, /Logged in to http:\/\/127\.0\.0\.1:\d+ as bob@aigov\.dev \(groups approvers\)/);
    const whoami = await aigov(['whoami', '--profile', 'bob'], cliEnv);
    assert.equal(whoami.stdout, `bob@aigov.dev (approvers) on ${gateway.url}\n`);
  });

  it('a denied login exits with AIGOV_E_LOGIN_DENIED and its exit code', async () => {
    const denied = await cliLogin('deny');
    assert.equal(denied.code, 4, denied.stderr);
    assert.match(denied.stderr, /code: AIGOV_E_LOGIN_DENIED/);
  });
});
