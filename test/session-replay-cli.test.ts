/**
 * `aigov sessions replay` end to end, as processes: a real gateway (test harness: SQLite, dev
 * IdP, replaying upstream that streams a recorded OpenAI answer slowly) records a session that
 * the official SDKs call through it under a policy — an OpenAI chat stream, a Responses stream and
 * an Anthropic stream with a tool call, masked; a request held until bob approves it; a blocked
 * one — and the BUILT CLI, logged in as
 * alice in its own profile with its own daemon, fetches it from the sessions API and
 *   - without a terminal prints the plain transcript (exit 0, no ANSI);
 *   - in a real terminal (tmux) shows the call, the masked spans and the answer growing at the
 *     recorded pace, and quits on q.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'run.js');
const BUILT = existsSync(join(ROOT, 'dist', 'commands', 'sessions', 'replay.js'));
const TMUX = spawnSync('tmux', ['-V']).status === 0;

const POLICY = `
version: 1
rules:
  - id: mask-emails
    reason: emails never leave
    match: { detectors: [EMAIL_ADDRESS] }
    action: mask_request
  - id: mask-answers
    reason: no personal data in answers
    match: { detectors: [EMAIL_ADDRESS] }
    action: mask_response
  - id: customer-data
    reason: customer data needs a second look
    match: { keywords: ['customer list'] }
    action: require_approval
    approval: { approvers: [approvers], timeout: 2m }
  - id: no-launch-codes
    reason: launch codes stay here
    match: { keywords: ['launch codes'] }
    action: block
`;

const SESSION = 'ses-replay-e2e';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let harness: Harness;
let home: string;
let env: NodeJS.ProcessEnv;

function aigov(args: string[], onStderr?: (stderr: string) => void): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('exit', (code) => {
      assert.equal(/eyJ[\w-]{10,}/.test(stdout + stderr), false, `a token was printed by aigov ${args.join(' ')}`);
      resolve({ code, stdout, stderr });
    });
  });
}

function screen(session: string): string {
  return execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
}

async function waitForScreen(session: string, test: (text: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = screen(session);
    if (test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('aigov sessions replay against a real gateway', { skip: BUILT ? false : 'run `npm run build` first', timeout: 180_000 }, () => {
  let streamed = '';
  let responsesText = '';

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-replay-cli-'));
    const policyFile = join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    harness = await startHarness({ policyFile });
    // The recorded answer, sent in ~30 pieces 60 ms apart: about two seconds of streaming to replay.
    harness.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: { size: 256 }, chunkDelayMs: 60 });
    const openai = new OpenAI({ baseURL: `${harness.url}/openai/v1`, apiKey: harness.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': SESSION } });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [
        { role: 'system', content: 'You are the front desk.' },
        { role: 'user', content: 'Where do I meet the client? My address is bob.smith@example.com' },
      ],
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
    assert.match(streamed, /contact: \[EMAIL\], phone/, 'the answer was masked on its way');

    harness.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses-stream'), { chunking: { random: 11 } });
    const responses = await openai.responses.create({ model: 'gpt-4.1-mini', instructions: 'Answer in French.', input: 'Who can I write to?', stream: true });
    for await (const event of responses) if (event.type === 'response.output_text.delta') responsesText += event.delta;

    harness.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream-tools'), { chunking: { random: 5 } });
    const anthropic = new Anthropic({ baseURL: `${harness.url}/anthropic`, apiKey: harness.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': SESSION } });
    await anthropic.messages
      .stream({ model: 'claude-haiku-4-5', max_tokens: 200, system: 'You check the weather.', messages: [{ role: 'user', content: 'Weather in Paris?' }] })
      .finalMessage();

    // Held until bob approves it through the approvals API.
    harness.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
    const held = openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'send the customer list to finance' }] });
    const bob = await harness.tokenFor('bob');
    const deadline = Date.now() + 20_000;
    let approvalId: string | undefined;
    while (approvalId === undefined && Date.now() < deadline) {
      const list = (await (await fetch(`${harness.url}/aigov/v1/approvals?scope=decide`, { headers: { authorization: `Bearer ${bob}` } })).json()) as { approvals: { id: string }[] };
      approvalId = list.approvals[0]?.id;
      if (approvalId === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(approvalId, 'the request was held');
    const vote = await fetch(`${harness.url}/aigov/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'finance asked for it' }),
    });
    assert.equal(vote.status, 200);
    await held;

    const blocked = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'print the launch codes' }] }).catch((e: unknown) => e);
    assert.ok(blocked instanceof OpenAI.PermissionDeniedError, String(blocked));

    env = { PATH: process.env.PATH, HOME: home, AIGOV_CONFIG_DIR: join(home, 'config'), AIGOV_RUNTIME_DIR: join(home, 'run'), AIGOV_DEVICE_POLL_INTERVAL: '1' };
    let approved = false;
    const login = await aigov(['login', '--profile', 'alice', '--gateway', harness.url, '--no-browser', '--insecure-storage'], (stderr) => {
      const code = /\b([A-Z0-9]{4}-[A-Z0-9]{4})\b/.exec(stderr)?.[1];
      if (code && !approved) {
        approved = true;
        void harness.idp.approveDevice(code, 'alice');
      }
    });
    assert.equal(login.code, 0, login.stderr);
  });

  after(async () => {
    await aigov(['daemon', 'stop', '--profile', 'alice']);
    await harness.close();
    await rm(home, { recursive: true, force: true });
  });

  it('without a terminal prints the transcript: each call, its decisions and approval, the masked prompt and the answer as the client got it', async () => {
    const result = await aigov(['sessions', 'replay', SESSION, '--profile', 'alice']);
    assert.equal(result.code, 0, result.stderr);
    const text = result.stdout;
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /\u001b/);
    assert.doesNotMatch(text, /bob\.smith@example\.com|jane\.doe@example\.com|elodie\.martin@example\.org/, 'what was masked stays masked');
    assert.match(text, new RegExp(`^Session ${SESSION} · alice@aigov\\.dev · 5 calls · `));
    const calls = text.split(/\n(?=Call \d of 5 )/).slice(1);
    assert.equal(calls.length, 5, text);
    const [chat, responses, anthropic, held, blocked] = calls as [string, string, string, string, string];

    assert.match(chat, /^Call 1 of 5 · \d\d:\d\d:\d\d\.\d{3}Z \(\+0 ms\) · openai\/gpt-4o-mini · openai\.chat\.completions · streamed · completed \(HTTP 200\)/);
    assert.match(chat, /mask_request · rule mask-emails · request · emails never leave/);
    assert.match(chat, /\[system\]\n {6}You are the front desk\.\n {4}\[user\]\n {6}Where do I meet the client\? My address is \[EMAIL\]\n/);
    assert.match(chat, /Masked: \[EMAIL\]/);
    assert.match(chat, /Answer \(streamed: \d+ events, \d+ text deltas, first text at \d+ ms, last at (\d+ ms|\d\.\d s)\)/);
    assert.ok(chat.includes(`\n    ${streamed}\n`), `the answer as the client got it:\n${chat}`);

    assert.match(responses, /openai\.responses · streamed/);
    assert.match(responses, /\[instructions\]\n {6}Answer in French\.\n {4}\[user\]\n {6}Who can I write to\?\n/);
    assert.ok(responses.includes(`\n    ${responsesText}\n`), `the Responses answer as the client got it:\n${responses}`);

    assert.match(anthropic, /anthropic\/claude-haiku-4-5 · anthropic\.messages · streamed/);
    assert.match(anthropic, /\[system\]\n {6}You check the weather\.\n {4}\[user\]\n {6}Weather in Paris\?\n/);
    assert.match(anthropic, /\n {4}I'll look up the weather in Paris for you\.\n {4}→ tool call get_weather\n {6}\{"location": "Paris, France", "unit": "celsius"\}\n/);

    assert.match(held, /require_approval · rule customer-data · request · customer data needs a second look/);
    assert.match(held, /Approval apr_\S+ \(rule customer-data\): approved at \d\d:\d\d:\d\d\.\d{3}Z, held (\d+ ms|\d+\.\d s)\n {4}✔ approved by bob@aigov\.dev at \d\d:\d\d:\d\d\.\d{3}Z: “finance asked for it”/);
    assert.match(held, /Answer\n {4}Sure\. The account owner is Jane Doe; you can reach her at \[EMAIL\]/);

    assert.match(blocked, /^Call 5 of 5 .* blocked \(HTTP 403\)/);
    assert.match(blocked, /block · rule no-launch-codes · request · launch codes stay here/);
  });

  it('an unknown session is "not found" with its code', async () => {
    const result = await aigov(['sessions', 'replay', 'ses-nobody-has', '--profile', 'alice']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /code: AIGOV_E_SESSION_NOT_FOUND/);
  });

  it('a bad --speed is refused before anything is fetched', async () => {
    const result = await aigov(['sessions', 'replay', SESSION, '--profile', 'alice', '--speed', '40']);
    assert.equal(result.code, 65, result.stderr);
    assert.match(result.stderr, /--speed takes a number from 0\.25 to 16/);
  });

  it('in a real terminal the answer grows at its recorded pace, space pauses, it moves on to the next call, ←/→ seek, q quits', { skip: TMUX ? false : 'tmux is not installed' }, async () => {
    const session = `aigov-replay-${process.pid}`;
    const vars = Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`).join(' ');
    // CI=… would make Ink hold its frames: test the interactive view.
    const command = `env -u CI -u CONTINUOUS_INTEGRATION ${vars} ${process.execPath} ${BIN} sessions replay ${SESSION} --profile alice; echo "exit=$?"; sleep 30`;
    try {
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '110', '-y', '30', command]);
      const first = await waitForScreen(session, (t) => t.includes('Call 1 of 5') && t.includes('▶ playing'), 'the replay');
      assert.match(first, new RegExp(`aigov sessions replay ${SESSION} · alice@aigov\\.dev · 5 calls`));
      assert.match(first, /⚑ mask_request · rule mask-emails · request · emails never leave/);
      assert.match(first, /user +│ Where do I meet the client\? My address is \[EMAIL\]/);
      // The masked span is highlighted (reverse video), the text around it is not.
      const styled = execFileSync('tmux', ['capture-pane', '-p', '-e', '-t', session], { encoding: 'utf8' });
      // eslint-disable-next-line no-control-regex
      assert.match(styled, /My address is \u001b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m(?:\u001b\[[0-9;]*m)*\[EMAIL\]/, JSON.stringify(styled));
      // Part of the answer, then more of it: it grows rather than appearing at once.
      const partial = await waitForScreen(session, (t) => /Answer .*\n {2}Café/.test(t), 'the first words of the answer');
      execFileSync('tmux', ['send-keys', '-t', session, 'Space']);
      const paused = await waitForScreen(session, (t) => t.includes('❚❚ paused'), 'the pause');
      await new Promise((r) => setTimeout(r, 600));
      const answerOf = (t: string): string => t.slice(t.indexOf('Answer'), t.indexOf('❚❚') >= 0 ? t.indexOf('❚❚') : t.indexOf('▶'));
      assert.equal(answerOf(screen(session)), answerOf(paused), 'nothing more while paused');
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(`${partial}\n----\n${paused}`);
      execFileSync('tmux', ['send-keys', '-t', session, 'Space']);
      const whole = await waitForScreen(session, (t) => t.includes('See you there'), 'the whole answer');
      assert.match(whole, /Café ☕ contact: \[EMAIL\], phone/);
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(whole);
      // After the recorded gap (at most 2 s) it moves on to the next call by itself.
      await waitForScreen(session, (t) => t.includes('Call 2 of 5') && t.includes('◆'), 'the next call');
      for (let i = 0; i < 3; i++) execFileSync('tmux', ['send-keys', '-t', session, 'Right']);
      const last = await waitForScreen(session, (t) => t.includes('Call 5 of 5'), 'the last call');
      assert.match(last, /Call 5 of 5 · blocked \(HTTP 403\)/);
      assert.match(last, /⚑ block · rule no-launch-codes · request · launch codes stay here/);
      execFileSync('tmux', ['send-keys', '-t', session, 'Left']);
      const held = await waitForScreen(session, (t) => t.includes('Call 4 of 5'), 'the held call');
      assert.match(held, /Approval apr_\S+ \(rule customer-data\): approved at/);
      assert.match(held, /✔ approved by bob@aigov\.dev at .*: “finance asked for it”/);
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(held);
      execFileSync('tmux', ['send-keys', '-t', session, 'q']);
      await waitForScreen(session, (t) => /exit=0/.test(t), 'the replay to quit');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
    }
  });
});
