/**
 * Block rules hold against Unicode tricks (issue 12, item 1): a secret, card, IBAN or keyword
 * written with a combining mark on every character, with accented letters, with look-alike
 * letters from other scripts (Cyrillic, Greek, Cherokee, Lisu), with non-ASCII digits, split by
 * tag characters, or smuggled whole in tag characters or variation selectors — and ordinary text
 * in other scripts (prose, emoji sequences) does not trigger the rules and is forwarded as it is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { base62Encode, crc32 } from '../src/core/detection/checksums.ts';
import { LOOKALIKES } from '../src/core/detection/confusables-data.ts';
import { stripHiddenText } from '../src/core/detection/hidden-text.ts';
import type { ContentPart, NormalizedMessage, Principal } from '../src/core/events.ts';
import { evaluatePolicy, type PolicyInput } from '../src/core/policy/index.ts';
import { normalizePath, normalizeUrl } from '../src/core/policy/tool-paths.ts';

/** Built at run time: no literal secret in the repository. */
const GITHUB = ((seed: string) => ['gh', 'p_'].join('') + seed + base62Encode(crc32(seed), 6))('aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1');
const AWS = ['AK', 'IAZ7Q3XK2MPLQW4NV5'].join('');
const CARD = '4111 1111 1111 1111';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const KEYWORD = 'PROJECT-NIGHTJAR';

const POLICY = `
version: 1
rules:
  - { id: no-secrets, match: { detectors: [AWS_ACCESS_KEY, GITHUB_TOKEN] }, action: block }
  - { id: no-cards, match: { detectors: [CREDIT_CARD, IBAN_CODE] }, action: block }
  - { id: codename, match: { keywords: [${KEYWORD}, "café crème", секрет, गोपनीय] }, action: block }
  - { id: no-pii, match: { detectors: [SECRETS, PII] }, action: block }
`;
const policy = parsePolicyText(POLICY, 'inline-policy.yaml').compiled;

const ALICE: Principal = { subject: 'alice', email: 'alice@example.com', groups: ['eng'], issuer: 'https://idp.test', clientId: null };
const text = (t: string): ContentPart => ({ type: 'text', text: t });
function request(...prompts: string[]): PolicyInput {
  const messages: NormalizedMessage[] = prompts.map((p) => ({ role: 'user', parts: [text(p)] }));
  return { principal: ALICE, provider: 'openai', model: 'gpt', endpoint: 'openai.chat.completions', request: { endpoint: 'openai.chat.completions', model: 'gpt', stream: false, messages, tools: [], inputs: [], texts: [] } };
}
/** The same text as a tool call's JSON arguments (escaped as a client serializes it). */
function toolRequest(value: string): PolicyInput {
  const base = request('run it');
  const call: NormalizedMessage = { role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'Bash', arguments: JSON.stringify({ command: `echo ${value}` }) }] };
  return { ...base, request: { ...base.request, messages: [...base.request.messages, call] } };
}

// ------------------------------------------------------------------ the tricks

/** One look-alike per ASCII character, from another script (Cyrillic and Greek first). */
const LOOK = new Map<string, string>();
for (const pair of LOOKALIKES.split(' ')) {
  const ascii = pair.slice(-1);
  const cp = pair.codePointAt(0)!;
  const known = LOOK.get(ascii)?.codePointAt(0);
  const rank = (c: number) => (c >= 0x370 && c <= 0x4ff ? 0 : c < 0x10000 ? 1 : 2);
  if (known === undefined || rank(cp) < rank(known)) LOOK.set(ascii, String.fromCodePoint(cp));
}
const lookalikes = (v: string, every = 1) => [...v].map((c, i) => (i % every === 0 ? (LOOK.get(c) ?? c) : c)).join('');
const marked = (v: string, mark: string) => [...v].map((c) => (c === ' ' ? c : c + mark)).join('');
/** Each letter as a precomposed accented letter where Unicode has one. */
const accented = (v: string) =>
  [...v]
    .map((c) => {
      for (const mark of ['\u0301', '\u0308', '\u0300', '\u0302', '\u030C', '\u0327', '\u0303']) {
        const p = (c + mark).normalize('NFC');
        if (p.length === 1) return p;
      }
      return c;
    })
    .join('');
