/**
 * The experimental person-name detector (src/core/detection/person-names.ts): table tests with
 * true cases and hard negatives, its scores, its opt-in registration (a rule must name PERSON;
 * the PII group does not bring it in), its streaming hint against the settledBefore contract, and
 * the stream masker's law with it: any chunking masks exactly like the whole text.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parsePolicyText } from '../src/config/load-policy.ts';
import { BUILTIN_DETECTORS, builtinDetector, detectEntities, OPT_IN_DETECTORS, settledPrefix } from '../src/core/detection/index.ts';
import { PII_DETECTORS } from '../src/core/detection/pii.ts';
import { personDetector, PERSON_MIN_SCORE } from '../src/core/detection/person-names.ts';
import type { Detection, Detector } from '../src/core/detection/types.ts';
import type { MaskOperator } from '../src/core/masking/operators.ts';
import { maskText } from '../src/core/masking/operators.ts';
import { PseudonymVault } from '../src/core/masking/pseudonym-vault.ts';
import { StreamMasker } from '../src/core/masking/stream-masker.ts';

const names = (text: string): string[] => personDetector.detect(text).map((d) => text.slice(d.start, d.end));
const confidenceOf = (text: string, name: string): number => {
  const d = personDetector.detect(text).find((x) => text.slice(x.start, x.end) === name);
  assert.ok(d, `${name} not found in ${JSON.stringify(text)}`);
  return d.confidence;
};

/** [text, the names it must report, exactly]. */
const POSITIVES: [string, string[]][] = [
  ['Please send the contract to John Smith by Friday.', ['John Smith']],
  ['My name is Rubija', ['Rubija']],
  ['Could you correct it to Dr. Cettina Fanucci?', ['Cettina Fanucci']],
  ['Mr. Manning is an 85 year old man.', ['Manning']],
  ["I'm Naomi Ryan, originally from Leeds.", ['Naomi Ryan']],
  ['Hi Manlio, I am contacting you about the invoice.', ['Manlio']],
  ["What's your last name? Jónás", ['Jónás']],
  ['Faina D. Yefremova wrote the cautionary tales.', ['Faina D. Yefremova']],
  ["It was Yefremova's idea, not Patricia O'Brien's.", ["Patricia O'Brien"]],
  ['Ask Mary-Jane McDonald about the rota.', ['Mary-Jane McDonald']],
  ['Directed By: Johannes Varvio', ['Johannes Varvio']],
  ['Regards,\nDavid Miller', ['David Miller']],
  ['Dear Ms Kowalski, thank you for your letter.', ['Kowalski']],
  ['The painting is by Ludwig van Beethoven, not Vincent van Gogh.', ['Ludwig van Beethoven', 'Vincent van Gogh']],
  ['Kevin had given Alma his address.', ['Kevin', 'Alma']],
  ['They had 6: Matheus, Janet, Nicholas and Brittany.', ['Janet', 'Nicholas', 'Brittany']],
  ['Nicole: Remember me, Mary?', ['Nicole', 'Mary']],
  ['>Alberico Rizzo\n>Marketing', ['Alberico Rizzo']],
];

/** Texts that must yield no name: places, addresses, organisations, products, dates, verbs. */
const NEGATIVES: string[] = [
  'Will you review the pull request before Friday?',
  'May I ask why the build fails on Windows Server?',
  'Mark the task as done and close the ticket.',
  'The meeting is on Monday, May 5 in San Francisco.',
  'Our office moved from New York to Los Angeles last April.',
  'I will be travelling to South Africa next week.',
  'In Czech Republic they have company stores.',
  'Tomomi lives at 86036 Rua do Arenque 1634, Goiânia',
  'He lives on the north side of Joaquin Suarez 2906.',
  'Meet me at 124 Devon Street West, Suite 240.',
  'Colorado Springs\n, CO\n 70079',
  'The American Border Force have detained a tennis player.',
  'Russell Investments is a design agency.',
  'Microbilt Corporation was founded by three people.',
  'Chase Bank charges an overdraft fee.',
  'Docker Compose starts Postgres, Redis and Kafka Streams locally.',
  'Christmas Eve and Easter Monday are company holidays.',
  'Austin, Texas hosts a festival every March.',
  'There is a nice new German place downtown.',
  'Translate this paragraph into German and French.',
  'Can you refactor this React component to use TypeScript generics?',
  'Use Visual Studio Code with the Prettier extension and ESLint.',
  'Summarize the Wall Street Journal article about interest rates.',
  'Dear Customer, your invoice is attached.',
  'Hi Team, the release is tomorrow.',
  'THE QUARTERLY REPORT IS DUE. CONTACT SUPPORT.',
  'see https://www.UEarly.se/ and SzaszJanka@cuvox.de',
  'Action & Adventure, Animation, Comedy, Kids & Family',
];

