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
for (const [k = '', v = '', c = ''] of rows) lines.push(`| ${k} | ${v} | ${c} | ${k.startsWith('whole') || k.startsWith('Stream') ? '≥ 100 MB/s' : '—'} |`);
lines.push('');
lines.push('Streamed answers: 300 answers of ~4 000 characters, sent as word-by-word deltas (one word + its following space/newline each) or as 1–6-character deltas (like LLM tokens, cut anywhere); emails and phones pseudonymized, the rest redacted. Holdback = characters received but not yet released, sampled after every delta. Latency = time inside `push()` per delta.');
lines.push('');
lines.push('| detectors, deltas | holdback p50 / p95 / max (chars) | added latency per delta p50 / p95 / p99 (µs) | throughput on these deltas (CPU time) | sample |');
lines.push('|---|---|---|---|---|');
for (const r of streamRows) lines.push(`| ${r.join(' | ')} |`);
lines.push('');
lines.push(`StreamRestorer (placeholders split at \`_\` and spaces, ${rUs.length} deltas): p50 ${fmt(pct(rUs, 50), 2)} µs, p99 ${fmt(pct(rUs, 99), 2)} µs per delta; holdback p50 ${pct(rHeld, 50)} / p95 ${pct(rHeld, 95)} / max ${rHeld[rHeld.length - 1]} chars.`);
lines.push('');
lines.push('Where the time goes: maskText itself runs at > 1 GB/s; detection is the bottleneck. Detection was made ~15× faster with results unchanged (proved at the time by a differential property test against a frozen copy of the old code, in the commit that made the change; both were removed afterwards as they would only pin old behaviour): normalizeForMatching works only on the non-ASCII regions of the text (it was per code point over the whole text as soon as one character changed: ~3 MB/s on this text); libphonenumber verdicts are memoized per candidate (bounded map); email and IP addresses run their regex only where an `@`, `.` or `:` allows a match to start. Remaining cost on this 4 M-character text, measured per step on a shared 2-core machine (noisy): normalization ~25–45 ms (scanning for non-ASCII characters and building the new 4 M-character string are most of it), phone ~40 ms (the candidate regex and per-candidate filters), card ~30 ms and IBAN ~20 ms (per-match validation), IP ~20 ms, email ~10 ms, the 18 secret detectors ~45 ms together. The ≥ 100 MB/s goal is NOT met; the next steps would be cheaper per-match validation (card, IBAN, phone filters) and one shared scan for the digit-driven detectors.');
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