const digitsIn = (v: string, zero: number) => v.replace(/[0-9]/g, (d) => String.fromCodePoint(zero + Number(d)));
const tags = (s: string) => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
const selectors = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => String.fromCodePoint(b < 16 ? 0xfe00 + b : 0xe0100 + b - 16)).join('');
const half = (s: string) => [s.slice(0, Math.floor(s.length / 2)), s.slice(Math.floor(s.length / 2))] as const;

const DIGIT_SCRIPTS: [string, number][] = [
  ['Arabic-Indic', 0x660],
  ['Extended Arabic-Indic', 0x6f0],
  ['Devanagari', 0x966],
  ['Bengali', 0x9e6],
  ['Thai', 0xe50],
  ['fullwidth', 0xff10],
  ['mathematical bold', 0x1d7ce],
];

function variants(v: string): [string, string][] {
  const [a, b] = half(v);
  const out: [string, string][] = [
    ['plain (control)', v],
    ['an acute accent on every character', marked(v, '\u0301')],
    ['struck through (U+0336)', marked(v, '\u0336')],
    ['underlined and accented (U+0332 U+0301)', marked(v, '\u0332\u0301')],
    ['precomposed accented letters', accented(v)],
    ['look-alikes for every character that has one', lookalikes(v)],
    ['look-alikes for every other character', lookalikes(v, 2)],
    ['look-alikes with marks and zero-width spaces', [...lookalikes(v)].map((c) => `${c}\u0301\u200B`).join('')],
    ['separated by tag characters', [...v].join(tags('x'))],
    ['separated by variation selectors', [...v].join('\uFE01\uFE02')],
    ['smuggled whole in tag characters', `please read ${tags(v)} carefully`],
    ['half visible, half in tag characters', `please use ${a}${tags(b)} now`],
    ['smuggled in variation selectors after an emoji', `look 😀${selectors(v)} ok`],
  ];
  if (/[0-9]/.test(v)) for (const [script, zero] of DIGIT_SCRIPTS) out.push([`${script} digits`, digitsIn(v, zero)], [`${script} digits and look-alikes`, lookalikes(digitsIn(v, zero))]);
  // A trick that finds nothing to change (no letter to accent in a card number) is no variant.
  return out.filter(([name, t], i) => i === 0 || (t !== v && !name.includes('(control)')));
}

const CASES = [
  { name: 'AWS key', value: AWS, rule: 'no-secrets' },
  { name: 'GitHub token', value: GITHUB, rule: 'no-secrets' },
  { name: 'card', value: CARD, rule: 'no-cards' },
  { name: 'IBAN', value: IBAN, rule: 'no-cards' },
  { name: 'keyword', value: KEYWORD, rule: 'codename' },
] as const;

