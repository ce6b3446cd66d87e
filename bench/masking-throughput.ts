/**
 * Masking throughput and streaming holdback, on one core.
 *
 *   node bench/masking-throughput.ts [--docs]
 *
 * Text: a deterministic (seeded) mix of English-like prose with emails, phone numbers, card
 * numbers, IBANs, IPs, non-ASCII words and the odd zero-width character — about one entity per
 * 250 characters. Detectors: the real built-in ones (src/core/detection), PII only and all
 * (PII + secrets).
 *
 * 1. Whole-text masking (detectEntities + maskText), MB/s (MB = 10^6 UTF-16 code units ≈ bytes
 *    for this mostly-ASCII text) — and maskText alone, given the detections.
 * 2. StreamMasker over the same text in 16 KB chunks, MB/s.
 *    Both as the median over runs (≥ 7, ≥ 1.5 s) of wall-clock time per run, and of the process's
 *    CPU time per run (process.cpuUsage: what the core spent, whatever else the shared machine ran
 *    meanwhile; it also counts V8's background GC threads).
 * 3. A streamed answer as word-by-word deltas (~4 KB answers with emails/phones): holdback after
 *    each delta in characters (p50/p95/max), time spent in push() per delta (µs p50/p95/p99),
 *    and the StreamMasker's throughput on those tiny deltas.
 * 4. StreamRestorer on word-by-word deltas with placeholders: µs per delta, holdback.
 *
 *
 * `--docs` rewrites the section between <!-- masking:start --> and <!-- masking:end --> in
 * docs/benchmarks.md (appending it when missing).
 */
import fs from 'node:fs';
import os from 'node:os';
import { BUILTIN_DETECTORS, detectEntities } from '../src/core/detection/index.ts';
import { PII_DETECTORS } from '../src/core/detection/pii.ts';
import type { Detection, Detector } from '../src/core/detection/types.ts';
import { maskText } from '../src/core/masking/operators.ts';
import type { MaskOperator } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { StreamMasker } from '../src/core/masking/stream-masker.ts';
import { StreamRestorer } from '../src/core/masking/stream-restorer.ts';

let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;

const WORDS = 'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part'.split(' ');
const OTHER = ['café', 'naïve', 'Müller', '日本語', 'Привет', '😀', 'e\u0301t\u0301e\u0301', 'ﬁle', 'zero\u200Bwidth'];
const cardFor = (): string => pick(['4111 1111 1111 1111', '5500005555555559', '4012888888881881', '378282246310005']);
function entity(): string {
  switch (Math.floor(rand() * 6)) {
    case 0: return `${pick(['ann.lee', 'bob', 'j.doe+news', 'support'])}${Math.floor(rand() * 100)}@${pick(['example.com', 'mail.example.org', 'corp.example.net'])}`;
    case 1: return pick(['+1 415 555 0100', '(212) 555-0143', '+44 20 7946 0958', '+49 30 901820']);
    case 2: return cardFor();
    case 3: return pick(['DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432']);
    case 4: return pick(['192.168.10.42', '10.0.0.7', '2001:db8::8a2e:370:7334']);
    default: return pick(['078-05-1120', 'order 12345', 'v1.2.3']);
  }
}
function mixedText(size: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    let s: string;
    const r = rand();
    if (r < 0.035) s = entity();
    else if (r < 0.05) s = pick(OTHER);
    else s = pick(WORDS);
    s += rand() < 0.08 ? '.\n' : rand() < 0.1 ? ', ' : ' ';
    parts.push(s);
    n += s.length;
  }
  return parts.join('');
}

const redact = (): MaskOperator => ({ kind: 'redact' });
const pseudo = (d: Detection): MaskOperator => (d.type === 'EMAIL_ADDRESS' || d.type === 'PHONE_NUMBER' ? { kind: 'pseudonymize' } : { kind: 'redact' });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const MB = 1e6;
const fmt = (x: number, d = 1): string => x.toFixed(d);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Median wall-clock and CPU milliseconds per run of `fn`, over ≥ minRuns runs and ≥ minMs. */
function timeIt(fn: () => void, minMs = 1500, minRuns = 7): { ms: number; cpuMs: number; runs: number } {
  fn(); // warm-up
  const wall: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  do {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    fn();
    wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  } while (performance.now() - t0 < minMs || wall.length < minRuns);
  return { ms: median(wall), cpuMs: median(cpu), runs: wall.length };
}
const mbps = (chars: number, ms: number): string => `${fmt(chars / MB / (ms / 1000))} MB/s`;

