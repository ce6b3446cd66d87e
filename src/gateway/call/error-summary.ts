import { isAigovError } from '../../core/errors.ts';

/** A log-safe description of an error: its class and code, never its message's data. */
export function errorSummary(error: unknown): string {
  if (isAigovError(error)) return error.code;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `${error.name}${code ? ` ${code}` : ''}: ${error.message.slice(0, 200)}`;
  }
  return typeof error;
}
