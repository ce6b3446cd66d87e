/**
 * Log lines for a person at a terminal (`aigov server --dev` on a TTY): `12:03:04 INFO  call
 * provider=openai status=completed …` instead of JSON. The lines are pino's, already redacted;
 * this only re-lays them out. Anything that is not a JSON object passes through unchanged.
 */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

function isMultiline(value: unknown): boolean {
  return typeof value === 'string' && value.includes('\n');
}

/** Control characters as JSON writes them: a multi-line value reaches the terminal unquoted. */
function escapeControls(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatHumanLogLine(line: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return line;
  const record = entry as Record<string, unknown>;
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 19) : '--:--:--';
  const level = typeof record.level === 'number' ? (LEVELS[record.level] ?? String(record.level)) : '?    ';
  const entries = Object.entries(record).filter(([key, value]) => !SKIP.has(key) && value !== null && value !== undefined);
  const fields = entries
    .filter(([, value]) => !isMultiline(value))
    .map(([key, value]) => `${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  // A text of several lines (a policy file's problems with their snippets) is laid out as such
  // under the entry, indented, rather than squeezed into one line with its newlines escaped.
  const blocks = entries
    .filter(([, value]) => isMultiline(value))
    .map(([key, value]) => `\n  ${key}:\n${(value as string).replace(/\r?\n$/, '').split(/\r?\n/).map((line) => `    ${escapeControls(line)}`.trimEnd()).join('\n')}`);
  return `${time} ${level} ${typeof record.msg === 'string' ? record.msg : ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}${blocks.join('')}\n`;
}

/** A pino destination writing human lines to `out`. */
export function humanLogDestination(out: { write(text: string): unknown }): { write(line: string): void } {
  return { write: (line) => void out.write(formatHumanLogLine(line)) };
}
