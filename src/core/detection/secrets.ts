/**
 * Credential detectors. A secret is recognised by its SHAPE: a provider's prefix, its length and
 * its alphabet (`ghp_` + 36 base62, `AKIA` + 16 base32, `xoxb-` + digit groups + 24 alphanumerics).
 * A format's checksum, where it has one (GitHub's and npm's CRC-32), only raises the confidence:
 * a token of the exact shape whose checksum fails is still reported — a typo, a token cut and
 * retyped, or a made-up but real-looking value is still someone's key or looks like one to
 * whoever reads the answer. Documented example keys (AWS's `AKIAIOSFODNN7EXAMPLE`, Stripe's public
 * doc key…), placeholders (`ghp_xxxx…`, `…0123456789abcdef…`) and placeholder passwords are NOT
 * reported: they are published, grant nothing, and flagging them would block every prompt that
 * quotes the providers' own documentation.
 *
 * Confidence levels (a rule's `min_confidence` selects on them):
 *  - 0.99  the format's own check passes: GitHub classic and npm tokens with a valid CRC-32, OpenAI
 *          keys holding `T3BlbkFJ`, Anthropic `sk-ant-…` keys.
 *  - 0.95–0.97  an exact issued format with a distinctive prefix and no public checksum (AWS,
 *          GitLab, Slack, Google, GitHub fine-grained PATs, Stripe live keys, SendGrid, PyPI,
 *          signed JWTs, database URLs with a password, Basic credentials).
 *  - 0.8–0.9  looser shapes: Stripe test keys, bare `sk-` + 48, Hugging Face, unsigned JWTs, a
 *          bearer token outside an Authorization header, URL credentials.
 *  - 0.75  SHAPE ONLY: GitHub classic / npm tokens whose CRC-32 fails. Still above the 0.7 the
 *          example policies use; `min_confidence: 0.9` asks for checksummed tokens only.
 */
import { base62Crc32Valid, decodeBase64 } from './checksums.ts';
import { matchesNear, shared } from './anchors.ts';
import { defineDetector, matches } from './detector-kit.ts';
import { asciiClass, keywordSecretHint, prefixedTokenHint, runStart } from './settle.ts';
import type { CharTest } from './settle.ts';
import type { Candidate } from './detector-kit.ts';
import type { Detector, EntityType } from './types.ts';

/** Left/right token boundaries: the match must not be glued to more token characters. */
const L = '(?<![A-Za-z0-9_-])';
const R = '(?![A-Za-z0-9_-])';

/**
 * Where a regex can match: every match holds one of `triggers` at most `back` characters after
 * its start, and can start only where `mayStart` holds (see matchesNear in ./anchors.ts).
 */
interface Anchor {
  readonly triggers: readonly string[];
  readonly back: number;
  readonly mayStart?: (text: string, q: number) => boolean;
  readonly near?: (text: string, t: number) => boolean;
}

/** A near test: one of the ASCII `chars` lies in the `span` characters before the trigger. */
function oneOfBefore(chars: string, span: number): (text: string, t: number) => boolean {
  const isOne = asciiClass(chars);
  return (text, t) => {
    for (let i = t - 1; i >= 0 && i >= t - span; i--) if (isOne(text.charCodeAt(i))) return true;
    return false;
  };
}

/**
 * A near test for prefixed tokens: one of `prefixes` ends right before the trigger. Valid when
 * the first trigger character of every match follows one of them (the prefix `sk` before the `-`
 * of `sk-…`, `glpat` before the `-` of `glpat-…`).
 */
function afterPrefix(prefixes: readonly string[]): (text: string, t: number) => boolean {
  // Prefixes by their last character (ASCII), checked only when that character precedes t.
  const byLast: (readonly string[] | null)[] = new Array<readonly string[] | null>(128).fill(null);
  for (const p of prefixes) {
    const c = p.charCodeAt(p.length - 1);
    byLast[c] = [...(byLast[c] ?? []), p];
  }
  return (text, t) => {
    const c = t > 0 ? text.charCodeAt(t - 1) : 128;
    const candidates = c < 128 ? byLast[c]! : null;
    if (candidates === null) return false;
    for (const p of candidates) if (text.startsWith(p, t - p.length)) return true;
    return false;
  };
}

/** A mayStart test: the character at q is one of the ASCII `chars`. */
function startsWith(chars: string): (text: string, q: number) => boolean {
  const isOne = asciiClass(chars);
  return (text, q) => isOne(text.charCodeAt(q));
}

