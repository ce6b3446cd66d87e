/**
 * `aigov sessions export`: streams the gateway's export to stdout, or to a file written under a
 * temporary name and renamed once the export is complete (never a partial file at --out).
 */
import type { WriteStream } from 'node:fs';
import { AigovError } from '../core/errors.ts';
import { openSessions } from './sessions-service.ts';

export async function exportSession(options: { id: string; format: 'jsonl' | 'json'; out: string | null; profile: string; raw?: boolean }): Promise<void> {
  const { client } = await openSessions({ profile: options.profile });
  const raw = { raw: options.raw === true };
  if (options.out === null) {
    await client.exportTo(options.id, options.format, process.stdout, raw);
    return;
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
    throw new AigovError('AIGOV_E_BAD_REQUEST', { reason: `cannot write ${options.out} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
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
}
