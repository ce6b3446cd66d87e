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
import { approverGroupsNobodyHas, describeUnknownApproverGroups, type CompiledPolicy } from '../core/policy/index.ts';
import type { PolicySource } from './policy-hooks.ts';

export interface WatchedPolicy extends PolicySource {
  readonly source: string;
  /** Re-reads the file now; returns false (and keeps the old policy) when it is bad. */
  reload(): boolean;
  close(): void;
}

export interface PolicyFileOptions {
  readonly reload: boolean;
  readonly logger: Logger;
  readonly debounceMs?: number;
  /** Every group the IdP's users have, where they are known (the dev IdP): approver groups outside it are warned about. */
  readonly knownGroups?: readonly string[];
}

export function openPolicyFile(file: string, options: PolicyFileOptions): WatchedPolicy {
  const { logger, knownGroups } = options;
  const warnUndecidable = (policy: LoadedPolicy): void => {
    if (knownGroups === undefined) return;
    for (const line of describeUnknownApproverGroups(approverGroupsNobodyHas(policy.document, knownGroups), knownGroups)) logger.warn({ policy: policy.source }, line);
  };
  let loaded: LoadedPolicy = loadPolicy(file);
  logger.info({ policy: loaded.source, rules: loaded.document.rules.length }, 'policy loaded');
  warnUndecidable(loaded);
  const reload = (): boolean => {
    try {
      loaded = loadPolicy(file);
      logger.info({ policy: loaded.source, rules: loaded.document.rules.length }, 'policy reloaded');
      warnUndecidable(loaded);
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
