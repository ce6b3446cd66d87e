/**
 * Attacks on the policy's custom patterns through a real gateway (official SDK as client): an
 * attacker who may only send prompts sends ~1 MB texts built to make each accepted pattern
 * backtrack, or a huge answer has to be masked. While that is in flight, /readyz and another
 * user's call must answer quickly (the event loop is never held), and the attacker's request is
 * answered correctly or refused with AIGOV_E_POLICY_BUDGET naming the rule — never hangs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startHarness, type Harness } from './support/gateway-harness.ts';

const MB = 1_000_000;
const EMAIL = 'jane.doe@example.com';

// Every pattern here is accepted by `aigov policy validate`; on V8's backtracking engine each one
// freezes a thread on the prompts below (a+b: one scan of the a-run per start position). Each
// rule applies to its own model name, so an attack meets exactly one pattern.
const POLICY = `version: 1
rules:
  - id: block-ab
    match: { models: [attack-block-ab], regex: [{ pattern: 'a+b', max_length: 4096 }] }
    action: block
  - id: block-word-runs
    match: { models: [attack-block-word-runs], regex: [{ pattern: '(\\w{1,20}\\s?){1,20}!', max_length: 4096 }] }
    action: block
  - id: block-a-groups
    match: { models: [attack-block-a-groups], regex: [{ pattern: '(?:a{2,9}){2,9}$', max_length: 4096 }] }
    action: block
  - id: block-dot-groups
    match: { models: [attack-block-dot-groups], regex: [{ pattern: '(.{0,30}){0,30}x', max_length: 4096 }] }
    action: block
  - id: mask-emails
    match: { detectors: [EMAIL_ADDRESS] }
    action: mask_response
`;

const ATTACKS: { rule: string; prompt: string }[] = [
  { rule: 'block-ab', prompt: 'a'.repeat(MB) },
  { rule: 'block-word-runs', prompt: 'a'.repeat(MB) },
  { rule: 'block-a-groups', prompt: `${'a'.repeat(MB)}!` },
  { rule: 'block-dot-groups', prompt: 'a'.repeat(MB) },
];

/** An upstream whose answer repeats a line with an email until the size the prompt asks for ("SIZE n"). */
async function startBigAnswerUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: { content: string }[] };
      const prompt = body.messages.at(-1)?.content ?? '';
      const size = /^SIZE (\d+)/.exec(prompt);
      const line = `write to ${EMAIL} about it. `;
      const content = size ? line.repeat(Math.ceil(Number(size[1]) / line.length)) : 'ok';
      const text = JSON.stringify({
        id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

let h: Harness;
let dir: string;
let upstream: { url: string; server: Server };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-budget-'));
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
  upstream = await startBigAnswerUpstream();
  h = await startHarness({ policyFile, openaiBaseUrl: upstream.url });
});
after(async () => {
  await h?.close();
  upstream?.server.close();
  await rm(dir, { recursive: true, force: true });
});

const client = (timeout: number): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, timeout });

