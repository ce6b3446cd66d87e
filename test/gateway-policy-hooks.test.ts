/**
 * The policy extension point of the pipeline, with hooks written here (the policy engine plugs in
 * the same way): fail closed on a policy error, refuse, rewrite the request before it is recorded
 * and sent, rewrite answers streamed or not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import type { PipelineHooks, RequestVerdict } from '../src/gateway/hooks.ts';
import type { TextRewriter } from '../src/providers/channels.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { chatStreamText, loadTranscript } from './support/replay-upstream.ts';

const NONE: RequestVerdict = { decisions: [], refuse: null, rewriteRequest: null, rewriteResponse: null, judgeToolCall: null };

/** Replaces "example.com" everywhere, holding back a possible partial match (a tiny stream masker). */
const exampleMasker: TextRewriter = {
  whole: (text) => text.replaceAll('example.com', '[DOMAIN]'),
  channel() {
    let held = '';
    const target = 'example.com';
    return {
      push(delta) {
        held += delta;
        let keep = 0;
        for (let k = Math.min(target.length - 1, held.length); k > 0; k--) {
          if (target.startsWith(held.slice(-k))) {
            keep = k;
            break;
          }
        }
        const ready = held.slice(0, held.length - keep).replaceAll(target, '[DOMAIN]');
        held = held.slice(held.length - keep);
        return ready;
      },
      end() {
        const out = held.replaceAll(target, '[DOMAIN]');
        held = '';
        return out;
      },
    };
  },
};

async function withHarness(hooks: PipelineHooks, body: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness({ hooks });
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

describe('policy hooks in the pipeline', () => {
  it('a policy that throws refuses the request (503) and nothing is forwarded', async () => {
    await withHarness(
      {
        evaluateRequest: () => {
          throw new Error('detector crashed');
        },
      },
      async (h) => {
        const error = await new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
        assert.ok(error instanceof OpenAI.APIError);
        assert.equal(error.status, 503);
        assert.match(error.message, /could not evaluate its policy/);
        assert.equal(h.upstream.received.length, 0);
      },
    );
  });

  it('require_approval without approvers refuses with a provider-shaped 403 naming the rule', async () => {
    await withHarness({ evaluateRequest: () => ({ ...NONE, refuse: { kind: 'require_approval', ruleId: 'prod-creds', reason: 'mentions production credentials', approval: null, preview: '' } }) }, async (h) => {
      const error = await new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 }).messages.create({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      assert.ok(error instanceof Anthropic.PermissionDeniedError);
      assert.match(error.message, /needs approval under aigov policy rule `prod-creds`/);
      assert.equal(h.upstream.received.length, 0);
    });
  });

  it('rewrites the request before it is recorded and sent upstream', async () => {
    await withHarness({ evaluateRequest: () => ({ ...NONE, rewriteRequest: (slot) => slot.text.replaceAll('secret-project', '[CODENAME]') }) }, async (h) => {
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
      await new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'status of secret-project?' }] });
      const sent = h.upstream.received[0]!.body;
      assert.ok(!sent.includes('secret-project'));
      assert.match(sent, /\[CODENAME\]/);
      await h.gateway.store.flush();
      const [session] = await h.gateway.store.listSessions();
      const [call] = await h.gateway.store.listCalls(session!.sessionId);
      assert.equal(call?.requestBody, sent, 'the record holds what was sent, not what the client wrote');
    });
  });

  it('rewrites answers, streamed (1-byte chunks) and not, identically', async () => {
    await withHarness({ evaluateRequest: () => ({ ...NONE, rewriteResponse: exampleMasker }) }, async (h) => {
      const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat-stream'), { chunking: 'bytes' });
      let streamed = '';
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
      const original = chatStreamText('openai-chat-stream');
      assert.ok(original.includes('example.com'), 'the transcript carries the entity');
      assert.equal(streamed, exampleMasker.whole(original, 'text'));
      assert.ok(!streamed.includes('example.com'));

      h.upstream.route('POST', '/v1/messages', loadTranscript('anthropic-messages-stream'), { chunking: { random: 3 } });
      const final = await new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: h.token, maxRetries: 0 }).messages.stream({ model: 'm', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
      const text = final.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      assert.ok(!text.includes('example.com') && text.includes('[DOMAIN]'));

      h.upstream.route('POST', '/v1/chat/completions', loadTranscript('openai-chat'));
      const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.ok(!(plain.choices[0]?.message.content ?? '').includes('example.com'));
      // What was recorded is what the client got.
      await h.gateway.store.flush();
      const sessions = await h.gateway.store.listSessions({ limit: 10 });
      for (const s of sessions) for (const c of await h.gateway.store.listCalls(s.sessionId)) {
        const events = (await h.gateway.store.getStreamEvents(c.callId)).map((e) => e.raw).join('');
        assert.ok(!events.includes('example.com') && !(c.responseBody ?? '').includes('example.com'), 'no unmasked text recorded');
      }
    });
  });
});
