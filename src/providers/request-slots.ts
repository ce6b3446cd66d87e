/**
 * The text slots of one request body, collected while a codec reads it (../core/policy/types.ts
 * TextSlot): each user-controlled string of the parsed body, addressed by the TextLocation the
 * normalized request gives it. Masking writes into the slots; the body is serialized once, and
 * only when a slot changed — otherwise the client's bytes go upstream as they came.
 */
import { AigovError } from '../core/errors.ts';
import type { NormalizedRequest, Role } from '../core/events.ts';
import { isObject, parseJson, type Json, type JsonObject } from '../core/json.ts';
import type { TextLocation, TextSlot } from '../core/policy/types.ts';

/** A request as a codec reads it: the normalized view, its text slots, the body to send. */
export interface ReadRequest {
  readonly request: NormalizedRequest;
  readonly slots: readonly TextSlot[];
  /** The client's bytes when no slot changed; else the parsed body, serialized once. */
  serialize(): string;
}

type Holder = JsonObject | Json[];

export class SlotSink {
  readonly slots: TextSlot[] = [];
  #changed = false;

  get changed(): boolean {
    return this.#changed;
  }

  /** `holder[key]` when it is a non-empty string, `offset` characters into its location's text. */
  field(location: TextLocation, holder: Holder, key: string | number, kind: 'text' | 'json' = 'text', offset = 0): void {
    const text = (holder as Record<string | number, Json>)[key];
    if (typeof text !== 'string' || text === '') return;
    this.slots.push({
      location,
      text,
      kind,
      offset,
      set: (next) => {
        if (next === text) return;
        (holder as Record<string | number, Json>)[key] = next;
        this.#changed = true;
      },
    });
  }

  /**
   * An object whose JSON text is the location's text (Anthropic `tool_use.input`): a new text is
   * parsed back; one that is no longer JSON refuses the request (fail closed) rather than going
   * up unmasked.
   */
  object(location: TextLocation, holder: JsonObject, key: string, text: string): void {
    if (text === '' || holder[key] === undefined) return;
    this.slots.push({
      location,
      text,
      kind: 'json',
      offset: 0,
      set: (next) => {
        if (next === text) return;
        const parsed = parseJson(next);
        if (parsed === undefined) throw new AigovError('AIGOV_E_POLICY_FAILED');
        holder[key] = parsed as Json;
        this.#changed = true;
      },
    });
  }

  /** The pieces of a text joined from parts (`parts[i][key]` strings), each a slot at its offset. */
  joined(location: TextLocation, pieces: readonly { holder: JsonObject; key: string; text: string }[]): void {
    let offset = 0;
    for (const piece of pieces) {
      this.field(location, piece.holder, piece.key, 'text', offset);
      offset += piece.text.length;
    }
  }

  read(request: NormalizedRequest, body: unknown, text: string): ReadRequest {
    return { request, slots: this.slots, serialize: () => (this.#changed && isObject(body) ? JSON.stringify(body) : text) };
  }
}

/** The location of part `part` of message `message`. */
export function at(message: number, part: number, role: Role, field: 'text' | 'tool_result' | 'tool_arguments'): TextLocation {
  return { kind: 'message', message, part, role, field };
}
