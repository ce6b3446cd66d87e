/**
 * Finds text hidden under one light encoding inside a text, for block rules that must see what
 * the model can read: JSON string escapes (`\u0041KIA…`), base64 (standard and URL-safe, at
 * least 16 characters), hex (at least 16 digits) and percent-encoding. Each finder returns the
 * regions of the text it decoded, sorted and disjoint, with the decoded text; a region is kept
 * only when its decoding is printable UTF-8 (random identifiers, hashes and image data are not).
 * (A token spaced out or broken over lines: ./spaced-tokens.ts, which shares the budget.)
 *
 * Linear: every pattern below is a single pass with disjoint alternatives (no backtracking
 * blow-up), and a base64 or hex run is judged on a short prefix before it is decoded whole.
 * `budget.chars` bounds the decoded characters a caller accepts; a finder that would exceed it
 * stops and says so (`exhausted`). Pure: no I/O.
 */

export interface DecodedRegion {
  /** [start, end) in the text that was decoded. */
  readonly start: number;
  readonly end: number;
  readonly decoded: string;
}

export interface DecodeBudget {
  /** Decoded characters still allowed; finders decrement it. */
  chars: number;
  /** Set when a finder stopped because the budget ran out. */
  exhausted: boolean;
}

/** Shortest base64 run decoded (the brief's bound: shorter runs hide too little to matter). */
export const MIN_BASE64 = 16;
/** Shortest hex run decoded. */
export const MIN_HEX = 16;

// Base64 alphabets together (standard `+/`, URL-safe `-_`), optional padding. One character
// class then a bounded tail: linear.
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
const HEX_ONLY = /^(?:0[xX])?[0-9a-fA-F]+$/;
const PERCENT_RUN = /(?:%[0-9a-fA-F]{2})+/g;
// A run of JSON escapes that can spell a character: \uXXXX and \/ (a secret's slash), with the
// other single-character escapes in between so a run is decoded as one.
const JSON_ESCAPE_RUN = /(?:\\u[0-9a-fA-F]{4}|\\[\\/"bfnrt])+/g;
const JSON_SPELLING = /\\u[0-9a-fA-F]{4}|\\\//;
/** Prefix of a base64/hex run decoded first to judge it. */
const PROBE_CHARS = 64;

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const UTF8_LENIENT = new TextDecoder('utf-8');

/** JSON escape runs decoded in place; only runs that spell a character (\u, \/) are regions. */
export function findJsonEscapes(text: string, budget: DecodeBudget): DecodedRegion[] {
  if (!text.includes('\\')) return [];
  const out: DecodedRegion[] = [];
  const re = JSON_ESCAPE_RUN;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const run = m[0];
    if (!JSON_SPELLING.test(run)) continue;
    let decoded: string;
    try {
      decoded = JSON.parse(`"${run}"`) as string;
    } catch {
      continue; // cannot happen for this alphabet; a region we cannot decode is not one
    }
    if (!spend(budget, decoded.length)) break;
    out.push({ start: m.index, end: m.index + run.length, decoded });
  }
  return out;
}

/** Base64 runs (≥ 16 characters) and hex runs (≥ 16 digits) whose decoding is printable text. */
export function findBase64AndHex(text: string, budget: DecodeBudget): DecodedRegion[] {
  const out: DecodedRegion[] = [];
  const re = BASE64_RUN;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const run = m[0];
    const hex = HEX_ONLY.test(run);
    if (hex) {
      const digits = run.startsWith('0x') || run.startsWith('0X') ? run.slice(2) : run;
      if (digits.length < MIN_HEX) continue;
      const even = digits.length & ~1;
      if (!printableBytes(hexBytes(digits.slice(0, Math.min(even, PROBE_CHARS))), true)) continue;
      if (!spend(budget, even / 2)) break;
      const decoded = printableText(hexBytes(digits.slice(0, even)));
      if (decoded !== null) out.push({ start: m.index, end: m.index + run.length, decoded });
      continue;
    }
    const body = run.replace(/=+$/, '');
    if (body.length < MIN_BASE64) continue;
    // Mixed alphabets (`+` with `-`) are not one encoding: a path or an identifier.
    if (/[+/]/.test(body) && /[-_]/.test(body)) continue;
    if (!printableBytes(base64Bytes(body.slice(0, PROBE_CHARS)), body.length > PROBE_CHARS)) continue;
    if (!spend(budget, Math.ceil((body.length * 3) / 4))) break;
    const decoded = printableText(base64Bytes(body));
    if (decoded !== null) out.push({ start: m.index, end: m.index + run.length, decoded });
  }
  return out;
}

/** Runs of percent-escapes decoded as UTF-8 in place (`AKIA%49OSF…` → `AKIAIOSF…`). */
export function findPercentEncoding(text: string, budget: DecodeBudget): DecodedRegion[] {
  if (!text.includes('%')) return [];
  const out: DecodedRegion[] = [];
  const re = PERCENT_RUN;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const run = m[0];
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
    const decoded = printableText(bytes);
    if (decoded === null) continue;
    if (!spend(budget, decoded.length)) break;
    out.push({ start: m.index, end: m.index + run.length, decoded });
  }
  return out;
}

function spend(budget: DecodeBudget, chars: number): boolean {
  if (chars > budget.chars) {
    budget.exhausted = true;
    return false;
  }
  budget.chars -= chars;
  return true;
}

const B64: Int16Array = (() => {
  const t = new Int16Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  t[0x2b] = t[0x2d] = 62; // + -
  t[0x2f] = t[0x5f] = 63; // / _
  return t;
})();

/** Decodes base64 without padding (either alphabet); a trailing partial byte is dropped. */
function base64Bytes(s: string): Uint8Array {
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    acc = ((acc << 6) | B64[s.charCodeAt(i)]!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

function hexBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Text that is mostly printable: no control characters but tab/newline/CR, ≥ 90% not replacement. */
function printable(s: string): boolean {
  if (s.length === 0) return false;
  let bad = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f || c === 0xfffd) bad++;
  }
  return bad * 10 <= s.length && !s.includes('\u0000');
}

/** A prefix probe: lenient UTF-8 (the cut may split a character), then printable. */
function printableBytes(bytes: Uint8Array, truncated: boolean): boolean {
  if (!truncated) return printableText(bytes) !== null;
  const s = UTF8_LENIENT.decode(bytes);
  return printable(s.endsWith('\uFFFD') ? s.slice(0, -1) : s);
}

/** The bytes as text when they are valid UTF-8 and mostly printable; otherwise null. */
function printableText(bytes: Uint8Array): string | null {
  let s: string;
  try {
    s = UTF8.decode(bytes);
  } catch {
    return null;
  }
  return printable(s) ? s : null;
}
