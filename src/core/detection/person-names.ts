/**
 * Person names, offline: EXPERIMENTAL and off by default (see docs/benchmarks.md, "Person names",
 * for its precision and recall). No model: word lists (./person-names-data.ts — 1990 US Census
 * given names and surnames by frequency, a larger unranked name list, English word frequency
 * classes) and rules.
 *
 * How a name is found:
 * 1. Tokens are maximal runs of letters (internal `'`, `’`, `-` allowed). A *name token* starts
 *    with an upper-case letter followed by a lower-case one (`McDonald`, `O'Brien`, `Jean-Luc`
 *    pass; `USA`, `iPhone`, `UEarly` do not), is at most 24 characters, and is not glued to an
 *    email, a URL, a path or a number. An *initial* is a lone capital (`D.`); a *particle* is one
 *    of `van`, `de`, `von`… .
 * 2. A *run* is a maximal sequence of name tokens, initials and particles joined by one space
 *    (`. ` after an initial), on one line; a possessive (`Smith's`) ends it.
 * 3. Leading greetings, honorifics, months and common English words (`Dear`, `Mr`, `When`) are
 *    stripped from the run (at most two); trailing initials and particles too. A run ending in an
 *    organisation or place word (`Street`, `Bank`, `Inc`) or holding a common English word among
 *    its names is rejected, as is one with more than four names.
 * 4. The rest is scored: a known given name first and a known surname last score high; the
 *    census rank weighs in, and a name that is also a frequent English word (`Will`, `May`,
 *    `Mark`, `Rose`, `Hill`) scores low. A lone given name scores lower (lower still at the start
 *    of a sentence), a lone surname lower again. An honorific (`Dr.`, `Ms`) or a context phrase
 *    (`my name is`, `Dear`, `signed`, `contact`) before the name raises it. Runs scoring at least
 *    0.5 are reported.
 *
 * Locality (what the stream masker relies on): whether a span is reported, and its confidence,
 * depends only on its run (at most two stripped tokens before it and two after), the token on
 * each side of the run and CONTEXT characters before it — all within `lookbehind` / `lookahead`.
 * The streaming hint holds back from the start of the last run while the end of the text could
 * still extend or change it.
 *
 * Pure: no I/O. The word lists are turned into lookup tables on first use.
 */
import { defineDetector } from './detector-kit.ts';
import type { Candidate } from './detector-kit.ts';
import { COMMON_WORDS, GIVEN_NAMES, NAME_WORDS, SURNAMES } from './person-names-data.ts';
import type { Detector } from './types.ts';

/** Longest name token, in UTF-16 code units. */
const MAX_TOKEN = 24;
/** At most this many names (not counting initials and particles) in a reported span. */
const MAX_NAMES = 4;
/** At most this many tokens in a run, and stripped from its start. */
const MAX_RUN_TOKENS = 8;
const MAX_LEADING_STRIP = 2;
const MAX_TRAILING_STRIP = 2;
/** Characters before a span searched for honorifics and context phrases. */
const CONTEXT = 40;
/** Reported when the score reaches this. */
export const PERSON_MIN_SCORE = 0.5;

const MAX_LENGTH = 128;
// Run start ≤ 2 stripped tokens (+ separators) before the span; the left neighbour token and the
// character before it; the context window from the span start.
const LOOKBEHIND = Math.max(CONTEXT, MAX_LEADING_STRIP * (MAX_TOKEN + 2) + MAX_TOKEN + 4) + 8;
// Trailing stripped initials/particles, then the right neighbour token and two characters after it.
const LOOKAHEAD = MAX_TRAILING_STRIP * 8 + MAX_TOKEN + 6;

