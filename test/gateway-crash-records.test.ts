/**
 * The rule "an answer is complete at the client only once its record is committed", attacked
 * with real processes: a gateway process (test/support/gateway-child.ts) serves ~200 concurrent
 * streamed and non-streamed calls (OpenAI and Anthropic, replayed upstream paced so many are in
 * flight at once) and is killed with SIGKILL in the middle. Then the database is opened as the
 * next gateway would: every call whose client received the complete answer (the terminal event,
 * or the whole body) has its `completed` result and exactly the events the client saw; nothing is
 * left `pending` (the dead process's open calls are settled `aborted` with the time of their last
 * event); the audit chain verifies.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { loadTranscript, startReplayUpstream, type ReplayUpstream } from './support/replay-upstream.ts';

const CHILD = path.resolve('test/support/gateway-child.ts');
const CONCURRENCY = 200;
const LOAD_MS = 2500;

interface Outcome {
  readonly kind: 'openai-stream' | 'openai-body' | 'anthropic-stream' | 'anthropic-body';
  readonly callId: string | null;
  /** The client got the whole answer: the terminal event (streams) or every byte of the body, and a clean end. */
  readonly complete: boolean;
  readonly text: string;
}

const KINDS = ['openai-stream', 'openai-body', 'anthropic-stream', 'anthropic-body'] as const;

function requestFor(kind: Outcome['kind'], n: number): { path: string; body: string; headers: Record<string, string> } {
  const stream = kind.endsWith('stream');
  if (kind.startsWith('openai')) {
    return { path: '/openai/v1/chat/completions', body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `question ${n}` }] }), headers: {} };
  }
  return {
    path: '/anthropic/v1/messages',
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, stream, messages: [{ role: 'user', content: `question ${n}` }] }),
    headers: { 'anthropic-version': '2023-06-01' },
  };
}

async function oneCall(url: string, token: string, kind: Outcome['kind'], n: number): Promise<Outcome> {
  const { path: p, body, headers } = requestFor(kind, n);
  let callId: string | null = null;
  let text = '';
  try {
    const res = await fetch(url + p, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body });
    callId = res.headers.get('x-aigov-call-id');
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    if (res.status !== 200) return { kind, callId, complete: false, text };
    const complete = kind === 'openai-stream' ? text.includes('data: [DONE]') : kind === 'anthropic-stream' ? text.includes('event: message_stop') : JSON.parse(text) !== null;
    return { kind, callId, complete, text };
  } catch {
    return { kind, callId, complete: false, text };
  }
}

