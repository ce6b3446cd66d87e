/**
 * Scaffolding shared by the SQLite store tests and benches: per-case temp dirs under one root
 * removed after the file's tests, stores closed after them, call records with realistic
 * defaults (each caller overrides what its case is about), and direct access to a database file
 * as someone holding the file would have it (tamper, query).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before } from 'node:test';
import type { Principal } from '../../src/core/events.ts';
import type { CallRequestRecord, CallResultRecord } from '../../src/store/recording-store.ts';
import type { AuditVerifyReport } from '../../src/store/sqlite/audit-verify.ts';
import { openSqliteStore, type SqliteRecordingStore, type SqliteStoreOptions } from '../../src/store/sqlite/sqlite-store.ts';

/** Marker placed in the default prompt; it must never show up in an error message or a report. */
export const SECRET_PROMPT = 'sk-SECRET-PROMPT-4242';

export interface TempDirs {
  /** A new empty directory `case-N` under the file's temp root. */
  readonly freshDir: () => string;
  /** `aigov.db` inside a new `freshDir()`; the file itself does not exist yet. */
  readonly freshFile: () => string;
}

/** Registers hooks that make a temp root (`prefix` + random) before the file's tests and remove it after them. */
export function useTempDirs(prefix: string): TempDirs {
  let root = '';
  let counter = 0;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });
  const freshDir = (): string => {
    const dir = path.join(root, `case-${++counter}`);
    fs.mkdirSync(dir);
    return dir;
  };
  return { freshDir, freshFile: () => path.join(freshDir(), 'aigov.db') };
}

export type OpenStore = (options: Partial<SqliteStoreOptions> & { path: string }) => Promise<SqliteRecordingStore>;

/** An `openSqliteStore` whose stores are all closed (errors ignored) after the file's tests. */
export function useStoreOpener(): OpenStore {
  const opened: SqliteRecordingStore[] = [];
  after(async () => {
    for (const store of opened) await store.close().catch(() => {});
  });
  return async (options) => {
    const store = await openSqliteStore(options);
    opened.push(store);
    return store;
  };
}

/** A chat-completions request body with one user message. */
export function chatBody(content: string, model = 'gpt-4o-mini'): string {
  return JSON.stringify({ model, messages: [{ role: 'user', content }] });
}

/** alice of group eng, signed in through the test IdP with the CLI's client id. */
export function principal(overrides: Partial<Principal> = {}): Principal {
  return { subject: 'alice', email: 'alice@example.test', groups: ['eng'], issuer: 'https://idp.example.test', clientId: 'aigov-cli', ...overrides };
}

/** A streamed, allowed gpt-4o-mini chat completion by alice in `sess-1`, whose prompt is SECRET_PROMPT. */
export function callRequest(callId: string, overrides: Partial<CallRequestRecord> = {}): CallRequestRecord {
  return {
    callId,
    sessionId: 'sess-1',
    principal: principal(),
    client: { userAgent: 'OpenAI/JS 5.1.0', remoteAddress: '127.0.0.1', sdk: 'openai-node 5.1.0' },
    provider: 'openai',
    providerKind: 'openai',
    endpoint: 'openai.chat.completions',
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    stream: true,
    requestBody: chatBody(SECRET_PROMPT),
    decisions: [{ stage: 'request', action: 'allow', ruleId: null, reason: 'no rule matched', mode: 'enforce' }],
    startedAt: 1_700_000_000_000,
    ...overrides,
  };
}

/** A completed call's result (12 + 7 tokens, first byte at 120 ms, 850 ms in all, no decisions). */
export function callResult(callId: string, overrides: Partial<CallResultRecord> = {}): CallResultRecord {
  return {
    callId,
    status: 'completed',
    httpStatus: 200,
    responseBody: null,
    usage: { inputTokens: 12, outputTokens: 7, totalTokens: 19 },
    firstByteMs: 120,
    latencyMs: 850,
    errorCode: null,
    errorMessage: null,
    decisions: [],
    endedAt: 1_700_000_000_850,
    ...overrides,
  };
}

/** Runs one write statement directly on the database file, as an attacker with file access would; it must change a row. */
export function tamper(file: string, sql: string, ...params: (string | number)[]): void {
  const db = new DatabaseSync(file);
  try {
    const changes = db.prepare(sql).run(...params).changes;
    assert.ok(Number(changes) > 0, `the tampering statement changed nothing: ${sql}`);
  } finally {
    db.close();
  }
}

/** Reads rows directly from the database file over a read-only connection. */
export function query(file: string, sql: string, ...params: (string | number)[]): Record<string, unknown>[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

/** The verification failed with `expected` (fields left out are not checked), and its detail does not quote `secret`. */
export function assertAuditBroken(
  report: AuditVerifyReport,
  expected: { problem: string; seq?: number | null; kind?: string; ref?: string | null },
  secret: string,
): void {
  assert.equal(report.ok, false, 'verification should fail');
  const p = report.problem;
  assert.ok(p !== null);
  assert.equal(p.problem, expected.problem, p.detail);
  if (expected.seq !== undefined) assert.equal(p.seq, expected.seq, p.detail);
  if (expected.kind !== undefined) assert.equal(p.kind, expected.kind, p.detail);
  if (expected.ref !== undefined) assert.equal(p.ref, expected.ref, p.detail);
  assert.ok(!p.detail.includes(secret), 'a problem never quotes record contents');
}
