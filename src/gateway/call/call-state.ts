/**
 * One governed call's state: what its records will say, and the only place that writes to the
 * client and the store. Every stage (./authenticate.ts … ./relay-stream.ts) works on it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { TokenVerifier } from '../../auth/verify-token.ts';
import type { GatewayConfig, ResolvedProvider } from '../../config/schema.ts';
import { AigovError, isAigovError } from '../../core/errors.ts';
import { mergeUsage, type Principal, type ProviderKind, type ResponseEvent, type Usage } from '../../core/events.ts';
import { tokensByKind } from '../../core/usage/token-kinds.ts';
import { scrubSecrets, type SecretScrubber } from '../../core/scrub-secrets.ts';
import type { CallRequestRecord, CallStatus, ClientInfo, PolicyDecisionRecord, RecordingStore, SealedRawCopy } from '../../store/recording-store.ts';
import type { RawCopySealer } from '../../store/raw-copy-sealer.ts';
import { toProviderError, type ProviderCodec, type RouteMatch } from '../../providers/codec.ts';
import type { ApprovalService } from '../approvals/approval-service.ts';
import type { BudgetService, BudgetTicket } from '../budgets/budget-service.ts';
import { waitForDrain } from '../backpressure.ts';
import type { PipelineHooks } from '../hooks.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { SessionCallLimit } from '../session-call-limit.ts';
import type { ToolCallHost } from '../tool-call-settle.ts';
import type { Pricing } from '../pricing.ts';
import type { ThinkingSeal } from '../thinking-seal.ts';
import { StreamToolGate, type ToolCallJudge } from '../tool-gate.ts';
import type { UpstreamSlots } from '../upstream.ts';
import { errorSummary } from './error-summary.ts';

export interface PipelineDeps {
  readonly verifier: TokenVerifier;
  readonly store: RecordingStore;
  readonly hooks: PipelineHooks;
  readonly agent: Agent;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** The gateway's `limits` section: request size, answer size/events/duration, upstream calls. */
  readonly limits: GatewayConfig['limits'];
  /** Open upstream calls per provider, bounded by limits.upstream_max_connections. */
  readonly slots: UpstreamSlots;
  /** Holds requests for approval; without it a require_approval decision refuses the request. */
  readonly approvals: ApprovalService | null;
  /** How often a held stream gets an SSE comment. */
  readonly approvalKeepAliveMs: number;
  /** With `audit.raw_copy`: seals the body as the client sent it, stored with the call (auditors only). */
  readonly rawCopy?: RawCopySealer | null;
  /** Counts each session's calls against limits.max_calls_per_session. */
  readonly sessionCalls?: SessionCallLimit | null;
  /** The gateway's `answers` section: what becomes of answer events of unknown types. */
  readonly answers: GatewayConfig['answers'];
  /** Every provider's key (and long header values): scrubbed from every answer, policy or not. */
  readonly secrets: SecretScrubber;
  /** Seals thinking blocks whose text masking changed (./thinking-seal.ts). */
  readonly thinkingSeal: ThinkingSeal;
  /** Prices each call from its usage (the config's prices, then the built-in table). */
  readonly pricing: Pricing;
  /** Reserves each request against the policy's budgets before it is forwarded; null: no budgets. */
  readonly budgets?: BudgetService | null;
  /** The clock a call's start is read from (its window); default Date.now. */
  readonly now?: () => number;
}

export interface GovernedTarget {
  readonly provider: ResolvedProvider;
  readonly adapter: ProviderCodec;
  readonly route: RouteMatch;
  readonly query: string;
}

/** The mutable state of one call, and the only place that writes to the client and the store. */
export class CallState {
  // The request record's draft (store.recordRequest, built by requestRecord), filled in as the stages learn it.
  readonly callId = `call_${randomUUID().replaceAll('-', '')}`;
  readonly startedAt: number;
  readonly #t0 = performance.now();
  sessionId: string;
  /** Who sent it, once the token is verified (refusals and held tool calls name them). */
  principal: Principal | null = null;
  model: string | null = null;
  stream = false;
  decisions: PolicyDecisionRecord[] = [];
  /** The request record is durable: the call's result is recorded when it ends. */
  recorded = false;

