/**
 * Attacker's view of the gateway's routing: no spelling of a path can make the gateway send its
 * provider key to an upstream path other than the endpoints it governs. The upstream here echoes
 * every request's path and headers (as a hostile or misconfigured upstream route could), so a
 * traversal that got through would show the key in the answer.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ANTHROPIC_KEY, OPENAI_KEY, startHarness, type Harness } from './support/gateway-harness.ts';
import type { ReceivedRequest, Transcript } from './support/replay-upstream.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
  const echo = (req: ReceivedRequest): Transcript => ({
    description: 'echoes the request it got',
    request: { method: req.method, path: req.path },
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'echo', object: 'model', type: 'model', path: req.path, headers: req.headers }),
  });
  h.upstream.route('GET', '/*', echo);
});

/** Sends the request target byte for byte (fetch and the SDKs would normalize it first). */
function rawGet(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(h.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method: 'GET', path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Spellings of "climb out of /models/" an attacker would try, raw, encoded, double-encoded and mixed. */
const TRAVERSALS = [
  '..\\..\\admin',
  '..\\..\\v1\\files',
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '%2e',
  '..%2fadmin',
  '..%2Fadmin',
  '%2e%2e%2f%2e%2e%2fadmin',
  '..%5c..%5cadmin',
  '%2e%2e%5c%2e%2e%5cadmin',
  '%252e%252e%252fadmin',
  '%252e%252e',
  '..%255cadmin',
  '%c0%ae%c0%ae',
  '%e0%80%ae%e0%80%ae',
  '%2e%2e%00',
  'gpt-4o%00..%2f',
  'x%3f..%2f',
  'x%23..',
  '%uff0e%uff0e',
  '\uff0e\uff0e',
  '.\\..\\admin',
  '%2e\\%2e',
  'a%20b',
  '%zz',
];

/** Whole paths that never match a governed route. */
const BAD_PATHS = [
  '/v1/models/../../admin',
  '/v1/models/./x',
  '/v1/models/%2e%2e/admin',
  '/v1/./models',
  '/v1/models//x',
  '/v1/../v1/models',
  '/v1%2fmodels',
  '/v1/models/x/..',
  '/v1/models\\..\\..\\admin',
];

const PROVIDERS = [
  { name: 'openai', base: '/openai/v1', upstreamModels: '/v1/models', key: OPENAI_KEY, auth: (t: string) => ({ authorization: `Bearer ${t}` }) },
  { name: 'anthropic', base: '/anthropic/v1', upstreamModels: '/v1/models', key: ANTHROPIC_KEY, auth: (t: string) => ({ 'x-api-key': t }) },
] as const;

for (const p of PROVIDERS) {
  describe(`${p.name}: path traversal never reaches the upstream`, () => {
    for (const spelling of TRAVERSALS) {
      it(`GET ${p.base}/models/${JSON.stringify(spelling).slice(1, -1)} is refused before the upstream`, async () => {
        const target = `${p.base}/models/${[...spelling].map((c) => (c.charCodeAt(0) > 0x7e ? encodeURIComponent(c) : c)).join('')}`;
        const res = await rawGet(target, p.auth(h.token));
        assert.ok(res.status === 400 || res.status === 404, `status ${res.status}: ${res.body.slice(0, 200)}`);
        assert.ok(!res.body.includes(p.key), 'the provider key reached the client');
        assert.deepEqual(h.upstream.received.map((r) => r.path), [], 'nothing reaches the upstream');
      });
    }
    for (const bad of BAD_PATHS) {
      it(`GET ${p.name === 'openai' ? '/openai' : '/anthropic'}${bad} is not forwarded`, async () => {
        const res = await rawGet(`/${p.name}${bad}`, p.auth(h.token));
        assert.ok(res.status === 400 || res.status === 404, `status ${res.status}`);
        assert.deepEqual(h.upstream.received, []);
      });
    }

    it('a plain model id reaches exactly /v1/models/{id}, with odd but legal characters kept', async () => {
      for (const id of ['gpt-4o', 'ft:gpt-4o-mini:acme::AbC123', 'claude-sonnet-4-5@20250929', 'model.v2_1~x']) {
        h.upstream.reset();
        h.upstream.route('GET', '/*', (req): Transcript => ({ description: 'a model', request: { method: req.method, path: req.path }, status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, object: 'model', type: 'model', path: req.path }) }));
        const res = await rawGet(`${p.base}/models/${id}`, p.auth(h.token));
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(h.upstream.received.map((r) => r.path), [`${p.upstreamModels}/${id}`]);
      }
    });

    it('a percent-encoded id is decoded once and re-encoded, never resolved', async () => {
      const res = await rawGet(`${p.base}/models/my%7Bmodel%7D`, p.auth(h.token));
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(h.upstream.received.map((r) => r.path), [`${p.upstreamModels}/my%7Bmodel%7D`]);
    });

    it('a query string goes along without touching the path', async () => {
      const res = await rawGet(`${p.base}/models?after=..%2f..%2fadmin&x=\\..`, p.auth(h.token));
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(h.upstream.received.map((r) => r.path), [`${p.upstreamModels}?after=..%2f..%2fadmin&x=\\..`]);
    });

    it('a query string with a fragment or control bytes is refused', async () => {
      const res = await rawGet(`${p.base}/models?x=1#frag`, p.auth(h.token));
      assert.equal(res.status, 400, res.body);
      assert.match(res.body, /AIGOV_E_BAD_PATH/);
      assert.deepEqual(h.upstream.received, []);
    });
  });
}
