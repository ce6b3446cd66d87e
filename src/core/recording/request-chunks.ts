/**
 * Recorded request bodies as content-addressed chunks (issue 11 item 5: an agent resends its
 * whole conversation, tools and instructions on every turn, so storing each body whole grows
 * the recordings with the square of the session's length).
 *
 * A body is cut at its JSON structure, over the raw text (never re-serialized, so unknown fields,
 * whitespace, escapes and duplicate keys are carried byte for byte):
 * - a container (object or array) of at least {@link NODE_MIN} characters becomes a NODE: its own
 *   text (brackets, keys, separators, short member values) with references to its parts;
 * - every element of a split array is a part (a conversation's messages, `tools`, Responses
 *   `input` items); of a split object, every member value of at least {@link INLINE_MAX}
 *   characters is (with its member name, so a reader can find `messages` without the text);
 * - anything not split is a LEAF: its raw text.
 * Parts repeat across the calls of a session, and are stored once per session (the store keys
 * them by SHA-256). An array node may name an earlier array node (its `base`) and keep the first
 * `keep` of its pieces: a conversation that grew by two messages is then stored as those two.
 *
 * Node text (what is stored, and hashed): `o;` (object) or `a<base>,<keep>;` (array), then the
 * pieces: `s<length>:<text>` a literal, `r<id>;` a reference, and in objects `k<length>:<name>`
 * before each reference (the member's name, decoded). Lengths count UTF-16 code units.
 * Reconstruction is the concatenation of the pieces in order: exactly the text that was split.
 *
 * Pure: no I/O, no hashing (the store hashes), no clock.
 */

/** Bodies shorter than this are stored whole. */
export const CHUNK_MIN_BODY = 2048;
/** A container at least this long (in UTF-16 units) is split into its parts. */
export const NODE_MIN = 768;
/** An object member value at least this long is a part of its own; shorter ones stay in the node's text. */
export const INLINE_MAX = 96;
/** Containers nested deeper than this are leaves. */
export const MAX_SPLIT_DEPTH = 6;
/** Array nodes chain through at most this many bases (a longer chain is stored whole once). */
export const MAX_BASE_DEPTH = 32;

export const LEAF = 0;
export const NODE = 1;
export type ChunkKind = typeof LEAF | typeof NODE;

/** A split body before the store gives its parts ids: leaves and nodes, children inside. */
export type BodyPart = LeafPart | NodePart;

export interface LeafPart {
  readonly kind: typeof LEAF;
  readonly text: string;
}

export interface NodePart {
  readonly kind: typeof NODE;
  readonly array: boolean;
  /** Member names from the root (`messages`, `input`, `messages[]`): where base arrays are looked up. */
  readonly path: string;
  readonly depth: number;
  /** Literal text and parts, in order. */
  readonly pieces: readonly (string | BodyPart)[];
  /** Objects: the member name of each part, in order. */
  readonly names: readonly string[] | null;
}

/** A stored node, decoded. */
export interface DecodedNode {
  readonly array: boolean;
  readonly base: number;
  readonly keep: number;
  /** Literal text (string) and chunk ids (number), this node's own (after the kept base pieces). */
  readonly pieces: readonly (string | number)[];
  /** Objects: the member name of each reference, in order. */
  readonly names: readonly string[] | null;
}

// ── scanning ───────────────────────────────────────────────────────────────────────────────

function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) i++;
    else return i;
  }
}

/** `i` at a `"`: the index after the closing quote, or -1. */
function scanString(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = text.indexOf('"', j);
    if (q === -1) return -1;
    // Count the backslashes before the quote: an odd number escapes it.
    let k = q - 1;
    while (text.charCodeAt(k) === 92) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** The end of the JSON value starting at `i` (not validated inside containers), or -1. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 34) return scanString(text, i);
  if (c === 123 || c === 91) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d === 34) {
        j = scanString(text, j);
        if (j === -1) return -1;
        j--;
      } else if (d === 123 || d === 91) depth++;
      else if (d === 125 || d === 93) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === 44 || d === 93 || d === 125 || d === 32 || d === 10 || d === 13 || d === 9) break;
  }
  return j > i ? j : -1;
}

// ── splitting ──────────────────────────────────────────────────────────────────────────────

