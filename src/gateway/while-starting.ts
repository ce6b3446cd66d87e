/**
 * The gateway binds its port first (so its URL is known: the dev IdP's issuer is built from
 * it), then opens the store, the identity provider and the policy. A connection accepted in
 * between used to wait forever (node:http emitted 'request' with no listener). Until the real
 * handler is installed, every request is answered at once: 503 with `Retry-After: 1`; `/readyz`
 * and `/healthz` say `{"status":"starting"}`, everything else is AIGOV_E_STARTING in OpenAI's
 * error shape (the provider shape most clients read; SDKs retry a 503 on their own).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AigovError } from '../core/errors.ts';
import { toProviderError } from '../providers/codec.ts';
import { openaiCodec } from '../providers/openai.ts';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

const STARTING_LISTENERS = new WeakMap<Server, RequestListener>();

function answerStarting(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const body = path === '/readyz' || path === '/healthz' ? JSON.stringify({ status: 'starting' }) : openaiCodec.renderError(toProviderError(new AigovError('AIGOV_E_STARTING')));
  res.writeHead(503, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'retry-after': '1',
    'cache-control': 'no-store',
    // The request body (if any) is not read: close rather than drain it on a kept-alive connection.
    connection: 'close',
  });
  res.end(body);
}

/** Answers every request on `server` with 503 "starting" until {@link installRequestHandler}. */
export function answerWhileStarting(server: Server): void {
  if (STARTING_LISTENERS.has(server)) return;
  STARTING_LISTENERS.set(server, answerStarting);
  server.on('request', answerStarting);
}

/** Replaces the "starting" answer with the gateway's handler (in one step: no request sees neither). */
export function installRequestHandler(server: Server, handle: RequestListener): void {
  const starting = STARTING_LISTENERS.get(server);
  if (starting) {
    server.off('request', starting);
    STARTING_LISTENERS.delete(server);
  }
  server.on('request', handle);
}
