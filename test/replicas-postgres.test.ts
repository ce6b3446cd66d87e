/**
 * Three `aigov server` replicas on one PostgreSQL database behave as one gateway, and a replica's
 * death loses nothing that was acknowledged (issue 14).
 *
 * Real parts: three processes of the BUILT CLI (`aigov server --config`, one configuration file
 * for all: storage.driver postgres by ${DATABASE_URL}, a policy with a require_approval rule and
 * a pseudonymize rule, one pseudonym key, one audit signing key), the dev IdP on a server of its
 * own (the organization's IdP, reachable by every replica), a scripted upstream, the official
 * OpenAI and Anthropic SDKs and raw HTTP as clients, spread round-robin over the live replicas
 * as a load balancer would.
 *
 * - A request held on A is approved through B (bob's live inbox on B shows it) and completes on A.
 * - A pseudonym issued on A is restored by B (whole answer) and by C (a stream that splits it).
 * - C is killed with SIGKILL under load, with streams and non-streams in flight and a request held
 *   for approval: every answer a client got whole (a 200 and its complete body or stream) has its
 *   complete record, read back through the sessions API of a survivor; the survivors mark C's open
 *   calls aborted within seconds (settled once: the survivors' own count equals what is aborted);
 *   C's held approval is still decided through B and the retried request goes through on A (the
 *   retry_window flow); nothing is left pending; `aigov audit verify --config` passes.
 * - The survivors stop gracefully and sign the chain's head: `--require-signed` passes.
 * - A webhook receiver (approvals.webhooks in the shared configuration, a real HTTP server that
 *   checks each notice's HMAC signature) got every approval notice of the run — [h1] created on A
 *   and decided on B, [h2] created on C and decided on B after C's death — each delivery id
 *   exactly once across the three replicas; the outbox holds each as delivered on its first
 *   attempt; no notice holds the held prompts' secret, address or words.
 *
 * Waits are for events (a log line, an SSE event, a request reaching the upstream, a stream's
 * first words, a webhook notice), each bounded by a deadline; the one thing with no event of its
 * own (the outbox settled before the kill) is re-read from the database at each event of the
 * load; the load is light (this runs on 2 cores in CI).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { SseParser } from '../src/core/sse.ts';
import { startDevIdp, type DevIdp } from '../src/gateway/dev/idp.ts';
import { SessionDetailSchema, type SessionDetail } from '../src/protocol/sessions.ts';
import { BIN, isBuilt, runCli } from './support/cli-process.ts';
import { deviceLogin } from './support/dev-login.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript, startReplayUpstream, type ReceivedRequest, type ReplayUpstream, type Transcript } from './support/replay-upstream.ts';
import { answer, SECRET_PATH, startReceiver, type Received, type Receiver } from './support/webhook-receivers.ts';

const BUILT = isBuilt('commands/server.js', 'commands/audit/verify.js');
const freshPg = usePgDatabases();
const CLIENT_ID = 'aigov-cli';
/** What the load balancer's name would be: the audience every replica's tokens carry. */
const AUDIENCE = 'https://aigov.replicas.test';
const HOLD_WORDS = 'production password';
// Built at run time: no address literal for a reader to grep.
const JANE = ['jane.doe', 'example.com'].join('@');
/** A password the held prompts carry: no webhook notice may hold it (nor the address, nor the prompt's words). */
const PROMPT_SECRET = `Hx-${randomBytes(6).toString('hex')}`;
/** The webhook receiver's HMAC key, given to the replicas by reference (\${REPLICAS_WEBHOOK_SECRET}). */
const WEBHOOK_SECRET = randomBytes(24).toString('hex');
const STEP_MS = 15_000;

const POLICY = `version: 1
default_action: allow
rules:
  - id: prod-credentials
    reason: the prompt names production credentials
    match: { keywords: ['${HOLD_WORDS}'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 2m, retry_window: 5m }
  - id: contacts
    reason: customer contacts go upstream as placeholders
    match: { detectors: [EMAIL_ADDRESS] }
    action: pseudonymize
`;

type Kind = 'openai-body' | 'openai-stream' | 'anthropic-body' | 'anthropic-stream';
const KINDS: readonly Kind[] = ['openai-body', 'openai-stream', 'anthropic-body', 'anthropic-stream'];

