/**
 * Durable pseudonym vaults: a real gateway (SQLite in a temp dir, the official OpenAI SDK as the
 * client, a replaying upstream that records what it receives) is stopped and a new one started
 * on the same database and key. Placeholders issued before the restart are restored in answers
 * after it, a value keeps its placeholder, the database never holds a value in clear, a wrong key
 * is refused at startup without touching the vault, and a failing vault store refuses requests.
 * Below the gateway: the vault's core operations, the SQLite store under two "processes", the
 * LRU bound and the TTL purge.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { pino } from 'pino';
import { buildGatewayConfig } from '../src/config/load.ts';
import type { GatewayConfig } from '../src/config/schema.ts';
import { AigovError } from '../src/core/errors.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { ensureDevPseudonymKey } from '../src/gateway/dev/dev-pseudonym-key.ts';
import { SessionVaults, type VaultLease } from '../src/gateway/session-vaults.ts';
import { bindServer, startGateway, type RunningGateway } from '../src/gateway/start-gateway.ts';
import { openSqlitePseudonymStore } from '../src/store/sqlite/sqlite-pseudonym-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { rejection } from './support/aigov-assert.ts';
import { startHarness, type Harness } from './support/gateway-harness.ts';
import type { ReceivedRequest, Transcript } from './support/replay-upstream.ts';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('hex');
const JANE = 'jane.doe@example.com';
const BOB = 'bob.smith@example.org';
const CAROL = 'carol.white@example.net';

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
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 1760433151,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    }),
  };
}

/** The user text the upstream received in a chat request. */
function sentText(request: ReceivedRequest | undefined): string {
  assert.ok(request, 'the upstream received the request');
  const body = JSON.parse(request.body) as { messages: { content: string }[] };
  return body.messages.map((m) => m.content).join('\n');
}

