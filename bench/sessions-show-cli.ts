/**
 * `aigov sessions show` of a 2,000-call agent session, as a user runs it: the built CLI, spawned,
 * against a dev gateway over HTTP, signed in through the device flow. The session is alice's: 50
 * Claude Code conversations of 40 turns built from the recorded request (test/support/agent-session.ts),
 * written into the gateway's own store before the runs.
 *
 *   npm run build && node bench/sessions-show-cli.ts [--runs 5]
 *
 * Prints the wall time of each run (process start to exit) and the median, for the text view and
 * for `--json` (which carries every request body whole).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { BIN, cliEnv, isBuilt, loginWithDeviceCode } from '../test/support/cli-process.ts';
import { agentSessionBodies } from '../test/support/agent-session.ts';
import { callRequest, callResult } from '../test/support/store-fixtures.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const SESSION = 'ses_bench_agent_2000';
if (!isBuilt('commands/sessions/show.js')) {
  console.error('run `npm run build` first');
  process.exit(2);
}

const home = await mkdtemp(path.join(os.tmpdir(), 'aigov-show-bench-'));
const gateway = await startDevGateway({ version: 'bench', port: 0, stateDir: path.join(home, 'gateway'), logLevel: 'silent' });
const env = cliEnv(home);
try {
  const login = await loginWithDeviceCode(gateway, 'alice', { env });
  if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
  // alice as the gateway knows her (subject, issuer), from `aigov status --json`.
  const status = JSON.parse(await run(['status', '--json'])) as { issuer: string; user: { subject: string; email: string; groups: string[] } };
  const principal = { subject: status.user.subject, email: status.user.email, groups: status.user.groups, issuer: status.issuer, clientId: 'aigov-cli' };

  const bodies: string[] = [];
  for (let c = 0; c < 50; c++) bodies.push(...agentSessionBodies('claude', 40, 100 + c));
  const t0 = 1_790_000_000_000;
  for (const [i, body] of bodies.entries()) {
    const id = `call_bench${String(i).padStart(5, '0')}`;
    await gateway.store.recordRequest(callRequest(id, { sessionId: SESSION, principal, requestBody: body, startedAt: t0 + i * 1000, endpoint: 'anthropic.messages', provider: 'anthropic', providerKind: 'anthropic', path: '/v1/messages', stream: true }));
    await gateway.store.finishCall(callResult(id, { endedAt: t0 + i * 1000 + 900 }));
  }
  const logical = bodies.reduce((sum, b) => sum + Buffer.byteLength(b), 0);
  console.log(`session ${SESSION}: ${bodies.length} calls, request bodies ${(logical / 1024 / 1024).toFixed(1)} MiB in all; load average ${os.loadavg()[0]!.toFixed(2)}, ${os.cpus().length} CPUs, Node ${process.version}`);

  for (const [label, args] of [
    ['aigov sessions show (text)', ['sessions', 'show', SESSION]],
    ['aigov sessions show --json', ['sessions', 'show', SESSION, '--json']],
  ] as const) {
    const times: number[] = [];
    let bytes = 0;
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      const out = await run([...args]);
      times.push(performance.now() - t);
      bytes = Buffer.byteLength(out);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`${label}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms (runs: ${times.map((t) => t.toFixed(0)).join(', ')} ms); output ${(bytes / 1024).toFixed(0)} KiB`);
  }
} finally {
  await gateway.close();
  await rm(home, { recursive: true, force: true });
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, COLUMNS: '120' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`aigov ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString('utf8').slice(0, 500)}`))));
  });
}
