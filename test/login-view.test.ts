/**
 * The Ink device-code view, rendered with ink-testing-library (.tsx is loaded through
 * ./support/tsx-loader.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createElement } from 'react';
import { cleanup, render } from 'ink-testing-library';
import type { DevicePrompt } from '../src/auth/oidc-client.ts';
import type { LoginViewProps } from '../src/tui/LoginView.tsx';
import './support/tsx-loader.ts';

const { LoginView, formatCountdown } = await import('../src/tui/LoginView.tsx');

const BASE: DevicePrompt = {
  userCode: 'WDJB-MJHT',
  verificationUri: 'https://idp.example.com/device',
  verificationUriComplete: 'https://idp.example.com/device?user_code=WDJB-MJHT',
  expiresAt: 1_000_000_000_000,
  intervalSeconds: 5,
};

function props(overrides: Partial<LoginViewProps> = {}): LoginViewProps {
  return { prompt: BASE, gatewayUrl: 'https://aigov.example.com', phase: 'waiting', browserOpened: false, tickMs: 10, ...overrides };
}

/** Resolves once `predicate` holds for the last frame (the view redraws on a timer). */
async function frameMatching(lastFrame: () => string | undefined, predicate: (frame: string) => boolean): Promise<string> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const frame = lastFrame() ?? '';
    if (predicate(frame)) return frame;
    if (Date.now() > deadline) assert.fail(`no frame matched; last frame:\n${frame}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

after(() => cleanup());

describe('LoginView', () => {
  it('shows the code, the complete URL, the reminder and a live countdown with a spinner', async () => {
    let clock = BASE.expiresAt - 125_000;
    const now = () => clock;
    const { lastFrame, unmount } = render(createElement(LoginView, props({ now })));
    const first = lastFrame() ?? '';
    assert.match(first, /Sign in to https:\/\/aigov\.example\.com/);
    assert.match(first, /Open this URL in a browser:/);
    assert.match(first, /https:\/\/idp\.example\.com\/device\?user_code=WDJB-MJHT/);
    assert.match(first, /If the page asks for a code, enter it at https:\/\/idp\.example\.com\/device/);
    assert.match(first, /│ +WDJB-MJHT +│/, 'the code stands alone in a box');
    assert.match(first, /Check that your browser shows exactly this code before you approve\./);
    assert.match(first, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Waiting for approval… the code expires in 2:05/);

    clock = BASE.expiresAt - 5_000;
    await frameMatching(lastFrame, (f) => f.includes('expires in 0:05'));
    clock = BASE.expiresAt + 1;
    const expired = await frameMatching(lastFrame, (f) => f.includes('The code has expired.'));
    assert.doesNotMatch(expired, /Waiting for approval/);
    unmount();
  });

  it('without a complete URL shows the plain one and no "enter it at" line; says when the browser was opened', () => {
    const prompt = { ...BASE, verificationUriComplete: null };
    const { lastFrame, unmount } = render(createElement(LoginView, props({ prompt, browserOpened: true, now: () => BASE.expiresAt - 600_000 })));
    const frame = lastFrame() ?? '';
    assert.match(frame, /Opening this URL in your browser \(open it yourself if nothing appears\):\n\s*https:\/\/idp\.example\.com\/device\n/);
    assert.doesNotMatch(frame, /user_code=/);
    assert.doesNotMatch(frame, /If the page asks/);
    assert.match(frame, /expires in 10:00/);
    unmount();
  });

  it('switches from the spinner to the outcome', () => {
    const now = () => BASE.expiresAt - 60_000;
    const { lastFrame, rerender, unmount } = render(createElement(LoginView, props({ now })));
    assert.match(lastFrame() ?? '', /Waiting for approval/);
    const outcomes = {
      approved: /✔ Approved\./,
      denied: /✘ The sign-in was denied\./,
      expired: /✘ The code expired before it was approved\./,
      cancelled: /Sign-in cancelled\./,
      failed: /✘ The sign-in failed\./,
    } as const;
    for (const [phase, pattern] of Object.entries(outcomes) as [keyof typeof outcomes, RegExp][]) {
      rerender(createElement(LoginView, props({ now, phase })));
      const frame = lastFrame() ?? '';
      assert.match(frame, pattern, phase);
      assert.doesNotMatch(frame, /Waiting for approval/, phase);
      assert.match(frame, /WDJB-MJHT/, 'the code stays on screen');
    }
    unmount();
  });

  it('formats the countdown', () => {
    const table: [number, string][] = [
      [0, '0:00'],
      [-5_000, '0:00'],
      [999, '0:01'],
      [59_001, '1:00'],
      [600_000, '10:00'],
      [3_725_000, '1:02:05'],
    ];
    for (const [ms, text] of table) assert.equal(formatCountdown(ms), text, String(ms));
  });
});
