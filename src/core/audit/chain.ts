/**
 * The audit chain's canonical forms: what exactly each entry covers, how it is serialized, what
 * the chain hash and a checkpoint signature are computed over. Pure: the hashing itself is done
 * by the caller (store / verifier) through a {@link HashSink}, so this module stays free of I/O.
 *
 * Entry kinds and what they cover (columns of the recording database, values as stored):
 * - `request`: a call row as recordRequest inserted it ({@link REQUEST_COLUMNS}; not `status`
 *   nor `decisions`, which finishCall rewrites — the `result` entry covers those). A call whose
 *   body is stored as chunks (request_parts not null, request_body '') adds
 *   {@link requestPartsContent}: request_parts, then id, kind and SHA-256 of each chunk the call
 *   added; chunks it shares with earlier calls are covered by the entries of the calls that
 *   added them.
 * - `result`: the columns finishCall writes ({@link RESULT_COLUMNS}, including the merged
 *   `decisions`).
 * - `events`: one write-behind batch of one call's stream events: call id, then each event's
 *   seq, offset_ms and raw text, in seq order. `span` is "first..last" (seqs).
 * - `access`: one access_log row (an auditor's read of the recordings), {@link ACCESS_COLUMNS}.
 * - `raw`: one sealed raw request copy (raw_copies row): call id, key id and the SHA-256 of the
 *   sealed bytes ({@link RAW_COPY_COLUMNS}; never plaintext). Written with the call's request entry.
 * - `approval`: an approvals row as the approval store wrote it ({@link APPROVAL_COLUMNS}, the
 *   whole record JSON included), once per insert and once per update: the latest entry of an
 *   approval covers its current row, the earlier ones the states it went through.
 *
 * Value encoding (injective): null → `z;`, number → `n<decimal>;`, text → `s<length>:<text>`
 * (length in UTF-16 code units). Each entry's content starts with a domain tag naming the format
 * version and the kind, so no two kinds can produce the same content.
 */

export const AUDIT_FORMAT = 'aigov.audit.v1';

/** The chain's start: the `prev_hash` of the very first entry. */
export const GENESIS_HASH = '0'.repeat(64);

export type AuditKind = 'request' | 'result' | 'events' | 'access' | 'raw' | 'approval';
export const AUDIT_KINDS: readonly AuditKind[] = ['request', 'result', 'events', 'access', 'raw', 'approval'];

/** Receives the canonical bytes (as text, hashed as UTF-8); `crypto.Hash` fits. */
export interface HashSink {
  update(text: string): unknown;
}

export type ColumnValue = string | number | bigint | null;

export const REQUEST_COLUMNS = [
  'id', 'session_id', 'subject', 'email', 'groups', 'issuer', 'client_id', 'user_agent', 'remote_address', 'sdk',
  'provider', 'provider_kind', 'endpoint', 'method', 'path', 'model', 'stream', 'request_body', 'started_at',
] as const;

export const RESULT_COLUMNS = [
  'id', 'status', 'http_status', 'response_body', 'usage', 'first_byte_ms', 'latency_ms', 'error_code', 'error_message', 'decisions', 'ended_at',
] as const;

export const ACCESS_COLUMNS = ['id', 'at', 'subject', 'issuer', 'email', 'action', 'session_id', 'filter'] as const;

/** `sealed_sha256`: hex SHA-256 of the sealed BLOB (computed by the caller; the bytes never enter the chain). */
export const RAW_COPY_COLUMNS = ['call_id', 'key_id', 'sealed_sha256'] as const;

export const APPROVAL_COLUMNS = ['id', 'state', 'requester_sub', 'content_hash', 'created_at', 'expires_at', 'record'] as const;

export type ColumnsOf<T extends readonly string[]> = { readonly [K in T[number]]: ColumnValue | undefined };

/** One value in the canonical encoding. `undefined` (a column absent from a row) encodes as null. */
export function encodeValue(value: ColumnValue | undefined): string {
  if (value === null || value === undefined) return 'z;';
  if (typeof value === 'string') return `s${value.length}:${value}`;
  return `n${String(value)};`;
}

function feedColumns(sink: HashSink, kind: AuditKind, columns: readonly string[], row: Readonly<Record<string, ColumnValue | undefined>>): void {
  let text = `${AUDIT_FORMAT}/${kind}\n`;
  for (const column of columns) text += encodeValue(row[column]);
  sink.update(text);
}

/**
 * The same content from the values alone, in the order of the kind's column list
 * ({@link REQUEST_COLUMNS}, {@link RESULT_COLUMNS}, {@link ACCESS_COLUMNS}, {@link RAW_COPY_COLUMNS},
 * {@link APPROVAL_COLUMNS}): what a reader that
 * fetches rows as arrays feeds. `from`/`to` select a slice of `values` without copying it.
 */