const PARTICLES = new Set(['van', 'von', 'de', 'da', 'di', 'del', 'della', 'der', 'den', 'du', 'la', 'le', 'bin', 'ibn', 'al', 'el', 'dos', 'das', 'do', 'ter', 'ten', 'zu', 'af']);
const PARTICLE_LIST = [...PARTICLES];
/** Lower-cased prefixes after which a second capital is part of a surname (`McDonald`, `DeVito`). */
const CAMEL_PREFIXES = new Set(['mc', 'mac', 'de', 'di', 'da', 'la', 'le', 'van', 'von', 'du', 'del', 'della', 'fitz', 'st']);
const HONORIFICS = new Set(['mr', 'mrs', 'ms', 'miss', 'mx', 'dr', 'prof', 'sir', 'madam', 'madame', 'dame', 'lady', 'lord', 'rev', 'fr', 'mme', 'mlle', 'herr', 'frau', 'señor', 'senor', 'señora', 'senora', 'don', 'doña']);
/** Capitalized words stripped from the start of a run (greetings, sentence openers, dates). */
const LEADERS = new Set([
  'dear', 'hi', 'hello', 'hey', 'thanks', 'thank', 'regards', 'cheers', 'sincerely', 'attn', 'cc', 'bcc', 'to', 'from', 'ask', 'tell', 'call', 'contact', 'email', 'meet', 'met',
  'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday',
  'january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december',
  'yes', 'no', 'ok', 'okay', 'please', 'sorry', 'welcome', 'congratulations', 'happy', 'good', 'morning', 'evening', 'afternoon', 'night',
  'the', 'a', 'an', 'and', 'or', 'but', 'if', 'when', 'while', 'why', 'what', 'who', 'where', 'how', 'is', 'was', 'are', 'did', 'does', 'do', 'has', 'have', 'had',
  'my', 'our', 'your', 'his', 'her', 'their', 'i', 'we', 'you', 'he', 'she', 'they', 'it', 'this', 'that', 'these', 'those', 'unlike', 'like', 'maybe', 'also',
  'after', 'before', 'since', 'until', 'with', 'without', 'for', 'as', 'at', 'by', 'in', 'on', 'of', 'via', 'per', 'about', 'according', 'said', 'says', 'saint',
  'bot', 'user', 'agent', 'customer', 'patient', 'name', 'client', 'author', 'poet', 'president', 'senator', 'judge', 'officer', 'captain', 'general', 'coach', 'king', 'queen', 'prince', 'princess', 'uncle', 'aunt', 'grandma', 'grandpa', 'mom', 'dad', 'brother', 'sister', 'father', 'mother', 'saint',
]);
/** Organisation words: a run holding one is not a person. */
const ORG_WORDS = new Set([
  'inc', 'ltd', 'llc', 'llp', 'plc', 'corp', 'gmbh', 'ag', 'bv', 'nv', 'oy', 'kg', 'srl', 'spa', 'pty', 'sarl', 'company', 'corporation', 'group', 'holdings', 'partners', 'associates',
  'foundation', 'institute', 'university', 'college', 'school', 'academy', 'hospital', 'clinic', 'bank', 'trust', 'fund', 'capital', 'ventures', 'labs', 'systems', 'solutions',
  'technologies', 'software', 'studios', 'records', 'press', 'media', 'news', 'times', 'journal', 'magazine', 'investments', 'industries', 'international', 'global', 'services',
]);
/**
 * Street and place words (USPS street suffixes and their abbreviations, and the like in other
 * languages): a run ending in one is an address or a place.
 */
