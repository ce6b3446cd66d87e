/**
 * `aigov sessions list` over a store of 100k recorded calls, end to end as a user feels it: the
 * BUILT CLI spawned as a process (`npm run build` first), its daemon warm, against a dev gateway
 * running in this process whose SQLite store is seeded through the store's own recordRequest /
 * finishCall (group commit, 64 in flight) with 100,000 calls in 5,000 sessions of 20 calls over
 * the last 30 days; alice owns a tenth of them, 49 other users the rest; one session in 20 has
 * a blocked call. Goal: ≤ 300 ms for `aigov sessions list` (median of N spawns).
 *
 * Also measured, for where the time goes: `node -e 0`, the same list through oclif
 * (`sessions:list`), as an auditor (every user; each read writes and commits an access-log row),
 * with filters, and the gateway's answer alone (GET /aigov/v1/sessions from this process).
 *
 *   node bench/sessions-list.ts [--runs N] [--calls N] [--docs]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyDecisionRecord } from '../src/store/recording-store.ts';
import { startDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { deviceLogin } from '../test/support/dev-login.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'run.js');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg('--runs', 15);
const CALLS = arg('--calls', 100_000);
const CALLS_PER_SESSION = 20;
const WRITE_DOCS = process.argv.includes('--docs');

if (!existsSync(join(ROOT, 'dist', 'cli', 'fast-sessions.js'))) {
  console.error('Build first: npm run build');
  process.exit(1);
}

const home = await mkdtemp(join(tmpdir(), 'aigov-bench-sessions-'));
const gateway = await startDevGateway({ version: 'bench', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent' });
const env = { PATH: process.env.PATH, HOME: home, AIGOV_CONFIG_DIR: join(home, 'config'), AIGOV_RUNTIME_DIR: join(home, 'run'), AIGOV_DEVICE_POLL_INTERVAL: '1' };

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Spawned asynchronously: the gateway answering the CLI runs on this process's event loop. */
async function timeSpawn(args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (c) => resolve({ code: c, stderr: err }));
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr}`);
  return ms;
}

async function seed(): Promise<number> {
  const store = gateway.store;
  const issuer = gateway.config.identity.issuer;
  const sessions = Math.ceil(CALLS / CALLS_PER_SESSION);
  const now = Date.now();
  const span = 30 * 86_400_000;
  const users = ['alice', ...Array.from({ length: 49 }, (_, i) => `user-${i}`)];
  const allow: PolicyDecisionRecord[] = [{ stage: 'request', action: 'allow', ruleId: null, reason: 'no rule matched', mode: 'enforce' }];
  const block: PolicyDecisionRecord[] = [{ stage: 'request', action: 'block', ruleId: 'no-secrets', reason: 'the prompt carries a secret', mode: 'enforce' }];
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CALLS) {
      const i = next++;
      const s = i % sessions;
      const k = Math.floor(i / sessions);
      const user = users[s % 10 === 0 ? 0 : 1 + (s % 49)]!;
      const startedAt = now - span + Math.floor((s / sessions) * span) + k * 1000;
      const blocked = s % 20 === 7 && k === CALLS_PER_SESSION - 1;
      await store.recordRequest({
        callId: `call-${i}`,
        sessionId: `ses-${s}`,
        principal: { subject: user, email: `${user}@aigov.dev`, groups: user === 'alice' ? ['developers'] : ['eng'], issuer, clientId: 'aigov-cli' },
        client: { userAgent: 'OpenAI/JS 5.1.0', remoteAddress: '127.0.0.1', sdk: 'openai-node 5.1.0' },
        provider: 'openai',
        providerKind: 'openai',
        endpoint: 'openai.chat.completions',
        method: 'POST',
        path: '/v1/chat/completions',
        model: i % 3 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
        stream: false,
        requestBody: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i}: ${'lorem ipsum '.repeat(30)}` }] }),
        decisions: blocked ? block : allow,
        startedAt,
      });
      void store.finishCall({
        callId: `call-${i}`,
        status: blocked ? 'blocked' : 'completed',
        httpStatus: blocked ? 403 : 200,
        responseBody: blocked ? null : JSON.stringify({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: `answer ${i}: ${'dolor sit amet '.repeat(15)}` } }] }),
        usage: { inputTokens: 60, outputTokens: 40, totalTokens: 100 },
        firstByteMs: 120,
        latencyMs: 480,
        errorCode: null,
        errorMessage: null,
        decisions: [],
        endedAt: startedAt + 480,
      });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await store.flush();
  return performance.now() - started;
}

async function login(user: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'login', '--profile', user, '--gateway', gateway.url, '--no-browser', '--insecure-storage'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let approved = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const code = /\b([A-Z0-9]{4}-[A-Z0-9]{4})\b/.exec(stderr)?.[1];
      if (code && !approved) {
        approved = true;
        void gateway.idp.approveDevice(code, user);
      }
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`login failed: ${stderr}`))));
  });
  await timeSpawn([BIN, 'daemon', 'start', '--profile', user]);
}

