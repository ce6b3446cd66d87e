/**
 * Extra views of a request's text for terminal content rules (block, require_approval): the text
 * as the model reads it, not only as each string was sent. Masking does not use them (it needs
 * exact positions in one string); a finding in a view maps back to the original strings it came
 * from (a decoded region maps to the whole encoded region).
 *
 *  - joined: consecutive text items (a message's text parts, tool results and text documents,
 *    then the next message's) joined with nothing, a space and a newline, cut to windows around each boundary
 *    as wide as the longest entity a rule can find; only detections spanning two items count
 *    (the others are found in the items themselves).
 *  - decoded: JSON escapes, base64/hex and percent-encoding decoded in place, with 32 characters
 *    of context on each side (a keyword rule's context survives); up to two decoding steps
 *    (a JSON-escaped base64 string), at most one of them base64/hex/percent. The context kept
 *    each side of a decoded region is the same window (so a token partly encoded is whole).
 *  - hidden: tag characters and variation-selector runs decoded in place (../detection/hidden-text.ts),
 *    in the text and under JSON escapes.
 *  - spaced: a token spaced out or broken over lines (`A K I A …`, `ghp_abc…⏎…xyz`, `sk-ant-…\n…`
 *    in JSON arguments, a card as `4111⏎1111⏎…`), in each item and in its JSON-unescaped view.
 *    Joining a whole run would glue the neighbouring words onto the token (and the detectors'
 *    boundaries would reject it), so the view holds candidates cut at the boundaries inside a
 *    run — from a known prefix to each possible end, spaced regularly (detection/spaced-tokens.ts)
 *    — one per GAP-separated line. Only the prefixed-token and card detectors read it, a
 *    detection counts only if it spans a removed space, and not if the item's own scan already
 *    found it there.
 *
 * The decoded text of one request is bounded (VIEW_BUDGET; spaced candidates count too): past it
 * the views are incomplete and the caller fails closed for the rules that would have used them.
 */
import { findBase64AndHex, findJsonEscapes, findPercentEncoding, type DecodeBudget, type DecodedRegion } from '../detection/decode-encodings.ts';
import { findHiddenText } from '../detection/hidden-text.ts';
import { TOKEN_SHAPES } from '../detection/index.ts';
import { findSpacedCandidates, type SpacedTargets } from '../detection/spaced-tokens.ts';
import type { EntityType } from '../detection/types.ts';
import type { Role } from '../events.ts';
import type { TextLocation } from './types.ts';

export interface TextItem {
  readonly location: TextLocation;
  /** null for tool definitions: looked at only by rules without a `roles` filter. */
  readonly role: Role | null;
  readonly text: string;
}

/** A range of a view and where it came from: `exact` maps position by position, else the whole original range. */
interface Segment {
  readonly vs: number;
  readonly ve: number;
  readonly item: TextItem;
  readonly os: number;
  readonly oe: number;
  readonly exact: boolean;
}

export interface ScanView {
  readonly text: string;
  readonly segments: readonly Segment[];
  /**
   * The spaced view: scanned only by the detectors of SPACED_TYPES, and a detection counts only
   * if it spans a removed space (see spansJoin).
   */
  readonly spaced: boolean;
  /** Where the spaced view removed a space or line break, in increasing order (empty elsewhere). */
  readonly joins: readonly number[];
  /** A detection counts only if it spans two items. */
  readonly mustSpanItems: boolean;
}

export interface ViewPiece {
  readonly item: TextItem;
  readonly start: number;
  readonly end: number;
}

export interface ScanViews {
  readonly views: readonly ScanView[];
  /** The budget ran out: some text was not decoded. */
  readonly incomplete: boolean;
}

/** Separates non-adjacent pieces of a view: no entity spans it. */
const GAP = '\n\u0000\n';
/** Widest window each side of a joined boundary. */
export const MAX_JOIN_WINDOW = 4096;
/** Decoded/spaced characters per request beyond twice the text itself. */
const VIEW_BUDGET_BASE = 64 * 1024;
/** Items joined across message boundaries: text the model reads as prose (a text document's too). */
const JOINABLE = new Set(['text', 'tool_result', 'file_text']);

/** The entity types the spaced view is for: prefixed tokens (TOKEN_SHAPES) and card numbers. */
export const SPACED_TYPES: ReadonlySet<EntityType> = new Set([...TOKEN_SHAPES.map((s) => s.type), 'CREDIT_CARD']);

