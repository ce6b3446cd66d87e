/**
 * What `aigov login`, `logout`, `status` and `whoami` do, apart from flag parsing and rendering:
 * the gateway's discovery → the device authorization grant → the refresh token into the
 * credential store → the non-secret profile (gateway, discovery, who) into the CLI settings.
 * Prompts and progress go to stderr; nothing here ever writes a token anywhere but the store.
 */
import { spawn } from 'node:child_process';
import { decodeJwt, type JWTPayload } from 'jose';
import { AigovError, isAigovError } from '../core/errors.ts';
import type { Discovery } from '../protocol/discovery.ts';
import { openCliSettings, type CliSettings, type ProfileSettings } from '../config/cli-settings.ts';
import { defaultConfigDir, defaultProfile } from '../config/paths.ts';
import { openCredentialStore } from './credential-stores.ts';
import type { CredentialStore, CredentialStoreKind } from './credentials.ts';
import {
  discoverIssuer,
  fetchGatewayDiscovery,
  loginScope,
  normalizeGatewayUrl,
  revokeRefreshToken,
  startDeviceLogin,
  type DevicePrompt,
  type FetchLike,
  type TokenSet,
} from './oidc-client.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface TextOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface LoginUser {
  readonly subject: string;
  readonly email: string | null;
  readonly groups: readonly string[];
}

export interface LoginResult {
  readonly profile: string;
  readonly gatewayUrl: string;
  readonly user: LoginUser;
  readonly credentials: { readonly kind: CredentialStoreKind; readonly location: string };
  readonly loggedInAt: number;
}

/** The lifecycle of the device prompt, for whatever shows it (Ink view or plain lines). */
export type LoginPhase = 'waiting' | 'approved' | 'denied' | 'expired' | 'failed' | 'cancelled';

export interface DevicePromptView {
  update(phase: LoginPhase): void;
  close(): Promise<void>;
}

export interface LoginOptions {
  profile: string;
  /** --gateway / AIGOV_GATEWAY; else the profile's saved gateway. */
  gatewayUrl?: string | undefined;
  noBrowser?: boolean;
  insecureStorage?: boolean;
  configDir?: string;
  runtimeDir?: string;
  env?: Env;
  stderr?: TextOutput;
  /** Show the Ink view (default: stderr is a terminal). */
  tui?: boolean;
  /** A person is at the keyboard (default: stdin and stderr are terminals). Browser opening needs it. */
  interactive?: boolean;
  /** Replaces the IdP's poll interval; honoured only for dev gateways (tests, `aigov server --dev`). */
  pollIntervalSeconds?: number;
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** Called with the prompt once the device code exists (tests approve with it). */
  onPrompt?: (prompt: DevicePrompt) => void;
  /** Replaces the browser launcher (tests). */
  openBrowser?: (url: string) => boolean | Promise<boolean>;
}

function errorWriter(stderr: TextOutput | undefined): TextOutput {
  return stderr ?? process.stderr;
}

function isOverSsh(env: Env): boolean {
  return Boolean(env.SSH_CONNECTION || env.SSH_TTY || env.SSH_CLIENT);
}

/**
 * Opens a URL in the user's browser, detached. Resolves true once the launcher started, false
 * when it could not (not installed); the URL is on screen either way.
 */
