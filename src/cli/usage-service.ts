/**
 * The CLI's client for the gateway's usage API (src/protocol/usage.ts), on the profile's access
 * tokens borrowed from its daemon (as the sessions and approvals clients do). Answers are checked
 * against the protocol's zod schema; the gateway's coded errors come back as AigovErrors.
 */
import { USAGE_PATH, UsageReportSchema, type UsageBy, type UsageReportView } from '../protocol/usage.ts';
import { gatewayAccessFromDaemon } from './approvals-service.ts';
import { createGatewayReader, validateAnswer, type GatewayReaderOptions } from './gateway-reads.ts';

export interface UsageRequest {
  /** Absent: the gateway's default (by user for an auditor, by model for others). */
  readonly by?: UsageBy;
  /** Epoch ms: calls started at or after `since` and before `until`. */
  readonly since: number;
  readonly until: number;
  readonly user?: string;
  /** The zone of the days (an IANA name or a UTC offset). */
  readonly timeZone: string;
}

export interface UsageClient {
  readonly gatewayUrl: string;
  report(request: UsageRequest): Promise<UsageReportView>;
}

export function createUsageClient(options: GatewayReaderOptions): UsageClient {
  const { base, origin, json } = createGatewayReader(options);
  return {
    gatewayUrl: base,
    async report(request) {
      const params = new URLSearchParams();
      if (request.by !== undefined) params.set('by', request.by);
      params.set('since', String(request.since));
      params.set('until', String(request.until));
      if (request.user !== undefined) params.set('user', request.user);
      params.set('tz', request.timeZone);
      return validateAnswer(UsageReportSchema, await json(`${USAGE_PATH}?${params.toString()}`), `GET ${USAGE_PATH}`, origin, 'usage');
    },
  };
}

/** The usage client for a profile: connects to (or starts) its daemon and borrows its access tokens. */
export async function openUsage(options: { profile: string; env?: NodeJS.ProcessEnv }): Promise<UsageClient> {
  const env = options.env ?? process.env;
  const { connectDaemon } = await import('../daemon/daemon-client.ts');
  const daemon = await connectDaemon(options.profile, { start: true, env });
  return createUsageClient(await gatewayAccessFromDaemon(daemon, env));
}
