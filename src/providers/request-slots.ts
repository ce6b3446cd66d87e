/**
 * The text slots of one request body, collected while a codec reads it (../core/policy/types.ts
 * TextSlot): each user-controlled string of the parsed body, addressed by the TextLocation the
 * normalized request gives it. Masking writes into the slots; the body is serialized once, and
 * only when a slot changed — otherwise the client's bytes go upstream as they came.
 */
import { AigovError } from '../core/errors.ts';
import type { NormalizedRequest, RequestText, Role } from '../core/events.ts';
import { isObject, parseJson, type Json, type JsonObject } from '../core/json.ts';
import type { PartField, TextLocation, TextSlot } from '../core/policy/types.ts';
import type { AttachedText } from './attached-text.ts';

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
  /** The request's other texts (NormalizedRequest.texts), each a slot too. */
  readonly texts: RequestText[] = [];
  #changed = false;

  get changed(): boolean {
    return this.#changed;
  }

  /** `holder[key]` when it is a non-empty string, `offset` characters into its location's text. */
  field(location: TextLocation, holder: Holder, key: string | number, kind: 'text' | 'json' = 'text', offset = 0): void {
    const text = (holder as Record<string | number, Json>)[key];
    if (typeof text !== 'string' || text === '') return;
    let current = text;
    this.slots.push({
      location,
      text,
      kind,
      offset,
      set: (next) => {
        if (next === current) return;
        (holder as Record<string | number, Json>)[key] = next;
        current = next;
        this.#changed = true;
      },
    });
  }

  /**
   * An object whose JSON text is the location's text (Anthropic `tool_use.input`, a tool's
   * parameters): a new text is parsed back; one that is no longer JSON refuses the request (fail
   * closed) rather than going up unmasked. `text` may be given as a function: serialized only if
   * the slot is read (a request nobody rewrites never pays for its tool schemas twice).
   */
  object(location: TextLocation, holder: JsonObject, key: string, text: string | (() => string)): void {
    if (text === '' || holder[key] === undefined) return;
    this.slots.push(
      new JsonSlot(location, text, (next) => {
        const parsed = parseJson(next);
        if (parsed === undefined) throw new AigovError('AIGOV_E_POLICY_FAILED');
        holder[key] = parsed as Json;
        this.#changed = true;
      }),
    );
  }

  /**
   * A text the gateway decoded from `holder[key]` (a text document in base64, a `data:text/…`
   * URL): a new text is encoded back the same way, so the model reads the masked text.
   */
  decoded(location: TextLocation, holder: JsonObject, key: string, attached: AttachedText): void {
    const text = attached.text;
    if (text === '') return;
    let current = text;
    this.slots.push({
      location,
      text,
      kind: 'text',
      offset: 0,
      set: (next) => {
        if (next === current) return;
        holder[key] = attached.encode(next);
        current = next;
        this.#changed = true;
      },
    });
  }

  /**
   * A request text outside messages (a response format's schema, predicted output, a metadata
   * value), addressed by its wire path: a string, or an object read as its JSON text.
   */
  requestText(path: string, role: Role | null, holder: JsonObject, key: string): void {
    const value = holder[key];
    if (typeof value === 'string') {
      if (value === '') return;
      this.texts.push({ path, role, text: value });
      this.field({ kind: 'field', path }, holder, key);
    } else if (isObject(value) || Array.isArray(value)) {
      const text = JSON.stringify(value);
      this.texts.push({ path, role, text });
      this.object({ kind: 'field', path }, holder, key, text);
    }
  }

  /** The pieces of a text joined from parts (`parts[i][key]` strings), each a slot at its offset. */
  joined(location: TextLocation, pieces: readonly { holder: JsonObject; key: string; text: string }[]): void {
    let offset = 0;
    for (const piece of pieces) {
      this.field(location, piece.holder, piece.key, 'text', offset);
      offset += piece.text.length;
    }
  }

  read(request: Omit<NormalizedRequest, 'texts'>, body: unknown, text: string): ReadRequest {
    return { request: { ...request, texts: this.texts }, slots: this.slots, serialize: () => (this.#changed && isObject(body) ? JSON.stringify(body) : text) };
  }
}

/** A slot whose text is an object's JSON, serialized when first read. */
class JsonSlot implements TextSlot {
  readonly location: TextLocation;
  readonly kind = 'json';
  readonly offset = 0;
  #text: string | (() => string);
  /** What the body holds now (null: still the text as sent). */
  #current: string | null = null;
  readonly #write: (next: string) => void;

  constructor(location: TextLocation, text: string | (() => string), write: (next: string) => void) {
    this.location = location;
    this.#text = text;
    this.#write = write;
  }

  get text(): string {
    if (typeof this.#text !== 'string') this.#text = this.#text();
    return this.#text;
  }

  set(next: string): void {
    if (next === (this.#current ?? this.text)) return;
    this.#write(next);
    this.#current = next;
  }
}

/** The location of part `part` of message `message`. */
export function at(message: number, part: number, role: Role, field: PartField): TextLocation {
  return { kind: 'message', message, part, role, field };
}