export function openInBrowser(url: string): Promise<boolean> {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer.exe' : 'xdg-open';
  return new Promise((resolve) => {
    try {
      const child = spawn(command, [url], { detached: true, stdio: 'ignore' });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}

function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes >= 2) return `${minutes} minutes`;
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds >= 60 ? '1 minute' : `${seconds} seconds`;
}

/** The prompt as plain lines (stderr is not a terminal). The code is on a line of its own. */
export function plainPromptText(prompt: DevicePrompt, gatewayUrl: string, now: number = Date.now()): string {
  const url = prompt.verificationUriComplete ?? prompt.verificationUri;
  const lines = [
    `To sign in to ${gatewayUrl}, open this URL in a browser:`,
    `  ${url}`,
    'and check that it shows this code:',
    `  ${prompt.userCode}`,
  ];
  if (prompt.verificationUriComplete) lines.push(`(If asked, enter the code at ${prompt.verificationUri}.)`);
  lines.push(`The code expires in ${formatDuration(prompt.expiresAt - now)}. Waiting for approval…`);
  return `${lines.join('\n')}\n`;
}

async function showPrompt(
  prompt: DevicePrompt,
  gatewayUrl: string,
  stderr: TextOutput,
  tui: boolean,
  browserOpened: boolean,
): Promise<DevicePromptView> {
  if (tui) {
    const { renderLoginView } = await import('../tui/LoginView.tsx');
    return renderLoginView({ prompt, gatewayUrl, browserOpened, stream: stderr as NodeJS.WriteStream });
  }
  stderr.write(plainPromptText(prompt, gatewayUrl));
  if (browserOpened) stderr.write('(Opening it in your browser.)\n');
  return { update: () => undefined, close: () => Promise.resolve() };
}

function phaseOf(error: unknown, signal: AbortSignal | undefined): LoginPhase {
  if (signal?.aborted) return 'cancelled';
  if (isAigovError(error) && error.code === 'AIGOV_E_LOGIN_DENIED') return 'denied';
  if (isAigovError(error) && error.code === 'AIGOV_E_LOGIN_EXPIRED') return 'expired';
  return 'failed';
}

function audiences(payload: JWTPayload): string[] {
  if (typeof payload.aud === 'string') return [payload.aud];
  return Array.isArray(payload.aud) ? payload.aud.filter((a): a is string => typeof a === 'string') : [];
}

function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string' && value) return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/**
 * Who logged in, from the access token's claims (the ID token's as a fallback for email), after
 * checking it was made for this gateway: a wrong issuer, audience or missing scope would only
 * fail later, at the first request, with a less clear message.
 */
export function userFromTokens(tokens: TokenSet, discovery: Discovery): LoginUser {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(tokens.accessToken);
  } catch {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', {
      reason: 'the identity provider issued an access token that is not a JWT, which the gateway cannot verify',
    });
  }
  if (claims.iss !== discovery.issuer) {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', {
      reason: `the access token was issued by ${String(claims.iss ?? '(no issuer)')}, not by the gateway's issuer ${discovery.issuer}`,
    });
  }
  if (!audiences(claims).includes(discovery.audience)) {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', {
      reason: `the access token is not meant for this gateway (audience ${discovery.audience}); check the IdP's resource/audience settings`,
    });
  }
  if (discovery.required_scope && !stringList(claims['scope']).includes(discovery.required_scope)) {
    throw new AigovError('AIGOV_E_AUTH_SCOPE', { scope: discovery.required_scope });
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') {
    throw new AigovError('AIGOV_E_LOGIN_FAILED', { reason: 'the access token has no subject (sub)' });
  }
  const idClaims = tokens.idTokenClaims ?? {};
  const email = typeof claims['email'] === 'string' ? claims['email'] : typeof idClaims['email'] === 'string' ? idClaims['email'] : null;
  const groups = stringList(claims['groups'] ?? idClaims['groups']);
  return Object.freeze({ subject: claims.sub, email, groups: Object.freeze(groups) });
}

/** A one-line "who": email (or subject) and groups. */
export function describeUser(user: LoginUser): string {
  const who = user.email ?? user.subject;
  return user.groups.length ? `${who} (groups ${user.groups.join(', ')})` : who;
}

/**
 * Stops this configuration's daemon (best effort): it holds the previous session's tokens;
 * `aigov run` starts a fresh one on demand. Only this config dir's daemon of the profile: the
 * daemons of other configurations of the same OS user are left alone.
 */
