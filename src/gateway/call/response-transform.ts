import type { TextRewriter } from '../../providers/channels.ts';

const same = (text: string): string => text;

/** How an answer is rewritten on its way back: by the codec (stream reader, rewriteAnswer), with this rewriter. */
export interface ResponseTransform {
  /** The rewriter (null: the answer's texts are not rewritten). */
  readonly rewriter: TextRewriter | null;
  /** What the store keeps of a sent SSE block or body (restored pseudonyms concealed again). */
  forRecord(sent: string): string;
}

export function responseTransform(rewriter: TextRewriter | null): ResponseTransform {
  return { rewriter, forRecord: rewriter?.forRecord ? (sent) => rewriter.forRecord!(sent) : same };
}
