/**
 * The tools an agent offers its model count as tool definitions for policy, wherever the agent
 * puts them: Claude Code in `tools`, Codex 0.171 in an `additional_tools` input item whose tools
 * sit in namespaces. Request-side tool rules see them all (the recorded agent requests).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openaiCodec } from '../src/providers/openai.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { loadTranscript } from './support/replay-upstream.ts';

const fixture = (name: string): { url: string; body: string } => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'agents', name), 'utf8')) as { url: string; body: string };
const CODEX = fixture('codex-0.171.0-responses.json');
const CLAUDE = fixture('claude-code-2.1.337-messages.json');

const POLICY = `version: 1
rules:
  - id: no-spawned-agents
    reason: sub-agents are not allowed
    match: { tools: { names: [spawn_agent, Agent] } }
    action: block
`;

let h: Harness;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-tooldefs-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ policyFile: join(dir, 'policy.yaml') });
});
after(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  h.upstream.reset();
  h.upstream.route('POST', '/v1/responses', loadTranscript('openai-responses-stream'));
  h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream'));
});

describe('agent tool definitions', () => {
  it("Codex's additional_tools (namespaces opened) are the request's tool definitions", () => {
    const request = openaiCodec.parseRequest('openai.responses', JSON.parse(CODEX.body));
    const names = request.tools.map((t) => t.name);
    for (const name of ['exec', 'wait', 'sleep', 'spawn_agent', 'send_message']) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    assert.ok(!names.includes('functions'), 'a namespace is not a tool');
    const exec = request.tools.find((t) => t.name === 'exec');
    assert.match(exec?.description ?? '', /Run JavaScript code/);
  });

  it('a tool rule blocks the recorded Codex request by a tool nested in its additional_tools', async () => {
    const res = await fetch(`${h.url}/openai${CODEX.url}`, { method: 'POST', headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' }, body: CODEX.body });
    const text = await res.text();
    assert.equal(res.status, 403, text);
    assert.match(text, /no-spawned-agents/);
    assert.equal(h.upstream.received.length, 0);
  });

  it('and the recorded Claude Code request by its Agent tool', async () => {
    const res = await fetch(`${h.url}/anthropic${CLAUDE.url}`, { method: 'POST', headers: { 'x-api-key': h.token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: CLAUDE.body });
    const text = await res.text();
    assert.equal(res.status, 403, text);
    assert.match(text, /no-spawned-agents/);
  });
});