async function stopDaemon(profile: string, configDir: string, runtimeDir: string | undefined, env: Env): Promise<boolean> {
  try {
    const { stopDaemon: stopConfigurationDaemon } = await import('../daemon/daemon-client.ts');
    return (await stopConfigurationDaemon(profile, { configDir, ...(runtimeDir ? { runtimeDir } : {}), env: { ...env } })) === 'stopped';
  } catch {
    return false;
  }
}

/**
 * The gateway a login goes to: --gateway; else the profile's own; else — a profile signing in
 * for the first time, as in `aigov login --profile bob` — the default profile's, or the one
 * gateway every known profile uses. `from` names the profile it was taken from.
 */
function chooseGateway(opts: LoginOptions, previous: ProfileSettings | null, settings: CliSettings, env: Env): { url: string; from: string | null } {
  if (opts.gatewayUrl !== undefined) return { url: opts.gatewayUrl, from: null };
  if (previous) return { url: previous.gatewayUrl, from: null };
  const fallback = defaultProfile(env);
  const fallbackGateway = fallback === opts.profile ? undefined : settings.getProfile(fallback)?.gatewayUrl;
  if (fallbackGateway !== undefined) return { url: fallbackGateway, from: fallback };
  const known = new Map<string, string>(); // gateway → the first profile (by name) that uses it
  for (const name of settings.listProfiles().sort()) {
    const gateway = settings.getProfile(name)?.gatewayUrl;
    if (gateway !== undefined && !known.has(gateway)) known.set(gateway, name);
  }
  const [only, ...others] = known;
  if (only !== undefined && others.length === 0) return { url: only[0], from: only[1] };
  const gateways = [...known.keys()];
  throw new AigovError('AIGOV_E_GATEWAY_REQUIRED', {
    profile: opts.profile,
    reason: gateways.length === 0
      ? 'None was given, and no profile has signed in to one yet'
      : `None was given, and the profiles use ${gateways.length} gateways (${gateways.slice(0, 3).join(', ')}${gateways.length > 3 ? ', …' : ''})`,
  });
}

