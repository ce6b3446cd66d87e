/**
 * The auditor's and user's client for the gateway's sessions API (src/protocol/sessions.ts):
 * list (following cursors up to a limit), get one session, and export one as a stream of bytes
 * to a file or stdout. Answers are validated with the protocol's zod schemas; the gateway's coded
 * errors become AigovErrors with its code, message and hint (shared with the approvals client).
 *
 * Tokens are borrowed from the profile's daemon exactly as the approvals client does (control
 * request `access-token`); the CLI never refreshes on its own. `openSessions()` is what commands
 * (and the replay TUI) call.
 */
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AigovError } from '../core/errors.ts';
import { SESSIONS_PATH, SessionDetailSchema, SessionListSchema, type SessionDetail, type SessionList, type SessionSummaryView } from '../protocol/sessions.ts';
import type { DaemonUser } from '../daemon/control-protocol.ts';
import { badFlag } from './flag-values.ts';
import { gatewayAccessFromDaemon, type GatewayToken, type TokenLender } from './approvals-service.ts';
import { createGatewayReader, validateAnswer } from './gateway-reads.ts';

export interface SessionsQuery {
  readonly user?: string;
  /** Epoch ms (see parseTimeFlag in flag-values.ts). */
  readonly since?: number;
  readonly until?: number;
  readonly provider?: string;
  readonly model?: string;
  readonly action?: string;
  readonly approval?: string;
  /** Sessions wanted in all (pages are followed until then); default 50. */
  readonly limit?: number;
}

export interface SessionsClient {
  readonly gatewayUrl: string;
  /** Newest activity first; `next_cursor` is non-null when more sessions match than `limit`. */
  list(query?: SessionsQuery): Promise<SessionList>;
  /**
   * `raw`: also each call's raw request copy (auditors, gateway with audit.raw_copy; the read is logged).
   * `sharedBodies`: bodies the gateway stores as chunks come as `body_chunks` + `request_ref` (protocol/sessions.ts).
   */
  get(id: string, options?: { readonly raw?: boolean; readonly sharedBodies?: boolean }): Promise<SessionDetail>;
  /** Streams the export to `sink` (a file or stdout); rejects if the gateway cuts it off. */
  exportTo(id: string, format: 'jsonl' | 'json', sink: NodeJS.WritableStream, options?: { readonly raw?: boolean }): Promise<void>;
}

export interface SessionsClientOptions {
  readonly gatewayUrl: string;
  readonly getToken: (options: { renew: boolean }) => Promise<GatewayToken>;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** list/get give up after this long without a complete answer; default 30 s. */
  readonly requestTimeoutMs?: number;
}

/** The most sessions one API page holds (the gateway's limit). */
const PAGE_MAX = 1000;

export function createSessionsClient(options: SessionsClientOptions): SessionsClient {
  const { base, origin, get, json } = createGatewayReader(options);

  return {
    gatewayUrl: base,
    async list(query = {}) {
      const wanted = Math.max(1, Math.floor(query.limit ?? 50));
      const params = new URLSearchParams();
      if (query.user !== undefined) params.set('user', query.user);
      if (query.since !== undefined) params.set('since', String(query.since));
      if (query.until !== undefined) params.set('until', String(query.until));
      if (query.provider !== undefined) params.set('provider', query.provider);
      if (query.model !== undefined) params.set('model', query.model);
      if (query.action !== undefined) params.set('action', query.action);
      if (query.approval !== undefined) params.set('approval', query.approval);
      const sessions: SessionSummaryView[] = [];
      let cursor: string | null = null;
      do {
        params.set('limit', String(Math.min(PAGE_MAX, wanted - sessions.length)));
        if (cursor !== null) params.set('cursor', cursor);
        const page = validateAnswer(SessionListSchema, await json(`${SESSIONS_PATH}?${params.toString()}`), `GET ${SESSIONS_PATH}`, origin, 'sessions');
        sessions.push(...page.sessions);
        cursor = page.next_cursor;
      } while (cursor !== null && sessions.length < wanted);
      return { sessions, next_cursor: cursor };
    },
    async get(id, opts = {}) {
      const query = new URLSearchParams();
      if (opts.raw === true) query.set('raw', '1');
      if (opts.sharedBodies === true) query.set('bodies', 'shared');
      const path = `${SESSIONS_PATH}/${encodeId(id)}${query.size > 0 ? `?${query.toString()}` : ''}`;
      return validateAnswer(SessionDetailSchema, await json(path), `GET ${SESSIONS_PATH}/{id}`, origin, 'sessions');
    },
    async exportTo(id, format, sink, opts = {}) {
      const path = `${SESSIONS_PATH}/${encodeId(id)}/export?format=${format}${opts.raw === true ? '&raw=1' : ''}`;
      const response = await get(path, format === 'jsonl' ? 'application/x-ndjson' : 'application/json');
      if (response.body === null) throw new AigovError('AIGOV_E_GATEWAY_INVALID', { url: origin, reason: 'its export has no body' });
      const { Readable } = await import('node:stream');
      const { pipeline } = await import('node:stream/promises');
      try {
        await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), sink, { end: false });
      } catch (error) {
        // The gateway cuts an export off when the store fails half-way: never pass it off as whole.
        throw new AigovError('AIGOV_E_GATEWAY_UNREACHABLE', { url: origin, reason: 'the export was cut off before its end' }, { cause: error });
      }
    },
  };
}

export interface OpenedSessions {
  readonly client: SessionsClient;
  /** Who the profile is signed in as (from the daemon), when known. */
  readonly me: DaemonUser | null;
}

/** A sessions client on the daemon's access tokens, for the gateway the daemon serves. */
export async function sessionsClientFromDaemon(daemon: TokenLender, env: NodeJS.ProcessEnv = process.env): Promise<SessionsClient> {
  return createSessionsClient(await gatewayAccessFromDaemon(daemon, env));
}

/**
 * The sessions client for a profile: connects to (or starts) its daemon, as `aigov run` does,
 * and borrows the daemon's access token for each call. `get(id)` gives the SessionDetail.
 */
export async function openSessions(options: { profile: string; env?: NodeJS.ProcessEnv }): Promise<OpenedSessions> {
  const env = options.env ?? process.env;
  const { connectDaemon } = await import('../daemon/daemon-client.ts');
  const daemon = await connectDaemon(options.profile, { start: true, env });
  const [client, status] = await Promise.all([sessionsClientFromDaemon(daemon, env), daemon.status()]);
  return { client, me: status.user };
}

function encodeId(id: string): string {
  if (id.trim() === '') throw badFlag('ID', id, 'the session id is empty (`aigov sessions list` shows the ids)', 'aigov sessions show ses_01J9Z8');
  return encodeURIComponent(id);
}
