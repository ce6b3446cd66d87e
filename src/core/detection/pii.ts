/**
 * Personal-data detectors: email, phone, credit card, IBAN, US SSN, IPv4/IPv6. Each validates
 * what a regex finds (checksums, number plans, issuer ranges) so that look-alikes — order numbers,
 * version strings, UUIDs, git SHAs — are not reported.
 */
import { findPhoneNumbersInText } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import { AFTER, BEFORE1, BEFORE2, BEFORE3, digitRuns, END, RUN_FIELDS, SPAN, START } from './anchors.ts';
import { anchoredMatches, CONTEXT_WINDOW, contextRegexTest, contextTest, defineDetector } from './detector-kit.ts';
import type { Candidate } from './detector-kit.ts';
import { asciiClass, runStart } from './settle.ts';
import type { CharTest } from './settle.ts';
import type { Detector } from './types.ts';

/**
 * Streaming hint shared by the PII detectors: pending from the first candidate start p in the
 * trailing run of `run` characters (those a match, and the characters its regex reads after it,
 * can hold) where `start(text, p)` says an entity could begin and still reach the end of the
 * text (else everything it could match, and what it reads after, is already in the text).
 */
function runHint(run: CharTest, span: number, start: (text: string, p: number) => boolean): (text: string) => number {
  return (text) => {
    const n = text.length;
    for (let p = Math.max(runStart(text, run), n - span); p < n; p++) if (start(text, p)) return p;
    return n;
  };
}

// ---------------------------------------------------------------- email

/** File extensions that look like TLDs in `icon@2x.png`-style names. */
const FILE_TLDS = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico', 'js', 'mjs', 'cjs', 'ts', 'tsx', 'jsx', 'css', 'html', 'json', 'yaml', 'yml', 'md', 'txt', 'pdf', 'zip', 'gz', 'tar']);
const EMAIL_RE =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}([A-Za-z]{2,63})(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g;

const EMAIL_AT = new RegExp(EMAIL_RE.source, 'y');

/**
 * The matches of EMAIL_RE, in order, without running it at every position: a match holds exactly
 * one `@` (no part of it can hold another) and, by its lookbehind, starts where the run of
 * EMAIL_BOUNDARY characters ending right before that `@` starts — the one place it can start.
 * So the regex is tried (sticky) there only, for each `@` past the previous match.
 */
function emailMatches(text: string): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  let from = 0; // where the global scan would resume
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let q = at;
    while (q > 0 && at - q <= 64 && EMAIL_BOUNDARY(text.charCodeAt(q - 1))) q--;
    if (q < from || q === at || at - q > 64) continue;
    EMAIL_AT.lastIndex = q;
    const m = EMAIL_AT.exec(text);
    if (m === null) continue;
    out.push(m);
    from = q + m[0].length;
    if (from > at + 1) at = from - 1;
  }
  return out;
}

const EMAIL_RUN = asciiClass('A-Za-z0-9._%+@-');
const EMAIL_BOUNDARY = asciiClass('A-Za-z0-9._%+-');
const EMAIL_FIRST = asciiClass('A-Za-z0-9_%+-');
const EMAIL_CONTEXT = contextTest(['mail', 'contact', 'reach']);
const URL_PASSWORD_BEFORE = /:\/\/[^\s/@]*:$/;

export const emailDetector: Detector = defineDetector({
  id: 'builtin.email',
  type: 'EMAIL_ADDRESS',
  maxLength: 254,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 2,
  find(text) {
    if (!text.includes('@')) return [];
    const out: Candidate[] = [];
    for (const m of emailMatches(text)) {
      const tld = (m[1] ?? '').toLowerCase();
      if (FILE_TLDS.has(tld)) continue;
      if (m[0].startsWith('git@')) continue; // git@host:org/repo SSH remotes (the local part is `git`)
      // The password of `scheme://user:password@host` is the URL-credentials detector's (the
      // pattern ends with the `:` right before the match).
      if (m.index > 0 && text.charCodeAt(m.index - 1) === 58 && URL_PASSWORD_BEFORE.test(text.slice(Math.max(0, m.index - 200), m.index))) continue;
      out.push({ start: m.index, end: m.index + m[0].length, confidence: EMAIL_CONTEXT(text, m.index) ? Math.min(1, 0.9 + 0.1) : 0.9 });
    }
    return out;
  },
  // An email (≤ 64-character local part) can begin at the run's start or right after an `@`.
  settledBefore: runHint(EMAIL_RUN, 254 + 2, (text, p) => {
    if (!EMAIL_FIRST(text.charCodeAt(p)) || (p > 0 && EMAIL_BOUNDARY(text.charCodeAt(p - 1)))) return false;
    const at = text.indexOf('@', p);
    return (at < 0 ? text.length : at) - p <= 64;
  }),
  // Matches hold only EMAIL_RUN characters and the scan resumes at the previous match's end (in
  // `a@b.co@c.co@d.co` which `@` starts a match depends on the chain's start): in step from the
  // run's start on.
  scanStart: (text, at) => runStart(text, EMAIL_RUN, at),
});

// ---------------------------------------------------------------- phone

/** Phone-shaped runs handed to libphonenumber (which is too slow to scan whole texts). */
const PHONE_CANDIDATE_RE =
  /(?<![\w.+-])(?:\+|00)?\(?\d[\d \t().\-/]{4,24}\d(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,6})?(?![\w]|[.-]\d)/g;
