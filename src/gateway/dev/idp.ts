/**
 * The embedded identity provider of `aigov server --dev`.
 *
 * panva's oidc-provider, mounted under the issuer's path (e.g. /oidc) on the gateway's own
 * node:http server, with four seeded users (alice a developer, bob and dave approvers, carol an auditor) and the one public client the aigov CLI uses. It
 * issues what a company IdP would: JWT access tokens (ES256, `aud` = the gateway, `scope` with
 * the gateway's required scope, plus `email` and `groups`) through the device authorization
 * grant, rotating refresh tokens, and revocation. State (grants, device codes, refresh tokens,
 * sessions) lives in SQLite and the keys in files, both in the state directory, so a login
 * survives a restart.
 *
 * A device login can be finished in a browser (verification page → pick a seeded user and give
 * the approve secret) or without one: `approveDevice()` (in process: the gateway's terminal) and,
 * for loopback callers with the approve secret only, `POST <issuer>/dev/approve`. Whoever
 * finishes a login as a seeded user gets that user's tokens, so both HTTP ways require the
 * per-start secret (dev-approve-secret.ts); other local users do not have it.
 *
 * This module exists for local development only; a production gateway trusts an external IdP
 * and never starts it.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ensurePrivateDatabase, type PrivatePathOptions } from '../../config/private-files.ts';
import { DEV_APPROVE_SECRET_FILE, devApproveSecretMatches } from './dev-approve-secret.ts';
import { loadDevIdpSecrets, SIGNING_ALG } from './idp-keys.ts';
import {
  errorPage,
  page,
  successPage,
  userCodeConfirmPage,
  userCodeInputPage,
  userPickerPage,
} from './idp-pages.ts';
import { loadOidcProvider } from './idp-provider-types.ts';
import type { OidcGrant, OidcKoaContext, OidcProvider, OidcProviderModule } from './idp-provider-types.ts';
import { SqliteAdapterStore } from './idp-sqlite-adapter.ts';
import { DEV_USERS, type DevUser } from './dev-users.ts';

export { DEV_USERS, type DevUser } from './dev-users.ts';


export interface DevIdpOptions {
  /** Absolute URL, e.g. 'http://127.0.0.1:8787/oidc'; the IdP is mounted under its path. */
  issuer: string;
  /** Resource indicator and JWT `aud` of gateway access tokens, e.g. 'http://127.0.0.1:8787'. */
  audience: string;
  /** The CLI's public client (no secret; device_code + refresh_token grants). */
  cliClientId: string;
  /** The resource-server scope the gateway requires in access tokens, e.g. 'aigov'. */
  requiredScope: string;
  /** Keys and `idp.sqlite` (0600, in this 0700 directory) live here so logins survive restarts. */
  stateDir: string;
  /**
   * Required by `POST <issuer>/dev/approve` / `dev/deny` and the browser's user picker (see
   * dev-approve-secret.ts). Default: a random one that only this process knows (`idp.approveSecret`).
   */
  approveSecret?: string;
  /** Told when an existing state file was accessible to other users and has been made private; log it. */
  onTightened?: PrivatePathOptions['onTightened'];
  /** Access token lifetime; default 600. */
  accessTokenTtlSeconds?: number;
  /** Called with unexpected internal errors (never with expected OAuth errors); default: one line on stderr. */
  onError?: (error: Error) => void;
}

export interface DevIdp {
  readonly issuer: string;
  readonly users: readonly DevUser[];
  /** What the HTTP ways of approving a login require (never log it). */
  readonly approveSecret: string;
  /** node:http handler for every request whose path starts with the issuer's path (e.g. /oidc/...). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Approves a pending device authorization (user code as shown, dashes/case-insensitive) as a seeded user. */
  approveDevice(userCode: string, userId: string): Promise<void>;
  /** Denies it (the polling client then gets access_denied). */
  denyDevice(userCode: string): Promise<void>;
  close(): Promise<void>;
}

export type DevIdpErrorReason =
  | 'unknown_user'
  | 'unknown_user_code'
  | 'expired_user_code'
  | 'user_code_already_used'
  | 'invalid_resource';

