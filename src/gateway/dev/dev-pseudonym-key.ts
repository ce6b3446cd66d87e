/**
 * `aigov server --dev` keeps pseudonym vaults across restarts like a configured gateway does:
 * their key is generated once into the state directory (mode 0600) and referenced from the dev
 * configuration as `pseudonyms.key: { file: … }`. Never logged.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writePrivateFileExclusive, type PrivatePathOptions } from '../../config/private-files.ts';

export const DEV_PSEUDONYM_KEY_FILE = 'pseudonym-vault.key';

/** The key file's path, creating it (32 random bytes, base64) when missing; an existing one is made 0600 (and must be ours). */
export function ensureDevPseudonymKey(stateDir: string, privacy: PrivatePathOptions = {}): string {
  const file = join(stateDir, DEV_PSEUDONYM_KEY_FILE);
  // Already there (or created by a concurrent start): kept; the config loader validates it.
  writePrivateFileExclusive(file, `${randomBytes(32).toString('base64')}\n`, privacy);
  return file;
}
