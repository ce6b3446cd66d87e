/**
 * The gateway configuration schema. Defaults live here; `loadGatewayConfig` parses once at the
 * edge, resolves secret references and freezes the result.
 */
import type { ModelPrice } from '../core/cost/price-call.ts';
import { z } from 'zod';
import { SecretRefSchema } from './secret-ref.ts';
import { WebhooksSchema, type Webhook } from './webhook-schema.ts';

/** A secret by reference (`${ENV_VAR}`, `{ env }`, `{ file }`); an inline literal is warned about at startup. */
export { SecretRefSchema, type SecretRef } from './secret-ref.ts';

const RESERVED_NAMES = new Set(['.well-known', 'healthz', 'readyz', 'metrics', 'oidc', 'dev', 'v1', 'aigov']);

export const ProviderConfigSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a lowercase name of letters, digits and dashes (it becomes the URL path /<name>/)')
    .refine((n) => !RESERVED_NAMES.has(n), 'this name is reserved by the gateway'),
  kind: z.enum(['openai', 'anthropic']),
  /** Upstream base URL in the SDK's own convention: OpenAI's includes /v1, Anthropic's does not. */
  base_url: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
    .refine((u) => { const url = new URL(u); return url.search === '' && url.hash === '' && url.username === '' && url.password === ''; }, 'expected a base URL without query, fragment or credentials (put keys in api_key or headers)'),
  /** Omitted only for an upstream that needs no key (a local OpenAI-compatible server). */
  api_key: SecretRefSchema.optional(),
  /** Allowed models; empty or omitted means every model the upstream serves. */
  models: z.array(z.string().min(1)).default([]),
  /** Extra headers sent upstream (e.g. OpenAI-Organization). Values may be secret references. */
  headers: z.record(z.string(), SecretRefSchema).default({}),
});

/** US dollars per million tokens. */
const UsdPerMillion = z
  .number()
  .min(0)
  .max(100_000)
  .refine((n) => Math.abs(n * 1e6 - Math.round(n * 1e6)) < 1e-6, 'expected at most six decimals (US dollars per million tokens)');

const ModelPriceSchema = z.strictObject({
  /** The name of a provider of this config. */
  provider: z.string().min(1),
  /** A model id (its dated snapshots match too) or a glob with `*` (e.g. `ft:gpt-4o-mini:*`). */
  model: z.string().min(1),
  input: UsdPerMillion,
  output: UsdPerMillion,
  /** A prompt-cache read; default the input price. */
  cached_input: UsdPerMillion.optional(),
  /** A prompt-cache write (Anthropic, five minutes); default the input price. */
  cache_write: UsdPerMillion.optional(),
  /** A prompt-cache write kept one hour (Anthropic); default `cache_write`. */
  cache_write_1h: UsdPerMillion.optional(),
});

