/**
 * Tolerance of what Anthropic accepts (issue 11, first slice): Claude Code sends `role: "system"`
 * turns in the middle of `messages`. The gateway must forward them byte for byte, govern their
 * text like any other the model reads, and refuse only what the provider itself would refuse —
 * in the provider's own wording, which Claude Code keys its fallback on.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const POLICY = `version: 1
rules:
  - id: no-launch-codes
    match: { keywords: [launch-code-7781] }
    action: block
`;

let h: Harness;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-roles-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ policyFile: join(dir, 'policy.yaml') });
});
after(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  h.upstream.reset();
  h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages'));
});

function post(body: string): Promise<Response> {
  return fetch(`${h.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'x-api-key': h.token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body });
}

describe('Anthropic message roles', () => {
  it('a system turn mid-conversation (as Claude Code sends it) goes upstream byte for byte', async () => {
    const body = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"},{"role":"system","content":"<system-reminder>be brief</system-reminder>"},{"role":"user","content":[{"type":"text","text":"say hi"}]}],"stream":false}`;
    const res = await post(body);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(h.upstream.received.length, 1);
    assert.equal(h.upstream.received[0]!.body, body);
  });

  it('the text of such a turn is governed like any other: a blocked keyword there is blocked', async () => {
    const res = await post(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: 'the launch-code-7781 is here' }] }));
    assert.equal(res.status, 403);
    assert.match(await res.text(), /no-launch-codes/);
    assert.equal(h.upstream.received.length, 0);
  });

  it('a role the gateway does not know is forwarded and scanned as user text', async () => {
    const res = await post(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'developer', content: 'launch-code-7781' }] }));
    assert.equal(res.status, 403);
    const ok = await post(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'developer', content: 'fine' }] }));
    assert.equal(ok.status, 200);
  });

  it('a missing role is refused in Anthropic\'s own words', async () => {
    const res = await post(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ content: 'hi' }] }));
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: { type: string; message: string } }).error;
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /messages\.0\.role: Input should be 'user' or 'assistant'/);
  });

  it('/anthropic/messages (a base URL without /v1, as @ai-sdk/anthropic builds it) is /anthropic/v1/messages', async () => {
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const res = await fetch(`${h.url}/anthropic/messages`, { method: 'POST', headers: { 'x-api-key': h.token, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(h.upstream.received.map((r) => r.path), ['/v1/messages']);
    h.upstream.reset();
    h.upstream.route('GET', '/v1/models/*', (req) => ({ description: 'a model', request: { method: 'GET', path: req.path }, status: 200, headers: { 'content-type': 'application/json' }, body: '{"type":"model","id":"claude-x"}' }));
    const model = await fetch(`${h.url}/anthropic/models/claude-x`, { headers: { 'x-api-key': h.token } });
    assert.equal(model.status, 200);
    assert.deepEqual(h.upstream.received.map((r) => r.path), ['/v1/models/claude-x'], 'the model route and its id check apply to the alias');
  });
});
