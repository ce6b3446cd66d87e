/**
 * Policy scanning of large texts off the event loop.
 *
 * Detection (built-in detectors and custom patterns) is the expensive part of a policy: linear,
 * but a megabyte of prompt against a dozen patterns is still hundreds of milliseconds — time in
 * which every other user's call and /readyz would wait. So a request whose text is large for its
 * policy is scanned on a worker thread (./policy-offload-worker.ts), which runs the very same
 * evaluation and sends back what each rule's detectors found on each text; the event loop then
 * evaluates the policy with those answers (memoized detectors: same decisions, same masking,
 * nothing scanned twice). Large non-streamed answers are masked on a worker the same way.
 *
 * Each job has a deadline: past it the worker is terminated (a new one takes its place) and the
 * request is refused with AIGOV_E_POLICY_BUDGET naming the rule it was on — fail closed, and no
 * request holds the gateway. A pattern past its step budget on the worker refuses the same way.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AigovError } from '../core/errors.ts';
import type { EndpointId } from '../core/events.ts';
import type { Detection, Detector } from '../core/detection/types.ts';
import type { CompiledPolicy, CompiledRule, PolicyInput } from '../core/policy/index.ts';

/** What the worker found: for each memo key (see detectorKeys), detections per normalized text. */
export type DetectionMemo = ReadonlyMap<number, ReadonlyMap<string, readonly Detection[]>>;

export interface OffloadOptions {
  /** Workers (default: 2, or 1 on a single core). */
  readonly workers?: number;
  /** Time one job may take on its worker (default 5000 ms). */
  readonly deadlineMs?: number;
}

export const DEFAULT_DEADLINE_MS = 5000;
/** Jobs that may wait per worker; past it a large request is refused at once. */
const MAX_QUEUED_PER_WORKER = 32;
/** What a refused job names in place of a rule when no worker was free to scan it in time. */
const ALL_BUSY = '(none reached: every policy worker was busy with other large requests)';

/** Every detector a compiled policy's rules use, in a fixed order: its index is its memo key. */
export function detectorKeys(policy: CompiledPolicy): { rule: number; detector: Detector }[] {
  const out: { rule: number; detector: Detector }[] = [];
  policy.rules.forEach((rule, r) => {
    for (const d of rule.contentDetectors) out.push({ rule: r, detector: d });
    for (const d of rule.tools?.argumentDetectors ?? []) out.push({ rule: r, detector: d });
  });
  return out;
}

/**
 * The policy with each rule's detectors wrapped by `wrap(detector, key)` (same order as
 * detectorKeys). The policy itself is frozen and shared: this is a per-request view of it.
 */
export function mapDetectors(policy: CompiledPolicy, wrap: (detector: Detector, key: number, rule: number) => Detector): CompiledPolicy {
  let key = 0;
  const rules = policy.rules.map((rule, r): CompiledRule => {
    const contentDetectors = rule.contentDetectors.map((d) => wrap(d, key++, r));
    const tools = rule.tools ? { ...rule.tools, argumentDetectors: rule.tools.argumentDetectors.map((d) => wrap(d, key++, r)) } : null;
    return { ...rule, contentDetectors, tools };
  });
  return { ...policy, rules };
}

/** Detectors answering from the memo; a text the worker did not see is scanned here. */
export function memoizedPolicy(policy: CompiledPolicy, memo: DetectionMemo): CompiledPolicy {
  return mapDetectors(policy, (detector, key) => {
    const known = memo.get(key);
    if (!known) return detector;
    return { ...detector, detect: (text: string): Detection[] => [...(known.get(text) ?? detector.detect(text))] };
  });
}

/**
 * The built-in detectors answering from the memo (keys -1, -2, …: the worker records them when the
 * request is refused, for the redacted record and the approvers' preview).
 */
export function memoizedBuiltins(builtins: readonly Detector[], memo: DetectionMemo): Detector[] {
  return builtins.map((detector, i) => {
    const known = memo.get(-(i + 1));
    if (!known) return detector;
    return { ...detector, detect: (text: string): Detection[] => [...(known.get(text) ?? detector.detect(text))] };
  });
}

// ---------------------------------------------------------------------------------------------
// Messages between the pool and its workers (structured clone).

export type OffloadJob =
  | { readonly kind: 'detect'; readonly policyKey: number; readonly document: CompiledPolicy['document']; readonly input: PolicyInput }
  | { readonly kind: 'mask'; readonly policyKey: number; readonly document: CompiledPolicy['document']; readonly ruleIds: readonly string[]; readonly endpoint: EndpointId; readonly body: string };

export type OffloadResult =
  | { readonly ok: 'detect'; readonly texts: readonly string[]; readonly calls: readonly (readonly [key: number, text: number, detections: readonly Detection[]])[] }
  | { readonly ok: 'mask'; readonly body: string }
  | { readonly budget: string }
  | { readonly failed: string };

interface Pending {
  readonly job: OffloadJob;
  /** While queued: refuses the job when no worker took it within the deadline. */
  waiting: NodeJS.Timeout | null;
  readonly describeRule: (ruleIndex: number) => string;
  readonly resolve: (result: OffloadResult) => void;
  readonly reject: (error: unknown) => void;
}

interface Slot {
  worker: Worker;
  /** [0]: 1 + the index of the rule the worker is scanning for (0: none). */
  readonly progress: Int32Array;
  busy: Pending | null;
  timer: NodeJS.Timeout | null;
}

const POLICY_KEYS = new WeakMap<CompiledPolicy, number>();
let nextPolicyKey = 1;
function policyKey(policy: CompiledPolicy): number {
  let key = POLICY_KEYS.get(policy);
  if (key === undefined) POLICY_KEYS.set(policy, (key = nextPolicyKey++));
  return key;
}