const PLACE_TAIL = new Set([
  'street', 'st', 'road', 'rd', 'avenue', 'ave', 'av', 'boulevard', 'blvd', 'lane', 'ln', 'drive', 'dr', 'court', 'ct', 'place', 'pl', 'square', 'sq', 'way', 'parkway', 'pkwy',
  'highway', 'hwy', 'terrace', 'ter', 'crescent', 'cres', 'close', 'park', 'gardens', 'garden', 'bridge', 'hill', 'hills', 'heights', 'hts', 'valley', 'river', 'lake', 'lakes',
  'mountain', 'mountains', 'mount', 'mt', 'island', 'islands', 'isle', 'beach', 'bay', 'county', 'city', 'town', 'township', 'village', 'ville', 'state', 'province', 'district',
  'center', 'centre', 'mall', 'plaza', 'hotel', 'airport', 'station', 'church', 'cathedral', 'museum', 'library', 'hall', 'tower', 'building', 'stadium', 'arena', 'theatre',
  'theater', 'alley', 'branch', 'brook', 'brooks', 'burg', 'bypass', 'camp', 'canyon', 'cape', 'causeway', 'circle', 'cir', 'cliff', 'cliffs', 'club', 'common', 'commons',
  'corner', 'corners', 'course', 'cove', 'creek', 'crest', 'crossing', 'xing', 'dale', 'dam', 'divide', 'estate', 'estates', 'expressway', 'extension', 'falls', 'ferry',
  'field', 'fields', 'flat', 'flats', 'ford', 'forest', 'forge', 'fork', 'forks', 'fort', 'freeway', 'gateway', 'glen', 'glens', 'green', 'greens', 'grove', 'groves', 'harbor',
  'harbour', 'haven', 'hollow', 'inlet', 'junction', 'key', 'keys', 'knoll', 'knolls', 'landing', 'light', 'lights', 'loaf', 'lock', 'locks', 'lodge', 'loop', 'manor', 'manors',
  'meadow', 'meadows', 'mews', 'mill', 'mills', 'mission', 'motorway', 'neck', 'orchard', 'oval', 'overpass', 'pass', 'passage', 'path', 'pike', 'pine', 'pines', 'plain',
  'plains', 'point', 'points', 'port', 'ports', 'prairie', 'radial', 'ramp', 'ranch', 'rapid', 'rapids', 'rest', 'ridge', 'ridges', 'route', 'row', 'run', 'shoal', 'shoals',
  'shore', 'shores', 'skyway', 'spring', 'springs', 'spur', 'spurs', 'stravenue', 'stream', 'summit', 'throughway', 'trace', 'track', 'trafficway', 'trail', 'trl', 'tunnel',
  'turnpike', 'underpass', 'union', 'unions', 'via', 'viaduct', 'view', 'views', 'vista', 'walk', 'walks', 'wall', 'well', 'wells', 'suite', 'apt', 'apartment', 'unit', 'floor',
  'strasse', 'straße', 'gasse', 'weg', 'platz', 'allee', 'ring', 'damm', 'ufer', 'gracht', 'laan', 'straat', 'plein', 'kade', 'utca', 'katu', 'tie', 'kuja', 'polku', 'gatan',
  'vägen', 'vej', 'gade', 'veien', 'gata', 'ulica', 'aleja', 'náměstí', 'republic', 'kingdom', 'emirates', 'federation', 'islands', 'coast',
]);
/** A run starting with one of these is an address, a place or a direction, not a person. */
const PLACE_HEAD = new Set([
  'rua', 'rue', 'via', 'viale', 'calle', 'avenida', 'av', 'avenue', 'piazza', 'piazzale', 'corso', 'largo', 'strada', 'praça', 'praca', 'travessa', 'alameda', 'rodovia',
  'estrada', 'carrer', 'plaza', 'paseo', 'camino', 'ulica', 'ul', 'aleja', 'plac', 'boulevard', 'chemin', 'impasse', 'allée', 'quai', 'place', 'route', 'mount', 'mt', 'lake',
  'port', 'fort', 'cape', 'north', 'south', 'east', 'west', 'northern', 'southern', 'eastern', 'western', 'central', 'upper', 'lower', 'new', 'greater', 'san', 'santa', 'santo',
  'são', 'sao', 'los', 'las', 'saint', 'sainte', 'st', 'ste', 'porto', 'puerto', 'bad', 'hong', 'costa', 'sri', 'united', 'republic', 'kingdom', 'isle', 'isla', 'ilha',
]);
/** Nationality and language adjectives: `German`, `Czech` (SCOWL's lists leave out capitalized words). */
const NATIONALITIES = new Set([
  'american', 'british', 'english', 'french', 'german', 'spanish', 'italian', 'portuguese', 'dutch', 'belgian', 'swiss', 'austrian', 'czech', 'slovak', 'polish', 'hungarian',
  'romanian', 'bulgarian', 'serbian', 'croatian', 'slovenian', 'bosnian', 'greek', 'turkish', 'russian', 'ukrainian', 'belarusian', 'estonian', 'latvian', 'lithuanian',
  'finnish', 'swedish', 'norwegian', 'danish', 'icelandic', 'irish', 'scottish', 'welsh', 'canadian', 'mexican', 'brazilian', 'argentinian', 'argentine', 'chilean',
  'colombian', 'peruvian', 'venezuelan', 'cuban', 'chinese', 'japanese', 'korean', 'vietnamese', 'thai', 'indian', 'pakistani', 'iranian', 'iraqi', 'israeli', 'arab', 'arabic',
  'egyptian', 'moroccan', 'nigerian', 'kenyan', 'ethiopian', 'african', 'asian', 'european', 'australian', 'indonesian', 'filipino', 'malaysian', 'cypriot', 'maltese',
  'georgian', 'armenian', 'albanian', 'macedonian', 'montenegrin', 'latin', 'hispanic', 'jewish', 'muslim', 'christian', 'catholic', 'protestant', 'buddhist', 'hindu',
]);
/** Country names (one word): a run holding one is a place, not a person. */
const COUNTRY_WORDS = new Set([
  'afghanistan', 'albania', 'algeria', 'andorra', 'angola', 'argentina', 'armenia', 'australia', 'austria', 'azerbaijan', 'bahamas', 'bahrain', 'bangladesh', 'barbados',
  'belarus', 'belgium', 'belize', 'benin', 'bhutan', 'bolivia', 'bosnia', 'botswana', 'brazil', 'brunei', 'bulgaria', 'burundi', 'cambodia', 'cameroon', 'canada', 'chad',
  'chile', 'china', 'colombia', 'comoros', 'congo', 'croatia', 'cuba', 'cyprus', 'czechia', 'czech', 'denmark', 'djibouti', 'dominica', 'ecuador', 'egypt', 'eritrea', 'estonia',
  'eswatini', 'ethiopia', 'fiji', 'finland', 'france', 'gabon', 'gambia', 'georgia', 'germany', 'ghana', 'greece', 'grenada', 'guatemala', 'guinea', 'guyana', 'haiti',
  'honduras', 'hungary', 'iceland', 'india', 'indonesia', 'iran', 'iraq', 'ireland', 'israel', 'italy', 'jamaica', 'japan', 'jordan', 'kazakhstan', 'kenya', 'kiribati',
  'kosovo', 'kuwait', 'kyrgyzstan', 'laos', 'latvia', 'lebanon', 'lesotho', 'liberia', 'libya', 'liechtenstein', 'lithuania', 'luxembourg', 'madagascar', 'malawi',
  'malaysia', 'maldives', 'mali', 'malta', 'mauritania', 'mauritius', 'mexico', 'micronesia', 'moldova', 'monaco', 'mongolia', 'montenegro', 'morocco', 'mozambique',
  'myanmar', 'namibia', 'nauru', 'nepal', 'netherlands', 'nicaragua', 'niger', 'nigeria', 'norway', 'oman', 'pakistan', 'palau', 'palestine', 'panama', 'paraguay', 'peru',
  'philippines', 'poland', 'portugal', 'qatar', 'romania', 'russia', 'rwanda', 'samoa', 'senegal', 'serbia', 'seychelles', 'singapore', 'slovakia', 'slovenia', 'somalia',
  'spain', 'sudan', 'suriname', 'sweden', 'switzerland', 'syria', 'taiwan', 'tajikistan', 'tanzania', 'thailand', 'togo', 'tonga', 'tunisia', 'turkey', 'türkiye',
  'turkmenistan', 'tuvalu', 'uganda', 'ukraine', 'uruguay', 'uzbekistan', 'vanuatu', 'venezuela', 'vietnam', 'yemen', 'zambia', 'zimbabwe', 'africa', 'america', 'asia',
  'europe', 'oceania', 'antarctica', 'england', 'scotland', 'wales', 'britain', 'usa', 'zealand', 'arabia', 'korea', 'lanka', 'leone', 'rica', 'salvador', 'herzegovina',
  'macedonia', 'greenland', 'faroe', 'caribbean', 'scandinavia', 'balkans', 'siberia', 'bavaria', 'catalonia', 'texas', 'california', 'florida', 'ohio', 'oregon', 'nevada',
  'arizona', 'alaska', 'hawaii', 'massachusetts', 'michigan', 'minnesota', 'wisconsin', 'illinois', 'indiana', 'iowa', 'kansas', 'kentucky', 'louisiana', 'maryland',
  'mississippi', 'missouri', 'montana', 'nebraska', 'oklahoma', 'pennsylvania', 'tennessee', 'utah', 'vermont', 'connecticut', 'delaware', 'idaho', 'wyoming', 'colorado',
  'alabama', 'arkansas', 'ontario', 'quebec', 'manitoba', 'alberta', 'saskatchewan', 'yukon', 'nunavut', 'tasmania', 'queensland',
]);

