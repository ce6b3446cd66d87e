/**
 * A policy worker (see ./policy-offload.ts): compiles the policy it is sent (cached by key), then
 * either runs the request's evaluation with recording detectors and sends back what they found,
 * or masks a non-streamed answer body. The index of the rule being scanned is kept in shared
 * memory, so the pool can name it when it stops this worker at the deadline.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BUILTIN_DETECTORS, detectEntities } from '../core/detection/index.ts';
import type { Detection, Detector } from '../core/detection/types.ts';
import { maskText } from '../core/masking/index.ts';
import { buildResponsePlan, compilePolicy, evaluatePolicy, PolicyBudgetError, type CompiledPolicy } from '../core/policy/index.ts';
import { mapDetectors, type OffloadJob, type OffloadResult } from './policy-offload.ts';
import { rewriteAnswer } from '../providers/registry.ts';

/** Off the event loop a scan may take longer; the pool's deadline bounds it in time. */
const WORKER_REGEX_BUDGET = { base: 4_000_000, perChar: 1024 };

const progress = (workerData as { progress: Int32Array }).progress;
const compiled = new Map<number, CompiledPolicy>();

function policyFor(job: OffloadJob): CompiledPolicy {
  let policy = compiled.get(job.policyKey);
  if (!policy) {
    policy = compilePolicy(job.document, { regexBudget: WORKER_REGEX_BUDGET });
    if (compiled.size >= 4) compiled.delete(compiled.keys().next().value!);
    compiled.set(job.policyKey, policy);
  }
  return policy;
}

function detect(job: Extract<OffloadJob, { kind: 'detect' }>): OffloadResult {
  const texts: string[] = [];
  const textIndex = new Map<string, number>();
  const calls: [number, number, readonly Detection[]][] = [];
  const record = (detector: Detector, key: number, rule: number): Detector => ({
    ...detector,
    detect(text: string): Detection[] {
      Atomics.store(progress, 0, rule + 1);
      const found = detector.detect(text);
      let t = textIndex.get(text);
      if (t === undefined) {
        textIndex.set(text, (t = texts.length));
        texts.push(text);
      }
      calls.push([key, t, found]);
      return found;
    },
  });
  const evaluation = evaluatePolicy(mapDetectors(policyFor(job), record), job.input);
  // A refused request is recorded with its secrets and personal data redacted (built-in detectors).
  if (evaluation.action !== 'allow') {
    const builtins = BUILTIN_DETECTORS.map((d, i) => record(d, -(i + 1), 0));
    const { request } = job.input;
    for (const message of request.messages) {
      for (const part of message.parts) {
        const texts = part.type === 'text' || part.type === 'tool_result' ? [part.text] : part.type === 'tool_call' ? [part.arguments] : part.type === 'file' ? [part.name, part.context, part.text] : [];
        for (const text of texts) if (text) detectEntities(text, builtins);
      }
    }
    for (const input of request.inputs) detectEntities(input, builtins);
    for (const { text } of request.texts) detectEntities(text, builtins);
  }
  return { ok: 'detect', texts, calls };
}

function mask(job: Extract<OffloadJob, { kind: 'mask' }>): OffloadResult {
  // The same plan evaluatePolicy made on the event loop for these rules.
  const plan = buildResponsePlan(policyFor(job).rules.filter((rule) => job.ruleIds.includes(rule.id)));
  if (plan === null) return { ok: 'mask', body: job.body };
  const body = rewriteAnswer(job.endpoint, job.body, {
    whole: (text) => maskText(text, detectEntities(text, plan.detectors), plan.operatorFor),
    channel: () => {
      throw new Error('not a stream');
    },
  });
  return { ok: 'mask', body };
}

parentPort!.on('message', (job: OffloadJob) => {
  let result: OffloadResult;
  try {
    result = job.kind === 'detect' ? detect(job) : mask(job);
  } catch (error) {
    if (error instanceof PolicyBudgetError) result = { budget: job.kind === 'mask' ? job.ruleIds.join(', ') : error.ruleId };
    else result = { failed: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error' };
  }
  Atomics.store(progress, 0, 0);
  parentPort!.postMessage(result);
});
