/** Creates the HTTP(S) server and binds it, turning bind failures into coded errors. */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AigovError } from '../core/errors.ts';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
}

export function createServer(tls: ListenOptions['tls']): Server {
  // The client timeouts proper (limits.client_*) are set by startGateway; Node checks them every
  // connectionsCheckingInterval, so a slow client is cut within a second of its deadline.
  const options = { keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 120_000, connectionsCheckingInterval: 1000 };
  if (!tls) return createHttpServer(options);
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new AigovError('AIGOV_E_CONFIG_NOT_FOUND', { file, reason: `cannot read the TLS ${what} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    }
  };
  return createHttpsServer({ ...options, cert: read(tls.cert, 'certificate'), key: read(tls.key, 'key') });
}

/** Binds and resolves with the base URL (http(s)://host:port). */
export function listen(server: Server, options: ListenOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const reason = error.code === 'EADDRINUSE' ? 'the address is already in use' : error.code === 'EACCES' ? 'permission denied' : (error.code ?? error.message);
      reject(new AigovError('AIGOV_E_LISTEN_FAILED', { address: `${options.host}:${options.port}`, reason }));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`${options.tls ? 'https' : 'http'}://${host}:${address.port}`);
    });
  });
}
