/**
 * Gateway lifecycle and hygiene: graceful shutdown drains streams within the grace period,
 * logs carry no prompts, keys or tokens, and the built CLI's dev gateway works end to end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { pino } from 'pino';
import { ANTHROPIC_KEY, OPENAI_KEY, startHarness } from './support/gateway-harness.ts';
import { chatStreamText, loadTranscript } from './support/replay-upstream.ts';

const PROMPT = 'Please summarise the contract for jane.doe@example.com';

describe('graceful shutdown', () => {
  it('lets an in-flight stream finish, refuses new calls, then closes', async () => {
    const h = await startHarness({ limits: { shutdown_grace_ms: 5000 } });
    try {
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: { size: 200 }, chunkDelayMs: 20 });
      const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const closing = h.gateway.close();
      const late = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'late' }] }).catch((e: unknown) => e);
      assert.ok(late instanceof OpenAI.APIError, 'a call after shutdown began is refused');
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      const expected = chatStreamText('openai-chat-stream');
      assert.equal(text, expected, 'the stream in flight completed');
      await closing;
      assert.equal(h.gateway.handler.inflight, 0);
    } finally {
      await h.close();
    }
  });

  it('cuts streams still open at the deadline and records them as aborted', async () => {
    const h = await startHarness({ limits: { shutdown_grace_ms: 150 } });
    const dir = await mkdtemp(join(tmpdir(), 'aigov-shutdown-'));
    try {
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: { size: 10 }, chunkDelayMs: 50 });
      const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const reading = (async () => {
        for await (const _ of stream) {
          /* drain */
        }
      })().catch((e: unknown) => e);
      const started = Date.now();
      await h.gateway.close();
      assert.ok(Date.now() - started < 3000, 'shutdown honoured its deadline');
      assert.ok((await reading) instanceof Error, 'the cut stream ends with an error on the client');
      // The store was flushed and closed by shutdown: reopen it to read what was recorded.
      const { openSqliteStore } = await import('../src/store/sqlite/sqlite-store.ts');
      const store = await openSqliteStore({ path: h.gateway.config.storage.path });
      const [session] = await store.listSessions();
      const [call] = await store.listCalls(session!.sessionId);
      assert.equal(call?.status, 'aborted');
      await store.close();
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('logs', () => {
  it('carry call facts but never prompts, answers, keys or tokens', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const h = await startHarness({ logger });
    try {
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
      const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] });
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-error-401'));
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] }).catch(() => undefined);
      await new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: `${h.token}x`, maxRetries: 0 }).models.list().catch(() => undefined);
      const answer = (JSON.parse(loadTranscript('openai-chat').body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
      const log = lines.join('');
      assert.match(log, /"msg":"call"/);
      assert.match(log, /"callId":"call_/);
      for (const secret of [PROMPT, 'jane.doe@example.com', answer.slice(0, 40), OPENAI_KEY, ANTHROPIC_KEY, h.token, 'sk-proj']) {
        assert.ok(!log.includes(secret), `log contains ${secret.slice(0, 12)}…`);
      }
    } finally {
      await h.close();
    }
  });
});

describe('the built CLI', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'run.js');
  const built = existsSync(join(import.meta.dirname, '..', 'dist', 'commands', 'server.js'));

  it('`aigov server --dev` serves the official SDK with a token from its embedded IdP', { skip: built ? false : 'run `npm run build` first' }, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'aigov-cli-dev-'));
    const child = spawn(process.execPath, [bin, 'server', '--dev', '--port', '0', '--state-dir', stateDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /gateway\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (m?.[1]) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
      });
      assert.match(stderr, /aigov DEV gateway/);
      assert.match(stderr, /built-in dev model/);
      // The quickstart reads the approve secret from the state dir, as the same local user.
      const quickstart = spawn(process.execPath, [join(import.meta.dirname, '..', 'examples', 'dev-quickstart.mjs'), url, 'carol'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, AIGOV_STATE_DIR: stateDir, AIGOV_DEV_APPROVE_SECRET: '' },
      });
      let out = '';
      quickstart.stdout.on('data', (d: Buffer) => (out += d.toString()));
      quickstart.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => quickstart.on('exit', resolve));
      assert.equal(code, 0, out);
      assert.match(out, /Signed in as carol/);
      assert.match(out, /openai chat +→ \[aigov dev model\]/);
      assert.match(out, /openai stream +→ \[aigov dev model\]/);
      assert.match(out, /anthropic +→ \[aigov dev model\]/);
      assert.match(out, /refuses: 401/);
      child.kill('SIGTERM');
      const exit = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(exit, 0, stderr);
      assert.match(stderr, /SIGTERM received, finishing in-flight calls/);
      // The recordings outlive the process.
      const { openSqliteStore } = await import('../src/store/sqlite/sqlite-store.ts');
      const store = await openSqliteStore({ path: join(stateDir, 'aigov.db') });
      const sessions = await store.listSessions();
      const quick = sessions.find((s) => s.sessionId.startsWith('quickstart-'));
      assert.equal(quick?.callCount, 3);
      assert.equal(quick?.subject, 'carol');
      await store.close();
    } finally {
      child.kill('SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