/**
 * The body as parts, or null when it stays whole: shorter than {@link CHUNK_MIN_BODY}, not a
 * JSON object or array, or not well formed where it would be cut. Joining the parts' text gives
 * `text` back exactly, whatever it holds.
 */
export function splitBody(text: string): NodePart | null {
  if (text.length < CHUNK_MIN_BODY) return null;
  const start = skipWs(text, 0);
  const first = text.charCodeAt(start);
  if (first !== 123 && first !== 91) return null;
  const end = skipValue(text, start);
  if (end === -1 || skipWs(text, end) !== text.length) return null;
  const root = splitContainer(text, start, end, '', 0);
  if (root === null) return null;
  if (start === 0 && end === text.length) return root;
  const pieces = [...root.pieces];
  if (start > 0) pieces.unshift(text.slice(0, start));
  if (end < text.length) pieces.push(text.slice(end));
  return { ...root, pieces };
}

function partOf(text: string, start: number, end: number, path: string, depth: number): BodyPart {
  const c = text.charCodeAt(start);
  if (end - start >= NODE_MIN && depth < MAX_SPLIT_DEPTH && (c === 123 || c === 91)) {
    const node = splitContainer(text, start, end, path, depth);
    if (node !== null) return node;
  }
  return { kind: LEAF, text: text.slice(start, end) };
}

/** [start, end) is one object or array. Null when it is not well formed at this level. */
function splitContainer(text: string, start: number, end: number, path: string, depth: number): NodePart | null {
  const array = text.charCodeAt(start) === 91;
  const close = array ? 93 : 125;
  const pieces: (string | BodyPart)[] = [];
  const names: string[] | null = array ? null : [];
  let literal = start; // start of the literal text not yet emitted
  let i = skipWs(text, start + 1);
  if (text.charCodeAt(i) === close) return i + 1 === end ? { kind: NODE, array, path, depth, pieces: [text.slice(start, end)], names } : null;
  for (;;) {
    let valueStart = i;
    let name = '';
    if (!array) {
      if (text.charCodeAt(i) !== 34) return null;
      const keyEnd = scanString(text, i);
      if (keyEnd === -1) return null;
      try {
        name = JSON.parse(text.slice(i, keyEnd)) as string;
      } catch {
        return null;
      }
      const colon = skipWs(text, keyEnd);
      if (text.charCodeAt(colon) !== 58) return null;
      valueStart = skipWs(text, colon + 1);
    }
    const valueEnd = skipValue(text, valueStart);
    if (valueEnd === -1 || valueEnd > end) return null;
    if (array || valueEnd - valueStart >= INLINE_MAX) {
      if (valueStart > literal) pieces.push(text.slice(literal, valueStart));
      const part = partOf(text, valueStart, valueEnd, array ? `${path}[]` : path === '' ? name : `${path}.${name}`, depth + 1);
      // Inside a conversation element (depth 2 and below), a container with at most one part of
      // its own is folded into its parent: a message `{"role":"user","content":[{…, "content":
      // <output>, "cache_control":…}]}` is one node and its output, not four rows.
      const parts = part.kind === NODE ? part.pieces.filter((p) => typeof p !== 'string').length : -1;
      if (part.kind === NODE && depth >= 2 && parts <= 1) {
        pieces.push(...part.pieces);
        if (parts === 1) names?.push(name);
      } else {
        pieces.push(part);
        names?.push(name);
      }
      literal = valueEnd;
    }
    const next = skipWs(text, valueEnd);
    const c = text.charCodeAt(next);
    if (c === 44) {
      i = skipWs(text, next + 1);
      continue;
    }
    if (c !== close || next + 1 !== end) return null;
    pieces.push(text.slice(literal, end));
    return { kind: NODE, array, path, depth, pieces, names };
  }
}

// ── node text ──────────────────────────────────────────────────────────────────────────────

/** The stored text of a node. `names` (objects) has one entry per reference in `pieces`. */
export function encodeNode(array: boolean, base: number, keep: number, pieces: readonly (string | number)[], names: readonly string[] | null): string {
  let out = array ? `a${base},${keep};` : 'o;';
  let name = 0;
  let pending = '';
  const flush = (): void => {
    if (pending !== '') out += `s${pending.length}:${pending}`;
    pending = '';
  };
  for (const piece of pieces) {
    if (typeof piece === 'string') {
      pending += piece; // adjacent literals merge
      continue;
    }
    flush();
    if (names !== null) {
      const n = names[name++] ?? '';
      out += `k${n.length}:${n}`;
    }
    out += `r${piece};`;
  }
  flush();
  return out;
}

