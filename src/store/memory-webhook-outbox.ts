/**
 * The webhook outbox in this process's memory (webhook-outbox.ts): the notifier's store when it is
 * given none (tests, tools). Same claims and leases as the database outboxes; nothing survives
 * the process, so {@link MemoryWebhookOutbox.abandon} lets the notifier give up on what is left
 * when it closes.
 */
import { randomUUID } from 'node:crypto';
import type { ClaimedDelivery, ClaimRequest, OutboxBatch, OutboxRow, OutboxSettle, OutboxStatus, SweepRequest, SweepResult, WebhookOutboxStore } from './webhook-outbox.ts';

interface MemoryRow {
  readonly row: OutboxRow;
  attempts: number;
  nextAt: number;
  claim: string | null;
}

export class MemoryWebhookOutbox implements WebhookOutboxStore {
  readonly durable = false;
  readonly watch = null;
  /** Pending rows only: a settled row is forgotten (there is nothing to purge later). */
  readonly #rows = new Map<string, MemoryRow>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async enqueue(batch: OutboxBatch): Promise<number> {
    const room = Math.max(0, batch.maxPending - this.#rows.size);
    const kept = batch.rows.slice(0, room);
    const now = this.#now();
    for (const row of kept) this.#rows.set(row.id, { row, attempts: 0, nextAt: now, claim: null });
    return kept.length;
  }

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const now = this.#now();
    const receivers = new Set(request.receivers);
    const due = [...this.#rows.values()]
      .filter((r) => r.nextAt <= now && r.attempts <= request.maxAttempts && receivers.has(r.row.receiver))
      .sort((a, b) => a.nextAt - b.nextAt)
      .slice(0, Math.max(0, request.limit));
    return due.map((r) => {
      r.attempts += 1;
      r.nextAt = now + request.leaseMs;
      r.claim = randomUUID();
      return { ...r.row, claim: r.claim, attempt: r.attempts };
    });
  }

  async settle(delivery: ClaimedDelivery, outcome: OutboxSettle): Promise<boolean> {
    const r = this.#rows.get(delivery.id);
    if (r === undefined || r.claim !== delivery.claim) return false;
    r.claim = null;
    switch (outcome.kind) {
      case 'delivered':
      case 'failed':
        this.#rows.delete(delivery.id);
        break;
      case 'retry':
        r.nextAt = this.#now() + Math.max(0, outcome.delayMs);
        break;
      case 'release':
        r.attempts = Math.max(0, r.attempts - 1);
        r.nextAt = this.#now();
        break;
    }
    return true;
  }

  async status(receivers: readonly string[], maxAttempts: number): Promise<OutboxStatus> {
    const known = new Set(receivers);
    let next: number | null = null;
    for (const r of this.#rows.values()) {
      if (r.attempts > maxAttempts || !known.has(r.row.receiver)) continue;
      if (next === null || r.nextAt < next) next = r.nextAt;
    }
    return { pending: this.#rows.size, nextDueInMs: next === null ? null : next - this.#now() };
  }

  async sweep(request: SweepRequest): Promise<SweepResult> {
    const now = this.#now();
    const known = new Set(request.receivers);
    const unknown = new Map<string, number>();
    let stranded = 0;
    for (const [id, r] of this.#rows) {
      const lapsed = r.nextAt <= now; // not due yet: waiting for a retry, or claimed (in flight)
      if ((r.claim === null || lapsed) && !known.has(r.row.receiver) && r.row.createdAt <= now - request.unknownGraceMs) {
        unknown.set(r.row.host, (unknown.get(r.row.host) ?? 0) + 1);
        this.#rows.delete(id);
      } else if (lapsed && r.attempts > request.maxAttempts) {
        stranded += 1;
        this.#rows.delete(id);
      }
    }
    return { unknown, stranded, purged: 0 };
  }

  /** Forgets every pending row (the process is going away); returns them. */
  abandon(): OutboxRow[] {
    const rows = [...this.#rows.values()].map((r) => r.row);
    this.#rows.clear();
    return rows;
  }
}
