/**
 * Removes credentials from text that came from elsewhere (an upstream error message) before it
 * is shown to a client, logged or recorded: the gateway's own secrets by value, and anything
 * shaped like a provider key, including the partly masked forms providers echo back
 * ("Incorrect API key provided: sk-proj-****abcd").
 */

const KEY_SHAPES: readonly RegExp[] = [
  /\bsk-[A-Za-z0-9_*.-]{3,}/g, // OpenAI, Anthropic (sk-ant-…), OpenAI-compatible
  /\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=*-]{8,}/gi,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, // JWTs
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /\bAIza[A-Za-z0-9_-]{20,}/g,
];

export const SCRUBBED = '[redacted]';

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(SCRUBBED);
  }
  for (const shape of KEY_SHAPES) out = out.replace(shape, SCRUBBED);
  return out;
}
