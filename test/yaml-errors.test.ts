/**
 * YAML syntax errors in a policy file or the gateway config: the line named is where the mistake
 * is (an unclosed bracket or quote where it was opened, not the later line where the parser gave
 * up), the snippet around it is whole with a caret under the place, nothing shaped like a key is
 * echoed, and a bad policy reload on the dev gateway's terminal log reads as lines, not `\n`s.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { loadGatewayConfig } from '../src/config/load.ts';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { isAigovError } from '../src/core/errors.ts';
import { humanLogDestination } from '../src/gateway/human-log.ts';
import { openPolicyFile } from '../src/gateway/policy-file.ts';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'examples', 'policy.yaml'), 'utf8');

function policyError(text: string): string {
  try {
    parsePolicyText(text, '/p.yaml');
  } catch (error) {
    assert.ok(isAigovError(error) && error.code === 'AIGOV_E_POLICY_INVALID', String(error));
    return error.message;
  }
  assert.fail('the policy was accepted');
}

const RULES = ['version: 1', 'rules:', '  - id: a', '    match: { keywords: [x] }', '    action: block', '  - id: b', '    match: { keywords: [y', '    action: block', ''].join('\n');

describe('YAML syntax errors', () => {
  it('an unclosed [ and { are named on the line they were opened, with that line and the next one whole under a caret', () => {
    const message = policyError(RULES);
    assert.match(message, /- line 7, column 24: this \[ is never closed \(the YAML parser found no \] and gave up at line 8, column 5: Flow sequence in block collection must be sufficiently indented and end with a \]\)/);
    assert.match(message, /- line 7, column 12: this \{ is never closed/);
    assert.ok(
      message.includes(['      7 |     match: { keywords: [y', '        |                        ^', '      8 |     action: block'].join('\n')),
      `the snippet is whole, the caret under the [:\n${message}`,
    );
    assert.doesNotMatch(message, /line 8:/, 'not the line after the mistake');
    assert.doesNotMatch(message, /column 5:\n/, 'not cut after the location');
  });

  it('an unclosed quote is named where it opens, however far the parser read on (long spans keep their ends)', () => {
    const text = ['version: 1', 'rules:', '  - id: "a', '    action: block', '    reason: x', '    match: y', ''].join('\n');
    const message = policyError(text);
    assert.match(message, /- line 3, column 9: this " is never closed/);
    assert.ok(message.includes(['      3 |   - id: "a', '        |         ^', '        | …'].join('\n')), message);
  });

  it('other mistakes are named where the parser saw them, with the line before for context', () => {
    const duplicate = policyError('version: 1\nversion: 2\n');
    assert.ok(duplicate.includes(['  - line 2, column 1: Map keys must be unique', '      1 | version: 1', '      2 | version: 2', '        | ^'].join('\n')), duplicate);
    const tab = policyError('version: 1\nrules:\n\t- id: a\n');
    assert.ok(tab.includes(['  - line 3, column 1: Tabs are not allowed as indentation', '      2 | rules:', '      3 |  - id: a', '        | ^'].join('\n')), tab);
    assert.match(policyError('version: 1\nrules: [\n'), /- line 2, column 8: this \[ is never closed/);
  });

  it('a line shaped like a key is not echoed in the snippet', () => {
    const key = ['sk', 'proj', 'Zx81mQ0aLw9pR4tY7uI2oP5s'].join('-');
    const message = policyError(`version: 1\nrules:\n  - id: a\n    match: { keywords: [${key}, y\n    action: block\n`);
    assert.ok(!message.includes(key), message);
    assert.match(message, /4 \| {5}match: \{ keywords: \[\[redacted\], y\n/);
  });

  it('the gateway config reports its syntax errors the same way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigov-yaml-'));
    try {
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, 'listen:\n  port: 8787\nproviders: [\n  - name: openai\n');
      assert.throws(
        () => loadGatewayConfig(file),
        (error: unknown) => isAigovError(error) && error.code === 'AIGOV_E_CONFIG_INVALID' && /- line 3, column 12: this \[ is never closed/.test(error.message) && error.message.includes('      3 | providers: ['),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('whatever character is dropped from or added to the example policy, every line named exists and the message is whole', () => {
    const lineCount = EXAMPLE.split('\n').length;
    fc.assert(
      fc.property(fc.nat(EXAMPLE.length - 1), fc.constantFrom('', '[', '{', '"', "'", ':', '\t', '- '), (at, insert) => {
        const text = EXAMPLE.slice(0, at) + insert + EXAMPLE.slice(at + (insert === '' ? 1 : 0));
        let message: string;
        try {
          parsePolicyText(text, '/p.yaml');
          return;
        } catch (error) {
          if (!isAigovError(error)) throw error;
          message = error.message;
        }
        if (!/expected valid YAML/.test(message)) return; // valid YAML, refused by the schema instead
        for (const [, line] of message.matchAll(/- line (\d+), column \d+:/g)) assert.ok(Number(line) >= 1 && Number(line) <= lineCount + 1, message);
        assert.ok(/ {6}\d+ \| /.test(message), `a snippet:\n${message}`);
      }),
      { numRuns: 150 },
    );
  });
});

describe('a bad policy reload on the terminal log', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aigov-reload-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps the policy in force and logs the problems as lines with their snippet', () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'version: 1\nrules:\n  - { id: a, match: { keywords: [x] }, action: block }\n');
    let out = '';
    const logger = pino({ level: 'info' }, humanLogDestination({ write: (text: string) => void (out += text) }));
    const policy = openPolicyFile(file, { reload: false, logger });
    writeFileSync(file, RULES);
    assert.equal(policy.reload(), false);
    policy.close();
    assert.ok(!out.includes('\\n'), `no escaped newline in the log:\n${out}`);
    assert.match(out, /ERROR the changed policy file is invalid; keeping the policy in force {2}policy=\S+policy\.yaml\n {2}problem:\n {4}AIGOV_E_POLICY_INVALID: Invalid policy in /);
    assert.ok(out.includes(['          7 |     match: { keywords: [y', '            |                        ^'].join('\n')), out);
    assert.equal(policy.current().rules.length, 1, 'the old policy stays');
  });
});

describe('schema problems name the line that holds the key', () => {
  const problemsOf = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      return String((error as { params: { problems: unknown } }).params.problems);
    }
    assert.fail('expected the file to be refused');
  };

  it('policy: a wrong value at its own line, a missing key at its rule, with the rule id', () => {
    const text = [
      'version: 1', //                                 1
      'rules:', //                                     2
      '  - id: ok-rule', //                            3
      '    match: { keywords: [a] }', //               4
      '    action: block', //                          5
      '  - id: customer-data', //                      6
      '    match:', //                                 7
      '      detectors: [EMAIL_ADDRESS]', //           8
      '    action: maskify', //                        9
      '  - id: third', //                              10
      '    match: { keywords: [b] }', //               11
    ].join('\n');
    const problems = problemsOf(() => parsePolicyText(text, 'inline.yaml'));
    assert.match(problems, /^ {2}- line 9, rule "customer-data", rules\[1\]\.action: /m);
    assert.match(problems, /^ {2}- line 10, rule "third", rules\[2\]\.action: /m);
  });

  it('gateway config: the line of the key; a key missing at the top level has no line to name', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'aigov-lines-')), 'gateway.yaml');
    writeFileSync(file, 'listen:\n  port: "abc"\n');
    const problems = problemsOf(() => loadGatewayConfig(file));
    await rm(join(file, '..'), { recursive: true, force: true });
    assert.match(problems, /^ {2}- line 2, listen\.port: /m);
    assert.match(problems, /^ {2}- identity: /m);
  });
});
