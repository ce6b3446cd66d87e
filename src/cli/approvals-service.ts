/**
 * The approver's client for the gateway's approvals API (src/protocol/approvals.ts): list, get,
 * approve, deny, and a live watch over the SSE event stream that reconnects with backoff and
 * resumes where it left off: each reconnection sends the id of the last event handled
 * (`Last-Event-ID`), so the gateway — the same one restarted, or another replica behind the same
 * URL — sends the changes missed meanwhile, or a fresh snapshot when it cannot (too far behind,
 * an id it does not know). Answers are validated with the protocol's zod schemas; the
 * gateway's coded errors become AigovErrors with its code, message and hint, so the CLI prints
 * its usual one-liner and stable exit code.
 *
 * Tokens come from the profile's daemon (control request `access-token`): the CLI never runs a
 * refresher of its own, which would fight the daemon's over rotating refresh tokens. The token
 * stays in this process's memory and is never printed.
 */
import { AigovError, ERRORS, type ErrorCode } from '../core/errors.ts';
import { SseParser } from '../core/sse.ts';
import { badFlag } from './flag-values.ts';
import {
  APPROVALS_PATH,
  ApprovalListSchema,
  ApprovalViewSchema,
  type ApprovalScope,
  type ApprovalState,
  type ApprovalView,
} from '../protocol/approvals.ts';
import type { DaemonUser } from '../daemon/control-protocol.ts';

