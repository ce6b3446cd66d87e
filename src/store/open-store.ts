/**
 * The single place that picks the recording store driver from the `storage` config.
 * Drivers are imported lazily, so commands that never open a store do not load them.
 */
import path from 'node:path';
import type { PrivatePathOptions } from '../config/private-files.ts';
import type { RecordingStore } from './recording-store.ts';

export type StorageSettings = { readonly driver: 'sqlite'; readonly path: string };

/**
 * Opens the configured store. A relative `path` is resolved against `baseDir` (the directory
 * of the configuration file), never against the process working directory.
 * `hooks.onWriteError` receives write-behind failures (messages carry no record data); log them.
 * `hooks.onSettled` hears how many calls of a stopped gateway were marked aborted on open; log it.
 * `hooks.onTightened` is told when an existing database file was accessible to other users and
 * has been made private (path and old mode); log it as a warning.
 * Throws AigovError('AIGOV_E_STORE_OPEN_FAILED') when the store cannot be opened.
 */
export async function openRecordingStore(
  storage: StorageSettings,
  baseDir: string,
  hooks: { readonly onWriteError?: (err: Error) => void; readonly onSettled?: (count: number) => void; readonly onTightened?: PrivatePathOptions['onTightened'] } = {},
): Promise<RecordingStore> {
  const driver = storage.driver;
  switch (driver) {
    case 'sqlite': {
      const { openSqliteStore } = await import('./sqlite/sqlite-store.ts');
      return openSqliteStore({ path: path.resolve(baseDir, storage.path), onWriteError: hooks.onWriteError, onSettled: hooks.onSettled, onTightened: hooks.onTightened });
    }
    default: {
      const unknown: never = driver;
      throw new Error(`unknown storage driver ${String(unknown)}`);
    }
  }
}