const PHONE_REGIONS: readonly CountryCode[] = ['US', 'GB', 'DE', 'FR', 'IN', 'BR', 'CA', 'AU', 'IL'];
const PHONE_WORDS = ['phone', 'tel', 'call', 'mobile', 'cell', 'fax', 'contact', 'whatsapp', 'sms', 'text me', 'dial', 'reach'];
const NOT_PHONE_WORDS = ['order', 'invoice', 'ref', 'tracking', 'account', 'acct', 'id:', 'id ', 'serial', 'ticket', 'po ', 'sku', 'isbn', 'version'];
const DATE_LIKE = /^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$/;
const DOTTED_QUAD = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const DATE_PREFIX = /^\d{4}-\d{2}-\d{2}(?!\d)/;
const SSN_SHAPE = /^\d{3}-\d{2}-\d{4}$/;

/** Characters of a phone candidate's core (and of what its regex reads after it). */
const PHONE_RUN = asciiClass('0-9 \t()./+-');
const PHONE_START = asciiClass('0-9+(');
const PHONE_BOUNDARY = asciiClass('A-Za-z0-9_.+-');
const PHONE_BLANK = asciiClass(' \t');
const DIGIT = asciiClass('0-9');
/** The extension words of PHONE_CANDIDATE_RE and their prefixes, longest first. */
const PHONE_EXT_PARTS = ['extension', 'extensio', 'extensi', 'extens', 'exten', 'exte', 'ext.', 'ext', 'ex', 'e', 'x'];
/** The last characters of PHONE_EXT_PARTS. */
const EXT_LETTER = asciiClass('extnsio.');
/** The longest core PHONE_CANDIDATE_RE can match, plus the two characters it reads after it. */
const PHONE_CORE_SPAN = 2 + 1 + 1 + 24 + 1 + 2;

/**
 * Where an extension (`[ \t]*(x|ext\.?|extension)[ \t]*\d{1,6}`) that the end of the text may
 * still be writing begins, right after a digit; text.length when there is none. With `end` < the
 * text's length: where one that ends at `end` (with at least one digit) begins.
 */
function partialExtensionStart(text: string, end = text.length): number {
  const n = text.length;
  let i = end;
  while (i > 0 && DIGIT(text.charCodeAt(i - 1))) i--;
  if (end - i > 6 || (end < n && i === end)) return n;
  while (i > 0 && PHONE_BLANK(text.charCodeAt(i - 1))) i--;
  const word = PHONE_EXT_PARTS.find((w) => text.endsWith(w, i));
  if (word === undefined) return n;
  let j = i - word.length;
  while (j > 0 && PHONE_BLANK(text.charCodeAt(j - 1))) j--;
  return j > 0 && DIGIT(text.charCodeAt(j - 1)) ? j : n;
}

/** The first candidate start in the trailing run of core characters ending at q that can still reach q. */
function phoneCandidateBefore(text: string, q: number): number {
  for (let p = runStart(text, PHONE_RUN, q); p < q; p++) {
    if (!PHONE_START(text.charCodeAt(p)) || (p > 0 && PHONE_BOUNDARY(text.charCodeAt(p - 1)))) continue;
    // Past the core's longest span only blanks may lie before an extension; anything else
    // means the candidate from p (and what its regex reads after it) is complete.
    let blanksOnly = true;
    for (let i = p + PHONE_CORE_SPAN; i < q; i++) {
      if (!PHONE_BLANK(text.charCodeAt(i))) {
        blanksOnly = false;
        break;
      }
    }
    if (blanksOnly) return p;
  }
  return text.length;
}

/**
 * Detector.scanStart of the phone detector: the start of the maximal run ending at `at` of the
 * characters a candidate can hold — PHONE_RUN, and an extension word (x, ext, extension) right
 * after one of them. Nondecreasing in `at`. A candidate never holds the character before that run, so the global scan
 * (which resumes where the previous candidate ended, and so tiles a chain of digit groups from
 * its start) is in step from the run's first character on, wherever it began before it.
 */
function phoneScanStart(text: string, at: number): number {
  let i = at;
  // An extension word that `at` cuts (`5 ex|t 1`) is part of the run, so that the answer never
  // decreases as `at` grows (a larger `at` would walk over the whole word).
  if (i > 0 && EXT_LETTER(text.charCodeAt(i - 1))) {
    const cut = PHONE_EXT_PARTS.find((w) => text.endsWith(w, i));
    if (cut !== undefined && i - cut.length >= 1 && PHONE_RUN(text.charCodeAt(i - cut.length - 1))) i -= cut.length;
  }
  for (;;) {
    i = runStart(text, PHONE_RUN, i);
    const c = i > 0 ? text.charCodeAt(i - 1) : 0;
    const word = c === 120 /* x */ ? 1 : c === 116 /* t */ && text.endsWith('ext', i) ? 3 : c === 110 /* n */ && text.endsWith('extension', i) ? 9 : 0;
    if (word === 0 || i - word < 1 || !PHONE_RUN(text.charCodeAt(i - word - 1))) return i;
    i -= word;
  }
}