try {
  const seedMs = await seed();
  console.error(`seeded ${CALLS} calls in ${(seedMs / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 3000)); // let the store's idle checkpoint finish
  await login('alice');
  await login('carol');

  // The gateway's part alone: the API call from this process (token verified, query, JSON).
  const { accessToken } = await deviceLogin(gateway.idp, 'aigov-cli', 'alice', { resource: gateway.url });
  const apiTimes: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    const res = await fetch(`${gateway.url}/aigov/v1/sessions?limit=50`, { headers: { authorization: `Bearer ${accessToken}` } });
    const body = (await res.json()) as { sessions: unknown[] };
    if (res.status !== 200 || body.sessions.length !== 50) throw new Error(`unexpected API answer ${res.status}`);
    if (i >= 10) apiTimes.push(performance.now() - t);
  }

  // Worst case on the gateway: a filter nothing matches makes the query visit every session.
  const carolToken = (await deviceLogin(gateway.idp, 'aigov-cli', 'carol', { resource: gateway.url })).accessToken;
  const scanTimes: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    const res = await fetch(`${gateway.url}/aigov/v1/sessions?limit=50&action=denied`, { headers: { authorization: `Bearer ${carolToken}` } });
    const body = (await res.json()) as { sessions: unknown[] };
    if (res.status !== 200 || body.sessions.length !== 0) throw new Error(`unexpected API answer ${res.status}`);
    if (i >= 3) scanTimes.push(performance.now() - t);
  }

  // Round robin over the commands (after a warm-up of each), so that background load on the
  // machine, or the store's idle checkpoint after seeding, falls on all of them alike.
  const commands = {
    node: ['-e', '0'],
    list: [BIN, 'sessions', 'list', '--profile', 'alice'],
    listJson: [BIN, 'sessions', 'list', '--json', '--profile', 'alice'],
    auditor: [BIN, 'sessions', 'list', '--profile', 'carol'],
    filtered: [BIN, 'sessions', 'list', '--profile', 'carol', '--since', '7d', '--action', 'block', '--user', 'alice@aigov.dev'],
    oclif: [BIN, 'sessions:list', '--profile', 'alice'],
  } as const;
  type Name = keyof typeof commands;
  const names = Object.keys(commands) as Name[];
  const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  for (const n of names) await timeSpawn([...commands[n]]);
  for (let r = 0; r < RUNS; r++) for (const n of names) times[n].push(await timeSpawn([...commands[n]]));
  const { node, list, listJson, auditor, filtered, oclif } = Object.fromEntries(names.map((n) => [n, median(times[n])])) as Record<Name, number>;

  const rows: [string, number, string][] = [
    ['`node -e 0` (reference)', node, '—'],
    ['gateway answer alone: `GET /aigov/v1/sessions?limit=50` from the same process', median(apiTimes), '—'],
    ['gateway answer, auditor, a filter no session matches (`action=denied`: visits all sessions and their calls)', median(scanTimes), '—'],
    ['**`aigov sessions list`** (alice, 50 newest of her 500 sessions, table)', list, list <= 300 ? '≤ 300 ms: met' : '≤ 300 ms: **not met**'],
    ['`aigov sessions list --json`', listJson, '—'],
    ['`aigov sessions list` as an auditor (all users; access-log row committed per read)', auditor, '—'],
    ['`aigov sessions list --since 7d --action block --user alice@aigov.dev` (auditor)', filtered, '—'],
    ['`aigov sessions:list` (same list through oclif, for reference)', oclif, '—'],
  ];
  const table = ['| figure | median | goal |', '|---|---|---|', ...rows.map(([name, ms, goal]) => `| ${name} | ${ms.toFixed(1)} ms | ${goal} |`)].join('\n');
  const header =
    `Command: \`node bench/sessions-list.ts\` (after \`npm run build\`) — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs; ` +
    `${CALLS.toLocaleString('en-US')} recorded calls in ${Math.ceil(CALLS / CALLS_PER_SESSION).toLocaleString('en-US')} sessions (seeded in ${(seedMs / 1000).toFixed(1)} s through the store); ` +
    `median of ${RUNS} spawns each (round robin over the commands, after one warm-up of each), daemons warm; the gateway runs in the benchmark process (same 2 CPUs).`;
  console.log(`${header}\n\n${table}`);
  if (WRITE_DOCS) {
    const file = join(ROOT, 'docs', 'benchmarks.md');
    const notes =
      '`sessions list` skips oclif (bin/run.js → dist/cli/fast-sessions.js) and loads only the sessions client, zod and the daemon client; ' +
      'the list is a keyset query on `sessions_by_last_call` / `sessions_by_subject` (each call-level filter an EXISTS over `calls_by_session`), ' +
      'so a page costs the same whatever the number of calls, as long as the filter matches often enough to fill it; a filter that matches nothing visits every session (the worst case above). Most of the remaining time is Node start-up, module loading and the hop through the daemon for the token.';
    const section = `<!-- sessions:start -->\n## Sessions list\n\n${header}\n\n${table}\n\n${notes}\n<!-- sessions:end -->`;
    const doc = readFileSync(file, 'utf8');
    const re = /<!-- sessions:start -->[\s\S]*<!-- sessions:end -->/;
    writeFileSync(file, re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}\n`);
  }
} finally {
  for (const profile of ['alice', 'carol']) spawnSync(process.execPath, [BIN, 'daemon', 'stop', '--profile', profile], { env, stdio: 'ignore' });
  await gateway.close();
  await rm(home, { recursive: true, force: true });
}
