import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { SseParser } from '../src/core/sse.ts';
import { chunkSizes, listTranscripts, loadTranscript, startReplayUpstream, withKeepAliveComments } from './support/replay-upstream.ts';
import type { ReplayOptions, ReplayUpstream, Transcript } from './support/replay-upstream.ts';

interface Clients {
  openai: OpenAI;
  anthropic: Anthropic;
}

/** What each transcript must look like through the official SDK. */
const CASES: Record<string, (c: Clients) => Promise<void>> = {
  'openai-chat': async ({ openai }) => {
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'who owns it?' }] });
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(
      completion.choices[0]?.message.content,
      'Sure. The account owner is Jane Doe; you can reach her at jane.doe@example.com or by phone at +1 415-555-0132. Her billing address is on file.',
    );
    assert.equal(completion.usage?.total_tokens, 69);
  },
  'openai-chat-stream': async ({ openai }) => {
    const expected = 'Café ☕ contact: jane.doe@example.com, phone +1 415-555-0132. See you there 🎉';
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, expected);
    assert.equal(usage?.total_tokens, 49);
    const final = await openai.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, expected);
    assert.equal(final.choices[0]?.finish_reason, 'stop');
  },
  'openai-chat-stream-tools': async ({ openai }) => {
    const final = await openai.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'weather + mail' }] }).finalChatCompletion();
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    const calls = final.choices[0]?.message.tool_calls ?? [];
    assert.equal(calls.length, 2);
    const [first, second] = calls;
    assert.ok(first?.type === 'function' && second?.type === 'function');
    assert.equal(first.id, 'call_Yx8QmZ3pLk2Wn7Rv1Tc4Hs9D');
    assert.equal(first.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(first.function.arguments), { location: 'Paris, France', unit: 'celsius' });
    assert.equal(second.function.name, 'send_email');
    assert.deepEqual(JSON.parse(second.function.arguments), { to: 'jane.doe@example.com', subject: 'Météo' });
    assert.equal(final.usage?.total_tokens, 159);
  },
  'openai-chat-stream-multichoice': async ({ openai }) => {
    const final = await openai.chat.completions.stream({ model: 'gpt-4o-mini', n: 2, messages: [{ role: 'user', content: 'colors' }] }).finalChatCompletion();
    assert.deepEqual(final.choices.map((c) => [c.index, c.message.content, c.finish_reason]), [
      [0, 'Red is warm.', 'stop'],
      [1, 'Blue is calm.', 'stop'],
    ]);
  },
  'openai-responses': async ({ openai }) => {
    const response = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'status?' });
    assert.equal(response.output_text, 'Your order #48213 ships tomorrow. Questions? Write to support@example.com.');
    assert.equal(response.usage?.total_tokens, 36);
  },
  'openai-responses-stream': async ({ openai }) => {
    const expected = 'Bonjour! Élodie can be reached at elodie.martin@example.org — merci.';
    const stream = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'hi', stream: true });
    const seq: number[] = [];
    let text = '';
    for await (const event of stream) {
      seq.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(text, expected);
    assert.deepEqual(seq, seq.map((_s, i) => i));
    const final = await openai.responses.stream({ model: 'gpt-4.1-mini', input: 'hi' }).finalResponse();
    assert.equal(final.output_text, expected);
    assert.equal(final.status, 'completed');
  },
  'openai-embeddings': async ({ openai }) => {
    const result = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'], dimensions: 8, encoding_format: 'float' });
    assert.equal(result.data.length, 2);
    assert.equal(result.data[0]?.embedding.length, 8);
    assert.equal(result.data[0]?.embedding[0], -0.36117145);
    assert.equal(result.usage.total_tokens, 9);
  },
  'openai-embeddings-base64': async ({ openai }) => {
    // The SDK asks for base64 by default and decodes it.
    const result = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x', dimensions: 4 });
    assert.deepEqual(Array.from(result.data[0]?.embedding ?? []), [0.25, -0.5, 0.125, 0.0625]);
  },
  'openai-models': async ({ openai }) => {
    const page = await openai.models.list();
    assert.deepEqual(page.data.map((m) => m.id), ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'gpt-4.1-mini']);
  },
  'openai-error-429': async ({ openai }) => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.status === 429 && e.code === 'rate_limit_exceeded' && e.headers.get('retry-after-ms') === '340',
    );
  },
  'openai-error-401': async ({ openai }) => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key' && /Incorrect API key provided: sk-proj-\*+abcd\./.test(e.message),
    );
  },
  'anthropic-messages': async ({ anthropic }) => {
    const message = await anthropic.messages.create({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'find Jane' }] });
    const block = message.content[0];
    assert.ok(block?.type === 'text');
    assert.equal(block.text, 'I found the customer record: Jane Doe, jane.doe@example.com, phone (415) 555-0132. Shall I update the address?');
    assert.equal(message.stop_reason, 'end_turn');
  },
  'anthropic-messages-stream': async ({ anthropic }) => {
    const final = await anthropic.messages.stream({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'invoice' }] }).finalMessage();
    const block = final.content[0];
    assert.ok(block?.type === 'text');
    assert.equal(block.text, 'Voilà — the invoice for Zoë is ready. I emailed it to zoe.k@example.com and texted +44 20 7946 0958. 🚀');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 36);
  },
  'anthropic-messages-stream-tools': async ({ anthropic }) => {
    const final = await anthropic.messages.stream({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'weather' }] }).finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const [text, use] = final.content;
    assert.ok(text?.type === 'text' && use?.type === 'tool_use');
    assert.equal(text.text, "I'll look up the weather in Paris for you.");
    assert.equal(use.id, 'toolu_01T1x1fJ34qAmk2tNTrN7Up6');
    assert.deepEqual(use.input, { location: 'Paris, France', unit: 'celsius' });
  },
  'anthropic-error-529': async ({ anthropic }) => {
    await assert.rejects(
      anthropic.messages.create({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof Anthropic.InternalServerError && e.status === 529 && e.type === 'overloaded_error',
    );
  },
  'anthropic-stream-error': async ({ anthropic }) => {
    const stream = anthropic.messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    await assert.rejects(stream.finalMessage(), (e: unknown) => e instanceof Anthropic.APIError && e.type === 'overloaded_error');
    assert.equal(text, 'Here is the first part of the answer');
  },
};

function clientsFor(upstream: ReplayUpstream): Clients {
  return {
    openai: new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: 'sk-test-replay', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: upstream.url, apiKey: 'sk-ant-test-replay', maxRetries: 0 }),
  };
}

