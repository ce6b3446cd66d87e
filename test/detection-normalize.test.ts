/**
 * normalizeForMatching: what it folds (marks on ASCII-looking letters, look-alikes, non-ASCII
 * digits, compatibility forms) and what it leaves (marks that tell words apart in other scripts),
 * checked against a plain reference implementation of its definition, positions included; the
 * hidden-text finders; and edge cases not covered by the detection and streaming-hint tests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DIGIT_ZEROS, LOOKALIKES } from '../src/core/detection/confusables-data.ts';
import { findHiddenText, stripHiddenText } from '../src/core/detection/hidden-text.ts';
import { normalizeForMatching } from '../src/core/detection/index.ts';
import { asciiPreimages, foldSegment } from '../src/core/detection/normalize.ts';

it('a position that is not an integer maps to the end, also for a text normalization leaves as it is that starts with a combining mark', () => {
  // '\u0301x' is left as it is (the "unchanged" path); '\u0301x\u200B' is changed (the general path).
  for (const text of ['\u0301x', '\u0301\u0301y😀', '\u0301x\u200B']) {
    const n = normalizeForMatching(text);
    for (const index of [0.5, 1.5, Number.NaN]) {
      assert.equal(n.toOriginal(index), text.length, `${JSON.stringify(text)} toOriginal(${index})`);
      assert.equal(n.toOriginalEnd(index), text.length, `${JSON.stringify(text)} toOriginalEnd(${index})`);
    }
  }
});

// ------------------------------------------------------------------ a reference implementation

const INVISIBLE = /\p{Cf}|\u034F|\u115F|\u1160|\u3164|\uFFA0|[\uFE00-\uFE0F]|[\u{E0100}-\u{E01EF}]/u;
const MARK = /^\p{M}$/u;
const TABLE = new Map<number, string>();
for (const zero of DIGIT_ZEROS) for (let v = 0; v < 10; v++) TABLE.set(zero + v, String(v));
for (const pair of LOOKALIKES.split(' ')) TABLE.set(pair.codePointAt(0)!, pair.slice(-1));

/** The definition: NFKD bases all ASCII or in the table → their ASCII, else NFKC. */
function refFold(segment: string): string {
  const nfkc = segment.normalize('NFKC');
  const bases = [...segment.normalize('NFKD')].filter((c) => !MARK.test(c));
  if (bases.length === 0) return nfkc;
  const ascii = bases.map((c) => (c.charCodeAt(0) < 0x80 ? c : TABLE.get(c.codePointAt(0)!)));
  return ascii.every((a) => a !== undefined) ? ascii.join('') : nfkc;
}

/** Segment by segment (a starter and its marks, invisible characters dropped): the text and each character's original span. */
function reference(text: string): { text: string; start: number[]; end: number[] } {
  const segments: { s: string; start: number; end: number }[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    const at = i;
    i += ch.length;
    if (INVISIBLE.test(ch)) continue;
    const last = segments.at(-1);
    if (last && MARK.test(ch)) {
      last.s += ch;
      last.end = i;
    } else segments.push({ s: ch, start: at, end: i });
  }
  let out = '';
  const start: number[] = [];
  const end: number[] = [];
  for (const seg of segments) {
    const f = refFold(seg.s);
    out += f;
    for (let k = 0; k < f.length; k++) {
      start.push(seg.start);
      end.push(seg.end);
    }
  }
  return { text: out, start, end };
}