interface Lexicon {
  readonly given: Map<string, number>;
  readonly surname: Map<string, number>;
  /** English word → SCOWL frequency class (10 most common … 50). */
  readonly wordClass: Map<string, number>;
}

let lexicon: Lexicon | undefined;

function ranks(list: string): Map<string, number> {
  const out = new Map<string, number>();
  let rank = 0;
  for (const w of list.split(' ')) if (!out.has(w)) out.set(w, rank++);
  return out;
}

function getLexicon(): Lexicon {
  if (lexicon !== undefined) return lexicon;
  const wordClass = new Map<string, number>();
  for (const entry of NAME_WORDS.split(' ')) {
    const colon = entry.lastIndexOf(':');
    wordClass.set(entry.slice(0, colon), Number(entry.slice(colon + 1)));
  }
  for (const w of COMMON_WORDS.split(' ')) if (!wordClass.has(w)) wordClass.set(w, 10);
  lexicon = { given: ranks(GIVEN_NAMES), surname: ranks(SURNAMES), wordClass };
  return lexicon;
}

// ---------------------------------------------------------------- characters

const LETTER_RE = /^[\p{L}\p{M}]$/u;

function isLetterAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0x80) return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (c < 0xc0 || Number.isNaN(c)) return false;
  return LETTER_RE.test(text.charAt(i));
}

function isUpperAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0x80) return c >= 0x41 && c <= 0x5a;
  const ch = text.charAt(i);
  return ch !== ch.toLowerCase() && ch === ch.toUpperCase();
}

function isLowerAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0x80) return c >= 0x61 && c <= 0x7a;
  const ch = text.charAt(i);
  return ch !== ch.toUpperCase() && ch === ch.toLowerCase();
}

const isApostrophe = (c: number): boolean => c === 0x27 || c === 0x2019;
/** A character inside a token between two letters: apostrophe or hyphen. */
const isJoiner = (c: number): boolean => isApostrophe(c) || c === 0x2d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** A token right after one of these is part of a number, an address, a path or a handle. */
const BAD_BEFORE = new Set('0123456789_@/\\#$%&*+=<|~^`'.split('').map((c) => c.charCodeAt(0)));
const BAD_AFTER = new Set('0123456789_@/\\'.split('').map((c) => c.charCodeAt(0)));

