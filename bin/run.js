#!/usr/bin/env node
// node:sqlite is stable enough for our use; its ExperimentalWarning only confuses users.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /SQLite/.test(warning.message)) return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
