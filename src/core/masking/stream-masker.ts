/**
 * Masking a streamed answer so that it equals masking the whole answer at once.
 *
 * THE LAW. For detectors that are local (see below) and any chunking c₁…cₙ of a text t, as long
 * as the cap is never reached:
 *
 *     push(c₁) + … + push(cₙ) + end()  ===  maskText(t, detect(t), operatorFor, vault)
 *
 * and no character of a detected entity is ever emitted unmasked. The vault numbers placeholders
 * in the same order as the whole-text masking does.
 *
 * HOLDBACK. After each processed push the masker keeps back the shortest suffix that could still
 * change: for a detector d, the last maxLength(d) + lookahead(d) characters, counted in "weight"
 * (code points that survive normalization: invisible/format characters and combining marks count
 * 0, so an entity padded with zero-width spaces is still held whole); a detector may instead say
 * where its settled prefix ends via the optional `Detector.settledBefore(text)` hint (contract in
 * src/core/detection/types.ts; combined by `detectStreaming` on the normalized window, mapped back,
 * and moved before any detection straddling it so overlap resolution cannot reach across it).
 * Every built-in detector has the hint, so with them the masker holds back only what could still
 * become an entity. The emit point never cuts through a current detection. Detection runs
 * on the held text plus `lookbehind` characters of already-emitted context, not on the whole
 * stream, and only when the held text has grown by a quarter since the last run (amortized
 * linear; the law does not depend on when runs happen).
 *
 * THE CAP (fail closed). If, after a run, the held text is longer than `maxHoldback` UTF-16 code
 * units (default: 4 × (longest entity + lookahead), at least 4096), the oldest part of it — all but
 * the last maxHoldback/2 characters, extended to the end of any detection it cuts — is emitted as
 * a single `[REDACTED]`. The held text can only grow that long when something still pending (a
 * candidate entity) spans it, e.g. text stuffed with invisible characters or a PEM header without
 * its footer. When the cap triggers, equality with the whole-text result no longer holds for that
 * part, but safety does: every character of the forced part is redacted, and the following window
 * keeps maxLength + lookbehind characters of context so that an entity cut by the forced part is
 * still found and its remainder masked. Precisely: the law (equality) holds for every stream in
 * which the held text never exceeds the cap — in particular for every text whose pending
 * candidates are shorter than the cap — and the no-leak property holds for every entity shorter
 * than maxHoldback/2.
 *
 * LOCALITY (what the law assumes of detectors): whether [s, e) is reported, and with what
 * confidence, depends only on the text from `lookbehind` characters before s — or before the
 * detector's scan start for s, see SCAN START — to `lookahead` characters after e; entities are at
 * most `maxLength` long (all counted on the normalized text); and the overlap resolution of
 * `detect` decides each group of overlapping candidates on its own.
 *
 * SCAN START. A detector whose scan resumes where its previous match ended (the phone, card and
 * email detectors) tiles a long run of its match characters — a chain of digit groups joined by
 * spaces, hyphens and brackets — from the run's start, so a window that begins mid-run can find
 * other candidates, and miss an entity the whole text has. Such a detector says where a scan must
 * begin to be in step (`Detector.scanStart`, contract in src/core/detection/types.ts: the start of
 * the run), and the masker keeps its left context back to `lookbehind` characters before the
 * smallest such point for the emit point — up to CONTEXT_CAP code units. Past that cap (a run of
 * match characters longer than ~4 KB, on one line), it fails closed: from the first held position
 * whose scan start it cannot reach, everything is redacted under one `[REDACTED]` until the first
 * position whose scan start lies inside the window again (the run has ended); from there on the
 * law holds again. With a long context, detection runs after an eighth of it has arrived
 * (amortized linear).
 */

import { detectStreaming, scanStartOf, settledPrefix } from '../detection/index.ts';
import type { Detection, Detector } from '../detection/types.ts';
import type { OperatorFor } from './operators.ts';
import { maskText } from './operators.ts';
import type { PseudonymVault } from './pseudonym-vault.ts';

/**
 * A detector with the optional streaming hint — now part of Detector itself (`settledBefore`,
 * documented in src/core/detection/types.ts); kept as an alias for existing imports.
 */