function phoneHint(text: string): number {
  const n = text.length;
  // A candidate in the trailing run, or one whose extension the end of the text is still writing.
  const q = partialExtensionStart(text);
  let h = phoneCandidateBefore(text, n);
  if (q < n) h = Math.min(h, phoneCandidateBefore(text, q));
  // An extension's digits followed by the `.` or `-` the text ends with: the regex's lookahead
  // (?![.-]\d) is still open there, so a digit that follows changes the candidate.
  const last = n > 0 ? text.charCodeAt(n - 1) : 0;
  if (last === 46 || last === 45) {
    const e = partialExtensionStart(text, n - 1);
    if (e < n) h = Math.min(h, phoneCandidateBefore(text, e));
  }
  return h;
}

const PHONE_AT = new RegExp(PHONE_CANDIDATE_RE.source, 'y');
const PHONE_CONTEXT = contextTest(PHONE_WORDS);
const NOT_PHONE_CONTEXT = contextTest(NOT_PHONE_WORDS, 24);

/**
 * Calls `found(start, end)` for each match of PHONE_CANDIDATE_RE, in order, found from the digit runs
 * (and at once, while that part of the text is in the CPU's cache):
 * a match starts with `(?:\+|00)?\(?` right before its first digit, so at a digit run's start s
 * (no prefix, or `00` and the run goes on), or at s − 1 (`+` or `(`), or at s − 2 (`+(`), where s
 * is the start of the first digit run it holds; its `\d[\d \t().\-/]{4,24}\d` needs six body
 * characters from s on. Those starts are tried (sticky) in increasing order from where the
 * previous match ended — exactly the starts where the global scan can find a match.
 */
function forEachPhoneCandidate(text: string, found: (start: number, end: number) => void): void {
  const { data } = digitRuns(text);
  const n = text.length;
  let from = 0;
  for (let o = 0; o < data.length; o += RUN_FIELDS) {
    const s = data[o + START]!;
    if (s < from) continue;
    if (s + 6 > n) break;
    const b1 = data[o + BEFORE1]!;
    const b2 = data[o + BEFORE2]!;
    // (?<![\w.+-]) before each start: s (no prefix, or `00`), s − 1 (`+` or `(`), s − 2 (`+(`).
    const atS2 = s - 2 >= from && b2 === 43 && b1 === 40 && !PHONE_BOUNDARY(data[o + BEFORE3]!);
    const atS1 = s - 1 >= from && (b1 === 43 || b1 === 40) && !PHONE_BOUNDARY(b2);
    const atS = !PHONE_BOUNDARY(b1);
    if (!atS2 && !atS1 && !atS) continue;
    if (data[o + SPAN]! < 6) continue; // the six body characters from s
    for (let q = s - 2; q <= s; q++) {
      if (!(q === s ? atS : q === s - 1 ? atS1 : atS2)) continue;
      PHONE_AT.lastIndex = q;
      if (!PHONE_AT.test(text)) continue;
      from = PHONE_AT.lastIndex;
      found(q, from);
      break;
    }
  }
  PHONE_AT.lastIndex = 0;
}

type PhoneSpan = { startsAt: number; endsAt: number } | null;
/**
 * A verdict is a function of the candidate alone (`international` is derived from it), and it is
 * by far the costliest step of detection, so verdicts are memoized — bounded maps, emptied when
 * full. They hold candidate strings (phone-shaped runs of text the gateway already holds in
 * memory), never anything else, and are never logged.
 */
const PHONE_CACHE_MAX = 512;
const validCache = new Map<string, PhoneSpan>();
const possibleCache = new Map<string, PhoneSpan>();

/**
 * The longest number libphonenumber finds in the candidate for one of PHONE_REGIONS: with
 * leniency VALID, one its number plan knows (assigned area codes and ranges); with POSSIBLE, one
 * of a possible length there.
 */
function phoneSpan(cand: string, international: boolean, leniency: 'VALID' | 'POSSIBLE'): PhoneSpan {
  const cache = leniency === 'VALID' ? validCache : possibleCache;
  const cached = cache.get(cand);
  if (cached !== undefined) return cached;
  let best: PhoneSpan = null;
  for (const region of PHONE_REGIONS) {
    // `leniency` is read by libphonenumber-js at run time; its typings name only `extended`.
    const options = { defaultCountry: region, leniency } as { defaultCountry: CountryCode };
    for (const found of findPhoneNumbersInText(cand, options)) {
      if (best === null || found.endsAt - found.startsAt > best.endsAt - best.startsAt) best = { startsAt: found.startsAt, endsAt: found.endsAt };
    }
    if (international && best !== null) break;
    if (best !== null && best.endsAt - best.startsAt === cand.length) break;
  }
  if (cache.size >= PHONE_CACHE_MAX) cache.clear();
  cache.set(cand, best);
  return best;
}

/**
 * A phone label right before a number: `phone:`, `Tel.`, `mobile no.`, `fax #`, `call me at`,
 * `WhatsApp` — a word (not inside another: `hotel`, `intel`), then at most a number word and a
 * `:`/`=`/`-` with spaces. Stricter than PHONE_WORDS (which only raise confidence): with the
 * label, a number is taken as a phone number even where its number plan says it is unassigned.
 */
