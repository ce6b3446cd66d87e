/**
 * Per-session pseudonyms: a detected value goes upstream as a typed, numbered placeholder
 * («EMAIL_1», «PHONE_2») and the real value is put back into the answer.
 *
 * Placeholder syntax: `«LABEL_N»` — guillemets around an upper-case label and a number. Models
 * copy such tokens verbatim, and the shape (no spaces, label + underscore + digits inside
 * guillemets) does not occur in ordinary text, French quotes included (« texte »). Restoring
 * accepts the variants models produce: any letter case («email_1», «Email_1») and up to two
 * spaces inside the guillemets (« EMAIL_1 »). In JSON mode (tool-call arguments are JSON text)
 * the guillemets may also appear as `\u00ab` / `\u00bb` escapes, and the restored value is
 * JSON-string-escaped so a quote or backslash in it cannot break the JSON.
 *
 * Placeholders the vault did not issue are left as they are.
 */

import type { EntityType } from '../detection/types.ts';
import { labelFor } from './labels.ts';

/** Longest placeholder text restoring will recognise, in UTF-16 code units (JSON-escaped form included). */
export const MAX_PLACEHOLDER_LENGTH = 64;

// A label is 1-40 letters/underscores starting with a letter, then `_` and 1-6 digits.
const BODY = '\\s{0,2}([A-Za-z][A-Za-z_]{0,39})_(\\d{1,6})\\s{0,2}';
const PLAIN = new RegExp(`«${BODY}»`, 'g');
const JSON_FORM = new RegExp(`(?:«|\\\\u00[aA][bB])${BODY}(?:»|\\\\u00[bB][bB])`, 'g');

// Over-approximations of "a prefix of a placeholder, not yet closed" (holding a little too much is safe).
const PLAIN_PREFIX = /^«\s{0,2}(?:[A-Za-z][A-Za-z_]{0,40}(?:\d{1,6}\s{0,2})?)?$/;
const JSON_PREFIX =
  /^(?:\\(?:u(?:0(?:0[aA]?)?)?)?|(?:«|\\u00[aA][bB])\s{0,2}(?:[A-Za-z][A-Za-z_]{0,40}(?:\d{1,6}\s{0,2}(?:\\(?:u(?:0(?:0[bB]?)?)?)?)?)?)?)$/;

/** Whether `tail` could be the beginning of a placeholder (the stream restorer holds such a tail back). */
export function couldStartPlaceholder(tail: string, json: boolean): boolean {
  return tail.length < MAX_PLACEHOLDER_LENGTH && (json ? JSON_PREFIX : PLAIN_PREFIX).test(tail);
}

/** One issued placeholder: [label, number, value] for «LABEL_number». The value is the real personal data. */
export type VaultEntry = readonly [label: string, n: number, value: string];

export interface PseudonymVaultJson {
  readonly version: 1;
  /** [label, number, value] — the values are the real personal data: store them as such. */
  readonly entries: ReadonlyArray<VaultEntry>;
}

export interface RestoreOptions {
  /** The text is the inside of a JSON string (e.g. tool-call arguments): escape restored values. */
  readonly json?: boolean;
}

/**
 * Durable vaults (kept outside core) use `entries(from)` to find what was issued since they last
 * stored it, `truncate(size)` to take back what could not be stored (never handed out), and
 * `merge(entries)` to learn what another process stored.
 */
export class PseudonymVault {
  readonly #byValue = new Map<string, string>();
  readonly #byKey = new Map<string, string>();
  readonly #counters = new Map<string, number>();
  /** Every entry in the order it was issued or learned. */
  readonly #issued: VaultEntry[] = [];

  /** The placeholder for `value` of `type`: the same value of the same type always gets the same one. */
  placeholderFor(type: EntityType, value: string): string {
    const label = labelFor(type);
    const valueKey = `${label}\u0000${value}`;
    const known = this.#byValue.get(valueKey);
    if (known !== undefined) return known;
    const n = (this.#counters.get(label) ?? 0) + 1;
    this.#counters.set(label, n);
    return this.#add(label, n, value);
  }

  #add(label: string, n: number, value: string): string {
    const placeholder = `«${label}_${n}»`;
    this.#byValue.set(`${label}\u0000${value}`, placeholder);
    this.#byKey.set(`${label}_${n}`, value);
    this.#issued.push([label, n, value]);
    return placeholder;
  }

