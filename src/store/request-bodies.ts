/**
 * Rebuilds the request bodies of calls read with their bodies as chunks (a call's `requestRef`
 * names its root chunk; src/core/recording/request-chunks.ts). One ChunkGraph per read, so what
 * the calls of a session share is rebuilt once; the texts are V8 string joins, copied only when
 * someone reads them (JSON.stringify of a view, a parse).
 */
import { ChunkGraph, ChunkFormatError, type StoredChunk } from '../core/recording/request-chunks.ts';
import type { CallRecord } from './recording-store.ts';

/** `calls` with every `requestRef` replaced by the body it names. Throws when a chunk is missing or malformed. */
export function withRequestBodies(calls: readonly CallRecord[], chunks: ReadonlyMap<number, StoredChunk> | null | undefined): CallRecord[] {
  if (!calls.some((c) => c.requestRef !== undefined)) return [...calls];
  const graph = new ChunkGraph((id) => chunks?.get(id));
  return calls.map((call) => {
    if (call.requestRef === undefined) return call;
    const { requestRef, ...rest } = call;
    try {
      return { ...rest, requestBody: graph.text(requestRef) };
    } catch (err) {
      if (err instanceof ChunkFormatError) throw new Error(`recording store: the request of call ${call.callId} cannot be rebuilt (${err.message})`, { cause: err });
      throw err;
    }
  });
}
