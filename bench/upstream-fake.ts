/**
 * A minimal OpenAI-compatible upstream for benchmarks: node:http, no framework, no delays.
 *
 *   node bench/upstream-fake.ts        → prints `{"url":"http://127.0.0.1:P"}` on stdout
 *
 * POST /v1/chat/completions answers a fixed ~2 KB `chat.completion` JSON, or, when the request
 * body says `"stream": true`, an SSE stream of 40 `chat.completion.chunk` events (~2 KB of
 * content in all), a usage chunk and `data: [DONE]`, written back to back. Exits when stdin
 * closes (the parent went away) or on SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const MODEL = 'gpt-4o-mini-2024-07-18';
const CREATED = 1_750_000_000;
const STREAM_EVENTS = 40;

/** ~2 KB of plain answer text, as a model would write it. */
function answerText(): string {
  const sentence =
    'The gateway verifies the caller, evaluates the policy on the parsed request, records it durably and only then forwards it upstream. ';
  let text = '';
  while (text.length < 2048) text += sentence;
  return text.slice(0, 2048);
}

const ANSWER = answerText();
const USAGE = { prompt_tokens: 512, completion_tokens: 480, total_tokens: 992 };

const COMPLETION_BODY = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000001',
    object: 'chat.completion',
    created: CREATED,
    model: MODEL,
    choices: [{ index: 0, message: { role: 'assistant', content: ANSWER, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: USAGE,
    service_tier: 'default',
    system_fingerprint: 'fp_bench00001',
  }),
);

function chunk(delta: Record<string, unknown>, finishReason: string | null, usage: unknown = null): string {
  const choices = finishReason === 'usage' ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }];
  return `data: ${JSON.stringify({ id: 'chatcmpl-bench0000000000000000000002', object: 'chat.completion.chunk', created: CREATED, model: MODEL, service_tier: 'default', system_fingerprint: 'fp_bench00001', choices, usage })}\n\n`;
}

/** The SSE events of the streamed answer: role, 40 content pieces, finish, usage, [DONE]. */
const STREAM_PARTS: readonly string[] = (() => {
  const parts = [chunk({ role: 'assistant', content: '', refusal: null }, null)];
  const size = Math.ceil(ANSWER.length / STREAM_EVENTS);
  for (let i = 0; i < STREAM_EVENTS; i++) parts.push(chunk({ content: ANSWER.slice(i * size, (i + 1) * size) }, null));
  parts.push(chunk({}, 'stop'));
  parts.push(chunk({}, 'usage', USAGE));
  parts.push('data: [DONE]\n\n');
  return parts;
})();

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    let stream: boolean;
    try {
      stream = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: unknown }).stream === true;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(COMPLETION_BODY.length), 'x-request-id': 'req_bench' });
      res.end(COMPLETION_BODY);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': 'req_bench' });
    for (const part of STREAM_PARTS) res.write(part);
    res.end();
  });
}

const server = createServer({ keepAliveTimeout: 60_000 }, handle);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid })}\n`);
});

const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
