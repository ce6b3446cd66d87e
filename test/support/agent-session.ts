/**
 * Request bodies of a realistic coding-agent session, built on the recorded real requests in
 * test/fixtures/agents/: each turn resends the whole conversation, tools and instructions, as
 * Claude Code and Codex do. Deterministic (seeded). For the recording-growth bench and the store
 * tests.
 *
 * - Claude Code (POST /v1/messages): the fixture's body with `messages` grown by one assistant
 *   message (text + a tool_use of Bash, Read, Edit or Grep) and one user message (its
 *   tool_result) per turn; `cache_control` sits on the last block of the last message only, so
 *   the previous last message changes each turn (as the real agent does).
 * - Codex (POST /v1/responses): the fixture's body with `input` grown per turn by a reasoning
 *   item (encrypted content), a `custom_tool_call` of `exec` (JavaScript calling
 *   tools.exec_command) and its `custom_tool_call_output`.
 * Tool outputs are text of 150 B to 12 KB (file listings, source, test runs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from './seeded-random.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'agents');

export type AgentKind = 'claude' | 'codex';

export function fixtureBody(kind: AgentKind): Record<string, unknown> {
  const file = kind === 'claude' ? 'claude-code-2.1.337-messages.json' : 'codex-0.171.0-responses.json';
  const recorded = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')) as { body: string };
  return JSON.parse(recorded.body) as Record<string, unknown>;
}

const WORDS = ['const', 'return', 'await', 'function', 'import', 'export', 'if', 'else', 'for', 'of', 'new', 'this', 'value', 'result', 'error', 'store', 'session', 'call', 'body', 'chunk', 'test', 'assert', 'equal', 'path', 'file'];

function toolOutput(random: () => number, turn: number): string {
  const size = Math.floor(150 + random() ** 2 * 12_000);
  const lines: string[] = [];
  let length = 0;
  for (let n = 1; length < size; n++) {
    const words = Array.from({ length: 3 + Math.floor(random() * 9) }, () => WORDS[Math.floor(random() * WORDS.length)]);
    const line = `${String(n).padStart(4)}\t${'  '.repeat(Math.floor(random() * 4))}${words.join(' ')}; // turn ${turn}`;
    lines.push(line);
    length += line.length + 1;
  }
  return lines.join('\n');
}

const COMMANDS = ['ls -la src/store', 'npm test -- test/store-sqlite.test.ts', 'git diff --stat', 'grep -rn "request_body" src', 'cat package.json', 'node bench/store-finish.ts'];

/** The request bodies of `turns` calls of one agent conversation, as text, in order. */
export function agentSessionBodies(kind: AgentKind, turns: number, seed = 7): string[] {
  const random = seededRandom(seed);
  const base = fixtureBody(kind);
  const bodies: string[] = [];
  if (kind === 'claude') {
    const initial = structuredClone(base['messages']) as Record<string, unknown>[];
    const history: Record<string, unknown>[] = [];
    for (let turn = 0; turn < turns; turn++) {
      if (turn > 0) {
        const id = `toolu_01${String(turn).padStart(6, '0')}${Math.floor(random() * 1e9).toString(36)}`;
        const tool = ['Bash', 'Read', 'Edit', 'Grep'][turn % 4]!;
        const input = tool === 'Bash' ? { command: COMMANDS[turn % COMMANDS.length], description: 'Run it' } : tool === 'Read' ? { file_path: `/tmp/cxw/src/file-${turn}.ts` } : tool === 'Edit' ? { file_path: `/tmp/cxw/src/file-${turn - 1}.ts`, old_string: 'const a = 1;', new_string: 'const a = 2;' } : { pattern: 'chunk', path: 'src' };
        history.push({ role: 'assistant', content: [{ type: 'text', text: `Step ${turn}: let me look at that.` }, { type: 'tool_use', id, name: tool, input }] });
        history.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: toolOutput(random, turn) }] });
      }
      const messages = [...initial, ...history].map((m) => structuredClone(m));
      const last = messages.at(-1) as { content: Record<string, unknown>[] };
      last.content.at(-1)!['cache_control'] = { type: 'ephemeral' };
      bodies.push(JSON.stringify({ ...base, messages }));
    }
    return bodies;
  }
  const input = structuredClone(base['input']) as Record<string, unknown>[];
  for (let turn = 0; turn < turns; turn++) {
    if (turn > 0) {
      const callId = `call_${String(turn).padStart(6, '0')}${Math.floor(random() * 1e9).toString(36)}`;
      if (turn % 2 === 1) input.push({ type: 'reasoning', id: `rs_${turn}`, summary: [], encrypted_content: Buffer.from(toolOutput(random, turn).slice(0, 1500)).toString('base64') });
      input.push({ type: 'custom_tool_call', id: `ctc_${turn}`, status: 'completed', call_id: callId, name: 'exec', input: `const r = await tools.exec_command({cmd: ${JSON.stringify(COMMANDS[turn % COMMANDS.length])}});\ntext(r.output);` });
      input.push({ type: 'custom_tool_call_output', call_id: callId, output: toolOutput(random, turn) });
    }
    bodies.push(JSON.stringify({ ...base, input }));
  }
  return bodies;
}

/**
 * The distinct content of a session's bodies: the text of each distinct conversation element
 * (messages / input items) and of each distinct other top-level value, summed once each — what
 * an ideal store keeps (`cache_control` markers aside). In UTF-8 bytes.
 */
export function distinctContentBytes(bodies: readonly string[]): number {
  const seen = new Set<string>();
  let bytes = 0;
  const add = (text: string): void => {
    if (seen.has(text)) return;
    seen.add(text);
    bytes += Buffer.byteLength(text);
  };
  for (const body of bodies) {
    const value = JSON.parse(body) as Record<string, unknown>;
    for (const [key, member] of Object.entries(value)) {
      // A message is the same message with or without the moving cache_control marker.
      if ((key === 'messages' || key === 'input') && Array.isArray(member)) for (const element of member) add(JSON.stringify(element, (k, v: unknown) => (k === 'cache_control' ? undefined : v)));
      else add(`${key}:${JSON.stringify(member)}`);
    }
  }
  return bytes;
}
