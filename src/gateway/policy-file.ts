/**
 * The gateway's policy file: loaded at start (a bad file stops the start with the file, key path
 * and expectation), then watched — a changed file is reloaded, and a bad new version keeps the
 * policy in force and logs why.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { loadPolicy, type LoadedPolicy } from '../config/load-policy.ts';
import { isAigovError } from '../core/errors.ts';
import type { CompiledPolicy } from '../core/policy/index.ts';
import type { PolicySource } from './policy-hooks.ts';

export interface WatchedPolicy extends PolicySource {
  readonly source: string;
  /** Re-reads the file now; returns false (and keeps the old policy) when it is bad. */
  reload(): boolean;
  close(): void;
}

export function openPolicyFile(file: string, options: { reload: boolean; logger: Logger; debounceMs?: number }): WatchedPolicy {
  let loaded: LoadedPolicy = loadPolicy(file);
  const { logger } = options;
  logger.info({ policy: loaded.source, rules: loaded.document.rules.length }, 'policy loaded');
  const reload = (): boolean => {
    try {
      loaded = loadPolicy(file);
      logger.info({ policy: loaded.source, rules: loaded.document.rules.length }, 'policy reloaded');
      return true;
    } catch (error) {
      const detail = isAigovError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
      logger.error({ policy: file, problem: detail }, 'the changed policy file is invalid; keeping the policy in force');
      return false;
    }
  };
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  if (options.reload) {
    // Watch the directory: editors replace files by rename, which a file watch would lose.
    const name = basename(loaded.source);
    watcher = watch(dirname(loaded.source), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(reload, options.debounceMs ?? 150);
      timer.unref();
    });
    watcher.unref();
  }
  return {
    source: loaded.source,
    current: (): CompiledPolicy => loaded.compiled,
    reload,
    close() {
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
