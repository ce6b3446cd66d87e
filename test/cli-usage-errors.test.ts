/**
 * What a user sees for each mistake on the command line, from the BUILT CLI as a process: the
 * message, the hint, the code and the exit code. Usage mistakes exit 64 and are worded as the
 * user's input (which flag, what was typed, an example) — never as an HTTP error or a gateway's.
 * Also: the gateway of a profile that never signed in, `status` with the gateway down, help
 * texts. No gateway runs here: the gateways profiles point at are loopback ports nobody listens on.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { normalizeGatewayUrl } from '../src/auth/gateway-url.ts';
import { closestCommand, editDistance } from '../src/cli/command-suggestion.ts';
import { isAigovError } from '../src/core/errors.ts';
import { openCliSettings } from '../src/config/cli-settings.ts';
import type { Discovery } from '../src/protocol/discovery.ts';
import { cliEnv, isBuilt, runCli, type CliResult } from './support/cli-process.ts';

const BUILT = isBuilt('commands/run.js', 'cli/command-not-found.js');

/** A loopback URL where nothing listens (a port just freed). */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** A profile as `aigov login` saves it, signed in to `gatewayUrl` (its refresh token is not needed here). */
function saveProfile(configDir: string, name: string, gatewayUrl: string): void {
  const discovery: Discovery = {
    schema_version: 1, version: 'test', gateway_url: gatewayUrl, issuer: `${gatewayUrl}/oidc`, cli_client_id: 'aigov-cli',
    scopes: ['openid'], resource: gatewayUrl, audience: gatewayUrl, required_scope: null, providers: [], dev: true,
  };
  openCliSettings(configDir).setProfile(name, {
    gatewayUrl, discovery, credentialStore: 'file', user: { subject: 'alice', email: 'alice@aigov.dev', groups: ['developers'] }, loggedInAt: Date.now(),
  });
}

/** The three lines of a coded CLI error. */
function codedError(result: CliResult): { message: string; hint: string; code: string } {
  const match = /^aigov: (.*)\n {2}hint: (.*)\n {2}code: (AIGOV_E_\w+)\n$/.exec(result.stderr);
  assert.ok(match, `not a coded error: ${JSON.stringify(result.stderr)}`);
  return { message: match[1]!, hint: match[2]!, code: match[3]! };
}

describe('command suggestions (pure)', () => {
  it('edit distance counts a swap of neighbours as one edit', () => {
    assert.deepEqual([editDistance('sesions', 'sessions'), editDistance('stauts', 'status'), editDistance('', 'run'), editDistance('abc', 'abc')], [1, 1, 3, 0]);
  });

  it('the closest command or topic, in the form typed, or null', () => {
    const ids = ['approvals', 'approvals:list', 'login', 'logout', 'run', 'sessions:list', 'sessions:show', 'sessions', 'status', 'audit:verify', 'audit'];
    const cases: [string[], string | null][] = [
      [['sesions', 'list'], 'sessions list'],
      [['SESSIONS', 'LST'], 'sessions list'],
      [['sessions', 'shwo', 'ses_1'], 'sessions show'],
      [['sessions', 'nothing-near'], 'sessions'],
      [['aprovals', 'lst'], 'approvals list'],
      [['aprovals'], 'approvals'],
      [['logn'], 'login'],
      [['rnu'], 'run'],
      [['sess\u0456ons', 'list'], 'sessions list'], // a Cyrillic і is one letter off, not a match
      [['audit', 'verfiy'], 'audit verify'],
      [['deploy'], null],
      [['--bogus'], null],
      [['x'.repeat(5000)], null],
    ];
    for (const [typed, want] of cases) assert.equal(closestCommand(typed, ids), want, typed.join(' '));
  });
});

