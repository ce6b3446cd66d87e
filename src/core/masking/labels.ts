/**
 * Short labels for entity types, used by the `redact` operator (`[EMAIL]`) and in pseudonym
 * placeholders (`«EMAIL_1»`). Types without an entry (secrets, custom detectors) use their own
 * name, upper-cased, with anything outside A-Z and `_` replaced by `_`.
 */

import type { EntityType } from '../detection/types.ts';

export const ENTITY_LABELS: Readonly<Record<string, string>> = Object.freeze({
  EMAIL_ADDRESS: 'EMAIL',
  PHONE_NUMBER: 'PHONE',
  CREDIT_CARD: 'CREDIT_CARD',
  IBAN_CODE: 'IBAN',
  US_SSN: 'SSN',
  IP_ADDRESS: 'IP_ADDRESS',
  PERSON: 'PERSON',
});

const cache = new Map<string, string>();

/** The label for `type`: `[A-Z][A-Z_]*`, at most 40 characters. */
export function labelFor(type: EntityType): string {
  const known = ENTITY_LABELS[type];
  if (known !== undefined) return known;
  let label = cache.get(type);
  if (label === undefined) {
    label = type.toUpperCase().replace(/[^A-Z_]/g, '_').replace(/^_+/, '').slice(0, 40) || 'ENTITY';
    if (cache.size < 1000) cache.set(type, label);
  }
  return label;
}
