/**
 * The daemon's log: one plain line per event on a stream (the daemon's log file when it runs
 * detached). Callers pass only safe values: never keys, tokens, prompts or bodies.
 */
import type { Writable } from 'node:stream';

export interface DaemonLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: DaemonLogger = { info() {}, warn() {}, error() {} };

export function createLineLogger(stream: Writable, now: () => Date = () => new Date()): DaemonLogger {
  const write = (level: string, message: string): void => {
    stream.write(`${now().toISOString()} ${level} ${message.replace(/\n/g, ' ')}\n`);
  };
  return {
    info: (message) => write('info', message),
    warn: (message) => write('warn', message),
    error: (message) => write('error', message),
  };
}
