/**
 * Removes credentials from text that came from elsewhere (an upstream error message) before it
 * is shown to a client, logged or recorded: the gateway's own secrets by value, and anything
 * shaped like a provider key, including the partly masked forms providers echo back
 * ("Incorrect API key provided: sk-proj-****abcd").
 */

const KEY_SHAPES: readonly RegExp[] = [
  /\bsk-[A-Za-z0-9_*.-]{3,}/g, // OpenAI, Anthropic (sk-ant-…), OpenAI-compatible
  /\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=*-]{8,}/gi,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, // JWTs
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /\bAIza[A-Za-z0-9_-]{20,}/g,
];

export const SCRUBBED = '[redacted]';

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(SCRUBBED);
  }
  for (const shape of KEY_SHAPES) out = out.replace(shape, SCRUBBED);
  return out;
}

/**
 * Replaces the gateway's own secrets (provider keys) by SCRUBBED wherever they stand in an
 * answer: in a whole text, in a text streamed in pieces (a key split over any number of deltas),
 * and in every string of a parsed JSON value. Exact strings only: always on, with or without a
 * policy.
 *
 * Streams hold back only what could still become a key: the shortest tail of the text that is a
 * proper prefix of a secret (usually nothing). THE LAW, as for the masker: for any chunking
 * c₁…cₙ of t, push(c₁) + … + push(cₙ) + end() === whole(t) — at each position the leftmost,
 * longest secret wins, in both.
 */
export class SecretScrubber {
  readonly #secrets: readonly string[];
  readonly #longest: number;
  /** First characters of the secrets: a position starting with none of them starts no secret. */
  readonly #firsts: ReadonlySet<number>;
  /** Some secret has a character JSON escapes other than by \u (then a raw JSON text may hide it). */
  readonly #escapable: boolean;

  /** `secrets` shorter than 8 characters are left out (they would match ordinary words). */
  constructor(secrets: readonly string[]) {
    this.#secrets = [...new Set(secrets.filter((s) => s.length >= 8))].sort((a, b) => b.length - a.length);
    this.#longest = this.#secrets[0]?.length ?? 0;
    this.#firsts = new Set(this.#secrets.map((s) => s.charCodeAt(0)));
    // eslint-disable-next-line no-control-regex
    this.#escapable = this.#secrets.some((s) => /["\\/\u0000-\u001f]/.test(s));
  }

  get empty(): boolean {
    return this.#secrets.length === 0;
  }

  whole(text: string): string {
    return this.#scan(text, true).out;
  }

  /** A scrubber for one streamed text. */
  channel(): { push(delta: string): string; end(): string } {
    let held = '';
    return {
      push: (delta) => {
        const { out, rest } = this.#scan(held + delta, false);
        held = rest;
        return out;
      },
      end: () => {
        const out = this.whole(held);
        held = '';
        return out;
      },
    };
  }

  /**
   * Whether the JSON text `raw` may hold a secret in one of its strings: it holds one as it is,
   * or a JSON escape that could spell one. False: no string in it does (nothing to walk).
   */
  mayHold(raw: string): boolean {
    if (this.#secrets.length === 0) return false;
    if (raw.includes('\\u') || (this.#escapable && raw.includes('\\'))) return true;
    return this.#secrets.some((s) => raw.includes(s));
  }

  /** Whether `raw` holds a secret as it is (after scrubbing its strings: one in a key, an event name, a comment). */
  holds(raw: string): boolean {
    return this.#secrets.some((s) => raw.includes(s));
  }

  /** Scrubs every string (and only strings: keys are checked by holds()) of a parsed JSON value in place; true if one changed. */
  json(value: unknown): boolean {
    let changed = false;
    const stack: unknown[] = [value];
    while (stack.length > 0) {
      const next = stack.pop();
      if (next === null || typeof next !== 'object') continue;
      const holder = next as Record<string, unknown>;
      for (const key of Object.keys(holder)) {
        const v = holder[key];
        if (typeof v === 'string') {
          const out = this.whole(v);
          if (out !== v) {
            holder[key] = out;
            changed = true;
          }
        } else if (v !== null && typeof v === 'object') stack.push(v);
      }
    }
    return changed;
  }

  /** `text` scrubbed; unless `final`, the tail that could still become a secret is held back (`rest`). */
  #scan(text: string, final: boolean): { out: string; rest: string } {
    if (this.#secrets.length === 0) return { out: text, rest: '' };
    let out = '';
    let pos = 0;
    for (;;) {
      const hold = final ? text.length : this.#partialStart(text, pos);
      // The leftmost secret starting before `hold`, the longest at that position.
      let at = -1;
      let length = 0;
      for (const secret of this.#secrets) {
        const i = text.indexOf(secret, pos);
        if (i !== -1 && i < hold && (at === -1 || i < at)) {
          at = i;
          length = secret.length;
        }
      }
      if (at === -1) return { out: out + text.slice(pos, hold), rest: text.slice(hold) };
      out += text.slice(pos, at) + SCRUBBED;
      pos = at + length;
    }
  }

  /** The first position ≥ from whose tail is a proper prefix of a secret (text.length: none). */
  #partialStart(text: string, from: number): number {
    for (let i = Math.max(from, text.length - this.#longest + 1); i < text.length; i++) {
      if (!this.#firsts.has(text.charCodeAt(i))) continue;
      const tail = text.slice(i);
      if (this.#secrets.some((s) => s.length > tail.length && s.startsWith(tail))) return i;
    }
    return text.length;
  }
}