/** Every byte SQLite may have written for the database: the file, its WAL and shared memory. */
function databaseBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`, `${file}-shm`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

function hexKey(base64: string): string {
  return Buffer.from(base64, 'base64').toString('hex');
}

/** A gateway on the harness's port, IdP and database, with the given vault key (stands for a restarted process). */
async function startAgain(h: Harness, key: string | null): Promise<RunningGateway> {
  const config: GatewayConfig = { ...h.gateway.config, pseudonyms: { key, ttlDays: 30 } };
  const bound = await bindServer(config);
  try {
    return await startGateway(config, { version: 'test', mounts: [{ prefix: '/oidc', handle: (req, res) => h.idp.handle(req, res) }] }, bound);
  } catch (error) {
    await new Promise((resolve) => bound.server.close(resolve));
    throw error;
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'aigov-vault-'));
}

describe('durable pseudonym vaults through the gateway', () => {
  let h: Harness;
  let policyDir: string;
  let answer = 'Noted.';
  const SESSION = 'ses_durable_vault_1';
  let restarted: RunningGateway | null = null;

  before(async () => {
    policyDir = tempDir();
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    h = await startHarness({ policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: KEY_A });
    h.upstream.route('POST', '/v1/chat/completions', () => chatAnswer(answer));
  });
  after(async () => {
    await restarted?.close();
    await h.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  const client = (): OpenAI => new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': SESSION } });
  const ask = async (content: string): Promise<string> => {
    const completion = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
    return completion.choices[0]?.message.content ?? '';
  };

  it('restores placeholders issued before a restart, keeps a value\'s placeholder, and never stores a value in clear', async () => {
    answer = 'Noted.';
    assert.equal(await ask(`Please write to ${JANE} and ${BOB} about the invoice.`), 'Noted.');
    assert.equal(sentText(h.upstream.received.at(-1)), 'Please write to «EMAIL_1» and «EMAIL_2» about the invoice.');

    // The vault rows exist, sealed: no byte of the database, WAL or shm holds either address.
    await h.gateway.store.flush();
    const dbFile = join(h.dir, 'aigov.db');
    const peek = new DatabaseSync(dbFile, { readOnly: true });
    const rows = peek.prepare('SELECT label, n, length(sealed) AS size FROM pseudonym_entries WHERE session_id = ? ORDER BY n').all(SESSION);
    peek.close();
    assert.deepEqual(rows.map((r) => [r['label'], r['n']]), [['EMAIL', 1], ['EMAIL', 2]]);
    const bytes = databaseBytes(dbFile);
    for (const value of [JANE, BOB, 'jane.doe', 'bob.smith']) assert.equal(bytes.indexOf(value), -1, 'a vault value is in the database in clear');

    await h.gateway.close();
    restarted = await startAgain(h, hexKey(KEY_A));

    // (a) An answer naming the earlier placeholders, to a request that names no address at all.
    answer = 'I will write to «EMAIL_1» and cc « email_2 ».';
    assert.equal(await ask('Go ahead with what I asked.'), `I will write to ${JANE} and cc ${BOB}.`);
    assert.equal(sentText(h.upstream.received.at(-1)), 'Go ahead with what I asked.');

    // (b) The same value keeps its placeholder; a new one continues the numbering.
    answer = 'Done: «EMAIL_3», «EMAIL_1».';
    assert.equal(await ask(`Also cc ${CAROL}, and ${JANE} again.`), `Done: ${CAROL}, ${JANE}.`);
    assert.equal(sentText(h.upstream.received.at(-1)), 'Also cc «EMAIL_3», and «EMAIL_1» again.');

    // Another session's placeholders are its own.
    const other = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses_durable_vault_2' } });
    answer = '«EMAIL_1» «EMAIL_2»';
    const completion = await other.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${CAROL}` }] });
    assert.equal(completion.choices[0]?.message.content, `${CAROL} «EMAIL_2»`);
  });

  it('refuses to start with another key, naming both key ids and never a key; the vault is untouched and the right key still restores it', async () => {
    await restarted?.close();
    restarted = null;
    const dbFile = join(h.dir, 'aigov.db');
    const count = (): number => {
      const db = new DatabaseSync(dbFile, { readOnly: true });
      const n = Number(db.prepare('SELECT count(*) AS n FROM pseudonym_entries').get()?.['n']);
      db.close();
      return n;
    };
    const before = count();
    const error = await rejection(startAgain(h, KEY_B));
    assert.equal(error.code, 'AIGOV_E_PSEUDONYM_KEY_MISMATCH');
    assert.match(error.message, /sealed with another key \(key id [0-9a-f]{16}\); the configured pseudonyms\.key has key id [0-9a-f]{16}/);
    for (const secret of [KEY_A, KEY_B, hexKey(KEY_A)]) assert.ok(!error.message.includes(secret) && !error.hint.includes(secret));
    assert.equal(count(), before, 'nothing was deleted');

    restarted = await startAgain(h, hexKey(KEY_A));
    answer = 'Writing to «EMAIL_2».';
    assert.equal(await ask('And the second one?'), `Writing to ${BOB}.`);
  });
});

