/**
 * Loads the gateway configuration: read YAML → validate with zod → resolve secret references
 * → freeze. Every failure names the file, the key path and what was expected; secret values are
 * never part of an error.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import type { ModelPrice } from '../core/cost/price-call.ts';
import { AigovError, isAigovError } from '../core/errors.ts';
import { databaseUrlHasPassword, databaseUrlProblem } from './database-url.ts';
import { GatewayConfigSchema, type GatewayConfig, type GatewayConfigFile, type GatewayConfigInput, type ResolvedProvider, type SecretRef, type StorageConfig } from './schema.ts';
import { resolveWebhook } from './webhook-schema.ts';
import { describeYamlErrors, withLineNumbers } from './yaml-errors.ts';

export interface LoadOptions {
  /** Environment for `${VAR}` references; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function loadGatewayConfig(file: string, options: LoadOptions = {}): GatewayConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AigovError('AIGOV_E_CONFIG_NOT_FOUND', { file: path, reason: describeFsError(error) });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = describeYamlErrors(text, doc.errors);
    throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: path, problems: `${problems}\n  (expected valid YAML)` });
  }
  try {
    return buildGatewayConfig(doc.toJS() as unknown, path, options);
  } catch (error) {
    if (!isAigovError(error) || error.code !== 'AIGOV_E_CONFIG_INVALID') throw error;
    throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: path, problems: withLineNumbers(String(error.params['problems']), doc, text) });
  }
}

/** Validates an already-parsed config object; `source` names where it came from in errors. */
export function buildGatewayConfig(raw: unknown, source: string, options: LoadOptions = {}): GatewayConfig {
  const parsed = GatewayConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: source, problems: formatIssues(parsed.error.issues) });
  }
  const env = options.env ?? process.env;
  const baseDir = dirname(source);
  const warnings: string[] = [];
  const providers = parsed.data.providers.map((p, i): ResolvedProvider => {
    const at = (key: string): string => `providers[${i}].${key}`;
    const apiKey = p.api_key === undefined ? null : resolveSecret(p.api_key, { path: at('api_key'), source, baseDir, env, warnings });
    const headers: Record<string, string> = {};
    for (const [name, ref] of Object.entries(p.headers)) {
      headers[name.toLowerCase()] = resolveSecret(ref, { path: at(`headers.${name}`), source, baseDir, env, warnings });
    }
    const url = new URL(p.base_url);
    return Object.freeze({
      name: p.name,
      kind: p.kind,
      baseUrl: p.base_url.replace(/\/+$/, ''),
      upstream: Object.freeze({ origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') }),
      apiKey,
      models: Object.freeze([...p.models]),
      headers: Object.freeze(headers),
      devModel: false,
    });
  });
  const storage = resolveStorage(parsed.data.storage, { path: 'storage.url', source, baseDir, env, warnings });
  const vault = parsed.data.pseudonyms;
  const pseudonymKey = vault.key === undefined ? null : decodeKey32(resolveSecret(vault.key, { path: 'pseudonyms.key', source, baseDir, env, warnings }), 'pseudonyms.key', source);
  const webhooks = parsed.data.approvals.webhooks.map((hook, i) => {
    const path = `approvals.webhooks[${i}].secret`;
    const resolved = resolveWebhook(hook, resolveSecret(hook.secret, { path, source, baseDir, env, warnings }));
    if ('problem' in resolved) throw new AigovError('AIGOV_E_SECRET_UNRESOLVED', { path, file: source, reason: resolved.problem });
    return resolved.webhook;
  });
  const pricing = parsed.data.pricing.models.map((price, i): ModelPrice => {
    const provider = providers.find((p) => p.name === price.provider);
    if (!provider) {
      const known = providers.map((p) => p.name).join(', ');
      throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: source, problems: `  - pricing.models[${i}].provider: no provider is named "${price.provider}" (this config has: ${known})` });
    }
    return {
      kind: provider.kind,
      provider: provider.name,
      model: price.model,
      input: price.input,
      output: price.output,
      cachedInput: price.cached_input ?? null,
      cacheWrite: price.cache_write ?? null,
      cacheWrite1h: price.cache_write_1h ?? null,
    };
  });
  const budgets = resolveBudgets(parsed.data.budgets, storage, { path: 'budgets.redis_url', source, baseDir, env, warnings });
  return deepFreeze({
    source,
    budgets,
    listen: parsed.data.listen,
    identity: parsed.data.identity,
    providers,
    storage,
    limits: parsed.data.limits,
    answers: parsed.data.answers,
    logging: parsed.data.logging,
    pseudonyms: { key: pseudonymKey, ttlDays: vault.ttl_days },
    approvals: { keepAliveMs: Math.round(parsed.data.approvals.keepalive_seconds * 1000), webhooks },
    audit: { auditorGroups: [...parsed.data.audit.auditor_groups], ...resolveAudit(parsed.data.audit, { path: 'audit.signing_key', source, baseDir, env, warnings }) },
    policy: parsed.data.policy ? { file: isAbsolute(parsed.data.policy.file) ? parsed.data.policy.file : resolve(baseDir, parsed.data.policy.file), reload: parsed.data.policy.reload } : null,
    pricing,
    warnings,
  });
}