/** The matches of the global regex `re` — via its anchor when it has one (the same matches, faster). */
function anchoredFinder(re: RegExp, anchor: Anchor | undefined): (text: string) => readonly RegExpExecArray[] {
  if (anchor === undefined) {
    // What matches(re, text) yields, collected without a generator.
    return (text) => {
      const all: RegExpExecArray[] = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) re.lastIndex = m.index + 1;
        else all.push(m);
      }
      return all;
    };
  }
  const sticky = new RegExp(re.source, `${re.flags.replace('g', '')}y`);
  return (text) => matchesNear(sticky, text, anchor.triggers, anchor.back, anchor.mayStart, anchor.near);
}

const NO_CANDIDATES: Candidate[] = [];
Object.freeze(NO_CANDIDATES);

function regexFinder(re: RegExp, confidence: number, accept?: (m: RegExpExecArray, text: string) => number | false, literal?: string, anchor?: Anchor) {
  const find = anchoredFinder(re, anchor);
  return (text: string): Candidate[] => {
    if (literal !== undefined && !text.includes(literal)) return NO_CANDIDATES;
    const found = find(text);
    if (found.length === 0) return NO_CANDIDATES;
    const out: Candidate[] = [];
    for (const m of found) {
      const c = accept === undefined ? confidence : accept(m, text);
      if (c === false) continue;
      // A capture group named `secret` narrows the reported span to it.
      const secret = m.groups?.['secret'];
      if (secret !== undefined) {
        const offset = m[0].lastIndexOf(secret);
        out.push({ start: m.index + offset, end: m.index + offset + secret.length, confidence: c });
      } else {
        out.push({ start: m.index, end: m.index + m[0].length, confidence: c });
      }
    }
    return out;
  };
}

function tokenDetector(
  id: string,
  type: EntityType,
  maxLength: number,
  re: RegExp,
  confidence: number,
  literal: string | undefined,
  accept: ((m: RegExpExecArray, text: string) => number | false) | undefined,
  settledBefore: (text: string) => number,
  lookbehind = 1,
  anchor?: Anchor,
): Detector {
  return defineDetector({ id, type, maxLength, lookbehind, lookahead: 1, find: regexFinder(re, confidence, accept, literal, anchor), settledBefore });
}

/** Published example values from the providers' documentation. */
const DOCUMENTED_EXAMPLES = new Set([
  'AKIAIOSFODNN7EXAMPLE',
  'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'sk_test_4eC39HqLyjWDarjtT1zdp7dc',
  'sk_test_BQokikJOvBiI2HlWgH4olfQ2',
  'rk_test_4eC39HqLyjWDarjtT1zdp7dc',
]);
const EXAMPLE_MARKER = /EXAMPLE|example|XXXXXXXXXX|xxxxxxxxxx|0123456789abcdef|1234567890abcdef/;

/** Confidence of a token of an exact shape whose checksum fails (see the levels at the top). */
const SHAPE_ONLY = 0.75;

/**
 * True when `body` looks generated rather than typed: at least two of upper case, lower case and
 * digits, at least a third of its characters distinct, and no run of 4 equal characters nor of 6
 * consecutive ones (`abcdef`, `123456`). Used where a shape alone decides: a random base62 body
 * of 30+ characters fails it with a chance below one in a million; `ghp_aaaa…`, `ghp_abcdef…`
 * and `ghp_1234…` placeholders fail it.
 */
function looksRandom(body: string): boolean {
  let classes = 0;
  if (/[A-Z]/.test(body)) classes++;
  if (/[a-z]/.test(body)) classes++;
  if (/[0-9]/.test(body)) classes++;
  if (classes < 2 || new Set(body).size * 3 < body.length) return false;
  let same = 1;
  let rising = 1;
  for (let i = 1; i < body.length; i++) {
    const d = body.charCodeAt(i) - body.charCodeAt(i - 1);
    same = d === 0 ? same + 1 : 1;
    rising = d === 1 ? rising + 1 : 1;
    if (same >= 4 || rising >= 6) return false;
  }
  return true;
}

/**
 * The confidence of a `prefix_` + 36 base62 token with GitHub's / npm's CRC-32 (`body` = the 36):
 * 0.99 when the checksum holds, SHAPE_ONLY when it fails but the body looks generated, else none.
 */
function crc32TokenConfidence(token: string, body: string): number | false {
  if (base62Crc32Valid(body)) return 0.99;
  return EXAMPLE_MARKER.test(token) || !looksRandom(body) ? false : SHAPE_ONLY;
}

// ---------------------------------------------------------------- PEM private keys

