/**
 * Restoring pseudonyms in a streamed answer. A placeholder («EMAIL_1», or `\u00abEMAIL_1\u00bb`
 * inside JSON text) may arrive split across any number of deltas; the restorer holds back only a
 * tail that could still be the beginning of a placeholder (at most MAX_PLACEHOLDER_LENGTH code
 * units) and releases everything else at once.
 *
 * LAW: for any chunking c₁…cₙ of t, push(c₁) + … + push(cₙ) + end() === vault.restore(t, { json }).
 * (A placeholder is a match that starts at an opener and contains no other opener, so a cut
 * before the earliest possible opener of an unfinished placeholder never splits a match.)
 */

import type { PseudonymVault } from './pseudonym-vault.ts';
import { couldStartPlaceholder, MAX_PLACEHOLDER_LENGTH } from './pseudonym-vault.ts';

export interface StreamRestorerOptions {
  /** The stream is the inside of a JSON string (tool-call argument deltas): escape values. */
  readonly json?: boolean;
}

export class StreamRestorer {
  readonly #vault: PseudonymVault;
  readonly #json: boolean;
  #held = '';
  #ended = false;

  constructor(vault: PseudonymVault, options: StreamRestorerOptions = {}) {
    this.#vault = vault;
    this.#json = options.json === true;
  }

  get heldBack(): number {
    return this.#held.length;
  }

  push(delta: string): string {
    if (this.#ended) throw new Error('StreamRestorer: push after end');
    const text = this.#held + delta;
    const cut = this.#holdFrom(text);
    this.#held = text.slice(cut);
    return cut === 0 ? '' : this.#vault.restore(cut === text.length ? text : text.slice(0, cut), { json: this.#json });
  }

  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    const rest = this.#held;
    this.#held = '';
    return rest === '' ? '' : this.#vault.restore(rest, { json: this.#json });
  }

  /** The earliest index in the last MAX_PLACEHOLDER_LENGTH chars where an unfinished placeholder could start. */
  #holdFrom(text: string): number {
    const from = Math.max(0, text.length - MAX_PLACEHOLDER_LENGTH);
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if ((c === 0xab || (this.#json && c === 0x5c)) && couldStartPlaceholder(text.slice(i), this.#json)) return i;
    }
    return text.length;
  }
}
