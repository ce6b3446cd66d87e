/** Waiting for a full socket: resolves on 'drain', or on 'close' so a vanished peer never hangs us. */
import type { Writable } from 'node:stream';

export function waitForDrain(stream: Writable): Promise<void> {
  // Already gone: its 'close' was emitted before we started to wait, and no 'drain' will come.
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
