/**
 * A LISTEN connection of its own (never pooled: a pooled connection may be handed to someone
 * else and its LISTEN lost). When the connection drops it reconnects with backoff and then tells
 * the subscribers as if a notification had come, since some may have been missed meanwhile:
 * subscribers re-read what changed from the database, so a notification is only a wake-up call
 * and losing one costs latency, never a change. One connection serves several channels (the
 * approvals' and the webhook outbox's): each subscriber hears its own.
 *
 * A payload made by {@link stampedPayload} carries its sending time; the listener tells the
 * observer how late each such notification arrived (the NOTIFY lag metric). The sender's clock
 * stamps it and this process's clock reads it: across hosts the figure includes their clock
 * offset (a negative difference counts as 0).
 */
import { connectClient, describePgError, type PgClient, type PgObserver, type PgSettings } from './pg-connection.ts';

/** A notification payload: `what` (no `@`), then `@` and the sending time in epoch ms. */
export function stampedPayload(what: string, sentAtMs: number = Date.now()): string {
  return `${what}@${Math.round(sentAtMs)}`;
}

/** The sending time of a {@link stampedPayload}; null for any other payload. */
export function payloadSentAt(payload: string | undefined): number | null {
  const match = payload === undefined ? null : /@([0-9]{1,15})$/.exec(payload);
  return match ? Number(match[1]) : null;
}

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5000;

export class PgNotifyListener {
  readonly #settings: PgSettings;
  readonly #channels: readonly string[];
  readonly #report: (message: string) => void;
  readonly #observer: PgObserver | null;
  readonly #subscribers = new Map<string, Set<() => void>>();
  #client: PgClient | null = null;
  #closed = false;
  #retryMs = RECONNECT_MIN_MS;
  #timer: NodeJS.Timeout | null = null;

  private constructor(settings: PgSettings, channels: readonly string[], report: (message: string) => void, observer: PgObserver | null) {
    this.#settings = settings;
    this.#channels = channels;
    this.#report = report;
    this.#observer = observer;
    for (const channel of channels) this.#subscribers.set(channel, new Set());
  }

  /**
   * Connects and listens on `channels` (the first is the default one); throws when it cannot (the
   * database is not there). `observer` hears each stamped notification's lag.
   */
  static async open(settings: PgSettings, channels: string | readonly string[], report: (message: string) => void, observer?: PgObserver): Promise<PgNotifyListener> {
    const list = typeof channels === 'string' ? [channels] : [...new Set(channels)];
    if (list.length === 0 || !list.every((c) => /^[a-z_][a-z0-9_]*$/.test(c))) throw new Error('a notification channel is a plain lower-case identifier');
    const listener = new PgNotifyListener(settings, list, report, observer ?? null);
    await listener.#connect();
    return listener;
  }

  /** True while the connection listens (notifications arrive). */
  get listening(): boolean {
    return this.#client !== null;
  }

  /** Calls `onNotify` on each notification on `channel` (default: the first), and after a reconnect. */
  subscribe(onNotify: () => void, channel: string = this.#channels[0]!): () => void {
    const set = this.#subscribers.get(channel);
    if (set === undefined) throw new Error(`not listening on ${channel}`);
    set.add(onNotify);
    return () => set.delete(onNotify);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const set of this.#subscribers.values()) set.clear();
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    // No statement timeout: the connection sits idle, listening, nearly all the time.
    const client = await connectClient(this.#settings, { statementTimeoutMs: 0 });
    try {
      // The first channel last: pg_stat_activity shows a listening connection by its last statement.
      for (const channel of [...this.#channels].reverse()) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    client.on('notification', (message) => {
      const set = this.#subscribers.get(message.channel);
      if (set === undefined) return;
      const sentAt = this.#observer === null ? null : payloadSentAt(message.payload);
      if (sentAt !== null) this.#observer?.notifyLag(message.channel, Math.max(0, Date.now() - sentAt) / 1000);
      this.#notify(set);
    });
    client.on('error', (err) => this.#lost(client, describePgError(err, this.#settings.url)));
    client.on('end', () => this.#lost(client, 'the connection ended'));
    this.#client = client;
    this.#retryMs = RECONNECT_MIN_MS;
  }

  #notify(subscribers: Iterable<() => void>): void {
    for (const subscriber of [...subscribers]) {
      try {
        subscriber();
      } catch {
        // one subscriber's failure is its own
      }
    }
  }

  #lost(client: PgClient, reason: string): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = null;
    void client.end().catch(() => {});
    this.#report(
      `the approvals notification connection to PostgreSQL was lost (${reason}); decisions and webhook notices from other replicas are found by polling until it is back`,
    );
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect().then(
        () => {
          if (this.#closed) {
            void this.close();
            return;
          }
          this.#report('the approvals notification connection to PostgreSQL is back');
          // Whatever was missed meanwhile is read now, on every channel.
          for (const set of this.#subscribers.values()) this.#notify(set);
        },
        () => {
          this.#retryMs = Math.min(RECONNECT_MAX_MS, this.#retryMs * 2);
          this.#scheduleReconnect();
        },
      );
    }, this.#retryMs);
    this.#timer.unref();
  }
}
