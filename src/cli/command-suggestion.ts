/**
 * The command a mistyped `aigov …` most likely meant, for the "Did you mean" hint of
 * AIGOV_E_UNKNOWN_COMMAND. oclif hands over what it could not find as one id (`sesions:list`,
 * words joined by ":"); the answer is in the form users type (`sessions list`). Pure.
 */

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]!.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]!.push(best);
    }
  }
  return rows[a.length]![b.length]!;
}

/** How far a word may be from a command word and still be taken for it: about one edit in four letters. */
function tolerance(word: string): number {
  return word.length <= 3 ? 1 : Math.ceil(word.length / 4);
}

/**
 * The command or topic (`ids`, oclif form `a:b`) that the typed words most likely meant, in
 * the typed form (`sessions list`), or null when none is close. Each word of a candidate must be
 * near the typed word in its place (words beyond it are the command's arguments); the candidate
 * with more such words wins, then the one with fewer edits in all, then the first by name. A
 * topic typed right with a wrong command after it (`sessions lst` with nothing near) gives the
 * topic, whose help lists its commands.
 */
export function closestCommand(typed: readonly string[], ids: readonly string[]): string | null {
  const words = typed.map((w) => w.toLowerCase());
  let best: { id: string; words: number; edits: number } | null = null;
  for (const id of [...new Set(ids)].sort()) {
    const parts = id.split(':');
    if (parts.length > words.length) continue;
    let edits = 0;
    let near = true;
    for (let i = 0; i < parts.length && near; i++) {
      const d = editDistance(words[i]!, parts[i]!);
      edits += d;
      near = d <= tolerance(parts[i]!);
    }
    if (!near) continue;
    if (best === null || parts.length > best.words || (parts.length === best.words && edits < best.edits)) best = { id, words: parts.length, edits };
  }
  return best === null ? null : best.id.split(':').join(' ');
}