const PHONE_LABEL = contextRegexTest(
  /(?:^|[^a-z])(?:tele?phone|phone|tel|mobile|mob|cell(?:phone)?|fax|whatsapp|sms|ph|call(?: me)?(?: (?:at|on))?|text me(?: (?:at|on))?|dial)\.?(?: ?(?:no\.?|nr\.?|number|#))?[ \t]{0,3}[:=-]?[ \t]{0,3}$/,
  40,
);

/** True when every digit of `s` is the same one (`000-000-0000`: a placeholder). */
function oneDigit(s: string): boolean {
  let first = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    if (first < 0) first = c;
    else if (c !== first) return false;
  }
  return true;
}

export const phoneDetector: Detector = defineDetector({
  id: 'builtin.phone',
  type: 'PHONE_NUMBER',
  maxLength: 48,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 2,
  find(text) {
    const out: Candidate[] = [];
    forEachPhoneCandidate(text, (q, end) => {
      let digits = 0;
      let dateChars = true; // only digits and [-/.]: what DATE_LIKE, DOTTED_QUAD and SSN_SHAPE need
      for (let i = q; i < end; i++) {
        const c = text.charCodeAt(i);
        if (c >= 48 && c <= 57) digits++;
        else if (c !== 45 && c !== 47 && c !== 46) dateChars = false;
      }
      if (digits < 7 || digits > 15) return;
      const plus = text.charCodeAt(q) === 43; /* + */
      const international = plus || text.startsWith('00', q);
      // Without a phone word, a national number must look like one: 10-12 digits written
      // with separators or an area code in parentheses — not a bare run (order numbers, PANs)
      // nor a short group pair (street numbers, times).
      // (The checks are independent filters; the cheap ones and the cached verdict come first.)
      const nationalShape = international || (digits >= 10 && digits <= 12 && digits !== end - q);
      let phoneContext = false;
      if (!nationalShape && !(phoneContext = PHONE_CONTEXT(text, q))) return;
      const cand = text.slice(q, end);
      if (dateChars && (DATE_LIKE.test(cand) || DOTTED_QUAD.test(cand) || SSN_SHAPE.test(cand))) return;
      if (text.charCodeAt(q + 4) === 45 && DATE_PREFIX.test(cand)) return;
      // A number WRITTEN as a phone number — with a `+` country code, as 10-12 digits in groups,
      // or after a phone label — is one even where the number plan says its area code or range
      // is unassigned (`+1 555 010 9999`, `(555) 010-9999`, `tel. 0301234567`): a possible
      // length is enough, at a lower confidence. A bare digit run still needs a valid number.
      let best = phoneSpan(cand, international, 'VALID');
      let shapeOnly = false;
      if (best === null || best.endsAt - best.startsAt < cand.length) {
        if ((plus || (nationalShape && !international) || PHONE_LABEL(text, q)) && !oneDigit(cand)) {
          const possible = phoneSpan(cand, international, 'POSSIBLE');
          if (possible !== null && (best === null || possible.endsAt - possible.startsAt > best.endsAt - best.startsAt)) {
            best = possible;
            shapeOnly = true;
          }
        }
      }
      if (best === null) return;
      if (nationalShape && !(phoneContext ||= PHONE_CONTEXT(text, q)) && NOT_PHONE_CONTEXT(text, q)) return;
      // Confidence: 0.6 national, 0.75 international (`+`/`00`), 0.1 less when only the shape
      // says so (the number plan does not know the number), 0.25 more after a phone word.
      const base = (international ? 0.75 : 0.6) - (shapeOnly ? 0.1 : 0);
      out.push({ start: q + best.startsAt, end: q + best.endsAt, confidence: phoneContext ? Math.min(1, base + 0.25) : base });
    });
    return out;
  },
  settledBefore: phoneHint,
  scanStart: phoneScanStart,
});

// ---------------------------------------------------------------- credit card

const CARD_RE = /(?<![\d-])\d(?:[ -]?\d){11,18}(?!\d|-\d)/g;
const CARD_WORDS = ['card', 'credit', 'debit', 'visa', 'mastercard', 'master card', 'amex', 'american express', 'discover', 'diners', 'jcb', 'cc', 'pan', 'payment'];
const MAESTRO_PREFIXES = new Set([5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763]);

/** True when the PAN's prefix and length belong to a card scheme's issuer range. */
export function cardIssuerValid(d: string): boolean {
  return issuerValid(d[0] === '4', Number(d.slice(0, 2)), Number(d.slice(0, 3)), Number(d.slice(0, 4)), Number(d.slice(0, 6)), d.length);
}

/** cardIssuerValid on the PAN's leading digits (as numbers) and its length. */
function issuerValid(visa: boolean, p2: number, p3: number, p4: number, p6: number, len: number): boolean {
  if (visa) return len === 13 || len === 16 || len === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return len === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return len === 15; // American Express
  if (p4 >= 2200 && p4 <= 2204) return len >= 16 && len <= 19; // Mir
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) return len >= 16 && len <= 19; // Discover
  if (p2 === 62) return len >= 16 && len <= 19; // UnionPay
  if ((p3 >= 300 && p3 <= 305) || p4 === 3095 || p2 === 36 || p2 === 38 || p2 === 39) return len >= 14 && len <= 19; // Diners
  if (p4 >= 3528 && p4 <= 3589) return len >= 16 && len <= 19; // JCB
  if (p4 === 2131 || p4 === 1800) return len === 15; // JCB (15 digits)
  if (MAESTRO_PREFIXES.has(p4)) return len >= 12 && len <= 19; // Maestro
  if (p2 === 60 || p2 === 81 || p2 === 82 || p3 === 508) return len === 16; // RuPay
  return false;
}