describe('block rules hold against Unicode tricks', () => {
  for (const c of CASES) {
    for (const [variant, value] of variants(c.value)) {
      it(`${c.name}: ${variant}`, () => {
        const e = evaluatePolicy(policy, request(`here it is: ${value} thanks`));
        assert.equal(e.action, 'block', `${variant}: ${e.ruleId} ${e.reason}`);
        assert.equal(e.ruleId, c.rule, `${variant}: decided by ${e.ruleId}`);
        assert.ok(!e.reason.includes(c.value), 'the reason never quotes the value');
      });
      it(`${c.name}: ${variant}, in tool-call arguments`, () => {
        const e = evaluatePolicy(policy, toolRequest(value));
        assert.equal(e.ruleId, c.rule, `${variant}: ${e.ruleId} ${e.reason}`);
      });
    }
  }

  it('tricks combined with spacing: look-alikes, marks or non-ASCII digits spaced out or broken over lines', () => {
    const spacedLook = (v: string, gap: string) => [...lookalikes(v)].filter((c) => c !== ' ').join(gap);
    const cases: [string, string, string][] = [
      ['AWS key, spaced look-alikes', spacedLook(AWS, ' '), 'no-secrets'],
      ['AWS key, accented and spaced', [...AWS].map((c) => `${c}\u0301`).join(' '), 'no-secrets'],
      ['GitHub token, look-alikes over lines', `${lookalikes(GITHUB.slice(0, 20))}\n${GITHUB.slice(20)}`, 'no-secrets'],
      ['card, Arabic-Indic digits over lines', digitsIn(CARD, 0x660).replaceAll(' ', '\n'), 'no-cards'],
    ];
    for (const [name, value, rule] of cases) assert.equal(evaluatePolicy(policy, request(`key ${value} ok`)).ruleId, rule, name);
  });

  it('a hyphen look-alike inside the keyword (U+2010, U+2011, en dash, minus sign)', () => {
    for (const dash of ['\u2010', '\u2011', '\u2013', '\u2212']) {
      assert.equal(evaluatePolicy(policy, request(`on ${KEYWORD.replace('-', dash)} today`)).ruleId, 'codename', JSON.stringify(dash));
    }
  });

  it('a keyword written with accents matches however the text spells them; case and look-alikes in other scripts too', () => {
    const hits = [
      'a café crème please', // as written (NFC)
      'a cafe\u0301 cre\u0300me please', // decomposed
      'a CAFÉ CRÈME please', // upper case
      'a c\u0430f\u00E9 cr\u00E8m\u0435 please', // Cyrillic а, е
      'a café  crème please', // two spaces
      'a cafe creme please', // accents are not told apart
      'это секрет', // as written
      'это СЕКРЕТ', // upper case: К, Р, Е, С, Т fold to Latin, к, р, е, с, т do not all
      'это Секрет',
      'это ceкpeт', // Latin c, e, p for the Cyrillic ones
    ];
    for (const prompt of hits) assert.equal(evaluatePolicy(policy, request(prompt)).ruleId, 'codename', prompt);
    for (const prompt of ['a cafeteria', 'секретарь пришёл', 'crème brûlée']) assert.equal(evaluatePolicy(policy, request(prompt)).action, 'allow', prompt);
    // Marks on letters that are not folded still tell words apart: गोपनीय (confidential) is not गोपनीयता (privacy).
    assert.equal(evaluatePolicy(policy, request('यह गोपनीय है')).ruleId, 'codename');
    assert.equal(evaluatePolicy(policy, request('गोपनीयता नीति')).action, 'allow');
    assert.equal(evaluatePolicy(policy, request('यह गपनय है')).action, 'allow', 'the vowel signs are not dropped');
  });

  it('custom patterns and context words that name non-ASCII characters match the folded text', () => {
    const custom = parsePolicyText(
      `
version: 1
detectors:
  - { id: ru-pass, type: RU_PASSWORD, pattern: "пароль:\\\\s*\\\\S+", max_length: 64, confidence: 0.5, context_words: [секретно] }
rules:
  - { id: ru, match: { detectors: [{ type: RU_PASSWORD, min_confidence: 0.6 }] }, action: block }
  - { id: greek, match: { regex: [{ type: GREEK_WORD, pattern: "[α-ω]+ος", max_length: 40 }] }, action: require_approval }
`,
      'custom.yaml',
    ).compiled;
    // The pattern's Cyrillic а, р, о and the context word's е, р, о fold like the text's.
    assert.equal(evaluatePolicy(custom, request('секретно: пароль: hunter2')).ruleId, 'ru');
    assert.equal(evaluatePolicy(custom, request('СЕКРЕТНО: ПАРОЛЬ: hunter2')).action, 'allow', 'the pattern is case-sensitive as written');
    assert.equal(evaluatePolicy(custom, request('пароль: hunter2')).action, 'allow', 'no context word: below the rule confidence');
    // A class of Greek letters still matches Greek words whose ο, γ, ό… fold to ASCII; English has no ς.
    assert.equal(evaluatePolicy(custom, request('ο λόγος')).ruleId, 'greek');
    assert.equal(evaluatePolicy(custom, request('photos of a cosy place')).action, 'allow');
  });
});

// ------------------------------------------------------------------ precision