export type StreamingDetector = Detector;

export type DetectFn = (text: string, detectors: readonly Detector[]) => Detection[];

export interface StreamMaskerOptions {
  readonly detectors: readonly Detector[];
  readonly operatorFor: OperatorFor;
  /** Needed when an operator is `pseudonymize`. */
  readonly vault?: PseudonymVault;
  /** The cap on held text, in UTF-16 code units (see THE CAP). */
  readonly maxHoldback?: number;
  /**
   * Detection over the whole text; defaults to detectEntities (run as detectStreaming, which also
   * yields the hints' settled index). maskText must be given the same. With a custom detect, the
   * hints are combined by settledPrefix (which runs the hinted detectors once more).
   */
  readonly detect?: DetectFn;
}

/** The most left context kept to reach back to a detector's scan start (see SCAN START). */
export const CONTEXT_CAP = 4096;

/** Marker for the forced part when the cap triggers. */
export const FORCED_REDACTION = '[REDACTED]';

// Code points that normalizeForMatching drops or merges into the previous character.
const ZERO_WEIGHT = /^[\p{M}\p{Cf}\p{Default_Ignorable_Code_Point}\u115F\u1160\u3164\uFFA0]$/u;

/**
 * The index i ≥ from such that text[i:] holds at least `need` weight units (or `from` when the
 * text is shorter), never between the halves of a surrogate pair.
 */
export function weightCut(text: string, need: number, from = 0): number {
  if (need <= 0) return text.length;
  const i = weightBack(text, text.length, need, from);
  return i < 0 ? from : i;
}

/**
 * The largest index i ≥ from such that text[i:end] holds at least `need` (> 0) weight units,
 * never between the halves of a surrogate pair; −1 when text[from:end] holds less.
 */