const CARD_RUN = asciiClass('0-9 -');
const CARD_AT = new RegExp(CARD_RE.source, 'y');
const CARD_CONTEXT = contextTest(CARD_WORDS);

/**
 * True when 12 digits follow from the start of the run at data[o], with at most one space or
 * hyphen between two (which CARD_RE needs): runs joined by one such separator.
 */
function twelveCardDigits(data: Int32Array, o: number): boolean {
  let digits = data[o + END]! - data[o + START]!;
  while (digits < 12 && o + RUN_FIELDS < data.length) {
    const sep = data[o + AFTER];
    if ((sep !== 32 && sep !== 45) || data[o + RUN_FIELDS + START] !== data[o + END]! + 1) break;
    o += RUN_FIELDS;
    digits += data[o + END]! - data[o + START]!;
  }
  return digits >= 12;
}

const panDigits = new Uint8Array(19);

/**
 * The card checks on a CARD_RE match text[start, end): one separator throughout (space or
 * hyphen), Luhn, the issuer's prefix and length, not one repeated digit.
 */
function cardValid(text: string, start: number, end: number): boolean {
  let len = 0;
  let sep = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 45) {
      if (sep === 0) sep = c;
      else if (sep !== c) return false;
    } else {
      if (len === 19) return false; // CARD_RE holds at most 19 digits
      panDigits[len++] = c - 48;
    }
  }
  // Luhn, from the last digit.
  let sum = 0;
  for (let i = len - 1, double = false; i >= 0; i--, double = !double) {
    let d = panDigits[i]!;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  if (sum % 10 !== 0) return false;
  const d0 = panDigits[0]!;
  const p2 = d0 * 10 + panDigits[1]!;
  const p3 = p2 * 10 + panDigits[2]!;
  const p4 = p3 * 10 + panDigits[3]!;
  const p6 = (p4 * 10 + panDigits[4]!) * 10 + panDigits[5]!;
  if (!issuerValid(d0 === 4, p2, p3, p4, p6, len)) return false;
  for (let i = 1; i < len; i++) if (panDigits[i] !== d0) return true;
  return false; // one digit repeated
}
const CARD_BOUNDARY = asciiClass('0-9-');

export const creditCardDetector: Detector = defineDetector({
  id: 'builtin.credit_card',
  type: 'CREDIT_CARD',
  maxLength: 19 + 18,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 2,
  find(text) {
    const out: Candidate[] = [];
    const { data } = digitRuns(text);
    let from = 0;
    // A match of CARD_RE starts at a digit run's start not preceded by `-`, and holds 12+ digits
    // with at most one space or hyphen between two: only such starts are tried (sticky), in
    // increasing order from where the previous match ended — where the global scan finds them.
    for (let o = 0; o < data.length; o += RUN_FIELDS) {
      const s = data[o + START]!;
      if (s < from || data[o + BEFORE1] === 45 || !twelveCardDigits(data, o)) continue;
      CARD_AT.lastIndex = s;
      if (!CARD_AT.test(text)) continue;
      const end = CARD_AT.lastIndex;
      from = end;
      if (!cardValid(text, s, end)) continue;
      out.push({ start: s, end, confidence: CARD_CONTEXT(text, s) ? Math.min(1, 0.8 + 0.15) : 0.8 });
    }
    CARD_AT.lastIndex = 0;
    return out;
  },
  settledBefore: runHint(CARD_RUN, 37 + 2, (text, p) => DIGIT(text.charCodeAt(p)) && (p === 0 || !CARD_BOUNDARY(text.charCodeAt(p - 1)))),
  // Matches hold only CARD_RUN characters and the scan resumes at the previous match's end (digits
  // joined by single spaces tile from the chain's start): in step from the run's start on.
  scanStart: (text, at) => runStart(text, CARD_RUN, at),
});

// ---------------------------------------------------------------- IBAN

/** IBAN length per country (ISO 13616 registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22,
  GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30,
  KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27,
  MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33,
  SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};
/** IBAN_LENGTHS by (first letter − a) × 26 + (second letter − a), case-insensitive; 0 = none. */
const IBAN_LENGTH_BY_CODE = new Uint8Array(26 * 26);
for (const [code, length] of Object.entries(IBAN_LENGTHS)) IBAN_LENGTH_BY_CODE[(code.charCodeAt(0) - 65) * 26 + (code.charCodeAt(1) - 65)] = length;
const IBAN_CONTEXT = contextTest(['iban', 'bank', 'account', 'transfer', 'sepa']);

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/**
 * The IBAN scan of the detector from a `[A-Za-z]{2}\d{2}` start at `start`: where it ends, and
 * whether it had to read up to the end of the text to decide (then more text could change it).
 */
