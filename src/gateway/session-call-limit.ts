/**
 * `limits.max_calls_per_session`: a bound on how many governed calls one session may make, so a
 * runaway client (an agent spawning sub-agents in a loop) stops at a clear 429 instead of filling
 * the recordings. Checked before anything is recorded or forwarded.
 *
 * A session is the x-aigov-session id a client sends (`aigov run` sets one per run), counted per
 * user: another user naming the same id neither uses up nor resets the owner's count. Calls
 * without the header are each their own session and are not counted. Counts live in this
 * process's memory: with several replicas each counts its share, and a restart starts over.
 * At most {@link TRACKED_SESSIONS} sessions are tracked; past that the least recently active is
 * forgotten (starting a new session is what the limit asks for anyway).
 */
import { AigovError } from '../core/errors.ts';
import type { Principal } from '../core/events.ts';

export const TRACKED_SESSIONS = 100_000;

export class SessionCallLimit {
  readonly limit: number;
  readonly #capacity: number;
  /** Calls made per user and session, least recently active first. */
  readonly #calls = new Map<string, number>();

  /** `limit` 0 counts nothing and refuses nothing. */
  constructor(limit: number, capacity: number = TRACKED_SESSIONS) {
    this.limit = limit;
    this.#capacity = capacity;
  }

  /**
   * Counts one call of `sessionId` (null: a call without x-aigov-session) by `principal`; returns
   * the error to answer with when the session already made `limit` calls, else null.
   */
  admit(principal: Principal, sessionId: string | null): AigovError | null {
    if (this.limit <= 0 || sessionId === null) return null;
    const key = `${principal.issuer}\u0000${principal.subject}\u0000${sessionId}`;
    const made = this.#calls.get(key) ?? 0;
    // Re-inserting moves the session to the end: a session still flooding is never the one forgotten.
    this.#calls.delete(key);
    if (made >= this.limit) {
      this.#calls.set(key, made);
      return new AigovError('AIGOV_E_SESSION_CALL_LIMIT', { limit: this.limit });
    }
    this.#calls.set(key, made + 1);
    if (this.#calls.size > this.#capacity) {
      const oldest = this.#calls.keys().next();
      if (!oldest.done) this.#calls.delete(oldest.value);
    }
    return null;
  }

  /** Sessions currently tracked (for tests and metrics). */
  get tracked(): number {
    return this.#calls.size;
  }
}
