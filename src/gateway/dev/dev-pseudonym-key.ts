/**
 * `aigov server --dev` keeps pseudonym vaults across restarts like a configured gateway does:
 * their key is generated once into the state directory (mode 0600) and referenced from the dev
 * configuration as `pseudonyms.key: { file: … }`. Never logged.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEV_PSEUDONYM_KEY_FILE = 'pseudonym-vault.key';

/** The key file's path, creating it (32 random bytes, base64) when missing. */
export function ensureDevPseudonymKey(stateDir: string): string {
  const file = join(stateDir, DEV_PSEUDONYM_KEY_FILE);
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Already there (or created by a concurrent start): keep it, the config loader validates it.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    chmodSync(file, 0o600);
  }
  return file;
}