/** What the spaced view looks for, given the entity types the rules that use the views can find. */
export function spacedTargets(types: ReadonlySet<EntityType>): SpacedTargets {
  return { shapes: TOKEN_SHAPES.filter((s) => types.has(s.type)), cards: types.has('CREDIT_CARD') };
}

const NO_SPACED: SpacedTargets = { shapes: [], cards: false };

/**
 * Builds the views of `items`. `window` is the widest entity (plus context) a terminal rule can
 * find: the joined windows are that wide on each side of a boundary. `spaced`: what the spaced
 * view looks for (see spacedTargets); none by default.
 */
export function buildScanViews(items: readonly TextItem[], window: number, spaced: SpacedTargets = NO_SPACED): ScanViews {
  let total = 0;
  for (const item of items) total += item.text.length;
  const budget: DecodeBudget = { chars: 2 * total + VIEW_BUDGET_BASE, exhausted: false };
  const views: ScanView[] = [];
  const context = Math.min(Math.max(window, 32), MAX_JOIN_WINDOW);
  views.push(...joinedViews(items, context));
  const derive = (parent: ScanView, regions: readonly DecodedRegion[]): ScanView | null => deriveView(parent, regions, context);
  for (const item of items) {
    const base = identityView(item);
    // Level 1: JSON escapes, encodings; level 2: an encoding under JSON escapes, or JSON escapes under an encoding.
    const json = derive(base, findJsonEscapes(item.text, budget));
    const encoded = [derive(base, findBase64AndHex(item.text, budget)), derive(base, findPercentEncoding(item.text, budget)), derive(base, findHiddenText(item.text, budget))];
    const level2: (ScanView | null)[] = [];
    if (json) level2.push(derive(json, findBase64AndHex(json.text, budget)), derive(json, findPercentEncoding(json.text, budget)), derive(json, findHiddenText(json.text, budget)));
    for (const e of encoded) if (e) level2.push(derive(e, findJsonEscapes(e.text, budget)));
    const decoded = [json, ...encoded, ...level2].filter((v): v is ScanView => v !== null);
    views.push(...decoded);
    // Spaced out or broken over lines: in the item as sent, and with its JSON escapes decoded.
    if (spaced.shapes.length > 0 || spaced.cards) {
      for (const parent of json ? [base, json] : [base]) {
        const view = spacedView(parent, spaced, budget);
        if (view) views.push(view);
      }
    }
  }
  return { views, incomplete: budget.exhausted };
}

/** Where a detection [start, end) of a view came from, per original item (empty: a gap only). */
export function mapToItems(view: ScanView, start: number, end: number): ViewPiece[] {
  const pieces: ViewPiece[] = [];
  for (const s of view.segments) {
    if (s.ve <= start) continue;
    if (s.vs >= end) break;
    const piece: ViewPiece = s.exact
      ? { item: s.item, start: s.os + Math.max(start, s.vs) - s.vs, end: s.os + Math.min(end, s.ve) - s.vs }
      : { item: s.item, start: s.os, end: s.oe };
    const last = pieces[pieces.length - 1];
    if (last && last.item === piece.item && piece.start <= last.end) pieces[pieces.length - 1] = { item: last.item, start: Math.min(last.start, piece.start), end: Math.max(last.end, piece.end) };
    else pieces.push(piece);
  }
  return pieces;
}

function identityView(item: TextItem): ScanView {
  return { text: item.text, segments: [{ vs: 0, ve: item.text.length, item, os: 0, oe: item.text.length, exact: true }], spaced: false, joins: [], mustSpanItems: false };
}

class ViewBuilder {
  readonly #parts: string[] = [];
  readonly #segments: Segment[] = [];
  readonly #joins: number[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  gap(): void {
    this.#parts.push(GAP);
    this.#length += GAP.length;
  }

  /** parent[from, to) as it is, mapped as the parent maps it. */
  copy(parent: ScanView, from: number, to: number): void {
    if (to <= from) return;
    for (const s of parent.segments) {
      if (s.ve <= from) continue;
      if (s.vs >= to) break;
      const a = Math.max(from, s.vs);
      const b = Math.min(to, s.ve);
      const vs = this.#length + a - from;
      this.#segments.push(s.exact ? { vs, ve: vs + b - a, item: s.item, os: s.os + a - s.vs, oe: s.os + b - s.vs, exact: true } : { ...s, vs, ve: vs + b - a });
    }
    this.#parts.push(parent.text.slice(from, to));
    this.#length += to - from;
  }

  /** `text` in place of parent[from, to): every character of it maps to all of that range. */
  replace(parent: ScanView, from: number, to: number, text: string): void {
    if (text.length === 0) return;
    const vs = this.#length;
    for (const piece of mapToItems(parent, from, to)) this.#segments.push({ vs, ve: vs + text.length, item: piece.item, os: piece.start, oe: piece.end, exact: false });
    this.#parts.push(text);
    this.#length += text.length;
  }

  /** Appends raw text that maps to item[os, os + text.length) exactly. */
  item(item: TextItem, os: number, oe: number): void {
    if (oe <= os) return;
    this.#segments.push({ vs: this.#length, ve: this.#length + oe - os, item, os, oe, exact: true });
    this.#parts.push(item.text.slice(os, oe));
    this.#length += oe - os;
  }

  joiner(text: string): void {
    this.#parts.push(text);
    this.#length += text.length;
  }

  /** Marks the current position as a removed space. */
  join(): void {
    this.#joins.push(this.#length);
  }

  build(spaced: boolean, mustSpanItems: boolean): ScanView {
    // Segments sorted by view start (copy and replace append in order; overlaps only within one replace).
    return { text: this.#parts.join(''), segments: this.#segments, spaced, joins: this.#joins, mustSpanItems };
  }
}

