/**
 * The gateway's bounds, tested as an attacker (or a broken upstream) would push them: more calls
 * than the pool holds, an SSE line that never ends, floods of tiny events, answers that never
 * stop, a client that promises a body and sends ten bytes, a JSON bomb, compressed and
 * non-JSON answers. Each must end at once with a coded, provider-shaped error, and the gateway
 * must keep serving everyone else.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startHarness, type Harness } from './support/gateway-harness.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let upstream: Server;
let h: Harness;

const LIMITS = {
  upstream_max_connections: 2,
  max_event_bytes: 65_536,
  max_response_bytes: 1_048_576,
  max_stream_events: 100,
  max_stream_duration_ms: 1500,
  client_headers_timeout_ms: 1000,
  client_request_timeout_ms: 1000,
};

before(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const port = (upstream.address() as AddressInfo).port;
  h = await startHarness({ openaiBaseUrl: `http://127.0.0.1:${port}/v1`, limits: LIMITS });
});
after(async () => {
  await h.close();
  upstream.closeAllConnections();
  upstream.close();
});

function client(): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
}

function chunk(text: string): string {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
}
const DONE = 'data: [DONE]\n\n';
const BODY = JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }] });

/** POSTs a streamed chat request and returns the status and the whole SSE text the client got. */
async function streamRaw(): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${h.url}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.status, text: await res.text(), ms: performance.now() - t0 };
}

async function readyzMs(): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${h.url}/readyz`);
  assert.equal(res.status, 200);
  return performance.now() - t0;
}

describe('upstream slots', () => {
  it('a call past upstream_max_connections gets 503 AIGOV_E_UPSTREAM_BUSY at once, and the slots come back', async () => {
    const open: ServerResponse[] = [];
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('held'));
      open.push(res);
    };
    const first = [streamRaw(), streamRaw()];
    while (open.length < 2) await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    const third = await fetch(`${h.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const waited = performance.now() - t0;
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '1');
    const body = (await third.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'AIGOV_E_UPSTREAM_BUSY');
    assert.equal(body.error.type, 'overloaded_error');
    assert.ok(waited < 1000, `answered in ${waited} ms`);
    assert.equal(open.length, 2, 'the refused call never reached the upstream');
    for (const res of open) res.end(DONE);
    for (const r of await Promise.all(first)) assert.equal(r.status, 200);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(BODY);
    };
    const again = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(again.choices[0]?.message.content, 'fine');
  });
});

describe('streamed answers are bounded', () => {
  it('an SSE line that never ends is cut at max_event_bytes, never buffered whole', async () => {
    let sent = 0;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('start'));
      res.write('data: ');
      const piece = 'x'.repeat(64 * 1024);
      const pump = (): void => {
        // 50 MB without a newline, as fast as the gateway reads it.
        while (sent < 50 * 1024 * 1024) {
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (sent = Infinity));
      pump();
    };
    const r = await streamRaw();
    assert.equal(r.status, 200);
    assert.ok(r.text.startsWith(chunk('start')), 'what came before the huge line was passed on');
    assert.match(r.text, /AIGOV_E_UPSTREAM_LIMIT/);
    assert.match(r.text, /limits\.max_event_bytes/);
    assert.ok(!r.text.includes('xxxx'), 'no piece of the unfinished event reaches the client');
    assert.ok(sent < 10 * 1024 * 1024 || sent === Infinity, `the upstream was cut early (sent ${sent})`);
    await readyzMs();
  });

  it('the official SDK raises the cut as an API error', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(chunk('a') + 'data: ' + 'y'.repeat(200_000));
    };
    const stream = await client().chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(async () => {
      for await (const _ of stream) void _;
    }, /went past the gateway's limit on 65536 bytes per event/);
  });

  it('a flood of tiny events is cut at max_stream_events', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(': keep-alive\n\n'.repeat(5000) + DONE);
    };
    const r = await streamRaw();
    assert.match(r.text, /AIGOV_E_UPSTREAM_LIMIT/);
    assert.match(r.text, /100 events per answer/);
    assert.ok(!r.text.includes('[DONE]'));
    const calls = await h.gateway.store.listSessions({ limit: 1 });
    const last = (await h.gateway.store.listCalls(calls[0]!.sessionId)).at(-1)!;
    assert.equal(last.status, 'failed');
    assert.ok((await h.gateway.store.getStreamEvents(last.callId)).length <= 102, 'the recording is bounded too');
  });

  it('more than max_response_bytes in small events is cut', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(chunk('z'.repeat(30_000)).repeat(40) + DONE);
    };
    const r = await streamRaw();
    assert.match(r.text, /1048576 bytes per answer/);
  });

  it('an answer that never ends is cut at max_stream_duration_ms while others are served', async () => {
    let timer: NodeJS.Timeout | undefined;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      timer = setInterval(() => res.write(chunk('.')), 50);
      res.on('close', () => clearInterval(timer));
    };
    const pending = streamRaw();
    assert.ok((await readyzMs()) < 500);
    const r = await pending;
    clearInterval(timer);
    assert.match(r.text, /1500 ms per streamed answer/);
    assert.ok(r.ms >= 1400 && r.ms < 5000, `cut after ${r.ms} ms`);
  });
});