function ibanScan(text: string, start: number, length: number): { iban: string; end: number; ok: boolean; open: boolean } {
  let iban = text.slice(start, start + 4);
  let i = start + 4;
  const n = text.length;
  while (iban.length < length && i < n) {
    const c = text.charCodeAt(i);
    if (isAlnum(c)) {
      iban += text[i];
      i++;
    } else if (c === 32 && i + 1 < n && isAlnum(text.charCodeAt(i + 1)) && text.charCodeAt(i - 1) !== 32) {
      i++;
    } else break;
  }
  // Open: stopped by the end of the text, or by a space whose next character is not there yet.
  const open = i >= n || (iban.length < length && text.charCodeAt(i) === 32 && i + 1 >= n && text.charCodeAt(i - 1) !== 32);
  return { iban, end: i, ok: iban.length === length && !(i < n && isAlnum(text.charCodeAt(i))), open };
}

/**
 * ibanScan without building the IBAN: the end of the scan from `start`, or −1 when it is not
 * `length` letters and digits (single spaces allowed between them) followed by no letter or digit.
 */
function ibanEnd(text: string, start: number, length: number): number {
  let count = 4;
  let i = start + 4;
  const n = text.length;
  while (count < length && i < n) {
    const c = text.charCodeAt(i);
    if (isAlnum(c)) {
      count++;
      i++;
    } else if (c === 32 && i + 1 < n && isAlnum(text.charCodeAt(i + 1)) && text.charCodeAt(i - 1) !== 32) {
      i++;
    } else break;
  }
  return count === length && !(i < n && isAlnum(text.charCodeAt(i))) ? i : -1;
}

/** True when text[start, end) holds both an upper-case and a lower-case ASCII letter. */
function mixedCase(text: string, start: number, end: number): boolean {
  let upper = false;
  let lower = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
  }
  return upper && lower;
}

/** ibanMod97Valid of the letters and digits of text[start, end), upper-cased (spaces skipped). */
function ibanMod97At(text: string, start: number, end: number): boolean {
  const digit = (remainder: number, c: number): number => {
    if (c >= 48 && c <= 57) return (remainder * 10 + (c - 48)) % 97;
    return (remainder * 100 + ((c & ~32) - 55)) % 97; // a letter
  };
  let remainder = 0;
  for (let i = start + 4; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32) remainder = digit(remainder, c);
  }
  for (let i = start; i < start + 4; i++) remainder = digit(remainder, text.charCodeAt(i));
  return remainder === 1;
}

const IBAN_RUN = asciiClass('A-Za-z0-9 ');
const LETTER = asciiClass('A-Za-z');

function ibanHint(text: string): number {
  const n = text.length;
  for (let p = runStart(text, IBAN_RUN); p < n; p++) {
    if (!LETTER(text.charCodeAt(p)) || (p > 0 && isAlnum(text.charCodeAt(p - 1)))) continue;
    const rest = n - p;
    if (rest < 2) return p; // a country code still being written
    const c2 = text.charCodeAt(p + 1);
    if (!LETTER(c2)) continue;
    const length = IBAN_LENGTH_BY_CODE[((text.charCodeAt(p) | 32) - 97) * 26 + ((c2 | 32) - 97)]!;
    if (length === 0) continue;
    if (rest < 4) {
      if (rest === 3 && !DIGIT(text.charCodeAt(p + 2))) continue;
      return p;
    }
    if (!DIGIT(text.charCodeAt(p + 2)) || !DIGIT(text.charCodeAt(p + 3))) continue;
    if (ibanScan(text, p, length).open) return p;
  }
  return n;
}

export const ibanDetector: Detector = defineDetector({
  id: 'builtin.iban',
  type: 'IBAN_CODE',
  maxLength: 34 + 9,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 1,
  find(text) {
    const out: Candidate[] = [];
    const { data } = digitRuns(text);
    // Candidate starts: the matches of a global scan of /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}/, which
    // are exactly the positions q with letters at q, q + 1, digits at q + 2, q + 3 and no letter or
    // digit at q − 1 (two such q are at least 4 apart, so the scan finds every one): q + 2 is the
    // start of a digit run of length ≥ 2.
    for (let o = 0; o < data.length; o += RUN_FIELDS) {
      const c1 = data[o + BEFORE2]!;
      const c2 = data[o + BEFORE1]!;
      if (data[o + END]! - data[o + START]! < 2 || !LETTER(c1) || !LETTER(c2) || isAlnum(data[o + BEFORE3]!)) continue;
      const q = data[o + START]! - 2;
      const length = IBAN_LENGTH_BY_CODE[((c1 | 32) - 97) * 26 + ((c2 | 32) - 97)]!;
      if (length === 0) continue;
      const i = ibanEnd(text, q, length);
      // One case throughout, so that words glued to a number are not read as a country code.
      if (i < 0 || mixedCase(text, q, i) || !ibanMod97At(text, q, i)) continue;
      out.push({ start: q, end: i, confidence: IBAN_CONTEXT(text, q) ? Math.min(1, 0.9 + 0.1) : 0.9 });
    }
    return out;
  },
  settledBefore: ibanHint,
});

// ---------------------------------------------------------------- US SSN

const SSN_RE = /(?<![\d\-/.])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d\-/]|\.\d)/g;
const SSN_WORDS = ['ssn', 'social security', 'social sec', 'ss#', 'ss #', 'ssa', 'taxpayer', 'tin'];
/** Numbers publicly used as examples or known invalid (Woolworth wallet card, SSA ad, all-same). */
const SSN_INVALID = new Set(['078051120', '219099999', '123456789', '457555462']);

/** SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (group === '00' || serial === '0000') return false;
  const all = area + group + serial;
  if (SSN_INVALID.has(all) || /^(\d)\1+$/.test(all)) return false;
  return true;
}

const SSN_RUN = asciiClass('0-9 ./-');
const SSN_BOUNDARY = asciiClass('0-9./-');
const SSN_AT = new RegExp(SSN_RE.source, 'y');
const SSN_CONTEXT = contextTest(SSN_WORDS);

export const usSsnDetector: Detector = defineDetector({
  id: 'builtin.us_ssn',
  type: 'US_SSN',
  maxLength: 11,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 2,
  find(text) {
    const out: Candidate[] = [];
    const { data } = digitRuns(text);
    let from = 0;
    // A match of SSN_RE starts at a digit run's start not preceded by [-/.], and that run is its
    // area (3 digits, then a separator) or all of it (9 digits, no separator) — longer or shorter
    // runs cannot match; after a separator come a run of exactly 2 digits and the same separator.
    // Only those starts are tried (sticky), in order from the previous match's end.
    for (let o = 0; o < data.length; o += RUN_FIELDS) {
      const s = data[o + START]!;
      const len = data[o + END]! - s;
      if (s < from || (len !== 3 && len !== 9) || SSN_BOUNDARY(data[o + BEFORE1]!)) continue;
      if (len === 3) {
        const c = data[o + AFTER];
        const next = o + RUN_FIELDS;
        if ((c !== 45 && c !== 32) || next >= data.length || data[next + START] !== s + 4 || data[next + END] !== s + 6 || data[next + AFTER] !== c) continue;
      }
      SSN_AT.lastIndex = s;
      if (!SSN_AT.test(text)) continue;
      from = SSN_AT.lastIndex;
      const sep = len === 9 ? '' : text.charAt(s + 3);
      const g = len === 9 ? s + 3 : s + 4;
      if (!ssnValid(text.slice(s, s + 3), text.slice(g, g + 2), text.slice(from - 4, from))) continue;
      const context = SSN_CONTEXT(text, s);
      // A bare 9-digit run is only an SSN when the text says so (else: order numbers, ids).
      if (sep === '' && !context) continue;
      const base = sep === '-' ? 0.7 : sep === ' ' ? 0.5 : 0.4;
      out.push({ start: s, end: from, confidence: context ? Math.min(1, base + 0.25) : base });
    }
    SSN_AT.lastIndex = 0;
    return out;
  },
  settledBefore: runHint(SSN_RUN, 11 + 2, (text, p) => DIGIT(text.charCodeAt(p)) && (p === 0 || !SSN_BOUNDARY(text.charCodeAt(p - 1)))),
});

// ---------------------------------------------------------------- IP addresses

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?![\\w]|\\.\\d)`, 'g');
const IP_WORDS = ['ip', 'host', 'server', 'address', 'addr', 'client', 'remote', 'gateway', 'dns', 'from', 'connect'];
/** Version-number context: `v1.2.3.4`, "version 1.2.3.4", "build 10.0.19041.1". */
const VERSION_BEFORE = /(?:\bv|\bver\.?|version|release|build|firmware|\bfw|\bsdk|\bos|\bapi|\bschema|\bprotocol|@)\s*[:=]?\s*$/;

const IPV6_RE = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])/g;
const IPV4_FULL = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

const IPV6_CHARS = /^[0-9A-Fa-f:.]*$/;

/** Parses the textual forms of RFC 4291 §2.2 (with `::` compression and an IPv4 tail). */
export function ipv6Valid(s: string): boolean {
  return IPV6_CHARS.test(s) ? ipv6ValidScan(s) : ipv6ValidSplit(s);
}

/**
 * ipv6Valid by splitting (the definition): the halves around `::`, their `:`-separated groups,
 * each 1-4 hex digits but for a dotted-quad last group.
 */
function ipv6ValidSplit(s: string): boolean {
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const parse = (part: string): string[] | undefined => (part === '' ? [] : part.split(':'));
  const head = parse(halves[0] ?? '');
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return false;
  const groups = [...head, ...tail];
  let count = 0;
  let digits = false;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i] ?? '';
    if (i === groups.length - 1 && g.includes('.')) {
      if (!IPV4_FULL.test(g)) return false;
      count += 2;
      digits = true;
      continue;
    }
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return false;
    if (/\d/.test(g)) digits = true;
    count++;
  }
  if (halves.length === 2) {
    // `::` stands for at least one group; require some substance (not `a::b` words, not bare `::`).
    return count <= 7 && groups.length >= 1 && digits && (groups.length >= 2 || s === '::1');
  }
  return count === 8;
}

/**
 * ipv6ValidSplit without allocating, for strings of [0-9A-Fa-f:.] (the IPv6 regex's matches):
 * the same halves (split('::') cuts at non-overlapping `::` from the left: a second one means
 * three halves), the same groups in the same order, the same checks.
 */
