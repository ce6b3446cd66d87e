/**
 * `aigov server --dev` signs its audit checkpoints like a configured gateway does: an Ed25519
 * key is generated once into the state directory (PEM, mode 0600) and referenced from the dev
 * configuration as `audit.signing_key: { file: … }`. `aigov audit verify --db <state>/aigov.db
 * --public-key <state>/audit-signing.key` checks against it. Never logged.
 */
import { join } from 'node:path';
import type { PrivatePathOptions } from '../../config/private-files.ts';
import { createSigningKeyFile } from '../../store/audit-keys.ts';

export const DEV_AUDIT_KEY_FILE = 'audit-signing.key';

/** The key file's path, creating it when missing. */
export function ensureDevAuditKey(stateDir: string, privacy: PrivatePathOptions = {}): string {
  const file = join(stateDir, DEV_AUDIT_KEY_FILE);
  createSigningKeyFile(file, privacy);
  return file;
}