function weightBack(text: string, end: number, need: number, from: number): number {
  let weight = 0;
  let i = end;
  while (i > from) {
    let cpStart = i - 1;
    const code = text.charCodeAt(cpStart);
    if (code < 0xad) {
      weight++;
    } else {
      if (code >= 0xdc00 && code <= 0xdfff && cpStart > from) {
        const hi = text.charCodeAt(cpStart - 1);
        if (hi >= 0xd800 && hi <= 0xdbff) cpStart--;
      }
      if (!ZERO_WEIGHT.test(text.slice(cpStart, i))) weight++;
    }
    i = cpStart;
    if (weight >= need) return i;
  }
  return -1;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

export class StreamMasker {
  readonly #detectors: readonly Detector[];
  readonly #hinted: readonly Detector[];
  readonly #operatorFor: OperatorFor;
  readonly #vault: PseudonymVault | undefined;
  /** Null: the default, detectStreaming (detections and the settled index in one pass). */
  readonly #detect: DetectFn | null;
  /** Weight units a hookless detector needs held: max(maxLength + lookahead). */
  readonly #need: number;
  readonly #lookbehind: number;
  readonly #cap: number;
  readonly #longCtx: number;
  /** Some detector has Detector.scanStart (see SCAN START). */
  readonly #scanHooks: boolean;
  /** The most left context kept to reach back to a scan start (see SCAN START). */
  readonly #ctxCap: number;

  /** Already-emitted original text kept as left context (lookbehind). */
  #ctx = '';
  /** Text received but not yet emitted. */
  #held = '';
  #nextRunAt = 1;
  /** The context is the tail of a forced redaction (see #run). */
  #afterForced = false;
  /** The context begins at the start of the stream (nothing emitted has been dropped from it). */
  #ctxFromStart = true;
  /** The context could not reach back to the detectors' scan start (the context cap, SCAN START). */
  #unsynced = false;
  /** The last output was a FORCED_REDACTION for text not in step (one marker covers all of it). */
  #forcedOpen = false;
  #ended = false;
  /** How many times the cap forced a redaction (for metrics; never the text). */
  forcedRedactions = 0;

  constructor(options: StreamMaskerOptions) {
    this.#detectors = options.detectors;
    this.#operatorFor = options.operatorFor;
    this.#vault = options.vault;
    this.#detect = options.detect ?? null;
    let need = 0;
    let lookbehind = 0;
    let longest = 0;
    let lookahead = 0;
    const hinted: Detector[] = [];
    for (const d of options.detectors) {
      const ahead = Math.max(0, d.lookahead ?? 0);
      lookbehind = Math.max(lookbehind, d.lookbehind ?? 0);
      longest = Math.max(longest, d.maxLength);
      lookahead = Math.max(lookahead, ahead);
      if (typeof d.settledBefore === 'function') hinted.push(d);
      else need = Math.max(need, d.maxLength + ahead);
      if (!Number.isFinite(d.maxLength) || d.maxLength < 0) throw new RangeError(`detector ${d.id}: maxLength must be finite`);
    }
    this.#hinted = hinted;
    this.#scanHooks = options.detectors.some((d) => typeof d.scanStart === 'function');
    this.#need = need;
    // +1: regex boundaries such as \b or (?<!…) read one character before the match.
    this.#lookbehind = lookbehind + 1;
    this.#longCtx = longest + this.#lookbehind;
    this.#cap = Math.max(1, Math.floor(options.maxHoldback ?? Math.max(4096, 4 * (longest + lookahead))));
    this.#ctxCap = CONTEXT_CAP;
  }

  /** UTF-16 code units received but not yet emitted. */
  get heldBack(): number {
    return this.#held.length;
  }

  /** Feeds the next piece of the stream; returns the text that may be sent now (maybe ''). */
  push(delta: string): string {
    if (this.#ended) throw new Error('StreamMasker: push after end');
    if (delta === '') return '';
    this.#held += delta;
    if (this.#held.length < this.#nextRunAt) return '';
    return this.#run(false);
  }

  /** Ends the stream; returns the rest, masked. */
  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    const out = this.#run(true);
    this.#ctx = '';
    return out;
  }

  #run(final: boolean): string {
    const ctxLen = this.#ctx.length;
    const window = this.#ctx + this.#held;
    let found: Detection[];
    let hintSettled = window.length;
    let scanStart: (at: number) => number;
    if (this.#detect === null) {
      const r = detectStreaming(window, this.#detectors);
      found = r.detections;
      if (this.#hinted.length > 0) hintSettled = r.settled;
      scanStart = r.scanStart;
    } else {
      found = this.#detect(window, this.#detectors);
      if (this.#hinted.length > 0) hintSettled = settledPrefix(window, this.#hinted);
      scanStart = this.#scanHooks ? (at) => scanStartOf(window, at, this.#detectors) : (at) => at;
    }

    // Fail closed past the context cap (see SCAN START): the held text up to the first position
    // from which this window's scan is in step with the whole text's again is redacted whole.
    if (this.#unsynced) {
      const inStep = (w: number): boolean => {
        const j = scanStart(w);
        return j > 0 && weightBack(window, j, this.#lookbehind, 0) >= 0;
      };
      if (inStep(ctxLen)) {
        this.#unsynced = false;
      } else if (inStep(window.length) || final) {
        let lo = ctxLen + 1;
        let hi = window.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (inStep(mid)) hi = mid;
          else lo = mid + 1;
        }
        let w = lo - ctxLen;
        if (w < this.#held.length && isHighSurrogate(this.#held.charCodeAt(w - 1))) w++;
        const marker = this.#forcedOpen ? '' : FORCED_REDACTION;
        if (!this.#forcedOpen) this.forcedRedactions++;
        this.#advance(window, ctxLen, w, this.#longCtx, scanStart, true);
        this.#afterForced = true;
        this.#unsynced = false;
        this.#forcedOpen = false;
        return marker + this.#run(final);
      } else {
        // No held position is in step (nor will be: that depends only on the text before it), so
        // all of it is redacted now — under one marker until the masker is in step again.
        const out = this.#forcedOpen ? '' : FORCED_REDACTION;
        if (!this.#forcedOpen) this.forcedRedactions++;
        this.#advance(window, ctxLen, this.#held.length, this.#longCtx, scanStart, false);
        this.#afterForced = true;
        this.#forcedOpen = true;
        this.#setNextRun();
        return out;
      }
    }
    this.#forcedOpen = false;

    // Detections in held coordinates. Outside a forced cut, no entity of the whole text straddles
    // the emitted/held boundary (the emit point never cuts one, nor anything still unsettled), so
    // one that reaches back into the context is an artifact of the window's start (a regex
    // boundary check that could not see far enough back) and is dropped. After a forced cut the
    // context is the end of the redacted part: an entity reaching back into it is real, and the
    // rest of it is masked (clipped to the held text).
    const detections: Detection[] = [];
    for (const d of found) {
      if (d.end <= ctxLen || (d.start < ctxLen && !this.#afterForced)) continue;
      const start = Math.max(d.start, ctxLen) - ctxLen;
      detections.push({ ...d, start, end: d.end - ctxLen });
    }
    detections.sort((a, b) => a.start - b.start);

    let emitAt: number;
    if (final) {
      emitAt = this.#held.length;
    } else {
      const settled = Math.min(weightCut(window, this.#need, 0), hintSettled);
      emitAt = Math.max(0, settled - ctxLen);
      for (let i = detections.length - 1; i >= 0; i--) {
        const d = detections[i]!;
        if (d.start < emitAt && d.end > emitAt) emitAt = d.start;
      }
      if (emitAt > 0 && emitAt < this.#held.length && isHighSurrogate(this.#held.charCodeAt(emitAt - 1))) emitAt--;
    }

    let out = '';
    let consumed = 0;
    let forced = false;
    if (emitAt > 0) {
      const part = this.#held.slice(0, emitAt);
      const inside = detections.filter((d) => d.end <= emitAt);
      out = maskText(part, inside, this.#operatorFor, this.#vault);
      consumed = emitAt;
    }

    const heldLen = this.#held.length;
    if (!final && heldLen - consumed > this.#cap) {
      // Fail closed: something pending spans more than the cap. Redact the oldest part.
      let cut = heldLen - Math.floor(this.#cap / 2);
      for (const d of detections) {
        if (d.start < cut && d.end > cut) cut = d.end;
      }
      if (cut < heldLen && cut > 0 && isHighSurrogate(this.#held.charCodeAt(cut - 1))) cut++;
      out += FORCED_REDACTION;
      this.forcedRedactions++;
      consumed = cut;
      forced = true;
    }
    if (consumed > 0) {
      this.#advance(window, ctxLen, consumed, forced ? this.#longCtx : this.#lookbehind, scanStart, false);
      this.#afterForced = forced;
    }

    this.#setNextRun();
    return out;
  }

  /**
   * The next run comes when the held text has grown by a quarter — or, since a run reads the
   * context too, by an eighth of a long context (a chain, SCAN START; after a forced cut).
   */
  #setNextRun(): void {
    const held = this.#held.length;
    const ctx = this.#ctx.length;
    this.#nextRunAt = held + Math.max(1, held >> 2, ctx > 512 ? ctx >> 3 : 0);
  }

  /**
   * Moves `count` held characters into the emitted context (window = context + held, as the run
   * saw it), keeping `keepWeight` units of it — and, when a detector's scan start lies further
   * back (SCAN START), back to `lookbehind` units before it: up to the context cap (unless
   * `uncapped`: right after a fail-closed redaction, whose end is in step by construction); past
   * it, the masker fails closed until it is in step again.
   */
  #advance(window: string, ctxLen: number, count: number, keepWeight: number, scanStart: (at: number) => number, uncapped: boolean): void {
    const end = ctxLen + count;
    let start = weightBack(window, end, keepWeight, 0);
    if (start < 0) start = 0;
    if (this.#scanHooks && start > 0) {
      const j = scanStart(end);
      if (j < end) {
        let reach = j <= 0 ? (this.#ctxFromStart ? 0 : -1) : weightBack(window, j, this.#lookbehind, 0);
        if (reach < 0 && this.#ctxFromStart) reach = 0;
        if (reach >= 0 && (uncapped || end - reach <= this.#ctxCap)) {
          if (reach < start) start = reach;
        } else {
          this.#unsynced = true;
        }
      }
    }
    this.#ctx = window.slice(start, end);
    this.#held = window.slice(end);
    this.#ctxFromStart = this.#ctxFromStart && start === 0;
  }
}