export const GatewayConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8787),
      tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      /** The URL clients use to reach this gateway, when behind a proxy; used in discovery. */
      public_url: z.url().optional(),
    })
    .prefault({}),
  identity: z.strictObject({
    issuer: z.url({ error: 'expected the IdP issuer URL (its /.well-known/openid-configuration must be reachable)' }),
    audience: z.string().min(1, 'expected the audience (resource indicator) that access tokens carry for this gateway'),
    cli_client_id: z.string().min(1),
    scopes: z.array(z.string()).default(['openid', 'email', 'profile', 'offline_access']),
    /** A scope every access token must carry; null disables the check. */
    required_scope: z.string().nullable().default(null),
    groups_claim: z.string().default('groups'),
    email_claim: z.string().default('email'),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']))
      .min(1)
      .default(['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519']),
    clock_skew_seconds: z.number().int().min(0).max(300).default(30),
    /** Minimum seconds between JWKS refetches triggered by an unknown `kid`. */
    jwks_refetch_interval_seconds: z.number().int().min(1).default(30),
  }),
  providers: z.array(ProviderConfigSchema).min(1, 'expected at least one provider').superRefine((providers, ctx) => {
    const seen = new Set<string>();
    providers.forEach((p, i) => {
      if (seen.has(p.name)) ctx.addIssue({ code: 'custom', message: `duplicate provider name "${p.name}"`, path: [i, 'name'] });
      seen.add(p.name);
    });
  }),
  storage: z
    .discriminatedUnion('driver', [
      z.strictObject({ driver: z.literal('sqlite'), path: z.string().default('aigov.db') }),
      z.strictObject({
        driver: z.literal('postgres'),
        /** postgres://user@host:5432/db, by reference (it may hold the password): ${DATABASE_URL} or { file: … }. */
        url: SecretRefSchema,
        /** Connections to PostgreSQL per gateway process (one writes, the others read). */
        pool_size: z.number().int().min(2).max(1000).default(10),
        /** Longest a statement may run (PostgreSQL's statement_timeout); a recording that takes longer is refused (503). */
        statement_timeout_ms: z.number().int().min(100).max(3_600_000).default(5000),
        /**
         * PostgreSQL's synchronous_commit for the recording writes. `on` (default): a commit is on
         * disk (and on synchronous standbys) before a request is forwarded. `off`: it is in the
         * server's memory, flushed within ~0.6 s — a crash of any gateway loses nothing, a crash of
         * the database server may lose the last commits: the SQLite store's guarantee, faster.
         */
        synchronous_commit: z.enum(['on', 'off']).default('on'),
        /**
         * The SQLite file (one per replica) that still keeps what has not moved to PostgreSQL yet:
         * local state of this replica only; nothing the replicas share is kept there.
         */
        path: z.string().default('aigov.db'),
      }),
    ])
    .prefault({ driver: 'sqlite' }),
  limits: z
    .strictObject({
      max_body_bytes: z.number().int().min(1024).default(10 * 1024 * 1024),
      upstream_connect_timeout_ms: z.number().int().min(100).default(10_000),
      /** Time until the upstream's response headers (models can think for a while). */
      upstream_headers_timeout_ms: z.number().int().min(100).default(300_000),
      /** Longest silence between two body chunks of an upstream answer. */
      upstream_idle_timeout_ms: z.number().int().min(100).default(300_000),
      shutdown_grace_ms: z.number().int().min(0).default(10_000),
      /**
       * Concurrent upstream calls per provider (the connection pool's size: one connection per call,
       * a stream holds its connection until it ends). A call past it is answered at once with 503
       * AIGOV_E_UPSTREAM_BUSY, never queued without headers.
       */
      upstream_max_connections: z.number().int().min(1).max(65_536).default(2048),
      /** Largest answer, decoded: a whole body, or all of a stream's bytes. */
      max_response_bytes: z.number().int().min(1024).default(64 * 1024 * 1024),
      /** Largest single SSE event of a streamed answer (a line without its end counts as it grows). */
      max_event_bytes: z.number().int().min(1024).default(4 * 1024 * 1024),
      /** Most SSE events (comments included) one streamed answer may have; each is a row of the recording. */
      max_stream_events: z.number().int().min(100).default(250_000),
      /** Longest a streamed answer may run, from the upstream's headers to its end. */
      max_stream_duration_ms: z.number().int().min(1000).default(3_600_000),
      /**
       * Longest a policy scan of a large text (request, or non-streamed answer to mask) may run on its
       * worker thread; past it the request is refused with AIGOV_E_POLICY_BUDGET naming the rule.
       */
      policy_scan_deadline_ms: z.number().int().min(100).max(600_000).default(5000),
      /** Worker threads for those scans (default: up to 2, never more than the machine's cores). */
      policy_workers: z.number().int().min(1).max(64).optional(),
      /**
       * Most governed calls one session (the x-aigov-session that `aigov run` sets) may make; past it
       * the gateway answers 429 AIGOV_E_SESSION_CALL_LIMIT without forwarding. 0 = no limit (the
       * default; `aigov server --dev` sets 300). Counted per gateway process, in memory.
       */
      max_calls_per_session: z.number().int().min(0).default(0),
      /** Time a client has to send a request's headers. */
      client_headers_timeout_ms: z.number().int().min(1000).default(30_000),
      /** Time a client has to send a whole request, headers and body (not the time to answer it). */
      client_request_timeout_ms: z.number().int().min(1000).default(120_000),
    })
    .prefault({}),
  /** How the gateway reads upstream answers. */
  answers: z
    .strictObject({
      /**
       * An answer event (or a body's content block, output item or part) of a type the gateway
       * does not know, when policy governs the answer (masks it, restores pseudonyms or judges tool
       * calls): `fail` ends the answer with AIGOV_E_UPSTREAM_BAD_RESPONSE (fail closed); `drop`
       * leaves it out (a streamed block or item later events refer to fails instead); `mask`
       * relays it with every string in it masked as a whole text.
       */
      unknown_events: z.enum(['fail', 'drop', 'mask']).default('fail'),
    })
    .prefault({}),
  /** The policy file (see examples/policy.yaml); without one every request is allowed and recorded. */
  policy: z
    .strictObject({
      file: z.string().min(1, 'expected the path of a policy file'),
      /** Reload the file when it changes; a bad new version keeps the old policy and logs why. */
      reload: z.boolean().default(true),
    })
    .optional(),
  /**
   * The per-session pseudonym vaults (policy action `pseudonymize`). With a key they are kept in
   * the storage database (with postgres: shared by every replica), each value sealed with
   * AES-256-GCM, and survive a restart; without one they live in this process only.
   */
  pseudonyms: z
    .strictObject({
      /** 32 random bytes, base64 or hex (`openssl rand -base64 32`), given by reference. */
      key: SecretRefSchema.optional(),
      /** Days a session's vault is kept after its last use; then it is deleted. */
      ttl_days: z.number().int().min(1).max(3650).default(30),
    })
    .prefault({}),
  /** Requests held for approval (policy action `require_approval` with approvers). */
  approvals: z
    .strictObject({
      /** Seconds between the SSE comments a held stream gets while it waits. */
      keepalive_seconds: z.number().min(1).max(300).default(15),
      /** Notified of every approval (created, decided, expired); rules can add their own (`approval.notify`). docs/webhooks.md. */
      webhooks: WebhooksSchema.default([]),
    })
    .prefault({}),
  /** Reading the recordings (sessions API): who may read everyone's sessions. */
  audit: z
    .strictObject({
      /**
       * IdP groups whose members see every user's sessions; each of their reads is logged
       * (access_log). None by default: reading others' recordings is granted explicitly.
       */
      auditor_groups: z.array(z.string().min(1)).default([]),
      // ── tamper-evident trail (README "Audit trail"; `aigov audit verify`) ──
      /** Ed25519 private key (PEM, PKCS#8) that signs checkpoints, by reference. Without one: chain only. */
      signing_key: SecretRefSchema.optional(),
      /** How often the chain's head is signed (`30s`, `5m`, `1h`); also at shutdown. */
      checkpoint_interval: z
        .string()
        .regex(/^\d+(ms|s|m|h)$/, 'expected a duration such as 30s, 5m or 1h')
        .default('5m'),
      /** Days recordings are kept (calls, stream events, access log); omitted: kept forever. */
      retention_days: z.number().int().min(1).max(36500).optional(),
      /**
       * An encrypted copy of each request as the client sent it (before masking), readable only by
       * auditors (`aigov sessions show ID --raw`). Omitted: only what crossed the boundary is kept.
       */
      raw_copy: z
        .strictObject({
          /** 32 random bytes, base64 or hex (`openssl rand -base64 32`), given by reference. */
          key: SecretRefSchema,
        })
        .optional(),
    })
    .prefault({}),
  /** Prices of models the built-in table (src/core/cost/price-table.ts) lacks or prices differently. */
  pricing: z
    .strictObject({
      /** Checked in order, before the built-in table; the first entry matching the call's provider and model prices it. */
      models: z.array(ModelPriceSchema).default([]),
    })
    .prefault({}),
  /** Where the policy's budgets are counted (README "Budgets"). */
  budgets: z
    .strictObject({
      /**
       * `memory`: in this process (one gateway; rebuilt from the record at start). `redis`: shared
       * by every replica through Redis at `redis_url` (the fastest shared store: docs/benchmarks.md).
       * `postgres`: shared through the storage database. Default: redis with a redis_url, else
       * postgres with postgres storage, else memory.
       */
      counters: z.enum(['memory', 'redis', 'postgres']).optional(),
      /** redis://[:password@]host:6379[/db] or rediss://…, by reference when it holds a password. */
      redis_url: SecretRefSchema.optional(),
      /** Prefix of the counters' keys in Redis (deployments sharing one Redis each use their own). */
      redis_prefix: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'expected up to 64 letters, digits, ":", "_", "." or "-"').default('aigov:budget:'),
      /** How long the reservations of a gateway that died are kept before its calls' budget is whole again. */
      reservation_ttl_seconds: z.number().int().min(1).max(3600).default(60),
    })
    .prefault({}),
  logging: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({}),
});

