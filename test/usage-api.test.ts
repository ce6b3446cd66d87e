/**
 * The usage API (GET /aigov/v1/usage) end to end with real parts, on SQLite and on PostgreSQL:
 * the dev IdP's users (alice a developer, bob an approver, carol an auditor), calls made through
 * the gateway with the official SDKs against the replaying upstream — priced, unpriced, and a
 * stream that reported no usage — and, for the calendar days, calls recorded at chosen instants
 * through the gateway's own store. Costs summed exactly; a user sees only their own usage and
 * cannot ask for another's; an auditor sees everyone's and each such read is in the access log
 * (and refused when it cannot be logged); days in the caller's zone; the spend metrics.
 */
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { UsageReportSchema, type UsageReportView } from '../src/protocol/usage.ts';
import { verifyAuditDatabase } from '../src/store/sqlite/audit-verify.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { checkPgAuditChain } from './support/pg-audit-check.ts';
import { pgQuery, usePgDatabases } from './support/pg-databases.ts';
import { loadTranscript } from './support/replay-upstream.ts';
import { callRequest, callResult, principal } from './support/store-fixtures.ts';

const freshPg = usePgDatabases();

/** The OpenAI stream transcript without its usage chunk: what a client that did not ask for include_usage gets. */
function streamWithoutUsage(): ReturnType<typeof loadTranscript> {
  const t = loadTranscript('openai-chat-stream');
  return { ...t, body: t.body.split('\n\n').filter((block) => !block.includes('"usage":{')).join('\n\n') };
}

