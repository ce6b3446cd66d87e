/**
 * Pseudonym vaults on PostgreSQL, shared by replicas. Through two real gateways on one database
 * (the official OpenAI SDK as the client, one IdP, one replaying upstream): a placeholder issued
 * on replica A is restored by replica B, which never saw it — in a whole answer and in a stream
 * that splits it across events — B continues the numbering, and A, which holds the session in
 * memory, restores what B issued (its cache does not go stale); no value is in the database in
 * clear; a third replica with another key is refused at startup; fresh sessions whose first
 * pseudonyms are issued on A and B at the same moment (the same value on both, different values on
 * each) answer every request — none refused — with one placeholder per value, restored on both.
 * Below the gateway, two SessionVaults on two stores (two replicas' worth of connections): the
 * same entry written by both at once is stored once and refuses neither; both issuing the first
 * pseudonyms of 40 sessions at once, each request rewritten after a conflict, never refused; both
 * issuing for one session at once never give one number to two values nor two numbers to one
 * value; writes to the same sessions in opposite orders never deadlock; a failing catch-up
 * refuses the request; a session purged and started anew elsewhere is reloaded, not contradicted.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { AigovError } from '../src/core/errors.ts';
import { SessionVaults, type VaultLease } from '../src/gateway/session-vaults.ts';
import { openPostgresPseudonymStore, type PgPseudonymStore } from '../src/store/postgres/pg-pseudonym-store.ts';
import { rejection } from './support/aigov-assert.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import { connect, pgQuery, usePgDatabases } from './support/pg-databases.ts';
import type { ReceivedRequest, Transcript } from './support/replay-upstream.ts';

const freshPg = usePgDatabases();
const KEY = randomBytes(32).toString('base64');
// Built at run time: no address literal an attacker could grep for is what the test checks.
const JANE = ['jane.doe', 'example.com'].join('@');
const BOB = ['bob.smith', 'example.org'].join('@');
const CAROL = ['carol.white', 'example.net'].join('@');

const POLICY = `
version: 1
default_action: allow
rules:
  - id: pseudonymize-contacts
    match:
      detectors: [EMAIL_ADDRESS]
    action: pseudonymize
`;

function chatAnswer(content: string): Transcript {
  return {
    description: 'a chat completion built by the test',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'chatcmpl-test', object: 'chat.completion', created: 1760433151, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    }),
  };
}

/** A streamed chat answer whose text arrives in exactly these pieces (one SSE event each). */
function chatStream(pieces: string[]): Transcript {
  const event = (delta: object, finish: string | null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1760433151, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return {
    description: 'a chat stream built by the test',
    request: { method: 'POST', path: '/v1/chat/completions' },
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    body: [event({ role: 'assistant', content: '' }, null), ...pieces.map((p) => event({ content: p }, null)), event({}, 'stop'), 'data: [DONE]\n\n'].join(''),
  };
}

function sentText(request: ReceivedRequest | undefined): string {
  assert.ok(request, 'the upstream received the request');
  const body = JSON.parse(request.body) as { messages: { content: string }[] };
  return body.messages.map((m) => m.content).join('\n');
}

describe('two gateway replicas on one PostgreSQL share the pseudonym vaults', { timeout: 120_000 }, () => {
  let a: Harness;
  let b: Harness;
  let url = '';
  let policyDir = '';
  let answer: Transcript = chatAnswer('Noted.');
  const SESSION = 'ses_pg_vault_shared';

  before(async () => {
    url = (await freshPg()).url;
    policyDir = mkdtempSync(join(tmpdir(), 'aigov-pgvault-'));
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    a = await startHarness({ databaseUrl: url, policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: KEY });
    b = await startHarness({ databaseUrl: url, policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: KEY, replicaOf: a });
    a.upstream.route('POST', '/v1/chat/completions', () => answer);
  });
  after(async () => {
    await b?.close();
    await a?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  const client = (h: Harness): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': SESSION } });
  const ask = async (h: Harness, content: string): Promise<string> => {
    const completion = await client(h).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
    return completion.choices[0]?.message.content ?? '';
  };

  it('a placeholder issued on A is restored on B; B continues the numbering; A restores what B issued', async () => {
    answer = chatAnswer('Noted.');
    assert.equal(await ask(a, `Please write to ${JANE} about the invoice.`), 'Noted.');
    assert.equal(sentText(a.upstream.received.at(-1)), 'Please write to «EMAIL_1» about the invoice.');

    // B has never seen the session: the answer's placeholder is looked up in the database.
    answer = chatAnswer('I will write to « email_1 » today.');
    assert.equal(await ask(b, 'Go ahead with what I asked.'), `I will write to ${JANE} today.`);

    // B issues the next number and keeps jane's.
    answer = chatAnswer('Done: «EMAIL_2», «EMAIL_1».');
    assert.equal(await ask(b, `Also cc ${CAROL}, and ${JANE} again.`), `Done: ${CAROL}, ${JANE}.`);
    assert.equal(sentText(a.upstream.received.at(-1)), 'Also cc «EMAIL_2», and «EMAIL_1» again.');

    // A holds the session in memory from the first request: it must not answer from that copy.
    answer = chatStream(['Carol is «EM', 'AIL_', '2»; jane is «EMAIL_1', '».']);
    const stream = await client(a).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Who did we cc?' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, `Carol is ${CAROL}; jane is ${JANE}.`);

    // And A numbers after B's entries: bob gets EMAIL_3, carol keeps EMAIL_2.
    answer = chatAnswer('ok');
    await ask(a, `Forward to ${BOB} and ${CAROL}.`);
    assert.equal(sentText(a.upstream.received.at(-1)), 'Forward to «EMAIL_3» and «EMAIL_2».');
    answer = chatAnswer('«EMAIL_3»');
    assert.equal(await ask(b, 'and?'), BOB);

    // The database holds the entries, sealed: no value in clear in any column.
    const rows = await pgQuery(url, 'SELECT label, n, encode(value_mac, \'hex\') AS mac, encode(sealed, \'hex\') AS sealed, session_id FROM pseudonym_entries ORDER BY seq');
    assert.deepEqual(rows.map((r) => [r['session_id'], r['label'], r['n']]), [[SESSION, 'EMAIL', 1], [SESSION, 'EMAIL', 2], [SESSION, 'EMAIL', 3]]);
    const dump = JSON.stringify(rows);
    for (const value of [JANE, BOB, CAROL]) {
      assert.ok(!dump.includes(value) && !dump.includes(Buffer.from(value).toString('hex')), 'a value is in the database in clear');
    }
    // No call record holds a value either: the recorded request is what went upstream.
    const calls = await pgQuery(url, 'SELECT request_body, response_body FROM calls');
    assert.ok(calls.length >= 6);
    for (const value of [JANE, BOB, CAROL]) assert.ok(!JSON.stringify(calls).includes(value), 'a value is in a recorded call');
  });

  it('a replica with another pseudonyms.key is refused at startup, naming key ids only; the vaults are untouched', async () => {
    const before = await pgQuery(url, 'SELECT count(*) AS n FROM pseudonym_entries');
    const other = randomBytes(32).toString('base64');
    const error = await startHarness({ databaseUrl: url, policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: other, replicaOf: a }).then(
      () => assert.fail('the replica started'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AigovError && error.code === 'AIGOV_E_PSEUDONYM_KEY_MISMATCH', String(error));
    assert.match(error.message, /key id [0-9a-f]{16}\); the configured pseudonyms\.key has key id [0-9a-f]{16}/);
    for (const secret of [KEY, other, Buffer.from(other, 'base64').toString('hex')]) assert.ok(!error.message.includes(secret) && !error.hint.includes(secret));
    assert.deepEqual(await pgQuery(url, 'SELECT count(*) AS n FROM pseudonym_entries'), before);
    answer = chatAnswer('«EMAIL_1»');
    assert.equal(await ask(b, 'still there?'), JANE);
  });

  it('the first pseudonyms of fresh sessions, issued on A and B at the same moment: every request goes through, one placeholder per value on both, and both restore', async () => {
    answer = chatAnswer('ok');
    const ROUNDS = 12;
    const refused: string[] = [];
    const askIn = async (h: Harness, session: string, content: string): Promise<string> => {
      const ai = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': session } });
      const completion = await ai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
      return completion.choices[0]?.message.content ?? '';
    };
    for (let round = 0; round < ROUNDS; round++) {
      const session = `ses_first_${round}`;
      // The same value on both at once, and a different value on each at once.
      const asks: [Harness, string, string][] = [
        [a, `r${round} a1: write to ${JANE}`, JANE],
        [b, `r${round} b1: write to ${JANE}`, JANE],
        [a, `r${round} a2: write to ${BOB}`, BOB],
        [b, `r${round} b2: write to ${CAROL}`, CAROL],
      ];
      await Promise.all(asks.map(([h, content]) => askIn(h, session, content).catch((e: unknown) => void refused.push(`${content.split(':')[0]}: ${String(e)}`))));
      const byValue = new Map<string, string>();
      const byPlaceholder = new Map<string, string>();
      for (const [, content, value] of asks) {
        const tag = content.split(':')[0]!;
        const sent = a.upstream.received.filter((r) => r.body.includes(`${tag}: `)).map(sentText);
        if (sent.length === 0) continue; // refused: counted above
        assert.equal(sent.length, 1);
        const placeholder = /write to (\S+)$/.exec(sent[0]!)?.[1] ?? '';
        assert.match(placeholder, /^«EMAIL_\d+»$/, `${tag} went upstream as ${sent[0]}`);
        assert.equal(byValue.get(value) ?? placeholder, placeholder, `round ${round}: one value went upstream under two placeholders`);
        assert.equal(byPlaceholder.get(placeholder) ?? value, value, `round ${round}: one placeholder went upstream for two values`);
        byValue.set(value, placeholder);
        byPlaceholder.set(placeholder, value);
      }
      // Both replicas restore every placeholder that went upstream, to its value.
      const placeholders = [...byPlaceholder.keys()].sort();
      answer = chatAnswer(placeholders.join(' '));
      for (const h of [a, b]) assert.equal(await askIn(h, session, 'and?'), placeholders.map((p) => byPlaceholder.get(p)).join(' '));
      answer = chatAnswer('ok');
    }
    assert.deepEqual(refused, [], 'a request was refused');
  });
});

describe('PostgreSQL pseudonym store under two replicas', { timeout: 120_000 }, () => {
  let url = '';
  const key = randomBytes(32);
  const stores: PgPseudonymStore[] = [];
  const vaultsOpen: SessionVaults[] = [];

  before(async () => {
    url = (await freshPg()).url;
  });
  after(async () => {
    for (const v of vaultsOpen) await v.close().catch(() => {});
    for (const s of stores) await s.close().catch(() => {});
  });

  const store = async (statementTimeoutMs?: number): Promise<PgPseudonymStore> => {
    const s = await openPostgresPseudonymStore({ url, key, poolSize: 3, statementTimeoutMs });
    stores.push(s);
    return s;
  };
  const replica = async (options: { now?: () => number; ttlMs?: number; statementTimeoutMs?: number } = {}): Promise<SessionVaults> => {
    const { statementTimeoutMs, ...rest } = options;
    const v = new SessionVaults({ store: await store(statementTimeoutMs), purgeIntervalMs: 0, ...rest });
    vaultsOpen.push(v);
    return v;
  };
  const email = (lease: VaultLease, ...values: string[]): string => lease.issue(() => values.map((v) => lease.vault.placeholderFor('EMAIL_ADDRESS', v)).join());

  it('the loser of a race is refused and learns the winner\'s entry before it hears of it; the retry agrees', async () => {
    const a = await replica();
    const b = await replica();
    const la = await a.forRequest('ses_race');
    const lb = await b.forRequest('ses_race');
    assert.equal(email(la, 'x@x.io'), '«EMAIL_1»');
    assert.equal(email(lb, 'y@x.io'), '«EMAIL_1»');
    await la.commit();
    assert.equal((await rejection(lb.commit())).code, 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE');
    assert.equal(lb.vault.restore('«EMAIL_1»'), 'x@x.io', 'b took its own back and learned a\'s');
    const retry = await b.forRequest('ses_race');
    assert.equal(email(retry, 'y@x.io'), '«EMAIL_2»');
    await retry.commit();
    // a holds the session: its next use learns EMAIL_2 from the database.
    assert.equal((await a.forAnswer('ses_race'))?.restore('«EMAIL_2»'), 'y@x.io');
  });

  it('the same entry written by two stores at the same moment is stored once, and neither is refused', async () => {
    const [s1, s2] = [await store(), await store()];
    for (let round = 0; round < 30; round++) {
      const append = [{ sessionId: `ses_same_entry_${round}`, entries: [['EMAIL', 1, 'same@x.io']] as [string, number, string][] }];
      assert.deepEqual(await Promise.all([s1.write(append, [], round), s2.write(append, [], round)]), [['stored'], ['stored']]);
      assert.deepEqual((await s1.load(`ses_same_entry_${round}`)).entries, [['EMAIL', 1, 'same@x.io']]);
    }
    // Stored so already, plus a new entry: the new one is appended; another value for a taken number is still refused.
    assert.deepEqual(await s2.write([{ sessionId: 'ses_same_entry_0', entries: [['EMAIL', 1, 'same@x.io'], ['EMAIL', 2, 'new@x.io']] }], [], 99), ['stored']);
    assert.deepEqual(await s1.write([{ sessionId: 'ses_same_entry_0', entries: [['EMAIL', 2, 'other@x.io']] }], [], 99), ['conflict']);
    assert.deepEqual(await s1.write([{ sessionId: 'ses_same_entry_0', entries: [['EMAIL', 3, 'new@x.io']] }], [], 99), ['conflict']);
    assert.deepEqual((await s1.load('ses_same_entry_0')).entries, [['EMAIL', 1, 'same@x.io'], ['EMAIL', 2, 'new@x.io']]);
  });

  it('two replicas issuing a session\'s first pseudonyms at the same moment, 40 sessions: no request refused (rewritten after a conflict), one placeholder per value on both, both restore', async () => {
    const replicas = [await replica(), await replica()];
    const reader = await store();
    let rewrites = 0;
    let sameRewrites = 0;
    for (let round = 0; round < 40; round++) {
      const session = `ses_first_${round}`;
      const [mine, theirs] = [`a${round}@x.io`, `b${round}@x.io`];
      // The same value on both at once; a different value on each at once; and mixes of them.
      const plan: { r: number; values: string[] }[] = [
        { r: 0, values: ['same@x.io'] },
        { r: 1, values: ['same@x.io'] },
        { r: 0, values: [mine] },
        { r: 1, values: [theirs] },
        { r: 0, values: [theirs, 'same@x.io'] },
        { r: 1, values: ['same@x.io', mine] },
      ];
      const sent = await Promise.all(
        plan.map(async ({ r, values }) => {
          const lease = await replicas[r]!.forRequest(session);
          let placeholders = email(lease, ...values).split(',');
          await lease.commit(() => {
            rewrites++;
            if (values.length === 1 && values[0] === 'same@x.io') sameRewrites++;
            placeholders = email(lease, ...values).split(',');
          });
          return values.map((value, k) => ({ value, placeholder: placeholders[k]! }));
        }),
      );
      const byValue = new Map<string, string>();
      const byPlaceholder = new Map<string, string>();
      for (const { value, placeholder } of sent.flat()) {
        assert.match(placeholder, /^«EMAIL_\d»$/);
        assert.equal(byValue.get(value) ?? placeholder, placeholder, `${session}: one value was sent under two placeholders`);
        assert.equal(byPlaceholder.get(placeholder) ?? value, value, `${session}: one placeholder was sent for two values`);
        byValue.set(value, placeholder);
        byPlaceholder.set(placeholder, value);
      }
      assert.equal(byValue.size, 3);
      const stored = (await reader.load(session)).entries;
      assert.deepEqual(stored.map(([label, n, value]) => [`«${label}_${n}»`, value]).sort(), [...byPlaceholder].sort(), 'the database holds exactly what was sent');
      for (const r of replicas) {
        const vault = (await r.forAnswer(session))!;
        for (const [placeholder, value] of byPlaceholder) assert.equal(vault.restore(placeholder), value, `${session}: restored on both`);
      }
    }
    process.stdout.write(`# ${rewrites} requests rewritten after a conflict in 40 × 6 (${sameRewrites} of those carrying the shared value alone)\n`);
    assert.ok(rewrites > 0, 'the replicas never raced: the test proves nothing');
  });

  it('many requests of one session on both replicas at once: one number per value, one value per number', async () => {
    const replicas = [await replica(), await replica()];
    const pool = Array.from({ length: 16 }, (_, i) => `user${i}@x.io`);
    const sent: { placeholder: string; value: string }[] = [];
    let refusals = 0;
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const values = [pool[(i * 7) % 16]!, pool[(i * 5 + 3) % 16]!];
        for (let attempt = 0; ; attempt++) {
          const lease = await replicas[i % 2]!.forRequest('ses_many');
          const placeholders = email(lease, ...values).split(',');
          try {
            await lease.commit();
          } catch (error) {
            assert.ok(error instanceof AigovError && error.code === 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE', String(error));
            refusals++;
            assert.ok(attempt < 20, 'a request kept being refused');
            continue;
          }
          placeholders.forEach((placeholder, k) => sent.push({ placeholder, value: values[k]! }));
          return;
        }
      }),
    );
    const byValue = new Map<string, string>();
    const byPlaceholder = new Map<string, string>();
    for (const { placeholder, value } of sent) {
      assert.equal(byValue.get(value) ?? placeholder, placeholder, 'a value went out under two placeholders');
      assert.equal(byPlaceholder.get(placeholder) ?? value, value, 'a placeholder went out for two values');
      byValue.set(value, placeholder);
      byPlaceholder.set(placeholder, value);
    }
    assert.equal(byValue.size, 16);
    // Both replicas and the database agree with what was sent.
    const stored = await (await store()).load('ses_many');
    assert.equal(stored.entries.length, 16);
    for (const [label, n, value] of stored.entries) assert.equal(byPlaceholder.get(`«${label}_${n}»`), value);
    for (const r of replicas) {
      const vault = (await r.forAnswer('ses_many'))!;
      for (const [placeholder, value] of byPlaceholder) assert.equal(vault.restore(placeholder), value);
    }
    process.stdout.write(`# ${refusals} refusals (conflicts between the replicas) in 60 requests\n`);
  });

  it('writes to the same sessions in opposite orders never deadlock', async () => {
    const [s1, s2] = [await store(), await store()];
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, round) => {
        const entry = (who: string): [string, number, string][] => [['EMAIL', 1000 + round * 2 + (who === 'a' ? 0 : 1), `${who}${round}@x.io`]];
        const sessions = Array.from({ length: 6 }, (_, i) => `ses_order_${i}`);
        const forward = sessions.map((sessionId) => ({ sessionId, entries: entry('a') }));
        const backward = [...sessions].reverse().map((sessionId) => ({ sessionId, entries: entry('b') }));
        return Promise.all([s1.write(forward, sessions, round), s2.write(backward, [], round)]).catch((e: unknown) => failures.push(e));
      }),
    );
    assert.deepEqual(failures.map(String), []);
    const rows = await pgQuery(url, "SELECT count(*) AS n FROM pseudonym_entries WHERE session_id LIKE 'ses_order_%'");
    assert.equal(rows[0]?.['n'], 6 * 80);
  });

  it('a catch-up that fails refuses the request (no answer from a stale vault); then it recovers', async () => {
    const a = await replica({ statementTimeoutMs: 300 });
    const lease = await a.forRequest('ses_broken');
    email(lease, 'k@x.io');
    await lease.commit();
    // Another connection holds the table: the catch-up cannot read it within its statement timeout.
    const blocker = await connect(url);
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE pseudonym_entries IN ACCESS EXCLUSIVE MODE');
    try {
      const error = await rejection(a.forAnswer('ses_broken'));
      assert.equal(error.code, 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE');
      assert.ok(!error.message.includes('k@x.io'));
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    assert.equal((await a.forAnswer('ses_broken'))?.restore('«EMAIL_1»'), 'k@x.io');
  });

  it('a session purged and started anew on another replica is reloaded, never restored with the old values', async () => {
    let now = 1_000_000;
    const DAY = 24 * 60 * 60 * 1000;
    const a = await replica({ now: () => now, ttlMs: 30 * DAY });
    const b = await replica({ now: () => now, ttlMs: 30 * DAY });
    const first = await a.forRequest('ses_reborn');
    email(first, 'old@x.io');
    await first.commit();
    now += 40 * DAY;
    assert.ok((await b.purgeExpired()) >= 1);
    const fresh = await b.forRequest('ses_reborn');
    assert.equal(email(fresh, 'new@x.io'), '«EMAIL_1»');
    await fresh.commit();
    assert.equal((await a.forAnswer('ses_reborn'))?.restore('«EMAIL_1»'), 'new@x.io');
  });

  it('catch-ups of many sessions at once go in grouped queries; each session gets its own entries, a bad row fails its session alone', async () => {
    const a = await replica();
    // One connection for catch-ups: every load beyond the first waits and goes in a group.
    const b = new SessionVaults({ store: stores[stores.push(await openPostgresPseudonymStore({ url, key, poolSize: 2 })) - 1]!, purgeIntervalMs: 0 });
    vaultsOpen.push(b);
    const sessions = Array.from({ length: 40 }, (_, i) => `ses_group_${i}`);
    for (const s of sessions) {
      const lease = await a.forRequest(s);
      email(lease, `first.${s}@x.io`);
      await lease.commit();
      await b.forAnswer(s); // b holds every session
    }
    for (const s of sessions.filter((_, i) => i % 2 === 1)) {
      const lease = await a.forRequest(s);
      email(lease, `second.${s}@x.io`);
      await lease.commit();
    }
    // Session 7's new row is moved to another placeholder number: it cannot open.
    await pgQuery(url, "UPDATE pseudonym_entries SET n = 9 WHERE session_id = 'ses_group_7' AND n = 2");
    const results = await Promise.all(sessions.map((s) => b.forAnswer(s).then((v) => v, (e: unknown) => e)));
    results.forEach((result, i) => {
      const s = sessions[i]!;
      if (i === 7) {
        assert.ok(result instanceof AigovError && result.code === 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE', String(result));
        return;
      }
      assert.ok(result !== null && !(result instanceof Error), String(result));
      const vault = result as NonNullable<Awaited<ReturnType<SessionVaults['forAnswer']>>>;
      assert.equal(vault.restore('«EMAIL_1»'), `first.${s}@x.io`);
      assert.equal(vault.restore('«EMAIL_2»'), i % 2 === 1 ? `second.${s}@x.io` : '«EMAIL_2»');
    });
  });

  it('a row moved to another session or placeholder does not open', async () => {
    const s = await store();
    assert.deepEqual(await s.write([{ sessionId: 'ses_move', entries: [['EMAIL', 1, 'm@x.io']] }], [], 1), ['stored']);
    await pgQuery(url, "UPDATE pseudonym_entries SET n = 5 WHERE session_id = 'ses_move'");
    await assert.rejects(s.load('ses_move'), /failed authentication/);
  });
});
