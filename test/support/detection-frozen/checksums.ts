// FROZEN COPY of src/core/detection at commit a1e3bc1 — the oracle for test/detection-differential.test.ts
// and the baseline of bench/masking-throughput.ts --baseline. Do not edit.
/**
 * Check digits and checksums used by the built-in detectors. Pure, total functions over strings
 * the detectors already matched (ASCII digits/letters); anything unexpected yields `false`.
 */

/** Luhn (mod 10) over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** ISO 13616 mod-97 check of an IBAN (upper-case, no spaces): true when the remainder is 1. */
export function ibanMod97Valid(iban: string): boolean {
  if (iban.length < 5) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      remainder = (remainder * 10 + (c - 48)) % 97;
    } else if (c >= 65 && c <= 90) {
      remainder = (remainder * 100 + (c - 55)) % 97;
    } else {
      return false;
    }
  }
  return remainder === 1;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zlib) over the UTF-16 code units of an ASCII string. */
export function crc32(text: string): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = (crc >>> 8) ^ (crcTable[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 (0-9A-Za-z) encoding of a non-negative integer, left-padded with '0' to `width`. */
export function base62Encode(value: number, width: number): string {
  let out = '';
  let v = Math.floor(value);
  do {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  } while (v > 0);
  return out.padStart(width, '0');
}

/**
 * The checksum of GitHub's token formats (ghp_/gho_/ghu_/ghs_/ghr_, 2021) and npm's (npm_, 2021):
 * `prefix_` + 30 random base62 characters + 6 characters that are the base62 CRC-32 of the random
 * part. Compared numerically, so the padding convention does not matter.
 */
export function base62Crc32Valid(body: string): boolean {
  if (body.length !== 36) return false;
  const random = body.slice(0, 30);
  const check = body.slice(30);
  let value = 0;
  for (let i = 0; i < check.length; i++) {
    const d = BASE62.indexOf(check.charAt(i));
    if (d < 0) return false;
    value = value * 62 + d;
  }
  return value === crc32(random);
}

/** Decodes base64 or base64url (padding optional) to a binary string; undefined when malformed. */
export function decodeBase64(input: string): string | undefined {
  let bits = 0;
  let acc = 0;
  let out = '';
  let end = input.length;
  while (end > 0 && input.charCodeAt(end - 1) === 61 /* = */) end--;
  if (input.length - end > 2) return undefined;
  for (let i = 0; i < end; i++) {
    const c = input.charCodeAt(i);
    let v: number;
    if (c >= 65 && c <= 90) v = c - 65;
    else if (c >= 97 && c <= 122) v = c - 71;
    else if (c >= 48 && c <= 57) v = c + 4;
    else if (c === 43 || c === 45) v = 62; // + or -
    else if (c === 47 || c === 95) v = 63; // / or _
    else return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  if (end % 4 === 1) return undefined;
  return out;
}
