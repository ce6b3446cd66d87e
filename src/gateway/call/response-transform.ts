import type { SecretScrubber } from '../../core/scrub-secrets.ts';
import type { ChannelTransformer, TextRewriter, UnknownEvents } from '../../providers/channels.ts';

const same = (text: string): string => text;

/** How an answer is rewritten on its way back: by the codec (stream reader, rewriteAnswer), with this rewriter. */
export interface ResponseTransform {
  /** The rewriter (null: the answer's texts are not rewritten). */
  readonly rewriter: TextRewriter | null;
  /** The gateway's own secrets (provider keys): scrubbed from every string of the answer, policy or not. */
  readonly secrets: SecretScrubber;
  /** What becomes of an answer event of a type the codec does not know. */
  readonly unknown: UnknownEvents;
  /** What the store keeps of a sent SSE block or body (restored pseudonyms concealed again). */
  forRecord(sent: string): string;
}

export interface TransformOptions {
  readonly secrets: SecretScrubber;
  /** Policy governs the answer (masks it, restores pseudonyms, judges its tool calls): `answers.unknown_events` applies. */
  readonly governed: boolean;
  readonly unknownEvents: UnknownEvents;
  /** Seals a changed thinking block's upstream text into its signature (./thinking-seal.ts). */
  readonly sealThinking: ((upstreamText: string, signature: string) => string) | null;
}

/**
 * The answer's rewriter: policy's (masking, restoring pseudonyms), then the gateway's secrets
 * scrubbed from its result — in whole texts and channel by channel, so a key split over deltas
 * is caught too. Without a policy rewriter and without secrets, none.
 */
export function responseTransform(policy: TextRewriter | null, options: TransformOptions): ResponseTransform {
  const { secrets } = options;
  const forRecord = policy?.forRecord ? (sent: string) => policy.forRecord!(sent) : same;
  const unknown = options.governed ? options.unknownEvents : 'mask';
  if (secrets.empty) return { rewriter: policy === null ? null : withSeal(policy, options.sealThinking), secrets, unknown, forRecord };
  const rewriter: TextRewriter = {
    whole: (text, kind) => secrets.whole(policy ? policy.whole(text, kind) : text),
    channel(kind): ChannelTransformer {
      const inner = policy?.channel(kind) ?? null;
      const scrub = secrets.channel();
      return {
        push: (delta) => scrub.push(inner ? inner.push(delta) : delta),
        end: () => scrub.push(inner ? inner.end() : '') + scrub.end(),
      };
    },
    // A body masked its own way is scrubbed afterwards, string by string (./relay-body.ts).
    ...(policy?.body ? { body: (body: string) => policy.body!(body) } : {}),
    ...(policy?.hidesText ? { hidesText: true } : {}),
    ...(options.sealThinking ? { sealThinking: options.sealThinking } : {}),
  };
  return { rewriter, secrets, unknown, forRecord };
}

function withSeal(policy: TextRewriter, seal: TransformOptions['sealThinking']): TextRewriter {
  return seal === null ? policy : { ...policy, sealThinking: seal };
}
