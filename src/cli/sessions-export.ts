/**
 * `aigov sessions export`: streams the gateway's export to stdout, or to a file written under a
 * temporary name and renamed once the export is complete (never a partial file at --out).
 */
import type { WriteStream } from 'node:fs';
import { badFlag } from './flag-values.ts';
import { openSessions } from './sessions-service.ts';

/** Where a `--out` export went, for the line that confirms it; null when it went to stdout. */
export type ExportWritten = { readonly file: string; readonly bytes: number } | null;

export async function exportSession(options: { id: string; format: 'jsonl' | 'json'; out: string | null; profile: string; raw?: boolean }): Promise<ExportWritten> {
  const { client } = await openSessions({ profile: options.profile });
  const raw = { raw: options.raw === true };
  if (options.out === null) {
    await client.exportTo(options.id, options.format, process.stdout, raw);
    return null;
  }
  const fs = await import('node:fs');
  const path = await import('node:path');
  const target = path.resolve(options.out);
  const partial = `${target}.partial-${process.pid}`;
  let file: WriteStream;
  try {
    file = fs.createWriteStream(partial, { flags: 'wx', mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', reject);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EACCES' ? 'permission denied' : code === 'ENOTDIR' ? 'a part of its path is not a directory' : code;
    throw badFlag('--out', options.out, `aigov cannot create a file there (${why})`, 'aigov sessions export ID --out session.jsonl');
  }
  try {
    await client.exportTo(options.id, options.format, file, raw);
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
    fs.renameSync(partial, target);
  } catch (error) {
    file.destroy();
    fs.rmSync(partial, { force: true });
    throw error;
  }
  return { file: target, bytes: file.bytesWritten };
}