describe('person names: table', () => {
  for (const [text, expected] of POSITIVES) {
    it(`finds ${JSON.stringify(expected)} in ${JSON.stringify(text).slice(0, 60)}`, () => {
      assert.deepEqual(names(text), expected);
    });
  }
  for (const text of NEGATIVES) {
    it(`hard negative: ${JSON.stringify(text).slice(0, 60)}`, () => {
      assert.deepEqual(names(text), []);
    });
  }

  it('scores: context and frequency raise the confidence; every report reaches the minimum', () => {
    assert.ok(confidenceOf('Please call Dr. John Smith.', 'John Smith') > confidenceOf('Please call John Smith.', 'John Smith') - 1e-9);
    assert.ok(confidenceOf('My name is Anna.', 'Anna') > confidenceOf('It was Anna.', 'Anna'));
    assert.ok(confidenceOf('send it to John Smith', 'John Smith') > confidenceOf('send it to Tomomi Nishiyama-Okada', 'Tomomi Nishiyama-Okada'));
    for (const [text] of POSITIVES) for (const d of personDetector.detect(text)) assert.ok(d.confidence >= PERSON_MIN_SCORE && d.confidence < 1);
  });

  it('spans exclude honorifics, greetings, possessive endings and trailing initials', () => {
    assert.deepEqual(names('Thanks Mrs Jane Doe.'), ['Jane Doe']);
    assert.deepEqual(names("That is Anna Larsen's car."), ['Anna Larsen']);
    assert.deepEqual(names('Signed: Peter Jensen K.'), ['Peter Jensen']);
  });

  it('runs through detectEntities on normalized text (zero-width space, fullwidth letters)', () => {
    const text = 'ask John\u200B Smith or Ｍａｒｙ Ｊｏｎｅｓ';
    const found = detectEntities(text, [personDetector]).map((d) => text.slice(d.start, d.end));
    assert.deepEqual(found, ['John\u200B Smith', 'Ｍａｒｙ Ｊｏｎｅｓ']);
  });
});

describe('person names: opt-in registration', () => {
  it('is not a default built-in detector; it is the opt-in PERSON detector', () => {
    assert.equal(builtinDetector('PERSON'), undefined);
    assert.ok(!BUILTIN_DETECTORS.includes(personDetector));
    assert.deepEqual(OPT_IN_DETECTORS.map((d) => [d.id, d.type]), [['builtin.person', 'PERSON']]);
  });

  const policy = (detectors: string): string => `version: 1\ndefault_action: allow\nrules:\n  - id: r\n    match:\n      detectors: ${detectors}\n    action: mask_request\n`;
  const typesOf = (yaml: string): string[] => parsePolicyText(yaml, 'inline.yaml').compiled.rules[0]!.contentDetectors.map((d) => d.type).sort();

  it('a rule naming PERSON gets it; the PII group does not', () => {
    assert.deepEqual(typesOf(policy('[PERSON]')), ['PERSON']);
    assert.deepEqual(typesOf(policy('[{ type: PERSON, min_confidence: 0.8 }, EMAIL_ADDRESS]')), ['EMAIL_ADDRESS', 'PERSON']);
    assert.ok(!typesOf(policy('[PII]')).includes('PERSON'));
  });

  it('a rule naming PERSON masks names in the request', () => {
    const rule = parsePolicyText(policy('[PERSON]'), 'inline.yaml').compiled.rules[0]!;
    const text = 'Please send the contract to John Smith today.';
    const found = detectEntities(text, rule.contentDetectors);
    assert.deepEqual(found.map((d) => text.slice(d.start, d.end)), ['John Smith']);
    assert.equal(maskText(text, found, () => ({ kind: 'redact' })), 'Please send the contract to [PERSON] today.');
  });
});