describe('gateway URLs as typed (pure)', () => {
  it('a missing scheme is http for a loopback host and https for any other; the result is one normal form', () => {
    const cases: [string, string][] = [
      ['localhost:8787', 'http://localhost:8787'],
      ['LOCALHOST:8787/', 'http://localhost:8787'],
      ['127.0.0.1:8787', 'http://127.0.0.1:8787'],
      ['127.1:8787', 'http://127.0.0.1:8787'],
      ['[::1]:8787', 'http://[::1]:8787'],
      ['aigov.example.com', 'https://aigov.example.com'],
      [' aigov.example.com:8443/base/ ', 'https://aigov.example.com:8443/base'],
      // Names that only look local are not loopback: https, never plain http to them.
      ['localhost.example.com:8787', 'https://localhost.example.com:8787'],
      ['127.0.0.1.nip.io:8787', 'https://127.0.0.1.nip.io:8787'],
      ['HTTPS://Aigov.Example.com/', 'https://aigov.example.com'],
    ];
    for (const [typed, want] of cases) assert.equal(normalizeGatewayUrl(typed), want, typed);
  });

  it('what cannot be a gateway URL is AIGOV_E_BAD_FLAG naming the flag, never echoing a user name or password', () => {
    const refused = (typed: string, flag?: string) => {
      try {
        normalizeGatewayUrl(typed, flag);
      } catch (error) {
        assert.ok(isAigovError(error) && error.code === 'AIGOV_E_BAD_FLAG' && error.exitCode === 64, String(error));
        return error.message;
      }
      return assert.fail(`${typed} was accepted`);
    };
    assert.match(refused('http://gw.example.com'), /plain http is allowed only for loopback hosts/);
    assert.match(refused('http://localhost.example.com'), /plain http is allowed only for loopback hosts/);
    assert.match(refused('file:///etc/passwd'), /not file\.$/);
    assert.match(refused('javascript:alert(1)'), /it is not a URL/);
    assert.match(refused('https:gw.example.com'), /it is not a URL/);
    const tricked = refused('localhost:8787@evil.example.com');
    assert.match(tricked, /^--gateway "\*\*\*@evil\.example\.com" is not valid: a gateway URL carries no user name or password/);
    const secret = ['hunter', '2'].join('');
    assert.equal(refused(`https://bob:${secret}@gw.example.com`).includes(secret), false);
    assert.match(refused('ftp://gw.example.com', 'AIGOV_GATEWAY'), /^AIGOV_GATEWAY "ftp:\/\/gw\.example\.com" is not valid/);
  });
});

