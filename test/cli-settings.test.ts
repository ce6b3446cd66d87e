import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCliSettings, type ProfileSettings } from '../src/config/cli-settings.ts';
import { defaultConfigDir } from '../src/config/paths.ts';
import type { Discovery } from '../src/protocol/discovery.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aigov-settings-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function discovery(gateway: string): Discovery {
  return {
    schema_version: 1,
    version: '0.1.0',
    gateway_url: gateway,
    issuer: `${gateway}/oidc`,
    cli_client_id: 'aigov-cli',
    scopes: ['openid', 'email', 'groups', 'offline_access'],
    resource: gateway,
    audience: gateway,
    required_scope: null,
    providers: [
      { name: 'openai', kind: 'openai', base_url: `${gateway}/openai/v1`, path: '/openai/v1', models: ['gpt-4o-mini'], dev_model: false },
    ],
    dev: true,
  };
}

function profile(gateway: string, user: string | null = 'alice'): ProfileSettings {
  return {
    gatewayUrl: gateway,
    discovery: discovery(gateway),
    credentialStore: 'keychain',
    user: user === null ? null : { subject: user, email: `${user}@example.com`, groups: ['developers'] },
    loggedInAt: 1_700_000_000_000,
  };
}

describe('cli settings (conf)', () => {
  it('keeps profiles apart in <configDir>/settings.json and reads them back in a new instance', async () => {
    const dir = join(await tempDir(), 'aigov');
    const settings = openCliSettings(dir);
    assert.equal(settings.path, join(dir, 'settings.json'));
    assert.equal(settings.getProfile('default'), null);
    assert.deepEqual(settings.listProfiles(), []);

    const work = profile('http://127.0.0.1:4000');
    const staging = { ...profile('https://gw.example.com', null), credentialStore: 'file' as const, loggedInAt: null };
    settings.setProfile('default', work);
    settings.setProfile('staging.eu', staging); // a dot must not become a nested key
    const reopened = openCliSettings(dir);
    assert.deepEqual(reopened.getProfile('default'), work);
    assert.deepEqual(reopened.getProfile('staging.eu'), staging);
    assert.deepEqual(reopened.listProfiles().sort(), ['default', 'staging.eu']);
    assert.deepEqual(reopened.problems, []);

    const raw = JSON.parse(await readFile(settings.path, 'utf8')) as { profiles: Record<string, unknown> };
    assert.deepEqual(Object.keys(raw.profiles).sort(), ['default', 'staging.eu']);
    assert.equal((await stat(settings.path)).mode & 0o777, 0o600);

    reopened.deleteProfile('default');
    assert.equal(settings.getProfile('default'), null);
    assert.deepEqual(settings.getProfile('staging.eu'), staging);
    reopened.deleteProfile('never-existed');
    assert.deepEqual(settings.listProfiles(), ['staging.eu']);
  });

  it('never writes a secret: keys outside the schema are dropped on write', async () => {
    const dir = await tempDir();
    const settings = openCliSettings(dir);
    const secret = 'rt_SECRETrefreshTOKEN0123456789';
    const leaky = { ...profile('http://127.0.0.1:4000'), refreshToken: secret, accessToken: `at_${secret}` } as ProfileSettings;
    settings.setProfile('default', leaky);
    const text = await readFile(settings.path, 'utf8');
    assert.ok(!text.includes(secret), 'settings.json must not contain a token');
    assert.deepEqual(settings.getProfile('default'), profile('http://127.0.0.1:4000'));
  });

  it('refuses to write a profile that does not fit the schema', async () => {
    const dir = await tempDir();
    const settings = openCliSettings(dir);
    assert.throws(() => settings.setProfile('bad', { ...profile('http://x'), credentialStore: 'clipboard' } as unknown as ProfileSettings), { name: 'ZodError' });
    assert.deepEqual(await readdir(dir).catch(() => []), []);
  });

  it('ignores a malformed profile with a clear problem, keeps the good ones, and login can rewrite it', async () => {
    const dir = await tempDir();
    const settings = openCliSettings(dir);
    const good = profile('http://127.0.0.1:4000');
    await writeFile(settings.path, JSON.stringify({
      profiles: {
        default: good,
        broken: { ...good, discovery: { ...good.discovery, providers: 'nope' }, credentialStore: 'clipboard' },
        empty: null,
      },
    }));
    assert.deepEqual(settings.getProfile('default'), good);
    assert.equal(settings.getProfile('broken'), null);
    assert.equal(settings.problems.length, 2);
    assert.match(settings.problems.join('\n'), /profile "broken" is malformed \(discovery\.providers, credentialStore\); ignored — run `aigov login --profile broken`/);
    assert.match(settings.problems.join('\n'), /profile "empty" is malformed/);
    assert.ok(!settings.problems.join('\n').includes('clipboard'), 'values are not quoted');
    assert.deepEqual(settings.listProfiles(), ['default']);

    settings.setProfile('broken', profile('http://127.0.0.1:5000', 'bob'));
    assert.equal(settings.getProfile('broken')?.user?.subject, 'bob');
    assert.deepEqual(settings.getProfile('default'), good, 'writing one profile keeps the others');
    assert.equal(settings.problems.length, 1, 'only "empty" is still malformed');
  });

  it('survives a settings file that is not JSON: nothing crashes, the next write moves it aside', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'settings.json'), '{"profiles": {"default": ');
    const settings = openCliSettings(dir);
    assert.equal(settings.getProfile('default'), null);
    assert.deepEqual(settings.listProfiles(), []);
    assert.match(settings.problems[0] ?? '', /settings\.json is not valid JSON; its settings are ignored/);

    settings.setProfile('default', profile('http://127.0.0.1:4000'));
    assert.equal(settings.getProfile('default')?.gatewayUrl, 'http://127.0.0.1:4000');
    assert.deepEqual(settings.problems, []);
    const files = await readdir(dir);
    assert.ok(files.some((name) => /^settings\.json\.invalid-\d+$/.test(name)), files.join(', '));
  });

  it('defaults to the config dir from paths.ts', () => {
    const settings = openCliSettings();
    assert.equal(settings.path, join(defaultConfigDir(), 'settings.json'));
  });
});