// ---------------------------------------------------------------- tokens

type Kind = 'name' | 'initial' | 'particle' | 'other';

interface Token {
  readonly start: number;
  readonly end: number;
  readonly kind: Kind;
  /** Lower-cased name (without a possessive `'s`). */
  readonly key: string;
  /** End of the name part (before a possessive `'s`). */
  readonly nameEnd: number;
  readonly possessive: boolean;
}

/** End of the token starting at `s` (a letter): letters, with joiners between letters. */
function tokenEnd(text: string, s: number): number {
  let i = s + 1;
  const n = text.length;
  for (;;) {
    while (i < n && isLetterAt(text, i)) i++;
    if (i + 1 < n && isJoiner(text.charCodeAt(i)) && isLetterAt(text, i + 1)) {
      i += 2;
      continue;
    }
    return i;
  }
}

function classify(text: string, s: number, e: number): Token {
  const other = (): Token => ({ start: s, end: e, kind: 'other', key: '', nameEnd: e, possessive: false });
  const len = e - s;
  if (len > MAX_TOKEN) return other();
  if (s > 0) {
    const p = text.charCodeAt(s - 1);
    if (BAD_BEFORE.has(p)) return other();
    if (p === 0x2e && s > 1 && (isLetterAt(text, s - 2) || isDigit(text.charCodeAt(s - 2)))) return other();
  }
  if (e < text.length) {
    const q = text.charCodeAt(e);
    if (BAD_AFTER.has(q)) return other();
    if (q === 0x2e && e + 1 < text.length && (isLetterAt(text, e + 1) || isDigit(text.charCodeAt(e + 1)))) return other();
  }
  if (isUpperAt(text, s)) {
    if (len === 1) return { start: s, end: e, kind: 'initial', key: text.charAt(s).toLowerCase(), nameEnd: e, possessive: false };
    const c1 = text.charCodeAt(s + 1);
    if (!isLowerAt(text, s + 1) && !(isApostrophe(c1) && len >= 4 && isUpperAt(text, s + 2))) return other();
    let nameEnd = e;
    let possessive = false;
    if (len >= 4 && isApostrophe(text.charCodeAt(e - 2)) && (text.charCodeAt(e - 1) === 0x73 || text.charCodeAt(e - 1) === 0x53)) {
      nameEnd = e - 2;
      possessive = true;
    }
    for (let i = s + 2; i < nameEnd; i++) {
      if (!isUpperAt(text, i)) continue;
      if (isJoiner(text.charCodeAt(i - 1))) continue;
      if (CAMEL_PREFIXES.has(text.slice(s, i).toLowerCase())) continue;
      return other();
    }
    return { start: s, end: e, kind: 'name', key: text.slice(s, nameEnd).toLowerCase(), nameEnd, possessive };
  }
  if (isLowerAt(text, s) && len <= 5) {
    const key = text.slice(s, e);
    if (PARTICLES.has(key)) return { start: s, end: e, kind: 'particle', key, nameEnd: e, possessive: false };
  }
  return other();
}

function tokenize(text: string, from = 0): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = from;
  while (i < n) {
    if (!isLetterAt(text, i)) {
      i++;
      continue;
    }
    const e = tokenEnd(text, i);
    out.push(classify(text, i, e));
    i = e;
  }
  return out;
}

/** True when `b` continues the run that `a` is in. */
function joins(text: string, a: Token, b: Token): boolean {
  if (a.kind === 'other' || b.kind === 'other' || a.possessive) return false;
  const gap = b.start - a.end;
  if (gap === 1) return text.charCodeAt(a.end) === 0x20;
  return gap === 2 && a.kind === 'initial' && text.charCodeAt(a.end) === 0x2e && text.charCodeAt(a.end + 1) === 0x20;
}

// ---------------------------------------------------------------- scoring

/** Multiplier for a name that is also an English word of SCOWL class `cls`. */
function wordPenalty(cls: number | undefined): number {
  if (cls === undefined) return 1;
  if (cls <= 10) return 0.15;
  if (cls <= 20) return 0.35;
  if (cls <= 35) return 0.6;
  if (cls <= 40) return 0.75;
  return 0.85;
}

function givenScore(lex: Lexicon, key: string): number {
  const r = lex.given.get(key);
  if (r === undefined) return 0;
  return (r < 600 ? 1 : r < 2000 ? 0.85 : 0.7) * wordPenalty(lex.wordClass.get(key));
}