export interface GatewayToken {
  readonly token: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export interface ApprovalsClientOptions {
  /** Gateway base URL, e.g. `https://aigov.example.com`. */
  readonly gatewayUrl: string;
  /** The user's access token; `renew` after the gateway refused the last one as expired. */
  readonly getToken: (options: { renew: boolean }) => Promise<GatewayToken>;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** Waits between reconnection attempts of a watch (default 0.5 s doubling to 15 s, ±20 %). */
  readonly reconnectDelayMs?: (attempt: number) => number;
  /** A watch with no byte (not even a keep-alive) for this long reconnects; default 45 s (3 keep-alives). */
  readonly idleTimeoutMs?: number;
  /** list/get/approve/deny give up after this long without a complete answer; default 30 s. */
  readonly requestTimeoutMs?: number;
}

export type ApprovalStateFilter = ApprovalState | 'all';

export interface ListOptions {
  readonly scope?: ApprovalScope;
  readonly state?: ApprovalStateFilter;
  readonly limit?: number;
}

export type WatchStatus =
  /** The first connection. */
  | { readonly state: 'connecting' }
  /** Connecting again, to resume after the last event seen: the stream dropped (`error`: why), or reconnect() asked (null). */
  | { readonly state: 'reconnecting'; readonly error: AigovError | null }
  | { readonly state: 'live' }
  /** The stream dropped, or connecting failed: the next attempt is in `inMs`. */
  | { readonly state: 'retrying'; readonly inMs: number; readonly error: AigovError };

export interface WatchHandlers {
  /**
   * The pending approvals in scope: replaces whatever was known. On the first connection, and on
   * a reconnection the gateway could not resume (it sends the missed changes as onApproval otherwise).
   */
  onSnapshot(approvals: readonly ApprovalView[]): void;
  /** One approval changed: created, voted, decided or expired (missed ones first after a reconnection). */
  onApproval(approval: ApprovalView): void;
  onStatus?(status: WatchStatus): void;
}

export interface ApprovalWatch {
  /** Drops the connection (or the wait before the next attempt) and connects again now, resuming after the last event seen. */
  reconnect(): void;
  /** Settles when the signal given to watch() aborted and the connection is closed. */
  readonly done: Promise<void>;
}

export interface ApprovalsClient {
  readonly gatewayUrl: string;
  list(options?: ListOptions): Promise<ApprovalView[]>;
  get(id: string): Promise<ApprovalView>;
  approve(id: string, reason?: string): Promise<ApprovalView>;
  deny(id: string, reason?: string): Promise<ApprovalView>;
  watch(scope: ApprovalScope, handlers: WatchHandlers, signal: AbortSignal): ApprovalWatch;
}

/** The longest reason the protocol takes (ApprovalDecisionBodySchema). */
export const MAX_REASON_LENGTH = 2000;
/** Tokens this close to expiry are not used for a new call. */
const TOKEN_MARGIN_MS = 30_000;

/**
 * A coded error as the gateway rendered it: its message and hint already carry the details
 * (approval id, approver groups) that this side has no parameters for.
 */
const CodedError = AigovError as unknown as new (code: ErrorCode, params: Record<string, string | number>, options?: ErrorOptions) => AigovError;
export class GatewayReportedError extends CodedError {
  readonly #hint: string;
  /** The HTTP status the gateway answered with. */
  readonly httpStatus: number;
  constructor(code: ErrorCode, message: string, hint: string, httpStatus: number) {
    super(code, {});
    this.message = message;
    this.#hint = hint;
    this.httpStatus = httpStatus;
  }
  override get hint(): string {
    return this.#hint;
  }
}

export function createApprovalsClient(options: ApprovalsClientOptions): ApprovalsClient {
  const base = options.gatewayUrl.replace(/\/+$/, '');
  const origin = new URL(base).origin;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const reconnectDelay = options.reconnectDelayMs ?? defaultReconnectDelay;
  let cached: GatewayToken | null = null;
  let pending: Promise<GatewayToken> | null = null;

  const token = async (renew: boolean): Promise<string> => {
    if (!renew && cached !== null && cached.expiresAt - TOKEN_MARGIN_MS > now()) return cached.token;
    // One request to the daemon at a time, however many calls need a token.
    pending ??= options.getToken({ renew }).finally(() => (pending = null));
    cached = await pending;
    return cached.token;
  };

  /** One HTTP exchange with the gateway, with the token renewed and the call retried once on a 401. */
  const exchange = async (method: 'GET' | 'POST', path: string, init: { body?: string; accept: string; signal?: AbortSignal; headers?: Record<string, string> }): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const bearer = await token(attempt > 0);
      let response: Response;
      try {
        response = await doFetch(`${base}${path}`, {
          method,
          headers: {
            ...init.headers,
            authorization: `Bearer ${bearer}`,
            accept: init.accept,
            ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(init.body !== undefined ? { body: init.body } : {}),
          redirect: 'error',
          ...(init.signal ? { signal: init.signal } : {}),
        });
      } catch (error) {
        if (init.signal?.aborted) throw timedOut(init.signal.reason, origin);
        const { networkReason } = await import('../auth/oidc-client.ts');
        throw new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: networkReason(error) }, { cause: error });
      }
      if (response.ok) return response;
      const error = await errorFromResponse(response, method, path, origin);
      if (response.status === 401 && attempt === 0) continue;
      throw error;
    }
  };

  const json = async (method: 'GET' | 'POST', path: string, body?: object): Promise<unknown> => {
    const signal = AbortSignal.timeout(requestTimeoutMs);
    const response = await exchange(method, path, { accept: 'application/json', signal, ...(body ? { body: JSON.stringify(body) } : {}) });
    try {
      return await response.json();
    } catch (error) {
      if (signal.aborted) throw timedOut(signal.reason, origin);
      throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: `its answer to ${method} ${pathOnly(path)} is not JSON` }, { cause: error });
    }
  };

  const decide = async (decision: 'approve' | 'deny', id: string, reason: string | undefined): Promise<ApprovalView> => {
    const trimmed = reason?.trim();
    if (trimmed !== undefined && trimmed.length > MAX_REASON_LENGTH) {
      // The reason itself is not repeated: it may name a customer.
      throw new AigovError('AIGOV_E_BAD_FLAG', {
        flag: '--reason',
        value: `of ${trimmed.length} characters`,
        problem: `at most ${MAX_REASON_LENGTH} are kept`,
        example: `\`aigov approvals ${decision} ID --reason "reviewed, no customer data"\``,
      });
    }
    const path = `${APPROVALS_PATH}/${encodeId(id)}/${decision}`;
    return validate(ApprovalViewSchema, await json('POST', path, trimmed ? { reason: trimmed } : {}), `POST ${pathOnly(path)}`, origin);
  };

  return {
    gatewayUrl: base,
    async list(opts = {}) {
      const query = new URLSearchParams({ scope: opts.scope ?? 'decide', state: opts.state ?? 'pending' });
      if (opts.limit !== undefined) query.set('limit', String(opts.limit));
      const path = `${APPROVALS_PATH}?${query.toString()}`;
      return validate(ApprovalListSchema, await json('GET', path), `GET ${APPROVALS_PATH}`, origin).approvals;
    },
    async get(id) {
      const path = `${APPROVALS_PATH}/${encodeId(id)}`;
      return validate(ApprovalViewSchema, await json('GET', path), `GET ${pathOnly(path)}`, origin);
    },
    approve: (id, reason) => decide('approve', id, reason),
    deny: (id, reason) => decide('deny', id, reason),
    watch(scope, handlers, signal) {
      let connection: AbortController | null = null;
      let wake: (() => void) | null = null;
      let skipWait = false;
      /**
       * The id of the last event handled (a snapshot's or a change's), sent as `Last-Event-ID` on
       * every reconnection: the gateway answers with what changed since, from any replica.
       */
      let lastEventId: string | null = null;
      /** Why the last connection ended (null: reconnect() ended it); undefined before the first one did. */
      let dropped: AigovError | null | undefined;
      const report = (status: WatchStatus): void => handlers.onStatus?.(status);

      /**
       * One connection: resolves when the stream ends or fails (never with the snapshot unread).
       * `live`: the watch follows the gateway from now on; `delivering`: the stream brought
       * something (the backoff starts over — not for a gateway that answers and hangs up at once).
       */
      const streamOnce = async (abort: AbortController, live: () => void, delivering: () => void): Promise<AigovError> => {
        const path = `${APPROVALS_PATH}/events?scope=${scope}`;
        let idle: ReturnType<typeof setTimeout> | undefined;
        const touch = (): void => {
          clearTimeout(idle);
          idle = setTimeout(() => abort.abort(new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: `the event stream was silent for ${idleTimeoutMs < 1000 ? `${idleTimeoutMs} ms` : `${Math.round(idleTimeoutMs / 1000)} s`}` })), idleTimeoutMs);
        };
        try {
          touch();
          const resuming = lastEventId;
          const response = await exchange('GET', path, { accept: 'text/event-stream', signal: abort.signal, ...(resuming !== null ? { headers: { 'last-event-id': resuming } } : {}) });
          if (response.body === null) return new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: 'its event stream has no body' });
          // Resumed: the gateway follows the changes after our last event from the moment it
          // answered (it replays the missed ones, or sends a snapshot if it cannot). Fresh: live
          // once the snapshot is in.
          if (resuming !== null) live();
          const parser = new SseParser();
          const decoder = new TextDecoder();
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            touch();
            if (resuming !== null) delivering();
            for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
              if (event.comment) continue;
              if (event.data !== null) {
                if (event.event === 'snapshot') {
                  handlers.onSnapshot(validate(ApprovalListSchema, parseJson(event.data, origin), 'the snapshot event', origin).approvals);
                  if (resuming === null) {
                    delivering();
                    live();
                  }
                } else if (event.event === 'approval') {
                  handlers.onApproval(validate(ApprovalViewSchema, parseJson(event.data, origin), 'an approval event', origin));
                }
                // Other event names are for newer clients.
              }
              // Only once the event is handled: a connection cut while handling it gets it again.
              if (event.id !== null) lastEventId = nextEventId(lastEventId, event.id);
            }
          }
          return new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'the gateway closed the event stream' });
        } catch (error) {
          if (abort.signal.aborted) {
            const reason: unknown = abort.signal.reason;
            return reason instanceof AigovError ? reason : new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'reconnecting' });
          }
          if (error instanceof AigovError) return error;
          const { networkReason } = await import('../auth/oidc-client.ts');
          return new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: networkReason(error) }, { cause: error });
        } finally {
          clearTimeout(idle);
        }
      };

      const loop = async (): Promise<void> => {
        let attempt = 0;
        while (!signal.aborted) {
          const abort = new AbortController();
          connection = abort;
          const onAbort = (): void => abort.abort(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
          report(dropped === undefined ? { state: 'connecting' } : { state: 'reconnecting', error: dropped });
          const error = await streamOnce(
            abort,
            () => report({ state: 'live' }),
            () => (attempt = 0),
          );
          dropped = error;
          signal.removeEventListener('abort', onAbort);
          connection = null;
          if (signal.aborted) return;
          if (skipWait) {
            skipWait = false;
            attempt = 0;
            dropped = null;
            continue;
          }
          const inMs = reconnectDelay(attempt++);
          report({ state: 'retrying', inMs, error });
          await new Promise<void>((resolve) => {
            const timer = setTimeout(finish, inMs);
            function finish(): void {
              clearTimeout(timer);
              signal.removeEventListener('abort', finish);
              wake = null;
              resolve();
            }
            wake = finish;
            signal.addEventListener('abort', finish, { once: true });
          });
        }
      };

      const done = loop();
      return {
        reconnect() {
          if (signal.aborted) return;
          if (wake !== null) {
            wake();
          } else if (connection !== null) {
            skipWait = true;
            connection.abort(new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'reconnecting' }));
          }
        },
        done,
      };
    },
  };
}