describe('a failing vault store refuses the request (fail closed)', () => {
  let h: Harness;
  let policyDir: string;
  const SESSION = 'ses_vault_broken';

  before(async () => {
    policyDir = tempDir();
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    h = await startHarness({ policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: KEY_B });
    h.upstream.route('POST', '/v1/chat/completions', () => chatAnswer('«EMAIL_1»'));
  });
  after(async () => {
    await h.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  const ask = (content: string) =>
    new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': SESSION } }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content }],
    });

  it('a new value cannot be stored: 503 AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE, nothing sent upstream, no value in the error', async () => {
    const ok = await ask(`mail ${JANE}`);
    assert.equal(ok.choices[0]?.message.content, JANE);
    const sent = h.upstream.received.length;

    const saboteur = new DatabaseSync(join(h.dir, 'aigov.db'));
    saboteur.exec('ALTER TABLE pseudonym_entries RENAME TO pseudonym_entries_gone');
    try {
      const error = await ask(`mail ${BOB}`).catch((e: unknown) => e);
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, 503);
      assert.equal(error.code, 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE');
      assert.ok(!JSON.stringify(error.error).includes(BOB) && !error.message.includes(BOB));
      assert.equal(h.upstream.received.length, sent, 'nothing went upstream');

      // A value whose placeholder is already stored needs no write: that request goes through.
      const again = await ask(`mail ${JANE} again`);
      assert.equal(again.choices[0]?.message.content, JANE);
      assert.equal(h.upstream.received.length, sent + 1);
    } finally {
      saboteur.exec('ALTER TABLE pseudonym_entries_gone RENAME TO pseudonym_entries');
    }

    // A lock held by another connection: the write is retried on a timer (the gateway keeps
    // serving meanwhile), and refused once the retry time is up; then it recovers.
    saboteur.exec('BEGIN IMMEDIATE');
    try {
      const started = Date.now();
      const pending = ask(`mail ${CAROL}`).catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const health = await fetch(`${h.url}/healthz`);
      assert.equal(health.status, 200);
      assert.ok(Date.now() - started < 1500, 'the event loop is not held while the vault waits for the lock');
      const error = await pending;
      assert.ok(error instanceof OpenAI.APIError && error.status === 503 && error.code === 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE', String(error));
      assert.ok(Date.now() - started >= 1500, 'refused only after retrying');
    } finally {
      saboteur.exec('ROLLBACK');
      saboteur.close();
    }
    const recovered = await ask(`mail ${CAROL}`);
    assert.equal(recovered.choices[0]?.message.content, JANE, 'EMAIL_1 is still jane; carol got a later number');
    assert.equal(sentText(h.upstream.received.at(-1)), 'mail «EMAIL_2»', 'the refused attempts left no gap and no number behind');
  });
});

describe('concurrent requests of one session', () => {
  let h: Harness;
  let policyDir: string;

  before(async () => {
    policyDir = tempDir();
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    h = await startHarness({ policyFile: join(policyDir, 'policy.yaml'), pseudonymKey: KEY_A });
    h.upstream.route('POST', '/v1/chat/completions', () => chatAnswer('ok'), { headersDelayMs: 5 });
  });
  after(async () => {
    await h.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  it('never gives one number to two values or two numbers to one value', async () => {
    const pool = Array.from({ length: 12 }, (_, i) => `user${i}@example.com`);
    const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0, defaultHeaders: { 'x-aigov-session': 'ses_concurrent' } });
    const prompts = Array.from({ length: 40 }, (_, i) => [pool[(i * 7) % 12]!, pool[(i * 5 + 3) % 12]!, pool[(i * 11 + 1) % 12]!]);
    await Promise.all(prompts.map((emails, i) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `#${i}: ${emails.join(' | ')}` }] })));
    const byValue = new Map<string, string>();
    const byPlaceholder = new Map<string, string>();
    for (const received of h.upstream.received) {
      const m = /^#(\d+): (.*)$/.exec(sentText(received));
      assert.ok(m, 'the prompt arrived in its shape');
      const emails = prompts[Number(m[1])]!;
      m[2]!.split(' | ').forEach((placeholder, i) => {
        const email = emails[i]!;
        assert.equal(byValue.get(email) ?? placeholder, placeholder, `${email} got two placeholders`);
        assert.equal(byPlaceholder.get(placeholder) ?? email, email, `${placeholder} stands for two values`);
        byValue.set(email, placeholder);
        byPlaceholder.set(placeholder, email);
      });
    }
    assert.equal(h.upstream.received.length, prompts.length);
    assert.equal(byValue.size, 12);
    assert.equal(byPlaceholder.size, 12);
    assert.deepEqual([...byPlaceholder.keys()].sort(), pool.map((_, i) => `«EMAIL_${i + 1}»`).sort());
  });
});

