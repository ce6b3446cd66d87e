/**
 * A TCP proxy for tests that take connections away: what a load balancer does when the replica
 * behind it dies, or a network when it drops. Every accepted connection is piped to the current
 * target (a port on 127.0.0.1); the test can point new connections elsewhere, refuse them (each
 * closed at once, as by a balancer with nothing healthy behind it), and cut the open ones
 * abruptly (both sides reset, no orderly end).
 *
 * What clients send is kept per connection (the first 64 KiB), so a test can read the request
 * heads that went through, e.g. the `Last-Event-ID` of a resumed event stream.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

const KEPT_BYTES = 64 * 1024;

export interface TcpProxy {
  /** The port to connect to (127.0.0.1). */
  readonly port: number;
  /** Where new connections go; null: refused (closed as soon as accepted). Open ones stay. */
  setTarget(port: number | null): void;
  /** Resets every open connection, both sides; returns how many there were. */
  cut(): number;
  /** Open connections now. */
  readonly open: number;
  /** What clients sent, per connection accepted and forwarded (first 64 KiB each), oldest first. */
  readonly sent: readonly string[];
  close(): Promise<void>;
}

export async function startTcpProxy(target: number | null): Promise<TcpProxy> {
  let current = target;
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const sent: string[] = [];
  const server = createServer((client) => {
    if (current === null) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(current, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const index = sent.push('') - 1;
    client.on('data', (chunk: Buffer) => {
      if (sent[index]!.length < KEPT_BYTES) sent[index] += chunk.toString('latin1').slice(0, KEPT_BYTES - sent[index]!.length);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      pairs.delete(pair);
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cut = (): number => {
    const n = pairs.size;
    for (const { client, upstream } of pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
    return n;
  };
  return {
    port: (server.address() as AddressInfo).port,
    setTarget(port) {
      current = port;
    },
    cut,
    get open() {
      return pairs.size;
    },
    sent,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
