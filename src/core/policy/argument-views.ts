/**
 * The spellings of a tool call's arguments that `tools.arguments` patterns read, so an escape or
 * an encoding cannot walk a call past a block rule:
 *
 *  - the arguments as the model wrote them (raw JSON, or a custom tool's input);
 *  - the JSON parsed and serialized again, Unicode-normalized: `\u0072\u006d` is `rm`, spacing
 *    is canonical, and a pattern written against JSON (`"command":"rm`) still reads JSON;
 *  - every string value decoded and Unicode-normalized (as commands are), one per line;
 *  - those values again with one level of base64, hex, percent-encoding or JSON escapes (a value
 *    that is itself escaped JSON) decoded in place, one per line.
 *
 * Block and require_approval entries match when any view does; allow entries read the raw
 * arguments only (a view must never make a call look allowed). Decoding is bounded like the
 * request's views (DecodeBudget); past the bound the views are incomplete and the caller refuses
 * the call (fail closed). Pure.
 */
import { findBase64AndHex, findJsonEscapes, findPercentEncoding, type DecodeBudget, type DecodedRegion } from '../detection/decode-encodings.ts';
import { normalizeForMatching } from '../detection/normalize.ts';

export interface ArgumentViews {
  /** The raw arguments first, then the decoded views that differ from it. */
  readonly views: readonly string[];
  /** The decoding budget ran out: some value was not decoded. */
  readonly incomplete: boolean;
}

/** String values read from one call's arguments, at most. */
const MAX_VALUES = 10_000;

export function argumentViews(raw: string): ArgumentViews {
  const views = [raw];
  const add = (view: string): void => {
    if (view !== '' && !views.includes(view)) views.push(view);
  };
  let parsed: unknown = undefined;
  const trimmed = raw.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[') || trimmed.startsWith('"')) {
    try {
      parsed = JSON.parse(raw) as unknown;
    } catch {
      parsed = undefined;
    }
  }
  const values = parsed === undefined ? [raw] : stringValues(parsed);
  if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) add(normalizeForMatching(JSON.stringify(parsed)).text);
  add(values.map((v) => normalizeForMatching(v).text).join('\n'));
  const budget: DecodeBudget = { chars: 3 * raw.length + 64 * 1024, exhausted: false };
  const decoded: string[] = [];
  for (const value of values) {
    const regions = [...findBase64AndHex(value, budget), ...findPercentEncoding(value, budget), ...findJsonEscapes(value, budget)];
    if (regions.length > 0) decoded.push(normalizeForMatching(replaceRegions(value, regions)).text);
  }
  if (decoded.length > 0) add(decoded.join('\n'));
  return { views, incomplete: budget.exhausted };
}

/** Every string of a JSON value (values, not keys), in document order, up to MAX_VALUES. */
function stringValues(value: unknown): string[] {
  const out: string[] = [];
  const stack: unknown[] = [value];
  while (stack.length > 0 && out.length < MAX_VALUES) {
    const next = stack.pop();
    if (typeof next === 'string') out.push(next);
    else if (Array.isArray(next)) for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]);
    else if (next !== null && typeof next === 'object') {
      const entries = Object.values(next as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) stack.push(entries[i]);
    }
  }
  return out;
}

/**
 * `text` with the regions decoded in place. Regions of different finders may overlap: the
 * earliest wins, and a region that starts inside one already replaced is left out.
 */
function replaceRegions(text: string, regions: readonly DecodedRegion[]): string {
  const sorted = [...regions].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const region of sorted) {
    if (region.start < at) continue;
    out += text.slice(at, region.start) + region.decoded;
    at = region.end;
  }
  return out + text.slice(at);
}