const PEM_BEGIN_RE = /-----BEGIN ((?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?)-----/g;
const PEM_MAX = 6000;

/**
 * The PEM blocks of `text`, as the detector reports them, and `pendingAt`: the start of the first
 * block that more text could still change (an open BEGIN whose END could still arrive within
 * PEM_MAX, or a BEGIN marker cut by the end of the text), else text.length.
 */
function scanPem(text: string, wantPending = true): { found: Candidate[]; pendingAt: number } {
  const n = text.length;
  const found: Candidate[] = [];
  let pendingAt = n;
  let scannedTo = 0;
  if (text.includes('PRIVATE KEY')) {
    for (const m of matches(PEM_BEGIN_RE, text)) {
      const label = m[1] ?? '';
      const bodyStart = m.index + m[0].length;
      const endMarker = `-----END ${label}-----`;
      const endAt = text.indexOf(endMarker, bodyStart);
      let end: number;
      if (endAt >= 0 && endAt + endMarker.length - m.index <= PEM_MAX) {
        end = endAt + endMarker.length;
      } else {
        // An END marker may still complete within PEM_MAX (the body scan below also peeks 5
        // characters ahead for `-----`): everything from this BEGIN on is pending.
        if (pendingAt === n && m.index + PEM_MAX + 5 > n) pendingAt = m.index;
        // No END marker (truncated paste): the base64 body (and RFC 1421 headers) that follows.
        end = bodyStart;
        const limit = Math.min(n, m.index + PEM_MAX);
        while (end < limit && /[A-Za-z0-9+/=\s:,-]/.test(text.charAt(end))) {
          if (text.startsWith('-----', end)) break;
          end++;
        }
        while (end > bodyStart && /\s/.test(text.charAt(end - 1))) end--;
      }
      found.push({ start: m.index, end, confidence: end - bodyStart > 40 ? 1 : 0.9 });
      PEM_BEGIN_RE.lastIndex = Math.max(PEM_BEGIN_RE.lastIndex, end);
      scannedTo = Math.max(scannedTo, PEM_BEGIN_RE.lastIndex);
    }
  }
  if (wantPending && pendingAt === n) {
    // A BEGIN marker cut by the end of the text (not inside a block already found). Such a
    // marker and what follows it are all PEM_TAIL characters: only the trailing run of them is
    // searched (the last marker in it is the text's last marker, or no marker qualifies).
    const r = runStart(text, PEM_TAIL);
    const last = text.slice(r).lastIndexOf('-----BEGIN ');
    const q = last < 0 ? -1 : r + last;
    if (q >= scannedTo && q >= 0 && PEM_PARTIAL_LABEL.test(text.slice(q + 11))) pendingAt = q;
    else {
      for (let k = Math.min(11, n); k > 0; k--) {
        if (n - k >= scannedTo && text.endsWith(PEM_BEGIN_PREFIX.slice(0, k))) {
          pendingAt = n - k;
          break;
        }
      }
    }
  }
  return { found, pendingAt };
}
const PEM_BEGIN_PREFIX = '-----BEGIN ';
/** What may follow `-----BEGIN ` while the marker is still incomplete. */
const PEM_PARTIAL_LABEL = /^[A-Z0-9 ]*-{0,4}$/;
/** The characters of `-----BEGIN ` and of PEM_PARTIAL_LABEL. */
const PEM_TAIL = asciiClass('A-Z0-9 -');

export const privateKeyDetector: Detector = defineDetector({
  id: 'builtin.private_key',
  type: 'PRIVATE_KEY',
  maxLength: PEM_MAX,
  find: (text) => scanPem(text, false).found,
  settledBefore: (text) => scanPem(text).pendingAt,
});

// ---------------------------------------------------------------- cloud and SaaS tokens

// How each prefixed token begins (the detectors' streaming hints and TOKEN_SHAPES share them).
const AWS_PREFIXES = ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'];
const GITHUB_PREFIXES = ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'];
const GITLAB_PREFIXES = ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glcbt-', 'gloas-', 'glsoat-', 'glft-', 'glimt-', 'glagent-', 'glwt-'];
const SLACK_PREFIXES = ['xoxb-', 'xoxa-', 'xoxp-', 'xoxr-', 'xoxs-', 'xoxe-', 'xoxe.xoxb-', 'xoxe.xoxp-', 'xapp-'];
const STRIPE_PREFIXES = ['sk_live_', 'sk_test_', 'rk_live_', 'rk_test_', 'whsec_'];
const ANTHROPIC_PREFIXES = ['sk-ant-'];
const OPENAI_PREFIXES = ['sk-'];
const GOOGLE_PREFIXES = ['AIza'];
const NPM_PREFIXES = ['npm_'];
const PYPI_PREFIXES = ['pypi-Ag'];
const HUGGINGFACE_PREFIXES = ['hf_', 'api_org_'];
const SENDGRID_PREFIXES = ['SG.'];


export const awsAccessKeyDetector = tokenDetector(
  'builtin.aws_access_key',
  'AWS_ACCESS_KEY',
  20,
  /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])/g,
  0.95,
  'A',
  (m) => (DOCUMENTED_EXAMPLES.has(m[0]) || EXAMPLE_MARKER.test(m[0]) ? false : 0.95),
  prefixedTokenHint(AWS_PREFIXES, 20, asciiClass('A-Za-z0-9')),
);