/** The parent with `regions` replaced by their decoding, cut to `context` characters around each; null when none. */
function deriveView(parent: ScanView, regions: readonly DecodedRegion[], context: number): ScanView | null {
  if (regions.length === 0) return null;
  const b = new ViewBuilder();
  let cursor = 0;
  for (let r = 0; r < regions.length; r++) {
    const region = regions[r]!;
    const from = Math.max(cursor, region.start - context);
    if (from > cursor && b.length > 0) b.gap();
    b.copy(parent, from, region.start);
    b.replace(parent, region.start, region.end, region.decoded);
    const next = r + 1 < regions.length ? regions[r + 1]!.start : parent.text.length;
    const tail = Math.min(region.end + context, next);
    b.copy(parent, region.end, tail);
    cursor = tail;
  }
  return b.build(false, false);
}

/** The spaced candidates of the parent view, one per GAP-separated line; null when none. */
function spacedView(parent: ScanView, targets: SpacedTargets, budget: DecodeBudget): ScanView | null {
  const candidates = findSpacedCandidates(parent.text, targets, budget);
  if (candidates.length === 0) return null;
  const b = new ViewBuilder();
  for (const pieces of candidates) {
    b.gap();
    pieces.forEach(([from, to], k) => {
      if (k > 0) b.join();
      b.copy(parent, from, to);
    });
  }
  return b.build(true, false);
}

/** True when [start, end) of the view spans one of its joins (a space it removed lay inside). */
export function spansJoin(view: ScanView, start: number, end: number): boolean {
  const joins = view.joins;
  let lo = 0;
  let hi = joins.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (joins[mid]! <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < joins.length && joins[lo]! < end;
}

/**
 * Consecutive joinable items (message text and tool results, in order) joined with '', ' ' and
 * '\n', cut to `window` characters each side of every boundary (windows that meet are merged).
 */
function joinedViews(items: readonly TextItem[], window: number): ScanView[] {
  const chain = items.filter((i) => i.location.kind === 'message' && JOINABLE.has(i.location.field));
  if (chain.length < 2) return [];
  const views: ScanView[] = [];
  for (const joiner of ['', ' ', '\n']) {
    // Positions of the chain joined: item k starts at starts[k].
    const starts: number[] = [];
    let at = 0;
    for (const item of chain) {
      starts.push(at);
      at += item.text.length + joiner.length;
    }
    // Windows [boundary - window, boundary + window), merged.
    const windows: [number, number][] = [];
    for (let k = 1; k < chain.length; k++) {
      const boundary = starts[k]!;
      const from = Math.max(0, boundary - joiner.length - window);
      const to = boundary + window;
      const last = windows[windows.length - 1];
      if (last && from <= last[1]) last[1] = Math.max(last[1], to);
      else windows.push([from, to]);
    }
    const b = new ViewBuilder();
    let k = 0;
    for (const [from, to] of windows) {
      if (b.length > 0) b.gap();
      while (k > 0 && starts[k]! > from) k--;
      while (k + 1 < chain.length && starts[k + 1]! <= from) k++;
      for (let j = k; j < chain.length && starts[j]! < to; j++) {
        const item = chain[j]!;
        const s = starts[j]!;
        if (j > k || from < s) {
          // the joiner before item j, if inside the window
          if (j > 0 && s - joiner.length >= from) b.joiner(joiner);
        }
        b.item(item, Math.max(0, from - s), Math.min(item.text.length, to - s));
      }
    }
    views.push(b.build(false, true));
  }
  return views;
}
