/**
 * How recordings grow with an agent session (issue 11 item 5), the store before and after
 * request bodies became chunks shared by the calls of a session.
 *
 *   git archive <commit before> src | tar -x -C /tmp/before   (+ node_modules symlink, package.json)
 *   node bench/recording-growth.ts [--compare /tmp/before/src] [--runs N]
 *
 * Sessions built from the recorded real requests (test/support/agent-session.ts): every call
 * resends the whole conversation, tools and instructions.
 * 1. Storage: a 200-turn Claude Code session and a 200-turn Codex session, recorded call by call
 *    (await recordRequest, finishCall) into a fresh store. Bytes the requests take in the
 *    database (pages of the calls table, body_chunks and its index, from SQLite's dbstat; and the
 *    bodies alone: chunk pages plus the calls' body columns), the whole file, and the distinct content (each distinct conversation element and top-level
 *    value once, cache_control markers aside). Also recordRequest latency per call (median of
 *    per-run p50/p99): the request waits for it before it is forwarded.
 * 2. `sessions show` of a 2,000-call session (50 Claude Code conversations of 40 turns, one
 *    after the other, in one session, ~180 KB per call like the runaway in the issue): the
 *    service the CLI runs, in this process — the store's read (reader thread), the API's view
 *    and JSON, then the CLI's side (JSON.parse, zod validation, the text view) — with shared
 *    bodies (what `aigov sessions show` asks for now) and with whole bodies (what it asked for
 *    before, and what --json asks for). Median of N runs.
 * Medians of --runs runs (default 3); prints markdown.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { RecordingStore, SessionDetailRecord } from '../src/store/recording-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { toCallView } from '../src/gateway/sessions-api.ts';
import { SessionDetailSchema, type SessionDetail } from '../src/protocol/sessions.ts';
import { formatSessionDetail } from '../src/cli/sessions-format.ts';
import { agentSessionBodies, distinctContentBytes, type AgentKind } from '../test/support/agent-session.ts';
import { callRequest, callResult } from '../test/support/store-fixtures.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const RUNS = Number(arg('--runs') ?? 3);
const COMPARE = arg('--compare');
const TURNS = 200;
const SHOW_CONVERSATIONS = 50;
const SHOW_TURNS = 40;
const SESSION = 'ses_01JF3Q9Z8K4M2N6P7R8S9T0V1W';

type Open = (options: { path: string }) => Promise<RecordingStore>;
const stores: { name: string; open: Open }[] = [{ name: 'chunks (now)', open: openSqliteStore }];
if (COMPARE !== undefined) {
  const before = (await import(path.resolve(COMPARE, 'store/sqlite/sqlite-store.ts'))) as { openSqliteStore: Open };
  stores.unshift({ name: 'whole bodies (before)', open: before.openSqliteStore });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigov-bench-growth-'));
let files = 0;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const kb = (bytes: number): string => `${(bytes / 1024).toLocaleString('en-US', { maximumFractionDigits: 0 })} KiB`;
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} MiB`;

/** Records `bodies` call by call; returns the file and recordRequest latencies (ms). */
async function record(open: Open, bodies: readonly string[], endpoint: 'anthropic.messages' | 'openai.responses'): Promise<{ file: string; latencies: number[] }> {
  const file = path.join(dir, `run-${++files}.db`);
  const store = await open({ path: file });
  const latencies: number[] = [];
  const provider = endpoint === 'anthropic.messages' ? { provider: 'anthropic', providerKind: 'anthropic' as const, path: '/v1/messages' } : { provider: 'openai', providerKind: 'openai' as const, path: '/v1/responses' };
  for (const [i, body] of bodies.entries()) {
    const id = `call_${String(i).padStart(5, '0')}`;
    const t = performance.now();
    await store.recordRequest(callRequest(id, { sessionId: SESSION, requestBody: body, startedAt: 1_760_000_000_000 + i * 1000, endpoint, stream: true, ...provider }));
    latencies.push(performance.now() - t);
    await store.finishCall(callResult(id, { endedAt: 1_760_000_000_000 + i * 1000 + 900 }));
  }
  await store.close();
  return { file, latencies };
}

/**
 * Bytes of the requests in the file: pages (and used payload) of the calls table (every column of
 * the call rows), body_chunks and its index; and of the bodies alone: the chunk table and index
 * pages plus the body columns of the call rows (request_body, request_parts).
 */
function requestBytes(file: string): { pages: number; payload: number; bodies: number; file: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const row = db.prepare("SELECT sum(pgsize) AS pages, sum(payload) AS payload FROM dbstat WHERE name IN ('calls', 'body_chunks', 'body_chunks_by_session')").get();
    const chunks = db.prepare("SELECT ifnull(sum(pgsize), 0) AS pages FROM dbstat WHERE name IN ('body_chunks', 'body_chunks_by_session')").get();
    const hasParts = db.prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'request_parts'").get() !== undefined;
    const columns = db.prepare(`SELECT sum(length(CAST(request_body AS BLOB))${hasParts ? ' + ifnull(length(request_parts), 0)' : ''}) AS n FROM calls`).get();
    return { pages: Number(row?.['pages'] ?? 0), payload: Number(row?.['payload'] ?? 0), bodies: Number(chunks?.['pages'] ?? 0) + Number(columns?.['n'] ?? 0), file: fs.statSync(file).size };
  } finally {
    db.close();
  }
}

