/**
 * Detection of sensitive entities in text: the contract between detectors, masking and policy.
 * Pure: no I/O, no clock, no randomness. A Detection never carries the matched value — callers
 * slice it from the text they already hold, and only ever to transform it, never to log it.
 */

/** Built-in entity types; custom detectors from a policy use their own upper-case names. */
export type EntityType =
  | 'EMAIL_ADDRESS'
  | 'PHONE_NUMBER'
  | 'CREDIT_CARD'
  | 'IBAN_CODE'
  | 'US_SSN'
  | 'IP_ADDRESS'
  | 'PRIVATE_KEY'
  | 'AWS_ACCESS_KEY'
  | 'GITHUB_TOKEN'
  | 'GITLAB_TOKEN'
  | 'SLACK_TOKEN'
  | 'STRIPE_KEY'
  | 'OPENAI_KEY'
  | 'ANTHROPIC_KEY'
  | 'GOOGLE_API_KEY'
  | 'JWT'
  | 'NPM_TOKEN'
  | 'PYPI_TOKEN'
  | 'HUGGINGFACE_TOKEN'
  | 'SENDGRID_KEY'
  | 'DATABASE_URL_CREDENTIALS'
  | 'BASIC_AUTH_CREDENTIALS'
  | 'BEARER_TOKEN'
  | 'AWS_SECRET_KEY'
  | 'URL_CREDENTIALS'
  | (string & {});

export interface Detection {
  readonly type: EntityType;
  /** Half-open [start, end) in UTF-16 code units of the text given to the detector. */
  readonly start: number;
  readonly end: number;
  /** 0..1; context words nearby raise it. */
  readonly confidence: number;
  /** Which detector found it (for policy records; never the value). */
  readonly detector: string;
}

export interface Detector {
  readonly id: string;
  readonly type: EntityType;
  /**
   * The longest entity this detector can report, in UTF-16 code units (a stream masker holds
   * back at most this much text that could still become an entity). Must be finite.
   */
  readonly maxLength: number;
  /**
   * How many characters before a match the detector reads to decide or to score it (context
   * words, boundary checks). Absent = 0. A stream masker keeps this much already-emitted text as
   * context so a windowed scan decides as a scan of the whole text does.
   */
  readonly lookbehind?: number;
  /** How many characters after a match the detector reads (boundary checks). Absent = 0. */
  readonly lookahead?: number;
  /** All entities in `text`. Must not throw on any input; if it does, callers fail closed. */
  detect(text: string): Detection[];
  /**
   * Optional streaming hint: how much of `text` is settled for this detector — a "safe prefix".
   *
   * CONTRACT. Returns an index i, 0 ≤ i ≤ text.length, such that for EVERY continuation s:
   *
   *     { d ∈ detect(text + s) : d.start < i }  deep-equals  { d ∈ detect(text) : d.start < i }
   *
   * i.e. every entity that `detect` reports in text + s and that overlaps [0, i) is already
   * reported on `text` alone, with the same start, end and confidence, and nothing reported on
   * `text` that overlaps [0, i) goes away or changes. (A settled entity may end after i; a stream
   * masker then simply does not cut through it.) The hint is about this detector's own `detect`
   * on the same string: a caller that runs detectors on normalized text (detectEntities) must ask
   * on that normalized text and map back — `settledPrefix()` in ./index.ts does exactly that.
   *
   * CONSERVATIVE: returning a smaller index is always correct (0 is always correct); a larger one
   * than the truth leaks a streamed entity. Absent = the stream masker holds back the last
   * maxLength + lookahead characters instead. The built-in detectors implement it (holding back
   * only from the start of what could still become, or change, an entity); custom regex
   * detectors do not.
   */
  settledBefore?(text: string): number;
  /**
   * Optional: where a scan of the text must begin to be in step with a scan of the whole text — for
   * a detector whose matches depend on where its scan started, not only on the text around them
   * (a global regex scan resumes where the previous match ended, so in a long chain of match
   * characters — digit groups joined by spaces, hyphens and brackets — the candidates tile the
   * chain from its start, and a scan that begins mid-chain tiles it differently).
   *
   * CONTRACT. Reads only text[0, at) and returns j, 0 ≤ j ≤ at, such that for every continuation
   * s and every k ≤ j for which text[k, j) holds at least `lookbehind` + 1 characters (or k = 0):
   *
   *     { d ∈ detect(text + s) : d.start ≥ at }  deep-equals  { d ∈ detect(text.slice(k) + s) : d.start ≥ at − k }, shifted by k
   *
   * and the same holds for every later `at` (j is nondecreasing in `at`). Returning a smaller j is
   * always correct (0 is: a scan from the start of the text). Absent = `at`: the detector is local
   * (whether it reports [s, e) depends only on `lookbehind` characters before s). The built-in
   * phone, card and email detectors return the start of the maximal run of characters their
   * matches can hold that reaches `at` — a scan starting before that run's first character is in
   * step. A stream masker keeps its left context back to `lookbehind` + 1 characters before the
   * smallest j of its detectors (with a cap, past which it fails closed: see stream-masker.ts).
   */
  scanStart?(text: string, at: number): number;
}
