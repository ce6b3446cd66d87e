/**
 * The device-code prompt of `aigov login` on a terminal: the user code big and clear, the URL to
 * open (with the code filled in when the IdP offers one), a live countdown to the code's expiry,
 * a reminder to compare the code with the browser's, and a spinner while we wait. Loaded only
 * with `await import()` when stderr is a terminal; rendered on stderr.
 */
import { Box, Text, render } from 'ink';
import { useEffect, useState } from 'react';
import type { DevicePrompt } from '../auth/oidc-client.ts';
import type { DevicePromptView, LoginPhase } from '../auth/login-service.ts';
import { formatCountdown } from '../cli/terminal-text.ts';

export { formatCountdown } from '../cli/terminal-text.ts';

export interface LoginViewProps {
  readonly prompt: DevicePrompt;
  readonly gatewayUrl: string;
  readonly phase: LoginPhase;
  readonly browserOpened: boolean;
  /** Clock (tests). */
  readonly now?: () => number;
  /** Milliseconds between redraws of the spinner and countdown. */
  readonly tickMs?: number;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];


function Outcome({ phase }: { phase: Exclude<LoginPhase, 'waiting'> }) {
  switch (phase) {
    case 'approved':
      return <Text color="green">✔ Approved.</Text>;
    case 'denied':
      return <Text color="red">✘ The sign-in was denied.</Text>;
    case 'expired':
      return <Text color="red">✘ The code expired before it was approved.</Text>;
    case 'cancelled':
      return <Text color="yellow">Sign-in cancelled.</Text>;
    case 'failed':
      return <Text color="red">✘ The sign-in failed.</Text>;
  }
}

export function LoginView({ prompt, gatewayUrl, phase, browserOpened, now = Date.now, tickMs = 100 }: LoginViewProps) {
  const [time, setTime] = useState(now);
  useEffect(() => {
    if (phase !== 'waiting') return undefined;
    const timer = setInterval(() => setTime(now()), tickMs);
    return () => clearInterval(timer);
  }, [phase, now, tickMs]);

  const remaining = prompt.expiresAt - time;
  const url = prompt.verificationUriComplete ?? prompt.verificationUri;
  const frame = SPINNER[Math.floor(time / 80) % SPINNER.length] ?? SPINNER[0];
  return (
    <Box flexDirection="column" paddingY={1}>
      <Text>
        Sign in to <Text bold>{gatewayUrl}</Text>
      </Text>
      <Box marginTop={1} flexDirection="column">
        <Text>{browserOpened ? 'Opening this URL in your browser (open it yourself if nothing appears):' : 'Open this URL in a browser:'}</Text>
        <Text color="cyan" underline>
          {url}
        </Text>
        {prompt.verificationUriComplete ? <Text dimColor>If the page asks for a code, enter it at {prompt.verificationUri}</Text> : null}
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text>Your code:</Text>
        <Box borderStyle="round" borderColor="cyan" paddingX={2} alignSelf="flex-start">
          <Text bold>{prompt.userCode}</Text>
        </Box>
        <Text color="yellow">Check that your browser shows exactly this code before you approve.</Text>
      </Box>
      <Box marginTop={1}>
        {phase === 'waiting' ? (
          remaining > 0 ? (
            <Text>
              <Text color="cyan">{frame}</Text> Waiting for approval… the code expires in <Text bold>{formatCountdown(remaining)}</Text>
            </Text>
          ) : (
            <Text color="red">The code has expired.</Text>
          )
        ) : (
          <Outcome phase={phase} />
        )}
      </Box>
    </Box>
  );
}

/** Shows the view on `stream` (stderr) until close(); update() switches it to an outcome. */
export function renderLoginView(opts: {
  prompt: DevicePrompt;
  gatewayUrl: string;
  browserOpened: boolean;
  stream: NodeJS.WriteStream;
}): DevicePromptView {
  const element = (phase: LoginPhase) => (
    <LoginView prompt={opts.prompt} gatewayUrl={opts.gatewayUrl} browserOpened={opts.browserOpened} phase={phase} />
  );
  const instance = render(element('waiting'), { stdout: opts.stream, exitOnCtrlC: false, patchConsole: false });
  return {
    update(phase) {
      instance.rerender(element(phase));
    },
    async close() {
      instance.unmount();
      await instance.waitUntilExit().catch(() => undefined);
    },
  };
}