describe('usage mistakes, from the built CLI', { skip: BUILT ? false : 'run `npm run build` first', timeout: 120_000 }, () => {
  let home: string;
  let dead: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'aigov-usage-'));
    dead = await deadUrl();
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });
  /** A CLI with a HOME (and config dir) of its own, named `name`. */
  const envFor = (name: string, extra: NodeJS.ProcessEnv = {}) => cliEnv(join(home, name), extra);

  interface Case {
    readonly args: readonly string[];
    readonly code: string;
    readonly exit: number;
    readonly message: RegExp;
    readonly hint: RegExp;
  }
  const cases: Case[] = [
    // Typos: the closest command as it is typed; no oclif id (sesions:list), no prompt.
    { args: ['sesions', 'list'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /^There is no `aigov sesions list` command\.$/, hint: /^Did you mean "aigov sessions list"\? `aigov --help` lists the commands\.$/ },
    { args: ['sessions', 'lst', '--json'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /^There is no `aigov sessions lst` command\.$/, hint: /^Did you mean "aigov sessions list"\?/ },
    { args: ['sesions', 'show', 'ses_1'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /^There is no `aigov sesions show` command\.$/, hint: /^Did you mean "aigov sessions show"\?/ },
    { args: ['aprovals'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /`aigov aprovals`/, hint: /^Did you mean "aigov approvals"\?/ },
    { args: ['logn', '--gateway', 'x'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /`aigov logn`/, hint: /^Did you mean "aigov login"\?/ },
    { args: ['deploy'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /^There is no `aigov deploy` command\.$/, hint: /^`aigov --help` lists the commands\.$/ },
    { args: ['\u001b[31mred'], code: 'AIGOV_E_UNKNOWN_COMMAND', exit: 64, message: /^There is no `aigov \\u\{1b\}\[31mred` command\.$/, hint: /--help/ },
    // Flag values aigov parses itself: the flag, the value, what it takes, an example.
    { args: ['sessions', 'replay', 'ses_1', '--speed', '100'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--speed "100" is not valid: it takes a number from 0\.25 to 16 \(0\.5, 2 or 4x\)\.$/, hint: /^For example: `aigov sessions replay ID --speed 4`$/ },
    { args: ['sessions', 'replay', 'ses_1', '--speed', '\uff14'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--speed "\\u\{ff14\}" is not valid/, hint: /--speed 4/ },
    { args: ['sessions', 'list', '--since', 'yesterday'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--since "yesterday" is not valid: it takes a duration back from now \(90s, 30m, 2h, 7d, 2w\), an ISO date/, hint: /^For example: `aigov sessions list --since 24h`$/ },
    { args: ['sessions', 'list', '--json', '--until=2026-13-45'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--until "2026-13-45" is not valid/, hint: /aigov sessions list --until/ },
    // Checked before the database is looked for: the typo is what the user must fix first.
    { args: ['audit', 'verify', '--since', 'last week'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--since "last week" is not valid/, hint: /aigov audit verify --config gateway\.yaml --since 24h/ },
    // Gateway URLs: the user's input, named as such; a missing scheme is no mistake (see below).
    { args: ['login', '--gateway', 'ftp://gw.example.com'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--gateway "ftp:\/\/gw\.example\.com" is not valid: aigov gateways answer over http\(s\), not ftp\.$/, hint: /`aigov login --gateway https:\/\/aigov\.example\.com`, or `--gateway 127\.0\.0\.1:8787`/ },
    { args: ['login', '--gateway', 'http://gw.example.com'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--gateway "http:\/\/gw\.example\.com" is not valid: plain http is allowed only for loopback hosts/, hint: /For example/ },
    { args: ['login', '--gateway', 'localhost:99999'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--gateway "localhost:99999" is not valid: it is not a URL/, hint: /For example/ },
    { args: ['login', '--gateway', 'http:/127.0.0.1:8787'], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--gateway "http:\/127\.0\.0\.1:8787" is not valid: it is not a URL/, hint: /For example/ },
    { args: ['login', '--gateway', ''], code: 'AIGOV_E_BAD_FLAG', exit: 64, message: /^--gateway "" is not valid: it is empty/, hint: /For example/ },
    { args: ['login', '--profile', 'bob'], code: 'AIGOV_E_GATEWAY_REQUIRED', exit: 64, message: /^Which gateway should profile `bob` sign in to\? None was given, and no profile has signed in to one yet\.$/, hint: /aigov login --profile bob --gateway https:\/\/aigov\.example\.com/ },
  ];

  for (const c of cases) {
    it(`aigov ${c.args.map((a) => JSON.stringify(a)).join(' ')} → ${c.code} (${c.exit})`, async () => {
      const result = await runCli([...c.args], { env: envFor('table') });
      assert.equal(result.code, c.exit, result.stderr);
      assert.equal(result.stdout, '');
      const shown = codedError(result);
      assert.equal(shown.code, c.code);
      assert.match(shown.message, c.message);
      assert.match(shown.hint, c.hint);
      assert.doesNotMatch(result.stderr, /BAD_REQUEST|API reference|did not answer like|null/);
    });
  }

  it('a user name and password in --gateway are never printed', async () => {
    const secret = ['s3', 'cr3t-', 'pa55'].join('');
    const result = await runCli(['login', '--gateway', `https://alice:${secret}@gw.example.com`], { env: envFor('table') });
    assert.equal(result.code, 64);
    assert.equal(result.stderr.includes(secret), false);
    assert.equal(result.stderr.includes('alice'), false);
    assert.match(codedError(result).message, /^--gateway "https:\/\/\*\*\*@gw\.example\.com" is not valid: a gateway URL carries no user name or password/);
  });

  it('a gateway without a scheme: http for a loopback host — the error is then that nobody answers there', async () => {
    const port = new URL(dead).port;
    for (const typed of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}/`]) {
      const result = await runCli(['login', '--gateway', typed, '--no-browser', '--insecure-storage'], { env: envFor('table') });
      assert.equal(result.code, 69, result.stderr);
      const shown = codedError(result);
      assert.equal(shown.code, 'AIGOV_E_GATEWAY_UNREACHABLE');
      assert.match(shown.message, new RegExp(`^Cannot reach the aigov gateway at http://(localhost|127\\.0\\.0\\.1|\\[::1\\]):${port}: connection refused\\.$`));
    }
  });

  it("oclif's own checks of a command line exit 64 too, and name the flag and what it takes; so does a run with nothing to run", async () => {
    const limit = await runCli(['sessions', 'list', '--limit', '0'], { env: envFor('table') });
    assert.equal(limit.code, 64);
    assert.match(limit.stderr, /--limit[\s\S]*greater than or equal to 1/);
    const option = await runCli(['sessions', 'list', '--approval', 'maybe'], { env: envFor('table') });
    assert.equal(option.code, 64);
    assert.match(option.stderr, /--approval=maybe to be one of: pending, approved, denied,\s[\s\S]*expired/);
    const missing = await runCli(['sessions', 'show'], { env: envFor('table') });
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /Missing 1 required arg/);
    const unknown = await runCli(['status', '--bogus'], { env: envFor('table') });
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /Nonexistent flag: --bogus/);
    for (const args of [['run'], ['run', '--profile', 'work'], ['run', '--']]) {
      const nothing = await runCli(args, { env: envFor('table') });
      assert.equal(nothing.code, 64, args.join(' '));
      assert.equal(nothing.stderr, 'aigov: nothing to run.\n  hint: put the program and its arguments after --, e.g. `aigov run -- python3 script.py`.\n');
    }
  });

  it("login --profile bob takes the default profile's gateway and says which", async () => {
    const env = envFor('defaulting');
    saveProfile(env.AIGOV_CONFIG_DIR!, 'default', dead);
    const result = await runCli(['login', '--profile', 'bob', '--no-browser', '--insecure-storage'], { env });
    assert.match(result.stderr, new RegExp(`^Profile bob has no gateway yet: signing in to ${dead.replace(/\./g, '\\.')}, the gateway of profile default \\(--gateway URL picks another\\)\\.$`, 'm'));
    // Nobody listens there: the login stops at the gateway, as it would with --gateway given.
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, /code: AIGOV_E_GATEWAY_UNREACHABLE/);
  });

  it('status with the gateway down says so, and exits 69 (text and --json)', async () => {
    const env = envFor('down');
    saveProfile(env.AIGOV_CONFIG_DIR!, 'default', dead);
    const text = await runCli(['status'], { env });
    assert.equal(text.code, 69, text.stderr);
    assert.match(text.stdout, new RegExp(`^Gateway: +${dead.replace(/\./g, '\\.')} — unreachable: connection refused$`, 'm'));
    assert.match(text.stdout, /^Check that the gateway runs \(`aigov server --dev` starts a local one\)/m);
    const json = await runCli(['status', '--json'], { env });
    assert.equal(json.code, 69, json.stderr);
    const report = JSON.parse(json.stdout) as { gateway: string; gatewayReachable: boolean | null; gatewayProblem: string | null };
    assert.deepEqual([report.gateway, report.gatewayReachable, report.gatewayProblem], [dead, false, 'unreachable: connection refused']);
  });

  it('help: each topic has its own description; run shows `-- CMD`; `aigov help X` is `aigov X --help`', async () => {
    const root = await runCli(['--help'], { env: envFor('help') });
    assert.equal(root.code, 0);
    const topics = /^TOPICS\n([\s\S]*?)\n\n/m.exec(root.stdout)?.[1] ?? '';
    assert.match(topics, /^ {2}sessions +Recorded sessions: list, show, replay/m);
    assert.match(topics, /^ {2}approvals +Approve or deny held requests/m);
    assert.doesNotMatch(topics, /Export one session/, 'not the summary of its first command');
    const run = await runCli(['run', '--help'], { env: envFor('help') });
    assert.match(run.stdout, /^ {2}\$ aigov run \[--profile <value>\] -- CMD \[ARGS\.\.\.\]$/m);
    assert.match(run.stdout, /^ARGUMENTS\n {2}\[CMD\.\.\.\] +The program to run, after `--`/m);
    const viaHelp = await runCli(['help', 'sessions', 'list'], { env: envFor('help') });
    const viaFlag = await runCli(['sessions', 'list', '--help'], { env: envFor('help') });
    assert.equal(viaHelp.code, 0, viaHelp.stderr);
    assert.equal(viaHelp.stdout, viaFlag.stdout);
    const topic = await runCli(['sessions'], { env: envFor('help') });
    assert.match(topic.stdout, /^Recorded sessions: list, show, replay/, "a topic's own help starts with its description");
    const typo = await runCli(['help', 'sesions', 'list'], { env: envFor('help') });
    assert.equal(typo.code, 64);
    assert.match(codedError(typo).hint, /^Did you mean "aigov sessions list"\?/);
  });
});
