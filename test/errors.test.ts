import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AigovError, ERRORS, formatMessage } from '../src/core/errors.ts';

describe('error registry', () => {
  const docs = readFileSync('docs/errors.md', 'utf8');

  for (const [code, spec] of Object.entries(ERRORS)) {
    it(`${code} is documented and well-formed`, () => {
      assert.match(docs, new RegExp(`^## ${code}$`, 'm'), `docs/errors.md lacks a "## ${code}" section`);
      assert.match(code, /^AIGOV_E_[A-Z_]+$/);
      assert.ok(spec.status >= 400 && spec.status < 600);
      assert.ok(spec.exitCode > 0 && spec.exitCode < 128, "exit codes stay below the signal range (128+N)");
      assert.ok(spec.hint.length > 10, 'a hint says what to do');
    });
  }

  it('documents no code that does not exist', () => {
    const documented = [...docs.matchAll(/^## (AIGOV_E_\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(documented.sort(), Object.keys(ERRORS).sort());
  });

  it('fills templates and keeps unknown placeholders visible', () => {
    assert.equal(formatMessage('a {x} b {y}', { x: 1 }), 'a 1 b {y}');
    const error = new AigovError('AIGOV_E_BODY_TOO_LARGE', { limit: 1024 });
    assert.equal(error.message, 'The request body exceeds the gateway limit of 1024 bytes.');
    assert.equal(error.status, 413);
  });
});