  // The result record's draft (store.finishCall, written by finish).
  /** Decisions taken after the request was recorded (approvals): recorded when the call ends. */
  readonly lateDecisions: PolicyDecisionRecord[] = [];
  #firstByteMs: number | null = null;
  #firstTokenMs: number | null = null;
  #usage: Usage | undefined;
  /** The model the answer names (a dated snapshot of the one asked for): what the call is priced by. */
  #answerModel: string | null = null;
  #bytesOut = 0;
  #finished = false;
  #committed: Promise<boolean> | null = null;

  // How the call goes on.
  /** Set while (and after) the call is held for approval, or when it goes through on one. */
  approvalId: string | null = null;
  /** The call took a use of its approval: given back if the client leaves before any answer. */
  approvalUsed = false;
  /** Set by policy: how to judge tool calls in the answer. */
  toolJudge: ToolCallJudge | null = null;
  clientGone = false;
  /** The call's reservation against its budgets, settled with its charge when it ends. */
  budget: BudgetTicket | null = null;
  /** The request went (or may have gone) upstream: what decides whether the call can have cost anything. */
  forwarded = false;
  /** The upstream's HTTP status, once it answered. */
  upstreamStatus: number | null = null;

  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly target: GovernedTarget;
  readonly deps: PipelineDeps;

  constructor(req: IncomingMessage, res: ServerResponse, target: GovernedTarget, deps: PipelineDeps) {
    this.req = req;
    this.res = res;
    this.target = target;
    this.deps = deps;
    this.startedAt = (deps.now ?? Date.now)();
    this.sessionId = this.callId.replace(/^call_/, 'ses_');
  }

  /** The request record as the stages have drafted it, with the body to keep (`''` for a refusal). */
  requestRecord(principal: Principal, requestBody: string, rawCopy: SealedRawCopy | null): CallRequestRecord {
    const { provider, route } = this.target;
    return {
      callId: this.callId,
      sessionId: this.sessionId,
      principal,
      client: clientInfo(this.req),
      provider: provider.name,
      providerKind: provider.kind,
      endpoint: route.endpoint,
      method: this.req.method ?? 'GET',
      path: route.upstreamPath,
      model: this.model,
      stream: this.stream,
      requestBody,
      rawCopy,
      decisions: this.decisions,
      startedAt: this.startedAt,
    };
  }

  /** A gate for the answer's tool calls, when policy has tool rules (enforced or shadow). */
  toolGate(): StreamToolGate | null {
    const judge = this.toolJudge;
    if (!judge) return null;
    // A call's summary goes into notices, approvals and records: never with a provider key in it.
    const secrets = this.deps.secrets;
    return new StreamToolGate({
      enforcing: judge.enforcing,
      judge: (call) => {
        const verdict = judge.judge(call);
        return { ...verdict, summary: secrets.whole(verdict.summary) };
      },
    });
  }