function surnameScore(lex: Lexicon, key: string): number {
  const r = lex.surname.get(key);
  if (r === undefined) return 0;
  return (r < 1000 ? 1 : r < 10000 ? 0.85 : 0.7) * wordPenalty(lex.wordClass.get(key));
}

/** Name evidence of a word no census list holds. */
function weakScore(lex: Lexicon, key: string): number {
  if (lex.wordClass.has(key)) return 0;
  // Unknown, not an English word: a foreign-looking (non-ASCII) word a little more likely a name.
  return /[^a-z'’-]/.test(key) ? 0.35 : 0.25;
}

/** An English word (SCOWL class ≤ 50) that is not a census name: `Force`, `Movers`, `Republic`. */
function isEnglishNotName(lex: Lexicon, key: string): boolean {
  const cls = lex.wordClass.get(key);
  if (cls === undefined || HOLIDAYS.has(key)) return cls !== undefined || HOLIDAYS.has(key);
  // A word that is also a rare census name (`Streams`, `Spark`) is taken for the word.
  const g = lex.given.get(key);
  const s = lex.surname.get(key);
  if (g === undefined && s === undefined) return true;
  return cls <= 35 && isRareName(lex, key);
}

/** Neither a frequent census given name nor a frequent census surname. */
function isRareName(lex: Lexicon, key: string): boolean {
  const g = lex.given.get(key);
  const s = lex.surname.get(key);
  return (g === undefined || g > RARE_GIVEN) && (s === undefined || s > RARE_SURNAME);
}

/** Census ranks past which a name that is also an English word is taken for the word. */
const RARE_GIVEN = 2000;
const RARE_SURNAME = 10000;
/** Holidays and festivals: `Christmas Eve`, `Easter Monday`. */
const HOLIDAYS = new Set(['christmas', 'xmas', 'easter', 'halloween', 'thanksgiving', 'hanukkah', 'chanukah', 'ramadan', 'eid', 'diwali', 'passover', 'pentecost', 'advent', 'lent', 'yom', 'kippur', 'boxing']);

/** Digits right before a run (a house number), or a number or a `, ST 12345` right after it. */
const NUMBER_BEFORE = /\d[ ,]?[ ]?$/;
const PLACE_AFTER = /^, (\p{Lu}[\p{L}\p{M}]*)/u;
const NUMBER_AFTER = /^(?: ?\d|, ?\d|,? [A-Z]{2} \d)/;

/** A common English word that is not a census name. */
function isCommonWord(lex: Lexicon, key: string): boolean {
  const cls = lex.wordClass.get(key);
  return cls !== undefined && cls <= 20 && !lex.given.has(key) && !lex.surname.has(key);
}

const HONORIFIC_BEFORE = new RegExp(`(?:^|[^\\p{L}])(?:${[...HONORIFICS].join('|')})\\.? ?$`, 'u');
/** Phrases that introduce a person's name: an unknown word after one is taken for a name. */
const INTRO_BEFORE = new RegExp(
  `(?:^|[^\\p{L}])(?:${[
    'my name is', "my name's", 'name is', 'names?', 'full name', 'first name', 'last name', 'maiden name', 'surname', 'named', 'named (?:him|her)', 'call me', 'calls me',
    'i am', "i'm", 'signed', 'sincerely', 'regards', 'dear', 'hi', 'hello', 'hey', 'attn',
  ].join('|')})[ \\t]*[:,.?-]?[ \\t\\n]*$`,
  'u',
);
/** Phrases often right before a person's name. */
const STRONG_BEFORE = new RegExp(
  `(?:^|[^\\p{L}])(?:${[
    'called', 'attention', 'patient', 'contact', 'applicant', 'employee', 'cardholder', 'account holder', 'beneficiary', 'recipient', 'sender', 'author', 'written by',
    'directed by', 'produced by', 'starring', 'producer', 'director', 'says', 'said', 'thanks', 'thank you',
    'my (?:son|daughter|kid|child|wife|husband|partner|friend|boss|colleague|manager|mother|father|mom|dad|brother|sister)',
  ].join('|')})[ \\t]*[:,.?-]?[ \\t\\n]*$`,
  'u',
);
/** Words often right before a name, and before much else. */
const WEAK_BEFORE =
  /(?:^|[^\p{L}])(?:with|from|to|cc|ask|tell|met|meet|by|for|and|or|this is|it's|it is|under|user|customer|client|agent|including|between|him|her)[ \t]*[:,.-]?[ \t]*$/u;

type Context = 'honorific' | 'intro' | 'strong' | 'weak' | 'none';

function contextBefore(text: string, start: number): Context {
  const w = text.slice(Math.max(0, start - CONTEXT), start).toLowerCase();
  if (HONORIFIC_BEFORE.test(w)) return 'honorific';
  if (INTRO_BEFORE.test(w)) return 'intro';
  if (STRONG_BEFORE.test(w)) return 'strong';
  if (WEAK_BEFORE.test(w)) return 'weak';
  return 'none';
}

/** `Name, Name and Name`: a capitalized word one list separator before or after. */
const LIST_BEFORE = /\p{Lu}[\p{L}\p{M}]*(?:, | and | or | & |, and )$/u;
const LIST_AFTER = /^(?:, | and | or | & |, and )\p{Lu}/u;
/** `Name:` opening a line (a speaker in a dialogue or a transcript). */
const SPEAKER_AFTER = /^ ?:/;

/** True when the run starting at `s` opens a sentence or a line (looked at over a few characters). */
function sentenceInitial(text: string, s: number): boolean {
  for (let i = s - 1; i >= Math.max(0, s - 6); i--) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x22 || c === 0x27 || c === 0x28 || c === 0x2018 || c === 0x201c || c === 0x2a || c === 0x2d || c === 0x3e) continue;
    return c === 0x2e || c === 0x21 || c === 0x3f || c === 0x0a || c === 0x0d || c === 0x3a;
  }
  return true;
}