export async function login(opts: LoginOptions): Promise<LoginResult> {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? defaultConfigDir(env);
  const stderr = errorWriter(opts.stderr);
  const settings = openCliSettings(configDir);
  const previous = settings.getProfile(opts.profile);
  const choice = chooseGateway(opts, previous, settings, env);
  const gatewayUrl = normalizeGatewayUrl(choice.url);
  if (choice.from !== null) {
    stderr.write(`Profile ${opts.profile} has no gateway yet: signing in to ${gatewayUrl}, the gateway of profile ${choice.from} (--gateway URL picks another).\n`);
  }
  const fetchOptions = opts.fetch ? { fetch: opts.fetch } : {};
  const discovery = await fetchGatewayDiscovery(gatewayUrl, { ...fetchOptions, ...(opts.signal ? { signal: opts.signal } : {}) });

  // The store first: a locked keychain should stop the login before the user approves anything.
  // A refresh token in the environment (CI) is not where an interactive login goes.
  const { store, warning } = await openCredentialStore({
    insecureStorage: opts.insecureStorage ?? false,
    configDir,
    env: { ...env, AIGOV_REFRESH_TOKEN: undefined },
  });
  if (warning) stderr.write(`aigov: warning: ${warning}\n`);

  const config = await discoverIssuer(discovery.issuer, discovery.cli_client_id, fetchOptions);
  const device = await startDeviceLogin(config, {
    scope: loginScope(discovery),
    resource: discovery.resource,
    ...(opts.pollIntervalSeconds !== undefined && discovery.dev ? { pollIntervalSeconds: opts.pollIntervalSeconds } : {}),
  });
  opts.onPrompt?.(device.prompt);

  const interactive = opts.interactive ?? Boolean(process.stdin.isTTY && stderr.isTTY);
  let browserOpened = false;
  if (interactive && !opts.noBrowser && !isOverSsh(env)) {
    browserOpened = await (opts.openBrowser ?? openInBrowser)(device.prompt.verificationUriComplete ?? device.prompt.verificationUri);
  }
  const view = await showPrompt(device.prompt, gatewayUrl, stderr, opts.tui ?? (Boolean(stderr.isTTY) && !inContinuousIntegration(env)), browserOpened);

  let tokens: TokenSet;
  let user: LoginUser;
  try {
    tokens = await device.waitForTokens(opts.signal);
    user = userFromTokens(tokens, discovery);
    if (!tokens.refreshToken) {
      throw new AigovError('AIGOV_E_LOGIN_FAILED', {
        reason: 'the identity provider issued no refresh token (offline_access was not granted to the aigov CLI client)',
      });
    }
    view.update('approved');
  } catch (error) {
    view.update(phaseOf(error, opts.signal));
    throw error;
  } finally {
    await view.close();
  }

  await store.save(opts.profile, tokens.refreshToken);
  // A login that moved the secret to another store leaves no copy behind in the old one.
  if (previous && previous.credentialStore !== store.kind && previous.credentialStore !== 'env') {
    try {
      const old = await openCredentialStore({ kind: previous.credentialStore, configDir, env });
      await old.store.remove(opts.profile);
    } catch {
      // the old store is gone or locked: nothing to clean up there
    }
  }
  const loggedInAt = Date.now();
  const profile: ProfileSettings = {
    gatewayUrl,
    discovery,
    credentialStore: store.kind,
    user: { subject: user.subject, email: user.email, groups: [...user.groups] },
    loggedInAt,
  };
  settings.setProfile(opts.profile, profile);
  await stopDaemon(opts.profile, configDir, opts.runtimeDir, env);
  return Object.freeze({ profile: opts.profile, gatewayUrl, user, credentials: { kind: store.kind, location: store.location }, loggedInAt });
}

export function loginSummary(result: LoginResult): string {
  return `Logged in to ${result.gatewayUrl} as ${describeUser(result.user)}. Credentials: ${result.credentials.location}.`;
}

// ---- logout -----------------------------------------------------------------------------------

export interface LogoutOptions {
  profile: string;
  configDir?: string;
  runtimeDir?: string;
  env?: Env;
  fetch?: FetchLike;
}

export interface LogoutResult {
  readonly profile: string;
  /** Nothing was stored: the profile was already logged out. */
  readonly wasLoggedIn: boolean;
  /** Revoked at the IdP, or why not (null when there was no token to revoke). */
  readonly revocation: { readonly revoked: boolean; readonly reason: string | null } | null;
  readonly removedFrom: string | null;
  readonly daemonStopped: boolean;
  /** Things the user should know (e.g. an environment token that logout cannot delete). */
  readonly notes: readonly string[];
}

