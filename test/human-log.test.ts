import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHumanLogLine } from '../src/gateway/human-log.ts';

test('a pino JSON line becomes one readable line: time, level, message, fields', () => {
  const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 10, 26, 1, 2, 3), service: 'aigov-gateway', msg: 'call', provider: 'openai', status: 'failed', httpStatus: 401, reason: 'bad token', extra: null });
  assert.equal(formatHumanLogLine(`${line}\n`), '01:02:03 WARN  call  provider=openai status=failed httpStatus=401 reason="bad token"\n');
});

test('anything that is not a JSON object passes through unchanged', () => {
  assert.equal(formatHumanLogLine('plain text\n'), 'plain text\n');
  assert.equal(formatHumanLogLine('[1,2]\n'), '[1,2]\n');
});

test('a value of several lines is laid out under the entry, indented, with its control characters escaped', () => {
  const problem = 'AIGOV_E_POLICY_INVALID: Invalid policy in /p.yaml:\n  - line 2: bad\n      2 | rules: [\n        |        ^\n';
  const line = JSON.stringify({ level: 50, time: Date.UTC(2026, 10, 26, 1, 2, 3), msg: 'the changed policy file is invalid', policy: '/p.yaml', problem: `${problem}\u001b[2J` });
  assert.equal(
    formatHumanLogLine(`${line}\n`),
    [
      '01:02:03 ERROR the changed policy file is invalid  policy=/p.yaml',
      '  problem:',
      '    AIGOV_E_POLICY_INVALID: Invalid policy in /p.yaml:',
      '      - line 2: bad',
      '          2 | rules: [',
      '            |        ^',
      '    \\u001b[2J',
      '',
    ].join('\n'),
  );
});
