/**
 * The CLI edge for errors: a coded AigovError becomes one line plus a hint on stderr and its
 * stable exit code; anything else is an internal error (exit 70) without a stack unless
 * AIGOV_DEBUG is set.
 */
import { isAigovError } from '../core/errors.ts';

export function renderCliError(error: unknown): { text: string; exitCode: number } {
  if (isAigovError(error)) {
    return { text: `aigov: ${error.message}\n  hint: ${error.hint}\n  code: ${error.code}`, exitCode: error.exitCode };
  }
  const detail = process.env.AIGOV_DEBUG && error instanceof Error ? `\n${error.stack ?? ''}` : '';
  const message = error instanceof Error ? error.message : String(error);
  return { text: `aigov: unexpected error: ${message}${detail}\n  hint: set AIGOV_DEBUG=1 for details and report it.`, exitCode: 70 };
}

/** Runs a command body; on failure prints the rendered error and exits with its code. */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const { text, exitCode } = renderCliError(error);
    process.stderr.write(`${text}\n`);
    process.exit(exitCode);
  }
}