export const awsSecretKeyDetector = tokenDetector(
  'builtin.aws_secret_key',
  'AWS_SECRET_KEY',
  40,
  /(?:aws_?secret_?access_?key|aws_?secret|secret_?access_?key)["']?\s{0,3}[:=]\s{0,3}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
  0.95,
  undefined,
  (m) => {
    const s = m.groups?.['secret'] ?? '';
    return DOCUMENTED_EXAMPLES.has(s) || EXAMPLE_MARKER.test(s) ? false : 0.95;
  },
  keywordSecretHint(asciiClass('A-Za-z0-9/+'), /(?:aws_?secret_?access_?key|aws_?secret|secret_?access_?key)["']?\s{0,3}[:=]\s{0,3}["']?$/i, 64, 40),
  64,
  // The `:` or `=` follows the keyword (≤ 21 characters, ending in `key` or `secret`), a quote
  // and ≤ 3 spaces: the keyword's last letter is among the 5 characters before it.
  { triggers: [':', '='], back: 21 + 1 + 3, mayStart: startsWith('aAsS'), near: oneOfBefore('yYtT', 5) },
);

export const githubTokenDetector: Detector = defineDetector({
  id: 'builtin.github_token',
  type: 'GITHUB_TOKEN',
  maxLength: 93,
  lookbehind: 1,
  lookahead: 1,
  find: (() => {
    const classic = regexFinder(
      new RegExp(`${L}gh[pousr]_(?<body>[A-Za-z0-9]{36})${R}`, 'g'),
      0.99,
      (m) => crc32TokenConfidence(m[0], m.groups?.['body'] ?? ''),
      undefined,
      { triggers: ['_'], back: 3, mayStart: startsWith('g'), near: afterPrefix(['ghp', 'gho', 'ghu', 'ghs', 'ghr']) },
    );
    // Fine-grained PATs carry no public checksum: exact shape only.
    const fineGrained = regexFinder(
      new RegExp(`${L}github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}${R}`, 'g'),
      0.95,
      (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.95),
      undefined,
      { triggers: ['_'], back: 6, mayStart: startsWith('g'), near: afterPrefix(['github']) },
    );
    return (text: string): Candidate[] => {
      if (!text.includes('_')) return [];
      const out = classic(text);
      const more = fineGrained(text);
      return more.length === 0 ? out : out.length === 0 ? more : [...out, ...more];
    };
  })(),
  settledBefore: prefixedTokenHint(GITHUB_PREFIXES, 93),
});

export const gitlabTokenDetector = tokenDetector(
  'builtin.gitlab_token',
  'GITLAB_TOKEN',
  128,
  new RegExp(`${L}gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent|wt)-[A-Za-z0-9_-]{20,100}(?:\\.[A-Za-z0-9]{2}\\.[A-Za-z0-9]{7,12})?${R}`, 'g'),
  0.95,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.95),
  prefixedTokenHint(GITLAB_PREFIXES, 128),
  1,
  // `glagent-`: the first `-` at 7.
  { triggers: ['-'], back: 7, mayStart: startsWith('g'), near: afterPrefix(['glpat', 'gldt', 'glrt', 'glptt', 'glcbt', 'gloas', 'glsoat', 'glft', 'glimt', 'glagent', 'glwt']) },
);

export const slackTokenDetector = tokenDetector(
  'builtin.slack_token',
  'SLACK_TOKEN',
  256,
  new RegExp(`${L}(?:xox[baprs]-(?:[0-9]{6,16}-){1,3}[A-Za-z0-9]{8,64}|xox[pe](?:-[0-9]{1,16}){3}-[a-f0-9]{20,64}|xapp-[0-9]-[A-Z0-9]{6,14}-[0-9]{6,16}-[a-f0-9]{20,80}|xoxe\\.xox[bp]-1-[A-Za-z0-9]{100,200})${R}`, 'g'),
  0.95,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.95),
  prefixedTokenHint(SLACK_PREFIXES, 256),
  1,
  // `xoxe.xoxb-`: the first `-` at 9.
  { triggers: ['-'], back: 9, mayStart: startsWith('x'), near: afterPrefix(['xoxb', 'xoxa', 'xoxp', 'xoxr', 'xoxs', 'xoxe', 'xapp', 'xoxe.xoxb', 'xoxe.xoxp']) },
);

export const stripeKeyDetector = tokenDetector(
  'builtin.stripe_key',
  'STRIPE_KEY',
  256,
  new RegExp(`${L}(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}${R}|${L}whsec_[A-Za-z0-9]{32,64}${R}`, 'g'),
  0.95,
  '_',
  (m) => {
    if (DOCUMENTED_EXAMPLES.has(m[0]) || EXAMPLE_MARKER.test(m[0])) return false;
    return m[0].includes('_test_') ? 0.8 : 0.97;
  },
  prefixedTokenHint(STRIPE_PREFIXES, 256),
  1,
  // `whsec_`: the `_` at 5.
  { triggers: ['_'], back: 5, mayStart: startsWith('srw'), near: afterPrefix(['sk', 'rk', 'whsec']) },
);

export const anthropicKeyDetector = tokenDetector(
  'builtin.anthropic_key',
  'ANTHROPIC_KEY',
  200,
  new RegExp(`${L}sk-ant-(?:api|admin|oat|ort|sid)\\d{2}-[A-Za-z0-9_-]{32,160}${R}`, 'g'),
  0.99,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.99),
  prefixedTokenHint(ANTHROPIC_PREFIXES, 200),
  1,
  { triggers: ['-'], back: 2, mayStart: startsWith('s'), near: afterPrefix(['sk']) },
);

