/**
 * A rule whose approver groups no user has holds requests nobody can decide (issue 13: the
 * example policies named `security`, which no dev user had). Where the users are known — the dev
 * IdP's — the example policies agree with them, and any other policy gets a warning from
 * `policy validate --dev` and from the dev gateway's log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { loadPolicy } from '../src/config/load-policy.ts';
import { approverGroupsNobodyHas } from '../src/core/policy/index.ts';
import { DEV_GROUPS, DEV_USERS } from '../src/gateway/dev/dev-users.ts';
import { openPolicyFile } from '../src/gateway/policy-file.ts';
import { isBuilt, runCli } from './support/cli-process.ts';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'aigov-approver-groups-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const POLICY = `
version: 1
approval: { approvers: [secops], timeout: 5m }
uninspectable: { documents: require_approval, approval: { approvers: [reviewers], timeout: 5m } }
rules:
  - { id: codename, match: { keywords: [NIGHTJAR] }, action: require_approval }
  - id: legal-review
    match: { keywords: [merger] }
    action: require_approval
    approval: { approvers: [security, lawyers], required: 2, timeout: 5m }
  - { id: no-cards, match: { detectors: [CREDIT_CARD] }, action: block }
`;
const file = join(dir, 'policy.yaml');
writeFileSync(file, POLICY);

describe('approver groups against the known users', () => {
  it('the example policies name only groups the dev users have, and every such rule can be decided by someone else than alice', () => {
    for (const example of ['policy.yaml', 'agent-policy.yaml']) {
      const { document } = loadPolicy(join(ROOT, 'examples', example));
      assert.deepEqual(approverGroupsNobodyHas(document, DEV_GROUPS), [], example);
      const approvers = document.rules.filter((rule) => rule.action === 'require_approval').map((rule) => rule.approval ?? document.approval);
      if (Object.values(document.uninspectable).includes('require_approval')) approvers.push(document.uninspectable.approval ?? document.approval);
      assert.ok(approvers.length > 0, `${example} holds something`);
      for (const spec of approvers) {
        const deciders = DEV_USERS.filter((user) => user.id !== 'alice' && user.groups.some((group) => spec?.approvers.includes(group)));
        assert.ok(deciders.length >= (spec?.required ?? 1), `${example}: ${spec?.approvers.join(', ')} needs ${spec?.required} deciders`);
      }
    }
  });

  it('finds the default approval and each rule naming a group nobody has, and nothing else', () => {
    assert.deepEqual(approverGroupsNobodyHas(loadPolicy(file).document, DEV_GROUPS), [
      { ruleId: null, group: 'secops' },
      { ruleId: 'legal-review', group: 'lawyers' },
      { ruleId: 'uninspectable.approval', group: 'reviewers' },
    ]);
  });

  it('the gateway warns in its log when it loads such a policy, where the users are known', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const policy = openPolicyFile(file, { reload: false, logger: pino(sink), knownGroups: DEV_GROUPS });
    policy.close();
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    assert.deepEqual(
      warnings.map((w) => w.msg),
      [
        `the default approval names approver group "secops", which no user has (groups: ${DEV_GROUPS.join(', ')}): its held requests can only expire`,
        `rule legal-review names approver group "lawyers", which no user has (groups: ${DEV_GROUPS.join(', ')}): its held requests can only expire`,
        `uninspectable.approval names approver group "reviewers", which no user has (groups: ${DEV_GROUPS.join(', ')}): its held requests can only expire`,
      ],
    );
    const quiet: string[] = [];
    openPolicyFile(file, { reload: false, logger: pino(new Writable({ write: (c: Buffer, _e, done) => (quiet.push(c.toString()), done()) })) }).close();
    assert.ok(quiet.every((l) => !l.includes('no user has')), 'a real IdP: groups unknown, nothing to say');
  });

  it('policy validate --dev warns on stderr and still exits 0; without --dev it says nothing of groups', { skip: !isBuilt('commands/policy/validate.js') && 'run `npm run build` first' }, async () => {
    const env = { PATH: process.env.PATH, HOME: dir };
    const dev = await runCli(['policy', 'validate', file, '--dev'], { env });
    assert.equal(dev.code, 0, dev.stderr);
    assert.match(dev.stderr, /^warning: the default approval names approver group "secops", which no user has/m);
    assert.match(dev.stderr, /^warning: rule legal-review names approver group "lawyers"/m);
    assert.match(dev.stdout, /valid — 3 rules/);
    const plain = await runCli(['policy', 'validate', file], { env });
    assert.equal(plain.code, 0);
    assert.equal(plain.stderr, '');
  });
});