const rows: string[][] = [];
const text = mixedText(4 * MB);
const detected = detectEntities(text, PII_DETECTORS);

const NO_PHONE = PII_DETECTORS.filter((d) => d.type !== 'PHONE_NUMBER');
for (const [name, detectors] of [['PII', PII_DETECTORS], ['all built-in', BUILTIN_DETECTORS], ['PII without phone', NO_PHONE]] as const) {
  const w = timeIt(() => maskText(text, detectEntities(text, detectors), redact));
  rows.push([`whole text: detectEntities + maskText (${name} detectors)`, mbps(text.length, w.ms), mbps(text.length, w.cpuMs)]);
  const s = timeIt(() => {
    const m = new StreamMasker({ detectors, operatorFor: redact });
    for (let i = 0; i < text.length; i += 16384) m.push(text.slice(i, i + 16384));
    m.end();
  });
  rows.push([`StreamMasker, 16 KB chunks (${name} detectors)`, mbps(text.length, s.ms), mbps(text.length, s.cpuMs)]);
}
// The same prose with its entities already masked: what detection costs when there is nothing to find.
const plain = maskText(text, detectEntities(text, BUILTIN_DETECTORS), redact);
const p = timeIt(() => maskText(plain, detectEntities(plain, BUILTIN_DETECTORS), redact));
rows.push([`whole text, the same prose with its entities masked beforehand (${fmt(plain.length / MB, 2)} M characters, ${detectEntities(plain, BUILTIN_DETECTORS).length} detections left; all built-in detectors)`, mbps(plain.length, p.ms), mbps(plain.length, p.cpuMs)]);
const mOnly = timeIt(() => maskText(text, detected, redact));
rows.push(['maskText alone (detections given, redact)', mbps(text.length, mOnly.ms), mbps(text.length, mOnly.cpuMs)]);

// Streamed answers, word by word.
const byWord = (answer: string): string[] => answer.split(/(?<=\s)/);
/** Sub-word deltas of 1–6 characters, like an LLM's tokens (deterministic). */
const byToken = (answer: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i < answer.length; ) {
    const n = 1 + Math.floor(rand() * 6);
    out.push(answer.slice(i, i + n));
    i += n;
  }
  return out;
};
function streamFigures(detectors: readonly Detector[], split: (answer: string) => string[] = byWord): { held: number[]; us: number[]; mbps: number; chars: number } {
  const held: number[] = [];
  const us: number[] = [];
  let chars = 0;
  const answers: string[][] = [];
  for (let a = 0; a < 300; a++) {
    const answer = mixedText(4000);
    answers.push(split(answer));
    chars += answer.length;
  }
  // Throughput on CPU time: wall-clock time summed over deltas is dominated, on a shared machine,
  // by the few deltas during which the process was descheduled.
  const c0 = process.cpuUsage();
  for (const deltas of answers) {
    const m = new StreamMasker({ detectors, operatorFor: pseudo, vault: new PseudonymVault() });
    for (const d of deltas) {
      const t0 = performance.now();
      m.push(d);
      us.push((performance.now() - t0) * 1000);
      held.push(m.heldBack);
    }
    m.end();
  }
  const c = process.cpuUsage(c0);
  held.sort((x, y) => x - y);
  us.sort((x, y) => x - y);
  return { held, us, mbps: chars / MB / ((c.user + c.system) / 1e6), chars };
}
streamFigures(PII_DETECTORS); // warm-up
const streamRows: string[][] = [];
for (const [name, detectors, split] of [
  ['PII, word deltas', PII_DETECTORS, byWord],
  ['all built-in, word deltas', BUILTIN_DETECTORS, byWord],
  ['all built-in, 1–6-character deltas', BUILTIN_DETECTORS, byToken],
] as const) {
  const f = streamFigures(detectors, split);
  streamRows.push([
    name,
    `${pct(f.held, 50)} / ${pct(f.held, 95)} / ${f.held[f.held.length - 1]}`,
    `${fmt(pct(f.us, 50))} / ${fmt(pct(f.us, 95))} / ${fmt(pct(f.us, 99))}`,
    `${fmt(f.mbps, 2)} MB/s`,
    `${f.us.length} deltas, ${f.chars} chars`,
  ]);
}

