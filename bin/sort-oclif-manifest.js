#!/usr/bin/env node
/**
 * `npm run build`'s last step: rewrites oclif.manifest.json with its commands in name order.
 * `oclif manifest` lists them in the order its file search (tinyglobby, directories read in
 * parallel) happens to return them, which changes from build to build; the manifest is tracked,
 * so every build dirtied the tree. Sorted, the same sources give the same bytes.
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The manifest text with `commands` in code-unit order of their ids, written as oclif writes it. */
export function sortManifest(text) {
  const manifest = JSON.parse(text);
  const commands = Object.fromEntries(Object.keys(manifest.commands).sort().map((id) => [id, manifest.commands[id]]));
  return JSON.stringify({ ...manifest, commands }, null, 2);
}

// Run as a script (not imported by the test): compared as real paths, a checkout under a symlink too.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? 'oclif.manifest.json';
  writeFileSync(file, sortManifest(readFileSync(file, 'utf8')));
}
