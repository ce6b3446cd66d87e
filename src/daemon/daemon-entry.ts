/**
 * `node src/daemon/daemon-entry.ts --profile P`: the daemon process without oclif, started by
 * `connectDaemon` when the CLI runs from its TypeScript sources (tests, development). The built
 * CLI starts `bin/run.js daemon run --profile P`, which calls the same `runDaemon`.
 */
import { parseArgs } from 'node:util';
import { renderCliError } from '../cli/run-command.ts';
import { defaultProfile } from '../config/paths.ts';
import { runDaemon } from './daemon-main.ts';

const { values } = parseArgs({ options: { profile: { type: 'string' } }, strict: true });
try {
  await runDaemon({ profile: values.profile ?? defaultProfile(), version: 'dev' });
  process.exit(0);
} catch (error) {
  const { text, exitCode } = renderCliError(error);
  process.stderr.write(`${text}\n`);
  process.exit(exitCode);
}
