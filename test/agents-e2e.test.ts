/**
 * The real agents through aigov, offline, as a user runs them: Claude Code and Codex CLI (the npm
 * releases pinned in package.json) started by the built CLI with `aigov run -- …` against the
 * dev gateway, nothing else configured — no provider flags, no config files of theirs.
 * Telemetry and update checks are off; both talk only to the loopback daemon.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevGateway, type RunningDevGateway } from '../src/gateway/dev/dev-gateway.ts';
import { cliEnv, isBuilt, loginWithDeviceCode, runCli } from './support/cli-process.ts';

const BIN_DIR = join(import.meta.dirname, '..', 'node_modules', '.bin');
const CLAUDE = join(BIN_DIR, 'claude');
const CODEX = join(BIN_DIR, 'codex');
const BUILT = isBuilt('commands/run.js');
const skip = !BUILT ? 'run `npm run build` first' : !existsSync(CLAUDE) || !existsSync(CODEX) ? 'the agents are dev dependencies: run `npm ci`' : false;

/** What Claude Code and Codex need to stay offline and quiet (README "Governing coding agents"). */
const AGENT_POLICY = join(import.meta.dirname, '..', 'examples', 'agent-policy.yaml');
/** A key the SECRETS detectors know, in the file an agent is asked to print. */
const AWS_KEY = 'AKIAZ7VQX3MLP2RT4KWB';

const QUIET = { DISABLE_TELEMETRY: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1', DISABLE_ERROR_REPORTING: '1', NO_COLOR: '1' };

let gateway: RunningDevGateway;
let home: string;
let work: string;
let env: NodeJS.ProcessEnv;
/** A directory outside the work tree (in HOME) that a blocked `rm -rf` must leave alone. */
let victim: string;

describe('coding agents through aigov run', { skip, timeout: 360_000 }, () => {
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-agents-'));
    gateway = await startDevGateway({ version: 'test', port: 0, stateDir: join(home, 'gateway'), logLevel: 'silent', policyFile: AGENT_POLICY });
    env = cliEnv(home, QUIET);
    const login = await loginWithDeviceCode(gateway, 'alice', { env });
    assert.equal(login.code, 0, login.stderr);
    // A project to work in, as a user has: a git work tree (Codex asks for one).
    work = join(home, 'project');
    mkdirSync(work);
    execFileSync('git', ['init', '-q'], { cwd: work });
    writeFileSync(join(work, 'deploy-notes.txt'), `staging access\naws_access_key_id = ${AWS_KEY}\n`);
    victim = join(home, 'outside-the-work-tree');
    mkdirSync(victim);
    writeFileSync(join(victim, 'keep.txt'), 'still here\n');
  });
  after(async () => {
    await runCli(['daemon', 'stop'], { env });
    await gateway.close();
    await rm(home, { recursive: true, force: true });
  });

  it('claude -p with its default model and tools exits 0 with the dev model\'s answer, recorded', async () => {
    const result = await runCli(['run', '--', CLAUDE, '-p', 'say hi'], { env, cwd: work });
    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /aigov dev model/);
    const { sessions } = await gateway.store.querySessions({}, { limit: 10, cursor: null });
    const calls = (await Promise.all(sessions.map((session) => gateway.store.listCalls(session.sessionId)))).flat();
    assert.ok(calls.some((call) => call.endpoint === 'anthropic.messages' && call.status === 'completed'), 'the Messages call is on record');
  });

  it('codex exec with no provider flags exits 0 with the dev model\'s answer', async () => {
    const result = await runCli(['run', '--', CODEX, 'exec', 'say hi'], { env, cwd: work });
    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /aigov dev model/);
    assert.doesNotMatch(result.stderr, /Reconnecting|WebSocket/i, 'no WebSocket attempts, no retries');
  });

  describe('under examples/agent-policy.yaml', () => {
    const agents: [string, (prompt: string) => string[]][] = [
      ['claude', (prompt) => [CLAUDE, '-p', prompt]],
      ['codex', (prompt) => [CODEX, 'exec', prompt]],
    ];
    const tool = (name: string): string => (name === 'claude' ? 'Bash' : 'exec');

    for (const [name, argv] of agents) {
      it(`${name}: a scripted rm -rf outside the work tree is blocked; the agent reads why and exits 0; nothing is deleted`, async () => {
        // `~/…`, as an agent writes it (the HOME of these runs is a temp dir, and the example allows /tmp scratch files).
        const result = await runCli(['run', '--', ...argv(`run \`rm -rf ~/outside-the-work-tree\` with ${tool(name)}`)], { env, cwd: work });
        assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
        assert.match(result.stdout + result.stderr, /aigov blocked/);
        assert.match(result.stdout + result.stderr, /block-rm-outside-work-tree/);
        assert.ok(existsSync(join(victim, 'keep.txt')), 'the directory outside the work tree is still there');
      });

      it(`${name}: an AWS key in a command's output reaches the model masked`, async () => {
        const result = await runCli(['run', '--', ...argv(`run \`cat deploy-notes.txt\` with ${tool(name)}`)], { env, cwd: work });
        assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
        // The dev model quotes the tool result it received: the key was masked on its way.
        assert.match(result.stdout, /The tool returned: ".*staging access/s);
        const quoted = /The tool returned: "([^"]*)"/s.exec(result.stdout)?.[1] ?? '';
        assert.ok(!quoted.includes(AWS_KEY), `the model saw: ${quoted}`);
        assert.match(quoted, /aws_access_key_id = \S+/);
      });
    }
  });
});
