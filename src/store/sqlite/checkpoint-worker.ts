/**
 * The SQLite store's checkpointer thread: moves WAL frames into the database file on its own
 * connection, so a checkpoint (page copies plus two fsyncs, 10-40 ms on a busy disk) never runs
 * on the gateway's event loop and never inside a commit of the writer thread.
 *
 * It blocks in `Atomics.wait` on the shared `kick` slot (no timers, no polling) and:
 * - when the writer kicks it (every `checkpointBytes` of commits): PASSIVE checkpoint;
 * - when `idleMs` pass without a kick but with commits since the last checkpoint: PASSIVE;
 * - when `idleMs` pass with no commit at all and the WAL is not empty: TRUNCATE, with a zero busy
 *   timeout (it gives up at once when the writer or a reader is active, and tries again later).
 * After each checkpoint it publishes the WAL's frame count; when that reaches `walLimitBytes`,
 * the WAL is not restarting (under sustained writes a concurrent checkpoint always lags a few
 * frames) and it asks the writer to catch up itself (writer-worker.ts), skipping its own kicked
 * checkpoints until the writer has.
 * The main thread stops it by setting the shared `stop` slot and waking it.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError, SHARED, type CheckpointerData, type FromCheckpointer } from './worker-protocol.ts';

function run(): void {
  const port = parentPort;
  if (port === null) throw new Error('checkpoint-worker.ts runs as a worker thread');
  const data = workerData as CheckpointerData;
  const shared = new Int32Array(data.shared);
  const send = (message: FromCheckpointer): void => port.postMessage(message);
  // Started alongside the writer (thread start-up is the slow part); opens once the writer has.
  while (Atomics.load(shared, SHARED.go) === 0 && Atomics.load(shared, SHARED.stop) === 0) Atomics.wait(shared, SHARED.go, 0);
  if (Atomics.load(shared, SHARED.stop) !== 0) {
    port.close();
    return;
  }

  let db: DatabaseSync;
  let restartFrames: number;
  let passive: StatementSync;
  let truncate: StatementSync;
  try {
    db = new DatabaseSync(data.location, { timeout: 0 });
    db.exec('PRAGMA wal_autocheckpoint = 0');
    db.exec('PRAGMA journal_size_limit = 67108864');
    const pageSize = Number(db.prepare('PRAGMA page_size').get()?.['page_size'] ?? 4096);
    restartFrames = Math.max(16, Math.floor(data.walLimitBytes / (pageSize + 24)));
    passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
    truncate = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');
  } catch (err) {
    send({ t: 'open-failed', reason: describeError(err) });
    port.close();
    return;
  }
  send({ t: 'ready' });
  port.close(); // nothing more to say; the loop below keeps the thread

  /** Frames in the WAL after the checkpoint, or -1 when it could not run. */
  const checkpoint = (statement: StatementSync): number => {
    try {
      const row = statement.get();
      const busy = Number(row?.['busy'] ?? 1);
      const frames = Number(row?.['log'] ?? -1);
      if (busy !== 0 || frames < 0) return -1; // another checkpoint, the writer or a reader was in the way
      Atomics.add(shared, SHARED.checkpoints, 1);
      Atomics.store(shared, SHARED.walFrames, frames);
      if (frames >= restartFrames) Atomics.store(shared, SHARED.restart, 1);
      return frames;
    } catch {
      return -1; // a deleted or locked file: the writer reports write failures; nothing to add here
    }
  };

  let seenKick = Atomics.load(shared, SHARED.kick);
  let seenCommits = Atomics.load(shared, SHARED.commits);
  let walEmpty = false; // unknown at start: the first idle round truncates what a previous run left
  while (Atomics.load(shared, SHARED.stop) === 0) {
    const woke = Atomics.wait(shared, SHARED.kick, seenKick, data.idleMs);
    if (Atomics.load(shared, SHARED.stop) !== 0) break;
    const kick = Atomics.load(shared, SHARED.kick);
    const commits = Atomics.load(shared, SHARED.commits);
    if (woke !== 'timed-out' || commits !== seenCommits) {
      // While the writer is asked to catch up, stay out of its way: a running checkpoint would
      // make its own attempt return busy, again and again under sustained writes — also after a
      // quiet spell with commits in it (the writer catches up after its next commit; once writes
      // stop, the idle round below truncates).
      if (Atomics.load(shared, SHARED.restart) === 0) checkpoint(passive);
      walEmpty = false;
    } else if (!walEmpty) {
      walEmpty = checkpoint(truncate) === 0;
    }
    seenKick = kick;
    seenCommits = commits;
  }
  db.close();
}

run();
