/**
 * `GET /.well-known/aigov-configuration`: everything `aigov login --gateway URL` needs.
 * Versioned by `schema_version`; the CLI validates it with this same schema.
 */
import { z } from 'zod';

export const DISCOVERY_PATH = '/.well-known/aigov-configuration';

export const DiscoveryProviderSchema = z.object({
  name: z.string(),
  kind: z.enum(['openai', 'anthropic']),
  /** Absolute URL a client uses as its SDK base URL (e.g. OPENAI_BASE_URL). */
  base_url: z.string(),
  /** The same, as a path on the gateway (what the daemon maps 1:1). */
  path: z.string(),
  models: z.array(z.string()),
  dev_model: z.boolean(),
});

export const DiscoverySchema = z.object({
  schema_version: z.literal(1),
  version: z.string(),
  gateway_url: z.string(),
  issuer: z.string(),
  cli_client_id: z.string(),
  scopes: z.array(z.string()),
  /** The resource indicator (RFC 8707) to request; also the `aud` of access tokens. */
  resource: z.string(),
  audience: z.string(),
  required_scope: z.string().nullable(),
  providers: z.array(DiscoveryProviderSchema),
  dev: z.boolean(),
});

export type Discovery = z.infer<typeof DiscoverySchema>;
