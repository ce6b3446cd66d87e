import type { Readable } from 'node:stream';
import type { GatewayConfig } from '../../config/schema.ts';

/** The limits one streamed answer runs into: its bytes, one event's size, its events, its duration. */
export class AnswerLimits {
  hit: { readonly key: string; readonly text: string } | null = null;
  #bytes = 0;
  #events = 0;
  readonly #limits: GatewayConfig['limits'];
  constructor(limits: GatewayConfig['limits']) {
    this.#limits = limits;
  }
  #set(key: keyof GatewayConfig['limits'], text: string): true {
    this.hit ??= { key, text: `${text} (limits.${key})` };
    return true;
  }
  /** True once the answer's decoded bytes pass max_response_bytes. */
  countBytes(n: number): boolean {
    this.#bytes += n;
    return this.#bytes > this.#limits.max_response_bytes && this.#set('max_response_bytes', `${this.#limits.max_response_bytes} bytes per answer`);
  }
  /** True when an event still without its end is already larger than max_event_bytes (counted in UTF-16 units, ≤ bytes). */
  checkPending(length: number): boolean {
    return length > this.#limits.max_event_bytes && this.#set('max_event_bytes', `${this.#limits.max_event_bytes} bytes per event`);
  }
  countEvents(n: number): boolean {
    this.#events += n;
    return this.#events > this.#limits.max_stream_events && this.#set('max_stream_events', `${this.#limits.max_stream_events} events per answer`);
  }
  /** The stream ran past max_stream_duration_ms: cut the upstream (its loop then ends). */
  timeUp(body: Readable): void {
    this.#set('max_stream_duration_ms', `${this.#limits.max_stream_duration_ms} ms per streamed answer`);
    body.destroy();
  }
}