// ------------------------------------------------------------------ streaming

const FRAGMENTS = [
  'John', 'Smith', 'Mary', 'Jones', 'Dr.', 'Mr', 'Ms.', 'D.', 'J', 'van', 'de', 'la', 'Gogh', "O'Brien", "Smith's", 'Mary-Jane', 'McDonald',
  'Jónás', 'Ottová', 'Šárka', 'Tomomi', 'Nishiyama', 'Will', 'May', 'Mark', 'Street', 'Inc', 'South', 'Africa', 'New', 'York', 'German',
  'my name is', "I'm", 'Dear', 'Hi', 'Regards,', 'said', 'and', 'or', ', ', 'the', 'call', 'Ask', 'ask', '42', '86036', 'Rua', 'x@y.io',
  'é', 'e\u0301', '\u0301', '\u200B', 'Ｍａｒｙ', '.', ':', '?', '"', '(', '-', "'", '’', 'A', 'Zq', 'Supercalifragilisticexpialidocious',
];
const SEPARATORS = [' ', ' ', ' ', '\n', ', ', '. ', '', ' \u200B', '  '];
const textArb = (max: number, min = 0): fc.Arbitrary<string> =>
  fc.array(fc.tuple(fc.constantFrom(...FRAGMENTS), fc.constantFrom(...SEPARATORS)), { minLength: min, maxLength: max }).map((a) => a.map(([f, s]) => f + s).join(''));

const before = (ds: readonly Detection[], i: number): Detection[] => ds.filter((d) => d.start < i);

describe('person names: the streaming hint (settledBefore contract)', () => {
  it('detections of t + s starting before settledBefore(t) are exactly those of t', () => {
    fc.assert(
      fc.property(textArb(24), fc.double({ min: 0, max: 1, noNaN: true }), textArb(6), (whole, at, more) => {
        const cut = Math.floor(at * whole.length);
        const t = whole.slice(0, cut);
        const s = whole.slice(cut) + more;
        const h = personDetector.settledBefore!(t);
        assert.ok(Number.isInteger(h) && h >= 0 && h <= t.length, `hint ${h} out of range`);
        assert.deepEqual(before(personDetector.detect(t + s), h), before(personDetector.detect(t), h));
      }),
      { numRuns: 3000 },
    );
  });

  it('through detectEntities with the PII detectors (normalized text, original positions)', () => {
    const ds = [...PII_DETECTORS, personDetector];
    fc.assert(
      fc.property(textArb(20), fc.double({ min: 0, max: 1, noNaN: true }), textArb(5), (whole, at, more) => {
        const cut = Math.floor(at * whole.length);
        const t = whole.slice(0, cut);
        const h = settledPrefix(t, ds);
        assert.deepEqual(before(detectEntities(t + whole.slice(cut) + more, ds), h), before(detectEntities(t, ds), h));
      }),
      { numRuns: 1500 },
    );
  });

  const cases: [text: string, pendingFrom: string | null][] = [
    ['send it to John Sm', 'John Sm'],
    ['send it to John Smith', 'John Smith'],
    ['send it to John Smith ', 'John Smith '],
    ['send it to John D. ', 'John D. '],
    ['a painting by Vincent van ', 'Vincent van '],
    ['send it to John Smith, please', 'John Smith, please'],
    ['send it to John Smith, and thanks for all the help ', null],
    ['send it to John Smith. ', 'John Smith. '],
    ['the quick brown fox jumps ', null],
    ['the quick brown fox jump', null],
    ['the quick brown fox. Th', 'Th'],
  ];
  for (const [text, pending] of cases) {
    it(`holds back only the open run: ${JSON.stringify(text)}`, () => {
      assert.equal(personDetector.settledBefore!(text), pending === null ? text.length : text.length - pending.length);
    });
  }

  it('declares how far it reads: finite maxLength, lookbehind and lookahead', () => {
    assert.ok(Number.isFinite(personDetector.maxLength) && personDetector.maxLength >= 100);
    assert.ok((personDetector.lookbehind ?? 0) >= 40 && (personDetector.lookahead ?? 0) >= 25);
  });
});

