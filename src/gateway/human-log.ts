/**
 * Log lines for a person at a terminal (`aigov server --dev` on a TTY): `12:03:04 INFO  call
 * provider=openai status=completed …` instead of JSON. The lines are pino's, already redacted;
 * this only re-lays them out. Anything that is not a JSON object passes through unchanged.
 */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

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
  const fields = Object.entries(record)
    .filter(([key, value]) => !SKIP.has(key) && value !== null && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  return `${time} ${level} ${typeof record.msg === 'string' ? record.msg : ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}

/** A pino destination writing human lines to `out`. */
export function humanLogDestination(out: { write(text: string): unknown }): { write(line: string): void } {
  return { write: (line) => void out.write(formatHumanLogLine(line)) };
}