/** A small pool of policy workers, started on first use. */
export class PolicyOffload {
  readonly #size: number;
  readonly #deadlineMs: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #closed = false;

  constructor(options: OffloadOptions = {}) {
    this.#size = options.workers ?? Math.max(1, Math.min(2, availableParallelism()));
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  /** What the policy's detectors find in the request's texts (evaluate with memoizedPolicy). */
  async detect(policy: CompiledPolicy, input: PolicyInput): Promise<DetectionMemo> {
    const result = await this.#run({ kind: 'detect', policyKey: policyKey(policy), document: policy.document, input }, (r) => policy.rules[r]?.id ?? 'unknown');
    if (!('ok' in result) || result.ok !== 'detect') throw new Error('unexpected worker answer');
    const memo = new Map<number, Map<string, readonly Detection[]>>();
    for (const [key, text, detections] of result.calls) {
      let byText = memo.get(key);
      if (!byText) memo.set(key, (byText = new Map<string, readonly Detection[]>()));
      byText.set(result.texts[text]!, detections);
    }
    return memo;
  }

  /** A non-streamed answer body with the given mask_response rules applied. */
  async mask(policy: CompiledPolicy, ruleIds: readonly string[], endpoint: EndpointId, body: string): Promise<string> {
    const result = await this.#run({ kind: 'mask', policyKey: policyKey(policy), document: policy.document, ruleIds, endpoint, body }, () => ruleIds.join(', '));
    if (!('ok' in result) || result.ok !== 'mask') throw new Error('unexpected worker answer');
    return result.body;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) {
      if (p.waiting) clearTimeout(p.waiting);
      p.reject(new AigovError('AIGOV_E_POLICY_FAILED'));
    }
    await Promise.all(
      this.#slots.splice(0).map(async (slot) => {
        if (slot.timer) clearTimeout(slot.timer);
        slot.busy?.reject(new AigovError('AIGOV_E_POLICY_FAILED'));
        await slot.worker.terminate();
      }),
    );
  }

  #run(job: OffloadJob, describeRule: (ruleIndex: number) => string): Promise<OffloadResult> {
    if (this.#closed) return Promise.reject(new AigovError('AIGOV_E_POLICY_FAILED'));
    return new Promise<OffloadResult>((resolve, reject) => {
      // Heavy requests of one client must not hold everyone else's large requests in a queue
      // without end: a job waits at most the deadline for a worker, and the queue is bounded.
      if (this.#queue.length >= this.#size * MAX_QUEUED_PER_WORKER) return resolve({ budget: ALL_BUSY });
      const pending: Pending = { job, describeRule, resolve, reject, waiting: null };
      pending.waiting = setTimeout(() => {
        const index = this.#queue.indexOf(pending);
        if (index >= 0) this.#queue.splice(index, 1);
        resolve({ budget: ALL_BUSY });
      }, this.#deadlineMs);
      this.#queue.push(pending);
      this.#dispatch();
    }).then((result) => {
      if ('budget' in result) throw new AigovError('AIGOV_E_POLICY_BUDGET', { rule: result.budget });
      if ('failed' in result) throw new AigovError('AIGOV_E_POLICY_FAILED', {}, { cause: new Error(result.failed) });
      return result;
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.busy === null);
      if (!slot && this.#slots.length < this.#size) slot = this.#spawn();
      if (!slot) return;
      const pending = this.#queue.shift()!;
      if (pending.waiting) clearTimeout(pending.waiting);
      slot.busy = pending;
      Atomics.store(slot.progress, 0, 0);
      slot.timer = setTimeout(() => this.#expire(slot), this.#deadlineMs);
      slot.worker.postMessage(pending.job);
    }
  }

  #spawn(): Slot {
    const progress = new Int32Array(new SharedArrayBuffer(4));
    // The worker file sits next to this one: .ts when run from source, .js when built.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const worker = new Worker(new URL(`./policy-offload-worker${ext}`, import.meta.url), { workerData: { progress } });
    worker.unref();
    const slot: Slot = { worker, progress, busy: null, timer: null };
    worker.on('message', (result: OffloadResult) => this.#settle(slot, (p) => p.resolve(result)));
    worker.on('error', (error) => this.#replace(slot, (p) => p.reject(new AigovError('AIGOV_E_POLICY_FAILED', {}, { cause: error }))));
    worker.on('exit', () => this.#replace(slot, (p) => p.reject(new AigovError('AIGOV_E_POLICY_FAILED'))));
    this.#slots.push(slot);
    return slot;
  }

  #settle(slot: Slot, outcome: (p: Pending) => void): void {
    const pending = slot.busy;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.busy = null;
    if (pending) outcome(pending);
    this.#dispatch();
  }

  /** Past the deadline: the worker is stopped mid-scan and the request refused naming its rule. */
  #expire(slot: Slot): void {
    const pending = slot.busy;
    if (!pending) return;
    const at = Atomics.load(slot.progress, 0);
    const rule = pending.job.kind === 'mask' ? pending.describeRule(0) : at > 0 ? pending.describeRule(at - 1) : '(none reached: the scan was still starting)';
    this.#replace(slot, (p) => p.resolve({ budget: rule }));
  }

  /** Drops a worker (stuck, crashed or exited) and settles its job; the next job spawns a fresh one. */
  #replace(slot: Slot, outcome: (p: Pending) => void): void {
    const index = this.#slots.indexOf(slot);
    if (index < 0) return;
    this.#slots.splice(index, 1);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    this.#settle(slot, outcome);
  }
}