export const openaiKeyDetector = tokenDetector(
  'builtin.openai_key',
  'OPENAI_KEY',
  256,
  new RegExp(`${L}sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,240}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})${R}`, 'g'),
  0.9,
  undefined,
  (m) => {
    const s = m[0];
    if (s.startsWith('sk-ant-') || EXAMPLE_MARKER.test(s)) return false;
    // "T3BlbkFJ" (base64 of "OpenAI") is embedded in every issued key.
    if (s.includes('T3BlbkFJ')) return 0.99;
    if (/^sk-(?:proj|svcacct|admin)-/.test(s)) return 0.95;
    // A bare sk- + 48 alphanumerics needs both letters and digits (random, not a word run).
    return /\d/.test(s.slice(3)) && /[A-Za-z]/.test(s.slice(3)) ? 0.8 : false;
  },
  prefixedTokenHint(OPENAI_PREFIXES, 256),
  1,
  { triggers: ['-'], back: 2, mayStart: startsWith('s'), near: afterPrefix(['sk']) },
);

export const googleApiKeyDetector = tokenDetector(
  'builtin.google_api_key',
  'GOOGLE_API_KEY',
  39,
  new RegExp(`${L}AIza[0-9A-Za-z_-]{35}${R}`, 'g'),
  0.95,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.95),
  prefixedTokenHint(GOOGLE_PREFIXES, 39),
  1,
  { triggers: ['AIza'], back: 0 },
);

const JWT_RE = new RegExp(`${L}(eyJ[A-Za-z0-9_-]{8,2000})\\.(ey[A-Za-z0-9_-]{4,4700})\\.([A-Za-z0-9_-]{0,1400})${R}`, 'g');
const JWT_AT = new RegExp(JWT_RE.source, 'y');
const JWT_TRIGGER = ['J'];
const JWT_FIRST = startsWith('e');

export const jwtDetector: Detector = defineDetector({
  id: 'builtin.jwt',
  type: 'JWT',
  maxLength: 8192,
  lookbehind: 1,
  lookahead: 1,
  find(text) {
    const out: Candidate[] = [];
    // `eyJ` opens every match: the `J` (rarer than `e` in prose) is the trigger.
    for (const m of matchesNear(JWT_AT, text, JWT_TRIGGER, 2, JWT_FIRST)) {
      const header = decodeBase64(m[1] ?? '');
      if (header === undefined) continue;
      let alg: unknown;
      try {
        const parsed: unknown = JSON.parse(header);
        alg = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['alg'] : undefined;
      } catch {
        continue;
      }
      if (typeof alg !== 'string') continue;
      const payload = decodeBase64(m[2] ?? '');
      if (payload === undefined || !payload.startsWith('{')) continue;
      const unsigned = (m[3] ?? '') === '';
      out.push({ start: m.index, end: m.index + m[0].length, confidence: unsigned ? 0.85 : 0.97 });
    }
    return out;
  },
  // The FIRST possible start in the trailing run: a JWT's payload also begins with `ey`.
  settledBefore: prefixedTokenHint(['eyJ'], 8192),
});

