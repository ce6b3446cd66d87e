/**
 * Approval webhooks against a real receiving HTTP server on 127.0.0.1: signature (checked with
 * the exported helper and recomputed independently with node:crypto), retries with the same
 * delivery id, no retry on a 4xx, a dead receiver, Retry-After, the payload's content (preview
 * only on request, a Slack-compatible text), close() and the schema. The notifier here keeps its
 * outbox in memory; the database outboxes (restarts, replicas, crashes) are in
 * webhook-outbox.test.ts.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveWebhook, RuleWebhooksSchema, WebhookSchema, WebhooksSchema, type Webhook, type WebhookInput } from '../src/config/webhook-schema.ts';
import {
  approvalText,
  createWebhookNotifier,
  signWebhookBody,
  verifyWebhookSignature,
  type ApprovalNotice,
  type WebhookNotifierOptions,
  type WebhookPayload,
} from '../src/gateway/approvals/webhook-notifier.ts';
import { ApprovalViewSchema, type ApprovalView } from '../src/protocol/approvals.ts';

const SECRET = 'whsec-test-0123456789abcdef';
const PREVIEW = 'Deploy with key [REDACTED:AWS_KEY] to prod, ask [REDACTED:EMAIL_ADDRESS]';

const approval = (over: Partial<ApprovalView> = {}): ApprovalView =>
  ApprovalViewSchema.parse({
    id: 'apr_01HZX4K9',
    state: 'pending',
    requester: { sub: 'u-alice', email: 'alice@aigov.dev', name: 'Alice', groups: ['dev'] },
    rule: { id: 'prod-credentials', reason: 'Prompts that mention production credentials need a second pair of eyes' },
    approvers: { groups: ['security'], required: 1 },
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpoint: 'openai.chat.completions',
    stream: true,
    preview: PREVIEW,
    session_id: 'ses_1',
    call_id: 'call_1',
    created_at: '2025-06-01T12:29:00.000Z',
    expires_at: '2025-06-01T12:34:00.000Z',
    decided_at: null,
    votes: [],
    can_decide: true,
    ...over,
  });

const notice = (over: Partial<ApprovalView> = {}, type: ApprovalNotice['type'] = 'approval.created'): ApprovalNotice => ({
  type,
  approval: approval(over),
  gatewayUrl: 'https://gw.aigov.dev/?token=should-not-appear',
});

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** A receiver on 127.0.0.1 that records every request and answers with `respond(n)` (n from 0). */
async function startReceiver(respond: (n: number, res: ServerResponse) => void, path = '/hooks/T000/B000/xyzSECRETPATH?tok=q'): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      respond(received.length - 1, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}${path}`, received, server };
}

function answer(status: number, headers: Record<string, string> = {}): (n: number, res: ServerResponse) => void {
  return (_n, res) => {
    res.writeHead(status, headers);
    res.end(status < 300 ? 'ok' : 'no');
  };
}

function hook(url: string, over: Partial<WebhookInput> = {}): Webhook {
  const parsed = WebhookSchema.parse({ url, secret: SECRET, ...over });
  const resolved = resolveWebhook(parsed, SECRET);
  assert.ok('webhook' in resolved);
  return resolved.webhook;
}

function captureLogger(): { logger: WebhookNotifierOptions['logger']; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), text: () => lines.join('') };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The receiver's check, done twice: with the exported helper and from scratch with node:crypto. */
function assertSigned(r: Received): void {
  const timestamp = r.headers['x-aigov-timestamp'];
  const signature = r.headers['x-aigov-signature'];
  assert.equal(typeof timestamp, 'string');
  assert.equal(typeof signature, 'string');
  assert.ok(verifyWebhookSignature(SECRET, timestamp as string, r.body, signature as string), 'the helper verifies the signature');
  const expected = createHmac('sha256', SECRET).update(`${timestamp as string}.${r.body}`).digest('hex');
  assert.equal(signature, `v1=${expected}`, 'the signature is HMAC-SHA256(secret, "<timestamp>.<body>")');
  assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 5, 'the timestamp is now, in unix seconds');
}

describe('approval webhook deliveries', () => {
  it('retries a 503 with backoff and the same delivery id, then succeeds; each attempt is signed', async () => {
    const rx = await startReceiver((n, res) => answer(n < 2 ? 503 : 200)(n, res));
    const log = captureLogger();
    const notifier = createWebhookNotifier({ webhooks: [hook(rx.url)], logger: log.logger, backoffBaseMs: 20, version: '9.9.9' });
    notifier.notify(notice());
    await until(() => notifier.stats().delivered === 1, 'the delivery');
    await notifier.close();

    assert.equal(rx.received.length, 3);
    const bodies = rx.received.map((r) => JSON.parse(r.body) as WebhookPayload);
    assert.match(bodies[0]!.id, /^whd_[0-9a-f]{32}$/);
    assert.ok(bodies.every((b) => b.id === bodies[0]!.id), 'one delivery id on every attempt');
    assert.ok(rx.received.every((r) => r.body === rx.received[0]!.body), 'the same body on every attempt');
    for (const r of rx.received) {
      assertSigned(r);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['user-agent'], 'aigov-webhook/9.9.9');
      assert.equal(r.headers['x-aigov-delivery'], bodies[0]!.id);
      assert.equal(r.headers['x-aigov-event'], 'approval.created');
    }
    const gaps = [rx.received[1]!.at - rx.received[0]!.at, rx.received[2]!.at - rx.received[1]!.at];
    assert.ok(gaps[0]! >= 15 && gaps[1]! >= 30, `backoff grows (gaps ${gaps.join(', ')} ms)`);
    assert.deepEqual({ ...notifier.stats() }, { delivered: 1, failed: 0, dropped: 0, retries: 2, pending: 0 });

    const logged = log.text();
    assert.match(logged, /127\.0\.0\.1:\d+/, 'log lines name the host');
    assert.match(logged, /"status":503/);
    assert.ok(!logged.includes(SECRET), 'the secret is never logged');
    assert.ok(!logged.includes('SECRETPATH') && !logged.includes('tok=q'), 'nor the URL path or query');
    assert.ok(!logged.includes('REDACTED'), 'nor the preview');
  });

  it('does not retry a 400', async () => {
    const rx = await startReceiver(answer(400));
    const log = captureLogger();
    const notifier = createWebhookNotifier({ webhooks: [hook(rx.url)], logger: log.logger, backoffBaseMs: 5 });
    notifier.notify(notice());
    await until(() => notifier.stats().failed === 1, 'the failure');
    await new Promise((r) => setTimeout(r, 60));
    await notifier.close();
    assert.equal(rx.received.length, 1);
    assert.deepEqual({ ...notifier.stats() }, { delivered: 0, failed: 1, dropped: 0, retries: 0, pending: 0 });
    assert.match(log.text(), /given up \(HTTP 400\)/);
  });

  it('gives up on a dead receiver after the attempts, without throwing or blocking notify()', async () => {
    const rx = await startReceiver(answer(200));
    const dead = rx.url;
    await new Promise<void>((resolve) => {
      rx.server.close(() => resolve());
    });
    const log = captureLogger();
    const notifier = createWebhookNotifier({ webhooks: [hook(dead)], logger: log.logger, backoffBaseMs: 5, maxAttempts: 4 });
    const started = performance.now();
    const returned: unknown = notifier.notify(notice());
    const elapsed = performance.now() - started;
    assert.equal(returned, undefined, 'notify returns nothing to await');
    assert.ok(elapsed < 50, `notify returned at once (${elapsed.toFixed(1)} ms)`);
    await until(() => notifier.stats().failed === 1, 'giving up');
    assert.deepEqual({ ...notifier.stats() }, { delivered: 0, failed: 1, dropped: 0, retries: 3, pending: 0 });
    assert.match(log.text(), /ECONNREFUSED/);
    assert.match(log.text(), /no attempts left/);
    await notifier.close();
  });

  it('retries a timeout', async () => {
    const rx = await startReceiver((n, res) => {
      if (n === 0) return; // never answers: the attempt times out
      answer(204)(n, res);
    });
    const notifier = createWebhookNotifier({ webhooks: [hook(rx.url, { timeout: '150ms' })], logger: captureLogger().logger, backoffBaseMs: 5 });
    notifier.notify(notice());
    await until(() => notifier.stats().delivered === 1, 'the delivery after a timeout');
    assert.equal(rx.received.length, 2);
    assert.ok(rx.received[1]!.at - rx.received[0]!.at >= 140, 'the second attempt came after the timeout');
    await notifier.close();
  });

  it('waits what Retry-After asks on a 429, up to the cap', async () => {
    const rx = await startReceiver((n, res) => (n === 0 ? answer(429, { 'retry-after': '3600' }) : answer(200))(n, res));
    const notifier = createWebhookNotifier({ webhooks: [hook(rx.url)], logger: captureLogger().logger, backoffBaseMs: 5, maxRetryAfterMs: 250 });
    notifier.notify(notice());
    await until(() => notifier.stats().delivered === 1, 'the delivery after a 429');
    const gap = rx.received[1]!.at - rx.received[0]!.at;
    assert.ok(gap >= 240 && gap < 2000, `Retry-After honoured up to the cap (gap ${gap} ms)`);
    await notifier.close();
  });

  it('sends the preview only when the webhook asks, never can_decide, and a Slack-compatible text', async () => {
    const rx = await startReceiver(answer(200));
    const without = hook(`${rx.url}&a=1`);
    const withPreview = hook(`${rx.url}&a=2`, { include_preview: true });
    const notifier = createWebhookNotifier({ webhooks: [without, withPreview], logger: captureLogger().logger });
    notifier.notify(notice());
    await until(() => notifier.stats().delivered === 2, 'both deliveries');
    await notifier.close();

    const byUrl = new Map(rx.received.map((r) => [r.headers['x-aigov-delivery'], JSON.parse(r.body) as WebhookPayload & Record<string, unknown>]));
    const payloads = [...byUrl.values()];
    assert.equal(payloads.length, 2);
    assert.notEqual(payloads[0]!.id, payloads[1]!.id, 'one delivery id per receiver');
    const plain = rx.received.find((r) => !r.body.includes('"preview"'));
    const full = rx.received.find((r) => r.body.includes('"preview"'));
    assert.ok(plain && full, 'one body without the preview, one with it');
    const p = JSON.parse(plain.body) as WebhookPayload;
    const f = JSON.parse(full.body) as WebhookPayload;
    assert.equal('preview' in p.approval, false);
    assert.equal(f.approval.preview, PREVIEW);
    for (const body of [p, f]) {
      assert.deepEqual(Object.keys(body).sort(), ['approval', 'created_at', 'gateway_url', 'id', 'text', 'type']);
      assert.equal(body.type, 'approval.created');
      assert.equal('can_decide' in body.approval, false);
      assert.equal(body.approval.id, 'apr_01HZX4K9');
      assert.equal(body.approval.requester.email, 'alice@aigov.dev');
      assert.equal(body.gateway_url, 'https://gw.aigov.dev', 'the gateway URL without its query');
      assert.ok(!Number.isNaN(Date.parse(body.created_at)));
      assert.equal(
        body.text,
        ':lock: *alice@aigov.dev* needs approval under rule `prod-credentials` (openai gpt-4o-mini): _Prompts that mention production credentials need a second pair of eyes_. Approvers: security. ' +
          'Approve with `aigov approvals approve apr_01HZX4K9` or deny with `aigov approvals deny apr_01HZX4K9` — expires 2025-06-01 12:34 UTC.',
      );
      assert.ok(!body.text.includes('REDACTED') && !body.text.includes('Deploy'), 'the text never carries the prompt');
    }
  });

  it('merges the rule\'s receivers with the global ones, filters by event, and sends one delivery per URL', async () => {
    const rx = await startReceiver(answer(200));
    const global = hook(`${rx.url}&g=1`, { events: ['created', 'decided'] });
    const ruleOnly = hook(`${rx.url}&r=1`, { events: ['decided'] });
    const sameAsGlobal = hook(`${rx.url}&g=1`, { events: ['decided'], include_preview: true });
    const notifier = createWebhookNotifier({ webhooks: [global], logger: captureLogger().logger });
    notifier.notify(notice({}, 'approval.created'), [ruleOnly]);
    notifier.notify(notice({ state: 'denied' }, 'approval.decided'), [ruleOnly, sameAsGlobal]);
    notifier.notify(notice({ state: 'expired' }, 'approval.expired'), [ruleOnly]);
    await until(() => notifier.stats().delivered === 3, 'three deliveries');
    await new Promise((r) => setTimeout(r, 50));
    await notifier.close();
    const events = rx.received.map((r) => r.headers['x-aigov-event']).sort();
    assert.deepEqual(events, ['approval.created', 'approval.decided', 'approval.decided'], 'created to global only, decided once per URL, expired to nobody');
    const decidedToGlobal = rx.received.find((r) => r.headers['x-aigov-event'] === 'approval.decided' && r.body.includes('"preview"'));
    assert.ok(decidedToGlobal, 'for a URL listed twice, the rule\'s settings win');
  });

  it('drops notices beyond the pending bound, and close() cuts a hung delivery at its deadline', async () => {
    const rx = await startReceiver(() => {
      /* never answers */
    });
    const log = captureLogger();
    const notifier = createWebhookNotifier({ webhooks: [hook(rx.url, { timeout: 30_000 })], logger: log.logger, maxPending: 2, closeTimeoutMs: 150 });
    for (let i = 0; i < 3; i++) notifier.notify(notice({ id: `apr_${i}` }));
    // Stored (in memory here) a moment after notify() returns.
    await until(() => notifier.stats().dropped === 1, 'the third notice to be dropped');
    assert.equal(notifier.stats().pending, 2);
    await until(() => rx.received.length === 2, 'both posts to arrive');
    const started = Date.now();
    await notifier.close();
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 2000, `close() waited for its deadline, then cut (${took} ms)`);
    assert.deepEqual({ ...notifier.stats() }, { delivered: 0, failed: 2, dropped: 1, retries: 0, pending: 0 });
    notifier.notify(notice());
    assert.equal(notifier.stats().dropped, 2, 'a notice after close() is dropped, not thrown');
    assert.match(log.text(), /too many deliveries pending/);
  });

  it('close() lets a slow delivery finish, and abandons one waiting to retry', async () => {
    const slow = await startReceiver((n, res) => setTimeout(() => answer(200)(n, res), 100));
    const failing = await startReceiver(answer(503));
    const notifier = createWebhookNotifier({ webhooks: [hook(slow.url), hook(failing.url)], logger: captureLogger().logger, backoffBaseMs: 10_000, closeTimeoutMs: 2000 });
    notifier.notify(notice());
    await until(() => slow.received.length === 1 && notifier.stats().pending === 2 && failing.received.length === 1, 'the first attempts');
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await notifier.close();
    assert.ok(Date.now() - started < 1000, 'close() did not wait out the 10 s backoff');
    assert.deepEqual({ ...notifier.stats() }, { delivered: 1, failed: 1, dropped: 0, retries: 0, pending: 0 });
    assert.equal(failing.received.length, 1);
  });
});

describe('verifyWebhookSignature', () => {
  const body = '{"type":"approval.created","id":"whd_1"}';
  const now = () => 1_750_000_000_000;
  const ts = String(1_750_000_000);
  const sig = signWebhookBody(SECRET, ts, body);

  it('accepts the exact body, timestamp and secret', () => {
    assert.equal(verifyWebhookSignature(SECRET, ts, body, sig, { now }), true);
    assert.equal(verifyWebhookSignature(SECRET, ts, Buffer.from(body), sig.toUpperCase().replace('V1=', 'v1='), { now }), true, 'bytes and upper-case hex too');
    assert.equal(verifyWebhookSignature(SECRET, ts, body, `v1=${'0'.repeat(64)}, ${sig}`, { now }), true, 'any of several signatures (secret rotation)');
  });

  it('rejects a tampered body, another secret, another timestamp, a malformed header', () => {
    assert.equal(verifyWebhookSignature(SECRET, ts, body.replace('created', 'decided'), sig, { now }), false);
    assert.equal(verifyWebhookSignature(SECRET, ts, `${body} `, sig, { now }), false);
    assert.equal(verifyWebhookSignature('another-secret-0123456789', ts, body, sig, { now }), false);
    assert.equal(verifyWebhookSignature(SECRET, String(Number(ts) + 1), body, sig, { now }), false);
    assert.equal(verifyWebhookSignature(SECRET, ts, body, sig.slice(3), { now }), false, 'without the v1= scheme');
    assert.equal(verifyWebhookSignature(SECRET, ts, body, sig.slice(0, -2), { now }), false, 'truncated');
    assert.equal(verifyWebhookSignature(SECRET, `${ts}.5`, body, sig, { now }), false, 'a timestamp that is not whole seconds');
  });

  it('rejects an old or future timestamp outside the tolerance', () => {
    const old = String(Number(ts) - 301);
    assert.equal(verifyWebhookSignature(SECRET, old, body, signWebhookBody(SECRET, old, body), { now }), false);
    assert.equal(verifyWebhookSignature(SECRET, old, body, signWebhookBody(SECRET, old, body), { now, toleranceSec: 600 }), true);
    const future = String(Number(ts) + 301);
    assert.equal(verifyWebhookSignature(SECRET, future, body, signWebhookBody(SECRET, future, body), { now }), false);
  });
});

describe('approval texts', () => {
  const at = Date.parse('2025-06-01T12:00:00Z');
  const bob = { sub: 'u-bob', email: 'bob@aigov.dev', name: 'Bob' };

  it('says who decided and why, in Slack mrkdwn', () => {
    const approved = notice({ state: 'approved', votes: [{ by: bob, decision: 'approve', reason: 'ticket OPS-12', at: '2025-06-01T12:01:00Z' }] }, 'approval.decided');
    assert.equal(approvalText(approved, at), ':white_check_mark: Approval `apr_01HZX4K9` for *alice@aigov.dev* under rule `prod-credentials` (openai gpt-4o-mini) was approved by *bob@aigov.dev*: _ticket OPS-12_.');
    const denied = notice({ state: 'denied', votes: [{ by: bob, decision: 'deny', reason: null, at: '2025-06-01T12:01:00Z' }] }, 'approval.decided');
    assert.equal(approvalText(denied, at), ':no_entry: Approval `apr_01HZX4K9` for *alice@aigov.dev* under rule `prod-credentials` (openai gpt-4o-mini) was denied by *bob@aigov.dev*.');
    const expired = notice({ state: 'expired' }, 'approval.expired');
    assert.equal(approvalText(expired, at), ':hourglass: Approval `apr_01HZX4K9` for *alice@aigov.dev* under rule `prod-credentials` (openai gpt-4o-mini) expired before anyone decided (12:34 UTC); the request was not sent.');
    const partial = notice({ approvers: { groups: ['security'], required: 2 }, votes: [{ by: bob, decision: 'approve', reason: null, at: '2025-06-01T12:01:00Z' }] }, 'approval.decided');
    assert.equal(approvalText(partial, at), ':ballot_box_with_check: *bob@aigov.dev* approved `apr_01HZX4K9` for *alice@aigov.dev* under rule `prod-credentials`: 1 of 2 approvals so far.');
  });

  it('escapes what Slack would turn into mentions or links, and keeps to one line', () => {
    const sneaky = notice({
      requester: { sub: 'u-x', email: null, name: 'Eve <!channel>', groups: [] },
      rule: { id: 'r1', reason: 'see <https://evil.example|here>\nand & more' },
      model: null,
    });
    const text = approvalText(sneaky, Date.parse('2025-06-01T12:00:00Z'));
    assert.ok(!text.includes('<') && !text.includes('>'), text);
    assert.ok(text.includes('*Eve &lt;!channel&gt;*'));
    assert.ok(text.includes('(openai)'), 'no model: the provider alone');
    assert.ok(!text.includes('\n'));
    assert.ok(text.includes('and &amp; more'));
  });
});

describe('WebhookSchema', () => {
  const problems = (input: unknown): string[] => {
    const r = WebhooksSchema.safeParse([input]);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('fills defaults and parses durations', () => {
    const w = WebhookSchema.parse({ url: 'https://hooks.slack.com/services/T/B/X', secret: '${AIGOV_WEBHOOK_SECRET}' });
    assert.deepEqual(w, { url: 'https://hooks.slack.com/services/T/B/X', secret: '${AIGOV_WEBHOOK_SECRET}', events: ['created', 'decided', 'expired', 'budget_warning'], include_preview: false, timeout: 5000 });
    assert.equal(WebhookSchema.parse({ url: 'https://x.example', secret: { env: 'S' }, timeout: '1.5s' }).timeout, 1500);
    assert.equal(WebhookSchema.parse({ url: 'https://x.example', secret: { file: 's.txt' }, timeout: '500ms' }).timeout, 500);
    assert.equal(WebhookSchema.parse({ url: 'https://x.example', secret: '${S}', timeout: 2500 }).timeout, 2500);
    assert.deepEqual(WebhookSchema.parse({ url: 'https://x.example', secret: '${S}', events: ['expired', 'expired'] }).events, ['expired']);
    assert.equal(WebhookSchema.parse({ url: 'http://127.0.0.1:9000/hook', secret: '${S}' }).url, 'http://127.0.0.1:9000/hook');
    assert.equal(WebhookSchema.parse({ url: 'http://localhost/hook', secret: '${S}' }).url, 'http://localhost/hook');
    assert.equal(WebhookSchema.parse({ url: 'http://[::1]:8080/', secret: '${S}' }).url, 'http://[::1]:8080/');
  });

  it('refuses plain http off loopback, other schemes, credentials in the URL and bad values, naming the key', () => {
    assert.match(problems({ url: 'http://hooks.example.com/x', secret: '${S}' }).join('\n'), /^0\.url: plain http is refused for hooks\.example\.com.*use https:\/\//);
    assert.match(problems({ url: 'ftp://x.example/', secret: '${S}' }).join('\n'), /0\.url: expected an https:\/\/ URL/);
    assert.match(problems({ url: 'not a url', secret: '${S}' }).join('\n'), /0\.url: expected an https:\/\/ URL/);
    assert.match(problems({ url: 'https://user:pw@x.example/', secret: '${S}' }).join('\n'), /0\.url: credentials in the URL are refused/);
    assert.match(problems({ url: 'https://x.example', secret: 'short-inline' }).join('\n'), /0\.secret: expected a secret of at least 16 characters/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', timeout: 'soon' }).join('\n'), /0\.timeout: expected a duration/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', timeout: '2m' }).join('\n'), /0\.timeout: expected a timeout of at most 60s/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', timeout: 5 }).join('\n'), /0\.timeout: .*a bare number is milliseconds: write 5s/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', events: [] }).join('\n'), /0\.events: expected at least one/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', events: ['approved'] }).join('\n'), /0\.events\.0/);
    assert.match(problems({ url: 'https://x.example', secret: '${S}', retries: 3 }).join('\n'), /unrecognized|retries/i);
    assert.equal(problems({ url: 'https://x.example', secret: 'an-inline-secret-of-24ch' }).length, 0, 'a long inline secret parses (the loader warns about inline secrets)');
  });

  it('refuses an inline secret in a policy file (rule approval.notify), accepts references', () => {
    const rule = (secret: unknown): string[] => {
      const r = RuleWebhooksSchema.safeParse([{ url: 'https://x.example', secret }]);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.match(rule('an-inline-secret-of-24ch').join('\n'), /inline secrets are refused in a policy file/);
    assert.match(rule('file:secret.txt').join('\n'), /inline secrets are refused/);
    assert.deepEqual(rule('${AIGOV_WEBHOOK_SECRET}'), []);
    assert.deepEqual(rule({ env: 'AIGOV_WEBHOOK_SECRET' }), []);
    assert.deepEqual(rule({ file: 'webhook.secret' }), []);
  });

  it('checks the resolved secret length without echoing it', () => {
    const w = WebhookSchema.parse({ url: 'https://x.example', secret: '${S}' });
    const short = resolveWebhook(w, 'tooshort');
    assert.ok('problem' in short);
    assert.ok(!short.problem.includes('tooshort'));
    const ok = resolveWebhook(w, `  ${SECRET}\n`);
    assert.ok('webhook' in ok);
    assert.equal(ok.webhook.secret, SECRET);
    assert.ok(Object.isFrozen(ok.webhook));
  });
});