export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;
export type GatewayConfigFile = z.output<typeof GatewayConfigSchema>;
export type ProviderConfigFile = z.output<typeof ProviderConfigSchema>;

/**
 * Where the recordings are kept. `path` is absolute. With `postgres`, `url` is resolved (it may
 * hold the password: never log it, name the store by `redactDatabaseUrl(url)`), and `path` is the
 * SQLite file for this replica's local state only (nothing the replicas share).
 */
export type StorageConfig =
  | { readonly driver: 'sqlite'; readonly path: string }
  | {
      readonly driver: 'postgres';
      readonly url: string;
      readonly poolSize: number;
      readonly statementTimeoutMs: number;
      readonly synchronousCommit: 'on' | 'off';
      readonly path: string;
    };

/** A provider with its secrets resolved. Never log this object. */
export interface ResolvedProvider {
  readonly name: string;
  readonly kind: 'openai' | 'anthropic';
  readonly baseUrl: string;
  /**
   * The base URL split once: its origin, and the path prefix (no trailing slash) that each
   * upstream path is appended to — by concatenation, never URL resolution.
   */
  readonly upstream: { readonly origin: string; readonly basePath: string };
  readonly apiKey: string | null;
  readonly models: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  /** True when the built-in dev model serves this provider (aigov server --dev). */
  readonly devModel: boolean;
}

