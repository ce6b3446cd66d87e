/**
 * The three places a refresh token can live (see credentials.ts):
 *
 * - keychain: the OS keychain through @napi-rs/keyring. On Linux the entry is pinned to the
 *   Secret Service (GNOME Keyring, KWallet…), never the kernel keyutils keyring, which forgets
 *   everything at logout. Service "aigov", account = `<profile>@<configuration key>` (keychainAccount).
 * - file: `<configDir>/credentials.json`, mode 0600, written atomically (temp file + rename)
 *   under a small lock file so a daemon persisting a rotated token and a login do not lose
 *   each other's writes.
 * - env: AIGOV_REFRESH_TOKEN for CI; read-only, a rotated token is kept in memory only.
 *
 * Error messages carry short reasons only, never a token.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { describeTightened, ensurePrivateDir } from '../config/private-files.ts';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { z } from 'zod';
import { AigovError } from '../core/errors.ts';
import { canonicalDir, configurationKey, defaultConfigDir } from '../config/paths.ts';
import type * as Keyring from '@napi-rs/keyring';
import type { CredentialStore, CredentialStoreKind } from './credentials.ts';

type Env = Readonly<Record<string, string | undefined>>;

export const KEYCHAIN_SERVICE = 'aigov';
/** The throwaway entry the probe writes lives under its own service, so it never mixes with profiles. */
export const KEYCHAIN_PROBE_SERVICE = 'aigov-probe';
export const REFRESH_TOKEN_ENV = 'AIGOV_REFRESH_TOKEN';
export const CREDENTIALS_FILE = 'credentials.json';

const DEFAULT_PROBE_TIMEOUT_MS = 5_000;
/** Long enough for a user to answer an unlock prompt, short enough that a hung D-Bus surfaces. */
const DEFAULT_KEYCHAIN_OP_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// keychain

type KeyringModule = typeof Keyring;

let keyringModule: KeyringModule | undefined;
/** Loaded on first use only: the native addon costs start-up time that most commands never need. */
function loadKeyring(): KeyringModule {
  keyringModule ??= createRequire(import.meta.url)('@napi-rs/keyring') as KeyringModule;
  return keyringModule;
}

/** Pin Linux to the Secret Service; the option is ignored on macOS and Windows. */
const ENTRY_OPTIONS = { linux: { store: 'secret-service' } } as const;

export function keychainLocation(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'darwin': return 'OS keychain (macOS Keychain)';
    case 'win32': return 'OS keychain (Windows Credential Manager)';
    default: return 'OS keychain (Secret Service)';
  }
}

