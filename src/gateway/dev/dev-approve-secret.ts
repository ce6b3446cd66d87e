/**
 * The dev IdP's approve secret: whoever can finish a device login as a seeded user holds that
 * user's tokens, so `POST <issuer>/dev/approve` (and `/dev/deny`) and the browser's "sign in as"
 * page require a secret that only the operator has. It is random per start of
 * `aigov server --dev`, printed in its banner, and kept in `<state dir>/dev-approve.secret`
 * (0600, in the 0700 state dir) so tools of the same user can read it; other local users
 * cannot. The gateway's own terminal (`approve CODE alice`) needs no secret: it is the operator.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writePrivateFileReplacing } from '../../config/private-files.ts';

export const DEV_APPROVE_SECRET_FILE = 'dev-approve.secret';

export interface DevApproveSecret {
  readonly secret: string;
  readonly file: string;
  /** Deletes the file if it still holds this secret (a later start may have replaced it). */
  remove(): void;
}

/** A new secret (32 random bytes, base64url), written to the state dir 0600. */
export function createDevApproveSecret(stateDir: string): DevApproveSecret {
  const secret = randomBytes(32).toString('base64url');
  const file = join(stateDir, DEV_APPROVE_SECRET_FILE);
  writePrivateFileReplacing(file, `${secret}\n`);
  return {
    secret,
    file,
    remove() {
      try {
        if (readFileSync(file, 'utf8').trim() === secret) unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}

/** Constant-time comparison (of digests, so the lengths leak nothing either). */
export function devApproveSecretMatches(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || given === '' || expected === '') return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(expected), digest(given.trim()));
}
