/**
 * `aigov sessions replay` end to end, as processes: a real gateway (test harness: SQLite, dev
 * IdP, replaying upstream that streams a recorded OpenAI answer slowly) records a session that
 * the official OpenAI SDK streams through it under a masking policy; the BUILT CLI, logged in as
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

  it('without a terminal prints the transcript: the call, its decisions, the masked prompt and the answer as the client got it', async () => {
    const result = await aigov(['sessions', 'replay', SESSION, '--profile', 'alice']);
    assert.equal(result.code, 0, result.stderr);
    const text = result.stdout;
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /\u001b/);
    assert.match(text, new RegExp(`^Session ${SESSION} · alice@aigov\\.dev · 1 call · `));
    assert.match(text, /Call 1 of 1 · \d\d:\d\d:\d\d\.\d{3}Z \(\+0 ms\) · openai\/gpt-4o-mini · openai\.chat\.completions · streamed · completed \(HTTP 200\)/);
    assert.match(text, /mask_request · rule mask-emails · request · emails never leave/);
    assert.match(text, /\[system\]\n {6}You are the front desk\.\n {4}\[user\]\n {6}Where do I meet the client\? My address is \[EMAIL\]\n/);
    assert.doesNotMatch(text, /bob\.smith@example\.com|jane\.doe@example\.com/, 'what was masked stays masked');
    assert.match(text, /Masked: \[EMAIL\]/);
    assert.match(text, /Answer \(streamed: \d+ events, \d+ text deltas, first text at \d+ ms, last at (\d+ ms|\d\.\d s)\)/);
    assert.ok(text.includes(`\n    ${streamed}\n`), `the answer as the client got it:\n${text}`);
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

  it('in a real terminal the answer grows at its recorded pace, space pauses, q quits', { skip: TMUX ? false : 'tmux is not installed' }, async () => {
    const session = `aigov-replay-${process.pid}`;
    const vars = Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`).join(' ');
    // CI=… would make Ink hold its frames: test the interactive view.
    const command = `env -u CI -u CONTINUOUS_INTEGRATION ${vars} ${process.execPath} ${BIN} sessions replay ${SESSION} --profile alice; echo "exit=$?"; sleep 30`;
    try {
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '110', '-y', '30', command]);
      const first = await waitForScreen(session, (t) => t.includes('Call 1 of 1') && t.includes('▶ playing'), 'the replay');
      assert.match(first, new RegExp(`aigov sessions replay ${SESSION} · alice@aigov\\.dev · 1 call`));
      assert.match(first, /⚑ mask_request · rule mask-emails · request · emails never leave/);
      assert.match(first, /user +│ Where do I meet the client\? My address is \[EMAIL\]/);
      // Part of the answer, then more of it: it grows rather than appearing at once.
      const partial = await waitForScreen(session, (t) => /Answer .*\n {2}Café/.test(t), 'the first words of the answer');
      execFileSync('tmux', ['send-keys', '-t', session, 'Space']);
      const paused = await waitForScreen(session, (t) => t.includes('❚❚ paused'), 'the pause');
      await new Promise((r) => setTimeout(r, 600));
      const answerOf = (t: string): string => t.slice(t.indexOf('Answer'), t.indexOf('❚❚') >= 0 ? t.indexOf('❚❚') : t.indexOf('▶'));
      assert.equal(answerOf(screen(session)), answerOf(paused), 'nothing more while paused');
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(`${partial}\n----\n${paused}`);
      execFileSync('tmux', ['send-keys', '-t', session, 'Space']);
      const finished = await waitForScreen(session, (t) => t.includes('See you there') && t.includes('■ finished'), 'the whole answer');
      assert.ok(!partial.includes('See you there'), `the answer appeared at once:\n${partial}`);
      assert.match(finished, /Café ☕ contact: \[EMAIL\], phone/);
      if (process.env.AIGOV_TEST_SHOW_SCREENS) console.log(finished);
      execFileSync('tmux', ['send-keys', '-t', session, 'Left']);
      await waitForScreen(session, (t) => t.includes('▶ playing') && !t.includes('See you there'), 'the call playing again from its start');
      execFileSync('tmux', ['send-keys', '-t', session, 'q']);
      await waitForScreen(session, (t) => /exit=0/.test(t), 'the replay to quit');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
    }
  });
});
