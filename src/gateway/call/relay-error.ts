/** Stage 6, an upstream error: relayed in the provider's shape, its message scrubbed of the gateway's secrets. */
import { scrubSecrets } from '../../core/scrub-secrets.ts';
import { pickResponseHeaders, type ProviderError } from '../../providers/codec.ts';
import type { CallState } from './call-state.ts';
import { readLimited, type UpstreamAnswer } from './upstream-answer.ts';

const MAX_ERROR_BODY = 1024 * 1024;

export async function relayUpstreamError(call: CallState, upstream: UpstreamAnswer): Promise<void> {
  const { adapter, provider } = call.target;
  const text = await readLimited(upstream.body, MAX_ERROR_BODY);
  const status = upstream.statusCode;
  const parsed = text === null ? null : adapter.parseErrorBody(status, text);
  const secrets = [provider.apiKey ?? '', ...Object.values(provider.headers)];
  // This provider's credentials and key shapes, then every provider's keys (call.deps.secrets).
  const scrub = (text: string): string => call.deps.secrets.whole(scrubSecrets(text, secrets));
  let error: ProviderError;
  if (parsed && status !== 401 && status !== 403) {
    error = { ...parsed, type: scrub(parsed.type), code: parsed.code === null ? null : scrub(parsed.code), message: scrub(parsed.message) };
  } else if (status === 401 || status === 403) {
    // The upstream refused the gateway's provider credential: not the user's fault, and its
    // message may echo a piece of the key. Keep the status, replace the words.
    error = { status, type: parsed?.type ?? (status === 401 ? 'authentication_error' : 'permission_error'), code: parsed?.code ?? null, message: `The upstream provider \`${provider.name}\` refused the gateway's credentials (HTTP ${status}). This is a gateway configuration problem; tell the aigov operators.` };
  } else {
    error = { status, type: status >= 500 ? 'api_error' : 'invalid_request_error', code: null, message: `The upstream provider \`${provider.name}\` answered HTTP ${status} without a readable error.` };
  }
  if (call.res.headersSent) {
    // A held stream already answered 200: the upstream's error goes in-stream.
    await call.endStreamWith(adapter.renderStreamError(call.target.route.endpoint, error));
    call.finish('failed', status, { code: String(error.type), message: error.message });
    return;
  }
  const body = adapter.renderError(error);
  call.writeHead(status, { ...pickResponseHeaders(upstream.headers), 'content-type': 'application/json' });
  call.endWith(body);
  call.finish('failed', status, { code: String(error.type), message: error.message }, body);
}
