/**
 * A private, real Secret Service for tests: a session D-Bus (`dbus-daemon --session`) and
 * GNOME Keyring's secrets component inside it, with HOME and the XDG dirs in a temp dir, so a
 * test never touches the user's own keyring.
 *
 * The native keyring library reads DBUS_SESSION_BUS_ADDRESS once, at its first connection,
 * and keeps that connection (or that failure) for the life of the process. Run the code under
 * test in a child process with `{ ...process.env, ...service.env }`.
 *
 * Returns null only when gnome-keyring-daemon is not installed (Debian: apt install
 * gnome-keyring libsecret-tools dbus-x11; .ci/run does).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SecretService {
  /** HOME, XDG_* and DBUS_SESSION_BUS_ADDRESS for a child process to use this service. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The login keyring's password. gnome-keyring creates no login keyring for an empty
 * password (then the default collection does not exist and every write fails), so it is
 * a fixed, throwaway one.
 */
const KEYRING_PASSWORD = 'aigov-test-keyring';

export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Why a keychain test is skipped here, or null when it can run. */
export function secretServiceSkipReason(): string | null {
  if (!findExecutable('gnome-keyring-daemon')) return 'gnome-keyring-daemon is not installed (apt install gnome-keyring libsecret-tools dbus-x11)';
  return null;
}

export async function startSecretService(): Promise<SecretService | null> {
  if (secretServiceSkipReason()) return null;
  const dir = await mkdtemp(join(tmpdir(), 'aigov-secret-service-'));
  const home = join(dir, 'home');
  const runtime = join(dir, 'run');
  await mkdir(home, { recursive: true });
  await mkdir(runtime, { recursive: true });
  await chmod(runtime, 0o700);
  const baseEnv: Record<string, string> = {
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
  };
  const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...baseEnv, ...extra };
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    if (!extra.DBUS_SESSION_BUS_ADDRESS) delete env.DBUS_SESSION_BUS_ADDRESS;
    return env;
  };

  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const child of children.reverse()) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(2_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // 1. A private session bus, in the foreground so this process owns its pid.
    const bus = spawn('dbus-daemon', ['--session', '--nofork', '--nopidfile', '--print-address=1'], {
      env: childEnv(), stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(bus);
    const address = await firstLine(bus, 5_000, 'dbus-daemon');
    const env = { ...baseEnv, DBUS_SESSION_BUS_ADDRESS: address };

    // 2. GNOME Keyring's secrets component, its login keyring created and unlocked from stdin.
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env: childEnv(env), stdio: ['pipe', 'ignore', 'ignore'],
    });
    children.push(keyring);
    keyring.stdin?.end(KEYRING_PASSWORD);

    // 3. Ready when it owns org.freedesktop.secrets (asked without auto-activation, which would
    //    start a second, locked daemon) and the default collection exists.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (keyring.exitCode !== null) throw new Error(`gnome-keyring-daemon exited with code ${keyring.exitCode}`);
      const owned = await dbusSend(env, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets']);
      if (owned?.includes('boolean true')) {
        const label = await dbusSend(env, ['--dest=org.freedesktop.secrets', '/org/freedesktop/secrets/aliases/default',
          'org.freedesktop.DBus.Properties.Get', 'string:org.freedesktop.Secret.Collection', 'string:Label']);
        if (label !== null) return { env, stop };
      }
      if (Date.now() > deadline) throw new Error('gnome-keyring-daemon did not become ready within 10 s');
      await sleep(50);
    }
  } catch (error) {
    await stop();
    throw error;
  }
}

function firstLine(child: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${what} printed no address within ${timeoutMs} ms`)), timeoutMs);
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with code ${String(code)}`)); });
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const newline = buffer.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(buffer.slice(0, newline).trim());
      }
    });
  });
}

/** `dbus-send --session --print-reply …` on the private bus; stdout, or null on failure. */
function dbusSend(env: Record<string, string>, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('dbus-send', ['--session', '--print-reply', ...args], { env: { ...process.env, ...env }, timeout: 5_000 }, (error, stdout) => {
      resolve(error ? null : stdout);
    });
  });
}
