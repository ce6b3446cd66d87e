/**
 * The recorded requests of real agents (test/fixtures/agents): Claude Code 2.1.337's
 * POST /v1/messages?beta=true and Codex 0.171's POST /v1/responses, byte for byte but for the
 * user's words, which a test replaces.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/* eslint-disable @typescript-eslint/no-explicit-any -- agents' wire JSON, read loosely */
export type Json = Record<string, any>;

interface Fixture {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'agents');
export const CLAUDE_CODE = JSON.parse(readFileSync(join(FIXTURES, 'claude-code-2.1.337-messages.json'), 'utf8')) as Fixture;
export const CODEX = JSON.parse(readFileSync(join(FIXTURES, 'codex-0.171.0-responses.json'), 'utf8')) as Fixture;

/** Claude Code's body with the user's typed text (the last text part of its first user message) replaced. */
export function claudeCodeBody(text: string, stream: boolean): Json {
  const body = JSON.parse(CLAUDE_CODE.body) as Json;
  const parts = body.messages[0].content as Json[];
  assert.equal(parts.at(-1)!.text, 'say hi', 'the fixture is what we think it is');
  parts.at(-1)!.text = text;
  body.stream = stream;
  return body;
}

/** Codex's body with the user's message replaced. */
export function codexBody(text: string, stream: boolean): Json {
  const body = JSON.parse(CODEX.body) as Json;
  const last = (body.input as Json[]).at(-1)!;
  assert.equal(last.content[0].text, 'say hi', 'the fixture is what we think it is');
  last.content[0].text = text;
  body.stream = stream;
  return body;
}
