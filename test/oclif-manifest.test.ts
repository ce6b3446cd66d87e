/**
 * oclif.manifest.json is tracked and `npm run build` regenerates it: the same sources must give
 * the same bytes, or every build dirties a clean clone. `oclif manifest` lists the commands in
 * the order its file search returns them, which varies; bin/sort-oclif-manifest.js (the
 * build's last step) sorts them. Here: the tracked file is in that sorted form and lists every
 * command in src/commands, and — with dist/ built — the build's manifest steps run twice in
 * scratch package roots give the tracked file byte for byte.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
// @ts-expect-error -- a plain JavaScript build script, without type declarations
import { sortManifest } from '../bin/sort-oclif-manifest.js';

const ROOT = join(import.meta.dirname, '..');
const MANIFEST = join(ROOT, 'oclif.manifest.json');
const sort = sortManifest as (text: string) => string;

interface Manifest {
  commands: Record<string, unknown>;
  version: string;
}

/** Command ids as oclif derives them from src/commands: `sessions/list.ts` → `sessions:list`, `approvals/index.ts` → `approvals`. */
function sourceCommandIds(): string[] {
  const dir = join(ROOT, 'src', 'commands');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => relative(dir, join(dir, file)).replace(/\.ts$/, '').split(/[\\/]/).filter((part, i, all) => !(part === 'index' && i === all.length - 1)).join(':'))
    .sort();
}

describe('oclif.manifest.json is deterministic', () => {
  const tracked = readFileSync(MANIFEST, 'utf8');
  const scratch: string[] = [];
  after(() => {
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  });

  it('the tracked manifest is in sorted form and lists exactly the commands in src/commands', () => {
    assert.equal(sort(tracked), tracked, 'run `npm run build` (it sorts the manifest) and commit oclif.manifest.json');
    const manifest = JSON.parse(tracked) as Manifest;
    assert.deepEqual(Object.keys(manifest.commands), sourceCommandIds());
    assert.equal(manifest.version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('sorting gives the same bytes whatever order oclif found the commands in', () => {
    const manifest = JSON.parse(tracked) as Manifest;
    const ids = Object.keys(manifest.commands);
    const orders = [[...ids].reverse(), [...ids.slice(7), ...ids.slice(0, 7)], ids.filter((_, i) => i % 2 === 1).concat(ids.filter((_, i) => i % 2 === 0))];
    for (const order of orders) {
      const shuffled = JSON.stringify({ ...manifest, commands: Object.fromEntries(order.map((id) => [id, manifest.commands[id]])) }, null, 2);
      assert.notEqual(shuffled, tracked, 'the shuffle changed the order');
      assert.equal(sort(shuffled), tracked);
    }
  });

  it("the build's manifest steps, run twice from dist/, give the tracked file", { skip: existsSync(join(ROOT, 'dist', 'commands', 'run.js')) ? false : 'run `npm run build` first', timeout: 120_000 }, async () => {
    const build = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } }).scripts.build;
    const steps = build.split(' && ').filter((step) => !step.startsWith('tsc '));
    assert.deepEqual(steps, ['oclif manifest', 'node bin/sort-oclif-manifest.js'], 'the build writes the manifest and then sorts it');
    const generate = async (): Promise<string> => {
      // A package root of its own: `oclif manifest` writes (and first deletes) oclif.manifest.json in its working directory.
      const root = mkdtempSync(join(tmpdir(), 'aigov-manifest-'));
      scratch.push(root);
      // dist/ copied, not linked: oclif records each command's path relative to the package root.
      for (const copied of ['package.json', 'dist', 'bin']) cpSync(join(ROOT, copied), join(root, copied), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
      await promisify(execFile)('sh', ['-c', steps.join(' && ')], {
        cwd: root,
        env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` },
      });
      return readFileSync(join(root, 'oclif.manifest.json'), 'utf8');
    };
    const [first, second] = [await generate(), await generate()];
    assert.equal(first, second);
    assert.equal(first, tracked, 'dist/ is not what the tracked manifest was made from: run `npm run build` and commit oclif.manifest.json');
  });
});