describe('non-streamed answers', () => {
  it('a body over max_response_bytes is AIGOV_E_UPSTREAM_LIMIT, not "unreachable"', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pad: 'p'.repeat(2 * 1024 * 1024) }));
    };
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), (error: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(error.status, 502);
      assert.equal(error.code, 'AIGOV_E_UPSTREAM_LIMIT');
      return true;
    });
  });

  for (const [coding, encode] of [
    ['gzip', (b: string) => gzipSync(b)],
    ['gzip, identity', (b: string) => gzipSync(b)],
  ] as const) {
    it(`an answer compressed despite accept-encoding: identity (${coding}) is decoded`, async () => {
      let asked = '';
      handler = (req, res) => {
        asked = String(req.headers['accept-encoding']);
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding });
        res.end(encode(BODY));
      };
      const answer = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(asked, 'identity');
      assert.equal(answer.choices[0]?.message.content, 'fine');
    });
  }

  it('a gzip bomb stops at max_response_bytes of decoded text', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(`{"pad":"${' '.repeat(64 * 1024 * 1024)}"}`));
    };
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), (error: InstanceType<typeof OpenAI.APIError>) => error.code === 'AIGOV_E_UPSTREAM_LIMIT');
  });

  it('a compressed stream is decoded too', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      res.end(gzipSync(chunk('squeezed') + DONE));
    };
    const r = await streamRaw();
    assert.equal(r.text, chunk('squeezed') + DONE);
  });

  it('an unknown content-encoding, an HTML page or a JSON bomb from the upstream is refused, never relayed unread', async () => {
    const cases: [Handler, RegExp][] = [
      [(_req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'compress' }); res.end('??'); }, /content-encoding "compress"/],
      [(_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>proxy says hi, jane@example.com</html>'); }, /not JSON \(content-type "text\/html"\)/],
      [(_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('['.repeat(100_000) + ']'.repeat(100_000)); }, /nested deeper than 512/],
    ];
    for (const [answer, reason] of cases) {
      handler = answer;
      await assert.rejects(client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), (error: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(error.status, 502);
        assert.equal(error.code, 'AIGOV_E_UPSTREAM_BAD_RESPONSE');
        assert.match(error.message, reason);
        assert.ok(!error.message.includes('jane@'));
        return true;
      });
    }
  });
});

describe('requests', () => {
  it('a 100k-deep tool_use.input is a 400 naming the limit, not a 500', async () => {
    handler = (_req, res) => res.end(BODY);
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    const body = `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"x","input":${deep}}]}]}`;
    const res = await fetch(`${h.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'x-api-key': h.token, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: { type: string; message: string } }).error;
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /deeper than 512 levels/);
    await readyzMs();
  });

  it('a client that promises 1,000 bytes and sends 10 is cut at client_request_timeout_ms', async () => {
    const url = new URL(h.url);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, 'connect');
    const t0 = performance.now();
    socket.write(`POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${h.token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":`);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    await once(socket, 'close');
    const ms = performance.now() - t0;
    assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`);
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  it('a client that never finishes its headers is cut at client_headers_timeout_ms', async () => {
    const url = new URL(h.url);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, 'connect');
    const t0 = performance.now();
    socket.write('GET /readyz HTTP/1.1\r\nhost: x\r\n');
    socket.resume();
    await once(socket, 'close');
    const ms = performance.now() - t0;
    assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`);
  });
});
