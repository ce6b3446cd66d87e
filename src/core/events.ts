/**
 * The normalized event model: one provider-neutral view of a request and of its answer.
 *
 * Provider adapters parse wire bodies into these types; policy, masking and recording read
 * them. The wire body stays the source of truth for what is sent: normalized views are for
 * decisions and records, never re-serialized into a provider request.
 */

import type { CallCharge } from './budgets/types.ts';

export type ProviderKind = 'openai' | 'anthropic';

/** The governed endpoints. Anything else is refused (no open proxy). */
export type EndpointId =
  | 'openai.chat.completions'
  | 'openai.responses'
  | 'openai.embeddings'
  | 'openai.models.list'
  | 'openai.models.retrieve'
  | 'anthropic.messages'
  | 'anthropic.messages.count_tokens'
  | 'anthropic.models.list'
  | 'anthropic.models.retrieve'
  /** A request refused before it matched an endpoint (unknown path, wrong method): recorded, never forwarded. */
  | 'unrouted';

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export type ContentPart =
  | { readonly type: 'text'; readonly text: string }
  /** An image: the gateway cannot read it (a text sent as an image data URL is a `file` with its text). */
  | { readonly type: 'image'; readonly source: 'url' | 'base64' | 'file' }
  /** Audio input: the gateway cannot read it. */
  | { readonly type: 'audio' }
  /**
   * A document or file the model reads: its name or title, other text about it (Anthropic
   * `context`, a search result's `source`), and its `text` when the gateway reads it (plain text,
   * a text document or data URL decoded, a search result's content). Without `text` the gateway
   * cannot inspect it: `source` says whether its bytes are in the request (a PDF, a binary file)
   * or only referenced (a file id, a URL the gateway does not fetch).
   */
  | { readonly type: 'file'; readonly source: 'inline' | 'reference'; readonly name?: string; readonly context?: string; readonly text?: string }
  | { readonly type: 'tool_call'; readonly id: string; readonly name: string; readonly arguments: string }
  | { readonly type: 'tool_result'; readonly toolCallId: string; readonly text: string }
  /** `text`: what the part says that governance does not read (a Responses reasoning item's content), for views. */
  | { readonly type: 'other'; readonly kind: string; readonly text?: string };

export interface NormalizedMessage {
  readonly role: Role;
  readonly parts: readonly ContentPart[];
  /**
   * How the wire names this turn when that is not `role`: Responses `instructions`, an input
   * item's type (`reasoning`, `additional_tools`), a role governed as another (Chat `function`, an
   * Anthropic role other than user/assistant/system). For views of a recording, never for decisions.
   */
  readonly wire?: string;
}

export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  /** JSON schema of the arguments, as the client sent it. */
  readonly parameters?: unknown;
}

export interface NormalizedRequest {
  readonly endpoint: EndpointId;
  readonly model: string | null;
  readonly stream: boolean;
  readonly messages: readonly NormalizedMessage[];
  readonly tools: readonly ToolDefinition[];
  /** Embeddings input strings. */
  readonly inputs: readonly string[];
  /**
   * Other text of the request the model reads or the provider keeps, outside messages, tools and
   * inputs: response format schemas, predicted output, metadata values, a Chat message's `name`.
   */
  readonly texts: readonly RequestText[];
  /**
   * The most output the request lets the model write, as the request states it (`max_tokens`,
   * `max_completion_tokens`, `max_output_tokens`; null when it states none; 0 for embeddings),
   * and how many answers it asks for (`n`). Absent: the codec does not read it for this endpoint.
   */
  readonly outputLimit?: { readonly maxTokens: number | null; readonly choices: number };
}

/** A string of the request addressed by its wire path (`response_format.json_schema.schema`, `messages[2].name`). */
export interface RequestText {
  readonly path: string;
  /** The role of the message it belongs to; null for request settings (read only by rules without `roles`). */
  readonly role: Role | null;
  readonly text: string;
}

/**
 * Token counts as the provider reports them. `inputTokens` keeps the provider's own meaning:
 * OpenAI's includes the cached tokens, Anthropic's excludes cache reads and writes (both are
 * counted apart) — pricing (core/cost) knows which is which.
 */