export class ChunkFormatError extends Error {
  constructor(reason: string) {
    super(`a recorded request chunk is malformed: ${reason}`);
    this.name = 'ChunkFormatError';
  }
}

function readInt(text: string, i: number, stop: string): [number, number] {
  const at = text.indexOf(stop, i);
  if (at === -1 || at === i || at - i > 15) throw new ChunkFormatError('bad number');
  const digits = text.slice(i, at);
  if (!/^\d+$/.test(digits)) throw new ChunkFormatError('bad number');
  return [Number(digits), at + 1];
}

/** Decodes a node's stored text. `id`: the node's own id; every id it names must be smaller (no cycles). */
export function decodeNode(text: string, id: number): DecodedNode {
  let i: number;
  let array: boolean;
  let base = 0;
  let keep = 0;
  if (text.startsWith('o;')) {
    array = false;
    i = 2;
  } else if (text.startsWith('a')) {
    array = true;
    [base, i] = readInt(text, 1, ',');
    [keep, i] = readInt(text, i, ';');
    if (base >= id || (base === 0 && keep !== 0)) throw new ChunkFormatError('bad base');
  } else {
    throw new ChunkFormatError('unknown node type');
  }
  const pieces: (string | number)[] = [];
  const names: string[] | null = array ? null : [];
  let name: string | null = null;
  while (i < text.length) {
    const tag = text[i];
    if (tag === 'r') {
      let ref: number;
      [ref, i] = readInt(text, i + 1, ';');
      if (ref <= 0 || ref >= id) throw new ChunkFormatError('reference out of order');
      if (names !== null) {
        if (name === null) throw new ChunkFormatError('reference without a name');
        names.push(name);
        name = null;
      }
      pieces.push(ref);
    } else if (tag === 's' || tag === 'k') {
      let length: number;
      [length, i] = readInt(text, i + 1, ':');
      if (i + length > text.length) throw new ChunkFormatError('text runs past the end');
      const value = text.slice(i, i + length);
      i += length;
      if (tag === 's') pieces.push(value);
      else if (array || name !== null) throw new ChunkFormatError('misplaced name');
      else name = value;
    } else {
      throw new ChunkFormatError('unknown piece');
    }
  }
  if (name !== null) throw new ChunkFormatError('name without a reference');
  return { array, base, keep, pieces, names };
}

/** Every chunk id a node names (its base and its references). */
export function nodeRefs(node: DecodedNode): number[] {
  const refs: number[] = node.base > 0 ? [node.base] : [];
  for (const p of node.pieces) if (typeof p === 'number') refs.push(p);
  return refs;
}

// ── the calls.request_parts column ─────────────────────────────────────────────────────────

/** The root chunk of a call's body, and the chunks its recording added (`first..last`, none when 0). */
export interface RequestParts {
  readonly root: number;
  readonly first: number;
  readonly last: number;
}

export function formatRequestParts(parts: RequestParts): string {
  return parts.first === 0 ? `${parts.root}` : `${parts.root} ${parts.first}-${parts.last}`;
}

/** Null when `text` is not a request_parts value. */
export function parseRequestParts(text: string): RequestParts | null {
  const m = /^([1-9]\d{0,14})(?: ([1-9]\d{0,14})-([1-9]\d{0,14}))?$/.exec(text);
  if (!m) return null;
  const root = Number(m[1]);
  const first = m[2] === undefined ? 0 : Number(m[2]);
  const last = m[3] === undefined ? 0 : Number(m[3]);
  if (first > last || (first > 0 && root > last)) return null;
  return { root, first, last };
}

// ── reading ────────────────────────────────────────────────────────────────────────────────

/** A stored chunk as a reader gets it. */
export interface StoredChunk {
  readonly kind: ChunkKind;
  readonly text: string;
}