describe('person names: the stream law (any chunking masks like the whole text)', () => {
  const operatorFor = (d: Detection): MaskOperator => (d.type === 'PERSON' ? { kind: 'pseudonymize' } : { kind: 'redact' });

  function chunk(text: string, cuts: readonly number[]): string[] {
    const points = cuts.map((c) => Math.floor(c * (text.length + 1))).sort((a, b) => a - b);
    const out: string[] = [];
    let prev = 0;
    for (const p of points) {
      out.push(text.slice(prev, p));
      prev = p;
    }
    out.push(text.slice(prev));
    return out;
  }

  function streamed(text: string, pieces: readonly string[], detectors: readonly Detector[]): { out: string; vault: PseudonymVault } {
    const vault = new PseudonymVault();
    const masker = new StreamMasker({ detectors, operatorFor, vault });
    let out = '';
    for (const p of pieces) out += masker.push(p);
    out += masker.end();
    assert.equal(masker.forcedRedactions, 0, 'the cap was reached');
    return { out, vault };
  }

  function whole(text: string, detectors: readonly Detector[]): { out: string; vault: PseudonymVault } {
    const vault = new PseudonymVault();
    return { out: maskText(text, detectEntities(text, detectors), operatorFor, vault), vault };
  }

  const cutsArb = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 30 });

  it('random texts × random chunkings, PERSON alone and with the PII detectors', () => {
    fc.assert(
      fc.property(textArb(40), cutsArb, fc.boolean(), (text, cuts, withPii) => {
        const ds = withPii ? [...PII_DETECTORS, personDetector] : [personDetector];
        const s = streamed(text, chunk(text, cuts), ds);
        const w = whole(text, ds);
        assert.equal(s.out, w.out);
        assert.deepEqual(s.vault.toJSON(), w.vault.toJSON());
      }),
      { numRuns: 1500 },
    );
  });

  it('long texts (past the holdback and the kept context), one character per chunk', () => {
    fc.assert(
      fc.property(textArb(160, 80), (text) => {
        const ds = [personDetector];
        assert.equal(streamed(text, [...text], ds).out, whole(text, ds).out);
      }),
      { numRuns: 120 },
    );
  });

  it('a name is never emitted before it is masked, and prose is not held back', () => {
    const masker = new StreamMasker({ detectors: [personDetector], operatorFor: () => ({ kind: 'redact' }) });
    let sent = '';
    for (const piece of ['Please send ', 'the contract to Jo', 'hn Smi', 'th today', ' and thanks. ']) sent += masker.push(piece);
    sent += masker.end();
    assert.equal(sent, 'Please send the contract to [PERSON] today and thanks. ');
    const prose = new StreamMasker({ detectors: [personDetector], operatorFor: () => ({ kind: 'redact' }) });
    let out = '';
    for (const word of 'the migration finished and the team can proceed with the rollout now '.split(/(?<= )/)) out += prose.push(word);
    assert.equal(prose.heldBack, 0);
    assert.equal(out, 'the migration finished and the team can proceed with the rollout now ');
  });
});

describe('person names: word lists', () => {
  it('src/core/detection/person-names-data.ts is what bench/person-name-data.ts builds from its npm sources', () => {
    const root = path.resolve(import.meta.dirname, '..');
    const out = execFileSync(process.execPath, [path.join(root, 'bench', 'person-name-data.ts'), '--check'], { cwd: root, encoding: 'utf8' });
    assert.match(out, /up to date/);
  });
});
