/**
 * `aigov policy test` and `aigov policy validate` as a user runs them: the BUILT CLI as a
 * process (skipped when dist/ is not built). Exit codes carry the outcome; output never
 * carries a detected value.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { isBuilt, runCli, type CliResult } from './support/cli-process.ts';

const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'policy.yaml');
const BUILT = isBuilt('commands/policy/test.js', 'commands/policy/validate.js');

const seed = 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1';
const GITHUB = ['gh', 'p_', seed, base62Encode(crc32(seed), 6)].join('');
const GITLAB = ['gl', 'pat-', 'xK9mN2pQ4rS6tU8vW0yZ'].join('');
const SLACK = ['xo', 'xb-', '123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'].join('');

function aigov(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, AIGOV_POLICY: undefined, ...env } });
}

describe('aigov policy (built CLI)', { skip: BUILT ? false : 'dist/ is not built (npm run build)' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-policy-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('validate: exit 0 on the example, 78 with the key path on a bad file, 66 on a missing one', async () => {
    const ok = await aigov(['policy', 'validate', EXAMPLE]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid — 12 rules \(1 in shadow mode\), 1 custom detector, default action allow, uninspectable parts: documents require_approval, files require_approval, audio block \(others allowed\)/);
    const json = await aigov(['policy', 'validate', EXAMPLE, '--json']);
    assert.deepEqual((JSON.parse(json.stdout) as { uninspectable: unknown }).uninspectable, { images: 'allow', documents: 'require_approval', files: 'require_approval', audio: 'block' });

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, "version: 1\nrules:\n  - id: r1\n    match: { regex: ['(a{1,100}){1,100}b'] }\n    action: block\n");
    const invalid = await aigov(['policy', 'validate', bad]);
    assert.equal(invalid.code, 78);
    assert.ok(invalid.stderr.includes(bad), 'names the file');
    assert.match(invalid.stderr, /rules\[0\]\.match\.regex\[0\]\.pattern: pattern refused: it compiles to 20001 instructions, more than the limit of 10000/);
    assert.match(invalid.stderr, /code: AIGOV_E_POLICY_INVALID/);

    const missing = await aigov(['policy', 'validate', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 66);
    assert.match(missing.stderr, /AIGOV_E_POLICY_NOT_FOUND/);
  });

  it('test: exit 5 for a credential dump, with types and positions but never the values', async () => {
    const text = `GITHUB=${GITHUB}\nGITLAB=${GITLAB}\nSLACK=${SLACK}\n`;
    const r = await aigov(['policy', 'test', '--json', text], { AIGOV_POLICY: EXAMPLE });
    assert.equal(r.code, 5, r.stderr);
    for (const secret of [GITHUB, GITLAB, SLACK]) assert.ok(!r.stdout.includes(secret) && !r.stdout.includes(secret.slice(8, 24)), 'no value in the output');
    const report = JSON.parse(r.stdout);
    assert.equal(report.action, 'block');
    assert.equal(report.ruleId, 'block-credential-dumps');
    assert.deepEqual(
      report.detections.map((d: { type: string; start: number; end: number }) => [d.type, d.start, d.end]),
      [['GITHUB_TOKEN', 7, 7 + GITHUB.length], ['GITLAB_TOKEN', 8 + GITHUB.length + 7, 8 + GITHUB.length + 7 + GITLAB.length], ['SLACK_TOKEN', text.indexOf(SLACK), text.indexOf(SLACK) + SLACK.length]],
    );
    assert.equal(report.maskedText, 'GITHUB=[GITHUB_TOKEN]\nGITLAB=[GITLAB_TOKEN]\nSLACK=[SLACK_TOKEN]\n');
  });

  it('test: exit 3 with the masked text, 4 for approval, 0 for a plain prompt; @FILE and --as/--groups work', async () => {
    const masked = await aigov(['policy', 'test', '--policy', EXAMPLE, 'Mail jane.doe@example.com, card 4111 1111 1111 1111']);
    assert.equal(masked.code, 3, masked.stderr);
    assert.match(masked.stdout, /masked text\n {2}Mail «EMAIL_1», card \*{15}1111/);
    assert.match(masked.stdout, /EMAIL_ADDRESS +5-25 +confidence/);
    assert.ok(!masked.stdout.includes('jane.doe@example.com'));

    const file = join(dir, 'prompt.txt');
    await writeFile(file, '/* ACME CONFIDENTIAL */ int main() {}');
    const approval = await aigov(['policy', 'test', '--policy', EXAMPLE, `@${file}`]);
    assert.equal(approval.code, 4, approval.stderr);
    assert.match(approval.stdout, /action +require_approval — rule approve-proprietary-code/);

    const plain = await aigov(['policy', 'test', '--policy', EXAMPLE, '--as', 'bob@example.com', '--groups', 'eng,contractors', '--json', 'hello']);
    assert.equal(plain.code, 0, plain.stderr);
    const report = JSON.parse(plain.stdout);
    assert.deepEqual(report.decisions.map((d: { ruleId: string }) => d.ruleId), ['mask-pii-in-answers', 'log-contractor-traffic', 'default']);
  });

  it('test --response: masks an answer the way the gateway would', async () => {
    const r = await aigov(['policy', 'test', '--policy', EXAMPLE, '--response', '--json', 'Reach Jane at jane.doe@example.com']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(JSON.parse(r.stdout).maskedText, 'Reach Jane at [EMAIL]');
  });

  it('test: a bad policy exits 78 before evaluating anything', async () => {
    const bad = join(dir, 'bad2.yaml');
    await writeFile(bad, 'version: 2\n');
    const r = await aigov(['policy', 'test', '--policy', bad, 'hello']);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /version: expected version: 1/);
  });

  it('test --tool: judges an agent tool call; exit 5 blocked, 4 approval, 0 allowed, 64 on a usage error', async () => {
    const AGENT = join(import.meta.dirname, '..', 'examples', 'agent-policy.yaml');
    const blocked = await aigov(['policy', 'test', '--policy', AGENT, '--tool', 'Bash', '--input', '{"command":"sudo /bin/rm -r -f ~"}', '--work-tree', '/home/alice/proj']);
    assert.equal(blocked.code, 5, blocked.stderr);
    assert.match(blocked.stdout, /command {3}.*rm -fr ~/);
    assert.match(blocked.stdout, /action {6}block — rule block-rm-outside-work-tree/);
    const held = await aigov(['policy', 'test', '--policy', AGENT, '--tool', 'WebFetch', '--input', '{"url":"https://github.com@evil.example/x"}']);
    assert.equal(held.code, 4, held.stderr);
    assert.match(held.stdout, /url {7}https:\/\/evil\.example\/x/);
    const fine = await aigov(['policy', 'test', '--policy', AGENT, '--tool', 'Bash', '--command', 'ls -la', '--json']);
    assert.equal(fine.code, 0, fine.stderr);
    assert.equal((JSON.parse(fine.stdout) as { outcome: string }).outcome, 'allow');
    const usage = await aigov(['policy', 'test', '--policy', AGENT, '--tool', 'Bash']);
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /--tool needs --input/);
  });
});