/**
 * The id to resume from after an event with `id:` (SSE: an empty id forgets the last one). The
 * gateway's ids are change numbers; anything else is not sent back (it would go into a header).
 */
function nextEventId(last: string | null, id: string): string | null {
  if (id === '') return null;
  return /^[0-9]{1,15}$/.test(id) ? id : last;
}

/** 0.5 s, 1 s, 2 s, … up to 15 s, each ±20 % so many approvers do not reconnect in step. */
export function defaultReconnectDelay(attempt: number): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 5));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** A request that ran out of time is an unreachable gateway; any other abort passes through. */
function timedOut(reason: unknown, origin: string): unknown {
  return reason instanceof DOMException && reason.name === 'TimeoutError' ? new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'no answer in time' }) : reason;
}

function encodeId(id: string): string {
  if (id.trim() === '') throw badFlag('ID', id, 'the approval id is empty (`aigov approvals list` shows the ids)', 'aigov approvals show apr_01J9Z8');
  return encodeURIComponent(id);
}

function pathOnly(path: string): string {
  return path.split('?')[0] ?? path;
}

function parseJson(text: string, origin: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: 'an event of its approvals stream is not JSON' }, { cause: error });
  }
}

function validate<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[] }[] } } }, value: unknown, what: string, origin: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues[0]?.path.map(String).join('.') || '(top level)';
  throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: `its answer to ${what} does not match the approvals protocol (at ${where}); is the CLI older than the gateway?` });
}

