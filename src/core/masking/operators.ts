/**
 * Masking operators and `maskText`, the whole-text masking that the stream masker must
 * reproduce exactly.
 *
 * - `redact`        → `[EMAIL]`, `[PHONE]`, `[CREDIT_CARD]`… (see labels.ts)
 * - `mask`          → every code point but the last `keepLast` replaced by `char` (default `*`)
 * - `hmac`          → `[EMAIL:<16 hex>]`: the first 64 bits of HMAC-SHA-256(key, "LABEL:" + value),
 *                     computed by the pure implementation in sha256.ts (no node:crypto in core).
 *                     Stable across calls, sessions and processes for the same key.
 * - `pseudonymize`  → `«EMAIL_1»` from the session's PseudonymVault (required for this operator).
 */

import type { Detection } from '../detection/types.ts';
import { labelFor } from './labels.ts';
import type { PseudonymVault } from './pseudonym-vault.ts';
import { hmacSha256, toHex } from './sha256.ts';

export type MaskOperator =
  | { readonly kind: 'redact' }
  | { readonly kind: 'mask'; readonly keepLast: number; readonly char?: string }
  | { readonly kind: 'hmac'; readonly key: Uint8Array | string }
  | { readonly kind: 'pseudonymize' };

export type OperatorFor = (detection: Detection) => MaskOperator;

/** The replacement text for `value`, a detected entity of `detection.type`. */
export function applyOperator(operator: MaskOperator, detection: Detection, value: string, vault?: PseudonymVault): string {
  switch (operator.kind) {
    case 'redact':
      return `[${labelFor(detection.type)}]`;
    case 'mask': {
      const char = operator.char ?? '*';
      const points = Array.from(value);
      const keep = Math.max(0, Math.min(points.length, Math.floor(operator.keepLast)));
      return char.repeat(points.length - keep) + points.slice(points.length - keep).join('');
    }
    case 'hmac': {
      const label = labelFor(detection.type);
      return `[${label}:${toHex(hmacSha256(operator.key, `${label}:${value}`)).slice(0, 16)}]`;
    }
    case 'pseudonymize':
      if (vault === undefined) throw new Error('the pseudonymize operator needs a PseudonymVault');
      return vault.placeholderFor(detection.type, value);
  }
}

/**
 * `text` with every detection replaced per its operator. Detections are taken in order of
 * `start`; one that overlaps an earlier one masks only its part beyond it (fail closed: every
 * detected character is masked). Text outside detections is copied unchanged.
 */
export function maskText(
  text: string,
  detections: readonly Detection[],
  operatorFor: OperatorFor,
  vault?: PseudonymVault,
): string {
  if (detections.length === 0) return text;
  const sorted = isSorted(detections) ? detections : [...detections].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let cursor = 0;
  for (const d of sorted) {
    const start = Math.max(d.start, cursor, 0);
    const end = Math.min(d.end, text.length);
    if (end <= start) continue;
    out += text.slice(cursor, start);
    const part = start === d.start && end === d.end ? d : { ...d, start, end };
    out += applyOperator(operatorFor(part), part, text.slice(start, end), vault);
    cursor = end;
  }
  return out + text.slice(cursor);
}

function isSorted(detections: readonly Detection[]): boolean {
  for (let i = 1; i < detections.length; i++) if (detections[i - 1]!.start > detections[i]!.start) return false;
  return true;
}
