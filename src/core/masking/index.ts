/** Masking: operators, whole-text masking, pseudonyms, and their streaming forms. */
export { ENTITY_LABELS, labelFor } from './labels.ts';
export { applyOperator, maskText } from './operators.ts';
export type { MaskOperator, OperatorFor } from './operators.ts';
export { couldStartPlaceholder, MAX_PLACEHOLDER_LENGTH, PseudonymVault } from './pseudonym-vault.ts';
export type { PseudonymVaultJson, RestoreOptions } from './pseudonym-vault.ts';
export { hmacSha256, sha256, toHex } from './sha256.ts';
export { FORCED_REDACTION, StreamMasker, weightCut } from './stream-masker.ts';
export type { DetectFn, StreamingDetector, StreamMaskerOptions } from './stream-masker.ts';
export { StreamRestorer } from './stream-restorer.ts';
export type { StreamRestorerOptions } from './stream-restorer.ts';