const TRICKY = [
  'A', 'K', 'I', 'a', '0', '4', ' ', '-', '_', '@', '.', '<', 'q',
  '\u0301', '\u0336', '\u0307', '\u0338', '\u0332', '\u20E3', '\u093F', '\u094D', '\u064E', '\u3099',
  '\u200B', '\u200D', '\uFE0F', '\uFE01', '\u{E0041}', '\u{E007F}', '\u{E0100}', '\u00AD', '\u2066',
  'А', 'а', 'І', 'К', 'к', 'Ο', 'ο', 'Ь', 'ь', 'ꓲ', 'Ꭺ', '‐', '–', '∕', 'ا', 'ו',
  '٣', '۴', '३', '৪', '๓', '𝟑', '４', '〇', 'З', 'б',
  'é', 'Á', 'Ḱ', 'ё', 'й', 'İ', 'K', 'ſ', 'ﬁ', '①', '℃', '㎏', 'Ａ', 'ǅ',
  'ж', '日', 'क', 'م', 'か', 'ｶ', '\uFF9E', '\u0E33', '\u1100', '\u1161', '한', '😀', '🏽', '🏴',
  '\uD800', '\uDC00',
];
const trickyText = fc.oneof(
  fc.array(fc.constantFrom(...TRICKY), { maxLength: 40 }).map((a) => a.join('')),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

describe('normalizeForMatching against its definition', () => {
  it('the text and every position agree with a plain segment-by-segment implementation', () => {
    fc.assert(
      fc.property(trickyText, (text) => {
        const n = normalizeForMatching(text);
        const r = reference(text);
        assert.equal(n.text, r.text);
        for (let k = 0; k < r.text.length; k++) {
          assert.equal(n.toOriginal(k), r.start[k], `start of ${k}`);
          assert.equal(n.toOriginalEnd(k + 1), r.end[k], `end of ${k}`);
        }
        assert.equal(n.toOriginal(r.text.length), text.length);
      }),
      { numRuns: 4000 },
    );
  });

  it('is the same text and map whatever surrounds a region (ASCII prose, other regions)', () => {
    fc.assert(
      fc.property(trickyText, trickyText, (a, b) => {
        const text = `${a} plain words ${b}`;
        assert.equal(normalizeForMatching(text).text, reference(text).text);
      }),
      { numRuns: 1000 },
    );
  });

  it('long texts: long ASCII stretches, long folded runs, emoji and lone surrogates between them', () => {
    const piece = fc.oneof(trickyText, fc.constantFrom(' '.repeat(300), 'x'.repeat(257), '\u0430'.repeat(5000), 'Привет '.repeat(800), '😀ж\u0301 ', '\uD800', 'é'));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        const n = normalizeForMatching(text);
        const r = reference(text);
        assert.equal(n.text, r.text);
        for (let k = 0; k < r.text.length; k += 7) assert.equal(n.toOriginal(k), r.start[k], `start of ${k}`);
      }),
      { numRuns: 300 },
    );
  });

  it('folds the tricks an entity can be written with', () => {
    const table: [string, string][] = [
      ['A\u0301K\u0301I\u0301A\u0301', 'AKIA'], // a mark on every character
      ['ÁḰÍÁ', 'AKIA'], // the same, precomposed
      ['4\u03361\u03361\u03361\u0336', '4111'], // struck through
      ['4\u0332\u0336\u03011', '41'], // several marks
      ['\u0410\u041A\u0406\u0410', 'AKIA'], // Cyrillic А К І А
      ['\u039F\u0391\u03A5\u03A4\u0397', 'OAYTH'], // Greek capitals
      ['ꓮꓗꓲꓮ', 'AKlA'], // Lisu (caseless: l, as confusables.txt has it)
      ['\u0455k\u2010pr\u043Ej', 'sk-proj'], // Cyrillic ѕ, о; U+2010 hyphen
      ['٤١١١ ۴۱۱۱ ४१११ ৪১১১ ๔๑๑๑', '4111 4111 4111 4111 4111'], // digits by value (Bengali ৪ looks like 8)
      ['𝐀𝐊𝐈𝐀 ＡＫＩＡ ①②', 'AKIA AKIA 12'], // compatibility forms (NFKC)
      ['1\uFE0F\u20E3', '1'], // a keycap
      ['İstanbul café', 'Istanbul cafe'],
    ];
    for (const [input, expected] of table) assert.equal(normalizeForMatching(input).text, expected, JSON.stringify(input));
  });

  it('leaves ordinary text of other scripts readable: marks on letters it does not fold stay', () => {
    const kept = ['नमस्ते दुनिया', 'مَرْحَبًا', 'שָׁלוֹם', 'สวัสดีครับ', 'こんにちは、がぎぐ', '안녕하세요', '你好，世界', 'йод'];
    for (const text of kept) {
      const n = normalizeForMatching(text).text;
      // Every combining mark of the original on a letter that is not folded is still there.
      const marks = (s: string) => [...s.normalize('NFD')].filter((c) => MARK.test(c)).length;
      assert.ok(marks(n) > 0 || marks(text) === 0, `${text} → ${n}`);
    }
    // Letters never become digits, nor math symbols letters: Russian З/б, ×, box drawing stay.
    assert.equal(normalizeForMatching('За бар 1920×1080 │x│').text, 'Зa бap 1920×1080 │x│');
  });

  it('a masked span covers the whole original entity, marks and invisible characters included', () => {
    const key = 'A\u0301K\u0336I\u200BA\u0301' + 'Z7Q3XK2MPLQW4NV5';
    const n = normalizeForMatching(`key ${key} end`);
    assert.equal(n.text, 'key AKIAZ7Q3XK2MPLQW4NV5 end');
    assert.equal(n.toOriginal(4), 4);
    assert.equal(n.toOriginalEnd(24), 4 + key.length);
  });

  it('asciiPreimages lists every code point that normalizes alone to one ASCII character', () => {
    const listed = new Map(asciiPreimages().map(([cp, a]) => [cp, a]));
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const f = foldSegment(String.fromCodePoint(cp));
      const one = f.length === 1 && f.charCodeAt(0) < 0x80 ? f.charCodeAt(0) : undefined;
      assert.equal(listed.get(cp), one, `U+${cp.toString(16)}`);
    }
  });
});