/** The gateway's `{"error": {code, message, hint}}` as a coded error; anything else by its status. */
export async function errorFromResponse(response: Response, method: string, path: string, origin: string): Promise<AigovError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: judged by the status below
  }
  const error = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : null;
  if (code !== null && code in ERRORS) {
    const spec = ERRORS[code as ErrorCode];
    const message = typeof error?.message === 'string' && error.message !== '' ? error.message : spec.message;
    const hint = typeof error?.hint === 'string' && error.hint !== '' ? error.hint : spec.hint;
    return new GatewayReportedError(code as ErrorCode, message, hint, response.status);
  }
  const what = code !== null ? `error ${code}, unknown to this CLI` : `HTTP ${response.status}`;
  return new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: `it answered ${method} ${pathOnly(path)} with ${what}` });
}

/** What the client needs of the profile's daemon (see daemon-client.ts). */
export interface TokenLender {
  accessToken(options?: { renew?: boolean }): Promise<GatewayToken & { readonly gateway: string }>;
}

/**
 * An approvals client on the daemon's access tokens, for the gateway the daemon serves (trusting
 * AIGOV_CA_FILE for an https gateway, as the daemon does).
 */
export async function approvalsClientFromDaemon(daemon: TokenLender, env: NodeJS.ProcessEnv = process.env): Promise<ApprovalsClient> {
  return createApprovalsClient(await gatewayAccessFromDaemon(daemon, env));
}

/** How a CLI client reaches the gateway on the daemon's tokens: the URL, a token getter, and fetch. */
export interface GatewayAccess {
  readonly gatewayUrl: string;
  readonly getToken: (options: { renew: boolean }) => Promise<GatewayToken>;
  readonly fetch?: typeof fetch;
}

/**
 * The gateway the daemon serves and its access tokens (the first one already fetched, renewed on
 * request after a 401), trusting AIGOV_CA_FILE for an https gateway as the daemon does.
 */
export async function gatewayAccessFromDaemon(daemon: TokenLender, env: NodeJS.ProcessEnv): Promise<GatewayAccess> {
  const first = await daemon.accessToken();
  let initial: GatewayToken | null = first;
  const caFile = env.AIGOV_CA_FILE?.trim();
  return {
    gatewayUrl: first.gateway,
    getToken: async ({ renew }) => {
      if (initial !== null && !renew) {
        const token = initial;
        initial = null;
        return token;
      }
      return daemon.accessToken({ renew });
    },
    ...(caFile && first.gateway.startsWith('https:') ? { fetch: await (await import('../daemon/ca-fetch.ts')).caFetch(caFile) } : {}),
  };
}

export interface OpenedApprovals {
  readonly client: ApprovalsClient;
  /** Who the profile is signed in as (from the daemon), when known. */
  readonly me: DaemonUser | null;
}

/**
 * The approvals client for a profile: connects to (or starts) its daemon, as `aigov run` does,
 * and borrows the daemon's access token for each call.
 */
export async function openApprovals(options: { profile: string; env?: NodeJS.ProcessEnv }): Promise<OpenedApprovals> {
  const env = options.env ?? process.env;
  const { connectDaemon } = await import('../daemon/daemon-client.ts');
  const daemon = await connectDaemon(options.profile, { start: true, env });
  const [client, status] = await Promise.all([approvalsClientFromDaemon(daemon, env), daemon.status()]);
  return { client, me: status.user };
}
