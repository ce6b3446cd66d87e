/**
 * Approval webhooks: where the gateway posts a signed JSON notice when an approval is created,
 * decided or expires (docs/webhooks.md). The same schema serves the global list
 * (`approvals.webhooks` in the gateway config) and a rule's own list (`approval.notify` in the
 * policy file). The secret is a reference resolved by the loader like a provider's api_key;
 * `resolveWebhook` then checks its length and returns the runtime shape the notifier takes.
 */
import { z } from 'zod';
import { SecretRefSchema, type SecretRef } from './secret-ref.ts';

/** Approval events, and `budget_warning`: a budget crossed one of its `warn_at` thresholds. */
export const WEBHOOK_EVENTS = ['created', 'decided', 'expired', 'budget_warning'] as const;
export const WebhookEventSchema = z.enum(WEBHOOK_EVENTS);
export type WebhookEvent = z.infer<typeof WebhookEventSchema>;

/** The shortest secret accepted once resolved: shorter HMAC keys are guessable offline. */
export const WEBHOOK_SECRET_MIN_LENGTH = 16;

const DEFAULT_TIMEOUT_MS = 5000;
const ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/**
 * `500ms`, `5s`, `1.5s`, `2m`, or a number of milliseconds. (The policy's approval `timeout`
 * reads a bare number as seconds: the range error below says which unit a number is in.)
 */
const TimeoutSchema = z
  .union([z.number(), z.string()])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? value : parseDuration(value);
    if (ms === null || !Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 5s or 1m, or a number of milliseconds' });
      return z.NEVER;
    }
    return Math.round(ms);
  });

function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m?.[1]) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000;
}

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

/** True for hosts that never leave this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return LOOPBACK_HOSTS.has(host) || /^127(?:\.\d{1,3}){3}$/.test(host);
}

const WebhookUrlSchema = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an https:// URL' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: `expected an https:// URL (got ${url.protocol.replace(/:$/, '')}://)` });
  } else if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    ctx.addIssue({
      code: 'custom',
      message: `plain http is refused for ${url.hostname}: a notice names people, rules and models and must not cross the network in clear; use https://, or http:// only to a loopback relay (127.0.0.1, ::1, localhost)`,
    });
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'credentials in the URL are refused (they would end up in logs and proxies); the receiver authenticates the gateway by the signature' });
  }
});

const WebhookSecretSchema = SecretRefSchema.superRefine((ref, ctx) => {
  // An inline literal can be checked now; a reference is checked once resolved (resolveWebhook).
  if (typeof ref === 'string' && !ENV_REF.test(ref.trim()) && !ref.startsWith('file:') && ref.trim().length < WEBHOOK_SECRET_MIN_LENGTH) {
    ctx.addIssue({ code: 'custom', message: `expected a secret of at least ${WEBHOOK_SECRET_MIN_LENGTH} characters, such as \${AIGOV_WEBHOOK_SECRET}` });
  }
});

/**
 * A reference only (`${VAR}`, `{ env }`, `{ file }`), for policy files: like the hmac operator's
 * key, an inline secret is refused there (policy files are reviewed and committed).
 */
const WebhookKeyRefSchema = z.union([
  z.string().regex(ENV_REF, 'expected a secret reference such as ${AIGOV_WEBHOOK_SECRET} (inline secrets are refused in a policy file)'),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
  z.strictObject({ file: z.string().min(1, 'expected a file path') }),
]);

function webhookSchema<S extends z.ZodType<SecretRef>>(secret: S) {
  return z.strictObject({
    /** https:// (plain http:// only to loopback). The path may hold a receiver token (Slack): it is never logged. */
    url: WebhookUrlSchema,
    /** HMAC-SHA256 key: `${ENV_VAR}`, `{ env: NAME }` or `{ file: PATH }`; at least 16 characters once resolved. */
    secret,
    /** Which approval events are sent; default all. */
    events: z
      .array(WebhookEventSchema)
      .min(1, 'expected at least one of created, decided, expired, budget_warning (omit events to send all)')
      .transform((events) => [...new Set(events)])
      .default([...WEBHOOK_EVENTS]),
    /** Send the redacted prompt preview; default false (the notice names the request, not its content). */
    include_preview: z.boolean().default(false),
    /** Per attempt, connection to end of response; default 5s. */
    timeout: TimeoutSchema.pipe(
      z
        .number()
        .int()
        .min(100, 'expected a timeout of at least 100ms (a bare number is milliseconds: write 5s for five seconds)')
        .max(60_000, 'expected a timeout of at most 60s'),
    ).default(DEFAULT_TIMEOUT_MS),
  });
}

/** One webhook in the gateway config (`approvals.webhooks`): the secret like a provider's api_key (an inline one is warned about). */
export const WebhookSchema = webhookSchema(WebhookSecretSchema);
export const WebhooksSchema = z.array(WebhookSchema);

/** One webhook in a policy file (a rule's `approval.notify`): the secret by reference only. */
export const RuleWebhookSchema = webhookSchema(WebhookKeyRefSchema);
export const RuleWebhooksSchema = z.array(RuleWebhookSchema);

export type WebhookInput = z.input<typeof WebhookSchema>;
/** A webhook as parsed (from either schema), its secret still a reference. */
export type WebhookFile = z.output<typeof WebhookSchema> | z.output<typeof RuleWebhookSchema>;

/** A webhook ready for the notifier: secret resolved, timeout in milliseconds. Never log this object. */
export interface Webhook {
  readonly url: string;
  readonly secret: string;
  readonly events: readonly WebhookEvent[];
  readonly include_preview: boolean;
  /** Milliseconds. */
  readonly timeout: number;
}

export type { SecretRef };

/**
 * Pairs a parsed webhook with its resolved secret. A secret that is too short is a value, not
 * an exception: the loader reports it with the key path (the secret itself is never printed).
 */
export function resolveWebhook(file: WebhookFile, secret: string): { readonly webhook: Webhook } | { readonly problem: string } {
  const value = secret.trim();
  if (value.length < WEBHOOK_SECRET_MIN_LENGTH) {
    return { problem: `the webhook secret is shorter than ${WEBHOOK_SECRET_MIN_LENGTH} characters` };
  }
  return {
    webhook: Object.freeze({
      url: file.url,
      secret: value,
      events: Object.freeze([...file.events]),
      include_preview: file.include_preview,
      timeout: file.timeout,
    }),
  };
}