/**
 * Rebuilds bodies (and finds their parts) from a session's chunks. Memoized per chunk, so
 * rebuilding every call of a session costs about its distinct text plus one string join per
 * piece (V8 joins strings without copying until the text is read). Throws
 * {@link ChunkFormatError} on a missing or malformed chunk: a body is never returned partly.
 */
export class ChunkGraph {
  readonly #get: (id: number) => StoredChunk | undefined;
  readonly #nodes = new Map<number, DecodedNode>();
  readonly #expanded = new Map<number, readonly (string | number)[]>();
  readonly #texts = new Map<number, string>();
  readonly #values = new Map<number, unknown>();

  constructor(get: (id: number) => StoredChunk | undefined) {
    this.#get = get;
  }

  #chunk(id: number): StoredChunk {
    const chunk = this.#get(id);
    if (chunk === undefined) throw new ChunkFormatError(`chunk ${id} is missing`);
    return chunk;
  }

  /** The decoded node, or null for a leaf. */
  node(id: number): DecodedNode | null {
    const known = this.#nodes.get(id);
    if (known !== undefined) return known;
    const chunk = this.#chunk(id);
    if (chunk.kind === LEAF) return null;
    const node = decodeNode(chunk.text, id);
    this.#nodes.set(id, node);
    return node;
  }

  /** A node's pieces with its base's kept pieces in front. */
  pieces(id: number): readonly (string | number)[] {
    const known = this.#expanded.get(id);
    if (known !== undefined) return known;
    const node = this.node(id);
    if (node === null) throw new ChunkFormatError(`chunk ${id} is not a node`);
    let pieces = node.pieces;
    if (node.base > 0) {
      const base = this.pieces(node.base);
      if (node.keep > base.length) throw new ChunkFormatError(`chunk ${id} keeps more than its base has`);
      pieces = [...base.slice(0, node.keep), ...node.pieces];
    }
    this.#expanded.set(id, pieces);
    return pieces;
  }

  /** The exact text of a chunk (a whole body for a call's root). */
  text(id: number): string {
    const known = this.#texts.get(id);
    if (known !== undefined) return known;
    const chunk = this.#chunk(id);
    let text = '';
    if (chunk.kind === LEAF) text = chunk.text;
    else for (const piece of this.pieces(id)) text += typeof piece === 'string' ? piece : this.text(piece);
    this.#texts.set(id, text);
    return text;
  }

  /** A chunk's text parsed as JSON (memoized); undefined when it is not JSON. */
  value(id: number): unknown {
    if (this.#values.has(id)) return this.#values.get(id);
    let value: unknown;
    try {
      value = JSON.parse(this.text(id));
    } catch {
      value = undefined;
    }
    this.#values.set(id, value);
    return value;
  }

  /** The chunk ids of an array node's elements, in order; null when `id` is not an array node. */
  elements(id: number): number[] | null {
    const node = this.node(id);
    if (node === null || !node.array) return null;
    return this.pieces(id).filter((p): p is number => typeof p === 'number');
  }

  /** The chunk id of an object node's member (the last one of that name); null when it is inline or absent. */
  member(id: number, name: string): number | null {
    const node = this.node(id);
    if (node === null || node.array || node.names === null) return null;
    let found: number | null = null;
    let n = 0;
    for (const piece of node.pieces) {
      if (typeof piece !== 'number') continue;
      if (node.names[n++] === name) found = piece;
    }
    return found;
  }

  /**
   * An object node's members that stay in its own text (short values), parsed; references read
   * as null. Undefined when the node is not an object or does not parse.
   */
  inlineMembers(id: number): Record<string, unknown> | undefined {
    const node = this.node(id);
    if (node === null || node.array) return undefined;
    let text = '';
    for (const piece of this.pieces(id)) text += typeof piece === 'string' ? piece : 'null';
    try {
      const value = JSON.parse(text) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** A ChunkGraph over chunks as the sessions API sends them (`body_chunks`: id → kind digit + text). */
export function graphOfWireChunks(chunks: Readonly<Record<string, string>>): ChunkGraph {
  return new ChunkGraph((id) => {
    const value = Object.hasOwn(chunks, String(id)) ? chunks[String(id)] : undefined;
    if (value === undefined) return undefined;
    const kind = value.charCodeAt(0) - 48;
    return kind === LEAF || kind === NODE ? { kind, text: value.slice(1) } : undefined;
  });
}