export function encodeColumnValues(kind: 'request' | 'result' | 'access' | 'raw' | 'approval', values: readonly (ColumnValue | undefined)[], from = 0, to = values.length): string {
  let text = `${AUDIT_FORMAT}/${kind}\n`;
  for (let i = from; i < to; i++) text += encodeValue(values[i]);
  return text;
}

/** Feeds the canonical content of a `request` entry. */
export function feedRequestContent(sink: HashSink, row: ColumnsOf<typeof REQUEST_COLUMNS>): void {
  feedColumns(sink, 'request', REQUEST_COLUMNS, row);
}

/** A chunk a call's recording added to body_chunks: its id, kind and hex SHA-256 (of the kind digit and text). */
export interface ChunkDigest {
  readonly id: number;
  readonly kind: number;
  readonly hash: string;
}

/**
 * What a `request` entry of a call with a chunked body covers after its columns: request_parts
 * and the chunks the call added, in id order. Never empty, so the content differs from that of
 * a call without parts.
 */
export function requestPartsContent(parts: string, chunks: readonly ChunkDigest[]): string {
  let text = encodeValue(parts);
  for (const c of chunks) text += `${encodeValue(c.id)}${encodeValue(c.kind)}${encodeValue(c.hash)}`;
  return text;
}

/** Feeds the canonical content of a `result` entry. */
export function feedResultContent(sink: HashSink, row: ColumnsOf<typeof RESULT_COLUMNS>): void {
  feedColumns(sink, 'result', RESULT_COLUMNS, row);
}

/** Feeds the canonical content of an `access` entry. */
export function feedAccessContent(sink: HashSink, row: ColumnsOf<typeof ACCESS_COLUMNS>): void {
  feedColumns(sink, 'access', ACCESS_COLUMNS, row);
}

/** Feeds the canonical content of a `raw` entry. */
export function feedRawCopyContent(sink: HashSink, row: ColumnsOf<typeof RAW_COPY_COLUMNS>): void {
  feedColumns(sink, 'raw', RAW_COPY_COLUMNS, row);
}

/** Feeds the canonical content of an `approval` entry. */
export function feedApprovalContent(sink: HashSink, row: ColumnsOf<typeof APPROVAL_COLUMNS>): void {
  feedColumns(sink, 'approval', APPROVAL_COLUMNS, row);
}

/**
 * Feeds an `events` entry incrementally: call {@link EventsContent.add} once per event in seq
 * order. Large raw texts go to the sink as they are (no concatenated copy).
 */
export function startEventsContent(sink: HashSink, callId: string): { add(seq: number, offsetMs: number, raw: string): void } {
  sink.update(`${AUDIT_FORMAT}/events\n${encodeValue(callId)}`);
  return {
    add(seq, offsetMs, raw) {
      sink.update(`${encodeValue(seq)}${encodeValue(offsetMs)}s${raw.length}:`);
      sink.update(raw);
    },
  };
}

/** `span` of an events entry: "first..last". */
export function formatSpan(first: number, last: number): string {
  return `${first}..${last}`;
}

/** Parses a span; null when it is not one. */
export function parseSpan(span: string | null): { first: number; last: number } | null {
  if (span === null) return null;
  const m = /^(\d+)\.\.(\d+)$/.exec(span);
  if (!m) return null;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return Number.isSafeInteger(first) && Number.isSafeInteger(last) && first <= last ? { first, last } : null;
}

export interface ChainLink {
  readonly seq: number;
  readonly kind: string;
  readonly ref: string;
  readonly span: string | null;
  readonly at: number;
  readonly contentHash: string;
  readonly prevHash: string;
}

/** What an entry's `hash` is the SHA-256 of: its predecessor's hash, its content hash and its own fields. */
export function chainInput(link: ChainLink): string {
  return `${AUDIT_FORMAT}/link\n${link.prevHash}\n${link.contentHash}\n${link.seq}\n${link.kind}\n${encodeValue(link.ref)}${encodeValue(link.span)}${link.at}`;
}

export type CheckpointKind = 'periodic' | 'shutdown' | 'anchor';

export interface CheckpointFields {
  /** The last entry covered (for an anchor: the last entry purged). */
  readonly seq: number;
  /** That entry's hash. */
  readonly hash: string;
  readonly at: number;
  readonly kind: CheckpointKind;
  /** Fingerprint of the public key ({@link keyIdOf}); null when unsigned. */
  readonly keyId: string | null;
}

/** The text an Ed25519 checkpoint signature is computed over. */
export function checkpointPayload(c: CheckpointFields): string {
  return `${AUDIT_FORMAT}/checkpoint\nseq=${c.seq}\nhash=${c.hash}\nat=${c.at}\nkind=${c.kind}\nkey=${c.keyId ?? ''}`;
}

/** A key id from the SHA-256 (hex) of the public key's DER (SPKI): `ed25519:` + first 16 hex digits. */
export function keyIdOf(spkiSha256Hex: string): string {
  return `ed25519:${spkiSha256Hex.slice(0, 16)}`;
}
