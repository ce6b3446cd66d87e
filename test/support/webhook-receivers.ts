/**
 * Webhook receivers on 127.0.0.1 for tests (real HTTP servers), and the notices and receiver
 * configurations the outbox tests post. A receiver records every request — body, headers, when it
 * arrived and when it was answered — and answers as `respond` says, per request.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveWebhook, WebhookSchema, type Webhook, type WebhookInput } from '../../src/config/webhook-schema.ts';
import type { ApprovalNotice } from '../../src/gateway/approvals/webhook-notifier.ts';
import { ApprovalViewSchema, type ApprovalView } from '../../src/protocol/approvals.ts';

export const RECEIVER_SECRET = 'whsec-outbox-test-0123456789abcdef';
/** Part of every receiver's URL path: it must never reach a log line or the database. */
export const SECRET_PATH = 'T000/B000/xyzSECRETPATH';

export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The delivery id (x-aigov-delivery). */
  readonly id: string;
  readonly at: number;
  /** Set when the answer went out; its status. */
  answeredAt: number | null;
  status: number | null;
}

export interface Receiver {
  readonly url: string;
  readonly host: string;
  readonly received: Received[];
  readonly server: Server;
  /** Most requests of one delivery id in flight at once, over the receiver's life. */
  readonly maxConcurrentPerId: () => number;
  close(): Promise<void>;
}

/** `respond(request, nthOfThisId)` answers (or never does); nthOfThisId counts from 0. */
export async function startReceiver(respond: (r: Received, nthOfThisId: number, res: ServerResponse) => void): Promise<Receiver> {
  const received: Received[] = [];
  const perId = new Map<string, number>();
  const inFlight = new Map<string, number>();
  let maxConcurrent = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-aigov-delivery'] ?? '');
      const r: Received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), id, at: Date.now(), answeredAt: null, status: null };
      received.push(r);
      const nth = perId.get(id) ?? 0;
      perId.set(id, nth + 1);
      const now = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, now);
      maxConcurrent = Math.max(maxConcurrent, now);
      const done = (): void => {
        inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
      };
      res.on('finish', () => {
        r.answeredAt = Date.now();
        r.status = res.statusCode;
        done();
      });
      res.on('close', () => {
        if (r.answeredAt === null) done();
      });
      respond(r, nth, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/${SECRET_PATH}?tok=q`,
    host: `127.0.0.1:${port}`,
    received,
    server,
    maxConcurrentPerId: () => maxConcurrent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function answer(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  res.end(status < 300 ? 'ok' : 'no');
}

/** A receiver configuration as the config loader makes it (secret resolved). */
export function receiverHook(url: string, over: Partial<WebhookInput> = {}): Webhook {
  const resolved = resolveWebhook(WebhookSchema.parse({ url, secret: '${S}', ...over }), RECEIVER_SECRET);
  if (!('webhook' in resolved)) throw new Error(resolved.problem);
  return resolved.webhook;
}

export function sampleApproval(over: Partial<ApprovalView> = {}): ApprovalView {
  return ApprovalViewSchema.parse({
    id: 'apr_outbox_1',
    state: 'pending',
    requester: { sub: 'u-alice', email: 'alice@aigov.dev', name: 'Alice', groups: ['dev'] },
    rule: { id: 'prod-credentials', reason: 'Prompts that mention production credentials need a second pair of eyes' },
    approvers: { groups: ['security'], required: 1 },
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpoint: 'openai.chat.completions',
    stream: false,
    preview: 'Deploy with key [REDACTED:AWS_KEY]',
    session_id: 'ses_1',
    call_id: 'call_1',
    created_at: '2025-06-01T12:29:00.000Z',
    expires_at: '2025-06-01T12:34:00.000Z',
    decided_at: null,
    votes: [],
    can_decide: false,
    ...over,
  });
}

export function sampleNotice(id = 'apr_outbox_1', type: ApprovalNotice['type'] = 'approval.created'): ApprovalNotice {
  return { type, approval: sampleApproval({ id }), gatewayUrl: 'https://gw.aigov.dev' };
}