/** Ordinary text in other scripts and emoji: no entity, no keyword. */
const PROSE: [string, string][] = [
  ['Russian', 'Привет! Как дела? Сегодня хорошая погода, и мы идём в парк с друзьями. Ёжик съел яблоко.'],
  ['Ukrainian', 'Добрий день! Це звичайний текст українською мовою, без жодних секретів.'],
  ['Greek', 'Καλημέρα σας! Ο καιρός είναι ωραίος σήμερα και πηγαίνουμε στη θάλασσα.'],
  ['Hindi', 'नमस्ते दुनिया! आज मौसम बहुत अच्छा है और हम बाज़ार जा रहे हैं।'],
  ['Arabic', 'مرحبا بالعالم! الطقس جميل اليوم وسنذهب إلى السوق في عام ٢٠٢٤ مع ٣ أصدقاء.'],
  ['Arabic with vowel marks', 'السَّلَامُ عَلَيْكُمْ وَرَحْمَةُ اللهِ'],
  ['Hebrew', 'שלום עולם! מזג האוויר נעים היום ואנחנו הולכים לים.'],
  ['Japanese', 'こんにちは世界！今日はいい天気ですね。ｶﾀｶﾅもあります。'],
  ['Chinese', '你好，世界！今天天气很好，我们去公园散步。'],
  ['Korean', '안녕하세요 세계! 오늘 날씨가 좋네요.'],
  ['Thai', 'สวัสดีครับ วันนี้อากาศดีมาก เราจะไปทะเลกัน'],
  ['Vietnamese', 'Xin chào thế giới! Hôm nay trời đẹp quá, chúng ta đi dạo nhé.'],
  ['Turkish', 'İstanbul’da güzel bir gün; ılık bir rüzgâr esiyor.'],
  ['emoji with skin tones and ZWJ sequences', 'Great job 👍🏽👏🏿 — the team 👨‍👩‍👧‍👦 and 🧑🏻‍💻 say hi ❤️ ☺︎ 1️⃣ #️⃣'],
  ['flags', 'Flags: 🇫🇷 🇯🇵 🇺🇦 🏳️‍🌈 🏴‍☠️'],
];

describe('precision: ordinary text in other scripts triggers nothing and is forwarded as it is', () => {
  for (const [name, prose] of PROSE) {
    it(name, () => {
      const e = evaluatePolicy(policy, request(prose));
      assert.equal(e.action, 'allow', `${name}: ${e.ruleId} ${e.reason}`);
      assert.equal(e.findings.length, 0);
      assert.equal(stripHiddenText(prose), prose, 'nothing hidden to strip');
      assert.equal(stripHiddenText(JSON.stringify(prose), true), JSON.stringify(prose));
    });
  }

  it('the flag of England (black flag + tag characters) triggers nothing and is forwarded as a black flag', () => {
    const england = '🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}';
    const e = evaluatePolicy(policy, request(`Go ${england}!`));
    assert.equal(e.action, 'allow', e.reason);
    assert.equal(e.stripHiddenText, true);
    assert.equal(stripHiddenText(`Go ${england}!`), 'Go 🏴!');
  });

  it('hidden text is stripped only where some enforced rule reads the request', () => {
    assert.equal(evaluatePolicy(policy, request('hi')).stripHiddenText, true);
    const noContent = parsePolicyText('version: 1\nrules:\n  - { id: t, match: { tools: { names: [Bash] } }, action: block }\n  - { id: r, match: { detectors: [EMAIL_ADDRESS] }, action: mask_response }\n', 'p.yaml').compiled;
    assert.equal(evaluatePolicy(noContent, request('hi')).stripHiddenText, false);
    const shadow = parsePolicyText('version: 1\nrules:\n  - { id: s, mode: shadow, match: { detectors: [SECRETS] }, action: block }\n', 'p.yaml').compiled;
    assert.equal(evaluatePolicy(shadow, request('hi')).stripHiddenText, false);
    const scoped = parsePolicyText('version: 1\nrules:\n  - { id: s, match: { models: [other], detectors: [SECRETS] }, action: block }\n', 'p.yaml').compiled;
    assert.equal(evaluatePolicy(scoped, request('hi')).stripHiddenText, false);
  });
});

describe('names of resources are not folded by look: a look-alike is another file or host', () => {
  it('a path with a Cyrillic о is not in the work tree it looks like', () => {
    const ctx = { workTree: '/home/alice/proj', home: '/home/alice' };
    assert.equal(normalizePath('/home/alice/proj/src/a.ts', ctx).outside, false);
    assert.equal(normalizePath('/home/alice/pr\u043Ej/src/a.ts', ctx).outside, true);
    assert.equal(normalizePath('/home/alice/proj\u0301/x', ctx).outside, true, 'nor one with a mark');
  });

  it('a homograph host stays itself (punycode), an IDN too', () => {
    assert.equal(normalizeUrl('https://g\u0456thub.com/x'), 'https://xn--gthub-n2e.com/x');
    assert.equal(normalizeUrl('https://bücher.example/'), 'https://xn--bcher-kva.example/');
    assert.equal(normalizeUrl('https://ｇｉｔｈｕｂ.com/x'), 'https://github.com/x', 'compatibility forms fold as before');
  });
});