export async function logout(opts: LogoutOptions): Promise<LogoutResult> {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? defaultConfigDir(env);
  const settings = openCliSettings(configDir);
  const profile = settings.getProfile(opts.profile);
  const notes: string[] = [];
  const kind: CredentialStoreKind | undefined = profile?.credentialStore;
  let store: CredentialStore | null = null;
  try {
    store = (await openCredentialStore({ ...(kind ? { kind } : {}), configDir, env })).store;
  } catch (error) {
    notes.push(`the credential store could not be opened (${isAigovError(error) ? error.code : 'error'}); nothing was deleted from it`);
  }
  let refreshToken: string | null = null;
  if (store) {
    try {
      refreshToken = await store.load(opts.profile);
    } catch (error) {
      notes.push(`the stored credentials could not be read (${isAigovError(error) ? error.code : 'error'})`);
    }
  }

  let revocation: LogoutResult['revocation'] = null;
  if (refreshToken) {
    const issuer = profile?.discovery.issuer;
    const clientId = profile?.discovery.cli_client_id;
    if (issuer && clientId) {
      try {
        const config = await discoverIssuer(issuer, clientId, opts.fetch ? { fetch: opts.fetch } : {});
        const outcome = await revokeRefreshToken(config, refreshToken);
        revocation = outcome.revoked ? { revoked: true, reason: null } : { revoked: false, reason: outcome.reason };
      } catch (error) {
        revocation = { revoked: false, reason: isAigovError(error) ? String(error.params['reason'] ?? error.code) : 'unexpected error' };
      }
    } else {
      revocation = { revoked: false, reason: 'the profile does not record the identity provider' };
    }
  }

  let removedFrom: string | null = null;
  if (store && store.kind === 'env') {
    if (refreshToken) notes.push('the refresh token comes from AIGOV_REFRESH_TOKEN in the environment; unset it yourself');
  } else if (store) {
    try {
      if (await store.remove(opts.profile)) removedFrom = store.location;
    } catch (error) {
      notes.push(`the stored credentials could not be deleted (${isAigovError(error) ? error.code : 'error'})`);
    }
  }

  const wasLoggedIn = Boolean(refreshToken) || Boolean(profile?.user);
  if (profile && (profile.user || profile.loggedInAt !== null)) {
    settings.setProfile(opts.profile, { ...profile, user: null, loggedInAt: null });
  }
  const daemonStopped = await stopDaemon(opts.profile, configDir, opts.runtimeDir, env);
  return Object.freeze({ profile: opts.profile, wasLoggedIn, revocation, removedFrom, daemonStopped, notes: Object.freeze(notes) });
}

export function logoutSummary(result: LogoutResult): string {
  if (!result.wasLoggedIn && result.notes.length === 0) {
    return `Not logged in (profile ${result.profile}); nothing to do.`;
  }
  const lines: string[] = [];
  if (result.revocation?.revoked) lines.push('Revoked the refresh token at the identity provider.');
  else if (result.revocation) lines.push(`Could not revoke the refresh token at the identity provider: ${result.revocation.reason ?? 'unknown reason'}.`);
  if (result.removedFrom) lines.push(`Deleted the credentials from ${result.removedFrom}.`);
  if (result.daemonStopped) lines.push('Stopped the aigov daemon of this profile.');
  for (const note of result.notes) lines.push(`Note: ${note}.`);
  lines.push(`Logged out (profile ${result.profile}).`);
  return lines.join('\n');
}

// ---- status / whoami --------------------------------------------------------------------------

export interface StatusOptions {
  profile: string;
  configDir?: string;
  runtimeDir?: string;
  env?: Env;
  /** Ask the daemon (default true); whoami does not. */
  daemon?: boolean;
  /** Ask the gateway whether it answers (default true); whoami does not. */
  gateway?: boolean;
  fetch?: FetchLike;
}

export interface DaemonState {
  /** This configuration's daemon answers (a daemon of another configuration does not count). */
  readonly running: boolean;
  /** It serves the profile's current login; false: an earlier one (the next `aigov run` restarts it). Null when not running. */
  readonly currentLogin: boolean | null;
  readonly pid: number | null;
  readonly port: number | null;
  readonly startedAt: string | null;
  readonly runs: number | null;
  readonly tokenExpiresAt: string | null;
}

export interface StatusReport {
  readonly profile: string;
  readonly loggedIn: boolean;
  readonly gateway: string | null;
  /** The gateway answered its discovery just now; null when there is no gateway or it was not asked. */
  readonly gatewayReachable: boolean | null;
  /** Why it did not (one line, safe to print); null when it did or was not asked. */
  readonly gatewayProblem: string | null;
  readonly issuer: string | null;
  readonly user: LoginUser | null;
  readonly loggedInAt: string | null;
  readonly credentials: { readonly kind: CredentialStoreKind; readonly location: string; readonly present: boolean; readonly problem: string | null } | null;
  readonly daemon: DaemonState | null;
}

