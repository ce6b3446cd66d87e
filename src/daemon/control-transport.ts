/**
 * Newline-delimited JSON over a unix socket, one request and one response per connection: the
 * server side (the daemon) and the client side (the CLI).
 */
import net from 'node:net';
import { MAX_CONTROL_MESSAGE_BYTES } from './control-protocol.ts';

/** Why a control request got no answer: nobody listening, it timed out, or the answer was garbage. */
export class ControlTransportError extends Error {
  readonly reason: 'absent' | 'timeout' | 'broken';
  constructor(reason: 'absent' | 'timeout' | 'broken', message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ControlTransportError';
    this.reason = reason;
  }
}

/** Sends one request and resolves with the parsed JSON answer. */
export function sendControlRequest(socketPath: string, request: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    let buffered = '';
    let settled = false;
    const finish = (error: Error | null, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new ControlTransportError('timeout', `no answer on ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_CONTROL_MESSAGE_BYTES) {
        finish(new ControlTransportError('broken', 'the control answer is too long'));
        return;
      }
      const newline = buffered.indexOf('\n');
      if (newline >= 0) {
        try {
          finish(null, JSON.parse(buffered.slice(0, newline)));
        } catch (error) {
          finish(new ControlTransportError('broken', 'the control answer is not JSON', { cause: error }));
        }
      }
    });
    socket.on('end', () => finish(new ControlTransportError('broken', 'the daemon closed the control connection without answering')));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const absent = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK';
      finish(new ControlTransportError(absent ? 'absent' : 'broken', `cannot talk to ${socketPath}: ${error.code ?? error.message}`, { cause: error }));
    });
  });
}

/**
 * A control server: each connection sends one JSON line; `handle` answers it (or throws, which
 * becomes a failure answer), then the connection ends. `afterReply` runs once the answer is sent.
 */
export function createControlServer(
  handle: (request: unknown) => Promise<{ reply: unknown; afterReply?: () => void }>,
  onError: (error: unknown) => void,
): net.Server {
  return net.createServer((socket) => {
    let buffered = '';
    let answered = false;
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_CONTROL_MESSAGE_BYTES) socket.destroy();
        return;
      }
      answered = true;
      let request: unknown;
      try {
        request = JSON.parse(buffered.slice(0, newline));
      } catch {
        socket.end(`${JSON.stringify({ ok: false, error: { code: 'AIGOV_E_BAD_REQUEST', message: 'The control request is not JSON.', hint: 'Send one JSON object per line.' } })}\n`);
        return;
      }
      handle(request).then(
        ({ reply, afterReply }) => {
          socket.end(`${JSON.stringify(reply)}\n`, () => afterReply?.());
        },
        (error: unknown) => {
          onError(error);
          socket.destroy();
        },
      );
    });
  });
}
