import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadGatewayConfig } from '../src/config/load.ts';
import { isAigovError, type AigovError } from '../src/core/errors.ts';

const KEY = 'sk-test-abcdefghijklmnopqrstuvwxyz';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aigov-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

const IDENTITY = `identity:
  issuer: https://idp.example.com
  audience: https://aigov.example.com
  cli_client_id: aigov-cli
`;

function configError(fn: () => unknown): AigovError {
  try {
    fn();
  } catch (error) {
    assert.ok(isAigovError(error), `expected AigovError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

describe('gateway configuration', () => {
  it('loads the shipped example with its secrets resolved from env and file', async () => {
    const keyFile = await write('anthropic.key', 'sk-ant-file-secret\n');
    const text = (await import('node:fs')).readFileSync('examples/gateway.yaml', 'utf8').replace('/run/secrets/anthropic_api_key', keyFile);
    const file = await write('example.yaml', text);
    const config = loadGatewayConfig(file, { env: { OPENAI_API_KEY: KEY } });
    assert.equal(config.providers.length, 2);
    assert.equal(config.providers[0]?.apiKey, KEY);
    assert.equal(config.providers[1]?.apiKey, 'sk-ant-file-secret');
    assert.deepEqual(config.providers[0]?.models, ['gpt-4.1', 'gpt-4.1-mini', 'text-embedding-3-small']);
    assert.equal(config.listen.port, 8787);
    assert.equal(config.limits.max_body_bytes, 10485760);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.providers[0]));
    assert.deepEqual(config.warnings, []);
  });

  it('applies defaults and resolves storage relative to the file', async () => {
    const file = await write('min.yaml', `${IDENTITY}providers:\n  - { name: local, kind: openai, base_url: "http://127.0.0.1:1/v1" }\n`);
    const config = loadGatewayConfig(file, { env: {} });
    assert.equal(config.listen.host, '127.0.0.1');
    assert.equal(config.storage.path, join(dir, 'aigov.db'));
    assert.equal(config.providers[0]?.apiKey, null);
    assert.deepEqual(config.identity.algorithms, ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519']);
    assert.deepEqual(config.audit.auditorGroups, [], 'nobody reads other users\' recordings unless the config says so');
  });

  it('names the file, the key path and what was expected', async () => {
    const file = await write('bad.yaml', `${IDENTITY}listen:\n  port: "eighty"\nproviders:\n  - name: Open AI\n    kind: gemini\n    base_url: ftp://x\n    colour: blue\n`);
    const error = configError(() => loadGatewayConfig(file, { env: {} }));
    assert.equal(error.code, 'AIGOV_E_CONFIG_INVALID');
    assert.equal(error.exitCode, 78);
    assert.match(error.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(error.message, /listen\.port: .*number/i);
    assert.match(error.message, /providers\[0\]\.name: expected a lowercase name/);
    assert.match(error.message, /providers\[0\]\.kind: .*"openai"/);
    assert.match(error.message, /providers\[0\]\.base_url: expected an http\(s\) URL/);
    assert.match(error.message, /providers\[0\]: unknown key "colour"/);
  });

  it('reports missing sections and duplicate provider names', async () => {
    const file = await write('dup.yaml', `providers:\n  - { name: a, kind: openai, base_url: "http://x/v1" }\n  - { name: a, kind: anthropic, base_url: "http://y" }\n`);
    const error = configError(() => loadGatewayConfig(file, { env: {} }));
    assert.match(error.message, /identity: /);
    assert.match(error.message, /providers\[1\]\.name: duplicate provider name "a"/);
  });

  it('refuses reserved provider names', async () => {
    const file = await write('reserved.yaml', `${IDENTITY}providers:\n  - { name: metrics, kind: openai, base_url: "http://x/v1" }\n`);
    assert.match(configError(() => loadGatewayConfig(file, { env: {} })).message, /providers\[0\]\.name: this name is reserved/);
  });

  it('explains YAML syntax errors with a line number', async () => {
    const file = await write('syntax.yaml', `${IDENTITY}providers: [\n  - oops: {\n`);
    const error = configError(() => loadGatewayConfig(file));
    assert.equal(error.code, 'AIGOV_E_CONFIG_INVALID');
    assert.match(error.message, /line \d+/);
  });

  it('says which secret is missing without printing any secret', async () => {
    const file = await write('secret.yaml', `${IDENTITY}providers:\n  - name: openai\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key: \${MISSING_KEY}\n`);
    const error = configError(() => loadGatewayConfig(file, { env: {} }));
    assert.equal(error.code, 'AIGOV_E_SECRET_UNRESOLVED');
    assert.match(error.message, /providers\[0\]\.api_key/);
    assert.match(error.message, /MISSING_KEY is not set/);

    const fileRef = await write('secret2.yaml', `${IDENTITY}providers:\n  - name: openai\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key: { file: nowhere.key }\n`);
    assert.match(configError(() => loadGatewayConfig(fileRef, { env: {} })).message, /nowhere\.key \(no such file\)/);
  });

  it('warns about an inline secret but never puts it in the warning', async () => {
    const file = await write('inline.yaml', `${IDENTITY}providers:\n  - { name: openai, kind: openai, base_url: "https://api.openai.com/v1", api_key: "${KEY}" }\n`);
    const config = loadGatewayConfig(file, { env: {} });
    assert.equal(config.providers[0]?.apiKey, KEY);
    assert.equal(config.warnings.length, 1);
    assert.ok(!config.warnings[0]?.includes(KEY));
  });

  it('reports a missing file clearly', () => {
    const error = configError(() => loadGatewayConfig(join(dir, 'absent.yaml')));
    assert.equal(error.code, 'AIGOV_E_CONFIG_NOT_FOUND');
    assert.match(error.message, /absent\.yaml: no such file/);
    assert.match(error.hint, /aigov server --dev/);
  });
});