export type { GatewayConfigInput };

interface SecretContext {
  readonly path: string;
  readonly source: string;
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly warnings: string[];
}

const ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

function resolveSecret(ref: SecretRef, ctx: SecretContext): string {
  if (typeof ref === 'string') {
    const m = ENV_REF.exec(ref.trim());
    if (m?.[1]) return fromEnv(m[1], ctx);
    if (ref.startsWith('file:')) return fromFile(ref.slice('file:'.length), ctx);
    ctx.warnings.push(`${ctx.path} in ${ctx.source} holds a secret inline; prefer \${ENV_VAR} or { file: … }`);
    return ref;
  }
  if ('env' in ref) return fromEnv(ref.env, ctx);
  return fromFile(ref.file, ctx);
}

function fromEnv(name: string, ctx: SecretContext): string {
  const value = ctx.env[name];
  if (value === undefined || value.trim() === '') {
    throw new AigovError('AIGOV_E_SECRET_UNRESOLVED', { path: ctx.path, file: ctx.source, reason: `environment variable ${name} is not set` });
  }
  return value.trim();
}

function fromFile(file: string, ctx: SecretContext): string {
  const full = resolve(ctx.baseDir, file);
  let value: string;
  try {
    value = readFileSync(full, 'utf8').trim();
  } catch (error) {
    throw new AigovError('AIGOV_E_SECRET_UNRESOLVED', { path: ctx.path, file: ctx.source, reason: `cannot read ${full} (${describeFsError(error)})` });
  }
  if (value === '') {
    throw new AigovError('AIGOV_E_SECRET_UNRESOLVED', { path: ctx.path, file: ctx.source, reason: `${full} is empty` });
  }
  return value;
}

/** The storage settings with `path` absolute and, for PostgreSQL, the URL resolved and checked (never echoed). */
function resolveStorage(storage: GatewayConfigFile['storage'], ctx: SecretContext): StorageConfig {
  const file = isAbsolute(storage.path) ? storage.path : resolve(ctx.baseDir, storage.path);
  if (storage.driver === 'sqlite') return { driver: 'sqlite', path: file };
  // Inline is fine for a URL without a password (libpq's PGPASSWORD or ~/.pgpass supply it); warn only when it holds one.
  const ref = storage.url;
  const inline = typeof ref === 'string' && !ENV_REF.test(ref.trim()) && !ref.startsWith('file:');
  const url = typeof ref === 'string' && inline ? ref.trim() : resolveSecret(ref, ctx);
  const problem = databaseUrlProblem(url);
  if (problem !== null) throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: ctx.source, problems: `  - ${ctx.path}: ${problem}` });
  if (inline && databaseUrlHasPassword(url)) ctx.warnings.push(`${ctx.path} in ${ctx.source} holds a password inline; prefer \${DATABASE_URL} or { file: … }`);
  return { driver: 'postgres', url, poolSize: storage.pool_size, statementTimeoutMs: storage.statement_timeout_ms, synchronousCommit: storage.synchronous_commit, path: file };
}