for (const driver of ['sqlite', 'postgres'] as const) {
  describe(`usage API (${driver})`, { timeout: 180_000 }, () => {
    let h: Harness;
    let dbUrl = '';
    const tokens: Record<string, string> = {};
    const sessions: Record<string, string[]> = { alice: [], bob: [] };

    async function peek(sql: string): Promise<Record<string, unknown>[]> {
      if (driver === 'postgres') return pgQuery(dbUrl, sql);
      const db = new DatabaseSync(join(h.dir, 'aigov.db'), { readOnly: true });
      try {
        return db.prepare(sql).all().map((row) => ({ ...row }));
      } finally {
        db.close();
      }
    }

    async function usage(user: string, query = ''): Promise<{ status: number; body: unknown }> {
      const res = await fetch(`${h.url}/aigov/v1/usage${query}`, { headers: { authorization: `Bearer ${tokens[user]}` } });
      return { status: res.status, body: await res.json() };
    }

    async function report(user: string, query = ''): Promise<UsageReportView> {
      const { status, body } = await usage(user, query);
      assert.equal(status, 200, JSON.stringify(body));
      return UsageReportSchema.parse(body);
    }

    /** The exact cost of `user`'s recorded calls, read back call by call from the store. */
    async function recordedCost(user: string): Promise<{ nano: bigint; calls: number; unpriced: number; noUsage: number }> {
      let nano = 0n;
      let calls = 0;
      let unpriced = 0;
      let noUsage = 0;
      for (const session of new Set(sessions[user])) {
        for (const call of await h.gateway.store.listCalls(session)) {
          calls++;
          const cost = call.usage?.costNanoUsd;
          if (typeof cost === 'number') nano += BigInt(cost);
          else if (call.usage !== null) unpriced++;
          else if (call.status === 'completed') noUsage++;
        }
      }
      return { nano, calls, unpriced, noUsage };
    }

    before(async () => {
      if (driver === 'postgres') dbUrl = (await freshPg()).url;
      h = await startHarness(driver === 'postgres' ? { databaseUrl: dbUrl } : {});
      tokens['alice'] = h.token;
      for (const user of ['bob', 'carol']) tokens[user] = await h.tokenFor(user);
      h.upstream.route('POST', '/v1/chat/completions', (req) => {
        const body = JSON.parse(req.body) as { model: string; stream?: boolean };
        if (body.stream) return streamWithoutUsage();
        const t = loadTranscript('openai-chat');
        return body.model === 'mystery-model' ? { ...t, body: t.body.replaceAll('gpt-4o-mini-2024-07-18', 'mystery-model') } : t;
      });
      h.upstream.route('POST', '/v1/messages', () => loadTranscript('anthropic-messages'));
      const openai = (user: string, session: string): OpenAI => {
        sessions[user]!.push(session);
        return new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: tokens[user]!, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
      };
      // alice: 30 priced calls at once, an Anthropic one, an unpriced model, a stream without usage; bob: 12 priced calls.
      await Promise.all(Array.from({ length: 30 }, (_, i) => openai('alice', `use-a${i % 3}`).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] })));
      sessions['alice']!.push('use-a-claude');
      await new Anthropic({ baseURL: `${h.url}/anthropic`, apiKey: tokens['alice'], maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'use-a-claude' } }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
      await openai('alice', 'use-a-odd').chat.completions.create({ model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] });
      for await (const chunk of await openai('alice', 'use-a-odd').chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] })) void chunk;
      await Promise.all(Array.from({ length: 12 }, (_, i) => openai('bob', `use-b${i % 2}`).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `bob ${i}` }] })));
      await h.gateway.store.flush();
    });
    after(async () => {
      await h?.close();
    });

    it('a user sees their own usage, by model unless asked, summed exactly; unpriced and no-usage calls apart', async () => {
      const mine = await report('alice');
      assert.equal(mine.by, 'model');
      assert.deepEqual(mine.viewer, { sub: 'alice', email: 'alice@aigov.dev', auditor: false });
      const expected = await recordedCost('alice');
      assert.equal(expected.calls, 33);
      assert.equal(mine.total.calls, 33);
      assert.equal(mine.total.cost_nano_usd, expected.nano.toString());
      assert.equal(mine.total.cost_usd, Number(expected.nano) / 1e9);
      assert.equal(mine.total.unpriced_calls, 1);
      assert.equal(mine.total.no_usage_calls, 1);
      assert.equal(expected.unpriced, 1);
      assert.equal(expected.noUsage, 1);
      // 31 prompt and 38 answer tokens a call at gpt-4o-mini's $0.15 / $0.60 per million.
      const mini = mine.rows.find((r) => r.provider === 'openai' && r.model === 'gpt-4o-mini')!;
      assert.equal(mini.calls, 31);
      assert.equal(mini.cost_nano_usd, String(30 * (31 * 150 + 38 * 600)));
      assert.equal(mini.input_tokens, 30 * 31);
      assert.equal(mini.output_tokens, 30 * 38);
      assert.equal(mini.no_usage_calls, 1);
      assert.deepEqual(mine.rows.map((r) => `${r.provider}/${r.model}`), ['openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5', 'openai/mystery-model'], 'dearest first');
      const byUser = await report('alice', '?by=user');
      assert.deepEqual(byUser.rows.map((r) => r.user), [{ sub: 'alice', email: 'alice@aigov.dev' }], 'only herself');
      assert.equal((await report('alice', '?user=ALICE@aigov.dev')).total.calls, 33, 'herself by email, in any case');
      assert.equal((await report('bob', '?by=user')).total.cost_nano_usd, (await recordedCost('bob')).nano.toString());
    });

    it('a user cannot see anyone else\'s usage: 403 naming the auditor groups, and nothing logged', async () => {
      for (const user of ['bob', 'carol@aigov.dev']) {
        const { status, body } = await usage('alice', `?user=${encodeURIComponent(user)}`);
        assert.equal(status, 403);
        assert.deepEqual((body as { error: { code: string } }).error.code, 'AIGOV_E_USAGE_FORBIDDEN');
        assert.match((body as { error: { message: string } }).error.message, /auditor groups \(auditors\)/);
      }
      assert.deepEqual(await peek("SELECT id FROM access_log WHERE action = 'usage' AND subject = 'alice'"), []);
    });

    it('an auditor sees everyone\'s (by user unless asked), and each read is in the access log before the answer', async () => {
      const before = (await peek("SELECT id FROM access_log WHERE action = 'usage'")).length;
      const all = await report('carol');
      assert.equal(all.by, 'user');
      assert.equal(all.viewer.auditor, true);
      const [alice, bob] = [await recordedCost('alice'), await recordedCost('bob')];
      assert.deepEqual(all.rows.map((r) => [r.user?.email, r.calls, r.cost_nano_usd]), [
        ['alice@aigov.dev', 33, alice.nano.toString()],
        ['bob@aigov.dev', 12, bob.nano.toString()],
      ]);
      assert.equal(all.total.cost_nano_usd, (alice.nano + bob.nano).toString());
      const ofBob = await report('carol', '?user=bob@aigov.dev&by=group');
      assert.deepEqual(ofBob.rows.map((r) => [r.group, r.calls]), [['approvers', 12], ['security', 12]]);
      assert.equal(ofBob.total.calls, 12);
      const log = await peek("SELECT subject, email, action, session_id, filter FROM access_log WHERE action = 'usage' ORDER BY id");
      assert.equal(log.length, before + 2, 'one row per read');
      assert.deepEqual({ ...log.at(-1), filter: JSON.parse(String(log.at(-1)!['filter'])) }, {
        subject: 'carol', email: 'carol@aigov.dev', action: 'usage', session_id: null,
        filter: { by: 'group', since: ofBob.since, until: ofBob.until, user: 'bob@aigov.dev' },
      });
      // The access rows are in the audit chain like any other, and it verifies.
      await h.gateway.store.flush();
      if (driver === 'postgres') await checkPgAuditChain(dbUrl);
      else assert.equal(verifyAuditDatabase(join(h.dir, 'aigov.db')).problem, null);
    });

    it('by day in the caller\'s zone: two calls an hour apart fall on two days in Tokyo and on one in UTC', async () => {
      const issuer = h.gateway.config.identity.issuer;
      const midnightTokyo = Date.parse('2026-01-11T00:00:00+09:00');
      for (const [i, at] of [midnightTokyo - 30 * 60_000, midnightTokyo + 30 * 60_000].entries()) {
        await h.gateway.store.recordRequest(callRequest(`zed-${i}`, { sessionId: 'use-zed', principal: principal({ subject: 'zed', email: 'zed@example.test', issuer, groups: [] }), startedAt: at }));
        await h.gateway.store.finishCall(callResult(`zed-${i}`, { usage: { inputTokens: 100, outputTokens: 10, costNanoUsd: 7 + i } }));
      }
      const range = `&since=${encodeURIComponent('2026-01-09T00:00:00Z')}&until=${encodeURIComponent('2026-01-12T00:00:00Z')}&user=zed`;
      const tokyo = await report('carol', `?by=day&tz=Asia/Tokyo${range}`);
      assert.equal(tokyo.time_zone, 'Asia/Tokyo');
      assert.deepEqual(tokyo.rows.map((r) => [r.day, r.calls, r.cost_nano_usd]), [['2026-01-09', 0, '0'], ['2026-01-10', 1, '7'], ['2026-01-11', 1, '8'], ['2026-01-12', 0, '0']]);
      const utc = await report('carol', `?by=day&tz=UTC${range}`);
      assert.deepEqual(utc.rows.map((r) => [r.day, r.calls]), [['2026-01-09', 0], ['2026-01-10', 2], ['2026-01-11', 0]]);
      const offset = await report('carol', `?by=day&tz=${encodeURIComponent('+09:00')}${range}`);
      assert.deepEqual(offset.rows.map((r) => r.calls), tokyo.rows.map((r) => r.calls), 'an offset works as the zone');
      assert.equal((await report('alice', `?by=day&tz=Asia/Tokyo${range.replace('&user=zed', '')}`)).total.calls, 0, 'zed\'s calls are not alice\'s');
    });

    it('an empty range is a report with no calls; bad queries are refused with what is accepted', async () => {
      const empty = await report('carol', '?since=2001-01-01&until=2001-02-01');
      assert.deepEqual({ rows: empty.rows, calls: empty.total.calls, cost: empty.total.cost_nano_usd }, { rows: [], calls: 0, cost: '0' });
      const bad: [string, RegExp][] = [
        ['?by=week', /by must be one of user, group, model, day/],
        ['?tz=Mars/Olympus', /tz must be an IANA time zone \(Europe\/Paris\) or a UTC offset \(\+05:30\)/],
        ['?since=yesterday', /since must be an ISO 8601 date-time or epoch milliseconds/],
        ['?since=2026-02-01&until=2026-01-01', /since must not be after until/],
        ['?by=day&since=2000-01-01&until=2026-01-01', /by=day covers at most 1000 days/],
      ];
      for (const [query, message] of bad) {
        const { status, body } = await usage('carol', query);
        assert.equal(status, 400, query);
        assert.equal((body as { error: { code: string } }).error.code, 'AIGOV_E_BAD_REQUEST');
        assert.match((body as { error: { message: string } }).error.message, message);
      }
      assert.equal((await fetch(`${h.url}/aigov/v1/usage`)).status, 401);
      assert.equal((await fetch(`${h.url}/aigov/v1/usage`, { method: 'POST', headers: { authorization: `Bearer ${tokens['alice']}` } })).status, 405);
      assert.equal((await fetch(`${h.url}/aigov/v1/usage/more`, { headers: { authorization: `Bearer ${tokens['alice']}` } })).status, 404);
    });

    it('the spend metrics count each answered call: dollars, tokens by kind, unpriced calls', async () => {
      const text = await (await fetch(`${h.url}/metrics`)).text();
      const value = (name: string, labels: string): number => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
        assert.ok(line, `${name}{${labels}} in\n${text.split('\n').filter((l) => l.startsWith(name)).join('\n')}`);
        return Number(line.split(' ').at(-1));
      };
      const priced = 42 * (31 * 150 + 38 * 600);
      assert.ok(Math.abs(value('aigov_spend_usd_total', 'provider="openai",model="gpt-4o-mini"') - priced / 1e9) < 1e-12);
      assert.equal(value('aigov_tokens_total', 'provider="openai",model="gpt-4o-mini",kind="input"'), 42 * 31);
      assert.equal(value('aigov_tokens_total', 'provider="openai",model="gpt-4o-mini",kind="output"'), 42 * 38);
      assert.equal(value('aigov_unpriced_calls_total', 'provider="openai",model="mystery-model"'), 1);
      assert.ok(value('aigov_spend_usd_total', 'provider="anthropic",model="claude-sonnet-4-5"') > 0);
    });

    it('fail closed: an auditor\'s read that cannot be logged is refused (503); a user\'s own read still answers', async () => {
      if (driver === 'sqlite') {
        const db = new DatabaseSync(join(h.dir, 'aigov.db'));
        db.exec("CREATE TRIGGER test_refuse_access BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'access log refused'); END");
        db.close();
      } else {
        await pgQuery(dbUrl, "CREATE FUNCTION test_refuse_access() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'access log refused'; END $$");
        await pgQuery(dbUrl, 'CREATE TRIGGER test_refuse_access BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION test_refuse_access()');
      }
      const refused = await usage('carol', '?by=model');
      assert.equal(refused.status, 503);
      assert.equal((refused.body as { error: { code: string } }).error.code, 'AIGOV_E_STORE_READ_FAILED');
      assert.equal(JSON.stringify(refused.body).includes('cost'), false, 'no figure of the report goes out');
      assert.equal((await report('alice')).total.calls, 33);
      await h.gateway.store.close();
      assert.equal((await usage('alice')).status, 503, 'a store that cannot answer');
    });
  });
}