/** The reported span of a run and its score, or null. */
function scoreRun(text: string, run: readonly Token[], lex: Lexicon): Candidate | null {
  if (run.length > MAX_RUN_TOKENS) return null;
  let i = 0;
  let j = run.length - 1;
  // Leading greetings, honorifics, dates and common words.
  while (i <= j && run[i]!.kind === 'name' && !run[i]!.possessive && (LEADERS.has(run[i]!.key) || HONORIFICS.has(run[i]!.key) || isCommonWord(lex, run[i]!.key))) i++;
  if (i > MAX_LEADING_STRIP) return null;
  // Trailing initials and particles.
  let stripped = 0;
  while (j >= i && run[j]!.kind !== 'name') {
    j--;
    stripped++;
  }
  if (stripped > MAX_TRAILING_STRIP) return null;
  // Leading particles (sentence-initial "De" is capitalized anyway).
  while (i <= j && run[i]!.kind === 'particle') i++;
  if (i > j) return null;
  const names: Token[] = [];
  let initials = 0;
  for (let k = i; k <= j; k++) {
    const t = run[k]!;
    if (t.kind === 'name') names.push(t);
    else if (t.kind === 'initial') initials++;
  }
  if (names.length === 0 || names.length > MAX_NAMES) return null;
  const last = names[names.length - 1]!;
  const first = names[0]!;
  if (PLACE_TAIL.has(last.key) && names.length > 1) return null;
  if (PLACE_HEAD.has(first.key) && names.length > 1) return null;
  for (const t of names) {
    if (isEnglishNotName(lex, t.key) || ORG_WORDS.has(t.key) || COUNTRY_WORDS.has(t.key) || NATIONALITIES.has(t.key) || HONORIFICS.has(t.key) || LEADERS.has(t.key)) return null;
  }
  // A house number before it, or a number after it: an address.
  const start = run[i]!.start;
  const end = run[j]!.nameEnd;
  if (NUMBER_BEFORE.test(text.slice(Math.max(0, run[0]!.start - 8), run[0]!.start))) return null;
  if (NUMBER_AFTER.test(text.slice(end, end + 12))) return null;
  // `Austin, Texas`: a place, then its state or country.
  const after = PLACE_AFTER.exec(text.slice(end, end + MAX_TOKEN + 3));
  if (after !== null && COUNTRY_WORDS.has(after[1]!.toLowerCase())) return null;

  const context = contextBefore(text, start);
  let score: number;
  if (names.length >= 2) {
    const g = givenScore(lex, first.key);
    const pf = g > 0 ? g : Math.max(0.8 * surnameScore(lex, first.key), weakScore(lex, first.key));
    const s = surnameScore(lex, last.key);
    const pl = s > 0 ? s : Math.max(0.8 * givenScore(lex, last.key), weakScore(lex, last.key));
    score = 0.25 + 0.4 * pf + 0.35 * pl + (initials > 0 ? 0.1 : 0);
  } else {
    const g = givenScore(lex, first.key);
    const s = surnameScore(lex, first.key);
    score = Math.max(0.6 * g, 0.35 * s, 0.5 * weakScore(lex, first.key));
    if (initials > 0 && run[i]!.kind === 'initial') score = Math.max(score, 0.3 + 0.4 * Math.max(g, s, weakScore(lex, first.key)));
    const lineStart = sentenceInitial(text, run[0]!.start) && i === 0 && context !== 'honorific';
    if (lineStart && SPEAKER_AFTER.test(text.slice(end, end + 2))) score += 0.1;
    else if (lineStart) score -= 0.05;
    if (g > 0 && (LIST_BEFORE.test(text.slice(Math.max(0, start - MAX_TOKEN - 7), start)) || LIST_AFTER.test(text.slice(end, end + 7)))) score += 0.1;
  }
  if (context === 'honorific') score = Math.max(score + 0.3, !lex.wordClass.has(first.key) || !isRareName(lex, first.key) ? 0.75 : 0);
  else if (context === 'intro') score = Math.max(score + 0.3, lex.wordClass.has(first.key) ? 0 : 0.6);
  else if (context === 'strong') score += 0.3;
  else if (context === 'weak') score += 0.1;
  if (score < PERSON_MIN_SCORE) return null;
  return { start, end, confidence: Math.min(0.99, score) };
}