/** A short, single-line reason from a native error, with any known secret cut out. */
function shortReason(error: unknown, secret?: string): string {
  const raw = error instanceof Error ? error.message : String(error);
  let line = (raw.split('\n')[0] ?? '').trim()
    .replace(/^Platform failure:\s*/i, '')
    .replace(/^Couldn't access platform storage:\s*/i, '');
  if (/autolaunch/i.test(line)) line = 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)';
  else if (/Secret Service: no result found/i.test(line)) line = 'the Secret Service has no default keyring';
  if (secret) line = line.split(secret).join('[redacted]');
  if (line === '') line = 'unknown error';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface KeychainStoreOptions {
  /** Per-operation limit; a stuck D-Bus call then rejects instead of hanging the caller. */
  readonly opTimeoutMs?: number;
  readonly service?: string;
  /** The configuration's config dir: the entry's account names it (default: the standard one). */
  readonly configDir?: string;
  /** The config dir that adopts entries saved under a bare profile name (default: ~/.config/aigov of the user's real home). */
  readonly standardConfigDir?: string;
}

/**
 * The keychain account of a profile: `<profile>@<configuration key>`, so two configurations of
 * one OS user (two HOMEs, two AIGOV_CONFIG_DIRs) never read or overwrite each other's token. An
 * entry saved before, under the bare profile name, belongs to the standard config dir of the
 * user's real home (~/.config/aigov): only that configuration adopts it.
 */
export function keychainAccount(configDir: string, profile: string, standardConfigDir = join(userInfo().homedir, '.config', 'aigov')): { readonly account: string; readonly legacy: string | null } {
  const canonical = canonicalDir(configDir);
  const standard = canonicalDir(standardConfigDir);
  return { account: `${profile}@${configurationKey(canonical, profile)}`, legacy: canonical === standard ? profile : null };
}

/**
 * The OS keychain. Uses the environment of this process (the native library reads
 * DBUS_SESSION_BUS_ADDRESS when it first connects, and keeps that connection).
 */
export function createKeychainStore(options: KeychainStoreOptions = {}): CredentialStore {
  const service = options.service ?? KEYCHAIN_SERVICE;
  const opTimeoutMs = options.opTimeoutMs ?? DEFAULT_KEYCHAIN_OP_TIMEOUT_MS;
  const configDir = options.configDir ?? defaultConfigDir();
  const accountOf = (profile: string): ReturnType<typeof keychainAccount> => keychainAccount(configDir, profile, options.standardConfigDir);

  async function run<T>(account: string, secret: string | undefined, op: (entry: InstanceType<KeyringModule['AsyncEntry']>) => Promise<T>): Promise<T> {
    try {
      const { AsyncEntry } = loadKeyring();
      const entry = new AsyncEntry(service, account, ENTRY_OPTIONS);
      return await withTimeout(op(entry), opTimeoutMs, 'the keychain');
    } catch (error) {
      throw new AigovError('AIGOV_E_KEYCHAIN_UNAVAILABLE', { reason: shortReason(error, secret) });
    }
  }

  return {
    kind: 'keychain',
    location: keychainLocation(),
    load: async (profile) => {
      const { account, legacy } = accountOf(profile);
      const token = await run(account, undefined, (entry) => entry.getPassword());
      if (typeof token === 'string' || legacy === null) return token;
      // Adopt the entry an earlier version saved under the bare profile name.
      const old = await run(legacy, undefined, (entry) => entry.getPassword());
      if (typeof old !== 'string') return old;
      await run(account, old, (entry) => entry.setPassword(old));
      await run(legacy, undefined, (entry) => entry.deleteCredential()).catch(() => undefined);
      return old;
    },
    save: (profile, refreshToken) => run(accountOf(profile).account, refreshToken, (entry) => entry.setPassword(refreshToken)),
    remove: async (profile) => {
      const { account, legacy } = accountOf(profile);
      const removed = await run(account, undefined, (entry) => entry.deleteCredential());
      if (legacy !== null) await run(legacy, undefined, (entry) => entry.deleteCredential()).catch(() => undefined);
      return removed;
    },
  };
}

export type KeychainProbeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/*
 * Runs in a child process: a hung Secret Service blocks the native call, which no AbortSignal
 * or timer can interrupt in-process (the worker thread stays stuck and keeps the process alive).
 * A child can be killed. Output: "ok", or one JSON line {"error": "..."}.
 */
const PROBE_SCRIPT = `
const { Entry } = require(process.argv[1]);
const value = require('node:crypto').randomBytes(12).toString('hex');
try {
  // The constructor already throws when the pinned store cannot be reached.
  const entry = new Entry(${JSON.stringify(KEYCHAIN_PROBE_SERVICE)}, 'probe-' + process.pid + '-' + value.slice(0, 6), { linux: { store: 'secret-service' } });
  entry.setPassword(value);
  const back = entry.getPassword();
  entry.deleteCredential();
  if (back !== value) throw new Error('the keychain returned a different value than was written');
  process.stdout.write('ok');
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error && error.message || error) }));
  process.exitCode = 3;
}
`;

/**
 * Whether the OS keychain works here: writes, reads back and deletes a throwaway entry in a
 * child process with `env`, killed after `timeoutMs`.
 */
export async function probeKeychain(opts: { env?: Env; timeoutMs?: number } = {}): Promise<KeychainProbeResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let modulePath: string;
  try {
    modulePath = createRequire(import.meta.url).resolve('@napi-rs/keyring');
  } catch {
    return { ok: false, reason: 'the keyring library is not installed' };
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', PROBE_SCRIPT, modulePath],
      { env: { ...(opts.env ?? process.env) }, timeout: timeoutMs, killSignal: 'SIGKILL', windowsHide: true, maxBuffer: 64 * 1024 },
      (error, stdout) => {
        if (!error && stdout === 'ok') return resolve({ ok: true });
        if (error && (error as { killed?: boolean }).killed) {
          return resolve({ ok: false, reason: `it did not answer within ${timeoutMs} ms` });
        }
        let reason = 'the probe failed';
        try {
          const parsed = JSON.parse(stdout) as { error?: unknown };
          if (typeof parsed.error === 'string') reason = shortReason(parsed.error);
        } catch {
          if (error) reason = shortReason(`the probe exited with code ${String(error.code)}`);
        }
        resolve({ ok: false, reason });
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// file

const CredentialsFileSchema = z.object({
  version: z.literal(1).optional(),
  profiles: z.record(z.string(), z.object({ refreshToken: z.string().min(1) })),
});
type CredentialsFile = z.infer<typeof CredentialsFileSchema>;

export interface FileStoreOptions {
  readonly configDir?: string;
  /** Told about fixes it made (e.g. a file readable by others put back to 0600). Safe to print. */
  readonly onWarning?: (message: string) => void;
  /** How long to wait for another aigov process holding the lock (ms). */
  readonly lockTimeoutMs?: number;
}

/** A 0600 JSON file in the config dir: {version: 1, profiles: {name: {refreshToken}}}. */
export function createFileStore(options: FileStoreOptions = {}): CredentialStore & { readonly path: string } {
  const dir = options.configDir ?? defaultConfigDir();
  const path = join(dir, CREDENTIALS_FILE);
  const lockPath = `${path}.lock`;
  const lockTimeoutMs = options.lockTimeoutMs ?? 5_000;
  const warn = options.onWarning ?? (() => {});
  /** Serialises this process's writers; the lock file serialises processes. */
  let queue: Promise<unknown> = Promise.resolve();

  const unreadable = (reason: string, cause?: unknown): AigovError =>
    new AigovError('AIGOV_E_CREDENTIALS_UNREADABLE', { reason }, cause === undefined ? undefined : { cause: scrubbedCause(cause) });

  async function read(): Promise<CredentialsFile | null> {
    let text: string;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw unreadable(`${path} is not a regular file`);
      if (typeof process.getuid === 'function' && info.uid !== process.getuid()) {
        throw unreadable(`${path} belongs to another user`);
      }
      if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
        await chmod(path, 0o600);
        warn(`${path} was readable by other users (mode ${(info.mode & 0o777).toString(8)}); it is now 0600`);
      }
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (error instanceof AigovError) throw error;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw unreadable(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // Never quote the parser message: it can echo the file's content.
      throw unreadable(`${path} is not valid JSON`);
    }
    const parsed = CredentialsFileSchema.safeParse(json);
    if (!parsed.success) throw unreadable(`${path} does not have the expected shape`);
    return parsed.data;
  }

  async function writeAtomically(data: CredentialsFile): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(data, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await chmod(tmp, 0o600); // the umask may have cut more, never less; be explicit anyway
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  async function withLock<T>(body: () => Promise<T>): Promise<T> {
    const run = queue.then(async () => {
      // The config dir holds the refresh token's file (and settings.json, with who logged in): 0700.
      ensurePrivateDir(dir, { onTightened: (event) => warn(describeTightened(event)) });
      const deadline = Date.now() + lockTimeoutMs;
      for (;;) {
        try {
          const handle = await open(lockPath, 'wx', 0o600);
          await handle.close();
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          // A lock older than the timeout was left by a process that died: take it over.
          const info = await stat(lockPath).catch(() => null);
          if (info && Date.now() - info.mtimeMs > lockTimeoutMs) {
            await unlink(lockPath).catch(() => {});
            continue;
          }
          if (Date.now() > deadline) throw unreadable(`${lockPath} is held by another aigov process`);
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      try {
        return await body();
      } finally {
        await unlink(lockPath).catch(() => {});
      }
    });
    queue = run.catch(() => {});
    return run;
  }

  return {
    kind: 'file',
    location: `${path} (0600 file)`,
    path,
    async load(profile) {
      const data = await read();
      return data && Object.hasOwn(data.profiles, profile) ? (data.profiles[profile]?.refreshToken ?? null) : null;
    },
    async save(profile, refreshToken) {
      await withLock(async () => {
        const data = (await read()) ?? { version: 1, profiles: {} };
        const profiles = Object.fromEntries([...Object.entries(data.profiles).filter(([name]) => name !== profile), [profile, { refreshToken }]]);
        await writeAtomically({ version: 1, profiles });
      });
    },
    async remove(profile) {
      return withLock(async () => {
        let data: CredentialsFile | null;
        try {
          data = await read();
        } catch (error) {
          // An unreadable file holds no token anyone can use; `aigov logout` must be able to clear it.
          if (error instanceof AigovError && error.code === 'AIGOV_E_CREDENTIALS_UNREADABLE') {
            await rm(path, { force: true });
            return true;
          }
          throw error;
        }
        if (!data || !Object.hasOwn(data.profiles, profile)) return false;
        const rest = Object.entries(data.profiles).filter(([name]) => name !== profile);
        if (rest.length === 0) await rm(path, { force: true });
        else await writeAtomically({ version: 1, profiles: Object.fromEntries(rest) });
        return true;
      });
    },
  };
}

/** An fs error without the parts that could quote file content. */
function scrubbedCause(error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  return new Error(code ?? 'error');
}

// ---------------------------------------------------------------------------------------------
// env

/**
 * AIGOV_REFRESH_TOKEN (CI). The same token serves every profile. A rotated token is kept in
 * memory for this process only; nothing is written anywhere.
 */
export function createEnvStore(env: Env = process.env): CredentialStore {
  const rotated = new Map<string, string>();
  return {
    kind: 'env',
    location: `environment (${REFRESH_TOKEN_ENV})`,
    async load(profile) {
      const fromMemory = rotated.get(profile);
      if (fromMemory !== undefined) return fromMemory;
      const value = env[REFRESH_TOKEN_ENV]?.trim();
      return value ? value : null;
    },
    async save(profile, refreshToken) {
      rotated.set(profile, refreshToken);
    },
    async remove() {
      return false;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// selection

export interface OpenCredentialStoreOptions {
  /** The store login recorded in the profile: used as is, without a probe. */
  readonly kind?: CredentialStoreKind;
  /** --insecure-storage: the 0600 file, without a probe. */
  readonly insecureStorage?: boolean;
  readonly configDir?: string;
  readonly env?: Env;
  readonly probeTimeoutMs?: number;
  /** See FileStoreOptions.onWarning. */
  readonly onWarning?: (message: string) => void;
}

/**
 * kind given → that store; --insecure-storage → file; AIGOV_REFRESH_TOKEN set → env;
 * the keychain when the probe passes; else the file, with a warning to show the user.
 */
export async function openCredentialStore(opts: OpenCredentialStoreOptions = {}): Promise<{ store: CredentialStore; warning: string | null }> {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? defaultConfigDir(env);
  const file = (): ReturnType<typeof createFileStore> => createFileStore({ configDir, ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) });

  switch (opts.kind) {
    case 'keychain': return { store: createKeychainStore({ configDir }), warning: null };
    case 'file': return { store: file(), warning: null };
    case 'env': return { store: createEnvStore(env), warning: null };
    case undefined: break;
  }
  if (opts.insecureStorage) return { store: file(), warning: null };
  if (env[REFRESH_TOKEN_ENV]?.trim()) return { store: createEnvStore(env), warning: null };

  const probe = await probeKeychain({ env, ...(opts.probeTimeoutMs !== undefined ? { timeoutMs: opts.probeTimeoutMs } : {}) });
  if (probe.ok) return { store: createKeychainStore({ configDir }), warning: null };
  const store = file();
  return {
    store,
    warning: `no OS keychain available (${probe.reason}); storing the refresh token in ${store.path} (0600)`,
  };
}
