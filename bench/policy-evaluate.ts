/**
 * The cost of one policy evaluation on a large agent request: the recorded Claude Code request
 * (test/fixtures/agents) grown to 61 messages of tool results (~360 KiB of text), under block
 * rules for secrets, cards and a keyword (which also scan the request's views: splits, JSON
 * escapes, base64/hex/percent) and a mask_request rule on SECRETS. Side by side with another
 * checkout (`--before DIR`, e.g. `git archive <rev> src | tar -x -C DIR/..` with a node_modules
 * link), alternating, medians.
 *
 *   node bench/policy-evaluate.ts [--before /tmp/before] [--runs 30]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import os from 'node:os';

const { values } = parseArgs({ options: { before: { type: 'string' }, runs: { type: 'string', default: '30' } } });
const RUNS = Number(values.runs);
const ROOT = path.resolve(import.meta.dirname, '..');

const POLICY = `version: 1
rules:
  - { id: no-secrets, match: { detectors: [AWS_ACCESS_KEY, GITHUB_TOKEN, PRIVATE_KEY] }, action: block }
  - { id: no-cards, match: { detectors: [CREDIT_CARD] }, action: block }
  - { id: codename, match: { keywords: [PROJECT-NIGHTJAR] }, action: require_approval }
  - { id: mask-secrets, match: { detectors: [SECRETS] }, action: mask_request }
`;

type Evaluate = () => unknown;

async function load(root: string): Promise<Evaluate> {
  const im = (rel: string): Promise<Record<string, unknown>> => import(pathToFileURL(path.join(root, rel)).href) as Promise<Record<string, unknown>>;
  const { parsePolicyText } = (await im('src/config/load-policy.ts')) as { parsePolicyText: (yaml: string, name: string) => { compiled: unknown } };
  const { evaluatePolicy } = (await im('src/core/policy/evaluate-policy.ts')) as { evaluatePolicy: (policy: unknown, input: unknown) => unknown };
  const registry = (await im('src/providers/registry.ts')) as { CODECS?: Record<string, { parseRequest(e: string, j: unknown): unknown }>; ADAPTERS?: Record<string, { parseRequest(e: string, j: unknown): unknown }> };
  const codec = (registry.CODECS ?? registry.ADAPTERS)!.anthropic!;
  const fixture = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'agents', 'claude-code-2.1.337-messages.json'), 'utf8')) as { body: string };
  const body = JSON.parse(fixture.body) as { messages: unknown[] };
  // 30 rounds of a Bash call and its ~12 KB output (code, JSON, a base64 blob, prose).
  const output = `${'src/app.ts: export function handler(req, res) { return res.json({ ok: true, id: "9f86d081884c7d659a2feaa0c55ad015" }); }\n'.repeat(60)}${Buffer.from('x'.repeat(900)).toString('base64')}\n${'The build finished in 12.4 s with 0 errors and 3 warnings.\n'.repeat(40)}`;
  for (let i = 0; i < 30; i++) {
    body.messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `toolu_${i}`, name: 'Bash', input: { command: `npm test -- --grep case${i}`, description: 'run tests' } }] });
    body.messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: output }] });
  }
  const request = codec.parseRequest('anthropic.messages', body);
  const policy = parsePolicyText(POLICY, 'bench-policy.yaml').compiled;
  const input = { principal: { subject: 'alice', email: null, groups: [], issuer: 'i', clientId: null }, provider: 'anthropic', model: 'claude', endpoint: 'anthropic.messages', request };
  return () => evaluatePolicy(policy, input);
}

const sides: [string, Evaluate][] = [['now', await load(ROOT)]];
if (values.before) sides.unshift(['before', await load(path.resolve(values.before))]);
const times = new Map<string, number[]>(sides.map(([name]) => [name, []]));
for (const [, run] of sides) for (let i = 0; i < 5; i++) run(); // warm-up
for (let r = 0; r < RUNS; r++) {
  for (const [name, run] of sides) {
    const t = performance.now();
    run();
    times.get(name)!.push(performance.now() - t);
  }
}
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
console.log(`policy evaluation of one ~360 KiB agent request, ${RUNS} runs each, alternating; load average ${os.loadavg()[0]!.toFixed(2)}, Node ${process.version}`);
for (const [name] of sides) console.log(`${name}: median ${median(times.get(name)!).toFixed(2)} ms`);