function isoOrNull(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value).toISOString();
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  return null;
}

function numberOrNull(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (Array.isArray(value)) return value.length;
  return null;
}

const DAEMON_NOT_RUNNING: DaemonState = Object.freeze({ running: false, currentLogin: null, pid: null, port: null, startedAt: null, runs: null, tokenExpiresAt: null });

async function daemonState(profile: string, configDir: string, runtimeDir: string | undefined, env: Env): Promise<DaemonState> {
  try {
    const { inspectDaemon } = await import('../daemon/daemon-client.ts');
    const seen = await inspectDaemon(profile, { configDir, ...(runtimeDir ? { runtimeDir } : {}), env: { ...env } });
    if (seen.state !== 'running' || seen.fit === 'other-configuration') return DAEMON_NOT_RUNNING;
    const status = seen.status as unknown as Record<string, unknown>;
    return Object.freeze({
      running: true,
      currentLogin: seen.fit === 'same',
      pid: numberOrNull(status['pid']),
      port: numberOrNull(status['port']),
      startedAt: isoOrNull(status['startedAt']),
      runs: numberOrNull(status['runs']),
      tokenExpiresAt: isoOrNull(status['tokenExpiresAt']),
    });
  } catch {
    return DAEMON_NOT_RUNNING;
  }
}

async function credentialState(
  profile: string,
  kind: CredentialStoreKind,
  configDir: string,
  env: Env,
): Promise<NonNullable<StatusReport['credentials']>> {
  let store: CredentialStore;
  try {
    store = (await openCredentialStore({ kind, configDir, env })).store;
  } catch (error) {
    return { kind, location: kind, present: false, problem: isAigovError(error) ? error.message : 'the credential store cannot be opened' };
  }
  try {
    return { kind, location: store.location, present: (await store.load(profile)) !== null, problem: null };
  } catch (error) {
    return { kind, location: store.location, present: false, problem: isAigovError(error) ? error.message : 'the credentials cannot be read' };
  }
}

/** Time `aigov status` gives the gateway to answer: enough for a slow link, short for a terminal. */
const GATEWAY_PROBE_SECONDS = 3;

/** Whether the gateway answers its discovery document, and if not why (AIGOV_CA_FILE trusted, as the daemon does). */
async function probeGateway(gatewayUrl: string, env: Env, fetchLike: FetchLike | undefined): Promise<{ reachable: boolean; problem: string | null }> {
  const caFile = env.AIGOV_CA_FILE?.trim();
  try {
    const doFetch = fetchLike ?? (caFile && gatewayUrl.startsWith('https:') ? await (await import('../daemon/ca-fetch.ts')).caFetch(caFile) : undefined);
    await fetchGatewayDiscovery(gatewayUrl, { timeoutSeconds: GATEWAY_PROBE_SECONDS, ...(doFetch ? { fetch: doFetch } : {}) });
    return { reachable: true, problem: null };
  } catch (error) {
    if (!isAigovError(error)) return { reachable: false, problem: `the gateway could not be asked (${(error as NodeJS.ErrnoException).code ?? 'error'}${caFile ? '; check AIGOV_CA_FILE' : ''})` };
    const reason = String(error.params['reason'] ?? error.code);
    return { reachable: false, problem: error.code === 'AIGOV_E_GATEWAY_UNREACHABLE' ? `unreachable: ${reason}` : `not answering like an aigov gateway: ${reason}` };
  }
}