export const npmTokenDetector = tokenDetector(
  'builtin.npm_token',
  'NPM_TOKEN',
  40,
  new RegExp(`${L}npm_(?<body>[A-Za-z0-9]{36})${R}`, 'g'),
  0.99,
  undefined,
  (m) => crc32TokenConfidence(m[0], m.groups?.['body'] ?? ''),
  prefixedTokenHint(NPM_PREFIXES, 40),
  1,
  { triggers: ['_'], back: 3, mayStart: startsWith('n'), near: afterPrefix(['npm']) },
);

/**
 * PyPI API tokens: `pypi-` + a base64url macaroon whose first bytes name the index — `AgEIcHlwaS5vcmc`
 * is base64 of the header and location `pypi.org`, `AgENdGVzdC5weXBpLm9yZw` of `test.pypi.org`.
 */
export const pypiTokenDetector = tokenDetector(
  'builtin.pypi_token',
  'PYPI_TOKEN',
  1024,
  new RegExp(`${L}pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,997}${R}`, 'g'),
  0.97,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.97),
  prefixedTokenHint(PYPI_PREFIXES, 1024),
  1,
  { triggers: ['-'], back: 4, mayStart: startsWith('p'), near: afterPrefix(['pypi']) },
);

export const huggingfaceTokenDetector = tokenDetector(
  'builtin.huggingface_token',
  'HUGGINGFACE_TOKEN',
  48,
  new RegExp(`${L}(?:hf_|api_org_)[A-Za-z0-9]{34}${R}`, 'g'),
  0.9,
  '_',
  (m) => {
    const s = m[0];
    if (EXAMPLE_MARKER.test(s)) return false;
    // Issued tokens are random mixed-case letters (older ones also digits): not a word run.
    return /[A-Z]/.test(s.slice(3)) && /[a-z]/.test(s.slice(3)) ? 0.9 : false;
  },
  prefixedTokenHint(HUGGINGFACE_PREFIXES, 48),
  1,
  { triggers: ['_'], back: 3, mayStart: startsWith('ha'), near: afterPrefix(['hf', 'api']) },
);

export const sendgridKeyDetector = tokenDetector(
  'builtin.sendgrid_key',
  'SENDGRID_KEY',
  69,
  new RegExp(`${L}SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}${R}`, 'g'),
  0.97,
  undefined,
  (m) => (EXAMPLE_MARKER.test(m[0]) ? false : 0.97),
  prefixedTokenHint(SENDGRID_PREFIXES, 69),
  1,
  { triggers: ['SG.'], back: 0 },
);

// ---------------------------------------------------------------- credentials in URLs and headers

/** Passwords that are placeholders, not credentials: `password`, `${DB_PASS}`, `<password>`, `****`. */
const PLACEHOLDER_PASSWORD =
  /^(?:pass(?:word)?|passwd|pwd|secret|changeme|change_me|your[_-]?password|example|xxx+|\*+|\.\.\.+|<[^>]*>|\[[^\]]*\]|\$\{[^}]*\}|\{\{[^}]*\}\}|\$[A-Za-z_][A-Za-z0-9_]*|%[sd]|%\([^)]*\)s|:?[A-Za-z_]+_PASSWORD)$/i;
const DB_SCHEMES =
  'postgres|postgresql|postgis|mysql|mysql2|mariadb|mongodb|mongodb\\+srv|redis|rediss|valkey|memcached|amqp|amqps|mssql|sqlserver|oracle|cockroachdb|clickhouse|couchdb|couchbase|neo4j|neo4j\\+s|bolt|cassandra|db2|snowflake|jdbc:[a-z0-9]+|jdbc:[a-z0-9]+:[a-z0-9]+|sqlalchemy|postgresql\\+[a-z0-9]+|mysql\\+[a-z0-9]+';
const URL_CRED_RE = new RegExp(
  `(?<![A-Za-z0-9+.-])(?<scheme>(?:jdbc:(?:[a-z0-9]{1,20}:)?)?[A-Za-z][A-Za-z0-9+.-]{1,40})://(?<user>[^\\s:/@?#"'<>]{0,128}):(?<pass>[^\\s@/?#"'<>]{1,256})@(?=[A-Za-z0-9\\[._-])`,
  'g',
);
const DB_SCHEME_RE = new RegExp(`^(?:${DB_SCHEMES})$`, 'i');

const URL_CRED_AT = new RegExp(URL_CRED_RE.source, 'y');
const URL_CRED_KEY = {};
/**
 * The matches of URL_CRED_RE (shared by the two URL detectors): every match holds `://` right
 * after its scheme, at most 5 + 21 + 41 characters after its start (`jdbc:`, a sub-protocol and
 * `:`, the scheme), and starts with a letter not preceded by [A-Za-z0-9+.-].
 */