describe('without a key', () => {
  it('keeps vaults in memory and warns once at startup how to set the key', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const policyDir = tempDir();
    writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
    const h = await startHarness({ policyFile: join(policyDir, 'policy.yaml'), logger: pino({ level: 'warn' }, sink) });
    try {
      h.upstream.route('POST', '/v1/chat/completions', () => chatAnswer('«EMAIL_1»'));
      const client = new OpenAI({ baseURL: `${h.url}/openai/v1`, apiKey: h.token, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${JANE}` }] });
      assert.equal(completion.choices[0]?.message.content, JANE);
      const warnings = lines.filter((l) => l.includes('pseudonyms.key is not set'));
      assert.equal(warnings.length, 1, lines.join('\n'));
      assert.match(warnings[0]!, /openssl rand -base64 32/);
      const db = new DatabaseSync(join(h.dir, 'aigov.db'), { readOnly: true });
      assert.equal(db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'pseudonym_entries'").get(), undefined, 'no vault table without a key');
      db.close();
    } finally {
      await h.close();
      rmSync(policyDir, { recursive: true, force: true });
    }
  });
});

describe('pseudonyms.key in the configuration', () => {
  const base = {
    identity: { issuer: 'https://idp.example.com', audience: 'https://gw.example.com', cli_client_id: 'aigov-cli' },
    providers: [{ name: 'openai', kind: 'openai', base_url: 'https://api.openai.com/v1' }],
  };

  it('accepts 32 bytes as base64, base64url or hex, by reference; refuses anything else naming the key path, never the value', () => {
    const bytes = randomBytes(32);
    for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex').toUpperCase()]) {
      const config = buildGatewayConfig({ ...base, pseudonyms: { key: '${VAULT_KEY}' } }, 'gw.yaml', { env: { VAULT_KEY: text } });
      assert.equal(config.pseudonyms.key, bytes.toString('hex'));
      assert.equal(config.pseudonyms.ttlDays, 30);
    }
    assert.equal(buildGatewayConfig(base, 'gw.yaml').pseudonyms.key, null);
    for (const bad of ['too-short', randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), `${'z'.repeat(64)}`]) {
      const error = (() => {
        try {
          buildGatewayConfig({ ...base, pseudonyms: { key: { env: 'VAULT_KEY' } } }, 'gw.yaml', { env: { VAULT_KEY: bad } });
        } catch (e) {
          return e;
        }
        return null;
      })();
      assert.ok(error instanceof AigovError && error.code === 'AIGOV_E_CONFIG_INVALID', String(error));
      assert.match(error.message, /pseudonyms\.key: expected 32 random bytes as base64/);
      assert.ok(!error.message.includes(bad));
    }
    assert.throws(() => buildGatewayConfig({ ...base, pseudonyms: { key: '${NOPE}' } }, 'gw.yaml', { env: {} }), /pseudonyms\.key.*NOPE is not set/);
    assert.throws(() => buildGatewayConfig({ ...base, pseudonyms: { ttl_days: 0 } }, 'gw.yaml'), /pseudonyms\.ttl_days/);
  });

  it('aigov server --dev generates its key once, 0600, and the dev config reads it', () => {
    const dir = tempDir();
    try {
      const file = ensureDevPseudonymKey(dir);
      const first = readFileSync(file, 'utf8');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(ensureDevPseudonymKey(dir), file);
      assert.equal(readFileSync(file, 'utf8'), first, 'kept, not regenerated');
      const config = buildGatewayConfig({ ...base, pseudonyms: { key: { file } } }, join(dir, 'dev'));
      assert.equal(config.pseudonyms.key, Buffer.from(first.trim(), 'base64').toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PseudonymVault: entries, truncate, merge', () => {
  it('truncate takes back the last issued numbers; merge learns entries and refuses contradictions', () => {
    const vault = new PseudonymVault();
    vault.placeholderFor('EMAIL_ADDRESS', 'a@x.io');
    vault.placeholderFor('PHONE_NUMBER', '555');
    vault.placeholderFor('EMAIL_ADDRESS', 'b@x.io');
    assert.deepEqual(vault.entries(1), [['PHONE', 1, '555'], ['EMAIL', 2, 'b@x.io']]);
    vault.truncate(1);
    assert.equal(vault.size, 1);
    assert.equal(vault.restore('«EMAIL_2» «PHONE_1»'), '«EMAIL_2» «PHONE_1»');
    assert.equal(vault.placeholderFor('EMAIL_ADDRESS', 'c@x.io'), '«EMAIL_2»', 'the number is issued again');
    assert.equal(vault.placeholderFor('PHONE_NUMBER', '556'), '«PHONE_1»');

    assert.equal(vault.merge([['EMAIL', 1, 'a@x.io'], ['EMAIL', 7, 'd@x.io']]), 1);
    assert.equal(vault.placeholderFor('EMAIL_ADDRESS', 'e@x.io'), '«EMAIL_8»', 'numbering continues after the highest learned');
    assert.throws(() => vault.merge([['EMAIL', 1, 'z@x.io']]), /duplicate placeholder EMAIL_1/);
    assert.throws(() => vault.merge([['EMAIL', 9, 'a@x.io']]), /duplicate value \(already EMAIL_1/);
    assert.throws(() => vault.merge([['email', 9, 'q']]), /malformed/);
    for (const message of ['z@x.io', 'a@x.io']) assert.ok(!String((() => { try { vault.merge([['EMAIL', 1, message]]); } catch (e) { return e; } })()).includes(message));
    assert.deepEqual(PseudonymVault.fromJSON(JSON.parse(JSON.stringify(vault))).entries(), vault.entries());
  });
});

describe('SQLite pseudonym store', () => {
  let dir: string;
  let file: string;
  const key = randomBytes(32);

  before(async () => {
    dir = tempDir();
    file = join(dir, 'aigov.db');
    // The recording store creates and migrates the file, as in the gateway.
    await (await openSqliteStore({ path: file })).close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('two processes on one file agree on every placeholder: the loser is refused, reloads, and the retry agrees', async () => {
    const a = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
    const b = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
    const email = (lease: VaultLease, ...values: string[]): string => lease.issue(() => values.map((v) => lease.vault.placeholderFor('EMAIL_ADDRESS', v)).join());
    try {
      const la = await a.forRequest('ses_two');
      const lb = await b.forRequest('ses_two'); // loaded now: empty, and stale from the next line on
      assert.equal(email(la, 'x@x.io'), '«EMAIL_1»');
      await la.commit();
      // b gives EMAIL_1 to y: the store refuses, the request waiting on it is refused, b reloads.
      assert.equal(email(lb, 'y@x.io'), '«EMAIL_1»');
      assert.equal((await rejection(lb.commit())).code, 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE');
      assert.equal(lb.vault.restore('«EMAIL_1»'), 'x@x.io', "b learned a's entry and took back its own");
      assert.equal(email(lb, 'y@x.io', 'x@x.io'), '«EMAIL_2»,«EMAIL_1»');
      await lb.commit();
      // a is stale now: z gets EMAIL_2 in a, refused; after the reload y is EMAIL_2 for a too.
      assert.equal(email(la, 'z@x.io'), '«EMAIL_2»');
      await rejection(la.commit());
      assert.equal(email(la, 'z@x.io', 'y@x.io'), '«EMAIL_3»,«EMAIL_2»');
      await la.commit();
      const fresh = openSqlitePseudonymStore({ location: file, key });
      assert.deepEqual((await fresh.load('ses_two')).entries, [['EMAIL', 1, 'x@x.io'], ['EMAIL', 2, 'y@x.io'], ['EMAIL', 3, 'z@x.io']]);
      await fresh.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two processes on one file: the same value under the same number is no conflict; a request given a taken number is rewritten with the next one and stored (commit with rewriteAgain)', async () => {
    const a = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
    const b = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
    const email = (lease: VaultLease, ...values: string[]): string => lease.issue(() => values.map((v) => lease.vault.placeholderFor('EMAIL_ADDRESS', v)).join());
    try {
      const [la, lb] = [await a.forRequest('ses_agree'), await b.forRequest('ses_agree')];
      assert.equal(email(la, 'x@x.io'), '«EMAIL_1»');
      assert.equal(email(lb, 'x@x.io'), '«EMAIL_1»');
      await la.commit();
      await lb.commit(); // stored as is already: not refused
      const lb2 = await b.forRequest('ses_agree');
      const la2 = await a.forRequest('ses_agree');
      assert.equal(email(la2, 'y@x.io'), '«EMAIL_2»');
      await la2.commit();
      let sent = email(lb2, 'z@x.io');
      assert.equal(sent, '«EMAIL_2»');
      let rewrites = 0;
      await lb2.commit(() => {
        rewrites++;
        sent = email(lb2, 'z@x.io');
      });
      assert.deepEqual([rewrites, sent], [1, '«EMAIL_3»']);
      const fresh = openSqlitePseudonymStore({ location: file, key });
      assert.deepEqual((await fresh.load('ses_agree')).entries, [['EMAIL', 1, 'x@x.io'], ['EMAIL', 2, 'y@x.io'], ['EMAIL', 3, 'z@x.io']]);
      await fresh.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a request that uses a placeholder another request issued waits for it to be stored; a failed write refuses both and takes the number back', async () => {
    const vaults = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), purgeIntervalMs: 0 });
    const saboteur = new DatabaseSync(file);
    try {
      const first = await vaults.forRequest('ses_wait');
      assert.equal(first.issue(() => first.vault.placeholderFor('EMAIL_ADDRESS', 'w@x.io')), '«EMAIL_1»');
      const second = await vaults.forRequest('ses_wait');
      assert.equal(second.issue(() => second.vault.placeholderFor('EMAIL_ADDRESS', 'w@x.io')), '«EMAIL_1»', 'issued nothing new');
      const commits = [first.commit(), second.commit()];
      saboteur.exec('ALTER TABLE pseudonym_entries RENAME TO pseudonym_entries_gone'); // before the write runs
      for (const c of commits) assert.equal((await rejection(c)).code, 'AIGOV_E_PSEUDONYM_VAULT_UNAVAILABLE');
      assert.equal(first.vault.size, 0, 'taken back');
      saboteur.exec('ALTER TABLE pseudonym_entries_gone RENAME TO pseudonym_entries');
      const third = await vaults.forRequest('ses_wait');
      assert.equal(third.issue(() => third.vault.placeholderFor('EMAIL_ADDRESS', 'v@x.io')), '«EMAIL_1»');
      await third.commit();
    } finally {
      saboteur.close();
      await vaults.close();
    }
  });

  it('a row moved to another session or placeholder does not open', async () => {
    const store = openSqlitePseudonymStore({ location: file, key });
    try {
      assert.deepEqual(await store.write([{ sessionId: 'ses_move', entries: [['EMAIL', 1, 'm@x.io']] }], [], 1), ['stored']);
      const db = new DatabaseSync(file);
      db.exec("UPDATE pseudonym_entries SET n = 5 WHERE session_id = 'ses_move'");
      db.close();
      await assert.rejects(store.load('ses_move'), /failed authentication/);
    } finally {
      await store.close();
    }
  });

  it('memory holds at most maxEntries; an evicted session reloads with the same placeholders', async () => {
    const vaults = new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), maxEntries: 20, purgeIntervalMs: 0 });
    try {
      for (let s = 0; s < 30; s++) {
        const lease = await vaults.forRequest(`ses_lru_${s}`);
        lease.issue(() => [1, 2, 3].map((i) => lease.vault.placeholderFor('EMAIL_ADDRESS', `u${i}.s${s}@x.io`)));
        await lease.commit();
        assert.ok(vaults.cached.entries + vaults.cached.sessions <= 20, JSON.stringify(vaults.cached));
      }
      assert.equal((await vaults.forAnswer('ses_lru_0'))?.restore('«EMAIL_2»'), 'u2.s0@x.io');
      const lease = await vaults.forRequest('ses_lru_1');
      assert.equal(lease.issue(() => lease.vault.placeholderFor('EMAIL_ADDRESS', 'u3.s1@x.io')), '«EMAIL_3»');
      assert.equal(await vaults.forAnswer('ses_lru_never'), null);
    } finally {
      await vaults.close();
    }
  });

  it('vaults unused for the TTL are purged; used ones stay', async () => {
    let now = 1_000_000;
    const DAY = 24 * 60 * 60 * 1000;
    const open = () => new SessionVaults({ store: openSqlitePseudonymStore({ location: file, key }), ttlMs: 30 * DAY, purgeIntervalMs: 0, now: () => now });
    const first = open();
    for (const s of ['ses_old', 'ses_kept']) {
      const lease = await first.forRequest(s);
      lease.issue(() => lease.vault.placeholderFor('EMAIL_ADDRESS', `${s}@x.io`));
      await lease.commit();
    }
    await first.close();
    now += 20 * DAY;
    const second = open();
    assert.ok(await second.forAnswer('ses_kept'), 'restoring counts as use');
    now += 20 * DAY; // ses_old unused for 40 days, ses_kept for 20
    assert.ok((await second.purgeExpired()) >= 1);
    assert.equal(await second.forAnswer('ses_old'), null, 'purged from the store and from memory');
    await second.close();
    const third = open();
    assert.equal(await third.forAnswer('ses_old'), null);
    assert.equal((await third.forAnswer('ses_kept'))?.restore('«EMAIL_1»'), 'ses_kept@x.io');
    await third.close();
  });
});
