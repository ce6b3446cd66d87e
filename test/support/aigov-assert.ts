/** Test assertions for aigov's coded errors. */
import assert from 'node:assert/strict';
import { AigovError } from '../../src/core/errors.ts';

/** Awaits a promise that must reject with an AigovError, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<AigovError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AigovError, `expected an AigovError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}