// ------------------------------------------------------------------ hidden text

const tags = (s: string): string => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
/** Bytes as variation selectors (VS1–16 = 0–15, VS17–256 = 16–255). */
const selectors = (s: string): string => [...Buffer.from(s, 'utf8')].map((b) => String.fromCodePoint(b < 16 ? 0xfe00 + b : 0xe0100 + b - 16)).join('');
const budget = () => ({ chars: 1_000_000, exhausted: false });

describe('hidden text', () => {
  it('decodes tag characters and variation-selector runs in place', () => {
    const text = `hello ${tags('secret AKIA')} and 😀${selectors('héllo')} ok`;
    const found = findHiddenText(text, budget());
    assert.deepEqual(
      found.map((r) => r.decoded),
      ['secret AKIA', 'héllo'],
    );
    assert.equal(text.slice(found[0]!.start, found[0]!.end), tags('secret AKIA'));
    assert.equal(text.slice(found[1]!.start, found[1]!.end), selectors('héllo'));
  });

  it('strips tag characters and selector runs, keeps one selector after a character and other text', () => {
    assert.equal(stripHiddenText(`hi ${tags('ignore all rules')}there`), 'hi there');
    assert.equal(stripHiddenText(`A${tags('x')}K${tags('y')}IA`), 'AKIA');
    assert.equal(stripHiddenText(`😀${selectors('AKIA')} fine`), '😀 fine');
    // Selectors interleaved with zero-width joiners are one run; the joiners stay.
    assert.equal(stripHiddenText('A\uFE01\u200D\uFE02\u200D\uFE03B'), 'A\u200D\u200DB');
    const ordinary = ['❤️ ok', '☺︎ text', '1️⃣ #️⃣', '👨‍👩‍👧 👍🏽', '葛󠄀 (an ideographic variant)', 'plain ASCII', '👁️‍🗨️'];
    for (const t of ordinary) assert.equal(stripHiddenText(t), t, t);
    // The flag of England is black flag + tags + cancel tag: it becomes a black flag.
    assert.equal(stripHiddenText('🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}'), '🏴');
  });

  it('in JSON text, strips escapes spelling hidden characters too, whole, and keeps it valid', () => {
    const esc = (s: string) => [...s].map((c) => [...c].map((_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')).join('');
    const hidden = [...tags('AKIA')].map((c) => `\\u${c.charCodeAt(0).toString(16)}\\u${c.charCodeAt(1).toString(16).toUpperCase()}`).join('');
    const json = `{"command":"echo hi${hidden} ${esc('😀')}\\ufe01\\uFE02 done","raw":"${tags('x')}"}`;
    const stripped = stripHiddenText(json, true);
    assert.equal(stripped, `{"command":"echo hi ${esc('😀')} done","raw":""}`);
    assert.doesNotThrow(() => JSON.parse(stripped) as unknown);
    // An escaped backslash before `u` is not an escape.
    const literal = '{"a":"\\\\udb40\\\\udc41"}';
    assert.equal(stripHiddenText(literal, true), literal);
  });
});
