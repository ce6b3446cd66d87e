/**
 * `match.tools.arguments` patterns read the arguments as the model meant them, not only as it
 * spelled them (src/core/policy/argument-views.ts): a block rule on `rm -rf` or on a secret's
 * shape is attacked with JSON `\u` escapes, escaped JSON inside a string value, base64, hex,
 * percent-encoding, fullwidth letters and zero-width characters, in function arguments and in a
 * custom tool's raw input — while allow rules still read only the arguments as written (no
 * decoded view may make a call look allowed), and `command` rules keep reading parsed values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPolicy } from '../src/config/load-policy.ts';
import { argumentViews } from '../src/core/policy/argument-views.ts';
import { evaluatePolicy, judgeToolCall, type ToolGate } from '../src/core/policy/index.ts';

function gateOf(rules: unknown[]): ToolGate {
  const policy = buildPolicy({ version: 1, rules }, 'p').compiled;
  const e = evaluatePolicy(policy, {
    principal: { subject: 'alice', email: null, groups: [], issuer: 'test', clientId: null },
    provider: 'openai',
    model: 'm',
    endpoint: 'openai.responses',
    request: { endpoint: 'openai.responses', model: 'm', stream: true, messages: [], tools: [], inputs: [], texts: [] },
  });
  assert.ok(e.toolGate);
  return e.toolGate;
}

const gate = gateOf([
  { id: 'no-rm-rf', match: { tools: { names: ['deploy', 'run_task'], arguments: ['rm -rf'] } }, action: 'block' },
  { id: 'no-json-rm', match: { tools: { names: ['deploy'], arguments: ['"script":"rm '] } }, action: 'block' },
  { id: 'no-aws-key', match: { tools: { arguments: ['AKIA[0-9A-Z]{16}'] } }, action: 'require_approval' },
]);
const decision = (name: string, args: string, g = gate): string => judgeToolCall(g, { name, arguments: args }).decision?.ruleId ?? 'pass';

/** A string's characters as JSON \u escapes. */
const uEscape = (s: string): string => [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const hex = (s: string): string => Buffer.from(s).toString('hex');
const pct = (s: string): string => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
// Built at run time: no secret-looking literal in the repository.
const AWS = ['AKIA', 'Q3EGRKXZ7WJ5N2MB'].join('');

describe('tools.arguments patterns read the decoded arguments', () => {
  const table: [string, string, string, string][] = [
    ['as written', 'deploy', JSON.stringify({ target: 'prod', script: 'rm -rf /srv' }), 'no-rm-rf'],
    ['\\u escapes', 'deploy', `{"target":"prod","note":"${uEscape('rm -rf')} /srv"}`, 'no-rm-rf'],
    ['\\u escapes in a pattern written against JSON', 'deploy', `{"${uEscape('script')}": "${uEscape('rm')} x"}`, 'no-json-rm'],
    ['spacing a JSON pattern did not expect', 'deploy', '{ "script" :  "rm x" }', 'no-json-rm'],
    ['escaped JSON inside a string value', 'deploy', JSON.stringify({ payload: `{"cmd":"${uEscape('rm -rf')} /"}` }), 'no-rm-rf'],
    ['base64 in a value', 'deploy', JSON.stringify({ blob: b64('cleanup: rm -rf /var/lib/app') }), 'no-rm-rf'],
    ['hex in a value', 'deploy', JSON.stringify({ blob: hex('then rm -rf /var/lib/app') }), 'no-rm-rf'],
    ['percent-encoding in a value', 'deploy', JSON.stringify({ url: `https://x.test/?run=${pct('rm -rf /')}` }), 'no-rm-rf'],
    ['fullwidth letters', 'deploy', JSON.stringify({ note: 'ｒｍ -rf /srv' }), 'no-rm-rf'],
    ['zero-width characters', 'deploy', JSON.stringify({ note: 'r\u200bm -r\u200cf /srv' }), 'no-rm-rf'],
    ['a custom tool\'s raw input, escaped', 'run_task', `step 1: ${uEscape('rm -rf')} /tmp/x`, 'no-rm-rf'],
    ['a secret in base64, any tool', 'http_post', JSON.stringify({ body: b64(`aws_access_key_id=${AWS}`) }), 'no-aws-key'],
    ['a secret \\u-escaped', 'http_post', `{"body":"${uEscape(AWS)}"}`, 'no-aws-key'],
    ['nothing to find', 'deploy', JSON.stringify({ target: 'prod', script: 'ls -la', blob: b64('just a friendly note here') }), 'pass'],
  ];
  for (const [what, name, args, expected] of table) {
    it(`${what} → ${expected}`, () => assert.equal(decision(name, args), expected));
  }

  it('the views: raw first, then canonical JSON, decoded values, one level of encoding', () => {
    const { views, incomplete } = argumentViews(`{"a":"${uEscape('hi')}","b":"${b64('hello there, friend')}"}`);
    assert.equal(incomplete, false);
    assert.equal(views[0], `{"a":"${uEscape('hi')}","b":"${b64('hello there, friend')}"}`);
    assert.ok(views.includes(`{"a":"hi","b":"${b64('hello there, friend')}"}`));
    assert.ok(views.some((v) => v.includes('hello there, friend')));
  });

  it('allow rules read the arguments as written only: an encoded view never makes a call look allowed', () => {
    const g = gateOf([
      { id: 'allow-dry-run', match: { tools: { names: ['deploy'], arguments: ['^\\{"mode":"dry-run"\\}$'] } }, action: 'allow' },
      { id: 'block-deploy', match: { tools: { names: ['deploy'] } }, action: 'block' },
    ]);
    assert.equal(decision('deploy', JSON.stringify({ mode: 'dry-run' }), g), 'allow-dry-run', 'allowed as written');
    assert.equal(decision('deploy', JSON.stringify({ mode: 'live', note: b64('{"mode":"dry-run"}') }), g), 'block-deploy');
    assert.equal(decision('deploy', `{"mode":"${uEscape('dry-run')}"}`, g), 'block-deploy', 'an escaped spelling is not the allowed one');
  });

  it('command rules already read parsed values: escapes in a Bash command do not hide rm -rf', () => {
    const g = gateOf([{ id: 'rm', match: { tools: { command: ['^rm -rf'] } }, action: 'block' }]);
    assert.equal(decision('Bash', `{"command":"${uEscape('rm -rf')} /"}`, g), 'rm');
  });
});
