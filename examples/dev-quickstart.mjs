#!/usr/bin/env node
// Try the governed path against `aigov server --dev`, with the official SDKs:
//   node examples/dev-quickstart.mjs [GATEWAY_URL] [USER]
// Signs in through the gateway's embedded IdP with the OAuth device flow (approved as USER,
// default alice, through the dev-only approval endpoint, with the approve secret the gateway
// printed: $AIGOV_DEV_APPROVE_SECRET, else read from its state dir — $AIGOV_STATE_DIR or
// ~/.local/state/aigov/dev — as the same user), then calls the built-in dev model
// through the gateway with the openai and @anthropic-ai/sdk packages. The token stays in memory.
// (`aigov login` and `aigov run -- …` will do all of this for you.)
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const gateway = (process.argv[2] ?? process.env.AIGOV_GATEWAY ?? 'http://127.0.0.1:8787').replace(/\/+$/, '');
const user = process.argv[3] ?? 'alice';

/** The dev gateway's approve secret: from the environment, or its 0600 file in the state dir (readable by the user who runs the gateway). */
function approveSecret() {
  if (process.env.AIGOV_DEV_APPROVE_SECRET) return process.env.AIGOV_DEV_APPROVE_SECRET.trim();
  const stateDir = process.env.AIGOV_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'aigov', 'dev');
  try {
    return readFileSync(join(stateDir, 'dev-approve.secret'), 'utf8').trim();
  } catch {
    return '';
  }
}

async function json(url, init) {
  const res = await fetch(url, init);
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}
const form = (fields) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

const { status, body: config } = await json(`${gateway}/.well-known/aigov-configuration`).catch(() => ({ status: 0, body: null }));
if (status !== 200) {
  console.error(`No aigov gateway answers at ${gateway}. Start one with:  npx aigov server --dev`);
  process.exit(1);
}
if (!config.dev) {
  console.error(`${gateway} is not a dev gateway; this example only signs in to the embedded dev IdP.`);
  process.exit(1);
}
const { body: oidc } = await json(`${config.issuer}/.well-known/openid-configuration`);
const scope = [...config.scopes, config.required_scope].filter(Boolean).join(' ');
const { body: device } = await json(oidc.device_authorization_endpoint, form({ client_id: config.cli_client_id, scope, resource: config.resource }));
console.log(`Device login: code ${device.user_code} (approving it as ${user} through the dev IdP)`);
const approval = await json(`${config.issuer}/dev/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_code: device.user_code, user, secret: approveSecret() }) });
if (approval.status !== 200) {
  console.error(`Approval failed: ${approval.body.error_description ?? approval.body.error ?? approval.status}`);
  if (approval.status === 403) console.error('Set AIGOV_DEV_APPROVE_SECRET to the approve secret in the gateway\'s banner (or AIGOV_STATE_DIR to its --state-dir).');
  process.exit(1);
}
let token;
for (;;) {
  const { status: s, body } = await json(oidc.token_endpoint, form({ client_id: config.cli_client_id, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code }));
  if (s === 200) {
    token = body.access_token;
    break;
  }
  if (body.error !== 'authorization_pending' && body.error !== 'slow_down') throw new Error(`token endpoint: ${body.error}`);
  await new Promise((r) => setTimeout(r, 1000));
}
console.log(`Signed in as ${user}.\n`);

const openaiBase = config.providers.find((p) => p.kind === 'openai').base_url;
const anthropicBase = config.providers.find((p) => p.kind === 'anthropic').base_url;
const openai = new OpenAI({ baseURL: openaiBase, apiKey: token });
const session = `quickstart-${Date.now()}`;

const chat = await openai.chat.completions.create(
  { model: 'aigov-dev', messages: [{ role: 'user', content: 'Hello from the quickstart!' }] },
  { headers: { 'x-aigov-session': session } },
);
console.log(`openai chat     → ${chat.choices[0].message.content}`);

process.stdout.write('openai stream   → ');
const stream = await openai.chat.completions.create(
  { model: 'aigov-dev', messages: [{ role: 'user', content: 'Stream this, please.' }], stream: true },
  { headers: { 'x-aigov-session': session } },
);
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
process.stdout.write('\n');

const anthropic = new Anthropic({ baseURL: anthropicBase, apiKey: token, defaultHeaders: { 'x-aigov-session': session } });
const message = await anthropic.messages.create({ model: 'aigov-dev', max_tokens: 200, messages: [{ role: 'user', content: 'And hello to Claude.' }] });
console.log(`anthropic       → ${message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')}`);

const denied = await new OpenAI({ baseURL: openaiBase, apiKey: 'not-a-token', maxRetries: 0 }).models.list().catch((e) => e);
console.log(`\nWithout a valid token the gateway refuses: ${denied.message}`);
console.log(`\nAll three calls were recorded as session ${session} in the gateway's SQLite store.`);
