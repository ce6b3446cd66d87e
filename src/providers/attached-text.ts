/**
 * The text of an attached document or file, when the gateway can read it: a `data:` URL or
 * base64 data whose media type (or file name) says text — `text/*`, JSON, XML, YAML, source
 * code — and whose bytes are UTF-8 text. Everything else (images, PDFs, Office files, bytes that
 * are not UTF-8, a text labelled with another charset) is not read here: the policy's
 * `uninspectable` setting decides on it.
 *
 * A decoded text is written back encoded the same way (base64, or percent-encoding in a data URL
 * without `;base64`), so masking reaches what the model reads. Decoding is exact or refused:
 * base64 with characters outside one alphabet, or padding before its end, is not guessed at (a
 * decoder upstream might read it differently). Only text-labelled data is decoded; an image or a
 * PDF is never decoded, so requests carrying those cost nothing more.
 */

export interface AttachedText {
  readonly text: string;
  /** The wire form of a new text (what replaces the encoded field). */
  encode(next: string): string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `data:[type][;param…][;base64],` — the header is short; the data may be megabytes. */
const DATA_URL_HEADER = /^data:([^,]{0,256}),/i;

/** Media types of text a model reads as text. */
const TEXT_MEDIA =
  /^(?:text\/[a-z0-9.+-]+|application\/(?:json|x-ndjson|ndjson|jsonl|xml|yaml|x-yaml|toml|javascript|x-javascript|ecmascript|typescript|x-typescript|x-sh|x-shellscript|x-python|x-python-code|sql|x-sql|csv|graphql|x-tex|x-latex|x-httpd-php|x-ruby|x-perl|[a-z0-9.-]+\+(?:json|xml|yaml)))$/;
/** Media types that say nothing about the content: the file name decides. */
const GENERIC_MEDIA: ReadonlySet<string> = new Set(['application/octet-stream', 'binary/octet-stream', 'application/unknown']);

const TEXT_EXTENSIONS: ReadonlySet<string> = new Set(
  (
    'txt text md markdown rst adoc csv tsv json jsonl ndjson xml yaml yml toml ini cfg conf env properties log html htm css scss ' +
    'js mjs cjs ts tsx jsx py rb go rs java kt kts c h cc cpp hpp cs php sh bash zsh ps1 sql tex swift scala r pl lua vue svelte graphql proto diff patch'
  ).split(' '),
);
const BINARY_EXTENSIONS: ReadonlySet<string> = new Set(
  (
    'pdf doc docx docm dot dotx ppt pptx xls xlsx xlsm odt ods odp pages numbers key epub zip gz tgz tar 7z rar bz2 xz ' +
    'png jpg jpeg gif webp bmp tif tiff heic svg ico mp3 mp4 wav m4a ogg flac webm mov avi exe bin dll so dylib class jar wasm'
  ).split(' '),
);

/** A `data:` URL's content as text, or null when it is not text the gateway reads. */
export function dataUrlText(url: string, filename?: string): AttachedText | null {
  const header = DATA_URL_HEADER.exec(url.slice(0, 300));
  if (header === null) return null;
  const params = (header[1] ?? '').split(';').map((p) => p.trim().toLowerCase());
  const base64 = params.at(-1) === 'base64';
  if (base64) params.pop();
  // RFC 2397: no media type means text/plain.
  const mediaType = params[0] || 'text/plain';
  if (!utf8Charset(params.slice(1)) || !claimsText(mediaType, filename)) return null;
  const prefix = url.slice(0, header[0].length);
  const data = url.slice(prefix.length);
  if (base64) {
    const decoded = decodeBase64Text(data);
    return decoded === null ? null : { text: decoded, encode: (next) => prefix + encodeBase64(next) };
  }
  let text: string;
  try {
    text = decodeURIComponent(data);
  } catch {
    return null; // malformed escapes or not UTF-8
  }
  return isText(text) ? { text, encode: (next) => prefix + encodeURIComponent(next) } : null;
}

/** Base64 data of `mediaType` (absent: unknown) as text, or null when it is not text the gateway reads. */
export function base64Text(data: string, mediaType: string | undefined, filename?: string): AttachedText | null {
  const [type = '', ...rest] = (mediaType ?? '').split(';').map((p) => p.trim().toLowerCase());
  if (!utf8Charset(rest) || !claimsText(type, filename)) return null;
  const decoded = decodeBase64Text(data);
  return decoded === null ? null : { text: decoded, encode: encodeBase64 };
}

/** Whether a data URL (`data:…`) or base64 of this media type / file name is text (before decoding). */
function claimsText(mediaType: string, filename: string | undefined): boolean {
  const byType = mediaType === '' || GENERIC_MEDIA.has(mediaType) ? null : TEXT_MEDIA.test(mediaType);
  const byName = extensionClaim(filename);
  // Either one saying binary wins: an upstream may go by the name as well as by the type.
  if (byType === false || byName === false) return false;
  return byType === true || byName === true;
}

function extensionClaim(filename: string | undefined): boolean | null {
  const dot = filename?.lastIndexOf('.') ?? -1;
  if (filename === undefined || dot < 0) return null;
  const ext = filename.slice(dot + 1).toLowerCase();
  return TEXT_EXTENSIONS.has(ext) ? true : BINARY_EXTENSIONS.has(ext) ? false : null;
}

function utf8Charset(params: readonly string[]): boolean {
  for (const p of params) {
    if (!p.startsWith('charset=')) continue;
    const charset = p.slice(8).replace(/^"|"$/g, '');
    if (charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii' && charset !== 'ascii') return false;
  }
  return true;
}

/** One alphabet (standard or URL-safe), padding only at the end, whitespace ignored. */
const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;

function decodeBase64Text(data: string): string | null {
  const clean = /\s/.test(data) ? data.replace(/\s+/g, '') : data;
  if (!BASE64.test(clean)) return null;
  const bytes = Buffer.from(clean, 'base64');
  // A PDF or a zip (docx, xlsx) labelled as text: its ASCII parts would decode, its content would not.
  if (startsWith(bytes, '%PDF-') || startsWith(bytes, 'PK\u0003\u0004')) return null;
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return null;
  }
  return isText(text) ? text : null;
}

/** Text, not bytes that happen to be UTF-8: no NUL (UTF-16 read as UTF-8 is full of them). */
function isText(text: string): boolean {
  return !text.includes('\u0000');
}

function startsWith(bytes: Uint8Array, magic: string): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic.charCodeAt(i)) return false;
  return true;
}

function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
