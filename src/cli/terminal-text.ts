/**
 * Text for a terminal, shared by the TUIs and the plain renderers: word wrapping and countdowns.
 * Pure; measured in code points (wide characters may overflow a little and are cut by Ink).
 */

/** Lines of `text` at most `width` code points long; long lines break after a space where one is near, else are cut. */
export function wrapText(text: string, width: number): string[] {
  const w = Math.max(1, Math.floor(width));
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const chars = [...line];
    if (chars.length === 0) out.push('');
    let start = 0;
    while (start < chars.length) {
      let end = Math.min(chars.length, start + w);
      if (end < chars.length) {
        // Break after the last space in reach, unless that would leave a very short line.
        const space = chars.lastIndexOf(' ', end - 1);
        if (space > start + w / 2) end = space + 1;
      }
      out.push(chars.slice(start, end).join('').trimEnd());
      start = end;
    }
  }
  return out;
}

/** `4:05`, `1:02:03`: time left, rounded up to the second, never negative. */
export function formatCountdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** `1 rule`, `2 rules` (`many` for irregular plurals). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
