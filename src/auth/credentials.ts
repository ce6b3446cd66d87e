/**
 * Where the CLI keeps the one long-lived secret it has: the refresh token. Access tokens live
 * only in the daemon's memory. Implementations: the OS keychain (Secret Service on Linux), a
 * 0600 file (fallback, or chosen with --insecure-storage), and the environment (CI).
 */
export type CredentialStoreKind = 'keychain' | 'file' | 'env';

export interface CredentialStore {
  readonly kind: CredentialStoreKind;
  /** Where the secret is, for `aigov status` (never the secret): e.g. "Secret Service (login keyring)". */
  readonly location: string;
  /** The refresh token of a profile, or null when none is stored. Rejects with AIGOV_E_CREDENTIALS_UNREADABLE / AIGOV_E_KEYCHAIN_UNAVAILABLE. */
  load(profile: string): Promise<string | null>;
  save(profile: string, refreshToken: string): Promise<void>;
  /** Deletes the profile's secret; resolves false when there was none. */
  remove(profile: string): Promise<boolean>;
}
