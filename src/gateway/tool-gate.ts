/**
 * Tool-call gating on answers. Once a tool call starts in a stream, everything after it is held
 * (tool calls come last and are read by programs, not people, so holding them costs no visible
 * latency); a call whose name is forbidden ends the stream at once, and at the end every call is
 * checked with its complete arguments before anything held is released. Forbidden calls never
 * reach the client: it gets the provider's in-stream error instead.
 */
import type { ResponseEvent } from '../core/events.ts';

export interface ToolCallRefusal {
  readonly ruleId: string;
  readonly reason: string;
}

/** Checks one tool call (its arguments may still be incomplete: '' while only the name is known). */
export type ToolCallCheck = (call: { readonly name: string; readonly arguments: string }) => ToolCallRefusal | null;

/** Held output above this is refused rather than buffered further (fail closed). */
export const MAX_HELD_TOOL_CALL_BYTES = 4 * 1024 * 1024;

export class StreamToolGate {
  readonly #check: ToolCallCheck | null;
  readonly #shadow: ToolCallCheck | null;
  readonly #calls = new Map<string, { name: string; args: string }>();
  #holding = false;

  /** `check` enforces; `shadow` only reports what it would have refused (shadowHits). */
  constructor(check: ToolCallCheck | null, shadow: ToolCallCheck | null = null) {
    this.#check = check;
    this.#shadow = shadow;
  }

  /** True once a tool call has started under an enforcing check: output from then on must be held. */
  get holding(): boolean {
    return this.#holding;
  }

  /** Feeds one parsed answer event; returns a refusal as soon as a call's name is forbidden. */
  observe(event: ResponseEvent): ToolCallRefusal | null {
    if (event.type !== 'tool_call') return null;
    this.#holding = this.#check !== null;
    const key = `${event.choice}:${event.index}`;
    const call = this.#calls.get(key) ?? { name: '', args: '' };
    const named = event.name !== undefined && event.name !== '' && call.name === '';
    if (event.name) call.name = event.name;
    call.args += event.argumentsDelta;
    this.#calls.set(key, call);
    return named && this.#check ? this.#check({ name: call.name, arguments: '' }) : null;
  }

  /** Checks every call with its complete arguments (at the end of the answer). */
  finalCheck(): ToolCallRefusal | null {
    if (!this.#check) return null;
    for (const call of this.#calls.values()) {
      const refusal = this.#check({ name: call.name, arguments: call.args });
      if (refusal) return refusal;
    }
    return null;
  }

  /** What the shadow check would have refused, one entry per call (as far as the answer got). */
  shadowHits(): (ToolCallRefusal & { readonly tool: string })[] {
    if (!this.#shadow) return [];
    const hits: (ToolCallRefusal & { readonly tool: string })[] = [];
    for (const call of this.#calls.values()) {
      const hit = this.#shadow({ name: call.name, arguments: call.args });
      if (hit) hits.push({ ...hit, tool: call.name });
    }
    return hits;
  }
}
