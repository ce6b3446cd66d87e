/**
 * How deep a JSON text nests, found in one linear pass before anything parses it. A body nested
 * 100,000 levels parses in V8, then overflows the stack of every recursive reader after it; this
 * lets the edge refuse it with a 400 naming the limit instead.
 */

/** Deepest nesting aigov reads (objects and arrays); far above what any provider request needs. */
export const MAX_JSON_DEPTH = 512;

/** True when `text` opens more than `limit` objects/arrays inside one another (strings skipped). */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  // A text shorter than the limit cannot nest deeper than it.
  if (text.length <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
    }
  }
  return false;
}