export interface GatewayConfig {
  readonly source: string;
  readonly listen: GatewayConfigFile['listen'];
  readonly identity: GatewayConfigFile['identity'];
  readonly providers: readonly ResolvedProvider[];
  readonly storage: StorageConfig;
  readonly limits: GatewayConfigFile['limits'];
  readonly answers: GatewayConfigFile['answers'];
  readonly logging: GatewayConfigFile['logging'];
  /** The policy file (absolute path), or null for allow-all. */
  readonly policy: { readonly file: string; readonly reload: boolean } | null;
  /** The vault key (the 32 bytes as 64 hex digits; never log it), or null: vaults in memory only. */
  readonly pseudonyms: { readonly key: string | null; readonly ttlDays: number };
  /** Approval holds: keep-alive interval and global webhooks (secrets resolved; never log them). */
  readonly approvals: { readonly keepAliveMs: number; readonly webhooks: readonly Webhook[] };
  /** Auditor groups: their members read every user's sessions (each read is logged). */
  /**
   * Also the audit trail: signing key (PEM; never log it) or null, checkpoint interval, retention
   * in days (null: forever).
   */
  readonly audit: {
    readonly auditorGroups: readonly string[];
    readonly signingKey: string | null;
    readonly checkpointIntervalMs: number;
    readonly retentionDays: number | null;
    /** The raw copy key (32 bytes as 64 hex digits; never log it), or null: no raw copies. */
    readonly rawCopyKey: string | null;
  };
  /** The config's model prices, in its order (checked before the built-in table). */
  readonly pricing: readonly ModelPrice[];
  /** Where budgets are counted; `redisUrl` resolved (may hold a password: never log it). */
  readonly budgets: { readonly counters: 'memory' | 'redis' | 'postgres'; readonly redisUrl: string | null; readonly redisPrefix: string; readonly reservationTtlMs: number };
  /** Warnings found while loading (e.g. an inline secret); logged at startup. */
  readonly warnings: readonly string[];
}