export async function readStatus(opts: StatusOptions): Promise<StatusReport> {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? defaultConfigDir(env);
  const settings: CliSettings = openCliSettings(configDir);
  const profile = settings.getProfile(opts.profile);
  const [credentials, daemon, probe] = await Promise.all([
    profile ? credentialState(opts.profile, profile.credentialStore, configDir, env) : null,
    opts.daemon === false ? null : daemonState(opts.profile, configDir, opts.runtimeDir, env),
    profile && opts.gateway !== false ? probeGateway(profile.gatewayUrl, env, opts.fetch) : null,
  ]);
  const user = profile?.user ? Object.freeze({ ...profile.user, groups: Object.freeze([...profile.user.groups]) }) : null;
  return Object.freeze({
    profile: opts.profile,
    loggedIn: Boolean(user && credentials?.present),
    gateway: profile?.gatewayUrl ?? null,
    gatewayReachable: probe?.reachable ?? null,
    gatewayProblem: probe?.problem ?? null,
    issuer: profile?.discovery.issuer ?? null,
    user,
    loggedInAt: isoOrNull(profile?.loggedInAt ?? null),
    credentials,
    daemon,
  });
}

export function formatStatus(report: StatusReport): string {
  const lines = [`Profile:      ${report.profile}`];
  if (!report.loggedIn) {
    const why = report.user && report.credentials && !report.credentials.present
      ? report.credentials.problem ?? `no entry for this profile in ${report.credentials.location}`
      : null;
    lines.push(`Logged in:    no${why ? ` (${why})` : ''}`);
  }
  lines.push(`Gateway:      ${report.gateway ?? '(none)'}${report.gatewayProblem ? ` — ${report.gatewayProblem}` : report.gatewayReachable ? ' (reachable)' : ''}`);
  if (report.user) {
    lines.push(`User:         ${report.user.email ?? report.user.subject}${report.user.email ? ` (sub ${report.user.subject})` : ''}`);
    lines.push(`Groups:       ${report.user.groups.length ? report.user.groups.join(', ') : '(none)'}`);
  }
  if (report.loggedInAt) lines.push(`Logged in at: ${report.loggedInAt}`);
  if (report.credentials) {
    const { present, problem, location } = report.credentials;
    lines.push(`Credentials:  ${present ? location : problem ? `${location} (unreadable)` : `none for this profile in ${location}`}`);
  }
  if (report.daemon) {
    if (report.daemon.running) {
      const parts = [`running (pid ${report.daemon.pid ?? '?'}, 127.0.0.1:${report.daemon.port ?? '?'}`];
      if (report.daemon.runs !== null) parts.push(`${report.daemon.runs} active run${report.daemon.runs === 1 ? '' : 's'}`);
      lines.push(`Daemon:       ${parts.join(', ')})${report.daemon.currentLogin === false ? ' — serves an earlier login; the next `aigov run` restarts it' : ''}`);
      lines.push(`Access token: ${report.daemon.tokenExpiresAt ? `expires ${report.daemon.tokenExpiresAt}` : 'none yet (fetched on first use)'}`);
    } else {
      lines.push('Daemon:       not running');
    }
  }
  if (report.gatewayReachable === false) {
    lines.push(`Check that the gateway runs (\`aigov server --dev\` starts a local one) and that ${report.gateway} is its URL.`);
  }
  if (!report.loggedIn) lines.push(`Run \`aigov login${report.gateway ? '' : ' --gateway URL'}${report.profile === 'default' ? '' : ` --profile ${report.profile}`}\` to sign in.`);
  return lines.join('\n');
}

/** `aigov whoami`'s line, or null when not logged in. */
export function whoamiLine(report: StatusReport): string | null {
  if (!report.loggedIn || !report.user) return null;
  const groups = report.user.groups.length ? report.user.groups.join(', ') : 'no groups';
  return `${report.user.email ?? report.user.subject} (${groups}) on ${report.gateway ?? '?'}`;
}

/**
 * Ink renders only its last frame when it believes it runs in CI (is-in-ci's test, repeated here):
 * the device code would stay hidden until the login ended. So in CI the plain lines are used.
 */
export function inContinuousIntegration(env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.CI === '0' || env.CI === 'false') return false;
  return 'CI' in env || 'CONTINUOUS_INTEGRATION' in env || Object.keys(env).some((key) => key.startsWith('CI_'));
}
