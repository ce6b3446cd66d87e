#!/usr/bin/env node
// aigov needs Node >= 22.13 (node:sqlite, require of ES modules). An older Node runs this file
// again with the Node 24 that bin/dev fetches into .ci/.node, or says how to get one.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  const { existsSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const local = process.env.AIGOV_NODE || fileURLToPath(new URL('../.ci/.node/node_modules/.bin/node', import.meta.url));
  if (existsSync(local)) {
    const child = spawnSync(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
    if (child.signal) process.kill(process.pid, child.signal);
    process.exit(child.status ?? 1);
  }
  process.stderr.write(
    `aigov needs Node ≥ 22.13 (you have ${process.version}).\n` +
      'Run bin/dev from the checkout once: it fetches Node 24 from the npm registry into .ci/.node, and aigov then uses it.\n' +
      'Or install Node 24 yourself: https://nodejs.org, or `nvm install 24`.\n',
  );
  process.exit(1);
}
// node:sqlite is stable enough for our use; its ExperimentalWarning only confuses users.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /SQLite/.test(warning.message)) return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

// A reader that went away (`aigov … | head`) is not an error: stop quietly, as Unix tools do.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

// Cache compiled code between runs (Node >= 22.1): start-up of every command gets faster.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();

// Cold-start fast paths: loading @oclif/core alone costs ~110 ms, so the commands whose speed
// users feel — `--version`, `run`, `sessions list` and `usage` — skip it when their arguments
// are simple. Anything else (help, unknown flags) goes through oclif as usual. See docs/benchmarks.md.
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const { readFileSync } = await import('node:fs');
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`aigov/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
  process.exit(0);
}
if (argv[0] === 'run') {
  const { fastRun } = await import('../dist/cli/fast-run.js');
  if (await fastRun(argv.slice(1))) process.exit(process.exitCode ?? 0);
}
if (argv[0] === 'sessions' && argv[1] === 'list') {
  const { fastSessionsList } = await import('../dist/cli/fast-sessions.js');
  if (await fastSessionsList(argv.slice(2))) process.exit(process.exitCode ?? 0);
}
if (argv[0] === 'usage') {
  const { fastUsage } = await import('../dist/cli/fast-usage.js');
  if (await fastUsage(argv.slice(1))) process.exit(process.exitCode ?? 0);
}

const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
