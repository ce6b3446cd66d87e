/**
 * When the gateway runs the audit trail's maintenance: a signed checkpoint every
 * `checkpointIntervalMs` and one at shutdown (after the store has flushed and closed), and the
 * retention purge at startup and then daily. Timers are unref'd: they never keep the process up.
 * Failures are logged (without record contents) and retried at the next tick; they never stop
 * the gateway — the chain itself is written by the store, in the transactions of the records.
 */
import type { AuditMaintainer, CheckpointRecord, PurgeResult } from '../audit-maintainer.ts';
import { AuditMaintenance } from './audit-maintenance.ts';
import { parseSigningKey, type SigningKey } from '../audit-keys.ts';

export interface AuditScheduleLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface AuditScheduleOptions {
  /** The recording database (SQLite), unless `open` gives the driver's maintenance. */
  readonly file?: string;
  /** The driver's checkpoint writer and purge (PostgreSQL: postgres/pg-audit-maintenance.ts). */
  readonly open?: (key: SigningKey | null, now: () => number) => AuditMaintainer;
  /** Ed25519 private key (PEM), or null: chain only, unsigned anchors. */
  readonly signingKey: string | null;
  readonly checkpointIntervalMs: number;
  readonly retentionDays: number | null;
  readonly log: AuditScheduleLog;
  readonly now?: () => number;
}

export interface AuditSchedule {
  /** Runs the retention purge now (also what the daily timer does). */
  purge(): Promise<PurgeResult | null>;
  checkpoint(kind: 'periodic' | 'shutdown'): Promise<CheckpointRecord | null>;
  /** Stops the timers, writes the shutdown checkpoint, closes the connection. Call after the store closed. */
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function startAuditSchedule(options: AuditScheduleOptions): AuditSchedule {
  const { log } = options;
  const now = options.now ?? Date.now;
  let key: SigningKey | null = null;
  if (options.signingKey !== null) {
    const parsed = parseSigningKey(options.signingKey);
    if ('problem' in parsed) throw new Error(`audit.signing_key: ${parsed.problem}`);
    key = parsed;
  } else {
    log.warn({}, 'audit.signing_key is not set: the audit chain is kept, but no signed checkpoints are written (aigov audit verify shows edits, not who made them)');
  }
  let maintenance: AuditMaintainer;
  if (options.open !== undefined) maintenance = options.open(key, now);
  else if (options.file !== undefined) maintenance = new AuditMaintenance(options.file, { key, now });
  else throw new Error('the audit schedule needs a database');
  const errorText = (err: unknown): string => (err instanceof Error ? err.message.split('\n', 1)[0]! : 'unknown error');

  const checkpoint = async (kind: 'periodic' | 'shutdown'): Promise<CheckpointRecord | null> => {
    try {
      return await maintenance.checkpoint(kind);
    } catch (err) {
      log.error({ err: errorText(err) }, 'writing the audit checkpoint failed; retrying at the next interval');
      return null;
    }
  };
  const purge = async (): Promise<PurgeResult | null> => {
    if (options.retentionDays === null) return null;
    try {
      const result = await maintenance.purge(now() - options.retentionDays * DAY_MS);
      if (result.entries > 0) log.info({ ...result, retentionDays: options.retentionDays }, 'retention purge removed old recordings; an anchor checkpoint marks the cut');
      return result;
    } catch (err) {
      log.error({ err: errorText(err) }, 'the retention purge failed; retrying tomorrow');
      return null;
    }
  };

  const timers: NodeJS.Timeout[] = [];
  if (key !== null) timers.push(setInterval(() => void checkpoint('periodic'), Math.max(1000, options.checkpointIntervalMs)).unref());
  if (options.retentionDays !== null) {
    void purge();
    timers.push(setInterval(() => void purge(), DAY_MS).unref());
  }
  let closing: Promise<void> | null = null;
  return {
    purge,
    checkpoint,
    close() {
      closing ??= (async () => {
        for (const timer of timers) clearInterval(timer);
        await checkpoint('shutdown');
        await maintenance.close();
      })();
      return closing;
    },
  };
}