/** Polls /readyz until `done` settles; returns the slowest answer in ms. */
async function watchReadyz(done: Promise<unknown>): Promise<{ slowest: number; polls: number }> {
  let finished = false;
  void done.finally(() => (finished = true));
  let slowest = 0;
  let polls = 0;
  while (!finished) {
    const t0 = performance.now();
    const res = await fetch(`${h.url}/readyz`, { signal: AbortSignal.timeout(60_000) });
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    slowest = Math.max(slowest, performance.now() - t0);
    polls++;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { slowest, polls };
}

describe('custom patterns under attack: no request stalls the others', () => {
  for (const { rule, prompt } of ATTACKS) {
    it(`${rule}: a 1 MB adversarial prompt is answered or refused with AIGOV_E_POLICY_BUDGET; /readyz and another call stay fast`, async (t) => {
      const t0 = performance.now();
      const attack = client(60_000)
        .chat.completions.create({ model: `attack-${rule}`, messages: [{ role: 'user', content: prompt }] })
        .then((r) => ({ ok: r }), (e: unknown) => ({ error: e }));
      const readyz = watchReadyz(attack);
      // Another user's ordinary call while the attack is in flight.
      const i0 = performance.now();
      const innocent = await client(30_000).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
      const innocentMs = performance.now() - i0;
      const outcome = await attack;
      const elapsed = performance.now() - t0;
      const { slowest, polls } = await readyz;
      t.diagnostic(`attack settled in ${elapsed.toFixed(0)} ms (${'ok' in outcome ? 'answered' : 'refused'}); /readyz slowest ${slowest.toFixed(1)} ms over ${polls} polls; innocent call ${innocentMs.toFixed(0)} ms`);

      assert.equal(innocent.choices[0]?.message.content, 'ok');
      assert.ok(innocentMs < 2000, `the innocent call took ${innocentMs.toFixed(0)} ms`);
      assert.ok(polls >= 2, `only ${polls} /readyz polls`);
      assert.ok(slowest < 500, `/readyz took up to ${slowest.toFixed(0)} ms while the attack was in flight`);
      assert.ok(elapsed < 20_000, `the attack took ${elapsed.toFixed(0)} ms to settle`);
      if ('ok' in outcome) {
        assert.equal(outcome.ok.choices[0]?.message.content, 'ok', 'no rule matches: the prompt went through');
      } else {
        const error = outcome.error;
        assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
        assert.equal(error.code, 'AIGOV_E_POLICY_BUDGET');
        assert.ok(error.message.includes(`\`${rule}\``), error.message);
        assert.ok(!error.message.includes('aaaa'), 'the error never echoes the prompt');
      }
    });
  }

  it('a real match in a 1 MB prompt is still found (scanned on a worker) and blocked naming the rule, with its record redacted', async () => {
    const prompt = `${'hello there. '.repeat(80_000)} token aaab and mail ${EMAIL}`;
    const error = await client(30_000)
      .chat.completions.create({ model: 'attack-block-ab', messages: [{ role: 'user', content: prompt }] })
      .catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.equal(error.code, 'AIGOV_E_POLICY_BLOCKED');
    assert.match(error.message, /block-ab/);
    await h.gateway.store.flush();
    const [session] = await h.gateway.store.listSessions({ limit: 1 });
    const call = (await h.gateway.store.listCalls(session!.sessionId)).at(-1)!;
    assert.equal(call.status, 'blocked');
    assert.ok(!call.requestBody.includes(EMAIL) && call.requestBody.includes('token aaab'), 'the record is redacted by the built-in detectors');
  });

  it('an 8 MB answer is masked off the event loop: every email masked, /readyz fast meanwhile', async (t) => {
    const answer = client(60_000).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `SIZE ${8 * MB}` }] });
    const { slowest, polls } = await watchReadyz(answer.catch(() => undefined));
    t.diagnostic(`/readyz slowest ${slowest.toFixed(1)} ms over ${polls} polls`);
    const content = (await answer).choices[0]?.message.content ?? '';
    const lines = Math.ceil((8 * MB) / `write to ${EMAIL} about it. `.length);
    assert.ok(!content.includes('@'), 'no email left in the answer');
    assert.equal(content.split('write to ').length - 1, lines, 'every line is there, only its email masked');
    // Masking it on the event loop stalled it 3.4 s on a quiet machine; what stays on the loop (reading,
    // parsing and recording 8 MB) is ~100 ms quiet and a few hundred under the full suite's load.
    assert.ok(slowest < 1500, `/readyz took up to ${slowest.toFixed(0)} ms while the answer was masked`);
  });
});

describe('limits.policy_scan_deadline_ms', () => {
  it('a shorter deadline refuses the heavy scan sooner, naming the rule', async () => {
    const g = await startHarness({ policyFile: join(dir, 'policy.yaml'), openaiBaseUrl: upstream.url, limits: { policy_scan_deadline_ms: 1000, policy_workers: 1 } });
    try {
      const c = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0, timeout: 60_000 });
      // A first large request starts the one scan worker (a cold start can take hundreds of ms).
      await c.chat.completions.create({ model: 'attack-block-ab', messages: [{ role: 'user', content: 'c'.repeat(100_000) }] });
      const t0 = performance.now();
      await assert.rejects(c.chat.completions.create({ model: 'attack-block-dot-groups', messages: [{ role: 'user', content: 'a'.repeat(MB) }] }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
        assert.equal(error.code, 'AIGOV_E_POLICY_BUDGET');
        assert.match(error.message, /block-dot-groups/);
        return true;
      });
      const ms = performance.now() - t0;
      assert.ok(ms < 4000, `refused after ${ms.toFixed(0)} ms (the default deadline is 5000)`);
    } finally {
      await g.close();
    }
  });

  it('heavy requests of one client never queue another client\'s large request past the deadline', async () => {
    const g = await startHarness({ policyFile: join(dir, 'policy.yaml'), openaiBaseUrl: upstream.url, limits: { policy_scan_deadline_ms: 1000, policy_workers: 1 } });
    try {
      const c = new OpenAI({ baseURL: `${g.url}/openai/v1`, apiKey: g.token, maxRetries: 0, timeout: 60_000 });
      // Six attacks, each holding the one worker for the whole deadline: queued one after the other
      // they would make a request behind them wait six seconds.
      const attacks = Array.from({ length: 6 }, () => c.chat.completions.create({ model: 'attack-block-dot-groups', messages: [{ role: 'user', content: 'a'.repeat(MB) }] }).catch((e: unknown) => e));
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      const innocent = await c.chat.completions.create({ model: 'attack-block-ab', messages: [{ role: 'user', content: 'c'.repeat(100_000) }] }).catch((e: unknown) => e);
      const ms = performance.now() - t0;
      assert.ok(ms < 3000, `the large innocent request settled after ${ms.toFixed(0)} ms`);
      if (innocent instanceof Error) assert.match(innocent.message, /AIGOV_E_POLICY_BUDGET|every policy worker was busy/);
      for (const a of await Promise.all(attacks)) assert.ok(a instanceof OpenAI.PermissionDeniedError && a.code === 'AIGOV_E_POLICY_BUDGET', String(a));
    } finally {
      await g.close();
    }
  });
});
