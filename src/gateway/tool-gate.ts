/**
 * Tool-call gating on answers. Once a tool call starts in a stream, everything after it is held
 * (tool calls come last and are read by programs, not people, so holding them costs no visible
 * latency); at the end every call is judged with its complete arguments before anything held is
 * released. A call policy blocks (or an approver denies) is replaced in the answer by a text
 * saying so (../providers/tool-call-replace.ts) and the answer ends normally: the agent reads why and
 * carries on, and never runs the call.
 */
import type { ApprovalSpec } from '../core/policy/types.ts';
import type { ResponseEvent } from '../core/events.ts';

export type ToolCallAction = 'allow' | 'block' | 'require_approval';

/** What policy says about one tool call. The summary is redacted (secrets, personal data). */
export interface ToolCallVerdict {
  readonly summary: string;
  readonly decision: { readonly action: ToolCallAction; readonly ruleId: string; readonly reason: string } | null;
  readonly shadow: readonly { readonly action: ToolCallAction; readonly ruleId: string; readonly reason: string }[];
  /** For require_approval: who approves (null: nobody is configured, so the call is refused). */
  readonly approval: ApprovalSpec | null;
}

export interface ToolCallJudge {
  /** Some enforced rule may block or hold a call: answers with tool calls must be held. */
  readonly enforcing: boolean;
  /** Never throws: a failing analyzer yields a block (fail closed). */
  judge(call: { readonly name: string; readonly arguments: string }): ToolCallVerdict;
}

/** Held output above this is refused rather than buffered further (fail closed). */
export const MAX_HELD_TOOL_CALL_BYTES = 4 * 1024 * 1024;

export interface JudgedCall {
  /** `choice:index` as the adapters number calls (Anthropic block index, chat tool_calls index, Responses output index). */
  readonly key: string;
  readonly name: string;
  readonly arguments: string;
  readonly verdict: ToolCallVerdict;
}

const SEVERITY: Record<ToolCallAction, number> = { allow: 1, require_approval: 2, block: 3 };

export class StreamToolGate {
  readonly #judge: ToolCallJudge;
  readonly #calls = new Map<string, { name: string; args: string; snapshots: Set<string> }>();
  readonly #textChoices = new Set<number>();
  #holding = false;

  constructor(judge: ToolCallJudge) {
    this.#judge = judge;
  }

  /** True once a tool call has started under an enforcing judge: output from then on must be held. */
  get holding(): boolean {
    return this.#holding;
  }

  /** Choices that carried text (a replacement notice then starts on a new paragraph). */
  get textChoices(): ReadonlySet<number> {
    return this.#textChoices;
  }

  get callCount(): number {
    return this.#calls.size;
  }

  /** Feeds one parsed answer event. */
  observe(event: ResponseEvent): void {
    if (event.type === 'text' && event.text !== '') this.#textChoices.add(event.choice);
    if (event.type !== 'tool_call') return;
    if (this.#judge.enforcing) this.#holding = true;
    const key = `${event.choice}:${event.index}`;
    const call = this.#calls.get(key) ?? { name: '', args: '', snapshots: new Set<string>() };
    if (event.name) call.name = event.name;
    if (event.complete) call.snapshots.add(event.argumentsDelta);
    else call.args += event.argumentsDelta;
    this.#calls.set(key, call);
  }

  /**
   * Judges every call with its complete arguments (at the end of the answer). A call whose
   * arguments arrived both as deltas and as a snapshot is judged on each, the most severe
   * decision standing.
   */
  judgeAll(): JudgedCall[] {
    const out: JudgedCall[] = [];
    for (const [key, call] of this.#calls) {
      const variants = new Set<string>(call.snapshots);
      if (call.args !== '' || variants.size === 0) variants.add(call.args);
      let verdict: ToolCallVerdict | null = null;
      const shadow = new Map<string, ToolCallVerdict['shadow'][number]>();
      for (const args of variants) {
        const v = this.#judge.judge({ name: call.name, arguments: args });
        for (const s of v.shadow) shadow.set(s.ruleId, s);
        if (verdict === null || (v.decision !== null && (verdict.decision === null || SEVERITY[v.decision.action] > SEVERITY[verdict.decision.action]))) verdict = v;
      }
      const arguments_ = [...variants][0] ?? '';
      out.push({ key, name: call.name, arguments: arguments_, verdict: { ...verdict!, shadow: [...shadow.values()] } });
    }
    return out;
  }
}
