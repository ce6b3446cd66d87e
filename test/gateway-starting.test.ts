/**
 * The gateway binds before it builds (store, IdP, policy). A connection that arrives in between
 * is answered at once — 503 "starting" with Retry-After — and never left hanging; once the
 * gateway is up, the same server answers for real.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGatewayConfig } from '../src/config/load.ts';
import { bindServer, startGateway } from '../src/gateway/start-gateway.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** One raw HTTP/1.1 exchange: the head and body the server sent, or 'no answer' after `ms`. */
function rawRequest(url: string, request: string, ms: number): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text || 'no answer');
    }, ms);
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.write(request);
  });
}

describe('requests while the gateway is starting', () => {
  test('between bind and build: every path gets 503 at once with Retry-After; afterwards the real handler answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigov-starting-'));
    dirs.push(dir);
    const bound = await bindServer({ listen: { host: '127.0.0.1', port: 0 } });
    try {
      // The gateway is bound but nothing is built yet: what a client sees during a slow start.
      for (const path of ['/readyz', '/healthz']) {
        const res = await fetch(`${bound.url}${path}`, { signal: AbortSignal.timeout(2000) });
        assert.equal(res.status, 503, path);
        assert.equal(res.headers.get('retry-after'), '1');
        assert.deepEqual(await res.json(), { status: 'starting' });
      }
      const res = await fetch(`${bound.url}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer not-looked-at' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] }),
        signal: AbortSignal.timeout(2000),
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      const body = (await res.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(body.error.code, 'AIGOV_E_STARTING');
      assert.match(body.error.message, /starting/);
      // curl's view: a raw request on a fresh connection is answered and the connection closed.
      const raw = await rawRequest(bound.url, 'GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n', 2000);
      assert.match(raw, /^HTTP\/1\.1 503 /);
      assert.match(raw, /\r\nretry-after: 1\r\n/i);
      assert.match(raw, /\{"status":"starting"\}$/);

      // Now the gateway is built on the same socket: the real handler answers, the "starting" one is gone.
      const config = buildGatewayConfig(
        {
          listen: { host: '127.0.0.1', port: Number(new URL(bound.url).port) },
          identity: { issuer: `${bound.url}/oidc`, audience: bound.url, cli_client_id: 'aigov-cli', required_scope: 'aigov' },
          providers: [{ name: 'openai', kind: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-test' }],
          storage: { driver: 'sqlite', path: join(dir, 'aigov.db') },
          logging: { level: 'silent' },
        },
        join(dir, 'gateway.yaml'),
      );
      const gateway = await startGateway(config, { version: 'test' }, bound);
      try {
        const ready = await fetch(`${bound.url}/readyz`, { signal: AbortSignal.timeout(2000) });
        assert.equal(ready.status, 200);
        assert.equal(((await ready.json()) as { status: string }).status, 'ready');
        assert.equal(bound.server.listenerCount('request'), 1, 'only the gateway handler is left');
      } finally {
        await gateway.close();
      }
    } finally {
      bound.server.close();
    }
  });

  const bin = join(import.meta.dirname, '..', 'bin', 'run.js');
  const built = existsSync(join(import.meta.dirname, '..', 'dist', 'commands', 'server.js'));

  test('`aigov server --dev`: connections from the moment the port opens are all answered, none hangs', { skip: built ? false : 'run `npm run build` first' }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'aigov-starting-dev-'));
    dirs.push(stateDir);
    // A free port, then the server started on it while this test is already knocking.
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [bin, 'server', '--dev', '--port', String(port), '--state-dir', stateDir, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const answers: string[] = [];
      const deadline = Date.now() + 60_000;
      // Knock until the gateway says ready; every connection that gets in must be answered within 2 s.
      for (;;) {
        assert.ok(Date.now() < deadline, `never ready: ${stderr}`);
        assert.equal(child.exitCode, null, `the server exited: ${stderr}`);
        let raw: string;
        try {
          raw = await rawRequest(url, 'GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 2000);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 2)); // not listening yet
          continue;
        }
        assert.notEqual(raw, 'no answer', 'a connection accepted during startup was never answered');
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1];
        answers.push(status ?? raw);
        if (status === '200') break;
        assert.equal(status, '503', raw);
        assert.match(raw, /"status":"starting"/);
      }
      assert.equal(answers.at(-1), '200');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