function ipv6ValidScan(s: string): boolean {
  const n = s.length;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 2) >= 0) return false;
  const headEnd = dbl >= 0 ? dbl : n;
  const tailStart = dbl >= 0 ? dbl + 2 : n;
  // The last group of all: the tail's last one, or the head's when the tail is empty.
  const lastPartEnd = tailStart < n ? n : headEnd;
  let count = 0;
  let groups = 0;
  let digits = false;
  for (let part = 0; part < 2; part++) {
    const a = part === 0 ? 0 : tailStart;
    const b = part === 0 ? headEnd : n;
    if (a >= b) continue; // an empty half has no groups
    let gs = a;
    for (let i = a; i <= b; i++) {
      if (i < b && s.charCodeAt(i) !== 58 /* : */) continue;
      // The group [gs, i).
      groups++;
      if (i === b && b === lastPartEnd && s.lastIndexOf('.', i - 1) >= gs) {
        if (!IPV4_FULL.test(s.slice(gs, i))) return false;
        count += 2;
        digits = true;
      } else {
        if (i - gs < 1 || i - gs > 4) return false;
        for (let k = gs; k < i; k++) {
          const c = s.charCodeAt(k);
          if (c >= 48 && c <= 57) digits = true;
          else if (c === 46) return false; // a `.` outside the last group
        }
        count++;
      }
      gs = i + 1;
    }
  }
  if (dbl >= 0) return count <= 7 && groups >= 1 && digits && (groups >= 2 || s === '::1');
  return count === 8;
}

const IPV4_RUN = asciiClass('0-9.');
const IPV4_BOUNDARY = asciiClass('A-Za-z0-9_.');
const ipv4Hint = runHint(IPV4_RUN, 15 + 2, (text, p) => DIGIT(text.charCodeAt(p)) && (p === 0 || !IPV4_BOUNDARY(text.charCodeAt(p - 1))));
const IPV6_RUN = asciiClass('0-9A-Fa-f:.');
const IPV6_FIRST = asciiClass('0-9A-Fa-f:');
const IPV6_BOUNDARY = asciiClass('A-Za-z0-9_:.');
/** An IPv6 candidate's first group: up to 4 hex digits, then `:` (or the end of the text). */
const IPV6_HEAD = /^[0-9A-Fa-f]{0,4}(?::|$)/;
// 50: the longest IPV6_RE match ((4 hex + `:`) × 7 + a dotted quad), + 1 character read after it.
const ipv6Hint = runHint(IPV6_RUN, 50 + 1, (text, p) => IPV6_FIRST(text.charCodeAt(p)) && (p === 0 || !IPV6_BOUNDARY(text.charCodeAt(p - 1))) && IPV6_HEAD.test(text.slice(p, p + 5)));

const IPV4_AT = new RegExp(IPV4_RE.source, 'y');
const IP_CONTEXT = contextTest(IP_WORDS);
const VERSION_CONTEXT = contextRegexTest(VERSION_BEFORE, 24);
const IPV6_AT = new RegExp(IPV6_RE.source, 'y');
const HEX = asciiClass('0-9A-Fa-f');
const WORD = asciiClass('A-Za-z0-9_');
/** Where an IPv6 match holding the `:` at t as its first colon can start: after 0–4 hex digits, not preceded by [\w:.]. */
function ipv6Start(text: string, t: number): number {
  let q = t;
  while (q > 0 && t - q < 5 && HEX(text.charCodeAt(q - 1))) q--;
  if (t - q > 4) return -1;
  const b = q > 0 ? text.charCodeAt(q - 1) : -1;
  return b >= 0 && (WORD(b) || b === 58 || b === 46) ? -1 : q;
}

export const ipAddressDetector: Detector = defineDetector({
  id: 'builtin.ip_address',
  type: 'IP_ADDRESS',
  maxLength: 45,
  lookbehind: CONTEXT_WINDOW,
  lookahead: 2,
  find(text) {
    const out: Candidate[] = [];
    const { data } = digitRuns(text);
    let from = 0;
    // An IPv4 match starts at a digit run's start not preceded by [A-Za-z_.], and that run is its
    // first octet: 1-3 digits, then `.`. Only those starts are tried (sticky), in increasing order
    // from where the previous match ended — where the global scan finds its matches.
    for (let o = 0; o < data.length; o += RUN_FIELDS) {
      const s = data[o + START]!;
      if (s < from || data[o + END]! - s > 3 || data[o + AFTER] !== 46 || IPV4_BOUNDARY(data[o + BEFORE1]!)) continue;
      IPV4_AT.lastIndex = s;
      if (!IPV4_AT.test(text)) continue;
      from = IPV4_AT.lastIndex;
      if (VERSION_CONTEXT(text, s)) continue;
      out.push({ start: s, end: from, confidence: IP_CONTEXT(text, s) ? Math.min(1, 0.7 + 0.2) : 0.7 });
    }
    IPV4_AT.lastIndex = 0;
    if (text.includes(':')) {
      for (const m of anchoredMatches(IPV6_AT, text, ':', ipv6Start)) {
        if (!ipv6Valid(m[0])) continue;
        out.push({ start: m.index, end: m.index + m[0].length, confidence: IP_CONTEXT(text, m.index) ? Math.min(1, 0.8 + 0.15) : 0.8 });
      }
    }
    return out;
  },
  settledBefore: (text) => Math.min(ipv4Hint(text), ipv6Hint(text)),
});

export const PII_DETECTORS: readonly Detector[] = [
  emailDetector,
  phoneDetector,
  creditCardDetector,
  ibanDetector,
  usSsnDetector,
  ipAddressDetector,
];