const out: string[] = [];
out.push(`Command: \`node bench/recording-growth.ts${COMPARE === undefined ? '' : ` --compare ${COMPARE}`} --runs ${RUNS}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}.`);
out.push('');
out.push('| session | store | calls + chunks tables (pages / used) | request bodies alone | ÷ distinct content (bodies alone / calls + chunks pages) | whole file | recordRequest p50 / p99 |');
out.push('|---|---|---|---|---|---|---|');
for (const kind of ['claude', 'codex'] as AgentKind[]) {
  const bodies = agentSessionBodies(kind, TURNS);
  const logical = bodies.reduce((sum, b) => sum + Buffer.byteLength(b), 0);
  const distinct = distinctContentBytes(bodies);
  for (const { name, open } of stores) {
    const sizes: { pages: number; payload: number; bodies: number; file: number }[] = [];
    const p50: number[] = [];
    const p99: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const { file, latencies } = await record(open, bodies, kind === 'claude' ? 'anthropic.messages' : 'openai.responses');
      sizes.push(requestBytes(file));
      p50.push(pct(latencies, 50));
      p99.push(pct(latencies, 99));
      fs.rmSync(file, { force: true });
    }
    const pages = median(sizes.map((s) => s.pages));
    const payload = median(sizes.map((s) => s.payload));
    const whole = median(sizes.map((s) => s.file));
    const bodyBytes = median(sizes.map((s) => s.bodies));
    out.push(`| ${kind === 'claude' ? 'Claude Code' : 'Codex'}, ${TURNS} calls (bodies ${mb(logical)} in all; distinct content ${kb(distinct)}) | ${name} | ${kb(pages)} / ${kb(payload)} | ${kb(bodyBytes)} | **${(bodyBytes / distinct).toFixed(2)}×** / ${(pages / distinct).toFixed(2)}× | ${kb(whole)} | ${median(p50).toFixed(2)} / ${median(p99).toFixed(2)} ms |`);
    console.error(`storage ${kind} ${name} done`);
  }
}

// ── sessions show of a 2,000-call session ───────────────────────────────────────────────────

const showBodies: string[] = [];
for (let c = 0; c < SHOW_CONVERSATIONS; c++) showBodies.push(...agentSessionBodies('claude', SHOW_TURNS, 100 + c));
const showLogical = showBodies.reduce((sum, b) => sum + Buffer.byteLength(b), 0);

/** The service path of `aigov sessions show`: store read → API view → JSON → CLI parse, validate, format. */
async function showOnce(store: RecordingStore, shared: boolean): Promise<{ ms: number; wire: number; lines: number }> {
  const t = performance.now();
  const detail = (await store.getSessionDetail(SESSION, { sharedBodies: shared })) as SessionDetailRecord;
  const at = Date.now();
  const view: SessionDetail = {
    session: { id: detail.session.sessionId, user: { sub: detail.session.subject, email: detail.session.email }, started_at: new Date(detail.session.startedAt).toISOString(), last_call_at: new Date(detail.session.lastCallAt).toISOString(), call_count: detail.session.callCount },
    calls: detail.calls.map((call) => toCallView(call, detail.events[call.callId] ?? [], detail.approvals, at)),
    ...(detail.chunks === undefined ? {} : { body_chunks: Object.fromEntries([...detail.chunks].map(([id, c]) => [String(id), `${c.kind}${c.text}`])) }),
  };
  const json = JSON.stringify(view);
  const parsed = SessionDetailSchema.parse(JSON.parse(json));
  const text = formatSessionDetail(parsed, 120);
  return { ms: performance.now() - t, wire: Buffer.byteLength(json), lines: text.split('\n').length };
}

out.push('');
out.push(`\`sessions show\` of one session of ${showBodies.length.toLocaleString('en-US')} calls (${SHOW_CONVERSATIONS} Claude Code conversations of ${SHOW_TURNS} turns; request bodies ${mb(showLogical)} in all), the service the CLI runs, in-process: store read (reader thread), API view and JSON, CLI JSON.parse + zod + text view:`);
out.push('');
out.push('| store | bodies | time (median) | answer size | text view lines | database file |');
out.push('|---|---|---|---|---|---|');
for (const { name, open } of stores) {
  const { file } = await record(open, showBodies, 'anthropic.messages');
  const store = await open({ path: file });
  const modes: boolean[] = name.startsWith('chunks') ? [true, false] : [false];
  for (const shared of modes) {
    const times: number[] = [];
    let last = { ms: 0, wire: 0, lines: 0 };
    await showOnce(store, shared); // warm-up
    for (let r = 0; r < RUNS; r++) {
      last = await showOnce(store, shared);
      times.push(last.ms);
    }
    out.push(`| ${name} | ${shared ? 'shared (`aigov sessions show`)' : 'whole (`--json`; before: always)'} | ${median(times).toFixed(0)} ms | ${mb(last.wire)} | ${last.lines.toLocaleString('en-US')} | ${mb(fs.statSync(file).size)} |`);
    console.error(`show ${name} shared=${shared} done`);
  }
  await store.close();
  fs.rmSync(file, { force: true });
}

fs.rmSync(dir, { recursive: true, force: true });
console.log(out.join('\n'));
