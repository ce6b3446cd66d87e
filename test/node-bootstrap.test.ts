/**
 * The machine's own Node may be older than aigov needs (this machine's is 20): `bin/run.js` run
 * by it must either hand over to the Node that bin/dev fetched, or fail at once saying what is
 * needed and how to get it — not with "No such built-in module: node:sqlite".
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, isBuilt } from './support/cli-process.ts';

/** A Node older than 22.13 on this machine's PATH, if there is one. */
function oldNode(): string | undefined {
  const found = spawnSync('which', ['-a', 'node'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return found.find((path) => {
    const version = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    const [major, minor] = version.split('.').map(Number);
    return major !== undefined && minor !== undefined && (major < 22 || (major === 22 && minor < 13));
  });
}

const OLD = oldNode();
const home = mkdtempSync(join(tmpdir(), 'aigov-node-'));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { PATH: process.env.PATH, HOME: home, AIGOV_CONFIG_DIR: join(home, 'config'), AIGOV_RUNTIME_DIR: join(home, 'run') };

describe('bin/run.js under a Node older than 22.13', { skip: OLD === undefined ? 'no Node older than 22.13 on this machine' : !isBuilt('commands/status.js') && 'run `npm run build` first' }, () => {
  it('hands over to the fetched Node: commands run as usual and keep their exit code', () => {
    const version = execFileSync(OLD!, [BIN, '--version'], { env: { ...env, AIGOV_NODE: process.execPath }, encoding: 'utf8' });
    assert.match(version, new RegExp(`node-${process.version.replace(/\./g, '\\.')}`));
    const status = spawnSync(OLD!, [BIN, 'status'], { env: { ...env, AIGOV_NODE: process.execPath }, encoding: 'utf8' });
    assert.equal(status.status, 1, 'not logged in: status exits 1, through the hand-over');
    assert.match(status.stdout, /Logged in:\s+no/);
  });

  it('without one, fails at once naming the version needed, the one found and how to get it', () => {
    const result = spawnSync(OLD!, [BIN, 'server', '--dev'], { env: { ...env, AIGOV_NODE: join(home, 'no-such-node') }, encoding: 'utf8' });
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /aigov needs Node ≥ 22\.13 \(you have v2\d\.\d+\.\d+\)/);
    assert.match(result.stderr, /Run bin\/dev/);
    assert.match(result.stderr, /nodejs\.org/);
    assert.doesNotMatch(result.stderr, /sqlite|report it/i);
  });
});
