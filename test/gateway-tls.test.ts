import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { buildGatewayConfig } from '../src/config/load.ts';
import { startGateway } from '../src/gateway/start-gateway.ts';
import { OPENAI_KEY, startHarness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const TLS_DIR = join(import.meta.dirname, 'fixtures', 'tls');

describe('TLS listener', () => {
  it('serves the governed API over HTTPS with the configured certificate', async () => {
    const h = await startHarness();
    const config = buildGatewayConfig(
      {
        listen: { host: '127.0.0.1', port: 0, tls: { cert: join(TLS_DIR, 'localhost.crt'), key: join(TLS_DIR, 'localhost.key') } },
        identity: { issuer: `${h.url}/oidc`, audience: h.url, cli_client_id: 'aigov-cli', required_scope: 'aigov' },
        providers: [{ name: 'openai', kind: 'openai', base_url: `${h.upstream.url}/v1`, api_key: '${K}' }],
        storage: { driver: 'sqlite', path: join(h.dir, 'tls.db') },
        logging: { level: 'silent' },
      },
      join(h.dir, 'tls-config'),
      { env: { K: OPENAI_KEY } },
    );
    const gateway = await startGateway(config, { version: 'test' });
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(TLS_DIR, 'localhost.crt')) } });
    try {
      assert.match(gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
      const client = new OpenAI({ baseURL: `${gateway.url}/openai/v1`, apiKey: h.token, maxRetries: 0, fetchOptions: { dispatcher } });
      const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'over tls' }] });
      assert.ok(completion.choices[0]?.message.content);
      const discovery = (await (await undiciFetch(`${gateway.url}/.well-known/aigov-configuration`, { dispatcher })).json()) as { providers: { base_url: string }[] };
      assert.match(discovery.providers[0]!.base_url, /^https:\/\//);
      // A client that does not trust the certificate is refused by TLS itself.
      await assert.rejects(fetch(`${gateway.url}/healthz`));
    } finally {
      await dispatcher.close();
      await gateway.close();
      await h.close();
    }
  });

  it('reports an unreadable certificate file clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigov-tls-'));
    const config = buildGatewayConfig(
      {
        listen: { host: '127.0.0.1', port: 0, tls: { cert: '/nonexistent/cert.pem', key: join(TLS_DIR, 'localhost.key') } },
        identity: { issuer: 'http://127.0.0.1:9/oidc', audience: 'x', cli_client_id: 'c' },
        providers: [{ name: 'openai', kind: 'openai', base_url: 'http://127.0.0.1:9/v1' }],
        storage: { driver: 'sqlite', path: join(dir, 'aigov.db') },
        logging: { level: 'silent' },
      },
      join(dir, 'config.yaml'),
    );
    await assert.rejects(startGateway(config, { version: 'test' }), /Cannot read the configuration file \/nonexistent\/cert\.pem: cannot read the TLS certificate \(ENOENT\)/);
    rmSync(dir, { recursive: true, force: true });
  });
});