// Restorer.
const vault = new PseudonymVault();
for (let i = 0; i < 50; i++) vault.placeholderFor('EMAIL_ADDRESS', `user${i}@example.com`);
const answerWithPlaceholders = Array.from({ length: 2000 }, (_, i) => (i % 25 === 0 ? `«EMAIL_${1 + (i % 50)}» ` : `${pick(WORDS)} `)).join('');
const rUs: number[] = [];
const rHeld: number[] = [];
for (let rep = 0; rep < 20; rep++) {
  const r = new StreamRestorer(vault);
  for (const d of answerWithPlaceholders.split(/(?<=[\s_])/)) {
    const t0 = performance.now();
    r.push(d);
    rUs.push((performance.now() - t0) * 1000);
    rHeld.push(r.heldBack);
  }
  r.end();
}
rUs.sort((x, y) => x - y);
rHeld.sort((x, y) => x - y);

const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
const date = new Date().toISOString().slice(0, 10);
const lines: string[] = [];
lines.push('## Masking throughput and streaming holdback');
lines.push('');
lines.push(`Command: \`node bench/masking-throughput.ts\` — ${date}, Node ${process.version}, nproc ${os.cpus().length} (${cpu}), one core (single thread).`);
lines.push('');
lines.push(`Mixed text: ${fmt(text.length / MB, 2)} M characters of seeded English-like prose with emails, phones, cards, IBANs, IPs, SSNs, non-ASCII words and zero-width characters (${detected.length} PII detections, one per ${Math.round(text.length / detected.length)} characters). Real built-in detectors (src/core/detection).`);
lines.push('');
lines.push('| figure | wall clock (median) | CPU time (median) | goal |');
lines.push('|---|---|---|---|');
for (const [k = '', v = '', c = ''] of rows) lines.push(`| ${k} | ${v} | ${c} | ${(k.startsWith('whole') && !k.includes('masked beforehand')) || k.startsWith('Stream') ? '≥ 100 MB/s' : '—'} |`);
lines.push('');
lines.push('Streamed answers: 300 answers of ~4 000 characters, sent as word-by-word deltas (one word + its following space/newline each) or as 1–6-character deltas (like LLM tokens, cut anywhere); emails and phones pseudonymized, the rest redacted. Holdback = characters received but not yet released, sampled after every delta. Latency = time inside `push()` per delta.');
lines.push('');
lines.push('| detectors, deltas | holdback p50 / p95 / max (chars) | added latency per delta p50 / p95 / p99 (µs) | throughput on these deltas (CPU time) | sample |');
lines.push('|---|---|---|---|---|');
for (const r of streamRows) lines.push(`| ${r.join(' | ')} |`);
lines.push('');
lines.push(`StreamRestorer (placeholders split at \`_\` and spaces, ${rUs.length} deltas): p50 ${fmt(pct(rUs, 50), 2)} µs, p99 ${fmt(pct(rUs, 99), 2)} µs per delta; holdback p50 ${pct(rHeld, 50)} / p95 ${pct(rHeld, 95)} / max ${rHeld[rHeld.length - 1]} chars.`);
lines.push('');
lines.push('Before and after the anchored detection (commits 427d9db..1d6c706, results identical — see below): this same script on the code at 725fcd9 and on the new code, three runs each, alternating, medians of the per-run medians (wall clock): whole text 75.3 → 129.5 MB/s (PII) and 55.9 → 120.0 MB/s (all built-in); StreamMasker 16 KB chunks 73.6 → 135.0 MB/s (PII) and 52.5 → 121.7 MB/s (all built-in); the same prose without entities 84.3 → 226.7 MB/s; per word delta (all built-in) p50 4.0 → 3.6 µs. (The figures this section held before were means over 1.5 s on a busier machine: 18–30 MB/s for the same code; before the previous speed-up, db4fa06, 2.6 MB/s (PII) and 1.8 MB/s (all built-in).) The results did not change: every built-in detector\'s detections and streaming hint, detectStreaming and the normalized text were compared with the previous implementation on this text, the Presidio set, the own corpus and 120 000 random fragment texts, and bench/detection-quality.ts gives the same tables.');
lines.push('');
lines.push('How: each detector runs its regex only where a match can start (src/core/detection/anchors.ts: the sticky regex is tried at exactly the starts where the global scan can find a match, in the same order). The phone, card, SSN, IPv4 and IBAN detectors share one scan of the text\'s digit runs (one regex call per number cluster), kept as columns — each run\'s neighbouring characters and how far number characters reach — so they read the text only near real candidates; the secret detectors are tried around their trigger characters (`_`, `-`, `:`/`=`, `J` of `eyJ`, `://`) shared between detectors and filtered by their prefixes. Context words are matched by an Aho–Corasick automaton over the 48 preceding characters (no slice, no lower-casing; U+0130 and U+212A, the only code points whose lower case is ASCII or longer, take the old path). Card, IBAN and IPv6 checks work on text positions without building strings. Normalization skips regions of characters nothing can compose with (no ICU call) and segments the others once; detections of each detector are merged, not sorted together.');
lines.push('');
lines.push('Where the time goes now (CPU profile of detectEntities + maskText, all built-in detectors, this text): the PII detectors\' work on their candidates ≈ 40 % (phone ≈ 4.5 ms per 4 M characters, IP ≈ 3, card ≈ 3, IBAN ≈ 2.5, email ≈ 2, SSN < 1: per candidate a sticky regex confirmation, the context-word automaton, checksums, the memoized libphonenumber verdict — 22 400 entities, one every 178 characters, each in its own part of an 8 MB string, mostly cache misses); normalization ≈ 20 % (the scan for non-ASCII runs, the ~7 000 regions that change — a ligature, a zero-width space or a combining accent every ~600 characters — and the 8 MB copy that assembles the normalized text, ≈ 3 ms alone on this machine); the shared digit-run scan ≈ 12 % (37 000 number clusters, 79 000 runs); the 18 secret detectors ≈ 9 % (1.5 ms of it the case-insensitive `bearer` keyword scan, the one secret regex still run over the whole text: no character of the keyword is case-stable, so there is nothing to anchor on); collecting, mapping back and resolving the 22 400 detections ≈ 9 %; GC ≈ 4 %; maskText ≈ 1 %. So what bounds it is the per-entity work, not the scanning: the same prose without its entities runs at ≈ 2× the mixed text\'s speed (row above). Rows 1–4 meet the goal in medians on this shared 2-core machine, by ~20 % for all built-in detectors; a busy minute (another process\'s benchmark) still pulls a single run below 100 MB/s.');
lines.push('');
lines.push('Holdback: every built-in detector implements the streaming hint `settledBefore(text)` (contract in src/core/detection/types.ts): the index before which nothing can still become, or change, one of its entities whatever text follows. The masker (through `detectStreaming`, on the normalized text) releases everything before the smallest such index, so it holds back only a candidate still being written — the last word when it could still grow into an email or a URL with credentials, an `eyJ…` run, an open `-----BEGIN … PRIVATE KEY-----` block until its END marker — instead of the longest possible entity (8 192 characters for a JWT, which is what it held before the hints: p50 2 003 / p95 3 804 with all built-in detectors, p50 285 / p95 317 with PII only, on this same benchmark). Detection then runs on nearly every delta, over a short window (held text + 65 characters of context), which is the added latency per delta above. Custom regex detectors have no hint and keep the maxLength + lookahead bound.');
const section = lines.join('\n');
console.log(section);

if (process.argv.includes('--docs')) {
  const file = new URL('../docs/benchmarks.md', import.meta.url);
  const doc = fs.readFileSync(file, 'utf8');
  const block = `<!-- masking:start -->\n${section}\n<!-- masking:end -->`;
  const re = /<!-- masking:start -->[\s\S]*?<!-- masking:end -->/;
  fs.writeFileSync(file, re.test(doc) ? doc.replace(re, block) : `${doc.trimEnd()}\n\n${block}\n`);
  console.log('\n(docs/benchmarks.md updated)');
}