interface Replica {
  readonly name: 'A' | 'B' | 'C';
  readonly proc: ChildProcess;
  readonly url: string;
  /** Everything it logged (JSON lines on stdout; warnings and up). */
  log: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Outcome {
  readonly kind: Kind;
  readonly replica: Replica['name'];
  readonly session: string;
  readonly callId: string | null;
  /** A 200 and the whole answer: the terminal event of a stream, the body of a non-stream. */
  readonly complete: boolean;
  /** Streams: the raw SSE text received; bodies: the answer's text. */
  readonly text: string;
}

function chatAnswer(content: string): Transcript {
  return {
    description: 'a chat completion built by the test',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'chatcmpl-replicas', object: 'chat.completion', created: 1760433151, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
    }),
  };
}

/** A streamed chat answer whose text arrives in exactly these pieces, one SSE event each. */
function chatStream(pieces: readonly string[]): Transcript {
  const event = (delta: object, finish: string | null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-replicas', object: 'chat.completion.chunk', created: 1760433151, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return {
    description: 'a chat stream built by the test',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    body: [event({ role: 'assistant', content: '' }, null), ...pieces.map((p) => event({ content: p }, null)), event({}, 'stop'), 'data: [DONE]\n\n'].join(''),
  };
}

/** The last user message of a chat or messages request, as the upstream received it. */
function lastUserText(req: ReceivedRequest): string {
  const body = JSON.parse(req.body) as { messages?: { role: string; content: unknown }[] };
  const last = body.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  return typeof last === 'string' ? last : JSON.stringify(last ?? '');
}

function isStream(req: ReceivedRequest): boolean {
  return (JSON.parse(req.body) as { stream?: boolean }).stream === true;
}

/** Resolves with the first value `read` gives that is not undefined, checking each time `poke` is called; rejects after `ms`. */
class Waiters {
  readonly #waiting = new Set<() => void>();
  /** Something changed: every waiter checks again. */
  poke(): void {
    for (const check of [...this.#waiting]) check();
  }
  until<T>(read: () => T | undefined, what: string, ms = STEP_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const value = read();
        if (value === undefined) return;
        this.#waiting.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(check);
        reject(new Error(`not seen within ${ms} ms: ${what}`));
      }, ms);
      this.#waiting.add(check);
      check();
    });
  }
  /** As until(), for a read that has to ask something (the database): one read at a time, again after a poke that came meanwhile. */
  untilAsync<T>(read: () => Promise<T | undefined>, what: string, ms = STEP_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let reading = false;
      let again = false;
      const stop = (): void => {
        this.#waiting.delete(check);
        clearTimeout(timer);
      };
      const check = (): void => {
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        again = false;
        read().then(
          (value) => {
            reading = false;
            if (!this.#waiting.has(check)) return;
            if (value !== undefined) {
              stop();
              resolve(value);
            } else if (again) check();
          },
          (error: unknown) => {
            reading = false;
            stop();
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(check);
        reject(new Error(`not seen within ${ms} ms: ${what}`));
      }, ms);
      this.#waiting.add(check);
      check();
    });
  }
}

/** A notice as the receiver got it: its body parsed, and whether its signature checked out. */
interface Notice {
  readonly received: Received;
  readonly signed: boolean;
  readonly body: { type: string; id: string; gateway_url: string; approval: { id: string; state: string; requester: { sub: string }; votes: { by: { sub: string }; decision: string; reason: string | null }[]; preview?: unknown }; text: string } | null;
}

/**
 * What a receiver does (docs/webhooks.md): the HMAC-SHA256 of `<timestamp>.<raw body>` keyed with
 * the configured secret, computed here independently of the gateway's code, and a timestamp
 * within five minutes.
 */
