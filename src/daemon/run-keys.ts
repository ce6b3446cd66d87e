/**
 * Per-run keys: the only credential a child process holds. A key works only against this
 * daemon, for as long as its run lasts. Keys are kept as SHA-256 digests and compared in
 * constant time against every live run, so neither the lookup nor a near miss leaks how much
 * of a guess was right.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const RUN_KEY_PREFIX = 'aigovrun_';

export interface RunInfo {
  readonly sessionId: string;
  readonly label: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
}

export interface RunGrant {
  readonly runKey: string;
  readonly sessionId: string;
}

interface RunEntry extends RunInfo {
  readonly digest: Buffer;
}

/** Labels are shown in `aigov daemon status`; keep them short and printable. */
const MAX_LABEL_CHARS = 200;

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class RunRegistry {
  readonly #runs: RunEntry[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  mint(label: string): RunGrant {
    const runKey = `${RUN_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const sessionId = `ses_run_${randomBytes(12).toString('hex')}`;
    const cleanLabel = Array.from(label.slice(0, MAX_LABEL_CHARS), (ch) => (ch < ' ' || ch === '\u007f' ? ' ' : ch)).join('');
    this.#runs.push({ digest: digestOf(runKey), sessionId, label: cleanLabel, startedAt: this.#now() });
    return { runKey, sessionId };
  }

  /** The run a presented key belongs to, or null. Looks at every run, whatever matches. */
  verify(presented: string | null | undefined): RunInfo | null {
    if (typeof presented !== 'string' || presented === '') return null;
    const digest = digestOf(presented);
    let found: RunEntry | null = null;
    for (const run of this.#runs) {
      if (timingSafeEqual(run.digest, digest) && found === null) found = run;
    }
    return found === null ? null : { sessionId: found.sessionId, label: found.label, startedAt: found.startedAt };
  }

  /** Revokes a run; false when the key was not live. */
  revoke(runKey: string): boolean {
    const digest = digestOf(runKey);
    const index = this.#runs.findIndex((run) => timingSafeEqual(run.digest, digest));
    if (index < 0) return false;
    this.#runs.splice(index, 1);
    return true;
  }

  list(): RunInfo[] {
    return this.#runs.map(({ sessionId, label, startedAt }) => ({ sessionId, label, startedAt }));
  }

  get size(): number {
    return this.#runs.length;
  }
}
