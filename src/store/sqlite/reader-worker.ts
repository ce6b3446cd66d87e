/**
 * The SQLite store's reader thread: answers every read of the recording store (store-reads.ts)
 * on its own read-only connection, so a costly auditor query (a filter that visits every
 * session) runs beside the writer thread instead of holding up `recordRequest`. WAL lets this
 * connection read a committed snapshot while the writer commits.
 *
 * Reads see this process's own writes because the main thread, before posting a read, flushes
 * whatever it has in flight to the writer and waits for that commit (sqlite-store.ts).
 * It opens once the writer has created and migrated the database (the shared `go` slot), and is
 * closed (by message) before the writer, whose connection must be the last one.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { StoreReads } from './store-reads.ts';
import { describeError, SHARED, type FromReader, type ReaderData, type ToReader } from './worker-protocol.ts';

function start(): void {
  const port = parentPort;
  if (port === null) throw new Error('reader-worker.ts runs as a worker thread');
  const data = workerData as ReaderData;
  const shared = new Int32Array(data.shared);
  const send = (message: FromReader): void => port.postMessage(message);
  // Started alongside the writer (thread start-up is the slow part); opens once the writer has.
  while (Atomics.load(shared, SHARED.go) === 0 && Atomics.load(shared, SHARED.stop) === 0) Atomics.wait(shared, SHARED.go, 0);
  if (Atomics.load(shared, SHARED.go) === 0) {
    port.close();
    return;
  }
  let db: DatabaseSync;
  let reads: StoreReads;
  try {
    db = new DatabaseSync(data.location, { readOnly: true, timeout: data.busyTimeoutMs });
    reads = new StoreReads(db);
  } catch (err) {
    send({ t: 'open-failed', reason: describeError(err) });
    port.close();
    return;
  }
  port.on('message', (message: ToReader) => {
    if (message.t === 'close') {
      try {
        db.close();
      } catch {
        // nothing to report: reads are over and the writer's connection closes the WAL
      }
      port.close();
      return;
    }
    let value: unknown = null;
    let error: string | null = null;
    try {
      value = reads.read(message.read);
    } catch (err) {
      error = `reading the recording store failed: ${describeError(err)}`;
    }
    send({ t: 'reply', id: message.id, value, error });
  });
  send({ t: 'ready' });
}

start();