/** A failed approveDevice/denyDevice; `reason` is stable, the message says what to do. */
export class DevIdpError extends Error {
  readonly reason: DevIdpErrorReason;
  constructor(reason: DevIdpErrorReason, message: string) {
    super(message);
    this.name = 'DevIdpError';
    this.reason = reason;
  }
}

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** OIDC scopes this IdP knows (beyond the gateway's resource scope). */
const OIDC_SCOPES = new Set(['openid', 'offline_access', 'email', 'profile', 'groups']);
const DAY = 24 * 60 * 60;
const MAX_DEV_BODY_BYTES = 16 * 1024;

export function findDevUser(idOrEmail: string): DevUser | undefined {
  const wanted = idOrEmail.trim().toLowerCase();
  return DEV_USERS.find((u) => u.id === wanted || u.email === wanted);
}

/** oidc-provider's user code normalisation: upper-case, only word characters. */
function normalizeUserCode(input: string): string {
  return input.toUpperCase().replace(/\W/g, '');
}

function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  });
  res.end(html);
}

class BodyTooLargeError extends Error {}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new BodyTooLargeError('request body too large');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The scopes a grant for this device login gets: the known OIDC ones plus the gateway scope. */
function splitScopes(scope: unknown, requiredScope: string): { oidc: string[]; resource: string[] } {
  const requested = new Set(typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);
  return {
    oidc: [...requested].filter((s) => OIDC_SCOPES.has(s)),
    resource: requested.has(requiredScope) ? [requiredScope] : [],
  };
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const issuerUrl = new URL(options.issuer);
  const issuerPath = issuerUrl.pathname.replace(/\/+$/, '');
  const { audience, cliClientId, requiredScope } = options;
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 600;
  const onError =
    options.onError ??
    ((error: Error) => {
      process.stderr.write(`aigov dev IdP: internal error: ${error.message}\n`);
    });

  const approveSecret = options.approveSecret ?? randomBytes(32).toString('base64url');
  if (approveSecret.length < 16) throw new Error('the dev IdP needs an approve secret of at least 16 characters');
  const privacy = { onTightened: options.onTightened };
  const secrets = await loadDevIdpSecrets(options.stateDir, privacy);
  const { Provider, errors } = (await loadOidcProvider()) satisfies OidcProviderModule;
  // Grants, device codes and refresh tokens: as private as the keys.
  const storeFile = join(options.stateDir, 'idp.sqlite');
  ensurePrivateDatabase(storeFile, privacy);
  const store = new SqliteAdapterStore(storeFile);

  const resourceServerInfo = {
    scope: requiredScope,
    audience,
    accessTokenTTL: accessTokenTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: SIGNING_ALG } },
  };

  const configuration: Record<string, unknown> = {
    adapter: (model: string) => store.adapterFor(model),
    jwks: secrets.jwks,
    cookies: {
      keys: secrets.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', path: issuerPath || '/' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    clients: [
      {
        client_id: cliClientId,
        client_name: 'aigov CLI',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: SIGNING_ALG,
      },
    ],
    clientDefaults: {
      grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
      id_token_signed_response_alg: SIGNING_ALG,
      response_types: [],
      token_endpoint_auth_method: 'none',
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx: OidcKoaContext, form: string, _out: unknown, err?: { name?: string; userCode?: string }) => {
          ctx.type = 'html';
          ctx.body = userCodeInputPage(form, err);
        },
        userCodeConfirmSource: (
          ctx: OidcKoaContext,
          form: string,
          client: { clientId: string; clientName?: string },
          _deviceInfo: unknown,
          userCode: string,
        ) => {
          ctx.type = 'html';
          ctx.body = userCodeConfirmPage(form, client.clientName ?? client.clientId, userCode);
        },
        successSource: (ctx: OidcKoaContext) => {
          ctx.type = 'html';
          ctx.body = successPage(ctx.oidc.client?.clientName);
        },
      },
      revocation: {
        enabled: true,
        // A public client may revoke only its own tokens; anything else is silently ignored (RFC 7009).
        allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) =>
          token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        // The device flow gets gateway JWTs even when the client sends no `resource`.
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => {
          if (oneOf) return oneOf.includes(audience) ? audience : oneOf;
          return audience;
        },
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          if (resourceIndicator !== audience) {
            throw new errors.InvalidTarget(`this dev IdP only issues tokens for ${audience}`);
          }
          return resourceServerInfo;
        },
      },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      userinfo: { enabled: true },
    },
    findAccount: (_ctx: unknown, sub: string) => {
      const user = DEV_USERS.find((u) => u.id === sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        claims: () => ({
          sub: user.id,
          email: user.email,
          email_verified: true,
          name: user.name,
          preferred_username: user.id,
          groups: [...user.groups],
        }),
      };
    },
    extraTokenClaims: (_ctx: unknown, token: { kind?: string; accountId?: string }) => {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      const user = DEV_USERS.find((u) => u.id === token.accountId);
      return user ? { email: user.email, name: user.name, groups: [...user.groups] } : undefined;
    },
    // Device-flow tokens do not depend on the browser session that approved them.
    expiresWithSession: () => false,
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(grant: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    // Always ask which seeded user to act as; only the grant made by that interaction is used.
    loadExistingGrant: (ctx: { oidc: { provider: OidcProvider; result?: { consent?: { grantId?: string } } } }) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `${issuerPath}/interaction/${interaction.uid}`,
    },
    renderError: (ctx: OidcKoaContext, out: Record<string, unknown>) => {
      ctx.type = 'html';
      ctx.body = errorPage(out);
    },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      BackchannelAuthenticationRequest: 600,
      ClientCredentials: accessTokenTtl,
      DeviceCode: 600,
      Grant: 30 * DAY,
      IdToken: 3600,
      Interaction: 3600,
      PreAuthorizedCode: 600,
      RefreshToken: 30 * DAY,
      Session: DAY,
    },
  };

  let provider: OidcProvider;
  try {
    provider = new Provider(options.issuer, configuration);
  } catch (error) {
    store.close();
    throw error;
  }
  provider.proxy = false; // loopback dev server: never trust X-Forwarded-* headers
  provider.on('server_error', (_ctx, error) => onError(error as Error));
  // Replaces Koa's default stderr logger; client errors (4xx, exposed) are answered, not reported.
  provider.on('error', (error) => {
    const e = error as Error & { status?: number; expose?: boolean };
    if (e.expose === true || (typeof e.status === 'number' && e.status < 500)) return;
    onError(e);
  });
  const koaHandler = provider.callback();
  let closed = false;

  /** A grant for a device login: the requested OIDC scopes plus the gateway scope, if asked for. */
  function grantFor(accountId: string, clientId: string, scope: unknown): { grant: OidcGrant; scope: string } {
    const scopes = splitScopes(scope, requiredScope);
    const grant = new provider.Grant({ accountId, clientId });
    if (scopes.oidc.length) grant.addOIDCScope(scopes.oidc.join(' '));
    if (scopes.resource.length) grant.addResourceScope(audience, scopes.resource.join(' '));
    return { grant, scope: [...scopes.oidc, ...scopes.resource].join(' ') };
  }

  async function pendingDeviceCode(userCode: string) {
    const normalized = normalizeUserCode(userCode);
    const code = normalized ? await provider.DeviceCode.findByUserCode(normalized, { ignoreExpiration: true }) : undefined;
    if (!code) {
      throw new DevIdpError('unknown_user_code', 'No pending device login has this user code; check it, or run `aigov login` again.');
    }
    if (code.isExpired) {
      throw new DevIdpError('expired_user_code', 'This device login has expired; run `aigov login` again.');
    }
    if (code.accountId || code.error) {
      throw new DevIdpError('user_code_already_used', 'This device login was already approved or denied.');
    }
    return code;
  }

  async function approveDevice(userCode: string, userId: string): Promise<void> {
    const user = findDevUser(userId);
    if (!user) {
      throw new DevIdpError('unknown_user', `Unknown dev user "${userId}"; the seeded users are ${DEV_USERS.map((u) => u.id).join(', ')}.`);
    }
    const code = await pendingDeviceCode(userCode);
    const requested = code.params['resource'];
    const resources = requested === undefined ? [audience] : Array.isArray(requested) ? requested : [requested];
    if (resources.length !== 1 || resources[0] !== audience) {
      throw new DevIdpError('invalid_resource', `This device login asks for a resource other than ${audience}.`);
    }
    const { grant, scope } = grantFor(user.id, code.clientId, code.params['scope']);
    const grantId = await grant.save();
    Object.assign(code, {
      accountId: user.id,
      grantId,
      scope,
      resource: audience,
      authTime: epochSeconds(),
      amr: ['dev'],
    });
    await code.save();
  }

  async function denyDevice(userCode: string): Promise<void> {
    const code = await pendingDeviceCode(userCode);
    Object.assign(code, { error: 'access_denied', errorDescription: 'the device login was denied' });
    await code.save();
  }

  /**
   * `POST <issuer>/dev/approve` {"user_code","user","secret"} and `POST <issuer>/dev/deny`
   * {"user_code","secret"}. Exists only in `aigov server --dev` (this whole IdP does): it lets the
   * operator's scripts and tests finish a device login without a browser. Loopback callers only,
   * JSON bodies only (so a web page cannot post it cross-site without a CORS preflight, which is
   * never granted), and only with the per-start approve secret (checked before anything else in
   * the body, so a caller without it learns nothing about user codes).
   */
  async function handleDevEndpoint(req: IncomingMessage, res: ServerResponse, action: 'approve' | 'deny'): Promise<void> {
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'invalid_request', error_description: 'use POST' }, { allow: 'POST' });
      return;
    }
    if (!isLoopback(req.socket.remoteAddress)) {
      sendJson(res, 403, { error: 'forbidden', error_description: 'the dev approval endpoint only accepts requests from loopback addresses' });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== issuerUrl.origin) {
      sendJson(res, 403, { error: 'forbidden', error_description: 'cross-origin requests are not accepted' });
      return;
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      sendJson(res, 415, { error: 'invalid_request', error_description: 'send a JSON body with Content-Type: application/json' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, MAX_DEV_BODY_BYTES));
    } catch (error) {
      const tooLarge = error instanceof BodyTooLargeError;
      sendJson(res, tooLarge ? 413 : 400, {
        error: 'invalid_request',
        error_description: tooLarge ? 'request body too large' : 'the body is not valid JSON',
      });
      return;
    }
    const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    if (!devApproveSecretMatches(approveSecret, fields['secret'])) {
      sendJson(res, 403, {
        error: 'forbidden',
        error_description: `missing or wrong "secret": send the approve secret that \`aigov server --dev\` printed in its banner (also in ${DEV_APPROVE_SECRET_FILE} in its state directory, readable only by the user who runs it)`,
      });
      return;
    }
    const userCode = fields['user_code'];
    const user = fields['user'];
    if (typeof userCode !== 'string' || !userCode) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'expected {"user_code": "...", "user": "alice"}' });
      return;
    }
    if (action === 'approve' && (typeof user !== 'string' || !user)) {
      sendJson(res, 400, {
        error: 'invalid_request',
        error_description: `expected "user": one of ${DEV_USERS.map((u) => u.id).join(', ')}`,
      });
      return;
    }
    try {
      if (action === 'approve') {
        await approveDevice(userCode, user as string);
        sendJson(res, 200, { approved: true, user: findDevUser(user as string)?.id });
      } else {
        await denyDevice(userCode);
        sendJson(res, 200, { denied: true });
      }
    } catch (error) {
      if (!(error instanceof DevIdpError)) throw error;
      const status = error.reason === 'unknown_user_code' ? 404 : error.reason === 'expired_user_code' ? 410 : error.reason === 'user_code_already_used' ? 409 : 400;
      sendJson(res, status, { error: error.reason, error_description: error.message });
    }
  }

  /** The browser's "which seeded user are you" step (oidc-provider's login + consent prompts). */
  async function handleInteraction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (error) {
      if (error instanceof errors.SessionNotFound) {
        sendHtml(res, 400, page('Sign-in expired', '<h1>Sign-in expired</h1><p class="err">This sign-in page is no longer valid. Start again from the code shown by <code>aigov login</code>.</p>'));
        return;
      }
      throw error;
    }
    if (details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in mismatch', '<h1>Sign-in mismatch</h1><p class="err">This page does not belong to the current sign-in.</p>'));
      return;
    }
    const clientId = typeof details.params['client_id'] === 'string' ? details.params['client_id'] : '';
    const picker = async (status: number, error?: string): Promise<void> => {
      const client = await provider.Client.find(clientId);
      const scopes = typeof details.params['scope'] === 'string' ? details.params['scope'].split(' ').filter(Boolean) : [];
      sendHtml(res, status, userPickerPage(`${issuerPath}/interaction/${encodeURIComponent(uid)}`, DEV_USERS, client?.clientName ?? clientId, scopes, error));
    };
    if (req.method === 'GET') {
      await picker(200);
      return;
    }
    let form: URLSearchParams;
    try {
      form = new URLSearchParams(await readBody(req, MAX_DEV_BODY_BYTES));
    } catch {
      sendHtml(res, 413, errorPage({ error: 'invalid_request', error_description: 'request body too large' }));
      return;
    }
    if (form.get('deny')) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the device login was denied' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    // Denying needs no secret (anyone holding the user code can already cancel it on the
    // confirmation page); signing in as someone does.
    if (!devApproveSecretMatches(approveSecret, form.get('secret'))) {
      await picker(403, `The approve secret is missing or wrong. It is printed in the banner of aigov server --dev (and kept in ${DEV_APPROVE_SECRET_FILE} in its state directory).`);
      return;
    }
    const user = findDevUser(form.get('user') ?? '');
    if (!user) {
      sendHtml(res, 400, errorPage({ error: 'unknown_user', error_description: `pick one of ${DEV_USERS.map((u) => u.id).join(', ')}` }));
      return;
    }
    const { grant } = grantFor(user.id, clientId, details.params['scope']);
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.id, amr: ['dev'] }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, issuerUrl.origin);
    const path = url.pathname;
    if (issuerPath && path !== issuerPath && !path.startsWith(`${issuerPath}/`)) {
      sendJson(res, 404, { error: 'not_found', error_description: 'not a dev IdP path' });
      return;
    }
    if (closed) {
      sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'the dev IdP is shutting down' });
      return;
    }
    const rest = path.slice(issuerPath.length) || '/';
    if (rest === '/dev/approve' || rest === '/dev/deny') {
      await handleDevEndpoint(req, res, rest === '/dev/approve' ? 'approve' : 'deny');
      return;
    }
    const interaction = /^\/interaction\/([^/]+)$/.exec(rest);
    if (interaction?.[1]) {
      await handleInteraction(req, res, decodeURIComponent(interaction[1]));
      return;
    }
    // Mounting: oidc-provider routes on the path below the issuer and derives its absolute URLs
    // from req.originalUrl minus req.url (the same contract as express/connect mounting).
    const mounted = req as IncomingMessage & { originalUrl?: string };
    mounted.originalUrl = url.pathname + url.search;
    req.url = rest + url.search;
    await koaHandler(req, res);
  }

  return {
    issuer: options.issuer,
    users: DEV_USERS,
    approveSecret,
    handle(req, res) {
      route(req, res).catch((error: unknown) => {
        onError(error instanceof Error ? error : new Error(String(error)));
        if (!res.headersSent) {
          sendJson(res, 500, { error: 'server_error', error_description: 'the dev IdP failed to handle this request' });
        } else {
          res.destroy();
        }
      });
    },
    approveDevice,
    denyDevice,
    close() {
      if (!closed) {
        closed = true;
        store.close();
      }
      return Promise.resolve();
    },
  };
}