/** Raw GET against the replay: status, headers, and each body chunk as it arrived. */
function rawGet(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; chunks: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('replay upstream', () => {
  let upstream: ReplayUpstream;
  let clients: Clients;

  before(async () => {
    upstream = await startReplayUpstream();
    clients = clientsFor(upstream);
  });
  after(async () => {
    await upstream.close();
  });
  beforeEach(() => upstream.reset());

  it('has an SDK check for every transcript, and every transcript is well formed', () => {
    assert.deepEqual(listTranscripts(), Object.keys(CASES).sort());
    for (const name of listTranscripts()) {
      const t = loadTranscript(name);
      assert.ok(t.description.length > 10, name);
      assert.match(t.request.path, /^\/v1\//, name);
      for (const header of Object.keys(t.headers)) assert.equal(header, header.toLowerCase(), `${name}: ${header}`);
      if (t.headers['content-type']?.startsWith('text/event-stream')) {
        assert.equal(t.headers['content-type'], 'text/event-stream; charset=utf-8', name);
        assert.ok(t.body.endsWith('\n\n'), `${name} ends with a blank line`);
        const events = new SseParser().push(t.body);
        assert.ok(events.length > 3, name);
        for (const e of events) if (e.data !== '[DONE]') JSON.parse(e.data ?? 'null');
      } else {
        JSON.parse(t.body);
      }
    }
  });

  const chunkings: { label: string; options: ReplayOptions }[] = [
    { label: 'whole', options: { chunking: 'whole' } },
    { label: '1-byte', options: { chunking: 'bytes' } },
    { label: 'random', options: { chunking: { random: 42 } } },
  ];
  for (const { label, options } of chunkings) {
    describe(`official SDKs parse every transcript, ${label} chunking`, () => {
      for (const name of Object.keys(CASES)) {
        it(name, async () => {
          const transcript = loadTranscript(name);
          upstream.route(transcript.request.method, transcript.request.path, transcript, options);
          await CASES[name]!(clients);
          assert.ok(upstream.received.length >= 1);
          assert.ok(upstream.received.every((r) => r.path === transcript.request.path));
        });
      }
    });
  }

  describe('keep-alive comments between events do not break the SDKs', () => {
    for (const name of ['openai-chat-stream', 'openai-chat-stream-tools', 'openai-responses-stream', 'anthropic-messages-stream', 'anthropic-messages-stream-tools']) {
      it(name, async () => {
        const transcript = loadTranscript(name);
        upstream.route(transcript.request.method, transcript.request.path, transcript, { keepAliveComments: true, chunking: { random: 7 } });
        await CASES[name]!(clients);
      });
    }

    it('really inserts the comments on the wire', async () => {
      const transcript = loadTranscript('anthropic-messages-stream');
      upstream.route('GET', '/raw', transcript, { keepAliveComments: true });
      const res = await rawGet(`${upstream.url}/raw`);
      const body = Buffer.concat(res.chunks).toString('utf8');
      const events = new SseParser().push(body);
      const original = new SseParser().push(transcript.body);
      assert.equal(events.filter((e) => e.comment).length, original.length - 1);
      assert.deepEqual(events.filter((e) => !e.comment).map((e) => e.raw), original.map((e) => e.raw));
      assert.equal(withKeepAliveComments('data: a\n\ndata: b\n\n'), 'data: a\n\n: keep-alive\n\ndata: b\n\n');
    });
  });

  describe('dieAfterBytes', () => {
    it('makes the OpenAI SDK stream throw', async () => {
      const transcript = loadTranscript('openai-chat-stream');
      upstream.route('POST', '/v1/chat/completions', transcript, { dieAfterBytes: 700, chunking: { size: 100 } });
      const stream = await clients.openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true });
      let chunks = 0;
      await assert.rejects(async () => {
        for await (const _chunk of stream) chunks++;
      });
      assert.ok(chunks >= 1, 'some chunks arrived before the cut');
      await assert.rejects(clients.openai.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion());
    });

    it('makes the Anthropic SDK stream throw', async () => {
      const transcript = loadTranscript('anthropic-messages-stream');
      upstream.route('POST', '/v1/messages', transcript, { dieAfterBytes: 1200 });
      let text = '';
      const stream = clients.anthropic.messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
      stream.on('text', (d) => (text += d));
      await assert.rejects(stream.finalMessage());
      assert.ok(text.length > 0 && text.length < 'Voilà — the invoice for Zoë is ready.'.length + 40);
    });

    it('cuts a JSON body too', async () => {
      const transcript = loadTranscript('openai-chat');
      upstream.route('POST', '/v1/chat/completions', transcript, { dieAfterBytes: 50 });
      await assert.rejects(clients.openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }));
    });
  });

  describe('wire behaviour', () => {
    const utf8: Transcript = {
      description: 'two multi-byte characters',
      request: { method: 'GET', path: '/utf8' },
      status: 200,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: 'é🎉',
    };

    it('1-byte chunks with a delay reach the client separately, splitting UTF-8 characters', async () => {
      upstream.route('GET', '/utf8', utf8, { chunking: 'bytes', chunkDelayMs: 15 });
      const res = await rawGet(`${upstream.url}/utf8`);
      assert.deepEqual(res.chunks.map((c) => c.length), [1, 1, 1, 1, 1, 1]);
      assert.equal(Buffer.concat(res.chunks).toString('utf8'), 'é🎉');
      assert.equal(res.headers['content-length'], '6');
    });

    it('fixed-size chunks keep the body byte for byte; SSE goes out chunked with the transcript headers', async () => {
      const transcript = loadTranscript('openai-chat-stream');
      upstream.route('GET', '/sized', transcript, { chunking: { size: 97 }, chunkDelayMs: 2 });
      const res = await rawGet(`${upstream.url}/sized`);
      const expected = Buffer.from(transcript.body, 'utf8');
      assert.ok(res.chunks.length > 5);
      assert.ok(Buffer.concat(res.chunks).equals(expected));
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      assert.equal(res.headers['x-request-id'], transcript.headers['x-request-id']);
    });

    it('chunk sizes cover the body exactly', () => {
      assert.deepEqual(chunkSizes(10, 'whole'), [10]);
      assert.deepEqual(chunkSizes(5, { size: 2 }), [2, 2, 1]);
      assert.equal(chunkSizes(7, 'bytes').length, 7);
      const random = chunkSizes(5000, { random: 3 });
      assert.equal(random.reduce((a, b) => a + b, 0), 5000);
      assert.deepEqual(random, chunkSizes(5000, { random: 3 }), 'seeded: reproducible');
      assert.notDeepEqual(random, chunkSizes(5000, { random: 4 }));
      assert.ok(new Set(random).size > 5, 'sizes vary');
    });

    it('a large body to a slow reader arrives intact (backpressure)', async () => {
      const big: Transcript = { ...utf8, body: 'ü'.repeat(3 * 1024 * 1024) + 'end' };
      upstream.route('GET', '/big', big, { chunking: { size: 64 * 1024 } });
      const received = await new Promise<Buffer>((resolve, reject) => {
        const req = request(`${upstream.url}/big`, (res) => {
          const parts: Buffer[] = [];
          res.pause();
          setTimeout(() => {
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve(Buffer.concat(parts)));
            res.resume();
          }, 200);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(received.length, Buffer.byteLength(big.body));
      assert.ok(received.equals(Buffer.from(big.body, 'utf8')));
    });

    it('headersDelayMs delays the status line', async () => {
      upstream.route('GET', '/late', utf8, { headersDelayMs: 120 });
      const started = Date.now();
      const res = await rawGet(`${upstream.url}/late`);
      assert.equal(res.status, 200);
      assert.ok(Date.now() - started >= 110);
    });
  });

  describe('routing and recording', () => {
    it('records requests, answers unrouted ones with an OpenAI-shaped 404', async () => {
      await assert.rejects(
        clients.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
        (e: unknown) => e instanceof OpenAI.NotFoundError && (e.error as { type?: string }).type === 'invalid_request_error',
      );
      assert.equal(upstream.received.length, 1);
      const [req] = upstream.received;
      assert.equal(req?.method, 'POST');
      assert.equal(req?.path, '/v1/chat/completions');
      assert.equal(req?.headers.authorization, 'Bearer sk-test-replay');
      assert.deepEqual(JSON.parse(req?.body ?? ''), { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
    });

    it('matches prefixes ending in *, prefers exact routes, passes the request to transcript functions', async () => {
      const a = loadTranscript('openai-models');
      const b = loadTranscript('anthropic-messages');
      upstream.route('GET', '/v1/*', a);
      upstream.route('get', '/v1/exact', b);
      upstream.route('POST', '/v1/dyn', (req) => ({ ...a, body: JSON.stringify({ echo: JSON.parse(req.body) as unknown }) }));
      assert.equal((await rawGet(`${upstream.url}/v1/anything?x=1`)).status, 200);
      const exact = await rawGet(`${upstream.url}/v1/exact`);
      assert.equal(JSON.parse(Buffer.concat(exact.chunks).toString('utf8')).id, 'msg_01XFDUDYJgAACzvnptvVoYEL');
      const res = await fetch(`${upstream.url}/v1/dyn`, { method: 'POST', body: '{"n":1}' });
      assert.deepEqual(await res.json(), { echo: { n: 1 } });
      assert.equal(upstream.received[0]?.path, '/v1/anything?x=1');
      assert.equal((await rawGet(`${upstream.url}/v2/other`)).status, 404);
      upstream.reset();
      assert.equal(upstream.received.length, 0);
      assert.equal((await rawGet(`${upstream.url}/v1/exact`)).status, 404);
    });
  });
});