/** Where budgets are counted: the store asked for (or the default for this storage), checked against what it needs. */
function resolveBudgets(budgets: GatewayConfigFile['budgets'], storage: StorageConfig, ctx: SecretContext): GatewayConfig['budgets'] {
  const redisUrl = budgets.redis_url === undefined ? null : resolveSecret(budgets.redis_url, ctx);
  const counters = budgets.counters ?? (redisUrl !== null ? 'redis' : storage.driver === 'postgres' ? 'postgres' : 'memory');
  const invalid = (problem: string): AigovError => new AigovError('AIGOV_E_CONFIG_INVALID', { file: ctx.source, problems: `  - budgets.counters: ${problem}` });
  if (counters === 'redis' && redisUrl === null) throw invalid('redis needs budgets.redis_url (e.g. ${REDIS_URL})');
  if (counters === 'postgres' && storage.driver !== 'postgres') throw invalid('postgres keeps the counters in the storage database: it needs storage.driver postgres');
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: ctx.source, problems: `  - ${ctx.path}: expected a redis:// or rediss:// URL` });
  if (counters === 'memory' && storage.driver === 'postgres') ctx.warnings.push('budgets.counters is memory with postgres storage: each replica counts only its own calls; use redis or postgres to share the budgets');
  return { counters, redisUrl, redisPrefix: budgets.redis_prefix, reservationTtlMs: budgets.reservation_ttl_seconds * 1000 };
}

/** A 32-byte key (pseudonym vault, raw copies) given as 64 hex digits or base64; returned as hex. Never echoes the value. */
function decodeKey32(text: string, path: string, source: string): string {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase();
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes.toString('hex');
  }
  const problems = `  - ${path}: expected 32 random bytes as base64 (44 characters) or hex (64 digits), e.g. from \`openssl rand -base64 32\`; the value given has ${text.length} characters`;
  throw new AigovError('AIGOV_E_CONFIG_INVALID', { file: source, problems });
}

/** The audit settings, the signing key resolved and checked to be an Ed25519 private key (never echoed). */
function resolveAudit(audit: GatewayConfigFile['audit'], ctx: SecretContext): Omit<GatewayConfig['audit'], 'auditorGroups'> {
  const m = /^(\d+)(ms|s|m|h)$/.exec(audit.checkpoint_interval);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m?.[2] ?? 'ms'] ?? 1;
  const checkpointIntervalMs = Number(m?.[1] ?? 300_000) * unitMs;
  let signingKey: string | null = null;
  if (audit.signing_key !== undefined) {
    signingKey = resolveSecret(audit.signing_key, ctx);
    let type: string | undefined;
    try {
      type = createPrivateKey({ key: signingKey, format: 'pem' }).asymmetricKeyType;
    } catch {
      type = undefined;
    }
    if (type !== 'ed25519') {
      throw new AigovError('AIGOV_E_SECRET_UNRESOLVED', { path: ctx.path, file: ctx.source, reason: 'expected an Ed25519 private key in PEM (PKCS#8), e.g. from `openssl genpkey -algorithm ed25519`' });
    }
  }
  const rawCopyKey = audit.raw_copy === undefined ? null : decodeKey32(resolveSecret(audit.raw_copy.key, { ...ctx, path: 'audit.raw_copy.key' }), 'audit.raw_copy.key', ctx.source);
  return { signingKey, checkpointIntervalMs, retentionDays: audit.retention_days ?? null, rawCopyKey };
}

/** One line per problem: `  - identity.issuer: expected …`. Never prints received secret values. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const key = issue.path.length === 0 ? '(top level)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      return `  - ${key}: ${message}`;
    })
    .join('\n');
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'unreadable';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