describe('kill -9 with calls in flight', () => {
  let upstream: ReplayUpstream;
  let dir = '';
  let child: ChildProcess | null = null;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-crash-'));
    upstream = await startReplayUpstream();
    // Paced: each answer takes tens of ms, so at any moment many calls are between their first
    // byte and their end, and many end in every millisecond of the load.
    const pace = { chunking: { size: 48 }, chunkDelayMs: 4 } as const;
    const chatStream = loadTranscript('openai-chat-stream');
    const chat = loadTranscript('openai-chat');
    upstream.route('POST', '/v1/chat/completions', (req) => ((JSON.parse(req.body) as { stream?: boolean }).stream ? chatStream : chat), pace);
    const messagesStream = loadTranscript('anthropic-messages-stream');
    const messages = loadTranscript('anthropic-messages');
    upstream.route('POST', '/v1/messages', (req) => ((JSON.parse(req.body) as { stream?: boolean }).stream ? messagesStream : messages), pace);
  });

  after(async () => {
    child?.kill('SIGKILL');
    await upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every answer a client received complete has its completed record; nothing is left pending', async (t) => {
    const db = path.join(dir, 'aigov.db');
    const proc = spawn(process.execPath, [CHILD, upstream.url, db], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
    const ready = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve(JSON.parse(line) as { url: string; token: string });
      });
      proc.once('exit', () => reject(new Error(`the gateway process ended before it was ready: ${stderr}`)));
    });

    // Load: CONCURRENCY clients, each calling in a loop until the gateway is gone.
    // After LOAD_MS the kill is armed: it fires the moment a client has just received a complete
    // answer — the worst moment for a record written behind the answer.
    const outcomes: Outcome[] = [];
    let armed = false;
    let killed = false;
    let completeBefore = 0;
    let n = 0;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      completeBefore = outcomes.filter((o) => o.complete).length;
      proc.kill('SIGKILL');
    };
    const client = async (i: number): Promise<void> => {
      while (!killed) {
        const outcome = await oneCall(ready.url, ready.token, KINDS[i % KINDS.length]!, n++);
        outcomes.push(outcome);
        if (armed && outcome.complete) kill();
      }
    };
    const clients = Array.from({ length: CONCURRENCY }, (_, i) => client(i));
    await new Promise((resolve) => setTimeout(resolve, LOAD_MS));
    armed = true;
    const fallback = setTimeout(kill, 5000); // (answers complete every few ms; this never fires in practice)
    await exited;
    clearTimeout(fallback);
    assert.equal(await exited, 'SIGKILL', stderr);
    await Promise.all(clients);
    child = null;

    const complete = outcomes.filter((o) => o.complete);
    const cut = outcomes.filter((o) => !o.complete && o.callId !== null);
    t.diagnostic(`${complete.length} answers complete at the client, ${cut.length} cut by the kill`);
    assert.ok(completeBefore >= 50, `the load was real: ${completeBefore} answers completed before the kill`);
    assert.ok(cut.length >= 10, `the kill cut calls in flight: ${cut.length}`);
    assert.ok(complete.every((o) => o.callId !== null));

    // Open the database as the next gateway does (this settles what the dead process left open).
    const settledCounts: number[] = [];
    const store = await openSqliteStore({ path: db, onSettled: (count) => settledCounts.push(count) });
    try {
      const missing: string[] = [];
      for (const o of complete) {
        const call = await store.getCall(o.callId!);
        if (call?.status !== 'completed') {
          missing.push(`${o.kind} ${o.callId}: ${call?.status ?? 'no row'}`);
          continue;
        }
        if (o.kind.endsWith('stream')) {
          const recorded = (await store.getStreamEvents(o.callId!)).map((e) => e.raw).join('');
          if (recorded !== o.text) missing.push(`${o.kind} ${o.callId}: ${recorded.length} of ${o.text.length} characters of events recorded`);
        } else if (call.responseBody !== o.text) {
          missing.push(`${o.kind} ${o.callId}: the recorded body differs from the one received`);
        }
      }
      assert.deepEqual(missing, [], `${missing.length} of ${complete.length} complete answers have no complete record`);

      // The calls the kill cut: none left pending; each either committed (its end was on its way)
      // or settled aborted, ended at its last recorded event.
      let aborted = 0;
      for (const o of cut) {
        const call = await store.getCall(o.callId!);
        assert.ok(call !== null, `${o.callId} was recorded before it was forwarded`);
        assert.notEqual(call.status, 'pending', `${o.callId} left pending`);
        if (call.status === 'aborted') {
          aborted++;
          assert.equal(call.errorCode, 'AIGOV_E_GATEWAY_STOPPED');
          const events = await store.getStreamEvents(o.callId!);
          const last = events.at(-1);
          assert.equal(call.endedAt, call.startedAt + (last === undefined ? 0 : Math.round(last.offsetMs)), `${o.callId} ends at its last event`);
        }
      }
      assert.ok(aborted > 0, 'some cut calls were settled');
      assert.equal(settledCounts.length, 1);
      assert.ok(settledCounts[0]! >= aborted);
    } finally {
      await store.close();
    }
    const report = verifyAuditDatabase(db);
    assert.equal(report.problem, null, JSON.stringify(report.problem));
    assert.equal(report.ok, true);
  });
});