function findNames(text: string): Candidate[] {
  const tokens = tokenize(text);
  if (tokens.length === 0) return [];
  const lex = getLexicon();
  const out: Candidate[] = [];
  let k = 0;
  while (k < tokens.length) {
    const t = tokens[k]!;
    if (t.kind === 'other') {
      k++;
      continue;
    }
    let m = k + 1;
    while (m < tokens.length && joins(text, tokens[m - 1]!, tokens[m]!)) m++;
    const c = scoreRun(text, tokens.slice(k, m), lex);
    if (c !== null) out.push(c);
    k = m;
  }
  return out;
}

// ---------------------------------------------------------------- streaming hint

/** What may follow a token while a later character could still make it join a run, or change it. */
const OPEN_TAILS = new Set([' ', '.', '. ', "'", '’', '-']);
/** Characters after a span that its scoring reads (see scoreRun). */
const AFTER_READ = MAX_TOKEN + 3;
/** The trailing part of the text the hint tokenizes: room for MAX_RUN_TOKENS + 2 tokens past AFTER_READ. */
const HINT_WINDOW = (MAX_RUN_TOKENS + 2) * (MAX_TOKEN + 3) + AFTER_READ + 64;

/** True when `b` may continue the run of `a`, whatever `b` turns into (only the gap is looked at). */
function mayJoin(text: string, a: Token, b: Token): boolean {
  if (a.kind === 'other' || a.possessive) return false;
  const gap = b.start - a.end;
  if (gap === 1) return text.charCodeAt(a.end) === 0x20;
  return gap === 2 && a.kind === 'initial' && text.charCodeAt(a.end) === 0x2e && text.charCodeAt(a.end + 1) === 0x20;
}

/**
 * The streaming hint. A run is decided once nothing after it can change: its last token is
 * complete and cannot join a next one, and the text reaches AFTER_READ characters past it (what
 * the scoring reads after a span: a house number, `, Texas`, `and Name`, a speaker's colon).
 * Pending from the first run not yet decided: the run the end of the text may still extend (the
 * text ends inside its last token, or right after it with one of OPEN_TAILS), or any run that
 * ends within the last AFTER_READ characters.
 */
function settledBefore(text: string): number {
  const n = text.length;
  const tokens = tokenize(text, Math.max(0, n - HINT_WINDOW));
  if (tokens.length === 0) return n;
  const last = tokens[tokens.length - 1]!;
  let open: boolean;
  if (last.end === n) {
    // A token starting lower-case stays `other` unless it can still become a particle.
    open = !isLowerAt(text, last.start) || PARTICLE_LIST.some((p) => p.startsWith(text.slice(last.start, n)));
  } else {
    const tail = text.slice(last.end);
    // After a space only a joinable token can be continued; a joiner or a dot can still change the token.
    open = OPEN_TAILS.has(tail) && !((tail === ' ' || tail === '. ') && (last.kind === 'other' || last.possessive));
  }
  let pending = n;
  let i = tokens.length - 1;
  while (i >= 0) {
    const t = tokens[i]!;
    const finalOpen = open && i === tokens.length - 1;
    if (!finalOpen && n - t.end >= AFTER_READ) break; // this run, and every earlier one, is decided
    if (t.kind === 'other' && !finalOpen) {
      i--;
      continue;
    }
    // t ends a run: walk back to its first token.
    let j = i;
    while (j > 0 && mayJoin(text, tokens[j - 1]!, tokens[j]!)) j--;
    // A run whose fixed part is longer than any scored run stays rejected whatever follows.
    const fixed = i - j + 1 - (finalOpen ? 1 : 0);
    if (fixed <= MAX_RUN_TOKENS) pending = tokens[j]!.start;
    i = j - 1;
  }
  return pending;
}

// ---------------------------------------------------------------- detector

/**
 * The person-name detector (type PERSON). Experimental: not among BUILTIN_DETECTORS; a policy
 * names the PERSON type to use it.
 */
export const personDetector: Detector = defineDetector({
  id: 'builtin.person',
  type: 'PERSON',
  maxLength: MAX_LENGTH,
  lookbehind: LOOKBEHIND,
  lookahead: LOOKAHEAD,
  find: findNames,
  settledBefore,
});
