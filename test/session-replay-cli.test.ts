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
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { cliEnv, isBuilt, loginWithDeviceCode, runCli, type CliResult } from './support/cli-process.ts';
import { fetchAsUser } from './support/fetch-as-user.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { aigovPaneCommand, HAS_TMUX, killSession, screen, sendKeys, startSession, waitForScreen as waitForScreenEvery } from './support/tmux.ts';

const BUILT = isBuilt('commands/sessions/replay.js');

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

let harness: Harness;
let home: string;
let env: NodeJS.ProcessEnv;

function aigov(args: string[]): Promise<CliResult> {
  return runCli(args, { env, forbidTokens: true });
}

/** Reads the screen every 50 ms: the answer grows in 60 ms steps. */
function waitForScreen(session: string, test: (text: string) => boolean, what: string): Promise<string> {
  return waitForScreenEvery(session, test, what, 50);
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
      const list = (await (await fetchAsUser(harness.url, bob, '/aigov/v1/approvals?scope=decide')).json()) as { approvals: { id: string }[] };
      approvalId = list.approvals[0]?.id;
      if (approvalId === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(approvalId, 'the request was held');
    const vote = await fetchAsUser(harness.url, bob, `/aigov/v1/approvals/${approvalId}/approve`, { method: 'POST', body: { reason: 'finance asked for it' } });
    assert.equal(vote.status, 200);
    await held;

    const blocked = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'print the launch codes' }] }).catch((e: unknown) => e);
    assert.ok(blocked instanceof OpenAI.PermissionDeniedError, String(blocked));

    env = cliEnv(home);
    const login = await loginWithDeviceCode(harness, 'alice', { env, forbidTokens: true, extraArgs: ['--profile', 'alice'] });
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
    assert.equal(result.code, 64, result.stderr);
    assert.match(result.stderr, /^aigov: --speed "40" is not valid: it takes a number from 0\.25 to 16/);
  });

  it('in a real terminal the answer grows at its recorded pace, space pauses, it moves on to the next call, ←/→ seek, q quits', { skip: HAS_TMUX ? false : 'tmux is not installed' }, async () => {
    const session = `aigov-replay-${process.pid}`;
    // CI=… would make Ink hold its frames: test the interactive view (aigovPaneCommand unsets it).
    const command = aigovPaneCommand(['sessions', 'replay', SESSION, '--profile', 'alice'], env);
    try {
      startSession(session, command, { width: 110, height: 30 });
      const first = await waitForScreen(session, (t) => t.includes('Call 1 of 5') && t.includes('▶ playing'), 'the replay');
      assert.match(first, new RegExp(`aigov sessions replay ${SESSION} · alice@aigov\\.dev · 5 calls`));
      assert.match(first, /⚑ mask_request · rule mask-emails · request · emails never leave/);
      assert.match(first, /user +│ Where do I meet the client\? My address is \[EMAIL\]/);
      // The masked span is highlighted (reverse video), the text around it is not.
      const styled = screen(session, { styles: true });
      // eslint-disable-next-line no-control-regex
      assert.match(styled, /My address is \u001b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m(?:\u001b\[[0-9;]*m)*\[EMAIL\]/, JSON.stringify(styled));
      // Part of the answer, then more of it: it grows rather than appearing at once.
      const partial = await waitForScreen(session, (t) => /Answer .*\n {2}Café/.test(t), 'the first words of the answer');
      sendKeys(session, 'Space');
      const paused = await waitForScreen(session, (t) => t.includes('❚❚ paused'), 'the pause');
      await new Promise((r) => setTimeout(r, 600));
      const answerOf = (t: string): string => t.slice(t.indexOf('Answer'), t.indexOf('❚❚') >= 0 ? t.indexOf('❚❚') : t.indexOf('▶'));
      assert.equal(answerOf(screen(session)), answerOf(paused), 'nothing more while paused');
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(`${partial}\n----\n${paused}`);
      sendKeys(session, 'Space');
      const whole = await waitForScreen(session, (t) => t.includes('See you there'), 'the whole answer');
      assert.match(whole, /Café ☕ contact: \[EMAIL\], phone/);
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(whole);
      // After the recorded gap (at most 2 s) it moves on to the next call by itself.
      await waitForScreen(session, (t) => t.includes('Call 2 of 5') && t.includes('◆'), 'the next call');
      for (let i = 0; i < 3; i++) sendKeys(session, 'Right');
      const last = await waitForScreen(session, (t) => t.includes('Call 5 of 5'), 'the last call');
      assert.match(last, /Call 5 of 5 · blocked \(HTTP 403\)/);
      assert.match(last, /⚑ block · rule no-launch-codes · request · launch codes stay here/);
      sendKeys(session, 'Left');
      const held = await waitForScreen(session, (t) => t.includes('Call 4 of 5'), 'the held call');
      assert.match(held, /Approval apr_\S+ \(rule customer-data\): approved at/);
      assert.match(held, /✔ approved by bob@aigov\.dev at .*: “finance asked for it”/);
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(held);
      sendKeys(session, 'q');
      await waitForScreen(session, (t) => /exit=0/.test(t), 'the replay to quit');
    } finally {
      killSession(session);
    }
  });
});