function urlCredentialMatches(text: string): readonly RegExpExecArray[] {
  return matchesNear(URL_CRED_AT, text, ['://'], 5 + 21 + 41, (t, q) => URL_LETTER(t.charCodeAt(q)) && (q === 0 || !URL_BOUNDARY(t.charCodeAt(q - 1))));
}

function urlCredentialFinder(dbOnly: boolean) {
  return (text: string): Candidate[] => {
    if (!text.includes('://')) return [];
    const out: Candidate[] = [];
    for (const m of shared(URL_CRED_KEY, text, urlCredentialMatches)) {
      const g = m.groups ?? {};
      const scheme = g['scheme'] ?? '';
      const isDb = DB_SCHEME_RE.test(scheme);
      if (isDb !== dbOnly) continue;
      const pass = g['pass'] ?? '';
      if (PLACEHOLDER_PASSWORD.test(decodeURIComponentSafe(pass))) continue;
      // Reported span: `scheme://user:password` — the host and path after `@` stay readable.
      out.push({ start: m.index, end: m.index + m[0].length - 1, confidence: isDb ? 0.97 : 0.9 });
    }
    return out;
  };
}

/** Characters a `scheme://user:password@` match (and the character it reads after) can hold. */
const URL_NOT_RUN_ASCII = asciiClass('\t\n\v\f\r "\'<>');
const URL_RUN: CharTest = (c) => (c < 128 ? !URL_NOT_RUN_ASCII(c) : !/\s/.test(String.fromCharCode(c)));
const URL_BOUNDARY = asciiClass('A-Za-z0-9+.-');
const URL_LETTER = asciiClass('A-Za-z');
/** Every prefix of `scheme://user:password@` (bounded like URL_CRED_RE). */
const URL_CRED_PREFIX =
  /^(?:jdbc:(?:[a-z0-9]{1,20}:?)?)?[A-Za-z][A-Za-z0-9+.-]{0,40}(?::(?:\/(?:\/(?:[^\s:/@?#"'<>]{0,128}(?::(?:[^\s@/?#"'<>]{0,256}@?)?)?)?)?)?)?$/;

/** Pending from the first possible scheme start in the trailing run whose text is still a prefix of a match. */
function urlCredentialHint(text: string): number {
  const n = text.length;
  const r = runStart(text, URL_RUN);
  for (let p = Math.max(r, n - 470); p < n; p++) {
    if (!URL_LETTER(text.charCodeAt(p))) continue;
    if (p > 0 && URL_BOUNDARY(text.charCodeAt(p - 1))) continue;
    if (URL_CRED_PREFIX.test(text.slice(p))) return p;
  }
  return n;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export const databaseUrlDetector: Detector = defineDetector({
  id: 'builtin.database_url_credentials',
  type: 'DATABASE_URL_CREDENTIALS',
  maxLength: 430,
  lookbehind: 1,
  lookahead: 2,
  find: urlCredentialFinder(true),
  settledBefore: urlCredentialHint,
});

export const urlCredentialsDetector: Detector = defineDetector({
  id: 'builtin.url_credentials',
  type: 'URL_CREDENTIALS',
  maxLength: 430,
  lookbehind: 1,
  lookahead: 2,
  find: urlCredentialFinder(false),
  settledBefore: urlCredentialHint,
});

const BASIC_RE = /(?:authorization|proxy-authorization)["']?\s{0,3}[:=]\s{0,3}["']?basic\s{1,3}(?<secret>[A-Za-z0-9+/]{4,684}={0,2})(?![A-Za-z0-9+/=])/gi;

export const basicAuthDetector: Detector = defineDetector({
  id: 'builtin.basic_auth',
  type: 'BASIC_AUTH_CREDENTIALS',
  maxLength: 688,
  lookbehind: 40,
  lookahead: 1,
  find: regexFinder(
    BASIC_RE,
    0.97,
    (m) => {
      const decoded = decodeBase64(m.groups?.['secret'] ?? '');
      if (decoded === undefined) return false;
      const colon = decoded.indexOf(':');
      if (colon < 0) return false;
      if (PLACEHOLDER_PASSWORD.test(decoded.slice(colon + 1)) || EXAMPLE_MARKER.test(decoded)) return false;
      return 0.97;
    },
    undefined,
    // The `:` or `=` follows the keyword (≤ 19 characters, ending in `authorization`), a quote and
    // ≤ 3 spaces: its last letter is among the 5 characters before it.
    { triggers: [':', '='], back: 19 + 1 + 3, mayStart: startsWith('aApP'), near: oneOfBefore('nN', 5) },
  ),
  // The reported span is the base64 run after the keyword; the keyword itself is left context.
  settledBefore: keywordSecretHint(asciiClass('A-Za-z0-9+/='), /(?:authorization|proxy-authorization)["']?\s{0,3}[:=]\s{0,3}["']?basic\s{1,3}$/i, 48, 688),
});

const BEARER_RE = /(?<![A-Za-z0-9])bearer\s{1,3}(?<secret>[A-Za-z0-9._~+/-]{16,4096}=*)(?![A-Za-z0-9._~+/=-])/gi;

export const bearerTokenDetector: Detector = defineDetector({
  id: 'builtin.bearer_token',
  type: 'BEARER_TOKEN',
  maxLength: 4100,
  // The header check reads 40 characters before `bearer`, itself up to 9 before the secret.
  lookbehind: 50,
  lookahead: 1,
  find: regexFinder(BEARER_RE, 0.9, (m, text) => {
    const s = m.groups?.['secret'] ?? '';
    // A token is random: it has digits or mixed case, not just a long word.
    const digits = /\d/.test(s);
    const mixed = /[a-z]/.test(s) && /[A-Z]/.test(s);
    if (!digits && !mixed) return false;
    if (EXAMPLE_MARKER.test(s) || /^(?:<|\$\{|\{\{)/.test(s)) return false;
    const header = /authorization["']?\s{0,3}[:=]\s{0,3}["']?$/i.test(text.slice(Math.max(0, m.index - 40), m.index));
    return header ? 0.95 : 0.8;
  }),
  settledBefore: keywordSecretHint(asciiClass('A-Za-z0-9._~+/=-'), /(?<![A-Za-z0-9])bearer\s{1,3}$/i, 16, 4100),
});

export const SECRET_DETECTORS: readonly Detector[] = [
  privateKeyDetector,
  awsAccessKeyDetector,
  awsSecretKeyDetector,
  githubTokenDetector,
  gitlabTokenDetector,
  slackTokenDetector,
  stripeKeyDetector,
  anthropicKeyDetector,
  openaiKeyDetector,
  googleApiKeyDetector,
  jwtDetector,
  npmTokenDetector,
  pypiTokenDetector,
  huggingfaceTokenDetector,
  sendgridKeyDetector,
  databaseUrlDetector,
  urlCredentialsDetector,
  basicAuthDetector,
  bearerTokenDetector,
];

/**
 * A prefixed token type: every entity its detector reports begins with one of `prefixes` and is
 * `minLength` to `maxLength` characters long. The policy's spaced view (src/core/policy/
 * scan-views.ts) looks for these tokens spaced out or broken over lines, starting where a prefix
 * begins (test/detection-shapes.test.ts checks the table against the detectors).
 */
export interface TokenShape {
  readonly type: EntityType;
  readonly prefixes: readonly string[];
  readonly minLength: number;
  readonly maxLength: number;
}

export const TOKEN_SHAPES: readonly TokenShape[] = Object.freeze([
  { type: 'AWS_ACCESS_KEY', prefixes: AWS_PREFIXES, minLength: 20, maxLength: 20 },
  // ghp_ + 36; github_pat_ + 22 + _ + 59.
  { type: 'GITHUB_TOKEN', prefixes: GITHUB_PREFIXES, minLength: 40, maxLength: 93 },
  { type: 'GITLAB_TOKEN', prefixes: GITLAB_PREFIXES, minLength: 25, maxLength: 128 },
  // xoxb- + 6 digits + - + 8.
  { type: 'SLACK_TOKEN', prefixes: SLACK_PREFIXES, minLength: 20, maxLength: 256 },
  { type: 'STRIPE_KEY', prefixes: STRIPE_PREFIXES, minLength: 28, maxLength: 256 },
  { type: 'ANTHROPIC_KEY', prefixes: ANTHROPIC_PREFIXES, minLength: 45, maxLength: 200 },
  // sk-proj- + 40.
  { type: 'OPENAI_KEY', prefixes: OPENAI_PREFIXES, minLength: 48, maxLength: 256 },
  { type: 'GOOGLE_API_KEY', prefixes: GOOGLE_PREFIXES, minLength: 39, maxLength: 39 },
  { type: 'NPM_TOKEN', prefixes: NPM_PREFIXES, minLength: 40, maxLength: 40 },
  { type: 'PYPI_TOKEN', prefixes: PYPI_PREFIXES, minLength: 70, maxLength: 1024 },
  { type: 'HUGGINGFACE_TOKEN', prefixes: HUGGINGFACE_PREFIXES, minLength: 37, maxLength: 42 },
  { type: 'SENDGRID_KEY', prefixes: SENDGRID_PREFIXES, minLength: 69, maxLength: 69 },
] satisfies TokenShape[]);