function signatureValid(r: Received): boolean {
  const timestamp = String(r.headers['x-aigov-timestamp'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = `v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.${r.body}`).digest('hex')}`;
  return String(r.headers['x-aigov-signature'] ?? '').split(/[\s,]+/).includes(expected);
}

describe('three aigov server replicas on one PostgreSQL database', { timeout: 120_000, skip: BUILT ? false : 'run `npm run build` first' }, () => {
  const events = new Waiters();
  let dir = '';
  let dbUrl = '';
  let configFile = '';
  let env: NodeJS.ProcessEnv = {};
  let upstream: ReplayUpstream;
  let idp: DevIdp;
  let idpServer: Server;
  /** The organization's webhook receiver (every replica posts to it); notices in the order they arrived. */
  let receiver: Receiver;
  const notices: Notice[] = [];
  let alice = '';
  let bob = '';
  const replicas: Replica[] = [];
  const byName = (name: Replica['name']): Replica => replicas.find((r) => r.name === name)!;
  /** Upstream requests the test holds unanswered (C's non-streamed calls at the kill), and their release. */
  const heldUpstream: (() => void)[] = [];
  /** Approvals bob's inbox on B has shown, by the tag in their preview. */
  const inbox = new Map<string, { id: string; state: string }>();
  const inboxStream = new AbortController();

  const startReplica = (name: Replica['name']): Promise<Replica> =>
    new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, [BIN, 'server', '--config', configFile, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => proc.once('exit', (code, signal) => done({ code, signal })));
      const timer = setTimeout(() => reject(new Error(`replica ${name} did not start within 30 s: ${stderr}`)), 30_000);
      proc.once('exit', (code) => reject(new Error(`replica ${name} exited (${code}) before it listened: ${stderr}`)));
      let log = '';
      let replica: Replica | null = null;
      proc.stdout.on('data', (data: Buffer) => {
        log += data.toString();
        if (replica !== null) replica.log = log;
        events.poke();
      });
      proc.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
        if (url === undefined || replica !== null) return;
        clearTimeout(timer);
        replica = { name, proc, url, log, exited };
        replicas.push(replica);
        resolve(replica);
      });
    });

  before(async () => {
    const db = await freshPg();
    dbUrl = db.url;
    dir = mkdtempSync(join(tmpdir(), 'aigov-replicas-'));
    upstream = await startReplayUpstream();
    receiver = await startReceiver((r, _nth, res) => {
      const signed = signatureValid(r);
      let body: Notice['body'] = null;
      try {
        body = JSON.parse(r.body) as Notice['body'];
      } catch {
        // kept as null: the assertions name it
      }
      notices.push({ received: r, signed, body });
      // A receiver refuses what it cannot authenticate; the gateway does not retry a 401.
      answer(res, signed ? 200 : 401);
      events.poke();
    });
    idpServer = createServer((req, res) => idp.handle(req, res));
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}/oidc`;
    idp = await startDevIdp({ issuer, audience: AUDIENCE, cliClientId: CLIENT_ID, requiredScope: 'aigov', stateDir: join(dir, 'idp'), accessTokenTtlSeconds: 3600 });

    const signingKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(dir, 'audit-signing.key'), signingKey, { mode: 0o600 });
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, [
      'listen: { host: 127.0.0.1, port: 0 }',
      `identity: { issuer: "${issuer}", audience: "${AUDIENCE}", cli_client_id: ${CLIENT_ID}, required_scope: aigov }`,
      'providers:',
      `  - { name: openai, kind: openai, base_url: "${upstream.url}/v1", api_key: "\${REPLICAS_OPENAI_KEY}" }`,
      `  - { name: anthropic, kind: anthropic, base_url: "${upstream.url}", api_key: "\${REPLICAS_ANTHROPIC_KEY}" }`,
      'storage: { driver: postgres, url: "${DATABASE_URL}", pool_size: 2, statement_timeout_ms: 5000 }', // small: other test files share the server's connections
      'policy: { file: policy.yaml }',
      'pseudonyms: { key: "${AIGOV_PSEUDONYM_KEY}" }',
      'audit: { signing_key: { file: audit-signing.key }, checkpoint_interval: 5s, auditor_groups: [auditors] }',
      `approvals: { webhooks: [{ url: "${receiver.url}", secret: "\${REPLICAS_WEBHOOK_SECRET}" }] }`,
      'limits: { shutdown_grace_ms: 3000 }',
      'logging: { level: warn }',
      '',
    ].join('\n'));
    const home = join(dir, 'home');
    mkdirSync(home, { mode: 0o700 });
    env = {
      PATH: process.env.PATH,
      HOME: home,
      AIGOV_CONFIG_DIR: join(home, 'config'),
      AIGOV_RUNTIME_DIR: join(home, 'run'),
      DATABASE_URL: dbUrl,
      REPLICAS_OPENAI_KEY: 'sk-replicas-not-a-real-key-00000000000000',
      REPLICAS_ANTHROPIC_KEY: 'sk-ant-replicas-not-a-real-key-000000000',
      AIGOV_PSEUDONYM_KEY: randomBytes(32).toString('base64'),
      REPLICAS_WEBHOOK_SECRET: WEBHOOK_SECRET,
    };

    routeUpstream();
    // Started together: the migrations' advisory lock lets one migrate while the others wait.
    await Promise.all([startReplica('A'), startReplica('B'), startReplica('C')]);
    alice = (await deviceLogin(idp, CLIENT_ID, 'alice')).accessToken;
    bob = (await deviceLogin(idp, CLIENT_ID, 'bob')).accessToken;
    followInbox();
  });

  after(async () => {
    inboxStream.abort();
    for (const release of heldUpstream) release();
    for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await upstream?.close();
    await receiver?.close();
    await idp?.close();
    idpServer?.closeAllConnections();
    await new Promise((resolve) => idpServer?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The scripted upstream: answers chosen by the prompt; load answers paced so calls overlap. */
  function routeUpstream(): void {
    const pace = { chunking: { size: 96 }, chunkDelayMs: 10 } as const;
    const chat = loadTranscript('openai-chat');
    const chatSse = loadTranscript('openai-chat-stream');
    upstream.route('POST', '/v1/chat/completions', (req) => {
      const text = lastUserText(req);
      if (text.includes('doomed stream')) {
        // An event every ~0.3 s, ~14 s in all: C is killed long before the end.
        return { transcript: chatStream(Array.from({ length: 48 }, (_, i) => `w${i} `)), options: { chunking: { size: 64 }, chunkDelayMs: 100 } };
      }
      if (text.includes('doomed body')) {
        // Never answered while C lives.
        return new Promise((resolve) => {
          heldUpstream.push(() => resolve(chat));
          events.poke();
        });
      }
      if (text.includes('Remind me')) return chatAnswer('Write to «EMAIL_1» today.');
      if (text.includes('Stream the address')) return { transcript: chatStream(['Write to «EM', 'AIL_', '1» now.']), options: { chunking: 'whole' } };
      return { transcript: isStream(req) ? chatSse : chat, options: pace };
    });
    const messages = loadTranscript('anthropic-messages');
    const messagesSse = loadTranscript('anthropic-messages-stream');
    upstream.route('POST', '/v1/messages', (req) => ({ transcript: isStream(req) ? messagesSse : messages, options: pace }));
  }

  /** bob's live inbox on B, for the whole run: each approval event, by the [tag] in its preview. */
  function followInbox(): void {
    void (async () => {
      const res = await fetch(`${byName('B').url}/aigov/v1/approvals/events?scope=decide`, { headers: { authorization: `Bearer ${bob}` }, signal: inboxStream.signal });
      assert.equal(res.status, 200);
      const parser = new SseParser();
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (event.event !== 'approval' || event.data === null) continue;
          const view = JSON.parse(event.data) as { id: string; state: string; preview: string };
          const tag = /\[(h\d+)\]/.exec(view.preview)?.[1];
          if (tag !== undefined) inbox.set(tag, { id: view.id, state: view.state });
          events.poke();
        }
      }
    })().catch(() => undefined);
  }

  const openai = (r: Replica, session: string): OpenAI => new OpenAI({ baseURL: `${r.url}/openai/v1`, apiKey: alice, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
  const anthropic = (r: Replica, session: string): Anthropic => new Anthropic({ baseURL: `${r.url}/anthropic`, apiKey: alice, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
  const pendingApproval = (tag: string): Promise<string> => events.until(() => (inbox.get(tag)?.state === 'pending' ? inbox.get(tag)!.id : undefined), `approval [${tag}] in bob's inbox on B`);
  const session = async (r: Replica, id: string): Promise<SessionDetail> => {
    const res = await fetchAsUser(r.url, alice, `/aigov/v1/sessions/${id}`);
    assert.equal(res.status, 200, `session ${id} through ${r.name}`);
    return SessionDetailSchema.parse(await res.json());
  };
  const metric = async (r: Replica, sample: RegExp): Promise<number> => Number(sample.exec(await (await fetch(`${r.url}/metrics`)).text())?.[1] ?? 0);

  it('a request held on A is approved through B and completes on A', async () => {
    const a = byName('A');
    const answer = openai(a, 'ses-held').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `[h1] what is the ${HOLD_WORDS} policy? Mine is ${PROMPT_SECRET}, ask ${JANE}` }] }).withResponse();
    const id = await pendingApproval('h1');
    assert.equal(upstream.received.filter((r) => lastUserText(r).includes('[h1]')).length, 0, 'nothing goes upstream while held');
    const approved = await fetchAsUser(byName('B').url, bob, `/aigov/v1/approvals/${id}/approve`, { method: 'POST', body: { reason: 'fine' } });
    assert.equal(approved.status, 200);
    const { data, response } = await answer;
    assert.equal(data.object, 'chat.completion');
    assert.equal(upstream.received.filter((r) => lastUserText(r).includes('[h1]')).length, 1);

    const [call] = (await session(byName('B'), 'ses-held')).calls;
    assert.equal(call?.id, response.headers.get('x-aigov-call-id'));
    assert.deepEqual([call?.status, call?.http_status], ['completed', 200]);
    assert.deepEqual(call?.approvals.map((x) => [x.id, x.state, x.votes.map((v) => v.by.sub)]), [[id, 'approved', ['bob']]]);
    // A heard B's decision by NOTIFY (and measured how late it came).
    assert.ok((await metric(a, /^aigov_pg_notify_lag_seconds_count\{channel="aigov_approvals"\} (\d+)$/m)) >= 1, 'A observed the NOTIFY lag');
  });

  it('a pseudonym issued on A is restored by B (whole answer) and by C (a stream that splits it)', async () => {
    const ses = 'ses-vault';
    await openai(byName('A'), ses).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Please write to ${JANE} about the invoice.` }] });
    assert.equal(lastUserText(upstream.received.at(-1)!), 'Please write to «EMAIL_1» about the invoice.');

    const restored = await openai(byName('B'), ses).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Remind me of the address.' }] });
    assert.equal(restored.choices[0]?.message.content, `Write to ${JANE} today.`);

    const stream = await openai(byName('C'), ses).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream the address.' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, `Write to ${JANE} now.`);
    const dump = JSON.stringify(await pgQuery(dbUrl, 'SELECT request_body, response_body FROM calls WHERE session_id = $1', [ses]));
    assert.ok(!dump.includes(JANE), 'no recording holds the address');
  });

  it('C is killed -9 under load: every answer a client got whole is recorded whole; C\'s open calls are aborted by a survivor; its held approval still works; audit verify passes', async () => {
    const [a, b, c] = [byName('A'), byName('B'), byName('C')];
    /** The load balancer's view: replicas taking requests. */
    const live: Replica[] = [a, b, c];
    const outcomes: Outcome[] = [];
    let stop = false;
    let turn = 0;

    const oneCall = async (r: Replica, kind: Kind, ses: string, n: number): Promise<Outcome> => {
      const prompt = `question ${n}`;
      let callId: string | null = null;
      let text = '';
      try {
        if (kind === 'openai-body') {
          const { data, response } = await openai(r, ses).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }).withResponse();
          callId = response.headers.get('x-aigov-call-id');
          return { kind, replica: r.name, session: ses, callId, complete: response.status === 200 && data.object === 'chat.completion', text: data.choices[0]?.message.content ?? '' };
        }
        if (kind === 'anthropic-body') {
          const { data, response } = await anthropic(r, ses).messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: prompt }] }).withResponse();
          callId = response.headers.get('x-aigov-call-id');
          const first = data.content[0];
          return { kind, replica: r.name, session: ses, callId, complete: response.status === 200 && data.type === 'message', text: first?.type === 'text' ? first.text : '' };
        }
        // Streams over raw HTTP: the exact bytes received, to compare with the recorded events.
        const openaiKind = kind === 'openai-stream';
        const res = await fetch(`${r.url}${openaiKind ? '/openai/v1/chat/completions' : '/anthropic/v1/messages'}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'x-aigov-session': ses, ...(openaiKind ? {} : { 'anthropic-version': '2023-06-01' }) },
          body: JSON.stringify(openaiKind
            ? { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] }
            : { model: 'claude-haiku-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: prompt }] }),
        });
        callId = res.headers.get('x-aigov-call-id');
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
        const ended = openaiKind ? text.endsWith('data: [DONE]\n\n') : text.includes('event: message_stop');
        return { kind, replica: r.name, session: ses, callId, complete: res.status === 200 && ended, text };
      } catch {
        return { kind, replica: r.name, session: ses, callId, complete: false, text };
      }
    };
    const client = async (i: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const r = live[turn++ % live.length]!;
        outcomes.push(await oneCall(r, KINDS[(i + n) % KINDS.length]!, `ses-load-${i}`, n));
        events.poke();
      }
    };
    const clients = Array.from({ length: 6 }, (_, i) => client(i));

    try {
      // In flight on C at the kill: two streams past their first words, two non-streamed calls
      // forwarded and unanswered, one request held for approval.
      const doomedStreams = await Promise.all([1, 2].map(async (i) => {
        const res = await fetch(`${c.url}/openai/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'x-aigov-session': 'ses-doomed' },
          body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `doomed stream ${i}` }] }),
        });
        assert.equal(res.status, 200);
        const callId = res.headers.get('x-aigov-call-id')!;
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        let text = '';
        while (!text.includes('w0 ')) {
          const { value, done } = await reader.read();
          assert.ok(!done, 'a doomed stream ended before its first words');
          text += new TextDecoder().decode(value);
        }
        const rest = (async () => {
          for (;;) {
            const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
            if (done) return text;
            text += new TextDecoder().decode(value);
          }
        })();
        return { callId, rest };
      }));
      const doomedBodies = [1, 2].map((i) => openai(c, 'ses-doomed').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `doomed body ${i}` }] }).then(() => 'answered', () => 'cut'));
      const heldPrompt = `[h2] rotate the ${HOLD_WORDS} ${PROMPT_SECRET} tonight, then tell ${JANE}`;
      const heldOnC = openai(c, 'ses-held-c').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: heldPrompt }] }).then(() => 'answered', () => 'cut');
      const heldId = await pendingApproval('h2');
      await events.until(() => (heldUpstream.length === 2 ? true : undefined), 'both doomed bodies at the upstream');
      await events.until(() => (outcomes.filter((o) => o.replica === 'C' && o.complete).length >= 4 && outcomes.filter((o) => o.complete).length >= 12 ? true : undefined), 'load answered on every replica');
      // Not during a webhook post: [h2]'s created notice reached the receiver and every outbox row
      // is settled. (C may be the replica that posted it; killed between the receiver's 200 and
      // the settle, C would leave the row claimed, and another replica would post it again once
      // the lease ends — 2 minutes, not configurable in the gateway config — a second arrival of
      // the same id, as docs/webhooks.md says. That case is the outbox tests'; here it is exactly once.)
      await events.until(() => (noticesOf(heldId).some((n) => n.body?.type === 'approval.created') ? true : undefined), '[h2]\'s created notice at the webhook receiver');
      await events.untilAsync(async () => ((await pgQuery(dbUrl, "SELECT 1 FROM webhook_outbox WHERE state = 'pending'")).length === 0 ? true : undefined), 'the webhook outbox settled before the kill');

      live.splice(live.indexOf(c), 1); // the balancer stops sending to C …
      const killedAt = Date.now();
      c.proc.kill('SIGKILL'); // … as it dies
      assert.deepEqual(await c.exited, { code: null, signal: 'SIGKILL' });
      const doomedStreamTexts = await Promise.all(doomedStreams.map((s) => s.rest));
      assert.ok(doomedStreamTexts.every((t) => !t.includes('[DONE]')), 'the doomed streams were cut');
      assert.deepEqual(await Promise.all([...doomedBodies, heldOnC]), ['cut', 'cut', 'cut']);

      // A survivor settles C's open calls: its log says how many, within seconds.
      await events.until(() => (settledBy([a, b]) > 0 ? true : undefined), 'a survivor settling C\'s calls', 10_000);
      process.stdout.write(`# C's calls settled ${Date.now() - killedAt} ms after the kill\n`);

      // C's approval is still decided (through B), and the retried request goes through on A.
      const decided = await fetchAsUser(b.url, bob, `/aigov/v1/approvals/${heldId}/approve`, { method: 'POST', body: { reason: 'after the crash' } });
      assert.equal(decided.status, 200);
      const retried = await openai(a, 'ses-held-c').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: heldPrompt }] }).withResponse();
      assert.equal(retried.data.object, 'chat.completion');
      const retriedCall = (await session(a, 'ses-held-c')).calls.find((x) => x.id === retried.response.headers.get('x-aigov-call-id'));
      assert.deepEqual([retriedCall?.status, retriedCall?.decisions.find((d) => d.stage === 'approval')?.reason], ['completed', `${heldId} approved earlier by bob@aigov.dev; used by this retry`]);
      // The decision of C's approval is announced by a survivor (checked whole after the survivors stop).
      await events.until(() => (noticesOf(heldId).some((n) => n.body?.type === 'approval.decided') ? true : undefined), '[h2]\'s decided notice at the webhook receiver');
      // Still under load on the survivors for a moment after all that.
      const after = outcomes.length;
      await events.until(() => (outcomes.length >= after + 6 ? true : undefined), 'load on the survivors after the kill');
    } finally {
      stop = true;
      await Promise.all(clients);
      for (const release of heldUpstream.splice(0)) release();
    }

    // Every answer a client got whole has its complete record, read through a survivor's sessions API.
    const complete = outcomes.filter((o) => o.complete);
    const onC = complete.filter((o) => o.replica === 'C');
    process.stdout.write(`# ${outcomes.length} load calls: ${complete.length} complete (${onC.length} on C), ${outcomes.length - complete.length} cut\n`);
    assert.deepEqual(outcomes.filter((o) => !o.complete && o.replica !== 'C').map((o) => `${o.kind} on ${o.replica}`), [], 'no call to a survivor failed');
    const details = new Map<string, SessionDetail>();
    for (const ses of new Set(outcomes.map((o) => o.session))) details.set(ses, await session(b, ses));
    const missing: string[] = [];
    for (const o of complete) {
      const call = details.get(o.session)!.calls.find((x) => x.id === o.callId);
      if (call === undefined || call.status !== 'completed' || call.http_status !== 200) {
        missing.push(`${o.kind} on ${o.replica} ${o.callId}: ${call ? `${call.status} ${call.http_status}` : 'no record'}`);
      } else if (o.kind.endsWith('stream')) {
        const recorded = call.events.map((e) => e.raw).join('');
        if (recorded !== o.text) missing.push(`${o.kind} on ${o.replica} ${o.callId}: ${recorded.length} of ${o.text.length} characters of events recorded`);
      } else {
        const body = JSON.parse(call.response_body ?? 'null') as { choices?: { message: { content: string } }[]; content?: { text?: string }[] } | null;
        const recorded = o.kind === 'openai-body' ? body?.choices?.[0]?.message.content : body?.content?.[0]?.text;
        if (recorded !== o.text) missing.push(`${o.kind} on ${o.replica} ${o.callId}: the recorded answer differs from the one received`);
      }
    }
    assert.deepEqual(missing, [], `${missing.length} of ${complete.length} whole answers have no complete record`);

    // C's calls: none pending; what was open at the kill is aborted (AIGOV_E_GATEWAY_STOPPED), at its last event.
    const owner = String((await pgQuery(dbUrl, 'SELECT owner FROM calls WHERE request_body LIKE $1', ['%doomed stream 1%']))[0]!['owner']);
    const ofC = await pgQuery(dbUrl, 'SELECT id, status, error_code, started_at, ended_at, request_body FROM calls WHERE owner = $1', [owner]);
    assert.deepEqual(ofC.filter((x) => x['status'] === 'pending').map((x) => x['id']), [], 'C left calls pending');
    const aborted = ofC.filter((x) => x['error_code'] === 'AIGOV_E_GATEWAY_STOPPED');
    for (const doomed of ['doomed stream 1', 'doomed stream 2', 'doomed body 1', 'doomed body 2', '[h2]']) {
      assert.equal(aborted.filter((x) => String(x['request_body']).includes(doomed)).length, 1, `"${doomed}" on C is aborted`);
    }
    for (const row of aborted.filter((x) => String(x['request_body']).includes('doomed stream'))) {
      const [last] = await pgQuery(dbUrl, 'SELECT max(offset_ms) AS last, count(*) AS n FROM stream_events WHERE call_id = $1', [row['id']]);
      assert.ok(Number(last!['n']) >= 2, 'its recorded events are kept');
      assert.equal(Number(row['ended_at']), Number(row['started_at']) + Number(last!['last']), 'ended at its last recorded event');
    }
    assert.equal(settledBy([a, b]), aborted.length, 'the survivors settled C\'s open calls once');
    assert.deepEqual(await pgQuery(dbUrl, "SELECT count(*) AS n FROM calls WHERE status = 'pending'"), [{ n: 0 }], 'nothing is left pending');

    // The audit chain: `aigov audit verify --config` (the CLI, as an auditor runs it), and an independent check.
    const verify = await runCli(['audit', 'verify', '--config', configFile, '--json'], { env });
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const report = JSON.parse(verify.stdout) as { ok: boolean; error: unknown };
    assert.deepEqual([report.ok, report.error], [true, null]);
    await checkPgAuditChain(dbUrl);
  });

  it('the survivors stop gracefully, signing the chain\'s head: audit verify --require-signed passes', async () => {
    for (const r of [byName('A'), byName('B')]) r.proc.kill('SIGTERM');
    for (const r of [byName('A'), byName('B')]) assert.deepEqual(await r.exited, { code: 0, signal: null }, r.log);
    const verify = await runCli(['audit', 'verify', '--config', configFile, '--require-signed', '--json'], { env });
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const report = JSON.parse(verify.stdout) as { ok: boolean; checkpoints?: unknown };
    assert.equal(report.ok, true);
  });

  // After the survivors stopped: nobody can post any more (a graceful stop lets posts in flight
  // finish and records them), so what the receiver holds now is final, and the outbox says
  // whether anything would be posted again by a replica started later.
  it('a webhook receiver got each approval notice of the run exactly once, signed, across the three replicas', async () => {
    const [a, b, c] = [byName('A'), byName('B'), byName('C')];
    const h1 = inbox.get('h1')?.id;
    const h2 = inbox.get('h2')?.id;
    assert.ok(h1 !== undefined && h2 !== undefined, 'both approvals were seen in bob\'s inbox');
    assert.deepEqual(notices.filter((n) => !n.signed).map((n) => n.received.id), [], 'every notice carries a valid signature by the configured secret');

    // Each delivery id once; each notice of the run there, from the replica that raised it.
    const ids = notices.map((n) => n.received.id);
    assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'no delivery id arrived twice');
    const seen = notices
      .map((n) => [n.body?.approval.id, n.body?.type, n.body?.approval.state, n.body?.gateway_url])
      .sort((x, y) => String(x[0]).localeCompare(String(y[0])) || String(x[1]).localeCompare(String(y[1])));
    const expected = [
      [h1, 'approval.created', 'pending', a.url],
      [h1, 'approval.decided', 'approved', b.url],
      [h2, 'approval.created', 'pending', c.url],
      [h2, 'approval.decided', 'approved', b.url],
    ].sort((x, y) => String(x[0]).localeCompare(String(y[0])) || String(x[1]).localeCompare(String(y[1])));
    assert.deepEqual(seen, expected, 'every approval notice of the run, and no other');
    for (const n of notices) {
      const body = n.body!;
      assert.equal(n.received.headers['x-aigov-delivery'], body.id, 'x-aigov-delivery is the body\'s id');
      assert.equal(n.received.headers['x-aigov-event'], body.type);
      assert.match(body.id, /^whd_[0-9a-f]{32}$/);
      assert.equal(body.approval.requester.sub, 'alice');
      assert.ok(body.text.includes(body.approval.id), 'the text names the approval');
      if (body.type === 'approval.decided') {
        assert.deepEqual(body.approval.votes.map((v) => [v.by.sub, v.decision, v.reason]), [['bob', 'approve', body.approval.id === h1 ? 'fine' : 'after the crash']]);
      }
      // Not the prompt, not even its redacted preview (include_preview is off by default).
      assert.equal('preview' in body.approval, false);
      for (const leak of [PROMPT_SECRET, JANE, HOLD_WORDS, '[h1]', '[h2]', WEBHOOK_SECRET]) {
        assert.ok(!n.received.body.includes(leak), `notice ${body.type} of ${body.approval.id} holds no prompt content or secret`);
      }
    }

    // The outbox: each of these delivered, on its first attempt (nothing claimed and left behind by C).
    const rows = await pgQuery(dbUrl, 'SELECT id, state, attempts, last_status FROM webhook_outbox ORDER BY id');
    assert.deepEqual(rows, [...ids].sort().map((id) => ({ id, state: 'delivered', attempts: 1, last_status: 200 })));
    for (const r of replicas) {
      assert.ok(!r.log.includes(SECRET_PATH) && !r.log.includes(WEBHOOK_SECRET), `replica ${r.name} logged no webhook URL path or secret`);
    }
  });

  /** The notices the receiver got about one approval. */
  function noticesOf(approvalId: string): Notice[] {
    return notices.filter((n) => n.body?.approval.id === approvalId);
  }

  /** How many calls the replicas logged as settled (calls of stopped replicas marked aborted), in all. */
  function settledBy(survivors: readonly Replica[]): number {
    return survivors.reduce((sum, r) => sum + [...r.log.matchAll(/"settled":(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0), 0);
  }
});