export interface Usage {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly totalTokens?: number;
  /** Input tokens read from the provider's prompt cache (billed at the cached-input rate). */
  readonly cacheReadTokens?: number;
  /** Input tokens written to the prompt cache (Anthropic; billed at the cache-write rate). */
  readonly cacheWriteTokens?: number;
  /** Of `cacheWriteTokens`, those written for one hour (Anthropic's dearer cache-write rate). */
  readonly cacheWrite1hTokens?: number;
  /** Of `outputTokens`, those spent reasoning (billed as output; shown apart). */
  readonly reasoningTokens?: number;
  /**
   * Set by the gateway when it records the call (never by a provider): the cost in nano-dollars
   * (10⁻⁹ USD); null when the model has no price or the usage says too little; absent on calls
   * recorded before pricing existed.
   */
  readonly costNanoUsd?: number | null;
  /**
   * Set by the gateway when budgets are configured: what the call was charged against them
   * (./budgets/types.ts), in every unit — recorded so the counters can be rebuilt from the record.
   */
  readonly charged?: CallCharge;
}

/**
 * What an answer says, streamed or not. A non-streamed answer parses into the same events a
 * stream of it would produce, so later stages treat both alike.
 */
export type ResponseEvent =
  | {
      readonly type: 'text';
      readonly choice: number;
      readonly text: string;
      /** The content block (Anthropic) or output item (Responses) the text is in, where the wire numbers them. */
      readonly block?: number;
    }
  /** A refusal the model states instead of content (OpenAI `refusal`): shown, not governed as text. */
  | { readonly type: 'refusal'; readonly choice: number; readonly text: string }
  | {
      readonly type: 'tool_call';
      readonly choice: number;
      readonly index: number;
      readonly id?: string;
      readonly name?: string;
      readonly argumentsDelta: string;
      /**
       * argumentsDelta is the call's complete arguments as one event states them (a Responses
       * `*.done` snapshot, an Anthropic start block with its input): a gate judges these as well
       * as the concatenated deltas, so a client reading either cannot run an unjudged call.
       */
      readonly complete?: boolean;
    }
  | { readonly type: 'finish'; readonly choice: number; readonly reason: string }
  | { readonly type: 'usage'; readonly usage: Usage }
  | { readonly type: 'model'; readonly model: string }
  | { readonly type: 'error'; readonly errorType: string; readonly message: string; readonly code?: string };

/** Who made the request, from a verified access token. */
export interface Principal {
  readonly subject: string;
  readonly email: string | null;
  readonly groups: readonly string[];
  readonly issuer: string;
  readonly clientId: string | null;
}

/** The usage with its undefined counts left out (a recorded usage holds only what was reported). */
type UsageCounts = Omit<Usage, 'charged' | 'costNanoUsd'>;
export function definedOnly(usage: { readonly [K in keyof UsageCounts]: number | undefined }): Usage {
  const out: { -readonly [K in keyof UsageCounts]: number } = {};
  for (const [key, value] of Object.entries(usage) as [keyof UsageCounts, number | undefined][]) if (value !== undefined) out[key] = value;
  return out;
}

const USAGE_FIELDS = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'cacheWrite1hTokens', 'reasoningTokens'] as const;

/**
 * Usage reported in parts (Anthropic's stream: input in `message_start`, the running output
 * count in `message_delta`): a later report of a count replaces the earlier one. The total is
 * the provider's when the latest report gives one, else input + output of the merged counts
 * (a total carried over from an earlier report would miss the later output).
 */
export function mergeUsage(a: Usage | undefined, b: Usage): Usage {
  const merged: { -readonly [K in keyof Usage]: Usage[K] } = {};
  for (const field of USAGE_FIELDS) {
    const value = b[field] ?? a?.[field];
    if (value !== undefined) merged[field] = value;
  }
  const total = b.totalTokens ?? (merged.inputTokens !== undefined && merged.outputTokens !== undefined ? merged.inputTokens + merged.outputTokens : a?.totalTokens);
  if (total !== undefined) merged.totalTokens = total;
  return merged;
}
