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