  /** This call as tool-call settling sees it (./tool-call-settle.ts). */
  toolHost(): ToolCallHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const call = this;
    return {
      callId: this.callId,
      sessionId: this.sessionId,
      model: this.model,
      stream: this.stream,
      principal: this.principal,
      provider: this.target.provider.name,
      endpoint: this.target.route.endpoint,
      approvals: this.deps.approvals,
      approvalKeepAliveMs: this.deps.approvalKeepAliveMs,
      logger: this.deps.logger,
      lateDecisions: this.lateDecisions,
      res: this.res,
      get clientGone() {
        return call.clientGone;
      },
      set clientGone(gone: boolean) {
        call.clientGone = gone;
      },
      write: (data) => this.write(data),
    };
  }

  elapsedMs(): number {
    return Math.round((performance.now() - this.#t0) * 1000) / 1000;
  }

  observe(event: ResponseEvent): void {
    if (event.type === 'usage') this.#usage = mergeUsage(this.#usage, event.usage);
    else if (event.type === 'model') this.#answerModel = event.model;
    else if (this.#firstTokenMs === null && (event.type === 'text' || event.type === 'tool_call')) {
      this.#firstTokenMs = this.elapsedMs();
      this.deps.metrics.timeToFirstToken.observe({ provider: this.target.provider.name }, this.#firstTokenMs / 1000);
    }
  }

  writeHead(status: number, headers: Record<string, string>): void {
    const approval = this.approvalId === null ? {} : { 'x-aigov-approval-id': this.approvalId };
    this.res.writeHead(status, { ...headers, ...approval, 'x-aigov-call-id': this.callId, 'x-aigov-session-id': this.sessionId });
  }

  /** Writes with backpressure: waits for 'drain' (or the client leaving) when the socket is full. */
  async write(data: string | Buffer): Promise<void> {
    if (this.clientGone) return;
    this.#markFirstByte(data);
    if (!this.res.write(data)) await waitForDrain(this.res);
  }

  /** Ends an SSE answer with one last event block, recorded like the others. */
  async endStreamWith(block: string): Promise<void> {
    this.deps.store.appendStreamEvents(this.callId, [{ offsetMs: this.elapsedMs(), raw: block }]);
    await this.write(block);
    this.res.end();
  }

  endWith(body: string): void {
    this.#markFirstByte(body);
    this.res.end(body);
  }

  #markFirstByte(data: string | Buffer): void {
    this.#bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.#firstByteMs ??= this.elapsedMs();
  }

  /** Ends the call with an aigov error in the provider's shape. `status` says how to record it. */
  sendError(error: AigovError, status: CallStatus | null, headers: Record<string, string> = {}): void {
    const body = this.target.adapter.renderError(toProviderError(error));
    if (!this.res.headersSent) {
      this.writeHead(error.status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      this.endWith(body);
    } else if (this.approvalId !== null && this.stream) {
      // A held stream (200 already sent): the provider's in-stream error event ends it.
      void this.endStreamWith(this.streamError(error));
    } else {
      this.res.end();
    }
    this.finish(status ?? 'failed', error.status, { code: error.code, message: error.message }, body);
  }

  /** Policy (or masking on its behalf) failed: the request or answer is refused with its error (fail closed), logged with `message`. */
  failPolicy(error: unknown, message: string): void {
    this.deps.logger.error({ callId: this.callId, err: errorSummary(error) }, message);
    this.sendError(isAigovError(error) ? error : new AigovError('AIGOV_E_POLICY_FAILED'), 'failed');
  }

  /** The provider's in-stream error event for `error` (an SSE block ending a streamed answer). */
  streamError(error: AigovError): string {
    return this.target.adapter.renderStreamError(this.target.route.endpoint, toProviderError(error));
  }

  /**
   * Until the returned function is called: when the client goes away before the answer is
   * complete, marks the call `clientGone` and aborts `abort` (the approval wait, the upstream call).
   */
  watchClientGone(abort: AbortController): () => void {
    const onClose = (): void => {
      if (!this.res.writableFinished) {
        this.clientGone = true;
        abort.abort();
      }
    };
    // The client may have left already (while the request was recorded or reserved): its 'close' is past.
    if (this.res.destroyed) {
      onClose();
      return () => {};
    }
    this.res.on('close', onClose);
    return () => this.res.off('close', onClose);
  }

  failInternal(error: unknown): void {
    const ref = this.callId;
    this.deps.logger.error({ callId: this.callId, err: errorSummary(error), stack: error instanceof Error ? error.stack : undefined }, 'internal error in pipeline');
    if (this.res.headersSent) {
      this.res.destroy();
      this.finish('failed', this.res.statusCode, { code: 'AIGOV_E_INTERNAL', message: 'internal error' });
    } else {
      this.sendError(new AigovError('AIGOV_E_INTERNAL', { ref }), 'failed');
    }
  }

  /**
   * Records the outcome (write-behind), updates metrics and logs one line. Idempotent.
   * {@link committed} then says when the result is durable; a failure to record it is logged
   * and counted here.
   */
  finish(status: CallStatus, httpStatus: number | null, error: { code: string; message: string } | null, responseBody: string | null = null): void {
    if (this.#finished) return;
    this.#finished = true;
    if (status === 'aborted' && this.approvalUsed && this.approvalId !== null && this.#firstByteMs === null) void this.deps.approvals?.release(this.approvalId);
    const latencyMs = this.elapsedMs();
    const provider = this.target.provider.name;
    const codeLabel = httpStatus === null ? (status === 'aborted' ? 'aborted' : 'none') : String(httpStatus);
    this.deps.metrics.requests.inc({ provider, model: this.deps.metrics.modelLabel(this.model), status: codeLabel });
    this.deps.metrics.duration.observe({ provider }, latencyMs / 1000);
    this.deps.metrics.responseBytes.inc({ provider }, this.#bytesOut);
    let usage = this.#usage === undefined ? null : this.deps.pricing.withCost(this.target.provider, this.#answerModel ?? this.model, this.#usage);
    if (usage !== null) countSpend(this.deps.metrics, provider, this.target.provider.kind, this.model, usage);
    if (this.budget !== null) {
      // Settled whether or not the call is recorded; recorded with it so the counters can be rebuilt.
      // A stream's usage is final only when the stream ended normally (a cut one may have counted one output token).
      const usageFinal = status === 'completed' || (!this.stream && usage !== null);
      const charged = this.budget.settle({ forwarded: this.forwarded, upstreamStatus: this.upstreamStatus, usage, usageFinal });
      usage = { ...usage, charged };
    }
    let committed: Promise<boolean> = Promise.resolve(true);
    if (this.recorded) {
      try {
        committed = this.deps.store.finishCall({
          callId: this.callId,
          status,
          httpStatus,
          responseBody: this.stream ? null : responseBody,
          usage,
          firstByteMs: this.#firstByteMs,
          latencyMs,
          errorCode: error?.code ?? null,
          errorMessage: error ? scrubSecrets(error.message, [this.target.provider.apiKey ?? '']) : null,
          decisions: this.lateDecisions,
          endedAt: Date.now(),
        }).then(
          () => true,
          (e: unknown) => {
            this.deps.metrics.storeErrors.inc({ operation: 'finish_call' });
            this.deps.logger.error({ callId: this.callId, status, err: errorSummary(e) }, 'could not record the call result; the call stays pending');
            return false;
          },
        );
      } catch (e) {
        this.deps.metrics.storeErrors.inc({ operation: 'finish_call' });
        this.deps.logger.error({ callId: this.callId, err: errorSummary(e) }, 'could not queue the call result');
        committed = Promise.resolve(false);
      }
    }
    const level = status === 'completed' ? 'info' : 'warn';
    this.deps.logger[level](
      { callId: this.callId, sessionId: this.sessionId, user: this.principal?.subject ?? null, provider, endpoint: this.target.route.endpoint, path: (this.req.url ?? '/').split('?')[0]?.slice(0, 200), model: this.model, stream: this.stream, status, httpStatus, latencyMs, errorCode: error?.code ?? null },
      'call',
    );
    this.#committed = committed;
  }

  /**
   * After {@link finish}: resolves true once the call's result is committed (or the call was
   * never recorded), false when it could not be recorded. Never rejects. The relays wait for it
   * before the last part of an answer reaches the client.
   */
  get committed(): Promise<boolean> {
    return this.#committed ?? Promise.resolve(false);
  }

  /**
   * Counts an answer about to be written only once its result is committed (first byte, bytes
   * out): so the recorded first_byte_ms and the metrics include it. Then write it with `res`.
   */
  countOut(data: string): void {
    this.#markFirstByte(data);
  }
}

/** The spend metrics of a call answered with `usage` (its cost set by pricing). */
function countSpend(metrics: GatewayMetrics, provider: string, kind: ProviderKind, model: string | null, usage: Usage): void {
  const labels = { provider, model: metrics.modelLabel(model) };
  if (typeof usage.costNanoUsd === 'number' && usage.costNanoUsd >= 0) metrics.spend.inc(labels, usage.costNanoUsd / 1e9);
  else metrics.unpriced.inc(labels);
  const tokens = tokensByKind(kind, usage);
  for (const [kind, count] of [['input', tokens.input], ['cache_read', tokens.cacheRead], ['cache_write', tokens.cacheWrite], ['output', tokens.output]] as const) {
    if (count > 0) metrics.tokens.inc({ ...labels, kind }, count);
  }
}

function clientInfo(req: IncomingMessage): ClientInfo {
  const lang = req.headers['x-stainless-lang'];
  const version = req.headers['x-stainless-package-version'];
  return {
    userAgent: req.headers['user-agent']?.slice(0, 256) ?? null,
    remoteAddress: req.socket.remoteAddress ?? null,
    sdk: typeof lang === 'string' ? `${lang}${typeof version === 'string' ? ` ${version}` : ''}`.slice(0, 64) : null,
  };
}