  /** Adds an entry issued elsewhere; throws (naming no value) if it contradicts this vault. Returns whether it was new. */
  #adopt(entry: unknown): boolean {
    if (
      !Array.isArray(entry) || entry.length !== 3 || typeof entry[0] !== 'string' || !/^[A-Z][A-Z_]{0,39}$/.test(entry[0])
      || typeof entry[1] !== 'number' || !Number.isInteger(entry[1]) || entry[1] < 1 || entry[1] > 999_999 || typeof entry[2] !== 'string'
    ) {
      throw new TypeError('pseudonym vault: malformed entry (expected [LABEL, number, value])');
    }
    const [label, n, value] = entry as [string, number, string];
    const held = this.#byKey.get(`${label}_${n}`);
    const placeholder = this.#byValue.get(`${label}\u0000${value}`);
    if (held === value && placeholder === `«${label}_${n}»`) return false;
    if (held !== undefined) throw new TypeError(`pseudonym vault: duplicate placeholder ${label}_${n} with another value`);
    if (placeholder !== undefined) throw new TypeError(`pseudonym vault: duplicate value (already ${placeholder.slice(1, -1)}, offered as ${label}_${n})`);
    this.#add(label, n, value);
    this.#counters.set(label, Math.max(this.#counters.get(label) ?? 0, n));
    return true;
  }

  /** The entries issued or learned from position `from` on (positions follow `size`), oldest first. */
  entries(from = 0): VaultEntry[] {
    return this.#issued.slice(Math.max(0, from));
  }

  /**
   * Forgets every entry after the first `size`, as if they had never been issued: their numbers
   * are issued again. Only for entries that never left the process (e.g. they could not be stored).
   */
  truncate(size: number): void {
    if (size >= this.#issued.length) return;
    const dropped = this.#issued.splice(Math.max(0, size));
    const labels = new Set<string>();
    for (const [label, n, value] of dropped) {
      this.#byKey.delete(`${label}_${n}`);
      this.#byValue.delete(`${label}\u0000${value}`);
      labels.add(label);
    }
    for (const label of labels) {
      let max = 0;
      for (const [l, n] of this.#issued) if (l === label && n > max) max = n;
      if (max === 0) this.#counters.delete(label);
      else this.#counters.set(label, max);
    }
  }

  /**
   * Learns entries another vault of the same session issued (e.g. stored by another process).
   * Entries already held are skipped; an entry that gives a held placeholder another value, or a
   * held value another placeholder, throws and leaves the entries before it merged.
   * Returns how many were new.
   */
  merge(entries: Iterable<VaultEntry>): number {
    let added = 0;
    for (const entry of entries) if (this.#adopt(entry)) added++;
    return added;
  }

  /** How many distinct values the vault holds. */
  get size(): number {
    return this.#byKey.size;
  }

  /** The real value behind a placeholder (any case, with or without guillemets), or undefined. */
  valueOf(placeholder: string): string | undefined {
    const m = /^(?:«|\\u00ab)?\s{0,2}([A-Za-z][A-Za-z_]{0,39})_(\d{1,6})\s{0,2}(?:»|\\u00bb)?$/i.exec(placeholder);
    return m ? this.#lookup(m[1]!, m[2]!) : undefined;
  }

  #lookup(label: string, digits: string): string | undefined {
    return this.#byKey.get(`${label.toUpperCase()}_${Number(digits)}`);
  }

  /** Replaces the placeholders this vault issued by their real values. */
  restore(text: string, options: RestoreOptions = {}): string {
    if (this.#byKey.size === 0) return text;
    const json = options.json === true;
    if (!json && !text.includes('«')) return text;
    const pattern = json ? JSON_FORM : PLAIN;
    pattern.lastIndex = 0;
    return text.replace(pattern, (match, label: string, digits: string) => {
      const value = this.#lookup(label, digits);
      if (value === undefined) return match;
      return json ? JSON.stringify(value).slice(1, -1) : value;
    });
  }

  /**
   * The inverse of restore, for records: puts each issued placeholder back where its value
   * stands, so a recorded answer keeps what crossed the provider boundary, never the real
   * values. `json`: the text is JSON string content (values appear JSON-escaped).
   */
  conceal(text: string, options: RestoreOptions = {}): string {
    if (this.#issued.length === 0) return text;
    let out = text;
    // Longest values first: a value that contains another is replaced whole.
    const entries = [...this.#issued].sort((a, b) => b[2].length - a[2].length);
    for (const [label, n, value] of entries) {
      const needle = options.json === true ? JSON.stringify(value).slice(1, -1) : value;
      if (needle !== '' && out.includes(needle)) out = out.split(needle).join(`«${label}_${n}»`);
    }
    return out;
  }

  toJSON(): PseudonymVaultJson {
    return { version: 1, entries: this.entries() };
  }

  static fromJSON(json: unknown): PseudonymVault {
    const vault = new PseudonymVault();
    const data = json as Partial<PseudonymVaultJson> | null;
    if (data === null || typeof data !== 'object' || data.version !== 1 || !Array.isArray(data.entries)) {
      throw new TypeError('pseudonym vault: expected { version: 1, entries: [...] }');
    }
    for (const entry of data.entries as unknown[]) {
      if (!vault.#adopt(entry)) throw new TypeError('pseudonym vault: duplicate placeholder');
    }
    return vault;
  }
}
